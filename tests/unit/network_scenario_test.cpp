// platform.network in the scenario (sim/platform/scenario.cpp): defaults, the addressing
// convention of docs/network.md, and every rejected value named by its JSON pointer.
#include <gtest/gtest.h>

#include "sim/platform/scenario.h"

namespace xensim {
namespace {

using nlohmann::json;

json minimal() {
    return json::parse(R"({"name": "t", "domains": [{"name": "dom0", "type": "pv"},
                           {"name": "g", "nics": [{"mac": "00:16:3e:00:00:01"}]}]})");
}

std::string error_of(const json& doc) {
    try {
        parse_scenario(doc.dump(), "s.json");
    } catch (const ScenarioError& e) {
        return e.what();
    }
    return "";
}

TEST(NetworkScenario, DefaultsAreOneBridgeA10GbitWireAndTheRemoteHostAt10_0_0_254) {
    const json n = parse_scenario(minimal().dump(), "s.json").effective.at("platform").at("network");
    EXPECT_TRUE(n.at("bridges").empty()) << "empty: xenbr0 alone";
    EXPECT_EQ(n.at("line_rate_gbps"), 10);
    EXPECT_EQ(n.at("propagation_ns"), 500);
    EXPECT_EQ(n.at("txqueuelen"), 1000);  // Linux's DEFAULT_TX_QUEUE_LEN
    EXPECT_EQ(n.at("nic").at("interrupt_delay_us"), 50);
    EXPECT_EQ(n.at("nic").at("rx_ring"), 512);
    EXPECT_EQ(n.at("nic").at("napi_budget"), 64);  // NAPI_POLL_WEIGHT
    EXPECT_EQ(n.at("remote").at("mac"), "00:16:3e:ff:ff:fe");
    EXPECT_EQ(n.at("remote").at("ip"), "10.0.0.254");
}

TEST(NetworkScenario, Ipv4TextParsesDottedQuadsOnly) {
    struct Case {
        const char* text;
        std::optional<std::uint32_t> want;
    };
    const Case cases[] = {
        {"10.0.0.254", 0x0a0000feu},  {"0.0.0.0", 0u},           {"255.255.255.255", 0xffffffffu},
        {"192.168.1.1", 0xc0a80101u}, {"", std::nullopt},        {"10.0.0", std::nullopt},  // three parts
        {"10.0.0.1.2", std::nullopt},                                                       // five parts
        {"10.0.0.256", std::nullopt},                                                       // part above 255
        {"10.0.0.01", std::nullopt},  // leading zero (inet_pton refuses octal-looking parts)
        {"10.0.0.-1", std::nullopt},  {"10..0.1", std::nullopt}, {" 10.0.0.1", std::nullopt},
        {"10.0.0.1 ", std::nullopt},  {"a.b.c.d", std::nullopt}, {"1000.0.0.1", std::nullopt},
    };
    for (const Case& c : cases) EXPECT_EQ(parse_ipv4_text(c.text), c.want) << c.text;
}

TEST(NetworkScenario, GuestAddressesAre10_0_Nic_Domid) {
    EXPECT_EQ(guest_ipv4(1, 0), 0x0a000001u);    // 10.0.0.1
    EXPECT_EQ(guest_ipv4(5, 2), 0x0a000205u);    // 10.0.2.5
    EXPECT_EQ(guest_ipv4(63, 15), 0x0a000f3fu);  // 10.0.15.63
}

