// What dom0 software (xenstored, and the backends of later issues) may do: the narrow door from
// models/dom0 to the machine, so a backend can be tested against a fake.
//
// Dom0 code runs on dom0's vCPUs like any guest code; the platform implements this interface on a
// vCPU (sim/platform/vcpu_guest_services.h), so every hypercall is counted and charged exactly as a
// guest's. A backend reaches another domain's memory only through grant operations made with
// hypercall(); page() gives it its own frames, including the ones where it mapped a grant.
#pragma once

#include <cstdint>
#include <optional>

#include "sim/core/cost_model.h"

namespace xensim {

class BackendServices {
  public:
    virtual ~BackendServices() = default;
    virtual const CostModel& costs() const = 0;
    virtual void compute(Cycles cycles) = 0;
    virtual std::uint64_t now_ns() const = 0;
    virtual long hypercall(unsigned op, unsigned long a1, unsigned long a2, unsigned long a3,
                           unsigned long a4, unsigned long a5) = 0;
    virtual std::optional<std::uint64_t> alloc_page() = 0;
    virtual void free_page(std::uint64_t gfn) = 0;
    virtual std::uint8_t* page(std::uint64_t gfn) = 0;
    // A frame with nothing behind it, to map a foreign grant at (GNTMAP_host_map needs one).
    virtual std::optional<std::uint64_t> take_unpopulated_frame() = 0;
};

}  // namespace xensim
