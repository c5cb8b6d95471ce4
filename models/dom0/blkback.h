// blkback: dom0's PV block backend for one virtual disk of one guest.
//
// The problem. A guest's blkfront puts blkif requests on shared rings and names its data pages by
// grant reference; dom0's blkback must find the rings through XenStore, map them, take requests
// off them without trusting a byte, reach the data only through grant operations, drive the disk,
// and answer. Every step is a hypercall, an event or a XenStore access on dom0's vCPUs, so the
// cost of the PV block path is counted where it arises.
//
// What is modelled, following Linux drivers/block/xen-blkback/xenbus.c and blkback.c (v6.x):
//  * Discovery: blkback is dom0's "vbd" driver on the xenbus backend bus (backend_bus.h), which
//    calls Blkback::probe for every backend/vbd/<domid>/<devid> the toolstack writes. probe reads
//    the device's `params` ("xensim:<vdev>", docs/xenstore-layout.md) and finds the medium in the
//    disk table the platform supplies (BlkbackDiskTable: the disks and their completion PIRQs, as
//    the toolstack and the hardware provide them; Linux learns the medium from the hotplug
//    script's physical-device node instead, in backend_changed). A params naming no disk fails the
//    probe (the bus fails the device as xenbus_dev_probe does).
//  * probe (xen_blkbk_probe): feature-max-indirect-segments (advertised at probe since Linux 4.6,
//    commit 5a7058450cbc), multi-queue-max-queues and max-ring-page-order, then InitWait; a watch
//    on the frontend's state drives the rest (frontend_changed).
//  * Frontend Initialised/Connected -> connect_ring: protocol (only the native "x86_64-abi"),
//    feature-persistent (used when both sides offer it), multi-queue-num-queues (1..max; each queue
//    in queue-N/), ring-page-order (0..max; ring-ref0..N-1 then, else ring-ref) and event-channel
//    per queue. Each ring is mapped with one GNTTABOP_map_grant_ref of all its pages
//    (xenbus_map_ring_valloc) and its channel bound with EVTCHNOP_bind_interdomain. Then connect():
//    feature-flush-cache, feature-discard, feature-persistent, sectors, info, sector-size, and
//    Connected. A key that is missing or out of range fails the device (xenbus_dev_fatal): the
//    backend goes to Closing and counts it.
//  * Requests (xen_blkif_schedule -> do_block_io_op): the ring engine (blkif_ring_backend.h)
//    copies and validates them. For an accepted request the data pages are mapped with one batched
//    GNTTABOP_map_grant_ref (xen_blkbk_map; read-only for a WRITE, whose data is only read), or
//    found among the ring's persistent grants (xen_blkbk_map's persistent_gnt lookup: a new grant is
//    mapped read-write and kept while the ring keeps fewer than max_persistent_grants, a limit per
//    ring as ring->persistent_gnt_c < max_pgrants, else mapped for this request only; a grant named
//    twice in one request is mapped twice and kept once). INDIRECT: the indirect pages (whole pages,
//    512 descriptors) are mapped, parsed, and unmapped again (xen_blkbk_parse_indirect). Then the
//    disk request (models/dom0/storage.h) is submitted, at the time the maps are done: the map
//    hypercall is part of the request's latency. A DISCARD passes its full 64-bit length.
//  * Completion: the disk raises its PIRQ (bound with EVTCHNOP_bind_pirq at probe) when its earliest
//    outstanding request completes, one interrupt outstanding at a time (re-armed after each for the
//    next completion, as a controller with interrupt coalescing by the driver's ack); the handler answers
//    every request completed by then
//    (__end_block_io_op -> xen_blkbk_unmap_and_respond: one batched unmap per request, then
//    make_response), and RING_PUSH_RESPONSES_AND_CHECK_NOTIFY decides the notification.
//  * grant_mode copy (as QEMU's xen-block does it): instead of mapping, each request's segments are
//    copied with one batched GNTTABOP_copy between the guest's grants and dom0 pages: at submission
//    for a WRITE (and for indirect pages), at completion for a READ; no persistent grants are offered.
//  * A bogus ring (producer overflow) disconnects the device: no more requests are taken, the
//    backend goes Closing (from deferred work, as xenstore writes need thread context).
//  * Frontend Closing/Closed: outstanding disk requests are left to complete, their responses are
//    dropped, the rings are unmapped, the channels closed, and the backend reaches Closed. At
//    Closed, as frontend_changed does, `online` is read: 0 means the toolstack is detaching the
//    device (xl block-detach: libxl__initiate_device_generic_remove wrote online 0 and state
//    Closing, which the frontend followed), and the device is unregistered (device_unregister:
//    the frontend watch dropped). The toolstack then removes the directories; the bus's remove()
//    finds nothing left to do.
//
// Where it deliberately differs from Linux blkback:
//  * Ring processing runs in the event handler itself, not in a per-ring kthread woken by it: no
//    wake-up or context switch on dom0 per batch.
//  * The disk applies data when the request is submitted (storage.h); a READ's data is in the
//    guest's pages before the response, which the frontend cannot observe before the response.
//  * The data of a request goes through a host bounce buffer to reach the Disk's contiguous
//    interface; that is simulator plumbing and costs no simulated time (real blkback DMAs into the
//    mapped pages).
//  * No persistent-grant purging (LRU) and no per-ring pending_req pool: every accepted request is
//    in flight at once; blkfront's ring size bounds it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/dom0/backend_bus.h"
#include "models/dom0/backend_kernel.h"
#include "models/dom0/blkif_ring_backend.h"
#include "models/dom0/storage.h"
#include "sim/core/stats.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

