// The comparison engine of `xensim compare` (reports/compare.h): the tolerance parser and its
// precedence, and the gate over hand-made schema-2 reports (docs/report-schema.md, docs/compare.md).
#include "reports/compare.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace xensim {
namespace {

using nlohmann::json;

// --- the parser ---

struct ParseCase {
    const char* spec;
    const char* pattern;
    double value;
    bool relative;
};

TEST(CompareToleranceParse, AcceptsDefaultAndPatternWithRelativeOrAbsoluteValue) {
    const ParseCase cases[] = {
        {"10%", "", 10, true},           // the default, relative
        {"0", "", 0, false},             // the default, exact
        {"exits=0", "exits", 0, false},  // exact on every exits path
        {"per_request.exits_total=5%", "per_request.exits_total", 5, true},
        {"latency=20%", "latency", 20, true},
        {"latency_ns.p99=2500", "latency_ns.p99", 2500, false},  // absolute, in the metric's unit
        {"ops_per_second=0.5%", "ops_per_second", 0.5, true},    // fractions
        {"1e3", "", 1000, false},                                // any decimal form from_chars reads
        {"hypercalls.event_channel_op/EVTCHNOP_send=1", "hypercalls.event_channel_op/EVTCHNOP_send", 1,
         false},
    };
    for (const auto& c : cases) {
        Tolerance t = parse_tolerance(c.spec);
        EXPECT_EQ(t.spec, c.spec);
        EXPECT_EQ(t.pattern, c.pattern) << c.spec;
        EXPECT_DOUBLE_EQ(t.value, c.value) << c.spec;
        EXPECT_EQ(t.relative, c.relative) << c.spec;
    }
}

TEST(CompareToleranceParse, RejectsWhatIsNotANonNegativeNumber) {
    for (const char* spec :
         {"", "%", "=5", "=5%", "exits=", "exits=%", "exits=-1", "-1%", "exits=abc", "exits=5%%", "exits=nan",
          "exits=inf", "10 %", " 5", "+5", "5%x", "5x", "ten%"}) {
        EXPECT_THROW(parse_tolerance(spec), std::invalid_argument) << "\"" << spec << "\"";
    }
    try {
        parse_tolerance("exits=5%%");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("found \"exits=5%%\""), std::string::npos) << e.what();
    }
}

TEST(CompareToleranceParse, AllowedIsRelativeToTheBaselineMagnitudeOrAbsolute) {
    EXPECT_DOUBLE_EQ(parse_tolerance("10%").allowed(200), 20);
    EXPECT_DOUBLE_EQ(parse_tolerance("10%").allowed(-200), 20);
    EXPECT_DOUBLE_EQ(parse_tolerance("10%").allowed(0), 0) << "a relative tolerance on zero allows nothing";
    EXPECT_DOUBLE_EQ(parse_tolerance("x=5").allowed(1e9), 5);
    EXPECT_DOUBLE_EQ(parse_tolerance("x=5").allowed(0), 5);
}

// --- precedence ---

struct PrecedenceCase {
    std::vector<const char*> specs;  // in command-line order
    const char* path;
    const char* wins;  // nullptr: not gated
};

TEST(CompareToleranceSet, LongestPatternWinsThenTheLaterThenTheDefault) {
    const PrecedenceCase cases[] = {
        // a pattern beats the default wherever it matches, and only there
        {{"10%", "exits=0"}, "workloads.w.per_request.exits.HLT", "exits=0"},
        {{"10%", "exits=0"}, "workloads.w.ops", "10%"},
        {{"exits=0", "10%"},
         "workloads.w.per_request.exits.HLT",
         "exits=0"},  // default given last still loses
        // the longer pattern wins, whatever the order
        {{"exits=0", "per_request.exits_total=5%"},
         "workloads.w.per_request.exits_total",
         "per_request.exits_total=5%"},
        {{"per_request.exits_total=5%", "exits=0"},
         "workloads.w.per_request.exits_total",
         "per_request.exits_total=5%"},
        {{"exits=0", "per_request.exits_total=5%"}, "domains.guest.exits_total", "exits=0"},  // not contained
        {{"exits=5%", "exits_total=0"}, "workloads.w.per_request.exits_total", "exits_total=0"},
        {{"exits=5%", "exits_total=0"}, "workloads.w.per_request.exits.VMCALL", "exits=5%"},
        // equal lengths: the later one
        {{"guest=1", "exits=2"}, "domains.guest.exits_total", "exits=2"},
        {{"exits=2", "guest=1"}, "domains.guest.exits_total", "guest=1"},
        // no default and no match: not gated
        {{"exits=0"}, "workloads.w.latency_ns.p99", nullptr},
        {{}, "simulation.sim_time_ns", nullptr},
    };
    for (const auto& c : cases) {
        ToleranceSet set;
        for (const char* s : c.specs) set.add(s);
        const Tolerance* t = set.find(c.path);
        std::string label = std::string(c.path) + " with";
        for (const char* s : c.specs) label += std::string(" ") + s;
        if (!c.wins) {
            EXPECT_EQ(t, nullptr) << label;
        } else {
            ASSERT_NE(t, nullptr) << label;
            EXPECT_EQ(t->spec, c.wins) << label;
        }
    }
}

