// The ring side of blkfront; see blkif_ring_frontend.h for what is modelled and where it differs.
#include "frontends/blkif_ring_frontend.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xensim {
namespace {

// One read of a backend-written ring index (Linux: READ_ONCE(rinfo->ring.sring->rsp_prod)).
RING_IDX read_once(const RING_IDX& shared) { return *static_cast<const volatile RING_IDX*>(&shared); }

const char* op_name(std::uint8_t op) {
    switch (op) {
        case BLKIF_OP_READ:
            return "BLKIF_OP_READ";
        case BLKIF_OP_WRITE:
            return "BLKIF_OP_WRITE";
        case BLKIF_OP_FLUSH_DISKCACHE:
            return "BLKIF_OP_FLUSH_DISKCACHE";
        case BLKIF_OP_DISCARD:
            return "BLKIF_OP_DISCARD";
        case BLKIF_OP_INDIRECT:
            return "BLKIF_OP_INDIRECT";
        default:
            return "BLKIF_OP_unknown";
    }
}

// The operation a response to `req` must carry: indirect_op for INDIRECT (blkif_interrupt).
std::uint8_t expected_op(const blkif_request_t& req) {
    if (req.operation != BLKIF_OP_INDIRECT) return req.operation;
    blkif_request_indirect_t ind;
    std::memcpy(&ind, &req, sizeof(ind));
    return ind.indirect_op;
}

constexpr unsigned kMaxRingPageOrder = 4;  // XENBUS_MAX_RING_GRANT_ORDER
constexpr unsigned kMaxIndirectSegments =
    BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BlkifRingFrontend::kSegsPerIndirectFrame;

}  // namespace

BlkifRingFrontend::Stats::Stats(StatsGroup& g)
    : requests(g, "requests", "requests", "requests written to the ring, by BLKIF_OP_*"),
      ios(g, "ios", "ios", "block I/Os accepted by submit"),
      segments(g, "segments", "segments", "data segments described to the backend"),
      indirect_requests(g, "indirect_requests", "requests", "BLKIF_OP_INDIRECT requests"),
      merges(g, "merges", "ios", "I/Os merged into an earlier unpushed request"),
      grants_granted(g, "grants_granted", "grants", "grants newly created"),
      grants_reused(g, "grants_reused", "grants", "persistent grants taken again from the pool"),
      grants_ended(g, "grants_ended", "grants", "grants ended"),
      grants_end_deferred(g, "grants_end_deferred", "grants",
                          "attempts to end a grant the backend still mapped"),
      notifications_sent(g, "notifications_sent", "events",
                         "pushes after which the backend must be notified"),
      notifications_suppressed(g, "notifications_suppressed", "events",
                               "pushes the backend's req_event said need no notification"),
      bogus_responses(g, "bogus_responses", "responses",
                      "responses with a bad id or operation, or a response producer overflow"),
      submit_full(g, "submit_full", "ios", "submissions refused for lack of ring slots, grants or pages"),
      ring_occupancy(g, "ring_occupancy", "requests", "requests in flight, sampled at each push") {}

BlkifRingFrontend::BlkifRingFrontend(void* sring, BlkifFrontendConfig cfg, GrantOps ops, StatsGroup& stats)
    : cfg_(cfg), ops_(std::move(ops)), stats_(stats) {
    if (!sring) throw std::invalid_argument("blkif ring frontend: no shared ring");
    if (cfg_.ring_page_order > kMaxRingPageOrder)
        throw std::invalid_argument("blkif ring frontend: ring-page-order " +
                                    std::to_string(cfg_.ring_page_order) + " above " +
                                    std::to_string(kMaxRingPageOrder));
    if (cfg_.max_indirect_segments > kMaxIndirectSegments)
        throw std::invalid_argument("blkif ring frontend: max_indirect_segments " +
                                    std::to_string(cfg_.max_indirect_segments) + " above " +
                                    std::to_string(kMaxIndirectSegments));
    if (!ops_.grant || !ops_.end) throw std::invalid_argument("blkif ring frontend: grant callbacks missing");
    if ((cfg_.persistent_grants || cfg_.max_indirect_segments) && (!ops_.alloc_page || !ops_.page))
        throw std::invalid_argument("blkif ring frontend: page callbacks needed for persistent or indirect");
    auto* s = static_cast<blkif_sring*>(sring);
    SHARED_RING_INIT(s);  // setup_blkring
    FRONT_RING_INIT(&ring_, s, std::size_t{kPageSize} << cfg_.ring_page_order);
    shadow_.resize(RING_SIZE(&ring_));
    for (unsigned i = unsigned(shadow_.size()); i-- > 0;) free_ids_.push_back(i);  // id 0 first
}

