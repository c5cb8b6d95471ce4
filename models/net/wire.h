// The physical NIC and its full-duplex Ethernet link ("the wire"): when a frame arrives at the
// other end.
//
// The problem. Traffic between a guest and the world leaves dom0 through a physical NIC. What
// bounds it there is the line: a 10 Gbit/s link carries one frame after another, each taking its
// serialization time, and a sender faster than the line fills the transmit queue until frames are
// dropped. A netperf-style workload measures exactly this (throughput at the line rate, latency
// that grows with queueing), so the times must be exact and must not drift over millions of
// frames. This engine is plain C++ without SystemC; models/net/wire_link.h puts it on the
// simulation's clock. It is its own model, not part of dom0 (as gem5's EtherLink is apart from
// its NICs): dom0's bridge hands it frames, the remote peer sits at the other end.
//
// What is modelled:
//  * Two independent directions (full duplex, IEEE 802.3 clause 4 with no CSMA/CD): `to_peer`
//    (dom0's NIC transmits towards the remote peer) and `to_host` (the peer transmits towards
//    dom0's NIC). Each has its own transmit queue, line and counters.
//  * Serialization. On the wire a frame takes its bytes (no FCS in EthernetFrame), padded to the
//    60-byte minimum, plus the 4-byte FCS, the 8-byte preamble + SFD and the 12-byte inter-frame
//    gap (kEthWireOverhead = 24): (max(len, 60) + 24) * 8 bits at `line_rate_bps`. A 64-byte
//    frame on the wire (60 + FCS) takes 672 bits, 67.2 ns at 10 Gbit/s; a 1514-byte frame 12304
//    bits, 1230.4 ns. Both are whole picoseconds at 10G, but not at every rate (a 64-byte frame at
//    3 Gbit/s is 224 ns exactly, at 7 Gbit/s 96 ns = 96000 ps exactly, but 1538 bytes at 7 Gbit/s
//    is 1757714.28... ps). So the line keeps its time exactly, as an integer picosecond plus a
//    remainder in units of 1/line_rate_bps ps: each frame adds bits * 10^12 / rate (quotient to
//    the picoseconds, remainder carried), so n back-to-back frames end at exactly
//    n * bits * 10^12 / rate, rounded up once. Reported times (start, end, arrival) are rounded
//    up to the next picosecond: a frame has wholly arrived only once its last bit has.
//  * Queueing. A frame starts when the line is free (at `now` if idle, else right behind the
//    previous frame: back to back, only the IFG between them). Frames accepted but not yet
//    started wait in the transmit queue, at most `txqueuelen` of them (Linux's default
//    tx_queue_len, DEFAULT_TX_QUEUE_LEN = 1000, which pfifo_fast uses as its limit); a frame
//    arriving at a full queue is dropped and counted (qdisc_drop), the frame on the wire not
//    counting against the limit.
//  * Propagation delay after the last bit leaves: `propagation_ps`, default 500 ns, about 100 m
//    of cable (the 10GBASE-T reach) at 5 ns/m (signal velocity about 0.66 c). Set 0 for a
//    back-to-back lab cable.
//  * TSO. A GSO super-packet (gso_size != 0) is segmented by the NIC: its headers (Ethernet,
//    optionally one 802.1Q tag, IPv4 with its IHL or IPv6's fixed 40 bytes without extension
//    headers, TCP with its data offset) are repeated on every segment, and there are
//    ceil(payload / gso_size) segments (at least one), each serialized as a frame of its own, back
//    to back. The header parse checks what the NIC needs: ethertype matching gso_type, IP version,
//    IHL >= 5, protocol / next header TCP, data offset >= 5, all within the frame.
//
// Where it deliberately differs:
//  * A GSO super-packet is delivered as one frame, unchanged (gso_size kept), at the time its
//    last segment arrives, as GRO/LRO at the far end would present it; its segments are counted
//    (`segments`, `wire_bytes`) but not delivered one by one. A receiver that wants per-segment
//    timing must derive it (segment k ends k segment-times after start). Exact in time and in
//    bytes on the wire; not in how many frames the far end's driver handles.
//  * The transmit queue is one FIFO of txqueuelen frames, as pfifo_fast (one band used). Debian's
//    systemd sets net.core.default_qdisc = fq_codel, and a multiqueue NIC gets mq with a child
//    qdisc per hardware queue; fq_codel's flow fairness and CoDel drops (sojourn over 5 ms) are not
//    modelled. No NIC descriptor ring limit or BQL either: the qdisc limit is the only queue.
//  * No auto-negotiation, link down, bit errors, PAUSE frames (802.3x) or FEC. No checksum offload work:
//  csum_blank
//    frames go through unchanged (the far end sees them as Linux's veth would).
//  * Malformed frames are dropped and counted, never sent: runts shorter than the 14-byte header
//    (a real NIC pads them; nothing in Linux builds one), frames longer than the MTU allows
//    (14 + mtu, + 4 with an 802.1Q tag), GSO frames whose headers do not parse, whose segments
//    would exceed the MTU or which are larger than 65536 bytes of IP packet (Linux's legacy
//    GSO_MAX_SIZE).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>

