#include "frontends/net_packet.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace xensim {

namespace {

constexpr std::size_t kIpOff = kEthHeaderLen;                   // IPv4 header in the frame
constexpr std::size_t kL4Off = kEthHeaderLen + kIpv4HeaderLen;  // L4 header (we build no IP options)
constexpr std::uint16_t kIpDf = 0x4000, kIpMf = 0x2000, kIpOffsetMask = 0x1fff;

void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
}
std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t get32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(get16(p)) << 16 | get16(p + 2);
}

// Ethernet + IPv4 headers for an IP payload of l4_len bytes; returns the frame with room for it.
std::vector<std::uint8_t> l2l3(const PacketAddress& a, std::uint16_t ip_id, std::uint8_t proto,
                               std::size_t l4_len) {
    std::size_t total = kIpv4HeaderLen + l4_len;
    if (total > kIpv4MaxTotalLen)
        throw std::invalid_argument("IPv4 total length " + std::to_string(total) + " exceeds 65535");
    std::vector<std::uint8_t> b(kEthHeaderLen + total, 0);
    std::copy(a.dst_mac.begin(), a.dst_mac.end(), b.begin());
    std::copy(a.src_mac.begin(), a.src_mac.end(), b.begin() + 6);
    put16(&b[12], kEtherTypeIpv4);
    std::uint8_t* ip = &b[kIpOff];
    ip[0] = 0x45;  // version 4, IHL 5
    ip[1] = 0;     // TOS
    put16(ip + 2, static_cast<std::uint16_t>(total));
    put16(ip + 4, ip_id);
    put16(ip + 6, kIpDf);
    ip[8] = kIpv4DefaultTtl;
    ip[9] = proto;
    put32(ip + 12, a.src_ip);
    put32(ip + 16, a.dst_ip);
    put16(ip + 10, internet_checksum(ip, kIpv4HeaderLen));
    return b;
}

// The RFC 768 / 793 pseudo-header sum (source, destination, zero + protocol, L4 length), unfolded.
std::uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, std::uint8_t proto, std::size_t l4_len) {
    std::uint8_t ph[12];
    put32(ph, src);
    put32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = proto;
    put16(ph + 10, static_cast<std::uint16_t>(l4_len));
    return internet_checksum_add(0, ph, sizeof ph);
}

// Writes the L4 checksum at `field` (offset into b) of the L4 segment [l4, l4 + l4_len).
void fill_l4_checksum(std::vector<std::uint8_t>& b, std::size_t l4, std::size_t l4_len, std::size_t field,
                      Ipv4Address src, Ipv4Address dst, std::uint8_t proto, L4Checksum csum) {
    std::uint32_t ph = pseudo_header_sum(src, dst, proto, l4_len);
    put16(&b[field], 0);
    if (csum == L4Checksum::blank) {
        // The folded, uncomplemented pseudo-header sum (~csum_tcpudp_magic, as __tcp_v4_send_check).
        put16(&b[field], static_cast<std::uint16_t>(~internet_checksum_fold(ph)));
        return;
    }
    std::uint16_t c = internet_checksum_fold(internet_checksum_add(ph, &b[l4], l4_len));
    if (proto == kIpProtoUdp && c == 0) c = 0xffff;  // RFC 768: 0 means "no checksum"
    put16(&b[field], c);
}

std::size_t l4_checksum_field(std::uint8_t proto) { return proto == kIpProtoUdp ? 6 : 16; }

std::size_t tcp_header_len(const TcpFields& t) {
    return kTcpHeaderLen + (t.timestamps ? kTcpTimestampsOptionLen : 0);
}

void write_tcp_header(std::uint8_t* th, const PacketAddress& a, const TcpFields& t) {
    put16(th, a.src_port);
    put16(th + 2, a.dst_port);
    put32(th + 4, t.seq);
    put32(th + 8, t.ack);
    th[12] = static_cast<std::uint8_t>((tcp_header_len(t) / 4) << 4);
    th[13] = t.flags;
    put16(th + 14, t.window);
    put16(th + 16, 0);  // checksum, filled later
    put16(th + 18, 0);  // urgent pointer
    if (t.timestamps) {
        std::uint8_t* o = th + kTcpHeaderLen;
        o[0] = 1, o[1] = 1, o[2] = 8, o[3] = 10;  // NOP, NOP, TIMESTAMP (kind 8, length 10)
        put32(o + 4, t.tsval);
        put32(o + 8, t.tsecr);
    }
}

}  // namespace

