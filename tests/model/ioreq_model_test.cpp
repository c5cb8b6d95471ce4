// The ioreq path: a guest's port access to an emulated device exits, Xen forwards it to the device
// model on dom0, and the vCPU waits until the device model answers.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json platform_scenario(bool platform_pci) {
    return {{"name", "ioreq"},
            {"platform", {{"pcpus", 2}}},
            {"domains",
             {{{"name", "dom0"}, {"type", "pv"}, {"memory_mb", 1024}},
              {{"name", "guest"}, {"type", "hvm"}, {"xen_platform_pci", platform_pci}}}},
            {"workloads", json::array()},
            // Long enough for the boot's PCI scan (about 5.6 ms of 743 emulated port accesses).
            {"stop", {{"sim_time_ms", 20}}}};
}

// What the pci_scan phase of a PVHVM guest costs, derived by hand in docs/pci-scan.md §3 from the
// Linux 6.1 sequence (not read off a run): pci_check_type1's 5 port accesses (all to 0xCF8-0xCFB,
// forwarded as PIO ioreqs: 3 writes, 2 reads), then 369 configuration accesses of two port
// accesses each — 39 vendor probes (32 slots' function 0, functions 1-7 of the multi-function
// slot 1), 327 set-up accesses for the six functions found, 3 in the platform driver's
// pci_enable_device. Every CF8 write is a PIO ioreq; a data access is an IOREQ_TYPE_PCI_CONFIG
// ioreq unless its function is absent (33 vendor probes), which Xen completes itself.
constexpr std::uint64_t kCheckType1Accesses = 5, kConfigAccesses = 39 + 327 + 3, kAbsentProbes = 33;
constexpr std::uint64_t kPciScanExits = kCheckType1Accesses + 2 * kConfigAccesses;  // 743
constexpr std::uint64_t kPciConfigWrites = 152;  // §3: BAR sizing 140 + INTx test 12
constexpr std::uint64_t kPciConfigReads = kConfigAccesses - kAbsentProbes - kPciConfigWrites;  // 184
constexpr std::uint64_t kPciScanPioWrites = 3 + kConfigAccesses, kPciScanPioReads = 2;
constexpr std::uint64_t kPciScanIoreqs =
    kPciScanPioWrites + kPciScanPioReads + kPciConfigReads + kPciConfigWrites;

// Linux's unplug sequence (check_platform_magic + xen_unplug_emulated_devices) is six port
// accesses: inw(0x10) magic, inb(0x12) protocol version, outw(0x12) product, outl(0x10) driver
// version, inw(0x10) magic again, outw(0x10) unplug mask. Each is one IO_INSTRUCTION exit and one
// ioreq, answered by the device model on dom0 with one EVTCHNOP_send. (The PCI scan that follows
// adds its own, counted by the next test.)
TEST(Ioreq, UnplugProtocolIsSixPortAccessesEachAnIoreqToTheDeviceModel) {
    Simulation sim(platform_scenario(true));
    const json& g = sim.domain("guest");
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), 6u + kPciScanExits);
    EXPECT_EQ(count(g.at("exits_by_cause"), "IO_INSTRUCTION:port:0x10"), 4u);
    EXPECT_EQ(count(g.at("exits_by_cause"), "IO_INSTRUCTION:port:0x12"), 2u);
    EXPECT_EQ(g.at("unclaimed_io"), kAbsentProbes);
    const json& dm = g.at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_read"), 3u + kPciScanPioReads);
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_write"), 3u + kPciScanPioWrites);
    EXPECT_EQ(dm.at("unplugged_mask"), 7u);  // IDE disks | NICs | auxiliary IDE disks
    EXPECT_EQ(dm.at("unplug_product"), 3u);  // xen/hvm/pvdrivers.h: "linux"
    EXPECT_EQ(sim.stat("xen.ioreqs"), 6u + kPciScanIoreqs);
    // dom0 answered each ioreq with one send (and made its backend bus's XenStore traffic at
    // boot, kBackendBusDom0Sends: the guest has no disk, so no device); its binds: the loopback
    // store channel, the guest's store channel, the device model's one ioreq channel (one guest
    // vCPU) and its buffered ioreq channel (QEMU binds it whether or not anything is ever
    // buffered).
    const json& d0 = sim.domain("dom0");
    EXPECT_EQ(count(d0.at("hypercalls"), "event_channel_op/EVTCHNOP_send"),
              6u + kPciScanIoreqs + kBackendBusDom0Sends);
    EXPECT_EQ(count(d0.at("hypercalls"), "event_channel_op/EVTCHNOP_bind_interdomain"), 4u);
}

