// `xensim compare` as a user and a CI job use it: real reports from `xensim run`, edited where a
// test needs a figure to move, compared by the binary; exit status, table and --json checked.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/scenario/cli_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cli_testing;

fs::path write_json(const fs::path& p, const json& j) {
    std::ofstream(p) << j.dump(2) << "\n";
    return p;
}

// Runs a shipped scenario into dir and returns the report's path.
fs::path run_report(const std::string& scenario, const fs::path& dir) {
    Result r = xensim("run " + src("scenarios/" + scenario) + " --out " + dir.string());
    EXPECT_EQ(r.status, 0) << r.output;
    return dir / "report.json";
}

bool has(const Result& r, const std::string& s) { return r.output.find(s) != std::string::npos; }

const std::string kScenario = "blk-randread-4k-qd32.json";
const std::string kWorkload = "workloads.randread-4k-qd32.";

// The guest's entry in domains[].
json& guest_domain(json& report) {
    for (auto& d : report["domains"])
        if (d["name"] == "guest") return d;
    throw std::runtime_error("no guest domain in the report");
}

TEST(CompareCli, IdenticalRunsPassAtZeroToleranceAndHostIsIgnored) {
    fs::path d = temp_dir("same");
    fs::path a = run_report(kScenario, d / "a"), b = run_report(kScenario, d / "b");
    ASSERT_NE(read_json(a)["host"], read_json(b)["host"]) << "two runs differ in wall time, if nothing else";

    Result r = xensim("compare " + a.string() + " " + b.string() + " --tolerance 0 --json " +
                      (d / "c.json").string());
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(has(r, "verdict: pass (0 of ")) << r.output;
    EXPECT_TRUE(has(r, "workload randread-4k-qd32\n")) << r.output;
    for (const char* row : {"  ops ", "  latency_ns.p99_9 ", "  per_request.exits.VMCALL ", "  block.iops ",
                            "  block.backend.grant_maps ", "  guest.exits_total ", "  sim_time_ns "})
        EXPECT_TRUE(has(r, row)) << row << "\n" << r.output;
    EXPECT_FALSE(has(r, "MOVED")) << r.output;
    json c = read_json(d / "c.json");
    EXPECT_EQ(c["verdict"], "pass");
    EXPECT_EQ(c["moved"], 0);
    EXPECT_GT(c["metrics"].size(), 30u);
    for (const auto& m : c["metrics"]) {
        EXPECT_EQ(m["path"].get<std::string>().find("host"), std::string::npos) << m["path"];
        EXPECT_EQ(m["delta"], 0) << m["path"];
    }

    Result info = xensim("compare " + a.string() + " " + b.string());
    EXPECT_EQ(info.status, 0) << info.output;
    EXPECT_TRUE(has(info, "verdict: informational")) << info.output;
}

TEST(CompareCli, AnExitCountThatGrowsFailsTheGateAndIsNamed) {
    fs::path d = temp_dir("exit-grows");
    fs::path a = run_report(kScenario, d / "a");
    json edited = read_json(a);
    json& guest = guest_domain(edited);
    guest["exits"]["HLT"] = guest["exits"]["HLT"].get<std::uint64_t>() + 1;
    guest["exits_total"] = guest["exits_total"].get<std::uint64_t>() + 1;
    fs::path b = write_json(d / "b.json", edited);

    Result r = xensim("compare " + a.string() + " " + b.string() + " --tolerance exits=0");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(has(r, "moved beyond tolerance (1 of ")) << r.output;
    EXPECT_TRUE(has(r, "domains.guest.exits_total: baseline ")) << r.output;
    EXPECT_TRUE(has(r, ", allowed 0 (--tolerance exits=0)")) << r.output;
    EXPECT_TRUE(has(r, "verdict: fail")) << r.output;
    EXPECT_TRUE(has(r, "xensim: 1 metric(s) moved beyond tolerance")) << r.output;

    Result loose = xensim("compare " + a.string() + " " + b.string() + " --tolerance 10%");
    EXPECT_EQ(loose.status, 0) << "one exit in ~2000 is within 10%\n" << loose.output;
    Result info = xensim("compare " + a.string() + " " + b.string());
    EXPECT_EQ(info.status, 0) << "no tolerance: informational\n" << info.output;
    EXPECT_FALSE(has(info, "moved beyond tolerance")) << info.output;
}

