// The ring side of blkback; see blkif_ring_backend.h for what is modelled and where it differs.
#include "models/dom0/blkif_ring_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xensim {
namespace {

// One read of a guest-written ring index (Linux: the plain load of req_prod before rmb()).
RING_IDX read_once(const RING_IDX& shared) { return *static_cast<const volatile RING_IDX*>(&shared); }

[[noreturn]] void invariant_broken(const char* what) {
    std::fprintf(stderr, "blkif_ring_backend: internal invariant broken: %s\n", what);
    std::abort();
}

// The validation failures, one label each in the CounterFamily "rejected".
constexpr const char* kBadIndirectOp = "bad_indirect_op";
constexpr const char* kBadNrSegments = "bad_nr_segments";
constexpr const char* kTooManyIndirectPages = "too_many_indirect_pages";
constexpr const char* kBadFirstLastSect = "bad_first_last_sect";
constexpr const char* kReadOnly = "read_only";
constexpr const char* kBadSectorRange = "bad_sector_range";
constexpr const char* kNotOffered = "not_offered";
constexpr const char* kUnknownOp = "unknown_op";
constexpr const char* kIndirectNotNegotiated = "indirect_not_negotiated";

// last_sect beyond the page or before first_sect (dispatch_rw_block_io, xen_blkbk_parse_indirect).
bool bad_segment(const blkif_request_segment& s) {
    return s.last_sect >= BlkifRingBackend::kSectorsPerPage || s.last_sect < s.first_sect;
}

}  // namespace

// __do_block_io_op's switch: READ, WRITE, WRITE_BARRIER, FLUSH_DISKCACHE and INDIRECT go to
// dispatch_rw_block_io, DISCARD to dispatch_discard_io, anything else to dispatch_other_io.
const BlkifRingBackend::OpDesc* BlkifRingBackend::find_op(std::uint8_t op) {
    static const OpDesc table[] = {
        {BLKIF_OP_READ, "BLKIF_OP_READ", Kind::rw},
        {BLKIF_OP_WRITE, "BLKIF_OP_WRITE", Kind::rw},
        {BLKIF_OP_WRITE_BARRIER, "BLKIF_OP_WRITE_BARRIER", Kind::flush},
        {BLKIF_OP_FLUSH_DISKCACHE, "BLKIF_OP_FLUSH_DISKCACHE", Kind::flush},
        {BLKIF_OP_DISCARD, "BLKIF_OP_DISCARD", Kind::discard},
        {BLKIF_OP_INDIRECT, "BLKIF_OP_INDIRECT", Kind::indirect},
    };
    for (const OpDesc& d : table)
        if (d.op == op) return &d;
    return nullptr;
}

const char* BlkifRingBackend::op_name(std::uint8_t op) {
    if (op == BLKIF_OP_RESERVED_1) return "BLKIF_OP_RESERVED_1";
    const OpDesc* d = find_op(op);
    return d ? d->name : "BLKIF_OP_unknown";
}

unsigned BlkifRingBackend::ring_size(unsigned ring_page_order) {
    return __CONST_RING_SIZE(blkif, std::size_t{4096} << ring_page_order);
}

unsigned BlkifRingBackend::indirect_pages(unsigned nr_segments) {
    return (nr_segments + kSegsPerIndirectFrame - 1) / kSegsPerIndirectFrame;
}

std::uint64_t BlkbackRequest::total_sectors() const {
    if (operation == BLKIF_OP_DISCARD) return nr_sectors;
    std::uint64_t n = 0;
    for (const blkif_request_segment& s : segments) n += unsigned(s.last_sect) - s.first_sect + 1;
    return n;
}

std::uint8_t BlkbackRequest::response_operation() const {
    return operation == BLKIF_OP_INDIRECT ? indirect_op : operation;
}

