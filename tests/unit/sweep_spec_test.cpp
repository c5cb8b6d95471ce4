// Sweep files (sim/platform/sweep_spec.h): expansion order, point ids, and validation that names
// the file, the JSON pointer, what was expected and what was found before anything runs.
#include <gtest/gtest.h>

#include "sim/platform/scenario.h"
#include "sim/platform/sweep_spec.h"

namespace xensim {
namespace {

using nlohmann::json;

// A sweep file placed in the shipped scenarios directory, so "base" names a shipped scenario.
const std::string kFile = std::string(XENSIM_SOURCE_DIR) + "/scenarios/study.json";

SweepSpec spec_of(const std::string& text) { return parse_sweep(text, kFile); }

std::string error_of(const std::string& text) {
    try {
        parse_sweep(text, kFile);
    } catch (const ScenarioError& e) {
        return e.what();
    }
    return "";
}

TEST(SweepSpec, CrossPutsTheFirstAxisOutermostAndSeedsInnermost) {
    const SweepSpec s = spec_of(R"({"base": "blk-qd1-read.json",
        "axes": [{"key": "workloads.0.iodepth", "values": [1, 4]},
                 {"key": "domains.1.disks.0.model", "values": ["ssd", "hdd", "null"]}],
        "seeds": [7, 3], "metrics": ["workloads.0.ops"]})");
    EXPECT_EQ(s.base_path, std::string(XENSIM_SOURCE_DIR) + "/scenarios/blk-qd1-read.json");
    const auto points = expand_sweep(s);
    ASSERT_EQ(points.size(), 2u * 3u * 2u);
    // {iodepth index, model index, seed} in expansion order: nested loops, the last axis fastest, then seeds.
    const struct {
        int iodepth;
        const char* model;
        std::uint64_t seed;
    } expected[] = {{1, "ssd", 7},  {1, "ssd", 3},  {1, "hdd", 7},  {1, "hdd", 3},
                    {1, "null", 7}, {1, "null", 3}, {4, "ssd", 7},  {4, "ssd", 3},
                    {4, "hdd", 7},  {4, "hdd", 3},  {4, "null", 7}, {4, "null", 3}};
    for (std::size_t i = 0; i < points.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(points[i].index, i);
        EXPECT_EQ(points[i].combination, i / 2);
        EXPECT_EQ(points[i].values[0], expected[i].iodepth);
        EXPECT_EQ(points[i].values[1], expected[i].model);
        EXPECT_EQ(points[i].seed, expected[i].seed);
    }
    EXPECT_EQ(points[3].id, "0003-iodepth=1-model=hdd-s3");
    EXPECT_EQ(points[3].sets,
              (std::vector<std::string>{"workloads.0.iodepth=1", "domains.1.disks.0.model=\"hdd\"",
                                        "platform.seed=3"}));
}

TEST(SweepSpec, ZipTakesTheIthValueOfEveryAxis) {
    const SweepSpec s = spec_of(R"({"base": "blk-qd1-read.json", "combine": "zip",
        "axes": [{"key": "workloads.0.iodepth", "values": [1, 2, 8]},
                 {"key": "workloads.0.bs", "values": [4096, 8192, 65536]}],
        "metrics": ["workloads.0.ops"]})");
    const auto points = expand_sweep(s);
    ASSERT_EQ(points.size(), 3u);
    EXPECT_EQ(points[2].values, (std::vector<json>{8, 65536}));
    // No "seeds": the base scenario's own seed (blk-qd1-read.json has platform.seed 1).
    EXPECT_EQ(s.seeds, std::vector<std::uint64_t>{1});
    EXPECT_EQ(points[2].id, "0002-iodepth=8-bs=65536-s1");
}

TEST(SweepSpec, NoAxesIsOnePointPerSeedAndIdsAreDirectoryNames) {
    const SweepSpec s = spec_of(R"({"base": "blk-qd1-read.json", "seeds": [1, 2, 3], "metrics": ["x"]})");
    const auto points = expand_sweep(s);
    ASSERT_EQ(points.size(), 3u);
    EXPECT_EQ(points[1].id, "0001-s2");
    const SweepSpec odd = spec_of(R"({"base": "blk-qd1-read.json",
        "axes": [{"key": "name", "values": ["a b/c"]}], "metrics": ["x"]})");
    EXPECT_EQ(expand_sweep(odd)[0].id, "0000-name=a_b_c-s1") << "no '/' or space in a directory name";
}

