// Event-channel ping-pong through the whole platform: counts derived by hand from the protocol.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json pingpong(std::uint64_t n, const std::string& responder_type = "hvm") {
    json domains = json::array({{{"name", "dom0"}, {"type", "pv"}}, {{"name", "ping"}}});
    if (responder_type == "dom0")
        ;  // dom0 answers
    else
        domains.push_back({{"name", "pong"}});
    return {{"name", "pingpong"},
            {"platform", {{"pcpus", 4}}},
            {"domains", domains},
            {"workloads", json::array({{{"type", "evtchn_pingpong"},
                                        {"name", "pp"},
                                        {"initiator", "ping"},
                                        {"responder", responder_type == "dom0" ? "dom0" : "pong"},
                                        {"round_trips", n}}})}};
}

// Boot of an HVM guest in XenGuest::boot: XENMEM_add_to_physmap for shared_info and one grant
// frame, HVMOP_set_param(HVM_PARAM_CALLBACK_IRQ): three hypercalls.
constexpr std::uint64_t kHvmBootHypercalls = 3;
// Before those, PVHVM discovery: CPUID 0x40000000, 0x40000001, 0x40000002, and the WRMSR that
// installs the hypercall page.
constexpr std::uint64_t kHvmBootCpuidExits = 3;
constexpr std::uint64_t kHvmBootMsrExits = 1;
// The initiator's bind: EVTCHNOP_bind_interdomain leaves the new port pending (Xen's
// evtchn_bind_interdomain), so Linux's evtchn_2l_unmask in an HVM guest re-masks it and makes
// EVTCHNOP_unmask: two hypercalls.
constexpr std::uint64_t kHvmBindHypercalls = 2;

TEST(EvtchnPingPong, ExactCountsBetweenTwoHvmGuests) {
    const std::uint64_t n = 250;
    Simulation sim(pingpong(n));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& ping = sim.domain("ping");
    const json& pong = sim.domain("pong");
    // N round trips => 2N EVTCHNOP_send, N from each side, each a VMCALL exit from an HVM sender.
    EXPECT_EQ(count(ping.at("hypercalls"), "event_channel_op/EVTCHNOP_send"), n);
    EXPECT_EQ(count(pong.at("hypercalls"), "event_channel_op/EVTCHNOP_send"), n);
    EXPECT_EQ(count(ping.at("exits_by_cause"), "VMCALL:hypercall:event_channel_op/EVTCHNOP_send"), n);
    EXPECT_EQ(count(pong.at("exits_by_cause"), "VMCALL:hypercall:event_channel_op/EVTCHNOP_send"), n);
    // Every hypercall of an HVM guest is one VMCALL exit: boot + bind and unmask (initiator) + sends.
    EXPECT_EQ(count(ping.at("exits"), "VMCALL"), kHvmBootHypercalls + kHvmBindHypercalls + n);
    EXPECT_EQ(count(pong.at("exits"), "VMCALL"), kHvmBootHypercalls + n);
    EXPECT_EQ(count(ping.at("hypercalls"), "event_channel_op/EVTCHNOP_unmask"), 1u);
    EXPECT_EQ(count(ping.at("exits_by_cause"), "VMCALL:hypercall:event_channel_op/EVTCHNOP_unmask"), 1u);
    // The responder unmasks a port nothing is pending on yet: no hypercall (evtchn_2l_unmask).
    EXPECT_EQ(count(pong.at("hypercalls"), "event_channel_op/EVTCHNOP_unmask"), 0u);
    // Upcalls: one per received send; the initiator also takes the event Xen raises on bind.
    EXPECT_EQ(pong.at("upcalls"), n);
    EXPECT_EQ(ping.at("upcalls"), n + 1);
    // Plus dom0's own: its backend bus's two XenStore requests at boot (kBackendBusDom0Sends).
    EXPECT_EQ(sim.stat("xen.evtchn.sends"), 2 * n + kBackendBusDom0Sends);
    // Xen kicks for the 2N sends and once more for the initiator's EVTCHNOP_unmask: the bind-time
    // event lands on a port the guest still has masked (found masked), and Xen's unmask delivers it;
    // and dom0's vCPU for its backend bus's requests (kBackendBusDom0Kicks).
    EXPECT_EQ(sim.stat("xen.evtchn.upcalls"), 2 * n + 1 + kBackendBusDom0Kicks);
    EXPECT_EQ(sim.stat("xen.evtchn.masked"), 1u + xenstored_connections(2))
        << "ping's bind, and each of xenstored's binds";
    EXPECT_EQ(sim.stat("xen.evtchn.already_pending"), 0u);
    // Halts: the initiator blocks once per round trip, and once more in its idle loop after the
    // last one (the run's short grace period lets that HLT block); the responder once before the
    // first ping and once after each answer. Each block is a HLT exit that blocked.
    EXPECT_EQ(ping.at("halts"), n + 1);
    EXPECT_EQ(pong.at("halts"), n + 1);
    EXPECT_EQ(ping.at("wakeups"), n);
    EXPECT_EQ(pong.at("wakeups"), n);
    // The initiator's last HLT (its idle loop, after the final round trip) is counted as an exit
    // but the run stops before it blocks.
    EXPECT_EQ(count(ping.at("exits"), "HLT"), n + 1);
    EXPECT_EQ(count(pong.at("exits"), "HLT"), n + 1);
    // Nothing else exits: no EXTERNAL_INTERRUPT, because every event finds its target halted.
    EXPECT_EQ(count(ping.at("exits"), "CPUID"), kHvmBootCpuidExits);
    EXPECT_EQ(count(ping.at("exits"), "MSR_WRITE"), kHvmBootMsrExits);
    EXPECT_EQ(count(ping.at("exits_by_cause"), "CPUID:leaf:0x40000000"), 1u);
    EXPECT_EQ(ping.at("exits_total"),
              kHvmBootCpuidExits + kHvmBootMsrExits + kHvmBootHypercalls + kHvmBindHypercalls + n + n + 1);
    EXPECT_EQ(count(ping.at("exits"), "EXTERNAL_INTERRUPT"), 0u);
    // dom0 is PV and idle: its boot hypercalls (2 add_to_physmap + CALLBACKOP_register) and no exits.
    const json& dom0 = sim.domain("dom0");
    EXPECT_EQ(dom0.at("exits_total"), 0u);
    EXPECT_EQ(count(dom0.at("hypercalls"), "callback_op/CALLBACKOP_register"), 1u);
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), n);
    EXPECT_EQ(w.at("failures"), 0u);
    // Per request over the window (first send to last reply): one send each way; the boots'
    // hypercalls and the bind with its unmask are set-up.
    EXPECT_DOUBLE_EQ(w.at("per_request").at("exits").at("VMCALL").get<double>(), 2.0);
    EXPECT_EQ(count(w.at("setup").at("exits"), "VMCALL"), 2 * kHvmBootHypercalls + kHvmBindHypercalls);
}

