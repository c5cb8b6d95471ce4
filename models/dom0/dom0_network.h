// dom0's network: the bridges the vifs are enslaved to, and the physical NIC between the uplink
// bridge and the wire.
//
// The problem. On Xen every frame a guest sends leaves netback as an sk_buff in dom0 and enters
// dom0's software bridge; every frame for a guest comes to netback from that bridge, either from
// another vif or from the physical NIC. So guest-to-guest traffic crosses dom0 twice, and traffic
// to the outside world costs dom0 the bridge, the NIC driver's transmit and its interrupt-driven
// receive and transmit-completion work. This model is that part of dom0: it implements VifNetwork
// (models/dom0/vif_network.h, the seam netback calls) over the Bridge engine (models/net/bridge.h)
// and drives a WireLink (models/net/wire_link.h) as the NIC's line, charging dom0's vCPUs for
// the work where it runs.
//
// What is modelled, following Linux 6.1:
//  * Bridges (net/bridge): one Bridge engine per bridge named in the scenario (default "xenbr0").
//    attach() is vif-bridge's `brctl addif`: a port named "vif<domid>.<devid>" (br_add_if), up at
//    once (STP off); detach() takes it down (br_stp_disable_port: its fdb entries flushed). A vif
//    re-attached under the same name gets its old port back, up. The physical NIC ("eth0") is a port
//    of the first bridge only (the uplink); other bridges are host-only.
//  * transmit() (netif_receive_skb on the vif -> br_handle_frame) runs the bridge decision on the
//    calling vCPU and charges it `bridge_forward` cycles per frame. Then, per egress port:
//      - another vif: the frame's data is in the sending guest's granted pages (netback's zero-copy
//        TX), which may not be handed to another guest's receive queue, so it is copied first
//        (skb_orphan_frags_rx -> skb_copy_ubufs, charged at `copy_bytes_per_cycle`) and given to
//        that vif (VifPort::deliver, xenvif_start_xmit). A refused delivery is counted.
//      - the uplink: the NIC's ndo_start_xmit queues the frame for the line (WireLink::send
//        to_peer); the guest's pages stay in use until the NIC has sent the frame, so `release` is
//        called when dom0 processes the NIC's TX completion for it (the driver's clean_tx_irq
//        freeing the skb runs the zero-copy callback). A frame the line refuses (qdisc queue full,
//        txqueuelen; the Wire engine counts it) is freed, and released, at once.
//      - a flood goes out of every egress port: vifs get copies, the uplink the frame; `release`
//        follows the uplink's completion, or comes at once when no uplink is among the egress.
//      - a drop (bridge drop reasons, unknown handle, port down) releases at once.
//    `release` is called exactly once per transmit().
//  * The NIC (a 10GbE adapter such as ixgbe or i40e). Its receive ring holds `rx_ring` frames
//    (IXGBE_DEFAULT_RXD and I40E_DEFAULT_NUM_DESCRIPTORS are 512); a frame the wire brings while it
//    is full is dropped (rx_missed_errors). One interrupt line serves receive and transmit
//    completion (ixgbe/i40e's combined "TxRx" queue vectors), raised as a dom0 PIRQ through the
//    Hypervisor (raise_irq, as the disks do) and bound by start() with EVTCHNOP_bind_pirq. Until
//    start() (dom0's driver probe at boot) the link is down: the wire's frames are not received
//    and frames for the uplink are refused, as an interface that is not up.
//  * Transmit descriptors not yet cleaned are bounded: with `tx_ring` (512) descriptors in use by
//    frames sent or being sent, and the line's own queue (txqueuelen) full, a further frame is
//    refused (the driver has stopped its queue, netif_stop_queue, and the qdisc is full), counted
//    `tx_ring_full` and released at once.
//  * Interrupt moderation: the first event (a received frame, or a transmitted frame's completion)
//    while the interrupt is enabled and not already pending schedules it `interrupt_delay` after
//    the event (ethtool rx-usecs; default 50 us, i40e's I40E_ITR_20K = I40E_ITR_RX_DEF without
//    the dynamic part). Further events wait for that interrupt.
//  * NAPI (napi_schedule from the interrupt, the driver's poll): the handler, in interrupt context
//    on dom0's vCPU 0, cleans every transmit completion due by now (releases) and takes up to
//    `napi_budget` received frames (NAPI_POLL_WEIGHT, 64), each through the uplink bridge's
//    decision (`bridge_forward` cycles; to vifs by VifPort::deliver, copying only for the second
//    and later ports of a flood, as the bridge clones). If the budget ran out, the next poll runs
//    as deferred work on vCPU 0 (net_rx_action leaving work to ksoftirqd); otherwise
//    napi_complete re-enables the interrupt, and events that came meanwhile schedule it again
//    `interrupt_delay` after max(the earliest of them, now).
//
// Where it deliberately differs:
//  * No dom0 IP stack: frames for dom0 itself (the bridge's local delivery) do not exist here.
//  * No adaptive interrupt moderation (ixgbe/i40e default to dynamic ITR), no per-queue vectors or
//    RSS: one queue, one interrupt line, NAPI on vCPU 0.
//  * The NIC's DMA and descriptor handling cost no dom0 cycles beyond `bridge_forward`; the
//    qdisc is the Wire engine's txqueuelen (no BQL, no pfifo_fast bands).
//  * A frame a vif hands to the NIC for transmission is never segmented in dom0: the Wire engine
//    accounts a GSO frame as the segments a TSO-capable NIC would send.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/dom0/backend_kernel.h"
#include "models/dom0/vif_network.h"
#include "models/net/bridge.h"
#include "models/net/wire_link.h"
#include "sim/core/stats.h"

