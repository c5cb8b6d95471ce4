#include "frontends/net_payload.h"

#include <cstring>

#include "frontends/fio_job.h"  // crc32c

namespace xensim {

namespace {

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ull;

std::uint64_t splitmix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void put_be(std::uint8_t* p, std::uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * (n - 1 - i)));
}
std::uint64_t get_be(const std::uint8_t* p, unsigned n) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
}

std::uint32_t message_crc(const std::uint8_t* p, std::size_t len) {
    return crc32c(p + kPayloadHeaderLen, len - kPayloadHeaderLen, crc32c(p, 28));
}

}  // namespace

std::uint64_t pattern_key(std::uint64_t seed, std::uint32_t flow, std::uint64_t seq) {
    return splitmix64(splitmix64(seed ^ (std::uint64_t{flow} << 32 | 0x5a5a)) + seq * kGolden);
}

void fill_pattern(std::uint64_t key, std::uint64_t offset, std::uint8_t* out, std::size_t len) {
    std::uint64_t word = offset / 8, w = splitmix64(key + word * kGolden);
    unsigned byte = static_cast<unsigned>(offset % 8);
    for (std::size_t i = 0; i < len; ++i) {
        out[i] = static_cast<std::uint8_t>(w >> (8 * byte));
        if (++byte == 8) byte = 0, w = splitmix64(key + ++word * kGolden);
    }
}

bool check_pattern(std::uint64_t key, std::uint64_t offset, const std::uint8_t* p, std::size_t len) {
    std::uint64_t word = offset / 8, w = splitmix64(key + word * kGolden);
    unsigned byte = static_cast<unsigned>(offset % 8);
    for (std::size_t i = 0; i < len; ++i) {
        if (p[i] != static_cast<std::uint8_t>(w >> (8 * byte))) return false;
        if (++byte == 8) byte = 0, w = splitmix64(key + ++word * kGolden);
    }
    return true;
}

void write_message(std::uint8_t* out, std::size_t len, std::uint64_t seed, const PayloadHeader& h) {
    if (len < kPayloadHeaderLen) {
        fill_pattern(pattern_key(seed, h.flow, 0), 0, out, len);
        return;
    }
    put_be(out, kPayloadMagic, 4);
    put_be(out + 4, h.flow, 4);
    put_be(out + 8, h.seq, 8);
    put_be(out + 16, h.send_ns, 8);
    put_be(out + 24, len, 4);
    fill_pattern(pattern_key(seed, h.flow, h.seq), kPayloadHeaderLen, out + kPayloadHeaderLen,
                 len - kPayloadHeaderLen);
    put_be(out + 28, message_crc(out, len), 4);
}

PayloadCheck check_message(const std::uint8_t* p, std::size_t len, std::uint64_t seed, std::uint32_t flow) {
    PayloadCheck c;
    if (len < kPayloadHeaderLen) {
        if (check_pattern(pattern_key(seed, flow, 0), 0, p, len)) c.status = PayloadStatus::ok_short;
        return c;
    }
    if (get_be(p, 4) != kPayloadMagic || get_be(p + 24, 4) != len || get_be(p + 28, 4) != message_crc(p, len))
        return c;  // corrupt
    c.header.flow = static_cast<std::uint32_t>(get_be(p + 4, 4));
    c.header.seq = get_be(p + 8, 8);
    c.header.send_ns = get_be(p + 16, 8);
    c.status = c.header.flow == flow ? PayloadStatus::ok : PayloadStatus::misdelivered;
    return c;
}

}  // namespace xensim
