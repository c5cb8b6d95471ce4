#include "models/dom0/dom0_network.h"

#include <algorithm>
#include <stdexcept>

#include "sim/core/sim_time.h"

namespace xensim {

namespace {
constexpr const char* kUplinkName = "eth0";
}

Dom0Network::Stats::Stats(StatsGroup& g)
    : rx_frames(g, "rx_frames", "frames", "frames the NIC received from the wire into its ring"),
      rx_bytes(g, "rx_bytes", "bytes", "bytes of the frames received"),
      rx_missed(g, "rx_missed", "frames",
                "frames dropped because the receive ring was full (rx_missed_errors)"),
      rx_link_down(g, "rx_link_down", "frames", "frames from the wire before dom0's NIC driver was up"),
      tx_frames(g, "tx_frames", "frames", "frames the NIC queued for the line"),
      tx_bytes(g, "tx_bytes", "bytes", "bytes of the frames queued for the line"),
      tx_refused(g, "tx_refused", "frames",
                 "frames the line refused (queue full, malformed; the wire says why)"),
      tx_ring_full(g, "tx_ring_full", "frames",
                   "frames refused because every TX descriptor and the line's queue were in use"),
      tx_completions(g, "tx_completions", "frames", "transmit completions cleaned in the NAPI poll"),
      interrupts(g, "interrupts", "interrupts", "NIC interrupts handled by dom0"),
      polls(g, "polls", "polls", "NAPI polls run"),
      polls_exhausted(g, "polls_exhausted", "polls", "polls that used their whole budget (more to do)"),
      vif_deliveries(g, "vif_deliveries", "frames", "frames handed to a vif (VifPort::deliver)"),
      vif_refused(g, "vif_refused", "frames", "frames a vif refused (netback dropped them)"),
      vif_copies(g, "vif_copies", "frames", "guest frames copied for another vif (skb_copy_ubufs)"),
      vif_copied_bytes(g, "vif_copied_bytes", "bytes", "bytes copied for vif-to-vif forwarding"),
      bad_handle(g, "bad_handle", "frames", "frames transmitted on a handle that is unknown or detached") {}

Dom0Network::Dom0Network(const Dom0NetworkParams& params, WireLink& wire, StatsGroup& parent)
    : params_(params), wire_(wire), nic_group_(kUplinkName, &parent), stats_(nic_group_) {
    if (params_.bridges.empty()) throw std::invalid_argument("dom0 network: no bridge");
    if (params_.napi_budget == 0 || params_.rx_ring == 0)
        throw std::invalid_argument("dom0 network: napi_budget and rx_ring must be positive");
    for (const std::string& name : params_.bridges)
        bridges_.push_back(std::make_unique<BridgeInstance>(name, params_.bridge, parent));
    BridgeInstance& up = *bridges_.front();
    up.uplink = up.engine.add_port(kUplinkName);
    up.ports.push_back(nullptr);
    wire_.set_sink(WireDirection::to_host, [this](EthernetFrame&& f) { wire_rx(std::move(f)); });
}

Dom0Network::~Dom0Network() = default;

bool Dom0Network::start(BackendKernel& kernel, BackendServices& s) {
    kernel_ = &kernel;
    evtchn_bind_pirq_t bp{};
    bp.pirq = params_.pirq;
    if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_pirq, reinterpret_cast<unsigned long>(&bp),
                    0, 0, 0))
        return false;
    kernel.set_port_handler(bp.port, [this](BackendServices& vs) { nic_interrupt(vs); });
    kernel.unmask(s, bp.port);
    up_ = true;
    return true;
}

std::uint64_t Dom0Network::now_ps(BackendServices&) {
    sim_time::sync();
    last_now_ps_ = std::max(last_now_ps_, static_cast<std::uint64_t>(sc_core::sc_time_stamp().value()));
    return last_now_ps_;
}

const Bridge* Dom0Network::bridge(const std::string& name) const {
    for (const auto& b : bridges_)
        if (b->group.name() == name) return &b->engine;
    return nullptr;
}

