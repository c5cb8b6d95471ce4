#include "frontends/netfront.h"

#include <algorithm>
#include <stdexcept>

namespace xensim {

namespace {

constexpr NetfrontProfile kProfiles[] = {
    // name, max_queues, sg, gso4, gso6, ipv6_csum, rx_deferred_release, rx_refill_batch,
    // rx_persistent_grants. docs/netfront-profiles.md gives the sources of every difference.
    // linux: xen-netfront's max_queues default (MAX_QUEUES_DEFAULT 8), every offload it writes in
    //   talk_to_netback, and Linux's rx buffer handling (NetifFrontendConfig defaults).
    // gplpv: xennet's page buffers held until NDIS returns them (put_pb_on_freelist), refilled by
    //   XenNet_FillRing at rx_target / 4 = 64 and keeping their grants; one queue pair.
    // winpv: XENVIF asks for min(vCPUs, backend multi-queue-max-queues) queues; its receiver
    //   hands buffers back as Linux does (no cited difference in the rx path).
    {"linux", 8, true, true, true, true, false, 1, false},
    {"gplpv", 1, true, true, true, true, true, 64, true},
    {"winpv", 64, true, true, true, true, false, 1, false},
};

}  // namespace

const NetfrontProfile& netfront_profile(std::string_view name) {
    for (const auto& p : kProfiles)
        if (name == p.name) return p;
    throw std::invalid_argument("unknown netfront profile \"" + std::string(name) +
                                "\" (linux, gplpv, winpv)");
}

Netfront::Stats::Stats(StatsGroup& g)
    : tx_frames(g, "tx_frames", "frames", "frames queued on a tx ring"),
      tx_dropped(g, "tx_dropped", "frames", "frames dropped by xennet_start_xmit's checks"),
      tx_busy(g, "tx_busy", "frames", "frames refused by a stopped queue"),
      rx_frames(g, "rx_frames", "frames", "frames delivered to on_receive"),
      notifications_sent(g, "notifications_sent", "notifications", "EVTCHNOP_send to the backend"),
      notifications_suppressed(g, "notifications_suppressed", "pushes",
                               "pushes the ring macro said need no notification"),
      tx_interrupts(g, "tx_interrupts", "interrupts", "tx (or shared) event-channel interrupts"),
      rx_interrupts(g, "rx_interrupts", "interrupts", "rx event-channel interrupts (split channels)"),
      spurious_interrupts(g, "spurious_interrupts", "interrupts", "interrupts that found nothing new"),
      napi_polls(g, "napi_polls", "polls", "xennet_poll calls"),
      tx_wakes(g, "tx_wakes", "wakes", "stopped queues woken (on_tx_wake)") {}

Netfront::Netfront(XenGuest& guest, const NetfrontParams& params, StatsGroup& parent)
    : guest_(guest),
      p_(params),
      profile_(netfront_profile(params.profile)),
      group_("vif_" + std::to_string(params.devid), &parent),
      stats_(group_),
      front_("device/vif/" + std::to_string(params.devid)) {}

Netfront::~Netfront() = default;

std::size_t Netfront::grants_outstanding() const {
    std::size_t n = 0;
    for (const Queue& Q : queues_) n += Q.ring_refs.size() + (Q.ring ? Q.ring->grants_live() : 0);
    return n;
}

bool Netfront::connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) {
    boot_ = &s;
    vcpus_ = std::max(1u, vcpus);
    auto back = xb.read(front_ + "/backend");
    auto backend_id = parse_xenstore_uint(xb.read(front_ + "/backend-id"));
    if (!back || !backend_id) return false;
    back_ = *back;
    backend_id_ = static_cast<domid_t>(*backend_id);
    const std::string token = "netfront:" + front_;
    if (!xb.watch(back_ + "/state", token).ok()) return false;
    bool ok = false;
    for (;;) {
        xb.take_watch_events();
        XenbusState peer = parse_xenbus_state(xb.read(back_ + "/state").value_or(""));
        if (peer == XenbusStateInitWait && fsm_.state() == XenbusStateInitialising) {
            // netback_changed(InitWait): xennet_connect, then Connected.
            if (!talk_to_netback(xb, s)) break;
        } else if (peer == XenbusStateConnected && fsm_.state() == XenbusStateConnected) {
            ok = true;  // netback_changed(Connected): carrier on
            break;
        } else if (peer == XenbusStateClosing || peer == XenbusStateClosed) {
            break;
        }
        xb.wait_for_watch_event();
    }
    xb.unwatch(back_ + "/state", token);
    connected_ = ok;
    return ok;
}