#include "sim/core/ethernet.h"
#include "sim/core/stats.h"

namespace xensim {

struct WireParams {
    std::uint64_t line_rate_bps = 10'000'000'000ull;  // 10 Gbit/s; must be > 0
    std::uint32_t txqueuelen = 1000;                  // frames waiting per direction (0: none wait)
    std::uint64_t propagation_ps = 500'000;           // 500 ns
    std::uint32_t mtu = kEthMtu;                      // IP packet bytes per frame (segment); >= 68
};

enum class WireDirection : std::uint8_t { to_peer = 0, to_host = 1 };
const char* wire_direction_name(WireDirection d);  // "to_peer", "to_host"

enum class WireDrop : std::uint8_t { none, runt, oversize, gso_malformed, queue_full };
const char* wire_drop_name(WireDrop d);

inline constexpr std::uint16_t kEtherTypeVlan = 0x8100;  // IEEE 802.1Q tag
inline constexpr std::size_t kVlanTagLen = 4;
inline constexpr std::size_t kGsoMaxSize = 65536;  // Linux's legacy GSO_MAX_SIZE, IP packet bytes

// What a frame becomes on the wire: the frames (TSO segments) and their bytes on the wire
// including padding, FCS, preamble/SFD and IFG. Pure; drop != none for a malformed frame.
struct WireShape {
    WireDrop drop = WireDrop::none;
    std::uint32_t segments = 0;
    std::uint64_t wire_bytes = 0;
    std::uint32_t header_len = 0;  // Ethernet..TCP header bytes of a GSO frame (0 otherwise)
};
WireShape wire_shape(const EthernetFrame& frame, std::uint32_t mtu);

// One transmit: when its first and last bit are on the wire and when the last bit arrives.
struct WireTransmit {
    WireDrop drop = WireDrop::none;
    std::uint64_t start_ps = 0;    // first bit on the wire (rounded up)
    std::uint64_t end_ps = 0;      // last bit on the wire (rounded up)
    std::uint64_t arrival_ps = 0;  // last bit at the far end: end_ps + propagation_ps
    std::uint32_t segments = 0;
    std::uint64_t wire_bytes = 0;
    bool ok() const { return drop == WireDrop::none; }
};

class Wire {
  public:
    // Counters go in two children of `stats`: "to_peer" and "to_host".
    Wire(const WireParams& params, StatsGroup& stats);
    Wire(const Wire&) = delete;
    Wire& operator=(const Wire&) = delete;

    // Queues `frame` for the line at now_ps (calls per direction must not go back in time).
    WireTransmit transmit(WireDirection dir, const EthernetFrame& frame, std::uint64_t now_ps);
    // Frames waiting (accepted, not yet started) in a direction at now_ps.
    std::uint32_t queued(WireDirection dir, std::uint64_t now_ps) const;
    const WireParams& params() const { return params_; }

  private:
    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter frames, bytes, segments, wire_bytes, busy_ps, queue_peak;
        CounterFamily dropped;
    };
    struct Direction {
        Direction(StatsGroup& parent, const char* name) : group(name, &parent), stats(group) {}
        StatsGroup group;
        Stats stats;
        // When the line is free, exactly: free_ps + free_rem / line_rate_bps picoseconds.
        std::uint64_t free_ps = 0, free_rem = 0;
        std::uint64_t busy_rem = 0;         // remainder of stats.busy_ps, same unit as free_rem
        std::deque<std::uint64_t> waiting;  // start_ps of accepted frames not yet started
        std::uint64_t last_now_ps = 0;
    };

    Direction& direction(WireDirection d) { return *dirs_[static_cast<std::size_t>(d)]; }

    WireParams params_;
    std::array<std::unique_ptr<Direction>, 2> dirs_;
};

}  // namespace xensim
