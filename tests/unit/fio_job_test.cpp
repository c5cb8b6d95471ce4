#include "frontends/fio_job.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace xensim {
namespace {

using Rw = FioJobParams::Rw;
using Io = FioJob::Io;
using Buf = std::vector<std::uint8_t>;

constexpr std::uint64_t kMiB = 1024 * 1024;

FioJobParams params(Rw rw, std::uint64_t size, std::uint32_t bs = 4096) {
    FioJobParams p;
    p.rw = rw;
    p.size = size;
    p.bs = bs;
    return p;
}

// Issues I/Os one at a time at now = 0, completing each at once; returns the issued I/Os.
std::vector<Io> drain(FioJob& job, std::uint64_t now = 0) {
    std::vector<Io> ios;
    while (auto io = job.next(now)) {
        ios.push_back(*io);
        job.completed(*io);
    }
    return ios;
}

std::vector<std::uint64_t> offsets(const std::vector<Io>& ios) {
    std::vector<std::uint64_t> v;
    for (const auto& io : ios) v.push_back(io.offset);
    return v;
}

// A disk that stores what is written; unwritten blocks read as zeros.
struct FakeDisk {
    std::map<std::uint64_t, Buf> blocks;
    std::vector<std::uint64_t> read_offsets;
    // Runs the job to the end at iodepth 1, checking every read; returns the failure messages.
    std::vector<std::string> run(FioJob& job) {
        std::vector<std::string> failures;
        while (auto io = job.next(0)) {
            Buf buf(io->length);
            if (io->write) {
                job.fill(*io, buf.data());
                blocks[io->offset] = buf;
            } else {
                read_offsets.push_back(io->offset);
                auto it = blocks.find(io->offset);
                if (it != blocks.end()) buf = it->second;
                if (auto msg = job.check(*io, buf.data()); !msg.empty()) failures.push_back(msg);
            }
            job.completed(*io);
        }
        return failures;
    }
};

Io read_of(std::uint64_t offset, std::uint32_t length, std::uint64_t seq = 1000) {
    Io io;
    io.offset = offset;
    io.length = length;
    io.write = false;
    io.seq = seq;
    return io;
}

TEST(Crc32c, MatchesTheCastagnoliCheckValue) {
    const std::string s = "123456789";  // RFC 3720 B.4 / the CRC catalogue's check input
    EXPECT_EQ(crc32c(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()), 0xE3069283u);
}

TEST(FioJob, SequentialReadCoversTheRegionInOrderOnceThenStops) {
    auto p = params(Rw::read, 8 * 4096);
    p.offset = 2 * 4096;
    FioJob job(p, 0, kMiB);
    auto ios = drain(job);
    ASSERT_EQ(ios.size(), 8u);
    for (std::size_t i = 0; i < ios.size(); ++i) {
        EXPECT_EQ(ios[i].offset, 2 * 4096 + i * 4096) << i;
        EXPECT_EQ(ios[i].length, 4096u);
        EXPECT_FALSE(ios[i].write);
        EXPECT_EQ(ios[i].seq, i);
    }
    EXPECT_TRUE(job.finished());
    EXPECT_EQ(job.counters().reads, 8u);
    EXPECT_EQ(job.counters().bytes_read, 8u * 4096);
    EXPECT_EQ(job.counters().writes, 0u);
}

TEST(FioJob, SizeZeroMeansTheRestOfTheDeviceAndATrailingPartialBlockIsSkipped) {
    auto p = params(Rw::write, 0);
    p.offset = 4096;
    FioJob job(p, 0, 4 * 4096 + 512);
    auto ios = drain(job);
    EXPECT_EQ(offsets(ios), (std::vector<std::uint64_t>{4096, 8192, 12288}));
    for (const auto& io : ios) EXPECT_TRUE(io.write);
}

TEST(FioJob, TimeBasedSequentialWrapsToTheRegionStartUntilRuntime) {
    auto p = params(Rw::read, 4 * 4096);
    p.time_based = true;
    p.runtime_ns = 100;
    FioJob job(p, 0, kMiB);
    std::vector<std::uint64_t> seen;
    for (std::uint64_t now = 0; now < 10; ++now) {
        auto io = job.next(now);
        ASSERT_TRUE(io);
        seen.push_back(io->offset);
        job.completed(*io);
    }
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{0, 4096, 8192, 12288, 0, 4096, 8192, 12288, 0, 4096}));
    EXPECT_FALSE(job.next(100));
    EXPECT_TRUE(job.finished());
}

