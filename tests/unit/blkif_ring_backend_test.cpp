// The ring side of blkback, driven by a frontend that plays by the rules and by one that does not.
// The test is the frontend: it initialises the shared ring (SHARED_RING_INIT / FRONT_RING_ATTACH),
// fills requests with RING_GET_REQUEST and publishes them with RING_PUSH_REQUESTS, and reads the
// backend's answers with RING_GET_RESPONSE — the same macros blkfront uses on the same memory.
// Expected statuses follow Linux drivers/block/xen-blkback/blkback.c (the function behind each row
// is named in its intent) and blkif.h; deliberate differences are those listed in the header.
#include "models/dom0/blkif_ring_backend.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

namespace xensim {
namespace {

constexpr std::uint64_t kDiskSectors = 1 << 20;  // 512 MiB

// A shared ring of 2^order pages, a frontend on it and the backend under test.
struct Rig {
    std::vector<std::uint64_t> memory;  // the "granted" pages, mapped contiguously
    blkif_sring* sring;
    blkif_front_ring_t front{};
    StatsGroup stats{"vbd768"};
    std::unique_ptr<BlkifRingBackend> back;

    explicit Rig(BlkifBackendConfig cfg = config(), RING_IDX start = 0)
        : memory((std::size_t{4096} << cfg.ring_page_order) / sizeof(std::uint64_t)),
          sring(reinterpret_cast<blkif_sring*>(memory.data())) {
        SHARED_RING_INIT(sring);
        sring->req_prod = sring->rsp_prod = start;
        sring->rsp_event = start + 1;
        FRONT_RING_ATTACH(&front, sring, start, std::size_t{4096} << cfg.ring_page_order);
        back = std::make_unique<BlkifRingBackend>(sring, cfg, stats);
    }

    static BlkifBackendConfig config() {
        BlkifBackendConfig cfg;
        cfg.disk_sectors = kDiskSectors;
        return cfg;
    }

