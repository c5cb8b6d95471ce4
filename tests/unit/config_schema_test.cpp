// Scenario validation: every problem named with file, JSON pointer, expected and found.
#include <cctype>
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "frontends/fio_job.h"
#include "sim/core/config_schema.h"
#include "sim/platform/scenario.h"

namespace xensim {
namespace {

using nlohmann::json;

const char* kMinimal = R"({"name": "t", "domains": [{"name": "dom0", "type": "pv"}, {"name": "g"}]})";

std::string error_of(const std::string& text, ScenarioOverrides o = {}) {
    try {
        parse_scenario(text, "s.json", o);
    } catch (const ScenarioError& e) {
        return e.what();
    }
    return "";
}

TEST(ScenarioValidation, MinimalScenarioGetsEveryDefault) {
    Scenario s = parse_scenario(kMinimal, "s.json");
    const json& e = s.effective;
    EXPECT_EQ(e["platform"]["pcpus"], 2);
    EXPECT_EQ(e["platform"]["cpu_mhz"], 2100);
    EXPECT_EQ(e["platform"]["cost"]["vmexit_roundtrip"], 700);
    EXPECT_EQ(e["platform"]["cost"]["handler"]["VMCALL"], 530);
    EXPECT_EQ(e["domains"][1]["type"], "hvm");
    EXPECT_EQ(e["domains"][1]["vcpus"], 1);
    EXPECT_EQ(e["stop"]["sim_time_ms"], 1000);
    EXPECT_TRUE(e["workloads"].is_array());
}

struct BadCase {
    const char* intent;
    const char* scenario;
    const char* expect_in_message;
};

class BadScenario : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadScenario, IsRejectedWithPointerExpectedAndFound) {
    std::string msg = error_of(GetParam().scenario);
    ASSERT_FALSE(msg.empty()) << GetParam().intent;
    EXPECT_NE(msg.find("s.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(GetParam().expect_in_message), std::string::npos) << GetParam().intent << "\n" << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadScenario,
    ::testing::Values(
        BadCase{"vcpus of the wrong type",
                R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","vcpus":"two"}]})",
                "/domains/1/vcpus: expected an integer (vCPUs), found string \"two\""},
        BadCase{"vcpus out of range",
                R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","vcpus":33}]})",
                "/domains/1/vcpus: expected an integer in [1, 32], found integer 33"},
        BadCase{"unknown key", R"({"name":"t","domains":[{"name":"d0","type":"pv","vcpu":2}]})",
                "/domains/0/vcpu: expected no such key"},
        BadCase{"missing required name", R"({"domains":[{"name":"d0","type":"pv"}]})",
                "/name: expected required a string"},
        BadCase{"empty domains", R"({"name":"t","domains":[]})",
                "/domains: expected an array of 1 to 257 items"},
        BadCase{"bad enum", R"({"name":"t","domains":[{"name":"d0","type":"xen"}]})",
                "/domains/0/type: expected one of \"hvm\", \"pv\", \"pvh\", found string \"xen\""},
        BadCase{"dom0 must be pv or pvh", R"({"name":"t","domains":[{"name":"d0","type":"hvm"}]})",
                "/domains/0/type: expected \"pv\" or \"pvh\""},
        BadCase{"guests must be hvm",
                R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","type":"pv"}]})",
                "/domains/1/type: expected \"hvm\""},
        BadCase{"duplicate domain names",
                R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"d0"}]})", "/domains/1/name"},
        BadCase{
            "pinning beyond the pCPUs",
            R"({"name":"t","platform":{"pcpus":2},"domains":[{"name":"d0","type":"pv","pinning":[0,5]}]})",
            "/domains/0/pinning/1: expected a pCPU id below platform.pcpus (2)"},
        BadCase{
            "unknown workload type",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"}],"workloads":[{"type":"iperf3","name":"w"}]})",
            "/workloads/0/type: expected one of \"blkif_misbehaviour\", \"cpu_burn\", \"evtchn_pingpong\", "
            "\"fio\", "
            "\"grant_copy\", \"netif_misbehaviour\", \"netperf\", \"vga_console\", "
            "\"xenbus_handshake\", \"xenstore_ops\""},
        BadCase{
            "vga_console on a guest without a VGA",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g"}],"workloads":[{"type":"vga_console","name":"w","guest":"g"}]})",
            "/workloads/0/guest: expected a guest domain with vga \"stdvga\""},
        BadCase{"a VGA on dom0", R"({"name":"t","domains":[{"name":"d0","type":"pv","vga":"stdvga"}]})",
                "/domains/0/vga: expected \"none\" (an emulated VGA needs an HVM guest)"},
        BadCase{
            "fio on a guest without disks",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g"}],"workloads":[{"type":"fio","name":"w","guest":"g"}]})",
            "/workloads/0/guest: expected a guest with at least one entry in disks"},
        BadCase{
            "fio on a disk the guest does not have",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"xvda"}]}],"workloads":[{"type":"fio","name":"w","guest":"g","disk":"xvdb"}]})",
            "/workloads/0/disk: expected the vdev of one of the guest's disks"},
        BadCase{
            "fio block size not a multiple of 512",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"xvda"}]}],"workloads":[{"type":"fio","name":"w","guest":"g","bs":1000}]})",
            "/workloads/0/bs: expected a multiple of 512"},
        BadCase{
            "relative disk image path",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"xvda","image":"disk.img"}]}]})",
            "/domains/1/disks/0/image: expected an absolute path"},
        BadCase{
            "ide transfer mode on a pv disk",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"xvda","ide_transfer":"pio"}]}]})",
            "s.json: /domains/1/disks/0/ide_transfer: expected no ide_transfer on a disk with attach \"pv\""},
        BadCase{
            "ide transfer mode unknown",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"hda","attach":"ide","ide_transfer":"udma"}]}]})",
            "/domains/1/disks/0/ide_transfer: expected one of \"dma\", \"pio\""},
        BadCase{
            "ide multiple count on a pv disk",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"xvda","ide_set_multiple":0}]}]})",
            "/domains/1/disks/0/ide_set_multiple: expected no ide_set_multiple on a disk with attach \"pv\""},
        BadCase{
            "ide multiple count not a power of two",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","disks":[{"vdev":"hda","attach":"ide","ide_set_multiple":3}]}]})",
            "/domains/1/disks/0/ide_set_multiple: expected -1, 0 or a power of two up to 16"},
        BadCase{
            "blkfront profile unknown",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g","blkfront":{"profile":"bsd"}}]})",
            "/domains/1/blkfront/profile: expected one of"},
        BadCase{
            "workload names an unknown domain",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"},{"name":"g"}],"workloads":[{"type":"evtchn_pingpong","name":"w","initiator":"g","responder":"nope"}]})",
            "/workloads/0/responder: expected the name of a domain"},
        BadCase{
            "grant copy from dom0",
            R"({"name":"t","domains":[{"name":"d0","type":"pv"}],"workloads":[{"type":"grant_copy","name":"w","guest":"d0"}]})",
            "/workloads/0/guest: expected a guest domain"},
        BadCase{
            "cost override of the wrong kind",
            R"({"name":"t","platform":{"cost":{"handler":{"VMCALL":-1}}},"domains":[{"name":"d0","type":"pv"}]})",
            "/platform/cost/handler/VMCALL: expected an integer in [0, 1000000000], found integer -1"},
        BadCase{"unknown cost parameter",
                R"({"name":"t","platform":{"cost":{"vmexit":1}},"domains":[{"name":"d0","type":"pv"}]})",
                "/platform/cost/vmexit: expected no such key"},
        BadCase{"not JSON at all", "{\"name\": \"t\",\n  \"domains\": [}", "s.json:2:"}),
    [](const ::testing::TestParamInfo<BadCase>& param_info) {
        std::string n;
        for (const char* c = param_info.param.intent; *c; ++c)
            n += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
        return n;
    });

