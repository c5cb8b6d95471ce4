// netback: dom0's PV network backend for one vif of one guest (the "vif" driver of the backend bus).
//
// The problem. A guest's netfront posts packets and empty receive buffers on two shared rings per
// queue, naming its pages by grant; dom0 must find the rings through XenStore, map them, move every
// byte with batched grant hypercalls, hand the guest's packets to dom0's bridge and queue the
// bridge's packets for the guest, and notify only when the ring macros say so. The ring work itself
// (copying and validating every slot, building grant-op arrays) is NetifRingBackend's
// (netif_ring_backend.h); this class is the kernel around it: xenbus, event channels, hypercalls,
// NAPI and kernel threads, and the seam to dom0's network (vif_network.h).
//
// What is modelled, following Linux 6.1 drivers/net/xen-netback:
//  * netback_probe (xenbus.c): feature-sg, feature-gso-tcpv4, feature-gso-tcpv6,
//    feature-ipv6-csum-offload, feature-rx-copy 1, feature-rx-flip 0, feature-multicast-control,
//    feature-dynamic-multicast-control, feature-split-event-channels (separate_tx_rx_irq),
//    multi-queue-max-queues (xenvif_max_queues), then InitWait and a watch on the frontend's state.
//  * frontend_changed -> connect (frontend Connected): read_xenbus_vif_flags (request-rx-copy must
//    be 1, feature-rx-notify is mandatory, feature-sg, feature-gso-tcpv4/6, feature-no-csum-offload,
//    feature-ipv6-csum-offload, request-multicast-control), multi-queue-num-queues (1..max, else
//    xenbus_dev_fatal), xen_net_read_rate (`rate` = "bytes,usec" -> the engine's credit), then per
//    queue connect_data_rings: tx-ring-ref and rx-ring-ref (in queue-N/ with several queues), each
//    ring mapped with one GNTTABOP_map_grant_ref (xenbus_map_ring_valloc), event-channel-tx and
//    event-channel-rx when the frontend split them, else event-channel, each bound with
//    EVTCHNOP_bind_interdomain (xenvif_connect_data); then the hotplug step (vif-bridge: attach to the
//    bridge named by the backend's `bridge` node through VifNetwork::attach, as vif<domid>.<devid>)
//    and Connected. Any failure: the reason in the backend's `error` node and Closing
//    (xenbus_dev_fatal), counted.
//  * TX (interface.c xenvif_tx_interrupt -> NAPI xenvif_poll -> netback.c xenvif_tx_action, budget
//    64): NetifRingBackend::build_tx, then ONE GNTTABOP_copy and ONE GNTTABOP_map_grant_ref (each
//    skipped when it has no op, as Linux skips an empty map and returns before the copy when
//    nothing was built), submit_tx, the single unmaps of dropped packets, and each good frame to
//    VifNetwork::transmit with a release callback (xenvif_zerocopy_callback) that wakes the queue's
//    dealloc kthread (xenvif_dealloc_kthread): ONE batched GNTTABOP_unmap_grant_ref for everything
//    released, the responses, RING_PUSH_RESPONSES_AND_CHECK_NOTIFY -> EVTCHNOP_send only when asked.
//    Below budget, RING_FINAL_CHECK_FOR_REQUESTS (xenvif_napi_schedule_or_enable_events) decides
//    another round.
//  * RX (xenvif_start_xmit): VifPort::deliver picks the queue, NetifRingBackend::queue_rx, and
//    wakes the queue's guest-rx kthread (xenvif_kthread_guest_rx), which runs build_rx ->
//    GNTTABOP_copy -> complete_rx until the batch says last, then notifies if asked. The rx
//    interrupt (xenvif_rx_interrupt: the frontend posted buffers) wakes it again when frames wait.
//  * Fatal errors (NetifRingBackend::fatal): xenvif_fatal_tx_err: the vif is disabled (carrier off,
//    counted), no request is taken again, frames for the guest are dropped; other vifs go on.
//  * Credit (xenvif_tx_credit_callback, tx_credit_exceeded; the `rate` node): when the engine stops
//    a TX round for lack of credit it names the end of the credit window, and netback arms the
//    queue's credit_timeout there (BackendKernel::mod_timer on the queue's dom0 vCPU, as
//    tx_credit_exceeded does from NAPI; dom0's kernel programs it with
//    VCPUOP_set_singleshot_timer and takes it as VIRQ_TIMER). The poll then ends without the final
//    ring check (xenvif_poll leaves a rate-limited queue to the timer), so the guest's further
//    requests wait; the timer's function adds the credit (credit_timer_fired) and, if requests
//    wait, runs the NAPI poll on that vCPU (xenvif_napi_schedule_or_enable_events).
//  * Kernel threads on dom0 vCPUs: queue q's interrupts, NAPI, guest-rx and dealloc threads all run
//    on dom0 vCPU q % dom0_vcpus (Linux spreads a vif's queue IRQs and threads over dom0's CPUs; the
//    event channel is moved there with EVTCHNOP_bind_vcpu); a thread woken from another vCPU costs
//    a reschedule IPI (BackendKernel::defer_on).
//
// Where it deliberately differs from Linux:
//  * Queue selection for RX (xenvif_select_queue uses skb_get_hash, a jhash of the flow) is a
//    deterministic FNV-1a hash (mixed with murmur3's fmix32) of bytes 26..37 (IPv4 addresses and L4
//    ports), mod
//    the number of queues; one queue: queue 0.
//  * Credit windows are exact simulated milliseconds, not jiffies (netif_ring_backend.h), and the
//    credit timer fires at its exact nanosecond (kernel_timers.h: no timer-wheel rounding).
//  * The hotplug script's work (vif-bridge) is done in connect(), not by udev after probe.
//  * A disabled vif stays attached to the bridge; deliver() drops (Linux: carrier off stops the
//    bridge forwarding to it).
//  * The engine's synthetic dom0 frames for TX heads and RX sources are staged through real dom0
//    pages for the hypercall (simulator plumbing, not charged).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/dom0/backend_bus.h"
#include "models/dom0/backend_kernel.h"
#include "models/dom0/netif_ring_backend.h"
#include "models/dom0/vif_network.h"
#include "sim/core/stats.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

