// FioJob: the I/O generator and data verifier of the fio-style block workload, as plain C++.
//
// The problem. A PV block study needs a guest that issues a realistic stream of block I/O (fio's
// rw / bs / iodepth / numjobs / size / offset / number_ios / runtime / rwmixread) and proves that
// every byte written through blkfront -> ring -> blkback -> storage comes back intact. This class
// decides *what* to issue next and *what a block must contain*; the workload around it decides
// *when* (time, vCPUs, grants, rings). It has no SystemC and no Xen: tests drive it directly.
//
// Use. Per job (numjobs jobs, job_index 0..numjobs-1, spread over vCPUs by the caller):
//     while (auto io = job.next(now)) { if (io->write) job.fill(*io, buf); submit(*io, buf); }
//     on completion: if (!io.write) report(job.check(io, buf));   then job.completed(io);
// next() returns nullopt when nothing may be issued now: iodepth I/Os are in flight, the job
// waits for its writes to complete before its verify phase, or the job is finished().
//
// fio semantics followed (fio HOWTO, "Job description" / "I/O type" / "Block size" / "I/O size" /
// "Verification"; fio's verify.h for the header; fio commit "Allow 'norandommap' with verify"):
//   * rw: read, write (sequential), randread, randwrite, rw (sequential mixed), randrw (random mixed).
//     Mixed jobs pick each I/O's direction from a separate random stream: read when below(100) <
//     rwmixread (fio's rwmix_state).
//   * The job's region is [offset + job_index * offset_increment, + size); size 0 is "the rest of
//     the device from there" (fio's default). As in fio, numjobs clones share the same region
//     unless offset_increment is set. I/Os are bs long at bs-aligned positions relative to the
//     region start; a trailing partial block is never touched.
//   * The job ends when size bytes have been transferred (sequential: one pass; random: with the
//     random map, every block exactly once, in random order -- fio's default; with norandommap,
//     size/bs uniformly random blocks, repeats allowed), or earlier when number_ios I/Os have been
//     issued or runtime has elapsed since the first next(). number_ios never extends the job.
//     With time_based, size does not end the job: sequential wraps to the region start, the
//     random map is cleared and refilled, until runtime (which time_based then requires). The
//     random map is FioRandomMap: sparse beyond 2^26 blocks, so its host memory follows the I/Os.
//   * randrepeat: the streams are a pure function of (seed, job_index), different for each job.
//   * verify: each written block carries a header {magic 0xacca, verify_type, len, offset,
//     numberio, rand_seed, job} with a crc32c over the header and a crc32c over the payload; the
//     payload is a pseudo-random pattern from rand_seed. After the write phase (do_verify), every
//     block whose last write is known is read back once, in offset order, and checked against its
//     last completed write. A read of a block never written is not checked ("fio verifies only
//     what it wrote").
//
// Deviations from fio (fidelity limits):
//   * Workload reads of mixed jobs (rw, randrw) are checked inline against the block's last
//     completed write as well -- the issue asks for it; fio checks only in its verify phase.
//   * One header per I/O (fio's verify_interval = bs); verify=md5 and the other fio checksums are
//     not provided, only crc32c (Castagnoli, the same as fio's verify=crc32c).
//   * The verify phase is not limited by runtime or number_ios.
//   * Races are never guessed: a read that overlapped a write to the same block, and a block whose
//     writes overlapped each other (possible with norandommap or time_based at iodepth > 1), are
//     left unchecked and counted as unverified; fio disables its numberio check in that case.
//   * bs is a single value (no bsrange / bssplit); no offset_align, zones, or rw=...:<nr>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/rng.h"

namespace xensim {

struct FioJobParams {
    enum class Rw { read, write, randread, randwrite, rw, randrw };
    enum class Verify { none, crc32c };
    // fio's sync: how the job opens the raw device for its writes, none, O_SYNC (sync=1) or O_DSYNC.
    // Every job here is direct=1 (O_DIRECT, no page cache), so both make each write a REQ_FUA write
    // (docs/ide-register-sequence.md §7); the workload, not this class, acts on it.
    enum class Sync { none, sync, dsync };