TEST(CompareCli, TheLongestMatchingPatternWins) {
    fs::path d = temp_dir("precedence");
    fs::path a = run_report(kScenario, d / "a");
    json edited = read_json(a);
    json& pr = edited["workloads"][0]["per_request"];
    pr["exits_total"] = pr["exits_total"].get<double>() * 1.03;  // +3%, nothing else moves
    fs::path b = write_json(d / "b.json", edited);
    std::string cmp = "compare " + a.string() + " " + b.string();

    EXPECT_EQ(xensim(cmp + " --tolerance exits=0").status, 1);
    EXPECT_EQ(xensim(cmp + " --tolerance exits=0 --tolerance per_request.exits_total=5%").status, 0)
        << "the longer pattern allows 5%";
    EXPECT_EQ(xensim(cmp + " --tolerance per_request.exits_total=5% --tolerance exits=0").status, 0)
        << "length decides, not order";
    EXPECT_EQ(xensim(cmp + " --tolerance exits=0 --tolerance per_request.exits_total=2%").status, 1);
    Result r = xensim(cmp + " --tolerance exits=5% --tolerance exits_total=0 --tolerance 50%");
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(has(r, kWorkload + "per_request.exits_total: baseline ")) << r.output;
    EXPECT_TRUE(has(r, "(--tolerance exits_total=0)")) << r.output;
    EXPECT_FALSE(has(r, "domains.guest.exits_total: baseline")) << "the domain's count did not move\n"
                                                                << r.output;
}

TEST(CompareCli, SchemaVersionMismatchAndOtherBadInputExitWithStatus2) {
    fs::path d = temp_dir("bad");
    fs::path a = run_report(kScenario, d / "a");
    json old = read_json(a);
    old["schema_version"] = 1;
    fs::path b = write_json(d / "old.json", old);

    Result r = xensim("compare " + a.string() + " " + b.string() + " --tolerance 10%");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(has(r, "schema_version differs: " + a.string() + " has 5, " + b.string() + " has 1"))
        << r.output;

    Result missing = xensim("compare " + a.string() + " " + (d / "nope.json").string());
    EXPECT_EQ(missing.status, 2);
    EXPECT_TRUE(has(missing, (d / "nope.json").string() + ": cannot open the report file")) << missing.output;

    std::ofstream(d / "broken.json") << "{\"schema_version\": 2,";
    Result broken = xensim("compare " + (d / "broken.json").string() + " " + a.string());
    EXPECT_EQ(broken.status, 2);
    EXPECT_TRUE(has(broken, (d / "broken.json").string() + ":1:")) << broken.output;
    EXPECT_TRUE(has(broken, "not valid JSON")) << broken.output;

    Result scenario = xensim("compare " + src("scenarios/" + kScenario) + " " + a.string());
    EXPECT_EQ(scenario.status, 2) << "a scenario is not a report\n" << scenario.output;
    EXPECT_TRUE(has(scenario, "/schema_version: expected an integer")) << scenario.output;

    Result tol = xensim("compare " + a.string() + " " + a.string() + " --tolerance exits=5%%");
    EXPECT_EQ(tol.status, 2);
    EXPECT_TRUE(has(tol, "--tolerance: expected VALUE or PATTERN=VALUE")) << tol.output;
    EXPECT_EQ(xensim("compare " + a.string()).status, 2);
    EXPECT_EQ(xensim("compare " + a.string() + " " + a.string() + " " + a.string()).status, 2);
    EXPECT_EQ(xensim("compare " + a.string() + " " + a.string() + " --tolerance").status, 2);
    EXPECT_EQ(xensim("compare " + a.string() + " " + a.string() + " --frobnicate").status, 2);
    EXPECT_EQ(xensim("compare " + a.string() + " " + a.string() + " --tolerance 1% --tolerance 2%").status,
              2);
    EXPECT_EQ(
        xensim("compare " + a.string() + " " + a.string() + " --json " + (d / "no/such/dir.json").string())
            .status,
        2);
}