// The pci_scan phase: exactly the documented exits and ioreqs, configuration ioreqs only for the
// functions the device model registered (their SBDFs), and the guest found 5853:0001 by scanning.
TEST(Ioreq, PciScanPhaseMakesTheDocumentedConfigurationAccesses) {
    Simulation sim(platform_scenario(true));
    const json& g = sim.domain("guest");
    const json* scan = nullptr;
    for (const auto& p : g.at("phases"))
        if (p.at("name") == "pci_scan") scan = &p;
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->at("exits"), (json{{"IO_INSTRUCTION", kPciScanExits}}));
    EXPECT_EQ(scan->at("hypercalls_total"), 0u);
    // By port (docs/pci-scan.md §3): every configuration access writes CONFIG_ADDRESS at 0xCF8,
    // and check_type1 adds 4 accesses there and its byte write at 0xCFB. A data access lands on
    // 0xCFC + (reg & 3) for a byte, 0xCFC + (reg & 2) for a word.
    const json& causes = g.at("exits_by_cause");
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xcf8"), kConfigAccesses + 4);
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xcfb"), 1u);
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xcfc") + count(causes, "IO_INSTRUCTION:port:0xcfd") +
                  count(causes, "IO_INSTRUCTION:port:0xcfe") + count(causes, "IO_INSTRUCTION:port:0xcff"),
              kConfigAccesses);
    // Bytes at 0xCFD: the IDE prog-if (09h) and each pin (3Dh) of the six functions.
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xcfd"), 1u + 6u + 1u);  // + the probe's pin read
    // 0xCFE: header type (0Eh, byte) and status (06h, word, twice but once for the host bridge),
    // and subsystem ID (2Eh, word) per function.
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xcfe"), 6u * 3 + 5);
    const json& dm = g.at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "pci_config_read"), kPciConfigReads);
    EXPECT_EQ(count(dm.at("ioreqs"), "pci_config_write"), kPciConfigWrites);
    EXPECT_EQ(sim.stat("xen.pci_config_cycles"), kConfigAccesses);
    // Per function, from §3's table: its vendor probe plus its set-up accesses (+3 for the probe).
    const json& by_sbdf = dm.at("pci_config_by_sbdf");
    EXPECT_EQ(by_sbdf, (json{{"0000:00:00.0", 1 + 38},
                             {"0000:00:01.0", 1 + 60},
                             {"0000:00:01.1", 1 + 61},
                             {"0000:00:01.3", 1 + 47},
                             {"0000:00:02.0", 1 + 60},
                             {"0000:00:03.0", 1 + 61 + 3}}));
    // The guest's view: six functions; the platform driver bound to 00:03.0, 5853:0001.
    const json& devs = g.at("pci_devices");
    ASSERT_EQ(devs.size(), 6u);
    EXPECT_EQ(
        devs.at(5),
        (json{{"bdf", "00:03.0"}, {"id", "5853:0001"}, {"class", "ff8000"}, {"driver", "xen-platform-pci"}}));
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(devs.at(i).at("driver"), "");
}

// A guest with no emulated device at all (no platform device, no IDE disk, no VGA) has no device
// model, so it runs neither the unplug protocol nor a PCI scan: in this model such a machine has no
// PCI bus (a real one would still have the i440FX and every 0xCFC read would reach QEMU).
TEST(Ioreq, WithoutThePlatformDeviceTheGuestMakesNoPortAccess) {
    Simulation sim(platform_scenario(false));
    const json& g = sim.domain("guest");
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), 0u);
    EXPECT_FALSE(g.contains("device_model"));
    EXPECT_EQ(sim.stat("xen.ioreqs"), 0u);
}

