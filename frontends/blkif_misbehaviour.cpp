#include "frontends/blkif_misbehaviour.h"

#include <cstring>
#include <functional>

namespace xensim {

namespace {

constexpr std::int16_t kDisconnect = 1;  // not a blkif status: the backend must drop the device

const char* status_name(std::int16_t s) {
    switch (s) {
        case BLKIF_RSP_OKAY:
            return "BLKIF_RSP_OKAY";
        case BLKIF_RSP_ERROR:
            return "BLKIF_RSP_ERROR";
        case BLKIF_RSP_EOPNOTSUPP:
            return "BLKIF_RSP_EOPNOTSUPP";
        case kDisconnect:
            return "disconnect";
        default:
            return "unknown status";
    }
}

blkif_request_segment seg(grant_ref_t gref, std::uint8_t first, std::uint8_t last) {
    blkif_request_segment sg{};
    sg.gref = gref;
    sg.first_sect = first;
    sg.last_sect = last;
    return sg;
}

blkif_request_t rw(std::uint8_t op, std::uint64_t sector, std::vector<blkif_request_segment> segs) {
    blkif_request_t r{};
    r.operation = op;
    r.sector_number = sector;
    r.nr_segments = static_cast<std::uint8_t>(segs.size());
    for (std::size_t i = 0; i < segs.size() && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; ++i) r.seg[i] = segs[i];
    return r;
}

blkif_request_t indirect(std::uint8_t indirect_op, std::uint16_t nr_segments, grant_ref_t page) {
    blkif_request_indirect_t ind{};
    ind.operation = BLKIF_OP_INDIRECT;
    ind.indirect_op = indirect_op;
    ind.nr_segments = nr_segments;
    ind.sector_number = 0;
    ind.indirect_grefs[0] = page;
    blkif_request_t r{};
    static_assert(sizeof(ind) <= sizeof(r), "an indirect request fits a ring slot");
    std::memcpy(&r, &ind, sizeof(ind));
    return r;
}

}  // namespace

struct BlkifMisbehaviour::Context {
    std::uint64_t sectors = 0;
    unsigned backend_indirect = 0;  // feature-max-indirect-segments the backend offered
    bool flush = false, discard = false;
    grant_ref_t ok = 0, readonly = 0, other_domain = 0, ended = 0;
    grant_ref_t indirect_ok = 0, indirect_bad = 0;  // indirect pages: one valid segment / a bad one
};

namespace {

struct Case {
    const char* name;
    // The request, and the answer Linux blkback gives it.
    std::function<blkif_request_t(const BlkifMisbehaviour::Context&)> request;
    std::function<std::int16_t(const BlkifMisbehaviour::Context&)> expected;
};

std::int16_t indirect_answer(const BlkifMisbehaviour::Context& c) {
    return c.backend_indirect ? BLKIF_RSP_ERROR : BLKIF_RSP_EOPNOTSUPP;
}

const std::vector<Case>& cases() {
    using C = BlkifMisbehaviour::Context;
    auto err = [](const C&) -> std::int16_t { return BLKIF_RSP_ERROR; };
    auto okay = [](const C&) -> std::int16_t { return BLKIF_RSP_OKAY; };
    auto unsupported = [](const C&) -> std::int16_t { return BLKIF_RSP_EOPNOTSUPP; };
    static const std::vector<Case> table = {
        {"valid_read", [](const C& c) { return rw(BLKIF_OP_READ, 0, {seg(c.ok, 0, 7)}); }, okay},
        // dispatch_other_io: anything the backend does not know.
        {"unknown_operation", [](const C&) { return rw(99, 0, {}); }, unsupported},
        {"reserved_operation", [](const C&) { return rw(BLKIF_OP_RESERVED_1, 0, {}); }, unsupported},
        // dispatch_rw_block_io: segment count and segment bounds.
        {"read_without_segments", [](const C&) { return rw(BLKIF_OP_READ, 0, {}); }, err},
        {"read_with_12_segments",
         [](const C& c) {
             blkif_request_t r = rw(BLKIF_OP_READ, 0, {});
             r.nr_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST + 1;  // the ring slot has room for 11 only
             for (auto& sg : r.seg) sg = seg(c.ok, 0, 7);
             return r;
         },
         err},
        {"last_sect_past_the_page", [](const C& c) { return rw(BLKIF_OP_READ, 0, {seg(c.ok, 0, 8)}); }, err},
        {"last_sect_before_first_sect", [](const C& c) { return rw(BLKIF_OP_READ, 0, {seg(c.ok, 5, 3)}); },
         err},
        // xen_vbd_translate: the range against the disk.
        {"read_past_the_end_of_the_disk",
         [](const C& c) { return rw(BLKIF_OP_READ, c.sectors - 1, {seg(c.ok, 0, 7)}); }, err},
        {"sector_range_that_wraps",
         [](const C& c) { return rw(BLKIF_OP_READ, ~0ull - 3, {seg(c.ok, 0, 7)}); }, err},
        // xen_blkbk_map: grants Xen refuses to map.
        {"grant_never_granted", [](const C& c) { return rw(BLKIF_OP_READ, 0, {seg(c.ended, 0, 7)}); }, err},
        {"grant_beyond_the_table", [](const C&) { return rw(BLKIF_OP_READ, 0, {seg(0x00ffffffu, 0, 7)}); },
         err},
        {"grant_for_another_domain",
         [](const C& c) { return rw(BLKIF_OP_READ, 0, {seg(c.other_domain, 0, 7)}); }, err},
        // Not a misbehaviour: Xen maps one grant twice (a pin per mapping), so a request naming the
        // same page for two segments is served, whether or not it can be kept persistent.
        {"one_grant_named_twice",
         [](const C& c) {
             return rw(BLKIF_OP_READ, 16, {seg(c.ok, 0, 3), seg(c.ok, 4, 7)});
         },
         okay},
        {"read_into_a_read_only_grant",
         [](const C& c) { return rw(BLKIF_OP_READ, 0, {seg(c.readonly, 0, 7)}); }, err},
        // Indirect requests: the header, then xen_blkbk_parse_indirect.
        {"indirect_with_bad_indirect_op", [](const C& c) { return indirect(99, 1, c.indirect_ok); },
         indirect_answer},
        {"indirect_without_segments", [](const C& c) { return indirect(BLKIF_OP_READ, 0, c.indirect_ok); },
         indirect_answer},
        {"indirect_above_the_advertised_maximum",
         [](const C& c) {
             return indirect(BLKIF_OP_READ, static_cast<std::uint16_t>(c.backend_indirect + 1),
                             c.indirect_ok);
         },
         indirect_answer},
        {"indirect_page_never_granted", [](const C& c) { return indirect(BLKIF_OP_READ, 1, c.ended); },
         indirect_answer},
        {"indirect_segment_past_the_page",
         [](const C& c) { return indirect(BLKIF_OP_READ, 1, c.indirect_bad); }, indirect_answer},
        {"valid_indirect_read", [](const C& c) { return indirect(BLKIF_OP_READ, 1, c.indirect_ok); },
         [](const C& c) -> std::int16_t {
             return c.backend_indirect ? BLKIF_RSP_OKAY : BLKIF_RSP_EOPNOTSUPP;
         }},
        // Optional operations.
        {"discard_past_the_end_of_the_disk",
         [](const C& c) {
             blkif_request_discard_t d{};
             d.operation = BLKIF_OP_DISCARD;
             d.sector_number = c.sectors;
             d.nr_sectors = 8;
             blkif_request_t r{};
             std::memcpy(&r, &d, sizeof(d));
             return r;
         },
         err},  // the range is checked before the feature (dispatch_discard_io)
        {"write_barrier_not_offered", [](const C&) { return rw(BLKIF_OP_WRITE_BARRIER, 0, {}); },
         unsupported},
        {"flush", [](const C&) { return rw(BLKIF_OP_FLUSH_DISKCACHE, 0, {}); },
         [](const C& c) -> std::int16_t { return c.flush ? BLKIF_RSP_OKAY : BLKIF_RSP_EOPNOTSUPP; }},
        {"valid_read_after_the_errors", [](const C& c) { return rw(BLKIF_OP_READ, 8, {seg(c.ok, 0, 7)}); },
         okay},
        // __do_block_io_op: "Frontend provided bogus ring requests". Handled specially below.
        {"producer_more_than_a_ring_ahead", nullptr, [](const C&) { return kDisconnect; }},
    };
    return table;
}

}  // namespace

const std::vector<std::string>& BlkifMisbehaviour::case_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const Case& c : cases()) n.push_back(c.name);
        return n;
    }();
    return names;
}

