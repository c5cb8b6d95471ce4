#include "frontends/blkfront.h"

#include <algorithm>
#include <stdexcept>

#include <xen/io/protocols.h>
#include <xen/io/xs_wire.h>

namespace xensim {

namespace {

constexpr BlkfrontProfile kProfiles[] = {
    // name, max_queues, ring_page_order, persistent, max_indirect_segments
    // Each row as the driver's source has it; docs/blkfront-profiles.md gives the files.
    // linux: xen-blkfront module defaults (max_queues 4, max_ring_page_order 0, feature_persistent
    //   on, max_indirect_segments 32). gplpv: one single-page ring (ring-ref), every segment granted
    //   and revoked per request, direct requests only, and each device's event channel dispatched by
    //   xenpci to that device's own handler. winpv: XENVBD asks for as many rings as vCPUs (32 = no cap
    //   of its own), min(backend max-ring-page-order, 4) and whatever feature-max-indirect-segments the
    //   backend offers up to its 1024-page (4 MiB) transfer limit; grants revoked on completion; one
    //   event channel and DPC per ring.
    {"linux", 4, 0, true, 32},
    {"gplpv", 1, 0, false, 0},
    {"winpv", 32, 4, false, 1024},
};

}  // namespace

const BlkfrontProfile& blkfront_profile(std::string_view name) {
    for (const auto& p : kProfiles)
        if (name == p.name) return p;
    throw std::invalid_argument("unknown blkfront profile \"" + std::string(name) +
                                "\" (linux, gplpv, winpv)");
}

Blkfront::Stats::Stats(StatsGroup& g)
    : ios_submitted(g, "ios_submitted", "ios", "I/Os queued on a ring"),
      ios_completed(g, "ios_completed", "ios", "I/Os completed (any status)"),
      ios_failed(g, "ios_failed", "ios", "I/Os completed with an error status"),
      notifications_sent(g, "notifications_sent", "notifications", "EVTCHNOP_send to the backend"),
      notifications_suppressed(g, "notifications_suppressed", "pushes",
                               "pushes RING_PUSH_REQUESTS_AND_CHECK_NOTIFY said need no notification"),
      interrupts(g, "interrupts", "interrupts", "event-channel interrupts handled for this device"),
      empty_interrupts(g, "empty_interrupts", "interrupts", "interrupts that found no response"),
      ios_aborted(g, "ios_aborted", "ios", "I/Os in flight failed because the backend closed") {}

Blkfront::Blkfront(XenGuest& guest, const BlkfrontParams& params, StatsGroup& parent)
    : guest_(guest),
      p_(params),
      group_("vbd_" + std::to_string(params.devid), &parent),
      stats_(group_),
      front_("device/vbd/" + std::to_string(params.devid)) {}

Blkfront::~Blkfront() = default;

unsigned Blkfront::ring_size() const {
    return queues_.empty() || !queues_[0].ring ? 0 : queues_[0].ring->size();
}

std::vector<std::uint64_t> Blkfront::occupancy_histogram(unsigned q) const {
    return q < queues_.size() && queues_[q].ring ? queues_[q].ring->occupancy_histogram()
                                                 : std::vector<std::uint64_t>{};
}

bool Blkfront::connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) {
    boot_ = &s;
    vcpus_ = std::max(1u, vcpus);
    auto back = xb.read(front_ + "/backend");
    auto backend_id = parse_xenstore_uint(xb.read(front_ + "/backend-id"));
    if (!back || !backend_id) return false;
    back_ = *back;
    backend_id_ = static_cast<domid_t>(*backend_id);
    const std::string token = "blkfront:" + front_;
    if (!xb.watch(back_ + "/state", token).ok()) return false;
    bool ok = false;
    for (;;) {
        xb.take_watch_events();
        XenbusState peer = parse_xenbus_state(xb.read(back_ + "/state").value_or(""));
        if (peer == XenbusStateInitWait && fsm_.state() == XenbusStateInitialising) {
            if (!talk_to_blkback(xb, s, vcpus_)) break;
        } else if (peer == XenbusStateConnected && fsm_.state() == XenbusStateInitialised) {
            ok = finish_connect(xb, s);
            break;
        } else if (peer == XenbusStateClosing || peer == XenbusStateClosed) {
            break;
        }
        xb.wait_for_watch_event();
    }
    xb.unwatch(back_ + "/state", token);
    if (ok) {
        // blkback_changed: follow the backend for as long as the device lives (runs as deferred work).
        xb_ = &xb;
        xb.watch(back_ + "/state", "blkfront-state:" + front_,
                 [this](const XenbusWatchEvent&) { backend_changed(); });
    }
    return ok;
}

