// The common shape of the netperf-style traffic engines (issue 12): UDP_STREAM, TCP_STREAM,
// UDP_RR, TCP_RR and ping, each a pair of endpoints that exchange EthernetFrames.
//
// The problem. A network study needs traffic whose every frame is real (net_packet.h), whose
// every payload is verified (net_payload.h), and whose pace is set by the path it runs over: the
// same engine runs in a guest over a NetDevice (frontends/net_device.h: netfront, E1000 ...) and in
// the remote peer on the far side of the wire model (a "netserver" that sinks, echoes or
// generates). So an engine knows nothing of drivers, SystemC or time sources: it is a state
// machine that is given the time in ns and received frames, and hands out frames to send.
//
// How the glue drives an endpoint (guest workload or wire-side peer):
//     // when the device can take frames, at a timer for next_tx_ns(), and after receive():
//     while (EthernetFrame* f = ep.tx_frame(now)) {
//         if (!dev.transmit(s, q, std::move(*f))) break;  // refused: the frame was not taken
//         ep.tx_taken(now);
//     }
//     dev.kick(s, q);
//     // on NetDevice::on_receive (or the wire delivering to the peer):
//     ParsedPacket p = parse_packet(frame);
//     for (auto* ep : endpoints) if (ep->receive(now, frame, p)) break;  // none: count "no flow"
// tx_frame() builds the frame once and returns the same frame, unchanged, on every call until
// tx_taken() (so a refused frame is retried as is when on_tx_wake fires; NetDevice::transmit does
// not move from a frame it refuses). Endpoint state (sequence numbers, windows, timers) advances
// only in tx_taken(), so a refused frame changes nothing. Times an engine reports (send
// timestamps, latency starts) are those of the tx_frame() call that built the frame: the
// application's send, as netperf times around its send() call, blocking included.
// next_tx_ns() is when tx_frame() may next return a frame (kNoTxTime: not before something is
// received); the glue arms a timer for it.
//
// Drops are counted where they happen: an engine counts what it sees (a gap in sequence numbers
// at the receiver, a bad checksum, a corrupt or misdelivered payload); a frame a device, bridge or
// wire drops is counted by that model, and the engine sees only its absence. parse_packet()
// failures that name no flow (truncated, not IPv4) are the glue's to count.
//
// Passive endpoints (sinks and responders) are finished() whenever they have nothing pending to
// send; a run ends when its active endpoints (senders, RR clients, ping) are finished.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "frontends/net_packet.h"
#include "sim/core/ethernet.h"
#include "sim/core/stats.h"

namespace xensim {

inline constexpr std::uint64_t kNoTxTime = std::numeric_limits<std::uint64_t>::max();

// What the engine may ask of the device it sends through (the glue fills it from
// NetDeviceFeatures after negotiation, or from the wire-side peer's configuration).
struct FlowOffloads {
    bool tx_csum = false;    // NETIF_F_IP_CSUM: leave L4 checksums blank
    bool gso_tcpv4 = false;  // NETIF_F_TSO: TCP super-packets; used only with tx_csum, as Linux's
                             // netdev_fix_features drops TSO without checksum offload
    unsigned mtu = 1500;
    // Largest IP datagram of a TCP super-packet (Linux gso_max_size; xen-netfront lowers it to
    // XEN_NETIF_MAX_TX_SIZE - MAX_TCP_HEADER, the glue passes what the driver allows).
    unsigned gso_max_size = 65535;
    L4Checksum l4_checksum() const { return tx_csum ? L4Checksum::blank : L4Checksum::full; }
    bool tso() const { return gso_tcpv4 && tx_csum; }
};

class NetperfEndpoint {
  public:
    NetperfEndpoint(StatsGroup& parent, const std::string& name) : group_(name, &parent) {}
    virtual ~NetperfEndpoint() = default;
    NetperfEndpoint(const NetperfEndpoint&) = delete;
    NetperfEndpoint& operator=(const NetperfEndpoint&) = delete;

    // The frame to send at now_ns, or nullptr; the same frame until tx_taken().
    virtual EthernetFrame* tx_frame(std::uint64_t now_ns) = 0;
    // The device took the frame last returned by tx_frame().
    virtual void tx_taken(std::uint64_t now_ns) = 0;
    // Earliest time tx_frame() may return a frame; kNoTxTime: only after a receive().
    virtual std::uint64_t next_tx_ns() const = 0;
    // A received frame and its parse; false when the frame is not this endpoint's (not counted).
    virtual bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) = 0;
    virtual bool finished() const = 0;

    StatsGroup& stats() { return group_; }
    const StatsGroup& stats() const { return group_; }

  protected:
    StatsGroup group_;
};

// True when p (of the given protocol) travels from addr's destination to addr's source: a frame
// for the endpoint whose own view of the flow is addr. Ports are compared for UDP and TCP only.
bool flow_matches(const ParsedPacket& p, const PacketAddress& addr, std::uint8_t protocol);

// Loss / reorder / duplicate accounting from sequence numbers, as iperf's UDP server does: a jump
// forward counts the skipped numbers as lost; a number that arrives late is out of order and
// un-counts one loss; a number seen again within the last kWindow numbers is a duplicate. Older
// than the window, a late number cannot be told from a duplicate and counts as out of order.
// Host memory is the fixed window, whatever the peer sends.
class SequenceTracker {
  public:
    static constexpr std::uint64_t kWindow = 1024;
    enum class Verdict { in_order, gap, late, duplicate };
    Verdict observe(std::uint64_t seq);
    std::uint64_t lost() const { return lost_; }  // net: gaps minus late arrivals
    std::uint64_t out_of_order() const { return late_; }
    std::uint64_t duplicates() const { return dup_; }
    std::uint64_t expected() const { return started_ ? highest_ + 1 : 0; }

  private:
    bool started_ = false;
    std::uint64_t highest_ = 0, lost_ = 0, late_ = 0, dup_ = 0;
    std::vector<bool> seen_ = std::vector<bool>(kWindow, false);  // seq % kWindow, within the window
};

}  // namespace xensim