// The boot of a PVHVM guest split by phase, each phase's exits fixed by what the guest does in it.
TEST(Ioreq, PvhvmBootIsReportedByPhase) {
    json sc = platform_scenario(true);
    sc["domains"][1]["disks"] = json::array({{{"vdev", "xvda"}, {"sectors", 204800}, {"model", "null"}}});
    sc["workloads"] = json::array({{{"type", "fio"},
                                    {"name", "io"},
                                    {"guest", "guest"},
                                    {"rw", "randread"},
                                    {"iodepth", 1},
                                    {"number_ios", 10}}});
    sc["stop"]["sim_time_ms"] = 100;
    Simulation sim(sc);
    const json& phases = sim.domain("guest").at("phases");
    std::vector<std::string> names;
    for (const auto& p : phases) names.push_back(p.at("name"));
    EXPECT_EQ(names, (std::vector<std::string>{"discovery", "unplug", "xen_setup", "pci_scan", "running",
                                               "pv_connect", "io"}));
    auto phase = [&](const std::string& n) -> const json& {
        for (const auto& p : phases)
            if (p.at("name") == n) return p;
        throw std::out_of_range(n);
    };
    // Discovery: CPUID 0x40000000, 0x40000001, 0x40000002, and the hypercall-page WRMSR.
    EXPECT_EQ(phase("discovery").at("exits"), (json{{"CPUID", 3}, {"MSR_WRITE", 1}}));
    // Unplug: the six port accesses of Linux's sequence, nothing else.
    EXPECT_EQ(phase("unplug").at("exits"), (json{{"IO_INSTRUCTION", 6}}));
    // Xen set-up: add_to_physmap of shared_info and of the grant frame, and the callback vector.
    EXPECT_EQ(phase("xen_setup").at("exits"), (json{{"VMCALL", 3}}));
    EXPECT_EQ(phase("xen_setup").at("hypercalls_total"), 3u);
    // PCI enumeration and the platform driver's probe: port accesses only (counted above).
    EXPECT_EQ(phase("pci_scan").at("exits"), (json{{"IO_INSTRUCTION", kPciScanExits}}));
    // The PV phases use no emulated device at all.
    EXPECT_EQ(count(phase("pv_connect").at("exits"), "IO_INSTRUCTION"), 0u);
    EXPECT_GT(count(phase("pv_connect").at("exits"), "VMCALL"), 0u);
    EXPECT_EQ(count(phase("io").at("exits"), "IO_INSTRUCTION"), 0u);
    // QD1 synchronous reads: one notification (VMCALL) and one HLT per request; plus blkfront's
    // watch on the backend state firing once at registration, whose callback reads the state (one
    // XenStore request: 2 notifications, 1 HLT); plus the idle HLT after the job.
    EXPECT_EQ(count(phase("io").at("exits"), "VMCALL"), 10u + 2u);
    EXPECT_EQ(count(phase("io").at("exits"), "HLT"), 10u + 1u + 1u);
}

}  // namespace
}  // namespace xensim::testing

