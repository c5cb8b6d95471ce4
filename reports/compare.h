// Compares two report.json files: a side-by-side table for people and a regression gate for CI
// (`xensim compare BASELINE.json NEW.json [--tolerance SPEC]... [--json OUT.json]`, docs/compare.md).
//
// What is compared is a fixed list of figures (kWorkloadMetrics and friends in compare.cpp), each
// named by a dotted path that the tolerances match against:
//   workloads.NAME.ops, .failures, .ops_per_second, .latency_ns.{mean,p50,p99,p99_9},
//   workloads.NAME.per_request.{exits.REASON, exits_total, hypercalls.OP, hypercalls_total, upcalls,
//                               context_switches, guest_cycles, hypervisor_cycles, cpu_cycles,
//                               device_model_ns} (over the workload's window, schema 3),
//   workloads.NAME.setup.{exits_total, hypercalls_total} (before the window: boot, handshakes),
//   workloads.NAME.block.{iops, mb_per_s, slat_ns.mean, clat_ns.mean, per_request.*,
//                         frontend.notifications_sent|_suppressed,
//                         backend.notifications_sent|_suppressed, backend.grant_maps},
//   workloads.NAME.net.{gbit_per_s, pps, transactions_per_s, payload_errors, drops.*,
//                       per_request.*} (netperf workloads, schema 4),
//   domains.NAME.{exits_total, hypercalls_total}, simulation.sim_time_ns.
// Workloads and domains are matched by name; when each report has exactly one workload and the
// names differ, the two are matched by position and a note says so (the path keeps the baseline's
// name). Keyed maps (exits by reason, hypercalls by op, block.per_request, net.per_request, net.drops) are
// compared over the union of their keys. The whole-run totals are not compared separately: they are the
// set-up, the window (per_request x ops) and what followed the window. `host` (wall time, the only
// machine-dependent keys) is never compared.
//
// Invariants:
//  - A metric present on one side only is shown with "-" on the other; under a tolerance it counts
//    as moved (an exit reason that appears, a workload that vanished), whatever the tolerance.
//  - "Moved" is two-sided: an improvement beyond the tolerance fails the gate as a regression does.
//    The simulator is deterministic, so any change is a change to look at and re-baseline.
//  - A tolerance is `VALUE` (the default for every metric) or `PATTERN=VALUE` (metrics whose path
//    contains PATTERN); VALUE `N%` is relative to the baseline, a bare `N` is an absolute delta.
//    The longest matching pattern wins; between patterns of equal length the later one wins; a
//    metric no pattern matches and with no default is not gated.
//  - |new - baseline| <= allowed passes: a zero tolerance is an exact match, and a relative
//    tolerance on a zero baseline allows nothing.
//
// Pure C++ over nlohmann::json: no SystemC, no simulator; reads only the reports.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xensim {

// The report layout this comparison knows (docs/report-schema.md). Both reports must carry it.
constexpr int kCompareSchemaVersion = 5;

// Bad input: a report that cannot be read, is not JSON, is not a report, has a non-number where a
// figure belongs, or whose schema_version differs from the other's. The message names the file
// and, where there is one, the JSON pointer. The CLI exits with status 2.
class ReportInputError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Tolerance {
    std::string spec;     // as given on the command line: "10%", "exits=0"
    std::string pattern;  // empty for the default tolerance
    double value = 0;     // a percentage when relative, else an absolute delta
    bool relative = false;

    // The largest |new - baseline| this tolerance allows for the given baseline.
    double allowed(double baseline) const;
};

// Parses one --tolerance argument: `N%`, `N`, `PATTERN=N%` or `PATTERN=N` with N a finite
// non-negative decimal number. Throws std::invalid_argument naming what is wrong.
Tolerance parse_tolerance(const std::string& spec);

// The --tolerance arguments of one invocation, in command-line order.
class ToleranceSet {
  public:
    // Parses and adds; throws std::invalid_argument on a bad spec or a pattern (or the default)
    // given twice.
    void add(const std::string& spec);
    // The tolerance for a metric path: the longest pattern contained in it (the later on a tie),
    // else the default, else nullptr (not gated).
    const Tolerance* find(const std::string& path) const;
    bool empty() const { return tolerances_.empty(); }
    const std::vector<Tolerance>& all() const { return tolerances_; }

  private:
    std::vector<Tolerance> tolerances_;
};

struct ReportFile {
    std::string file;  // as named on the command line; used in messages
    nlohmann::json report;
};

// Reads and parses a report; throws ReportInputError (cannot open, not valid JSON with line:column,
// not an object with an integer schema_version).
ReportFile load_report(const std::string& file);

struct MetricComparison {
    std::string group;  // "workload randread-4k-qd32", "domains", "simulation"
    std::string name;   // the path within the group: "per_request.exits.HLT"
    std::string path;   // the full path tolerances match: "workloads.randread-4k-qd32.per_request.exits.HLT"
    std::optional<double> baseline, current;  // nullopt: absent from that report
    bool integral = false;                    // every present side is a JSON integer
    std::optional<Tolerance> tolerance;       // nullopt: not gated
    double allowed = 0;                       // with a tolerance: the largest |delta| allowed
    bool moved = false;                       // gated, and beyond the tolerance or one-sided

    std::optional<double> ratio() const;  // new / baseline; nullopt when one-sided or baseline is 0
    std::optional<double> delta() const;  // new - baseline; nullopt when one-sided
};

struct Comparison {
    std::string baseline_file, current_file, baseline_scenario, current_scenario;
    int schema_version = 0;
    std::vector<std::string> tolerances;          // the --tolerance specs, in command-line order
    std::vector<std::string> notes;               // e.g. workloads matched by position
    std::vector<std::string> unmatched_patterns;  // --tolerance patterns that match no metric
    std::vector<MetricComparison> metrics;        // in table order, grouped
    bool gated = false;                           // any --tolerance given
    int moved = 0;

    // "informational" without tolerances, else "pass" or "fail".
    std::string verdict() const;
};

// Compares the two reports. Throws ReportInputError when the schema versions differ (naming both),
// are not kCompareSchemaVersion, or a figure is not a number.
Comparison compare_reports(const ReportFile& baseline, const ReportFile& current,
                           const ToleranceSet& tolerances);

// The side-by-side table, grouped by workload, then domains and simulation; with tolerances, an
// allowed column, the list of what moved and the verdict.
std::string render_comparison(const Comparison& c);

// The comparison as JSON (snake_case, keys in this order): baseline_file, new_file,
// baseline_scenario, new_scenario, schema_version, tolerances (the specs given), notes,
// unmatched_patterns, metrics[] {path, baseline, new, ratio, delta, tolerance {spec, allowed} or
// null, moved}, moved (count) and verdict. Absent figures, and ratio/delta without both, are null.
nlohmann::ordered_json comparison_to_json(const Comparison& c);

}  // namespace xensim