struct BlkbackParams {
    domid_t frontend_domid = 1;
    unsigned devid = 51712;
    unsigned pirq = 0;                     // the disk's completion interrupt (granted to dom0)
    unsigned max_ring_page_order = 4;      // Linux xen_blkif_max_ring_order default is 0; 4 = max
    unsigned max_queues = 4;               // Linux: number of dom0 CPUs
    unsigned max_indirect_segments = 256;  // MAX_INDIRECT_SEGMENTS
    bool feature_persistent = true;
    unsigned max_persistent_grants = 1056;  // xen_blkif_max_pgrants
    bool feature_flush = true;
    bool feature_discard = true;
    // How data reaches the guest's pages: map them (Linux blkback) or copy with GNTTABOP_copy
    // (QEMU's xen-block); copy offers no persistent grants.
    enum class GrantMode { map, copy } grant_mode = GrantMode::map;
};

// A disk the platform provides for blkback, as the toolstack and hardware would: the medium, the
// PIRQ of its completion interrupt (granted to dom0), how to raise it, and where its stats go.
struct BlkbackDisk {
    Disk* disk = nullptr;
    unsigned pirq = 0;
    std::function<void(std::uint64_t at_ps)> raise_irq;
    StatsGroup* stats_parent = nullptr;
};
// The disks blkback can serve, by frontend domain and `params` value ("xensim:<vdev>": a vdev is
// unique within one guest only).
using BlkbackDiskTable = std::map<std::pair<domid_t, std::string>, BlkbackDisk>;

class Blkback : public BackendDevice {
  public:
    Blkback(const BlkbackParams& params, Disk& disk, StatsGroup& parent);
    ~Blkback() override;

    // The "vbd" driver's probe (called by the backend bus in thread context): reads `params`,
    // finds the disk in `disks`, and starts a Blkback for it with `tunables` (frontend and devid
    // taken from the node). nullptr if params is missing or names no disk.
    static std::unique_ptr<Blkback> probe(const BackendDeviceNode& node, const BlkbackParams& tunables,
                                          const BlkbackDiskTable& disks, BackendKernel& kernel,
                                          BackendServices& s);
    Blkback(const Blkback&) = delete;
    Blkback& operator=(const Blkback&) = delete;

    // The disk's interrupt line: asks for the PIRQ to be raised at a simulated time (the platform
    // wires it to Hypervisor::raise_pirq_at). Raised once per distinct completion time.
    std::function<void(std::uint64_t at_ps)> raise_irq;

    // Observation points for tracing (set by the platform; behaviour does not depend on them): a
    // batch of requests taken off ring q (accepted, and rejected ones answered at once), and the
    // push of ring q's responses after disk completions, with the ring macro's verdict on
    // notifying.
    struct TraceHooks {
        std::function<void(BackendServices&, unsigned q, unsigned requests, unsigned rejected)> consume;
        std::function<void(BackendServices&, unsigned q, bool notify)> respond;
    };
    TraceHooks trace;

