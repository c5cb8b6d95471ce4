// Scheduler behaviour seen through runs: switches, pinning, determinism of a run's counters.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json pingpong_on(unsigned pcpus, std::uint64_t n) {
    return {{"name", "sched"},
            {"platform", {{"pcpus", pcpus}}},
            {"domains",
             json::array({{{"name", "dom0"}, {"type", "pv"}}, {{"name", "ping"}}, {{"name", "pong"}}})},
            {"workloads", json::array({{{"type", "evtchn_pingpong"},
                                        {"name", "pp"},
                                        {"initiator", "ping"},
                                        {"responder", "pong"},
                                        {"round_trips", n}}})}};
}

std::uint64_t total_switches(const json& report, const char* kind) {
    std::uint64_t t = 0;
    for (const auto& p : report.at("pcpus")) t += p.at("context_switches").at(kind).get<std::uint64_t>();
    return t;
}

TEST(Scheduler, OnePcpuAlternatesDomainsEveryHalfRoundTrip) {
    const std::uint64_t n = 200;
    Simulation sim(pingpong_on(1, n));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    // With one pCPU the sender keeps running until it halts (its run is shorter than the rate
    // limit, so the woken peer does not preempt it); then the peer runs: two domain changes per
    // round trip, and the pCPU is never idle while the exchange lasts.
    std::uint64_t changes = total_switches(sim.report, "domain_change");
    EXPECT_GE(changes, 2 * n);
    EXPECT_LE(changes, 2 * n + 4) << "only the boot sequence may add a few";
    EXPECT_EQ(sim.domain("ping").at("vcpus").at(0).at("preemptions"), 0u);
}

TEST(Scheduler, PinnedDomainsRunOnlyOnTheirPcpus) {
    json s = pingpong_on(4, 100);
    s["domains"][1]["pinning"] = {2};
    s["domains"][2]["pinning"] = {3};
    s["domains"][0]["pinning"] = {0};
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& p = sim.report.at("pcpus");
    // pCPU 1 may run nobody.
    EXPECT_EQ(p.at(1).at("context_switches_total"), 0u);
    // pCPUs 2 and 3 each switch between their one guest and idle, twice per round trip at most.
    EXPECT_GE(p.at(2).at("context_switches").at("from_idle").get<std::uint64_t>(), 100u);
    EXPECT_GE(p.at(3).at("context_switches").at("from_idle").get<std::uint64_t>(), 100u);
    EXPECT_EQ(total_switches(sim.report, "domain_change"), 0u);
}

TEST(Scheduler, MorePcpusThanVcpusMeansNoDomainChanges) {
    Simulation sim(pingpong_on(4, 100));
    EXPECT_EQ(total_switches(sim.report, "domain_change"), 0u);
    EXPECT_GE(total_switches(sim.report, "from_idle"), 200u);
}

}  // namespace
}  // namespace xensim::testing