const char* to_string(PacketStatus s) {
    switch (s) {
        case PacketStatus::ok:
            return "ok";
        case PacketStatus::truncated:
            return "truncated";
        case PacketStatus::not_ipv4:
            return "not_ipv4";
        case PacketStatus::bad_ip_header:
            return "bad_ip_header";
        case PacketStatus::bad_ip_checksum:
            return "bad_ip_checksum";
        case PacketStatus::fragment:
            return "fragment";
        case PacketStatus::unsupported_protocol:
            return "unsupported_protocol";
        case PacketStatus::bad_l4_header:
            return "bad_l4_header";
        case PacketStatus::bad_l4_checksum:
            return "bad_l4_checksum";
    }
    return "?";
}

EthernetFrame build_udp(const PacketAddress& a, std::uint16_t ip_id, const std::uint8_t* payload,
                        std::size_t len, L4Checksum csum) {
    EthernetFrame f;
    std::size_t l4_len = kUdpHeaderLen + len;
    f.bytes = l2l3(a, ip_id, kIpProtoUdp, l4_len);
    std::uint8_t* uh = &f.bytes[kL4Off];
    put16(uh, a.src_port);
    put16(uh + 2, a.dst_port);
    put16(uh + 4, static_cast<std::uint16_t>(l4_len));
    if (len) std::copy(payload, payload + len, uh + kUdpHeaderLen);
    fill_l4_checksum(f.bytes, kL4Off, l4_len, kL4Off + 6, a.src_ip, a.dst_ip, kIpProtoUdp, csum);
    f.csum_blank = csum == L4Checksum::blank;
    return f;
}

EthernetFrame build_tcp(const PacketAddress& a, std::uint16_t ip_id, const TcpFields& t,
                        const std::uint8_t* payload, std::size_t len, L4Checksum csum,
                        std::uint16_t gso_size) {
    bool gso = gso_size > 0 && len > gso_size;
    if (gso && csum != L4Checksum::blank)
        throw std::invalid_argument("a TCP GSO super-packet carries a blank checksum (CHECKSUM_PARTIAL)");
    EthernetFrame f;
    std::size_t hl = tcp_header_len(t), l4_len = hl + len;
    f.bytes = l2l3(a, ip_id, kIpProtoTcp, l4_len);
    write_tcp_header(&f.bytes[kL4Off], a, t);
    if (len) std::copy(payload, payload + len, &f.bytes[kL4Off + hl]);
    fill_l4_checksum(f.bytes, kL4Off, l4_len, kL4Off + 16, a.src_ip, a.dst_ip, kIpProtoTcp, csum);
    f.csum_blank = csum == L4Checksum::blank;
    if (gso) {
        f.gso_type = GsoType::tcpv4;
        f.gso_size = gso_size;
    }
    return f;
}

EthernetFrame build_icmp_echo(const PacketAddress& a, std::uint16_t ip_id, std::uint8_t type,
                              std::uint16_t id, std::uint16_t seq, const std::uint8_t* payload,
                              std::size_t len) {
    EthernetFrame f;
    std::size_t l4_len = kIcmpEchoHeaderLen + len;
    f.bytes = l2l3(a, ip_id, kIpProtoIcmp, l4_len);
    std::uint8_t* ih = &f.bytes[kL4Off];
    ih[0] = type;
    ih[1] = 0;  // code
    put16(ih + 4, id);
    put16(ih + 6, seq);
    if (len) std::copy(payload, payload + len, ih + kIcmpEchoHeaderLen);
    put16(ih + 2, internet_checksum(ih, l4_len));
    return f;
}

