#include "sim/core/cost_model.h"

#include <functional>

namespace xensim {

namespace {

struct CostParam {
    std::string name;  // dotted: "vmexit_roundtrip", "handler.VMCALL", "hypercall_op.sched_op"
    Cycles def;
    std::string description;
    std::function<Cycles&(CostModel&)> field;
};

Cycles& handler_ref(CostModel& m, ExitReason r) { return m.handler[static_cast<std::size_t>(r)]; }

// Defaults and their sources: docs/cost-model.md (kept equal by tests/unit/cost_model_test.cpp).
const std::vector<CostParam>& params() {
    static const std::vector<CostParam> table = [] {
        std::vector<CostParam> t;
        auto add = [&](std::string n, Cycles d, std::string desc, std::function<Cycles&(CostModel&)> f) {
            t.push_back({std::move(n), d, std::move(desc), std::move(f)});
        };
        add("vmexit_roundtrip", 700, "hardware VM exit plus VM entry, no handler work",
            [](CostModel& m) -> Cycles& { return m.vmexit_roundtrip; });
        struct H {
            ExitReason r;
            Cycles d;
            const char* desc;
        };
        for (const H& h : std::initializer_list<H>{
                 {ExitReason::IO_INSTRUCTION, 500, "decode and dispatch a port I/O exit"},
                 {ExitReason::EPT_VIOLATION, 1300, "decode an MMIO access that faulted in EPT"},
                 {ExitReason::EPT_MISCONFIG, 400, "the fast MMIO path (EPT misconfiguration)"},
                 {ExitReason::VMCALL, 530, "hypercall dispatch from an HVM/PVH guest"},
                 {ExitReason::HLT, 400, "HLT handling up to blocking the vCPU"},
                 {ExitReason::EXTERNAL_INTERRUPT, 1000, "host interrupt taken in guest mode and handled"},
                 {ExitReason::APIC_ACCESS, 760, "trapped APIC access (EOI without APIC virtualization)"},
                 {ExitReason::APIC_WRITE, 650,
                  "trap-like APIC write exit (EOI with register virtualization)"},
                 {ExitReason::CPUID, 500, "CPUID emulation"},
                 {ExitReason::MSR_READ, 400, "MSR read emulation"},
                 {ExitReason::MSR_WRITE, 500, "MSR write emulation"},
             })
            add("handler." + std::string(exit_reason_name(h.r)), h.d, h.desc,
                [r = h.r](CostModel& m) -> Cycles& { return handler_ref(m, r); });
        add("pv_hypercall", 500, "a PV guest's hypercall entry and exit (syscall), no VMEXIT",
            [](CostModel& m) -> Cycles& { return m.pv_hypercall; });
        for (auto [op, d, desc] : std::initializer_list<std::tuple<const char*, Cycles, const char*>>{
                 {"event_channel_op", 300, "event channel op's own work (EVTCHNOP_send: set pending, kick)"},
                 {"grant_table_op", 300, "grant table hypercall base work"},
                 {"sched_op", 200, "sched_op base work"},
                 {"hvm_op", 250, "hvm_op base work"},
                 {"memory_op", 400, "memory_op base work"},
                 {"xen_version", 50, "xen_version base work"},
                 {"vcpu_op", 300, "vcpu_op base work"},
             })
            add(std::string("hypercall_op.") + op, d, desc,
                [o = std::string(op)](CostModel& m) -> Cycles& { return m.hypercall_op[o]; });
        add("grant_map_per_page", 1500, "map one grant (active entry, maptrack, p2m update)",
            [](CostModel& m) -> Cycles& { return m.grant_map_per_page; });
        add("grant_unmap_per_page", 1200, "unmap one grant",
            [](CostModel& m) -> Cycles& { return m.grant_unmap_per_page; });
        add("grant_copy_per_page", 800, "one grant copy op excluding the bytes",
            [](CostModel& m) -> Cycles& { return m.grant_copy_per_page; });
        add("copy_bytes_per_cycle", 8, "memcpy throughput charged for copied bytes (bytes per cycle)",
            [](CostModel& m) -> Cycles& { return m.copy_bytes_per_cycle; });
        add("tlb_flush", 500, "TLB flush after a grant unmap batch",
            [](CostModel& m) -> Cycles& { return m.tlb_flush; });
        add("interrupt_injection", 400, "inject a virtual interrupt on VM entry",
            [](CostModel& m) -> Cycles& { return m.interrupt_injection; });
        add("ipi_send", 1200, "send a physical IPI to kick a remote pCPU",
            [](CostModel& m) -> Cycles& { return m.ipi_send; });
        add("context_switch_vcpu", 7000, "switch between two vCPUs of the same domain",
            [](CostModel& m) -> Cycles& { return m.context_switch_vcpu; });
        add("context_switch_domain", 8800, "switch between vCPUs of different domains",
            [](CostModel& m) -> Cycles& { return m.context_switch_domain; });
        add("context_switch_idle", 1500, "switch to or from the idle vCPU",
            [](CostModel& m) -> Cycles& { return m.context_switch_idle; });
        add("scheduler_decision", 1000, "one scheduling decision (run-queue pick)",
            [](CostModel& m) -> Cycles& { return m.scheduler_decision; });
        add("upcall_dispatch", 600, "guest upcall handler entry and 2-level bitmap scan",
            [](CostModel& m) -> Cycles& { return m.upcall_dispatch; });
        add("ioreq_roundtrip", 2500, "forward an ioreq to the device model and resume the vCPU",
            [](CostModel& m) -> Cycles& { return m.ioreq_roundtrip; });
        add("xenstored_request", 20000,
            "xenstored handling one request in dom0 user space (wake-up, lookup, reply)",
            [](CostModel& m) -> Cycles& { return m.xenstored_request; });
        add("blkfront_request", 3000,
            "guest block layer and blkfront per request (build, grant, queue), excluding hypercalls",
            [](CostModel& m) -> Cycles& { return m.blkfront_request; });
        add("blkback_request", 4000,
            "dom0 blkback per request (copy, validate, bio submit, completion), excluding hypercalls",
            [](CostModel& m) -> Cycles& { return m.blkback_request; });
        add("bridge_forward", 1500,
            "dom0 per frame through its software bridge (fdb lookup, forward) and the NIC driver, "
            "excluding copies",
            [](CostModel& m) -> Cycles& { return m.bridge_forward; });
        add("netfront_tx_packet", 1500,
            "guest netfront per transmitted frame (slots, grants, ring), excluding hypercalls (estimate)",
            [](CostModel& m) -> Cycles& { return m.netfront_tx_packet; });
        add("netfront_rx_packet", 1500,
            "guest netfront per received frame (responses, grant end, skb build, refill), excluding "
            "hypercalls (estimate)",
            [](CostModel& m) -> Cycles& { return m.netfront_rx_packet; });
        add("netback_tx_packet", 2500,
            "dom0 netback per guest-transmitted frame (copy requests, build gops, skb, response), "
            "excluding hypercalls (estimate)",
            [](CostModel& m) -> Cycles& { return m.netback_tx_packet; });
        add("netback_rx_packet", 2000,
            "dom0 netback per frame to the guest (queue, build copy ops, responses), excluding "
            "hypercalls (estimate)",
            [](CostModel& m) -> Cycles& { return m.netback_rx_packet; });
        add("device_model_ioreq", 6000,
            "device model (QEMU) per ioreq in dom0: wake on the event channel, read the slot, dispatch, "
            "answer",
            [](CostModel& m) -> Cycles& { return m.device_model_ioreq; });
        add("device_model_rep_element", 300,
            "device model per element of a rep string ioreq (port dispatch and a guest-memory copy)",
            [](CostModel& m) -> Cycles& { return m.device_model_rep_element; });
        add("ioreq_buffered", 800,
            "Xen queues a guest write on the buffered ioreq page (decode, append, notify) instead of "
            "waiting for the device model",
            [](CostModel& m) -> Cycles& { return m.ioreq_buffered; });
        add("device_model_buffered_ioreq", 300,
            "device model per buffered write it drains (dispatch only; the wake-up is device_model_ioreq)",
            [](CostModel& m) -> Cycles& { return m.device_model_buffered_ioreq; });
        add("guest_net_tx_packet", 2500,
            "guest network stack per transmitted packet above the driver (socket send, UDP/TCP/IP "
            "output, qdisc), excluding the driver and hypercalls",
            [](CostModel& m) -> Cycles& { return m.guest_net_tx_packet; });
        add("guest_net_rx_packet", 2500,
            "guest network stack per received packet above the driver (GRO, IP/UDP/TCP input, socket "
            "queue and the application's receive), excluding the driver and hypercalls",
            [](CostModel& m) -> Cycles& { return m.guest_net_rx_packet; });
        return t;
    }();
    return table;
}

}  // namespace

CostModel CostModel::defaults() {
    CostModel m{};
    for (const auto& p : params()) p.field(m) = p.def;
    return m;
}

ConfigNodePtr CostModel::schema() {
    // Group dotted names into nested objects (handler.*, hypercall_op.*).
    std::vector<ConfigField> top;
    std::map<std::string, std::vector<ConfigField>> nested;
    std::vector<std::string> nested_order;
    for (const auto& p : params()) {
        auto leaf =
            ConfigNode::integer(static_cast<std::int64_t>(p.def), 0, 1'000'000'000, "cycles", p.description);
        auto dot = p.name.find('.');
        if (dot == std::string::npos) {
            top.push_back({p.name, leaf, false});
        } else {
            std::string group = p.name.substr(0, dot);
            if (!nested.count(group)) nested_order.push_back(group);
            nested[group].push_back({p.name.substr(dot + 1), leaf, false});
        }
    }
    for (const auto& g : nested_order)
        top.push_back(
            {g,
             ConfigNode::object(nested[g], g == "handler" ? "exit handler work by Intel basic exit reason"
                                                          : "per-call work of each hypercall"),
             false});
    return ConfigNode::object(top, "cost-model overrides in cycles; see docs/cost-model.md");
}

CostModel CostModel::from_config(const nlohmann::json& cost) {
    CostModel m = defaults();
    for (const auto& p : params()) {
        auto dot = p.name.find('.');
        const nlohmann::json* v = nullptr;
        if (dot == std::string::npos) {
            if (cost.contains(p.name)) v = &cost.at(p.name);
        } else {
            auto g = p.name.substr(0, dot), leaf = p.name.substr(dot + 1);
            if (cost.contains(g) && cost.at(g).contains(leaf)) v = &cost.at(g).at(leaf);
        }
        if (v) p.field(m) = v->get<Cycles>();
    }
    return m;
}

std::vector<std::pair<std::string, Cycles>> CostModel::flatten() const {
    CostModel copy = *this;
    std::vector<std::pair<std::string, Cycles>> out;
    for (const auto& p : params()) out.emplace_back(p.name, p.field(copy));
    return out;
}

}  // namespace xensim
