// A sweep's results (reports/sweep_results.h): metric lookup, point markers, the CSV, the
// per-combination statistics and Student's t table.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "reports/sweep_results.h"

namespace xensim {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
    fs::path d =
        fs::temp_directory_path() / ("xensim-sweep-results-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

TEST(SweepResults, FindReportMetricWalksKeysAndIndices) {
    const json report = json::parse(R"({"workloads": [{"per_request": {"exits_total": 4.5,
        "hypercalls": {"event_channel_op/EVTCHNOP_send": 2}}}], "done": true})");
    const struct {
        const char* path;
        json expected;  // null: names nothing
    } cases[] = {
        {"workloads.0.per_request.exits_total", 4.5},
        {"workloads.0.per_request.hypercalls.event_channel_op/EVTCHNOP_send", 2},  // '/' is part of a key
        {"done", true},
        {"workloads.1.per_request", nullptr},                   // index beyond the array
        {"workloads.x", nullptr},                               // a name where an index is needed
        {"workloads.-0", nullptr},                              // not digits
        {"workloads.0.per_request.exits_total.more", nullptr},  // past a leaf
        {"nope", nullptr},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.path);
        const auto v = find_report_metric(report, c.path);
        if (c.expected.is_null())
            EXPECT_FALSE(v.has_value());
        else
            EXPECT_EQ(v.value_or(json()), c.expected);
    }
}

TEST(SweepResults, MarkerIsWrittenByRenameAndMatchesOnlyItsOwnSets) {
    const fs::path d = scratch("marker");
    PointMarker m{"0001-x=1-s1", "base.json", {"x=1", "platform.seed=1"}, "ok", "", 0.5};
    write_point_marker(d, m);
    EXPECT_FALSE(fs::exists(d / "point.json.tmp"));
    const auto back = read_point_marker(d);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->sets, m.sets);
    EXPECT_FALSE(point_complete(d, "base.json", m.sets)) << "no report.json yet";
    std::ofstream(d / "report.json") << "{}";
    EXPECT_TRUE(point_complete(d, "base.json", m.sets));
    EXPECT_FALSE(point_complete(d, "other.json", m.sets)) << "another base";
    EXPECT_FALSE(point_complete(d, "base.json", {"x=2", "platform.seed=1"})) << "another value";
    m.status = "failed";
    write_point_marker(d, m);
    EXPECT_FALSE(point_complete(d, "base.json", m.sets)) << "a failed point runs again";
    std::ofstream(d / "point.json") << "{\"id\": ";  // torn: not a marker
    EXPECT_FALSE(read_point_marker(d).has_value());
    fs::remove_all(d);
}

TEST(SweepResults, PointRowStatuses) {
    const fs::path d = scratch("rows");
    const std::vector<std::string> sets = {"x=1", "platform.seed=1"}, metrics = {"a", "b.0"};
    SweepRow row;
    read_point_row(row, d, "base.json", sets, metrics);
    EXPECT_EQ(row.status, "not_run");

    write_point_marker(
        d, {"id", "base.json", sets, "failed", "exit status 1: xensim: 1 workload operation(s) failed", 0});
    read_point_row(row, d, "base.json", sets, metrics);
    EXPECT_EQ(row.status, "failed");
    EXPECT_EQ(row.reason, "exit status 1: xensim: 1 workload operation(s) failed");

    write_point_marker(d, {"id", "base.json", sets, "ok", "", 0});
    std::ofstream(d / "report.json") << R"({"a": 3, "b": [{"c": 1}]})";
    read_point_row(row, d, "base.json", sets, metrics);
    EXPECT_EQ(row.status, "missing_metric");
    EXPECT_EQ(row.reason, "b.0 is object, not a number");
    EXPECT_EQ(row.metrics, (std::vector<json>{3, nullptr}));

    std::ofstream(d / "report.json") << R"({"a": 3, "b": [2.5]})";
    read_point_row(row, d, "base.json", sets, metrics);
    EXPECT_EQ(row.status, "ok");
    EXPECT_EQ(row.metrics, (std::vector<json>{3, 2.5}));
    fs::remove_all(d);
}

TEST(SweepResults, CsvQuotesAsRfc4180) {
    SweepTable t;
    t.axes = {"name", "n"};
    t.metrics = {"m"};
    SweepRow r;
    r.id = "0000-name=a_b-n=1-s1";
    r.values = {json("a,\"b\""), json(1)};
    r.seed = 1;
    r.status = "failed";
    r.reason = "exit status 1: line";
    r.metrics = {json()};
    t.rows.push_back(r);
    // RFC 4180 section 2: a field with a comma or a double quote is quoted, quotes doubled; CRLF ends
    // records.
    EXPECT_EQ(render_sweep_csv(t),
              "index,id,name,n,seed,m,status,reason\r\n"
              "0,0000-name=a_b-n=1-s1,\"a,\"\"b\"\"\",1,1,,failed,exit status 1: line\r\n");
}

