#include "models/dom0/netback.h"

#include <algorithm>
#include <cstring>

namespace xensim {

namespace {

constexpr unsigned kPage = 4096;

}  // namespace

struct Netback::Queue {
    unsigned index = 0;
    unsigned vcpu = 0;
    std::uint64_t tx_gfn = 0, rx_gfn = 0;
    grant_handle_t tx_handle = 0, rx_handle = 0;
    bool tx_mapped = false, rx_mapped = false;
    evtchn_port_t tx_port = 0, rx_port = 0;  // equal without split event channels
    std::unique_ptr<StatsGroup> group;
    std::unique_ptr<NetifRingBackend> engine;
    std::vector<std::uint64_t> pending_frames;  // where pending index p is mapped (lazily taken)
    // dom0 pages staging the engine's copy ops: TX (NAPI, interrupt context) and RX (the guest-rx
    // kthread, which NAPI may interrupt) have their own.
    std::vector<std::uint64_t> tx_scratch, rx_scratch;
    bool rx_thread_woken = false, dealloc_woken = false, in_tx_poll = false;
    // queue->credit_timeout (xenvif_init_queue's timer_setup), set up at connect; the deadline it
    // was last armed at (absolute ps, the engine's credit_timeout()).
    std::optional<KernelTimerId> credit_timer;
    std::optional<std::uint64_t> credit_armed_ps;
};

Netback::Stats::Stats(StatsGroup& g)
    : tx_frames(g, "tx_frames", "frames", "frames from the guest handed to dom0's network"),
      tx_rounds(g, "tx_rounds", "rounds", "xenvif_tx_action rounds that built at least one op or packet"),
      tx_copy_hypercalls(g, "tx_copy_hypercalls", "hypercalls", "GNTTABOP_copy of TX rounds"),
      tx_map_hypercalls(g, "tx_map_hypercalls", "hypercalls", "GNTTABOP_map_grant_ref of TX rounds"),
      tx_unmap_hypercalls(g, "tx_unmap_hypercalls", "hypercalls",
                          "GNTTABOP_unmap_grant_ref of TX frags (dealloc batches and single unmaps)"),
      dealloc_batches(g, "dealloc_batches", "batches", "dealloc kthread runs that unmapped something"),
      rx_frames(g, "rx_frames", "frames", "frames from the network accepted for the guest"),
      rx_dropped(g, "rx_dropped", "frames", "frames for the guest dropped (vif down, queue full)"),
      rx_copy_hypercalls(g, "rx_copy_hypercalls", "hypercalls", "GNTTABOP_copy of guest-rx batches"),
      rx_actions(g, "rx_actions", "runs", "guest-rx kthread runs (xenvif_rx_action)"),
      notifications_sent(g, "notifications_sent", "notifications", "EVTCHNOP_send to the frontend"),
      notifications_suppressed(g, "notifications_suppressed", "pushes",
                               "response pushes the ring macro said need no notification"),
      fatal_errors(g, "fatal_errors", "errors", "xenvif_fatal_tx_err: the vif disabled"),
      connect_failures(g, "connect_failures", "failures", "connects failed (xenbus_dev_fatal)"),
      disconnects(g, "disconnects", "disconnects", "queues torn down"),
      tx_interrupts(g, "tx_interrupts", "interrupts", "TX (or shared) event-channel interrupts"),
      rx_interrupts(g, "rx_interrupts", "interrupts", "RX event-channel interrupts (split channels)"),
      tx_unreleased_at_close(g, "tx_unreleased_at_close", "slots",
                             "TX slots still held by the network when the vif disconnected"),
      credit_timer_arms(g, "credit_timer_arms", "timers",
                        "mod_timer of a queue's credit_timeout (tx_credit_exceeded stopped a round)"),
      credit_timer_fires(g, "credit_timer_fires", "timers",
                         "xenvif_tx_credit_callback runs (credit added, NAPI rescheduled if work waits)"),
      cycles(g, "cycles", "cycles",
             "netback per-frame processing charged on dom0 vCPUs (hypercalls excluded)") {}

Netback::Netback(const NetbackParams& params, VifNetwork* network, StatsGroup& parent)
    : p_(params),
      network_(network),
      group_("vif_" + std::to_string(params.frontend_domid) + "_" + std::to_string(params.devid), &parent),
      stats_(group_),
      front_("/local/domain/" + std::to_string(params.frontend_domid) + "/device/vif/" +
             std::to_string(params.devid)),
      back_("/local/domain/0/backend/vif/" + std::to_string(params.frontend_domid) + "/" +
            std::to_string(params.devid)) {}

Netback::~Netback() = default;

unsigned Netback::queue_vcpu(unsigned q) const {
    const unsigned n = kernel_ ? std::max(1u, kernel_->vcpus()) : 1u;
    return q % n;
}

const NetifRingBackend* Netback::ring(unsigned q) const {
    return q < queues_.size() ? queues_[q]->engine.get() : nullptr;
}

std::unique_ptr<Netback> Netback::probe(const BackendDeviceNode& node, const NetbackParams& tunables,
                                        VifNetwork* network, StatsGroup& parent, BackendKernel& kernel,
                                        BackendServices& s) {
    auto devid = parse_xenstore_uint(std::optional<std::string>(node.devid));
    if (!devid) return nullptr;
    NetbackParams p = tunables;
    p.frontend_domid = node.frontend_id;
    p.devid = static_cast<unsigned>(*devid);
    auto back = std::make_unique<Netback>(p, network, parent);
    back->start(kernel, s);
    return back;
}

void Netback::switch_state(XenbusState to) {
    if (fsm_.state() == to || !fsm_.switch_to(to)) return;
    kernel_->xs_write(back_ + "/state", std::to_string(static_cast<int>(to)));
}

void Netback::start(BackendKernel& kernel, BackendServices& s) {
    (void)s;
    kernel_ = &kernel;
    // netback_probe: the features, in its order, then InitWait.
    auto put = [&](const char* key, const std::string& v) { kernel.xs_write(back_ + "/" + key, v); };
    put("feature-sg", p_.feature_sg ? "1" : "0");
    put("feature-gso-tcpv4", p_.feature_gso_tcpv4 ? "1" : "0");
    put("feature-gso-tcpv6", p_.feature_gso_tcpv6 ? "1" : "0");
    put("feature-ipv6-csum-offload", p_.feature_ipv6_csum_offload ? "1" : "0");
    put("feature-rx-copy", "1");
    put("feature-rx-flip", "0");
    put("feature-multicast-control", "1");
    put("feature-dynamic-multicast-control", "1");
    put("feature-split-event-channels", p_.split_event_channels ? "1" : "0");
    put("multi-queue-max-queues", std::to_string(p_.max_queues));
    switch_state(XenbusStateInitWait);
    watching_ = kernel.xs_watch(front_ + "/state", "netback:" + back_,
                                [this](BackendServices& vs, const std::string&) { frontend_changed(vs); });
}

void Netback::frontend_changed(BackendServices& s) {
    if (!watching_) return;
    XenbusState peer = parse_xenbus_state(kernel_->xs_read(front_ + "/state").value_or(""));
    switch (peer) {
        case XenbusStateConnected:
            if (fsm_.state() == XenbusStateInitWait && !closing_) {
                if (connect(s)) switch_state(XenbusStateConnected);
            }
            break;
        case XenbusStateClosing:
            disconnect(s);
            switch_state(XenbusStateClosing);
            break;
        case XenbusStateClosed:
            disconnect(s);
            switch_state(XenbusStateClosing);
            switch_state(XenbusStateClosed);
            if (parse_xenstore_uint(kernel_->xs_read(back_ + "/online")).value_or(0) == 0 && watching_) {
                watching_ = false;
                kernel_->xs_unwatch(front_ + "/state", "netback:" + back_);
            }
            break;
        default:
            break;
    }
}

void Netback::remove(BackendServices& s) {
    if (!kernel_) return;
    if (watching_) {
        watching_ = false;
        kernel_->xs_unwatch(front_ + "/state", "netback:" + back_);
    }
    disconnect(s);
}

void Netback::fail(BackendServices& s, const std::string& why) {
    stats_.connect_failures.inc();
    kernel_->xs_write(back_ + "/error", why);
    disconnect(s);
    switch_state(XenbusStateClosing);
}

std::optional<std::uint64_t> Netback::frame(BackendServices& s) {
    if (!free_frames_.empty()) {
        std::uint64_t g = free_frames_.back();
        free_frames_.pop_back();
        return g;
    }
    return s.take_unpopulated_frame();
}

bool Netback::map_ring(BackendServices& s, grant_ref_t ref, std::uint64_t& gfn, grant_handle_t& handle) {
    // xenbus_map_ring_valloc of one page: one GNTTABOP_map_grant_ref.
    auto g = frame(s);
    if (!g) return false;
    gnttab_map_grant_ref_t op{};
    op.host_addr = *g << 12;
    op.flags = GNTMAP_host_map;
    op.ref = ref;
    op.dom = p_.frontend_domid;
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, reinterpret_cast<unsigned long>(&op), 1,
                0, 0);
    if (op.status != GNTST_okay || !s.page(*g)) {
        free_frames_.push_back(*g);
        return false;
    }
    gfn = *g;
    handle = op.handle;
    return true;
}

