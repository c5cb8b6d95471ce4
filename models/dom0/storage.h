// Storage behind dom0's disk backends: where a virtual disk's bytes live and how long it takes.
//
// The problem. blkback turns a guest's blkif requests into block I/O on dom0's storage; the time
// that I/O takes and what survives a crash are what a PV block benchmark or an ordering test
// measures. This file models the device below blkback as three separable pieces, all plain C++ with
// no SystemC (the backend's sc_module adds the clock): a DiskImage holds the bytes, a ServiceModel
// turns a request and its submit time into a completion time, and a Disk joins them with the
// device's volatile write cache. Times are integer picoseconds; a sector is 512 bytes (the unit of
// blkif_request's sector_number); everything is a deterministic function of the sequence of
// submit() calls.
//
// What is modelled:
//  * Images. MemoryImage is sparse: 4 KiB pages are allocated on first write, unwritten sectors
//    read as zeros. FileImage is a real sparse host file at an absolute path (pread / pwrite),
//    created and ftruncate'd to the given size if absent; errors are std::runtime_error naming the
//    path and strerror. discard frees pages (MemoryImage) or punches a hole (FileImage,
//    FALLOC_FL_PUNCH_HOLE, zeros written where the host cannot punch), so discarded sectors read
//    as zeros.
//  * NullModel: completes at submit time. RamdiskModel: latency + bytes / bandwidth, no queueing
//    (a memcpy per request, as Linux brd does on the submitter's CPU).
//  * SsdModel: two resources. `channels` flash channels (the internal parallelism: a request takes
//    the earliest-free channel for read_latency / write_latency) and one host link shared by all
//    channels at `bandwidth` bytes/s, used FIFO (a read transfers after its flash access, a write
//    before its program). So N small requests on C channels complete in ceil(N/C) waves of the
//    flash latency, and large transfers are bounded by the link, as on a SATA SSD. flush and
//    discard complete when every channel and the link are idle (SATA's non-queued FLUSH CACHE and
//    pre-3.1 TRIM drain the queue).
//  * HddModel, after Ruemmler & Wilkes, "An introduction to disk drive modeling", IEEE Computer
//    27(3), 1994: one request at a time in submit order (FIFO, no reordering), each costing seek +
//    rotational latency + media transfer. Seek time over a distance of d cylinders is 0 for d = 0
//    and a + b*sqrt(d) otherwise (their short-seek form; they fit the HP 97560 with
//    3.24 + 0.400*sqrt(d) ms below 383 cylinders), with a and b fitted so seek(1) is the
//    track-to-track time and seek(cylinders-1) the full stroke. The image is mapped linearly onto
//    all cylinders (cylinder = sector * cylinders / image sectors). Rotation is deterministic: the
//    platter angle is (time mod rotation period), sector s sits at angle (s mod sectors_per_track),
//    and after the seek the head waits for its first sector to come round. sectors_per_track =
//    media rate * rotation period / 512; the period is rounded to a whole number of per-sector
//    times so sequential requests issued back to back find their next sector under the head with
//    zero rotational wait. seek_ps(d) and average_seek_ps() are public for tests and reports.
//  * Disk: image + model + write cache. With the cache enabled a write completes once its data
//    crosses the host interface into the cache (bytes / cache_bandwidth); its data is visible to
//    reads at once but it is not durable. A flush destages every cached write through the service
//    model, in submit order, starting at the flush's submit time, then completes when the model's
//    own flush does (after those destages) — so a flush completes only after every write submitted
//    before it is durable. A read wholly in the cache is a cache hit (interface transfer only);
//    otherwise it goes to the model. power_loss() drops every cached write: reads afterwards see
//    only durable data. Without the cache every write is durable when submit() returns.
//  * FUA and barriers. StorageRequest::fua on a write makes that write durable by itself (written
//    through the model, its sectors removed from the cache so an older cached write of the same
//    sectors cannot later overwrite it); it orders nothing else. There is no barrier op: the
//    backend composes one the way Linux has since 2.6.37 replaced barriers with REQ_FLUSH (now
//    REQ_PREFLUSH) and REQ_FUA: a flush, then the write with fua or followed by another flush.
//    Discard is durable when it completes and likewise supersedes cached data of its sectors; its
//    length is 64 bits (a discard may cover the whole disk, as Linux's sector_t nr_sects).
//  * Errors: a read-only disk refuses write / flush / discard; a range beyond the image, zero
//    sectors, or a null data pointer or more than UINT32_MAX sectors for read / write are refused.
//    Refusals complete at submit time, touch no data and count in `errors`; the backend answers
//    BLKIF_RSP_ERROR.
//
// Where it deliberately differs from real devices:
//  * The Disk has no clock of its own: a request's data is applied (or read) when submit() is
//    called, and requests are ordered by the order of calls, not by completion time. The backend
//    must not submit a request that must follow another until that one completes (the Linux block
//    layer likewise leaves in-flight requests unordered; only a completed flush orders them). A
//    write not using the cache counts as durable at submit even though the model completes it
//    later.
//  * The cache never destages in the background: cached writes stay volatile until a flush, a FUA
//    write does not help them, and only a write that would overflow cache_capacity forces a full
//    destage (the write then completes after it); a write larger than the whole cache is written
//    through. This is the worst case a file system must assume, which is what ordering tests want;
//    throughput of a cached disk under sustained writes is therefore paid in bursts at flush time
//    or at overflow.
//  * HDD: no zoned recording, head or track switches within a request, track skew, write settle,
//    controller overhead, command queueing (NCQ) or on-drive read-ahead; sequential requests are
//    cheap only when issued back to back. SSD: no garbage collection, write amplification,
//    SLC caching or read/write asymmetry of bandwidth.
//  * FileImage::flush() is fdatasync of the host file, called on every guest flush; host durability
//    has no effect on simulated time.
//
// Default figures (SsdParams, HddParams, DiskConfig):
//  * SSD: Intel SSD DC S3700 product specification: latency (average sequential, typical) read
//    50 us, write 65 us; sustained sequential read 500 MB/s (SATA 6 Gb/s); random 4 KiB reads up to
//    75,000 IOPS at queue depth 32. Its controller has 8 NAND channels (AnandTech's review), but
//    channels = 4 is fitted, not published: 4 / 50 us = 80k random reads/s, near the datasheet's
//    75k, which 8 independent channels would overshoot.
//  * HDD: Hitachi Deskstar 7K1000.C specification: 7200 rpm (one revolution 8.33 ms, average
//    rotational latency 4.17 ms), average read seek 8.5 ms typical (two-disk model), the average
//    being "the weighted average of all possible seek combinations", weight (max + 1 - n) for an
//    n-track seek, which is what average_seek_ps() computes. Track-to-track 1.0 ms is Hitachi's
//    typical single-track seek (7K320 and 5K320 specifications). Full stroke 15 ms is fitted so the
//    sqrt curve over 100,000 cylinders reproduces the 8.5 ms average (Hitachi lists 20 ms full
//    stroke with a 12 ms average for the 2.5-inch 7K320). The 125 MB/s media rate and 100,000
//    cylinders are assumptions typical of drives of that generation, not taken from a datasheet.
//  * Ramdisk: 10 GB/s, about the memcpy rate of one core on DDR4; 1 us per request is an estimate
//    of the block layer and brd per-request path, not a published figure.
//  * Cache admission: 600 MB/s, the payload rate of SATA 6 Gb/s after 8b/10b coding; cache
//    capacity 32 MiB (an assumption typical of desktop drives).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/core/stats.h"

