// The guest IDE driver's PIO mode (ide_transfer "pio", as libata.dma=0): per request, exactly the
// port accesses and interrupts that docs/ide-register-sequence.md §2 and §4 derive from Linux 6.1's
// libata-sff.c, each an IO_INSTRUCTION exit and an ioreq to the device model.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

// The pieces of the derivation (docs/ide-register-sequence.md §1 #1-16 and §2), LBA28.
constexpr std::uint64_t kSelect = 4;                              // status, device, alt-status pause, status
constexpr std::uint64_t kTaskfile = 7;                            // features, count, LBA x3, device, status
constexpr std::uint64_t kHob = 5;                                 // LBA48: the five high-order bytes first
constexpr std::uint64_t kCommand = 2;                             // opcode, alt-status pause
constexpr std::uint64_t kIssue = kSelect + kTaskfile + kCommand;  // 13
constexpr std::uint64_t kIrqHead = 4;         // alt status, status, BM status read + write-back
constexpr std::uint64_t kSync = 1;            // ata_sff_sync after a block
constexpr std::uint64_t kFinalStatus = 1;     // a read's ata_wait_idle after its last block
constexpr std::uint64_t kWorkItemStatus = 1;  // ata_sff_pio_task's ata_sff_busy_wait

// PIO READ of n sectors in blocks of m: an interrupt per block (head, the block's sectors, sync),
// then the final status read.
constexpr std::uint64_t pio_read_accesses(std::uint64_t n, std::uint64_t m) {
    return kIssue + ((n + m - 1) / m) * (kIrqHead + kSync) + n + kFinalStatus;
}
// PIO WRITE: the first block from the work item (status, sectors, sync); every further block from
// the interrupt after the previous one (head, sectors, sync); the last interrupt's head completes.
constexpr std::uint64_t pio_write_accesses(std::uint64_t n, std::uint64_t m) {
    const std::uint64_t blocks = (n + m - 1) / m;
    return kIssue + kWorkItemStatus + n + blocks * kSync + (blocks - 1) * kIrqHead + kIrqHead;
}
// The documented totals (§4): 27 with READ/WRITE MULTIPLE 16, 62 with READ/WRITE SECTORS.
static_assert(pio_read_accesses(8, 16) == 27 && pio_write_accesses(8, 16) == 27);
static_assert(pio_read_accesses(8, 1) == 62 && pio_write_accesses(8, 1) == 62);

json ide_scenario(const json& disk, const json& workload, std::uint64_t sim_ms) {
    return {{"name", "ide-pio"},
            {"platform", {{"pcpus", 2}}},
            {"domains",
             {{{"name", "dom0"}, {"type", "pv"}, {"memory_mb", 1024}},
              {{"name", "guest"}, {"type", "hvm"}, {"disks", json::array({disk})}}}},
            {"workloads", json::array({workload})},
            {"stop", {{"sim_time_ms", sim_ms}}}};
}

json pio_disk(const std::string& model, std::uint64_t sectors = 204800) {
    return {
        {"vdev", "hda"}, {"attach", "ide"}, {"sectors", sectors}, {"model", model}, {"ide_transfer", "pio"}};
}

json fio(const std::string& rw, std::uint64_t n) {
    return {{"type", "fio"}, {"name", "io"}, {"guest", "guest"},
            {"rw", rw},      {"iodepth", 1}, {"number_ios", n}};
}

const json& phase(const Simulation& sim, const std::string& name) {
    for (const auto& p : sim.domain("guest").at("phases"))
        if (p.at("name") == name) return p;
    throw std::out_of_range("no phase " + name);
}

// What every run below checks the same way: n requests of one command, each `accesses` port
// accesses (exits and ioreqs) and `irqs` interrupts (each with one EOI: APIC_ACCESS without APIC
// virtualization).
void expect_per_request(const Simulation& sim, std::uint64_t n, const char* command, std::uint64_t accesses,
                        std::uint64_t irqs) {
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), n);
    EXPECT_EQ(w.at("failures"), 0u);
    const json& b = w.at("block");
    EXPECT_EQ(b.at("device").at("transfer"), "pio");
    EXPECT_EQ(count(b.at("ide").at("commands"), command), n);
    EXPECT_EQ(b.at("ide").at("interrupts"), irqs * n);
    EXPECT_EQ(b.at("ide").at("spurious_interrupts"), 0u);
    EXPECT_EQ(b.at("ide").at("errors"), 0u);
    const json& io = phase(sim, "io");
    EXPECT_EQ(count(io.at("exits"), "IO_INSTRUCTION"), accesses * n);
    EXPECT_EQ(count(io.at("exits"), "APIC_ACCESS"), irqs * n);
}

