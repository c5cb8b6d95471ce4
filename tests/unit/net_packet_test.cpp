// Frames as the netperf-style engines build them (frontends/net_packet.h) and their payloads
// (frontends/net_payload.h): header layouts and checksums against worked examples, the receiver's
// verify path for full / blank / trusted checksums, malformed frames, and software GSO.
//
// The worked examples' bytes were computed independently of this code (a 30-line Python script
// summing RFC 1071 one's complement words over the RFC 791 header and the RFC 768 / 793
// pseudo-header + segment); each field's offset is from the RFC's header diagram.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "frontends/net_packet.h"
#include "frontends/net_payload.h"

namespace xensim {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes from_hex(const std::string& h) {
    Bytes b;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        b.push_back(static_cast<std::uint8_t>(std::stoul(h.substr(i, 2), nullptr, 16)));
    return b;
}

Bytes text(const char* s) { return Bytes(s, s + std::char_traits<char>::length(s)); }

// 00:16:3e:00:00:01 / 10.0.0.1 -> 00:16:3e:00:00:02 / 10.0.0.2.
PacketAddress example_address(std::uint16_t sport = 0, std::uint16_t dport = 0) {
    PacketAddress a;
    a.src_mac = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
    a.dst_mac = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x02};
    a.src_ip = ipv4(10, 0, 0, 1);
    a.dst_ip = ipv4(10, 0, 0, 2);
    a.src_port = sport;
    a.dst_port = dport;
    return a;
}

const char* kUdpHello =  // UDP 12345 -> 5001, IP id 0x1c46, "hello": IP csum 0a84, UDP csum 643d
    "00163e00000200163e0000010800"
    "450000211c46400040110a840a0000010a000002"
    "30391389000d643d"
    "68656c6c6f";
const char* kTcpAbcd =  // TCP 40000 -> 12865, seq 01020304 ack 0a0b0c0d, PSH|ACK, win 0x200, TS 1000/2000
    "00163e00000200163e0000010800"
    "4500003800014000400626bd0a0000010a000002"
    "9c403241010203040a0b0c0d80180200a7900000"
    "0101080a000003e8000007d0"
    "61626364";
const char* kIcmpEcho =  // echo request id 0x1234 seq 1, data 00..07: IP csum 26d7, ICMP csum d9ba
    "00163e00000200163e0000010800"
    "45000024000040004001"
    "26d70a0000010a000002"
    "0800d9ba12340001"
    "0001020304050607";

TcpFields example_tcp_fields() {
    TcpFields t;
    t.seq = 0x01020304;
    t.ack = 0x0a0b0c0d;
    t.flags = kTcpPsh | kTcpAck;
    t.window = 0x0200;
    t.timestamps = true;
    t.tsval = 1000;
    t.tsecr = 2000;
    return t;
}

TEST(NetPacket, BuildsTheWorkedExamplesByteForByte) {
    Bytes hello = text("hello"), abcd = text("abcd"), data = {0, 1, 2, 3, 4, 5, 6, 7};
    struct Case {
        const char* what;
        EthernetFrame frame;
        const char* expected;
    } cases[] = {
        {"udp", build_udp(example_address(12345, 5001), 0x1c46, hello.data(), hello.size(), L4Checksum::full),
         kUdpHello},
        {"tcp",
         build_tcp(example_address(40000, 12865), 0x0001, example_tcp_fields(), abcd.data(), abcd.size(),
                   L4Checksum::full),
         kTcpAbcd},
        {"icmp", build_icmp_echo(example_address(), 0, kIcmpEchoRequest, 0x1234, 1, data.data(), data.size()),
         kIcmpEcho},
    };
    for (auto& c : cases) {
        EXPECT_EQ(c.frame.bytes, from_hex(c.expected)) << c.what;
        EXPECT_FALSE(c.frame.csum_blank) << c.what;
        EXPECT_EQ(c.frame.gso_type, GsoType::none) << c.what;
    }
}