TEST(FioJob, RandreadIsAlignedInsideTheRegionAndCoversEveryBlockOnce) {
    auto p = params(Rw::randread, 64 * 4096);
    p.offset = 1024 * 4096;
    FioJob job(p, 0, 16 * kMiB);
    auto offs = offsets(drain(job));
    ASSERT_EQ(offs.size(), 64u);
    for (auto o : offs) {
        EXPECT_EQ(o % 4096, 0u);
        EXPECT_GE(o, p.offset);
        EXPECT_LT(o, p.offset + p.size);
    }
    EXPECT_EQ(std::set<std::uint64_t>(offs.begin(), offs.end()).size(), 64u);  // the random map
    EXPECT_FALSE(std::is_sorted(offs.begin(), offs.end()));                    // but not in order
    EXPECT_TRUE(job.finished());
}

TEST(FioJob, NorandommapRepeatsBlocksAndStillStopsAfterSizeBytes) {
    auto p = params(Rw::randread, 64 * 4096);
    p.norandommap = true;
    FioJob job(p, 0, kMiB);
    auto offs = offsets(drain(job));
    ASSERT_EQ(offs.size(), 64u);
    EXPECT_LT(std::set<std::uint64_t>(offs.begin(), offs.end()).size(), 64u);
}

// The sparse random map holds the same bits as the dense one: the same takes give the same blocks,
// through full passes and clears (fio's axmap semantics: the block, else the next free, wrapping).
TEST(FioRandomMap, SparseAndDenseTakeTheSameBlocks) {
    const std::uint64_t blocks = 10'000;  // not a multiple of 64: the last word is partial
    FioRandomMap dense(blocks, false), sparse(blocks, true);
    ASSERT_FALSE(dense.sparse());
    ASSERT_TRUE(sparse.sparse());
    std::mt19937_64 rng(5);
    for (int pass = 0; pass < 2; ++pass) {
        std::set<std::uint64_t> seen;
        for (std::uint64_t i = 0; i < blocks; ++i) {
            std::uint64_t b = rng() % blocks;
            std::uint64_t d = dense.take(b);
            ASSERT_EQ(sparse.take(b), d) << "pass " << pass << " take " << i;
            ASSERT_TRUE(seen.insert(d).second) << "no block twice in a pass";
        }
        EXPECT_EQ(dense.used(), blocks);
        EXPECT_EQ(sparse.used(), blocks);
        dense.clear();
        sparse.clear();
    }
    EXPECT_EQ(sparse.words_held(), 0u) << "a cleared sparse map holds nothing";
    EXPECT_FALSE(FioRandomMap::for_region(FioRandomMap::kDenseBlocks).sparse());
    EXPECT_TRUE(FioRandomMap::for_region(FioRandomMap::kDenseBlocks + 1).sparse());
}

