// The xensim command line as a user and a CI job use it.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/scenario/cli_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cli_testing;

TEST(Cli, HelpAndVersion) {
    Result h = xensim("--help");
    EXPECT_EQ(h.status, 0);
    EXPECT_NE(h.output.find("xensim run SCENARIO.json"), std::string::npos);
    Result v = xensim("--version");
    EXPECT_EQ(v.status, 0);
    EXPECT_EQ(v.output.rfind("xensim ", 0), 0u);
    EXPECT_EQ(v.output.find("Copyright"), std::string::npos) << "no SystemC banner";
}

TEST(Cli, BadFlagsExitWithStatus2) {
    EXPECT_EQ(xensim("").status, 2);
    EXPECT_EQ(xensim("frobnicate").status, 2);
    EXPECT_EQ(xensim("run").status, 2);
    EXPECT_EQ(xensim("run " + src("scenarios/evtchn-pingpong.json") + " --seed minus1").status, 2);
    EXPECT_EQ(xensim("run " + src("scenarios/evtchn-pingpong.json") + " --trace-format svg").status, 2);
    EXPECT_EQ(xensim("run " + src("scenarios/evtchn-pingpong.json") + " --hold").status, 2)
        << "--hold needs a socket";
    EXPECT_EQ(
        xensim("validate " + src("scenarios/evtchn-pingpong.json") + " --xenstore-socket /tmp/x").status, 2);
    Result r = xensim("run " + src("scenarios/evtchn-pingpong.json") + " --trace nosuch --out " +
                      temp_dir("badtrace").string());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("unknown trace category \"nosuch\""), std::string::npos) << r.output;
}

TEST(Cli, EveryShippedScenarioValidates) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(src("scenarios"))) {
        if (e.path().extension() != ".json") continue;
        Result r = xensim("validate " + e.path().string());
        EXPECT_EQ(r.status, 0) << e.path() << "\n" << r.output;
        ++n;
    }
    EXPECT_GE(n, 2);
}

TEST(Cli, BadScenarioNamesFilePointerAndSimulatesNothing) {
    fs::path d = temp_dir("bad");
    fs::path f = d / "bad.json";
    std::ofstream(f) << R"({"name":"x","domains":[{"name":"dom0","type":"pv"},{"name":"g","vcpus":"two"}]})";
    fs::path out = d / "out";
    Result r = xensim("run " + f.string() + " --out " + out.string());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find(f.string() + ": /domains/1/vcpus: expected an integer"), std::string::npos)
        << r.output;
    EXPECT_FALSE(fs::exists(out / "report.json")) << "nothing is simulated for a bad scenario";
    Result missing = xensim("validate " + (d / "nope.json").string());
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.output.find("cannot open"), std::string::npos);
}

TEST(Cli, CheckedInJsonSchemaIsWhatTheLoaderDeclares) {
    Result r = xensim("schema");
    ASSERT_EQ(r.status, 0);
    json generated = json::parse(r.output);
    json shipped = read_json(src("scenarios/schema/scenario.schema.json"));
    EXPECT_EQ(generated, shipped) << "regenerate with: xensim schema > scenarios/schema/scenario.schema.json";
}

json strip_host(json report) {
    report.erase("host");
    return report;
}

TEST(Cli, SameScenarioAndSeedGiveIdenticalReports) {
    fs::path a = temp_dir("det-a"), b = temp_dir("det-b");
    for (const char* s : {"scenarios/evtchn-pingpong.json", "scenarios/grant-copy.json",
                          "scenarios/blk-queues-4.json", "scenarios/blk-seqwrite-64k.json"}) {
        ASSERT_EQ(xensim("run " + src(s) + " --out " + a.string()).status, 0);
        ASSERT_EQ(xensim("run " + src(s) + " --out " + b.string()).status, 0);
        json ra = read_json(a / "report.json"), rb = read_json(b / "report.json");
        EXPECT_EQ(strip_host(ra), strip_host(rb)) << s;
        EXPECT_EQ(ra["schema_version"], 5);
        EXPECT_TRUE(ra["host"].contains("wall_seconds"));
    }
}