void Blkfront::backend_changed() {
    XenbusState peer = parse_xenbus_state(xb_->read(back_ + "/state").value_or(""));
    if (peer != XenbusStateClosing && peer != XenbusStateClosed) return;
    if (closed_) end_deferred_grants();  // the backend may have unmapped more since
    if (connected_) {
        // The backend went away with requests in flight: complete them with an error (a real
        // blkfront would keep them for blkif_recover; reconnection is not modelled).
        connected_ = false;
        for (Queue& Q : queues_) {
            if (!Q.ring) continue;
            for (const auto& c : Q.ring->abort_all()) {
                stats_.ios_aborted.inc();
                stats_.ios_completed.inc();
                stats_.ios_failed.inc();
                if (on_complete) on_complete(*boot_, c.id, c.status);
            }
        }
        // blkif_free -> blkif_free_ring / xenbus_teardown_ring: the rings' grants are ended too.
        closed_ = true;
        end_deferred_grants();
    }
    // blkfront_closing -> xenbus_frontend_closed.
    for (XenbusState next : {XenbusStateClosing, XenbusStateClosed})
        if (fsm_.state() != next && fsm_.switch_to(next))
            xb_->write(front_ + "/state", std::to_string(static_cast<int>(next)));
}

std::size_t Blkfront::end_deferred_grants() {
    if (!closed_) return 0;
    std::size_t left = 0;
    for (Queue& Q : queues_) {
        if (Q.ring) left += Q.ring->retry_pending_end();
        std::vector<grant_ref_t> still;
        for (grant_ref_t ref : Q.ring_refs)
            if (!guest_.end_access(ref)) still.push_back(ref);
        Q.ring_refs = std::move(still);
        left += Q.ring_refs.size();
    }
    return left;
}

std::size_t Blkfront::grants_outstanding() const {
    std::size_t n = 0;
    for (const Queue& Q : queues_) n += Q.ring_refs.size() + (Q.ring ? Q.ring->grants_live() : 0);
    return n;
}

bool Blkfront::submit_raw(GuestServices& s, unsigned q, const blkif_request_t& req, std::uint64_t id) {
    (void)s;
    if (!connected_ || q >= queues_.size()) return false;
    if (!queues_[q].ring->submit_raw(req, id)) return false;
    stats_.ios_submitted.inc();
    return true;
}

void Blkfront::corrupt_producer(GuestServices& s, unsigned q, RING_IDX req_prod) {
    if (q >= queues_.size() || !queues_[q].ring) return;
    queues_[q].ring->publish_producer(req_prod);
    stats_.notifications_sent.inc();
    guest_.notify(s, queues_[q].port);
}

RING_IDX Blkfront::ring_req_prod_pvt(unsigned q) const {
    return q < queues_.size() && queues_[q].ring ? queues_[q].ring->req_prod_pvt() : 0;
}