int Dom0Network::attach(const std::string& bridge, const std::string& name, VifPort& port) {
    std::size_t bi = bridges_.size();
    for (std::size_t i = 0; i < bridges_.size(); ++i)
        if (bridges_[i]->group.name() == bridge) bi = i;
    if (bi == bridges_.size() || name.empty()) return -1;
    BridgeInstance& br = *bridges_[bi];
    // Interface names are unique in dom0: a vif attached under this name anywhere is refused
    // (br_add_if: EBUSY for a port already enslaved).
    for (const Attachment& a : attachments_)
        if (a.up && bridges_[a.bridge]->engine.port_name(a.port) == name) return -1;
    // A vif coming back under its old name gets its old port (brctl addif after delif).
    for (std::size_t h = 0; h < attachments_.size(); ++h) {
        Attachment& a = attachments_[h];
        if (a.bridge != bi || br.engine.port_name(a.port) != name) continue;
        a.vif = &port;
        a.up = true;
        br.ports[a.port] = &port;
        br.engine.set_port_up(a.port, true, last_now_ps_);
        return static_cast<int>(h);
    }
    BridgePort p;
    try {
        p = br.engine.add_port(name);
    } catch (const std::invalid_argument&) {
        return -1;  // the name of another port (the uplink, or a vif on another bridge's name clash)
    }
    br.ports.resize(p + 1, nullptr);
    br.ports[p] = &port;
    attachments_.push_back({bi, p, &port, true});
    return static_cast<int>(attachments_.size() - 1);
}

void Dom0Network::detach(int handle) {
    if (handle < 0 || static_cast<std::size_t>(handle) >= attachments_.size()) return;
    Attachment& a = attachments_[static_cast<std::size_t>(handle)];
    if (!a.up) return;
    BridgeInstance& br = *bridges_[a.bridge];
    br.engine.set_port_up(a.port, false, last_now_ps_);
    br.ports[a.port] = nullptr;
    a.up = false;
    a.vif = nullptr;
}

void Dom0Network::transmit(BackendServices& s, int handle, EthernetFrame&& frame,
                           std::function<void(BackendServices&)> release) {
    s.compute(s.costs().bridge_forward);
    if (handle < 0 || static_cast<std::size_t>(handle) >= attachments_.size() ||
        !attachments_[static_cast<std::size_t>(handle)].up) {
        stats_.bad_handle.inc();
        if (release) release(s);
        return;
    }
    const Attachment& a = attachments_[static_cast<std::size_t>(handle)];
    BridgeInstance& br = *bridges_[a.bridge];
    const BridgeDecision d = br.engine.handle_frame(a.port, frame, now_ps(s));
    forward(s, br, d, std::move(frame), &release);
    if (release) release(s);  // not handed to the NIC: the data is no longer needed
}

void Dom0Network::forward(BackendServices& s, BridgeInstance& br, const BridgeDecision& d,
                          EthernetFrame&& frame, std::function<void(BackendServices&)>* release) {
    std::vector<VifPort*> vifs;
    bool to_uplink = false;
    for (BridgePort p : d.egress) {
        if (br.uplink && p == *br.uplink)
            to_uplink = true;
        else if (p < br.ports.size() && br.ports[p])
            vifs.push_back(br.ports[p]);
    }
    auto deliver = [&](VifPort* v, EthernetFrame&& f) {
        stats_.vif_deliveries.inc();
        if (!v->deliver(s, std::move(f))) stats_.vif_refused.inc();
    };
    if (release) {
        // A guest's frame: its data is in the guest's granted pages; every vif gets a copy.
        for (VifPort* v : vifs) {
            s.compute(s.costs().copy_cost(frame.size()));
            stats_.vif_copies.inc();
            stats_.vif_copied_bytes.inc(frame.size());
            deliver(v, EthernetFrame(frame));
        }
        if (to_uplink) uplink_send(std::move(frame), release);
        return;
    }
    // A frame from the NIC, in dom0's memory: clones for all but the last port.
    for (std::size_t i = 0; i < vifs.size(); ++i)
        deliver(vifs[i], i + 1 == vifs.size() ? std::move(frame) : EthernetFrame(frame));
}