BlkifRingBackend::Stats::Stats(StatsGroup& g)
    : requests(g, "requests", "requests", "requests taken off the ring, by BLKIF_OP_* as written"),
      rejected(g, "rejected", "requests", "requests answered at validation, by reason"),
      accepted(g, "accepted", "requests", "requests that passed validation and went to the caller"),
      disconnects(g, "disconnects", "events", "rings halted for a bogus req_prod"),
      responses(g, "responses", "responses", "responses written to the ring"),
      notifications_sent(g, "notifications_sent", "events",
                         "pushes after which the frontend must be notified"),
      notifications_suppressed(g, "notifications_suppressed", "events",
                               "pushes the frontend's rsp_event said need no notification") {}

BlkifRingBackend::BlkifRingBackend(void* sring, BlkifBackendConfig cfg, StatsGroup& stats)
    : cfg_(cfg), stats_(stats) {
    if (!sring) throw std::invalid_argument("blkif ring backend: no shared ring");
    if (cfg_.ring_page_order > kMaxRingPageOrder)
        throw std::invalid_argument("blkif ring backend: ring-page-order " +
                                    std::to_string(cfg_.ring_page_order) + " above " +
                                    std::to_string(kMaxRingPageOrder));
    auto* s = static_cast<blkif_sring*>(sring);
    // xen_blkif_map: attach where the frontend's responses stand; a req_prod more than a ring
    // ahead of that cannot be honest.
    RING_IDX rsp_prod = read_once(s->rsp_prod);
    RING_IDX req_prod = read_once(s->req_prod);
    BACK_RING_ATTACH(&ring_, s, rsp_prod, std::size_t{4096} << cfg_.ring_page_order);
    pushed_ = rsp_prod;
    if (req_prod - rsp_prod > RING_SIZE(&ring_)) {
        broken_ = true;
        stats_.disconnects.inc();
    }
}

BlkifRingBackend::Batch BlkifRingBackend::consume() {
    Batch batch;
    if (broken_) {
        batch.disconnect = true;
        return batch;
    }
    RING_IDX rc = ring_.req_cons;
    RING_IDX rp = read_once(ring_.sring->req_prod);
    xen_rmb();  // see the requests up to rp
    if (RING_REQUEST_PROD_OVERFLOW(&ring_, rp)) {
        // "Frontend provided bogus ring requests ... Halting ring processing"
        broken_ = true;
        stats_.disconnects.inc();
        batch.disconnect = true;
        return batch;
    }
    // One allocation each for the batch (a guest may move req_prod back: rp - rc can wrap).
    const std::size_t expect = std::min<RING_IDX>(rp - rc, RING_SIZE(&ring_));
    batch.verdicts.reserve(expect);
    batch.accepted.reserve(expect);
    while (rc != rp) {
        if (RING_REQUEST_CONS_OVERFLOW(&ring_, rc)) break;
        blkif_request_t copy;
        RING_COPY_REQUEST(&ring_, rc, &copy);
        ring_.req_cons = ++rc;  // before any response
        std::uint64_t*& slot = stats_.request_slots[copy.operation];
        if (!slot) slot = &stats_.requests.at(op_name(copy.operation));
        ++*slot;

        BlkbackRequest req;
        Rejection why;
        BlkbackVerdict v = dispatch(copy, req, why);
        batch.verdicts.push_back(v);
        if (v == BlkbackVerdict::ok) {
            stats_.accepted.inc();
            batch.accepted.push_back(std::move(req));
        } else {
            reject(req, why);
            ++batch.rejected;
        }
    }
    if (batch.rejected) batch.notify = flush_responses();
    return batch;
}

