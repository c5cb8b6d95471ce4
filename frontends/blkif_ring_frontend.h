// The ring side of blkfront: turning block I/Os into blkif requests and responses back into completions.
//
// The problem. A guest's blkfront owns the shared blkif ring (it initialises it and produces requests)
// and must describe every data page to the backend through a grant. Each request on the ring carries
// an id the backend echoes; blkfront keeps its own private record of what that id stands for (Linux's
// `shadow` array: the I/O, the grants used, the indirect pages) and never trusts the ring for it. The
// backend may answer with anything, so each response is copied once and checked against the shadow.
// This engine is that part of blkfront with no SystemC, no xenbus and no event channel: grants and
// page allocation are the caller's (XenGuest), passed as callbacks so tests can fake them; the caller
// sends the event-channel notification when push() says so and calls collect() from its interrupt.
//
// What is modelled, following Linux drivers/block/xen-blkfront.c (v6.x) and xen/include/public/io/blkif.h:
//  * Set-up (setup_blkring): SHARED_RING_INIT + FRONT_RING_INIT over 2^ring_page_order pages; the shadow
//    has one slot per ring slot and its free list hands out request ids (get_id_from_freelist).
//  * submit (blkif_queue_request / blkif_queue_rw_req / blkif_queue_discard_req): READ and WRITE become
//    requests of at most BLKIF_MAX_SEGMENTS_PER_REQUEST segments, or one BLKIF_OP_INDIRECT request when
//    feature-max-indirect-segments was negotiated and the I/O needs more (its segment list written into
//    indirect pages, 512 per page, whose grants go in indirect_grefs); FLUSH becomes
//    BLKIF_OP_FLUSH_DISKCACHE with no segments; DISCARD a blkif_request_discard. Every request is built
//    in the shadow first and then copied to the ring slot (blkif_ring_get_request + the final copy).
//  * Grants (get_grant / get_indirect_grant, blkif_setup_rw_req_grant): without persistent grants every
//    data page is granted (read-only for a WRITE, whose data the backend only reads) and the grant ended
//    at completion (blkif_completion -> gnttab_try_end_foreign_access). With persistent grants the
//    frontend keeps a pool of its own pages, granted writable once and reused (rinfo->grants,
//    persistent_gnts_c): a WRITE copies the data into them at submission, a READ copies each segment's
//    first_sect..last_sect out at completion (blkif_completion -> blkif_copy_from_grant), as Linux's
//    bounce path does; take_read_copy_bytes() tells the caller what to charge for it.
//  * push: RING_PUSH_REQUESTS_AND_CHECK_NOTIFY (flush_requests); notify only when the macro says so.
//  * collect (blkif_interrupt): rsp_prod read once; a producer beyond what was requested
//    (RING_RESPONSE_PROD_OVERFLOW) is counted and nothing is read; each response copied once
//    (RING_COPY_RESPONSE); an id outside the shadow, for a free slot, or with an operation other than
//    the one requested is counted in bogus_responses and ignored. A completed slot returns to the free
//    list (add_id_to_freelist); an I/O split over several requests completes when all parts have.
//  * final_check: RING_FINAL_CHECK_FOR_RESPONSES.
//
// Where it deliberately differs from Linux blkfront:
//  * Splitting an I/O of more than 11 segments into several direct requests is done here; in Linux the
//    block layer never hands blkfront such a request (blk_queue_max_segments), and blkfront's own
//    extra_ring_req exists only for 64 KiB guest pages.
//  * Adjacent-merge (BlkifFrontendConfig::merge_adjacent) models the block layer's back-merge: an I/O
//    that continues the last not-yet-pushed direct READ/WRITE request is appended to it while
//    segments allow (<= 11) and the earlier I/O ended on a page boundary.
//  * A misbehaving backend (bogus id, wrong operation, producer overflow) is counted and ignored;
//    Linux marks the device BLKIF_STATE_ERROR and stops using it.
//  * Indirect pages are granted read-only (the backend only reads them); Linux grants them writable.
//    Without persistent grants they are kept on a private free list and reused (rinfo->indirect_pages).
//  * A grant the backend still maps (end() false) is kept here and retried on later collect() and
//    retry_pending_end() calls instead of being handed to gnttab's deferred-free machinery (whose
//    timer retries once a second); EOPNOTSUPP does not switch features off (the status is reported to
//    the caller, who owns the feature negotiation).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "frontends/grant_ops.h"
#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

#include <xen/io/blkif.h>

