#include "models/net/wire.h"

#include <algorithm>
#include <stdexcept>

namespace xensim {

namespace {
__extension__ using u128 = unsigned __int128;
constexpr std::uint64_t kPsPerSecond = 1'000'000'000'000ull;

// Bytes on the wire of one frame of `len` bytes (no FCS): padded to the minimum, then FCS,
// preamble + SFD and inter-frame gap.
std::uint64_t frame_wire_bytes(std::uint64_t len) {
    return std::max<std::uint64_t>(len, kEthMinFrameLen) + kEthWireOverhead;
}

std::uint16_t be16(const std::vector<std::uint8_t>& b, std::size_t off) {
    return static_cast<std::uint16_t>(b[off] << 8 | b[off + 1]);
}

// Ethernet (+ one 802.1Q tag) + IPv4/IPv6 + TCP header length of a GSO frame, as the NIC parses it
// for TSO; 0 when the headers do not parse or do not match gso_type.
std::size_t gso_header_len(const EthernetFrame& f, std::size_t& l2_len) {
    const auto& b = f.bytes;
    std::size_t off = kEthHeaderLen;
    std::uint16_t et = f.ethertype();
    if (et == kEtherTypeVlan) {
        if (b.size() < kEthHeaderLen + kVlanTagLen) return 0;
        et = be16(b, kEthHeaderLen + 2);
        off += kVlanTagLen;
    }
    l2_len = off;
    std::size_t l4;
    switch (f.gso_type) {
        case GsoType::tcpv4: {
            if (et != kEtherTypeIpv4 || b.size() < off + 20) return 0;
            if ((b[off] >> 4) != 4) return 0;
            std::size_t ihl = (b[off] & 0x0f) * 4u;
            if (ihl < 20 || b.size() < off + ihl || b[off + 9] != kIpProtoTcp) return 0;
            l4 = off + ihl;
            break;
        }
        case GsoType::tcpv6:
            // No extension headers: the next header must be TCP.
            if (et != kEtherTypeIpv6 || b.size() < off + 40) return 0;
            if ((b[off] >> 4) != 6 || b[off + 6] != kIpProtoTcp) return 0;
            l4 = off + 40;
            break;
        default:
            return 0;  // gso_size set on a frame of no GSO type
    }
    if (b.size() < l4 + 20) return 0;
    std::size_t doff = (b[l4 + 12] >> 4) * 4u;
    if (doff < 20 || b.size() < l4 + doff) return 0;
    return l4 + doff;
}
}  // namespace

const char* wire_direction_name(WireDirection d) {
    return d == WireDirection::to_peer ? "to_peer" : "to_host";
}

const char* wire_drop_name(WireDrop d) {
    switch (d) {
        case WireDrop::none:
            return "none";
        case WireDrop::runt:
            return "runt";
        case WireDrop::oversize:
            return "oversize";
        case WireDrop::gso_malformed:
            return "gso_malformed";
        case WireDrop::queue_full:
            return "queue_full";
    }
    return "unknown";
}

WireShape wire_shape(const EthernetFrame& f, std::uint32_t mtu) {
    WireShape s;
    if (!f.has_header()) {
        s.drop = WireDrop::runt;
        return s;
    }
    // Largest frame the MTU allows, with room for an 802.1Q tag when there is one.
    const std::size_t vlan = f.ethertype() == kEtherTypeVlan ? kVlanTagLen : 0;
    const std::size_t max_len = kEthHeaderLen + vlan + mtu;
    if (f.gso_size == 0) {
        if (f.size() > max_len) {
            s.drop = WireDrop::oversize;
            return s;
        }
        s.segments = 1;
        s.wire_bytes = frame_wire_bytes(f.size());
        return s;
    }
    std::size_t l2 = 0;
    const std::size_t hdr = gso_header_len(f, l2);
    if (hdr == 0) {
        s.drop = WireDrop::gso_malformed;
        return s;
    }
    const std::uint64_t payload = f.size() - hdr;
    const std::uint64_t mss = f.gso_size;
    // The IP packet is at most GSO_MAX_SIZE; every segment must fit the MTU.
    if (f.size() - l2 > kGsoMaxSize || hdr + std::min(mss, payload) > max_len) {
        s.drop = WireDrop::oversize;
        return s;
    }
    const std::uint64_t n = payload == 0 ? 1 : (payload + mss - 1) / mss;
    const std::uint64_t last = payload - (n - 1) * mss;
    s.segments = static_cast<std::uint32_t>(n);
    s.wire_bytes = (n - 1) * frame_wire_bytes(hdr + mss) + frame_wire_bytes(hdr + last);
    s.header_len = static_cast<std::uint32_t>(hdr);
    return s;
}

Wire::Stats::Stats(StatsGroup& g)
    : frames(g, "frames", "frames", "frames (GSO super-packets counted once) put on the line"),
      bytes(g, "bytes", "bytes", "bytes of those frames as handed to the NIC (no FCS)"),
      segments(g, "segments", "frames", "frames on the wire: TSO segments, 1 per plain frame"),
      wire_bytes(g, "wire_bytes", "bytes", "bytes on the wire: padding, FCS, preamble+SFD and IFG included"),
      busy_ps(g, "busy_ps", "ps", "time the line spent serializing (utilisation = busy_ps / elapsed)"),
      queue_peak(g, "queue_peak", "frames", "most frames waiting in the transmit queue at once"),
      dropped(g, "dropped", "frames", "frames not sent, by reason") {}

Wire::Wire(const WireParams& params, StatsGroup& stats) : params_(params) {
    if (params_.line_rate_bps == 0) throw std::invalid_argument("wire: line_rate_bps must be > 0");
    if (params_.mtu < 68) throw std::invalid_argument("wire: mtu must be at least 68 (IPv4's minimum)");
    dirs_[0] = std::make_unique<Direction>(stats, "to_peer");
    dirs_[1] = std::make_unique<Direction>(stats, "to_host");
}

std::uint32_t Wire::queued(WireDirection dir, std::uint64_t now_ps) const {
    const Direction& d = *dirs_[static_cast<std::size_t>(dir)];
    // `waiting` is in start order: count those not yet started.
    auto first = std::upper_bound(d.waiting.begin(), d.waiting.end(), now_ps);
    return static_cast<std::uint32_t>(d.waiting.end() - first);
}

WireTransmit Wire::transmit(WireDirection dir, const EthernetFrame& frame, std::uint64_t now_ps) {
    Direction& d = direction(dir);
    if (now_ps < d.last_now_ps) throw std::logic_error("wire: time went backwards");
    d.last_now_ps = now_ps;
    while (!d.waiting.empty() && d.waiting.front() <= now_ps) d.waiting.pop_front();

    WireTransmit t;
    const WireShape shape = wire_shape(frame, params_.mtu);
    if (shape.drop != WireDrop::none) {
        t.drop = shape.drop;
        d.stats.dropped.inc(wire_drop_name(shape.drop));
        return t;
    }
    const bool idle = d.free_ps < now_ps || (d.free_ps == now_ps && d.free_rem == 0);
    if (!idle && d.waiting.size() >= params_.txqueuelen) {
        t.drop = WireDrop::queue_full;
        d.stats.dropped.inc(wire_drop_name(t.drop));
        return t;
    }
    const std::uint64_t rate = params_.line_rate_bps;
    std::uint64_t start_ps = idle ? now_ps : d.free_ps;
    std::uint64_t start_rem = idle ? 0 : d.free_rem;
    // Serialization time bits * 10^12 / rate ps: the quotient in ps, the remainder carried.
    const u128 scaled = static_cast<u128>(shape.wire_bytes) * 8u * kPsPerSecond;
    const auto q = static_cast<std::uint64_t>(scaled / rate);
    const auto r = static_cast<std::uint64_t>(scaled % rate);
    std::uint64_t end_ps = start_ps + q, end_rem = start_rem + r;
    if (end_rem >= rate) {
        end_ps += 1;
        end_rem -= rate;
    }
    d.free_ps = end_ps;
    d.free_rem = end_rem;

    t.start_ps = start_ps + (start_rem ? 1 : 0);
    t.end_ps = end_ps + (end_rem ? 1 : 0);
    t.arrival_ps = t.end_ps + params_.propagation_ps;
    t.segments = shape.segments;
    t.wire_bytes = shape.wire_bytes;
    if (t.start_ps > now_ps) {
        d.waiting.push_back(t.start_ps);
        d.stats.queue_peak.raise_to(d.waiting.size());
    }

    d.stats.frames.inc();
    d.stats.bytes.inc(frame.size());
    d.stats.segments.inc(shape.segments);
    d.stats.wire_bytes.inc(shape.wire_bytes);
    d.busy_rem += r;
    std::uint64_t busy = q;
    if (d.busy_rem >= rate) {
        busy += 1;
        d.busy_rem -= rate;
    }
    d.stats.busy_ps.inc(busy);
    return t;
}

}  // namespace xensim