// The two-sided 95 % quantile from Student's t density, integrated numerically (Simpson's rule on
// the density, Gamma from std::tgamma), to check the table rather than copy it.
double t_cdf(double t, double dof) {
    const double c = std::tgamma((dof + 1) / 2) / (std::sqrt(dof * M_PI) * std::tgamma(dof / 2));
    auto pdf = [&](double x) { return c * std::pow(1 + x * x / dof, -(dof + 1) / 2); };
    const int n = 20000;
    const double h = t / n;
    double s = pdf(0) + pdf(t);
    for (int i = 1; i < n; ++i) s += pdf(i * h) * (i % 2 ? 4 : 2);
    return 0.5 + s * h / 3;
}

TEST(SweepResults, StudentTTableIsTheDistributionsQuantile) {
    for (std::size_t dof : {1, 2, 3, 4, 5, 9, 10, 20, 29, 30, 40, 60, 100}) {
        SCOPED_TRACE(dof);
        // The table has three decimals: the CDF at the rounded value is 0.975 within its rounding.
        const double t = student_t_975(dof);
        EXPECT_NEAR(t_cdf(t, static_cast<double>(dof)), 0.975, 2e-4);
    }
    EXPECT_DOUBLE_EQ(student_t_975(35), student_t_975(30)) << "between rows, the lower row (wider interval)";
    EXPECT_DOUBLE_EQ(student_t_975(1000), 1.960);
    EXPECT_THROW(student_t_975(0), std::invalid_argument);
}

TEST(SweepResults, SampleSummary) {
    // {2, 4, 4, 4, 5, 5, 7, 9}: mean 5, sample variance 32/7.
    const SampleSummary s = summarize_samples({2, 4, 4, 4, 5, 5, 7, 9});
    EXPECT_EQ(s.n, 8u);
    EXPECT_DOUBLE_EQ(s.mean, 5);
    EXPECT_NEAR(s.stddev, std::sqrt(32.0 / 7), 1e-12);
    EXPECT_NEAR(s.ci95_half_width, 2.365 * std::sqrt(32.0 / 7) / std::sqrt(8.0), 1e-12);
    EXPECT_EQ(summarize_samples({3}).stddev, 0);
}

TEST(SweepResults, JsonSummarisesOnlyWhatVariesWithTheSeed) {
    SweepTable t;
    t.axes = {"q"};
    t.metrics = {"count", "latency"};
    const struct {
        std::size_t combination;
        int q;
        std::uint64_t seed;
        const char* status;
        double count, latency;
    } rows[] = {{0, 1, 1, "ok", 2, 10}, {0, 1, 2, "ok", 2, 14}, {0, 1, 3, "failed", 0, 0},
                {1, 4, 1, "ok", 3, 20}, {1, 4, 2, "ok", 3, 20}, {1, 4, 3, "ok", 3, 20}};
    for (std::size_t i = 0; i < std::size(rows); ++i) {
        SweepRow r;
        r.index = i;
        r.combination = rows[i].combination;
        r.values = {rows[i].q};
        r.seed = rows[i].seed;
        r.status = rows[i].status;
        if (r.status == "ok")
            r.metrics = {rows[i].count, rows[i].latency};
        else
            r.metrics = {nullptr, nullptr};
        t.rows.push_back(r);
    }
    const json j = sweep_table_json(t);
    ASSERT_EQ(j["summary"].size(), 2u);
    const json& c0 = j["summary"][0];
    EXPECT_EQ(c0["values"]["q"], 1);
    EXPECT_EQ(c0["seeds"], json::array({1, 2, 3}));
    EXPECT_EQ(c0["ok"], 2);
    EXPECT_EQ(c0["metrics"]["count"], json({{"n", 2}, {"varies_with_seed", false}, {"value", 2.0}}));
    const json& lat = c0["metrics"]["latency"];
    EXPECT_EQ(lat["n"], 2) << "the failed seed is left out";
    EXPECT_TRUE(lat["varies_with_seed"].get<bool>());
    EXPECT_DOUBLE_EQ(lat["mean"].get<double>(), 12);
    EXPECT_DOUBLE_EQ(lat["stddev"].get<double>(), std::sqrt(8.0));
    EXPECT_DOUBLE_EQ(lat["ci95_half_width"].get<double>(), 12.706 * std::sqrt(8.0) / std::sqrt(2.0));
    EXPECT_FALSE(j["summary"][1]["metrics"]["latency"]["varies_with_seed"].get<bool>());
    EXPECT_EQ(j["points"][2]["status"], "failed");
}

}  // namespace
}  // namespace xensim
