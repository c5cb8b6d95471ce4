#include "models/dom0/xenstored.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <vector>

namespace xensim {

Xenstored::RingConn::RingConn(StatsGroup& parent, DomId d)
    : dom(d),
      group("dom" + std::to_string(d), &parent),
      requests(group, "requests", "requests", "requests read from this domain's ring, by XS type"),
      bytes_in(group, "bytes_in", "bytes", "request bytes consumed from the ring"),
      bytes_out(group, "bytes_out", "bytes", "reply and watch-event bytes written to the ring"),
      notifications(group, "notifications", "notifications", "EVTCHNOP_send to the domain"),
      errors(group, "errors", "connections", "ring protocol violations (bad index, oversized message)") {}

Xenstored::Xenstored(XenStore& store, StatsGroup& parent, std::mutex* lock)
    : store_(store), lock_(lock), group_("xenstored", &parent) {}

namespace {
// Locks the optional mutex for the current scope.
struct MaybeLock {
    explicit MaybeLock(std::mutex* m) : m_(m) {
        if (m_) m_->lock();
    }
    ~MaybeLock() {
        if (m_) m_->unlock();
    }
    std::mutex* m_;
};
}  // namespace

long Xenstored::connect_domain(BackendServices& s, DomId dom, evtchn_port_t remote_port) {
    // A free frame of ours to map the ring at (as xenstored's gnttab mapping lands in its VA).
    auto slot = s.alloc_page();
    if (!slot) return -XEN_ENOMEM;
    s.free_page(*slot);
    gnttab_map_grant_ref_t map{};
    map.host_addr = *slot << kPageShift;
    map.flags = GNTMAP_host_map;
    map.ref = GNTTAB_RESERVED_XENSTORE;
    map.dom = dom;
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, reinterpret_cast<unsigned long>(&map), 1,
                0, 0);
    if (map.status != GNTST_okay) return map.status;
    return add_connection(s, dom, dom, remote_port, *slot, false);
}

long Xenstored::connect_local(BackendServices& s, DomId dom0, Gfn ring_gfn, evtchn_port_t kernel_port) {
    return add_connection(s, dom0, DOMID_SELF, kernel_port, ring_gfn, true);
}

long Xenstored::add_connection(BackendServices& s, DomId dom, DomId remote_dom, evtchn_port_t remote_port,
                               Gfn ring_gfn, bool privileged) {
    evtchn_bind_interdomain_t bind{};
    bind.remote_dom = remote_dom;
    bind.remote_port = remote_port;
    if (long r = s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                             reinterpret_cast<unsigned long>(&bind), 0, 0, 0))
        return r;
    auto c = std::make_unique<RingConn>(group_, dom);
    {
        MaybeLock guard(lock_);
        c->conn = store_.connect(dom, privileged);
        if (!privileged) store_.introduce_domain(dom);
    }
    c->privileged = privileged;
    c->ring_gfn = ring_gfn;
    c->port = bind.local_port;
    by_dom_[dom] = c.get();
    by_conn_[c->conn] = c.get();
    by_port_[bind.local_port] = std::move(c);
    return bind.local_port;
}

bool Xenstored::connection_failed(DomId dom) const {
    auto it = by_dom_.find(dom);
    return it != by_dom_.end() && it->second->dead;
}

XsConnId Xenstored::connection_of(DomId dom) const {
    auto it = by_dom_.find(dom);
    return it == by_dom_.end() ? 0 : it->second->conn;
}

unsigned Xenstored::outstanding(DomId dom) const {
    auto it = by_dom_.find(dom);
    return it == by_dom_.end() ? 0 : it->second->outstanding;
}

std::size_t Xenstored::queued_bytes(DomId dom) const {
    auto it = by_dom_.find(dom);
    return it == by_dom_.end() ? 0 : it->second->out_bytes;
}

std::uint64_t Xenstored::events_dropped(DomId dom) const {
    auto it = by_dom_.find(dom);
    return it == by_dom_.end() ? 0 : it->second->dropped_events;
}

// domain_can_read's quota-outstanding check (the index check is serve's).
bool Xenstored::may_read(const RingConn& c) const {
    unsigned quota = store_.quota().outstanding;
    return c.privileged || quota == 0 || c.outstanding + c.parser.ready_count() < quota;
}

void Xenstored::on_event(BackendServices& s, evtchn_port_t port) {
    auto it = by_port_.find(port);
    if (it == by_port_.end()) return;
    serve(s, *it->second);
    collect_events();
    flush_pending(s);
    // xenstored's main loop keeps reading a connection while conn_can_read: a connection held back
    // by its outstanding quota resumes as soon as its replies went into the ring.
    for (bool again = true; again;) {
        again = false;
        // Serving a connection changes only its own membership of throttled_: walk a snapshot.
        std::vector<evtchn_port_t> throttled(throttled_.begin(), throttled_.end());
        for (evtchn_port_t p : throttled) {
            RingConn& c = *by_port_.at(p);
            if (!c.throttled || c.dead || !may_read(c)) continue;
            serve(s, c);
            again = true;
        }
        if (!again) break;
        collect_events();
        flush_pending(s);
    }
}

// xenstored's main loop offers every connection with a non-empty out_list to handle_output; here
// only those are visited (pending_out_), in port order as the walk over every connection was.
void Xenstored::flush_pending(BackendServices& s) {
    for (auto it = pending_out_.begin(); it != pending_out_.end();) {
        RingConn& c = *by_port_.at(*it);
        flush(s, c);  // touches only c: no other port joins or leaves the set meanwhile
        it = c.dead || c.out.empty() ? pending_out_.erase(it) : std::next(it);
    }
}

