// The PV network path under a misbehaving netfront (frontends/netif_misbehaviour.h): one TEST per
// case through the whole platform, each answered as Linux 6.1 netback answers it (the engine-level
// pins are tests/unit/netif_ring_backend_test.cpp's MisbehavingFrontendTable), and the other guest's
// UDP_RR on the same dom0 untouched.
#include <fstream>
#include <sstream>

#include "models/dom0/netback.h"
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json scenario_file(const std::string& name) {
    std::ifstream in(std::string(XENSIM_SOURCE_DIR) + "/scenarios/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
}

const json& workload(const Simulation& sim, const std::string& name) {
    for (const auto& w : sim.report.at("workloads"))
        if (w.at("name") == name) return w;
    throw std::out_of_range("no workload " + name);
}

struct NetCase {
    const char* name;
    // Non-fatal: the tx_drop_reason label and the NETIF_RSP_ERROR responses (xenvif_tx_err answers
    // every slot; xenvif_tx_check_gop only the failed one). Fatal: the tx_fatal label.
    const char* drop_reason;
    std::uint64_t error_responses;
    const char* fatal;
};

void PrintTo(const NetCase& c, std::ostream* os) { *os << c.name; }

class NetMisbehaviour : public ::testing::TestWithParam<NetCase> {};

TEST_P(NetMisbehaviour, AnsweredAsLinuxNetbackAndTheNeighbourIsUntouched) {
    const NetCase& c = GetParam();
    json sc = scenario_file("net-misbehaving-guest.json");
    sc["workloads"][0]["cases"] = json::array({c.name});
    Simulation sim(sc);
    EXPECT_EQ(sim.result.stop_reason, "workloads_done");
    const json& attacks = workload(sim, "attacks");
    const json& cases = attacks.at("misbehaviour").at("cases");
    ASSERT_EQ(cases.size(), 1u);
    EXPECT_TRUE(cases[0].at("ok").get<bool>()) << cases[0].dump();
    EXPECT_EQ(attacks.at("ops"), 1u);
    EXPECT_EQ(attacks.at("failures"), 0u);

    // The attacker is domain 1, its nic 0: netback's dom0.vif_1_0.
    const std::string q = "dom0.vif_1_0.queue0.";
    Netback* back = sim.platform.netback(1, 0);
    ASSERT_NE(back, nullptr);
    if (c.fatal) {
        EXPECT_TRUE(back->disabled());
        EXPECT_EQ(sim.family(q + "tx_fatal", c.fatal), 1u);
        EXPECT_EQ(back->stats().fatal_errors.value(), 1u);
        EXPECT_EQ(sim.stat(q + "tx_error_responses"), 0u);  // nothing of the packet is answered
        EXPECT_EQ(sim.stat(q + "tx_packets"), 0u);          // nor the good frame after it taken
    } else {
        EXPECT_FALSE(back->disabled());
        EXPECT_EQ(back->stats().fatal_errors.value(), 0u);
        EXPECT_EQ(sim.family(q + "tx_drop_reason", c.drop_reason), 1u);
        EXPECT_EQ(sim.stat(q + "tx_dropped"), 1u);
        EXPECT_EQ(sim.stat(q + "tx_error_responses"), c.error_responses);
        EXPECT_EQ(sim.stat(q + "tx_packets"), 1u);  // the good frame sent next went through
    }
    // The other guest's transactions all completed, intact; its vif was never touched.
    const json& victim = workload(sim, "victim-rr");
    EXPECT_EQ(victim.at("ops"), 2000u);
    EXPECT_EQ(victim.at("failures"), 0u);
    EXPECT_EQ(victim.at("net").at("payload_errors"), 0u);
    Netback* other = sim.platform.netback(2, 0);
    ASSERT_NE(other, nullptr);
    EXPECT_FALSE(other->disabled());
    EXPECT_EQ(sim.stat("dom0.vif_2_0.queue0.tx_dropped"), 0u);
    EXPECT_EQ(sim.stat("dom0.vif_2_0.queue0.tx_error_responses"), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Net, NetMisbehaviour,
    ::testing::Values(
        // Non-fatal: xenvif_count_requests / xenvif_tx_build_gops -> xenvif_tx_err (every slot ERROR).
        NetCase{"nineteen_frags_dropped", "too_many_slots", 20, nullptr},
        NetCase{"slot_larger_than_remaining", "slot_size_exceeds_remaining", 2, nullptr},
        NetCase{"first_slot_below_eth_hlen", "first_slot_below_eth_hlen", 1, nullptr},
        NetCase{"first_slot_below_eth_hlen_with_frags", "first_slot_below_eth_hlen", 2, nullptr},
        // Non-fatal: xenvif_tx_check_gop (the failed slot ERROR, mapped shared slots OKAY).
        NetCase{"header_copy_fails", "grant_copy_failed", 1, nullptr},
        NetCase{"header_copy_and_slot_map_fail", "grant_copy_failed", 1, nullptr},
        NetCase{"frag_map_fails", "grant_map_failed", 1, nullptr},
        NetCase{"frag_map_fails_after_a_good_frag", "grant_map_failed", 1, nullptr},
        // Fatal: xenvif_fatal_tx_err.
        NetCase{"producer_more_than_a_ring_ahead", nullptr, 0, "impossible_requests"},
        NetCase{"missing_extra_info", nullptr, 0, "missing_extra_info"},
        NetCase{"extra_type_none", nullptr, 0, "invalid_extra_type"},
        NetCase{"extra_type_max", nullptr, 0, "invalid_extra_type"},
        NetCase{"more_data_on_the_last_slot", nullptr, 0, "slots_exceed_ring"},
        NetCase{"twenty_one_frags", nullptr, 0, "malicious_slots"},
        NetCase{"frag_crossing_its_page", nullptr, 0, "frag_cross_page"},
        NetCase{"first_slot_crossing_its_page", nullptr, 0, "first_cross_page"},
        NetCase{"gso_bad_type", nullptr, 0, "gso_bad_type"},
        NetCase{"gso_size_zero", nullptr, 0, "gso_size_zero"}),
    [](const ::testing::TestParamInfo<NetCase>& i) { return std::string(i.param.name); });

// The shipped scenario: every non-fatal case, then the producer overrun, which disables the vif.
TEST(NetRobustness, TheShippedScenarioRunsEveryNonFatalCaseThenOneFatalOne) {
    Simulation sim(scenario_file("net-misbehaving-guest.json"));
    const json& cases = workload(sim, "attacks").at("misbehaviour").at("cases");
    ASSERT_EQ(cases.size(), 9u);
    for (const auto& c : cases) EXPECT_TRUE(c.at("ok").get<bool>()) << c.dump();
    EXPECT_EQ(cases.back().at("case"), "producer_more_than_a_ring_ahead");
    EXPECT_TRUE(sim.platform.netback(1, 0)->disabled());
    // 20 + 2 + 1 + 2 + 1 + 1 + 1 + 1 slots answered NETIF_RSP_ERROR; eight good frames taken.
    EXPECT_EQ(sim.stat("dom0.vif_1_0.queue0.tx_error_responses"), 29u);
    EXPECT_EQ(sim.stat("dom0.vif_1_0.queue0.tx_packets"), 8u);
    // The guest's frontend ended every grant of an answered slot and never broke.
    EXPECT_EQ(workload(sim, "attacks").at("failures"), 0u);
}

// A fatal case ends the vif, so only the last case may be one (the scenario validation).
TEST(NetRobustness, AFatalCaseBeforeTheLastIsRefused) {
    json sc = scenario_file("net-misbehaving-guest.json");
    sc["workloads"][0]["cases"] = json::array({"gso_size_zero", "header_copy_fails"});
    EXPECT_THROW(parse_scenario(sc.dump(), "inline"), std::exception);
    sc["workloads"][0]["cases"] = json::array({"no_such_case"});
    EXPECT_THROW(parse_scenario(sc.dump(), "inline"), std::exception);
    sc["workloads"][0]["cases"] = json::array({"header_copy_fails", "gso_size_zero"});
    EXPECT_NO_THROW(parse_scenario(sc.dump(), "inline"));
}

}  // namespace
}  // namespace xensim::testing
