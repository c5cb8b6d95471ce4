// Grant copy through the whole platform: per-round grant operations fixed by the protocol.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json grant_copy(unsigned pages, std::uint64_t rounds) {
    return {{"name", "grant-copy"},
            {"domains", json::array({{{"name", "dom0"}, {"type", "pv"}}, {{"name", "guest"}}})},
            {"workloads", json::array({{{"type", "grant_copy"},
                                        {"name", "copy"},
                                        {"guest", "guest"},
                                        {"pages", pages},
                                        {"rounds", rounds}}})}};
}

TEST(GrantCopy, EachRoundMapsCopiesUnmapsAndFlushesOnce) {
    const unsigned pages = 4;
    const std::uint64_t rounds = 60;
    Simulation sim(grant_copy(pages, rounds));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), rounds);
    EXPECT_EQ(w.at("failures"), 0u) << "dom0's checksum of the copied pages must match the guest's";
    // One map per round, plus xenstored's mapping of the guest's xenstore ring (kept for good).
    EXPECT_EQ(sim.stat("xen.gnttab.maps"), rounds + 1);
    EXPECT_EQ(sim.stat("xen.gnttab.unmaps"), rounds);
    EXPECT_EQ(sim.stat("xen.gnttab.tlb_flushes"), rounds);
    EXPECT_EQ(sim.stat("xen.gnttab.copies"), rounds * pages);
    EXPECT_EQ(sim.stat("xen.gnttab.bytes_copied"), rounds * pages * 4096);
    EXPECT_EQ(sim.platform.hypervisor().grant_table().active_maps(0), 1u)
        << "every request mapping was undone; only xenstored's ring mapping remains";
    const json& dom0 = sim.domain("dom0");
    EXPECT_EQ(count(dom0.at("hypercalls"), "grant_table_op/GNTTABOP_map_grant_ref"), rounds + 1);
    EXPECT_EQ(count(dom0.at("hypercalls"), "grant_table_op/GNTTABOP_copy"), rounds);
    EXPECT_EQ(count(dom0.at("hypercalls"), "grant_table_op/GNTTABOP_unmap_grant_ref"), rounds);
    EXPECT_EQ(dom0.at("exits_total"), 0u) << "PV dom0 takes no VM exits";
    // The guest: one notification per request, one upcall per answer (+1 for the bind event).
    const json& guest = sim.domain("guest");
    EXPECT_EQ(count(guest.at("hypercalls"), "event_channel_op/EVTCHNOP_send"), rounds);
    EXPECT_EQ(guest.at("upcalls"), rounds + 1);
    // Per request over both domains, in the workload's window: the guest's upcall for the answer
    // and dom0's for the request. The bind event and xenstored's port events at boot are set-up.
    // dom0's backend bus is still at its boot-time XenStore requests when the guest's first
    // request arrives, so the upcall taking the bus's last answers falls in the window: one more
    // dom0 upcall than requests, in all (evtchn_model_test.cpp has the same +1 with dom0
    // answering pings).
    EXPECT_EQ(dom0.at("upcalls"), rounds + xenstored_connections(1) + 1);
    EXPECT_EQ(w.at("per_request").at("upcalls").get<double>() * rounds, 2.0 * rounds + 1);
    EXPECT_EQ(w.at("setup").at("upcalls").get<std::uint64_t>(), 1 + xenstored_connections(1));
}

TEST(GrantCopy, ARequestTakesAtLeastTheCopyTimeTheCostModelCharges) {
    // Copy time is charged per page and per copied byte, so 16 pages cannot be served faster than
    // 16 x (grant_copy_per_page + 4096 / copy_bytes_per_cycle) cycles.
    Simulation sim(grant_copy(16, 20));
    const json& w = sim.report.at("workloads").at(0);
    ASSERT_EQ(w.at("failures"), 0u);
    const CostModel& c = sim.platform.hypervisor().cost();
    double floor_cycles = 16.0 * (c.grant_copy_per_page + 4096.0 / c.copy_bytes_per_cycle);
    double floor_ns = floor_cycles * 1000.0 / 2100.0;
    EXPECT_GT(w.at("latency_ns").at("min").get<double>(), floor_ns);
}

}  // namespace
}  // namespace xensim::testing
