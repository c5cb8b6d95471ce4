// `xensim sweep`: runs a sweep file's points as processes, N at a time, and merges their results.
//
// The problem. SystemC elaborates once per process, so every point of a study is its own
// `xensim run`; a study of 48 points on a 2-core machine should keep both cores busy, survive a
// point that crashes, resume after an interruption, and scale out to the schedulers people
// already run (GNU parallel, Slurm job arrays) without a scheduler of our own.
//
// What it does (the sweep file: sim/platform/sweep_spec.h; the results: reports/sweep_results.h):
//   xensim sweep S.json --out DIR [-j N]   runs every point not already finished as
//       /proc/self/exe run BASE --set ... --set platform.seed=S --out DIR/points/<id>
//       (stdout and stderr into that directory), at most N at once (default: every core), then
//       writes point.json (the marker, last, by rename) and finally DIR/sweep.csv and sweep.json.
//       A point that fails (non-zero exit, a signal, no report) is recorded with its reason and
//       the others go on; the exit status is 1 if any point did not end "ok".
//   --point ID   does exactly what the driver does for that one point (the unit --list prints).
//   --list       prints one shell command per point, `xensim sweep S.json --out DIR --point ID`.
//   --shard I/N  runs (or lists) only the points whose index % N == I; writes no sweep.csv.
//   --merge [DIR...]  writes DIR/sweep.csv and sweep.json from finished points found in DIR/points
//       and in each DIR.../points (copied into DIR/points), without running anything.
// Progress: on a terminal, one line rewritten in place with a bar, done/total and an ETA; otherwise
// a plain line per finished point. Progress goes to stderr; host time appears only there and in
// point.json's host_seconds, never in sweep.csv or sweep.json.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace xensim {

// A command line that cannot be run (the CLI prints usage, exit status 2).
class SweepUsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct SweepOptions {
    std::string file, out;
    unsigned jobs = 0;  // 0: std::thread::hardware_concurrency()
    bool list = false;
    bool sharded = false;
    std::size_t shard_index = 0, shard_count = 1;
    std::string point;  // --point ID
    bool merge = false;
    std::vector<std::string> merge_dirs;
};

// Parses the arguments after "sweep". Throws SweepUsageError.
SweepOptions parse_sweep_options(const std::vector<std::string>& args);

// Runs the command; `self_exe` is this binary (the points re-execute it). Returns the exit status.
// Throws ScenarioError for a bad sweep file (exit status 2).
int run_sweep(const SweepOptions& options, const std::string& self_exe);

}  // namespace xensim