BlkbackVerdict BlkifRingBackend::dispatch(const blkif_request_t& copy, BlkbackRequest& out,
                                          Rejection& why) const {
    out.operation = copy.operation;
    out.id = copy.id;  // the same offset in every request layout
    const OpDesc* d = find_op(copy.operation);
    bool ok = false;
    if (d && d->kind == Kind::indirect && cfg_.max_indirect_segments == 0) {
        // Not offered: the backend "does not recognise" it (blkif.h), as dispatch_other_io.
        why = {BLKIF_RSP_EOPNOTSUPP, copy.operation, kIndirectNotNegotiated};
    } else if (!d) {
        why = {BLKIF_RSP_EOPNOTSUPP, copy.operation, kUnknownOp};  // dispatch_other_io
    } else if (d->kind == Kind::indirect) {
        ok = check_indirect(copy, out, why);
    } else if (d->kind == Kind::discard) {
        ok = check_discard(copy, out, why);
    } else {
        ok = check_rw(copy, *d, out, why);
    }
    if (ok) return BlkbackVerdict::ok;
    return why.status == BLKIF_RSP_EOPNOTSUPP ? BlkbackVerdict::eopnotsupp : BlkbackVerdict::error;
}

bool BlkifRingBackend::check_rw(const blkif_request_t& copy, const OpDesc& d, BlkbackRequest& out,
                                Rejection& why) const {
    why = {BLKIF_RSP_ERROR, copy.operation, nullptr};
    unsigned nseg = copy.nr_segments;
    if ((nseg == 0 && d.kind != Kind::flush) || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        why.reason = kBadNrSegments;
        return false;
    }
    out.sector_number = copy.sector_number;
    out.handle = copy.handle;
    out.segments.assign(copy.seg, copy.seg + nseg);
    for (const blkif_request_segment& s : out.segments)
        if (bad_segment(s)) {
            why.reason = kBadFirstLastSect;
            return false;
        }
    if ((why.reason = translate(copy.operation, out.sector_number, out.total_sectors()))) return false;
    if (!offered(copy.operation)) {
        why = {BLKIF_RSP_EOPNOTSUPP, copy.operation, kNotOffered};
        return false;
    }
    return true;
}

bool BlkifRingBackend::check_indirect(const blkif_request_t& copy, BlkbackRequest& out,
                                      Rejection& why) const {
    blkif_request_indirect_t ind;
    static_assert(sizeof(ind) <= sizeof(copy), "indirect request fits a ring slot");
    std::memcpy(&ind, &copy, sizeof(ind));              // reinterpret the private copy, never the ring
    why = {BLKIF_RSP_ERROR, ind.indirect_op, nullptr};  // answered with req_operation
    if (ind.indirect_op != BLKIF_OP_READ && ind.indirect_op != BLKIF_OP_WRITE) {
        why.reason = kBadIndirectOp;
        return false;
    }
    unsigned nseg = ind.nr_segments;
    if (nseg == 0 || nseg > cfg_.max_indirect_segments) {
        why.reason = kBadNrSegments;
        return false;
    }
    unsigned pages = indirect_pages(nseg);
    if (pages > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) {
        why.reason = kTooManyIndirectPages;
        return false;
    }
    out.indirect_op = ind.indirect_op;
    out.nr_indirect_segments = ind.nr_segments;
    out.sector_number = ind.sector_number;
    out.handle = ind.handle;
    out.indirect_grefs.assign(ind.indirect_grefs, ind.indirect_grefs + pages);
    return true;
}

bool BlkifRingBackend::check_discard(const blkif_request_t& copy, BlkbackRequest& out, Rejection& why) const {
    blkif_request_discard_t dis;
    static_assert(sizeof(dis) <= sizeof(copy), "discard request fits a ring slot");
    std::memcpy(&dis, &copy, sizeof(dis));
    out.sector_number = dis.sector_number;
    out.nr_sectors = dis.nr_sectors;
    out.handle = dis.handle;
    out.discard_flag = dis.flag;
    why = {BLKIF_RSP_ERROR, BLKIF_OP_DISCARD, nullptr};
    // dispatch_discard_io: xen_vbd_translate(&preq, blkif, REQ_OP_WRITE)
    if ((why.reason = translate(BLKIF_OP_WRITE, dis.sector_number, dis.nr_sectors))) return false;
    if (!offered(BLKIF_OP_DISCARD)) {
        why = {BLKIF_RSP_EOPNOTSUPP, BLKIF_OP_DISCARD, kNotOffered};
        return false;
    }
    return true;
}

