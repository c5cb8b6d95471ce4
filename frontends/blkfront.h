// blkfront: a guest's PV block driver for one virtual disk.
//
// The problem. A guest reaches a PV disk only through XenStore (to find and negotiate with its
// backend), shared rings in its own granted pages, and event channels. This driver does what Linux
// drivers/block/xen-blkfront.c does for one device: the XenBus handshake, ring set-up per queue,
// and the submission / interrupt paths around the ring engine (blkif_ring_frontend.h).
//
// What is modelled (Linux v6.x xen-blkfront.c; protocol text of xen/include/public/io/blkif.h):
//  * talk_to_blkback, once the backend is in InitWait: read the backend's max-ring-page-order and
//    multi-queue-max-queues (negotiate_mq: queues = min(wanted, backend max, vCPUs)); per queue
//    allocate 2^order contiguous pages, SHARED_RING_INIT them, grant each to the backend, allocate
//    an event channel for it (EVTCHNOP_alloc_unbound) bound to vCPU queue % vCPUs
//    (XenGuest::bind_vcpu: Linux's IRQ affinity path, mask + EVTCHNOP_bind_vcpu + unmask, as blk-mq
//    spreads queue interrupts); then in one XenStore transaction
//    write ring-ref (or ring-refN with ring-page-order), event-channel (in queue-N/ with
//    multi-queue-num-queues when there is more than one queue), protocol and feature-persistent,
//    and switch to Initialised.
//  * blkfront_connect, once the backend is Connected: read sectors, info, sector-size and the
//    backend features (feature-flush-cache, feature-discard, feature-persistent,
//    feature-max-indirect-segments; blkfront_gather_backend_features), set up the ring engines with
//    what both sides agreed, switch to Connected. feature_flush() is the queue's write cache as
//    xlvbd_flush sets it; there is never FUA: Linux gets FUA only from feature-barrier without
//    feature-flush-cache, and this blkback offers feature-flush-cache and no barrier, so a REQ_FUA
//    write (fio sync=1) reaches the ring as BLKIF_OP_WRITE followed by the block layer's
//    BLKIF_OP_FLUSH_DISKCACHE (docs/ide-register-sequence.md §7.3). Linux also reads
//    feature-barrier here; with this blkback the result is the same and the read is not made.
//  * submit / kick: the engine builds requests; RING_PUSH_REQUESTS_AND_CHECK_NOTIFY decides whether
//    EVTCHNOP_send is needed. blkfront_request cycles are charged per I/O; with persistent grants the
//    bounce copy of a WRITE is charged at copy_bytes_per_cycle.
//  * interrupt (blkif_interrupt): collect responses until RING_FINAL_CHECK_FOR_RESPONSES finds none,
//    completing each I/O through the on_complete callback, on the vCPU the queue is bound to; with
//    persistent grants the copy of a READ's sectors out of the grants (blkif_completion) is charged
//    there at copy_bytes_per_cycle, before the I/Os complete.
//  * The backend closing (blkfront_closing -> blkif_free): I/Os in flight fail, and every grant of
//    the device is ended (persistent pool, requests in flight, indirect pages, rings); the ones the
//    backend still maps are retried at each later backend state change and once at the end of the
//    run, standing for gnttab's deferred-free timer (gnttab_handle_deferred, once a second).
//
// Driver profiles differ only where the real drivers do (docs/blkfront-profiles.md gives sources):
// `linux` (up to 4 queues, single-page rings, persistent grants, 32 indirect segments), `gplpv`
// (one single-page ring, no persistent grants, no indirect descriptors) and `winpv` (the Xen Project
// XENVBD: a ring per vCPU, rings of up to 16 pages, indirect descriptors as the backend offers them,
// no persistent grants). Every profile takes one interrupt per queue on its own event channel.
//
// Where it deliberately differs: the ring engine is created at Connected (when the features are
// known) over the ring that talk_to_blkback initialised; Linux allocates its shadow earlier. A
// backend that leaves Connected for Closing fails every I/O in flight with BLKIF_RSP_ERROR
// (blkfront's blkif_recover would requeue them on reconnect; reconnection is not modelled).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/blkif_ring_frontend.h"
#include "frontends/block_device.h"
#include "frontends/xen_guest.h"
#include "frontends/xenbus_client.h"
#include "sim/core/stats.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

struct BlkfrontProfile {
    const char* name;
    unsigned max_queues;             // 1: a single ring
    unsigned ring_page_order;        // what the driver asks for (capped by the backend's maximum)
    bool persistent_grants;          // writes feature-persistent = 1
    unsigned max_indirect_segments;  // 0: never uses BLKIF_OP_INDIRECT
};
// "linux", "gplpv", "winpv"; throws std::invalid_argument for anything else.
const BlkfrontProfile& blkfront_profile(std::string_view name);

struct BlkfrontParams {
    unsigned devid = 51712;  // xvda
    domid_t backend_domid = 0;
    unsigned queues = 1;  // wanted; negotiated down
    unsigned ring_page_order = 0;
    bool persistent_grants = true;
    unsigned max_indirect_segments = 32;  // Linux's xen_blkif_max_segments default
};