TEST(NetPacket, ParsesTheWorkedExamples) {
    EthernetFrame udp{from_hex(kUdpHello)}, tcp{from_hex(kTcpAbcd)}, icmp{from_hex(kIcmpEcho)};
    ParsedPacket u = parse_packet(udp);
    ASSERT_TRUE(u.ok()) << to_string(u.status);
    EXPECT_EQ(u.src_ip, ipv4(10, 0, 0, 1));
    EXPECT_EQ(u.dst_ip, ipv4(10, 0, 0, 2));
    EXPECT_EQ(u.protocol, kIpProtoUdp);
    EXPECT_EQ(u.ip_id, 0x1c46);
    EXPECT_EQ(u.ttl, 64);
    EXPECT_EQ(u.src_port, 12345);
    EXPECT_EQ(u.dst_port, 5001);
    EXPECT_EQ(u.payload_offset, 42u);
    EXPECT_EQ(u.payload_len, 5u);
    EXPECT_TRUE(u.l4_checksum_verified);

    ParsedPacket t = parse_packet(tcp);
    ASSERT_TRUE(t.ok()) << to_string(t.status);
    EXPECT_EQ(t.tcp.seq, 0x01020304u);
    EXPECT_EQ(t.tcp.ack, 0x0a0b0c0du);
    EXPECT_EQ(t.tcp.flags, kTcpPsh | kTcpAck);
    EXPECT_EQ(t.tcp.window, 0x200);
    EXPECT_TRUE(t.tcp.timestamps);
    EXPECT_EQ(t.tcp.tsval, 1000u);
    EXPECT_EQ(t.tcp.tsecr, 2000u);
    EXPECT_EQ(t.payload_offset, 14u + 20u + 32u);
    EXPECT_EQ(t.payload_len, 4u);
    EXPECT_TRUE(t.l4_checksum_verified);

    ParsedPacket i = parse_packet(icmp);
    ASSERT_TRUE(i.ok()) << to_string(i.status);
    EXPECT_EQ(i.icmp_type, kIcmpEchoRequest);
    EXPECT_EQ(i.icmp_id, 0x1234);
    EXPECT_EQ(i.icmp_seq, 1);
    EXPECT_EQ(i.payload_len, 8u);
}

// CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum (0x142d for the TCP example,
// computed by the same script); trusted by a receiver while csum_blank, and complete_checksum()
// (skb_checksum_help) turns it into exactly the full-checksum frame.
TEST(NetPacket, BlankChecksumIsThePseudoHeaderSumAndCompletesToTheFullOne) {
    Bytes abcd = text("abcd"), hello = text("hello");
    EthernetFrame tcp = build_tcp(example_address(40000, 12865), 1, example_tcp_fields(), abcd.data(),
                                  abcd.size(), L4Checksum::blank);
    EXPECT_TRUE(tcp.csum_blank);
    EXPECT_EQ(tcp.bytes[14 + 20 + 16], 0x14);
    EXPECT_EQ(tcp.bytes[14 + 20 + 17], 0x2d);
    ParsedPacket p = parse_packet(tcp);
    EXPECT_TRUE(p.ok());
    EXPECT_FALSE(p.l4_checksum_verified) << "a csum_blank frame is trusted, not verified";
    EthernetFrame as_received = tcp;
    as_received.csum_blank = false;
    EXPECT_EQ(parse_packet(as_received).status, PacketStatus::bad_l4_checksum)
        << "the pseudo-header sum alone does not verify";
    ASSERT_TRUE(complete_checksum(tcp));
    EXPECT_FALSE(tcp.csum_blank);
    EXPECT_EQ(tcp.bytes, from_hex(kTcpAbcd));
    EXPECT_FALSE(complete_checksum(tcp)) << "nothing left to complete";

    EthernetFrame udp =
        build_udp(example_address(12345, 5001), 0x1c46, hello.data(), hello.size(), L4Checksum::blank);
    ASSERT_TRUE(complete_checksum(udp));
    EXPECT_EQ(udp.bytes, from_hex(kUdpHello));
    ParsedPacket q = parse_packet(udp);
    EXPECT_TRUE(q.ok());
    EXPECT_TRUE(q.l4_checksum_verified);
}

