// The ring side of blkfront against the real blkback ring engine on the same ring memory.
// The test plays the guest kernel (a fake grant table and page allocator whose grant refs map to
// test-owned pages) and dom0 (the BlkifRingBackend engine plus a small RAM disk that performs the
// accepted requests through those grants). Expected behaviour follows Linux
// drivers/block/xen-blkfront.c (function named in each test's intent) and xen/include/public/io/blkif.h.
#include "frontends/blkif_ring_frontend.h"
#include "models/dom0/blkif_ring_backend.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <vector>

namespace xensim {
namespace {

constexpr std::uint64_t kDiskSectors = 4096;  // 2 MiB
using Page = std::array<std::uint8_t, 4096>;

// The guest kernel's grant table and page allocator, as the frontend sees them through GrantOps.
struct FakeGuest {
    struct Entry {
        std::uint64_t gfn;
        bool readonly;
        bool mapped = false;  // the backend still maps it: end() refuses
    };
    std::map<std::uint64_t, std::unique_ptr<Page>> pages;
    std::map<grant_ref_t, Entry> grants;  // active grants
    grant_ref_t next_ref = 8;             // refs below 8 are reserved, as in Linux
    std::uint64_t next_gfn = 0x1000;
    unsigned grant_limit = ~0u;

    std::uint64_t new_page() {
        pages[next_gfn] = std::make_unique<Page>();
        return next_gfn++;
    }
    std::uint8_t* page(std::uint64_t gfn) { return pages.at(gfn)->data(); }
    GrantOps ops() {
        GrantOps o;
        o.grant = [this](std::uint64_t gfn, bool ro) -> std::optional<grant_ref_t> {
            if (grants.size() >= grant_limit || !pages.count(gfn)) return std::nullopt;
            grants[next_ref] = Entry{gfn, ro};
            return next_ref++;
        };
        o.end = [this](grant_ref_t ref) {
            auto it = grants.find(ref);
            if (it == grants.end()) throw std::logic_error("end of a grant not active");
            if (it->second.mapped) return false;
            grants.erase(it);
            return true;
        };
        o.alloc_page = [this]() -> std::optional<std::uint64_t> { return new_page(); };
        o.page = [this](std::uint64_t gfn) { return page(gfn); };
        return o;
    }
};

// Shared ring, frontend under test, real backend engine and a RAM disk.
struct Rig {
    FakeGuest guest;
    std::vector<std::uint64_t> ring_mem;
    StatsGroup root{""};
    StatsGroup front_stats{"blkfront", &root};
    StatsGroup back_stats{"blkback", &root};
    std::unique_ptr<BlkifRingFrontend> front;
    std::unique_ptr<BlkifRingBackend> back;
    std::vector<std::uint8_t> disk = std::vector<std::uint8_t>(kDiskSectors * 512);
    std::deque<BlkbackRequest> held;  // accepted, not yet answered
    unsigned readonly_violations = 0;

    explicit Rig(BlkifFrontendConfig fcfg = {}, unsigned back_indirect = 0)
        : ring_mem((std::size_t{4096} << fcfg.ring_page_order) / sizeof(std::uint64_t)) {
        front = std::make_unique<BlkifRingFrontend>(ring_mem.data(), fcfg, guest.ops(), front_stats);
        BlkifBackendConfig bcfg;
        bcfg.ring_page_order = fcfg.ring_page_order;
        bcfg.disk_sectors = kDiskSectors;
        bcfg.max_indirect_segments = back_indirect;
        back = std::make_unique<BlkifRingBackend>(ring_mem.data(), bcfg, back_stats);
    }

    blkif_sring* sring() { return reinterpret_cast<blkif_sring*>(ring_mem.data()); }

    // An I/O over freshly allocated pages; WRITE data is (seed + byte index) per page.
    BlockIo io(std::uint64_t id, BlockOp op, std::uint64_t sector, std::uint32_t sectors,
               std::uint8_t seed = 0) {
        BlockIo b{id, op, sector, sectors, {}};
        for (unsigned i = 0; i < (sectors + 7) / 8; ++i) {
            std::uint64_t gfn = guest.new_page();
            if (op == BlockOp::write)
                for (unsigned j = 0; j < 4096; ++j) guest.page(gfn)[j] = std::uint8_t(seed + i * 7 + j);
            b.pages.push_back(gfn);
        }
        return b;
    }