TEST(CompareToleranceSet, APatternOrTheDefaultGivenTwiceIsAnError) {
    ToleranceSet a;
    a.add("10%");
    EXPECT_THROW(a.add("5"), std::invalid_argument);
    ToleranceSet b;
    b.add("exits=0");
    b.add("exits_total=0");  // a different pattern
    EXPECT_THROW(b.add("exits=1%"), std::invalid_argument);
    EXPECT_EQ(b.all().size(), 2u);
    EXPECT_THROW(b.add("bad=x"), std::invalid_argument);
}

// --- the comparison ---

json report(const std::string& workload = "w") {
    return json::parse(R"({
      "schema_version": 5,
      "scenario": {"name": "s", "file": "s.json"},
      "workloads": [{
        "name": ")" + workload +
                       R"(", "type": "fio", "ops": 100, "failures": 0, "ops_per_second": 2500.5,
        "latency_ns": {"mean": 400.25, "min": 1, "p50": 390, "p99": 900, "p99_9": 950, "max": 999},
        "totals": {"exits_total": 150},
        "per_request": {"exits": {"HLT": 0.5, "VMCALL": 1.0}, "exits_total": 1.5,
                        "hypercalls": {"event_channel_op/EVTCHNOP_send": 1.0}, "hypercalls_total": 1.0,
                        "upcalls": 1.0, "context_switches": 2.0}
      }],
      "domains": [{"id": 0, "name": "dom0", "exits_total": 0, "hypercalls_total": 300},
                  {"id": 1, "name": "guest", "exits_total": 150, "hypercalls_total": 100}],
      "simulation": {"sim_time_ns": 40000, "stop_reason": "workloads_done"},
      "host": {"wall_seconds": 0.5, "hypervisor_operations_per_second": 1000.0}
    })");
}

Comparison compare(const json& b, const json& n, std::vector<const char*> specs = {}) {
    ToleranceSet set;
    for (const char* s : specs) set.add(s);
    return compare_reports(ReportFile{"base.json", b}, ReportFile{"new.json", n}, set);
}

const MetricComparison* find(const Comparison& c, const std::string& path) {
    for (const auto& m : c.metrics)
        if (m.path == path) return &m;
    return nullptr;
}

TEST(CompareReports, ListsTheDeclaredFiguresAndNeverHost) {
    Comparison c = compare(report(), report());
    for (const char* p :
         {"workloads.w.ops", "workloads.w.failures", "workloads.w.ops_per_second",
          "workloads.w.latency_ns.mean", "workloads.w.latency_ns.p50", "workloads.w.latency_ns.p99",
          "workloads.w.latency_ns.p99_9", "workloads.w.per_request.exits.HLT",
          "workloads.w.per_request.exits.VMCALL", "workloads.w.per_request.exits_total",
          "workloads.w.per_request.hypercalls.event_channel_op/EVTCHNOP_send",
          "workloads.w.per_request.hypercalls_total", "workloads.w.per_request.upcalls",
          "workloads.w.per_request.context_switches", "domains.dom0.exits_total",
          "domains.dom0.hypercalls_total", "domains.guest.exits_total", "domains.guest.hypercalls_total",
          "simulation.sim_time_ns"})
        EXPECT_NE(find(c, p), nullptr) << p;
    EXPECT_EQ(c.metrics.size(), 19u) << "min, max, totals and the rest are not compared";
    for (const auto& m : c.metrics) EXPECT_EQ(m.path.find("host"), std::string::npos) << m.path;
    EXPECT_EQ(find(c, "workloads.w.block.iops"), nullptr) << "no block object on either side, no block rows";
    EXPECT_EQ(c.verdict(), "informational");
    EXPECT_EQ(find(c, "domains.guest.exits_total")->name, "guest.exits_total");
    EXPECT_TRUE(find(c, "workloads.w.ops")->integral);
    EXPECT_FALSE(find(c, "workloads.w.ops_per_second")->integral);
}