bool Netback::connect(BackendServices& s) {
    BackendKernel& k = *kernel_;
    // read_xenbus_vif_flags.
    if (k.xs_read_uint(front_ + "/request-rx-copy").value_or(0) != 1) {
        fail(s, "request-rx-copy: only the copying receive path is supported");
        return false;
    }
    if (k.xs_read_uint(front_ + "/feature-rx-notify").value_or(0) != 1) {
        fail(s, "feature-rx-notify is mandatory");
        return false;
    }
    fe_sg_ = k.xs_read_uint(front_ + "/feature-sg").value_or(0) == 1;
    fe_gso4_ = k.xs_read_uint(front_ + "/feature-gso-tcpv4").value_or(0) == 1;
    fe_gso6_ = k.xs_read_uint(front_ + "/feature-gso-tcpv6").value_or(0) == 1;
    fe_mcast_ = k.xs_read_uint(front_ + "/request-multicast-control").value_or(0) == 1;
    // xen_net_read_rate: "bytes,usec".
    if (auto rate = k.xs_read(back_ + "/rate")) {
        const auto comma = rate->find(',');
        if (comma != std::string::npos) {
            auto b = parse_xenstore_uint(std::optional<std::string>(rate->substr(0, comma)));
            auto u = parse_xenstore_uint(std::optional<std::string>(rate->substr(comma + 1)));
            if (b && u && *u) {
                credit_bytes_ = *b;
                credit_usec_ = *u;
            }
        }
    }
    const auto nq = k.xs_read_uint(front_ + "/multi-queue-num-queues").value_or(1);
    if (nq == 0 || nq > p_.max_queues) {
        fail(s, "guest requested " + std::to_string(nq) + " queues, exceeding the maximum of " +
                    std::to_string(p_.max_queues));
        return false;
    }
    for (unsigned q = 0; q < nq; ++q) {
        const std::string dir = nq > 1 ? front_ + "/queue-" + std::to_string(q) : front_;
        if (!connect_queue(s, q, dir)) return false;
    }
    // The hotplug script (vif-bridge): enslave the vif to the backend's bridge.
    const std::string bridge = k.xs_read(back_ + "/bridge").value_or("");
    const std::string name = "vif" + std::to_string(p_.frontend_domid) + "." + std::to_string(p_.devid);
    net_handle_ = network_ ? network_->attach(bridge, name, *this) : -1;
    if (net_handle_ < 0) {
        fail(s, "hotplug: no bridge \"" + bridge + "\" for " + name);
        return false;
    }
    return true;
}

