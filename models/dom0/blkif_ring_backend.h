// The ring side of blkback: taking blkif requests off a shared ring a guest may fill with anything.
//
// The problem. A blkfront guest and dom0's blkback share a ring (one or 2^ring-page-order granted
// pages) of blkif_request / blkif_response slots with free-running producer and consumer indexes.
// The guest owns the requests and req_prod and can rewrite them at any moment, so the backend must
// treat every byte it reads from the ring as hostile: it copies each request out of the ring once,
// validates the private copy and uses only the copy, answers a malformed request with an error
// response instead of acting on it, and stops touching a ring whose producer index is impossible.
// This engine is that part of blkback with no SystemC, no grant mapping and no storage: the caller
// (the SystemC blkback module) maps the ring pages contiguously, hands the engine the address, maps
// segment and indirect pages itself, and performs the I/O of the requests the engine accepts.
//
// What is modelled, following Linux drivers/block/xen-blkback/blkback.c and xenbus.c (v6.x) and
// the protocol text of xen/include/public/io/blkif.h (Xen 4.17):
//  * Attach (xen_blkif_map): the back ring is attached at the shared rsp_prod (BACK_RING_ATTACH),
//    as blkback does for a ring a frontend may have used before; req_prod more than a ring ahead of
//    rsp_prod refuses the ring (broken() is true and consume() only reports disconnect).
//  * consume (__do_block_io_op): req_prod is read once; RING_REQUEST_PROD_OVERFLOW -> "Frontend
//    provided bogus ring requests", the ring is halted: nothing is consumed now or later, the
//    verdict is disconnect. Requests are then taken until req_prod or until a full ring of
//    requests is unanswered (RING_REQUEST_CONS_OVERFLOW). Each slot is copied once with
//    RING_COPY_REQUEST and req_cons advanced before anything is answered.
//  * Dispatch goes through a table keyed by BLKIF_OP_* (READ, WRITE, WRITE_BARRIER,
//    FLUSH_DISKCACHE, INDIRECT -> dispatch_rw_block_io; DISCARD -> dispatch_discard_io; anything
//    else, BLKIF_OP_RESERVED_1 included -> dispatch_other_io, which answers BLKIF_RSP_EOPNOTSUPP).
//  * dispatch_rw_block_io, in Linux's order, every failure answered BLKIF_RSP_ERROR: an INDIRECT
//    whose indirect_op is not READ/WRITE; nr_segments 0 for READ/WRITE (FLUSH and BARRIER may carry
//    none), above BLKIF_MAX_SEGMENTS_PER_REQUEST for a direct request or above the advertised
//    feature-max-indirect-segments for an indirect one; a segment with last_sect >= 8
//    (XEN_PAGE_SIZE >> 9) or last_sect < first_sect; then xen_vbd_translate: anything but READ on a
//    read-only disk, and a non-empty range whose end wraps or passes the disk's size.
//    The response to a request that went through dispatch_rw_block_io carries the effective
//    operation: indirect_op for INDIRECT (pending_req->operation = req_operation), as blkfront
//    expects. For INDIRECT the segment checks and xen_vbd_translate run in a second step,
//    parse_indirect_segments (xen_blkbk_parse_indirect), once the caller has mapped the indirect
//    pages named by the first INDIRECT_PAGES(nr_segments) indirect_grefs.
//  * dispatch_discard_io: xen_vbd_translate as a write over [sector_number, +nr_sectors):
//    read-only or out of range -> BLKIF_RSP_ERROR with operation DISCARD.
//
// Where it deliberately differs from Linux blkback:
//  * Optional operations not offered (feature-flush-cache, feature-barrier, feature-discard at 0)
//    are answered BLKIF_RSP_EOPNOTSUPP at once, after the read-only and range checks. Linux passes
//    them to the block layer, which fails them with BLK_STS_NOTSUPP -> BLKIF_RSP_EOPNOTSUPP at
//    completion (__end_block_io_op / dispatch_discard_io); blkif.h allows that code at any time.
//  * INDIRECT when feature-max-indirect-segments was not offered (max_indirect_segments = 0) is
//    treated as an unknown operation (blkif.h: a backend that does not recognise it must not create
//    the node), i.e. dispatch_other_io's BLKIF_RSP_EOPNOTSUPP. Linux always offers it.
//  * max_indirect_segments is a parameter (Linux: MAX_INDIRECT_SEGMENTS, 256). A request needing
//    more than BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST indirect pages (possible only if the parameter
//    exceeds 8 * 512) is refused with BLKIF_RSP_ERROR; Linux would BUG_ON.
//  * No logical-block-size alignment check (the simulated disks have 512-byte sectors), no
//    barrier drain, no x86_32 / x86_64 protocol translation (native layout only), no pending_req
//    pool: every well-formed request is accepted and the caller applies back-pressure.
//  * Responses are written as requests are rejected and pushed once per consume() (Linux pushes
//    and checks for notification after each make_response); accepted requests are answered by the
//    caller with push_response / flush_responses.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