TEST(IdePio, ReadMultipleOf4KiBIsTwentySevenAccessesAndOneInterrupt) {
    const std::uint64_t n = 50;
    Simulation sim(ide_scenario(pio_disk("null"), fio("randread", n), 100));
    expect_per_request(sim, n, "READ MULTIPLE", pio_read_accesses(8, 16), 1);
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("device").at("multi_count"), 16u);
    EXPECT_EQ(b.at("ide").at("pio_blocks"), n);
    // The device model saw each access: 8 rep insl per request (one per sector) plus the probe's
    // IDENTIFY (11 accesses, one of them a rep insl), the boot's PCI scan and ata_piix's probe
    // (PIO ioreqs at 0xCF8-0xCFB and the two BM Status reads), and the drive's PIO 4 timings
    // (set_piomode only with libata.dma=0: an IDETIM read and write, each with its 0xCF8 write).
    const json& dm = sim.domain("guest").at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_rep_read"), 8 * n + 1);
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_rep_write"), 0u);
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_read") + count(dm.at("ioreqs"), "pio_write") +
                  count(dm.at("ioreqs"), "pio_rep_read"),
              pio_read_accesses(8, 16) * n + 11 + kIdeScanPioIoreqs + kSetModeMasterPio);
    EXPECT_EQ(count(phase(sim, "pci_scan").at("exits"), "IO_INSTRUCTION"), kIdeScanExits);
    EXPECT_EQ(count(phase(sim, "pv_connect").at("exits"), "IO_INSTRUCTION"), 11u + 2 * kSetModeMasterPio);
}

TEST(IdePio, WriteMultipleOf4KiBIsTwentySevenAccessesAndOneInterrupt) {
    const std::uint64_t n = 50;
    Simulation sim(ide_scenario(pio_disk("null"), fio("randwrite", n), 100));
    expect_per_request(sim, n, "WRITE MULTIPLE", pio_write_accesses(8, 16), 1);
    const json& dm = sim.domain("guest").at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_rep_write"), 8 * n);
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_rep_read"), 1u);  // the probe's IDENTIFY only
}

// hdparm -m0 at boot turns multiple mode off: READ/WRITE SECTORS, one sector and one interrupt per
// DRQ block.
TEST(IdePio, ReadSectorsOf4KiBIsSixtyTwoAccessesAndEightInterrupts) {
    const std::uint64_t n = 20;
    json disk = pio_disk("null");
    disk["ide_set_multiple"] = 0;
    Simulation sim(ide_scenario(disk, fio("randread", n), 100));
    expect_per_request(sim, n, "READ SECTORS", pio_read_accesses(8, 1), 8);
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("device").at("multi_count"), 0u);
    EXPECT_EQ(b.at("ide").at("pio_blocks"), 8 * n);
    // The probe: IDENTIFY (11), the PIO 4 timings (2 configuration accesses, 4 port accesses),
    // SET MULTIPLE MODE polled (control, select 4, task file 7, command, pause, status, control:
    // 16), IDENTIFY again (11).
    EXPECT_EQ(count(phase(sim, "pv_connect").at("exits"), "IO_INSTRUCTION"),
              11u + 2 * kSetModeMasterPio + 16u + 11u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "SET MULTIPLE MODE"), 1u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "IDENTIFY"), 2u);
}

TEST(IdePio, WriteSectorsOf4KiBIsSixtyTwoAccessesAndEightInterrupts) {
    const std::uint64_t n = 20;
    json disk = pio_disk("null");
    disk["ide_set_multiple"] = 0;
    Simulation sim(ide_scenario(disk, fio("randwrite", n), 100));
    expect_per_request(sim, n, "WRITE SECTORS", pio_write_accesses(8, 1), 8);
}

// Beyond sector 2^28 - 1 the EXT opcodes and the five high-order task-file bytes: +5 per request.
json lba48_fio(const std::string& rw, std::uint64_t n) {
    json w = fio(rw, n);
    w["offset"] = 161061273600;  // 150 GiB into a 200 GiB disk
    w["size"] = 67108864;
    return w;
}

TEST(IdePio, Lba48ReadMultipleIsFiveAccessesMore) {
    const std::uint64_t n = 20;
    Simulation sim(ide_scenario(pio_disk("null", 419430400), lba48_fio("randread", n), 100));
    expect_per_request(sim, n, "READ MULTIPLE EXT", pio_read_accesses(8, 16) + kHob, 1);
}

