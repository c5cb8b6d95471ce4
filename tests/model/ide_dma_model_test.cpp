// The guest IDE driver in DMA mode with I/Os larger than one ATA command may carry, and its cache
// flushes: each request becomes the commands Linux 6.1 would send (docs/ide-register-sequence.md
// §1, §4 and §7), each command exactly its port accesses, and nothing is written outside the
// driver's own pages whatever the block size.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

// Port accesses per command (docs/ide-register-sequence.md §4, minimum path).
constexpr std::uint64_t kDmaLba28 = 26;  // issue 18, interrupt 8
constexpr std::uint64_t kDmaLba48 = 31;  // issue 23, interrupt 8
constexpr std::uint64_t kFlush = 12;     // select 4, Device + status 2, command + pause 2; interrupt 4
// The queue's limits for ata_piix on an LBA48 disk: 128 segments (LIBATA_MAX_PRD) of one 4 KiB
// page each, under max_sectors 2560: 1024 sectors, 512 KiB per command.
constexpr std::uint64_t kPieceBytes = 128 * 4096;

json ide_disk(const std::string& model, std::uint64_t sectors, bool write_cache,
              const std::string& transfer = "dma") {
    return {{"vdev", "hda"},  {"attach", "ide"},          {"sectors", sectors},
            {"model", model}, {"ide_transfer", transfer}, {"write_cache", write_cache}};
}

json scenario(const json& disk, const json& workload) {
    return {{"name", "ide-dma"},
            {"platform", {{"pcpus", 2}}},
            {"domains",
             {{{"name", "dom0"}, {"type", "pv"}, {"memory_mb", 1024}},
              {{"name", "guest"}, {"type", "hvm"}, {"memory_mb", 512}, {"disks", json::array({disk})}}}},
            {"workloads", json::array({workload})},
            {"stop", {{"sim_time_ms", 20000}}}};
}

json fio(const std::string& rw, std::uint64_t bs) {
    return {{"type", "fio"}, {"name", "io"}, {"guest", "guest"}, {"rw", rw}, {"bs", bs}, {"iodepth", 1}};
}

const json& io_phase(const Simulation& sim) {
    for (const auto& p : sim.domain("guest").at("phases"))
        if (p.at("name") == "io") return p;
    throw std::out_of_range("no io phase");
}

std::uint64_t io_accesses(const Simulation& sim) {
    return count(io_phase(sim).at("exits"), "IO_INSTRUCTION");
}

const json& ide(const Simulation& sim) { return sim.report.at("workloads").at(0).at("block").at("ide"); }

void expect_clean_run(const Simulation& sim, std::uint64_t ops) {
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), ops);
    EXPECT_EQ(w.at("failures"), 0u);
    EXPECT_EQ(w.at("block").at("errors"), 0u);
    EXPECT_EQ(ide(sim).at("errors"), 0u);
    EXPECT_EQ(ide(sim).at("spurious_interrupts"), 0u);
}

// ---- Item 1: requests above one command's limits -----------------------------------------------

// bs=4m used to write 1024 PRDs into the one 4 KiB PRD page (heap corruption, abort in malloc).
// The block layer splits each 4 MiB I/O at 128 segments: 8 WRITE DMA EXT of 1024 sectors, and the
// verify reads the same way; each command 31 accesses and one interrupt; the data comes back.
TEST(IdeDmaSplit, FourMebibyteIoIsEightCommandsOfHalfAMebibyte) {
    json w = fio("write", 4u << 20);
    w["size"] = 8u << 20;  // two I/Os, then two verify reads
    w["verify"] = "crc32c";
    Simulation sim(scenario(ide_disk("ssd", 204800, false), w));
    expect_clean_run(sim, 4);
    const std::uint64_t per_io = (4u << 20) / kPieceBytes;  // 8
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA EXT"), 2 * per_io);
    EXPECT_EQ(count(ide(sim).at("commands"), "READ DMA EXT"), 2 * per_io);
    EXPECT_EQ(ide(sim).at("requests"), 4u);
    EXPECT_EQ(ide(sim).at("interrupts"), 4 * per_io);
    EXPECT_EQ(io_accesses(sim), 4 * per_io * kDmaLba48);
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("verified"), 2u);
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
}

// 2 MiB + 4 KiB used to write one PRD past the table page and hang the guest. Now: four 512 KiB
// WRITE DMA EXT and one 8-sector WRITE DMA (LBA28: below 2^28 and at most 256 sectors).
TEST(IdeDmaSplit, TwoMebibytesAndAPageIsFourBigCommandsAndOneSmall) {
    json w = fio("write", (2u << 20) + 4096);
    w["number_ios"] = 1;
    w["verify"] = "crc32c";
    Simulation sim(scenario(ide_disk("ssd", 204800, false), w));
    expect_clean_run(sim, 2);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA EXT"), 4u);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA"), 1u);
    EXPECT_EQ(count(ide(sim).at("commands"), "READ DMA EXT"), 4u);
    EXPECT_EQ(count(ide(sim).at("commands"), "READ DMA"), 1u);
    EXPECT_EQ(ide(sim).at("requests"), 2u);
    EXPECT_EQ(ide(sim).at("interrupts"), 10u);
    EXPECT_EQ(io_accesses(sim), 2 * (4 * kDmaLba48 + kDmaLba28));
    EXPECT_EQ(sim.report.at("workloads").at(0).at("block").at("verified"), 1u);
}