// The schema's largest disk (2^40 sectors) at bs=512 is 2^40 blocks: a dense map would be 128 GiB.
// The sparse one holds a word per used block at most, and the job still never repeats a block.
TEST(FioJob, RandomMapOfTheLargestDiskFollowsTheIOsIssued) {
    auto p = params(Rw::randread, 0, 512);
    p.number_ios = 100'000;
    FioJob job(p, 0, std::uint64_t{1} << 49);
    auto offs = offsets(drain(job));
    ASSERT_EQ(offs.size(), 100'000u);
    EXPECT_EQ(std::set<std::uint64_t>(offs.begin(), offs.end()).size(), offs.size());
    for (auto o : offs) ASSERT_EQ(o % 512, 0u);
    FioRandomMap map = FioRandomMap::for_region(std::uint64_t{1} << 40);
    std::mt19937_64 rng(1);
    for (int i = 0; i < 1000; ++i) map.take(rng() % map.blocks());
    EXPECT_LE(map.words_held(), 1000u);
}

std::vector<std::uint64_t> random_stream(std::uint64_t seed, unsigned job_index, unsigned numjobs = 1) {
    auto p = params(Rw::randread, 4096 * 4096);
    p.seed = seed;
    p.numjobs = numjobs;
    p.number_ios = 200;
    FioJob job(p, job_index, 64 * kMiB);
    return offsets(drain(job));
}

TEST(FioJob, TheSameSeedGivesTheSameRandomStreamAndAnotherSeedAnother) {
    auto a = random_stream(42, 0);
    ASSERT_EQ(a.size(), 200u);
    EXPECT_EQ(a, random_stream(42, 0));
    EXPECT_NE(a, random_stream(43, 0));
}

TEST(FioJob, ClonesShareTheRegionButNotTheRandomStream) {
    auto j0 = random_stream(7, 0, 2), j1 = random_stream(7, 1, 2);
    ASSERT_EQ(j0.size(), 200u);
    EXPECT_NE(j0, j1);
    auto p = params(Rw::read, 4 * 4096);
    p.numjobs = 2;
    EXPECT_EQ(FioJob(p, 0, kMiB).region_start(), FioJob(p, 1, kMiB).region_start());
    p.offset_increment = 64 * 1024;  // fio's way to give each clone its own region
    FioJob second(p, 1, kMiB);
    EXPECT_EQ(second.region_start(), 64u * 1024);
    EXPECT_EQ(drain(second).front().offset, 64u * 1024);
}

TEST(FioJob, RandrwHonoursRwmixreadAndUsesASeparateStreamForDirection) {
    for (unsigned mix : {70u, 25u}) {
        auto p = params(Rw::randrw, 20000 * 512, 512);
        p.rwmixread = mix;
        p.norandommap = true;
        FioJob job(p, 0, 64 * kMiB);
        auto ios = drain(job);
        ASSERT_EQ(ios.size(), 20000u);
        double reads =
            static_cast<double>(std::count_if(ios.begin(), ios.end(), [](auto& io) { return !io.write; }));
        EXPECT_NEAR(reads / ios.size(), mix / 100.0, 0.03) << "rwmixread=" << mix;
        EXPECT_EQ(job.counters().reads + job.counters().writes, 20000u);
    }
    // The offsets do not depend on the mix (fio keeps offset and rwmix random states apart).
    auto p = params(Rw::randrw, 256 * 4096);
    p.number_ios = 100;
    p.rwmixread = 10;
    FioJob a(p, 0, kMiB);
    p.rwmixread = 90;
    FioJob b(p, 0, kMiB);
    EXPECT_EQ(offsets(drain(a)), offsets(drain(b)));
}

TEST(FioJob, NumberIosStopsTheJobEarlyButNeverExtendsIt) {
    auto p = params(Rw::write, 8 * 4096);
    p.number_ios = 5;
    FioJob early(p, 0, kMiB);
    EXPECT_EQ(drain(early).size(), 5u);
    EXPECT_TRUE(early.finished());
    p.number_ios = 20;
    FioJob capped(p, 0, kMiB);
    EXPECT_EQ(drain(capped).size(), 8u);
}

TEST(FioJob, RuntimeCountsFromTheFirstNext) {
    auto p = params(Rw::randread, 1024 * 4096);
    p.runtime_ns = 1000;
    FioJob job(p, 0, 16 * kMiB);
    auto a = job.next(500);
    ASSERT_TRUE(a);
    job.completed(*a);
    auto b = job.next(1499);
    ASSERT_TRUE(b);
    job.completed(*b);
    EXPECT_FALSE(job.next(1500));
    EXPECT_TRUE(job.finished());
    EXPECT_EQ(job.counters().ios, 2u);
}

TEST(FioJob, IodepthBoundsTheI_OsInFlight) {
    auto p = params(Rw::read, 16 * 4096);
    p.iodepth = 3;
    FioJob job(p, 0, kMiB);
    std::vector<Io> ios;
    while (auto io = job.next(0)) ios.push_back(*io);
    ASSERT_EQ(ios.size(), 3u);
    EXPECT_FALSE(job.finished());
    EXPECT_EQ(job.in_flight(), 3u);
    job.completed(ios[1]);
    auto more = job.next(0);
    ASSERT_TRUE(more);
    EXPECT_EQ(more->offset, 3u * 4096);
}

TEST(FioJobVerify, WrittenBlocksAreReadBackInOffsetOrderAndAllPass) {
    auto p = params(Rw::randwrite, 16 * 4096);
    p.verify = FioJobParams::Verify::crc32c;
    FioJob job(p, 0, kMiB);
    FakeDisk disk;
    auto failures = disk.run(job);
    EXPECT_TRUE(failures.empty()) << failures.front();
    const auto& c = job.counters();
    EXPECT_EQ(c.writes, 16u);
    EXPECT_EQ(c.verify_reads, 16u);
    EXPECT_EQ(c.verified, 16u);
    EXPECT_EQ(c.verify_failures, 0u);
    EXPECT_TRUE(job.finished());
    ASSERT_EQ(disk.read_offsets.size(), 16u);
    EXPECT_TRUE(std::is_sorted(disk.read_offsets.begin(), disk.read_offsets.end()));
}

TEST(FioJobVerify, WithoutVerifyOrWithoutDoVerifyThereIsNoReadBack) {
    auto p = params(Rw::write, 4 * 4096);
    FioJob plain(p, 0, kMiB);
    EXPECT_EQ(drain(plain).size(), 4u);
    p.verify = FioJobParams::Verify::crc32c;
    p.do_verify = false;
    FioJob no_phase(p, 0, kMiB);
    EXPECT_EQ(drain(no_phase).size(), 4u);
}

TEST(FioJobVerify, TheVerifyPhaseWaitsForWritesInFlight) {
    auto p = params(Rw::write, 2 * 4096);
    p.verify = FioJobParams::Verify::crc32c;
    p.iodepth = 4;
    FioJob job(p, 0, kMiB);
    auto w0 = job.next(0), w1 = job.next(0);
    ASSERT_TRUE(w0 && w1);
    EXPECT_FALSE(job.next(0));  // writes done issuing; the phase waits for them to land
    job.completed(*w0);
    EXPECT_FALSE(job.next(0));
    EXPECT_FALSE(job.finished());
    job.completed(*w1);
    auto r = job.next(0);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->write);
    EXPECT_TRUE(r->verify_read);
    EXPECT_EQ(r->offset, 0u);
}

