#include "sim/platform/vcpu_guest_services.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace xensim {

namespace {
std::uint32_t ones(unsigned size) { return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1; }
}  // namespace

template <class F>
void VcpuGuestServices::trap(ExitReason reason, const ExitCause& cause, F&& f) {
    if (v_.type() == DomainType::pv)
        v_.pv_trap(cause, f);
    else
        v_.vmexit(reason, cause, f);
}

bool VcpuGuestServices::emulated(std::uint16_t port) const {
    return v_.type() != DomainType::pv && hv_.ioreq_claims_port(v_.domain().id, port);
}

std::uint32_t VcpuGuestServices::in(std::uint16_t port, unsigned size) {
    std::uint32_t value = ones(size);
    trap(ExitReason::IO_INSTRUCTION, ExitCause("port", port), [&] {
        std::optional<std::uint64_t> r;
        if (v_.type() != DomainType::pv) r = hv_.emulate_pio(v_, port, size, true, 0);
        if (r)
            value = static_cast<std::uint32_t>(*r);
        else
            unclaimed_.inc();
    });
    return value;
}

void VcpuGuestServices::out(std::uint16_t port, unsigned size, std::uint32_t value) {
    trap(ExitReason::IO_INSTRUCTION, ExitCause("port", port), [&] {
        if (v_.type() == DomainType::pv || !hv_.emulate_pio(v_, port, size, false, value)) unclaimed_.inc();
    });
}

bool VcpuGuestServices::ins(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count) {
    return rep_io(port, size, gpa, count, true);
}

bool VcpuGuestServices::outs(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count) {
    return rep_io(port, size, gpa, count, false);
}

bool VcpuGuestServices::rep_io(std::uint16_t port, unsigned size, std::uint64_t gpa, std::uint32_t count,
                               bool read) {
    // INS/OUTS encode 1, 2 or 4 bytes; anything else is a bug in the calling guest code.
    if (size != 1 && size != 2 && size != 4)
        throw std::logic_error("rep string of size " + std::to_string(size));
    GuestMemory& mem = v_.domain().memory;
    const ExitCause cause("port", port);
    while (count > 0) {
        // hvmemul_linear_to_phys: at most 4096 repetitions; hvmemul_do_io_addr: those within the
        // buffer's page, or a single one that straddles into the next page.
        const std::uint64_t offset = gpa % kPageSize;
        std::uint32_t n =
            std::min<std::uint32_t>({count, 4096u, static_cast<std::uint32_t>((kPageSize - offset) / size)});
        const bool straddles = n == 0;
        if (straddles) n = 1;
        bool faulted = false;
        trap(ExitReason::IO_INSTRUCTION, cause, [&] {
            const Gfn gfn = gpa >> kPageShift;
            if (!mem.page(gfn) || (straddles && !mem.page(gfn + 1))) {  // hvmemul_acquire_page
                rep_faults_.inc();
                faulted = true;
                return;
            }
            if (emulated(port)) {
                hv_.send_ioreq(v_, IOREQ_TYPE_PIO, port, size, n, read, gpa, true);
                return;
            }
            // No server: Xen's null handler completes the string, reads as all ones.
            unclaimed_.inc();
            if (read) {
                const std::vector<std::uint8_t> ones(std::size_t{size} * n, 0xff);
                mem.write(gpa, ones.data(), ones.size());
            }
        });
        if (faulted) return false;  // #GP: the guest's string instruction does not complete
        gpa += std::uint64_t{size} * n;
        count -= n;
    }
    return true;
}

bool VcpuGuestServices::emulated_mmio(std::uint64_t gpa) const {
    return v_.type() != DomainType::pv && hv_.ioreq_claims_mmio(v_.domain().id, gpa);
}

// The exit cause names the page only when a device model claims it (a set the scenario bounds);
// every other page shares "mmio:unclaimed", so a guest cannot grow exits_by_cause by touching pages.
ExitCause VcpuGuestServices::mmio_cause(std::uint64_t gpa) const {
    return emulated_mmio(gpa) ? ExitCause("mmio", gpa & ~std::uint64_t(0xfff)) : ExitCause("mmio:unclaimed");
}

std::uint64_t VcpuGuestServices::mmio_read(std::uint64_t gpa, unsigned size) {
    std::uint64_t value = size >= 8 ? ~std::uint64_t(0) : (std::uint64_t(1) << (8 * size)) - 1;
    trap(ExitReason::EPT_VIOLATION, mmio_cause(gpa), [&] {
        if (emulated_mmio(gpa))
            value = hv_.send_ioreq(v_, IOREQ_TYPE_COPY, gpa, size, 1, true, 0);
        else
            unclaimed_.inc();
    });
    return value;
}

void VcpuGuestServices::mmio_write(std::uint64_t gpa, unsigned size, std::uint64_t value) {
    trap(ExitReason::EPT_VIOLATION, mmio_cause(gpa), [&] {
        if (!emulated_mmio(gpa)) {
            unclaimed_.inc();
            return;
        }
        // Xen's stdvga intercept buffers a single direct VGA write when the page has room.
        const DomId dom = v_.domain().id;
        if (hv_.stdvga_accepts(dom, gpa, size) &&
            hv_.send_buffered_ioreq(v_, IOREQ_TYPE_COPY, gpa, size, value))
            return;
        hv_.send_ioreq(v_, IOREQ_TYPE_COPY, gpa, size, 1, false, value);
    });
}

void VcpuGuestServices::cpuid(std::uint32_t leaf, std::uint32_t subleaf, std::uint32_t out[4]) {
    std::memset(out, 0, 4 * sizeof(std::uint32_t));
    auto fill = [&] {
        // Xen's hypervisor leaves (xen/include/public/arch-x86/cpuid.h): signature, version,
        // hypercall page information.
        switch (leaf) {
            case 0x40000000:
                out[0] = 0x40000005;
                std::memcpy(&out[1], "XenV", 4);
                std::memcpy(&out[2], "MMXe", 4);
                std::memcpy(&out[3], "nVMM", 4);
                break;
            case 0x40000001:
                out[0] = (4u << 16) | 17u;
                break;
            case 0x40000002:
                out[0] = 1;           // hypercall transfer pages
                out[1] = 0x40000000;  // MSR that installs the hypercall page
                break;
            default:
                break;
        }
    };
    if (v_.type() == DomainType::pv) {
        fill();  // a PV kernel's CPUID runs natively (no CPUID faulting modelled)
        return;
    }
    v_.vmexit(ExitReason::CPUID, ExitCause("leaf", leaf), fill);
}

std::uint64_t VcpuGuestServices::rdmsr(std::uint32_t msr) {
    trap(ExitReason::MSR_READ, ExitCause("msr", msr), [] {});
    return 0;
}

void VcpuGuestServices::wrmsr(std::uint32_t msr, std::uint64_t value) {
    trap(ExitReason::MSR_WRITE, ExitCause("msr", msr), [] {});
}

void VcpuGuestServices::halt() {
    if (v_.type() == DomainType::pv) {
        hv_.hypercall(v_, __HYPERVISOR_sched_op, {SCHEDOP_block, 0, 0, 0, 0});
        return;
    }
    v_.vmexit(ExitReason::HLT, "hlt", [&] { v_.block_until_event(); });
}

}  // namespace xensim
