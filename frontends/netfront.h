// netfront: a guest's PV network driver for one vif, as the NetDevice network workloads use.
//
// The problem. A guest reaches a PV NIC only through XenStore (to find and negotiate with netback),
// two shared rings per queue in its own granted pages, and event channels. This driver does what
// Linux 6.1 drivers/net/xen-netfront.c does around the ring engine (netif_ring_frontend.h): the
// XenBus handshake, per-queue ring and event-channel set-up, the transmit path and the interrupt /
// NAPI paths, with the offloads both sides agreed.
//
// What is modelled (Linux 6.1 xen-netfront.c; protocol text of xen/include/public/io/netif.h):
//  * xennet_connect once the backend is in InitWait (netback_changed): feature-rx-copy must be 1
//    ("backend does not support copying receive path"); talk_to_netback: the MAC from the device's
//    own `mac` node (xen_net_read_mac), multi-queue-max-queues -> queues = min(wanted, backend max,
//    vCPUs) (xennet_create_queues), feature-split-event-channels; per queue setup_netfront: the two
//    rings (NetifRingFrontend::setup) granted to the backend, and one event channel
//    (EVTCHNOP_alloc_unbound, setup_netfront_single) or two (setup_netfront_split) bound to vCPU
//    q % vCPUs (XenGuest::bind_vcpu, as blkfront spreads its queues); then ONE transaction
//    (retried on EAGAIN): multi-queue-num-queues when the backend wrote multi-queue-max-queues,
//    write_queue_xenstore_keys (tx-ring-ref, rx-ring-ref, event-channel or event-channel-tx/-rx;
//    in queue-N/ with more than one queue), request-rx-copy 1, feature-rx-notify 1, feature-sg,
//    feature-gso-tcpv4, feature-gso-tcpv6, feature-ipv6-csum-offload (as the profile offers them);
//    the first rx refill (xennet_alloc_rx_buffers + notify); then Connected, and the driver waits for
//    the backend's Connected (carrier on).
//  * Offloads (xennet_fix_features): sg only if the backend wrote feature-sg; GSO only with sg and
//    the backend's feature-gso-tcpv4/6; tx checksum offload unless the backend wrote
//    feature-no-csum-offload 1, IPv6 checksum offload only with feature-ipv6-csum-offload 1.
//  * transmit (xennet_start_xmit): the engine lays the frame into slots; Linux 6.1 then pushes at
//    once (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY -> EVTCHNOP_send when asked) and runs
//    xennet_tx_buf_gc; a stopped queue refuses the frame (false; on_tx_wake later). kick() has
//    nothing left to do for a frame-at-a-time profile.
//  * Interrupts on the queue's vCPU: xennet_tx_interrupt (collect_tx, wake), xennet_rx_interrupt
//    (rx_interrupt -> napi_schedule), xennet_interrupt for a shared channel (both). NAPI
//    (xennet_poll, budget 64) delivers each packet to on_receive on that vCPU, re-polls while the
//    budget was used up or RING_FINAL_CHECK found more, and notifies when the refill asks.
//  * Profiles (docs/netfront-profiles.md): linux, gplpv (rx buffers held until the upper layer
//    returns them, refill in batches of 64, persistent rx grants, one queue), winpv (XENVIF +
//    XENNET: a queue per vCPU up to the backend's maximum).
//
// Where it deliberately differs: the refill timer (rx_refill_timer, HZ/10) is not armed: a refill
// that could not push waits for the next poll. No xmit_more batching, no XDP, no bounce buffers,
// no ethtool statistics, no reconnection. With rx_deferred_release the buffers of a poll's packets
// are returned right after on_receive has seen them all (the upper layer's NdisReturnNetBufferLists
// modelled as immediate at the end of the indication), so they are posted by the next refill.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/net_device.h"
#include "frontends/netif_ring_frontend.h"
#include "frontends/xen_guest.h"
#include "frontends/xenbus_client.h"
#include "sim/core/stats.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

struct NetfrontProfile {
    const char* name;
    unsigned max_queues;  // wanted queues (negotiated down to the backend's maximum and the vCPUs)
    bool offer_sg, offer_gso_tcpv4, offer_gso_tcpv6, offer_ipv6_csum;
    bool rx_deferred_release;
    unsigned rx_refill_batch;
    bool rx_persistent_grants;
};
// "linux", "gplpv", "winpv"; throws std::invalid_argument for anything else.
const NetfrontProfile& netfront_profile(std::string_view name);