bool Netback::connect_queue(BackendServices& s, unsigned q, const std::string& dir) {
    BackendKernel& k = *kernel_;
    auto tx_ref = k.xs_read_uint(dir + "/tx-ring-ref");
    auto rx_ref = k.xs_read_uint(dir + "/rx-ring-ref");
    if (!tx_ref || !rx_ref) {
        fail(s, "reading " + dir + "/ring-ref");
        return false;
    }
    auto evt_tx = k.xs_read_uint(dir + "/event-channel-tx");
    auto evt_rx = k.xs_read_uint(dir + "/event-channel-rx");
    std::optional<std::uint64_t> evt;
    if (!evt_tx || !evt_rx) {
        evt = k.xs_read_uint(dir + "/event-channel");
        if (!evt) {
            fail(s, "reading " + dir + "/event-channel(-tx/rx)");
            return false;
        }
    }
    queues_.push_back(std::make_unique<Queue>());
    Queue& Q = *queues_.back();
    Q.index = q;
    Q.vcpu = queue_vcpu(q);
    Q.group = std::make_unique<StatsGroup>("queue" + std::to_string(q), &group_);
    if (!map_ring(s, static_cast<grant_ref_t>(*tx_ref), Q.tx_gfn, Q.tx_handle)) {
        fail(s, "mapping shared-frames " + std::to_string(*tx_ref));
        return false;
    }
    Q.tx_mapped = true;
    if (!map_ring(s, static_cast<grant_ref_t>(*rx_ref), Q.rx_gfn, Q.rx_handle)) {
        fail(s, "mapping shared-frames " + std::to_string(*rx_ref));
        return false;
    }
    Q.rx_mapped = true;
    NetifBackendConfig cfg;
    cfg.frontend_domid = p_.frontend_domid;
    cfg.fatal_skb_slots = p_.fatal_skb_slots;
    cfg.credit_bytes = credit_bytes_;
    cfg.credit_usec = credit_usec_;
    cfg.feature_gso_tcpv4 = fe_gso4_;
    cfg.feature_gso_tcpv6 = fe_gso6_;
    cfg.multicast_control = fe_mcast_;
    cfg.mmap_base = 0;  // host_addr = pending index * 4096, rewritten to Q.pending_frames at the call
    Q.engine = std::make_unique<NetifRingBackend>(s.page(Q.tx_gfn), s.page(Q.rx_gfn), cfg, *Q.group,
                                                  s.now_ns() * 1000);
    Q.pending_frames.assign(NetifRingBackend::kMaxPendingReqs, 0);
    // xenvif_init_queue: timer_setup(&queue->credit_timeout, xenvif_tx_credit_callback, 0).
    Q.credit_timer = k.timer_setup([this, q](BackendServices& vs) { credit_callback(vs, q); });
    auto bind = [&](std::uint64_t remote, evtchn_port_t& local) {
        evtchn_bind_interdomain_t b{};
        b.remote_dom = p_.frontend_domid;
        b.remote_port = static_cast<evtchn_port_t>(remote);
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                        reinterpret_cast<unsigned long>(&b), 0, 0, 0) != 0)
            return false;
        local = b.local_port;
        return true;
    };
    split_ = !evt;
    if (split_) {
        if (!bind(*evt_tx, Q.tx_port) || !bind(*evt_rx, Q.rx_port)) {
            fail(s, "binding event-channel-tx/rx");
            return false;
        }
        k.set_port_handler(Q.tx_port, [this, q](BackendServices& vs) { tx_interrupt(vs, q); });
        k.set_port_handler(Q.rx_port, [this, q](BackendServices& vs) { rx_interrupt(vs, q); });
    } else {
        if (!bind(*evt, Q.tx_port)) {
            fail(s, "binding event-channel");
            return false;
        }
        Q.rx_port = Q.tx_port;
        // xenvif_interrupt: both directions on one channel.
        k.set_port_handler(Q.tx_port, [this, q](BackendServices& vs) {
            tx_interrupt(vs, q);
            rx_interrupt(vs, q);
        });
    }
    for (evtchn_port_t port : {Q.tx_port, Q.rx_port}) {
        if (Q.vcpu != 0) k.bind_vcpu(s, port, Q.vcpu);
        k.unmask(s, port);
        if (!split_) break;
    }
    return true;
}