TEST(CompareReports, IdenticalReportsPassAtZeroToleranceWhateverTheHost) {
    json n = report();
    n["host"]["wall_seconds"] = 9.0;
    Comparison c = compare(report(), n, {"0"});
    EXPECT_EQ(c.moved, 0);
    EXPECT_EQ(c.verdict(), "pass");
    for (const auto& m : c.metrics) {
        ASSERT_TRUE(m.tolerance) << m.path;
        EXPECT_EQ(*m.delta(), 0) << m.path;
    }
}

TEST(CompareReports, RelativeToleranceBoundaryIsInclusive) {
    json n = report();
    n["workloads"][0]["ops"] = 110;  // +10% of 100
    EXPECT_EQ(compare(report(), n, {"ops=10%"}).moved, 0);
    n["workloads"][0]["ops"] = 90;  // -10%: moved is two-sided
    EXPECT_EQ(compare(report(), n, {"ops=10%"}).moved, 0);
    n["workloads"][0]["ops"] = 111;
    Comparison c = compare(report(), n, {"ops=10%"});
    EXPECT_EQ(c.moved, 1);
    EXPECT_TRUE(find(c, "workloads.w.ops")->moved);
    EXPECT_DOUBLE_EQ(find(c, "workloads.w.ops")->allowed, 10);
    n["workloads"][0]["ops"] = 89;
    EXPECT_EQ(compare(report(), n, {"ops=10%"}).moved, 1) << "an improvement beyond tolerance moves too";
    EXPECT_EQ(compare(report(), n, {"ops=11"}).moved, 0) << "absolute: |89 - 100| <= 11";
    EXPECT_EQ(compare(report(), n, {"ops=10.5"}).moved, 1);
}

TEST(CompareReports, ZeroBaselineHasNoRatioAndARelativeToleranceAllowsNothing) {
    json n = report();
    n["domains"][0]["exits_total"] = 1;
    Comparison c = compare(report(), n, {"50%"});
    const MetricComparison* m = find(c, "domains.dom0.exits_total");
    ASSERT_NE(m, nullptr);
    EXPECT_FALSE(m->ratio());
    EXPECT_EQ(*m->delta(), 1);
    EXPECT_TRUE(m->moved);
    EXPECT_EQ(c.moved, 1);
    EXPECT_FALSE(compare(report(), report(), {"50%"}).metrics.empty());
    EXPECT_EQ(compare(report(), report(), {"50%"}).moved, 0) << "0 -> 0 is no move";
}