    // dom0: consume, map indirect pages, and hold the accepted requests.
    unsigned consume() {
        BlkifRingBackend::Batch batch = back->consume();
        unsigned n = 0;
        for (BlkbackRequest& r : batch.accepted) {
            if (r.operation == BLKIF_OP_INDIRECT) {
                std::vector<const blkif_request_segment*> pages;
                for (grant_ref_t g : r.indirect_grefs)
                    pages.push_back(
                        reinterpret_cast<const blkif_request_segment*>(guest.page(guest.grants.at(g).gfn)));
                if (!back->parse_indirect_segments(r, pages)) continue;
            }
            held.push_back(std::move(r));
            ++n;
        }
        return n;
    }
    // Performs the I/O of a held request through its grants, as blkback would.
    void perform(const BlkbackRequest& r) {
        std::uint8_t op = r.response_operation();
        if (op != BLKIF_OP_READ && op != BLKIF_OP_WRITE) return;
        std::uint64_t sector = r.sector_number;
        for (const blkif_request_segment& s : r.segments) {
            const FakeGuest::Entry& e = guest.grants.at(s.gref);
            std::uint8_t* p = guest.page(e.gfn) + s.first_sect * 512;
            std::size_t bytes = (s.last_sect - s.first_sect + 1u) * 512u;
            if (op == BLKIF_OP_READ) {
                if (e.readonly) ++readonly_violations;
                std::memcpy(p, &disk[sector * 512], bytes);
            } else {
                std::memcpy(&disk[sector * 512], p, bytes);
            }
            sector += s.last_sect - s.first_sect + 1u;
        }
    }
    // Answers up to `max` held requests (OKAY unless `status`), then pushes.
    bool answer(unsigned max = ~0u, std::int16_t status = BLKIF_RSP_OKAY) {
        for (unsigned i = 0; i < max && !held.empty(); ++i) {
            perform(held.front());
            back->push_response(held.front().id, held.front().response_operation(), status, false);
            held.pop_front();
        }
        return back->flush_responses();
    }
    void serve() {
        consume();
        answer();
    }
    // push + serve + collect.
    std::vector<BlkifRingFrontend::Completion> round() {
        front->push();
        serve();
        return front->collect();
    }