// The domain limit (issue 13): dom0 and 256 guests are accepted, 258 domains are refused with the
// limit named.
TEST(ScenarioValidation, DomainLimitIsDom0And256Guests) {
    auto with_domains = [](int n) {
        json s = {{"name", "t"}, {"domains", json::array({{{"name", "dom0"}, {"type", "pv"}}})}};
        for (int i = 1; i < n; ++i) s["domains"].push_back({{"name", "g" + std::to_string(i)}});
        return s.dump();
    };
    EXPECT_EQ(parse_scenario(with_domains(257), "s.json").effective.at("domains").size(), 257u);
    const std::string msg = error_of(with_domains(258));
    EXPECT_NE(msg.find("/domains: expected an array of 1 to 257 items"), std::string::npos) << msg;
}

TEST(ScenarioValidation, EveryProblemIsReportedNotJustTheFirst) {
    std::string msg = error_of(R"({"name":"t","bogus":1,"domains":[{"name":"d0","type":"pv","vcpus":0}]})");
    EXPECT_NE(msg.find("/bogus"), std::string::npos) << msg;
    EXPECT_NE(msg.find("/domains/0/vcpus"), std::string::npos) << msg;
}

TEST(ScenarioValidation, SetOverridesApplyBeforeValidation) {
    ScenarioOverrides o;
    o.sets = {"platform.pcpus=8", "domains.1.vcpus=4", "platform.cost.handler.HLT=123"};
    o.has_seed = true;
    o.seed = 99;
    Scenario s = parse_scenario(kMinimal, "s.json", o);
    EXPECT_EQ(s.effective["platform"]["pcpus"], 8);
    EXPECT_EQ(s.effective["domains"][1]["vcpus"], 4);
    EXPECT_EQ(s.effective["platform"]["cost"]["handler"]["HLT"], 123);
    EXPECT_EQ(s.effective["platform"]["seed"], 99);
    o.sets = {"platform.pcpuz=8"};
    EXPECT_NE(error_of(kMinimal, o).find("/platform/pcpuz: expected no such key"), std::string::npos);
    o.sets = {"domains.7.vcpus=1"};
    EXPECT_NE(error_of(kMinimal, o).find("/domains: expected an array index from 0 to 1, found \"7\""),
              std::string::npos);
    o.sets = {"noequals"};
    EXPECT_NE(error_of(kMinimal, o).find("expected PATH=VALUE"), std::string::npos);
}