TEST(EvtchnPingPong, PvDom0ResponderTakesNoExitsButMakesTheHypercalls) {
    const std::uint64_t n = 100;
    Simulation sim(pingpong(n, "dom0"));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& dom0 = sim.domain("dom0");
    EXPECT_EQ(dom0.at("exits_total"), 0u);
    // One answer per ping, and the backend bus's XenStore traffic at boot (kBackendBusDom0Sends).
    EXPECT_EQ(count(dom0.at("hypercalls"), "event_channel_op/EVTCHNOP_send"), n + kBackendBusDom0Sends);
    // A PV kernel idles with SCHEDOP_block: once after each answer, and once when its boot work
    // is done. dom0's backend bus keeps its vCPU at work at boot (two XenStore round trips through
    // xenstored, ~20 us) past ping's first send, so that first block returns at once with the ping
    // pending, and there is no halt before the first ping. (Before the bus, the boot's block
    // returned at once for xenstored's pending port events and dom0 then halted for the first
    // ping: n + 2 blocks, n + 1 halts. The bus's first request now takes those port events.)
    EXPECT_EQ(count(dom0.at("hypercalls"), "sched_op/SCHEDOP_block"), n + 1);
    EXPECT_EQ(dom0.at("halts"), n);
    // Each ping, xenstored's ports at boot, and one more for the backend bus's replies (the other
    // answers land while dom0 is still in an upcall).
    EXPECT_EQ(dom0.at("upcalls"), n + xenstored_connections(1) + 1)
        << "each ping, xenstored's ports at boot, the backend bus's replies";
    EXPECT_EQ(count(dom0.at("hypercalls"), "grant_table_op/GNTTABOP_map_grant_ref"), 1u)
        << "the guest's ring";
    EXPECT_EQ(count(sim.domain("ping").at("exits"), "VMCALL"), kHvmBootHypercalls + kHvmBindHypercalls + n);
}

