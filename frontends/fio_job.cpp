#include "frontends/fio_job.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "sim/core/hex.h"

namespace xensim {

// Verify header layout, little-endian at the start of every written block (fio's verify_header
// carries magic, verify_type, len, rand_seed, numberio, offset and a header crc32c likewise):
//    0 u16 magic (0xacca)     2 u16 verify_type (1 = crc32c)   4 u32 len
//    8 u64 offset            16 u64 numberio (Io::seq)         24 u64 rand_seed (payload pattern)
//   32 u32 job               36 u32 crc32c of bytes [48, len)  40 u32 crc32c of bytes [0, 40)
//   44 u32 zero              48 payload: rand_seed's Rng stream, 8 bytes per next()
namespace {

constexpr std::uint16_t kVerifyTypeCrc32c = 1;
constexpr std::size_t kOffLen = 4, kOffOffset = 8, kOffNumberio = 16, kOffSeed = 24, kOffJob = 32,
                      kOffDataCrc = 36, kOffHdrCrc = 40;

void put_le(std::uint8_t* p, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_le(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

// SplitMix64's finalizer: a hash to derive independent seeds, not a source of randomness.
std::uint64_t mix64(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
std::uint64_t derive(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
    std::uint64_t h = mix64(seed);
    for (std::uint64_t v : {a, b, c}) h = mix64(h ^ mix64(v));
    return h;
}

struct Crc32cTable {
    std::uint32_t t[256];
    Crc32cTable() {
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[i] = c;
        }
    }
};

[[noreturn]] void panic(const char* what) {
    std::fprintf(stderr, "FioJob: internal error: %s\n", what);
    std::abort();
}

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("fio job: " + what); }

}  // namespace

std::uint32_t crc32c(const std::uint8_t* data, std::size_t len, std::uint32_t crc) {
    static const Crc32cTable table;
    crc = ~crc;
    for (std::size_t i = 0; i < len; ++i) crc = table.t[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

FioJobParams::Rw FioJobParams::parse_rw(std::string_view s) {
    if (s == "read") return Rw::read;
    if (s == "write") return Rw::write;
    if (s == "randread") return Rw::randread;
    if (s == "randwrite") return Rw::randwrite;
    if (s == "rw" || s == "readwrite") return Rw::rw;
    if (s == "randrw") return Rw::randrw;
    bad("unknown rw '" + std::string(s) + "' (read, write, randread, randwrite, rw, readwrite, randrw)");
}

FioJobParams::Verify FioJobParams::parse_verify(std::string_view s) {
    if (s == "0" || s == "none") return Verify::none;
    if (s == "crc32c" || s == "crc32c-intel") return Verify::crc32c;
    bad("verify '" + std::string(s) + "' is not supported (none, crc32c)");
}

FioJobParams::Sync FioJobParams::parse_sync(std::string_view s) {
    if (s == "0" || s == "none") return Sync::none;
    if (s == "1" || s == "sync") return Sync::sync;
    if (s == "dsync") return Sync::dsync;
    bad("unknown sync '" + std::string(s) + "' (none, sync, dsync)");
}

const char* to_string(FioJobParams::Rw rw) {
    switch (rw) {
        case FioJobParams::Rw::read:
            return "read";
        case FioJobParams::Rw::write:
            return "write";
        case FioJobParams::Rw::randread:
            return "randread";
        case FioJobParams::Rw::randwrite:
            return "randwrite";
        case FioJobParams::Rw::rw:
            return "rw";
        case FioJobParams::Rw::randrw:
            return "randrw";
    }
    return "?";
}

FioJob::FioJob(const FioJobParams& params, unsigned job_index, std::uint64_t device_bytes)
    : p_(params),
      job_(job_index),
      offset_rng_(derive(params.seed, job_index, 0)),
      rwmix_rng_(derive(params.seed, job_index, 1)) {
    using std::to_string;
    if (device_bytes == 0) bad("device size is 0");
    if (p_.bs == 0 || p_.bs % 512 != 0)
        bad("bs (" + to_string(p_.bs) + ") must be a non-zero multiple of 512");
    if (p_.iodepth == 0) bad("iodepth must be at least 1");
    if (p_.numjobs == 0) bad("numjobs must be at least 1");
    if (job_index >= p_.numjobs)
        bad("job index " + to_string(job_index) + " out of range for numjobs=" + to_string(p_.numjobs));
    if (p_.rwmixread > 100) bad("rwmixread (" + to_string(p_.rwmixread) + ") must be 0..100");
    if (p_.offset % 512 != 0) bad("offset (" + to_string(p_.offset) + ") must be a multiple of 512");
    if (p_.offset_increment % 512 != 0)
        bad("offset_increment (" + to_string(p_.offset_increment) + ") must be a multiple of 512");
    if (p_.time_based && p_.runtime_ns == 0) bad("time_based needs a runtime");

    std::uint64_t start = p_.offset;
    if (job_index > 0 && p_.offset_increment > device_bytes / job_index)
        start = device_bytes;
    else
        start += std::uint64_t{job_index} * p_.offset_increment;
    if (start < p_.offset || start >= device_bytes)
        bad("job " + to_string(job_index) + " region start (offset " + to_string(p_.offset) +
            " + job * offset_increment " + to_string(p_.offset_increment) + ") is not inside the device (" +
            to_string(device_bytes) + " bytes)");
    std::uint64_t size = p_.size == 0 ? device_bytes - start : p_.size;
    if (size > device_bytes - start)
        bad("job " + to_string(job_index) + " region [" + to_string(start) + ", +" + to_string(size) +
            ") exceeds the device (" + to_string(device_bytes) + " bytes)");
    if (size < p_.bs)
        bad("bs (" + to_string(p_.bs) + ") is larger than the region size (" + to_string(size) + ")");
    region_start_ = start;
    blocks_ = size / p_.bs;

    using Rw = FioJobParams::Rw;
    random_ = p_.rw == Rw::randread || p_.rw == Rw::randwrite || p_.rw == Rw::randrw;
    mixed_ = p_.rw == Rw::rw || p_.rw == Rw::randrw;
    use_map_ = random_ && !p_.norandommap;
    if (use_map_) random_map_ = FioRandomMap::for_region(blocks_);
}

bool FioJob::workload_over(std::uint64_t now_ns) const {
    if (p_.runtime_ns != 0 && now_ns - start_ns_ >= p_.runtime_ns) return true;
    if (p_.number_ios != 0 && workload_ios_ >= p_.number_ios) return true;
    return !p_.time_based && workload_ios_ >= blocks_;
}

bool FioJob::pick_write() {
    using Rw = FioJobParams::Rw;
    if (mixed_) return rwmix_rng_.below(100) >= p_.rwmixread;
    return p_.rw == Rw::write || p_.rw == Rw::randwrite;
}

std::uint64_t FioJob::next_random_block() {
    while (draws_count_ < kDrawsAhead) {
        std::uint64_t b = offset_rng_.below(blocks_);
        draws_[(draws_first_ + draws_count_++) % kDrawsAhead] = b;
        random_map_.prefetch(b);
    }
    std::uint64_t b = draws_[draws_first_];
    draws_first_ = (draws_first_ + 1) % kDrawsAhead;
    --draws_count_;
    return b;
}

std::uint64_t FioJob::pick_block() {
    if (!random_) return workload_ios_ % blocks_;
    if (!use_map_) return offset_rng_.below(blocks_);  // norandommap
    std::uint64_t b = next_random_block();
    if (random_map_.used() == blocks_) random_map_.clear();  // time_based: a new pass over the region
    return random_map_.take(b);
}

FioRandomMap::FioRandomMap(std::uint64_t blocks, bool sparse)
    : blocks_(blocks), words_((blocks + 63) / 64), sparse_(sparse) {
    if (!sparse_) dense_.assign(words_, 0);
}

std::uint64_t FioRandomMap::word(std::uint64_t w) const {
    if (!sparse_) return dense_[w];
    auto it = sparse_words_.find(w);
    return it == sparse_words_.end() ? 0 : it->second;
}

void FioRandomMap::prefetch(std::uint64_t b) const {
    if (!sparse_) __builtin_prefetch(&dense_[b / 64]);
}

void FioRandomMap::clear() {
    std::fill(dense_.begin(), dense_.end(), 0);
    sparse_words_.clear();
    used_ = 0;
}

std::uint64_t FioRandomMap::free_from(std::uint64_t from) const {
    for (std::uint64_t w = from / 64; w < words_; ++w) {
        std::uint64_t bits = ~word(w);
        if (w == from / 64) bits &= ~0ull << (from % 64);
        if (w == words_ - 1 && blocks_ % 64 != 0) bits &= (1ull << (blocks_ % 64)) - 1;
        if (bits != 0) return w * 64 + static_cast<std::uint64_t>(__builtin_ctzll(bits));
    }
    return blocks_;
}

// Like fio's axmap: take the random block, or the next free one after it (wrapping).
std::uint64_t FioRandomMap::take(std::uint64_t b) {
    std::uint64_t f = free_from(b);
    if (f == blocks_) f = free_from(0);
    if (f == blocks_) panic("random map full with blocks left");
    (sparse_ ? sparse_words_[f / 64] : dense_[f / 64]) |= 1ull << (f % 64);
    ++used_;
    return f;
}

FioJob::Io FioJob::issue(std::uint64_t offset, bool write, bool verify_read) {
    Io io;
    io.offset = offset;
    io.length = p_.bs;
    io.write = write;
    io.seq = next_seq_++;
    io.verify_read = verify_read;
    InFlight f{io, false};
    for (auto& other : in_flight_) {
        if (other.io.offset != offset) continue;
        if (write) other.tainted = true;  // a read may see either content; writes may land in any order
        if (other.io.write) f.tainted = true;
    }
    in_flight_.push_back(f);
    ++c_.ios;
    if (write) {
        ++c_.writes;
        c_.bytes_written += io.length;
    } else {
        ++c_.reads;
        c_.bytes_read += io.length;
        if (verify_read) ++c_.verify_reads;
    }
    return io;
}

std::optional<FioJob::Io> FioJob::next(std::uint64_t now_ns) {
    if (!started_) {
        started_ = true;
        start_ns_ = now_ns;
    }
    if (phase_ == Phase::done || in_flight_.size() >= p_.iodepth) return std::nullopt;
    if (phase_ == Phase::workload) {
        if (!workload_over(now_ns)) {
            bool write = pick_write();
            std::uint64_t block = pick_block();
            ++workload_ios_;
            return issue(region_start_ + block * p_.bs, write, false);
        }
        bool verify = p_.verify != FioJobParams::Verify::none && p_.do_verify && c_.writes > 0;
        phase_ = verify ? Phase::drain : Phase::done;
    }
    if (phase_ == Phase::drain) {
        for (const auto& f : in_flight_)
            if (f.io.write) return std::nullopt;  // verify only what has landed
        for (const auto& [offset, w] : written_)
            if (w.known) verify_list_.push_back(offset);
        phase_ = Phase::verify;
    }
    if (phase_ == Phase::verify) {
        if (verify_pos_ < verify_list_.size()) return issue(verify_list_[verify_pos_++], false, true);
        phase_ = Phase::done;
    }
    return std::nullopt;
}

std::uint64_t FioJob::pattern_seed(std::uint64_t offset, std::uint64_t seq) const {
    return derive(p_.seed, job_, offset, seq);
}

void FioJob::fill(const Io& io, std::uint8_t* buf) const {
    if (!io.write || io.length != p_.bs) panic("fill() of an I/O that is not one of this job's writes");
    std::uint64_t seed = pattern_seed(io.offset, io.seq);
    Rng pattern(seed);
    for (std::uint32_t i = kHeaderBytes; i < io.length; i += 8) put_le(buf + i, pattern.next(), 8);
    put_le(buf, kHeaderMagic, 2);
    put_le(buf + 2, kVerifyTypeCrc32c, 2);
    put_le(buf + kOffLen, io.length, 4);
    put_le(buf + kOffOffset, io.offset, 8);
    put_le(buf + kOffNumberio, io.seq, 8);
    put_le(buf + kOffSeed, seed, 8);
    put_le(buf + kOffJob, job_, 4);
    put_le(buf + kOffDataCrc, crc32c(buf + kHeaderBytes, io.length - kHeaderBytes), 4);
    put_le(buf + kOffHdrCrc, crc32c(buf, kOffHdrCrc), 4);
    put_le(buf + 44, 0, 4);
}

std::string FioJob::fail(const Io& io, const std::string& what) {
    std::string msg = "job " + std::to_string(job_) + " block at offset " + std::to_string(io.offset) +
                      " (length " + std::to_string(io.length) + "): " + what;
    ++c_.verify_failures;
    if (first_failure_.empty()) first_failure_ = msg;
    return msg;
}

std::string FioJob::content_problem(std::uint64_t offset, const std::uint8_t* buf, std::uint64_t seq) const {
    using std::to_string;
    const std::uint32_t length = p_.bs;
    std::uint64_t magic = get_le(buf, 2);
    if (magic != kHeaderMagic)
        return ("bad magic " + hex_string(magic) + ", wanted " + hex_string(kHeaderMagic));
    std::uint64_t hdr_crc = get_le(buf + kOffHdrCrc, 4), hdr_calc = crc32c(buf, kOffHdrCrc);
    if (hdr_crc != hdr_calc)
        return ("header checksum mismatch (crc32c stored " + hex_string(hdr_crc) + ", computed " +
                hex_string(hdr_calc) + ")");
    std::uint64_t len = get_le(buf + kOffLen, 4);
    if (len != length) return ("header length " + to_string(len) + " != " + to_string(length));
    std::uint64_t off = get_le(buf + kOffOffset, 8);
    if (off != offset) return ("header offset " + to_string(off) + " != " + to_string(offset));
    std::uint64_t job = get_le(buf + kOffJob, 4);
    if (job != job_) return ("header job " + to_string(job) + " != " + to_string(job_));
    std::uint64_t data_crc = get_le(buf + kOffDataCrc, 4),
                  data_calc = crc32c(buf + kHeaderBytes, length - kHeaderBytes);
    if (data_crc != data_calc)
        return ("data checksum mismatch (crc32c stored " + hex_string(data_crc) + ", computed " +
                hex_string(data_calc) + ")");
    std::uint64_t numberio = get_le(buf + kOffNumberio, 8);
    if (numberio != seq)
        return ("stale data: header numberio " + to_string(numberio) +
                " != last completed write's numberio " + to_string(seq));
    return "";
}

std::string FioJob::check(const Io& io, const std::uint8_t* buf) {
    using std::to_string;
    if (io.write || io.length != p_.bs) panic("check() of an I/O that is not one of this job's reads");
    for (const auto& f : in_flight_) {
        if (f.io.seq == io.seq && f.tainted) {
            ++c_.unverified;  // raced a write to the same block: either content is legal
            return "";
        }
    }
    auto it = written_.find(io.offset);
    if (it == written_.end() || !it->second.known) {
        ++c_.unverified;  // fio verifies only what it wrote
        return "";
    }
    std::string problem = content_problem(io.offset, buf, it->second.seq);
    if (!problem.empty()) return fail(io, problem);
    ++c_.verified;
    return "";
}

std::vector<std::uint64_t> FioJob::acknowledged_blocks() const {
    std::vector<std::uint64_t> out;
    for (const auto& [offset, w] : written_)
        if (w.known) out.push_back(offset);
    return out;
}

std::string FioJob::audit(std::uint64_t offset, const std::uint8_t* buf) const {
    auto it = written_.find(offset);
    if (it == written_.end() || !it->second.known) return "";
    std::string problem = content_problem(offset, buf, it->second.seq);
    return problem.empty() ? ""
                           : "job " + std::to_string(job_) + " block at offset " + std::to_string(offset) +
                                 ": " + problem;
}

void FioJob::failed(const Io& io) {
    for (auto f = in_flight_.begin(); f != in_flight_.end(); ++f) {
        if (f->io.seq != io.seq) continue;
        // A write that failed may or may not have reached the medium: the block's content is
        // unknown from now on (until the next successful write).
        if (f->io.write) written_[f->io.offset] = Written{f->io.seq, false};
        in_flight_.erase(f);
        return;
    }
    panic("failed() of an I/O that is not in flight");
}

void FioJob::completed(const Io& io) {
    for (auto f = in_flight_.begin(); f != in_flight_.end(); ++f) {
        if (f->io.seq != io.seq) continue;
        if (f->io.write) written_[f->io.offset] = Written{f->io.seq, !f->tainted};
        *f = in_flight_.back();  // order does not matter (every use scans all): O(1) removal
        in_flight_.pop_back();
        return;
    }
    panic("completed() of an I/O that is not in flight");
}

}  // namespace xensim