TEST(IdePio, Lba48WriteMultipleIsFiveAccessesMore) {
    const std::uint64_t n = 20;
    Simulation sim(ide_scenario(pio_disk("null", 419430400), lba48_fio("randwrite", n), 100));
    expect_per_request(sim, n, "WRITE MULTIPLE EXT", pio_write_accesses(8, 16) + kHob, 1);
}

// PIO writes land on the disk and read back intact (fio verify), through requests of two DRQ
// blocks (16 KiB = 32 sectors, multiple count 16): 2 interrupts each way and the §2 formula's
// 4B + 6 reads, B + 8 writes and N string instructions (B = 2, N = 32: 56).
TEST(IdePio, MultiBlockWritesAreReadBackIntact) {
    json w = {{"type", "fio"}, {"name", "io"},    {"guest", "guest"},  {"rw", "randwrite"},
              {"bs", 16384},   {"size", 1048576}, {"verify", "crc32c"}};
    Simulation sim(ide_scenario(pio_disk("ssd"), w, 1000));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("writes"), 64u);
    EXPECT_EQ(b.at("verified"), 64u);
    EXPECT_EQ(b.at("verify_failures"), 0u);
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "WRITE MULTIPLE"), 64u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "READ MULTIPLE"), 64u);
    EXPECT_EQ(b.at("ide").at("interrupts"), 2u * 128u);
    EXPECT_EQ(b.at("ide").at("pio_blocks"), 2u * 128u);
    static_assert(pio_read_accesses(32, 16) == 4 * 2 + 6 + 2 + 8 + 32);
    static_assert(pio_write_accesses(32, 16) == pio_read_accesses(32, 16));
    EXPECT_EQ(count(phase(sim, "io").at("exits"), "IO_INSTRUCTION"), 128u * pio_read_accesses(32, 16));
}

// The same with READ/WRITE SECTORS: one sector per block, so the per-sector buffer walk crosses
// pages inside each request.
TEST(IdePio, SectorAtATimeWritesAreReadBackIntact) {
    json disk = pio_disk("ssd");
    disk["ide_set_multiple"] = 0;
    json w = {{"type", "fio"}, {"name", "io"},   {"guest", "guest"},  {"rw", "randwrite"},
              {"bs", 8192},    {"size", 262144}, {"verify", "crc32c"}};
    Simulation sim(ide_scenario(disk, w, 1000));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("writes"), 32u);
    EXPECT_EQ(b.at("verified"), 32u);
    EXPECT_EQ(b.at("verify_failures"), 0u);
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "WRITE SECTORS"), 32u);
    EXPECT_EQ(count(b.at("ide").at("commands"), "READ SECTORS"), 32u);
    EXPECT_EQ(b.at("ide").at("interrupts"), 16u * 64u);
}

// On a RAM disk the data is ready at once: a read's interrupt arrives during its own issue (at the
// alt-status pause after the command) and a write's right after its last sector, before the
// block's alt-status sync. libata has interrupts off there (ap->lock), so the handler runs after
// the issue: every interrupt here is held, and still each request is 27 accesses, one interrupt,
// and its data intact.
TEST(IdePio, InterruptsArrivingDuringTheIssueAreTakenAfterIt) {
    json w = {{"type", "fio"}, {"name", "io"},   {"guest", "guest"},  {"rw", "randwrite"},
              {"bs", 4096},    {"size", 262144}, {"verify", "crc32c"}};
    Simulation sim(ide_scenario(pio_disk("ramdisk"), w, 1000));
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("writes"), 64u);
    EXPECT_EQ(b.at("verified"), 64u);
    EXPECT_EQ(b.at("verify_failures"), 0u);
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
    EXPECT_EQ(b.at("ide").at("interrupts"), 128u);
    EXPECT_EQ(b.at("ide").at("spurious_interrupts"), 0u);
    EXPECT_EQ(sim.stat("dom1.guest.ata0_0.interrupts_held"), 128u);
    EXPECT_EQ(count(phase(sim, "io").at("exits"), "IO_INSTRUCTION"), 128u * pio_read_accesses(8, 16));
}

// DMA takes fewer exits per request than PIO: tests/scenario/blk_cli_test.cpp runs
// scenarios/ide-dma-vs-pio.json both ways (one simulation per process).

}  // namespace
}  // namespace xensim::testing