TEST(SweepSpec, IdsAreWideEnoughForEveryIndex) {
    std::string values;
    for (int i = 0; i < 200; ++i) values += (i ? "," : "") + std::to_string(i + 1);
    const SweepSpec s =
        spec_of(R"({"base": "blk-qd1-read.json", "axes": [{"key": "workloads.0.iodepth", "values": [)" +
                values + R"(]}], "seeds": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,
                                21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51],
                                "metrics": ["x"]})");
    const auto points = expand_sweep(s);
    ASSERT_EQ(points.size(), 10200u);
    EXPECT_EQ(points[0].id.substr(0, 6), "00000-");
    EXPECT_EQ(points.back().id.substr(0, 6), "10199-");
}

TEST(SweepSpec, BadFilesNameFilePointerExpectedAndFound) {
    const struct {
        const char* intent;
        const char* text;
        const char* message;  // a substring of the error
    } cases[] = {
        {"not JSON", R"({"base": )", "study.json:1:10: not valid JSON"},
        {"no base", R"({"metrics": ["x"]})", "study.json: /base: expected required a string"},
        {"no metrics", R"({"base": "blk-qd1-read.json"})",
         "study.json: /metrics: expected required an array"},
        {"unknown key", R"({"base": "blk-qd1-read.json", "metrics": ["x"], "axis": []})",
         "study.json: /axis: expected no such key"},
        {"missing base", R"({"base": "nope.json", "metrics": ["x"]})",
         "study.json: /base: expected a valid scenario file, found string \"nope.json\": "},
        {"bad key (typo)", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "workloads.0.iodeth", "values": [1]}]})",
         "study.json: /axes/0/key: expected a key the scenario schema has (\"iodeth\" is not a field of "
         "\"workloads.0\"), found string \"workloads.0.iodeth\""},
        {"bad key (no such section)", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "platfrom.pcpus", "values": [1]}]})",
         "/axes/0/key: expected a key the scenario schema has (\"platfrom\" is not a field of a scenario)"},
        {"key with a value", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "platform.pcpus=2", "values": [1]}]})",
         "/axes/0/key: expected a --set key without \"=\""},
        {"seed as an axis", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "platform.seed", "values": [1]}]})",
         "/axes/0/key: expected a key other than platform.seed"},
        {"bad value (type)", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "workloads.0.iodepth", "values": [1, "deep"]}]})",
         "study.json: /axes/0/values/1: expected a value the base scenario takes with --set "
         "workloads.0.iodepth=\"deep\", found "},
        {"bad value (range, the scenario schema's bound)", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "workloads.0.iodepth", "values": [0]}]})",
         "/workloads/0/iodepth: expected an integer in [1, 4096], found integer 0"},
        {"bad value (enumeration)", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "domains.1.disks.0.model", "values": ["tape"]}]})",
         "/axes/0/values/0: expected a value the base scenario takes"},
        {"index beyond the base's array", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "domains.5.vcpus", "values": [2]}]})",
         "/axes/0/values/0: expected a value the base scenario takes with --set domains.5.vcpus=2"},
        {"zip with unequal lengths", R"({"base": "blk-qd1-read.json", "metrics": ["x"], "combine": "zip",
            "axes": [{"key": "workloads.0.iodepth", "values": [1, 2]}, {"key": "workloads.0.bs", "values": [4096]}]})",
         "study.json: /axes/1/values: expected as many values as /axes/0 has (2, combine \"zip\"), found an "
         "array of 1"},
        {"unknown combine", R"({"base": "blk-qd1-read.json", "metrics": ["x"], "combine": "product"})",
         "/combine: expected one of \"cross\", \"zip\""},
        {"empty values", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "workloads.0.iodepth", "values": []}]})",
         "/axes/0/values: expected an array of 1 to 10000 items"},
        {"same key twice", R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "workloads.0.iodepth", "values": [1]}, {"key": "workloads.0.iodepth", "values": [2]}]})",
         "/axes/1/key: expected a key no other axis sweeps"},
        {"seed twice", R"({"base": "blk-qd1-read.json", "metrics": ["x"], "seeds": [1, 2, 1]})",
         "/seeds/2: expected a seed not listed before, found integer 1"},
        {"negative seed", R"({"base": "blk-qd1-read.json", "metrics": ["x"], "seeds": [-1]})",
         "/seeds/0: expected an integer in [0, 9223372036854775807]"},
        {"metric with an empty component", R"({"base": "blk-qd1-read.json", "metrics": ["workloads..ops"]})",
         "/metrics/0: expected a dotted report path with no empty component, found string "
         "\"workloads..ops\""},
        {"metric with a trailing dot", R"({"base": "blk-qd1-read.json", "metrics": ["workloads.0."]})",
         "/metrics/0: expected a dotted report path with no empty component"},
        {"metric with whitespace", R"({"base": "blk-qd1-read.json", "metrics": ["workloads.0.ops per s"]})",
         "/metrics/0: expected a dotted report path without whitespace"},
        {"metric not a string", R"({"base": "blk-qd1-read.json", "metrics": [3]})",
         "/metrics/0: expected a non-empty string, found integer 3"},
        {"values valid alone but not together (a 64 KiB block on a 4 KiB disk)",
         R"({"base": "blk-qd1-read.json", "metrics": ["x"],
            "axes": [{"key": "domains.1.disks.0.sectors", "values": [2097152, 8]},
                     {"key": "workloads.0.bs", "values": [4096, 65536]}]})",
         "study.json: /axes: expected values that the base scenario takes together (point "
         "0003-sectors=8-bs=65536-s1: "
         "--set domains.1.disks.0.sectors=8 --set workloads.0.bs=65536), found "},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.intent);
        const std::string e = error_of(c.text);
        EXPECT_NE(e.find(c.message), std::string::npos) << e;
    }
}

