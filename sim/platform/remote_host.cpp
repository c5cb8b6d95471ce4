#include "sim/platform/remote_host.h"

#include "sim/core/sim_time.h"

#include <algorithm>

namespace xensim {

RemoteHost::RemoteHost(sc_core::sc_module_name name, const RemoteHostParams& params, WireLink& wire,
                       StatsGroup& parent)
    : sc_core::sc_module(name),
      p_(params),
      wire_(wire),
      group_(basename(), &parent),
      rx_frames(group_, "rx_frames", "frames", "frames that arrived from the wire"),
      rx_bytes(group_, "rx_bytes", "bytes", "bytes of the frames that arrived"),
      rx_not_for_us(group_, "rx_not_for_us", "frames", "unicast frames for another MAC (not taken)"),
      tx_frames(group_, "tx_frames", "frames", "frames sent into the wire"),
      tx_bytes(group_, "tx_bytes", "bytes", "bytes of the frames sent"),
      tx_refused(group_, "tx_refused", "frames", "frames the wire refused (malformed, oversize)"),
      rx_unclaimed(group_, "rx_unclaimed", "frames",
                   "frames for this host no endpoint took, by parse_packet status") {
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.dont_initialize();
    o.set_sensitivity(&wake_ev_);
    sc_core::sc_spawn([this] { pump(); }, "pump", &o);
    wire_.set_sink(WireDirection::to_peer, [this](EthernetFrame&& f) { receive(std::move(f)); });
}

StatsGroup& RemoteHost::endpoint_group(const std::string& name) {
    endpoint_groups_.push_back(std::make_unique<StatsGroup>(name, &group_));
    return *endpoint_groups_.back();
}

void RemoteHost::add_endpoint(std::unique_ptr<NetperfEndpoint> endpoint) {
    owned_.push_back(std::move(endpoint));
    add_endpoint(*owned_.back());
}

void RemoteHost::add_endpoint(NetperfEndpoint& endpoint) {
    endpoints_.push_back(&endpoint);
    sim_time::notify(wake_ev_, sc_core::SC_ZERO_TIME);
}

PacketAddress RemoteHost::address_to(const MacAddress& mac, Ipv4Address ip, std::uint16_t src_port,
                                     std::uint16_t dst_port) const {
    return {p_.mac, mac, p_.ip, ip, src_port, dst_port};
}

void RemoteHost::receive(EthernetFrame&& frame) {
    rx_frames.inc();
    rx_bytes.inc(frame.size());
    if (!frame.has_header()) {
        rx_unclaimed.inc(to_string(PacketStatus::truncated));
        return;
    }
    MacAddress dst;
    std::copy(frame.bytes.begin(), frame.bytes.begin() + 6, dst.begin());
    const bool group_addr = dst[0] & 1;  // broadcast or multicast
    if (dst != p_.mac && !group_addr) {
        rx_not_for_us.inc();
        return;
    }
    const ParsedPacket parsed = parse_packet(frame);
    const std::uint64_t now_ns = now_ps() / 1000;
    bool taken = false;
    for (NetperfEndpoint* e : endpoints_)
        if (e->receive(now_ns, frame, parsed)) {
            taken = true;
            break;
        }
    if (!taken) rx_unclaimed.inc(to_string(parsed.status));
    pump();  // an answer may be due now
}

void RemoteHost::pump() {
    const std::uint64_t now = now_ps();
    if (now < line_free_ps_) {
        sim_time::notify(wake_ev_, sc_core::sc_time::from_value(line_free_ps_ - now));
        return;
    }
    const std::uint64_t now_ns = now / 1000;
    std::uint64_t next_due_ns = kNoTxTime;
    const std::size_t n = endpoints_.size();
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (next_rr_ + k) % n;
        NetperfEndpoint* e = endpoints_[i];
        const std::uint64_t due = e->next_tx_ns();
        if (due == kNoTxTime) continue;
        if (due > now_ns) {
            next_due_ns = std::min(next_due_ns, due);
            continue;
        }
        EthernetFrame* f = e->tx_frame(now_ns);
        if (!f) continue;
        const std::size_t len = f->size();
        const WireTransmit t = wire_.send(WireDirection::to_host, *f);
        e->tx_taken(now_ns);
        next_rr_ = (i + 1) % n;
        if (!t.ok()) {
            // The wire refused a malformed frame: it is gone, as a NIC drops it. The next try comes
            // 1 ns later, so an endpoint producing only such frames cannot stall simulated time.
            tx_refused.inc();
            sim_time::notify(wake_ev_, sc_core::sc_time::from_value(1000));
            return;
        }
        tx_frames.inc();
        tx_bytes.inc(len);
        line_free_ps_ = t.end_ps;
        sim_time::notify(wake_ev_, sc_core::sc_time::from_value(line_free_ps_ - now));
        return;
    }
    if (next_due_ns != kNoTxTime)
        sim_time::notify(wake_ev_, sc_core::sc_time::from_value(next_due_ns * 1000 - now));
}

}  // namespace xensim