// What the receiver's verify path makes of damaged and odd frames.
TEST(NetPacket, ReceiverVerdictsOnDamagedFrames) {
    Bytes base = from_hex(kUdpHello);
    auto with = [&](std::size_t off, std::uint8_t v) {
        EthernetFrame f{base};
        f.bytes[off] = v;
        return f;
    };
    auto truncated = [&](std::size_t n) {
        EthernetFrame f{base};
        f.bytes.resize(n);
        return f;
    };
    EthernetFrame padded{base};
    padded.bytes.resize(60, 0);  // a NIC's minimum-length padding after the IP total length
    EthernetFrame trusted = with(46, 'X');
    trusted.data_validated = true;
    EthernetFrame no_udp_csum{base};
    no_udp_csum.bytes[40] = no_udp_csum.bytes[41] = 0;
    no_udp_csum.bytes[46] = 'X';
    struct Case {
        const char* what;
        EthernetFrame f;
        PacketStatus expected;
        bool verified;
    } cases[] = {
        {"intact", EthernetFrame{base}, PacketStatus::ok, true},
        {"padded to 60 bytes (ip_rcv_core trims)", padded, PacketStatus::ok, true},
        {"payload byte flipped", with(46, 'X'), PacketStatus::bad_l4_checksum, false},
        {"payload byte flipped, data_validated (trusted)", trusted, PacketStatus::ok, false},
        {"UDP checksum 0 = none (RFC 768)", no_udp_csum, PacketStatus::ok, false},
        {"IP header byte flipped (TTL)", with(22, 63), PacketStatus::bad_ip_checksum, false},
        {"ethertype ARP", with(13, 0x06), PacketStatus::not_ipv4, false},
        {"IP version 6 in an IPv4 frame", with(14, 0x65), PacketStatus::not_ipv4, false},
        {"IHL 4", with(14, 0x44), PacketStatus::bad_ip_header, false},
        {"runt: 13 bytes", truncated(13), PacketStatus::truncated, false},
        {"cut inside the IP header", truncated(30), PacketStatus::truncated, false},
        {"cut before the IP total length", truncated(45), PacketStatus::truncated, false},
        {"protocol 99", with(23, 99), PacketStatus::bad_ip_checksum, false},
    };
    for (auto& c : cases) {
        ParsedPacket p = parse_packet(c.f);
        EXPECT_EQ(p.status, c.expected) << c.what << ": " << to_string(p.status);
        EXPECT_EQ(p.l4_checksum_verified, c.verified) << c.what;
    }
    // Header-consistency cases need a correct IP checksum: build them and re-sum the IP header.
    auto reip = [](EthernetFrame f) {
        f.bytes[24] = f.bytes[25] = 0;
        std::uint16_t c = internet_checksum(&f.bytes[14], 20);
        f.bytes[24] = static_cast<std::uint8_t>(c >> 8);
        f.bytes[25] = static_cast<std::uint8_t>(c);
        return f;
    };
    EthernetFrame frag = with(20, 0x20);  // MF
    EXPECT_EQ(parse_packet(reip(frag)).status, PacketStatus::fragment);
    EthernetFrame proto = with(23, 99);
    EXPECT_EQ(parse_packet(reip(proto)).status, PacketStatus::unsupported_protocol);
    EthernetFrame long_udp = with(39, 0x0e);  // UDP length 14 > the 13 bytes the IP header allows
    ParsedPacket lu = parse_packet(long_udp);
    EXPECT_EQ(lu.status, PacketStatus::bad_l4_header);
    EXPECT_EQ(lu.dst_port, 5001) << "ports are known, so the flow can count it";
    Bytes abcd = text("abcd");
    EthernetFrame tcp =
        build_tcp(example_address(1, 2), 0, example_tcp_fields(), abcd.data(), abcd.size(), L4Checksum::full);
    tcp.bytes[14 + 20 + 12] = 0x40;  // data offset 4 words < 5
    EXPECT_EQ(parse_packet(tcp).status, PacketStatus::bad_l4_header);
    tcp.bytes[14 + 20 + 12] = 0xf0;  // 60 bytes of header in a 36-byte segment
    EXPECT_EQ(parse_packet(tcp).status, PacketStatus::bad_l4_header);
}

TEST(NetPacket, RejectsWhatCannotBeBuilt) {
    Bytes big(65535 - 20 - 8 + 1);
    EXPECT_THROW(build_udp(example_address(1, 2), 0, big.data(), big.size(), L4Checksum::full),
                 std::invalid_argument)
        << "IPv4 total length 65536";
    Bytes two_mss(2 * 1448);
    EXPECT_THROW(build_tcp(example_address(1, 2), 0, TcpFields{}, two_mss.data(), two_mss.size(),
                           L4Checksum::full, 1448),
                 std::invalid_argument)
        << "a super-packet's checksum is always left to the device";
}