TEST(CompareCli, OneWorkloadEachWithDifferentNamesIsMatchedByPosition) {
    fs::path d = temp_dir("renamed");
    fs::path a = run_report(kScenario, d / "a");
    json renamed = read_json(a);
    renamed["workloads"][0]["name"] = "renamed";
    fs::path b = write_json(d / "b.json", renamed);
    Result r = xensim("compare " + a.string() + " " + b.string() + " --tolerance 0");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(
        has(r,
            "note: workload names differ (baseline \"randread-4k-qd32\", new \"renamed\"): matched by "
            "position"))
        << r.output;
    EXPECT_TRUE(has(r, "workload randread-4k-qd32 (new: renamed)")) << r.output;
}

TEST(CompareCli, PersistentGrantsOffSideBySideAndAsJson) {
    fs::path d = temp_dir("persistent");
    fs::path a = run_report(kScenario, d / "a");
    fs::path b = run_report("blk-persistent-off.json", d / "b");
    std::string cmp = "compare " + a.string() + " " + b.string();

    Result info = xensim(cmp);
    EXPECT_EQ(info.status, 0) << info.output;
    // A hypercall only the new run makes: "-" on the baseline side, and no ratio or delta.
    std::size_t row = info.output.find("  per_request.hypercalls.grant_table_op/GNTTABOP_unmap_grant_ref ");
    ASSERT_NE(row, std::string::npos) << info.output;
    std::string line = info.output.substr(row, info.output.find('\n', row) - row);
    EXPECT_NE(line.find(" -  "), std::string::npos) << line;
    EXPECT_EQ(line.back(), '-') << line;

    Result gate = xensim(cmp + " --tolerance 10% --json " + (d / "c.json").string());
    EXPECT_EQ(gate.status, 1) << gate.output;
    EXPECT_TRUE(has(gate, kWorkload + "block.backend.grant_maps: baseline ")) << gate.output;
    EXPECT_TRUE(has(gate, kWorkload +
                              "per_request.hypercalls.grant_table_op/GNTTABOP_unmap_grant_ref: baseline -, "
                              "new 1, only in new (--tolerance 10%)"))
        << gate.output;
    json c = read_json(d / "c.json");
    EXPECT_EQ(c["verdict"], "fail");
    EXPECT_EQ(c["tolerances"], json::array({"10%"}));
    int moved = 0;
    for (const auto& m : c["metrics"]) {
        for (const char* k : {"path", "baseline", "new", "ratio", "delta", "tolerance", "moved"})
            EXPECT_TRUE(m.contains(k)) << k << " in " << m.dump();
        moved += m["moved"].get<bool>();
        if (m["path"] == kWorkload + "block.backend.grant_maps") {
            EXPECT_EQ(m["baseline"], read_json(a)["workloads"][0]["block"]["backend"]["grant_maps"]);
            EXPECT_EQ(m["new"], read_json(b)["workloads"][0]["block"]["backend"]["grant_maps"]);
            EXPECT_EQ(m["moved"], true);
        }
        if (m["path"] == kWorkload + "per_request.hypercalls.grant_table_op/GNTTABOP_unmap_grant_ref") {
            EXPECT_TRUE(m["baseline"].is_null());
            EXPECT_TRUE(m["ratio"].is_null());
            EXPECT_TRUE(m["delta"].is_null());
        }
    }
    EXPECT_EQ(c["moved"], moved);
    EXPECT_GT(moved, 0);
}

}  // namespace