    std::uint64_t counter(const char* name) const { return front_stats.find_counter(name)->value(); }
    std::uint64_t requests(const char* op) const { return front_stats.find_family("requests")->value(op); }
};

bool same_data(Rig& rig, const BlockIo& a, const BlockIo& b, std::size_t bytes) {
    for (std::size_t off = 0; off < bytes; off += 4096) {
        std::size_t n = std::min<std::size_t>(4096, bytes - off);
        if (std::memcmp(rig.guest.page(a.pages[off / 4096]), rig.guest.page(b.pages[off / 4096]), n))
            return false;
    }
    return true;
}

BlkifFrontendConfig no_merge(unsigned order = 0) {
    BlkifFrontendConfig c;
    c.ring_page_order = order;
    c.merge_adjacent = false;
    return c;
}

// blkif.h: 32 request slots in one ring page, 128 in four.
TEST(BlkifRingFrontend, RingGeometry) {
    Rig r0(no_merge(0)), r2(no_merge(2));
    EXPECT_EQ(r0.front->size(), 32u);
    EXPECT_EQ(r2.front->size(), 128u);
    EXPECT_EQ(r2.back->size(), 128u);
}

// blkif_queue_rw_req: a 4 KiB read is one BLKIF_OP_READ with one segment; data reaches the page.
TEST(BlkifRingFrontend, Read4KiB) {
    Rig rig;
    for (std::size_t i = 0; i < 4096; ++i) rig.disk[8 * 512 + i] = std::uint8_t(i * 3 + 1);
    BlockIo io = rig.io(77, BlockOp::read, 8, 8);
    ASSERT_TRUE(rig.front->submit(io));
    EXPECT_EQ(rig.front->in_flight(), 1u);
    auto done = rig.round();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].id, 77u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    EXPECT_EQ(std::memcmp(rig.guest.page(io.pages[0]), &rig.disk[8 * 512], 4096), 0);
    EXPECT_EQ(rig.requests("BLKIF_OP_READ"), 1u);
    EXPECT_EQ(rig.counter("segments"), 1u);
    EXPECT_EQ(rig.counter("grants_granted"), 1u);
    EXPECT_EQ(rig.counter("grants_ended"), 1u);
    EXPECT_EQ(rig.readonly_violations, 0u);
    EXPECT_EQ(rig.front->in_flight(), 0u);
}

// blkif_setup_rw_req_grant: a 44 KiB write fills all 11 direct segments, granted read-only.
TEST(BlkifRingFrontend, Write44KiBElevenSegments) {
    Rig rig;
    BlockIo io = rig.io(5, BlockOp::write, 100, 88, 9);
    ASSERT_TRUE(rig.front->submit(io));
    rig.front->push();
    ASSERT_EQ(rig.consume(), 1u);
    EXPECT_EQ(rig.held.front().operation, BLKIF_OP_WRITE);
    EXPECT_EQ(rig.held.front().segments.size(), 11u);
    for (const auto& g : rig.guest.grants) EXPECT_TRUE(g.second.readonly);
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    for (unsigned i = 0; i < 11; ++i)
        EXPECT_EQ(std::memcmp(&rig.disk[(100 + i * 8) * 512], rig.guest.page(io.pages[i]), 4096), 0) << i;
    EXPECT_EQ(rig.requests("BLKIF_OP_WRITE"), 1u);
    EXPECT_EQ(rig.counter("segments"), 11u);
}

// blkif_queue_rw_req with indirect descriptors: 64 segments become one BLKIF_OP_INDIRECT whose
// segment list the backend reads from the granted indirect page; read back through another one.
TEST(BlkifRingFrontend, IndirectSixtyFourSegments) {
    BlkifFrontendConfig cfg;
    cfg.max_indirect_segments = 256;
    Rig rig(cfg, 256);
    BlockIo w = rig.io(1, BlockOp::write, 0, 64 * 8, 3);
    ASSERT_TRUE(rig.front->submit(w));
    rig.front->push();
    ASSERT_EQ(rig.consume(), 1u);
    EXPECT_EQ(rig.held.front().operation, BLKIF_OP_INDIRECT);
    EXPECT_EQ(rig.held.front().indirect_grefs.size(), 1u);
    EXPECT_TRUE(rig.guest.grants.at(rig.held.front().indirect_grefs[0]).readonly);
    EXPECT_EQ(rig.held.front().segments.size(), 64u);
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);

    BlockIo rd = rig.io(2, BlockOp::read, 0, 64 * 8);
    ASSERT_TRUE(rig.front->submit(rd));
    done = rig.round();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].id, 2u);
    EXPECT_TRUE(same_data(rig, w, rd, 64 * 4096));
    EXPECT_EQ(rig.requests("BLKIF_OP_INDIRECT"), 2u);
    EXPECT_EQ(rig.counter("indirect_requests"), 2u);
    EXPECT_EQ(rig.counter("segments"), 128u);
    EXPECT_TRUE(rig.guest.grants.empty());  // data and indirect grants all ended
    EXPECT_EQ(rig.readonly_violations, 0u);
}

// Without feature-max-indirect-segments the 64-segment I/O is split into ceil(64/11) = 6 direct
// requests and completes once, when the last part does.
TEST(BlkifRingFrontend, SplitWithoutIndirect) {
    Rig rig(no_merge());
    BlockIo w = rig.io(9, BlockOp::write, 16, 64 * 8, 5);
    ASSERT_TRUE(rig.front->submit(w));
    EXPECT_EQ(rig.front->in_flight(), 6u);
    rig.front->push();
    ASSERT_EQ(rig.consume(), 6u);
    rig.answer(5);
    EXPECT_TRUE(rig.front->collect().empty());
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].id, 9u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    EXPECT_EQ(rig.requests("BLKIF_OP_WRITE"), 6u);
    EXPECT_EQ(rig.counter("indirect_requests"), 0u);
    for (unsigned i = 0; i < 64; ++i)
        ASSERT_EQ(std::memcmp(&rig.disk[(16 + i * 8) * 512], rig.guest.page(w.pages[i]), 4096), 0) << i;
}

