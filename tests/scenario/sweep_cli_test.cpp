// `xensim sweep` as a user runs it (issue 15): a real sweep's table against each point's report,
// resume, a failing point, GNU parallel over shards then --merge, bad sweep files (exit 2).
#include <gtest/gtest.h>

#include <sstream>

#include "tests/scenario/cli_util.h"

namespace {

using namespace cli_testing;
using nlohmann::json;

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

std::vector<std::string> csv_lines(const fs::path& p) {
    std::vector<std::string> lines;
    std::istringstream in(read_text(p));
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    return lines;
}

std::vector<std::string> split_csv_simple(const std::string& line) {  // our rows here have no quoted fields
    std::vector<std::string> out;
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, ',')) out.push_back(field);
    if (!line.empty() && line.back() == ',') out.push_back("");
    return out;
}

// A 2x2 sweep over a shipped scenario with few requests (40 reads per point), two seeds: 8 points.
// The hdd model's seek times depend on the random offsets, so its latency varies with the seed;
// the exits per request do not.
fs::path write_small_sweep(const fs::path& dir) {
    fs::path f = dir / "study.json";
    std::ofstream(f) << R"({
      "base": ")" << src("scenarios/blk-qd1-read.json")
                     << R"(",
      "axes": [
        {"key": "domains.1.disks.0.model", "values": ["ssd", "hdd"]},
        {"key": "workloads.0.iodepth", "values": [1, 2]},
        {"key": "workloads.0.number_ios", "values": [40]}
      ],
      "seeds": [1, 2],
      "metrics": ["workloads.0.per_request.exits_total", "workloads.0.latency_ns.mean", "workloads.0.ops"]
    })";
    return f;
}

TEST(SweepCli, CheckedInJsonSchemaIsWhatTheLoaderDeclares) {
    Result r = xensim("schema sweep");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(json::parse(r.output), read_json(src("scenarios/schema/sweep.schema.json")))
        << "regenerate with: xensim schema sweep > scenarios/schema/sweep.schema.json";
}

TEST(SweepCli, SweepCsvHoldsEachPointsReportFigures) {
    const fs::path d = temp_dir("sweep-small");
    const fs::path f = write_small_sweep(d), out = d / "out";
    Result r = xensim("sweep " + f.string() + " --out " + out.string() + " -j 2");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("sweep: 8/8 done"), std::string::npos) << "plain progress lines off a terminal\n"
                                                                   << r.output;
    const auto lines = csv_lines(out / "sweep.csv");
    ASSERT_EQ(lines.size(), 9u);
    EXPECT_EQ(
        lines[0],
        "index,id,domains.1.disks.0.model,workloads.0.iodepth,workloads.0.number_ios,seed,"
        "workloads.0.per_request.exits_total,workloads.0.latency_ns.mean,workloads.0.ops,status,reason");
    const json results = read_json(out / "sweep.json");
    for (std::size_t i = 1; i < lines.size(); ++i) {
        SCOPED_TRACE(lines[i]);
        const auto cells = split_csv_simple(lines[i]);
        ASSERT_EQ(cells.size(), 11u);
        EXPECT_EQ(cells[0], std::to_string(i - 1));
        EXPECT_EQ(cells[9], "ok");
        const json report = read_json(out / "points" / cells[1] / "report.json");
        const json& w = report["workloads"][0];
        // The point ran with its axis values and seed (the report records the effective configuration).
        EXPECT_EQ(report["config"]["domains"][1]["disks"][0]["model"], cells[2]);
        EXPECT_EQ(report["config"]["workloads"][0]["iodepth"].dump(), cells[3]);
        EXPECT_EQ(report["config"]["platform"]["seed"].dump(), cells[5]);
        EXPECT_EQ(w["per_request"]["exits_total"].dump(), cells[6]);
        EXPECT_EQ(w["latency_ns"]["mean"].dump(), cells[7]);
        EXPECT_EQ(w["ops"].dump(), cells[8]);
        EXPECT_EQ(cells[8], "40");
        EXPECT_EQ(results["points"][i - 1]["metrics"]["workloads.0.latency_ns.mean"],
                  w["latency_ns"]["mean"]);
    }
    // Per combination over the two seeds: hdd latency varies with the seed (a mean and an interval),
    // the exits per request do not (one value).
    ASSERT_EQ(results["summary"].size(), 4u);
    const json& hdd = results["summary"][2];
    EXPECT_EQ(hdd["values"]["domains.1.disks.0.model"], "hdd");
    const json& lat = hdd["metrics"]["workloads.0.latency_ns.mean"];
    EXPECT_TRUE(lat["varies_with_seed"].get<bool>()) << lat;
    const double a = results["points"][4]["metrics"]["workloads.0.latency_ns.mean"].get<double>();
    const double b = results["points"][5]["metrics"]["workloads.0.latency_ns.mean"].get<double>();
    EXPECT_DOUBLE_EQ(lat["mean"].get<double>(), (a + b) / 2);
    EXPECT_DOUBLE_EQ(lat["ci95_half_width"].get<double>(),
                     12.706 * std::abs(a - b) / std::sqrt(2.0) / std::sqrt(2.0));
    EXPECT_FALSE(hdd["metrics"]["workloads.0.per_request.exits_total"]["varies_with_seed"].get<bool>());
    fs::remove_all(d);
}

