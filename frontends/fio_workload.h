// The fio-style block workload: FioJob streams (fio_job.h) driven over a blkfront device on the
// guest's vCPUs.
//
// The guest's vCPU 0 connects the device (the XenBus handshake), creates numjobs jobs and spreads
// them over the vCPUs (job j on vCPU j % vcpus, as fio's threads would be scheduled on an idle
// guest), then wakes the other vCPUs with an event-channel IPI (EVTCHNOP_bind_ipi). Each vCPU
// runs its jobs like fio's libaio engine: it issues I/Os while a job has fewer than iodepth in
// flight, pushes them on its own queue (blk-mq: vCPU v uses queue v % queues), and halts until a
// completion arrives. Completions run in the queue's interrupt handler; one that belongs to another
// vCPU wakes it with an IPI (blk-mq's remote completion). Each I/O's data lives in guest pages
// granted to the backend; with verify, written blocks carry fio's header and checksums and every
// read is checked, and a mismatch fails the run naming the block.
//
// Results: every completed I/O is an operation with its latency in simulated time, measured as fio
// measures it (fio HOWTO, "Interpreting the output"): lat, the total, runs from the moment the job
// issues the I/O (fio's io_u start_time) to its completion, so an I/O that waits for a ring slot
// (all of a queue's slots taken, or the IDE channel busy) waits inside its latency. slat is issue
// to the moment the driver takes the I/O (that wait, and the write buffer's fill with verify);
// clat is from there to completion, the driver's own submission work (blkfront's ring push,
// ata_piix's register accesses) included, as fio's clat starts at the issue_time set just before
// the engine's queue(); lat = slat + clat. The I/O counts, bytes and verify outcome are in
// counters().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "frontends/block_device.h"
#include "frontends/xen_guest.h"
#include "frontends/xenbus_client.h"
#include "frontends/fio_job.h"
#include "frontends/workload.h"

namespace xensim {

class FioWorkload {
  public:
    // fsync: fio's fsync=N, a cache flush after every N writes a job issues (0: never). As fio
    // does, the job first waits for its I/Os in flight, then for the flush, then goes on. A device
    // whose queue has no volatile write cache (feature_flush() false: a PV backend without
    // feature-flush-cache, an IDE disk with its write cache off) gets no flush: the block layer
    // completes it at once (submit_bio_noacct, block/blk-core.c).
    // With params.sync (O_SYNC / O_DSYNC on the raw device, direct=1) every write is REQ_FUA
    // (block/fops.c dio_bio_write_op); no device here offers FUA, so on a queue with a write cache
    // blk-flush.c runs it as the data write followed by a flush, and fio sees it complete when that
    // flush does (docs/ide-register-sequence.md §7). Flushes, from fsync and from FUA writes, go
    // through blk-flush.c's flush queue of their device queue: one flush in flight at a time (C1),
    // deferred while a FUA write is still writing its data (C2) unless the oldest waiter has waited
    // FLUSH_PENDING_TIMEOUT (C3), and one flush completes every waiter it was issued for.
    FioWorkload(const FioJobParams& params, BlockDevice& device, XenGuest& guest, unsigned vcpus,
                WorkloadStats& stats, unsigned fsync = 0);
    ~FioWorkload();

    // vCPU 0, thread context, after boot: connect the device, start the jobs, run vCPU 0's share.
    void run_boot_vcpu(XenbusClient& xb, GuestServices& s);
    // Every other vCPU: wait for the device, run this vCPU's share.
    void run_vcpu(GuestServices& s);

    struct Totals {
        std::uint64_t reads = 0, writes = 0, bytes_read = 0, bytes_written = 0, errors = 0, verified = 0,
                      unverified = 0, verify_failures = 0, flushes = 0;
    };
    Totals totals() const;

    // Per job: its own operations and latency (group "jobN" under the workload's stats).
    struct JobStats {
        JobStats(StatsGroup& parent, unsigned index);
        StatsGroup group;
        Counter ops;
        Distribution latency_ns;
        std::uint64_t end_ns = 0;  // last completion
    };
    const std::vector<std::unique_ptr<JobStats>>& job_stats() const { return job_stats_; }
    const FioJob& job(unsigned i) const { return *jobs_.at(i); }
    unsigned jobs() const { return static_cast<unsigned>(jobs_.size()); }
    std::uint64_t start_ns() const { return stats_.start_ns; }
    // fio's slat and clat over every completed I/O (lat is the workload's latency_ns).
    const Distribution& slat_ns() const { return slat_ns_; }
    const Distribution& clat_ns() const { return clat_ns_; }