bool Blkfront::talk_to_blkback(XenbusClient& xb, GuestServices& s, unsigned vcpus) {
    const auto max_order =
        static_cast<unsigned>(parse_xenstore_uint(xb.read(back_ + "/max-ring-page-order")).value_or(0));
    const auto max_queues =
        static_cast<unsigned>(parse_xenstore_uint(xb.read(back_ + "/multi-queue-max-queues")).value_or(1));
    order_ = std::min({p_.ring_page_order, max_order, 4u});  // 4: XENBUS_MAX_RING_GRANT_ORDER
    const unsigned nq = std::max(1u, std::min({p_.queues, max_queues, vcpus}));
    const unsigned pages = 1u << order_;
    queues_.resize(nq);
    for (unsigned q = 0; q < nq; ++q) {
        Queue& Q = queues_[q];
        auto gfn = s.alloc_pages(pages);
        if (!gfn) return false;
        Q.ring_gfn = *gfn;
        auto* sring = reinterpret_cast<blkif_sring*>(s.page(*gfn));
        SHARED_RING_INIT(sring);
        for (unsigned i = 0; i < pages; ++i) {
            auto ref = guest_.grant_access(backend_id_, *gfn + i, false);
            if (!ref) return false;
            Q.ring_refs.push_back(*ref);
        }
        if (guest_.alloc_unbound(s, backend_id_, &Q.port)) return false;
        const unsigned vcpu = queue_vcpu(q);
        if (vcpu != 0 && guest_.bind_vcpu(s, Q.port, vcpu)) return false;
        guest_.set_port_handler(Q.port, [this, q](GuestServices& vs, evtchn_port_t) { interrupt(vs, q); });
    }
    // One transaction for every key, retried on EAGAIN as Linux does.
    for (int attempt = 0; attempt < 8; ++attempt) {
        auto tx = xb.transaction_start();
        if (!tx) return false;
        auto put = [&](const std::string& key, const std::string& value) {
            return xb.write(front_ + "/" + key, value, *tx).ok();
        };
        bool ok = true;
        auto ring_nodes = [&](const std::string& dir, const Queue& Q) {
            if (order_ == 0) {
                ok = ok && put(dir + "ring-ref", std::to_string(Q.ring_refs[0]));
            } else {
                for (unsigned i = 0; i < pages; ++i)
                    ok = ok && put(dir + "ring-ref" + std::to_string(i), std::to_string(Q.ring_refs[i]));
            }
            ok = ok && put(dir + "event-channel", std::to_string(Q.port));
        };
        if (order_ > 0) ok = ok && put("ring-page-order", std::to_string(order_));
        if (nq == 1) {
            ring_nodes("", queues_[0]);
        } else {
            ok = ok && put("multi-queue-num-queues", std::to_string(nq));
            for (unsigned q = 0; q < nq; ++q) ring_nodes("queue-" + std::to_string(q) + "/", queues_[q]);
        }
        ok = ok && put("protocol", XEN_IO_PROTO_ABI_NATIVE);
        ok = ok && put("feature-persistent", p_.persistent_grants ? "1" : "0");
        if (!ok) {
            xb.transaction_end(*tx, false);
            return false;
        }
        XenbusReply end = xb.transaction_end(*tx, true);
        if (end.ok()) break;
        if (end.error != "EAGAIN") return false;
    }
    if (!fsm_.switch_to(XenbusStateInitialised)) return false;
    return xb.write(front_ + "/state", std::to_string(static_cast<int>(fsm_.state()))).ok();
}

