// What every workload reports: operations completed, their latency in simulated time, failures.
#pragma once

#include <functional>
#include <string>

#include "sim/core/stats.h"

namespace xensim {

struct WorkloadStats {
    WorkloadStats(StatsGroup& parent, const std::string& name)
        : group(name, &parent),
          ops(group, "ops", "operations", "operations completed"),
          failures(group, "failures", "operations", "operations that failed verification or got an error"),
          latency_ns(group, "latency_ns", "ns", "latency of one operation in simulated time") {}
    // The workload starts issuing operations: its window opens (the first call counts; what came
    // before is set-up: boot, handshakes, buffer allocation).
    void start(std::uint64_t now_ns) {
        if (started) return;
        started = true;
        start_ns = now_ns;
        if (on_start) on_start();
    }
    // One operation finished after `latency_ns` of simulated time.
    void complete_op(std::uint64_t latency) {
        ops.inc();
        latency_ns.sample(latency);
        if (on_progress) on_progress();
    }
    void finish(std::uint64_t now_ns) {
        end_ns = now_ns;
        done = true;
        if (on_progress) on_progress();
    }

    StatsGroup group;
    Counter ops;
    Counter failures;
    Distribution latency_ns;
    bool done = false;
    bool started = false;
    bool background = false;  // runs until the run ends; the run does not wait for it
    std::uint64_t start_ns = 0, end_ns = 0;
    std::function<void()> on_progress;  // set by the platform to check its stop condition
    std::function<void()> on_start;     // set by the platform to open the workload's window
};

}  // namespace xensim