TEST(CompareReports, AFigureOnOneSideShowsAsAbsentAndMovesUnderAnyTolerance) {
    json n = report();
    n["workloads"][0]["per_request"]["exits"]["EPT_VIOLATION"] = 0.01;
    n["workloads"][0]["per_request"]["exits"].erase("HLT");
    Comparison info = compare(report(), n);
    const MetricComparison* ept = find(info, "workloads.w.per_request.exits.EPT_VIOLATION");
    ASSERT_NE(ept, nullptr) << "the union of both reports' exit reasons";
    EXPECT_FALSE(ept->baseline);
    EXPECT_DOUBLE_EQ(*ept->current, 0.01);
    EXPECT_FALSE(ept->delta());
    EXPECT_FALSE(ept->moved) << "informational: nothing is judged";
    EXPECT_FALSE(find(info, "workloads.w.per_request.exits.HLT")->current);
    std::string table = render_comparison(info);
    EXPECT_NE(table.find("per_request.exits.EPT_VIOLATION"), std::string::npos) << table;
    EXPECT_NE(table.find("verdict: informational"), std::string::npos) << table;

    Comparison gated = compare(report(), n, {"exits=1000"});
    EXPECT_TRUE(find(gated, "workloads.w.per_request.exits.EPT_VIOLATION")->moved);
    EXPECT_TRUE(find(gated, "workloads.w.per_request.exits.HLT")->moved);
    EXPECT_EQ(gated.moved, 2);
    std::string out = render_comparison(gated);
    EXPECT_NE(out.find("workloads.w.per_request.exits.EPT_VIOLATION: baseline -, new 0.01, only in new"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("workloads.w.per_request.exits.HLT: baseline 0.5, new -, only in baseline"),
              std::string::npos)
        << out;
}

TEST(CompareReports, WorkloadsMatchByNameElseByPositionWhenOneEach) {
    Comparison one = compare(report("a"), report("b"), {"0"});
    EXPECT_EQ(one.moved, 0);
    ASSERT_EQ(one.notes.size(), 1u);
    EXPECT_NE(one.notes[0].find("matched by position"), std::string::npos);
    EXPECT_NE(find(one, "workloads.a.ops"), nullptr) << "paths keep the baseline's name";
    EXPECT_NE(render_comparison(one).find("note: workload names differ"), std::string::npos);

    json two_b = report("a"), two_n = report("b");
    two_b["workloads"].push_back(report("c")["workloads"][0]);
    two_n["workloads"].push_back(report("c")["workloads"][0]);
    Comparison two = compare(two_b, two_n, {"0"});
    EXPECT_TRUE(two.notes.empty());
    EXPECT_EQ(*find(two, "workloads.c.ops")->delta(), 0) << "c matches c by name";
    EXPECT_FALSE(find(two, "workloads.a.ops")->current) << "a is only in the baseline";
    EXPECT_FALSE(find(two, "workloads.b.ops")->baseline) << "b is only in the new report";
    EXPECT_TRUE(find(two, "workloads.a.ops")->moved);
    EXPECT_TRUE(find(two, "workloads.b.ops")->moved);
}

TEST(CompareReports, BlockFiguresWhenPresent) {
    json b = report(), n = report();
    json block = {
        {"iops", 2500.5},
        {"mb_per_s", 10.24},
        {"reads", 100},
        {"per_request", {{"grant_maps", 0.01}, {"disk_irqs", 0.5}}},
        {"frontend", {{"notifications_sent", 50}, {"notifications_suppressed", 0}, {"interrupts", 50}}},
        {"backend",
         {{"notifications_sent", 50},
          {"notifications_suppressed", 1},
          {"grant_maps", 1},
          {"requests", 100}}}};
    b["workloads"][0]["block"] = block;
    block["backend"]["grant_maps"] = 100;
    block["per_request"]["grant_unmaps"] = 1.0;
    n["workloads"][0]["block"] = block;
    Comparison c = compare(b, n, {"grant=0"});
    for (const char* p :
         {"iops", "mb_per_s", "per_request.grant_maps", "per_request.disk_irqs", "per_request.grant_unmaps",
          "frontend.notifications_sent", "frontend.notifications_suppressed", "backend.notifications_sent",
          "backend.notifications_suppressed", "backend.grant_maps"})
        EXPECT_NE(find(c, std::string("workloads.w.block.") + p), nullptr) << p;
    EXPECT_EQ(find(c, "workloads.w.block.reads"), nullptr);
    EXPECT_EQ(find(c, "workloads.w.block.backend.requests"), nullptr);
    EXPECT_EQ(c.moved, 2) << "backend.grant_maps grew; per_request.grant_unmaps appeared";
    EXPECT_TRUE(find(c, "workloads.w.block.backend.grant_maps")->moved);
    EXPECT_TRUE(find(c, "workloads.w.block.per_request.grant_unmaps")->moved);
}

// A netperf workload's net object (docs/report-schema.md, schema 4): its rates, errors, drops by
// place and per_request figures are compared; totals, engines and counts that are not rates are not.
TEST(CompareReports, NetperfWorkloadsCompareRatesDropsAndPerRequestFigures) {
    json b = report();
    b["workloads"][0]["type"] = "netperf";
    b["workloads"][0]["net"] = json::parse(R"({
      "test": "UDP_STREAM", "direction": "send", "peer": "wire", "streams": 1,
      "gbit_per_s": 1.25, "pps": 100000.0, "transactions_per_s": 0.0, "payload_errors": 0,
      "tx_frames": 1000, "data_frames": 1000,
      "drops": {"lost_by_sequence": 0, "backend_tx": 0},
      "per_request": {"grant_copies": 1.0, "frontend_tx_notifications_sent": 0.25},
      "totals": {"grant_copies": 1000},
      "engines": [{"sent": 1000}]
    })");
    json n = b;
    n["workloads"][0]["net"]["gbit_per_s"] = 1.0;                 // -20%
    n["workloads"][0]["net"]["drops"]["backend_tx"] = 3;          // drops appeared
    n["workloads"][0]["net"]["per_request"]["grant_maps"] = 0.5;  // a new key: one-sided
    n["workloads"][0]["net"]["totals"]["grant_copies"] = 5;       // not compared
    Comparison c = compare(b, n, {"10%"});
    for (const char* p : {"gbit_per_s", "pps", "transactions_per_s", "payload_errors",
                          "drops.lost_by_sequence", "drops.backend_tx", "per_request.grant_copies",
                          "per_request.frontend_tx_notifications_sent", "per_request.grant_maps"})
        EXPECT_NE(find(c, std::string("workloads.w.net.") + p), nullptr) << p;
    EXPECT_EQ(find(c, "workloads.w.net.totals.grant_copies"), nullptr);
    EXPECT_EQ(find(c, "workloads.w.net.tx_frames"), nullptr);
    EXPECT_EQ(find(c, "workloads.w.net.engines"), nullptr);
    EXPECT_TRUE(find(c, "workloads.w.net.gbit_per_s")->moved) << "1.25 -> 1.0 is beyond 10%";
    EXPECT_FALSE(find(c, "workloads.w.net.pps")->moved);
    EXPECT_TRUE(find(c, "workloads.w.net.drops.backend_tx")->moved)
        << "a relative tolerance on 0 allows nothing";
    EXPECT_TRUE(find(c, "workloads.w.net.per_request.grant_maps")->moved) << "only in new";
    EXPECT_EQ(c.moved, 3);
}