#include <xen/io/blkif.h>

namespace xensim {

struct BlkifBackendConfig {
    unsigned ring_page_order = 0;        // the frontend's ring-page-order: 2^order pages
    std::uint64_t disk_sectors = 0;      // the "sectors" node, 512-byte sectors
    bool read_only = false;              // mode "r"
    unsigned max_indirect_segments = 0;  // feature-max-indirect-segments; 0: not offered
    bool feature_flush = true;           // feature-flush-cache
    bool feature_barrier = false;        // feature-barrier (Linux blkback no longer offers it)
    bool feature_discard = true;         // feature-discard
};

// The segments of one request, with the interface of the std::vector it replaces. Up to
// BLKIF_MAX_SEGMENTS_PER_REQUEST (any direct request) are stored inline, so taking a direct request
// off the ring allocates nothing; more (an indirect request's) go to the heap.
class BlkbackSegments {
  public:
    using value_type = blkif_request_segment;
    using iterator = value_type*;
    using const_iterator = const value_type*;
    static constexpr std::size_t kInline = BLKIF_MAX_SEGMENTS_PER_REQUEST;

    BlkbackSegments() = default;
    BlkbackSegments(const BlkbackSegments&) = default;
    BlkbackSegments& operator=(const BlkbackSegments&) = default;
    BlkbackSegments(BlkbackSegments&& o) noexcept { *this = std::move(o); }
    BlkbackSegments& operator=(BlkbackSegments&& o) noexcept {  // leaves o empty, as a vector's
        if (this == &o) return *this;
        std::copy(o.inline_, o.inline_ + (o.on_heap_ ? 0 : o.size_), inline_);
        heap_ = std::move(o.heap_);
        size_ = o.size_;
        on_heap_ = o.on_heap_;
        o.clear();
        return *this;
    }

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    value_type* data() { return on_heap_ ? heap_.data() : inline_; }
    const value_type* data() const { return on_heap_ ? heap_.data() : inline_; }
    iterator begin() { return data(); }
    iterator end() { return data() + size_; }
    const_iterator begin() const { return data(); }
    const_iterator end() const { return data() + size_; }
    value_type& operator[](std::size_t i) { return data()[i]; }
    const value_type& operator[](std::size_t i) const { return data()[i]; }
    value_type& front() { return data()[0]; }
    const value_type& front() const { return data()[0]; }
    value_type& back() { return data()[size_ - 1]; }
    const value_type& back() const { return data()[size_ - 1]; }

    void clear() {
        heap_.clear();
        on_heap_ = false;
        size_ = 0;
    }
    void assign(const value_type* first, const value_type* last) {
        clear();
        const auto n = static_cast<std::size_t>(last - first);
        if (n <= kInline) {
            std::copy(first, last, inline_);
        } else {
            heap_.assign(first, last);
            on_heap_ = true;
        }
        size_ = n;
    }
    void push_back(const value_type& v) {
        if (!on_heap_ && size_ < kInline) {
            inline_[size_++] = v;
            return;
        }
        if (!on_heap_) {
            heap_.assign(inline_, inline_ + size_);
            on_heap_ = true;
        }
        heap_.push_back(v);
        ++size_;
    }

  private:
    value_type inline_[kInline] = {};
    std::vector<value_type> heap_;
    std::size_t size_ = 0;
    bool on_heap_ = false;
};

// One validated request, built from the private copy only.
struct BlkbackRequest {
    std::uint8_t operation = 0;  // BLKIF_OP_* as the frontend wrote it
    std::uint64_t id = 0;
    std::uint64_t sector_number = 0;
    blkif_vdev_t handle = 0;
    BlkbackSegments segments;                 // for INDIRECT: filled by parse_indirect_segments
    std::vector<grant_ref_t> indirect_grefs;  // INDIRECT: the INDIRECT_PAGES(nr) pages to read
    std::uint8_t indirect_op = 0;             // INDIRECT: BLKIF_OP_READ or BLKIF_OP_WRITE
    std::uint16_t nr_indirect_segments = 0;   // INDIRECT: nr_segments
    std::uint64_t nr_sectors = 0;             // DISCARD
    std::uint8_t discard_flag = 0;            // DISCARD: BLKIF_DISCARD_SECURE or 0