void Netback::disconnect(BackendServices& s) {
    if (closing_ && queues_.empty()) return;
    const bool had = !queues_.empty() && !closing_;
    closing_ = true;
    if (net_handle_ >= 0 && network_) network_->detach(net_handle_);
    net_handle_ = -1;
    if (!had) return;
    for (auto& qp : queues_) {
        Queue& Q = *qp;
        stats_.disconnects.inc();
        if (Q.engine) {
            dealloc_action(s, Q.index);  // what the network released already
            stats_.tx_unreleased_at_close.inc(Q.engine->pending_in_use());
        }
        if (Q.credit_timer) {  // xenvif_disconnect_queue: del_timer_sync(&queue->credit_timeout)
            kernel_->timer_shutdown(*Q.credit_timer);
            Q.credit_timer.reset();
            Q.credit_armed_ps.reset();
        }
        for (evtchn_port_t port : {Q.tx_port, Q.rx_port}) {
            if (!port) continue;
            kernel_->clear_port_handler(port);
            evtchn_close_t c{};
            c.port = port;
            s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_close, reinterpret_cast<unsigned long>(&c), 0,
                        0, 0);
            if (Q.rx_port == Q.tx_port) break;
        }
        std::vector<gnttab_unmap_grant_ref_t> ops;
        if (Q.tx_mapped) ops.push_back({Q.tx_gfn << 12, 0, Q.tx_handle, 0});
        if (Q.rx_mapped) ops.push_back({Q.rx_gfn << 12, 0, Q.rx_handle, 0});
        for (auto& op : ops) {  // xenbus_unmap_ring_vfree: one unmap per ring
            s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                        reinterpret_cast<unsigned long>(&op), 1, 0, 0);
            free_frames_.push_back(op.host_addr >> 12);
        }
        Q.tx_mapped = Q.rx_mapped = false;
    }
}

