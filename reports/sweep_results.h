// A sweep's results: each point's marker and figures, merged into sweep.csv and sweep.json (issue 15).
//
// The problem. A sweep's points run as separate processes, perhaps on separate machines (GNU
// parallel, a Slurm job array), each writing its own directory DIR/points/<id>/ with the run's
// report.json. Something must say which points are finished, so that a sweep resumes where it
// stopped, and something must gather the figures into one table, in one order, whatever machine
// ran what, and summarise repeated seeds.
//
// The marker. A point's directory is finished when it holds point.json, written last and
// atomically (a temporary file renamed over it, rename(2) being atomic within a file system), so
// a killed run never leaves a marker for a half-written directory. The marker records what was
// run (the base scenario as the sweep file names it, the --set arguments), so a directory made
// for another sweep file or an edited axis is not taken for this point, and how it ended (ok, or
// failed with the exit status and the last line of its stderr). Only an "ok" point is complete;
// a failed one runs again when the sweep is resumed.
//
// The table. One row per point in expansion order: index, id, the axis values, the seed, each
// metric, status and reason. Status is "ok", "failed" (the run failed: its reason), "missing_metric"
// (the run succeeded but a metric path names nothing numeric in its report) or "not_run" (no
// finished directory was found). sweep.csv is that table (RFC 4180 quoting; strings as text, other
// values as JSON); sweep.json has the same rows plus, per combination of axis values, a summary of
// each metric over its seeds. Nothing in either depends on the host (no times, no paths but the
// base as written), so the same points give byte-identical files however they were run.
//
// Statistics. Over the "ok" rows of a combination: n, and if the metric's values differ between
// seeds, their mean, sample standard deviation (n - 1) and the half-width of the two-sided 95 %
// confidence interval of the mean, t(0.975, n - 1) * s / sqrt(n), with Student's t from a table
// (student_t_975). A metric that is the same for every seed (a count the protocol fixes) gets
// its value instead: a confidence interval of zero width would claim a precision nobody measured.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xensim {

// What a finished point leaves in its directory (point.json).
struct PointMarker {
    std::string id;
    std::string base;               // the base scenario as the sweep file names it
    std::vector<std::string> sets;  // the --set arguments, seed last
    std::string status;             // "ok" or "failed"
    std::string reason;             // why it failed: "exit status 1: <last stderr line>", ...
    double host_seconds = 0;        // the run's wall time (for the driver's overhead; not in results)
};

nlohmann::json point_marker_json(const PointMarker& m);
// The marker in `dir`, or nullopt when there is none or it does not parse as one.
std::optional<PointMarker> read_point_marker(const std::filesystem::path& dir);
// Writes dir/point.json through a temporary file and rename(2). Throws std::runtime_error.
void write_point_marker(const std::filesystem::path& dir, const PointMarker& m);
// The point in `dir` finished successfully for exactly this base and these sets (and its report is there).
bool point_complete(const std::filesystem::path& dir, const std::string& base,
                    const std::vector<std::string>& sets);

// The value at a dotted path ("workloads.0.per_request.exits_total": object keys, array indices)
// of a report, or nullopt when the path names nothing.
std::optional<nlohmann::json> find_report_metric(const nlohmann::json& report, const std::string& path);

struct SweepRow {
    std::size_t index = 0;
    std::size_t combination = 0;
    std::string id;
    std::vector<nlohmann::json> values;  // one per axis
    std::uint64_t seed = 0;
    std::string status = "not_run";  // ok, failed, missing_metric, not_run
    std::string reason;
    std::vector<nlohmann::json> metrics;  // one per metric path; null where missing
};

struct SweepTable {
    nlohmann::json spec;  // the sweep as its file says it (base, axes, combine, seeds, metrics)
    std::vector<std::string> axes, metrics;
    std::vector<SweepRow> rows;  // in expansion order
};

// Fills `row`'s status, reason and metrics from the point directory `dir` (its marker and
// report.json), for a point with this base and these sets. A directory without a matching marker
// leaves the row "not_run".
void read_point_row(SweepRow& row, const std::filesystem::path& dir, const std::string& base,
                    const std::vector<std::string>& sets, const std::vector<std::string>& metrics);

std::string render_sweep_csv(const SweepTable& table);
nlohmann::json sweep_table_json(const SweepTable& table);

// Student's t quantile t(0.975, dof): the two-sided 95 % critical value. dof >= 1.
double student_t_975(std::size_t dof);

struct SampleSummary {
    std::size_t n = 0;
    double mean = 0, stddev = 0, ci95_half_width = 0;  // stddev and the interval need n >= 2
};
SampleSummary summarize_samples(const std::vector<double>& xs);

}  // namespace xensim