TEST(FioJobVerify, CorruptionOnTheDiskFailsTheRunNamingTheBlock) {
    auto p = params(Rw::write, 8 * 4096);
    p.verify = FioJobParams::Verify::crc32c;
    FioJob job(p, 0, kMiB);
    FakeDisk disk;
    // Write phase only, then corrupt one block, then let the verify phase read back.
    for (int i = 0; i < 8; ++i) {
        auto io = job.next(0);
        ASSERT_TRUE(io && io->write);
        Buf buf(io->length);
        job.fill(*io, buf.data());
        disk.blocks[io->offset] = buf;
        job.completed(*io);
    }
    disk.blocks[5 * 4096][1000] ^= 0x01;
    auto failures = disk.run(job);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_NE(failures[0].find("job 0 block at offset 20480"), std::string::npos) << failures[0];
    EXPECT_NE(failures[0].find("data checksum mismatch"), std::string::npos) << failures[0];
    EXPECT_EQ(job.first_failure(), failures[0]);
    EXPECT_EQ(job.counters().verify_failures, 1u);
    EXPECT_EQ(job.counters().verified, 7u);
}

// A one-block region written over and over: the block's writes are (seq 0, seq 1, ...).
struct OneBlock : ::testing::Test {
    OneBlock() : job(one_block_params(), 0, kMiB) {}
    static FioJobParams one_block_params() {
        auto p = params(Rw::write, 4096);
        p.verify = FioJobParams::Verify::crc32c;
        p.time_based = true;
        p.runtime_ns = 1'000'000;
        return p;
    }
    Buf write_and_complete() {
        auto io = job.next(0);
        EXPECT_TRUE(io && io->write);
        Buf buf(4096);
        job.fill(*io, buf.data());
        job.completed(*io);
        return buf;
    }
    FioJob job;
};

TEST_F(OneBlock, FillThenCheckPasses) {
    Buf buf = write_and_complete();
    EXPECT_EQ(job.check(read_of(0, 4096), buf.data()), "");
    EXPECT_EQ(job.counters().verified, 1u);
}