// blkif_interrupt: one failing part fails the whole split I/O.
TEST(BlkifRingFrontend, SplitPartErrorFailsIo) {
    Rig rig(no_merge());
    ASSERT_TRUE(rig.front->submit(rig.io(4, BlockOp::read, 0, 30 * 8)));  // 3 parts
    rig.front->push();
    ASSERT_EQ(rig.consume(), 3u);
    rig.answer(1);
    rig.answer(1, BLKIF_RSP_ERROR);
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_ERROR);
    EXPECT_TRUE(rig.guest.grants.empty());
}

// REQ_OP_FLUSH -> BLKIF_OP_FLUSH_DISKCACHE with no segments and no grants.
TEST(BlkifRingFrontend, Flush) {
    Rig rig;
    ASSERT_TRUE(rig.front->submit(BlockIo{11, BlockOp::flush, 0, 0, {}}));
    rig.front->push();
    ASSERT_EQ(rig.consume(), 1u);
    EXPECT_EQ(rig.held.front().operation, BLKIF_OP_FLUSH_DISKCACHE);
    EXPECT_TRUE(rig.held.front().segments.empty());
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].id, 11u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    EXPECT_EQ(rig.counter("grants_granted"), 0u);
}

// blkif_queue_discard_req: sector_number and nr_sectors in a blkif_request_discard.
TEST(BlkifRingFrontend, Discard) {
    Rig rig;
    ASSERT_TRUE(rig.front->submit(BlockIo{12, BlockOp::discard, 1000, 2048, {}}));
    rig.front->push();
    ASSERT_EQ(rig.consume(), 1u);
    EXPECT_EQ(rig.held.front().operation, BLKIF_OP_DISCARD);
    EXPECT_EQ(rig.held.front().sector_number, 1000u);
    EXPECT_EQ(rig.held.front().nr_sectors, 2048u);
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    // Out of range: the backend's error reaches the caller.
    ASSERT_TRUE(rig.front->submit(BlockIo{13, BlockOp::discard, kDiskSectors - 1, 2, {}}));
    done = rig.round();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_ERROR);
}

// flush_requests: the second push while the backend has not consumed needs no notification;
// once the backend re-arms req_event (RING_FINAL_CHECK_FOR_REQUESTS) the next push notifies.
TEST(BlkifRingFrontend, NotificationSuppression) {
    Rig rig(no_merge());
    ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::read, 0, 8)));
    EXPECT_TRUE(rig.front->push());
    ASSERT_TRUE(rig.front->submit(rig.io(2, BlockOp::read, 8, 8)));
    EXPECT_FALSE(rig.front->push());
    EXPECT_FALSE(rig.front->push());  // nothing new: not counted
    EXPECT_EQ(rig.counter("notifications_sent"), 1u);
    EXPECT_EQ(rig.counter("notifications_suppressed"), 1u);
    EXPECT_EQ(rig.consume(), 2u);
    EXPECT_FALSE(rig.back->final_check());
    ASSERT_TRUE(rig.front->submit(rig.io(3, BlockOp::read, 16, 8)));
    EXPECT_TRUE(rig.front->push());
}