void Netback::notify(BackendServices& s, evtchn_port_t port, bool needed) {
    if (!needed) {
        stats_.notifications_suppressed.inc();
        return;
    }
    evtchn_send_t send{};
    send.port = port;
    s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send), 0, 0,
                0);
    stats_.notifications_sent.inc();
}

void Netback::fatal(BackendServices& s) {
    (void)s;
    // xenvif_fatal_tx_err -> xenvif_carrier_off.
    if (disabled_) return;
    disabled_ = true;
    stats_.fatal_errors.inc();
}

std::uint8_t* Netback::scratch(BackendServices& s, std::vector<std::uint64_t>& pool, unsigned i) {
    while (pool.size() <= i) {
        auto g = s.alloc_page();
        if (!g) return nullptr;
        pool.push_back(*g);
    }
    return s.page(pool[i]);
}

void Netback::tx_interrupt(BackendServices& s, unsigned q) {
    stats_.tx_interrupts.inc();
    if (closing_ || disabled_ || q >= queues_.size()) return;
    tx_poll(s, q);  // napi_schedule: the poll runs in this CPU's softirq
}

void Netback::tx_poll(BackendServices& s, unsigned q) {
    Queue& Q = *queues_[q];
    if (Q.in_tx_poll) return;
    Q.in_tx_poll = true;
    NetifRingBackend& e = *Q.engine;
    std::vector<const std::uint8_t*> mapped;
    for (;;) {
        unsigned work = 0;
        bool notify_needed = false;
        while (work < p_.napi_budget && !disabled_ && !closing_) {
            NetifRingBackend::TxGops g = e.build_tx(s.now_ns() * 1000, p_.napi_budget - work);
            notify_needed |= g.notify;
            if (g.rate_limited) arm_credit_timer(s, q);
            if (e.disabled()) fatal(s);
            if (g.packets == 0) break;  // xenvif_tx_action: nothing built, no hypercall
            stats_.tx_rounds.inc();
            if (g.nr_copy) {
                // Stage the engine's synthetic head-buffer frames through real dom0 pages.
                std::vector<xen_pfn_t> saved(g.nr_copy);
                for (unsigned i = 0; i < g.nr_copy; ++i) {
                    saved[i] = g.copy[i].dest.u.gmfn;
                    if (scratch(s, Q.tx_scratch, i)) g.copy[i].dest.u.gmfn = Q.tx_scratch[i];
                }
                s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_copy,
                            reinterpret_cast<unsigned long>(g.copy), g.nr_copy, 0, 0);
                stats_.tx_copy_hypercalls.inc();
                for (unsigned i = 0; i < g.nr_copy; ++i) {
                    if (g.copy[i].status == GNTST_okay && i < Q.tx_scratch.size())
                        std::memcpy(g.copy_dest[i], s.page(Q.tx_scratch[i]) + g.copy[i].dest.offset,
                                    g.copy[i].len);
                    g.copy[i].dest.u.gmfn = saved[i];
                }
            }
            mapped.assign(g.nr_map, nullptr);
            if (g.nr_map) {
                std::vector<std::uint64_t> addr(g.nr_map);
                for (unsigned i = 0; i < g.nr_map; ++i) {
                    addr[i] = g.map[i].host_addr;
                    const unsigned p = static_cast<unsigned>(addr[i] / kPage);
                    if (!Q.pending_frames[p]) Q.pending_frames[p] = frame(s).value_or(0);
                    g.map[i].host_addr = Q.pending_frames[p] << 12;
                }
                s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                            reinterpret_cast<unsigned long>(g.map), g.nr_map, 0, 0);
                stats_.tx_map_hypercalls.inc();
                for (unsigned i = 0; i < g.nr_map; ++i) {
                    if (g.map[i].status == GNTST_okay) mapped[i] = s.page(g.map[i].host_addr >> 12);
                    g.map[i].host_addr = addr[i];
                }
            }
            NetifRingBackend::TxSubmit sub = e.submit_tx(mapped);
            notify_needed |= sub.notify;
            if (!sub.unmaps.empty()) {
                for (auto& op : sub.unmaps) {  // xenvif_idx_unmap: one op per hypercall
                    const std::uint64_t a = op.host_addr;
                    op.host_addr = Q.pending_frames[a / kPage] << 12;
                    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                                reinterpret_cast<unsigned long>(&op), 1, 0, 0);
                    stats_.tx_unmap_hypercalls.inc();
                    op.host_addr = a;
                }
                notify_needed |= e.complete_check_unmaps(sub.unmaps);
            }
            work += g.packets;
            for (NetbackTxPacket& pkt : sub.packets) {
                s.compute(s.costs().netback_tx_packet);
                stats_.cycles.inc(s.costs().netback_tx_packet);
                stats_.tx_frames.inc();
                std::function<void(BackendServices&)> release;
                if (pkt.needs_release) {
                    const std::uint16_t h = pkt.release_handle;
                    release = [this, q, h](BackendServices& vs) {
                        // xenvif_zerocopy_callback: queue for the dealloc kthread and wake it.
                        Queue& RQ = *queues_[q];
                        RQ.engine->release(h);
                        if (RQ.dealloc_woken) return;
                        RQ.dealloc_woken = true;
                        kernel_->defer_on(vs, RQ.vcpu, [this, q](BackendServices& ws) {
                            queues_[q]->dealloc_woken = false;
                            dealloc_action(ws, q);
                        });
                    };
                }
                if (network_ && net_handle_ >= 0) {
                    network_->transmit(s, net_handle_, std::move(pkt.frame), std::move(release));
                } else if (release) {
                    release(s);
                }
            }
        }
        if (work || notify_needed) notify(s, Q.tx_port, notify_needed);
        // napi_complete_done + xenvif_napi_schedule_or_enable_events.
        if (disabled_ || closing_) break;
        // xenvif_poll: "If the queue is rate-limited, it shall be rescheduled in the timer
        // callback" (queue->rate_limited: the credit timer is pending).
        if (work < p_.napi_budget && e.credit_timeout()) break;
        if (work >= p_.napi_budget) {
            // Budget used: net_rx_action leaves the rest to the next softirq round (ksoftirqd), so
            // the CPU's other interrupts (the NIC's TX completions, other vifs) are taken first.
            Q.in_tx_poll = false;
            kernel_->defer_on(s, Q.vcpu, [this, q](BackendServices& vs) { tx_poll(vs, q); });
            return;
        }
        if (!e.tx_final_check()) break;
    }
    Q.in_tx_poll = false;
}