unsigned BlkifRingFrontend::free_slots() const {
    return std::min<unsigned>(RING_FREE_REQUESTS(&ring_), unsigned(free_ids_.size()));
}

bool BlkifRingFrontend::submit(const BlockIo& io) {
    unsigned nseg = 0;
    if (io.op == BlockOp::read || io.op == BlockOp::write) {
        if (io.sectors == 0) throw std::invalid_argument("blkif ring frontend: READ/WRITE of no sectors");
        nseg = (io.sectors + kSectorsPerPage - 1) / kSectorsPerPage;
        if (io.pages.size() < nseg)
            throw std::invalid_argument("blkif ring frontend: " + std::to_string(io.sectors) +
                                        " sectors need " + std::to_string(nseg) + " pages, got " +
                                        std::to_string(io.pages.size()));
    } else if (io.op == BlockOp::discard && io.sectors == 0) {
        throw std::invalid_argument("blkif ring frontend: DISCARD of no sectors");
    }
    std::uint64_t key = next_key_++;
    pending_put(key, PendingIo{io.id, 1, BLKIF_RSP_OKAY});

    if (nseg && cfg_.merge_adjacent && try_merge(io, nseg, key)) {
        stats_.ios.inc();
        stats_.merges.inc();
        return true;
    }
    bool ok = false;
    if (nseg) {
        ok = submit_rw(io, nseg, key);
    } else if (free_slots() > 0) {
        unsigned id = free_ids_.back();
        free_ids_.pop_back();
        Shadow& s = shadow_[id];
        s.reset();
        s.used = true;
        s.ios.push_back(key);
        if (io.op == BlockOp::flush) {
            // blkif_queue_rw_req for REQ_OP_FLUSH: FLUSH_DISKCACHE with no segments.
            s.req.operation = BLKIF_OP_FLUSH_DISKCACHE;
            s.req.nr_segments = 0;
            s.req.handle = cfg_.handle;
            s.req.id = id;
            s.req.sector_number = io.sector;
        } else {
            // blkif_queue_discard_req
            blkif_request_discard_t d{};
            d.operation = BLKIF_OP_DISCARD;
            d.flag = 0;
            d.handle = cfg_.handle;
            d.id = id;
            d.sector_number = io.sector;
            d.nr_sectors = io.sectors;
            static_assert(sizeof(d) <= sizeof(s.req), "discard request fits a ring slot");
            std::memcpy(&s.req, &d, sizeof(d));
        }
        publish(id);
        ok = true;
    }
    if (!ok) {
        pending_drop(key);
        stats_.submit_full.inc();
        return false;
    }
    stats_.ios.inc();
    return true;
}

