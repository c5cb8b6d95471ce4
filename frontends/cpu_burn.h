// CPU burn: a guest that only computes, in slices, for as long as the run lasts.
//
// The neighbour of every contention study: it never blocks, so it uses whatever share of the
// pCPUs the scheduler gives it. Each slice of `slice_cycles` guest compute is one operation; its
// latency is the simulated time the slice took, which exceeds the slice's own cycles exactly by
// the time the vCPU spent preempted or in the hypervisor. With `vcpus` > 1 every vCPU of the
// domain burns.
#pragma once

#include <cstdint>

#include "frontends/guest_services.h"
#include "frontends/workload.h"

namespace xensim {

struct CpuBurnParams {
    Cycles slice_cycles = 1'000'000;
    std::uint64_t slices = 0;  // per vCPU; 0: until the run ends
};

class CpuBurn {
  public:
    CpuBurn(CpuBurnParams params, WorkloadStats& stats) : p_(params), stats_(stats) {}
    // Runs on one vCPU; returns after `slices` slices (never, when slices is 0).
    void run(GuestServices& s);

  private:
    CpuBurnParams p_;
    WorkloadStats& stats_;
    unsigned running_ = 0;
};

}  // namespace xensim
