// The scenario's netperf workload (sim/platform/scenario.cpp): defaults, what is accepted, and every
// refusal named with its JSON pointer, what was expected and what was found.
#include <gtest/gtest.h>

#include "sim/platform/scenario.h"

namespace xensim {
namespace {

using nlohmann::json;

// dom0, a guest with one nic and 2 vCPUs, a second guest with one nic, a third with none.
json base() {
    return json::parse(R"({
        "name": "net",
        "domains": [
            {"name": "dom0", "type": "pv"},
            {"name": "g1", "vcpus": 2, "nics": [{"mac": "00:16:3e:00:00:01"}]},
            {"name": "g2", "nics": [{"mac": "00:16:3e:00:00:02"}]},
            {"name": "g3"}
        ],
        "workloads": [{"type": "netperf", "name": "np", "guest": "g1", "number": 100}]
    })");
}

std::string error_of(const json& s) {
    try {
        parse_scenario(s.dump(), "s.json");
    } catch (const ScenarioError& e) {
        return e.what();
    }
    return "";
}

TEST(NetperfScenario, DefaultsAreFilledAndTheSpecFollowsThem) {
    Scenario s = parse_scenario(base().dump(), "s.json");
    const json& w = s.effective.at("workloads").at(0);
    EXPECT_EQ(w.at("nic"), 0);
    EXPECT_EQ(w.at("test"), "UDP_STREAM");
    EXPECT_EQ(w.at("peer"), "wire");
    EXPECT_EQ(w.at("direction"), "send");
    EXPECT_EQ(w.at("streams"), 1);
    EXPECT_EQ(w.at("window_bytes"), 65536);
    const NetperfSpec spec = netperf_spec(w, 7);
    EXPECT_EQ(spec.test, NetperfTest::udp_stream);
    EXPECT_EQ(spec.number, 100u);
    EXPECT_EQ(spec.duration_ns, 0u);
    EXPECT_EQ(spec.seed, 7u);
    EXPECT_EQ(spec.addr.src_port, 49152);
    EXPECT_EQ(spec.addr.dst_port, 12866);
}

struct Good {
    const char* intent;
    const char* patch;  // merged into workloads/0
};

class NetperfScenarioGood : public ::testing::TestWithParam<Good> {};

TEST_P(NetperfScenarioGood, IsAccepted) {
    json s = base();
    s["workloads"][0].merge_patch(json::parse(GetParam().patch));
    EXPECT_EQ(error_of(s), "") << GetParam().intent;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NetperfScenarioGood,
    ::testing::Values(
        Good{"UDP_STREAM 64-byte datagrams at a rate", R"({"message_size": 18, "rate_pps": 1000000})"},
        Good{"UDP_STREAM of MTU-sized datagrams", R"({"message_size": 1472})"},
        Good{"TCP_STREAM for a duration", R"({"test": "TCP_STREAM", "number": 0, "duration_ms": 5})"},
        Good{"UDP_RR with another guest", R"({"test": "UDP_RR", "peer": "g2"})"},
        Good{"TCP_RR with an MSS and window", R"({"test": "TCP_RR", "mss": 1000, "window_bytes": 8000})"},
        Good{"ping from the wire", R"({"test": "ping", "direction": "receive"})"},
        Good{"four streams", R"({"streams": 4})"}),
    [](const ::testing::TestParamInfo<Good>& p) {
        std::string n;
        for (const char* c = p.param.intent; *c; ++c)
            n += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
        return n;
    });

struct Bad {
    const char* intent;
    const char* patch;
    const char* expect;  // a part of the message
};

class NetperfScenarioBad : public ::testing::TestWithParam<Bad> {};

TEST_P(NetperfScenarioBad, IsRefusedWithThePointer) {
    json s = base();
    s["workloads"][0].merge_patch(json::parse(GetParam().patch));
    const std::string e = error_of(s);
    EXPECT_NE(e.find(GetParam().expect), std::string::npos) << GetParam().intent << "\n" << e;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NetperfScenarioBad,
    ::testing::Values(
        Bad{"unknown test", R"({"test": "TCP_MAERTS"})", "/workloads/0/test: expected one of"},
        Bad{"unknown direction", R"({"direction": "both"})", "/workloads/0/direction: expected one of"},
        Bad{"a nic the guest lacks", R"({"nic": 1})",
            "/workloads/0/nic: expected the index of one of the guest's nics (it has 1), found integer 1"},
        Bad{"a guest without nics", R"({"guest": "g3"})",
            "/workloads/0/nic: expected the index of one of the guest's nics (it has 0)"},
        Bad{"dom0 as the guest", R"({"guest": "dom0"})", "/workloads/0/guest: expected a guest domain"},
        Bad{"an unknown guest", R"({"guest": "nobody"})",
            "/workloads/0/guest: expected the name of a domain"},
        Bad{"the guest as its own peer", R"({"peer": "g1"})",
            "/workloads/0/peer: expected \"wire\" or the name of another guest with at least one nic"},
        Bad{"a peer without nics", R"({"peer": "g3"})", "/workloads/0/peer: expected \"wire\" or the name"},
        Bad{"neither number nor duration", R"({"number": 0})",
            "/workloads/0/number: expected a number above 0, or a duration_ms above 0"},
        Bad{"a datagram larger than the MTU allows", R"({"message_size": 1473})",
            "/workloads/0/message_size: expected sizes the test can send (udp_stream message_size 1473 "
            "exceeds "
            "1472 bytes"},
        Bad{"a ping payload too short for its header", R"({"test": "ping", "message_size": 8})",
            "/workloads/0/message_size: expected sizes the test can send (ping payload_size 8"},
        Bad{"an MSS larger than the MTU", R"({"test": "TCP_STREAM", "mss": 9000})",
            "/workloads/0/mss: expected sizes the test can send (tcp mss 9000"},
        Bad{"a rate for TCP_STREAM", R"({"test": "TCP_STREAM", "rate_pps": 10})",
            "/workloads/0/rate_pps: expected 0 for TCP_STREAM"},
        Bad{"too many streams", R"({"streams": 65})", "/workloads/0/streams"},
        Bad{"an unknown key", R"({"burst": 4})", "/workloads/0/burst: expected no such key"}),
    [](const ::testing::TestParamInfo<Bad>& p) {
        std::string n;
        for (const char* c = p.param.intent; *c; ++c)
            n += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
        return n;
    });

}  // namespace
}  // namespace xensim