TEST_F(OneBlock, AFlippedByteFailsNamingTheBlock) {
    Buf good = write_and_complete();
    struct Case {
        std::size_t byte;
        const char* expect;
    } cases[] = {
        {0, "bad magic"},                  // fio's 0xacca
        {20, "header checksum mismatch"},  // numberio field, caught by the header crc
        {48, "data checksum mismatch"},    // first payload byte
        {4095, "data checksum mismatch"},  // last payload byte
    };
    for (const auto& c : cases) {
        Buf bad = good;
        bad[c.byte] ^= 0x80;
        auto msg = job.check(read_of(0, 4096), bad.data());
        EXPECT_NE(msg.find("job 0 block at offset 0 (length 4096)"), std::string::npos) << msg;
        EXPECT_NE(msg.find(c.expect), std::string::npos) << "byte " << c.byte << ": " << msg;
    }
    EXPECT_EQ(job.counters().verify_failures, 4u);
}

TEST_F(OneBlock, ABlockWrittenTwiceIsCheckedAgainstTheSecondWriteAndStaleDataFails) {
    Buf first = write_and_complete();
    Buf second = write_and_complete();
    EXPECT_NE(first, second);
    EXPECT_EQ(job.check(read_of(0, 4096), second.data()), "");
    auto msg = job.check(read_of(0, 4096), first.data());
    EXPECT_NE(msg.find("stale data: header numberio 0 != last completed write's numberio 1"),
              std::string::npos)
        << msg;
}

TEST(FioJobVerify, AMisdirectedBlockIsNamedByBothOffsets) {
    auto p = params(Rw::write, 32 * 4096);
    p.verify = FioJobParams::Verify::crc32c;
    FioJob job(p, 0, kMiB);
    std::map<std::uint64_t, Buf> bufs;
    for (auto io = job.next(0); io && io->write; io = job.next(0)) {
        Buf b(4096);
        job.fill(*io, b.data());
        bufs[io->offset] = b;
        job.completed(*io);
        if (io->offset == 81920) break;
    }
    auto msg = job.check(read_of(81920, 4096), bufs.at(73728).data());
    EXPECT_EQ(msg, "job 0 block at offset 81920 (length 4096): header offset 73728 != 81920");
}

TEST(FioJobVerify, ABlockFromAnotherJobFails) {
    auto p = params(Rw::write, 4 * 4096);
    p.verify = FioJobParams::Verify::crc32c;
    p.numjobs = 2;
    FioJob a(p, 0, kMiB), b(p, 1, kMiB);
    auto wa = a.next(0), wb = b.next(0);
    Buf ba(4096), bb(4096);
    a.fill(*wa, ba.data());
    b.fill(*wb, bb.data());
    a.completed(*wa);
    b.completed(*wb);
    EXPECT_EQ(a.check(read_of(0, 4096), ba.data()), "");
    EXPECT_NE(a.check(read_of(0, 4096), bb.data()).find("header job 1 != 0"), std::string::npos);
}

TEST(FioJobVerify, ReadsOfBlocksNeverWrittenAreNotChecked) {
    auto p = params(Rw::randrw, 4 * 4096);
    p.verify = FioJobParams::Verify::crc32c;
    FioJob job(p, 0, kMiB);
    Buf garbage(4096, 0x5a);
    EXPECT_EQ(job.check(read_of(8192, 4096), garbage.data()), "");
    EXPECT_EQ(job.counters().unverified, 1u);
    EXPECT_EQ(job.counters().verify_failures, 0u);
}

TEST(FioJobVerify, AReadThatRacedAWriteToItsBlockIsNotCheckedButALaterOneIs) {
    auto p = params(Rw::rw, 4096);  // sequential mixed over one block: every I/O hits offset 0
    p.verify = FioJobParams::Verify::crc32c;
    p.time_based = true;
    p.runtime_ns = 1'000'000;
    p.iodepth = 64;
    FioJob job(p, 0, kMiB);
    std::optional<Io> w, racing;
    while (!racing) {
        auto io = job.next(0);
        ASSERT_TRUE(io);
        if (io->write && !w)
            w = io;
        else if (!io->write && w)
            racing = io;
        else
            job.completed(*io);  // reads before the write; writes after it (unfilled, never checked)
    }
    Buf wbuf(4096);
    job.fill(*w, wbuf.data());
    job.completed(*w);
    Buf garbage(4096, 0xee);
    EXPECT_EQ(job.check(*racing, garbage.data()), "");
    job.completed(*racing);
    // Nothing is in flight now; a read issued after a lone write completed is checked.
    ASSERT_EQ(job.in_flight(), 0u);
    EXPECT_GE(job.counters().unverified, 1u);
    auto before = job.counters().verify_failures;
    Buf last(4096);
    bool wrote = false;
    for (;;) {
        auto io = job.next(0);
        ASSERT_TRUE(io);
        if (io->write) {
            job.fill(*io, last.data());
            wrote = true;
        } else if (wrote) {
            EXPECT_NE(job.check(*io, garbage.data()), "");
            EXPECT_EQ(job.check(*io, last.data()), "");
            job.completed(*io);
            break;
        }
        job.completed(*io);
    }
    EXPECT_EQ(job.counters().verify_failures, before + 1);
}