TEST(EvtchnPingPong, PvhDom0ExitsWithVmcallAndHlt) {
    const std::uint64_t n = 100;
    json s = pingpong(n, "dom0");
    s["domains"][0]["type"] = "pvh";
    Simulation sim(s);
    const json& dom0 = sim.domain("dom0");
    // PVH boots like HVM (3 hypercalls) and answers with VMCALL; it idles with HLT. A PVH kernel is
    // xen_hvm_domain() in Linux, so unmasking a pending port is EVTCHNOP_unmask (evtchn_2l_unmask):
    // each of xenstored's ports (its bind left the new port pending), and the responder's port, on
    // which ping's first send is already pending when dom0's workload unmasks it. Xen's unmask
    // delivers that first ping at once, so dom0 halts only after each answer.
    const std::uint64_t unmasks = xenstored_connections(1) + 1;
    EXPECT_EQ(count(dom0.at("hypercalls"), "event_channel_op/EVTCHNOP_unmask"), unmasks);
    // Plus the backend bus's XenStore traffic at boot, each EVTCHNOP_send a VMCALL
    // (kBackendBusDom0Sends; dom0 reaches its store through its own frame and local channel, as
    // Linux's xenbus_init does for the initial domain, PV or PVH: no HVMOP_get_param).
    EXPECT_EQ(count(dom0.at("exits"), "VMCALL"), kHvmBootHypercalls + kXenstoredDom0Hypercalls +
                                                     kXenstoredHypercallsPerGuest + unmasks + n +
                                                     kBackendBusDom0Sends);
    EXPECT_EQ(count(dom0.at("hypercalls"), "hvm_op/HVMOP_get_param"), 0u);
    EXPECT_EQ(count(dom0.at("exits"), "HLT"), n);
}

// Polling instead of halting: every reply finds the initiator running guest code on its pCPU, so
// Xen IPIs that pCPU and the vCPU takes an EXTERNAL_INTERRUPT exit — unless posted interrupts
// deliver the vector without one (Intel SDM 29.6).
TEST(EvtchnPingPong, PollingInitiatorTakesOneExternalInterruptPerReply) {
    const std::uint64_t n = 80;
    json s = pingpong(n);
    s["workloads"][0]["wait"] = "poll";
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& ping = sim.domain("ping");
    EXPECT_EQ(count(ping.at("exits"), "EXTERNAL_INTERRUPT"), n);
    EXPECT_EQ(count(ping.at("exits_by_cause"), "EXTERNAL_INTERRUPT:ipi:evtchn"), n);
    EXPECT_EQ(ping.at("halts"), 1u) << "a polling initiator never blocks during the exchange, only "
                                       "in its idle loop after it";
    EXPECT_EQ(ping.at("upcalls"), n + 1);
    EXPECT_EQ(ping.at("ipis_received"), n);
}

TEST(EvtchnPingPong, PostedInterruptsRemoveTheExternalInterruptExits) {
    const std::uint64_t n = 80;
    json s = pingpong(n);
    s["workloads"][0]["wait"] = "poll";
    s["platform"]["hvm"]["posted_interrupts"] = true;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& ping = sim.domain("ping");
    EXPECT_EQ(count(ping.at("exits"), "EXTERNAL_INTERRUPT"), 0u);
    EXPECT_EQ(ping.at("upcalls"), n + 1) << "the events are still delivered";
    EXPECT_EQ(ping.at("ipis_received"), n) << "the notification still interrupts the pCPU";
}

// A LAPIC-delivered upcall vector needs an EOI per upcall; how it exits depends on APIC
// virtualization (Intel SDM 29.1: APIC-access exits; 29.4.3: APIC-write exits; 29.1.2:
// virtual-interrupt delivery virtualizes EOI).
struct EoiCase {
    const char* apicv;
    const char* exit_reason;  // nullptr: no exit
};

class EoiExits : public ::testing::TestWithParam<EoiCase> {};

TEST_P(EoiExits, EveryPercpuVectorUpcallEndsWithAnEoiThatExitsAsTheApicModeSays) {
    const std::uint64_t n = 50;
    json s = pingpong(n);
    s["platform"]["hvm"]["apic_virtualization"] = GetParam().apicv;
    s["domains"][1]["upcall"] = "percpu_vector";
    Simulation sim(s);
    const json& ping = sim.domain("ping");
    EXPECT_EQ(ping.at("upcalls"), n + 1);
    EXPECT_EQ(ping.at("eois"), n + 1);
    // Boot registers the vector per vCPU with HVMOP_set_evtchn_upcall_vector instead of set_param.
    EXPECT_EQ(count(ping.at("hypercalls"), "hvm_op/HVMOP_set_evtchn_upcall_vector"), 1u);
    for (const char* reason : {"APIC_ACCESS", "APIC_WRITE"}) {
        bool expected = GetParam().exit_reason && std::string(reason) == GetParam().exit_reason;
        EXPECT_EQ(count(ping.at("exits"), reason), expected ? n + 1 : 0) << reason;
    }
    // The responder kept the callback vector: no EOI.
    EXPECT_EQ(sim.domain("pong").at("eois"), 0u);
}

INSTANTIATE_TEST_SUITE_P(ApicModes, EoiExits,
                         ::testing::Values(EoiCase{"off", "APIC_ACCESS"}, EoiCase{"register", "APIC_WRITE"},
                                           EoiCase{"full", nullptr}),
                         [](const ::testing::TestParamInfo<EoiCase>& param_info) {
                             return std::string(param_info.param.apicv);
                         });

}  // namespace
}  // namespace xensim::testing
