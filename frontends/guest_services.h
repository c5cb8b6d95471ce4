// What guest code may do: the only door from frontends/ to the simulated machine.
//
// Guest drivers and workloads are C++ that runs on a simulated vCPU. They reach the platform only
// through this interface, exactly where real guest code would reach hardware or Xen: computing,
// port and MMIO accesses, CPUID/MSRs, the hypercall instruction, halting, taking interrupts, and
// touching their own memory. The platform implements it on a vCPU so that every operation that
// traps on VT-x becomes a counted VM exit (see models/xen/vcpu.h); frontends never see models.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "sim/core/cost_model.h"

namespace xensim {

class GuestServices {
  public:
    virtual ~GuestServices() = default;

    virtual unsigned vcpu_id() const = 0;
    virtual bool is_pv() const = 0;  // a PV kernel knows it is one
    // The platform's cost figures, for guest-side work the cost model prices (upcall_dispatch).
    virtual const CostModel& costs() const = 0;

    // Guest time.
    virtual void compute(Cycles cycles) = 0;
    virtual std::uint64_t now_ns() const = 0;

    // Port I/O (IN/OUT; size 1, 2 or 4) and its rep-string forms (INS/OUTS of `count` units)
    // between the port and the guest's memory at guest-physical address `gpa` (the guests here
    // run with linear = physical addresses). A string whose buffer is not the guest's RAM stops
    // there (Xen injects #GP); INS/OUTS return false then.
    virtual std::uint32_t in(std::uint16_t port, unsigned size) = 0;
    virtual void out(std::uint16_t port, unsigned size, std::uint32_t value) = 0;
    virtual bool ins(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count) = 0;
    virtual bool outs(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count) = 0;

    // MMIO to a guest physical address outside RAM (size 1, 2, 4 or 8).
    virtual std::uint64_t mmio_read(std::uint64_t gpa, unsigned size) = 0;
    virtual void mmio_write(std::uint64_t gpa, unsigned size, std::uint64_t value) = 0;

    virtual void cpuid(std::uint32_t leaf, std::uint32_t subleaf, std::uint32_t out[4]) = 0;
    virtual std::uint64_t rdmsr(std::uint32_t msr) = 0;
    virtual void wrmsr(std::uint32_t msr, std::uint64_t value) = 0;

    // The hypercall instruction; pointer arguments are passed as addresses of the guest's structs.
    virtual long hypercall(unsigned op, unsigned long a1 = 0, unsigned long a2 = 0, unsigned long a3 = 0,
                           unsigned long a4 = 0, unsigned long a5 = 0) = 0;

    // Wait for an interrupt (HLT, or SCHEDOP_block for PV); returns after it has been handled.
    virtual void halt() = 0;
    // The event-channel upcall handler (runs on this vCPU, with upcalls held off).
    virtual void set_upcall_handler(std::function<void()> handler) = 0;
    // End of interrupt for a LAPIC-delivered vector.
    virtual void eoi() = 0;
    // The handler of a device interrupt vector (an emulated device's IRQ through the I/O APIC);
    // it runs on this vCPU like the upcall handler and must end with eoi().
    virtual void set_irq_handler(std::uint8_t vector, std::function<void()> handler) = 0;

    // A simulator annotation with no guest-visible effect and no cost: from now on this domain's
    // exits and hypercalls are attributed to phase `name` ("discovery", "unplug", "pv_connect" ...),
    // reported per phase. `name` must outlive the run (a string literal).
    virtual void mark_phase(const char* name) = 0;

    // The guest's own memory: allocate a frame, and reach a frame's bytes.
    virtual std::optional<std::uint64_t> alloc_page() = 0;
    // `n` consecutive frames whose bytes are one span (page(first) covers 4096 * n bytes), as a
    // driver's physically contiguous allocation (a multi-page ring). nullopt if none.
    virtual std::optional<std::uint64_t> alloc_pages(unsigned n) = 0;
    virtual void free_page(std::uint64_t gfn) = 0;
    virtual std::uint8_t* page(std::uint64_t gfn) = 0;
};

}  // namespace xensim