namespace xensim {

struct Dom0NetworkParams {
    std::vector<std::string> bridges = {"xenbr0"};  // the first holds the physical NIC (uplink)
    BridgeParams bridge;
    unsigned pirq = 0;                              // the NIC's interrupt (granted to dom0)
    std::uint64_t interrupt_delay_ps = 50'000'000;  // 50 us: i40e I40E_ITR_20K (rx-usecs 50)
    std::uint32_t rx_ring = 512;                    // IXGBE_DEFAULT_RXD / I40E_DEFAULT_NUM_DESCRIPTORS
    std::uint32_t napi_budget = 64;                 // NAPI_POLL_WEIGHT
    std::uint32_t tx_ring = 512;                    // IXGBE_DEFAULT_TXD / I40E_DEFAULT_NUM_DESCRIPTORS
};

class Dom0Network : public VifNetwork {
  public:
    // Counters go in `parent`: one child per bridge (its name) and "eth0" for the NIC.
    // The NIC's line is `wire`: this sets its to_host sink.
    Dom0Network(const Dom0NetworkParams& params, WireLink& wire, StatsGroup& parent);
    ~Dom0Network() override;
    Dom0Network(const Dom0Network&) = delete;
    Dom0Network& operator=(const Dom0Network&) = delete;

    // The NIC's interrupt line: asks for the PIRQ to be raised at a simulated time (the platform
    // wires it to Hypervisor::raise_pirq_at).
    std::function<void(std::uint64_t at_ps)> raise_irq;

    // dom0's NIC driver probe (thread context on vCPU 0): EVTCHNOP_bind_pirq of the NIC's PIRQ,
    // the handler, unmask. False when the bind failed (the NIC then never interrupts).
    bool start(BackendKernel& kernel, BackendServices& s);

    // VifNetwork.
    int attach(const std::string& bridge, const std::string& name, VifPort& port) override;
    void detach(int handle) override;
    void transmit(BackendServices& s, int handle, EthernetFrame&& frame,
                  std::function<void(BackendServices&)> release) override;

    // The NIC's interrupt handler (the PIRQ's port handler; interrupt context on vCPU 0).
    void nic_interrupt(BackendServices& s);

    // Observation points (behaviour does not depend on them): a frame the NIC put on the line, with
    // the Wire engine's timing; the NIC's interrupt line asked for at at_ps.
    struct TraceHooks {
        std::function<void(const WireTransmit&)> uplink_tx;
        std::function<void(std::uint64_t at_ps)> irq_requested;
    };
    TraceHooks trace;
    // The NIC driver is loaded and its interrupt bound (start() succeeded). Before that the link
    // is down: frames from the wire are dropped (`rx_link_down`), frames for it refused.
    bool up() const { return up_; }

    // Observation.
    const Bridge* bridge(const std::string& name) const;
    std::size_t rx_ring_used() const { return rx_ring_.size(); }
    std::size_t tx_in_flight() const { return tx_pending_.size(); }

  private:
    struct BridgeInstance {
        BridgeInstance(const std::string& name, const BridgeParams& p, StatsGroup& parent)
            : group(name, &parent), engine(p, group) {}
        StatsGroup group;
        Bridge engine;
        std::vector<VifPort*> ports;  // by BridgePort; nullptr: the uplink (or a detached vif)
        std::optional<BridgePort> uplink;
    };
    struct Attachment {
        std::size_t bridge;
        BridgePort port;
        VifPort* vif;
        bool up;
    };
    struct TxPending {
        std::uint64_t done_ps;  // the frame's last bit left the NIC
        std::function<void(BackendServices&)> release;
    };
    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter rx_frames, rx_bytes, rx_missed, rx_link_down, tx_frames, tx_bytes, tx_refused, tx_ring_full,
            tx_completions, interrupts, polls, polls_exhausted, vif_deliveries, vif_refused, vif_copies,
            vif_copied_bytes, bad_handle;
    };

    std::uint64_t now_ps(BackendServices& s);
    // Hands a frame the bridge decided about to its egress ports. `release` (null for a frame from
    // the NIC) is moved into the TX completion queue when the uplink takes the frame, else left.
    void forward(BackendServices& s, BridgeInstance& br, const BridgeDecision& d, EthernetFrame&& frame,
                 std::function<void(BackendServices&)>* release);
    bool uplink_send(EthernetFrame&& frame, std::function<void(BackendServices&)>* release);
    void wire_rx(EthernetFrame&& frame);  // the wire's to_host sink
    void event_at(std::uint64_t at_ps);   // an interrupt cause at at_ps
    void poll(BackendServices& s);

    Dom0NetworkParams params_;
    WireLink& wire_;
    StatsGroup nic_group_;
    Stats stats_;
    std::vector<std::unique_ptr<BridgeInstance>> bridges_;
    std::vector<Attachment> attachments_;  // by handle
    std::deque<EthernetFrame> rx_ring_;
    std::deque<std::uint64_t> rx_arrival_ps_;
    std::deque<TxPending> tx_pending_;  // in completion order (the line sends in order)
    BackendKernel* kernel_ = nullptr;
    bool up_ = false;
    enum class IrqState { enabled, pending, polling } irq_ = IrqState::enabled;
    std::uint64_t last_now_ps_ = 0;
};

}  // namespace xensim