bool Netfront::talk_to_netback(XenbusClient& xb, GuestServices& s) {
    auto rd = [&](const char* key) { return parse_xenstore_uint(xb.read(back_ + "/" + key)); };
    if (rd("feature-rx-copy").value_or(0) != 1) return false;  // no copying receive path
    auto mac = xb.read(front_ + "/mac");
    auto parsed = mac ? parse_mac(*mac) : std::nullopt;
    if (!parsed) return false;
    mac_ = *parsed;
    const auto max_queues = rd("multi-queue-max-queues");
    split_ = rd("feature-split-event-channels").value_or(0) == 1;
    be_sg_ = rd("feature-sg").value_or(0) == 1;
    be_gso4_ = rd("feature-gso-tcpv4").value_or(0) == 1;
    be_gso6_ = rd("feature-gso-tcpv6").value_or(0) == 1;
    const bool no_csum = rd("feature-no-csum-offload").value_or(0) == 1;
    const bool ipv6_csum = rd("feature-ipv6-csum-offload").value_or(0) == 1;
    // xennet_fix_features: what the stack may hand us.
    features_.sg = profile_.offer_sg && be_sg_;
    features_.gso_tcpv4 = features_.sg && profile_.offer_gso_tcpv4 && be_gso4_ && p_.tso;
    features_.gso_tcpv6 = features_.sg && profile_.offer_gso_tcpv6 && be_gso6_ && p_.tso;
    features_.tx_csum = !no_csum;
    features_.tx_csum_ipv6 = profile_.offer_ipv6_csum && ipv6_csum;
    const unsigned wanted = p_.queues ? p_.queues : profile_.max_queues;
    const unsigned nq =
        std::max(1u, std::min({wanted, static_cast<unsigned>(max_queues.value_or(1)), vcpus_}));
    NetifFrontendConfig cfg;
    cfg.feature_sg = features_.sg;
    cfg.feature_gso_tcpv4 = features_.gso_tcpv4;
    cfg.feature_gso_tcpv6 = features_.gso_tcpv6;
    cfg.rx_deferred_release = profile_.rx_deferred_release;
    cfg.rx_refill_batch = profile_.rx_refill_batch;
    cfg.rx_persistent_grants = profile_.rx_persistent_grants;
    queues_.resize(nq);
    for (unsigned q = 0; q < nq; ++q) {
        Queue& Q = queues_[q];
        Q.group = std::make_unique<StatsGroup>("queue" + std::to_string(q), &group_);
        GrantOps ops;
        const domid_t backend = backend_id_;
        ops.grant = [this, backend](std::uint64_t gfn, bool ro) {
            return guest_.grant_access(backend, gfn, ro);
        };
        ops.end = [this](grant_ref_t ref) { return guest_.end_access(ref); };
        ops.alloc_page = [this] { return boot_->alloc_page(); };
        ops.page = [this](std::uint64_t gfn) { return boot_->page(gfn); };
        Q.ring = std::make_unique<NetifRingFrontend>(cfg, std::move(ops), *Q.group);
        if (!Q.ring->setup()) return false;
        for (std::uint64_t gfn : {Q.ring->tx_ring_gfn(), Q.ring->rx_ring_gfn()}) {
            auto ref = guest_.grant_access(backend_id_, gfn, false);
            if (!ref) return false;
            Q.ring_refs.push_back(*ref);
        }
        const unsigned vcpu = queue_vcpu(q);
        if (guest_.alloc_unbound(s, backend_id_, &Q.tx_port)) return false;
        if (split_) {
            if (guest_.alloc_unbound(s, backend_id_, &Q.rx_port)) return false;
        } else {
            Q.rx_port = Q.tx_port;
        }
        if (split_) {
            guest_.set_port_handler(Q.tx_port,
                                    [this, q](GuestServices& vs, evtchn_port_t) { tx_interrupt(vs, q); });
            guest_.set_port_handler(Q.rx_port,
                                    [this, q](GuestServices& vs, evtchn_port_t) { rx_interrupt(vs, q); });
        } else {
            // xennet_interrupt: both directions on one channel.
            guest_.set_port_handler(Q.tx_port, [this, q](GuestServices& vs, evtchn_port_t) {
                tx_interrupt(vs, q);
                rx_interrupt(vs, q);
            });
        }
        if (vcpu != 0) {
            if (guest_.bind_vcpu(s, Q.tx_port, vcpu)) return false;
            if (split_ && guest_.bind_vcpu(s, Q.rx_port, vcpu)) return false;
        }
    }
    for (int attempt = 0; attempt < 8; ++attempt) {
        auto tx = xb.transaction_start();
        if (!tx) return false;
        bool ok = true;
        auto put = [&](const std::string& key, const std::string& value) {
            ok = ok && xb.write(front_ + "/" + key, value, *tx).ok();
        };
        if (max_queues) put("multi-queue-num-queues", std::to_string(nq));
        for (unsigned q = 0; q < nq; ++q) {
            const std::string dir = nq == 1 ? "" : "queue-" + std::to_string(q) + "/";
            const Queue& Q = queues_[q];
            put(dir + "tx-ring-ref", std::to_string(Q.ring_refs[0]));
            put(dir + "rx-ring-ref", std::to_string(Q.ring_refs[1]));
            if (split_) {
                put(dir + "event-channel-tx", std::to_string(Q.tx_port));
                put(dir + "event-channel-rx", std::to_string(Q.rx_port));
            } else {
                put(dir + "event-channel", std::to_string(Q.tx_port));
            }
        }
        put("request-rx-copy", "1");
        put("feature-rx-notify", "1");
        put("feature-sg", profile_.offer_sg ? "1" : "0");
        put("feature-gso-tcpv4", profile_.offer_gso_tcpv4 ? "1" : "0");
        put("feature-gso-tcpv6", profile_.offer_gso_tcpv6 ? "1" : "0");
        put("feature-ipv6-csum-offload", profile_.offer_ipv6_csum ? "1" : "0");
        if (!ok) {
            xb.transaction_end(*tx, false);
            return false;
        }
        XenbusReply end = xb.transaction_end(*tx, true);
        if (end.ok()) break;
        if (end.error != "EAGAIN") return false;
    }
    // xennet_connect: the first refill of every queue (xennet_alloc_rx_buffers, notify if asked).
    for (unsigned q = 0; q < nq; ++q) {
        const NetifRingFrontend::RxRefill r = queues_[q].ring->refill_rx();
        send(s, queues_[q].rx_port, r.notify);
    }
    if (!fsm_.switch_to(XenbusStateConnected)) return false;
    return xb.write(front_ + "/state", std::to_string(static_cast<int>(fsm_.state()))).ok();
}

