// The proof that temporal decoupling changes nothing (docs/temporal-decoupling.md): every shipped
// scenario runs with platform.fast_paths on (the default) and off, and the two report.json and
// stats.json files must be identical but for wall time and the switch itself. A second test makes
// sure the fast paths actually run on the paths they were built for, so the first cannot pass
// because nothing was decoupled.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/scenario/cli_util.h"
#include "tests/scenario/fast_paths_util.h"

namespace {

using nlohmann::json;
using namespace cli_testing;

std::vector<std::string> shipped_scenarios() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(src("scenarios")))
        if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

class FastPaths : public ::testing::TestWithParam<std::string> {};

TEST_P(FastPaths, TheReportIsTheSameWithAndWithout) {
    const fs::path scenario = src("scenarios/" + GetParam() + ".json");
    const fs::path dir = temp_dir("fast-" + GetParam());
    const FastPathRun on = run_fast_paths(scenario, dir / "on", true),
                      off = run_fast_paths(scenario, dir / "off", false);
    fs::remove_all(dir);
    EXPECT_EQ(on.status, 0);
    EXPECT_EQ(off.status, 0);
    EXPECT_EQ(first_difference(on.report, off.report), "");
    EXPECT_EQ(first_difference(on.stats, off.stats), "");
}

INSTANTIATE_TEST_SUITE_P(EveryShippedScenario, FastPaths, ::testing::ValuesIn(shipped_scenarios()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                             std::string n = i.param;
                             std::replace(n.begin(), n.end(), '-', '_');
                             return n;
                         });

// What a teacher follows must not move either: the traces of every category, text and Perfetto,
// are the same bytes with and without the fast paths.
TEST(FastPathsTraces, EveryTraceRecordIsTheSameWithAndWithout) {
    auto read = [](const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    const char* all = "all";
    struct Case {
        const char* scenario;
        const char* shorter;
    };
    for (const Case& c : {Case{"ide-vs-pv-4k-randread", "workloads.0.number_ios=50"},
                          Case{"blk-randread-4k-qd32", "workloads.0.number_ios=200"},
                          Case{"net-udp-rr", "workloads.0.number=100"}}) {
        const std::string scenario = c.scenario;
        for (const char* format : {"text", "perfetto"}) {
            SCOPED_TRACE(scenario + " " + format);
            std::string traces[2];
            for (int fast = 0; fast < 2; ++fast) {
                fs::path dir = temp_dir("fast-trace-" + scenario + format + std::to_string(fast));
                Result r = xensim("run " + src("scenarios/" + scenario + ".json") + " --set " + c.shorter +
                                  " --set platform.fast_paths=" + (fast ? "true" : "false") + " --trace " +
                                  all + " --trace-format " + format + " --out " + dir.string());
                EXPECT_EQ(r.status, 0) << r.output;
                traces[fast] = read(dir / (std::string(format) == "text" ? "trace.txt" : "trace.json"));
                fs::remove_all(dir);
            }
            EXPECT_GT(traces[1].size(), 1000u);
            EXPECT_TRUE(traces[0] == traces[1]) << "the traces differ";
        }
    }
}

// `xensim bench` prints how often each fast path ran. On the emulated-IDE, PV block and PV net paths
// a vCPU's guest code runs ahead many times per request; with the switch off, never.
TEST(FastPathsTaken, GuestCodeRunsAheadOnTheIoPathsAndNeverWhenSwitchedOff) {
    auto run_aheads = [](const std::string& scenario, const std::string& extra) -> std::uint64_t {
        Result r = xensim("bench " + src("scenarios/" + scenario + ".json") + extra);
        EXPECT_EQ(r.status, 0) << r.output;
        const std::string key = "fast paths: run_ahead ";
        const std::size_t at = r.output.find(key);
        EXPECT_NE(at, std::string::npos) << r.output;
        return at == std::string::npos ? 0 : std::stoull(r.output.substr(at + key.size()));
    };
    struct Case {
        const char* scenario;
        std::uint64_t at_least;  // measured when the fast path was added, with some room
    };
    for (const Case& c : {Case{"ide-vs-pv-4k-randread", 26 * 2000},  // 53 per request: 2 per port access
                          Case{"blk-randread-4k-qd32", 20000},       // 2 per request
                          Case{"net-udp-stream-64", 20000 / 4}}) {   // 0.4 per packet (run_ahead backs off)
        SCOPED_TRACE(c.scenario);
        EXPECT_GE(run_aheads(c.scenario, ""), c.at_least);
        EXPECT_EQ(run_aheads(c.scenario, " --set platform.fast_paths=false"), 0u);
    }
}

// The other fast paths, by their counters: hypervisor work run ahead, switches completed early, and
// switched-in vCPUs' code run by another carrier. On the emulated IDE path each port access's answer
// comes through two early switches to a vCPU (dom0's in, the guest's back); with the switch off,
// none of them runs.
TEST(FastPathsTaken, EmulatedIoIsAnsweredThroughEarlySwitches) {
    auto counts = [](const std::string& extra) {
        Result r = xensim("bench " + src("scenarios/ide-vs-pv-4k-randread.json") + extra);
        EXPECT_EQ(r.status, 0) << r.output;
        std::map<std::string, std::uint64_t> n;
        for (const char* key : {"work_ahead", "idle_switch", "borrowed"}) {
            const std::string k = std::string(key) + " ";
            const std::size_t at = r.output.find(k, r.output.find("fast paths:"));
            EXPECT_NE(at, std::string::npos) << r.output;
            n[key] = at == std::string::npos ? 0 : std::stoull(r.output.substr(at + k.size()));
        }
        return n;
    };
    const auto on = counts("");
    EXPECT_GE(on.at("borrowed"), 2u * 26 * 2000 * 9 / 10);  // 2 per port access, 26 per request
    EXPECT_GE(on.at("idle_switch"), 26u * 2000);
    EXPECT_GE(on.at("work_ahead"), 26u * 2000);
    for (const auto& [key, n] : counts(" --set platform.fast_paths=false")) EXPECT_EQ(n, 0u) << key;
}

}  // namespace