    // Sectors transferred (sum over segments) or, for DISCARD, nr_sectors.
    std::uint64_t total_sectors() const;
    // The operation the response must carry: indirect_op for INDIRECT, else operation.
    std::uint8_t response_operation() const;
};

enum class BlkbackVerdict {
    ok,          // accepted
    error,       // answered BLKIF_RSP_ERROR
    eopnotsupp,  // answered BLKIF_RSP_EOPNOTSUPP
    disconnect,  // bogus ring: processing halted
};

class BlkifRingBackend {
  public:
    static constexpr unsigned kSectorsPerPage = 4096 >> 9;  // XEN_PAGE_SIZE >> 9
    static constexpr unsigned kSegsPerIndirectFrame = 4096 / sizeof(blkif_request_segment);  // 512
    static constexpr unsigned kMaxRingPageOrder = 4;  // XENBUS_MAX_RING_GRANT_ORDER

    // Ring slots for a ring of 2^order pages: __CONST_RING_SIZE(blkif, 4096 << order).
    static unsigned ring_size(unsigned ring_page_order);
    // Pages needed for nr indirect segments: INDIRECT_PAGES(nr).
    static unsigned indirect_pages(unsigned nr_segments);
    // "BLKIF_OP_READ" and so on; "BLKIF_OP_unknown" for anything else.
    static const char* op_name(std::uint8_t op);

    // `sring` is the frontend-initialised shared ring spanning 4096 << ring_page_order bytes.
    BlkifRingBackend(void* sring, BlkifBackendConfig cfg, StatsGroup& stats);
    BlkifRingBackend(const BlkifRingBackend&) = delete;
    BlkifRingBackend& operator=(const BlkifRingBackend&) = delete;

    struct Batch {
        std::vector<BlkbackRequest> accepted;
        std::vector<BlkbackVerdict> verdicts;  // one per request consumed, in ring order
        unsigned rejected = 0;                 // answered at once
        bool disconnect = false;               // bogus ring: halted, nothing consumed
        bool notify = false;                   // the rejections' push asks for a notification
    };
    // Consumes every available request; rejections are answered and pushed before returning.
    Batch consume();

    // Second step for an accepted INDIRECT request: `pages` are the caller's mappings of
    // req.indirect_grefs (same count), each an array of kSegsPerIndirectFrame segments. Every
    // segment is read once; on success req.segments is filled and true returned. On failure the
    // BLKIF_RSP_ERROR response is written (not pushed: call flush_responses) and false returned.
    bool parse_indirect_segments(BlkbackRequest& req, const std::vector<const blkif_request_segment*>& pages);

    // Writes the response into slot rsp_prod_pvt (make_response); when `push`, pushes it with
    // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY and returns whether the frontend must be notified.
    bool push_response(std::uint64_t id, std::uint8_t operation, std::int16_t status, bool push = true);
    // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY for responses written so far; true = notify.
    bool flush_responses();
    // RING_FINAL_CHECK_FOR_REQUESTS after a batch: true = more requests arrived, consume again.
    bool final_check();

    bool broken() const { return broken_; }
    unsigned size() const { return ring_.nr_ents; }
    RING_IDX req_cons() const { return ring_.req_cons; }
    RING_IDX rsp_prod_pvt() const { return ring_.rsp_prod_pvt; }
    // Requests consumed and not yet answered.
    unsigned outstanding() const { return ring_.req_cons - ring_.rsp_prod_pvt; }

  private:
    enum class Kind { rw, flush, discard, indirect };
    struct OpDesc {
        std::uint8_t op;
        const char* name;
        Kind kind;
    };
    static const OpDesc* find_op(std::uint8_t op);  // nullptr: dispatch_other_io
    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily requests, rejected;
        std::uint64_t* request_slots[256] = {};  // requests.at(op_name(op)), once an op was seen
        Counter accepted, disconnects, responses, notifications_sent, notifications_suppressed;
    };

    // Validation of a private copy; on rejection fills status, response op and reason.
    struct Rejection {
        std::int16_t status = BLKIF_RSP_OKAY;
        std::uint8_t operation = 0;
        const char* reason = nullptr;
    };
    BlkbackVerdict dispatch(const blkif_request_t& copy, BlkbackRequest& out, Rejection& why) const;
    bool check_rw(const blkif_request_t& copy, const OpDesc& d, BlkbackRequest& out, Rejection& why) const;
    bool check_indirect(const blkif_request_t& copy, BlkbackRequest& out, Rejection& why) const;
    bool check_discard(const blkif_request_t& copy, BlkbackRequest& out, Rejection& why) const;
    // xen_vbd_translate: read-only for anything but READ, then the range.
    const char* translate(std::uint8_t effective_op, std::uint64_t sector, std::uint64_t nr_sects) const;
    bool offered(std::uint8_t op) const;
    void reject(const BlkbackRequest& req, const Rejection& why);

    BlkifBackendConfig cfg_;
    blkif_back_ring_t ring_{};  // private: our consumer / producer indexes
    RING_IDX pushed_ = 0;       // rsp_prod as we last published it (the shared copy is guest-writable)
    bool broken_ = false;       // bogus ring seen: never read the ring again
    Stats stats_;
};

}  // namespace xensim