namespace xensim::testing {
namespace {

// Emulated IDE, DMA reads at QD1 on a null disk: per request exactly the 26 port accesses of
// docs/ide-register-sequence.md §1 (LBA28: 18 to issue, 8 in the interrupt handler), each an
// IO_INSTRUCTION exit and an ioreq to the device model, plus one interrupt and its EOI
// (APIC_ACCESS without APIC virtualization).
TEST(Ide, EachDmaReadIsTwentySixPortAccessesAndOneInterrupt) {
    json sc = platform_scenario(false);
    sc["domains"][1]["disks"] =
        json::array({{{"vdev", "hda"}, {"attach", "ide"}, {"sectors", 204800}, {"model", "null"}}});
    const std::uint64_t n = 50;
    sc["workloads"] = json::array({{{"type", "fio"},
                                    {"name", "io"},
                                    {"guest", "guest"},
                                    {"rw", "randread"},
                                    {"iodepth", 1},
                                    {"number_ios", n}}});
    sc["stop"]["sim_time_ms"] = 100;
    Simulation sim(sc);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), n);
    EXPECT_EQ(w.at("failures"), 0u);
    const json& ide = w.at("block").at("ide");
    EXPECT_EQ(count(ide.at("commands"), "READ DMA"), n);
    EXPECT_EQ(ide.at("interrupts"), n);
    EXPECT_EQ(ide.at("spurious_interrupts"), 0u);
    const json* io = nullptr;
    for (const auto& p : sim.domain("guest").at("phases"))
        if (p.at("name") == "io") io = &p;
    ASSERT_NE(io, nullptr);
    EXPECT_EQ(count(io->at("exits"), "IO_INSTRUCTION"), 26 * n);
    EXPECT_EQ(count(io->at("exits"), "APIC_ACCESS"), n);
    // The boot's pci_scan phase: the scan and ata_piix's probe of the controller.
    const json* scan = nullptr;
    for (const auto& p : sim.domain("guest").at("phases"))
        if (p.at("name") == "pci_scan") scan = &p;
    ASSERT_NE(scan, nullptr);
    EXPECT_EQ(scan->at("exits"), (json{{"IO_INSTRUCTION", kIdeScanExits}}));
    // The drive's probe: IDENTIFY polled with nIEN: control, select (4), command, pause, status,
    // one rep insl of the 512 bytes, status, control again (11); then the MWDMA 2 timings,
    // set_piomode and set_dmamode, each an IDETIM read and write (4 configuration accesses).
    const json* probe = nullptr;
    for (const auto& p : sim.domain("guest").at("phases"))
        if (p.at("name") == "pv_connect") probe = &p;
    ASSERT_NE(probe, nullptr);
    EXPECT_EQ(count(probe->at("exits"), "IO_INSTRUCTION"), 11u + 2 * kSetModeMasterDma);
    EXPECT_EQ(w.at("block").at("device").at("transfer"), "dma");
    // Every access was served by the device model: 26 per request plus the probe's 11, the
    // boot's PCI scan and host probe, and the drive's timing writes (a PIO ioreq at 0xCF8 and a
    // PCI_CONFIG ioreq each).
    const json& dm = sim.domain("guest").at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_read") + count(dm.at("ioreqs"), "pio_write") +
                  count(dm.at("ioreqs"), "pio_rep_read"),
              26 * n + 11 + kIdeScanPioIoreqs + kSetModeMasterDma);
    EXPECT_EQ(count(dm.at("ioreqs"), "pci_config_read") + count(dm.at("ioreqs"), "pci_config_write"),
              kIdeScanPciConfigIoreqs + kSetModeMasterDma);
    // Device-model time: at least device_model_ioreq per ioreq (6000 cycles at the default 2100 MHz
    // is 2857 ns) plus the probe's rep insl elements (128 x 300 cycles), and the workload's figure
    // is the window's time divided by the requests (the boot's probe is set-up). CPU time per
    // request is guest plus hypervisor cycles.
    const std::uint64_t ioreqs =
        26 * n + 11 + kIdeScanPioIoreqs + kIdeScanPciConfigIoreqs + 2 * kSetModeMasterDma;
    const std::uint64_t busy = dm.at("busy_ns");
    EXPECT_GE(busy, ioreqs * 2857 + 128 * 300 * 1000 / 2100);
    EXPECT_LT(busy, ioreqs * 2857 * 2);  // hypercalls and timer work, not more than as much again
    const json& pr = w.at("per_request");
    const std::uint64_t window_busy = w.at("window").at("device_model_ns");
    EXPECT_DOUBLE_EQ(pr.at("device_model_ns").get<double>(), static_cast<double>(window_busy) / n);
    EXPECT_GE(window_busy, 26 * n * 2857);
    EXPECT_LE(w.at("setup").at("device_model_ns").get<std::uint64_t>() + window_busy, busy);
    EXPECT_DOUBLE_EQ(pr.at("cpu_cycles").get<double>(),
                     pr.at("guest_cycles").get<double>() + pr.at("hypervisor_cycles").get<double>());
    EXPECT_GT(pr.at("guest_cycles").get<double>(), 26 * 6000.0);  // dom0's device-model work is in it
}

// Writes then verify reads through IDE DMA: the data lands on the disk and comes back intact.
TEST(Ide, DmaWritesAreReadBackIntact) {
    json sc = platform_scenario(false);
    sc["domains"][1]["disks"] =
        json::array({{{"vdev", "hdb"}, {"attach", "ide"}, {"sectors", 204800}, {"model", "ssd"}}});
    sc["workloads"] = json::array({{{"type", "fio"},
                                    {"name", "io"},
                                    {"guest", "guest"},
                                    {"rw", "randwrite"},
                                    {"bs", 16384},
                                    {"size", 1048576},
                                    {"verify", "crc32c"}}});
    sc["stop"]["sim_time_ms"] = 1000;
    Simulation sim(sc);
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("writes"), 64u);
    EXPECT_EQ(b.at("verified"), 64u);
    EXPECT_EQ(b.at("verify_failures"), 0u);
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "WRITE DMA"), 64u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "READ DMA"), 64u);
}

