// Where Xen sends an HVM guest's port access: the decision part of its ioreq path, as a plain
// engine (no SystemC; Hypervisor::emulate_pio adds the exit, the ioreq and the wait).
//
// What is modelled, following Xen's xen/arch/x86/hvm/io.c (hvm_access_cf8),
// xen/arch/x86/hvm/ioreq.c (arch_ioreq_server_get_type_addr, with hvm_pci_decode_addr) and
// xen/common/ioreq.c (ioreq_server_select):
//  * The CF8 latch (d->arch.hvm.pci_cf8): Xen's own port handler covers 0xCF8-0xCFB and accepts
//    an access that lies within it; a 4-byte write (necessarily at 0xCF8) is stored. The handler
//    then returns X86EMUL_UNHANDLEABLE, so the access still goes on to an ioreq server like any
//    other port access.
//  * The kind of ioreq: an access to 0xCFC-0xCFF while the latch has its enable bit (31) set is a
//    PCI configuration cycle (XEN_DMOP_IO_RANGE_PCI) with
//    addr = SBDF << 32 | (CF8 & 0xFC) | (port & 3), the SBDF being CF8 bits 8-23 (bus, device,
//    function) in segment 0; anything else is a port access (XEN_DMOP_IO_RANGE_PORT) at its port.
//  * Server selection: a config cycle goes to a server that registered that SBDF
//    (rangeset_contains_singleton), as IOREQ_TYPE_PCI_CONFIG; a port access to a server whose port
//    ranges contain all of port .. port + size - 1 (rangeset_contains_range), as IOREQ_TYPE_PIO.
//    No server: Xen completes the access itself (hvmemul_do_io's null handler: reads all ones,
//    writes dropped), here the route `unclaimed`.
//
// Not modelled: AMD's extended configuration bits (CF8 bits 24-27 are added to the register only
// on AMD family 10h-16h hosts with NB_CFG's CF8 extension enabled, a path recent Xen dropped),
// more than one server per guest, and MMIO (IOREQ_TYPE_COPY) routing.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace xensim {

// What a device model registered with XEN_DMOP_map_io_range_to_ioreq_server.
struct IoreqRanges {
    std::vector<std::pair<std::uint16_t, std::uint16_t>> port_ranges;  // inclusive
    std::vector<std::uint32_t> pci_sbdfs;                              // XEN_DMOP_PCI_SBDF values
    bool claims_ports(std::uint16_t first, unsigned size) const;
    bool claims_sbdf(std::uint32_t sbdf) const;
};

struct PioRoute {
    enum class Kind { unclaimed, pio, pci_config } kind = Kind::unclaimed;
    std::uint64_t addr = 0;  // the ioreq's addr: the port, or SBDF << 32 | register
};

constexpr std::uint16_t kPciCf8 = 0xcf8, kPciCfc = 0xcfc;
constexpr std::uint32_t kPciCf8Enabled = 0x80000000u;

// hvm_access_cf8: the latch after an access of `size` bytes at `port`.
std::uint32_t pci_cf8_after(std::uint32_t cf8, std::uint16_t port, unsigned size, bool write,
                            std::uint32_t value);
// arch_ioreq_server_get_type_addr + ioreq_server_select for a guest with one server (or none).
PioRoute route_pio(std::uint32_t cf8, std::uint16_t port, unsigned size, const IoreqRanges* server);

}  // namespace xensim
