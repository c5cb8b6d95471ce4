// The PCI configuration-space engine and bus 0 tested the way a driver uses them: through the
// 0xCF8 / 0xCFC ports (configuration mechanism #1), in the style of QEMU's tests/qtest/libqos
// pci-pc.c accessors (outl CONFIG_ADDRESS, then in/out at 0xCFC + (reg & 3)). Expected values cite
// the PCI Local Bus Specification 3.0 section they come from.
#include <gtest/gtest.h>

#include "models/devices/pci_bus.h"
#include "models/devices/piix_ide.h"
#include "models/devices/xen_platform.h"

namespace xensim {
namespace {

// A driver's view of the bus: the two ports only.
struct Conf1 {
    PciBus& bus;
    static std::uint32_t address(std::uint8_t devfn, unsigned reg) {
        return 0x80000000u | (std::uint32_t{devfn} << 8) | (reg & 0xfc);
    }
    std::uint32_t read(std::uint8_t devfn, unsigned reg, unsigned size) {
        bus.write(0xcf8, 4, address(devfn, reg), 0);
        return bus.read(static_cast<std::uint16_t>(0xcfc + (reg & 3)), size, 0);
    }
    void write(std::uint8_t devfn, unsigned reg, unsigned size, std::uint32_t v) {
        bus.write(0xcf8, 4, address(devfn, reg), 0);
        bus.write(static_cast<std::uint16_t>(0xcfc + (reg & 3)), size, v, 0);
    }
};

struct Xenfv {
    StatsGroup root{""};
    PciBus bus{root};
    Conf1 c{bus};
    explicit Xenfv(bool platform = true, bool stdvga = false) {
        for (const auto& [devfn, fn] : xenfv_functions(platform, PiixIdeConfig{}.bmdma_base, stdvga))
            bus.add(devfn, fn);
    }
};

constexpr std::uint8_t kHost = pci_devfn(0, 0), kIsa = pci_devfn(1, 0), kIde = pci_devfn(1, 1),
                       kAcpi = pci_devfn(1, 3), kVga = pci_devfn(2, 0), kPlatform = pci_devfn(3, 0);

// §6.1: a configuration read of a function that does not exist ends in a master abort, which the
// host bridge returns as all ones; Linux's pci_bus_generic_read_dev_vendor_id relies on it.
TEST(PciBus, AbsentFunctionsReadAllOnes) {
    Xenfv m;
    struct Case {
        std::uint8_t devfn;
        unsigned reg, size;
        const char* what;
    };
    const Case cases[] = {
        {pci_devfn(4, 0), 0x00, 4, "empty slot, vendor/device dword"},
        {pci_devfn(31, 0), 0x00, 4, "last slot"},
        {pci_devfn(1, 2), 0x00, 4, "missing function of the multi-function PIIX3"},
        {pci_devfn(1, 7), 0x08, 4, "class dword of a missing function"},
        {pci_devfn(4, 0), 0x02, 2, "device word of an empty slot"},
        {pci_devfn(4, 0), 0x0e, 1, "header type byte of an empty slot"},
    };
    for (const Case& k : cases)
        EXPECT_EQ(m.c.read(k.devfn, k.reg, k.size), k.size == 4 ? 0xffffffffu : (1u << (8 * k.size)) - 1)
            << k.what;
    // Writes to nothing are dropped and counted, reads too.
    m.c.write(pci_devfn(5, 0), 0x04, 2, 0x7);
    EXPECT_EQ(m.bus.stats().absent.value(), 7u);
    // Only bus 0 exists: the same slot on bus 1 (CONFIG_ADDRESS bits 16-23) is absent.
    m.bus.write(0xcf8, 4, 0x80000000u | (1u << 16) | (std::uint32_t{kPlatform} << 8), 0);
    EXPECT_EQ(m.bus.read(0xcfc, 4, 0), 0xffffffffu);
    // The SBDF path (IOREQ_TYPE_PCI_CONFIG) agrees: segment 1 or bus 1 are absent.
    EXPECT_EQ(m.bus.config_read(pci_sbdf(1, 0, kPlatform), 0, 4), 0xffffffffu);
    EXPECT_EQ(m.bus.config_read(pci_sbdf(0, 1, kPlatform), 0, 4), 0xffffffffu);
}

// The xenfv machine's functions and their identity (pci_bus.h's table; QEMU's xen_platform.c for
// 00:03.0: class FF80h, revision 1, subsystem 5853:0001, INTA#).
TEST(PciBus, XenfvBusZeroHoldsTheMachinesFunctions) {
    Xenfv m;
    struct Case {
        std::uint8_t devfn;
        std::uint32_t id, class_rev;
        std::uint8_t header_type;
    };
    const Case cases[] = {
        {kHost, 0x12378086, 0x06000002, 0x00}, {kIsa, 0x70008086, 0x06010000, 0x80},
        {kIde, 0x70108086, 0x01018000, 0x00},  {kAcpi, 0x71138086, 0x06800003, 0x00},
        {kVga, 0x00b81013, 0x03000000, 0x00},  {kPlatform, 0x00015853, 0xff800001, 0x00},
    };
    for (const Case& k : cases) {
        EXPECT_EQ(m.c.read(k.devfn, PCI_VENDOR_ID, 4), k.id) << int(k.devfn);
        EXPECT_EQ(m.c.read(k.devfn, PCI_CLASS_REVISION, 4), k.class_rev) << int(k.devfn);
        EXPECT_EQ(m.c.read(k.devfn, PCI_HEADER_TYPE, 1), k.header_type) << int(k.devfn);
    }
    EXPECT_EQ(m.c.read(kPlatform, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00015853u);
    EXPECT_EQ(m.c.read(kPlatform, PCI_INTERRUPT_PIN, 1), 1u);
    EXPECT_EQ(m.c.read(kPlatform, PCI_COMMAND, 2), unsigned{PCI_COMMAND_IO | PCI_COMMAND_MEMORY});
    EXPECT_EQ(m.bus.sbdfs(), (std::vector<std::uint32_t>{kHost, kIsa, kIde, kAcpi, kVga, kPlatform}));
    // Without xen_platform_pci the slot is empty.
    Xenfv plain(false);
    EXPECT_EQ(plain.c.read(kPlatform, PCI_VENDOR_ID, 4), 0xffffffffu);
}

// §6.2.5.1: software writes all ones to a BAR and reads back; the bits that stay zero give the
// size, the low bits the type. Then it writes the original value back.
TEST(PciBus, BarSizingReadsBackTheSizeMaskAndRestores) {
    Xenfv m;
    struct Case {
        std::uint8_t devfn;
        unsigned bar;
        std::uint32_t firmware, sized;
        const char* what;
    };
    const Case cases[] = {
        {kPlatform, 0, 0xc101, 0xffffff01, "platform BAR0: 256 bytes of I/O"},
        {kPlatform, 1, 0xf2000008, 0xff000008, "platform BAR1: 16 MiB prefetchable memory"},
        {kPlatform, 2, 0, 0, "platform BAR2: not implemented, read-only zero"},
        {kIde, 4, 0xc001, 0xfffffff1, "PIIX3 IDE BAR4: the 16 bus-master ports"},
        {kIde, 0, 0, 0, "PIIX3 IDE BAR0: legacy mode, not implemented"},
        {kVga, 0, 0xf0000008, 0xfe000008, "VGA BAR0: 32 MiB prefetchable"},
        {kVga, 1, 0xf3000000, 0xfffff000, "VGA BAR1: 4 KiB memory"},
        {kHost, 0, 0, 0, "host bridge: no BARs"},
    };
    for (const Case& k : cases) {
        const unsigned reg = PCI_BASE_ADDRESS_0 + 4 * k.bar;
        const std::uint32_t l = m.c.read(k.devfn, reg, 4);
        EXPECT_EQ(l, k.firmware) << k.what;
        m.c.write(k.devfn, reg, 4, 0xffffffffu);
        EXPECT_EQ(m.c.read(k.devfn, reg, 4), k.sized) << k.what;
        m.c.write(k.devfn, reg, 4, l);
        EXPECT_EQ(m.c.read(k.devfn, reg, 4), k.firmware) << k.what;
    }
    // The expansion ROM BAR (30h) is not implemented on any function: a ROM sizing write of
    // PCI_ROM_ADDRESS_MASK reads back zero, so Linux's __pci_read_base finds no ROM.
    m.c.write(kPlatform, PCI_ROM_ADDRESS, 4, static_cast<std::uint32_t>(PCI_ROM_ADDRESS_MASK));
    EXPECT_EQ(m.c.read(kPlatform, PCI_ROM_ADDRESS, 4), 0u);
    // The IDE engine's bus-master base is what BAR4 decodes.
    EXPECT_EQ(m.bus.function(kIde)->bar(4), PiixIdePciConfig{PiixIdeConfig{}.bmdma_base}.bar4());
}

// Read-only header fields keep their value whatever is written (§6.1: "read-only registers ...
// writes have no effect"); only the declared writable bits move.
TEST(PciBus, ReadOnlyFieldsIgnoreWrites) {
    struct Case {
        unsigned reg, size;
        std::uint32_t before, after_ones;
        const char* what;
    };
    const Case cases[] = {
        {PCI_VENDOR_ID, 4, 0x00015853, 0x00015853, "vendor and device ID"},
        {PCI_CLASS_REVISION, 4, 0xff800001, 0xff800001, "class code and revision"},
        {PCI_HEADER_TYPE, 1, 0x00, 0x00, "header type"},
        {PCI_SUBSYSTEM_VENDOR_ID, 4, 0x00015853, 0x00015853, "subsystem IDs"},
        {PCI_INTERRUPT_PIN, 1, 0x01, 0x01, "interrupt pin"},
        {PCI_CAPABILITY_LIST, 1, 0x00, 0x00, "no capability list"},
        {PCI_LATENCY_TIMER, 1, 0x00, 0x00, "latency timer (not writable in QEMU's wmask)"},
        // §6.2.2: command bits 0-2, 6, 8 and 10 are implemented here; the rest read zero.
        {PCI_COMMAND, 2, 0x0003, 0x0547, "command: only I/O, memory, master, parity, SERR#, INTx disable"},
        {PCI_CACHE_LINE_SIZE, 1, 0x00, 0xff, "cache line size is read/write"},
        {PCI_INTERRUPT_LINE, 1, 11, 0xff, "interrupt line is read/write"},
    };
    for (const Case& k : cases) {
        Xenfv fresh;
        EXPECT_EQ(fresh.c.read(kPlatform, k.reg, k.size), k.before) << k.what;
        fresh.c.write(kPlatform, k.reg, k.size, 0xffffffffu);
        EXPECT_EQ(fresh.c.read(kPlatform, k.reg, k.size), k.after_ones) << k.what;
    }
}

// §6.2.3: status error bits are cleared by writing 1 to them; other status bits are read-only.
TEST(PciConfigSpace, StatusErrorBitsAreWriteOneToClear) {
    PciFunctionConfig f;
    f.name = "test";
    f.vendor_id = 0x1234;
    f.device_id = 0x5678;
    f.status = 0x0200 | PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_DETECTED_PARITY;  // DEVSEL medium
    PciConfigSpace cs(f);
    cs.write(PCI_STATUS, 2, 0);  // writing 0 changes nothing
    EXPECT_EQ(cs.read(PCI_STATUS, 2), 0xa200u);
    cs.write(PCI_STATUS, 2, PCI_STATUS_REC_MASTER_ABORT | 0x0200);  // DEVSEL is not W1C
    EXPECT_EQ(cs.read(PCI_STATUS, 2), 0x8200u);
    cs.write(PCI_STATUS + 1, 1, 0xff);  // a byte write reaches the upper half only
    EXPECT_EQ(cs.read(PCI_STATUS, 2), 0x0200u);
    // A declared capability bit is dropped: no capability list is modelled.
    f.status = PCI_STATUS_CAP_LIST;
    EXPECT_EQ(PciConfigSpace(f).read(PCI_STATUS, 2), 0u);
}

// Byte and word accesses at 0xCFC + 1..3 reach the bytes of the dword CONFIG_ADDRESS selects
// (§3.2.2.3.2: the byte enables of the data access select the bytes), as Linux's pci_conf1_read
// does with inb(0xCFC + (reg & 3)) / inw(0xCFC + (reg & 2)).
TEST(PciBus, PartialAccessesAtTheDataPortOffsets) {
    Xenfv m;
    m.bus.write(0xcf8, 4, Conf1::address(kPlatform, 0), 0);
    EXPECT_EQ(m.bus.read(0xcfc, 1, 0), 0x53u);
    EXPECT_EQ(m.bus.read(0xcfd, 1, 0), 0x58u);
    EXPECT_EQ(m.bus.read(0xcfe, 1, 0), 0x01u);
    EXPECT_EQ(m.bus.read(0xcff, 1, 0), 0x00u);
    EXPECT_EQ(m.bus.read(0xcfe, 2, 0), 0x0001u);  // device ID
    // Class dword 08h: revision at 0xCFC, prog-if at 0xCFD, class at 0xCFE.
    m.bus.write(0xcf8, 4, Conf1::address(kIde, PCI_CLASS_REVISION), 0);
    EXPECT_EQ(m.bus.read(0xcfd, 1, 0), 0x80u);
    EXPECT_EQ(m.bus.read(0xcfe, 2, 0), 0x0101u);
    // A byte write at 0xCFD reaches the command register's upper byte only: INTx disable (bit 10)
    // set, I/O and memory decode (lower byte) untouched.
    m.bus.write(0xcf8, 4, Conf1::address(kPlatform, PCI_COMMAND), 0);
    m.bus.write(0xcfd, 1, 0x04, 0);
    EXPECT_EQ(m.c.read(kPlatform, PCI_COMMAND, 2), 0x0403u);
    // A word write at 0xCFE (status) does not touch the command register.
    m.bus.write(0xcf8, 4, Conf1::address(kPlatform, PCI_COMMAND), 0);
    m.bus.write(0xcfe, 2, 0xffff, 0);
    EXPECT_EQ(m.c.read(kPlatform, PCI_COMMAND, 2), 0x0403u);
    // A word read of the BAR's upper half.
    m.bus.write(0xcf8, 4, Conf1::address(kPlatform, PCI_BASE_ADDRESS_0 + 4), 0);
    EXPECT_EQ(m.bus.read(0xcfe, 2, 0), 0xf200u);
}

// CONFIG_ADDRESS (QEMU pci_host_config_write/read): only a 4-byte write at 0xCF8 stores it, a read
// returns it; without the enable bit the data port reads all ones and writes go nowhere.
TEST(PciBus, ConfigAddressRegisterAndEnableBit) {
    Xenfv m;
    m.bus.write(0xcf8, 4, 0x80001800u, 0);
    EXPECT_EQ(m.bus.read(0xcf8, 4, 0), 0x80001800u);
    m.bus.write(0xcfb, 1, 0x01, 0);  // Linux's pci_check_type1 byte write: ignored
    m.bus.write(0xcf8, 2, 0x1234, 0);
    EXPECT_EQ(m.bus.read(0xcf8, 4, 0), 0x80001800u);
    EXPECT_EQ(m.bus.read(0xcfb, 1, 0), 0x80u);
    EXPECT_EQ(m.bus.read(0xcfc, 4, 0), 0x00015853u);  // 00:03.0 vendor/device
    m.bus.write(0xcf8, 4, 0x00001800u, 0);            // enable bit clear
    EXPECT_EQ(m.bus.read(0xcfc, 4, 0), 0xffffffffu);
    EXPECT_EQ(m.bus.read(0xcfe, 2, 0), 0xffffu);
    m.bus.write(0xcf8, 4, 0x00001804u, 0);
    m.bus.write(0xcfc, 2, 0, 0);  // would clear the command register if it went anywhere
    EXPECT_EQ(m.c.read(kPlatform, PCI_COMMAND, 2), unsigned{PCI_COMMAND_IO | PCI_COMMAND_MEMORY});
    EXPECT_TRUE(m.bus.claims(0xcf8));
    EXPECT_TRUE(m.bus.claims(0xcff));
    EXPECT_FALSE(m.bus.claims(0xcf7));
    EXPECT_FALSE(m.bus.claims(0xd00));
}

// The SBDF path Xen's IOREQ_TYPE_PCI_CONFIG ioreqs take (QEMU cpu_ioreq_config) reaches the same
// registers, with the 256-byte limit of pci_host_config_read_common.
TEST(PciBus, ConfigAccessBySbdfMatchesThePorts) {
    Xenfv m;
    const std::uint32_t sbdf = pci_sbdf(0, 0, kPlatform);
    EXPECT_EQ(m.bus.config_read(sbdf, PCI_VENDOR_ID, 4), m.c.read(kPlatform, PCI_VENDOR_ID, 4));
    EXPECT_EQ(m.bus.config_read(sbdf, PCI_CLASS_DEVICE, 2), 0xff80u);
    m.bus.config_write(sbdf, PCI_BASE_ADDRESS_0, 4, 0xffffffffu);
    EXPECT_EQ(m.c.read(kPlatform, PCI_BASE_ADDRESS_0, 4), 0xffffff01u);
    EXPECT_EQ(m.bus.config_read(sbdf, 0xfe, 4), 0xffffffffu);  // past the 256 bytes
    EXPECT_EQ(m.bus.config_read(sbdf, 0x40, 4), 0u);           // device-specific space: never written
    EXPECT_EQ(m.bus.stats().config_reads.value("00:03.0"), 5u);
    EXPECT_EQ(m.bus.stats().config_writes.value("00:03.0"), 1u);
}

TEST(PciConfigSpace, InvalidBarDeclarationsAreRejected) {
    PciFunctionConfig f;
    f.name = "bad";
    f.bars = {{0, PciBarKind::io, 24, 0xc000}};  // not a power of two
    EXPECT_THROW(PciConfigSpace{f}, std::logic_error);
    f.bars = {{0, PciBarKind::mem32, 0x1000, 0xf0000800}};  // not aligned to its size
    EXPECT_THROW(PciConfigSpace{f}, std::logic_error);
    f.bars = {{6, PciBarKind::mem32, 0x1000, 0}};  // no BAR 6
    EXPECT_THROW(PciConfigSpace{f}, std::logic_error);
    StatsGroup root("");
    PciBus bus(root);
    bus.add(0, PciFunctionConfig{});
    EXPECT_THROW(bus.add(0, PciFunctionConfig{}), std::logic_error);
}

// Device-specific registers (40h-FFh) behave as QEMU's generic configuration space makes them
// (hw/pci/pci.c pci_init_wmask: writable bytes): the PIIX3 IDE function, whose hw/ide/piix.c
// implements none of them, shows hvmloader's IDETIM values (8000h: decode enabled on both
// channels), keeps what a driver writes, and reads 0 where nothing was written (SIDETIM, the
// PIIX4-only UDMA registers, the ICH's IDE_CONFIG).
TEST(PciConfigSpace, DeviceSpecificRegistersAreGenericReadWriteBytes) {
    Xenfv m;
    EXPECT_EQ(m.c.read(kIde, 0x40, 2), 0x8000u);  // IDETIM primary
    EXPECT_EQ(m.c.read(kIde, 0x41, 1), 0x80u);    // its decode-enable byte (libata's piix_enable_bits)
    EXPECT_EQ(m.c.read(kIde, 0x42, 2), 0x8000u);  // IDETIM secondary
    EXPECT_EQ(m.c.read(kIde, 0x44, 1), 0x00u);    // SIDETIM
    EXPECT_EQ(m.c.read(kIde, 0x48, 1), 0x00u);    // UDMACTL (PIIX4)
    EXPECT_EQ(m.c.read(kIde, 0x54, 4), 0x00u);    // IDE_CONFIG (ICH)
    m.c.write(kIde, 0x40, 2, 0xe307);
    m.c.write(kIde, 0x44, 1, 0x0b);
    m.c.write(kIde, 0xfc, 4, 0x12345678);
    EXPECT_EQ(m.c.read(kIde, 0x40, 4), 0x8000e307u);
    EXPECT_EQ(m.c.read(kIde, 0x44, 1), 0x0bu);
    EXPECT_EQ(m.c.read(kIde, 0xfc, 4), 0x12345678u);
    EXPECT_EQ(m.c.read(kPlatform, 0x40, 2), 0u);  // another function's space is its own
    PciFunctionConfig f;
    f.name = "bad";
    f.device_specific = {{0x3c, 1, 0}};  // in the header
    EXPECT_THROW(PciConfigSpace{f}, std::logic_error);
    f.device_specific = {{0xfe, 4, 0}};  // past 255
    EXPECT_THROW(PciConfigSpace{f}, std::logic_error);
}

// The header declaration covers the 64 bytes of the type-0 header exactly once.
TEST(PciConfigSpace, HeaderDeclarationCoversTheHeaderOnce) {
    std::array<int, 64> covered{};
    for (const PciRegister& r : kHeaderRegisters)
        for (unsigned i = 0; i < r.width; ++i) ++covered.at(r.offset + i);
    for (unsigned i = 0; i < 64; ++i) EXPECT_EQ(covered[i], 1) << "offset " << i;
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

// With vga "stdvga" slot 2 holds QEMU's standard VGA (hw/display/vga-pci.c): 1234:1111, class
// 0300h, a 16 MiB prefetchable frame buffer at BAR0 and a 4 KiB register window at BAR2; BAR1 is
// not implemented and reads 0 even after all ones are written (PCI 3.0 §6.2.5.1).
TEST(PciBus, StdVgaReplacesTheCirrusInSlotTwo) {
    Xenfv m(true, true);
    const std::uint8_t vga = pci_devfn(2, 0);
    EXPECT_EQ(m.c.read(vga, 0x00, 4), 0x11111234u);
    EXPECT_EQ(m.c.read(vga, 0x08, 4) >> 8, 0x030000u);
    m.c.write(vga, 0x10, 4, 0xffffffffu);
    EXPECT_EQ(m.c.read(vga, 0x10, 4), ~(0x1000000u - 1) | 0x8u);  // 16 MiB, prefetchable
    m.c.write(vga, 0x14, 4, 0xffffffffu);
    EXPECT_EQ(m.c.read(vga, 0x14, 4), 0u);
    m.c.write(vga, 0x18, 4, 0xffffffffu);
    EXPECT_EQ(m.c.read(vga, 0x18, 4), ~(0x1000u - 1));
}

}  // namespace
}  // namespace xensim
