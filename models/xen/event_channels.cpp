#include "models/xen/event_channels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <utility>

namespace xensim {

namespace {

[[noreturn]] void panic(const char* what, unsigned a, unsigned b = 0) {
    std::fprintf(stderr, "xensim: event channels: internal error: %s (%u, %u)\n", what, a, b);
    std::abort();
}

// The errnos this engine can return, named as the "errors" counter labels them.
// Bit helpers on the guest-visible xen_ulong_t arrays (Xen's guest_test_and_set_bit & co.).
bool test_bit(const xen_ulong_t* words, unsigned bit) {
    return (words[bit / EventChannels::kBitsPerWord] >> (bit % EventChannels::kBitsPerWord)) & 1;
}
bool test_and_set_bit(xen_ulong_t* words, unsigned bit) {
    const xen_ulong_t m = xen_ulong_t{1} << (bit % EventChannels::kBitsPerWord);
    xen_ulong_t& w = words[bit / EventChannels::kBitsPerWord];
    const bool old = (w & m) != 0;
    w |= m;
    return old;
}
bool test_and_clear_bit(xen_ulong_t* words, unsigned bit) {
    const xen_ulong_t m = xen_ulong_t{1} << (bit % EventChannels::kBitsPerWord);
    xen_ulong_t& w = words[bit / EventChannels::kBitsPerWord];
    const bool old = (w & m) != 0;
    w &= ~m;
    return old;
}

// One hypercall sub-op: copy the argument in once, run the handler on the copy, copy OUT fields back
// only on success (do_event_channel_op's copy_from_guest / __copy_to_guest pattern).
template <typename T, long (EventChannels::*Fn)(DomId, T&), bool kCopyOut>
long dispatch(EventChannels& self, DomId caller, void* arg) {
    T local;
    std::memcpy(&local, arg, sizeof local);
    const long rc = (self.*Fn)(caller, local);
    if (kCopyOut && rc == 0) std::memcpy(arg, &local, sizeof local);
    return rc;
}

}  // namespace

struct EventChannels::OpRow {
    unsigned cmd;
    const char* name;
    long (*handler)(EventChannels&, DomId, void*);  // nullptr: not modelled, -XEN_ENOSYS
};

// The do_event_channel_op table, in EVTCHNOP_* order.
const EventChannels::OpRow EventChannels::kOpTable[] = {
    {EVTCHNOP_bind_interdomain, "EVTCHNOP_bind_interdomain",
     &dispatch<evtchn_bind_interdomain_t, &EventChannels::op_bind_interdomain, true>},
    {EVTCHNOP_bind_virq, "EVTCHNOP_bind_virq",
     &dispatch<evtchn_bind_virq_t, &EventChannels::op_bind_virq, true>},
    {EVTCHNOP_bind_pirq, "EVTCHNOP_bind_pirq",
     &dispatch<evtchn_bind_pirq_t, &EventChannels::op_bind_pirq, true>},
    {EVTCHNOP_close, "EVTCHNOP_close", &dispatch<evtchn_close_t, &EventChannels::op_close, false>},
    {EVTCHNOP_send, "EVTCHNOP_send", &dispatch<evtchn_send_t, &EventChannels::op_send, false>},
    {EVTCHNOP_status, "EVTCHNOP_status", &dispatch<evtchn_status_t, &EventChannels::op_status, true>},
    {EVTCHNOP_alloc_unbound, "EVTCHNOP_alloc_unbound",
     &dispatch<evtchn_alloc_unbound_t, &EventChannels::op_alloc_unbound, true>},
    {EVTCHNOP_bind_ipi, "EVTCHNOP_bind_ipi", &dispatch<evtchn_bind_ipi_t, &EventChannels::op_bind_ipi, true>},
    {EVTCHNOP_bind_vcpu, "EVTCHNOP_bind_vcpu",
     &dispatch<evtchn_bind_vcpu_t, &EventChannels::op_bind_vcpu, false>},
    {EVTCHNOP_unmask, "EVTCHNOP_unmask", &dispatch<evtchn_unmask_t, &EventChannels::op_unmask, false>},
    {EVTCHNOP_reset, "EVTCHNOP_reset", nullptr},
    {EVTCHNOP_init_control, "EVTCHNOP_init_control", nullptr},
    {EVTCHNOP_expand_array, "EVTCHNOP_expand_array", nullptr},
    {EVTCHNOP_set_priority, "EVTCHNOP_set_priority", nullptr},
    {14, "EVTCHNOP_reset_cont", nullptr},  // EVTCHNOP_reset_cont is defined only #ifdef __XEN__
};

EventChannels::EventChannels(DomainTable& domains, StatsGroup& stats, UpcallKick kick)
    : domains_(domains),
      kick_(std::move(kick)),
      ops_(stats, "ops", "calls", "EVTCHNOP_* hypercalls by sub-op"),
      op_slots_(std::size(kOpTable) + 1, nullptr),
      errors_(stats, "errors", "calls", "EVTCHNOP_* hypercalls that failed, by errno"),
      sends_(stats, "sends", "calls", "successful EVTCHNOP_send calls"),
      virqs_(stats, "virqs", "events", "VIRQs raised by the hypervisor that found a bound port"),
      pirqs_(stats, "pirqs", "events", "physical IRQs raised by devices that found a bound port"),
      upcalls_(stats, "upcalls", "events", "evtchn_upcall_pending 0->1 edges (vCPU kicks)"),
      already_pending_(stats, "already_pending", "events", "notifications coalesced: port already pending"),
      masked_(stats, "masked", "events", "notifications held: port newly pending but masked"),
      dropped_unbound_(stats, "dropped_unbound", "events", "EVTCHNOP_send on an unbound port (dropped)"),
      ports_in_use_peak_(stats, "ports_in_use_peak", "ports", "peak ports in use over all domains") {}

const char* EventChannels::op_name(unsigned cmd) {
    for (const OpRow& r : kOpTable)
        if (r.cmd == cmd) return r.name;
    return "EVTCHNOP_unknown";
}

bool EventChannels::virq_is_global(unsigned virq) {
    switch (virq) {
        case VIRQ_TIMER:
        case VIRQ_DEBUG:
        case VIRQ_XENOPROF:
        case VIRQ_XENPMU:
            return false;
        default:
            return true;  // including VIRQ_ARCH_0..7: x86 arch_virq_is_global() is true
    }
}

DomainRecord& EventChannels::record(DomId dom) {
    DomainRecord* rec = domains_.find(dom);
    if (!rec) panic("domain not in the domain table", dom);
    return *rec;
}

void EventChannels::domain_created(DomId domid) {
    DomainRecord& rec = record(domid);
    if (rec.vcpus > XEN_LEGACY_MAX_VCPUS) panic("more vCPUs than vcpu_info slots", domid, rec.vcpus);
    auto it = doms_.find(domid);
    if (it != doms_.end()) {
        // Peers may hold interdomain ports pointing here: only an idle (e.g. destroyed) table may go.
        if (it->second.active != 0) panic("domain_created on a domain with ports in use", domid);
        doms_.erase(it);
    }
    // evtchn_init: the first bucket exists from the start and port 0 is reserved.
    DomainChannels& d = doms_[domid];
    d.channels.resize(kPortsPerBucket);
    d.channels[0].state = ECS_RESERVED;
    d.virq_to_evtchn.assign(rec.vcpus, {});
}

EventChannels::DomainChannels& EventChannels::channels_of(DomId dom) {
    auto it = doms_.find(dom);
    if (it != doms_.end()) return it->second;
    domain_created(dom);
    return doms_.at(dom);
}

void EventChannels::set_max_evtchn_port(DomId domid, evtchn_port_t max_port) {
    channels_of(domid).max_evtchn_port = max_port;
}

unsigned EventChannels::ports_in_use(DomId dom) const {
    auto it = doms_.find(dom);
    return it == doms_.end() ? 0 : it->second.active;
}

// The default XSM policy's XSM_TARGET: a domain may act on itself; a privileged domain on any.
bool EventChannels::may_act_on(DomId caller, DomId target) {
    return caller == target || record(caller).privileged;
}

// get_free_port + evtchn_allocate_port: the lowest free port, growing the table by a bucket when the
// search runs past its end. The port stays ECS_FREE until the caller binds it.
long EventChannels::get_free_port(DomainChannels& d) {
    if (d.is_dying) return -XEN_EINVAL;
    for (evtchn_port_t port = 0; port <= d.max_evtchn_port; ++port) {
        if (port >= kMaxPorts) return -XEN_ENOSPC;
        if (d.port_is_valid(port)) {
            if (d.channels[port].state == ECS_FREE) return port;
            continue;
        }
        d.channels.resize(d.channels.size() + kPortsPerBucket);
        return port;
    }
    return -XEN_ENOSPC;
}

void EventChannels::bind_port(DomainChannels& d, Channel& chn, std::uint8_t state) {
    chn.state = state;
    ++d.active;
    ports_in_use_peak_.raise_to(++ports_in_use_);
}

// evtchn_free: clear the pending bit (evtchn_2l_clear_pending; mask and selector are left alone) and
// reset the port to ECS_FREE notifying vCPU 0, no longer Xen-attached (xen_consumer = 0).
void EventChannels::evtchn_free(DomId dom, DomainChannels& d, evtchn_port_t port) {
    test_and_clear_bit(record(dom).shared_info().evtchn_pending, port);
    if (d.channels[port].xen_consumer) xen_consumers_.erase({dom, port});
    d.channels[port] = Channel{};
    --d.active;
    --ports_in_use_;
}

long EventChannels::evtchn_close(DomId dom, evtchn_port_t port, bool guest) {
    DomainChannels& d = channels_of(dom);
    if (!d.port_is_valid(port)) return -XEN_EINVAL;
    Channel& chn = d.channels[port];
    // "Guest cannot close a Xen-attached event channel" (Xen 4.17 evtchn_close); Xen itself can
    // (evtchn_destroy, free_xen_event_channel: guest = false).
    if (guest && chn.xen_consumer) return -XEN_EINVAL;
    switch (chn.state) {
        case ECS_FREE:
        case ECS_RESERVED:
            return -XEN_EINVAL;
        case ECS_UNBOUND:
        case ECS_IPI:
            break;
        case ECS_PIRQ:
            d.pirq_to_evtchn[chn.pirq] = 0;
            break;
        case ECS_VIRQ: {
            const unsigned v = virq_is_global(chn.virq) ? 0 : chn.notify_vcpu_id;
            if (d.virq_to_evtchn.at(v)[chn.virq] != port) panic("virq_to_evtchn out of sync", dom, port);
            d.virq_to_evtchn[v][chn.virq] = 0;
            break;
        }
        case ECS_INTERDOMAIN: {
            DomainChannels& d2 = channels_of(chn.remote_dom);
            if (!d2.port_is_valid(chn.remote_port)) panic("interdomain peer port invalid", dom, port);
            Channel& chn2 = d2.channels[chn.remote_port];
            if (chn2.state != ECS_INTERDOMAIN || chn2.remote_dom != dom || chn2.remote_port != port)
                panic("interdomain peer not connected back", dom, port);
            chn2.state = ECS_UNBOUND;
            chn2.remote_dom = dom;
            chn2.remote_port = 0;
            break;
        }
        default:
            panic("port in an unmodelled state", dom, port);
    }
    evtchn_free(dom, d, port);
    return 0;
}

// evtchn_2l_set_pending followed by vcpu_mark_events_pending.
EventChannels::SendResult::Outcome EventChannels::set_pending(DomId dom, unsigned vcpu, evtchn_port_t port) {
    DomainRecord& rec = record(dom);
    shared_info_t& si = rec.shared_info();
    if (test_and_set_bit(si.evtchn_pending, port)) {
        already_pending_.inc();
        return SendResult::already_pending;
    }
    if (test_bit(si.evtchn_mask, port)) {
        masked_.inc();
        return SendResult::masked;
    }
    vcpu_info_t& vi = rec.vcpu_info(vcpu);
    if (test_and_set_bit(&vi.evtchn_pending_sel, port / kBitsPerWord))
        return SendResult::upcall_already_pending;
    if (vi.evtchn_upcall_pending) return SendResult::upcall_already_pending;
    vi.evtchn_upcall_pending = 1;
    return SendResult::kicked;
}

// evtchn_2l_unmask followed by vcpu_mark_events_pending; true when the upcall went 0 -> 1.
bool EventChannels::unmask_2l(DomId dom, unsigned vcpu, evtchn_port_t port) {
    DomainRecord& rec = record(dom);
    shared_info_t& si = rec.shared_info();
    if (!test_and_clear_bit(si.evtchn_mask, port) || !test_bit(si.evtchn_pending, port)) return false;
    vcpu_info_t& vi = rec.vcpu_info(vcpu);
    if (test_and_set_bit(&vi.evtchn_pending_sel, port / kBitsPerWord)) return false;
    if (vi.evtchn_upcall_pending) return false;
    vi.evtchn_upcall_pending = 1;
    return true;
}

void EventChannels::kick(DomId dom, unsigned vcpu, bool upcall_raised) {
    if (!upcall_raised) return;
    upcalls_.inc();
    if (kick_) kick_(dom, vcpu);
}

long EventChannels::hypercall(DomId caller, unsigned cmd, void* arg) {
    record(caller);  // current->domain always exists
    const OpRow* row = std::find_if(std::begin(kOpTable), std::end(kOpTable),
                                    [cmd](const OpRow& r) { return r.cmd == cmd; });
    long rc;
    if (row == std::end(kOpTable)) {
        ++ops_.at(op_slots_.back(), "EVTCHNOP_unknown");  // one label for every unknown cmd
        rc = -XEN_ENOSYS;
    } else {
        ++ops_.at(op_slots_[static_cast<std::size_t>(row - std::begin(kOpTable))], row->name);
        if (!row->handler)
            rc = -XEN_ENOSYS;
        else if (!arg)
            rc = -XEN_EFAULT;
        else
            rc = row->handler(*this, caller, arg);
    }
    if (rc < 0) errors_.inc(xen_errno_name(rc));
    return rc;
}

long EventChannels::op_alloc_unbound(DomId caller, evtchn_alloc_unbound_t& a) {
    const DomId dom = a.dom == DOMID_SELF ? caller : a.dom;
    if (!domains_.find(dom)) return -XEN_ESRCH;
    DomainChannels& d = channels_of(dom);
    const long port = get_free_port(d);
    if (port < 0) return port;
    if (!may_act_on(caller, dom)) return -XEN_EPERM;  // the port found stays ECS_FREE
    Channel& chn = d.channels[port];
    bind_port(d, chn, ECS_UNBOUND);
    chn.remote_dom = a.remote_dom == DOMID_SELF ? caller : a.remote_dom;
    a.port = static_cast<evtchn_port_t>(port);
    return 0;
}

long EventChannels::alloc_xen_channel(DomId dom, unsigned vcpu, DomId remote,
                                      std::function<void(unsigned)> consumer) {
    if (!domains_.find(dom)) return -XEN_ESRCH;
    DomainChannels& d = channels_of(dom);
    const long port = get_free_port(d);
    if (port < 0) return port;
    Channel& chn = d.channels[port];
    bind_port(d, chn, ECS_UNBOUND);
    chn.remote_dom = remote;
    chn.notify_vcpu_id = static_cast<std::uint16_t>(vcpu);
    chn.xen_consumer = true;
    xen_consumers_[{dom, static_cast<evtchn_port_t>(port)}] = std::move(consumer);
    return port;
}

void EventChannels::notify_via_xen(DomId dom, evtchn_port_t port) {
    DomainChannels& d = channels_of(dom);
    if (!d.port_is_valid(port)) return;
    const Channel& chn = d.channels[port];
    if (!chn.xen_consumer || chn.state != ECS_INTERDOMAIN) return;  // nobody bound the other end yet
    const Channel& rchn = channels_of(chn.remote_dom).channels.at(chn.remote_port);
    SendResult::Outcome o = set_pending(chn.remote_dom, rchn.notify_vcpu_id, chn.remote_port);
    sends_.inc();
    kick(chn.remote_dom, rchn.notify_vcpu_id, o == SendResult::kicked);
}

long EventChannels::op_bind_interdomain(DomId caller, evtchn_bind_interdomain_t& b) {
    const DomId rdom = b.remote_dom == DOMID_SELF ? caller : b.remote_dom;
    if (!domains_.find(rdom)) return -XEN_ESRCH;
    DomainChannels& ld = channels_of(caller);
    DomainChannels& rd = channels_of(rdom);
    const long lport = get_free_port(ld);
    if (lport < 0) return lport;
    if (!rd.port_is_valid(b.remote_port)) return -XEN_EINVAL;
    Channel& rchn = rd.channels[b.remote_port];
    if (rchn.state != ECS_UNBOUND || rchn.remote_dom != caller) return -XEN_EINVAL;

    Channel& lchn = ld.channels[lport];
    bind_port(ld, lchn, ECS_INTERDOMAIN);
    lchn.remote_dom = rdom;
    lchn.remote_port = b.remote_port;
    rchn.state = ECS_INTERDOMAIN;
    rchn.remote_dom = caller;
    rchn.remote_port = static_cast<evtchn_port_t>(lport);
    b.local_port = static_cast<evtchn_port_t>(lport);

    // "We may have lost notifications on the remote unbound port": always notify the local port.
    const unsigned v = lchn.notify_vcpu_id;
    kick(caller, v, set_pending(caller, v, b.local_port) == SendResult::kicked);
    return 0;
}

long EventChannels::op_bind_virq(DomId caller, evtchn_bind_virq_t& b) {
    if (b.virq >= NR_VIRQS) return -XEN_EINVAL;
    if (virq_is_global(b.virq) && b.vcpu != 0) return -XEN_EINVAL;
    if (b.vcpu >= record(caller).vcpus) return -XEN_ENOENT;
    DomainChannels& d = channels_of(caller);
    if (d.virq_to_evtchn[b.vcpu][b.virq] != 0) return -XEN_EEXIST;
    const long port = get_free_port(d);
    if (port < 0) return port;
    Channel& chn = d.channels[port];
    bind_port(d, chn, ECS_VIRQ);
    chn.notify_vcpu_id = static_cast<std::uint16_t>(b.vcpu);
    chn.virq = b.virq;
    d.virq_to_evtchn[b.vcpu][b.virq] = b.port = static_cast<evtchn_port_t>(port);
    return 0;
}

long EventChannels::op_bind_ipi(DomId caller, evtchn_bind_ipi_t& b) {
    if (b.vcpu >= record(caller).vcpus) return -XEN_ENOENT;
    DomainChannels& d = channels_of(caller);
    const long port = get_free_port(d);
    if (port < 0) return port;
    Channel& chn = d.channels[port];
    bind_port(d, chn, ECS_IPI);
    chn.notify_vcpu_id = static_cast<std::uint16_t>(b.vcpu);
    b.port = static_cast<evtchn_port_t>(port);
    return 0;
}

long EventChannels::op_bind_pirq(DomId caller, evtchn_bind_pirq_t& b) {
    // evtchn_bind_pirq: range, then permission, then not already bound; notifications go to vCPU 0.
    if (b.pirq >= kNrPirqs) return -XEN_EINVAL;
    DomainChannels& d = channels_of(caller);
    auto it = d.pirq_to_evtchn.find(b.pirq);
    if (it == d.pirq_to_evtchn.end()) return -XEN_EPERM;
    if (it->second != 0) return -XEN_EEXIST;
    const long port = get_free_port(d);
    if (port < 0) return port;
    Channel& chn = d.channels[port];
    bind_port(d, chn, ECS_PIRQ);
    chn.pirq = b.pirq;
    chn.notify_vcpu_id = 0;
    it->second = static_cast<evtchn_port_t>(port);
    b.port = static_cast<evtchn_port_t>(port);
    return 0;
}

void EventChannels::grant_pirq(DomId dom, unsigned pirq) {
    if (pirq >= kNrPirqs) panic("PIRQ out of range", dom, pirq);
    channels_of(dom).pirq_to_evtchn.emplace(pirq, 0);
}

void EventChannels::send_pirq(DomId dom, unsigned pirq) {
    auto it = doms_.find(dom);
    if (it == doms_.end()) return;
    DomainChannels& d = it->second;
    auto p = d.pirq_to_evtchn.find(pirq);
    if (p == d.pirq_to_evtchn.end() || p->second == 0) return;  // not bound: dropped
    const unsigned target = d.channels[p->second].notify_vcpu_id;
    pirqs_.inc();
    kick(dom, target, set_pending(dom, target, p->second) == SendResult::kicked);
}

long EventChannels::op_close(DomId caller, evtchn_close_t& c) { return evtchn_close(caller, c.port, true); }

long EventChannels::op_send(DomId caller, evtchn_send_t& s) {
    DomainChannels& ld = channels_of(caller);
    if (!ld.port_is_valid(s.port)) return -XEN_EINVAL;
    const Channel& lchn = ld.channels[s.port];
    // "Guest cannot send via a Xen-attached event channel" (evtchn_send, before the XSM hook).
    if (lchn.xen_consumer) return -XEN_EINVAL;
    SendResult r{};
    switch (lchn.state) {
        case ECS_INTERDOMAIN: {
            const Channel& rchn = channels_of(lchn.remote_dom).channels.at(lchn.remote_port);
            if (rchn.xen_consumer) {  // evtchn_send: xen_notification_fn instead of set_pending
                sends_.inc();
                last_send_ = {lchn.remote_dom, rchn.notify_vcpu_id, lchn.remote_port, SendResult::to_xen};
                auto it = xen_consumers_.find({lchn.remote_dom, lchn.remote_port});
                if (it != xen_consumers_.end()) it->second(rchn.notify_vcpu_id);
                return 0;
            }
            r = {lchn.remote_dom, rchn.notify_vcpu_id, lchn.remote_port, SendResult::kicked};
            break;
        }
        case ECS_IPI:
            r = {caller, lchn.notify_vcpu_id, s.port, SendResult::kicked};
            break;
        case ECS_UNBOUND:
            r = {caller, lchn.notify_vcpu_id, s.port, SendResult::dropped};
            break;
        default:
            return -XEN_EINVAL;
    }
    if (r.outcome == SendResult::dropped)
        dropped_unbound_.inc();
    else
        r.outcome = set_pending(r.target_dom, r.target_vcpu, r.target_port);
    sends_.inc();
    last_send_ = r;
    kick(r.target_dom, r.target_vcpu, r.outcome == SendResult::kicked);
    return 0;
}

long EventChannels::evtchn_status(DomId caller, evtchn_status_t& st) {
    const DomId dom = st.dom == DOMID_SELF ? caller : st.dom;
    if (!domains_.find(dom)) return -XEN_ESRCH;
    DomainChannels& d = channels_of(dom);
    if (!d.port_is_valid(st.port)) return -XEN_EINVAL;
    if (!may_act_on(caller, dom)) return -XEN_EPERM;
    const Channel& chn = d.channels[st.port];
    switch (chn.state) {
        case ECS_FREE:
        case ECS_RESERVED:
            st.status = EVTCHNSTAT_closed;
            break;
        case ECS_UNBOUND:
            st.status = EVTCHNSTAT_unbound;
            st.u.unbound.dom = chn.remote_dom;
            break;
        case ECS_INTERDOMAIN:
            st.status = EVTCHNSTAT_interdomain;
            st.u.interdomain.dom = chn.remote_dom;
            st.u.interdomain.port = chn.remote_port;
            break;
        case ECS_VIRQ:
            st.status = EVTCHNSTAT_virq;
            st.u.virq = chn.virq;
            break;
        case ECS_IPI:
            st.status = EVTCHNSTAT_ipi;
            break;
        case ECS_PIRQ:
            st.status = EVTCHNSTAT_pirq;
            st.u.pirq = chn.pirq;
            break;
        default:
            panic("port in an unmodelled state", dom, st.port);
    }
    st.vcpu = chn.notify_vcpu_id;
    return 0;
}

long EventChannels::op_status(DomId caller, evtchn_status_t& s) { return evtchn_status(caller, s); }

long EventChannels::status(DomId dom, evtchn_port_t port, evtchn_status_t& out) {
    out.dom = dom;
    out.port = port;
    if (!domains_.find(dom)) return -XEN_ESRCH;
    return evtchn_status(dom, out);
}

long EventChannels::op_bind_vcpu(DomId caller, evtchn_bind_vcpu_t& b) {
    if (b.vcpu >= record(caller).vcpus) return -XEN_ENOENT;
    DomainChannels& d = channels_of(caller);
    if (!d.port_is_valid(b.port)) return -XEN_EINVAL;
    Channel& chn = d.channels[b.port];
    // "Guest cannot re-bind a Xen-attached event channel" (evtchn_bind_vcpu).
    if (chn.xen_consumer) return -XEN_EINVAL;
    switch (chn.state) {
        case ECS_VIRQ:
            if (!virq_is_global(chn.virq)) return -XEN_EINVAL;
            chn.notify_vcpu_id = static_cast<std::uint16_t>(b.vcpu);
            return 0;
        case ECS_UNBOUND:
        case ECS_INTERDOMAIN:
        case ECS_PIRQ:
            chn.notify_vcpu_id = static_cast<std::uint16_t>(b.vcpu);
            return 0;
        default:
            return -XEN_EINVAL;
    }
}

long EventChannels::op_unmask(DomId caller, evtchn_unmask_t& u) {
    DomainChannels& d = channels_of(caller);
    if (!d.port_is_valid(u.port)) return -XEN_EINVAL;
    const Channel& chn = d.channels[u.port];
    // evtchn_port_unmask does nothing unless evtchn_usable(): a Xen-attached port, or a free or reserved
    // one, is left as it is (mask bit included) and the hypercall still returns 0.
    if (chn.xen_consumer || chn.state == ECS_FREE || chn.state == ECS_RESERVED) return 0;
    const unsigned v = chn.notify_vcpu_id;
    kick(caller, v, unmask_2l(caller, v, u.port));
    return 0;
}

void EventChannels::send_virq(DomId dom, unsigned vcpu, unsigned virq) {
    if (virq >= NR_VIRQS) panic("VIRQ out of range", dom, virq);
    if (!domains_.find(dom)) return;
    auto it = doms_.find(dom);
    if (it == doms_.end()) return;  // no port bound yet
    DomainChannels& d = it->second;
    const bool global = virq_is_global(virq);
    const unsigned table_vcpu = global ? 0 : vcpu;
    if (table_vcpu >= d.virq_to_evtchn.size()) panic("VIRQ raised on a vCPU the domain lacks", dom, vcpu);
    const evtchn_port_t port = d.virq_to_evtchn[table_vcpu][virq];
    if (port == 0) return;
    // send_guest_vcpu_virq notifies the vCPU raised on; send_guest_global_virq the port's notify vCPU.
    const unsigned target = global ? d.channels[port].notify_vcpu_id : vcpu;
    virqs_.inc();
    kick(dom, target, set_pending(dom, target, port) == SendResult::kicked);
}

void EventChannels::domain_destroyed(DomId domid) {
    if (!doms_.count(domid) && !domains_.find(domid)) return;  // never known: nothing to close
    DomainChannels& d = channels_of(domid);
    d.is_dying = true;
    // evtchn_destroy: close every port from the top of the table down to port 1.
    for (auto port = static_cast<evtchn_port_t>(d.channels.size()); --port;) {
        const std::uint8_t s = d.channels[port].state;
        if (s != ECS_FREE && s != ECS_RESERVED) evtchn_close(domid, port, false);
    }
}

}  // namespace xensim
