// Sweep files: a study of one base scenario over axes of --set values and seeds (issue 15).
//
// The problem. An architect asks "what if": ring pages 1..16, queues 1..8, persistent grants on or
// off, each repeated over seeds. Each answer is a `xensim run BASE --set KEY=VALUE` and a report;
// a sweep file names them all at once so that `xensim sweep` can run them, resume them, spread
// them over machines and merge their figures.
//
// What a sweep file says (its JSON Schema: `xensim schema sweep`, shipped as
// scenarios/schema/sweep.schema.json):
//   base     the scenario every point starts from, relative to the sweep file's directory;
//   axes     a list of {key, values}: `key` is a --set key exactly as `xensim run --set` takes it
//            (dotted names and array indices, "domains.1.disks.0.model"), `values` JSON values;
//   combine  "cross" (every combination, the first axis outermost, the last varying fastest) or
//            "zip" (the i-th value of every axis together; all axes as long);
//   seeds    each combination runs once per seed (`--set platform.seed=S`), default the base
//            scenario's own seed;
//   metrics  dotted report.json paths ("workloads.0.per_request.exits_total"), collected per point.
//
// The points. Expansion order is combinations in the order above, and within each combination the
// seeds in the order given; a point's index in that order is its identity. Its id is the index,
// zero-padded, a readable slug of its values and its seed ("0007-model=hdd-iodepth=4-s2"): stable
// for a given sweep file, and a directory name (only [A-Za-z0-9._+=-]).
//
// Validation happens before anything runs and, as for scenarios, every problem is reported with
// the file, the JSON pointer, what was expected and what was found (exit status 2): the structure
// against the schema, then the rules between fields (zip lengths, metric syntax, a key that the
// scenario schema has), then each axis value applied with --set to the base scenario and
// validated as `xensim validate --set` does, then each combination of values (two values each
// valid alone may not be together). A typo therefore fails in a second, not after an hour.
//
// Deliberate limits: a metric path is checked for syntax only (the report's shape depends on the
// scenario, so a path that names nothing is found per point, which then has the status
// "missing_metric"); an axis may not set platform.seed (that is what `seeds` is for).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/core/config_schema.h"

namespace xensim {

enum class SweepCombine { cross, zip };

struct SweepAxis {
    std::string key;                     // a --set key
    std::vector<nlohmann::json> values;  // applied as `--set key=<value as JSON>`
};

struct SweepSpec {
    std::string file;       // the sweep file as named on the command line
    std::string base;       // the base scenario as the sweep file names it
    std::string base_path;  // ... resolved against the sweep file's directory
    std::vector<SweepAxis> axes;
    SweepCombine combine = SweepCombine::cross;
    std::vector<std::uint64_t> seeds;  // never empty after loading
    std::vector<std::string> metrics;
};

struct SweepPoint {
    std::size_t index = 0;               // in expansion order
    std::size_t combination = 0;         // which combination of axis values (index / seeds)
    std::vector<nlohmann::json> values;  // one per axis
    std::uint64_t seed = 0;
    std::string id;                 // "0007-model=hdd-iodepth=4-s2"
    std::vector<std::string> sets;  // the --set arguments: one per axis, then platform.seed=S
};

// At most this many points (combinations x seeds): a sweep is a study, not a search.
constexpr std::size_t kMaxSweepPoints = 100000;

ConfigNodePtr sweep_schema();
// The JSON Schema document for sweep files.
nlohmann::json sweep_json_schema();

// How much of the validation above to do: everything, or all but the combinations (for one point
// run from a --list line: the sweep was checked when it was listed, `xensim run` checks the point
// itself, and checking every combination in every point's process would cost points^2 loads).
enum class SweepChecks { all, without_combinations };

// Reads and validates a sweep file (see above). Throws ScenarioError listing every problem found at
// the first stage that found any.
SweepSpec load_sweep(const std::string& file, SweepChecks checks = SweepChecks::all);
// The same from text in memory; `file` names it in messages and locates the base scenario.
SweepSpec parse_sweep(const std::string& text, const std::string& file,
                      SweepChecks checks = SweepChecks::all);

// Every point in expansion order.
std::vector<SweepPoint> expand_sweep(const SweepSpec& spec);

// "key=<value as compact JSON>", the --set argument for one axis value. A JSON string stays
// quoted ("model=\"hdd\""), which --set takes as that string for a string-typed key and reports
// as a string against any other type, so a value means exactly what the sweep file wrote.
std::string sweep_set_argument(const std::string& key, const nlohmann::json& value);

// Checks a metric path's syntax: dot-separated, non-empty components without whitespace. Returns
// what is wrong with it, or the empty string.
std::string metric_path_problem(const std::string& path);

}  // namespace xensim