    // The next free request slot, zeroed, as blkfront's RING_GET_REQUEST(req_prod_pvt++).
    blkif_request_t& next() {
        blkif_request_t* r = RING_GET_REQUEST(&front, front.req_prod_pvt);
        front.req_prod_pvt++;
        std::memset(r, 0, sizeof(*r));
        return *r;
    }
    bool push() {
        int notify = 0;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
        return notify != 0;
    }
    std::vector<blkif_response_t> responses() {
        std::vector<blkif_response_t> out;
        RING_IDX rp = sring->rsp_prod;
        for (; front.rsp_cons != rp; front.rsp_cons++)
            out.push_back(*RING_GET_RESPONSE(&front, front.rsp_cons));
        return out;
    }
    std::uint64_t rejected(const char* reason) const { return stats.find_family("rejected")->value(reason); }
    std::uint64_t counter(const char* name) const { return stats.find_counter(name)->value(); }
};

// Frontend helpers for the three request layouts.
void rw(blkif_request_t& r, std::uint8_t op, std::uint64_t id, std::uint64_t sector, unsigned nseg,
        std::uint8_t first = 0, std::uint8_t last = 7) {
    r.operation = op;
    r.id = id;
    r.sector_number = sector;
    r.handle = 768;
    r.nr_segments = std::uint8_t(nseg);
    for (unsigned i = 0; i < nseg && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; ++i)
        r.seg[i] = {grant_ref_t(100 + i), first, last};
}
void discard(blkif_request_t& r, std::uint64_t id, std::uint64_t sector, std::uint64_t nr) {
    auto* d = reinterpret_cast<blkif_request_discard_t*>(&r);
    d->operation = BLKIF_OP_DISCARD;
    d->id = id;
    d->sector_number = sector;
    d->nr_sectors = nr;
    d->handle = 768;
}
void indirect(blkif_request_t& r, std::uint8_t iop, std::uint64_t id, std::uint64_t sector, unsigned nseg) {
    auto* in = reinterpret_cast<blkif_request_indirect_t*>(&r);
    in->operation = BLKIF_OP_INDIRECT;
    in->indirect_op = iop;
    in->nr_segments = std::uint16_t(nseg);
    in->id = id;
    in->sector_number = sector;
    in->handle = 768;
    for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; ++i) in->indirect_grefs[i] = 900 + i;
}

TEST(BlkifRingBackend, RingGeometry) {
    // blkif: 112-byte slots behind a 64-byte header, rounded down to a power of two.
    EXPECT_EQ(sizeof(blkif_request_t), 112u);
    EXPECT_EQ(BlkifRingBackend::ring_size(0), 32u);
    EXPECT_EQ(BlkifRingBackend::ring_size(1), 64u);
    EXPECT_EQ(BlkifRingBackend::ring_size(2), 128u);
    EXPECT_EQ(BlkifRingBackend::ring_size(4), 512u);
    EXPECT_EQ(BlkifRingBackend::kSegsPerIndirectFrame, 512u);
    EXPECT_EQ(BlkifRingBackend::indirect_pages(512), 1u);
    EXPECT_EQ(BlkifRingBackend::indirect_pages(513), 2u);
    Rig rig;
    EXPECT_EQ(rig.back->size(), 32u);
}

// ---------------------------------------------------------------------------------------------
// A misbehaving frontend: one request per row, answered at once.

struct BadRow {
    const char* intent;
    std::function<void(BlkifBackendConfig&)> configure;
    std::function<void(blkif_request_t&)> fill;
    BlkbackVerdict verdict;
    std::int16_t status;
    std::uint8_t rsp_operation;
    const char* reason;
};

const std::uint8_t kOpDiscard = BLKIF_OP_DISCARD;

const BadRow kBadRows[] = {
    {"dispatch_rw_block_io: READ with nr_segments 0", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_READ, 1, 0, 0); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     BLKIF_OP_READ, "bad_nr_segments"},
    {"dispatch_rw_block_io: READ with nr_segments 12 > BLKIF_MAX_SEGMENTS_PER_REQUEST", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_READ, 2, 0, 12); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     BLKIF_OP_READ, "bad_nr_segments"},
    {"dispatch_rw_block_io: WRITE with nr_segments 0", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_WRITE, 3, 0, 0); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     BLKIF_OP_WRITE, "bad_nr_segments"},
    {"dispatch_rw_block_io: first_sect 8 (last_sect 8 >= XEN_PAGE_SIZE >> 9)", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_READ, 4, 0, 1, 8, 8); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     BLKIF_OP_READ, "bad_first_last_sect"},
    {"dispatch_rw_block_io: last_sect < first_sect in the third segment", nullptr,
     [](blkif_request_t& r) {
         rw(r, BLKIF_OP_WRITE, 5, 0, 3);
         r.seg[2].first_sect = 5;
         r.seg[2].last_sect = 3;
     },
     BlkbackVerdict::error, BLKIF_RSP_ERROR, BLKIF_OP_WRITE, "bad_first_last_sect"},
    {"xen_vbd_translate: sector_number at the disk's end", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_READ, 6, kDiskSectors, 1); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, BLKIF_OP_READ, "bad_sector_range"},
    {"xen_vbd_translate: sector + length crosses the disk's end", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_READ, 7, kDiskSectors - 4, 1); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, BLKIF_OP_READ, "bad_sector_range"},
    {"xen_vbd_translate: sector + length wraps around 2^64", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_READ, 8, ~std::uint64_t(0) - 3, 1); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, BLKIF_OP_READ, "bad_sector_range"},
    {"xen_vbd_translate: WRITE on a read-only disk", [](BlkifBackendConfig& c) { c.read_only = true; },
     [](blkif_request_t& r) { rw(r, BLKIF_OP_WRITE, 9, 0, 1); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     BLKIF_OP_WRITE, "read_only"},
    {"xen_vbd_translate: FLUSH_DISKCACHE is a write, refused on a read-only disk",
     [](BlkifBackendConfig& c) { c.read_only = true; },
     [](blkif_request_t& r) { rw(r, BLKIF_OP_FLUSH_DISKCACHE, 10, 0, 0); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, BLKIF_OP_FLUSH_DISKCACHE, "read_only"},
    {"FLUSH_DISKCACHE without feature-flush-cache: EOPNOTSUPP",
     [](BlkifBackendConfig& c) { c.feature_flush = false; },
     [](blkif_request_t& r) { rw(r, BLKIF_OP_FLUSH_DISKCACHE, 11, 0, 0); }, BlkbackVerdict::eopnotsupp,
     BLKIF_RSP_EOPNOTSUPP, BLKIF_OP_FLUSH_DISKCACHE, "not_offered"},
    {"WRITE_BARRIER without feature-barrier (not offered by default): EOPNOTSUPP", nullptr,
     [](blkif_request_t& r) { rw(r, BLKIF_OP_WRITE_BARRIER, 12, 0, 0); }, BlkbackVerdict::eopnotsupp,
     BLKIF_RSP_EOPNOTSUPP, BLKIF_OP_WRITE_BARRIER, "not_offered"},
    {"DISCARD without feature-discard: EOPNOTSUPP", [](BlkifBackendConfig& c) { c.feature_discard = false; },
     [](blkif_request_t& r) { discard(r, 13, 0, 8); }, BlkbackVerdict::eopnotsupp, BLKIF_RSP_EOPNOTSUPP,
     kOpDiscard, "not_offered"},
    {"dispatch_discard_io: range past the disk's end", nullptr,
     [](blkif_request_t& r) { discard(r, 14, kDiskSectors - 8, 9); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     kOpDiscard, "bad_sector_range"},
    {"dispatch_discard_io: translated as a write, refused on a read-only disk",
     [](BlkifBackendConfig& c) { c.read_only = true; }, [](blkif_request_t& r) { discard(r, 15, 0, 8); },
     BlkbackVerdict::error, BLKIF_RSP_ERROR, kOpDiscard, "read_only"},
    {"dispatch_other_io: unknown operation 42 -> EOPNOTSUPP", nullptr,
     [](blkif_request_t& r) {
         rw(r, BLKIF_OP_READ, 16, 0, 1);
         r.operation = 42;
     },
     BlkbackVerdict::eopnotsupp, BLKIF_RSP_EOPNOTSUPP, 42, "unknown_op"},
    {"dispatch_other_io: BLKIF_OP_RESERVED_1 -> EOPNOTSUPP", nullptr,
     [](blkif_request_t& r) {
         rw(r, BLKIF_OP_READ, 17, 0, 1);
         r.operation = BLKIF_OP_RESERVED_1;
     },
     BlkbackVerdict::eopnotsupp, BLKIF_RSP_EOPNOTSUPP, BLKIF_OP_RESERVED_1, "unknown_op"},
    {"INDIRECT without feature-max-indirect-segments: answered as an unknown op", nullptr,
     [](blkif_request_t& r) { indirect(r, BLKIF_OP_READ, 18, 0, 64); }, BlkbackVerdict::eopnotsupp,
     BLKIF_RSP_EOPNOTSUPP, BLKIF_OP_INDIRECT, "indirect_not_negotiated"},
    {"dispatch_rw_block_io: indirect nr_segments 257 > the 256 offered (answered with indirect_op)",
     [](BlkifBackendConfig& c) { c.max_indirect_segments = 256; },
     [](blkif_request_t& r) { indirect(r, BLKIF_OP_WRITE, 19, 0, 257); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, BLKIF_OP_WRITE, "bad_nr_segments"},
    {"dispatch_rw_block_io: indirect nr_segments 0",
     [](BlkifBackendConfig& c) { c.max_indirect_segments = 256; },
     [](blkif_request_t& r) { indirect(r, BLKIF_OP_READ, 20, 0, 0); }, BlkbackVerdict::error, BLKIF_RSP_ERROR,
     BLKIF_OP_READ, "bad_nr_segments"},
    {"indirect needing 9 > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST pages",
     [](BlkifBackendConfig& c) { c.max_indirect_segments = 8192; },
     [](blkif_request_t& r) { indirect(r, BLKIF_OP_READ, 21, 0, 8 * 512 + 1); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, BLKIF_OP_READ, "too_many_indirect_pages"},
    {"dispatch_rw_block_io: indirect_op DISCARD (answered with the indirect_op)",
     [](BlkifBackendConfig& c) { c.max_indirect_segments = 256; },
     [](blkif_request_t& r) { indirect(r, BLKIF_OP_DISCARD, 22, 0, 16); }, BlkbackVerdict::error,
     BLKIF_RSP_ERROR, kOpDiscard, "bad_indirect_op"},
};

class Misbehaviour : public ::testing::TestWithParam<BadRow> {};

TEST_P(Misbehaviour, AnsweredAtOnceAndCounted) {
    const BadRow& row = GetParam();
    SCOPED_TRACE(row.intent);
    BlkifBackendConfig cfg = Rig::config();
    if (row.configure) row.configure(cfg);
    Rig rig(cfg);
    blkif_request_t& r = rig.next();
    row.fill(r);
    std::uint64_t id = r.id;  // same offset in every layout
    rig.push();

    auto batch = rig.back->consume();
    EXPECT_FALSE(batch.disconnect);
    EXPECT_TRUE(batch.accepted.empty());
    EXPECT_EQ(batch.rejected, 1u);
    ASSERT_EQ(batch.verdicts.size(), 1u);
    EXPECT_EQ(batch.verdicts[0], row.verdict);
    EXPECT_TRUE(batch.notify);  // rsp_event = 1: the first response wants an event
    EXPECT_EQ(rig.rejected(row.reason), 1u);
    EXPECT_EQ(rig.stats.find_family("rejected")->total(), 1u);
    EXPECT_EQ(rig.counter("responses"), 1u);

    auto rsps = rig.responses();
    ASSERT_EQ(rsps.size(), 1u);
    EXPECT_EQ(rsps[0].id, id);
    EXPECT_EQ(rsps[0].operation, row.rsp_operation);
    EXPECT_EQ(rsps[0].status, row.status);
    EXPECT_EQ(rig.back->outstanding(), 0u);
}

INSTANTIATE_TEST_SUITE_P(BlkifRingBackend, Misbehaviour, ::testing::ValuesIn(kBadRows));

// ---------------------------------------------------------------------------------------------
// The second step for INDIRECT (xen_blkbk_parse_indirect, then xen_vbd_translate).

struct IndirectRow {
    const char* intent;
    bool read_only;
    std::uint8_t op;
    std::uint64_t sector;
    unsigned nseg;
    unsigned bad_index;  // segment made bad (first 6, last 2), or ~0u
    bool ok;
    const char* reason;
};

const IndirectRow kIndirectRows[] = {
    {"64 good segments in one page", false, BLKIF_OP_READ, 0, 64, ~0u, true, nullptr},
    {"600 segments over two pages", false, BLKIF_OP_WRITE, 128, 600, ~0u, true, nullptr},
    {"last_sect < first_sect in segment 40", false, BLKIF_OP_READ, 0, 64, 40, false, "bad_first_last_sect"},
    {"bad segment on the second page (520)", false, BLKIF_OP_WRITE, 0, 600, 520, false,
     "bad_first_last_sect"},
    {"indirect WRITE on a read-only disk", true, BLKIF_OP_WRITE, 0, 64, ~0u, false, "read_only"},
    {"indirect READ on a read-only disk is fine", true, BLKIF_OP_READ, 0, 64, ~0u, true, nullptr},
    {"64 * 8 sectors crossing the disk's end", false, BLKIF_OP_READ, kDiskSectors - 100, 64, ~0u, false,
     "bad_sector_range"},
};

class IndirectSegments : public ::testing::TestWithParam<IndirectRow> {};

TEST_P(IndirectSegments, ParsedAfterThePagesAreMapped) {
    const IndirectRow& row = GetParam();
    SCOPED_TRACE(row.intent);
    BlkifBackendConfig cfg = Rig::config();
    cfg.max_indirect_segments = 1024;
    cfg.read_only = row.read_only;
    Rig rig(cfg);
    indirect(rig.next(), row.op, 77, row.sector, row.nseg);
    rig.push();

    auto batch = rig.back->consume();
    ASSERT_EQ(batch.accepted.size(), 1u);
    BlkbackRequest& req = batch.accepted[0];
    EXPECT_EQ(req.operation, BLKIF_OP_INDIRECT);
    EXPECT_EQ(req.response_operation(), row.op);
    EXPECT_EQ(req.nr_indirect_segments, row.nseg);
    unsigned npages = BlkifRingBackend::indirect_pages(row.nseg);
    ASSERT_EQ(req.indirect_grefs.size(), npages);
    for (unsigned i = 0; i < npages; ++i) EXPECT_EQ(req.indirect_grefs[i], 900 + i);
    EXPECT_TRUE(req.segments.empty());

    // The frontend's indirect pages, as the caller would map them.
    std::vector<std::vector<blkif_request_segment>> pages(
        npages, std::vector<blkif_request_segment>(BlkifRingBackend::kSegsPerIndirectFrame));
    for (unsigned n = 0; n < row.nseg; ++n) {
        auto& s = pages[n / 512][n % 512];
        s = {grant_ref_t(2000 + n), 0, 7};
        if (n == row.bad_index) s.first_sect = 6, s.last_sect = 2;
    }
    std::vector<const blkif_request_segment*> ptrs;
    for (auto& p : pages) ptrs.push_back(p.data());

    EXPECT_EQ(rig.back->parse_indirect_segments(req, ptrs), row.ok);
    if (row.ok) {
        ASSERT_EQ(req.segments.size(), row.nseg);
        EXPECT_EQ(req.segments.back().gref, 2000 + row.nseg - 1);
        EXPECT_EQ(req.total_sectors(), 8u * row.nseg);
        EXPECT_TRUE(rig.responses().empty());
        rig.back->push_response(req.id, req.response_operation(), BLKIF_RSP_OKAY);
    } else {
        EXPECT_TRUE(req.segments.empty());
        EXPECT_EQ(rig.rejected(row.reason), 1u);
        EXPECT_TRUE(rig.back->flush_responses());
    }
    auto rsps = rig.responses();
    ASSERT_EQ(rsps.size(), 1u);
    EXPECT_EQ(rsps[0].id, 77u);
    EXPECT_EQ(rsps[0].operation, row.op);  // blkback answers with indirect_op
    EXPECT_EQ(rsps[0].status, row.ok ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR);
}

INSTANTIATE_TEST_SUITE_P(BlkifRingBackend, IndirectSegments, ::testing::ValuesIn(kIndirectRows));

// ---------------------------------------------------------------------------------------------
// Well-formed requests are handed over exactly as written.

TEST(BlkifRingBackend, HappyPathsAreAcceptedFromThePrivateCopy) {
    BlkifBackendConfig cfg = Rig::config();
    cfg.max_indirect_segments = 256;
    Rig rig(cfg);
    rw(rig.next(), BLKIF_OP_READ, 1, 8, 1, 2, 5);
    rw(rig.next(), BLKIF_OP_WRITE, 2, kDiskSectors - 88, 11);
    rw(rig.next(), BLKIF_OP_FLUSH_DISKCACHE, 3, 0, 0);
    discard(rig.next(), 4, 1024, 2048);
    indirect(rig.next(), BLKIF_OP_READ, 5, 64, 64);
    EXPECT_TRUE(rig.push());  // req_event = 1: the backend asked for an event

    auto batch = rig.back->consume();
    EXPECT_EQ(batch.rejected, 0u);
    EXPECT_FALSE(batch.notify);
    ASSERT_EQ(batch.accepted.size(), 5u);
    // The frontend scribbles over every slot afterwards: the accepted copies must not change.
    for (unsigned i = 0; i < 5; ++i)
        std::memset(RING_GET_REQUEST(&rig.front, i), 0xAB, sizeof(blkif_request_t));

    const auto& rd = batch.accepted[0];
    EXPECT_EQ(rd.operation, BLKIF_OP_READ);
    EXPECT_EQ(rd.id, 1u);
    EXPECT_EQ(rd.sector_number, 8u);
    EXPECT_EQ(rd.handle, 768);
    ASSERT_EQ(rd.segments.size(), 1u);
    EXPECT_EQ(rd.segments[0].gref, 100u);
    EXPECT_EQ(rd.total_sectors(), 4u);

    const auto& wr = batch.accepted[1];
    EXPECT_EQ(wr.operation, BLKIF_OP_WRITE);
    EXPECT_EQ(wr.segments.size(), 11u);
    EXPECT_EQ(wr.total_sectors(), 88u);  // ends exactly at the disk's end

    EXPECT_EQ(batch.accepted[2].operation, BLKIF_OP_FLUSH_DISKCACHE);
    EXPECT_EQ(batch.accepted[2].total_sectors(), 0u);

    const auto& ds = batch.accepted[3];
    EXPECT_EQ(ds.operation, BLKIF_OP_DISCARD);
    EXPECT_EQ(ds.sector_number, 1024u);
    EXPECT_EQ(ds.total_sectors(), 2048u);

    const auto& in = batch.accepted[4];
    EXPECT_EQ(in.operation, BLKIF_OP_INDIRECT);
    EXPECT_EQ(in.nr_indirect_segments, 64u);
    EXPECT_EQ(in.indirect_grefs.size(), 1u);

    EXPECT_EQ(rig.counter("accepted"), 5u);
    EXPECT_EQ(rig.stats.find_family("requests")->value("BLKIF_OP_READ"), 1u);
    EXPECT_EQ(rig.stats.find_family("requests")->value("BLKIF_OP_INDIRECT"), 1u);
    EXPECT_EQ(rig.back->outstanding(), 5u);

    // Completion in any order; responses take slots rsp_prod_pvt onwards.
    for (int i = 4; i >= 0; --i) {
        const auto& a = batch.accepted[i];
        rig.back->push_response(a.id, a.response_operation(), BLKIF_RSP_OKAY, /*push=*/i == 0);
    }
    auto rsps = rig.responses();
    ASSERT_EQ(rsps.size(), 5u);
    EXPECT_EQ(rsps[0].id, 5u);
    EXPECT_EQ(rsps[0].operation, BLKIF_OP_READ);  // the indirect request's indirect_op
    EXPECT_EQ(rsps[4].id, 1u);
    EXPECT_EQ(rig.back->outstanding(), 0u);
    EXPECT_FALSE(rig.back->final_check());
}

// ---------------------------------------------------------------------------------------------
// A bogus req_prod halts the ring.

TEST(BlkifRingBackend, ReqProdMoreThanARingAheadDisconnects) {
    Rig rig;
    rw(rig.next(), BLKIF_OP_READ, 1, 0, 1);
    rig.push();
    ASSERT_EQ(rig.back->consume().accepted.size(), 1u);
    // 1 outstanding + 32 new = 33 > 32 slots: __do_block_io_op's RING_REQUEST_PROD_OVERFLOW.
    rig.sring->req_prod = 1 + 32;
    auto batch = rig.back->consume();
    EXPECT_TRUE(batch.disconnect);
    EXPECT_TRUE(batch.verdicts.empty());
    EXPECT_EQ(rig.back->req_cons(), 1u);
    EXPECT_TRUE(rig.back->broken());
    EXPECT_EQ(rig.counter("disconnects"), 1u);
    EXPECT_EQ(rig.stats.find_family("requests")->total(), 1u);
    // Even a repaired index is never looked at again.
    rig.sring->req_prod = 2;
    batch = rig.back->consume();
    EXPECT_TRUE(batch.disconnect);
    EXPECT_EQ(rig.back->req_cons(), 1u);
    EXPECT_FALSE(rig.back->final_check());
    EXPECT_EQ(rig.counter("disconnects"), 1u);
}

TEST(BlkifRingBackend, ExactlyARingAheadIsLegal) {
    Rig rig;
    for (unsigned i = 0; i < 32; ++i) rw(rig.next(), BLKIF_OP_READ, i, i * 8, 1);
    rig.push();
    auto batch = rig.back->consume();
    EXPECT_FALSE(batch.disconnect);
    EXPECT_EQ(batch.accepted.size(), 32u);
}

TEST(BlkifRingBackend, BogusReqProdAtAttachRefusesTheRing) {
    // xen_blkif_map: req_prod - rsp_prod > ring size.
    BlkifBackendConfig cfg = Rig::config();
    std::vector<std::uint64_t> mem(4096 / 8);
    auto* s = reinterpret_cast<blkif_sring*>(mem.data());
    SHARED_RING_INIT(s);
    s->req_prod = 40;
    StatsGroup stats{"vbd"};
    BlkifRingBackend back(s, cfg, stats);
    EXPECT_TRUE(back.broken());
    EXPECT_TRUE(back.consume().disconnect);
    EXPECT_EQ(back.req_cons(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Free-running indexes across 2^32, more requests than slots.

TEST(BlkifRingBackend, RingWrapOverManyRounds) {
    const RING_IDX start = 0xFFFFFFF0u;  // wraps during the first round
    Rig rig(Rig::config(), start);
    std::uint64_t next_id = 0, expect_id = 0;
    const unsigned per_round[] = {32, 7, 32, 1, 31, 32, 20, 32};
    for (unsigned n : per_round) {
        for (unsigned i = 0; i < n; ++i) rw(rig.next(), BLKIF_OP_READ, next_id++, 0, 1);
        rig.push();
        auto batch = rig.back->consume();
        ASSERT_EQ(batch.accepted.size(), n);
        for (const auto& a : batch.accepted)
            rig.back->push_response(a.id, BLKIF_OP_READ, BLKIF_RSP_OKAY, false);
        rig.back->flush_responses();
        for (const auto& r : rig.responses()) EXPECT_EQ(r.id, expect_id++);
        EXPECT_FALSE(rig.back->final_check());
    }
    EXPECT_EQ(expect_id, next_id);
    EXPECT_EQ(rig.back->req_cons(), start + RING_IDX(next_id));
    EXPECT_LT(rig.back->req_cons(), start);  // it really wrapped
}

TEST(BlkifRingBackend, MultiPageRingOrder2Has128Slots) {
    BlkifBackendConfig cfg = Rig::config();
    cfg.ring_page_order = 2;
    Rig rig(cfg, 100);
    EXPECT_EQ(rig.back->size(), 128u);
    for (unsigned round = 0; round < 3; ++round) {
        for (unsigned i = 0; i < 128; ++i) rw(rig.next(), BLKIF_OP_WRITE, round * 128 + i, i * 8, 1);
        rig.push();
        auto batch = rig.back->consume();
        ASSERT_EQ(batch.accepted.size(), 128u);
        EXPECT_EQ(batch.accepted.back().id, round * 128 + 127);
        for (const auto& a : batch.accepted)
            rig.back->push_response(a.id, BLKIF_OP_WRITE, BLKIF_RSP_OKAY, false);
        rig.back->flush_responses();
        auto rsps = rig.responses();
        ASSERT_EQ(rsps.size(), 128u);
        EXPECT_EQ(rsps.back().id, round * 128 + 127);
    }
    // The whole 16 KiB ring was used: the last slot sits in the fourth page.
    EXPECT_GT(reinterpret_cast<std::uint8_t*>(RING_GET_REQUEST(&rig.front, 127)) -
                  reinterpret_cast<std::uint8_t*>(rig.sring),
              3 * 4096);
}

// ---------------------------------------------------------------------------------------------
// Event suppression on both directions.

TEST(BlkifRingBackend, NotificationFollowsTheFrontendsRspEvent) {
    Rig rig;
    for (unsigned i = 0; i < 3; ++i) rw(rig.next(), BLKIF_OP_READ, i, 0, 1);
    rig.push();
    auto batch = rig.back->consume();
    ASSERT_EQ(batch.accepted.size(), 3u);

    // rsp_event = 1: the first response crosses it.
    EXPECT_TRUE(rig.back->push_response(0, BLKIF_OP_READ, BLKIF_RSP_OKAY));
    // The frontend is busy and only wants an event at the 10th response.
    rig.sring->rsp_event = 10;
    EXPECT_FALSE(rig.back->push_response(1, BLKIF_OP_READ, BLKIF_RSP_OKAY));
    EXPECT_EQ(rig.counter("notifications_suppressed"), 1u);
    // It catches up (RING_FINAL_CHECK_FOR_RESPONSES sets rsp_event = rsp_cons + 1).
    rig.responses();
    int more = 0;
    RING_FINAL_CHECK_FOR_RESPONSES(&rig.front, more);
    EXPECT_FALSE(more);
    EXPECT_TRUE(rig.back->push_response(2, BLKIF_OP_READ, BLKIF_RSP_OKAY));
    EXPECT_EQ(rig.counter("notifications_sent"), 2u);
    EXPECT_FALSE(rig.back->flush_responses());  // nothing new: no push, no count
    EXPECT_EQ(rig.counter("notifications_sent") + rig.counter("notifications_suppressed"), 3u);
}

TEST(BlkifRingBackend, FinalCheckReArmsReqEvent) {
    Rig rig;
    rw(rig.next(), BLKIF_OP_READ, 1, 0, 1);
    rig.push();
    rig.back->consume();
    EXPECT_FALSE(rig.back->final_check());
    EXPECT_EQ(rig.sring->req_event, rig.back->req_cons() + 1);
    // The next request crosses req_event: the frontend must notify, and the backend sees more.
    rw(rig.next(), BLKIF_OP_READ, 2, 0, 1);
    EXPECT_TRUE(rig.push());
    EXPECT_TRUE(rig.back->final_check());
    EXPECT_EQ(rig.back->consume().accepted.size(), 1u);
}

TEST(BlkifRingBackend, RejectionsAndAcceptancesInterleaveInRingOrder) {
    Rig rig;
    rw(rig.next(), BLKIF_OP_READ, 1, 0, 1);
    rw(rig.next(), BLKIF_OP_READ, 2, 0, 0);  // bad
    rw(rig.next(), BLKIF_OP_WRITE, 3, 0, 1);
    rig.next().operation = 99;  // unknown, id 0
    rig.push();
    auto batch = rig.back->consume();
    ASSERT_EQ(batch.verdicts.size(), 4u);
    EXPECT_EQ(batch.verdicts[0], BlkbackVerdict::ok);
    EXPECT_EQ(batch.verdicts[1], BlkbackVerdict::error);
    EXPECT_EQ(batch.verdicts[2], BlkbackVerdict::ok);
    EXPECT_EQ(batch.verdicts[3], BlkbackVerdict::eopnotsupp);
    EXPECT_EQ(batch.accepted.size(), 2u);
    EXPECT_EQ(batch.rejected, 2u);
    // Rejections are answered first; the two accepted are still outstanding.
    auto rsps = rig.responses();
    ASSERT_EQ(rsps.size(), 2u);
    EXPECT_EQ(rsps[0].id, 2u);
    EXPECT_EQ(rsps[1].status, BLKIF_RSP_EOPNOTSUPP);
    EXPECT_EQ(rig.back->outstanding(), 2u);
    EXPECT_EQ(rig.stats.find_family("requests")->value("BLKIF_OP_unknown"), 1u);
}

TEST(BlkifRingBackend, MoreResponsesThanRequestsIsAnInternalError) {
    Rig rig;
    EXPECT_DEATH(rig.back->push_response(1, BLKIF_OP_READ, BLKIF_RSP_OKAY), "invariant");
}

}  // namespace
}  // namespace xensim