ParsedPacket parse_packet(const EthernetFrame& f) {
    ParsedPacket p;
    const auto& b = f.bytes;
    if (!f.has_header()) return p;  // truncated
    p.dst_mac = f.dst();
    p.src_mac = f.src();
    if (f.ethertype() != kEtherTypeIpv4) return p.status = PacketStatus::not_ipv4, p;
    if (b.size() < kIpOff + kIpv4HeaderLen) return p;  // truncated
    const std::uint8_t* ip = &b[kIpOff];
    if (ip[0] >> 4 != 4) return p.status = PacketStatus::not_ipv4, p;
    std::size_t ihl = static_cast<std::size_t>(ip[0] & 0xf) * 4;
    p.ip_total_len = get16(ip + 2);
    if (ihl < kIpv4HeaderLen || p.ip_total_len < ihl) return p.status = PacketStatus::bad_ip_header, p;
    if (b.size() < kIpOff + ihl || b.size() < kIpOff + p.ip_total_len) return p;  // truncated
    if (internet_checksum(ip, ihl) != 0) return p.status = PacketStatus::bad_ip_checksum, p;
    p.ip_id = get16(ip + 4);
    p.ttl = ip[8];
    p.protocol = ip[9];
    p.src_ip = get32(ip + 12);
    p.dst_ip = get32(ip + 16);
    std::uint16_t frag = get16(ip + 6);
    if ((frag & kIpMf) || (frag & kIpOffsetMask)) return p.status = PacketStatus::fragment, p;

    p.l4_offset = kIpOff + ihl;
    std::size_t l4_len = p.ip_total_len - ihl;  // bytes past the IP total length are padding
    const std::uint8_t* l4 = &b[p.l4_offset];
    bool trusted = f.data_validated || f.csum_blank;
    std::size_t hl = 0;
    switch (p.protocol) {
        case kIpProtoUdp: {
            if (l4_len < kUdpHeaderLen) return p.status = PacketStatus::bad_l4_header, p;
            p.src_port = get16(l4);
            p.dst_port = get16(l4 + 2);
            std::size_t ulen = get16(l4 + 4);
            // udp_rcv: a UDP length beyond the IP payload is dropped; a shorter one trims it.
            if (ulen < kUdpHeaderLen || ulen > l4_len) return p.status = PacketStatus::bad_l4_header, p;
            l4_len = ulen;
            hl = kUdpHeaderLen;
            if (get16(l4 + 6) == 0) trusted = true;  // RFC 768: no checksum was computed
            break;
        }
        case kIpProtoTcp: {
            if (l4_len < kTcpHeaderLen) return p.status = PacketStatus::bad_l4_header, p;
            p.src_port = get16(l4);
            p.dst_port = get16(l4 + 2);
            p.tcp.seq = get32(l4 + 4);
            p.tcp.ack = get32(l4 + 8);
            hl = static_cast<std::size_t>(l4[12] >> 4) * 4;
            p.tcp.flags = l4[13];
            p.tcp.window = get16(l4 + 14);
            if (hl < kTcpHeaderLen || hl > l4_len) return p.status = PacketStatus::bad_l4_header, p;
            // Options: only the timestamps option is read (tcp_parse_options, simplified).
            for (std::size_t o = kTcpHeaderLen; o < hl;) {
                std::uint8_t kind = l4[o];
                if (kind == 0) break;  // end of option list
                if (kind == 1) {       // NOP
                    ++o;
                    continue;
                }
                if (o + 1 >= hl || l4[o + 1] < 2 || o + l4[o + 1] > hl) break;  // malformed: stop
                if (kind == 8 && l4[o + 1] == 10) {
                    p.tcp.timestamps = true;
                    p.tcp.tsval = get32(l4 + o + 2);
                    p.tcp.tsecr = get32(l4 + o + 6);
                }
                o += l4[o + 1];
            }
            break;
        }
        case kIpProtoIcmp: {
            if (l4_len < kIcmpEchoHeaderLen) return p.status = PacketStatus::bad_l4_header, p;
            p.icmp_type = l4[0];
            p.icmp_code = l4[1];
            p.icmp_id = get16(l4 + 4);
            p.icmp_seq = get16(l4 + 6);
            hl = kIcmpEchoHeaderLen;
            trusted = f.data_validated;  // ICMP is never CHECKSUM_PARTIAL
            break;
        }
        default:
            return p.status = PacketStatus::unsupported_protocol, p;
    }
    p.payload_offset = p.l4_offset + hl;
    p.payload_len = l4_len - hl;
    if (!trusted) {
        std::uint32_t sum =
            p.protocol == kIpProtoIcmp ? 0 : pseudo_header_sum(p.src_ip, p.dst_ip, p.protocol, l4_len);
        if (internet_checksum_fold(internet_checksum_add(sum, l4, l4_len)) != 0)
            return p.status = PacketStatus::bad_l4_checksum, p;
        p.l4_checksum_verified = true;
    }
    p.status = PacketStatus::ok;
    return p;
}