TEST(Cli, ReportCarriesConfigCountersAndPerRequestFigures) {
    fs::path d = temp_dir("report");
    Result r = xensim("run " + src("scenarios/evtchn-pingpong.json") + " --out " + d.string() +
                      " --set workloads.0.round_trips=100");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("Domains"), std::string::npos);
    EXPECT_NE(r.output.find("Workloads"), std::string::npos);
    json rep = read_json(d / "report.json");
    EXPECT_EQ(rep["config"]["workloads"][0]["round_trips"], 100);
    EXPECT_EQ(rep["config"]["platform"]["scheduler"]["tslice_us"], 30000) << "defaults are in the config";
    EXPECT_EQ(rep["cost_model"]["vmexit_roundtrip"], 700);
    EXPECT_EQ(rep["workloads"][0]["ops"], 100);
    EXPECT_TRUE(rep["workloads"][0]["per_request"].contains("exits"));
    EXPECT_TRUE(rep["workloads"][0]["totals"].contains("exits"));
    EXPECT_EQ(rep["simulation"]["stop_reason"], "workloads_done");
    EXPECT_GT(rep["simulation"]["hypervisor_operations"].get<std::uint64_t>(), 0u);
    EXPECT_TRUE(rep["stats"]["xen"]["evtchn"].contains("sends"));
    json catalog = read_json(d / "stats.json");
    const json& sends = catalog["xen"]["evtchn"]["sends"];
    EXPECT_EQ(sends["value"], rep["stats"]["xen"]["evtchn"]["sends"]);
    EXPECT_FALSE(sends["unit"].get<std::string>().empty());
    EXPECT_FALSE(sends["description"].get<std::string>().empty());
}

