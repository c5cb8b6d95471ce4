#include "frontends/fio_workload.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace xensim {

namespace {
constexpr unsigned kPage = 4096;
// block/blk-flush.c FLUSH_PENDING_TIMEOUT (5 * HZ): C3, a waiter older than this lets a flush go
// out even while FUA writes are still writing their data.
constexpr std::uint64_t kFlushPendingTimeoutNs = 5'000'000'000ull;
}  // namespace

FioWorkload::FioWorkload(const FioJobParams& params, BlockDevice& device, XenGuest& guest, unsigned vcpus,
                         WorkloadStats& stats, unsigned fsync)
    : p_(params),
      device_(device),
      guest_(guest),
      vcpus_(std::max(1u, vcpus)),
      stats_(stats),
      slat_ns_(stats.group, "slat_ns", "ns", "issue to submission of each I/O (fio's slat)"),
      clat_ns_(stats.group, "clat_ns", "ns", "submission to completion of each I/O (fio's clat)"),
      ipi_ports_(vcpus_, 0),
      progress_(vcpus_, false),
      waiting_(vcpus_, false) {
    fsync_ = fsync;
}

FioWorkload::~FioWorkload() = default;

FioWorkload::JobStats::JobStats(StatsGroup& parent, unsigned index)
    : group("job" + std::to_string(index), &parent),
      ops(group, "ops", "ios", "I/Os this job completed"),
      latency_ns(group, "latency_ns", "ns", "issue to completion of this job's I/Os (fio's lat)") {}

void FioWorkload::run_boot_vcpu(XenbusClient& xb, GuestServices& s) {
    auto give_up = [&](const std::string& why) {
        failed_ = true;
        if (first_failure_.empty()) first_failure_ = why;
        stats_.failures.inc();
        ready_ = true;
        for (evtchn_port_t port : ipi_ports_)
            if (port) guest_.notify(s, port);
        stats_.finish(s.now_ns());
    };
    // An IPI channel per vCPU: the start signal, and remote completions.
    for (unsigned v = 0; v < vcpus_; ++v) {
        evtchn_port_t port = 0;
        if (guest_.bind_ipi(s, v, &port) == 0) {  // bound to vCPU v in the guest as in Xen
            ipi_ports_[v] = port;
            guest_.set_port_handler(port, [](GuestServices&, evtchn_port_t) {});
            guest_.unmask(s, port);
        }
    }
    s.mark_phase("pv_connect");
    if (!xb.connected() || !device_.connect(xb, s, vcpus_))
        return give_up("the block device did not connect (backend closed or refused it)");
    const std::uint64_t device_bytes = device_.sectors() * 512;
    try {
        for (unsigned j = 0; j < p_.numjobs; ++j) {
            jobs_.push_back(std::make_unique<FioJob>(p_, j, device_bytes));
            job_stats_.push_back(std::make_unique<JobStats>(stats_.group, j));
            sync_.emplace_back();
        }
    } catch (const std::invalid_argument& e) {
        return give_up(e.what());
    }
    const unsigned pages_per_io = (p_.bs + kPage - 1) / kPage;
    for (unsigned j = 0; j < p_.numjobs; ++j) {
        for (unsigned d = 0; d < p_.iodepth; ++d) {
            Slot slot;
            slot.job = jobs_[j].get();
            slot.vcpu = j % vcpus_;
            for (unsigned k = 0; k < pages_per_io; ++k) {
                auto g = s.alloc_page();
                if (!g) return give_up("guest out of memory for I/O buffers");
                slot.pages.push_back(*g);
            }
            slots_.push_back(std::move(slot));
        }
    }
    buffer_.resize(std::size_t{pages_per_io} * kPage);
    unsigned queues = 1;
    for (unsigned v = 0; v < vcpus_; ++v) queues = std::max(queues, device_.queue_for_vcpu(v) + 1);
    flushq_.assign(queues, FlushQueue{});
    device_.on_complete = [this](GuestServices& vs, std::uint64_t id, std::int16_t status) {
        complete(vs, id, status);
    };
    vcpus_running_ = std::min(p_.numjobs, vcpus_);
    ready_ = true;
    s.mark_phase("io");
    stats_.start(s.now_ns());
    for (unsigned v = 1; v < vcpus_running_; ++v)
        if (ipi_ports_[v]) guest_.notify(s, ipi_ports_[v]);
    run_jobs(s);
}