    // After the run, with verify: every block whose last write was acknowledged is read from the
    // medium by `read` (the platform's oracle, not an I/O of the guest) and checked. A mismatch
    // is an acknowledged write that was lost.
    using ReadMedium = std::function<void(std::uint64_t offset, std::uint32_t length, std::uint8_t* out)>;
    struct Audit {
        std::uint64_t blocks = 0, lost_writes = 0;
        std::string first_problem;
    };
    Audit audit(const ReadMedium& read) const;
    bool verifying() const { return p_.verify != FioJobParams::Verify::none; }
    const std::string& first_failure() const { return first_failure_; }
    bool device_connected() const { return device_.connected(); }

  private:
    struct Slot {
        FioJob* job = nullptr;
        unsigned vcpu = 0;
        std::vector<std::uint64_t> pages;
        FioJob::Io io;
        std::uint64_t issue_ns = 0;   // the job issued the I/O (fio's start_time)
        std::uint64_t submit_ns = 0;  // the driver took it (on the ring / to the controller)
        bool busy = false;
        bool queued = false;  // issued by the job, waiting for ring space
        bool fua = false;     // a REQ_FUA write whose post-flush is still to come
    };
    void run_jobs(GuestServices& s);
    void complete(GuestServices& s, std::uint64_t slot, std::int16_t status);
    void wake(GuestServices& s, unsigned vcpu);
    bool issue(GuestServices& s, Slot& slot, unsigned queue);
    void vcpu_finished(GuestServices& s);

    FioJobParams p_;
    BlockDevice& device_;
    XenGuest& guest_;
    unsigned vcpus_;
    WorkloadStats& stats_;
    Distribution slat_ns_, clat_ns_;
    std::vector<std::unique_ptr<FioJob>> jobs_;
    std::vector<std::unique_ptr<JobStats>> job_stats_;  // same order as jobs_
    struct JobSync {
        unsigned writes_since = 0;  // writes issued since the last flush
        bool due = false, in_flight = false;
    };
    std::vector<JobSync> sync_;  // per job
    unsigned fsync_ = 0;
    std::uint64_t flushes_ = 0;
    // blk-flush.c's struct blk_flush_queue, one per device queue. A waiter is a slot index (a FUA
    // write waiting for its post-flush) or slots_.size() + job (a job's fsync).
    struct FlushQueue {
        std::vector<std::uint64_t> pending, running;
        bool in_flight = false;       // flush_pending_idx != flush_running_idx
        unsigned data_in_flight = 0;  // FUA writes issued and not through their data step
        std::uint64_t pending_since_ns = 0;
    };
    std::vector<FlushQueue> flushq_;                                 // per device queue
    bool flush_for(GuestServices& s, unsigned job, unsigned queue);  // true when submitted
    void flush_wait(std::uint64_t waiter, unsigned queue, std::uint64_t now_ns);
    bool kick_flush(GuestServices& s, unsigned queue);  // blk_kick_flush; true when a flush was submitted
    void flush_done(GuestServices& s, unsigned queue, std::int16_t status);
    void wake_flush_waiter(GuestServices& s, unsigned queue);
    void restart_queue(GuestServices& s, unsigned queue);
    bool flush_refused_ = false;  // the last kick_flush found no room on the device
    void finish_slot(GuestServices& s, Slot& slot, std::int16_t status);
    unsigned waiter_vcpu(std::uint64_t waiter) const;
    std::vector<Slot> slots_;
    std::vector<evtchn_port_t> ipi_ports_;  // per vCPU; 0 = none
    std::vector<bool> progress_;            // per vCPU: a completion arrived since it last looked
    std::vector<bool>
        waiting_;  // per vCPU: halted with an I/O or flush refused for want of room, none in flight
    std::vector<std::uint8_t> buffer_;  // host scratch for fill / check
    BlockIo io_;                        // reused per issue: keeps the pages vector's capacity
    bool ready_ = false, failed_ = false;
    unsigned vcpus_running_ = 0;
    std::uint64_t errors_ = 0;
    std::string first_failure_;
};

}  // namespace xensim
