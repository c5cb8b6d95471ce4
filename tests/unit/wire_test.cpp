// The NIC + link engine (models/net/wire.h): exact serialization at 10 and 1 Gbit/s, exactness over
// many frames at rates that do not divide a picosecond, back-to-back queueing, txqueuelen
// overflow, TSO segment accounting and malformed frames.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/net/wire.h"

namespace xensim {
namespace {

constexpr std::uint64_t kNs = 1000;  // ps
__extension__ using u128 = unsigned __int128;

EthernetFrame plain(std::size_t len) {
    EthernetFrame f;
    f.bytes.assign(len, 0);  // to and from 00:00:00:00:00:00: the wire does not look
    if (len >= kEthHeaderLen) f.bytes[12] = 0x08;
    return f;
}

// A TCP GSO super-packet: Ethernet [+ 802.1Q] + IPv4 (ihl words) or IPv6 + TCP (doff words) +
// payload bytes, with MSS `mss`.
EthernetFrame tcp_gso(GsoType type, std::size_t payload, std::uint16_t mss, unsigned ihl = 5,
                      unsigned doff = 5, bool vlan = false) {
    EthernetFrame f;
    const std::size_t l2 = kEthHeaderLen + (vlan ? kVlanTagLen : 0);
    const std::size_t l3 = type == GsoType::tcpv6 ? 40 : ihl * 4;
    f.bytes.assign(l2 + l3 + doff * 4 + payload, 0);
    const std::uint16_t et = type == GsoType::tcpv6 ? kEtherTypeIpv6 : kEtherTypeIpv4;
    std::size_t off = 12;
    if (vlan) {
        f.bytes[12] = 0x81;
        f.bytes[13] = 0x00;
        off = 16;
    }
    f.bytes[off] = static_cast<std::uint8_t>(et >> 8);
    f.bytes[off + 1] = static_cast<std::uint8_t>(et);
    if (type == GsoType::tcpv6) {
        f.bytes[l2] = 0x60;
        f.bytes[l2 + 6] = kIpProtoTcp;
    } else {
        f.bytes[l2] = static_cast<std::uint8_t>(0x40 | ihl);
        f.bytes[l2 + 9] = kIpProtoTcp;
    }
    f.bytes[l2 + l3 + 12] = static_cast<std::uint8_t>(doff << 4);
    f.gso_type = type;
    f.gso_size = mss;
    return f;
}

WireParams params(std::uint64_t rate, std::uint64_t prop = 0, std::uint32_t qlen = 1000) {
    WireParams p;
    p.line_rate_bps = rate;
    p.propagation_ps = prop;
    p.txqueuelen = qlen;
    return p;
}

// (max(len, 60) + 24) * 8 bits at the line rate (IEEE 802.3: minimum frame, FCS, preamble + SFD, IFG).
TEST(Wire, SerializationOfOneFrameIsExact) {
    struct Case {
        const char* intent;
        std::uint64_t rate;
        std::size_t len;
        std::uint64_t end_ps;
    } cases[] = {
        {"minimum frame (64 B with FCS) at 10G: 672 bits = 67.2 ns", 10'000'000'000ull, 60, 67'200},
        {"a 42-byte ARP frame is padded to 60 first", 10'000'000'000ull, 42, 67'200},
        {"full frame 1514 B at 10G: 1538 * 8 = 12304 bits = 1230.4 ns", 10'000'000'000ull, 1514, 1'230'400},
        {"minimum frame at 1G: 672 ns", 1'000'000'000ull, 60, 672'000},
        {"full frame at 1G: 12304 ns", 1'000'000'000ull, 1514, 12'304'000},
        {"full frame at 7G: 1757714.28... ps, rounded up", 7'000'000'000ull, 1514, 1'757'715},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.intent);
        StatsGroup stats("wire");
        Wire w(params(c.rate, 500 * kNs), stats);
        WireTransmit t = w.transmit(WireDirection::to_peer, plain(c.len), 1000);
        ASSERT_TRUE(t.ok());
        EXPECT_EQ(t.start_ps, 1000u);
        EXPECT_EQ(t.end_ps, 1000 + c.end_ps);
        EXPECT_EQ(t.arrival_ps, 1000 + c.end_ps + 500 * kNs) << "plus propagation";
        EXPECT_EQ(t.segments, 1u);
        EXPECT_EQ(t.wire_bytes, std::max<std::size_t>(c.len, 60) + 24);
    }
}

// Back to back, frame k ends at exactly k * bits * 1e12 / rate: the remainder is carried, so the
// error never exceeds the one final rounding up (no drift, whatever the count).
TEST(Wire, BackToBackFramesStayExactOverManyFrames) {
    struct Case {
        const char* intent;
        std::uint64_t rate;
        std::size_t len;
    } cases[] = {
        {"1514 B at 10G (1230.4 ns: 0.4 ps would drift with whole-ps steps)", 10'000'000'000ull, 1514},
        {"1514 B at 7G (a fraction of 2/7 ps per frame)", 7'000'000'000ull, 1514},
        {"1514 B at 3G", 3'000'000'000ull, 1514},
        {"60 B at 25G", 25'000'000'000ull, 60},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.intent);
        StatsGroup stats("wire");
        Wire w(params(c.rate, 0, 1'000'000), stats);
        const std::uint64_t bits = (c.len + 24) * 8;
        const std::uint64_t n = 100'000;
        WireTransmit t;
        for (std::uint64_t k = 1; k <= n; ++k) {
            t = w.transmit(WireDirection::to_peer, plain(c.len), 0);  // all offered at 0: a burst
            ASSERT_TRUE(t.ok());
            // exact end = k * bits * 1e12 / rate, rounded up (in 128 bits: 1e21 here)
            const u128 num = static_cast<u128>(k * bits) * 1'000'000'000'000ull;
            const auto want = static_cast<std::uint64_t>(num / c.rate + (num % c.rate ? 1 : 0));
            if (t.end_ps != want) {
                ADD_FAILURE() << "frame " << k << ": end " << t.end_ps << " want " << want;
                break;
            }
        }
        // busy time is the exact floor of the total
        const u128 total = static_cast<u128>(n * bits) * 1'000'000'000'000ull;
        EXPECT_EQ(stats.find_counter("to_peer.busy_ps")->value(), static_cast<std::uint64_t>(total / c.rate));
        EXPECT_EQ(stats.find_counter("to_peer.wire_bytes")->value(), n * (c.len + 24));
    }
    // The brief's example, 1514 + 24 bytes at 10G: 1000 frames take exactly 1230.4 us.
    StatsGroup stats("wire");
    Wire w(params(10'000'000'000ull), stats);
    WireTransmit t;
    for (int k = 0; k < 1000; ++k) t = w.transmit(WireDirection::to_peer, plain(1514), 0);
    EXPECT_EQ(t.end_ps, 1'230'400'000u);
}

TEST(Wire, FramesQueueBehindEachOtherAndAnIdleLineStartsAtOnce) {
    StatsGroup stats("wire");
    Wire w(params(10'000'000'000ull, 500 * kNs), stats);
    const auto dir = WireDirection::to_peer;
    struct Step {
        const char* intent;
        std::uint64_t now, start, end;
    } steps[] = {
        {"idle line: starts now", 0, 0, 1'230'400},
        {"offered while the first is on the wire: waits for it", 100'000, 1'230'400, 2'460'800},
        {"offered at the same time: behind the second", 100'000, 2'460'800, 3'691'200},
        {"after the line went idle: starts at once", 10'000'000, 10'000'000, 11'230'400},
    };
    for (const Step& s : steps) {
        SCOPED_TRACE(s.intent);
        WireTransmit t = w.transmit(dir, plain(1514), s.now);
        ASSERT_TRUE(t.ok());
        EXPECT_EQ(t.start_ps, s.start);
        EXPECT_EQ(t.end_ps, s.end);
        EXPECT_EQ(t.arrival_ps, s.end + 500 * kNs);
    }
    EXPECT_EQ(stats.find_counter("to_peer.queue_peak")->value(), 2u);
    // The other direction is a line of its own (full duplex).
    WireTransmit back = w.transmit(WireDirection::to_host, plain(1514), 10'000'000);
    EXPECT_EQ(back.start_ps, 10'000'000u);
    EXPECT_EQ(stats.find_counter("to_host.frames")->value(), 1u);
    EXPECT_EQ(stats.find_counter("to_peer.frames")->value(), 4u);
}

// pfifo_fast's limit is txqueuelen: frames waiting beyond it are dropped (qdisc_drop); the frame
// being serialized does not count.
TEST(Wire, AFullTransmitQueueDropsAndCounts) {
    StatsGroup stats("wire");
    Wire w(params(10'000'000'000ull, 0, 3), stats);
    const auto dir = WireDirection::to_peer;
    std::vector<bool> accepted;
    for (int i = 0; i < 6; ++i) accepted.push_back(w.transmit(dir, plain(1514), 0).ok());
    // one on the wire + three waiting, then two dropped
    EXPECT_EQ(accepted, (std::vector<bool>{true, true, true, true, false, false}));
    EXPECT_EQ(w.queued(dir, 0), 3u);
    EXPECT_EQ(stats.find_family("to_peer.dropped")->value("queue_full"), 2u);
    // Once the first frame has left the wire the second is on it: room for one more.
    EXPECT_EQ(w.queued(dir, 1'230'400), 2u);
    EXPECT_TRUE(w.transmit(dir, plain(1514), 1'230'400).ok());
    EXPECT_FALSE(w.transmit(dir, plain(1514), 1'230'400).ok());
    // txqueuelen 0: only an idle line takes a frame.
    StatsGroup s0("wire0");
    Wire w0(params(10'000'000'000ull, 0, 0), s0);
    EXPECT_TRUE(w0.transmit(dir, plain(60), 0).ok());
    EXPECT_FALSE(w0.transmit(dir, plain(60), 0).ok());
    EXPECT_TRUE(w0.transmit(dir, plain(60), 67'200).ok());
}

// TSO: ceil(payload / mss) segments, each with the full header (Ethernet, IP, TCP) again.
TEST(Wire, GsoSuperPacketsAreCountedAsTheirSegments) {
    struct Case {
        const char* intent;
        EthernetFrame f;
        std::uint32_t segments;
        std::uint32_t header;
        std::uint64_t wire_bytes;
    } cases[] = {
        {"64000 B over IPv4, MSS 1448 + 12 B of TCP options: 45 segments (44 full, last 288 B)",
         tcp_gso(GsoType::tcpv4, 64000, 1448, 5, 8), 45, 14 + 20 + 32,
         44 * (66 + 1448 + 24) + (66 + 288 + 24)},
        {"exact multiple: 10 * 1460 over IPv4 without options", tcp_gso(GsoType::tcpv4, 14600, 1460), 10, 54,
         10 * (54 + 1460 + 24)},
        {"IPv6: 40-byte header, MSS 1440", tcp_gso(GsoType::tcpv6, 2881, 1440), 3, 74,
         2 * (74 + 1440 + 24) + (74 + 1 + 24)},
        {"IPv4 options (IHL 6) are repeated in every segment", tcp_gso(GsoType::tcpv4, 3000, 1456, 6), 3, 58,
         2 * (58 + 1456 + 24) + (58 + 88 + 24)},
        {"an 802.1Q tag is part of each segment's header", tcp_gso(GsoType::tcpv4, 2920, 1460, 5, 5, true), 2,
         58, 2 * (58 + 1460 + 24)},
        {"payload below the MSS: one segment", tcp_gso(GsoType::tcpv4, 100, 1460), 1, 54, 54 + 100 + 24},
        {"no payload: one segment padded to 60", tcp_gso(GsoType::tcpv4, 0, 1460), 1, 54, 60 + 24},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.intent);
        WireShape s = wire_shape(c.f, kEthMtu);
        ASSERT_EQ(s.drop, WireDrop::none) << wire_drop_name(s.drop);
        EXPECT_EQ(s.segments, c.segments);
        EXPECT_EQ(s.header_len, c.header);
        EXPECT_EQ(s.wire_bytes, c.wire_bytes);
    }
    // On the line: delivered once, when the last segment has arrived.
    StatsGroup stats("wire");
    Wire w(params(10'000'000'000ull, 500 * kNs), stats);
    WireTransmit t = w.transmit(WireDirection::to_peer, tcp_gso(GsoType::tcpv4, 14600, 1460), 0);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.end_ps, 10 * 1'230'400u) << "ten full-size frames back to back";
    EXPECT_EQ(t.arrival_ps, 10 * 1'230'400u + 500 * kNs);
    EXPECT_EQ(stats.find_counter("to_peer.frames")->value(), 1u);
    EXPECT_EQ(stats.find_counter("to_peer.segments")->value(), 10u);
    EXPECT_EQ(stats.find_counter("to_peer.bytes")->value(), 14600u + 54u);
}

TEST(Wire, MalformedFramesAreDroppedAndCountedNeverSent) {
    auto with = [](EthernetFrame f, auto edit) {
        edit(f);
        return f;
    };
    struct Case {
        const char* intent;
        EthernetFrame f;
        WireDrop drop;
    } cases[] = {
        {"runt: 13 bytes", plain(13), WireDrop::runt},
        {"empty frame", plain(0), WireDrop::runt},
        {"a plain frame beyond the MTU", plain(1515), WireDrop::oversize},
        {"GSO with no GSO type",
         with(tcp_gso(GsoType::tcpv4, 3000, 1460), [](auto& f) { f.gso_type = GsoType::none; }),
         WireDrop::gso_malformed},
        {"tcpv4 on an IPv6 frame",
         with(tcp_gso(GsoType::tcpv6, 3000, 1440), [](auto& f) { f.gso_type = GsoType::tcpv4; }),
         WireDrop::gso_malformed},
        {"IHL below 5", with(tcp_gso(GsoType::tcpv4, 3000, 1460), [](auto& f) { f.bytes[14] = 0x44; }),
         WireDrop::gso_malformed},
        {"IHL beyond the frame", with(tcp_gso(GsoType::tcpv4, 0, 1460), [](auto& f) { f.bytes[14] = 0x4f; }),
         WireDrop::gso_malformed},
        {"IPv4 version wrong", with(tcp_gso(GsoType::tcpv4, 3000, 1460), [](auto& f) { f.bytes[14] = 0x65; }),
         WireDrop::gso_malformed},
        {"not TCP (UDP)", with(tcp_gso(GsoType::tcpv4, 3000, 1460), [](auto& f) { f.bytes[23] = 17; }),
         WireDrop::gso_malformed},
        {"IPv6 extension header", with(tcp_gso(GsoType::tcpv6, 3000, 1440), [](auto& f) { f.bytes[20] = 0; }),
         WireDrop::gso_malformed},
        {"TCP data offset below 5",
         with(tcp_gso(GsoType::tcpv4, 3000, 1460), [](auto& f) { f.bytes[46] = 0x40; }),
         WireDrop::gso_malformed},
        {"TCP header cut short", with(tcp_gso(GsoType::tcpv4, 0, 1460), [](auto& f) { f.bytes.resize(50); }),
         WireDrop::gso_malformed},
        {"headers only up to the IP header",
         with(plain(20),
              [](auto& f) {
                  f.gso_type = GsoType::tcpv4;
                  f.gso_size = 1;
              }),
         WireDrop::gso_malformed},
        {"segments larger than the MTU (MSS 1461 + 54)", tcp_gso(GsoType::tcpv4, 3000, 1461),
         WireDrop::oversize},
        {"IP packet over GSO_MAX_SIZE", tcp_gso(GsoType::tcpv4, 65536 - 40 + 1, 1460), WireDrop::oversize},
    };
    StatsGroup stats("wire");
    Wire w(params(10'000'000'000ull), stats);
    std::uint64_t now = 0;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.intent);
        WireTransmit t = w.transmit(WireDirection::to_host, c.f, now++);
        EXPECT_EQ(std::string(wire_drop_name(t.drop)), wire_drop_name(c.drop));
    }
    EXPECT_EQ(stats.find_counter("to_host.frames")->value(), 0u) << "nothing reached the line";
    EXPECT_EQ(stats.find_counter("to_host.busy_ps")->value(), 0u);
    EXPECT_EQ(stats.find_family("to_host.dropped")->value("runt"), 2u);
    EXPECT_EQ(stats.find_family("to_host.dropped")->total(), std::size(cases));
    // The largest legal super-packet, MSS 1 (a hostile peer), is counted without overflow:
    // 65496 segments of 54 + 1 bytes, each padded to 60.
    WireShape s = wire_shape(tcp_gso(GsoType::tcpv4, 65536 - 40, 1), kEthMtu);
    EXPECT_EQ(s.segments, 65496u);
    EXPECT_EQ(s.wire_bytes, 65496u * 84u);
}

TEST(Wire, RejectsCallerErrors) {
    StatsGroup stats("wire");
    EXPECT_THROW(Wire(params(0), stats), std::invalid_argument);
    StatsGroup s2("wire2");
    Wire w(params(10'000'000'000ull), s2);
    w.transmit(WireDirection::to_peer, plain(60), 100);
    EXPECT_THROW(w.transmit(WireDirection::to_peer, plain(60), 99), std::logic_error);
    EXPECT_NO_THROW(w.transmit(WireDirection::to_host, plain(60), 99)) << "each direction has its own clock";
}

}  // namespace
}  // namespace xensim