void FioWorkload::run_vcpu(GuestServices& s) {
    while (!ready_) s.halt();
    if (failed_ || s.vcpu_id() >= vcpus_running_) return;
    run_jobs(s);
}

bool FioWorkload::issue(GuestServices& s, Slot& slot, unsigned queue) {
    BlockIo& io = io_;
    io.id = static_cast<std::uint64_t>(&slot - slots_.data());
    io.op = slot.io.write ? BlockOp::write : BlockOp::read;
    io.sector = slot.io.offset / 512;
    io.sectors = slot.io.length / 512;
    io.pages.assign(slot.pages.begin(), slot.pages.end());
    // Busy before submitting: a device may complete the I/O inside submit (an emulated disk's
    // interrupt arrives at the VM entry after one of its register accesses).
    slot.queued = false;
    slot.busy = true;
    slot.submit_ns = s.now_ns();
    if (device_.submit(s, queue, io)) return true;
    slot.queued = true;
    slot.busy = false;
    return false;
}

void FioWorkload::run_jobs(GuestServices& s) {
    const unsigned v = s.vcpu_id();
    const unsigned q = device_.queue_for_vcpu(v);
    std::vector<Slot*> mine;
    for (Slot& slot : slots_)
        if (slot.vcpu == v) mine.push_back(&slot);
    for (;;) {
        progress_[v] = false;
        bool submitted = false, ring_full = false;
        if (!device_.connected()) {
            // The device is gone: I/Os issued but not yet on a ring fail, nothing more is issued.
            for (Slot* slot : mine)
                if (slot->queued) {
                    slot->queued = false;
                    if (slot->fua) {
                        slot->fua = false;
                        --flushq_[q].data_in_flight;
                    }
                    ++errors_;
                    stats_.failures.inc();
                    slot->job->failed(slot->io);
                }
            // Waiters for a flush that can no longer be sent (FUA writes, fsyncs) fail with it.
            if (q < flushq_.size() && !flushq_[q].in_flight && !flushq_[q].pending.empty()) {
                flushq_[q].running.swap(flushq_[q].pending);
                flushq_[q].pending.clear();
                flushq_[q].in_flight = true;
                flush_done(s, q, BLKIF_RSP_ERROR);
            }
            bool busy = false;
            for (Slot* slot : mine) busy = busy || slot->busy;
            if (!busy) break;
            if (v == 0) guest_.run_deferred(s);
            if (!progress_[v]) s.halt();
            continue;
        }
        // fsync: a job whose flush is due issues it once its own I/Os have drained.
        for (unsigned j = v; j < sync_.size(); j += vcpus_) {
            JobSync& js = sync_[j];
            if (!js.due || js.in_flight) continue;
            bool drained = true;
            for (Slot* slot : mine)
                drained = drained && !(slot->job->job_index() == j && (slot->busy || slot->queued));
            if (drained && !ring_full && flush_for(s, j, q)) submitted = true;
        }
        // A flush the flush queue could not hand to the device before (busy or ring full).
        if (!ring_full && kick_flush(s, q)) submitted = true;
        if (flush_refused_) ring_full = true;
        for (Slot* slot : mine) {
            if (slot->busy) continue;
            if (!slot->queued) {
                if (sync_[slot->job->job_index()].due) continue;  // no new I/O until the flush is done
                auto io = slot->job->next(s.now_ns());
                if (!io) continue;
                slot->io = *io;
                slot->queued = true;
                slot->issue_ns = s.now_ns();
                // O_SYNC / O_DSYNC with O_DIRECT: dio_bio_write_op adds REQ_FUA (block/fops.c); on a
                // queue without a write cache submit_bio_noacct drops it, and without FUA support
                // blk_insert_flush sequences it as DATA then POSTFLUSH (blk_flush_policy).
                if (io->write && p_.sync != FioJobParams::Sync::none && device_.feature_flush()) {
                    slot->fua = true;
                    ++flushq_[q].data_in_flight;
                }
                if (io->write && fsync_ && ++sync_[slot->job->job_index()].writes_since == fsync_) {
                    sync_[slot->job->job_index()].writes_since = 0;
                    sync_[slot->job->job_index()].due = true;
                }
                if (io->write) {
                    slot->job->fill(*io, buffer_.data());
                    for (std::size_t k = 0; k * kPage < io->length; ++k)
                        std::memcpy(s.page(slot->pages[k]), buffer_.data() + k * kPage,
                                    std::min<std::size_t>(kPage, io->length - k * kPage));
                    if (p_.verify != FioJobParams::Verify::none) s.compute(s.costs().copy_cost(io->length));
                }
            }
            if (ring_full) continue;
            if (issue(s, *slot, q))
                submitted = true;
            else
                ring_full = true;
        }
        if (submitted) device_.kick(s, q);
        bool busy = false, all_finished = true;
        for (Slot* slot : mine) busy = busy || slot->busy || slot->queued;
        for (unsigned j = v; j < sync_.size(); j += vcpus_) busy = busy || sync_[j].due;
        for (const auto& job : jobs_)
            if (job->job_index() % vcpus_ == v && !job->finished()) all_finished = false;
        if (all_finished && !busy) break;
        if (!busy && !submitted) {
            // Nothing in flight and nothing issued, yet a job is not finished: it would wait
            // forever. FioJob never does this; fail loudly rather than hang.
            if (first_failure_.empty()) first_failure_ = "fio job stalled with nothing in flight";
            stats_.failures.inc();
            break;
        }
        // The kernel's deferred work (xenbus watch callbacks) runs on vCPU 0 when its thread sleeps.
        if (v == 0 && guest_.run_deferred(s)) continue;
        // Refused for want of room with nothing of its own in flight (whose completion would wake
        // it): the next completion on this queue, on whichever vCPU, wakes this one
        // (restart_queue), as blk-mq reruns a hardware queue from the completion path.
        bool own_in_flight = false;
        for (Slot* slot : mine) own_in_flight = own_in_flight || slot->busy;
        for (unsigned j = v; j < sync_.size(); j += vcpus_)
            own_in_flight = own_in_flight || sync_[j].in_flight;
        waiting_[v] = ring_full && !own_in_flight;
        if (!progress_[v]) s.halt();
        waiting_[v] = false;
    }
    vcpu_finished(s);
}