// READ / WRITE: parts of at most `cap` segments each; a part above 11 segments goes indirect.
bool BlkifRingFrontend::submit_rw(const BlockIo& io, unsigned nseg, std::uint64_t key) {
    const bool indirect = cfg_.max_indirect_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST;
    const unsigned cap = indirect ? cfg_.max_indirect_segments : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    const unsigned parts = (nseg + cap - 1) / cap;
    if (free_slots() < parts) return false;
    const std::uint8_t op = io.op == BlockOp::write ? BLKIF_OP_WRITE : BLKIF_OP_READ;
    pending_get(key)->parts = parts;

    std::vector<unsigned>& built = built_;
    built.clear();
    bool ok = true;
    for (unsigned p = 0; p < parts && ok; ++p) {
        unsigned first = p * cap, n = std::min(cap, nseg - first);
        unsigned id = free_ids_.back();
        free_ids_.pop_back();
        built.push_back(id);
        Shadow& s = shadow_[id];
        s.reset();
        s.used = true;
        s.ios.push_back(key);
        std::uint64_t sector = io.sector + std::uint64_t(first) * kSectorsPerPage;
        std::vector<blkif_request_segment>& segs = segs_;
        segs.resize(n);
        ok = take_segments(io, first, n, s, segs.data());
        if (!ok) break;
        if (n <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
            s.req.operation = op;
            s.req.nr_segments = std::uint8_t(n);
            s.req.handle = cfg_.handle;
            s.req.id = id;
            s.req.sector_number = sector;
            std::copy(segs.begin(), segs.end(), s.req.seg);
            const blkif_request_segment& last = segs.back();
            s.tail_full = last.last_sect == kSectorsPerPage - 1;
            s.next_sector = sector + std::uint64_t(n - 1) * kSectorsPerPage + last.last_sect + 1;
            continue;
        }
        // blkif_queue_rw_req, indirect: the segment list goes into indirect pages (get_indirect_grant).
        blkif_request_indirect_t ind{};
        ind.operation = BLKIF_OP_INDIRECT;
        ind.indirect_op = op;
        ind.nr_segments = std::uint16_t(n);
        ind.id = id;
        ind.sector_number = sector;
        ind.handle = cfg_.handle;
        unsigned pages = (n + kSegsPerIndirectFrame - 1) / kSegsPerIndirectFrame;
        for (unsigned i = 0; i < pages && ok; ++i) {
            std::optional<Grant> g;
            if (cfg_.persistent_grants) {
                g = get_persistent();
            } else if (std::optional<std::uint64_t> pg = get_page()) {
                if (std::optional<grant_ref_t> ref = ops_.grant(*pg, /*readonly=*/true)) {
                    stats_.grants_granted.inc();
                    g = Grant{*ref, *pg, true};
                } else {
                    free_pages_.push_back(*pg);
                }
            }
            if (!g) {
                ok = false;
                break;
            }
            s.grants.push_back(*g);
            unsigned lo = i * kSegsPerIndirectFrame;
            unsigned cnt = std::min(kSegsPerIndirectFrame, n - lo);
            std::uint8_t* frame = ops_.page(g->gfn);
            std::memset(frame, 0, kPageSize);
            std::memcpy(frame, &segs[lo], cnt * sizeof(blkif_request_segment));
            ind.indirect_grefs[i] = g->ref;
        }
        if (!ok) break;
        static_assert(sizeof(ind) <= sizeof(s.req), "indirect request fits a ring slot");
        std::memcpy(&s.req, &ind, sizeof(ind));
        stats_.indirect_requests.inc();
    }
    if (!ok) {
        for (unsigned id : built) release(id, /*copy_out=*/false);
        return false;
    }
    for (unsigned id : built) publish(id);
    return true;
}

// Block-layer back-merge into the newest unpushed direct request of the same operation.
bool BlkifRingFrontend::try_merge(const BlockIo& io, unsigned nseg, std::uint64_t key) {
    if (last_unpushed_ < 0) return false;
    Shadow& s = shadow_[unsigned(last_unpushed_)];
    const std::uint8_t op = io.op == BlockOp::write ? BLKIF_OP_WRITE : BLKIF_OP_READ;
    if (!s.used || s.req.operation != op || !s.tail_full || s.next_sector != io.sector ||
        s.req.nr_segments + nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST)
        return false;
    std::size_t grants_before = s.grants.size(), copies_before = s.copies.size();
    blkif_request_segment segs[BLKIF_MAX_SEGMENTS_PER_REQUEST];
    if (!take_segments(io, 0, nseg, s, segs)) {
        for (std::size_t i = grants_before; i < s.grants.size(); ++i) put_grant(s.grants[i]);
        s.grants.resize(grants_before);
        s.copies.resize(copies_before);
        return false;
    }
    std::copy(segs, segs + nseg, s.req.seg + s.req.nr_segments);
    s.req.nr_segments = std::uint8_t(s.req.nr_segments + nseg);
    const blkif_request_segment& last = segs[nseg - 1];
    s.tail_full = last.last_sect == kSectorsPerPage - 1;
    s.next_sector = io.sector + std::uint64_t(nseg - 1) * kSectorsPerPage + last.last_sect + 1;
    s.ios.push_back(key);
    *RING_GET_REQUEST(&ring_, s.slot) = s.req;  // still ours: not yet pushed
    stats_.segments.inc(nseg);
    return true;
}

// blkif_setup_rw_req_grant: one grant per 4 KiB segment, data contiguous from offset 0.
bool BlkifRingFrontend::take_segments(const BlockIo& io, unsigned first, unsigned n, Shadow& s,
                                      blkif_request_segment* segs) {
    for (unsigned i = 0; i < n; ++i) {
        unsigned seg = first + i;
        unsigned left = io.sectors - seg * kSectorsPerPage;
        std::uint8_t last = std::uint8_t(std::min(left, kSectorsPerPage) - 1);
        std::uint64_t gfn = io.pages[seg];
        std::optional<Grant> g;
        if (cfg_.persistent_grants) {
            g = get_persistent();
            if (g && io.op == BlockOp::write)
                std::memcpy(ops_.page(g->gfn), ops_.page(gfn), (last + 1u) * 512u);  // bounce in
            else if (g)
                s.copies.push_back({g->gfn, gfn, 0, (last + 1u) * 512u});
        } else if (std::optional<grant_ref_t> ref = ops_.grant(gfn, io.op == BlockOp::write)) {
            stats_.grants_granted.inc();
            g = Grant{*ref, gfn, false};
        }
        if (!g) return false;
        s.grants.push_back(*g);
        segs[i] = blkif_request_segment{g->ref, 0, last};
    }
    return true;
}

