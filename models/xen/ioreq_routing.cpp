#include "models/xen/ioreq_routing.h"

#include <algorithm>

namespace xensim {

bool IoreqRanges::claims_ports(std::uint16_t first, unsigned size) const {
    const unsigned last = first + size - 1;
    for (const auto& [lo, hi] : port_ranges)
        if (first >= lo && last <= hi) return true;
    return false;
}

bool IoreqRanges::claims_sbdf(std::uint32_t sbdf) const {
    return std::find(pci_sbdfs.begin(), pci_sbdfs.end(), sbdf) != pci_sbdfs.end();
}

std::uint32_t pci_cf8_after(std::uint32_t cf8, std::uint16_t port, unsigned size, bool write,
                            std::uint32_t value) {
    // The handler is registered for 4 ports at 0xCF8 (hvm_portio_accept: the access must lie
    // inside them); it stores only a 4-byte write.
    const bool inside = port >= kPciCf8 && port + size <= kPciCf8 + 4u;
    return inside && write && size == 4 ? value : cf8;
}

PioRoute route_pio(std::uint32_t cf8, std::uint16_t port, unsigned size, const IoreqRanges* server) {
    PioRoute r;
    if ((port & ~3u) == kPciCfc && (cf8 & kPciCf8Enabled)) {
        const std::uint32_t sbdf = (cf8 >> 8) & 0xffff;  // CF8_BDF, segment 0
        if (server && server->claims_sbdf(sbdf)) {
            r.kind = PioRoute::Kind::pci_config;
            r.addr = (std::uint64_t{sbdf} << 32) | (cf8 & 0xfcu) | (port & 3u);  // CF8_ADDR_LO | (addr & 3)
        }
        return r;
    }
    if (server && server->claims_ports(port, size)) {
        r.kind = PioRoute::Kind::pio;
        r.addr = port;
    }
    return r;
}

}  // namespace xensim