void FioWorkload::vcpu_finished(GuestServices& s) {
    if (vcpus_running_ && --vcpus_running_ == 0) stats_.finish(s.now_ns());
}

void FioWorkload::wake(GuestServices& s, unsigned vcpu) {
    if (vcpu < ipi_ports_.size() && ipi_ports_[vcpu]) guest_.notify(s, ipi_ports_[vcpu]);
}

// fio's fsync: blkdev_fsync -> blkdev_issue_flush, an empty REQ_PREFLUSH bio (block/fops.c,
// block/blk-flush.c). Without a volatile write cache it ends at once (submit_bio_noacct); otherwise
// it waits in the queue's flush queue like any PREFLUSH.
bool FioWorkload::flush_for(GuestServices& s, unsigned job, unsigned queue) {
    JobSync& js = sync_[job];
    if (!device_.feature_flush()) {  // nothing to flush: the block layer completes it at once
        js.due = false;
        ++flushes_;
        return false;
    }
    js.in_flight = true;  // waiting for a flush from here on (its completion may come inside submit)
    flush_wait(slots_.size() + job, queue, s.now_ns());
    return kick_flush(s, queue);
}

unsigned FioWorkload::waiter_vcpu(std::uint64_t waiter) const {
    return waiter < slots_.size() ? slots_[waiter].vcpu
                                  : static_cast<unsigned>(waiter - slots_.size()) % vcpus_;
}