// RING_FULL: submit refuses the slot past the ring size, queues nothing, and works again after
// responses are collected; a split I/O needing more slots than are free is refused whole.
class RingFull : public ::testing::TestWithParam<std::pair<unsigned, unsigned>> {};
TEST_P(RingFull, RefusesWhenFull) {
    auto [order, slots] = GetParam();
    Rig rig(no_merge(order));
    for (unsigned i = 0; i < slots; ++i)
        ASSERT_TRUE(rig.front->submit(rig.io(i, BlockOp::read, i * 8, 8))) << i;
    EXPECT_TRUE(rig.front->full());
    EXPECT_EQ(rig.front->in_flight(), slots);
    std::size_t grants = rig.guest.grants.size();
    EXPECT_FALSE(rig.front->submit(rig.io(999, BlockOp::read, 0, 8)));
    EXPECT_EQ(rig.guest.grants.size(), grants);
    EXPECT_EQ(rig.counter("submit_full"), 1u);
    rig.front->push();
    rig.consume();
    rig.answer(5);
    EXPECT_EQ(rig.front->collect().size(), 5u);
    EXPECT_FALSE(rig.front->submit(rig.io(1000, BlockOp::read, 0, 66 * 8)));  // needs 6 slots
    EXPECT_EQ(rig.front->in_flight(), slots - 5);
    EXPECT_TRUE(rig.front->submit(rig.io(1001, BlockOp::read, 0, 55 * 8)));  // 5 slots
    EXPECT_TRUE(rig.front->full());
}
INSTANTIATE_TEST_SUITE_P(Orders, RingFull,
                         ::testing::Values(std::make_pair(0u, 32u), std::make_pair(2u, 128u)));

// get_grant with feature_persistent: the second I/O reuses the pooled grants (no new grant, none
// ended), data is bounced through the persistent pages both ways.
TEST(BlkifRingFrontend, PersistentGrantsReused) {
    BlkifFrontendConfig cfg = no_merge();
    cfg.persistent_grants = true;
    Rig rig(cfg);
    BlockIo w = rig.io(1, BlockOp::write, 64, 4 * 8, 17);
    ASSERT_TRUE(rig.front->submit(w));
    ASSERT_EQ(rig.round().size(), 1u);
    EXPECT_EQ(rig.counter("grants_granted"), 4u);
    EXPECT_EQ(rig.front->persistent_pool(), 4u);
    for (const auto& g : rig.guest.grants) EXPECT_FALSE(g.second.readonly);
    BlockIo rd = rig.io(2, BlockOp::read, 64, 4 * 8);
    ASSERT_TRUE(rig.front->submit(rd));
    auto done = rig.round();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    EXPECT_EQ(rig.counter("grants_granted"), 4u);
    EXPECT_EQ(rig.counter("grants_reused"), 4u);
    EXPECT_EQ(rig.counter("grants_ended"), 0u);
    EXPECT_EQ(rig.guest.grants.size(), 4u);
    EXPECT_TRUE(same_data(rig, w, rd, 4 * 4096));
    EXPECT_EQ(std::memcmp(&rig.disk[64 * 512], rig.guest.page(w.pages[0]), 4096), 0);
}

// blkif_completion -> blkif_copy_from_grant with persistent grants: a READ copies only the segment's
// first_sect..last_sect out of the pooled page; the rest of the caller's page is left alone, even
// when the pooled page still holds an earlier request's data.
TEST(BlkifRingFrontend, PersistentReadCopiesOnlyTheSegment) {
    BlkifFrontendConfig cfg = no_merge();
    cfg.persistent_grants = true;
    Rig rig(cfg);
    for (std::size_t i = 0; i < 4096; ++i) rig.disk[i] = 0x55;            // sectors 0..7
    for (std::size_t i = 0; i < 512; ++i) rig.disk[64 * 512 + i] = 0x11;  // sector 64
    BlockIo full = rig.io(1, BlockOp::read, 0, 8);                        // leaves 0x55 in the pooled page
    ASSERT_TRUE(rig.front->submit(full));
    ASSERT_EQ(rig.round().size(), 1u);
    EXPECT_EQ(rig.front->take_read_copy_bytes(), 4096u);
    BlockIo one = rig.io(2, BlockOp::read, 64, 1);
    std::memset(rig.guest.page(one.pages[0]), 0xAA, 4096);
    ASSERT_TRUE(rig.front->submit(one));
    auto done = rig.round();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    EXPECT_EQ(rig.counter("grants_reused"), 1u);  // the same pooled page
    const std::uint8_t* p = rig.guest.page(one.pages[0]);
    EXPECT_EQ(p[0], 0x11);
    EXPECT_EQ(p[511], 0x11);
    for (std::size_t i = 512; i < 4096; ++i) ASSERT_EQ(p[i], 0xAA) << "byte " << i << " is not the I/O's";
    EXPECT_EQ(rig.front->take_read_copy_bytes(), 512u);  // what blkif_completion copied
}

