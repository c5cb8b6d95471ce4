// Building and parsing the IPv4 frames the netperf-style workloads exchange: Ethernet + IPv4 +
// UDP / TCP / ICMP echo, with the checksum and segmentation offloads Linux uses.
//
// The problem. A network workload must put real packets on the path so that every layer below it
// (netfront, netback, bridge, wire, the remote peer) handles what Linux would hand it: correct
// header layouts, a filled IPv4 header checksum, and an L4 checksum that is either complete or left
// for the device (CHECKSUM_PARTIAL), plus TCP super-packets when the device does segmentation. The
// receiving side must be able to tell a damaged frame from a good one. This file is that layer,
// plain C++ over sim/core/ethernet.h; the flows (netperf_udp.h, netperf_tcp.h, netperf_ping.h)
// decide what to send.
//
// Layouts (network byte order): Ethernet II (14 bytes, ethertype 0x0800); IPv4 (RFC 791) with
// IHL 5, no options, TOS 0, DF set (Linux's default path-MTU discovery sets DF on TCP and UDP),
// TTL 64, the header checksum always filled (Linux never offloads it to netfront); UDP (RFC 768);
// TCP (RFC 793) with, when asked, the RFC 7323 timestamps option laid out as Linux sends it on
// every segment of an established connection (NOP, NOP, kind 8, length 10, TSval, TSecr: a 32-byte
// header, hence Linux's MSS of 1500 - 20 - 32 = 1448); ICMP echo request / reply (RFC 792).
//
// Checksums (RFC 1071 sums from ethernet.h):
//   * full: the L4 checksum covers the RFC 768/793 pseudo-header and the whole segment (a UDP
//     checksum that computes to 0 is sent as 0xffff, RFC 768).
//   * blank (Linux CHECKSUM_PARTIAL, frame.csum_blank): the L4 checksum field holds the folded,
//     uncomplemented pseudo-header sum, as __tcp_v4_send_check / udp4_hwcsum leave it for a device
//     with NETIF_F_IP_CSUM; complete_checksum() finishes it as skb_checksum_help does.
//   * ICMP is always checksummed in full (no pseudo-header; the stack never offloads it).
//   * parse_packet() verifies the IPv4 header checksum always (ip_rcv_core) and the L4 checksum
//     unless frame.data_validated or frame.csum_blank is set: Linux trusts CHECKSUM_UNNECESSARY and
//     CHECKSUM_PARTIAL frames from netfront (NETRXF_data_validated / NETRXF_csum_blank). A UDP
//     checksum of 0 means "none" (RFC 768) and is accepted unverified.
//
// GSO. A TCP super-packet (build_tcp with gso_size) is one frame with one set of headers and up to
// 65535 - 40 - options bytes of payload (IPv4 total length is 16 bits), gso_type tcpv4, gso_size =
// MSS, csum_blank, the IP total length and the pseudo-header sum covering the whole super-packet
// (what Linux's TSO output and xen-netback's checksum_setup_ipv4 produce). segment() is software
// GSO, following tcp_gso_segment / inet_gso_segment: each MSS-sized segment gets a copy of the
// headers with its own IP total length, IP id (id + i, as inet_gso_segment increments it), sequence
// number (seq + i * MSS), header checksum and L4 checksum; FIN and PSH stay only on the last segment
// and CWR only on the first.
//
// Fidelity limits: IPv4 only (no IPv6, no IP options); no fragmentation or reassembly (a fragment
// parses as PacketStatus::fragment); no VLAN tags; frames are not padded to 60 bytes (the stack
// does not pad, NICs do; the parser ignores bytes past the IP total length as Linux trims them);
// only the TCP timestamps option is built or parsed (other options are skipped by data offset).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sim/core/ethernet.h"

namespace xensim {

// An IPv4 address as a host-order integer: 10.0.0.1 is ipv4(10, 0, 0, 1) = 0x0a000001.
using Ipv4Address = std::uint32_t;
constexpr Ipv4Address ipv4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return (a & 0xff) << 24 | (b & 0xff) << 16 | (c & 0xff) << 8 | (d & 0xff);
}

inline constexpr std::uint8_t kIpProtoIcmp = 1;  // IANA protocol numbers
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::size_t kIpv4HeaderLen = 20;
inline constexpr std::size_t kUdpHeaderLen = 8;
inline constexpr std::size_t kTcpHeaderLen = 20;            // without options
inline constexpr std::size_t kTcpTimestampsOptionLen = 12;  // NOP NOP kind 8 len 10 TSval TSecr
inline constexpr std::size_t kIcmpEchoHeaderLen = 8;
inline constexpr std::size_t kIpv4MaxTotalLen = 65535;
inline constexpr std::uint8_t kIpv4DefaultTtl = 64;  // Linux's net.ipv4.ip_default_ttl

inline constexpr std::uint8_t kIcmpEchoReply = 0;  // RFC 792
inline constexpr std::uint8_t kIcmpEchoRequest = 8;