namespace xensim {

struct BlkifFrontendConfig {
    unsigned ring_page_order = 0;        // ring-page-order written to xenstore: 2^order pages
    unsigned max_indirect_segments = 0;  // negotiated feature-max-indirect-segments; 0: no indirect
    bool persistent_grants = false;      // feature-persistent negotiated
    bool merge_adjacent = true;          // block-layer back-merge of unpushed I/Os
    blkif_vdev_t handle = 0;             // the virtual device, written into every request
};

enum class BlockOp { read, write, flush, discard };

struct BlockIo {
    std::uint64_t id = 0;  // the caller's; returned in the completion
    BlockOp op = BlockOp::read;
    std::uint64_t sector = 0;
    std::uint32_t sectors = 0;
    // Guest frames holding the data, 4 KiB each, the data contiguous from offset 0 of the first.
    std::vector<std::uint64_t> pages;
};

class BlkifRingFrontend {
  public:
    static constexpr unsigned kPageSize = 4096;
    static constexpr unsigned kSectorsPerPage = kPageSize >> 9;
    static constexpr unsigned kSegsPerIndirectFrame = kPageSize / sizeof(blkif_request_segment);  // 512

    // `sring` spans 4096 << ring_page_order bytes; the frontend initialises it.
    BlkifRingFrontend(void* sring, BlkifFrontendConfig cfg, GrantOps ops, StatsGroup& stats);
    BlkifRingFrontend(const BlkifRingFrontend&) = delete;
    BlkifRingFrontend& operator=(const BlkifRingFrontend&) = delete;

    // Queues an I/O as one or more requests (not yet visible to the backend: see push). Returns false,
    // with nothing queued, when the ring or the shadow lacks slots, or a grant or page could not be had.
    // A malformed I/O (too few pages, no sectors for READ/WRITE/DISCARD) throws std::invalid_argument.
    bool submit(const BlockIo& io);
    // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY; true = notify the backend.
    bool push();

    struct Completion {
        std::uint64_t id;
        std::int16_t status;  // BLKIF_RSP_*; the first failing part's status for a split I/O
    };
    // Consumes the responses published so far.
    std::vector<Completion> collect();
    // RING_FINAL_CHECK_FOR_RESPONSES: true if more responses arrived (collect again).
    bool final_check();

    // Misbehaviour studies: queues `req` verbatim except its id (a shadow slot's, so the response
    // finds it); nothing is granted. Its completion carries io_id. False when the ring is full.
    bool submit_raw(const blkif_request_t& req, std::uint64_t io_id);
    // Misbehaviour studies: writes the shared req_prod directly (e.g. more than a ring ahead).
    void publish_producer(RING_IDX req_prod);
    RING_IDX req_prod_pvt() const { return ring_.req_prod_pvt; }
    RING_IDX rsp_cons() const { return ring_.rsp_cons; }
    // The backend is gone (blkfront_closing -> blkif_free -> blkif_free_ring): every I/O in flight
    // completes with BLKIF_RSP_ERROR and every grant this ring holds is ended, the persistent pool
    // included; grants the backend still maps wait in grants_pending_end() for retry_pending_end().
    std::vector<Completion> abort_all();
    // Tries again to end the grants the backend still mapped (Linux: gnttab_handle_deferred, the
    // grant table's deferred-free timer); returns how many are still mapped.
    std::size_t retry_pending_end();
    // Grants created and not yet ended: held by requests in flight, in the persistent pool, or
    // waiting for the backend to unmap them. 0 after abort_all() once the backend unmapped all.
    std::size_t grants_live() const;

    unsigned in_flight() const { return ring_.req_prod_pvt - ring_.rsp_cons; }
    bool full() const { return RING_FULL(&ring_); }
    unsigned size() const { return ring_.nr_ents; }
    // Grants the backend still mapped at completion, retried on each collect().
    std::size_t grants_pending_end() const { return pending_end_.size(); }
    // Persistent grants held in the free pool.
    std::size_t persistent_pool() const { return pool_.size(); }
    // Bytes copied out of persistent grants into the caller's pages by READ completions since the
    // last call (the caller charges the copy: blkif_completion's memcpy runs in its interrupt).
    std::uint64_t take_read_copy_bytes() {
        std::uint64_t b = read_copy_bytes_;
        read_copy_bytes_ = 0;
        return b;
    }
    // Ring occupancy histogram: element n counts the pushes after which n requests were in flight.
    const std::vector<std::uint64_t>& occupancy_histogram() const { return occupancy_histogram_; }