// PIO has the same limits (sg_tablesize and max_sectors are the queue's, whatever the protocol):
// a 4 MiB write is 8 WRITE MULTIPLE EXT of 1024 sectors, 64 DRQ blocks of 16 sectors each.
TEST(IdeDmaSplit, PioFourMebibyteIoIsEightCommandsToo) {
    json w = fio("write", 4u << 20);
    w["number_ios"] = 1;
    w["verify"] = "crc32c";
    Simulation sim(scenario(ide_disk("ssd", 204800, false, "pio"), w));
    expect_clean_run(sim, 2);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE MULTIPLE EXT"), 8u);
    EXPECT_EQ(count(ide(sim).at("commands"), "READ MULTIPLE EXT"), 8u);
    EXPECT_EQ(ide(sim).at("pio_blocks"), 2u * 8 * 64);
    EXPECT_EQ(sim.report.at("workloads").at(0).at("block").at("verified"), 1u);
}

// ---- Item 16: FLUSH CACHE as libata sends it --------------------------------------------------

// A 100 MiB disk (below 2^28 sectors: no ATA_DFLAG_FLUSH_EXT) with its write cache on, fsync=16
// after 16 sequential 4 KiB writes: 16 WRITE DMA of 26 accesses and one FLUSH CACHE of 12.
TEST(IdeFlush, FlushCacheIsTwelveAccessesBelowTwoToTheTwentyEightSectors) {
    json w = fio("write", 4096);
    w["number_ios"] = 16;
    w["fsync"] = 16;
    Simulation sim(scenario(ide_disk("ssd", 204800, true), w));
    expect_clean_run(sim, 16);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA"), 16u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 1u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE EXT"), 0u);
    EXPECT_EQ(ide(sim).at("interrupts"), 17u);
    EXPECT_EQ(io_accesses(sim), 16 * kDmaLba28 + kFlush);
    EXPECT_EQ(sim.report.at("workloads").at(0).at("block").at("flushes"), 1u);
}

// At 2^28 sectors and more libata flushes with FLUSH CACHE EXT (core:2471-2473): same 12 accesses.
TEST(IdeFlush, FlushCacheExtFromTwoToTheTwentyEightSectors) {
    json w = fio("write", 4096);
    w["number_ios"] = 16;
    w["fsync"] = 16;
    Simulation sim(scenario(ide_disk("null", 1ull << 28, true), w));
    expect_clean_run(sim, 16);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE EXT"), 1u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 0u);
    EXPECT_EQ(io_accesses(sim), 16 * kDmaLba28 + kFlush);
}

// Write cache off: IDENTIFY word 85 bit 5 clear, sd sets no write cache on the queue, and an fsync
// ends in the block layer without a command. Four fsyncs, no FLUSH CACHE, only the writes' accesses.
TEST(IdeFlush, NoFlushCommandWhenTheWriteCacheIsOff) {
    json w = fio("randwrite", 4096);
    w["number_ios"] = 16;
    w["fsync"] = 4;
    Simulation sim(scenario(ide_disk("ssd", 204800, false), w));
    expect_clean_run(sim, 16);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 0u);
    EXPECT_EQ(ide(sim).at("requests"), 16u);
    EXPECT_EQ(io_accesses(sim), 16 * kDmaLba28);
    EXPECT_EQ(sim.report.at("workloads").at(0).at("block").at("flushes"), 4u);
}

// A flush that completes at once (null disk, ramdisk: nothing to destage takes no time) raises its
// interrupt inside the command's issue; the fsync must still see it (it used to hang).
class IdeFlushAtOnce : public ::testing::TestWithParam<const char*> {};
TEST_P(IdeFlushAtOnce, FsyncRunCompletes) {
    json w = fio("randwrite", 4096);
    w["number_ios"] = 16;
    w["fsync"] = 4;
    Simulation sim(scenario(ide_disk(GetParam(), 204800, true), w));
    expect_clean_run(sim, 16);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 4u);
    EXPECT_EQ(sim.report.at("workloads").at(0).at("block").at("flushes"), 4u);
    EXPECT_EQ(io_accesses(sim), 16 * kDmaLba28 + 4 * kFlush);
}
INSTANTIATE_TEST_SUITE_P(Models, IdeFlushAtOnce, ::testing::Values("null", "ramdisk"));

// ---- Item 17: sync=1 with direct=1 -------------------------------------------------------------