TEST(FioJobParams, InvalidParametersAreRejectedWithTheirName) {
    struct Case {
        const char* intent;
        void (*edit)(FioJobParams&);
        unsigned job_index;
        const char* expect;
    } cases[] = {
        {"bs not a sector multiple", [](FioJobParams& p) { p.bs = 1000; }, 0, "bs (1000) must be"},
        {"bs zero", [](FioJobParams& p) { p.bs = 0; }, 0, "bs (0) must be"},
        {"bs larger than the region", [](FioJobParams& p) { p.size = 2048; }, 0, "larger than the region"},
        {"iodepth zero", [](FioJobParams& p) { p.iodepth = 0; }, 0, "iodepth"},
        {"numjobs zero", [](FioJobParams& p) { p.numjobs = 0; }, 0, "numjobs"},
        {"job index beyond numjobs", [](FioJobParams& p) { p.numjobs = 2; }, 2, "job index 2"},
        {"rwmixread over 100", [](FioJobParams& p) { p.rwmixread = 101; }, 0, "rwmixread"},
        {"offset unaligned", [](FioJobParams& p) { p.offset = 100; }, 0, "offset (100)"},
        {"region past the device", [](FioJobParams& p) { p.offset = kMiB - 4096; }, 0, "exceeds the device"},
        {"offset past the device", [](FioJobParams& p) { p.offset = 2 * kMiB; }, 0, "not inside the device"},
        {"offset_increment past the device",
         [](FioJobParams& p) {
             p.numjobs = 4;
             p.offset_increment = kMiB / 2;
         },
         3, "not inside the device"},
        {"time_based without runtime", [](FioJobParams& p) { p.time_based = true; }, 0, "time_based"},
    };
    for (const auto& c : cases) {
        auto p = params(Rw::randrw, 64 * 1024);
        c.edit(p);
        try {
            FioJob job(p, c.job_index, kMiB);
            ADD_FAILURE() << c.intent << ": accepted";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
                << c.intent << ": " << e.what();
        }
    }
    EXPECT_NO_THROW(FioJob(params(Rw::randrw, 64 * 1024), 0, kMiB));
}

TEST(FioJobParams, FioSpellingsParse) {
    EXPECT_EQ(FioJobParams::parse_rw("randrw"), Rw::randrw);
    EXPECT_EQ(FioJobParams::parse_rw("readwrite"), Rw::rw);
    EXPECT_EQ(FioJobParams::parse_rw("randread"), Rw::randread);
    EXPECT_STREQ(to_string(Rw::randwrite), "randwrite");
    EXPECT_THROW(FioJobParams::parse_rw("trim"), std::invalid_argument);
    EXPECT_EQ(FioJobParams::parse_verify("crc32c"), FioJobParams::Verify::crc32c);
    EXPECT_EQ(FioJobParams::parse_verify("0"), FioJobParams::Verify::none);
    EXPECT_THROW(FioJobParams::parse_verify("md5"), std::invalid_argument);
    // fio's sync=: none/0, sync/1 (O_SYNC), dsync (O_DSYNC).
    EXPECT_EQ(FioJobParams::parse_sync("none"), FioJobParams::Sync::none);
    EXPECT_EQ(FioJobParams::parse_sync("0"), FioJobParams::Sync::none);
    EXPECT_EQ(FioJobParams::parse_sync("1"), FioJobParams::Sync::sync);
    EXPECT_EQ(FioJobParams::parse_sync("sync"), FioJobParams::Sync::sync);
    EXPECT_EQ(FioJobParams::parse_sync("dsync"), FioJobParams::Sync::dsync);
    EXPECT_THROW(FioJobParams::parse_sync("fsync"), std::invalid_argument);
}

}  // namespace
}  // namespace xensim
