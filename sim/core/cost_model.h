// The cost model: what each hypervisor-visible event costs, in CPU cycles.
//
// Every figure is a named parameter with a default taken from published measurements (the table
// and its sources are in docs/cost-model.md; a test keeps that table and these defaults equal) and
// can be overridden per scenario under platform.cost. Models never hard-code a cost: they ask this
// object, so a what-if study ("exits twice as expensive") is one override away.
//
// Time: costs are cycles; simulated time is cycles at the platform's CPU frequency, converted to
// integer picoseconds (Clock), so a scenario gives the same timings on every host.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/core/config_schema.h"
#include "sim/core/exit_reason.h"

namespace xensim {

using Cycles = std::uint64_t;

class Clock {
  public:
    explicit Clock(std::uint64_t cpu_mhz) : mhz_(cpu_mhz) {}
    std::uint64_t mhz() const { return mhz_; }
    // Picoseconds for a number of cycles, rounded down.
    std::uint64_t ps(Cycles c) const { return c * 1'000'000ull / mhz_; }
    // Cycles elapsed in a span of picoseconds, rounded down.
    Cycles cycles(std::uint64_t ps) const { return ps * mhz_ / 1'000'000ull; }

  private:
    std::uint64_t mhz_;
};

struct CostModel {
    Cycles vmexit_roundtrip;
    std::array<Cycles, kExitReasonCount> handler;  // indexed by ExitReason
    Cycles pv_hypercall;
    std::map<std::string, Cycles> hypercall_op;  // by hypercall name ("event_channel_op")
    Cycles grant_map_per_page;
    Cycles grant_unmap_per_page;
    Cycles grant_copy_per_page;
    Cycles copy_bytes_per_cycle;
    Cycles tlb_flush;
    Cycles interrupt_injection;
    Cycles ipi_send;
    Cycles context_switch_vcpu;
    Cycles context_switch_domain;
    Cycles context_switch_idle;
    Cycles scheduler_decision;
    Cycles upcall_dispatch;
    Cycles ioreq_roundtrip;
    Cycles xenstored_request;
    Cycles blkfront_request;
    Cycles blkback_request;
    Cycles bridge_forward;
    Cycles netfront_tx_packet;
    Cycles netfront_rx_packet;
    Cycles netback_tx_packet;
    Cycles netback_rx_packet;
    Cycles device_model_ioreq;
    Cycles device_model_rep_element;
    Cycles ioreq_buffered;
    Cycles device_model_buffered_ioreq;
    Cycles guest_net_tx_packet;
    Cycles guest_net_rx_packet;

    // The documented default preset.
    static CostModel defaults();
    // The platform.cost schema node: every parameter, its default and description.
    static ConfigNodePtr schema();
    // Builds the model from the effective (validated, defaulted) platform.cost object.
    static CostModel from_config(const nlohmann::json& cost);

    Cycles exit_cost(ExitReason r) const { return vmexit_roundtrip + handler[static_cast<std::size_t>(r)]; }
    Cycles hypercall_op_cost(const std::string& op) const {
        auto it = hypercall_op.find(op);
        return it == hypercall_op.end() ? 0 : it->second;
    }
    Cycles copy_cost(std::uint64_t bytes) const {
        return copy_bytes_per_cycle ? (bytes + copy_bytes_per_cycle - 1) / copy_bytes_per_cycle : 0;
    }

    // Every parameter as (dotted name, value), in the order of docs/cost-model.md.
    std::vector<std::pair<std::string, Cycles>> flatten() const;
};

}  // namespace xensim
