// The application payload of the netperf-style workloads: what a message carries so that its
// receiver can prove it arrived intact, from the right flow, in order, and when it was sent.
//
// Two forms, both a pure function of (seed, flow, sequence number / stream offset), so two runs
// with the same seed produce the same bytes:
//
//   * Messages (UDP datagrams, ICMP echo data) of at least kPayloadHeaderLen bytes open with a
//     32-byte header (big-endian):
//         0 u32 magic 0x78736e70 ("xsnp")   4 u32 flow id          8 u64 sequence number
//        16 u64 send time, ns              24 u32 message length  28 u32 CRC-32C of bytes [0, 28)
//                                                                        followed by [32, length)
//     followed by the fill pattern of key pattern_key(seed, flow, seq) from pattern offset 32. The
//     receiver checks magic, length and CRC (CRC-32C, Castagnoli, as fio's verify=crc32c: it
//     catches every 1-, 2- and 3-bit error and all burst errors up to 32 bits), then the flow id
//     (another flow's message is "misdelivered", not corrupt). It does not need the seed.
//   * Shorter messages (netperf's request/response default is 1 byte) have no room for a header:
//     they are the pattern of key pattern_key(seed, flow, 0) from offset 0, checked byte for byte
//     by a receiver that knows the seed; they carry no sequence number or send time.
//   * A TCP byte stream is the pattern of key pattern_key(seed, flow, 0) at each byte's stream
//     offset, so the receiver checks every byte exactly wherever segments were cut or merged
//     (a check stronger than any checksum, and indifferent to GSO/GRO boundaries).
//
// The pattern: byte o of key k is byte (o mod 8) (little-endian) of splitmix64(k + (o / 8) *
// 0x9e3779b97f4a7c15), the SplitMix64 finalizer of sim/core/rng.h's seeding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xensim {

inline constexpr std::uint32_t kPayloadMagic = 0x78736e70;  // "xsnp"
inline constexpr std::size_t kPayloadHeaderLen = 32;

struct PayloadHeader {
    std::uint32_t flow = 0;
    std::uint64_t seq = 0;
    std::uint64_t send_ns = 0;
};

std::uint64_t pattern_key(std::uint64_t seed, std::uint32_t flow, std::uint64_t seq);
// Writes pattern bytes [offset, offset + len) of `key` to out.
void fill_pattern(std::uint64_t key, std::uint64_t offset, std::uint8_t* out, std::size_t len);
// True when p holds pattern bytes [offset, offset + len) of `key`.
bool check_pattern(std::uint64_t key, std::uint64_t offset, const std::uint8_t* p, std::size_t len);

// Writes a message of `len` bytes (either form above) to out.
void write_message(std::uint8_t* out, std::size_t len, std::uint64_t seed, const PayloadHeader& h);

enum class PayloadStatus : std::uint8_t {
    ok,            // header form, CRC good, flow as expected
    ok_short,      // short form, every byte as the pattern says
    corrupt,       // bad magic, length or CRC, or a short message off the pattern
    misdelivered,  // intact, but another flow's
};
struct PayloadCheck {
    PayloadStatus status = PayloadStatus::corrupt;
    PayloadHeader header;  // valid when status is ok or misdelivered
    bool good() const { return status == PayloadStatus::ok || status == PayloadStatus::ok_short; }
};
PayloadCheck check_message(const std::uint8_t* p, std::size_t len, std::uint64_t seed, std::uint32_t flow);

}  // namespace xensim