struct NetbackParams {
    domid_t frontend_domid = 1;
    unsigned devid = 0;
    unsigned max_queues = 8;  // xenvif_max_queues (Linux: num_online_cpus())
    bool feature_sg = true;
    bool feature_gso_tcpv4 = true;
    bool feature_gso_tcpv6 = true;
    bool feature_ipv6_csum_offload = true;
    bool split_event_channels = true;  // separate_tx_rx_irq (module parameter, default true)
    unsigned fatal_skb_slots = 20;
    unsigned napi_budget = 64;  // XENVIF_NAPI_WEIGHT
};

class Netback : public BackendDevice, public VifPort {
  public:
    // `network` may be null: the vif then fails at the hotplug step (no bridge).
    Netback(const NetbackParams& params, VifNetwork* network, StatsGroup& parent);
    ~Netback() override;
    Netback(const Netback&) = delete;
    Netback& operator=(const Netback&) = delete;

    // The "vif" driver's probe (the backend bus calls it in thread context): a Netback for the
    // node with `tunables` (frontend and devid from the node), started.
    static std::unique_ptr<Netback> probe(const BackendDeviceNode& node, const NetbackParams& tunables,
                                          VifNetwork* network, StatsGroup& parent, BackendKernel& kernel,
                                          BackendServices& s);
    void start(BackendKernel& kernel, BackendServices& s);
    void remove(BackendServices& s) override;
    // VifPort: a frame the bridge forwards to this vif (xenvif_start_xmit).
    bool deliver(BackendServices& s, EthernetFrame&& frame) override;

    XenbusState state() const { return fsm_.state(); }
    unsigned queues() const { return static_cast<unsigned>(queues_.size()); }
    unsigned queue_vcpu(unsigned q) const;
    bool split_event_channels() const { return split_; }
    bool disabled() const { return disabled_; }
    bool frontend_sg() const { return fe_sg_; }
    // The engine of queue q (nullptr before connect), for inspection.
    const NetifRingBackend* ring(unsigned q) const;

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter tx_frames, tx_rounds, tx_copy_hypercalls, tx_map_hypercalls, tx_unmap_hypercalls,
            dealloc_batches, rx_frames, rx_dropped, rx_copy_hypercalls, rx_actions, notifications_sent,
            notifications_suppressed, fatal_errors, connect_failures, disconnects, tx_interrupts,
            rx_interrupts, tx_unreleased_at_close, credit_timer_arms, credit_timer_fires;
        Counter cycles;  // netback's own per-frame work (netback_tx/rx_packet), hypercalls excluded
    };
    const Stats& stats() const { return stats_; }
    StatsGroup& group() { return group_; }

  private:
    struct Queue;
    void frontend_changed(BackendServices& s);
    bool connect(BackendServices& s);
    bool connect_queue(BackendServices& s, unsigned q, const std::string& dir);
    void disconnect(BackendServices& s);
    void fail(BackendServices& s, const std::string& why);
    void switch_state(XenbusState to);
    std::optional<std::uint64_t> frame(BackendServices& s);
    bool map_ring(BackendServices& s, grant_ref_t ref, std::uint64_t& gfn, grant_handle_t& handle);

    void tx_interrupt(BackendServices& s, unsigned q);
    void rx_interrupt(BackendServices& s, unsigned q);
    void tx_poll(BackendServices& s, unsigned q);
    void dealloc_action(BackendServices& s, unsigned q);
    void arm_credit_timer(BackendServices& s, unsigned q);
    void credit_callback(BackendServices& s, unsigned q);
    void wake_rx(BackendServices& s, unsigned q);
    void rx_action(BackendServices& s, unsigned q);
    void notify(BackendServices& s, evtchn_port_t port, bool needed);
    void fatal(BackendServices& s);
    std::uint8_t* scratch(BackendServices& s, std::vector<std::uint64_t>& pool, unsigned i);
    unsigned select_queue(const EthernetFrame& f) const;

    NetbackParams p_;
    VifNetwork* network_;
    StatsGroup group_;
    Stats stats_;
    BackendKernel* kernel_ = nullptr;
    std::string front_, back_;
    XenbusStateMachine fsm_{XenbusSide::backend};
    bool watching_ = false, split_ = false, disabled_ = false, closing_ = false;
    bool fe_sg_ = false, fe_gso4_ = false, fe_gso6_ = false, fe_mcast_ = false;
    std::uint64_t credit_bytes_ = ~std::uint64_t{0}, credit_usec_ = 0;
    int net_handle_ = -1;
    std::vector<std::unique_ptr<Queue>> queues_;
    std::vector<std::uint64_t> free_frames_;
};

}  // namespace xensim