  private:
    struct Grant {
        grant_ref_t ref;
        std::uint64_t gfn;      // the granted frame (for a persistent grant: our bounce page)
        bool own_page = false;  // a page of ours (indirect, non-persistent): reusable once ended
    };
    struct CopyOut {  // READ with persistent grants: bounce page -> caller's page at completion
        std::uint64_t from, to;
        std::uint32_t offset, bytes;  // the segment's first_sect..last_sect, in bytes
    };
    struct Shadow {
        bool used = false;
        blkif_request_t req{};           // the request as written to the ring
        std::vector<std::uint64_t> ios;  // keys into ios_
        std::vector<Grant> grants;       // data and indirect grants
        std::vector<CopyOut> copies;
        RING_IDX slot = 0;              // ring index the request was written at
        std::uint64_t next_sector = 0;  // for merging: where this request's data ends
        bool tail_full = false;         // the last segment covers its whole page
        void reset() {                  // keeps the vectors' capacity: no allocation per request
            used = false;
            req = {};
            ios.clear();
            grants.clear();
            copies.clear();
            slot = 0;
            next_sector = 0;
            tail_full = false;
        }
    };
    struct PendingIo {
        std::uint64_t id = 0;
        unsigned parts = 0;
        std::int16_t status = 0;
        bool live = false;
    };
    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily requests;
        Counter ios, segments, indirect_requests, merges, grants_granted, grants_reused, grants_ended,
            grants_end_deferred, notifications_sent, notifications_suppressed, bogus_responses, submit_full;
        Distribution ring_occupancy;
    };

    bool submit_rw(const BlockIo& io, unsigned nseg, std::uint64_t key);
    bool try_merge(const BlockIo& io, unsigned nseg, std::uint64_t key);
    // Grants data segments [first, first + n) of io into s; segs gets the n descriptors.
    bool take_segments(const BlockIo& io, unsigned first, unsigned n, Shadow& s, blkif_request_segment* segs);
    std::optional<Grant> get_persistent();
    std::optional<std::uint64_t> get_page();
    void put_grant(const Grant& g);
    bool try_end(const Grant& g);
    void release(unsigned id, bool copy_out);
    void publish(unsigned id);
    unsigned free_slots() const;

    BlkifFrontendConfig cfg_;
    GrantOps ops_;
    blkif_front_ring_t ring_{};
    RING_IDX pushed_ = 0;
    std::vector<Shadow> shadow_;
    std::vector<unsigned> free_ids_;
    // I/Os in flight by key: keys are handed out in order, so a deque indexed by key - ios_base_,
    // trimmed from the front as the oldest complete (no allocation per I/O).
    std::deque<PendingIo> ios_;
    std::uint64_t ios_base_ = 0;
    PendingIo* pending_get(std::uint64_t key) {
        if (key < ios_base_ || key - ios_base_ >= ios_.size()) return nullptr;
        PendingIo& p = ios_[key - ios_base_];
        return p.live ? &p : nullptr;
    }
    void pending_put(std::uint64_t key, PendingIo p) {
        while (ios_base_ + ios_.size() < key) ios_.push_back({});  // never: keys are consecutive
        p.live = true;
        ios_.push_back(p);
    }
    void pending_drop(std::uint64_t key) {
        if (PendingIo* p = pending_get(key)) p->live = false;
        while (!ios_.empty() && !ios_.front().live) {
            ios_.pop_front();
            ++ios_base_;
        }
    }
    std::vector<unsigned> built_;              // submit_rw scratch, reused
    std::vector<blkif_request_segment> segs_;  // submit_rw scratch, reused
    std::uint64_t* request_slots_[256] = {};   // requests counter per BLKIF_OP_*, looked up once
    std::uint64_t next_key_ = 0;
    std::vector<Grant> pool_;                // persistent grants free for reuse
    std::vector<std::uint64_t> free_pages_;  // our pages free for reuse (indirect, bounce)
    std::vector<Grant> pending_end_;
    std::vector<std::uint64_t> keys_scratch_;
    std::vector<std::uint64_t> occupancy_histogram_;
    std::uint64_t read_copy_bytes_ = 0;
    bool closed_ = false;     // abort_all() ran: grants are ended, never pooled again
    int last_unpushed_ = -1;  // shadow id of the newest request not yet pushed, for merging
    Stats stats_;
};

}  // namespace xensim