// TCP header flags (RFC 793, RFC 3168 for CWR/ECE).
inline constexpr std::uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10,
                              kTcpUrg = 0x20, kTcpEce = 0x40, kTcpCwr = 0x80;

// Source and destination of a flow's frames, from the sender's point of view.
struct PacketAddress {
    MacAddress src_mac{}, dst_mac{};
    Ipv4Address src_ip = 0, dst_ip = 0;
    std::uint16_t src_port = 0, dst_port = 0;  // UDP / TCP only
    // The same flow seen from the other end (source and destination swapped).
    PacketAddress reversed() const { return {dst_mac, src_mac, dst_ip, src_ip, dst_port, src_port}; }
};

enum class L4Checksum : std::uint8_t {
    full,   // computed in software
    blank,  // pseudo-header sum only, frame.csum_blank (CHECKSUM_PARTIAL)
};

struct TcpFields {
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = kTcpAck;
    std::uint16_t window = 0;  // the raw 16-bit field (before any window scaling)
    bool timestamps = false;   // carry the RFC 7323 timestamps option
    std::uint32_t tsval = 0, tsecr = 0;
};

// UDP datagram carrying `len` payload bytes. Throws std::invalid_argument when the IPv4 total
// length would exceed 65535.
EthernetFrame build_udp(const PacketAddress& a, std::uint16_t ip_id, const std::uint8_t* payload,
                        std::size_t len, L4Checksum csum);

// TCP segment carrying `len` payload bytes. With gso_size > 0 and len > gso_size the frame is a
// GSO super-packet (gso_type tcpv4, gso_size, csum must be blank); otherwise a single segment.
// Throws std::invalid_argument for a full checksum on a super-packet or a total length > 65535.
EthernetFrame build_tcp(const PacketAddress& a, std::uint16_t ip_id, const TcpFields& t,
                        const std::uint8_t* payload, std::size_t len, L4Checksum csum,
                        std::uint16_t gso_size = 0);

// ICMP echo request (type 8) or reply (type 0) with identifier and sequence number; ports unused.
EthernetFrame build_icmp_echo(const PacketAddress& a, std::uint16_t ip_id, std::uint8_t type,
                              std::uint16_t id, std::uint16_t seq, const std::uint8_t* payload,
                              std::size_t len);

// What parse_packet found. Every status but ok means a receiver drops the frame; the header fields
// parsed before the problem are filled (a bad L4 checksum still names ports), so the flow the frame
// was meant for can count it.
enum class PacketStatus : std::uint8_t {
    ok,
    truncated,        // shorter than its headers / the IPv4 total length says
    not_ipv4,         // ethertype is not 0x0800, or the IP version is not 4
    bad_ip_header,    // IHL < 5 or total length < header length
    bad_ip_checksum,  // the IPv4 header does not sum to zero
    fragment,         // MF set or fragment offset non-zero: no reassembly here
    unsupported_protocol,
    bad_l4_header,    // UDP length / TCP data offset / ICMP length inconsistent with the IP length
    bad_l4_checksum,  // verified and wrong
};
const char* to_string(PacketStatus s);

struct ParsedPacket {
    PacketStatus status = PacketStatus::truncated;
    MacAddress dst_mac{}, src_mac{};
    Ipv4Address src_ip = 0, dst_ip = 0;
    std::uint8_t protocol = 0, ttl = 0;
    std::uint16_t ip_id = 0, ip_total_len = 0;
    std::uint16_t src_port = 0, dst_port = 0;  // UDP / TCP
    TcpFields tcp;                             // TCP (window is the raw field)
    std::uint8_t icmp_type = 0, icmp_code = 0;
    std::uint16_t icmp_id = 0, icmp_seq = 0;
    std::size_t l4_offset = 0;       // into frame.bytes
    std::size_t payload_offset = 0;  // into frame.bytes
    std::size_t payload_len = 0;
    bool l4_checksum_verified = false;  // false when trusted (data_validated / csum_blank) or UDP 0

    bool ok() const { return status == PacketStatus::ok; }
};

ParsedPacket parse_packet(const EthernetFrame& f);

// Fills the L4 checksum of a csum_blank TCP or UDP frame in software, as skb_checksum_help does,
// and clears csum_blank. False (frame unchanged) for a frame that is not csum_blank, not a
// well-formed IPv4 TCP/UDP frame, or a GSO super-packet (segment it first).
bool complete_checksum(EthernetFrame& f);

// Software GSO: the gso_size-sized segments of a tcpv4 super-packet, each a complete frame with
// gso_type none and its L4 checksum full or blank as asked. Empty for a frame that is not a
// well-formed GSO tcpv4 super-packet. A frame that is not GSO is returned as the only element with
// the checksum as asked.
std::vector<EthernetFrame> segment(const EthernetFrame& f, L4Checksum csum);

}  // namespace xensim
