#include "models/xen/hypervisor.h"

#include <cstdio>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "sim/core/hex.h"
#include "sim/core/trace_events.h"

namespace xensim {

namespace {
std::string_view ioreq_type_name(std::uint8_t type) {
    switch (type) {
        case IOREQ_TYPE_PIO:
            return "pio";
        case IOREQ_TYPE_COPY:
            return "copy";
        case IOREQ_TYPE_PCI_CONFIG:
            return "pci_config";
        default:
            return "other";
    }
}
}  // namespace

namespace {

// Sub-op names by command number, verbatim from the public headers.
const char* evtchnop_name(unsigned cmd) { return EventChannels::op_name(cmd); }

const char* schedop_name(unsigned cmd) {
    static const char* names[] = {"SCHEDOP_yield",    "SCHEDOP_block",           "SCHEDOP_shutdown",
                                  "SCHEDOP_poll",     "SCHEDOP_remote_shutdown", "SCHEDOP_shutdown_code",
                                  "SCHEDOP_watchdog", "SCHEDOP_pin_override"};
    return cmd < sizeof names / sizeof *names ? names[cmd] : "SCHEDOP_unknown";
}

const char* hvmop_name(unsigned cmd) {
    switch (cmd) {
        case HVMOP_set_param:
            return "HVMOP_set_param";
        case HVMOP_get_param:
            return "HVMOP_get_param";
        case HVMOP_set_evtchn_upcall_vector:
            return "HVMOP_set_evtchn_upcall_vector";
        default:
            return "HVMOP_other";
    }
}

const char* memop_name(unsigned cmd) {
    return cmd == XENMEM_add_to_physmap ? "XENMEM_add_to_physmap" : "XENMEM_other";
}
const char* xenver_name(unsigned cmd) {
    switch (cmd) {
        case XENVER_version:
            return "XENVER_version";
        case XENVER_get_features:
            return "XENVER_get_features";
        default:
            return "XENVER_other";
    }
}
const char* vcpuop_name(unsigned cmd) {
    switch (cmd) {
        case VCPUOP_is_up:
            return "VCPUOP_is_up";
        case VCPUOP_set_singleshot_timer:
            return "VCPUOP_set_singleshot_timer";
        case VCPUOP_stop_singleshot_timer:
            return "VCPUOP_stop_singleshot_timer";
        default:
            return "VCPUOP_other";
    }
}
const char* callbackop_name(unsigned cmd) {
    return cmd == CALLBACKOP_register ? "CALLBACKOP_register" : "CALLBACKOP_other";
}

// dm_op's sub-operation is inside its buffer, not an argument: the counter says "dm_op".
const char* dmop_name(unsigned) { return "XEN_DMOP"; }

}  // namespace

struct Hypervisor::HypercallEntry {
    unsigned number;
    const char* name;
    const char* (*sub_op)(unsigned cmd);
    long (Hypervisor::*handler)(Vcpu&, const HypercallArgs&);
    bool hvm_allowed;  // present in Xen's hvm_hypercall_table
};

// The hypercall table (xen/arch/x86/hypercall.c and hvm/hypercall.c): number, name, sub-op
// names, handler. Checks common to all (existence, HVM permission) are made once in hypercall().
const Hypervisor::HypercallEntry* Hypervisor::find_hypercall(unsigned op) {
    static const HypercallEntry table[] = {
        {__HYPERVISOR_memory_op, "memory_op", memop_name, &Hypervisor::do_memory_op, true},
        {__HYPERVISOR_xen_version, "xen_version", xenver_name, &Hypervisor::do_xen_version, true},
        {__HYPERVISOR_grant_table_op, "grant_table_op", gnttabop_name, &Hypervisor::do_grant_table_op, true},
        {__HYPERVISOR_vcpu_op, "vcpu_op", vcpuop_name, &Hypervisor::do_vcpu_op, true},
        {__HYPERVISOR_sched_op, "sched_op", schedop_name, &Hypervisor::do_sched_op, true},
        {__HYPERVISOR_callback_op, "callback_op", callbackop_name, &Hypervisor::do_callback_op, false},
        {__HYPERVISOR_event_channel_op, "event_channel_op", evtchnop_name, &Hypervisor::do_event_channel_op,
         true},
        {__HYPERVISOR_hvm_op, "hvm_op", hvmop_name, &Hypervisor::do_hvm_op, true},
        {__HYPERVISOR_dm_op, "dm_op", dmop_name, &Hypervisor::do_dm_op, true},
    };
    for (const auto& e : table)
        if (e.number == op) return &e;
    return nullptr;
}

Hypervisor::Stats::Stats(StatsGroup& g)
    : hypercalls(g, "hypercalls", "calls", "hypercalls by op/sub-op, all domains"),
      hypercall_errors(g, "hypercall_errors", "calls", "hypercalls that returned an error, by op/errno"),
      ipis_sent(g, "ipis_sent", "interrupts", "IPIs sent to deliver events or wake pCPUs"),
      device_irqs(g, "device_irqs", "interrupts", "device interrupts raised as PIRQs"),
      ioreqs(g, "ioreqs", "ioreqs", "guest accesses forwarded to a device model (hvm_send_ioreq)"),
      isa_irqs(g, "isa_irqs", "interrupts", "ISA interrupt edges injected into HVM guests"),
      pci_config_cycles(g, "pci_config_cycles", "accesses",
                        "guest accesses to 0xCFC-0xCFF with the CF8 latch enabled (PCI config cycles)"),
      buffered_ioreqs(g, "buffered_ioreqs", "ioreqs",
                      "guest writes queued on a device model's buffered ioreq page (no vCPU wait)"),
      buffered_full(g, "buffered_full", "ioreqs",
                    "bufferable writes sent synchronously because the buffered page was full") {}

Hypervisor::Hypervisor(sc_core::sc_module_name name, const HypervisorParams& params, const CostModel& cost,
                       const Clock& clock, Tracer& tracer, StatsGroup& root)
    : sc_module(name),
      params_(params),
      cost_(cost),
      clock_(clock),
      tracer_(tracer),
      root_(root),
      group_("xen", &root),
      stats(group_),
      gnttab_group_("gnttab", &group_),
      evtchn_group_("evtchn", &group_) {
    scheduler_ = std::make_unique<Scheduler>(params.pcpus, params.scheduler, cost_, clock_, tracer_, group_);
    grant_table_ = std::make_unique<GrantTable>(domains_, gnttab_group_, params.grant_table);
    event_channels_ = std::make_unique<EventChannels>(domains_, evtchn_group_,
                                                      [this](DomId d, unsigned v) { on_upcall_kick(d, v); });
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.dont_initialize();
    o.set_sensitivity(&device_irq_ev_);
    sc_core::sc_spawn([this] { fire_device_irqs(); }, "device_irqs", &o);
    sc_core::sc_spawn_options t;
    t.spawn_method();
    t.dont_initialize();
    t.set_sensitivity(&vcpu_timer_ev_);
    sc_core::sc_spawn([this] { fire_vcpu_timers(); }, "vcpu_timers", &t);
    sc_core::sc_spawn_options w;
    w.spawn_method();
    w.dont_initialize();
    w.set_sensitivity(&wakeup_ev_);
    sc_core::sc_spawn([this] { fire_wakeups(); }, "vcpu_wakeups", &w);
}

Hypervisor::~Hypervisor() = default;

void Hypervisor::defer_wake(Vcpu& v) {
    if (deferred_.empty()) sim_time::notify(wakeup_ev_, sc_core::SC_ZERO_TIME);
    deferred_.push_back(v.index_);
}

void Hypervisor::fire_wakeups() {
    // The waits that ended together at this picosecond (each deferred itself by one delta): their
    // vCPUs go on in creation order, one canonical order whatever SystemC's event queue made of
    // their timeouts, so that no report depends on the queue's history.
    std::sort(deferred_.begin(), deferred_.end());
    for (unsigned index : deferred_) sim_time::notify(vcpu_storage_[index]->timer_ev_, sc_core::SC_ZERO_TIME);
    deferred_.clear();
}

std::uint64_t Hypervisor::horizon_ps() const {
    // Asking SystemC walks its queues: the answer is kept for the rest of this process
    // activation, until something this code does may move it (sim_time::activity_changed).
    const HorizonKey key{simc_->time_stamp().value(), simc_->delta_count(), sim_time::activity_epoch,
                         simc_->get_curr_proc_info()->process_handle};
    if (key == horizon_key_) {
        const std::uint64_t kept = std::min(horizon_kept_, sim_time::earliest_notified_ps);
#ifndef NDEBUG
        if (pending_activity_ps() != kept)
            throw std::logic_error("the kept horizon is stale: a notification bypassed sim_time::notify");
#endif
        return kept;
    }
    horizon_key_ = key;
    horizon_kept_ = pending_activity_ps();
    sim_time::earliest_notified_ps = ~std::uint64_t{0};
    return horizon_kept_;
}

std::uint64_t Hypervisor::pending_activity_ps() const {
    const std::uint64_t now = simc_->time_stamp().value();  // SystemC's, not a run-ahead's
    // Zero when something is pending at the current time (runnable processes, delta notifications).
    const std::uint64_t until = sc_core::sc_time_to_pending_activity().value();
    const std::uint64_t next = until > ~std::uint64_t{0} - now ? ~std::uint64_t{0} : now + until;
    return std::min(next, stop_ps_);
}

const std::vector<PhysicalCpu*>* Hypervisor::claim_early_switches(std::uint64_t at_ps, bool to_parked_vcpu) {
    // The switches ending at `at_ps` may complete early when they are the next activity anywhere:
    // withdrawn from SystemC, nothing else may be pending until then (a tie leaves them to SystemC).
    if (at_ps <= simc_->time_stamp().value()) return nullptr;
    const std::vector<PhysicalCpu*>& early = scheduler_->early_switches(at_ps, to_parked_vcpu);
    if (early.empty()) return nullptr;
    scheduler_->withdraw_switches(early);
    if (horizon_ps() <= at_ps) {
        scheduler_->restore_switches(early);
        return nullptr;
    }
    return &early;
}

bool Hypervisor::before_horizon(std::uint64_t end_ps) {
    // A horizon that is a switch to idle with nothing queued is completed on the way.
    for (std::uint64_t at = horizon_ps(); end_ps >= at; at = horizon_ps()) {
        const std::vector<PhysicalCpu*>* early = claim_early_switches(at, false);
        if (!early) return false;
        for (PhysicalCpu* p : *early) scheduler_->complete_switch(*p, at);
        fast_path_counts_.idle_switch += early->size();
    }
    return true;
}

DomainRecord& Hypervisor::create_domain(const DomainSpec& spec) {
    if (domains_.find(spec.id)) throw std::logic_error("domain id created twice");
    DomainRecord& rec = domains_.add(spec.id, spec.name, spec.id == 0, spec.vcpus, spec.memory_pages);
    domain_groups_.push_back(std::make_unique<StatsGroup>("dom" + std::to_string(spec.id), &root_));
    StatsGroup& dg = *domain_groups_.back();
    domain_group_by_id_[spec.id] = &dg;
    auto& list = vcpus_[spec.id];
    for (unsigned i = 0; i < spec.vcpus; ++i) {
        std::string n = "d" + std::to_string(spec.id) + "v" + std::to_string(i);
        vcpu_storage_.push_back(std::make_unique<Vcpu>(n.c_str(), *this, rec, spec.type, i, dg));
        Vcpu& v = *vcpu_storage_.back();
        v.index_ = static_cast<unsigned>(vcpu_storage_.size() - 1);
        // Every vCPU carries the domain's weight: credit1 adds sdom->weight to the total once per
        // active unit (__csched_unit_acct_start, xen/common/sched/credit.c).
        scheduler_->add_vcpu(v, spec.affinity, spec.weight);
        if (spec.type == DomainType::pv) v.set_upcall_mode(UpcallMode::none, 0);
        list.push_back(&v);
    }
    return rec;
}

Vcpu& Hypervisor::vcpu(DomId dom, unsigned id) { return *vcpus_.at(dom).at(id); }
const std::vector<Vcpu*>& Hypervisor::vcpus(DomId dom) { return vcpus_.at(dom); }

void Hypervisor::start() {
    for (auto& v : vcpu_storage_) scheduler_->wake(*v, -1);
}

const Hypervisor::IoreqServer& Hypervisor::create_ioreq_server(
    DomId guest, DomId dm, std::vector<std::pair<std::uint16_t, std::uint16_t>> port_ranges) {
    if (ioreq_servers_.count(guest)) throw std::logic_error("one ioreq server per guest");
    DomainRecord* dmrec = domains_.find(dm);
    if (!dmrec || !domains_.find(guest)) throw std::logic_error("ioreq server for an unknown domain");
    auto page = std::make_unique<XenPage>();
    auto gfn = dmrec->memory.take_unpopulated_frame();
    if (!gfn || !dmrec->memory.map_xen_page(*gfn, page.get()))
        throw std::runtime_error("device model domain has no frame for the ioreq page");
    IoreqServer srv;
    srv.guest = guest;
    srv.dm = dm;
    srv.dm_gfn = *gfn;
    srv.port_ranges = std::move(port_ranges);
    for (Vcpu* v : vcpus(guest)) {
        long port = event_channels_->alloc_xen_channel(guest, v->id(), dm, [this, guest](unsigned vcpu_id) {
            // The device model answered: wake the waiting vCPU (hvm_ioreq's notification handler).
            Vcpu& gv = vcpu(guest, vcpu_id);
            if (gv.state() == VcpuState::blocked) gv.kick(current_ ? current_->pcpu() : -1);
        });
        if (port < 0) throw std::runtime_error("no event channel for the ioreq server");
        srv.guest_ports.push_back(static_cast<evtchn_port_t>(port));
    }
    // The buffered page and its channel (bound to vCPU 0, as ioreq_server_alloc_rangesets /
    // hvm_ioreq_server_setup_bufioreq allocate it).
    auto bufpage = std::make_unique<XenPage>();
    auto bufgfn = dmrec->memory.take_unpopulated_frame();
    if (!bufgfn || !dmrec->memory.map_xen_page(*bufgfn, bufpage.get()))
        throw std::runtime_error("device model domain has no frame for the buffered ioreq page");
    srv.dm_buf_gfn = *bufgfn;
    long bport = event_channels_->alloc_xen_channel(guest, 0, dm, [](unsigned) {});
    if (bport < 0) throw std::runtime_error("no event channel for the buffered ioreq page");
    srv.bufioreq_port = static_cast<evtchn_port_t>(bport);
    ioreq_pages_[guest] = std::move(page);
    bufioreq_pages_[guest] = std::move(bufpage);
    return ioreq_servers_[guest] = srv;
}

void Hypervisor::map_mmio_range(DomId guest, std::uint64_t first, std::uint64_t last) {
    ioreq_servers_.at(guest).mmio_ranges.push_back({first, last});
}

bool Hypervisor::ioreq_claims_mmio(DomId guest, std::uint64_t gpa) const {
    auto it = ioreq_servers_.find(guest);
    if (it == ioreq_servers_.end()) return false;
    for (const auto& [lo, hi] : it->second.mmio_ranges)
        if (gpa >= lo && gpa <= hi) return true;
    return false;
}

bool Hypervisor::stdvga_accepts(DomId guest, std::uint64_t gpa, unsigned size) const {
    constexpr std::uint64_t kVgaMemBase = 0xa0000, kVgaMemSize = 0x20000;  // stdvga.c VGA_MEM_*
    return stdvga_.count(guest) && size >= 1 && gpa >= kVgaMemBase && gpa + size <= kVgaMemBase + kVgaMemSize;
}

bool Hypervisor::send_buffered_ioreq(Vcpu& v, std::uint8_t type, std::uint64_t addr, unsigned size,
                                     std::uint64_t data) {
    v.settle();  // the device model may be draining this page on another pCPU
    const DomId guest = v.domain().id;
    const IoreqServer& srv = ioreq_servers_.at(guest);
    auto* pg = reinterpret_cast<buffered_iopage_t*>(bufioreq_pages_.at(guest)->bytes);
    unsigned size_code;
    switch (size) {
        case 1:
            size_code = 0;
            break;
        case 2:
            size_code = 1;
            break;
        case 4:
            size_code = 2;
            break;
        case 8:
            size_code = 3;
            break;
        default:
            return false;
    }
    if (addr > 0xfffff) return false;  // buf_ioreq_t.addr is 20 bits
    const unsigned slots = size == 8 ? 2 : 1;
    if (pg->write_pointer - pg->read_pointer > IOREQ_BUFFER_SLOT_NUM - slots) {
        stats.buffered_full.inc();
        return false;
    }
    buf_ioreq_t bp{};
    bp.type = type;
    bp.dir = IOREQ_WRITE;
    bp.size = size_code;
    bp.addr = static_cast<std::uint32_t>(addr);
    bp.data = static_cast<std::uint32_t>(data);
    pg->buf_ioreq[pg->write_pointer % IOREQ_BUFFER_SLOT_NUM] = bp;
    if (slots == 2) {
        bp.data = static_cast<std::uint32_t>(data >> 32);
        pg->buf_ioreq[(pg->write_pointer + 1) % IOREQ_BUFFER_SLOT_NUM] = bp;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);  // the slots before the write pointer
    pg->write_pointer += slots;
    // HVM_IOREQSRV_BUFIOREQ_ATOMIC: both pointers are brought back below the slot count together.
    if (pg->read_pointer >= IOREQ_BUFFER_SLOT_NUM) {
        pg->read_pointer -= IOREQ_BUFFER_SLOT_NUM;
        pg->write_pointer -= IOREQ_BUFFER_SLOT_NUM;
    }
    stats.buffered_ioreqs.inc();
    if (tracer_.on(TraceCategory::ioreq))
        tracer_.emit(trace_events::ioreq_buffered, TraceTrack::vcpu(guest, v.id()), sim_time::now_ps(), 0,
                     {ioreq_type_name(type), std::string_view(hex_string(addr)), std::uint64_t{size}, data});
    v.hypervisor_work(cost_.ioreq_buffered);
    event_channels_->notify_via_xen(guest, srv.bufioreq_port);
    return true;
}

void Hypervisor::set_isa_irq_level(DomId guest, unsigned isa_irq, bool level) {
    bool& line = isa_levels_[{guest, isa_irq}];
    const bool rising = level && !line;
    line = level;
    if (!rising) return;
    stats.isa_irqs.inc();
    Vcpu& v0 = vcpu(guest, 0);
    if (v0.inject_irq(static_cast<std::uint8_t>(kIsaVectorBase + isa_irq), current_ ? current_->pcpu() : -1))
        stats.ipis_sent.inc();
}

long Hypervisor::do_dm_op(Vcpu& v, const HypercallArgs& a) {
    // HYPERVISOR_dm_op(domid, nr_bufs, bufs): the first buffer holds the struct xen_dm_op.
    if (!v.domain().privileged) return -XEN_EPERM;  // the device model runs in dom0
    const auto domid = static_cast<DomId>(a[0]);
    auto* bufs = reinterpret_cast<xen_dm_op_buf_t*>(a[2]);
    if (a[1] < 1 || !bufs || !bufs[0].h.p || bufs[0].size < sizeof(xen_dm_op)) return -XEN_EFAULT;
    if (!domains_.find(domid) || domid == 0) return -XEN_ESRCH;
    auto* op = static_cast<xen_dm_op*>(bufs[0].h.p);
    switch (op->op) {
        case XEN_DMOP_set_isa_irq_level: {
            const auto& l = op->u.set_isa_irq_level;
            if (l.isa_irq > 15 || l.level > 1) return -XEN_EINVAL;
            if (tracer_.on(TraceCategory::ioreq))
                tracer_.emit(trace_events::isa_irq, TraceTrack::vcpu(v.domain().id, v.id()), v.now_ps(), 0,
                             {std::uint64_t{domid}, std::uint64_t{l.isa_irq}, std::uint64_t{l.level}});
            set_isa_irq_level(domid, l.isa_irq, l.level != 0);
            return 0;
        }
        default:
            return -XEN_EOPNOTSUPP;  // the other device-model operations are not modelled
    }
}

bool Hypervisor::ioreq_claims_port(DomId guest, std::uint16_t port) const {
    auto it = ioreq_servers_.find(guest);
    return it != ioreq_servers_.end() && it->second.claims_ports(port, 1);
}

void Hypervisor::map_pcidev_to_ioreq_server(DomId guest, std::uint32_t sbdf) {
    ioreq_servers_.at(guest).pci_sbdfs.push_back(sbdf);
}

std::uint32_t Hypervisor::pci_cf8(DomId guest) const {
    auto it = pci_cf8_.find(guest);
    return it == pci_cf8_.end() ? 0 : it->second;
}

std::optional<std::uint64_t> Hypervisor::emulate_pio(Vcpu& v, std::uint16_t port, unsigned size, bool read,
                                                     std::uint32_t value) {
    const DomId guest = v.domain().id;
    const std::uint32_t cf8 = pci_cf8_after(pci_cf8(guest), port, size, !read, value);
    pci_cf8_[guest] = cf8;
    auto it = ioreq_servers_.find(guest);
    const IoreqRanges* server = it == ioreq_servers_.end() ? nullptr : &it->second;
    if ((port & ~3u) == kPciCfc && (cf8 & kPciCf8Enabled)) stats.pci_config_cycles.inc();
    const PioRoute route = route_pio(cf8, port, size, server);
    switch (route.kind) {
        case PioRoute::Kind::pci_config:
            return send_ioreq(v, IOREQ_TYPE_PCI_CONFIG, route.addr, size, 1, read, value);
        case PioRoute::Kind::pio:
            return send_ioreq(v, IOREQ_TYPE_PIO, route.addr, size, 1, read, value);
        case PioRoute::Kind::unclaimed:
            break;
    }
    return std::nullopt;
}

std::uint64_t Hypervisor::send_ioreq(Vcpu& v, std::uint8_t type, std::uint64_t addr, unsigned size,
                                     std::uint32_t count, bool read, std::uint64_t data, bool data_is_ptr) {
    const DomId guest = v.domain().id;
    const IoreqServer& srv = ioreq_servers_.at(guest);
    auto* iopage = reinterpret_cast<shared_iopage_t*>(ioreq_pages_.at(guest)->bytes);
    ioreq_t* p = &iopage->vcpu_ioreq[v.id()];
    const std::uint64_t start_ps = v.now_ps();
    // Xen's share of the round trip (decode, the request written, the notification, resuming the
    // vCPU), charged together with the exit's own cost before the request becomes visible.
    v.hypervisor_work(cost_.ioreq_roundtrip);
    p->addr = addr;
    p->data = data;
    p->count = count;
    p->size = size;
    p->vp_eport = srv.guest_ports.at(v.id());
    p->dir = read ? IOREQ_READ : IOREQ_WRITE;
    p->df = 0;
    p->data_is_ptr = data_is_ptr ? 1 : 0;
    p->type = type;
    __atomic_thread_fence(__ATOMIC_RELEASE);  // the request before its state
    p->state = STATE_IOREQ_READY;
    stats.ioreqs.inc();
    event_channels_->notify_via_xen(guest, p->vp_eport);
    v.wait_in_hypervisor([p] { return p->state == STATE_IORESP_READY; });
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    const std::uint64_t result = p->data;
    p->state = STATE_IOREQ_NONE;
    if (tracer_.on(TraceCategory::ioreq))
        tracer_.emit(trace_events::ioreq, TraceTrack::vcpu(guest, v.id()), start_ps, v.now_ps() - start_ps,
                     {ioreq_type_name(type), std::string_view(hex_string(addr)), std::uint64_t{size},
                      read ? "read" : "write", std::uint64_t{count},
                      data_is_ptr ? std::uint64_t{0}
                      : read      ? result
                                  : data});
    return result;
}

evtchn_port_t Hypervisor::toolstack_alloc_unbound(DomId dom, DomId remote) {
    evtchn_alloc_unbound_t op{};
    op.dom = dom;
    op.remote_dom = remote;
    long r = event_channels_->hypercall(0, EVTCHNOP_alloc_unbound, &op);
    if (r)
        throw std::runtime_error("toolstack could not allocate an event channel: " +
                                 std::string(xen_errno_name(r)));
    return op.port;
}

// Keyed by the names, not by the guest's raw numbers: every sub-op without a name of its own
// shares its op's "<PREFIX>_unknown"/"_other" entry, and hypercall numbers from 64 up (beyond Xen's
// x86 hypercall table, NR_hypercalls; all ENOSYS) share "unknown", so a guest cannot grow this
// cache or the counters' label sets by choosing numbers.
Hypervisor::HypercallNames& Hypervisor::names_for(unsigned op, unsigned long cmd) {
    static_assert(std::tuple_size<decltype(last_names_)>::value == kUnknownHypercallLabels);
    LastNames* last = op < kUnknownHypercallLabels ? &last_names_[op] : nullptr;
    if (last && last->names && last->cmd == cmd) return *last->names;  // (op, cmd) -> names is fixed
    HypercallNames& names = resolve_names(op, cmd);
    if (last) *last = {cmd, &names};  // map nodes are never erased: the pointer stays valid
    return names;
}

Hypervisor::HypercallNames& Hypervisor::resolve_names(unsigned op, unsigned long cmd) {
    const HypercallEntry* e = find_hypercall(op);
    const char* sub = e ? e->sub_op(static_cast<unsigned>(cmd)) : nullptr;
    auto key = std::make_pair(e || op < kUnknownHypercallLabels ? op : kUnknownHypercallLabels, sub);
    auto it = names_.find(key);
    if (it != names_.end()) return it->second;
    std::string name = e                              ? std::string(e->name) + "/" + sub
                       : op < kUnknownHypercallLabels ? "unknown_" + std::to_string(op)
                                                      : "unknown";
    Cycles op_cost = e ? cost_.hypercall_op_cost(e->name) : 0;
    const auto index = static_cast<unsigned>(names_.size());
    return names_.emplace(key, HypercallNames{name, "hypercall:" + name, op_cost, index}).first->second;
}

void Hypervisor::raise_pirq_at(DomId dom, unsigned pirq, std::uint64_t at_ps) {
    sim_time::sync();  // schedules relative to SystemC time
    std::uint64_t now = sc_core::sc_time_stamp().value();
    device_irqs_.push({std::max(at_ps, now), device_irq_seq_++, dom, pirq});
    sim_time::notify(device_irq_ev_, sc_core::sc_time::from_value(device_irqs_.top().at_ps - now));
}

void Hypervisor::fire_device_irqs() {
    std::uint64_t now = sc_core::sc_time_stamp().value();
    while (!device_irqs_.empty() && device_irqs_.top().at_ps <= now) {
        DeviceIrq irq = device_irqs_.top();
        device_irqs_.pop();
        stats.device_irqs.inc();
        current_ = nullptr;  // raised by a device, not by a vCPU's hypercall
        event_channels_->send_pirq(irq.dom, irq.pirq);
    }
    if (!device_irqs_.empty())
        sim_time::notify(device_irq_ev_, sc_core::sc_time::from_value(device_irqs_.top().at_ps - now));
}

void Hypervisor::toolstack_set_hvm_param(DomId dom, unsigned index, std::uint64_t value) {
    if (index >= HVM_NR_PARAMS) throw std::logic_error("HVM parameter index out of range");
    hvm_params_[dom][index] = value;
}

long Hypervisor::hypercall(Vcpu& v, unsigned op, const HypercallArgs& args) {
    const HypercallEntry* e = find_hypercall(op);
    HypercallNames& names = names_for(op, args[0]);
    const std::string& name = names.name;
    const std::string& cause = names.cause;
    long result = 0;
    auto body = [&] {
        std::uint64_t t0 = v.now_ps();
        ++v.hypercall_counter(names.index, name);  // counter handles: no label lookup per call
        if (!names.count) names.count = &stats.hypercalls.at(name);
        ++*names.count;
        if (!e || (v.type() == DomainType::hvm && !e->hvm_allowed)) {
            result = -XEN_ENOSYS;
        } else {
            v.hypervisor_work(names.op_cost);
            Vcpu* saved = current_;
            current_ = &v;
            result = (this->*(e->handler))(v, args);
            current_ = saved;
        }
        if (result < 0) stats.hypercall_errors.inc(name + ":" + xen_errno_name(result));  // rare path
        if (tracer_.on(TraceCategory::hypercall))
            tracer_.emit(trace_events::hypercall, TraceTrack::vcpu(v.domain().id, v.id()), t0,
                         v.now_ps() - t0,
                         {std::string_view(e ? e->name : "unknown"),
                          std::string_view(e ? e->sub_op(static_cast<unsigned>(args[0])) : "unknown"),
                          std::int64_t(result)});
    };
    if (v.type() == DomainType::pv)
        v.pv_trap(cause, body);
    else
        v.vmexit(ExitReason::VMCALL, cause, body);
    return result;
}

void Hypervisor::on_upcall_kick(DomId dom, unsigned vcpu) {
    auto it = vcpus_.find(dom);
    if (it == vcpus_.end() || vcpu >= it->second.size()) return;
    int from = current_ ? current_->pcpu() : -1;
    if (it->second[vcpu]->kick(from)) {
        stats.ipis_sent.inc();
        ++pending_ipis_;
    }
}

long Hypervisor::do_event_channel_op(Vcpu& v, const HypercallArgs& a) {
    unsigned cmd = static_cast<unsigned>(a[0]);
    pending_ipis_ = 0;
    long r = event_channels_->hypercall(v.domain().id, cmd, reinterpret_cast<void*>(a[1]));
    if (cmd == EVTCHNOP_send && r == 0 && a[1] && tracer_.on(TraceCategory::evtchn)) {
        const auto& s = event_channels_->last_send();
        static const char* outcomes[] = {"kicked",  "already_pending", "masked", "upcall_already_pending",
                                         "dropped", "to_xen"};
        tracer_.emit(
            trace_events::evtchn_send, TraceTrack::vcpu(v.domain().id, v.id()), v.now_ps(), 0,
            {std::uint64_t(reinterpret_cast<evtchn_send_t*>(a[1])->port), std::uint64_t(s.target_dom),
             std::uint64_t(s.target_port), std::string_view(outcomes[s.outcome])});
    }
    v.hypervisor_work(pending_ipis_ * cost_.ipi_send);
    pending_ipis_ = 0;
    return r;
}

long Hypervisor::do_grant_table_op(Vcpu& v, const HypercallArgs& a) {
    unsigned cmd = static_cast<unsigned>(a[0]);
    GrantWork work;
    long r = grant_table_->hypercall(v.domain().id, cmd, reinterpret_cast<void*>(a[1]),
                                     static_cast<unsigned>(a[2]), work);
    Cycles c = work.maps * cost_.grant_map_per_page + work.unmaps * cost_.grant_unmap_per_page +
               work.tlb_flushes * cost_.tlb_flush + work.copies * cost_.grant_copy_per_page +
               cost_.copy_cost(work.bytes_copied);
    v.hypervisor_work(c);
    if (tracer_.on(TraceCategory::gnttab))
        tracer_.emit(
            trace_events::gnttab_op, TraceTrack::vcpu(v.domain().id, v.id()), v.now_ps(), 0,
            {std::string_view(gnttabop_name(cmd)), std::uint64_t(a[2]), std::uint64_t(work.maps),
             std::uint64_t(work.unmaps), std::uint64_t(work.copies), std::uint64_t(work.bytes_copied)});
    return r;
}

long Hypervisor::do_sched_op(Vcpu& v, const HypercallArgs& a) {
    switch (a[0]) {
        case SCHEDOP_yield:
            v.preempt_requested_ = true;  // honoured at the VM entry that ends this hypercall
            return 0;
        case SCHEDOP_block:
            // Blocking re-enables event delivery (a PV guest's idle path, xen/common/sched/core.c).
            v.domain().vcpu_info(v.id()).evtchn_upcall_mask = 0;
            v.block_until_event();
            return 0;
        case SCHEDOP_shutdown:
            return 0;
        default:
            return -XEN_ENOSYS;
    }
}

long Hypervisor::do_hvm_op(Vcpu& v, const HypercallArgs& a) {
    if (v.type() == DomainType::pv) return -XEN_EINVAL;
    switch (a[0]) {
        case HVMOP_set_param: {
            auto* p = reinterpret_cast<xen_hvm_param_t*>(a[1]);
            if (!p) return -XEN_EFAULT;
            if (p->domid != DOMID_SELF && p->domid != v.domain().id) return -XEN_EPERM;
            if (p->index != HVM_PARAM_CALLBACK_IRQ) return -XEN_EINVAL;
            unsigned type = static_cast<unsigned>(p->value >> 56);
            if (type != HVM_PARAM_CALLBACK_TYPE_VECTOR) return -XEN_EOPNOTSUPP;
            auto vector = static_cast<std::uint8_t>(p->value & 0xff);
            if (vector < 0x10) return -XEN_EINVAL;
            for (Vcpu* w : vcpus_.at(v.domain().id)) w->set_upcall_mode(UpcallMode::callback_vector, vector);
            return 0;
        }
        case HVMOP_get_param: {
            auto* p = reinterpret_cast<xen_hvm_param_t*>(a[1]);
            if (!p) return -XEN_EFAULT;
            if (p->domid != DOMID_SELF && p->domid != v.domain().id) return -XEN_EPERM;
            if (p->index >= HVM_NR_PARAMS) return -XEN_EINVAL;
            switch (p->index) {  // hvm_allow_get_param: what a guest may read about itself
                case HVM_PARAM_CALLBACK_IRQ:
                    p->value = v.upcall_mode() == UpcallMode::callback_vector
                                   ? (std::uint64_t(HVM_PARAM_CALLBACK_TYPE_VECTOR) << 56) | v.upcall_vector_
                                   : 0;
                    return 0;
                case HVM_PARAM_STORE_PFN:
                case HVM_PARAM_STORE_EVTCHN:
                case HVM_PARAM_CONSOLE_PFN:
                case HVM_PARAM_CONSOLE_EVTCHN:
                    p->value = hvm_params_[v.domain().id][p->index];
                    return 0;
                default:
                    return -XEN_EPERM;
            }
        }
        case HVMOP_set_evtchn_upcall_vector: {
            auto* p = reinterpret_cast<xen_hvm_evtchn_upcall_vector_t*>(a[1]);
            if (!p) return -XEN_EFAULT;
            auto& list = vcpus_.at(v.domain().id);
            if (p->vcpu >= list.size()) return -XEN_ENOENT;
            if (p->vector < 0x10) return -XEN_EINVAL;
            list[p->vcpu]->set_upcall_mode(UpcallMode::percpu_vector, p->vector);
            return 0;
        }
        default:
            return -XEN_ENOSYS;
    }
}

long Hypervisor::do_memory_op(Vcpu& v, const HypercallArgs& a) {
    if (a[0] != XENMEM_add_to_physmap) return -XEN_ENOSYS;
    auto* x = reinterpret_cast<xen_add_to_physmap_t*>(a[1]);
    if (!x) return -XEN_EFAULT;
    if (x->domid != DOMID_SELF && x->domid != v.domain().id) return -XEN_EPERM;
    switch (x->space) {
        case XENMAPSPACE_shared_info:
            if (x->idx != 0) return -XEN_EINVAL;
            return v.domain().map_shared_info(x->gpfn);
        case XENMAPSPACE_grant_table:
            return grant_table_->add_to_physmap(v.domain().id, static_cast<unsigned>(x->idx), x->gpfn);
        default:
            return -XEN_EOPNOTSUPP;
    }
}

long Hypervisor::do_xen_version(Vcpu& v, const HypercallArgs& a) {
    switch (a[0]) {
        case XENVER_version:
            return (4 << 16) | 17;  // the ABI of the libxen-dev headers we build against
        case XENVER_get_features: {
            auto* f = reinterpret_cast<xen_feature_info_t*>(a[1]);
            if (!f) return -XEN_EFAULT;
            if (f->submap_idx != 0) return -XEN_EINVAL;
            f->submap = (1u << XENFEAT_hvm_callback_vector) | (1u << XENFEAT_hvm_safe_pvclock);
            return 0;
        }
        default:
            return -XEN_ENOSYS;
    }
}

long Hypervisor::do_vcpu_op(Vcpu& v, const HypercallArgs& a) {
    const DomId dom = v.domain().id;
    if (a[1] >= vcpus_.at(dom).size()) return -XEN_ENOENT;
    switch (a[0]) {
        case VCPUOP_is_up:
            return 1;
        case VCPUOP_set_singleshot_timer: {
            // do_vcpu_op: only the calling vCPU's own timer ("if ( v != current ) return -EINVAL").
            if (a[1] != v.id()) return -XEN_EINVAL;
            const auto* t = reinterpret_cast<const vcpu_set_singleshot_timer_t*>(a[2]);
            if (!t) return -XEN_EFAULT;
            const vcpu_set_singleshot_timer_t copy = *t;  // copied once
            sim_time::sync();                             // schedules relative to SystemC time
            const std::uint64_t now_ps = sc_core::sc_time_stamp().value();
            const std::uint64_t now_ns = now_ps / 1000;
            // VCPU_SSHOTTMR_future: a timeout already in the past is refused with -ETIME.
            if ((copy.flags & VCPU_SSHOTTMR_future) && copy.timeout_abs_ns < now_ns) return -XEN_ETIME;
            const std::uint64_t gen = ++vcpu_timer_seq_;
            vcpu_timer_armed_[{dom, v.id()}] = gen;
            const std::uint64_t at_ps = std::max(now_ps, copy.timeout_abs_ns * 1000);
            vcpu_timers_.push({at_ps, gen, dom, v.id(), gen});
            sim_time::notify(vcpu_timer_ev_, sc_core::sc_time::from_value(vcpu_timers_.top().at_ps - now_ps));
            return 0;
        }
        case VCPUOP_stop_singleshot_timer:
            if (a[1] != v.id()) return -XEN_EINVAL;
            vcpu_timer_armed_[{dom, v.id()}] = 0;
            return 0;
        default:
            return -XEN_ENOSYS;
    }
}

void Hypervisor::fire_vcpu_timers() {
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    while (!vcpu_timers_.empty() && vcpu_timers_.top().at_ps <= now) {
        const VcpuTimer t = vcpu_timers_.top();
        vcpu_timers_.pop();
        auto it = vcpu_timer_armed_.find({t.dom, t.vcpu});
        if (it == vcpu_timer_armed_.end() || it->second != t.generation) continue;  // re-armed or stopped
        it->second = 0;
        current_ = nullptr;  // raised by Xen's timer, not by a vCPU's hypercall
        event_channels_->send_virq(t.dom, t.vcpu, VIRQ_TIMER);
    }
    if (!vcpu_timers_.empty())
        sim_time::notify(vcpu_timer_ev_, sc_core::sc_time::from_value(vcpu_timers_.top().at_ps - now));
}

long Hypervisor::do_callback_op(Vcpu& v, const HypercallArgs& a) {
    if (a[0] != CALLBACKOP_register) return -XEN_ENOSYS;
    auto* cb = reinterpret_cast<callback_register_t*>(a[1]);
    if (!cb) return -XEN_EFAULT;
    if (cb->type != CALLBACKTYPE_event) return -XEN_EOPNOTSUPP;
    for (Vcpu* w : vcpus_.at(v.domain().id)) w->set_upcall_mode(UpcallMode::pv_callback, 0);
    return 0;
}

}  // namespace xensim