void Netback::arm_credit_timer(BackendServices& s, unsigned q) {
    // tx_credit_exceeded: mod_timer(&queue->credit_timeout, next_credit) when it stops a round for
    // credit; when the timer is already pending ("in rare cases") it arms nothing.
    Queue& Q = *queues_[q];
    const auto deadline = Q.engine->credit_timeout();
    if (!deadline || !Q.credit_timer || Q.credit_armed_ps == deadline) return;
    Q.credit_armed_ps = deadline;
    const std::uint64_t expires_ns = (*deadline + 999) / 1000;
    kernel_->mod_timer(s, Q.vcpu, *Q.credit_timer, expires_ns);
    stats_.credit_timer_arms.inc();
}

void Netback::credit_callback(BackendServices& s, unsigned q) {
    // xenvif_tx_credit_callback: tx_add_credit, then xenvif_napi_schedule_or_enable_events.
    if (q >= queues_.size()) return;
    Queue& Q = *queues_[q];
    stats_.credit_timer_fires.inc();
    Q.credit_armed_ps.reset();
    if (closing_ || !Q.engine) return;
    Q.engine->credit_timer_fired(s.now_ns() * 1000);
    if (disabled_) return;
    if (Q.engine->tx_final_check()) tx_poll(s, q);  // napi_schedule: the poll runs in this softirq
}

