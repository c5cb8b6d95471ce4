// Ethernet frames as they travel between a guest's network stack, its driver, dom0 and the wire.
//
// The one vocabulary both sides of the network path share: frontends (netfront, the netperf-style
// workloads) and models (netback, dom0's bridge, the wire) exchange `EthernetFrame`s, while the
// rings between netfront and netback carry only what netif.h defines. A frame holds its bytes from
// the destination MAC on (no preamble, no FCS: what a NIC's DMA sees) and the offload metadata
// Linux keeps beside them in an sk_buff (ip_summed, gso_size/gso_type), which is what netif.h's
// flags and GSO extra info transport between domains.
//
// Facts used here: IEEE 802.3 framing (14-byte header, 60-byte minimum before the 4-byte FCS,
// 1500-byte MTU; on the wire each frame also takes an 8-byte preamble + SFD and a 12-byte
// inter-frame gap) and the Internet checksum of RFC 1071.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace xensim {

using MacAddress = std::array<std::uint8_t, 6>;

inline constexpr std::size_t kEthHeaderLen = 14;    // destination, source, ethertype
inline constexpr std::size_t kEthMinFrameLen = 60;  // without FCS; shorter frames are padded
inline constexpr std::size_t kEthMtu = 1500;        // payload bytes of a standard frame
inline constexpr std::size_t kEthMaxFrameLen = kEthHeaderLen + kEthMtu;  // 1514, without FCS
inline constexpr std::size_t kEthFcsLen = 4;
inline constexpr std::size_t kEthWireOverhead = 8 + 12 + kEthFcsLen;  // preamble+SFD, IFG, FCS

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr std::uint8_t kIpProtoTcp = 6;  // IANA protocol number (wire.h and net_packet.h)

inline constexpr MacAddress kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// The kind of a GSO super-packet (Linux SKB_GSO_TCPV4 / SKB_GSO_TCPV6; netif.h
// XEN_NETIF_GSO_TYPE_TCPV4 / _TCPV6).
enum class GsoType : std::uint8_t { none, tcpv4, tcpv6 };

struct EthernetFrame {
    std::vector<std::uint8_t> bytes;  // from the destination MAC; no FCS
    // CHECKSUM_PARTIAL: the L4 checksum field holds only the pseudo-header sum and is to be filled
    // in by whoever sends the frame on (netif.h NETTXF_csum_blank / NETRXF_csum_blank).
    bool csum_blank = false;
    // CHECKSUM_UNNECESSARY: the checksum was verified or is known good (NETTXF_data_validated /
    // NETRXF_data_validated).
    bool data_validated = false;
    GsoType gso_type = GsoType::none;
    std::uint16_t gso_size = 0;  // MSS of a GSO super-packet; 0 for a single frame

    std::size_t size() const { return bytes.size(); }
    bool has_header() const { return bytes.size() >= kEthHeaderLen; }
    MacAddress dst() const { return mac_at(0); }
    MacAddress src() const { return mac_at(6); }
    std::uint16_t ethertype() const {
        return has_header() ? static_cast<std::uint16_t>(bytes[12] << 8 | bytes[13]) : 0;
    }

  private:
    MacAddress mac_at(std::size_t off) const {
        MacAddress m{};
        if (bytes.size() >= off + 6)
            for (std::size_t i = 0; i < 6; ++i) m[i] = bytes[off + i];
        return m;
    }
};

inline bool is_multicast(const MacAddress& m) { return (m[0] & 1) != 0; }  // broadcast included

inline std::string to_string(const MacAddress& m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

// "aa:bb:cc:dd:ee:ff" (hex digits in either case); nullopt for anything else.
inline std::optional<MacAddress> parse_mac(const std::string& s) {
    if (s.size() != 17) return std::nullopt;
    MacAddress m{};
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < 6; ++i) {
        int hi = hex(s[3 * i]), lo = hex(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':')) return std::nullopt;
        m[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return m;
}

// RFC 1071 one's-complement sum of `len` bytes added to `sum` (not folded, not complemented), so
// a pseudo-header and a payload can be summed in pieces (every piece but the last of even length);
// fold with internet_checksum_fold.
inline std::uint32_t internet_checksum_add(std::uint32_t sum, const std::uint8_t* p, std::size_t len) {
    std::uint64_t s = sum;
    std::size_t i = 0;
    for (; i + 1 < len; i += 2) s += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (i < len) s += static_cast<std::uint32_t>(p[i] << 8);
    while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
    return static_cast<std::uint32_t>(s);
}

// Folds a sum to 16 bits and complements it: the value that goes in a checksum field (a correct
// packet summed including its checksum field folds to 0).
inline std::uint16_t internet_checksum_fold(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

inline std::uint16_t internet_checksum(const std::uint8_t* p, std::size_t len) {
    return internet_checksum_fold(internet_checksum_add(0, p, len));
}

}  // namespace xensim
