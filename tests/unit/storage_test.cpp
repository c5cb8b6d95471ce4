// Storage models for dom0's disk backends, driven the way blkback drives them: requests of
// {op, sector, sectors} with a submit time, asserting completion times, the bytes read back, and
// what a crash keeps. Expected times follow the formulas in storage.h (Ruemmler & Wilkes for the
// disk); each table row states its intent.
#include "models/dom0/storage.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace xensim {
namespace {

constexpr std::uint64_t kUs = 1'000'000;  // ps
constexpr std::uint64_t kMs = 1'000'000'000;

StorageRequest rd(std::uint64_t sector, std::uint32_t n) { return {StorageOp::read, sector, n, 0}; }
StorageRequest wr(std::uint64_t sector, std::uint32_t n, bool fua = false) {
    return {StorageOp::write, sector, n, 0, fua};
}
StorageRequest fl() { return {StorageOp::flush, 0, 0, 0}; }
StorageRequest dc(std::uint64_t sector, std::uint32_t n) { return {StorageOp::discard, sector, n, 0}; }

std::vector<std::uint8_t> pattern(std::uint32_t sectors, std::uint8_t seed) {
    std::vector<std::uint8_t> v(std::uint64_t{sectors} * kSectorSize);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
    return v;
}

// A temporary directory removed with its files at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/xensim_storage_XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        if (!p) throw std::runtime_error("mkdtemp");
        path = p;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const std::string& name) const { return path + "/" + name; }
};