// blk_flush_complete_seq's PREFLUSH / POSTFLUSH case: queue for the next flush.
void FioWorkload::flush_wait(std::uint64_t waiter, unsigned queue, std::uint64_t now_ns) {
    FlushQueue& f = flushq_[queue];
    if (f.pending.empty()) f.pending_since_ns = now_ns;
    f.pending.push_back(waiter);
}

// blk_kick_flush (block/blk-flush.c): C1, one flush in flight; C2 and C3, none while a FUA write is
// still writing its data unless the oldest waiter is FLUSH_PENDING_TIMEOUT old. The flush is one
// REQ_OP_FLUSH request for every waiter pending now.
bool FioWorkload::kick_flush(GuestServices& s, unsigned queue) {
    flush_refused_ = false;
    if (queue >= flushq_.size()) return false;
    FlushQueue& f = flushq_[queue];
    if (f.in_flight || f.pending.empty()) return false;
    if (f.data_in_flight && s.now_ns() < f.pending_since_ns + kFlushPendingTimeoutNs) return false;
    f.running.swap(f.pending);
    f.pending.clear();
    f.in_flight = true;  // before submit: an emulated disk may complete the flush inside it
    BlockIo io;
    io.id = slots_.size() + sync_.size() + queue;  // ids past the slots and the jobs are the queues' flushes
    io.op = BlockOp::flush;
    io.sector = 0;
    io.sectors = 0;
    if (device_.submit(s, queue, io)) return true;
    flush_refused_ = true;
    f.in_flight = false;  // no room: the waiters stay pending, retried from run_jobs
    f.pending.swap(f.running);
    f.running.clear();
    return false;
}

// flush_end_io: every waiter the flush was issued for moves on (a FUA write completes, an fsync
// returns), with the flush's status.
void FioWorkload::flush_done(GuestServices& s, unsigned queue, std::int16_t status) {
    FlushQueue& f = flushq_[queue];
    if (!f.in_flight) return;
    f.in_flight = false;
    std::vector<std::uint64_t> done;
    done.swap(f.running);
    for (std::uint64_t w : done) {
        if (w < slots_.size()) {
            Slot& slot = slots_[w];
            slot.fua = false;
            finish_slot(s, slot, status);
            continue;
        }
        const unsigned job = static_cast<unsigned>(w - slots_.size());
        JobSync& js = sync_[job];
        js.in_flight = false;
        js.due = false;
        ++flushes_;
        if (status != BLKIF_RSP_OKAY) {
            ++errors_;
            stats_.failures.inc();
            if (first_failure_.empty())
                first_failure_ =
                    "job " + std::to_string(job) + ": flush failed with status " + std::to_string(status);
        }
        const unsigned vcpu = waiter_vcpu(w);
        progress_[vcpu] = true;
        if (vcpu != s.vcpu_id()) wake(s, vcpu);
    }
    wake_flush_waiter(s, queue);
    restart_queue(s, queue);
}

// The device has room again on `queue`: a vCPU whose I/O or flush was refused for want of it tries
// again (blk_mq_run_hw_queues from the completion path; here the issue stays on that vCPU).
void FioWorkload::restart_queue(GuestServices& s, unsigned queue) {
    for (unsigned v = 0; v < vcpus_; ++v) {
        if (!waiting_[v] || v == s.vcpu_id() || device_.queue_for_vcpu(v) != queue) continue;
        waiting_[v] = false;
        progress_[v] = true;
        wake(s, v);
    }
}

// Flushes are issued from thread context (run_jobs, as blk-flush's requeue work runs from kblockd):
// make sure the vCPU of the oldest waiter looks again once the flush queue may move.
void FioWorkload::wake_flush_waiter(GuestServices& s, unsigned queue) {
    const FlushQueue& f = flushq_[queue];
    if (f.in_flight || f.pending.empty()) return;
    const unsigned vcpu = waiter_vcpu(f.pending.front());
    progress_[vcpu] = true;
    if (vcpu != s.vcpu_id()) wake(s, vcpu);
}

