// The guest's PCI enumeration (frontends/pci_scan.h) against the real bus-0 engine, without Xen:
// a fake HVM machine sends the guest's port accesses straight to the PciBus. What it must find,
// and what it must leave behind, follow docs/pci-scan.md.
#include <cstring>
#include <map>
#include <memory>

#include <gtest/gtest.h>

#include "frontends/ata_piix_host.h"
#include "frontends/pci_scan.h"
#include "frontends/xen_guest.h"
#include "models/devices/pci_bus.h"
#include "models/devices/piix_ide.h"
#include "models/devices/xen_platform.h"

namespace xensim {
namespace {

class PciMachine : public GuestServices {
  public:
    explicit PciMachine(PciBus& bus) : bus_(bus) {}
    unsigned vcpu_id() const override { return 0; }
    bool is_pv() const override { return false; }
    const CostModel& costs() const override { return costs_; }
    void compute(Cycles) override {}
    std::uint64_t now_ns() const override { return 0; }
    std::uint32_t in(std::uint16_t port, unsigned size) override {
        ++port_accesses;
        std::uint32_t v =
            bus_.claims(port) ? bus_.read(port, size, 0) : (size >= 4 ? ~0u : (1u << (8 * size)) - 1);
        // The IDE function's bus master, if one is plugged in: BM Status reads 0 after reset
        // (no simplex bit; QEMU's bmdma status).
        if (bm_base && port >= bm_base && port < bm_base + 16) v = 0;
        log.push_back({false, port, size, v});
        return v;
    }
    void out(std::uint16_t port, unsigned size, std::uint32_t v) override {
        ++port_accesses;
        log.push_back({true, port, size, v});
        if (bus_.claims(port)) bus_.write(port, size, v, 0);
    }
    bool ins(std::uint16_t, unsigned, std::uint64_t, std::uint32_t) override { return true; }
    bool outs(std::uint16_t, unsigned, std::uint64_t, std::uint32_t) override { return true; }
    std::uint64_t mmio_read(std::uint64_t, unsigned) override { return ~0ull; }
    void mmio_write(std::uint64_t, unsigned, std::uint64_t) override {}
    void cpuid(std::uint32_t leaf, std::uint32_t, std::uint32_t out[4]) override {
        out[0] = out[1] = out[2] = out[3] = 0;
        if (leaf == 0x40000000) {
            std::memcpy(&out[1], "XenV", 4);
            std::memcpy(&out[2], "MMXe", 4);
            std::memcpy(&out[3], "nVMM", 4);
        } else if (leaf == 0x40000002) {
            out[1] = 0x40000000;
        }
    }
    std::uint64_t rdmsr(std::uint32_t) override { return 0; }
    void wrmsr(std::uint32_t, std::uint64_t) override {}
    long hypercall(unsigned, unsigned long, unsigned long, unsigned long, unsigned long,
                   unsigned long) override {
        return 0;
    }
    void halt() override {}
    void mark_phase(const char* name) override { phases.push_back(name); }
    void set_irq_handler(std::uint8_t, std::function<void()>) override {}
    void set_upcall_handler(std::function<void()>) override {}
    void eoi() override {}
    std::optional<std::uint64_t> alloc_page() override {
        std::uint64_t g = next_gfn_++;
        pages_[g] = std::make_unique<std::uint8_t[]>(4096);
        return g;
    }
    std::optional<std::uint64_t> alloc_pages(unsigned n) override {
        return n == 1 ? alloc_page() : std::nullopt;
    }
    void free_page(std::uint64_t gfn) override { pages_.erase(gfn); }
    std::uint8_t* page(std::uint64_t gfn) override {
        auto it = pages_.find(gfn);
        return it == pages_.end() ? nullptr : it->second.get();
    }

    struct PortAccess {
        bool write;
        std::uint16_t port;
        unsigned size;
        std::uint32_t value;
    };
    std::uint64_t port_accesses = 0;
    std::vector<std::string> phases;
    std::vector<PortAccess> log;
    std::uint16_t bm_base = 0;