TEST(ScenarioValidation, VirtualBlockDeviceNumbersFollowVbdInterfaceTxt) {
    EXPECT_EQ(vbd_devid("xvda"), 51712u);
    EXPECT_EQ(vbd_devid("xvdb"), 51728u);
    EXPECT_EQ(vbd_devid("xvdq"), (1u << 28) | (16u << 8)) << "the extended scheme past 15 disks";
    EXPECT_EQ(vbd_devid("hda"), 768u);
    EXPECT_EQ(vbd_devid("hdb"), 832u);
    EXPECT_EQ(vbd_devid("hdc"), 5632u);
    EXPECT_FALSE(vbd_devid("sda"));
    EXPECT_FALSE(vbd_devid("xvd"));
}

TEST(ScenarioSchema, JsonSchemaDescribesEveryDeclaredKey) {
    json s = scenario_json_schema();
    EXPECT_EQ(s["type"], "object");
    EXPECT_EQ(s["additionalProperties"], false);
    const json& dom = s["properties"]["domains"]["items"];
    EXPECT_EQ(dom["properties"]["vcpus"]["maximum"], 32);
    EXPECT_EQ(dom["required"], json::array({"name"}));
    const json& cost = s["properties"]["platform"]["properties"]["cost"];
    EXPECT_EQ(cost["properties"]["handler"]["properties"]["IO_INSTRUCTION"]["default"], 500);
    EXPECT_EQ(s["properties"]["workloads"]["items"]["oneOf"].size(), 10u);
}