void Xenstored::queue(RingConn& c, const XsMessage& m, bool reply) {
    RingConn::Pending p{{}, reply};
    if (!xs_serialize(m, p.bytes)) return;
    if (!reply && !c.privileged && store_.quota().memory &&
        c.out_bytes + p.bytes.size() > store_.quota().memory) {  // send_event: domain_memory_add_chk
        ++c.dropped_events;
        return;
    }
    c.out_bytes += p.bytes.size();
    if (reply) ++c.outstanding;  // send_reply: domain_outstanding_inc
    c.out.push_back(std::move(p));
    pending_out_.insert(c.port);
}

void Xenstored::serve(BackendServices& s, RingConn& c) {
    if (c.dead) return;
    auto* intf = reinterpret_cast<xenstore_domain_interface*>(s.page(c.ring_gfn));
    XENSTORE_RING_IDX cons = intf->req_cons, prod = intf->req_prod;
    xen_rmb();
    XENSTORE_RING_IDX used = prod - cons;
    if (used > XENSTORE_RING_SIZE) {  // domain_can_read's check: a producer beyond the ring is bogus
        intf->error = XENSTORE_ERROR_RINGIDX;
        c.dead = true;
        c.errors.inc();
        return;
    }
    std::string bytes(used, '\0');
    for (XENSTORE_RING_IDX i = 0; i < used; ++i) bytes[i] = intf->req[MASK_XENSTORE_IDX(cons + i)];
    // Take messages while domain_can_read allows: stop between messages once the replies to come
    // would reach the outstanding quota; the rest stays in the ring.
    std::size_t taken = 0;
    while (taken < used && !c.parser.error() && may_read(c)) {
        std::size_t n = std::min<std::size_t>(c.parser.until_boundary(), used - taken);
        c.parser.feed(bytes.data() + taken, n);
        taken += n;
    }
    if (c.parser.error()) taken = used;  // the connection is ignored from now on
    c.throttled = taken < used;
    if (c.throttled)
        throttled_.insert(c.port);
    else
        throttled_.erase(c.port);
    xen_mb();
    intf->req_cons = cons + static_cast<XENSTORE_RING_IDX>(taken);
    c.bytes_in.inc(taken);
    if (taken) s.compute(s.costs().copy_cost(taken));
    if (c.parser.error()) {
        intf->error = c.parser.error_code();
        c.dead = true;
        c.errors.inc();
        return;
    }
    while (c.parser.has_message()) {
        XsMessage req = c.parser.pop();
        c.requests.inc(XenStore::type_name(req.type));
        s.compute(s.costs().xenstored_request);
        MaybeLock guard(lock_);
        for (const XsMessage& reply : store_.handle(c.conn, req)) queue(c, reply, true);
    }
}

void Xenstored::collect_events() {
    MaybeLock guard(lock_);
    // Only the connections the engine holds events for (others may be a socket server's clients of
    // the same store: theirs are left alone). Each connection's queue is its own, so the order of
    // this walk is not observable.
    std::vector<RingConn*> ready;
    for (XsConnId id : store_.connections_with_events()) {
        auto it = by_conn_.find(id);
        if (it != by_conn_.end()) ready.push_back(it->second);
    }
    for (RingConn* c : ready)
        for (const XsMessage& ev : store_.take_events(c->conn)) queue(*c, ev, false);
}

void Xenstored::flush(BackendServices& s, RingConn& c) {
    if (c.dead || c.out.empty()) return;
    auto* intf = reinterpret_cast<xenstore_domain_interface*>(s.page(c.ring_gfn));
    XENSTORE_RING_IDX cons = intf->rsp_cons, prod = intf->rsp_prod;
    xen_mb();
    XENSTORE_RING_IDX used = prod - cons;
    if (used > XENSTORE_RING_SIZE) {  // the guest moved rsp_cons past what we produced
        intf->error = XENSTORE_ERROR_RINGIDX;
        c.dead = true;
        c.errors.inc();
        return;
    }
    std::size_t n = std::min<std::size_t>(XENSTORE_RING_SIZE - used, c.out_bytes);
    if (n == 0) return;  // full: the guest's next event (after it reads) resumes us
    for (std::size_t i = 0; i < n;) {
        const RingConn::Pending& p = c.out.front();
        std::size_t k = std::min(n - i, p.bytes.size() - c.out_sent);
        for (std::size_t j = 0; j < k; ++j)
            intf->rsp[MASK_XENSTORE_IDX(prod + i + j)] = p.bytes[c.out_sent + j];
        i += k;
        c.out_sent += k;
        if (c.out_sent == p.bytes.size()) {  // free_buffered_data
            if (p.reply) --c.outstanding;    // domain_outstanding_dec
            c.out.pop_front();
            c.out_sent = 0;
        }
    }
    xen_wmb();
    intf->rsp_prod = prod + static_cast<XENSTORE_RING_IDX>(n);
    c.out_bytes -= n;
    c.bytes_out.inc(n);
    s.compute(s.costs().copy_cost(n));
    evtchn_send_t send{};
    send.port = c.port;
    s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send), 0, 0,
                0);
    c.notifications.inc();
}

}  // namespace xensim