// Software GSO, as tcp_gso_segment + inet_gso_segment: every segment is exactly the frame the
// stack would have built for that part of the stream on its own.
TEST(NetPacket, SegmentSplitsASuperPacketIntoExactlyTheFramesBuiltOneByOne) {
    const std::uint16_t mss = 1448;
    Bytes payload(3 * mss + 100);
    fill_pattern(42, 0, payload.data(), payload.size());
    PacketAddress a = example_address(40000, 12865);
    TcpFields t = example_tcp_fields();
    t.seq = 0xfffff000;  // the sequence number wraps inside the super-packet
    t.flags = kTcpAck | kTcpPsh | kTcpCwr | kTcpFin;
    EthernetFrame gso = build_tcp(a, 0xfffe, t, payload.data(), payload.size(), L4Checksum::blank, mss);
    ASSERT_EQ(gso.gso_type, GsoType::tcpv4);
    ASSERT_EQ(gso.gso_size, mss);
    ASSERT_TRUE(gso.csum_blank);
    EXPECT_FALSE(complete_checksum(gso)) << "a super-packet is segmented, not checksummed whole";
    for (L4Checksum csum : {L4Checksum::full, L4Checksum::blank}) {
        std::vector<EthernetFrame> segs = segment(gso, csum);
        ASSERT_EQ(segs.size(), 4u);
        for (std::size_t i = 0; i < segs.size(); ++i) {
            std::size_t len = i < 3 ? mss : 100;
            TcpFields ti = t;
            ti.seq = static_cast<std::uint32_t>(t.seq + i * mss);
            ti.flags = kTcpAck;
            if (i == 0) ti.flags |= kTcpCwr;            // CWR only on the first
            if (i == 3) ti.flags |= kTcpPsh | kTcpFin;  // PSH and FIN only on the last
            EthernetFrame expected =
                build_tcp(a, static_cast<std::uint16_t>(0xfffe + i), ti, payload.data() + i * mss, len, csum);
            EXPECT_EQ(segs[i].bytes, expected.bytes) << "segment " << i;
            EXPECT_EQ(segs[i].csum_blank, csum == L4Checksum::blank);
            EXPECT_EQ(segs[i].gso_type, GsoType::none);
            EXPECT_EQ(segs[i].gso_size, 0);
            if (csum == L4Checksum::full) {
                ParsedPacket p = parse_packet(segs[i]);
                EXPECT_TRUE(p.ok() && p.l4_checksum_verified) << "segment " << i;
            }
        }
    }
    // Not a super-packet: returned whole with the checksum as asked; not a TCPv4 one: nothing.
    Bytes hello = text("hello");
    EthernetFrame udp = build_udp(a, 0x1c46, hello.data(), hello.size(), L4Checksum::blank);
    std::vector<EthernetFrame> one = segment(udp, L4Checksum::full);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_TRUE(parse_packet(one[0]).l4_checksum_verified);
    EthernetFrame v6 = gso;
    v6.gso_type = GsoType::tcpv6;
    EXPECT_TRUE(segment(v6, L4Checksum::full).empty());
    EthernetFrame cut = gso;
    cut.bytes.resize(100);
    EXPECT_TRUE(segment(cut, L4Checksum::full).empty());
}

// --- payloads (net_payload.h) ---

TEST(NetPayload, PatternIsAFunctionOfKeyAndOffset) {
    Bytes whole(100), part(20);
    fill_pattern(7, 0, whole.data(), whole.size());
    fill_pattern(7, 37, part.data(), part.size());
    EXPECT_EQ(Bytes(whole.begin() + 37, whole.begin() + 57), part);
    EXPECT_TRUE(check_pattern(7, 37, part.data(), part.size()));
    part[5] ^= 1;
    EXPECT_FALSE(check_pattern(7, 37, part.data(), part.size()));
    Bytes other(100);
    fill_pattern(8, 0, other.data(), other.size());
    EXPECT_NE(whole, other);
    EXPECT_NE(pattern_key(1, 1, 0), pattern_key(1, 2, 0));
    EXPECT_NE(pattern_key(1, 1, 0), pattern_key(2, 1, 0));
}

TEST(NetPayload, MessageHeaderChecksumAndFlow) {
    Bytes m(200);
    write_message(m.data(), m.size(), 99, {7, 12345, 5000});
    // The documented header layout.
    EXPECT_EQ(Bytes(m.begin(), m.begin() + 4), (Bytes{0x78, 0x73, 0x6e, 0x70}));
    EXPECT_EQ(m[7], 7);
    EXPECT_EQ(m[14] << 8 | m[15], 12345);
    EXPECT_EQ(m[22] << 8 | m[23], 5000);
    EXPECT_EQ(m[26] << 8 | m[27], 200);
    PayloadCheck c = check_message(m.data(), m.size(), 99, 7);
    EXPECT_EQ(c.status, PayloadStatus::ok);
    EXPECT_EQ(c.header.seq, 12345u);
    EXPECT_EQ(c.header.send_ns, 5000u);
    EXPECT_EQ(check_message(m.data(), m.size(), 99, 8).status, PayloadStatus::misdelivered);
    EXPECT_EQ(check_message(m.data(), m.size() - 1, 99, 7).status, PayloadStatus::corrupt) << "length";
    for (std::size_t off : {0u, 5u, 12u, 20u, 27u, 29u, 32u, 199u}) {
        Bytes bad = m;
        bad[off] ^= 0x10;
        EXPECT_EQ(check_message(bad.data(), bad.size(), 99, 7).status, PayloadStatus::corrupt)
            << "byte " << off;
    }
    // Short messages: the flow's pattern, checked against the seed.
    Bytes s(1);
    write_message(s.data(), s.size(), 99, {7, 0, 0});
    EXPECT_EQ(check_message(s.data(), s.size(), 99, 7).status, PayloadStatus::ok_short);
    s[0] ^= 1;
    EXPECT_EQ(check_message(s.data(), s.size(), 99, 7).status, PayloadStatus::corrupt);
}

}  // namespace
}  // namespace xensim
