// What both fast-path equivalence tests do (docs/temporal-decoupling.md): run a scenario with
// platform.fast_paths on or off, keep what must not differ, and name the first difference.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tests/scenario/cli_util.h"

namespace cli_testing {

struct FastPathRun {
    int status = -1;
    nlohmann::json report, stats;  // null when the run wrote no report
};

// `xensim run SCENARIO --out OUT` with the switch set; the report without what may differ (wall
// time, the scenario's file name, the switch itself).
inline FastPathRun run_fast_paths(const fs::path& scenario, const fs::path& out, bool fast) {
    Result r = xensim("run " + scenario.string() + " --out " + out.string() +
                      " --set platform.fast_paths=" + (fast ? "true" : "false"));
    FastPathRun run;
    run.status = r.status;
    if (!fs::exists(out / "report.json")) return run;
    run.report = read_json(out / "report.json");
    run.stats = read_json(out / "stats.json");
    run.report.erase("host");
    run.report.at("scenario").erase("file");
    run.report.at("config").at("platform").erase("fast_paths");
    return run;
}

// The first path at which the two documents differ ("" when they are equal), for a failure message.
inline std::string first_difference(const nlohmann::json& on, const nlohmann::json& off,
                                    const std::string& at = "") {
    if (on.is_object() && off.is_object()) {
        for (const auto& [k, v] : on.items()) {
            if (!off.contains(k)) return at + "/" + k + " (only with fast paths)";
            std::string d = first_difference(v, off.at(k), at + "/" + k);
            if (!d.empty()) return d;
        }
        for (const auto& [k, v] : off.items())
            if (!on.contains(k)) return at + "/" + k + " (only without fast paths)";
        return "";
    }
    if (on.is_array() && off.is_array() && on.size() == off.size()) {
        for (std::size_t i = 0; i < on.size(); ++i) {
            std::string d = first_difference(on[i], off[i], at + "/" + std::to_string(i));
            if (!d.empty()) return d;
        }
        return "";
    }
    return on == off ? "" : at + ": " + on.dump() + " with fast paths, " + off.dump() + " without";
}

}  // namespace cli_testing