// get_grant with feature_persistent: a pooled grant if any, else a new page granted writable.
std::optional<BlkifRingFrontend::Grant> BlkifRingFrontend::get_persistent() {
    if (!pool_.empty()) {
        Grant g = pool_.back();
        pool_.pop_back();
        stats_.grants_reused.inc();
        return g;
    }
    std::optional<std::uint64_t> pg = get_page();
    if (!pg) return std::nullopt;
    std::optional<grant_ref_t> ref = ops_.grant(*pg, /*readonly=*/false);
    if (!ref) {
        free_pages_.push_back(*pg);
        return std::nullopt;
    }
    stats_.grants_granted.inc();
    return Grant{*ref, *pg, true};
}

std::optional<std::uint64_t> BlkifRingFrontend::get_page() {
    if (!free_pages_.empty()) {
        std::uint64_t pg = free_pages_.back();
        free_pages_.pop_back();
        return pg;
    }
    return ops_.alloc_page();
}

// A grant a request no longer needs: back to the pool (persistent) or ended.
void BlkifRingFrontend::put_grant(const Grant& g) {
    if (cfg_.persistent_grants && !closed_) {
        pool_.push_back(g);
    } else if (!try_end(g)) {
        pending_end_.push_back(g);
    }
}

bool BlkifRingFrontend::try_end(const Grant& g) {
    if (!ops_.end(g.ref)) {
        stats_.grants_end_deferred.inc();
        return false;
    }
    stats_.grants_ended.inc();
    if (g.own_page) free_pages_.push_back(g.gfn);
    return true;
}

// blkif_completion + add_id_to_freelist.
void BlkifRingFrontend::release(unsigned id, bool copy_out) {
    Shadow& s = shadow_[id];
    // blkif_completion -> blkif_copy_from_grant: only the segment's sectors, [sg->offset,
    // sg->offset + sg->length) of the page; the rest of the caller's page is not the I/O's.
    if (copy_out) {
        for (const CopyOut& c : s.copies) {
            std::memcpy(ops_.page(c.to) + c.offset, ops_.page(c.from) + c.offset, c.bytes);
            read_copy_bytes_ += c.bytes;
        }
    }
    for (const Grant& g : s.grants) put_grant(g);
    s.reset();
    free_ids_.push_back(id);
}

// blkif_ring_get_request's final copy: the shadow's request into the ring slot at req_prod_pvt.
void BlkifRingFrontend::publish(unsigned id) {
    Shadow& s = shadow_[id];
    s.slot = ring_.req_prod_pvt;
    *RING_GET_REQUEST(&ring_, ring_.req_prod_pvt) = s.req;
    ring_.req_prod_pvt++;
    std::uint64_t*& rslot = request_slots_[s.req.operation];
    if (!rslot) rslot = &stats_.requests.at(op_name(s.req.operation));
    ++*rslot;
    if (s.req.operation == BLKIF_OP_READ || s.req.operation == BLKIF_OP_WRITE) {
        stats_.segments.inc(s.req.nr_segments);
        last_unpushed_ = int(id);
    } else {
        if (s.req.operation == BLKIF_OP_INDIRECT) {
            blkif_request_indirect_t ind;
            std::memcpy(&ind, &s.req, sizeof(ind));
            stats_.segments.inc(ind.nr_segments);
        }
        last_unpushed_ = -1;
    }
}

// flush_requests.
bool BlkifRingFrontend::push() {
    last_unpushed_ = -1;
    if (ring_.req_prod_pvt == pushed_) return false;
    int notify = 0;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&ring_, notify);
    pushed_ = ring_.req_prod_pvt;
    stats_.ring_occupancy.sample(in_flight());
    if (occupancy_histogram_.size() <= in_flight()) occupancy_histogram_.resize(in_flight() + 1, 0);
    ++occupancy_histogram_[in_flight()];
    (notify ? stats_.notifications_sent : stats_.notifications_suppressed).inc();
    return notify != 0;
}