TEST(SweepCli, ResumeRunsOnlyWhatIsNotFinished) {
    const fs::path d = temp_dir("sweep-resume");
    const fs::path f = write_small_sweep(d), out = d / "out";
    ASSERT_EQ(xensim("sweep " + f.string() + " --out " + out.string() + " -j 2").status, 0);
    const std::string before = read_text(out / "sweep.csv");
    const std::string gone = "0005-model=hdd-iodepth=1-number_ios=40-s2";
    ASSERT_TRUE(fs::exists(out / "points" / gone / "point.json"));
    fs::remove_all(out / "points" / gone);
    // A point whose marker is missing (killed before it finished) runs again too.
    const std::string torn = "0002-model=ssd-iodepth=2-number_ios=40-s1";
    fs::remove(out / "points" / torn / "point.json");
    Result r = xensim("sweep " + f.string() + " --out " + out.string() + " -j 1");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("sweep: 6/8 points already done"), std::string::npos) << r.output;
    // The progress log names each point that ran: exactly the two.
    std::size_t ran = 0;
    for (std::size_t at = 0; (at = r.output.find(", point ", at)) != std::string::npos; ++at) ++ran;
    EXPECT_EQ(ran, 2u) << r.output;
    EXPECT_NE(r.output.find("point " + gone + " ok"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("point " + torn + " ok"), std::string::npos) << r.output;
    EXPECT_EQ(read_text(out / "sweep.csv"), before) << "deterministic per point";
    // Nothing left to do: nothing runs.
    Result again = xensim("sweep " + f.string() + " --out " + out.string());
    EXPECT_EQ(again.status, 0);
    EXPECT_EQ(again.output.find(", point "), std::string::npos) << again.output;
    fs::remove_all(d);
}

TEST(SweepCli, AFailingPointIsRecordedAndTheOthersGoOn) {
    // Detaching the disk 200 us into the run fails the I/O in flight (docs/architecture.md, "detach"):
    // the run exits 1 with "1 workload operation(s) failed". 0 never detaches.
    const fs::path d = temp_dir("sweep-fail");
    const fs::path f = d / "fail.json", out = d / "out";
    std::ofstream(f) << R"({"base": ")" << src("scenarios/blk-qd1-read.json") << R"(",
      "axes": [{"key": "workloads.0.number_ios", "values": [50]},
               {"key": "domains.1.disks.0.detach_at_us", "values": [0, 200, 0]}],
      "metrics": ["workloads.0.ops"]})";
    Result r = xensim("sweep " + f.string() + " --out " + out.string() + " -j 2");
    EXPECT_EQ(r.status, 1) << r.output;
    const auto lines = csv_lines(out / "sweep.csv");
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[1], "0,0000-number_ios=50-detach_at_us=0-s1,50,0,1,50,ok,");
    EXPECT_EQ(lines[2],
              "1,0001-number_ios=50-detach_at_us=200-s1,50,200,1,,failed,"
              "exit status 1: xensim: 1 workload operation(s) failed");
    EXPECT_EQ(lines[3], "2,0002-number_ios=50-detach_at_us=0-s1,50,0,1,50,ok,");
    EXPECT_NE(r.output.find("point 0001-number_ios=50-detach_at_us=200-s1 failed"), std::string::npos)
        << r.output;
    fs::remove_all(d);
}