  private:
    PciBus& bus_;
    CostModel costs_ = CostModel::defaults();
    std::map<std::uint64_t, std::unique_ptr<std::uint8_t[]>> pages_;
    std::uint64_t next_gfn_ = 0x1000;
};

struct Machine {
    StatsGroup root{""};
    PciBus bus{root};
    PciMachine m{bus};
    explicit Machine(bool platform = true, std::uint32_t platform_mmio = XenPlatformPci{}.mmio_base) {
        for (auto [devfn, fn] : xenfv_functions(false, PiixIdeConfig{}.bmdma_base)) bus.add(devfn, fn);
        if (platform) {
            XenPlatformPci p;
            p.mmio_base = platform_mmio;
            bus.add(pci_devfn(3, 0), p.function());
        }
    }
};

// The scan finds the six functions of the xenfv bus in devfn order, with what Linux reads from
// them: identity, class, multi-function flag of the PIIX3, interrupt pins, and BAR resources sized
// from the read-back masks.
TEST(PciScan, FindsTheXenfvFunctionsAndSizesTheirBars) {
    Machine x;
    PciConf1 conf(x.m);
    ASSERT_TRUE(conf.check_type1());
    const std::vector<PciDev> devs = pci_scan_bus(conf, 0);
    ASSERT_EQ(devs.size(), 6u);
    const std::uint8_t devfns[] = {0x00, 0x08, 0x09, 0x0b, 0x10, 0x18};
    const std::uint16_t vendors[] = {0x8086, 0x8086, 0x8086, 0x8086, 0x1013, 0x5853};
    for (unsigned i = 0; i < 6; ++i) {
        EXPECT_EQ(devs[i].devfn, devfns[i]);
        EXPECT_EQ(devs[i].vendor, vendors[i]);
    }
    EXPECT_TRUE(devs[0].mmio_always_on);  // quirk_mmio_always_on: host bridge
    EXPECT_TRUE(devs[1].multifunction);   // header type 80h
    EXPECT_TRUE(devs[2].multifunction);   // a function > 0 of a multi-function slot
    EXPECT_FALSE(devs[4].multifunction);
    const PciDev& ide = devs[2];
    EXPECT_EQ(ide.class_code, 0x010180u);
    EXPECT_TRUE(ide.resource[4].io);
    EXPECT_EQ(ide.resource[4].start, PiixIdeConfig{}.bmdma_base);  // the IDE driver's BAR4
    EXPECT_EQ(ide.resource[4].size, 16u);
    // prog-if 80h: both channels legacy, so the PCI core gives BARs 0-3 their fixed ISA ranges
    // (probe.c's legacy IDE quirk) although the registers read 0.
    const std::uint64_t legacy[4][2] = {{0x1f0, 8}, {0x3f6, 1}, {0x170, 8}, {0x376, 1}};
    for (unsigned i = 0; i < 4; ++i) {
        EXPECT_TRUE(ide.resource[i].io) << i;
        EXPECT_EQ(ide.resource[i].start, legacy[i][0]) << i;
        EXPECT_EQ(ide.resource[i].size, legacy[i][1]) << i;
    }
    EXPECT_EQ(ide.resource[5].size, 0u);
    const PciDev& p = devs[5];
    EXPECT_EQ(p.device, 0x0001u);
    EXPECT_EQ(p.class_code, 0xff8000u);
    EXPECT_EQ(p.revision, 1u);
    EXPECT_EQ(p.subsystem_vendor, 0x5853u);
    EXPECT_EQ(p.pin, 1u);
    EXPECT_TRUE(p.resource[0].io);
    EXPECT_EQ(p.resource[0].start, 0xc100u);
    EXPECT_EQ(p.resource[0].size, 0x100u);
    EXPECT_FALSE(p.resource[1].io);
    EXPECT_TRUE(p.resource[1].prefetch);
    EXPECT_EQ(p.resource[1].start, 0xf2000000u);
    EXPECT_EQ(p.resource[1].size, 0x1000000u);
    EXPECT_EQ(p.resource[6].size, 0u);  // no ROM
    EXPECT_FALSE(p.broken_intx_masking);
    EXPECT_EQ(devs[3].irq, 9u);  // ACPI: pin INTA#, so its line was read
}

// The scan leaves the hardware as it found it: every BAR holds its firmware address again and
// every command register its firmware value (__pci_read_base restores both, pci_intx_mask_broken
// restores the command). Then the platform driver's probe changes nothing either: decoding was
// already on (pci_enable_resources writes only a change).
TEST(PciScan, SizingAndProbeRestoreBarsAndCommand) {
    Machine x;
    std::map<std::uint8_t, std::vector<std::uint32_t>> before;
    for (std::uint8_t devfn : {0x00, 0x08, 0x09, 0x0b, 0x10, 0x18}) {
        PciConfigSpace* f = x.bus.function(devfn);
        for (unsigned i = 0; i < 6; ++i) before[devfn].push_back(f->bar(i));
        before[devfn].push_back(f->command());
    }
    PciConf1 conf(x.m);
    auto devs = pci_scan_bus(conf, 0);
    EXPECT_EQ(XenPlatformPciDriver::probe(conf, devs.back()), 0);
    for (auto& [devfn, values] : before) {
        PciConfigSpace* f = x.bus.function(devfn);
        for (unsigned i = 0; i < 6; ++i) EXPECT_EQ(f->bar(i), values[i]) << int(devfn) << " BAR" << i;
        EXPECT_EQ(f->command(), values[6]) << int(devfn);
    }
    // 7 BARs x 4 sizing writes and the INTx test's 2; none by the probe.
    EXPECT_EQ(x.bus.stats().config_writes.value("00:03.0"), 7u * 4 + 2);
}

// The port accesses of the whole phase, derived in docs/pci-scan.md §3: pci_check_type1's 5, then
// 369 configuration accesses of 2 port accesses each (39 vendor probes, 327 set-up accesses for the
// six functions, 3 in the platform driver's pci_enable_device).
TEST(PciScan, PortAccessCountsFollowTheDocumentedSequence) {
    Machine x;
    PciConf1 conf(x.m);
    ASSERT_TRUE(conf.check_type1());
    EXPECT_EQ(x.m.port_accesses, 5u);
    auto devs = pci_scan_bus(conf, 0);
    EXPECT_EQ(conf.accesses(), 39u + 327u);
    ASSERT_EQ(XenPlatformPciDriver::probe(conf, devs.back()), 0);
    EXPECT_EQ(conf.accesses(), 369u);
    EXPECT_EQ(x.m.port_accesses, 5u + 2u * 369u);
    // Absent functions were read once each: the 33 vendor probes of docs/pci-scan.md §3.
    EXPECT_EQ(x.bus.stats().absent.value(), 33u);
}

// A driver with decoding off: pci_enable_device turns on exactly I/O and memory for the platform
// device's two BARs (one command write).
TEST(PciScan, EnableDeviceTurnsOnDecodingForTheBars) {
    Machine x;
    x.bus.function(pci_devfn(3, 0))->write(PCI_COMMAND, 2, 0);
    PciConf1 conf(x.m);
    auto devs = pci_scan_bus(conf, 0);
    const std::uint64_t writes = x.bus.stats().config_writes.value("00:03.0");
    EXPECT_EQ(writes, 2u * 7 + 2);  // sizing without decode toggling, plus the INTx test
    ASSERT_EQ(XenPlatformPciDriver::probe(conf, devs.back()), 0);
    EXPECT_EQ(x.bus.function(pci_devfn(3, 0))->command(), PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    EXPECT_EQ(x.bus.stats().config_writes.value("00:03.0"), writes + 1);
}

// platform_pci_probe fails with -ENOENT when firmware left BAR1 unassigned (address 0).
TEST(PciScan, PlatformProbeNeedsBothBars) {
    Machine x(true, 0);
    PciConf1 conf(x.m);
    auto devs = pci_scan_bus(conf, 0);
    ASSERT_EQ(devs.back().vendor, 0x5853u);
    EXPECT_EQ(devs.back().resource[1].size, 0x1000000u);
    EXPECT_EQ(XenPlatformPciDriver::probe(conf, devs.back()), -XEN_ENOENT);
}

// Boot with a PCI scan and PV drivers: the phase comes after the Xen set-up, and without the
// platform device the boot ends with -XEN_ENODEV instead of going on to PV drivers.
TEST(PciScan, BootFindsThePlatformDeviceOrFailsCleanly) {
    GuestBootOptions opts;
    opts.pci_scan = true;
    opts.xen_platform_driver = true;
    {
        Machine x;
        XenGuest g(1, false);
        EXPECT_EQ(g.boot({&x.m}, opts), 0);
        EXPECT_TRUE(g.booted());
        ASSERT_NE(g.platform_pci(), nullptr);
        EXPECT_EQ(g.platform_pci()->devfn, pci_devfn(3, 0));
        EXPECT_EQ(x.m.phases, (std::vector<std::string>{"discovery", "xen_setup", "pci_scan", "running"}));
    }
    {
        Machine x(false);
        XenGuest g(1, false);
        EXPECT_EQ(g.boot({&x.m}, opts), -XEN_ENODEV);
        EXPECT_FALSE(g.booted());
        EXPECT_EQ(g.platform_pci(), nullptr);
        EXPECT_EQ(g.pci_devices().size(), 5u);
        EXPECT_EQ(x.m.phases, (std::vector<std::string>{"discovery", "xen_setup", "pci_scan"}));
    }
}

// Scanning is not the same as wanting PV drivers: a guest without them (no xen_platform_pci)
// scans the bus, finds no 5853:0001, binds nothing to it and boots; its scan makes the documented
// accesses minus the platform device's (docs/pci-scan.md §3.5: 39 vendor probes, the set-up of the
// five other functions, no probe).
TEST(PciScan, BootWithoutPvDriversScansAndBoots) {
    GuestBootOptions opts;
    opts.pci_scan = true;
    Machine x(false);
    XenGuest g(1, false);
    EXPECT_EQ(g.boot({&x.m}, opts), 0);
    EXPECT_TRUE(g.booted());
    EXPECT_EQ(g.platform_pci(), nullptr);
    EXPECT_EQ(g.pci_devices().size(), 5u);
    EXPECT_EQ(x.m.phases, (std::vector<std::string>{"discovery", "xen_setup", "pci_scan", "running"}));
    EXPECT_EQ(x.m.port_accesses, 5u + 2u * (39 + 38 + 60 + 61 + 47 + 60));
    EXPECT_EQ(x.bus.stats().absent.value(), 34u);  // the platform's slot is empty too
}

// ---- ata_piix's probe of the PIIX3 IDE function (frontends/ata_piix_host.h) ----------------

// One access as the driver meant it: a configuration read or write (an OUT to 0xCF8 and the data
// access that follows), or a plain port access.
struct Access {
    char kind;  // 'R' / 'W' configuration read / write, 'i' port read
    unsigned reg;
    unsigned len;
    std::uint32_t value;
    bool operator==(const Access& o) const {
        return kind == o.kind && reg == o.reg && len == o.len && value == o.value;
    }
};
std::ostream& operator<<(std::ostream& os, const Access& a) {
    return os << a.kind << " 0x" << std::hex << a.reg << " /" << std::dec << a.len << " = 0x" << std::hex
              << a.value << std::dec;
}

std::vector<Access> decode(const std::vector<PciMachine::PortAccess>& log) {
    std::vector<Access> out;
    for (std::size_t i = 0; i < log.size(); ++i) {
        const auto& a = log[i];
        if (a.write && a.port == 0xcf8 && a.size == 4 && (a.value & 0x80000000u) && i + 1 < log.size()) {
            const auto& d = log[++i];
            out.push_back({d.write ? 'W' : 'R', (a.value & 0xfcu) | (d.port & 3u), d.size, d.value});
        } else {
            out.push_back({a.write ? 'o' : 'i', a.port, a.size, a.value});
        }
    }
    return out;
}

// IDENTIFY words that libata's mode selection reads, as the device model fills them
// (models/devices/piix_ide.cpp, QEMU's ide_identify): ATA device, IORDY supported, words 64-70 and
// 88 valid, PIO 3-4, MWDMA 0-2, UDMA 0-5.
void qemu_identify(std::uint16_t id[256]) {
    std::fill(id, id + 256, 0);
    id[0] = 0x0040;
    id[49] = (1u << 11) | (1u << 9) | (1u << 8);
    id[53] = 0x0007;
    id[63] = 0x0007;
    id[64] = 0x0003;
    id[88] = 0x003f;
}

struct IdeMachine : Machine {
    PciConf1 conf{m};
    std::vector<PciDev> devs;
    PciDev* ide = nullptr;
    explicit IdeMachine(std::uint16_t bar4 = PiixIdeConfig{}.bmdma_base) : Machine(false) {
        m.bm_base = bar4;
        bus.function(pci_devfn(1, 1))->write(PCI_BASE_ADDRESS_4, 4, bar4 | 1u);  // as firmware left it
        EXPECT_TRUE(conf.check_type1());
        devs = pci_scan_bus(conf, 0);
        for (PciDev& d : devs)
            if (d.devfn == pci_devfn(1, 1)) ide = &d;
        m.log.clear();
        m.port_accesses = 0;
    }
    std::uint32_t cfg(unsigned reg, unsigned len) { return bus.function(pci_devfn(1, 1))->read(reg, len); }
};

// piix_init_one's accesses, in order, against the xenfv PIIX3 IDE function as hvmloader left it
// (command 0005h: I/O and bus master; IDETIM 8000h on both channels; SIDETIM 0; latency timer
// read-only 0 in QEMU's wmask). docs/ide-register-sequence.md §6.1 derives each line.
TEST(AtaPiixHost, ProbeMakesLinuxsConfigurationAccessesInOrder) {
    IdeMachine x;
    AtaPiixHost host;
    ASSERT_EQ(host.probe(x.m, x.conf, *x.ide), 0);
    const std::vector<Access> expected = {
        {'R', 0x04, 2, 0x0005},  // pci_enable_resources: command (I/O already on: no write)
        {'R', 0x3d, 1, 0x00},    // do_pci_enable_device: interrupt pin (none: INTx not checked)
        {'R', 0x54, 4, 0x0},     // piix_init_one: saved_iocfg
        {'i', 0xc002, 1, 0x00},  // ata_pci_bmdma_init: port 0 BM Status (simplex bit)
        {'i', 0xc00a, 1, 0x00},  // port 1 BM Status
        {'R', 0x04, 2, 0x0005},  // __pci_set_master: bus master already on, no write
        {'R', 0x0d, 1, 0x00},    // pcibios_set_master: latency timer below 16 ...
        {'W', 0x0d, 1, 0x40},    // ... so 64 (QEMU drops it: read-only)
        {'R', 0x09, 1, 0x80},    // ata_pci_sff_activate_host: prog-if 80h, legacy mode
        // Port 0's EH reset: set_piomode(PIO 0) for the master (IDETIM read-modify-write) ...
        {'R', 0x40, 2, 0x8000},
        {'W', 0x40, 2, 0xc000},  // & ccf0h, no control bits, ISP/RTC 0, | SITRE 4000h
        // ... and for the slave (IDETIM and SIDETIM) ...
        {'R', 0x40, 2, 0xc000},
        {'R', 0x44, 1, 0x00},
        {'W', 0x40, 2, 0xc000},
        {'W', 0x44, 1, 0x00},
        {'R', 0x41, 1, 0xc0},  // ... then piix_pata_prereset: IDETIM bit 15, decode enabled
        // Port 1 the same on IDETIM 42h (SIDETIM's high nibble).
        {'R', 0x42, 2, 0x8000},
        {'W', 0x42, 2, 0xc000},
        {'R', 0x42, 2, 0xc000},
        {'R', 0x44, 1, 0x00},
        {'W', 0x42, 2, 0xc000},
        {'W', 0x44, 1, 0x00},
        {'R', 0x43, 1, 0xc0},
    };
    EXPECT_EQ(decode(x.m.log), expected);
    EXPECT_EQ(x.m.port_accesses, 2u * 21 + 2);  // 21 configuration accesses, 2 BM Status reads
    EXPECT_TRUE(host.probed());
    EXPECT_EQ(host.bmdma_addr(0), 0xc000u);
    EXPECT_EQ(host.bmdma_addr(1), 0xc008u);
    EXPECT_TRUE(host.port_enabled(0));
    EXPECT_TRUE(host.port_enabled(1));
    EXPECT_FALSE(host.simplex());
    EXPECT_EQ(x.cfg(PCI_COMMAND, 2), 0x0005u);  // nothing changed the command register
}

// ata_do_set_mode after IDENTIFY: PIO 4 and MWDMA 2 (the PIIX3 offers PIO 0-4 and MWDMA 1-2,
// no UDMA). For the primary master: set_piomode and set_dmamode (MWDMA 2 needs PIO 4 timings)
// each write IDETIM = 8000h (IDE) | 4000h (SITRE) | 2000h (ISP 2) | 0300h (RTC 3) | 7 (TIME0,
// IE0, PPE0) = e307h. For the secondary slave with libata.dma=0: set_piomode only, SIDETIM's high
// nibble = ISP 2 << 2 | RTC 3 = bh, and IDETIM 42h's slave bits 4-7 = 7. No UDMA register (48h)
// is touched: the PIIX3 port has no UDMA mask.
TEST(AtaPiixHost, SetModeProgramsThePiix3Timings) {
    IdeMachine x;
    AtaPiixHost host;
    ASSERT_EQ(host.probe(x.m, x.conf, *x.ide), 0);
    std::uint16_t id[256];
    qemu_identify(id);
    x.m.log.clear();
    const AtaPiixHost::Modes m0 = host.set_mode(x.conf, 0, 0, id, true);
    EXPECT_EQ(m0.pio, 0x0c);  // XFER_PIO_4
    EXPECT_EQ(m0.dma, 0x22);  // XFER_MW_DMA_2
    const std::vector<Access> master = {
        {'R', 0x40, 2, 0xc000},
        {'W', 0x40, 2, 0xe307},  // set_piomode
        {'R', 0x40, 2, 0xe307},
        {'W', 0x40, 2, 0xe307},  // set_dmamode
    };
    EXPECT_EQ(decode(x.m.log), master);
    x.m.log.clear();
    const AtaPiixHost::Modes m1 = host.set_mode(x.conf, 1, 1, id, false);
    EXPECT_EQ(m1.pio, 0x0c);
    EXPECT_EQ(m1.dma, AtaPiixHost::kNoMode);
    const std::vector<Access> slave = {
        {'R', 0x42, 2, 0xc000},
        {'R', 0x44, 1, 0x00},
        {'W', 0x42, 2, 0xc070},
        {'W', 0x44, 1, 0xb0},
    };
    EXPECT_EQ(decode(x.m.log), slave);
    EXPECT_EQ(x.cfg(0x40, 4), 0xc070e307u);
    EXPECT_EQ(x.cfg(0x44, 1), 0xb0u);
    EXPECT_EQ(x.cfg(0x48, 1), 0x00u);
}

// The bus-master base is what the scan sized in BAR4, wherever firmware put it; with BAR4 at 0
// the driver has no DMA (ata_bmdma_nodma: no simplex reads, PIO modes only).
TEST(AtaPiixHost, TakesTheBusMasterBaseFromBar4) {
    {
        IdeMachine x(0xd040);
        AtaPiixHost host;
        ASSERT_EQ(host.probe(x.m, x.conf, *x.ide), 0);
        EXPECT_EQ(host.bmdma_addr(0), 0xd040u);
        EXPECT_EQ(host.bmdma_addr(1), 0xd048u);
        const auto acc = decode(x.m.log);
        EXPECT_EQ(acc.at(3), (Access{'i', 0xd042, 1, 0}));
        EXPECT_EQ(acc.at(4), (Access{'i', 0xd04a, 1, 0}));
    }
    {
        IdeMachine x(0);
        AtaPiixHost host;
        ASSERT_EQ(host.probe(x.m, x.conf, *x.ide), 0);
        EXPECT_EQ(host.bmdma_addr(0), 0u);
        EXPECT_EQ(x.m.port_accesses, 2u * 21);  // no BM Status reads
        std::uint16_t id[256];
        qemu_identify(id);
        const AtaPiixHost::Modes m = host.set_mode(x.conf, 0, 0, id, true);
        EXPECT_EQ(m.pio, 0x0c);
        EXPECT_EQ(m.dma, AtaPiixHost::kNoMode);
    }
}

// A channel whose decode enable (IDETIM bit 15) firmware left clear is disabled by
// piix_pata_prereset (-ENOENT): the port is probed but has no drive, and set_mode does nothing.
// A function that is not 8086:7010 is refused.
TEST(AtaPiixHost, PreresetDisablesAChannelWithDecodeOffAndOtherDevicesAreRefused) {
    IdeMachine x;
    x.bus.function(pci_devfn(1, 1))->write(0x42, 2, 0x0000);
    AtaPiixHost host;
    ASSERT_EQ(host.probe(x.m, x.conf, *x.ide), 0);
    EXPECT_TRUE(host.port_enabled(0));
    EXPECT_FALSE(host.port_enabled(1));
    std::uint16_t id[256];
    qemu_identify(id);
    x.m.log.clear();
    EXPECT_EQ(host.set_mode(x.conf, 1, 0, id, true).pio, AtaPiixHost::kNoMode);
    EXPECT_TRUE(x.m.log.empty());
    AtaPiixHost other;
    EXPECT_EQ(other.probe(x.m, x.conf, x.devs.front()), -XEN_ENODEV);  // the host bridge
    EXPECT_FALSE(other.probed());
}

// At boot, with the driver: the probe runs in the pci_scan phase after the scan, and a guest
// without PV drivers boots with it.
TEST(AtaPiixHost, BootProbesTheControllerInThePciScanPhase) {
    Machine x(false);
    x.m.bm_base = PiixIdeConfig{}.bmdma_base;
    AtaPiixHost host;
    GuestBootOptions opts;
    opts.pci_scan = true;
    opts.ata_piix = &host;
    XenGuest g(1, false);
    EXPECT_EQ(g.boot({&x.m}, opts), 0);
    EXPECT_EQ(x.m.phases, (std::vector<std::string>{"discovery", "xen_setup", "pci_scan", "running"}));
    EXPECT_TRUE(host.probed());
    EXPECT_EQ(host.devfn(), pci_devfn(1, 1));
    EXPECT_EQ(x.m.port_accesses, 5u + 2u * (39 + 266) + 2u * 21 + 2);  // 659 (docs/pci-scan.md §3.5)
}

}  // namespace
}  // namespace xensim