BlkifMisbehaviour::BlkifMisbehaviour(std::vector<std::string> cases, Blkfront& device, XenGuest& guest,
                                     WorkloadStats& stats)
    : cases_(std::move(cases)), device_(device), guest_(guest), stats_(stats) {
    if (cases_.empty()) cases_ = case_names();
}

bool BlkifMisbehaviour::await(XenbusClient& xb, GuestServices& s, std::uint64_t id, std::int16_t& status) {
    (void)xb;
    for (;;) {
        if (done_id_ == id) {
            status = done_status_;
            done_id_ = ~0ull;
            return true;
        }
        if (!device_.connected()) return false;
        if (guest_.run_deferred(s)) continue;
        s.halt();
    }
}

void BlkifMisbehaviour::run(XenbusClient& xb, GuestServices& s) {
    auto fail_all = [&] {
        stats_.failures.inc();
        stats_.finish(s.now_ns());
    };
    if (!xb.connected() || !device_.connect(xb, s, 1)) return fail_all();
    device_.on_complete = [this](GuestServices&, std::uint64_t id, std::int16_t status) {
        done_id_ = id;
        done_status_ = status;
    };
    Context c;
    c.sectors = device_.sectors();
    c.flush = device_.feature_flush();
    c.discard = device_.feature_discard();
    const std::string back =
        xb.read("device/vbd/" + std::to_string(device_.devid()) + "/backend").value_or("");
    c.backend_indirect = static_cast<unsigned>(
        parse_xenstore_uint(xb.read(back + "/feature-max-indirect-segments")).value_or(0));
    // The pages and grants the cases name.
    auto page = [&] { return s.alloc_page().value_or(0); };
    const std::uint64_t data = page(), ro = page(), ind_ok = page(), ind_bad = page();
    if (!data || !ro || !ind_ok || !ind_bad) return fail_all();
    auto grant = [&](domid_t to, std::uint64_t gfn, bool readonly) {
        return guest_.grant_access(to, gfn, readonly).value_or(0);
    };
    c.ok = grant(0, data, false);
    c.readonly = grant(0, ro, true);
    c.other_domain = grant(7, data, false);
    auto* segs = reinterpret_cast<blkif_request_segment*>(s.page(ind_ok));
    segs[0] = seg(c.ok, 0, 7);
    auto* bad = reinterpret_cast<blkif_request_segment*>(s.page(ind_bad));
    bad[0] = seg(c.ok, 0, 9);
    // Writable, as Linux blkfront grants indirect pages: a backend using persistent grants maps
    // every grant read-write (xen_blkbk_map), so a read-only indirect page would fail there.
    c.indirect_ok = grant(0, ind_ok, false);
    c.indirect_bad = grant(0, ind_bad, false);
    // A reference whose entry is free again (ended last, so no grant above reuses it).
    c.ended = grant(0, data, false);
    guest_.end_access(c.ended);
    if (!c.ok || !c.readonly || !c.other_domain || !c.indirect_ok || !c.indirect_bad) return fail_all();

    stats_.start(s.now_ns());
    std::uint64_t next_id = 1;
    for (const std::string& name : cases_) {
        const Case* k = nullptr;
        for (const Case& x : cases())
            if (name == x.name) k = &x;
        if (!k) continue;  // the scenario validation only lets known names through
        const std::uint64_t t0 = s.now_ns();
        MisbehaviourOutcome o;
        o.name = name;
        const std::int16_t want = k->expected(c);
        o.expected = status_name(want);
        if (!device_.connected()) {
            o.got = "device already disconnected";
        } else if (!k->request) {
            // Publish a producer index more than a ring ahead of what the backend consumed.
            device_.corrupt_producer(s, 0, device_.ring_req_prod_pvt(0) + device_.ring_size() + 1);
            std::int16_t ignored;
            bool answered = await(xb, s, ~1ull, ignored);
            o.got = answered ? "an answer" : status_name(kDisconnect);
        } else {
            const std::uint64_t id = next_id++;
            blkif_request_t req = k->request(c);
            const auto handle = static_cast<blkif_vdev_t>(device_.devid());
            if (req.operation == BLKIF_OP_INDIRECT) {  // the handle sits elsewhere in an indirect request
                blkif_request_indirect_t ind;
                std::memcpy(&ind, &req, sizeof(ind));
                ind.handle = handle;
                std::memcpy(&req, &ind, sizeof(ind));
            } else {
                req.handle = handle;  // READ/WRITE/DISCARD/others share this layout
            }
            if (!device_.submit_raw(s, 0, req, id)) {
                o.got = "ring full";
            } else {
                device_.kick(s, 0);
                std::int16_t got = 0;
                o.got = await(xb, s, id, got) ? status_name(got) : "device disconnected";
            }
        }
        o.ok = o.got == o.expected;
        if (!o.ok) stats_.failures.inc();
        outcomes_.push_back(o);
        stats_.complete_op(s.now_ns() - t0);
    }
    stats_.finish(s.now_ns());
}

}  // namespace xensim