// blkif_interrupt.
std::vector<BlkifRingFrontend::Completion> BlkifRingFrontend::collect() {
    std::vector<Completion> done;
    retry_pending_end();
    RING_IDX rp = read_once(ring_.sring->rsp_prod);
    xen_rmb();  // see the responses up to rp
    // "illegal number of responses"; also more responses than requests published, which ring.h's
    // RING_RESPONSE_PROD_OVERFLOW (a ring's worth) lets through and would make rsp_cons pass req_prod.
    if (RING_RESPONSE_PROD_OVERFLOW(&ring_, rp) || rp - ring_.rsp_cons > pushed_ - ring_.rsp_cons) {
        stats_.bogus_responses.inc();
        return done;
    }
    for (RING_IDX i = ring_.rsp_cons; i != rp; ++i) {
        blkif_response_t rsp;
        RING_COPY_RESPONSE(&ring_, i, &rsp);  // read once; only the copy is used
        ring_.rsp_cons = i + 1;
        // "response has incorrect id", "response references no pending request", "wrong operation"
        // An INDIRECT a backend does not know comes back from dispatch_other_io as INDIRECT.
        if (rsp.id >= shadow_.size() || !shadow_[rsp.id].used ||
            (rsp.operation != expected_op(shadow_[rsp.id].req) &&
             !(rsp.operation == BLKIF_OP_INDIRECT && rsp.status == BLKIF_RSP_EOPNOTSUPP &&
               shadow_[rsp.id].req.operation == BLKIF_OP_INDIRECT))) {
            stats_.bogus_responses.inc();
            continue;
        }
        unsigned id = unsigned(rsp.id);
        std::vector<std::uint64_t>& keys = keys_scratch_;  // reused: no allocation per response
        keys.clear();
        keys.swap(shadow_[id].ios);
        release(id, rsp.status == BLKIF_RSP_OKAY);
        for (std::uint64_t key : keys) {
            PendingIo* pp = pending_get(key);
            if (!pp) continue;
            PendingIo& p = *pp;
            if (p.status == BLKIF_RSP_OKAY) p.status = rsp.status;
            if (--p.parts == 0) {
                done.push_back({p.id, p.status});
                pending_drop(key);
            }
        }
    }
    return done;
}

bool BlkifRingFrontend::submit_raw(const blkif_request_t& req, std::uint64_t io_id) {
    if (free_slots() == 0) return false;
    unsigned id = free_ids_.back();
    free_ids_.pop_back();
    std::uint64_t key = next_key_++;
    pending_put(key, PendingIo{io_id, 1, BLKIF_RSP_OKAY});
    Shadow& s = shadow_[id];
    s.reset();
    s.used = true;
    s.ios.push_back(key);
    s.req = req;
    s.req.id = id;  // the response must find this slot; everything else is as given
    publish(id);
    stats_.ios.inc();
    return true;
}

void BlkifRingFrontend::publish_producer(RING_IDX req_prod) {
    xen_wmb();
    ring_.sring->req_prod = req_prod;
}

std::size_t BlkifRingFrontend::retry_pending_end() {
    if (!pending_end_.empty()) {
        std::vector<Grant> still;
        for (const Grant& g : pending_end_)
            if (!try_end(g)) still.push_back(g);
        pending_end_ = std::move(still);
    }
    return pending_end_.size();
}

std::size_t BlkifRingFrontend::grants_live() const {
    std::size_t n = pool_.size() + pending_end_.size();
    for (const Shadow& s : shadow_)
        if (s.used) n += s.grants.size();
    return n;
}

std::vector<BlkifRingFrontend::Completion> BlkifRingFrontend::abort_all() {
    std::vector<Completion> done;
    // blkif_free_ring: the grants of requests in flight, then the persistent pool, are ended
    // (gnttab_end_foreign_access, which defers the ones the backend still maps).
    closed_ = true;
    for (unsigned id = 0; id < shadow_.size(); ++id)
        if (shadow_[id].used) release(id, false);
    std::vector<Grant> pool;
    pool.swap(pool_);
    for (const Grant& g : pool) put_grant(g);
    for (const PendingIo& p : ios_)
        if (p.live) done.push_back({p.id, BLKIF_RSP_ERROR});
    ios_.clear();
    ios_base_ = next_key_;
    last_unpushed_ = -1;
    return done;
}

bool BlkifRingFrontend::final_check() {
    int more = 0;
    RING_FINAL_CHECK_FOR_RESPONSES(&ring_, more);
    return more != 0;
}

}  // namespace xensim