    // probe, in thread context on dom0's vCPU 0.
    void start(BackendKernel& kernel, BackendServices& s);

    // The device's directory vanished (xen_blkbk_remove): rings unmapped, channels closed, the
    // frontend no longer watched. Requests still at the disk complete, their responses dropped.
    void remove(BackendServices& s) override;

    XenbusState state() const { return fsm_.state(); }
    unsigned devid() const { return p_.devid; }
    unsigned queues() const { return static_cast<unsigned>(rings_.size()); }
    bool persistent() const { return persistent_; }
    unsigned ring_page_order() const { return ring_page_order_; }
    // Requests submitted to the disk and not yet answered.
    std::size_t in_flight() const { return in_flight_.size(); }
    std::size_t persistent_grants() const;

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter requests, responses_error, responses_dropped, grant_maps, grant_unmaps, persistent_hits,
            persistent_maps, map_failures, grant_copies, copy_failures, disk_irqs, disk_irqs_empty,
            notifications_sent, notifications_suppressed, connect_failures, disconnects, detaches, batches;
        Distribution batch_size;
    };
    const Stats& stats() const { return stats_; }

  private:
    struct Ring;
    struct Mapping {
        std::uint64_t gfn;
        grant_handle_t handle;
    };
    struct InFlight {
        unsigned ring;
        std::uint64_t id;
        std::uint8_t operation;
        std::int16_t status;
        std::vector<Mapping> unmap;           // non-persistent mappings to undo at completion
        std::vector<std::uint64_t> local;     // grant copy: our pages holding the data
        std::vector<gnttab_copy_t> copy_out;  // grant copy, READ: copies to the guest at completion
    };

    void frontend_changed(BackendServices& s);
    bool connect_rings(BackendServices& s);
    bool map_ring(BackendServices& s, Ring& r, const std::vector<grant_ref_t>& refs);
    void connect(BackendServices& s);
    void disconnect(BackendServices& s);
    void fail(BackendServices& s, const std::string& why);
    void switch_state(XenbusState to);
    void unwatch_frontend();

    void ring_event(BackendServices& s, unsigned q);
    void dispatch(BackendServices& s, unsigned q, BlkbackRequest& req);
    bool map_segments(BackendServices& s, Ring& r, const BlkbackRequest& req, bool readonly,
                      std::vector<std::uint8_t*>& pages, std::vector<Mapping>& unmap);
    void unmap(BackendServices& s, const std::vector<Mapping>& maps);
    std::optional<std::uint64_t> frame(BackendServices& s);
    // Grant copy: `segs` of the guest copied into our pages now (to_guest false), or our pages
    // prepared and the copies to the guest queued in f.copy_out (to_guest true). pages[i] is ours.
    bool copy_segments(BackendServices& s, const std::vector<blkif_request_segment>& segs, bool to_guest,
                       std::vector<std::uint8_t*>& pages, InFlight& f);
    void release_local(const std::vector<std::uint64_t>& pages);
    void disk_irq(BackendServices& s);
    void arm_irq(std::uint64_t at_ns);
    void respond(BackendServices& s, unsigned q, std::uint64_t id, std::uint8_t op, std::int16_t status);

    BlkbackParams p_;
    Disk& disk_;
    StatsGroup group_;
    Stats stats_;
    BackendKernel* kernel_ = nullptr;
    std::string front_, back_;
    XenbusStateMachine fsm_{XenbusSide::backend};
    bool persistent_ = false;
    unsigned ring_page_order_ = 0;
    std::vector<std::unique_ptr<Ring>> rings_;
    evtchn_port_t pirq_port_ = 0;
    std::vector<std::uint64_t> free_frames_;  // unpopulated frames to map grants at
    // Requests at the disk by completion time, then submit order (times nearly always arrive in
    // order, so inserts land at the back).
    std::deque<std::pair<std::uint64_t, InFlight>> in_flight_;
    std::vector<std::uint8_t*> pages_;  // dispatch scratch, reused
    std::vector<std::uint8_t> bounce_;
    std::vector<std::uint64_t> local_pool_;  // grant copy: our free data pages
    bool closing_ = false;
    bool watching_ = false;           // the watch on the frontend's state is registered
    bool irq_armed_ = false;          // a completion interrupt is scheduled ...
    std::uint64_t irq_armed_ns_ = 0;  // ... for this time
};

}  // namespace xensim