bool Blkfront::finish_connect(XenbusClient& xb, GuestServices& s) {
    auto sectors = parse_xenstore_uint(xb.read(back_ + "/sectors"), ~std::uint64_t(0));
    auto sector_size = parse_xenstore_uint(xb.read(back_ + "/sector-size"));
    auto info = parse_xenstore_uint(xb.read(back_ + "/info")).value_or(0);
    if (!sectors || !sector_size || *sector_size != 512) return false;  // only 512-byte sectors modelled
    sectors_ = *sectors;
    read_only_ = (info & VDISK_READONLY) != 0;
    feature_flush_ = parse_xenstore_uint(xb.read(back_ + "/feature-flush-cache")).value_or(0) == 1;
    feature_discard_ = parse_xenstore_uint(xb.read(back_ + "/feature-discard")).value_or(0) == 1;
    persistent_ =
        p_.persistent_grants && parse_xenstore_uint(xb.read(back_ + "/feature-persistent")).value_or(0) == 1;
    const unsigned backend_indirect =
        parse_xenstore_uint(xb.read(back_ + "/feature-max-indirect-segments")).value_or(0);
    // blkfront_setup_indirect: indirect only when it allows more than the direct maximum.
    indirect_ = std::min(p_.max_indirect_segments, backend_indirect);
    if (indirect_ <= BLKIF_MAX_SEGMENTS_PER_REQUEST) indirect_ = 0;
    for (unsigned q = 0; q < queues_.size(); ++q) {
        Queue& Q = queues_[q];
        Q.group = std::make_unique<StatsGroup>("queue" + std::to_string(q), &group_);
        BlkifFrontendConfig cfg;
        cfg.ring_page_order = order_;
        cfg.max_indirect_segments = indirect_;
        cfg.persistent_grants = persistent_;
        cfg.handle = static_cast<blkif_vdev_t>(p_.devid);
        GrantOps ops;
        const domid_t backend = backend_id_;
        ops.grant = [this, backend](std::uint64_t gfn, bool ro) {
            return guest_.grant_access(backend, gfn, ro);
        };
        ops.end = [this](grant_ref_t ref) { return guest_.end_access(ref); };
        ops.alloc_page = [this] { return boot_->alloc_page(); };
        ops.page = [this](std::uint64_t gfn) { return boot_->page(gfn); };
        Q.ring = std::make_unique<BlkifRingFrontend>(s.page(Q.ring_gfn), cfg, std::move(ops), *Q.group);
    }
    if (!fsm_.switch_to(XenbusStateConnected)) return false;
    if (!xb.write(front_ + "/state", std::to_string(static_cast<int>(fsm_.state()))).ok()) return false;
    connected_ = true;
    return true;
}

bool Blkfront::submit(GuestServices& s, unsigned q, const BlockIo& io) {
    if (!connected_ || q >= queues_.size()) return false;
    Queue& Q = queues_[q];
    if (!Q.ring->submit(io)) return false;
    Cycles c = s.costs().blkfront_request;
    if (persistent_ && io.op == BlockOp::write) c += s.costs().copy_cost(std::uint64_t{io.sectors} * 512);
    s.compute(c);
    stats_.ios_submitted.inc();
    if (trace.submit) trace.submit(s, q, io);
    return true;
}

void Blkfront::kick(GuestServices& s, unsigned q) {
    if (!connected_ || q >= queues_.size()) return;
    Queue& Q = queues_[q];
    const bool notify = Q.ring->push();
    if (trace.push) trace.push(s, q, Q.ring->in_flight(), notify);
    if (notify) {
        stats_.notifications_sent.inc();
        guest_.notify(s, Q.port);
    } else {
        stats_.notifications_suppressed.inc();
    }
}

bool Blkfront::poll(GuestServices& s, unsigned q) {
    Queue& Q = queues_[q];
    if (!Q.ring) return false;
    bool any = false;
    do {
        const auto done = Q.ring->collect();
        // blkif_completion's copy out of the persistent grants, in this interrupt, before the I/Os
        // complete to the block layer.
        if (const std::uint64_t bytes = Q.ring->take_read_copy_bytes()) s.compute(s.costs().copy_cost(bytes));
        for (const auto& c : done) {
            any = true;
            stats_.ios_completed.inc();
            if (c.status != BLKIF_RSP_OKAY) stats_.ios_failed.inc();
            if (trace.complete) trace.complete(s, q, c.id, c.status);
            if (on_complete) on_complete(s, c.id, c.status);
        }
    } while (Q.ring->final_check());
    return any;
}

void Blkfront::interrupt(GuestServices& s, unsigned q) {
    stats_.interrupts.inc();
    if (!poll(s, q)) stats_.empty_interrupts.inc();
}

}  // namespace xensim