// O_DSYNC on a write-cached IDE disk: each write is REQ_FUA, libata has no FUA for PATA, so
// blk-flush.c sends the WRITE DMA and then a FLUSH CACHE, and fio sees the write complete after the
// flush: 26 + 12 accesses and 2 interrupts per write; every write is durable (destaged).
TEST(IdeSync, EachWriteIsWriteDmaThenFlushCache) {
    json w = fio("randwrite", 4096);
    w["number_ios"] = 8;
    w["sync"] = "dsync";
    Simulation sim(scenario(ide_disk("ssd", 204800, true), w));
    expect_clean_run(sim, 8);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA"), 8u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 8u);
    EXPECT_EQ(ide(sim).at("requests"), 16u);
    EXPECT_EQ(ide(sim).at("interrupts"), 16u);
    EXPECT_EQ(io_accesses(sim), 8 * (kDmaLba28 + kFlush));
    EXPECT_EQ(sim.report.at("workloads").at(0).at("block").at("flushes"), 0u);  // no fsync
    EXPECT_EQ(sim.stat("ide_guest.flushes"), 8u);
    EXPECT_EQ(sim.stat("ide_guest.destaged_writes"), 8u);
}

// Write cache off: submit_bio_noacct drops REQ_FUA; the writes are plain WRITE DMA.
TEST(IdeSync, NoFlushWithTheWriteCacheOff) {
    json w = fio("randwrite", 4096);
    w["number_ios"] = 8;
    w["sync"] = "sync";
    Simulation sim(scenario(ide_disk("ssd", 204800, false), w));
    expect_clean_run(sim, 8);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA"), 8u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 0u);
    EXPECT_EQ(io_accesses(sim), 8 * kDmaLba28);
}

// iodepth 4: the four FUA writes are all in their data step (blk-flush.c C2) until the last one's
// WRITE DMA ends; then one FLUSH CACHE completes all four, and fio issues the next four.
TEST(IdeSync, FourWritesInFlightShareOneFlush) {
    json w = fio("randwrite", 4096);
    w["number_ios"] = 16;
    w["iodepth"] = 4;
    w["sync"] = "sync";
    Simulation sim(scenario(ide_disk("ssd", 204800, true), w));
    expect_clean_run(sim, 16);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA"), 16u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 4u);
    EXPECT_EQ(io_accesses(sim), 16 * kDmaLba28 + 4 * kFlush);
}

// A 4 MiB O_SYNC write: its 8 split requests all carry REQ_FUA (bio_split clones the flags) and are
// all in their data step until the eighth WRITE DMA EXT ends: one FLUSH CACHE for the whole I/O.
TEST(IdeSync, SplitWriteGetsOneFlushForAllItsPieces) {
    json w = fio("write", 4u << 20);
    w["number_ios"] = 2;
    w["sync"] = "sync";
    Simulation sim(scenario(ide_disk("ssd", 204800, true), w));
    expect_clean_run(sim, 2);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA EXT"), 16u);
    EXPECT_EQ(count(ide(sim).at("commands"), "FLUSH CACHE"), 2u);
    EXPECT_EQ(io_accesses(sim), 16 * kDmaLba48 + 2 * kFlush);
}

// Two jobs on two vCPUs share the channel: a job whose command the busy channel refused is run
// again from the other vCPU's completion (blk-mq reruns the queue), so neither the plain run nor the
// O_SYNC one stalls (both used to: the refused vCPU halted for good). With O_SYNC the refused write
// is already in its data step for blk-flush.c, so no flush goes out before it has been written: the
// flushes never outnumber the writes, and every acknowledged write is durable.
class IdeTwoVcpus : public ::testing::TestWithParam<const char*> {};
TEST_P(IdeTwoVcpus, TwoJobsOnOneChannelComplete) {
    json w = fio("randwrite", 4096);
    w["number_ios"] = 16;
    w["numjobs"] = 2;
    w["sync"] = GetParam();
    json sc = scenario(ide_disk("ssd", 204800, true), w);
    sc["domains"][1]["vcpus"] = 2;
    Simulation sim(sc);
    expect_clean_run(sim, 32);
    EXPECT_EQ(count(ide(sim).at("commands"), "WRITE DMA"), 32u);
    const std::uint64_t flushes = count(ide(sim).at("commands"), "FLUSH CACHE");
    if (std::string(GetParam()) == "none") {
        EXPECT_EQ(flushes, 0u);
    } else {
        EXPECT_GE(flushes, 16u);  // at most the two jobs' writes share one
        EXPECT_LE(flushes, 32u);
        EXPECT_EQ(sim.stat("ide_guest.destaged_writes"), 32u);
    }
    EXPECT_EQ(io_accesses(sim), 32 * kDmaLba28 + flushes * kFlush);
}
INSTANTIATE_TEST_SUITE_P(Sync, IdeTwoVcpus, ::testing::Values("none", "sync"));

}  // namespace
}  // namespace xensim::testing
