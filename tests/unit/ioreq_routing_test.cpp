// Xen's routing of an HVM guest's port accesses (models/xen/ioreq_routing.h), table-driven: the
// CF8 latch, the PCI_CONFIG address encoding, and server selection by port range or SBDF.
#include <gtest/gtest.h>

#include "models/xen/ioreq_routing.h"

namespace xensim {
namespace {

// hvm_access_cf8 stores only a 4-byte write inside 0xCF8-0xCFB (so at 0xCF8).
TEST(IoreqRouting, Cf8LatchTakesOnlyFourByteWritesAtCf8) {
    struct Case {
        std::uint16_t port;
        unsigned size;
        bool write;
        std::uint32_t expect;
        const char* what;
    };
    const std::uint32_t old = 0x80000000u, v = 0x80001804u;
    const Case cases[] = {
        {0xcf8, 4, true, v, "outl 0xCF8 latches"},
        {0xcf8, 4, false, old, "inl 0xCF8 does not"},
        {0xcfb, 1, true, old, "outb 0xCFB (Linux's pci_check_type1) does not"},
        {0xcf8, 2, true, old, "outw 0xCF8 does not"},
        {0xcf9, 4, true, old, "a 4-byte write at 0xCF9 is not inside the handler's ports"},
        {0xcfc, 4, true, old, "the data port does not"},
    };
    for (const Case& k : cases) EXPECT_EQ(pci_cf8_after(old, k.port, k.size, k.write, v), k.expect) << k.what;
}

// arch_ioreq_server_get_type_addr + ioreq_server_select with the server a device model registered:
// ports 0xCF8-0xCFF and 0x10-0x13, functions 00:00.0 and 00:03.0.
TEST(IoreqRouting, ConfigCyclesGoToTheServerOfTheirSbdf) {
    IoreqRanges dm;
    dm.port_ranges = {{0xcf8, 0xcff}, {0x10, 0x13}};
    dm.pci_sbdfs = {0x0000, 0x0018};
    using K = PioRoute::Kind;
    struct Case {
        std::uint32_t cf8;
        std::uint16_t port;
        unsigned size;
        K kind;
        std::uint64_t addr;
        const char* what;
    };
    const Case cases[] = {
        {0x80001800, 0xcfc, 4, K::pci_config, 0x0000001800000000ull, "00:03.0 reg 00h"},
        {0x80001808, 0xcfd, 1, K::pci_config, 0x0000001800000009ull, "byte at 0xCFD: reg 09h"},
        {0x80001804, 0xcfe, 2, K::pci_config, 0x0000001800000006ull, "word at 0xCFE: reg 06h"},
        {0x8000183c, 0xcff, 1, K::pci_config, 0x000000180000003full, "byte at 0xCFF: reg 3Fh"},
        {0x80001803, 0xcfc, 4, K::pci_config, 0x0000001800000000ull, "CF8 bits 0-1 are not register bits"},
        {0x8f001810, 0xcfc, 4, K::pci_config, 0x0000001800000010ull, "extended bits 24-27 ignored (not AMD)"},
        {0x80000000, 0xcfc, 4, K::pci_config, 0x0000000000000000ull, "00:00.0"},
        {0x80002000, 0xcfc, 4, K::unclaimed, 0, "00:04.0: no server registered it"},
        {0x80011800, 0xcfc, 4, K::unclaimed, 0, "bus 1: SBDF 0x118 not registered"},
        {0x00001800, 0xcfc, 4, K::pio, 0xcfc, "latch disabled: a port access to 0xCFC"},
        {0x80001800, 0xcf8, 4, K::pio, 0xcf8, "the address port itself is a port access"},
        {0x80001800, 0x10, 2, K::pio, 0x10, "platform device's fixed port"},
        {0x80001800, 0x12, 4, K::unclaimed, 0, "0x12-0x15 is not inside 0x10-0x13"},
        {0x80001800, 0x1f0, 2, K::unclaimed, 0, "a port nobody registered"},
    };
    for (const Case& k : cases) {
        const PioRoute r = route_pio(k.cf8, k.port, k.size, &dm);
        EXPECT_EQ(r.kind, k.kind) << k.what;
        EXPECT_EQ(r.addr, k.addr) << k.what;
    }
    // A guest without an ioreq server: everything is Xen's to complete.
    EXPECT_EQ(route_pio(0x80001800, 0xcfc, 4, nullptr).kind, K::unclaimed);
    EXPECT_EQ(route_pio(0, 0x10, 2, nullptr).kind, K::unclaimed);
}

}  // namespace
}  // namespace xensim