std::size_t Netfront::close(XenbusClient& xb, GuestServices& s) {
    connected_ = false;
    const std::string token = "netfront-close:" + front_;
    xb.watch(back_ + "/state", token);
    auto write_state = [&](XenbusState st) {
        if (fsm_.state() != st && fsm_.switch_to(st))
            xb.write(front_ + "/state", std::to_string(static_cast<int>(st)));
    };
    write_state(XenbusStateClosing);
    // xennet_bus_close: wait for the backend to reach Closing (it has unmapped the rings by then).
    for (int i = 0; i < 64; ++i) {
        xb.take_watch_events();
        XenbusState peer = parse_xenbus_state(xb.read(back_ + "/state").value_or(""));
        if (peer == XenbusStateClosing || peer == XenbusStateClosed || peer == XenbusStateUnknown) break;
        xb.wait_for_watch_event();
    }
    // xennet_disconnect_backend.
    std::size_t left = 0;
    for (Queue& Q : queues_) {
        for (evtchn_port_t port : {Q.tx_port, Q.rx_port}) {
            guest_.clear_port_handler(port);
            guest_.close(s, port);
            if (Q.rx_port == Q.tx_port) break;
        }
        if (Q.ring) left += Q.ring->disconnect().size();
        std::vector<grant_ref_t> still;
        for (grant_ref_t ref : Q.ring_refs)
            if (!guest_.end_access(ref)) still.push_back(ref);
        Q.ring_refs = std::move(still);
        left += Q.ring_refs.size();
    }
    write_state(XenbusStateClosed);
    xb.unwatch(back_ + "/state", token);
    return left;
}