// get_indirect_grant with feature_persistent: indirect pages come from the persistent pool too.
TEST(BlkifRingFrontend, PersistentIndirect) {
    BlkifFrontendConfig cfg;
    cfg.persistent_grants = true;
    cfg.max_indirect_segments = 256;
    Rig rig(cfg, 256);
    BlockIo w = rig.io(1, BlockOp::write, 8, 40 * 8, 23);
    ASSERT_TRUE(rig.front->submit(w));
    ASSERT_EQ(rig.round().size(), 1u);
    EXPECT_EQ(rig.counter("grants_granted"), 41u);  // 40 data + 1 indirect
    BlockIo rd = rig.io(2, BlockOp::read, 8, 40 * 8);
    ASSERT_TRUE(rig.front->submit(rd));
    auto done = rig.round();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].status, BLKIF_RSP_OKAY);
    EXPECT_EQ(rig.counter("grants_granted"), 41u);
    EXPECT_EQ(rig.counter("grants_reused"), 41u);
    EXPECT_EQ(rig.counter("indirect_requests"), 2u);
    EXPECT_TRUE(same_data(rig, w, rd, 40 * 4096));
}

// blkif_completion without persistent grants: every grant is ended; one the backend still maps is
// retried on the next collect.
TEST(BlkifRingFrontend, NonPersistentEndsGrants) {
    Rig rig(no_merge());
    ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::write, 0, 3 * 8, 1)));
    ASSERT_TRUE(rig.front->submit(rig.io(2, BlockOp::read, 64, 2 * 8)));
    EXPECT_EQ(rig.guest.grants.size(), 5u);
    EXPECT_EQ(rig.round().size(), 2u);
    EXPECT_EQ(rig.counter("grants_granted"), 5u);
    EXPECT_EQ(rig.counter("grants_ended"), 5u);
    EXPECT_TRUE(rig.guest.grants.empty());

    ASSERT_TRUE(rig.front->submit(rig.io(3, BlockOp::read, 0, 8)));
    rig.front->push();
    rig.consume();
    for (auto& g : rig.guest.grants) g.second.mapped = true;
    rig.answer();
    EXPECT_EQ(rig.front->collect().size(), 1u);
    EXPECT_EQ(rig.front->grants_pending_end(), 1u);
    EXPECT_EQ(rig.counter("grants_end_deferred"), 1u);
    for (auto& g : rig.guest.grants) g.second.mapped = false;
    EXPECT_TRUE(rig.front->collect().empty());
    EXPECT_EQ(rig.front->grants_pending_end(), 0u);
    EXPECT_TRUE(rig.guest.grants.empty());
}

// blkfront_closing -> blkif_free_ring: when the backend goes away every grant the ring holds is
// ended, the persistent pool included; the ones the backend still maps are ended once it unmaps them
// (gnttab's deferred retry). At the end nothing the frontend granted is left active.
TEST(BlkifRingFrontend, AbortEndsEveryGrantOnceTheBackendUnmapsThem) {
    for (bool persistent : {false, true}) {
        BlkifFrontendConfig cfg = no_merge();
        cfg.persistent_grants = persistent;
        cfg.max_indirect_segments = 32;
        Rig rig(cfg, 32);
        ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::write, 0, 2 * 8, 1)));
        ASSERT_EQ(rig.round().size(), 1u);  // with persistent grants: 2 grants now pooled
        ASSERT_TRUE(rig.front->submit(rig.io(2, BlockOp::read, 64, 3 * 8)));
        ASSERT_TRUE(rig.front->submit(rig.io(3, BlockOp::write, 128, 16 * 8, 2)));  // indirect
        rig.front->push();
        rig.consume();
        // The backend maps the in-flight requests' grants (non-persistent) or keeps them all mapped
        // (persistent) when the device closes; the answers are never sent.
        for (auto& g : rig.guest.grants) g.second.mapped = true;
        const std::size_t live = rig.front->grants_live();
        EXPECT_EQ(live, rig.guest.grants.size()) << "persistent " << persistent;
        auto aborted = rig.front->abort_all();
        EXPECT_EQ(aborted.size(), 2u);
        EXPECT_EQ(rig.front->grants_pending_end(), live) << "persistent " << persistent;
        EXPECT_EQ(rig.front->retry_pending_end(), live) << "still mapped";
        for (auto& g : rig.guest.grants) g.second.mapped = false;  // the backend unmapped them
        EXPECT_EQ(rig.front->retry_pending_end(), 0u);
        EXPECT_EQ(rig.front->grants_live(), 0u);
        EXPECT_TRUE(rig.guest.grants.empty()) << "persistent " << persistent;
        EXPECT_EQ(rig.counter("grants_granted"), rig.counter("grants_ended")) << "persistent " << persistent;
    }
}