TEST(Cli, SummaryShowsXenStoreTrafficPerDomain) {
    fs::path d = temp_dir("xs-summary");
    Result r =
        xensim("run " + src("scenarios/xenstore-ops.json") + " --set workloads.0.ops=10 --out " + d.string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("XenStore (xenstored on dom0)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("XS_READ=10 XS_WRITE=10"), std::string::npos) << r.output;
    json rep = read_json(d / "report.json");
    EXPECT_EQ(rep["stats"]["xenstored"]["dom1"]["requests"]["XS_WRITE"], 10);
}

// The summary at scale (issue 15; reports/summary_table.h): 20 guests, each with a null PV disk and
// 5 fio reads (the shape of cmake/scale-scenario.py 20 100). Unfolded the summary took 165 lines;
// folded beyond kSummaryRowCap (8) rows per block it takes 88, and ends with the pointer to
// report.json, which still has every domain.
TEST(Cli, SummaryOfTwentyGuestsFoldsBeyondTheCap) {
    constexpr int kGuests = 20;
    fs::path d = temp_dir("summary-scale");
    std::ofstream(d / "s.json") << scale_scenario(kGuests, 5).dump(1);
    Result r = xensim("run " + (d / "s.json").string() + " --out " + (d / "out").string());
    ASSERT_EQ(r.status, 0) << r.output;
    std::size_t lines = 0;
    for (char c : r.output) lines += c == '\n';
    EXPECT_LE(lines, 100u) << r.output;
    EXPECT_NE(
        r.output.find("\nfolded above: 13 of 21 domains and 12 of 20 workloads beyond the first 8 rows of "
                      "each table; report.json has every one\nreport: " +
                      (d / "out").string() + "/report.json\n"),
        std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("  d8 guest8 "), std::string::npos) << "d8 is folded\n" << r.output;
    EXPECT_EQ(read_json(d / "out" / "report.json").at("domains").size(),
              static_cast<std::size_t>(kGuests + 1));
    fs::remove_all(d);
}

TEST(Cli, CostOverrideSlowsTheRoundTripAndChangesNoCount) {
    fs::path a = temp_dir("cost-a"), b = temp_dir("cost-b");
    std::string base = "run " + src("scenarios/evtchn-pingpong.json") + " --set workloads.0.round_trips=100";
    ASSERT_EQ(xensim(base + " --out " + a.string()).status, 0);
    ASSERT_EQ(xensim(base + " --set platform.cost.vmexit_roundtrip=2800 --out " + b.string()).status, 0);
    json ra = read_json(a / "report.json"), rb = read_json(b / "report.json");
    EXPECT_GT(rb["workloads"][0]["latency_ns"]["mean"].get<double>(),
              ra["workloads"][0]["latency_ns"]["mean"].get<double>());
    EXPECT_EQ(ra["domains"][1]["exits"], rb["domains"][1]["exits"]);
}

TEST(Cli, OpLimitAndTimeLimitStopTheRun) {
    fs::path d = temp_dir("limits");
    ASSERT_EQ(
        xensim("run " + src("scenarios/evtchn-pingpong.json") + " --set stop.ops=10 --out " + d.string())
            .status,
        0);
    json r = read_json(d / "report.json");
    EXPECT_EQ(r["simulation"]["stop_reason"], "op_limit");
    EXPECT_EQ(r["workloads"][0]["ops"], 10);
    ASSERT_EQ(xensim("run " + src("scenarios/evtchn-pingpong.json") +
                     " --set workloads.0.think_cycles=2100000 --set stop.sim_time_ms=5 --out " + d.string())
                  .status,
              0);
    r = read_json(d / "report.json");
    EXPECT_EQ(r["simulation"]["stop_reason"], "sim_time_limit");
    EXPECT_EQ(r["simulation"]["sim_time_ns"], 5'000'000);
    EXPECT_LT(r["workloads"][0]["ops"].get<int>(), 1000);
}

TEST(Cli, TracesInBothFormats) {
    fs::path d = temp_dir("trace");
    std::string run = "run " + src("scenarios/evtchn-pingpong.json") +
                      " --set workloads.0.round_trips=5 --out " + d.string();
    ASSERT_EQ(xensim(run + " --trace all").status, 0);
    json t = read_json(d / "trace.json");
    std::map<std::string, int> by_cat;
    for (const auto& e : t["traceEvents"])
        if (e.contains("cat")) by_cat[e["cat"]]++;
    EXPECT_GT(by_cat["vmexit"], 0);
    EXPECT_GT(by_cat["hypercall"], 0);
    EXPECT_GT(by_cat["evtchn"], 0);
    EXPECT_GT(by_cat["sched"], 0);
    ASSERT_EQ(xensim(run + " --trace evtchn --trace-format text").status, 0);
    std::ifstream txt(d / "trace.txt");
    std::string all((std::istreambuf_iterator<char>(txt)), {});
    EXPECT_NE(all.find("evtchn.evtchn_send"), std::string::npos);
    EXPECT_EQ(all.find("vmexit.vmexit"), std::string::npos) << "only the enabled category is written";
}

// The text trace reads as a timeline: events are written when they end (a slice once its duration
// is known), but the file lists them by start time. A switch from the idle loop names vCPU -1.
TEST(Cli, TextTraceIsInStartTimeOrder) {
    fs::path d = temp_dir("trace-order");
    ASSERT_EQ(xensim("run " + src("scenarios/blk-qd1-read.json") +
                     " --set workloads.0.number_ios=3 --trace all --trace-format text --out " + d.string())
                  .status,
              0);
    std::ifstream in(d / "trace.txt");
    double last = -1;
    int events = 0, unordered = 0, from_idle = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const double t = std::stod(line);
        if (t < last) ++unordered;
        last = t;
        ++events;
        if (line.find("kind=from_idle") != std::string::npos) {
            ++from_idle;
            EXPECT_NE(line.find("from_domain=-1 from_vcpu=-1 "), std::string::npos) << line;
        }
    }
    EXPECT_GT(events, 100);
    EXPECT_GT(from_idle, 0);
    EXPECT_EQ(unordered, 0);
    fs::remove_all(d);
}

// docs/one-request.md quotes trace lines of two documented commands; every quoted line must still
// be what those commands write, so the walkthrough cannot drift from the model.
TEST(Cli, OneRequestWalkthroughQuotesTheCurrentTraces) {
    std::ifstream doc(src("docs/one-request.md"));
    ASSERT_TRUE(doc.good());
    const std::regex event_line(R"(^ +[0-9]+\.[0-9]{6} us .*)");
    std::vector<std::string> pv, ide;
    bool in_ide = false;
    for (std::string line; std::getline(doc, line);) {
        if (line.rfind("## The same read on an emulated IDE disk", 0) == 0) in_ide = true;
        if (std::regex_match(line, event_line)) (in_ide ? ide : pv).push_back(line);
    }
    ASSERT_GT(pv.size(), 10u);
    ASSERT_GT(ide.size(), 10u);
    auto trace_of = [](const std::string& args, const std::string& name) {
        fs::path d = temp_dir(name);
        EXPECT_EQ(xensim("run " + args + " --trace-format text --out " + d.string()).status, 0);
        std::ifstream in(d / "trace.txt");
        std::string all((std::istreambuf_iterator<char>(in)), {});
        fs::remove_all(d);
        return all;
    };
    const std::string pv_trace = trace_of(
        src("scenarios/blk-qd1-read.json") + " --set workloads.0.number_ios=3 --trace all", "walk-pv");
    const std::string ide_trace =
        trace_of(src("scenarios/ide-vs-pv-4k-randread.json") +
                     " --set workloads.0.number_ios=2 --trace ioreq,vmexit,hypercall,evtchn,sched",
                 "walk-ide");
    for (const std::string& l : pv) EXPECT_NE(pv_trace.find(l + "\n"), std::string::npos) << l;
    for (const std::string& l : ide) EXPECT_NE(ide_trace.find(l + "\n"), std::string::npos) << l;
}

// The blkif category follows each PV request: at QD1 every I/O is one submit, one push that the
// ring macro says to notify (the backend's req_event is one ahead), one batch of one request taken
// by blkback, one response push that notifies, and one completion, in that order.
TEST(Cli, BlkifTraceFollowsEachPvRequest) {
    fs::path d = temp_dir("trace-blkif");
    ASSERT_EQ(xensim("run " + src("scenarios/blk-qd1-read.json") +
                     " --set workloads.0.number_ios=3 --trace blkif --trace-format text --out " + d.string())
                  .status,
              0);
    std::ifstream in(d / "trace.txt");
    std::vector<std::string> events;
    for (std::string line; std::getline(in, line);) {
        const auto at = line.find("blkif.");
        if (at != std::string::npos) events.push_back(line.substr(at, line.find(' ', at) - at));
    }
    const std::vector<std::string> one = {"blkif.blkif_submit", "blkif.blkif_push", "blkif.blkif_consume",
                                          "blkif.blkif_respond", "blkif.blkif_complete"};
    std::vector<std::string> want;
    for (int i = 0; i < 3; ++i) want.insert(want.end(), one.begin(), one.end());
    EXPECT_EQ(events, want);
    std::ifstream again(d / "trace.txt");
    std::string all((std::istreambuf_iterator<char>(again)), {});
    EXPECT_EQ(all.find("notify=no"), std::string::npos);
    EXPECT_NE(all.find("op=read"), std::string::npos);
    fs::remove_all(d);
}

// The ioreq category shows each emulated access as Xen forwards it: on an IDE disk the READ DMA
// command (0xC8 = 200) written to the command register 0x1F7, and on a VGA console the buffered
// character stores (0x0700 | 'l' = 1900 for the first character of "line ...").
TEST(Cli, IoreqTraceShowsEachEmulatedAccess) {
    fs::path d = temp_dir("trace-ioreq");
    ASSERT_EQ(xensim("run " + src("scenarios/ide-vs-pv-4k-randread.json") +
                     " --set workloads.0.number_ios=2 --trace ioreq --trace-format text --out " + d.string())
                  .status,
              0);
    std::ifstream ide(d / "trace.txt");
    std::string all((std::istreambuf_iterator<char>(ide)), {});
    EXPECT_NE(all.find("ioreq.ioreq"), std::string::npos);
    EXPECT_NE(all.find("type=pio addr=0x1f7 size=1 dir=write count=1 data=200"), std::string::npos);
    EXPECT_EQ(all.find("ioreq_buffered"), std::string::npos);
    // The completion interrupt: the device model raises ISA IRQ 14 (primary channel) and the
    // guest's handler runs for vector 0x30 + 14 = 62; one per request.
    auto count = [&](const std::string& what) {
        int n = 0;
        for (auto at = all.find(what); at != std::string::npos; at = all.find(what, at + 1)) ++n;
        return n;
    };
    EXPECT_EQ(count("ioreq.isa_irq domain=1 irq=14 level=1"), 2);
    EXPECT_EQ(count("ioreq.device_irq vector=62"), 2);
    ASSERT_EQ(xensim("run " + src("scenarios/vga-console.json") +
                     " --set workloads.0.lines=1 --trace ioreq --trace-format text --out " + d.string())
                  .status,
              0);
    std::ifstream vga(d / "trace.txt");
    std::string v((std::istreambuf_iterator<char>(vga)), {});
    EXPECT_NE(v.find("ioreq.ioreq_buffered type=copy addr=0xb8000 size=2 data=1900"), std::string::npos);
    EXPECT_NE(v.find("type=pio addr=0x3d4 size=2 dir=write"), std::string::npos);
    fs::remove_all(d);
}

}  // namespace