TEST(SweepSpec, OnePointsProcessSkipsOnlyTheCombinations) {
    // Valid alone, not together (see above): a point run from a --list line leaves that to `xensim run`.
    const std::string text = R"({"base": "blk-qd1-read.json", "metrics": ["x"],
        "axes": [{"key": "domains.1.disks.0.sectors", "values": [2097152, 8]},
                 {"key": "workloads.0.bs", "values": [4096, 65536]}]})";
    EXPECT_NE(error_of(text), "");
    EXPECT_EQ(expand_sweep(parse_sweep(text, kFile, SweepChecks::without_combinations)).size(), 4u);
    // Every other check still applies.
    EXPECT_THROW(parse_sweep(R"({"base": "blk-qd1-read.json", "metrics": ["x"],
        "axes": [{"key": "workloads.0.iodepth", "values": [0]}]})",
                             kFile, SweepChecks::without_combinations),
                 ScenarioError);
}

TEST(SweepSpec, TooManyPointsIsRefusedBeforeExpanding) {
    std::string values;
    for (int i = 0; i < 400; ++i) values += (i ? "," : "") + std::to_string(i + 1);
    const std::string axis = R"({"key": "workloads.0.iodepth", "values": [)" + values + "]}";
    const std::string e =
        error_of(R"({"base": "blk-qd1-read.json", "metrics": ["x"], "axes": [)" + axis + "," +
                 axis.substr(0, 10) + R"(workloads.0.bs", "values": [)" + values + "]}]}");
    EXPECT_NE(e.find("/axes: expected at most 100000 points"), std::string::npos) << e;
}

TEST(SweepSpec, SetArgumentKeepsAStringQuotedSoItStaysAString) {
    EXPECT_EQ(sweep_set_argument("a.b", json("null")), "a.b=\"null\"");
    EXPECT_EQ(sweep_set_argument("a.b", json(4)), "a.b=4");
    EXPECT_EQ(sweep_set_argument("a.b", json::parse("[1,2]")), "a.b=[1,2]");
    // What --set makes of it: the string "null" for a string-typed key (sim/platform/scenario.h).
    ScenarioOverrides o;
    o.sets = {"domains.1.disks.0.model=\"null\""};
    EXPECT_EQ(load_scenario(std::string(XENSIM_SOURCE_DIR) + "/scenarios/blk-qd1-read.json", o)
                  .effective["domains"][1]["disks"][0]["model"],
              "null");
}

TEST(SweepSpec, SchemaDeclaresEveryField) {
    const json s = sweep_json_schema();
    EXPECT_EQ(s["title"], "xensim sweep");
    EXPECT_EQ(s["required"], json::array({"base", "metrics"}));
    EXPECT_EQ(s["properties"]["combine"]["enum"], json::array({"cross", "zip"}));
    EXPECT_FALSE(s["properties"]["axes"]["items"]["properties"]["values"]["items"].contains("type"))
        << "an axis value may be any JSON value";
}

}  // namespace
}  // namespace xensim