// A double outside int64 is out of range, not cast: static_cast<int64_t>(double) of such a value is
// undefined ([conv.fpint]); it printed "found integer -9223372036854775808" and clang's
// -fsanitize=float-cast-overflow stops here (reliability-2026-12.md probes/ub.cpp).
TEST(ConfigNode, IntegerFromADoubleBeyondInt64IsOutOfRangeNotCast) {
    auto n = ConfigNode::integer(2, 1, 64, "CPUs", "pcpus");
    for (double d : {1e19, 9.3e18, 9223372036854775808.0, -9223372036854775809.0, -1e300,
                     std::numeric_limits<double>::max()}) {
        std::vector<ConfigError> errs;
        n->resolve(json(d), "/platform/pcpus", errs);
        ASSERT_EQ(errs.size(), 1u) << d;
        EXPECT_EQ(errs[0].expected, "an integer in [1, 64]") << d;
        EXPECT_EQ(errs[0].found, describe_json(json(d))) << d;
        EXPECT_EQ(errs[0].found.rfind("number ", 0), 0u) << errs[0].found;
    }
    auto wide = ConfigNode::integer(0, std::numeric_limits<std::int64_t>::min(),
                                    std::numeric_limits<std::int64_t>::max(), "", "any");
    std::vector<ConfigError> errs;
    EXPECT_EQ(wide->resolve(json(-9223372036854775808.0), "/x", errs),
              std::numeric_limits<std::int64_t>::min());
    EXPECT_TRUE(errs.empty());
    wide->resolve(json(9223372036854775808.0), "/x", errs);  // 2^63: one past int64's maximum
    EXPECT_EQ(errs.size(), 1u);
    errs.clear();
    EXPECT_EQ(n->resolve(json(4.0), "/p", errs), 4) << "an integral double in range is that integer";
    EXPECT_TRUE(errs.empty());
}

TEST(ConfigNode, AnyTakesEveryJsonValueAsItIs) {
    // A sweep axis's values (sim/platform/sweep_spec.h): the scenario schema checks them once applied.
    const ConfigNodePtr any = ConfigNode::any("a value");
    for (const char* text : {"null", "true", "-3", "2.5", "\"hdd\"", "[1, {\"a\": 2}]", "{}"}) {
        SCOPED_TRACE(text);
        std::vector<ConfigError> errors;
        EXPECT_EQ(any->resolve(json::parse(text), "/v", errors), json::parse(text));
        EXPECT_TRUE(errors.empty());
    }
    EXPECT_EQ(any->json_schema(), json({{"description", "a value"}})) << "no \"type\": every value is valid";
    EXPECT_TRUE(any->default_value().is_null());
}

TEST(JsonText, NumberBeyondADoubleIsASyntaxErrorWithLineAndColumn) {
    try {
        parse_json_text("{\"a\": 1,\n \"b\": -1e400}", "f.json");
        FAIL() << "1e400 accepted";
    } catch (const InputError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("f.json:2:7: not valid JSON: ", 0), 0u) << e.what();
        EXPECT_NE(std::string(e.what()).find("-1e400"), std::string::npos) << e.what();
    }
    EXPECT_EQ(error_of(R"({"name":"t","platform":{"pcpus":1e400},"domains":[{"name":"d0","type":"pv"}]})")
                  .rfind("s.json:1:", 0),
              0u);
}