class Blkfront : public BlockDevice {
  public:
    Blkfront(XenGuest& guest, const BlkfrontParams& params, StatsGroup& parent);

    // Observation points for tracing (the platform sets them; the driver's behaviour does not
    // depend on them): an I/O queued on queue q, a push of the queue's requests (in flight after it,
    // and whether the ring macro asked for a notification), an I/O's response collected.
    struct TraceHooks {
        std::function<void(GuestServices&, unsigned q, const BlockIo&)> submit;
        std::function<void(GuestServices&, unsigned q, unsigned in_flight, bool notify)> push;
        std::function<void(GuestServices&, unsigned q, std::uint64_t io, int status)> complete;
    };
    TraceHooks trace;
    ~Blkfront();
    Blkfront(const Blkfront&) = delete;
    Blkfront& operator=(const Blkfront&) = delete;

    // The handshake, in thread context on the guest's vCPU 0; `vcpus` is the guest's vCPU count.
    // False (device unusable) when the backend closes or a key is missing.
    bool connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) override;
    bool connected() const override { return connected_; }

    unsigned devid() const { return p_.devid; }
    unsigned queues() const { return static_cast<unsigned>(queues_.size()); }
    unsigned queue_for_vcpu(unsigned vcpu) const override { return queues_.empty() ? 0 : vcpu % queues(); }
    unsigned queue_vcpu(unsigned q) const { return q % vcpus_; }
    std::uint64_t sectors() const override { return sectors_; }
    bool read_only() const override { return read_only_; }
    bool feature_flush() const override { return feature_flush_; }
    bool feature_discard() const { return feature_discard_; }
    bool persistent() const { return persistent_; }
    unsigned max_indirect_segments() const { return indirect_; }
    unsigned ring_page_order() const { return order_; }
    unsigned ring_size() const;
    // Queue q's ring occupancy histogram (BlkifRingFrontend::occupancy_histogram); empty before connect.
    std::vector<std::uint64_t> occupancy_histogram(unsigned q) const;

    // Queues an I/O on queue q; false when the ring has no room (retry after a completion).
    bool submit(GuestServices& s, unsigned q, const BlockIo& io) override;
    // Publishes queued requests; notifies the backend when the ring macros say so.
    void kick(GuestServices& s, unsigned q) override;

    // Misbehaviour studies (what a buggy or hostile guest driver could do; blkif_misbehaviour.h):
    // a request written verbatim (its id excepted), and a shared producer index set to req_prod
    // followed by a notification.
    bool submit_raw(GuestServices& s, unsigned q, const blkif_request_t& req, std::uint64_t id);
    void corrupt_producer(GuestServices& s, unsigned q, RING_IDX req_prod);
    RING_IDX ring_req_prod_pvt(unsigned q) const;

    // After the backend closed (blkif_free): tries again to end the grants the backend still mapped
    // at the close, the rings' included (Linux: gnttab_handle_deferred, the grant table's deferred
    // free, retried by a timer); returns how many are still not ended. Done at each later backend
    // state change, and by the platform once at the end of the run.
    std::size_t end_deferred_grants();
    // Grants of this device not yet ended (data, indirect, persistent pool, rings). Once the device
    // has closed and the backend unmapped everything, end_deferred_grants() brings it to 0.
    std::size_t grants_outstanding() const;

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter ios_submitted, ios_completed, ios_failed, notifications_sent, notifications_suppressed,
            interrupts, empty_interrupts, ios_aborted;
    };
    const Stats& stats() const { return stats_; }
    StatsGroup& group() { return group_; }

  private:
    struct Queue {
        std::uint64_t ring_gfn = 0;
        std::vector<grant_ref_t> ring_refs;
        evtchn_port_t port = 0;
        std::unique_ptr<StatsGroup> group;
        std::unique_ptr<BlkifRingFrontend> ring;
    };
    bool talk_to_blkback(XenbusClient& xb, GuestServices& s, unsigned vcpus);
    bool finish_connect(XenbusClient& xb, GuestServices& s);
    void interrupt(GuestServices& s, unsigned q);
    bool poll(GuestServices& s, unsigned q);  // collect until the final check; true if anything came
    void backend_changed();                   // watch callback (thread context, vCPU 0)

    XenGuest& guest_;
    BlkfrontParams p_;
    StatsGroup group_;
    Stats stats_;
    std::string front_, back_;
    domid_t backend_id_ = 0;
    XenbusStateMachine fsm_{XenbusSide::frontend};
    GuestServices* boot_ = nullptr;  // vCPU 0's services: page allocation for the engines
    XenbusClient* xb_ = nullptr;     // the kernel's xenbus client (vCPU 0)
    std::vector<Queue> queues_;
    unsigned vcpus_ = 1, order_ = 0, indirect_ = 0;
    bool closed_ = false;  // the backend went away after connecting: every grant is being ended
    bool persistent_ = false, connected_ = false, read_only_ = false, feature_flush_ = false,
         feature_discard_ = false;
    std::uint64_t sectors_ = 0;
};

}  // namespace xensim