    Rw rw = Rw::randread;
    std::uint32_t bs = 4096;             // bytes per I/O; non-zero multiple of 512
    unsigned iodepth = 1;                // I/Os in flight at most, per job
    unsigned numjobs = 1;                // clones of this job (job_index 0..numjobs-1)
    std::uint64_t size = 0;              // bytes of the region per job; 0: device end - region start
    std::uint64_t offset = 0;            // bytes; region start of job 0; multiple of 512
    std::uint64_t offset_increment = 0;  // bytes; job i's region starts at offset + i * this
    std::uint64_t number_ios = 0;        // per job; 0: no limit (never extends past size)
    std::uint64_t runtime_ns = 0;        // 0: no limit; from the job's first next()
    bool time_based = false;             // keep going (wrap) until runtime_ns
    unsigned rwmixread = 50;             // percent reads of rw / randrw
    bool norandommap = false;            // random offsets may repeat and skip blocks
    Verify verify = Verify::none;
    Sync sync = Sync::none;
    bool do_verify = true;   // run the read-back verify phase after the writes
    std::uint64_t seed = 1;  // randrepeat: same seed, same streams

    // fio's spellings: "randrw", "readwrite" (= rw), "crc32c" ...; throw std::invalid_argument.
    static Rw parse_rw(std::string_view s);
    static Verify parse_verify(std::string_view s);
    static Sync parse_sync(std::string_view s);  // "none" / "0", "sync" / "1", "dsync"
};

const char* to_string(FioJobParams::Rw rw);

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as fio's verify=crc32c and iSCSI.
std::uint32_t crc32c(const std::uint8_t* data, std::size_t len, std::uint32_t crc = 0);

// fio's random map (axmap): a bit per block of the region, set when the block is used this pass.
// take(b) takes block b, or the first free block after it, wrapping to the start, so a random job
// touches every block exactly once per pass. Dense (a word per 64 blocks, allocated up front) for
// up to kDenseBlocks blocks; beyond, only the words holding a used block are stored, so host
// memory follows the I/Os issued (about 50 bytes per I/O at worst), not the region's size: the
// schema's largest disk (2^40 sectors at bs=512, a 16 GiB bitmap dense) costs nothing until used.
// Both forms hold the same bits, so take() answers the same and the I/O sequence does not depend on
// the form.
class FioRandomMap {
  public:
    static constexpr std::uint64_t kDenseBlocks = std::uint64_t{1} << 26;  // an 8 MiB bitmap

    FioRandomMap() = default;
    FioRandomMap(std::uint64_t blocks, bool sparse);
    static FioRandomMap for_region(std::uint64_t blocks) { return {blocks, blocks > kDenseBlocks}; }

    std::uint64_t take(std::uint64_t b);   // precondition: b < blocks() and used() < blocks()
    void clear();                          // a new pass
    void prefetch(std::uint64_t b) const;  // the word take(b) looks at first
    std::uint64_t blocks() const { return blocks_; }
    std::uint64_t used() const { return used_; }
    bool sparse() const { return sparse_; }
    std::size_t words_held() const { return sparse_ ? sparse_words_.size() : dense_.size(); }

  private:
    std::uint64_t word(std::uint64_t w) const;
    std::uint64_t free_from(std::uint64_t from) const;  // blocks_ when none at or after `from`

    std::uint64_t blocks_ = 0, words_ = 0, used_ = 0;
    bool sparse_ = false;
    std::vector<std::uint64_t> dense_;
    std::unordered_map<std::uint64_t, std::uint64_t> sparse_words_;  // word index -> word, never 0
};

class FioJob {
  public:
    static constexpr std::uint16_t kHeaderMagic = 0xacca;  // fio's FIO_HDR_MAGIC
    static constexpr std::uint32_t kHeaderBytes = 48;      // layout in fio_job.cpp

    struct Io {
        std::uint64_t offset = 0;  // bytes from the device start
        std::uint32_t length = 0;  // bytes (= bs)
        bool write = false;
        std::uint64_t seq = 0;     // this job's issue number (fio's numberio), from 0
        bool verify_read = false;  // issued by the verify phase
    };