bool complete_checksum(EthernetFrame& f) {
    if (!f.csum_blank || f.gso_type != GsoType::none) return false;
    EthernetFrame probe = f;  // parse as if trusted, to locate the L4 segment
    ParsedPacket p = parse_packet(probe);
    if (!p.ok() || (p.protocol != kIpProtoTcp && p.protocol != kIpProtoUdp)) return false;
    std::size_t l4_len = p.payload_offset + p.payload_len - p.l4_offset;
    std::size_t field = p.l4_offset + l4_checksum_field(p.protocol);
    // The field holds the pseudo-header sum: summing the segment over it gives the full sum.
    std::uint16_t c = internet_checksum_fold(internet_checksum_add(0, &f.bytes[p.l4_offset], l4_len));
    if (p.protocol == kIpProtoUdp && c == 0) c = 0xffff;
    put16(&f.bytes[field], c);
    f.csum_blank = false;
    return true;
}

std::vector<EthernetFrame> segment(const EthernetFrame& f, L4Checksum csum) {
    std::vector<EthernetFrame> out;
    EthernetFrame probe = f;
    probe.data_validated = true;  // the super-packet's checksum field is a pseudo-header sum
    ParsedPacket p = parse_packet(probe);
    if (f.gso_type == GsoType::none) {
        if (!p.ok()) return out;
        EthernetFrame one = f;
        if (p.protocol == kIpProtoTcp || p.protocol == kIpProtoUdp) {
            std::size_t l4_len = p.payload_offset + p.payload_len - p.l4_offset;
            fill_l4_checksum(one.bytes, p.l4_offset, l4_len, p.l4_offset + l4_checksum_field(p.protocol),
                             p.src_ip, p.dst_ip, p.protocol, csum);
            one.csum_blank = csum == L4Checksum::blank;
        }
        out.push_back(std::move(one));
        return out;
    }
    if (f.gso_type != GsoType::tcpv4 || f.gso_size == 0 || !p.ok() || p.protocol != kIpProtoTcp) return out;
    std::size_t hdr = p.payload_offset;  // Ethernet + IP + TCP headers, copied to every segment
    std::size_t ihl = p.l4_offset - kIpOff;
    std::size_t mss = f.gso_size, n = (p.payload_len + mss - 1) / mss;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t off = i * mss, len = std::min(mss, p.payload_len - off);
        EthernetFrame s;
        s.bytes.assign(f.bytes.begin(), f.bytes.begin() + static_cast<std::ptrdiff_t>(hdr));
        s.bytes.insert(s.bytes.end(), f.bytes.begin() + static_cast<std::ptrdiff_t>(hdr + off),
                       f.bytes.begin() + static_cast<std::ptrdiff_t>(hdr + off + len));
        std::uint8_t* ip = &s.bytes[kIpOff];
        put16(ip + 2, static_cast<std::uint16_t>(s.bytes.size() - kIpOff));
        put16(ip + 4, static_cast<std::uint16_t>(p.ip_id + i));  // inet_gso_segment: id++
        put16(ip + 10, 0);
        put16(ip + 10, internet_checksum(ip, ihl));
        std::uint8_t* th = &s.bytes[p.l4_offset];
        put32(th + 4, static_cast<std::uint32_t>(p.tcp.seq + off));
        std::uint8_t flags = p.tcp.flags;
        if (i + 1 < n) flags &= static_cast<std::uint8_t>(~(kTcpFin | kTcpPsh));  // tcp_gso_segment
        if (i > 0) flags &= static_cast<std::uint8_t>(~kTcpCwr);
        th[13] = flags;
        fill_l4_checksum(s.bytes, p.l4_offset, s.bytes.size() - p.l4_offset, p.l4_offset + 16, p.src_ip,
                         p.dst_ip, kIpProtoTcp, csum);
        s.csum_blank = csum == L4Checksum::blank;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace xensim
