// xenstored's domain transport: the XenStore ring of each guest, served on dom0's vCPUs.
//
// What is modelled (tools/xenstored/domain.c and io.c; docs/misc/xenstore-ring.txt): the
// toolstack places the guest's ring in a guest frame, records it in the guest's reserved grant
// entry GNTTAB_RESERVED_XENSTORE and allocates the store event channel in the guest for dom0.
// connect_domain() then does what xenstored's introduce does: maps the ring through that grant
// (GNTTABOP_map_grant_ref), binds the channel (EVTCHNOP_bind_interdomain), and the engine
// learns the domain (@introduceDomain fires). On every event of a connection, on_event():
//   - copies the request bytes between req_cons and req_prod out of the shared ring once, after
//     checking the indexes (a producer more than a ring ahead is a bogus guest: the connection is
//     marked with XENSTORE_ERROR_RINGIDX in the ring's error field and ignored from then on, as
//     xenstored's ignore_connection), and frames them with XsWireParser (an oversized message
//     length gets XENSTORE_ERROR_PROTO the same way);
//   - hands each complete request to the engine (XenStore::handle) and charges xenstored's cost
//     per request (cost model: xenstored_request, plus copying the bytes);
//   - queues the replies and every watch event the request caused — for any connection — and
//     writes what fits behind rsp_prod, notifying each guest whose ring it wrote, in port order.
//     xenstored's main loop (core.c) offers every connection to handle_output and asks each for
//     input on every pass; here only the connections with something to do are visited: those the
//     engine holds events for (XenStore::connections_with_events), those with queued output
//     (pending_out_) and those throttled by the outstanding quota (throttled_), the last two kept in
//     port order so that notifications go out in the order the walk over every connection gave.
//     The cost of a request no longer grows with the number of guests.
// Bounds on what a guest can make dom0 hold (unprivileged connections only, as
// domain_is_unprivileged; quotas from XsQuota):
//   - outstanding requests (ACC_OUTST, 20): a request is outstanding from when it is read until its
//     reply is wholly in the response ring (send_reply's domain_outstanding_inc,
//     free_buffered_data's domain_outstanding_dec). domain_can_read refuses to read while a domain
//     has quota-outstanding requests, so the rest stays in the request ring (req_cons does not move)
//     and a guest that never takes its replies stalls itself: at most 20 replies wait in dom0. Reading
//     stops between messages, never inside one. When replies drain (the guest's next event, or
//     this very event's flush) reading resumes, as xenstored's main loop polls a readable domain.
//   - queued watch events (ACC_MEM, 2.5 MB): send_event drops an event when
//     domain_memory_add_chk fails; here an event is dropped when the connection's queued output
//     (replies and events not yet in the ring) plus the event would exceed quota.memory.
// Counters per connected domain: requests by XS type, bytes in and out, notifications, errors.
//
// Fidelity limits: xenstored's own process scheduling inside dom0 is folded into the per-request
// cost (its wake-up from the event-channel device is not a separate dom0 context switch); no
// ring reconnection (server_features is 0). ACC_MEM counts only the connection's queued output here
// (xenstored also counts the domain's nodes and transaction copies in it); a request stays
// outstanding until its reply is in the ring, not also until the watch events it caused are
// (xenstored's pend.ref.event_cnt); no watch-event timeout (timeout_watch_event_msec).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "models/dom0/backend_services.h"
#include "models/xen/guest_memory.h"
#include "models/xen/xenstore_store.h"
#include "sim/core/stats.h"

namespace xensim {

class Xenstored {
  public:
    // `lock`, when given, is held around every engine call (a socket server may share the store).
    Xenstored(XenStore& store, StatsGroup& parent, std::mutex* lock = nullptr);

    // Introduce `dom`: map its ring (reserved grant), bind its store channel (`remote_port`, the
    // guest's end). Runs on a dom0 vCPU. Returns dom0's local port, or a negative errno / GNTST.
    long connect_domain(BackendServices& s, DomId dom, evtchn_port_t remote_port);
    // dom0's own kernel connection (xenstored's dom0_init over /dev/xen/xenbus_backend): the ring
    // is a dom0 frame both sides use directly, the channel a dom0-to-dom0 loopback bound to the
    // kernel's end `kernel_port`. Privileged. Returns xenstored's local port or a negative errno.
    long connect_local(BackendServices& s, DomId dom0, Gfn ring_gfn, evtchn_port_t kernel_port);
    // The handler of a connection's local port: serve requests and flush queued output.
    void on_event(BackendServices& s, evtchn_port_t port);

    bool connection_failed(DomId dom) const;
    XsConnId connection_of(DomId dom) const;
    // Introspection for tests of the bounds: replies not yet wholly in the ring, bytes queued for the
    // ring, watch events dropped over the memory quota.
    unsigned outstanding(DomId dom) const;
    std::size_t queued_bytes(DomId dom) const;
    std::uint64_t events_dropped(DomId dom) const;

  private:
    struct RingConn {
        RingConn(StatsGroup& parent, DomId d);
        DomId dom;
        XsConnId conn = 0;
        Gfn ring_gfn = 0;
        evtchn_port_t port = 0;
        XsWireParser parser;
        bool privileged = false;
        struct Pending {
            std::string bytes;  // one serialized reply or watch event
            bool reply;
        };
        std::deque<Pending> out;    // not yet (wholly) in the ring; the front may be partly written
        std::size_t out_sent = 0;   // bytes of out.front() already in the ring
        std::size_t out_bytes = 0;  // bytes in out not yet in the ring
        unsigned outstanding = 0;   // replies in out (ACC_OUTST)
        bool throttled = false;     // requests left in the ring because of the outstanding quota
        std::uint64_t dropped_events = 0;
        bool dead = false;
        StatsGroup group;
        CounterFamily requests;
        Counter bytes_in, bytes_out, notifications, errors;
    };
    // Binds xenstored's end of the channel and registers the connection (introducing a guest).
    long add_connection(BackendServices& s, DomId dom, DomId remote_dom, evtchn_port_t remote_port,
                        Gfn ring_gfn, bool privileged);
    void serve(BackendServices& s, RingConn& c);
    void queue(RingConn& c, const XsMessage& m, bool reply);
    bool may_read(const RingConn& c) const;
    void flush(BackendServices& s, RingConn& c);
    void flush_pending(BackendServices& s);
    void collect_events();

    XenStore& store_;
    std::mutex* lock_;
    StatsGroup group_;
    std::map<evtchn_port_t, std::unique_ptr<RingConn>> by_port_;
    std::map<DomId, RingConn*> by_dom_;
    std::map<XsConnId, RingConn*> by_conn_;
    // The connections with something to do, by port: the order in which the full walk over by_port_
    // would have reached them, so notifications go out in the same order. pending_out_: live with
    // queued output (flush has work); throttled_: requests left in the ring by the outstanding quota.
    std::set<evtchn_port_t> pending_out_;
    std::set<evtchn_port_t> throttled_;
};

}  // namespace xensim