TEST(StorageTransfer, BytesOverBandwidthInPicoseconds) {
    struct Row {
        std::uint64_t bytes, bw, ps;
        const char* intent;
    } rows[] = {
        {4096, 4'096'000'000, 1 * kUs, "4 KiB at 4.096 GB/s is 1 us"},
        {512, 1'000'000'000'000, 512, "one sector at 1 TB/s is 512 ps"},
        {std::uint64_t{1} << 40, 1'000'000'000, (std::uint64_t{1} << 40) * 1000, "1 TiB does not overflow"},
        {3, 1'000'000'000'000'000ull, 0, "rounds down"},
        {4096, 0, 0, "bandwidth 0 means infinitely fast"},
    };
    for (const Row& r : rows) EXPECT_EQ(transfer_ps(r.bytes, r.bw), r.ps) << r.intent;
}

TEST(StorageModels, NullCompletesAtSubmit) {
    NullModel m;
    for (StorageRequest r : {rd(0, 8), wr(100, 256), fl(), dc(8, 8)}) {
        EXPECT_EQ(m.complete_at_ps(r, 12345), 12345u) << storage_op_name(r.op);
    }
}

TEST(StorageModels, RamdiskIsLatencyPlusTransfer) {
    RamdiskModel m({2 * kUs, 4'096'000'000});
    struct Row {
        StorageRequest req;
        std::uint64_t submit, done;
        const char* intent;
    } rows[] = {
        {rd(0, 8), 0, 3 * kUs, "4 KiB: 2 us + 1 us"},
        {wr(0, 256), 10 * kUs, 10 * kUs + 2 * kUs + 32 * kUs, "128 KiB: 2 us + 32 us, no queueing"},
        {rd(0, 8), 5 * kUs, 8 * kUs, "overlapping requests do not wait for each other"},
        {fl(), 7, 7, "flush is free"},
        {dc(0, 1024), 0, 2 * kUs, "discard pays the latency only"},
    };
    for (const Row& r : rows) EXPECT_EQ(m.complete_at_ps(r.req, r.submit), r.done) << r.intent;
}

// Flash latency 100 us per channel, 1 us per 4 KiB on the shared link (4 * 1 us < 100 us, so the
// link never delays a wave by more than its own transfers).
SsdParams wave_ssd(unsigned channels) { return {100 * kUs, 100 * kUs, 4'096'000'000, channels}; }

TEST(StorageModels, SsdConcurrentRequestsCompleteInWavesOfChannels) {
    struct Row {
        unsigned channels, requests;
        StorageOp op;
    } rows[] = {{1, 3, StorageOp::read},
                {4, 4, StorageOp::read},
                {4, 10, StorageOp::read},
                {8, 17, StorageOp::read},
                {4, 10, StorageOp::write}};
    for (const Row& r : rows) {
        SsdModel m(wave_ssd(r.channels));
        std::uint64_t last = 0;
        for (unsigned i = 0; i < r.requests; ++i) {
            StorageRequest req{r.op, std::uint64_t{i} * 8, 8, i};
            std::uint64_t wave = i / r.channels, slot = i % r.channels;
            // read: flash in waves, then the link in order; write: the link in order, then flash.
            std::uint64_t expect = r.op == StorageOp::read ? (wave + 1) * 100 * kUs + (slot + 1) * kUs
                                                           : wave * 100 * kUs + (i + 1) * kUs + 100 * kUs;
            if (r.op == StorageOp::write && wave > 0) {
                // a channel frees at (its previous write's end); the link is long done by then
                expect = (wave + 1) * 100 * kUs + (slot + 1) * kUs;
            }
            std::uint64_t done = m.complete_at_ps(req, 0);
            EXPECT_EQ(done, expect) << r.channels << " channels, request " << i << " "
                                    << storage_op_name(r.op);
            last = std::max(last, done);
        }
        std::uint64_t waves = (r.requests + r.channels - 1) / r.channels;
        EXPECT_GT(last, waves * 100 * kUs);
        EXPECT_LT(last, (waves + 1) * 100 * kUs) << "ceil(N/C) waves, not more";
    }
}

TEST(StorageModels, SsdFlushWaitsForTheDeviceAndLargeTransfersShareTheLink) {
    SsdModel m(wave_ssd(4));
    EXPECT_EQ(m.complete_at_ps(rd(0, 2048), 0), 100 * kUs + 256 * kUs)
        << "1 MiB: flash then 256 us on the link";
    EXPECT_EQ(m.complete_at_ps(rd(4096, 2048), 0), 100 * kUs + 512 * kUs)
        << "second 1 MiB queues on the link";
    EXPECT_EQ(m.complete_at_ps(fl(), 0), 612 * kUs) << "flush completes when the device is idle";
    EXPECT_EQ(m.complete_at_ps(rd(0, 8), 0), 713 * kUs) << "nothing starts before the flush completes";
}

TEST(StorageModels, SsdDefaultsAreTheDatasheetFigures) {
    SsdModel m;
    EXPECT_EQ(m.complete_at_ps(rd(0, 8), 0), 50 * kUs + transfer_ps(4096, 500'000'000));
}

TEST(StorageModels, HddSeekIsFittedToTrackToTrackAndFullStroke) {
    HddModel m({}, std::uint64_t{1} << 31);  // 1 TiB image over 100,000 cylinders
    HddParams p;
    EXPECT_EQ(m.seek_ps(0), 0u) << "no seek on the same cylinder";
    EXPECT_EQ(m.seek_ps(1), p.track_to_track_seek_ps);
    EXPECT_NEAR(double(m.seek_ps(p.cylinders - 1)), double(p.full_stroke_seek_ps), 1.0);
    std::uint64_t prev = 0;
    for (std::uint64_t d : {1, 2, 10, 100, 1000, 10000, 50000, 99999}) {
        EXPECT_GT(m.seek_ps(d), prev) << "seek grows with distance " << d;
        prev = m.seek_ps(d);
    }
    // Deskstar 7K1000.C: average read seek 8.5 ms typical. The sqrt fit reproduces it.
    EXPECT_NEAR(double(m.average_seek_ps()), 8.5 * kMs, 0.1 * kMs);
    // The weighted average of a three-cylinder drive by hand: (2 * seek(1) + 1 * seek(2)) / 3.
    HddModel tiny({7200, 1 * kMs, 2 * kMs, 125'000'000, 3}, 3000);
    EXPECT_EQ(tiny.seek_ps(2), 2 * kMs);
    EXPECT_EQ(tiny.average_seek_ps(), (2 * 1 * kMs + 2 * kMs) / 3);
    // 7200 rpm: one revolution ~8.333 ms (average rotational latency 4.17 ms), 125 MB/s media.
    EXPECT_EQ(m.sectors_per_track(), 2034u);
    EXPECT_NEAR(double(m.rotation_ps()), 60e12 / 7200, double(m.sectors_per_track()));
}

TEST(StorageModels, HddRotationalLatencyFollowsTheAngleImpliedByTime) {
    const std::uint64_t image = std::uint64_t{1} << 31;
    HddModel probe({}, image);
    const std::uint64_t sp = probe.sector_ps(), rot = probe.rotation_ps();
    struct Row {
        std::uint64_t sector, submit, done;
        const char* intent;
    } rows[] = {
        {0, 0, 8 * sp, "sector 0 is under the head at t = 0"},
        {0, rot, rot + 8 * sp, "and again one revolution later"},
        {0, 1, rot + 8 * sp, "1 ps late: wait for the next revolution"},
        {100, 0, 108 * sp, "sector 100 comes round after 100 sector times"},
        {100, 40 * sp, 108 * sp, "arriving midway waits only for the rest"},
        {2034 + 5, 0, 13 * sp, "the same angle on the next track (same cylinder)"},
    };
    for (const Row& r : rows) {
        HddModel m({}, image);  // head on cylinder 0, idle
        ASSERT_EQ(m.cylinder_of(r.sector), 0u);
        EXPECT_EQ(m.complete_at_ps(rd(r.sector, 8), r.submit), r.done) << r.intent;
    }
}

TEST(StorageModels, HddSequentialIsFarCheaperThanRandom) {
    const std::uint64_t image = std::uint64_t{1} << 31;
    HddModel seq({}, image), rnd({}, image);
    std::uint64_t t_seq = 0, t_rnd = 0, x = 12345;
    for (int i = 0; i < 64; ++i) t_seq = seq.complete_at_ps(rd(1'000'000 + 8 * i, 8), 0);
    for (int i = 0; i < 64; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;  // fixed LCG: same "random" run always
        t_rnd = rnd.complete_at_ps(rd((x >> 20) % (image - 8), 8), 0);
    }
    EXPECT_GT(t_rnd, 20 * t_seq) << "seq " << t_seq << " ps, random " << t_rnd << " ps";
    // Back to back, the next sector is under the head: no seek and no rotational wait.
    HddModel m({}, image);
    std::uint64_t first = m.complete_at_ps(rd(1'000'000, 8), 0);
    EXPECT_EQ(m.complete_at_ps(rd(1'000'008, 8), 0), first + 8 * m.sector_ps());
    // Random requests average about seek + half a revolution each (8.5 + 4.17 ms).
    EXPECT_GT(t_rnd / 64, 10 * kMs);
    EXPECT_LT(t_rnd / 64, 15 * kMs);
}

TEST(StorageModels, HddFlushWaitsForTheQueue) {
    HddModel m({}, std::uint64_t{1} << 31);
    std::uint64_t done = m.complete_at_ps(rd(std::uint64_t{1} << 30, 8), 0);
    EXPECT_EQ(m.complete_at_ps(fl(), 0), done);
    EXPECT_EQ(m.complete_at_ps(fl(), done + 5), done + 5);
}

// ---- Images ---------------------------------------------------------------------------------------

void round_trip(DiskImage& img) {
    const std::uint64_t n = img.sectors();
    struct Row {
        std::uint64_t sector;
        std::uint32_t sectors;
        std::uint8_t seed;
    } rows[] = {{0, 1, 1}, {7, 3, 2}, {100, 64, 3}, {n - 9, 9, 4}};
    for (const Row& r : rows) img.write(r.sector, r.sectors, pattern(r.sectors, r.seed).data());
    for (const Row& r : rows) {
        std::vector<std::uint8_t> out(std::uint64_t{r.sectors} * kSectorSize, 0xEE);
        img.read(r.sector, r.sectors, out.data());
        EXPECT_EQ(out, pattern(r.sectors, r.seed)) << "sector " << r.sector;
    }
    std::vector<std::uint8_t> out(16 * kSectorSize, 0xEE);
    img.read(n / 2, 16, out.data());
    EXPECT_EQ(out, std::vector<std::uint8_t>(out.size(), 0)) << "unwritten sectors read as zeros";
    img.discard(100, 64);
    out.assign(64 * kSectorSize, 0xEE);
    img.read(100, 64, out.data());
    EXPECT_EQ(out, std::vector<std::uint8_t>(out.size(), 0)) << "discarded sectors read as zeros";
    img.discard(8, 1);  // within the page of sectors 7..9
    out.assign(3 * kSectorSize, 0xEE);
    img.read(7, 3, out.data());
    auto p = pattern(3, 2);
    std::fill(p.begin() + kSectorSize, p.begin() + 2 * kSectorSize, 0);
    EXPECT_EQ(out, p) << "a partial-page discard zeroes only its sectors";
    img.flush();
}

TEST(StorageImages, MemoryImageRoundTripsAndIsSparse) {
    MemoryImage img(std::uint64_t{1} << 31);  // 1 TiB of address space
    round_trip(img);
    EXPECT_LE(img.allocated_bytes(), 8u * MemoryImage::kPageBytes);
}

TEST(StorageImages, FileImageRoundTripsAndIsSparse) {
    TempDir dir;
    const std::string path = dir.file("disk.img");
    const std::uint64_t size = std::uint64_t{1} << 30;  // 1 GiB, sparse
    {
        FileImage img(path, size);
        EXPECT_EQ(img.sectors(), size / kSectorSize);
        round_trip(img);
    }
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(std::uint64_t(st.st_size), size);
    EXPECT_LT(std::uint64_t(st.st_blocks) * 512, std::uint64_t{1} << 20) << "the host file stays sparse";
    // Reopened at its own size (0 = as is), the data is still there.
    FileImage again(path, 0, true);
    std::vector<std::uint8_t> out(kSectorSize);
    again.read(0, 1, out.data());
    EXPECT_EQ(out, pattern(1, 1));
}

TEST(StorageImages, FileImageErrorsNameThePathAndTheCause) {
    TempDir dir;
    FileImage made(dir.file("a.img"), 4096);
    struct Row {
        std::string path;
        std::uint64_t size;
        bool read_only;
        const char* expect;
    } rows[] = {
        {"relative.img", 4096, false, "must be absolute"},
        {dir.file("b.img"), 1000, false, "not a multiple of 512"},
        {dir.file("a.img"), 8192, false, "existing file has 4096 bytes"},
        {dir.file("none.img"), 0, false, "does not exist"},
        {dir.file("none.img"), 4096, true, "No such file"},
        {dir.path + "/no/such/dir/x.img", 4096, false, "cannot create"},
        {dir.path, 0, true, "not a regular file"},
    };
    for (const Row& r : rows) {
        try {
            FileImage img(r.path, r.size, r.read_only);
            ADD_FAILURE() << r.path << " should have failed with " << r.expect;
        } catch (const std::runtime_error& e) {
            std::string what = e.what();
            EXPECT_NE(what.find(r.expect), std::string::npos) << what;
            EXPECT_NE(what.find(r.path), std::string::npos) << what;
        }
    }
}

// ---- The disk -------------------------------------------------------------------------------------

struct Rig {
    StatsGroup stats{"vbd"};
    std::unique_ptr<Disk> disk;
    explicit Rig(DiskConfig cfg, std::unique_ptr<ServiceModel> model = std::make_unique<NullModel>(),
                 std::uint64_t sectors = 1 << 20) {
        disk = std::make_unique<Disk>(std::make_unique<MemoryImage>(sectors), std::move(model), cfg, stats);
    }
    std::uint64_t counter(const char* name) const { return stats.find_counter(name)->value(); }
    std::vector<std::uint8_t> read(std::uint64_t sector, std::uint32_t n) {
        std::vector<std::uint8_t> out(std::uint64_t{n} * kSectorSize, 0xEE);
        EXPECT_TRUE(disk->submit(rd(sector, n), 0, out.data()).ok);
        return out;
    }
};

TEST(StorageDisk, RefusalsCompleteAtSubmitAndTouchNothing) {
    const std::uint64_t n = 1 << 20;
    struct Row {
        bool read_only;
        StorageRequest req;
        bool null_data;
        StorageError error;
        const char* intent;
    } rows[] = {
        {true, wr(0, 8), false, StorageError::read_only, "write to a read-only disk"},
        {true, fl(), false, StorageError::read_only, "flush of a read-only disk"},
        {true, dc(0, 8), false, StorageError::read_only, "discard on a read-only disk"},
        {true, rd(0, 8), false, StorageError::none, "reads of a read-only disk are fine"},
        {false, rd(n, 1), false, StorageError::out_of_range, "first sector past the end"},
        {false, wr(n - 4, 8), false, StorageError::out_of_range, "range runs past the end"},
        {false, rd(~std::uint64_t{0} - 2, 8), false, StorageError::out_of_range, "sector + n wraps"},
        {false, dc(n - 1, 2), false, StorageError::out_of_range, "discard past the end"},
        {false, wr(0, 0), false, StorageError::bad_request, "zero-length write"},
        {false, rd(0, 8), true, StorageError::bad_request, "read without a buffer"},
        {false, wr(n - 8, 8), false, StorageError::none, "the last 8 sectors are in range"},
    };
    for (const Row& r : rows) {
        for (bool cache : {false, true}) {
            Rig rig({cache, r.read_only}, std::make_unique<RamdiskModel>());
            auto buf = pattern(8, 9);
            auto res = rig.disk->submit(r.req, 777, r.null_data ? nullptr : buf.data());
            EXPECT_EQ(res.ok, r.error == StorageError::none) << r.intent;
            EXPECT_EQ(res.error, r.error) << r.intent << ": " << storage_error_name(res.error);
            EXPECT_EQ(rig.counter("errors"), r.error == StorageError::none ? 0u : 1u) << r.intent;
            if (!res.ok) {
                EXPECT_EQ(res.complete_ps, 777u) << r.intent;
                EXPECT_EQ(buf, pattern(8, 9)) << r.intent << ": buffer untouched";
                EXPECT_EQ(rig.read(0, 8), std::vector<std::uint8_t>(8 * kSectorSize, 0)) << r.intent;
            }
        }
    }
}

// A discard longer than 2^32 sectors is done in full (Linux: blkdev_issue_discard takes a sector_t
// nr_sects): data past the first 2^32 sectors, in the image and in the write cache, reads as zeros.
TEST(StorageDisk, DiscardLongerThanFourGiSectorsDiscardsItAll) {
    const std::uint64_t big = (std::uint64_t{1} << 32) + 16;  // 2 TiB + 8 KiB
    for (bool cache : {false, true}) {
        Rig rig({cache, false}, std::make_unique<RamdiskModel>(), std::uint64_t{1} << 33);
        auto data = pattern(8, 5);
        const std::uint64_t at = (std::uint64_t{1} << 32) + 4;  // past what 32 bits can reach
        ASSERT_TRUE(rig.disk->submit(wr(0, 8), 0, data.data()).ok);
        ASSERT_TRUE(rig.disk->submit(wr(at, 8), 0, data.data()).ok);
        ASSERT_TRUE(rig.disk->submit(wr(big, 8), 0, data.data()).ok);  // just past the discard
        StorageRequest d{StorageOp::discard, 0, 0, 0};
        d.sectors = big;
        ASSERT_TRUE(rig.disk->submit(d, 0, nullptr).ok) << "cache " << cache;
        EXPECT_EQ(rig.read(0, 8), std::vector<std::uint8_t>(8 * kSectorSize, 0)) << "cache " << cache;
        EXPECT_EQ(rig.read(at, 8), std::vector<std::uint8_t>(8 * kSectorSize, 0))
            << "cache " << cache << ": sectors past 2^32 are discarded too";
        EXPECT_EQ(rig.read(big, 8), data) << "cache " << cache << ": the sector after the range is kept";
        rig.disk->power_loss();
        EXPECT_EQ(rig.read(at, 8), std::vector<std::uint8_t>(8 * kSectorSize, 0)) << "cache " << cache;
    }
}

TEST(StorageDisk, WithoutCacheWritesGoThroughTheModelAndAreDurable) {
    Rig rig({false, false}, std::make_unique<RamdiskModel>(RamdiskParams{2 * kUs, 4'096'000'000}));
    auto data = pattern(8, 3);
    auto res = rig.disk->submit(wr(16, 8), 10 * kUs, data.data());
    EXPECT_EQ(res.complete_ps, 13 * kUs);
    EXPECT_EQ(rig.disk->durable_writes(), 1u);
    EXPECT_EQ(rig.disk->cached_writes(), 0u);
    rig.disk->power_loss();
    EXPECT_EQ(rig.read(16, 8), data);
}

// Cache admission at 4.096 GB/s (1 us per 4 KiB) in front of an HDD, so destaging is visibly slow.
DiskConfig cached() { return {true, false, 4'096'000'000, 32u << 11}; }

TEST(StorageDisk, CachedWriteIsFastVisibleAndVolatileUntilFlushed) {
    const std::uint64_t image = 1 << 20;
    Rig rig(cached(), std::make_unique<HddModel>(HddParams{}, image), image);
    auto a = pattern(8, 1), b = pattern(8, 2);
    EXPECT_EQ(rig.disk->submit(wr(0, 8), 0, a.data()).complete_ps, 1 * kUs) << "completes into the cache";
    EXPECT_EQ(rig.disk->submit(wr(image - 8, 8), 0, b.data()).complete_ps, 1 * kUs);
    EXPECT_EQ(rig.disk->cached_writes(), 2u);
    EXPECT_EQ(rig.disk->durable_writes(), 0u);
    std::vector<std::uint8_t> out(8 * kSectorSize);
    EXPECT_EQ(rig.disk->submit(rd(0, 8), 5 * kUs, out.data()).complete_ps, 6 * kUs)
        << "a read wholly in the cache is a hit, at interface speed";
    EXPECT_EQ(out, a);
    EXPECT_EQ(rig.read(image - 8, 8), b) << "cached data is visible at once";
    EXPECT_EQ(rig.counter("cache_hits"), 2u);

    // The flush destages both through the disk: at least a full-stroke seek for the second.
    auto f = rig.disk->submit(fl(), 10 * kUs, nullptr);
    ASSERT_TRUE(f.ok);
    EXPECT_GT(f.complete_ps, 10 * kUs + HddParams{}.full_stroke_seek_ps);
    HddModel ref({}, image);  // the same destage sequence on a fresh disk
    std::uint64_t expect = ref.complete_at_ps(wr(0, 8), 10 * kUs);
    expect = std::max(expect, ref.complete_at_ps(wr(image - 8, 8), 10 * kUs));
    EXPECT_EQ(f.complete_ps, expect) << "the flush completes when the last prior write is durable";
    EXPECT_EQ(rig.disk->durable_writes(), 2u);
    EXPECT_EQ(rig.disk->cached_writes(), 0u);
    EXPECT_EQ(rig.counter("destaged_writes"), 2u);
}

TEST(StorageDisk, PowerLossKeepsExactlyTheFlushedWrites) {
    // Each row: a sequence of steps; then power fails and every sector is checked.
    enum Kind { W, WF, F, D };  // cached write, FUA write, flush, discard
    struct Step {
        Kind kind;
        std::uint64_t sector;
        std::uint8_t seed;
    };
    struct Row {
        std::vector<Step> steps;
        std::vector<std::pair<std::uint64_t, std::uint8_t>> after;  // sector -> seed, 0 = zeros
        std::uint64_t durable, lost;
        const char* intent;
    } rows[] = {
        {{{W, 0, 1}}, {{0, 0}}, 0, 1, "an unflushed write is lost"},
        {{{W, 0, 1}, {F, 0, 0}}, {{0, 1}}, 1, 0, "a flushed write survives"},
        {{{W, 0, 1}, {F, 0, 0}, {W, 0, 2}}, {{0, 1}}, 1, 1, "an overwrite after the flush is lost"},
        {{{W, 0, 1}, {W, 8, 2}, {F, 0, 0}, {W, 16, 3}},
         {{0, 1}, {8, 2}, {16, 0}},
         2,
         1,
         "the flush covers every write before it, none after"},
        {{{W, 0, 1}, {WF, 8, 2}}, {{0, 0}, {8, 2}}, 1, 1, "FUA makes only its own write durable"},
        {{{W, 0, 1}, {WF, 0, 2}, {F, 0, 0}},
         {{0, 2}},
         2,
         0,
         "an older cached write destaged later does not overwrite the FUA data"},
        {{{W, 0, 1}, {D, 0, 0}, {F, 0, 0}}, {{0, 0}}, 1, 0, "a discard supersedes cached data"},
        {{{W, 0, 1}, {F, 0, 0}, {W, 0, 2}, {F, 0, 0}, {W, 0, 3}}, {{0, 2}}, 2, 1, "the last flush wins"},
    };
    for (const Row& r : rows) {
        Rig rig(cached(), std::make_unique<SsdModel>());
        std::uint64_t t = 0;
        for (const Step& s : r.steps) {
            auto data = pattern(8, s.seed);
            StorageRequest req = s.kind == W    ? wr(s.sector, 8)
                                 : s.kind == WF ? wr(s.sector, 8, true)
                                 : s.kind == F  ? fl()
                                                : dc(s.sector, 8);
            auto res = rig.disk->submit(req, t, data.data());
            ASSERT_TRUE(res.ok) << r.intent;
            t = res.complete_ps;
        }
        EXPECT_EQ(rig.disk->durable_writes(), r.durable) << r.intent;
        EXPECT_EQ(rig.disk->cached_writes(), r.lost) << r.intent;
        rig.disk->power_loss();
        EXPECT_EQ(rig.disk->cached_writes(), 0u);
        for (auto [sector, seed] : r.after) {
            auto want = seed ? pattern(8, seed) : std::vector<std::uint8_t>(8 * kSectorSize, 0);
            EXPECT_EQ(rig.read(sector, 8), want) << r.intent << ": sector " << sector;
        }
    }
}

TEST(StorageDisk, FlushWaitsForEveryPriorWriteOnTheDevice) {
    // Without the cache, the flush still waits for writes the device has not finished.
    Rig rig({false, false}, std::make_unique<SsdModel>(wave_ssd(4)));
    auto data = pattern(8, 1);
    std::uint64_t last = 0;
    for (int i = 0; i < 6; ++i)
        last = std::max(last, rig.disk->submit(wr(8 * i, 8), 0, data.data()).complete_ps);
    EXPECT_EQ(rig.disk->submit(fl(), 0, nullptr).complete_ps, last);
}

TEST(StorageDisk, CacheOverflowForcesADestage) {
    DiskConfig cfg = cached();
    cfg.cache_capacity_sectors = 16;
    Rig rig(cfg, std::make_unique<RamdiskModel>(RamdiskParams{2 * kUs, 4'096'000'000}));
    auto data = pattern(8, 1);
    EXPECT_EQ(rig.disk->submit(wr(0, 8), 0, data.data()).complete_ps, 1 * kUs);
    EXPECT_EQ(rig.disk->submit(wr(8, 8), 0, data.data()).complete_ps, 1 * kUs);
    EXPECT_EQ(rig.disk->durable_writes(), 0u);
    EXPECT_EQ(rig.disk->submit(wr(16, 8), 0, data.data()).complete_ps, 3 * kUs + 1 * kUs)
        << "destage of two writes (3 us each, in parallel on a ramdisk), then admission";
    EXPECT_EQ(rig.disk->durable_writes(), 2u);
    EXPECT_EQ(rig.disk->cached_writes(), 1u);
    EXPECT_EQ(rig.disk->submit(wr(0, 32), 0, pattern(32, 2).data()).complete_ps, 2 * kUs + 4 * kUs)
        << "a write larger than the cache goes straight through";
    rig.disk->power_loss();
    EXPECT_EQ(rig.read(0, 32), pattern(32, 2)) << "and is durable, superseding the cached one";
}

TEST(StorageDisk, StatsCountRequestsAndBytes) {
    Rig rig(cached());
    auto data = pattern(8, 1);
    rig.disk->submit(wr(0, 8), 0, data.data());
    rig.disk->submit(rd(0, 8), 0, data.data());
    rig.disk->submit(rd(8, 4), 0, data.data());
    rig.disk->submit(fl(), 0, nullptr);
    rig.disk->submit(dc(0, 8), 0, nullptr);
    rig.disk->submit(rd(1 << 20, 1), 0, data.data());
    EXPECT_EQ(rig.counter("writes"), 1u);
    EXPECT_EQ(rig.counter("reads"), 2u);
    EXPECT_EQ(rig.counter("flushes"), 1u);
    EXPECT_EQ(rig.counter("discards"), 1u);
    EXPECT_EQ(rig.counter("bytes_written"), 4096u);
    EXPECT_EQ(rig.counter("bytes_read"), 6144u);
    EXPECT_EQ(rig.counter("cache_hits"), 1u);
    EXPECT_EQ(rig.counter("errors"), 1u);
}

TEST(StorageDisk, SameSequenceGivesTheSameTimes) {
    auto run = [](int kind) {
        const std::uint64_t image = 1 << 22;
        std::unique_ptr<ServiceModel> m;
        if (kind == 0) m = std::make_unique<HddModel>(HddParams{}, image);
        if (kind == 1) m = std::make_unique<SsdModel>();
        if (kind == 2) m = std::make_unique<RamdiskModel>();
        Rig rig(kind == 0 ? cached() : DiskConfig{}, std::move(m), image);
        std::vector<std::uint64_t> times;
        std::uint64_t x = 7, t = 0;
        auto buf = pattern(64, 5);
        for (int i = 0; i < 200; ++i) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            std::uint32_t n = 1 + (x >> 58);
            std::uint64_t sector = (x >> 20) % (image - n);
            StorageRequest req = (x >> 8) % 7 == 0 ? fl() : (x >> 8) % 2 ? wr(sector, n) : rd(sector, n);
            t += (x >> 40) % (200 * kUs);
            times.push_back(rig.disk->submit(req, t, buf.data()).complete_ps);
        }
        return times;
    };
    for (int kind : {0, 1, 2}) EXPECT_EQ(run(kind), run(kind)) << "model " << kind;
}

}  // namespace
}  // namespace xensim