namespace xensim {

constexpr std::uint32_t kSectorSize = 512;

enum class StorageOp { read, write, flush, discard };
const char* storage_op_name(StorageOp op);  // "read", "write", "flush", "discard"

struct StorageRequest {
    StorageOp op = StorageOp::read;
    std::uint64_t sector = 0;  // first 512-byte sector (ignored for flush)
    // Length in sectors (ignored for flush). 64 bits: a discard may span the whole disk (Linux's
    // sector_t nr_sects); a read or write is at most UINT32_MAX sectors (its data is one buffer).
    std::uint64_t sectors = 0;
    std::uint64_t id = 0;  // the caller's tag, carried for traces
    bool fua = false;      // write only: durable on completion even with the write cache on
};

// Time to move `bytes` at `bytes_per_s`, in picoseconds, rounded down; 0 when bytes_per_s is 0.
std::uint64_t transfer_ps(std::uint64_t bytes, std::uint64_t bytes_per_s);

// ---- Backing stores ----------------------------------------------------------------------------

class DiskImage {
  public:
    virtual ~DiskImage();
    virtual std::uint64_t sectors() const = 0;
    // The Disk checks ranges before calling; images assume sector + n <= sectors().
    virtual void read(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) = 0;
    virtual void write(std::uint64_t sector, std::uint32_t n, const std::uint8_t* in) = 0;
    // Afterwards the range reads as zeros.
    virtual void discard(std::uint64_t sector, std::uint64_t n) = 0;
    virtual void flush() = 0;
};

class MemoryImage : public DiskImage {
  public:
    static constexpr std::uint32_t kPageBytes = 4096;
    explicit MemoryImage(std::uint64_t sectors);
    std::uint64_t sectors() const override { return sectors_; }
    void read(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) override;
    void write(std::uint64_t sector, std::uint32_t n, const std::uint8_t* in) override;
    void discard(std::uint64_t sector, std::uint64_t n) override;
    void flush() override {}
    // Host memory holding data (pages written and not discarded), for sparseness tests.
    std::uint64_t allocated_bytes() const { return pages_.size() * std::uint64_t{kPageBytes}; }