TEST(SweepCli, GnuParallelOverTwoShardsThenMergeEqualsOneMachine) {
    const fs::path d = temp_dir("sweep-parallel");
    const fs::path f = write_small_sweep(d);
    ASSERT_EQ(xensim("sweep " + f.string() + " --out " + (d / "one").string() + " -j 2").status, 0);
    for (int shard = 0; shard < 2; ++shard) {
        const fs::path out = d / ("shard" + std::to_string(shard));
        Result list = xensim("sweep " + f.string() + " --out " + out.string() + " --list --shard " +
                             std::to_string(shard) + "/2");
        ASSERT_EQ(list.status, 0) << list.output;
        EXPECT_EQ(std::count(list.output.begin(), list.output.end(), '\n'), 4) << list.output;
        // Each line is a command of its own: run them through Debian's GNU parallel.
        const std::string cmd = std::string(XENSIM_BIN) + " sweep " + f.string() + " --out " + out.string() +
                                " --list --shard " + std::to_string(shard) +
                                "/2 | parallel --will-cite --halt never -j 2 > " +
                                (d / "parallel.log").string() + " 2>&1";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << read_text(d / "parallel.log");
        EXPECT_FALSE(fs::exists(out / "sweep.csv")) << "a shard writes its points, not the table";
    }
    const fs::path merged = d / "merged";
    Result m = xensim("sweep " + f.string() + " --out " + merged.string() + " --merge " +
                      (d / "shard0").string() + " " + (d / "shard1").string());
    ASSERT_EQ(m.status, 0) << m.output;
    EXPECT_EQ(read_text(merged / "sweep.csv"), read_text(d / "one" / "sweep.csv"));
    EXPECT_EQ(read_json(merged / "sweep.json"), read_json(d / "one" / "sweep.json"));
    EXPECT_TRUE(fs::exists(merged / "points" / "0007-model=hdd-iodepth=2-number_ios=40-s2" / "report.json"))
        << "the merged directory holds every point";
    // A merge missing a shard says which points did not run.
    Result half = xensim("sweep " + f.string() + " --out " + (d / "half").string() + " --merge " +
                         (d / "shard1").string());
    EXPECT_EQ(half.status, 1);
    EXPECT_NE(read_text(d / "half" / "sweep.csv")
                  .find("0,0000-model=ssd-iodepth=1-number_ios=40-s1,ssd,1,40,1,,,,not_run,"),
              std::string::npos);
    fs::remove_all(d);
}

TEST(SweepCli, BadSweepFilesExit2BeforeRunningAnything) {
    const fs::path d = temp_dir("sweep-bad");
    const struct {
        const char* intent;
        std::string text;
        const char* message;
    } cases[] = {
        {"bad key",
         R"({"base": ")" + src("scenarios/blk-qd1-read.json") +
             R"(", "axes": [{"key": "workloads.0.iodeth", "values": [1]}], "metrics": ["x"]})",
         "bad.json: /axes/0/key: expected a key the scenario schema has"},
        {"bad value",
         R"({"base": ")" + src("scenarios/blk-qd1-read.json") +
             R"(", "axes": [{"key": "workloads.0.iodepth", "values": [1, 0]}], "metrics": ["x"]})",
         "bad.json: /axes/0/values/1: expected a value the base scenario takes"},
        {"missing base", R"({"base": "nope.json", "metrics": ["x"]})",
         "bad.json: /base: expected a valid scenario file, found string \"nope.json\""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.intent);
        std::ofstream(d / "bad.json") << c.text;
        Result r = xensim("sweep " + (d / "bad.json").string() + " --out " + (d / "out").string());
        EXPECT_EQ(r.status, 2) << r.output;
        EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
        EXPECT_FALSE(fs::exists(d / "out")) << "nothing runs for a bad sweep file";
    }
    const fs::path f = write_small_sweep(d);
    for (const char* args : {"--shard 2/2", "--shard x", "-j 0", "--list --merge", "--point"}) {
        SCOPED_TRACE(args);
        Result r = xensim("sweep " + f.string() + " --out " + (d / "out").string() + " " + args);
        EXPECT_EQ(r.status, 2) << r.output;
    }
    Result none = xensim("sweep " + f.string() + " --out " + (d / "out").string() + " --point 9999-nope");
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.output.find("no point 9999-nope"), std::string::npos) << none.output;
    fs::remove_all(d);
}

}  // namespace