// The unplug protocol at boot removes the emulated IDE disk: a PVHVM guest that then probes it finds
// no device (IDENTIFY aborts), as a Linux guest's ata_piix would after xen_unplug_emulated_devices.
TEST(Ide, UnplugAtBootRemovesTheEmulatedDisk) {
    json sc = platform_scenario(true);
    sc["domains"][1]["disks"] =
        json::array({{{"vdev", "hda"}, {"attach", "ide"}, {"sectors", 204800}, {"model", "null"}}});
    sc["workloads"] =
        json::array({{{"type", "fio"}, {"name", "io"}, {"guest", "guest"}, {"number_ios", 10}}});
    sc["stop"]["sim_time_ms"] = 100;
    Simulation sim(sc);
    const json& g = sim.domain("guest");
    EXPECT_EQ(g.at("device_model").at("unplugged_mask"), 7u);
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), 0u);
    EXPECT_EQ(w.at("failures"), 1u);
    EXPECT_FALSE(w.at("block").at("device").at("connected").get<bool>());
    EXPECT_EQ(count(w.at("block").at("ide").at("commands"), "READ DMA"), 0u);
    // Its pci_scan phase is the PVHVM scan of docs/pci-scan.md (743) plus ata_piix's probe of the
    // controller, which happens whether or not the disks are still there (2 x 21 + 2).
    for (const auto& p : g.at("phases")) {
        if (p.at("name") == "pci_scan") {
            EXPECT_EQ(
                p.at("exits"),
                (json{{"IO_INSTRUCTION", kPciScanExits + 2 * kAtaProbeConfigAccesses + kAtaProbeBmReads}}));
        }
    }
}

// A pure emulated guest (IDE disk, no Xen platform device, so no PV drivers) whose firmware put
// the bus-master BAR somewhere else than usual: the guest boots with a pci_scan phase (scan and
// ata_piix probe), its driver finds BAR4 at 0xD040 and every bus-master access goes there, and
// fio's written data verifies. The device model claims the ports where the BAR says.
TEST(Ide, TheDriverFindsTheBusMasterWhereBar4Says) {
    json sc = platform_scenario(false);
    sc["domains"][1]["ide_bmdma_base"] = 0xd040;
    sc["domains"][1]["disks"] =
        json::array({{{"vdev", "hda"}, {"attach", "ide"}, {"sectors", 204800}, {"model", "ssd"}}});
    sc["workloads"] = json::array({{{"type", "fio"},
                                    {"name", "io"},
                                    {"guest", "guest"},
                                    {"rw", "randwrite"},
                                    {"bs", 4096},
                                    {"size", 262144},
                                    {"verify", "crc32c"}}});
    sc["stop"]["sim_time_ms"] = 1000;
    Simulation sim(sc);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("writes"), 64u);
    EXPECT_EQ(b.at("verified"), 64u);
    EXPECT_EQ(b.at("verify_failures"), 0u);
    EXPECT_EQ(b.at("device").at("transfer"), "dma");
    const json& g = sim.domain("guest");
    std::vector<std::string> names;
    for (const auto& p : g.at("phases")) names.push_back(p.at("name"));
    EXPECT_EQ(names, (std::vector<std::string>{"discovery", "xen_setup", "pci_scan", "running", "pv_connect",
                                               "io"}));
    for (const auto& p : g.at("phases")) {
        if (p.at("name") == "pci_scan") {
            EXPECT_EQ(p.at("exits"), (json{{"IO_INSTRUCTION", kIdeScanExits}}));
        }
    }
    // 128 DMA commands (64 writes, 64 verify reads), LBA28: per command B+4 written once, B+0 read
    // 3 times and written 3 times, B+2 read twice and written once (docs/ide-register-sequence.md
    // §1); plus the probe's simplex read of each channel's BM Status.
    const json& causes = g.at("exits_by_cause");
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xd040"), 128u * 6);
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xd042"), 128u * 3 + 1);
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xd044"), 128u);
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xd04a"), 1u);
    EXPECT_EQ(count(causes, "IO_INSTRUCTION:port:0xc000") + count(causes, "IO_INSTRUCTION:port:0xc002") +
                  count(causes, "IO_INSTRUCTION:port:0xc004"),
              0u);
    EXPECT_EQ(g.at("unclaimed_io"), kScanAbsent);  // only the scan's absent functions
    EXPECT_EQ(g.at("pci_devices").at(2).at("driver"), "ata_piix");
}

}  // namespace
}  // namespace xensim::testing
