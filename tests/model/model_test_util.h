// Helpers for model tests: build a platform from inline scenario JSON, run it, read its report.
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sim/platform/platform.h"
#include "sim/platform/scenario.h"

namespace xensim::testing {

struct Simulation {
    explicit Simulation(const nlohmann::json& scenario)
        : scenario_(parse_scenario(scenario.dump(), "inline")), platform(scenario_, tracer) {
        result = platform.run();
        report = platform.report(result);
    }
    const nlohmann::json& domain(const std::string& name) const {
        for (const auto& d : report.at("domains"))
            if (d.at("name") == name) return d;
        throw std::out_of_range("no domain " + name);
    }
    std::uint64_t stat(const std::string& dotted) const {
        const Counter* c = platform.stats().find_counter(dotted);
        if (!c) throw std::out_of_range("no counter " + dotted);
        return c->value();
    }
    std::uint64_t family(const std::string& dotted, const std::string& label) const {
        const CounterFamily* f = platform.stats().find_family(dotted);
        if (!f) throw std::out_of_range("no counter family " + dotted);
        return f->value(label);
    }

  private:
    Scenario scenario_;

  public:
    Tracer tracer;
    Platform platform;
    RunResult result;
    nlohmann::json report;
};

// At dom0 boot xenstored connects dom0's own kernel (EVTCHNOP_bind_interdomain of the loopback
// channel; the ring is dom0's own frame) and every guest (GNTTABOP_map_grant_ref of the guest's
// ring through the reserved grant GNTTAB_RESERVED_XENSTORE, EVTCHNOP_bind_interdomain of its
// store channel). Each bind raises xenstored's new port while dom0 still has it masked (one
// "masked" notification per connection); dom0 takes each such event as one upcall when it
// unmasks the port.
constexpr std::uint64_t kXenstoredDom0Hypercalls = 1;
constexpr std::uint64_t kXenstoredHypercallsPerGuest = 2;
constexpr std::uint64_t xenstored_connections(std::uint64_t guests) { return guests + 1; }

// Counts in a JSON object, 0 when the key is absent.
inline std::uint64_t count(const nlohmann::json& obj, const std::string& key) {
    return obj.contains(key) ? obj.at(key).get<std::uint64_t>() : 0;
}

}  // namespace xensim::testing