void Netfront::send(GuestServices& s, evtchn_port_t port, bool needed) {
    if (!needed) {
        stats_.notifications_suppressed.inc();
        return;
    }
    stats_.notifications_sent.inc();
    guest_.notify(s, port);
}

bool Netfront::transmit(GuestServices& s, unsigned q, EthernetFrame&& frame) {
    if (q >= queues_.size()) return false;
    Queue& Q = queues_[q];
    const NetTxResult r = Q.ring->transmit(frame);
    if (r == NetTxVerdict::busy) {
        stats_.tx_busy.inc();
        return false;
    }
    if (r == NetTxVerdict::dropped) {
        stats_.tx_dropped.inc();
        return true;  // consumed (dev_kfree_skb_any): the stack does not retry
    }
    s.compute(s.costs().netfront_tx_packet);
    stats_.tx_frames.inc();
    // xennet_start_xmit: push at once, notify if asked, then xennet_tx_buf_gc.
    push(s, q);
    const NetifRingFrontend::TxGc gc = Q.ring->collect_tx();
    if (gc.wake) {
        stats_.tx_wakes.inc();
        if (on_tx_wake) on_tx_wake(s, q);
    }
    return true;
}

void Netfront::push(GuestServices& s, unsigned q) {
    if (q >= queues_.size() || !queues_[q].ring) return;
    send(s, queues_[q].tx_port, queues_[q].ring->push_tx());
}

void Netfront::kick(GuestServices& s, unsigned q) {
    (void)s;
    (void)q;  // every frame was pushed by transmit (Linux 6.1 has no xmit_more batching here)
}

void Netfront::tx_interrupt(GuestServices& s, unsigned q) {
    stats_.tx_interrupts.inc();
    if (q >= queues_.size() || !queues_[q].ring) return;
    const NetifRingFrontend::TxGc gc = queues_[q].ring->collect_tx();
    if (!gc.work_done && split_) stats_.spurious_interrupts.inc();
    if (gc.wake) {
        stats_.tx_wakes.inc();
        if (on_tx_wake) on_tx_wake(s, q);
    }
}

void Netfront::rx_interrupt(GuestServices& s, unsigned q) {
    if (split_) stats_.rx_interrupts.inc();
    if (q >= queues_.size() || !queues_[q].ring) return;
    const NetifRingFrontend::RxIrq irq = queues_[q].ring->rx_interrupt();
    if (irq.spurious && split_) stats_.spurious_interrupts.inc();
    if (irq.schedule) napi_poll(s, q);
}

void Netfront::napi_poll(GuestServices& s, unsigned q) {
    Queue& Q = queues_[q];
    for (;;) {
        stats_.napi_polls.inc();
        NetifRingFrontend::RxPoll r = Q.ring->poll(p_.napi_budget);
        for (auto& pkt : r.packets) {
            s.compute(s.costs().netfront_rx_packet);
            stats_.rx_frames.inc();
            if (on_receive) on_receive(s, q, std::move(pkt.frame));
        }
        if (profile_.rx_deferred_release)
            for (const auto& pkt : r.packets) Q.ring->release_rx(pkt.release);
        send(s, Q.rx_port, r.refill.notify);
        if (r.complete && !r.more) break;
    }
}

}  // namespace xensim