bool Dom0Network::uplink_send(EthernetFrame&& frame, std::function<void(BackendServices&)>* release) {
    const std::size_t len = frame.size();
    if (!up_) {
        stats_.tx_refused.inc();
        return false;
    }
    if (tx_pending_.size() >= std::size_t{params_.tx_ring} + wire_.wire().params().txqueuelen) {
        stats_.tx_ring_full.inc();
        stats_.tx_refused.inc();
        return false;
    }
    const WireTransmit t = wire_.send(WireDirection::to_peer, std::move(frame));
    if (trace.uplink_tx && t.ok()) trace.uplink_tx(t);
    if (!t.ok()) {
        stats_.tx_refused.inc();
        return false;
    }
    stats_.tx_frames.inc();
    stats_.tx_bytes.inc(len);
    TxPending p{t.end_ps, nullptr};
    if (release) {
        p.release = std::move(*release);
        *release = nullptr;
    }
    tx_pending_.push_back(std::move(p));
    event_at(t.end_ps);
    return true;
}

void Dom0Network::wire_rx(EthernetFrame&& frame) {
    sim_time::sync();
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    if (!up_) {
        stats_.rx_link_down.inc();
        return;
    }
    if (rx_ring_.size() >= params_.rx_ring) {
        stats_.rx_missed.inc();
        return;
    }
    stats_.rx_frames.inc();
    stats_.rx_bytes.inc(frame.size());
    rx_ring_.push_back(std::move(frame));
    rx_arrival_ps_.push_back(now);
    event_at(now);
}

void Dom0Network::event_at(std::uint64_t at_ps) {
    if (irq_ != IrqState::enabled) return;  // pending already, or NAPI polling: the poll sees it
    irq_ = IrqState::pending;
    if (trace.irq_requested) trace.irq_requested(at_ps + params_.interrupt_delay_ps);
    if (raise_irq) raise_irq(at_ps + params_.interrupt_delay_ps);
}

void Dom0Network::nic_interrupt(BackendServices& s) {
    stats_.interrupts.inc();
    if (irq_ == IrqState::polling) return;  // a poll is scheduled already
    irq_ = IrqState::polling;
    poll(s);
}

void Dom0Network::poll(BackendServices& s) {
    stats_.polls.inc();
    // Transmit completions first (the drivers clean the TX ring before RX in their poll).
    while (!tx_pending_.empty() && tx_pending_.front().done_ps <= now_ps(s)) {
        TxPending p = std::move(tx_pending_.front());
        tx_pending_.pop_front();
        stats_.tx_completions.inc();
        if (p.release) p.release(s);
    }
    BridgeInstance& up = *bridges_.front();
    for (std::uint32_t n = 0; n < params_.napi_budget && !rx_ring_.empty(); ++n) {
        EthernetFrame f = std::move(rx_ring_.front());
        rx_ring_.pop_front();
        rx_arrival_ps_.pop_front();
        s.compute(s.costs().bridge_forward);
        const BridgeDecision d = up.engine.handle_frame(*up.uplink, f, now_ps(s));
        forward(s, up, d, std::move(f), nullptr);
    }
    if (!rx_ring_.empty()) {
        // Budget used up: net_rx_action leaves the rest for the next round (ksoftirqd).
        stats_.polls_exhausted.inc();
        if (kernel_) {
            kernel_->defer([this](BackendServices& vs) { poll(vs); });
            return;
        }
    }
    // napi_complete_done: the interrupt is enabled again; what came meanwhile schedules it.
    irq_ = IrqState::enabled;
    std::optional<std::uint64_t> earliest;
    if (!rx_arrival_ps_.empty()) earliest = rx_arrival_ps_.front();
    if (!tx_pending_.empty())
        earliest = earliest ? std::min(*earliest, tx_pending_.front().done_ps) : tx_pending_.front().done_ps;
    if (earliest) event_at(std::max(*earliest, now_ps(s)));
}

}  // namespace xensim