TEST(NetworkScenario, BadValuesAreNamedByTheirPointer) {
    struct Case {
        const char* what;
        json network;
        const char* pointer;
    };
    const std::vector<Case> cases = {
        {"zero line rate", {{"line_rate_gbps", 0}}, "/platform/network/line_rate_gbps"},
        {"negative propagation", {{"propagation_ns", -1}}, "/platform/network/propagation_ns"},
        {"bad remote MAC", {{"remote", {{"mac", "00:16:3e:ff:ff"}}}}, "/platform/network/remote/mac"},
        {"multicast remote MAC",
         {{"remote", {{"mac", "01:00:5e:00:00:01"}}}},
         "/platform/network/remote/mac"},
        {"bad remote IP", {{"remote", {{"ip", "10.0.0.300"}}}}, "/platform/network/remote/ip"},
        {"remote IP of a guest", {{"remote", {{"ip", "10.0.0.1"}}}}, "/platform/network/remote/ip"},
        {"empty bridge name", {{"bridges", {""}}}, "/platform/network/bridges/0"},
        {"bridge name too long", {{"bridges", {"a_very_long_bridge"}}}, "/platform/network/bridges/0"},
        {"bridge name with a slash", {{"bridges", {"br/0"}}}, "/platform/network/bridges/0"},
        {"bridge named twice", {{"bridges", {"xenbr0", "xenbr0"}}}, "/platform/network/bridges/1"},
        {"bridge named like the NIC", {{"bridges", {"eth0"}}}, "/platform/network/bridges/0"},
        {"zero NAPI budget", {{"nic", {{"napi_budget", 0}}}}, "/platform/network/nic/napi_budget"},
        {"unknown key", {{"speed", 10}}, "/platform/network/speed"},
    };
    for (const Case& c : cases) {
        json doc = minimal();
        doc["platform"]["network"] = c.network;
        const std::string err = error_of(doc);
        EXPECT_NE(err.find(std::string("s.json: ") + c.pointer + ":"), std::string::npos)
            << c.what << ": " << err;
    }
    json ok = minimal();
    ok["platform"]["network"] = {{"bridges", {"xenbr0", "hostonly"}}, {"remote", {{"ip", "192.168.0.2"}}}};
    EXPECT_EQ(error_of(ok), "");
}

// domains[].nics[].rate: xl's rate= syntax (sim/platform/xl_vif_rate.h); a malformed one is named by
// its pointer with what xl expects and xl's own complaint.
TEST(NetworkScenario, NicRateIsXlsSyntaxAndABadOneIsNamedByItsPointer) {
    struct Case {
        json rate;
        const char* xl_error;  // "" when accepted
    };
    const std::vector<Case> cases = {
        {"10Mb/s", ""},
        {"10Mb/s@20ms", ""},
        {"1MB/s@100ms", ""},
        {"100Kb/s@1s", ""},
        {"100kb/s@1s", "invalid rate"},  // xl's regex: capital K only
        {"10Mb", "invalid rate"},
        {"0Mb/s", "rate overflow"},
        {"@20ms", "no rate specified"},
        {"10Mb/s@20ns", "invalid replenishment interval"},
        {"10Mb/s@0ms", "replenishment interval overflow"},
        {10, ""},  // not a string: the schema's own message
    };
    for (const Case& c : cases) {
        json doc = minimal();
        doc["domains"][1]["nics"][0]["rate"] = c.rate;
        const std::string err = error_of(doc);
        if (c.rate.is_string() && !*c.xl_error) {
            EXPECT_EQ(err, "") << c.rate;
            continue;
        }
        EXPECT_NE(err.find("s.json: /domains/1/nics/0/rate: expected "), std::string::npos)
            << c.rate << ": " << err;
        EXPECT_NE(err.find(", found "), std::string::npos) << c.rate << ": " << err;
        EXPECT_NE(err.find(c.rate.dump()), std::string::npos) << c.rate << ": " << err;
        if (*c.xl_error) {
            EXPECT_NE(err.find("RATE/s[@INTERVAL]"), std::string::npos) << err;
            EXPECT_NE(err.find(std::string("(xl: ") + c.xl_error + ")"), std::string::npos) << err;
        }
    }
    const json nic =
        parse_scenario(minimal().dump(), "s.json").effective.at("domains").at(1).at("nics").at(0);
    EXPECT_TRUE(nic.at("rate").is_null()) << "absent: no limit, no node";
}

}  // namespace
}  // namespace xensim