  private:
    using Page = std::vector<std::uint8_t>;
    std::uint64_t sectors_;
    std::unordered_map<std::uint64_t, Page> pages_;  // page index -> kPageBytes bytes
};

class FileImage : public DiskImage {
  public:
    // `path` must be absolute. An absent file is created sparse with `size_bytes` (a nonzero
    // multiple of 512); an existing one is used as is when size_bytes is 0 and must otherwise have
    // exactly that size. read_only opens O_RDONLY and requires the file to exist.
    FileImage(const std::string& path, std::uint64_t size_bytes, bool read_only = false);
    ~FileImage() override;
    FileImage(const FileImage&) = delete;
    FileImage& operator=(const FileImage&) = delete;
    std::uint64_t sectors() const override { return sectors_; }
    void read(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) override;
    void write(std::uint64_t sector, std::uint32_t n, const std::uint8_t* in) override;
    void discard(std::uint64_t sector, std::uint64_t n) override;
    void flush() override;
    const std::string& path() const { return path_; }

  private:
    [[noreturn]] void fail(const char* what) const;
    std::string path_;
    int fd_ = -1;
    std::uint64_t sectors_ = 0;
};

// ---- Service-time models -----------------------------------------------------------------------

class ServiceModel {
  public:
    virtual ~ServiceModel();
    // When a request submitted at submit_ps completes. Called once per request in submit order;
    // the model keeps whatever state (queues, head position) makes that a deterministic function
    // of the sequence. Requests are already range-checked.
    virtual std::uint64_t complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) = 0;
};

class NullModel : public ServiceModel {
  public:
    std::uint64_t complete_at_ps(const StorageRequest&, std::uint64_t submit_ps) override {
        return submit_ps;
    }
};

struct RamdiskParams {
    std::uint64_t latency_ps = 1'000'000;      // per request (estimate, see header)
    std::uint64_t bandwidth = 10'000'000'000;  // bytes/s
};

class RamdiskModel : public ServiceModel {
  public:
    explicit RamdiskModel(RamdiskParams p = {}) : p_(p) {}
    std::uint64_t complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) override;

  private:
    RamdiskParams p_;
};

struct SsdParams {
    std::uint64_t read_latency_ps = 50'000'000;   // Intel DC S3700: 50 us typical
    std::uint64_t write_latency_ps = 65'000'000;  // Intel DC S3700: 65 us typical
    std::uint64_t bandwidth = 500'000'000;        // host link, bytes/s, shared by all channels
    unsigned channels = 4;                        // fitted to 75k random-read IOPS
};

class SsdModel : public ServiceModel {
  public:
    explicit SsdModel(SsdParams p = {});
    std::uint64_t complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) override;

  private:
    SsdParams p_;
    std::vector<std::uint64_t> channel_free_;  // busy-until per channel
    std::uint64_t link_free_ = 0;              // busy-until of the host link
};