void FioWorkload::complete(GuestServices& s, std::uint64_t id, std::int16_t status) {
    const std::uint64_t flush_base = slots_.size() + sync_.size();
    if (id >= flush_base && id - flush_base < flushq_.size()) {
        flush_done(s, static_cast<unsigned>(id - flush_base), status);
        return;
    }
    if (id >= slots_.size() || !slots_[id].busy) return;  // the ring engine already rejects bogus ids
    Slot& slot = slots_[id];
    if (slot.fua) {
        // mq_flush_data_end_io: the data step is done; on success the write waits for a flush.
        const unsigned q = device_.queue_for_vcpu(slot.vcpu);
        FlushQueue& f = flushq_[q];
        --f.data_in_flight;
        if (status == BLKIF_RSP_OKAY) {
            flush_wait(id, q, s.now_ns());
            wake_flush_waiter(s, q);
            progress_[slot.vcpu] = true;
            if (slot.vcpu != s.vcpu_id()) wake(s, slot.vcpu);
            restart_queue(s, q);
            return;
        }
        slot.fua = false;
        wake_flush_waiter(s, q);
    }
    finish_slot(s, slot, status);
}

void FioWorkload::finish_slot(GuestServices& s, Slot& slot, std::int16_t status) {
    slot.busy = false;
    const FioJob::Io io = slot.io;
    if (status != BLKIF_RSP_OKAY) {
        ++errors_;
        stats_.failures.inc();
        if (first_failure_.empty())
            first_failure_ = std::string("job ") + std::to_string(slot.job->job_index()) + ": " +
                             (io.write ? "write" : "read") + " at offset " + std::to_string(io.offset) +
                             " failed with status " + std::to_string(status);
    } else if (!io.write && p_.verify != FioJobParams::Verify::none) {
        for (std::size_t k = 0; k * kPage < io.length; ++k)
            std::memcpy(buffer_.data() + k * kPage, s.page(slot.pages[k]),
                        std::min<std::size_t>(kPage, io.length - k * kPage));
        s.compute(s.costs().copy_cost(io.length));
        std::string bad = slot.job->check(io, buffer_.data());
        if (!bad.empty()) {
            stats_.failures.inc();
            if (first_failure_.empty()) first_failure_ = bad;
        }
    }
    if (status == BLKIF_RSP_OKAY)
        slot.job->completed(io);
    else
        slot.job->failed(io);
    progress_[slot.vcpu] = true;
    if (slot.vcpu != s.vcpu_id()) wake(s, slot.vcpu);
    restart_queue(s, device_.queue_for_vcpu(slot.vcpu));
    JobStats& js = *job_stats_[slot.job->job_index()];
    const std::uint64_t lat = s.now_ns() - slot.issue_ns;  // fio's lat: from the job's issue
    slat_ns_.sample(slot.submit_ns - slot.issue_ns);
    clat_ns_.sample(s.now_ns() - slot.submit_ns);
    js.ops.inc();
    js.latency_ns.sample(lat);
    js.end_ns = s.now_ns();
    stats_.complete_op(lat);
}

FioWorkload::Audit FioWorkload::audit(const ReadMedium& read) const {
    Audit a;
    std::vector<std::uint8_t> buf(p_.bs);
    for (const auto& job : jobs_) {
        for (std::uint64_t offset : job->acknowledged_blocks()) {
            ++a.blocks;
            read(offset, p_.bs, buf.data());
            std::string problem = job->audit(offset, buf.data());
            if (problem.empty()) continue;
            ++a.lost_writes;
            if (a.first_problem.empty()) a.first_problem = problem;
        }
    }
    return a;
}

FioWorkload::Totals FioWorkload::totals() const {
    Totals t;
    for (const auto& j : jobs_) {
        const auto& c = j->counters();
        t.reads += c.reads;
        t.writes += c.writes;
        t.bytes_read += c.bytes_read;
        t.bytes_written += c.bytes_written;
        t.verified += c.verified;
        t.unverified += c.unverified;
        t.verify_failures += c.verify_failures;
    }
    t.errors = errors_;
    t.flushes = flushes_;
    return t;
}

}  // namespace xensim
