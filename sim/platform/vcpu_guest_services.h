// GuestServices on a simulated vCPU: where guest operations become VM exits.
//
// Every operation that traps on VT-x goes through Vcpu::vmexit with its Intel basic exit reason
// and a cause label: IN/OUT and INS/OUTS -> IO_INSTRUCTION ("port:0x1f0"), MMIO ->
// EPT_VIOLATION ("mmio:0xfebc0000"), CPUID -> CPUID, RDMSR/WRMSR -> MSR_READ/MSR_WRITE,
// hypercalls -> VMCALL, HLT -> HLT. A PV domain takes no VM exits: its hypercalls enter Xen
// directly, it idles with SCHEDOP_block, and privileged instructions it issues are emulated by
// Xen after a fault (charged as PV traps, not counted as exits).
//
// IN/OUT to a port an ioreq server claims (an emulated device in the device model) is forwarded as
// an ioreq (Hypervisor::send_ioreq): the vCPU waits, descheduled, for the device model's answer.
// Xen decides the ioreq of a port access (Hypervisor::emulate_pio): the CF8 latch turns
// 0xCFC-0xCFF accesses into IOREQ_TYPE_PCI_CONFIG for the server that mapped the function; a config
// cycle to a function no server mapped is completed by Xen (all ones) and counted as unclaimed I/O.
// MMIO exits as EPT_VIOLATION: Xen leaves emulated ranges (p2m_mmio_dm) without EPT permissions,
// so an access faults as a violation and goes to hvm_hap_nested_page_fault's emulation (Xen uses
// EPT_MISCONFIG only for its memory-type recalculation; it is KVM that marks MMIO misconfigured).
// MMIO to a range an ioreq server claims goes the same way as an IOREQ_TYPE_COPY ioreq, except a
// write Xen's standard-VGA intercept accepts, which is queued on the buffered ioreq page
// (Hypervisor::send_buffered_ioreq) without a wait. MMIO exit causes are labelled by page
// ("mmio:0xb8000"), so a frame buffer does not make one label per byte, and only pages a device
// model claims get their own label; all others share "mmio:unclaimed", so the label set is
// bounded by the scenario's devices, not by the addresses a guest chooses. Other ports and addresses
// reach no device: reads return all ones and writes are dropped, as for an unclaimed port on Xen,
// and such accesses are counted per domain as unclaimed_io.
//
// A rep string (INS/OUTS) is emulated as Xen 4.20's x86/hvm/emulate.c does: one exit handles at
// most 4096 repetitions (hvmemul_linear_to_phys) and only those whose memory operand lies in the
// buffer's first page (hvmemul_do_io_addr; one repetition that straddles two pages is done
// alone), as one ioreq with a count and the buffer's guest-physical address (data_is_ptr); the
// instruction is then restarted for the rest, which traps again. So a string exits once per page
// it touches. A buffer frame that is not the guest's RAM makes the emulation unhandleable
// (hvmemul_acquire_page) and Xen injects #GP: the string stops, counted as rep_io_faults.
#pragma once

#include "frontends/guest_services.h"
#include "models/dom0/backend_services.h"
#include "models/xen/hypervisor.h"

namespace xensim {

// Implements both the guest's and a dom0 backend's door (they share the same operations).
class VcpuGuestServices : public GuestServices, public BackendServices {
  public:
    VcpuGuestServices(Hypervisor& hv, Vcpu& vcpu, Counter& unclaimed_io, Counter& rep_io_faults)
        : hv_(hv), v_(vcpu), unclaimed_(unclaimed_io), rep_faults_(rep_io_faults) {}

    unsigned vcpu_id() const override { return v_.id(); }
    bool is_pv() const override { return v_.type() == DomainType::pv; }
    const CostModel& costs() const override { return hv_.cost(); }
    void compute(Cycles cycles) override { v_.run_guest(cycles); }
    std::uint64_t now_ns() const override { return v_.now_ps() / 1000; }

    std::uint32_t in(std::uint16_t port, unsigned size) override;
    void out(std::uint16_t port, unsigned size, std::uint32_t value) override;
    bool ins(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count) override;
    bool outs(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count) override;
    std::uint64_t mmio_read(std::uint64_t gpa, unsigned size) override;
    void mmio_write(std::uint64_t gpa, unsigned size, std::uint64_t value) override;
    void cpuid(std::uint32_t leaf, std::uint32_t subleaf, std::uint32_t out[4]) override;
    std::uint64_t rdmsr(std::uint32_t msr) override;
    void wrmsr(std::uint32_t msr, std::uint64_t value) override;

    long hypercall(unsigned op, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4,
                   unsigned long a5) override {
        return hv_.hypercall(v_, op, {a1, a2, a3, a4, a5});
    }
    void halt() override;
    void set_upcall_handler(std::function<void()> handler) override {
        v_.set_upcall_handler(std::move(handler));
    }
    void eoi() override { v_.eoi(); }
    void set_irq_handler(std::uint8_t vector, std::function<void()> handler) override {
        v_.set_irq_handler(vector, std::move(handler));
    }
    void mark_phase(const char* name) override {
        if (on_phase) on_phase(name);
    }
    // Set by the platform: records the domain's phase boundaries.
    std::function<void(const char*)> on_phase;

    std::optional<std::uint64_t> alloc_page() override { return v_.domain().memory.allocate_page(); }
    std::optional<std::uint64_t> alloc_pages(unsigned n) override {
        return v_.domain().memory.allocate_contiguous(n);
    }
    void free_page(std::uint64_t gfn) override { v_.domain().memory.free_page(gfn); }
    std::uint8_t* page(std::uint64_t gfn) override { return v_.domain().memory.page(gfn); }
    std::optional<std::uint64_t> take_unpopulated_frame() override {
        return v_.domain().memory.take_unpopulated_frame();
    }

  private:
    bool emulated(std::uint16_t port) const;
    bool emulated_mmio(std::uint64_t gpa) const;
    ExitCause mmio_cause(std::uint64_t gpa) const;  // exit cause: the claimed page, or "mmio:unclaimed"
    template <class F>
    void trap(ExitReason reason, const ExitCause& cause, F&& f);
    bool rep_io(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count, bool read);

    Hypervisor& hv_;
    Vcpu& v_;
    Counter& unclaimed_;
    Counter& rep_faults_;
};

}  // namespace xensim