// The same close with the backend already gone from the grants: everything is ended at once.
TEST(BlkifRingFrontend, AbortEndsThePersistentPoolAtOnceWhenNothingIsMapped) {
    BlkifFrontendConfig cfg = no_merge();
    cfg.persistent_grants = true;
    Rig rig(cfg);
    ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::write, 0, 4 * 8, 1)));
    ASSERT_EQ(rig.round().size(), 1u);
    EXPECT_EQ(rig.front->persistent_pool(), 4u);
    EXPECT_TRUE(rig.front->abort_all().empty());
    EXPECT_EQ(rig.front->persistent_pool(), 0u);
    EXPECT_EQ(rig.front->grants_pending_end(), 0u);
    EXPECT_TRUE(rig.guest.grants.empty());
    EXPECT_EQ(rig.counter("grants_ended"), 4u);
}

// blkif_interrupt's checks: an id outside the shadow, an id of a free slot, or the wrong operation
// is counted and ignored; the genuine response still completes its I/O.
struct BogusCase {
    const char* intent;
    std::uint64_t id;  // ~0 = the genuine id
    std::uint8_t op;
};
void PrintTo(const BogusCase& c, std::ostream* os) { *os << c.intent; }
class BogusResponse : public ::testing::TestWithParam<BogusCase> {};
TEST_P(BogusResponse, CountedAndIgnored) {
    const BogusCase& c = GetParam();
    Rig rig(no_merge());
    ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::read, 0, 8)));
    ASSERT_TRUE(rig.front->submit(rig.io(2, BlockOp::read, 8, 8)));
    rig.front->push();
    ASSERT_EQ(rig.consume(), 2u);
    BlkbackRequest first = rig.held.front();
    rig.back->push_response(c.id == ~0ull ? first.id : c.id, c.op, BLKIF_RSP_OKAY, false);
    rig.held.pop_front();
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 1u) << c.intent;
    EXPECT_EQ(done[0].id, 2u);
    EXPECT_EQ(rig.counter("bogus_responses"), 1u);
    EXPECT_EQ(rig.front->in_flight(), 0u);
}
INSTANTIATE_TEST_SUITE_P(Cases, BogusResponse,
                         ::testing::Values(BogusCase{"id beyond the shadow", 999, BLKIF_OP_READ},
                                           BogusCase{"id of a free slot", 31, BLKIF_OP_READ},
                                           BogusCase{"wrong operation", ~0ull, BLKIF_OP_WRITE}));

// RING_RESPONSE_PROD_OVERFLOW: a producer beyond what was requested is counted, nothing is read,
// and the ring indexes stay sane.
TEST(BlkifRingFrontend, ResponseProducerOverflow) {
    Rig rig;
    ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::read, 0, 8)));
    rig.front->push();
    rig.sring()->rsp_prod = 5;  // one request published
    EXPECT_TRUE(rig.front->collect().empty());
    rig.sring()->rsp_prod = 40;  // more than a ring
    EXPECT_TRUE(rig.front->collect().empty());
    EXPECT_EQ(rig.counter("bogus_responses"), 2u);
    EXPECT_EQ(rig.front->in_flight(), 1u);
}