const char* BlkifRingBackend::translate(std::uint8_t effective_op, std::uint64_t sector,
                                        std::uint64_t nr_sects) const {
    if (effective_op != BLKIF_OP_READ && cfg_.read_only) return kReadOnly;
    if (nr_sects) {
        std::uint64_t end = sector + nr_sects;
        if (end < sector || end > cfg_.disk_sectors) return kBadSectorRange;
    }
    return nullptr;
}

bool BlkifRingBackend::offered(std::uint8_t op) const {
    switch (op) {
        case BLKIF_OP_FLUSH_DISKCACHE:
            return cfg_.feature_flush;
        case BLKIF_OP_WRITE_BARRIER:
            return cfg_.feature_barrier;
        case BLKIF_OP_DISCARD:
            return cfg_.feature_discard;
        default:
            return true;
    }
}

void BlkifRingBackend::reject(const BlkbackRequest& req, const Rejection& why) {
    stats_.rejected.inc(why.reason);
    push_response(req.id, why.operation, why.status, /*push=*/false);
}

bool BlkifRingBackend::parse_indirect_segments(BlkbackRequest& req,
                                               const std::vector<const blkif_request_segment*>& pages) {
    if (req.operation != BLKIF_OP_INDIRECT || !req.segments.empty() ||
        pages.size() != req.indirect_grefs.size() ||
        indirect_pages(req.nr_indirect_segments) != req.indirect_grefs.size())
        invariant_broken("parse_indirect_segments on a request consume() did not accept as INDIRECT");
    Rejection why{BLKIF_RSP_ERROR, req.indirect_op, nullptr};
    std::vector<blkif_request_segment> segs(req.nr_indirect_segments);
    for (unsigned n = 0; n < segs.size() && !why.reason; ++n) {
        const blkif_request_segment* page = pages[n / kSegsPerIndirectFrame];
        if (!page) invariant_broken("indirect page not mapped");
        std::memcpy(&segs[n], &page[n % kSegsPerIndirectFrame], sizeof(segs[n]));  // read once
        if (bad_segment(segs[n])) why.reason = kBadFirstLastSect;
    }
    if (!why.reason) {
        req.segments.assign(segs.data(), segs.data() + segs.size());
        why.reason = translate(req.indirect_op, req.sector_number, req.total_sectors());
    }
    if (!why.reason) return true;
    req.segments.clear();
    reject(req, why);
    return false;
}

bool BlkifRingBackend::push_response(std::uint64_t id, std::uint8_t operation, std::int16_t status,
                                     bool push) {
    // Never more responses than requests taken: the slot at rsp_prod_pvt must hold a consumed request.
    if (ring_.req_cons == ring_.rsp_prod_pvt) invariant_broken("response without an outstanding request");
    blkif_response_t* rsp = RING_GET_RESPONSE(&ring_, ring_.rsp_prod_pvt);
    rsp->id = id;
    rsp->operation = operation;
    rsp->status = status;
    ring_.rsp_prod_pvt++;
    stats_.responses.inc();
    return push ? flush_responses() : false;
}

bool BlkifRingBackend::flush_responses() {
    if (pushed_ == ring_.rsp_prod_pvt) return false;  // nothing new to publish
    int notify = 0;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&ring_, notify);
    pushed_ = ring_.rsp_prod_pvt;
    (notify ? stats_.notifications_sent : stats_.notifications_suppressed).inc();
    return notify != 0;
}

bool BlkifRingBackend::final_check() {
    if (broken_) return false;
    int more = 0;
    RING_FINAL_CHECK_FOR_REQUESTS(&ring_, more);
    return more != 0;
}

}  // namespace xensim