    struct Counters {
        std::uint64_t ios = 0, reads = 0, writes = 0;  // issued
        std::uint64_t bytes_read = 0, bytes_written = 0;
        std::uint64_t verify_reads = 0;  // of `reads`, issued by the verify phase
        std::uint64_t verified = 0;      // reads checked and found good
        std::uint64_t unverified = 0;    // reads not checked: block never written, or raced a write
        std::uint64_t verify_failures = 0;
    };

    // Throws std::invalid_argument naming the offending parameter.
    FioJob(const FioJobParams& params, unsigned job_index, std::uint64_t device_bytes);

    // The next I/O to issue at `now_ns`, or nullopt (see the opening comment).
    std::optional<Io> next(std::uint64_t now_ns);
    // True once the job will issue nothing more (in-flight I/Os may still need completed()).
    bool finished() const { return phase_ == Phase::done; }
    std::size_t in_flight() const { return in_flight_.size(); }

    // Writes `io.length` bytes of this write's content (header, pattern, checksums) into buf.
    void fill(const Io& io, std::uint8_t* buf) const;
    // Checks a read's `io.length` bytes before completed(io): "" when good or not checkable, else
    // a message naming the job and block. Counts verified / unverified / verify_failures; keeps
    // the first failure.
    std::string check(const Io& io, const std::uint8_t* buf);
    // An issued I/O finished. A write's content becomes what later reads of the block must see.
    void completed(const Io& io);
    // An issued I/O finished with an error: a write leaves its block's content unknown.
    void failed(const Io& io);

    // After the run: the blocks whose last write completed successfully, and a check of a block's
    // content (read from the medium by whoever audits) against that write: "" when it matches.
    // Counts nothing (the audit is not part of the job).
    std::vector<std::uint64_t> acknowledged_blocks() const;
    std::string audit(std::uint64_t offset, const std::uint8_t* buf) const;

    const Counters& counters() const { return c_; }
    const std::string& first_failure() const { return first_failure_; }
    std::uint64_t region_start() const { return region_start_; }
    std::uint64_t region_blocks() const { return blocks_; }
    unsigned job_index() const { return job_; }

  private:
    enum class Phase { workload, drain, verify, done };
    struct InFlight {
        Io io;
        bool tainted = false;  // read: a write to its block overlapped it; write: another write did
    };
    // What a block holds after its last completed write; known == false after overlapping writes.
    struct Written {
        std::uint64_t seq = 0;
        bool known = false;
    };

    bool workload_over(std::uint64_t now_ns) const;
    std::uint64_t pick_block();
    std::uint64_t next_random_block();
    bool pick_write();
    Io issue(std::uint64_t offset, bool write, bool verify_read);
    std::uint64_t pattern_seed(std::uint64_t offset, std::uint64_t seq) const;
    std::string fail(const Io& io, const std::string& what);
    // Why buf is not the content of the write `seq` at offset; "" when it is.
    std::string content_problem(std::uint64_t offset, const std::uint8_t* buf, std::uint64_t seq) const;

    FioJobParams p_;
    unsigned job_;
    std::uint64_t region_start_ = 0;
    std::uint64_t blocks_ = 0;
    bool random_ = false, mixed_ = false;
    Rng offset_rng_, rwmix_rng_;

    Phase phase_ = Phase::workload;
    bool started_ = false;
    std::uint64_t start_ns_ = 0;
    std::uint64_t workload_ios_ = 0;  // issued by the workload phase; ends it at blocks_ unless time_based
    std::uint64_t next_seq_ = 0;
    bool use_map_ = false;  // random without norandommap
    FioRandomMap random_map_;
    // offset_rng_ draws taken a few picks early, so the map word each one probes can be prefetched
    // (the map is too large to stay in cache); the draws come out in the same order.
    static constexpr unsigned kDrawsAhead = 8;
    std::uint64_t draws_[kDrawsAhead] = {};
    unsigned draws_first_ = 0, draws_count_ = 0;

    std::vector<InFlight> in_flight_;           // at most iodepth: linear scans are cheap
    std::map<std::uint64_t, Written> written_;  // block offset -> last completed write
    std::vector<std::uint64_t> verify_list_;
    std::size_t verify_pos_ = 0;

    Counters c_;
    std::string first_failure_;
};

}  // namespace xensim