// Block-layer back-merge: an I/O continuing the unpushed request joins it while segments allow.
TEST(BlkifRingFrontend, AdjacentMerge) {
    Rig rig;  // merge_adjacent on
    ASSERT_TRUE(rig.front->submit(rig.io(1, BlockOp::write, 0, 8, 1)));
    ASSERT_TRUE(rig.front->submit(rig.io(2, BlockOp::write, 8, 16, 2)));   // continues: merged
    ASSERT_TRUE(rig.front->submit(rig.io(3, BlockOp::write, 100, 8, 3)));  // gap: new request
    ASSERT_TRUE(rig.front->submit(rig.io(4, BlockOp::read, 108, 8)));      // other op: new request
    EXPECT_EQ(rig.front->in_flight(), 3u);
    EXPECT_EQ(rig.counter("merges"), 1u);
    rig.front->push();
    ASSERT_EQ(rig.consume(), 3u);
    EXPECT_EQ(rig.held.front().segments.size(), 3u);
    rig.answer();
    auto done = rig.front->collect();
    ASSERT_EQ(done.size(), 4u);
    EXPECT_EQ(rig.requests("BLKIF_OP_WRITE"), 2u);
    EXPECT_EQ(rig.counter("segments"), 5u);
    // Not after a push, and never beyond 11 segments.
    ASSERT_TRUE(rig.front->submit(rig.io(5, BlockOp::write, 200, 80)));
    ASSERT_TRUE(rig.front->submit(rig.io(6, BlockOp::write, 280, 16)));
    EXPECT_EQ(rig.front->in_flight(), 2u);
    EXPECT_EQ(rig.round().size(), 2u);
}

// A malformed I/O is the caller's bug.
TEST(BlkifRingFrontend, MalformedIoThrows) {
    Rig rig;
    EXPECT_THROW(rig.front->submit(BlockIo{1, BlockOp::read, 0, 16, {rig.guest.new_page()}}),
                 std::invalid_argument);
    EXPECT_THROW(rig.front->submit(BlockIo{1, BlockOp::write, 0, 0, {}}), std::invalid_argument);
    EXPECT_EQ(rig.front->in_flight(), 0u);
}

// Ring wrap: many rounds of mixed batches round the 32 slots; every I/O completes exactly once.
TEST(BlkifRingFrontend, RingWrapManyRounds) {
    BlkifFrontendConfig cfg;
    cfg.max_indirect_segments = 32;
    Rig rig(cfg, 32);
    std::uint64_t next = 0, completed = 0;
    std::map<std::uint64_t, int> seen;
    std::map<std::uint64_t, std::vector<std::uint64_t>> pages;
    for (unsigned round = 0; round < 200; ++round) {
        unsigned batch = 1 + round % 13;
        for (unsigned i = 0; i < batch; ++i) {
            BlockOp op = (i % 3 == 0) ? BlockOp::write : BlockOp::read;
            std::uint32_t sectors = 8 * (1 + (round + i) % 20);
            BlockIo b = rig.io(next, op, (next * 40) % 3000, sectors);
            ASSERT_TRUE(rig.front->submit(b));
            pages[next++] = b.pages;
        }
        rig.front->push();
        do {
            rig.serve();
            for (auto& c : rig.front->collect()) {
                EXPECT_EQ(c.status, BLKIF_RSP_OKAY);
                ++seen[c.id];
                ++completed;
                for (std::uint64_t gfn : pages[c.id]) rig.guest.pages.erase(gfn);  // memory bounded
                pages.erase(c.id);
            }
        } while (rig.front->final_check());
        ASSERT_EQ(rig.front->in_flight(), 0u) << round;
    }
    EXPECT_EQ(completed, next);
    EXPECT_EQ(seen.size(), next);
    EXPECT_GT(rig.front_stats.find_family("requests")->total(), 32u * 10);
    EXPECT_TRUE(rig.guest.grants.empty());
    EXPECT_EQ(rig.counter("bogus_responses"), 0u);
}

}  // namespace
}  // namespace xensim