struct HddParams {
    unsigned rpm = 7200;
    std::uint64_t track_to_track_seek_ps = 1'000'000'000;  // 1.0 ms, Hitachi single-track typical
    std::uint64_t full_stroke_seek_ps = 15'000'000'000;    // 15 ms, fitted to an 8.5 ms average
    std::uint64_t media_rate = 125'000'000;                // bytes/s under the head
    std::uint64_t cylinders = 100'000;
};

class HddModel : public ServiceModel {
  public:
    // image_sectors sets the linear LBA -> cylinder mapping.
    HddModel(HddParams p, std::uint64_t image_sectors);
    std::uint64_t complete_at_ps(const StorageRequest& req, std::uint64_t submit_ps) override;

    std::uint64_t seek_ps(std::uint64_t distance) const;
    // The datasheet average: seek lengths n = 1..max weighted (max + 1 - n), i.e. the mean over
    // uniformly random pairs of distinct cylinders.
    std::uint64_t average_seek_ps() const;
    std::uint64_t cylinder_of(std::uint64_t sector) const;
    std::uint64_t rotation_ps() const { return rotation_ps_; }  // one revolution (rounded, see header)
    std::uint64_t sector_ps() const { return sector_ps_; }      // one sector passing under the head
    std::uint64_t sectors_per_track() const { return sectors_per_track_; }
    std::uint64_t head_cylinder() const { return head_cylinder_; }

  private:
    HddParams p_;
    std::uint64_t image_sectors_;
    double seek_a_ps_ = 0, seek_b_ps_ = 0;
    std::uint64_t sectors_per_track_ = 1, sector_ps_ = 0, rotation_ps_ = 0;
    std::uint64_t head_cylinder_ = 0;
    std::uint64_t busy_until_ = 0;
};

// ---- The disk ----------------------------------------------------------------------------------

struct DiskConfig {
    bool write_cache = false;
    bool read_only = false;
    std::uint64_t cache_bandwidth = 600'000'000;       // interface rate into / out of the cache
    std::uint64_t cache_capacity_sectors = 32u << 11;  // 32 MiB
};

enum class StorageError { none, read_only, out_of_range, bad_request };
const char* storage_error_name(StorageError e);

class Disk {
  public:
    struct Result {
        bool ok = false;
        std::uint64_t complete_ps = 0;
        StorageError error = StorageError::none;
    };

    Disk(std::unique_ptr<DiskImage> image, std::unique_ptr<ServiceModel> model, DiskConfig config,
         StatsGroup& stats);
    Disk(const Disk&) = delete;
    Disk& operator=(const Disk&) = delete;

    // data: read -> out (sectors * 512 bytes), write -> in; unused for flush and discard.
    Result submit(const StorageRequest& req, std::uint64_t submit_ps, std::uint8_t* data);

    std::uint64_t sectors() const { return image_->sectors(); }
    // What a read would return now (cached data over the image), outside simulated time and
    // uncounted: for audits after a run. The range must be inside the disk.
    void peek(std::uint64_t sector, std::uint32_t n, std::uint8_t* out) const;
    const DiskConfig& config() const { return config_; }
    // Writes that a crash now would keep / lose (counted per write request).
    std::uint64_t durable_writes() const { return durable_writes_; }
    std::uint64_t cached_writes() const { return pending_.size(); }
    std::uint64_t cached_sectors() const { return dirty_.size(); }
    // Simulated power loss: cached writes are gone; reads see only durable data.
    void power_loss();

  private:
    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter reads, writes, flushes, discards, bytes_read, bytes_written, cache_hits, destaged_writes,
            errors;
    };
    using SectorData = std::vector<std::uint8_t>;

    Result fail(StorageError e, std::uint64_t submit_ps);
    // Destages every cached write through the model from `at`; returns when the last completes.
    std::uint64_t destage(std::uint64_t at);
    void drop_cached(std::uint64_t sector, std::uint64_t n);

    std::unique_ptr<DiskImage> image_;
    std::unique_ptr<ServiceModel> model_;
    DiskConfig config_;
    Stats stats_;
    std::vector<StorageRequest> pending_;                  // cached writes, submit order
    std::uint64_t pending_sectors_ = 0;                    // sum of pending_ lengths
    std::unordered_map<std::uint64_t, SectorData> dirty_;  // newest cached data per sector
    std::uint64_t durable_writes_ = 0;
};

}  // namespace xensim