void Netback::dealloc_action(BackendServices& s, unsigned q) {
    if (q >= queues_.size() || !queues_[q]->tx_mapped) return;
    Queue& Q = *queues_[q];
    NetifRingBackend::TxUnmaps u = Q.engine->build_dealloc();
    if (u.nr == 0) return;
    std::vector<std::uint64_t> addr(u.nr);
    for (unsigned i = 0; i < u.nr; ++i) {
        addr[i] = u.ops[i].host_addr;
        u.ops[i].host_addr = Q.pending_frames[addr[i] / kPage] << 12;
    }
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref, reinterpret_cast<unsigned long>(u.ops),
                u.nr, 0, 0);
    for (unsigned i = 0; i < u.nr; ++i) u.ops[i].host_addr = addr[i];
    stats_.tx_unmap_hypercalls.inc();
    stats_.dealloc_batches.inc();
    notify(s, Q.tx_port, Q.engine->complete_dealloc());
}

unsigned Netback::select_queue(const EthernetFrame& f) const {
    if (queues_.size() <= 1) return 0;
    // FNV-1a over the IPv4 addresses and L4 ports (bytes 26..37), or whatever the frame holds there.
    std::uint32_t h = 2166136261u;
    for (std::size_t i = 26; i < 38 && i < f.bytes.size(); ++i) {
        h ^= f.bytes[i];
        h *= 16777619u;
    }
    // murmur3's fmix32, so that every bit of the hash depends on every byte (FNV's low bit is
    // only the parity of the bytes).
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h % static_cast<unsigned>(queues_.size());
}

bool Netback::deliver(BackendServices& s, EthernetFrame&& frame) {
    if (closing_ || disabled_ || queues_.empty() || fsm_.state() != XenbusStateConnected) {
        stats_.rx_dropped.inc();
        return false;
    }
    const unsigned q = select_queue(frame);
    s.compute(s.costs().netback_rx_packet);
    stats_.cycles.inc(s.costs().netback_rx_packet);
    if (!queues_[q]->engine->queue_rx(std::move(frame))) {
        stats_.rx_dropped.inc();
        return false;
    }
    stats_.rx_frames.inc();
    wake_rx(s, q);
    return true;
}

void Netback::wake_rx(BackendServices& s, unsigned q) {
    Queue& Q = *queues_[q];
    if (Q.rx_thread_woken) return;
    Q.rx_thread_woken = true;
    kernel_->defer_on(s, Q.vcpu, [this, q](BackendServices& vs) {
        queues_[q]->rx_thread_woken = false;
        rx_action(vs, q);
    });
}

void Netback::rx_interrupt(BackendServices& s, unsigned q) {
    if (split_) stats_.rx_interrupts.inc();
    if (closing_ || q >= queues_.size()) return;
    if (queues_[q]->engine->rx_queued_frames()) wake_rx(s, q);  // xenvif_rx_interrupt
}

void Netback::rx_action(BackendServices& s, unsigned q) {
    if (closing_ || !queues_[q]->rx_mapped) return;
    Queue& Q = *queues_[q];
    NetifRingBackend& e = *Q.engine;
    if (!e.rx_queued_frames() || !e.rx_slots_available()) return;
    stats_.rx_actions.inc();
    bool notify_needed = false;
    for (;;) {
        NetifRingBackend::RxBatch b = e.build_rx();
        std::vector<xen_pfn_t> saved(b.nr);
        for (unsigned i = 0; i < b.nr; ++i) {
            saved[i] = b.ops[i].source.u.gmfn;
            std::uint8_t* page = scratch(s, Q.rx_scratch, i);
            if (!page) continue;  // left on the engine's frame: the copy fails and is answered so
            std::memcpy(page + b.ops[i].source.offset, b.src[i], b.ops[i].len);
            b.ops[i].source.u.gmfn = Q.rx_scratch[i];
        }
        s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_copy, reinterpret_cast<unsigned long>(b.ops), b.nr,
                    0, 0);
        stats_.rx_copy_hypercalls.inc();
        for (unsigned i = 0; i < b.nr; ++i) b.ops[i].source.u.gmfn = saved[i];
        notify_needed |= e.complete_rx();
        if (b.last) break;
    }
    notify(s, Q.rx_port, notify_needed);
    // More frames and room: the kthread goes round again (xenvif_kthread_guest_rx's loop).
    if (e.rx_queued_frames() && e.rx_slots_available()) wake_rx(s, q);
}

}  // namespace xensim