TEST(ScenarioValidation, SetPathsAreCheckedComponentByComponent) {
    ScenarioOverrides o;
    o.sets = {"domains.1x.vcpus=2"};
    EXPECT_NE(error_of(kMinimal, o)
                  .find("s.json: --set domains.1x.vcpus=2: /domains: expected an array index "
                        "from 0 to 1, found \"1x\""),
              std::string::npos)
        << error_of(kMinimal, o);
    for (const char* bad : {"domains.+1.vcpus=2", "domains. 1.vcpus=2", "domains.01x.vcpus=2",
                            "domains.18446744073709551617.vcpus=2"}) {
        o.sets = {bad};
        EXPECT_NE(error_of(kMinimal, o).find("/domains: expected an array index from 0 to 1"),
                  std::string::npos)
            << bad << ": " << error_of(kMinimal, o);
    }
    o.sets = {"platform.=1"};
    EXPECT_NE(error_of(kMinimal, o).find("no empty component"), std::string::npos) << error_of(kMinimal, o);
    o.sets = {"domains.0.name.x=1"};
    EXPECT_NE(error_of(kMinimal, o)
                  .find("--set domains.0.name.x=1: /domains/0/name: expected an object to "
                        "hold \"x\", found string \"dom0\""),
              std::string::npos)
        << error_of(kMinimal, o);
    o.sets = {"domains.1.name=web", "domains.1.disks=[{\"vdev\":\"xvda\"}]", "domains.1.disks.0.model=null",
              "platform.seed=7"};
    Scenario s = parse_scenario(kMinimal, "s.json", o);
    EXPECT_EQ(s.effective["domains"][1]["name"], "web");
    EXPECT_EQ(s.effective["domains"][1]["disks"][0]["model"], "null");
    EXPECT_EQ(s.effective["platform"]["seed"], 7);
}

// Validation's fio geometry check and FioJob's own (which the run applies) agree: a scenario passes
// validate exactly when every job of it can be built on the disk.
TEST(ScenarioValidation, FioGeometryCheckAgreesWithFioJob) {
    struct G {
        std::uint64_t sectors, bs, numjobs, offset, offset_increment, size;
    };
    const G table[] = {
        {1, 4096, 1, 0, 0, 0},                // bs larger than the disk
        {8, 4096, 1, 0, 0, 0},                // exactly one block
        {8, 4096, 1, 512, 0, 0},              // 3584 bytes left: less than bs
        {8, 4096, 1, 4096, 0, 0},             // offset at the end
        {2048, 4096, 4, 0, 262144, 0},        // 4 x 256 KiB exactly
        {2048, 4096, 4, 0, 262144, 262144},   // the same with size
        {2048, 4096, 4, 0, 262144, 266240},   // the last job's region runs past the end
        {2048, 4096, 5, 0, 262144, 0},        // job 4 starts at the end
        {2048, 4096, 256, 0, 1ull << 50, 0},  // offset_increment x job overflows nothing
        {2048, 4096, 2, 1044480, 0, 0},       // offset leaves 4096 bytes
        {2048, 4096, 2, 1048576, 0, 0},       // offset at the end
        {2048, 8192, 1, 0, 0, 4096},          // size below bs
        {2048, 4096, 3, 4096, 348160, 4096},  // job 2 starts 4096 before the end: fits
        {2048, 4096, 3, 4096, 348160, 8192},  // ... but not 8192 of it
    };
    for (const G& g : table) {
        json doc = json::parse(kMinimal);
        doc["domains"][1]["disks"] = json::array({{{"vdev", "xvda"}, {"sectors", g.sectors}}});
        doc["workloads"] = json::array({{{"type", "fio"},
                                         {"name", "w"},
                                         {"guest", "g"},
                                         {"rw", "read"},
                                         {"bs", g.bs},
                                         {"numjobs", g.numjobs},
                                         {"offset", g.offset},
                                         {"offset_increment", g.offset_increment},
                                         {"size", g.size}}});
        const std::string err = error_of(doc.dump());
        bool builds = true;
        FioJobParams p;
        p.rw = FioJobParams::Rw::read;
        p.bs = static_cast<std::uint32_t>(g.bs);
        p.numjobs = static_cast<unsigned>(g.numjobs);
        p.offset = g.offset;
        p.offset_increment = g.offset_increment;
        p.size = g.size;
        for (unsigned j = 0; j < p.numjobs && builds; ++j) {
            try {
                FioJob job(p, j, g.sectors * 512);
            } catch (const std::invalid_argument&) {
                builds = false;
            }
        }
        EXPECT_EQ(err.empty(), builds)
            << "sectors " << g.sectors << " bs " << g.bs << " numjobs " << g.numjobs << " offset " << g.offset
            << " offset_increment " << g.offset_increment << " size " << g.size << "\n"
            << err;
    }
}

}  // namespace
}  // namespace xensim