struct NetfrontParams {
    unsigned devid = 0;
    domid_t backend_domid = 0;
    std::string profile = "linux";
    unsigned queues = 0;        // 0: the profile's max_queues
    unsigned napi_budget = 64;  // NAPI_POLL_WEIGHT
    // The guest stack's TSO (`ethtool -K eth0 tso off` clears it): without it the stack hands the
    // driver MSS-sized TCP frames whatever was negotiated (netfront still offers GSO for receive).
    bool tso = true;
};

class Netfront : public NetDevice {
  public:
    Netfront(XenGuest& guest, const NetfrontParams& params, StatsGroup& parent);
    ~Netfront() override;
    Netfront(const Netfront&) = delete;
    Netfront& operator=(const Netfront&) = delete;

    bool connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) override;
    bool connected() const override { return connected_; }
    MacAddress mac() const override { return mac_; }
    NetDeviceFeatures features() const override { return features_; }
    unsigned queues() const override { return static_cast<unsigned>(queues_.size()); }
    unsigned queue_for_vcpu(unsigned vcpu) const override { return queues_.empty() ? 0 : vcpu % queues(); }
    bool transmit(GuestServices& s, unsigned q, EthernetFrame&& frame) override;
    void kick(GuestServices& s, unsigned q) override;
    // The device goes away (xennet_remove -> xennet_bus_close): Closing, wait for the backend to
    // close, xennet_disconnect_backend (every buffer's grant ended, channels closed, the rings'
    // grants ended), Closed. Thread context on vCPU 0. Returns the grants still not ended (the
    // backend still maps them: gnttab's deferred free would retry).
    std::size_t close(XenbusClient& xb, GuestServices& s);

    unsigned queue_vcpu(unsigned q) const { return q % vcpus_; }
    bool split_event_channels() const { return split_; }
    evtchn_port_t tx_port(unsigned q) const { return q < queues_.size() ? queues_[q].tx_port : 0; }
    evtchn_port_t rx_port(unsigned q) const { return q < queues_.size() ? queues_[q].rx_port : 0; }
    const NetfrontProfile& profile() const { return profile_; }
    // Queue q's ring engine (nullptr before connect): tests use it to misbehave on purpose.
    NetifRingFrontend* ring(unsigned q) { return q < queues_.size() ? queues_[q].ring.get() : nullptr; }
    // Pushes queue q's unpublished requests and notifies when the ring macro says so (what
    // transmit does after queueing), for requests written straight into ring(q).
    void push(GuestServices& s, unsigned q);
    // Grants held: the rings' and the engines' (tx in flight, posted and pooled rx buffers).
    std::size_t grants_outstanding() const;

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter tx_frames, tx_dropped, tx_busy, rx_frames, notifications_sent, notifications_suppressed,
            tx_interrupts, rx_interrupts, spurious_interrupts, napi_polls, tx_wakes;
    };
    const Stats& stats() const { return stats_; }
    StatsGroup& group() { return group_; }

  private:
    struct Queue {
        std::vector<grant_ref_t> ring_refs;  // tx, rx
        evtchn_port_t tx_port = 0, rx_port = 0;
        std::unique_ptr<StatsGroup> group;
        std::unique_ptr<NetifRingFrontend> ring;
    };
    bool talk_to_netback(XenbusClient& xb, GuestServices& s);
    void send(GuestServices& s, evtchn_port_t port, bool needed);
    void tx_interrupt(GuestServices& s, unsigned q);
    void rx_interrupt(GuestServices& s, unsigned q);
    void napi_poll(GuestServices& s, unsigned q);

    XenGuest& guest_;
    NetfrontParams p_;
    const NetfrontProfile& profile_;
    StatsGroup group_;
    Stats stats_;
    std::string front_, back_;
    domid_t backend_id_ = 0;
    XenbusStateMachine fsm_{XenbusSide::frontend};
    GuestServices* boot_ = nullptr;
    std::vector<Queue> queues_;
    unsigned vcpus_ = 1;
    bool split_ = false, connected_ = false;
    bool be_sg_ = false, be_gso4_ = false, be_gso6_ = false;
    MacAddress mac_{};
    NetDeviceFeatures features_{};
};

}  // namespace xensim