TEST(CompareReports, SchemaVersionsMustMatchAndBeKnown) {
    json old = report();
    old["schema_version"] = 1;
    try {
        compare(report(), old);
        FAIL() << "expected ReportInputError";
    } catch (const ReportInputError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("base.json has 5"), std::string::npos) << msg;
        EXPECT_NE(msg.find("new.json has 1"), std::string::npos) << msg;
    }
    json future = report();
    future["schema_version"] = 6;
    EXPECT_THROW(compare(future, future), ReportInputError) << "a layout this comparison does not know";
    json none = report();
    none.erase("schema_version");
    EXPECT_THROW(compare(report(), none), ReportInputError);
}

TEST(CompareReports, ANonNumberWhereAFigureBelongsNamesFileAndPointer) {
    json n = report();
    n["workloads"][0]["per_request"]["hypercalls"]["event_channel_op/EVTCHNOP_send"] = "many";
    try {
        compare(report(), n);
        FAIL() << "expected ReportInputError";
    } catch (const ReportInputError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "new.json: /workloads/0/per_request/hypercalls/event_channel_op~1EVTCHNOP_send: expected a "
                  "number, "
                  "found string \"many\"");
    }
    json dup = report();
    dup["domains"][1]["name"] = "dom0";
    EXPECT_THROW(compare(dup, report()), ReportInputError) << "names must identify domains";
}

TEST(CompareReports, UnmatchedPatternsAreReported) {
    Comparison c = compare(report(), report(), {"latncy=20%", "latency=20%"});
    ASSERT_EQ(c.unmatched_patterns.size(), 1u);
    EXPECT_EQ(c.unmatched_patterns[0], "latncy");
    EXPECT_NE(render_comparison(c).find("note: --tolerance pattern \"latncy\" matches no metric"),
              std::string::npos);
}

TEST(CompareReports, JsonCarriesEveryMetricWithItsToleranceAndTheVerdict) {
    json n = report();
    n["simulation"]["sim_time_ns"] = 50000;
    Comparison c = compare(report(), n, {"sim_time=10%"});
    json j = comparison_to_json(c);
    EXPECT_EQ(j["verdict"], "fail");
    EXPECT_EQ(j["moved"], 1);
    EXPECT_EQ(j["tolerances"], json::array({"sim_time=10%"}));
    ASSERT_EQ(j["metrics"].size(), c.metrics.size());
    for (const auto& m : j["metrics"])
        for (const char* k : {"path", "baseline", "new", "ratio", "delta", "tolerance", "moved"})
            EXPECT_TRUE(m.contains(k)) << k;
    const json& sim = j["metrics"].back();
    EXPECT_EQ(sim["path"], "simulation.sim_time_ns");
    EXPECT_EQ(sim["baseline"], 40000);
    EXPECT_EQ(sim["new"], 50000);
    EXPECT_DOUBLE_EQ(sim["ratio"].get<double>(), 1.25);
    EXPECT_EQ(sim["delta"], 10000);
    EXPECT_EQ(sim["tolerance"]["spec"], "sim_time=10%");
    EXPECT_DOUBLE_EQ(sim["tolerance"]["allowed"].get<double>(), 4000);
    EXPECT_EQ(sim["moved"], true);
    EXPECT_TRUE(j["metrics"][0]["tolerance"].is_null()) << "ops is not gated by sim_time=10%";
    EXPECT_EQ(comparison_to_json(compare(report(), report()))["verdict"], "informational");
    EXPECT_EQ(comparison_to_json(compare(report(), report(), {"0"}))["verdict"], "pass");
}

}  // namespace
}  // namespace xensim
