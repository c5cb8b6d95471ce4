// The event channel engine: EVTCHNOP_* hypercalls over the 2-level event ABI.
//
// What is modelled. An event channel is Xen's virtual interrupt line. Each domain has a table of ports;
// a port is free, unbound (offered to one remote domain), interdomain (connected to a port of another
// domain, or of the same domain for loopback), bound to a VIRQ (a source inside the hypervisor, such as
// the vCPU timer) or bound to an IPI. Notifying a port makes it pending in the *receiver's* shared_info
// page, and the guest's upcall handler finds it by scanning three levels of guest-visible state:
//
//     vcpu_info[v].evtchn_upcall_pending    "something is pending for this vCPU"          (byte)
//     vcpu_info[v].evtchn_pending_sel       bit w: "look at word w of the pending bitmap" (xen_ulong_t)
//     shared_info.evtchn_pending[w] bit b   port 64*w+b is pending; evtchn_mask[w] bit b masks it
//
// set_pending follows evtchn_2l_set_pending exactly: test-and-set the pending bit (already set -> the
// event coalesces, nothing more); if the port is masked stop there; otherwise test-and-set the selector
// bit of the port's notify vCPU; if that was clear, vcpu_mark_events_pending test-and-sets
// evtchn_upcall_pending and, only on its 0 -> 1 edge, the UpcallKick callback runs (the SystemC wrapper
// then injects the HVM callback vector or wakes the vCPU). Unmask follows evtchn_2l_unmask: clearing a
// mask bit of a pending port re-runs the selector / upcall steps, so a held event is delivered. Because
// all three levels are the real shared_info_t / vcpu_info_t of the domain (DomainRecord::shared_info()),
// a frontend's upcall handler in the simulator reads and clears exactly what a Linux guest would.
//
// Source followed: Xen 4.17 xen/common/event_channel.c (get_free_port, evtchn_allocate_port,
// evtchn_alloc_unbound, evtchn_bind_interdomain, evtchn_bind_virq, evtchn_bind_ipi, evtchn_close,
// evtchn_free, evtchn_send, send_guest_vcpu_virq, send_guest_global_virq, evtchn_status,
// evtchn_bind_vcpu, evtchn_unmask, evtchn_init, evtchn_destroy, do_event_channel_op, virq_is_global),
// xen/common/event_2l.c (set_pending, clear_pending, unmask), x86 vcpu_mark_events_pending, and the
// default (dummy) XSM policy for the privilege checks. The order of checks, and therefore which errno a
// guest sees when several things are wrong at once, is the source's order:
//   - alloc_unbound: unknown <dom> -ESRCH; no free port -ENOSPC (or -EINVAL if <dom> is dying); only
//     then the XSM_TARGET check, -EPERM unless the caller is <dom> or privileged. remote_dom is not
//     validated; DOMID_SELF there means the *caller*.
//   - bind_interdomain: unknown remote -ESRCH; local port exhaustion; remote port outside the table or
//     not ECS_UNBOUND offered to the caller -EINVAL. Both ends become ECS_INTERDOMAIN and the new local
//     port is set pending ("we may have lost notifications on the remote unbound port").
//   - bind_virq: virq >= NR_VIRQS -EINVAL; a global VIRQ on vCPU != 0 -EINVAL; bad vCPU -ENOENT;
//     already bound on that vCPU -EEXIST. bind_ipi: bad vCPU -ENOENT.
//   - bind_vcpu: bad vCPU -ENOENT, then bad port -EINVAL, then a Xen-attached port -EINVAL; unbound,
//     interdomain and global-VIRQ ports may be re-targeted, everything else (IPI, per-vCPU VIRQ, free)
//     -EINVAL.
//   - send: bad port -EINVAL; a Xen-attached port (consumer_is_xen: the guest's own end of an ioreq
//     channel) -EINVAL; interdomain -> remote port pending, or Xen's consumer runs if the remote end is
//     Xen-attached; IPI -> local port pending; unbound -> silently dropped, returns 0; anything else
//     -EINVAL.
//   - close: bad port -EINVAL; a Xen-attached port -EINVAL when the guest asks (evtchn_close with
//     guest=true; domain destruction closes it); free/reserved port -EINVAL; the closed port's pending
//     bit is cleared (evtchn_free), its mask bit is left as it is, its notify vCPU resets to 0 and it is
//     no longer Xen-attached; an interdomain peer reverts to ECS_UNBOUND offered to the closing domain,
//     with its own bits untouched and no notification.
//   - unmask: bad port -EINVAL; on a free, reserved or Xen-attached port it does nothing
//     (evtchn_usable), not even clear the mask bit, and still returns 0.
//   - status: unknown dom -ESRCH, bad port -EINVAL, then XSM_TARGET -EPERM.
// Port 0 is ECS_RESERVED from domain creation. Ports are handed out lowest-free-first. A port is "valid"
// (port_is_valid) once its bucket exists: the table grows in buckets of kPortsPerBucket ports as
// allocation reaches them, so on a fresh domain port 63 is a valid closed port while port 64 is -EINVAL.
// The 2-level limit is EVTCHN_2L_NR_CHANNELS = 64 * 64 = 4096 ports, further capped by the domain's
// max_evtchn_port (XEN_DOMCTL_createdomain; libxl's default for a domU is 1023).
//
// Deliberate differences from Xen 4.17:
//   - Only the 2-level ABI. EVTCHNOP_init_control / expand_array / set_priority (FIFO), EVTCHNOP_reset
//     return -XEN_ENOSYS; Xen implements them. EVTCHNOP_bind_pirq is modelled for PIRQs the
//     platform granted (evtchn_bind_pirq: out of range -EINVAL, not permitted -EPERM, already
//     bound -EEXIST); the IRQ routing behind a PIRQ (IO-APIC, MSI, PHYSDEVOP_*) is not.
//   - Xen-attached channels are modelled for the ioreq servers (alloc_xen_channel, notify_via_xen);
//     Xen's other consumers (vm_event, ...) are not. No SCHEDOP_poll pollers
//     (evtchn_check_pollers), no global VIRQ handler redirection (VIRQs go to the domain given).
//   - XSM is the default policy without a device-model target: "privileged" is DomainRecord::privileged.
//   - kPortsPerBucket = 64 assumes sizeof(struct evtchn) is 64 (it is __aligned(64) and fits in one cache
//     line on x86-64), giving EVTCHNS_PER_BUCKET = PAGE_SIZE / 64.
//   - No locking: the simulator is single-threaded, so Xen's lock ordering and the ECS_* transitions it
//     protects collapse into plain sequential code. evtchn_reset's preemption and evtchn_destroy's
//     -ERESTART continuation are not modelled; domain_destroyed closes every port at once.
//   - A hypercall from a domain that is not in the DomainTable is an internal error (abort), as
//     current->domain always exists in Xen.
//   - Per-domain state is created on first use (Xen's evtchn_init runs in domain_create). Re-using a
//     domain id after domain_destroyed needs domain_created() to clear the dying state.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "models/xen/domain_table.h"
#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

namespace xensim {

// Port states, verbatim from Xen's xen/include/xen/sched.h (internal to Xen, not in the public headers).
inline constexpr std::uint8_t ECS_FREE = 0;         // Channel is available for use.
inline constexpr std::uint8_t ECS_RESERVED = 1;     // Channel is reserved (port 0).
inline constexpr std::uint8_t ECS_UNBOUND = 2;      // Channel is waiting to bind to a remote domain.
inline constexpr std::uint8_t ECS_INTERDOMAIN = 3;  // Channel is bound to another domain.
inline constexpr std::uint8_t ECS_PIRQ = 4;         // Channel is bound to a physical IRQ line.
inline constexpr std::uint8_t ECS_VIRQ = 5;         // Channel is bound to a virtual IRQ line.
inline constexpr std::uint8_t ECS_IPI = 6;          // Channel is bound to a virtual IPI line.

class EventChannels {
  public:
    // Called when a vCPU's evtchn_upcall_pending goes 0 -> 1 (Xen's vcpu_mark_events_pending): the
    // SystemC wrapper injects the callback vector / wakes the vCPU. Not called when it was already 1.
    // Like Xen, this ignores evtchn_upcall_mask; honouring it is the delivery path's business.
    using UpcallKick = std::function<void(DomId dom, unsigned vcpu)>;

    // Bits per word of the 2-level bitmaps (BITS_PER_EVTCHN_WORD) and the resulting port limit.
    static constexpr unsigned kBitsPerWord = sizeof(xen_ulong_t) * 8;
    static constexpr unsigned kMaxPorts = EVTCHN_2L_NR_CHANNELS;
    // EVTCHNS_PER_BUCKET: the granularity at which a domain's port table (and port_is_valid) grows.
    static constexpr unsigned kPortsPerBucket = 64;
    static_assert(kMaxPorts == kBitsPerWord * kBitsPerWord, "2-level ABI: one selector bit per word");

    EventChannels(DomainTable& domains, StatsGroup& stats, UpcallKick kick);
    EventChannels(const EventChannels&) = delete;
    EventChannels& operator=(const EventChannels&) = delete;

    // do_event_channel_op: cmd is EVTCHNOP_*, arg points at the ABI struct. Returns 0 or -XEN_E*.
    // The struct is copied in once; OUT fields are copied back only on success, as Xen does. A null
    // arg models a failed copy_from_guest (-XEN_EFAULT). Ops not modelled -> -XEN_ENOSYS;
    // an unknown cmd is counted under the one label "EVTCHNOP_unknown" (guests choose the numbers).
    long hypercall(DomId caller, unsigned cmd, void* arg);

    // Raised by the hypervisor (e.g. VIRQ_TIMER); no effect if the VIRQ is not bound. A per-vCPU VIRQ
    // goes to the port bound on that vCPU (send_guest_vcpu_virq); for a global VIRQ the vcpu argument
    // is ignored and the port bound on vCPU 0 notifies its current notify vCPU (send_guest_global_virq).
    void send_virq(DomId dom, unsigned vcpu, unsigned virq);
    // Physical IRQs (the interrupts of devices a domain drives, e.g. dom0's disk controller): the
    // platform grants `pirq` to `dom` (as PHYSDEVOP_map_pirq / irq_permit_access would), the domain
    // binds it with EVTCHNOP_bind_pirq, and the device raises it (send_guest_pirq). A PIRQ that is
    // not bound is dropped, as Xen drops it. The range is the hardware domain's nr_pirqs, which Xen
    // sets to the number of possible IRQs (x86 nr_irqs, default 1024): one PIRQ per disk of up to
    // 256 guests has to fit.
    static constexpr unsigned kNrPirqs = 1024;
    void grant_pirq(DomId dom, unsigned pirq);
    void send_pirq(DomId dom, unsigned pirq);

    // Xen-attached channels (alloc_unbound_xen_event_channel / notify_via_xen_event_channel), as the
    // ioreq servers use them: a port in `dom` bound to `vcpu`, offered to `remote`, whose events Xen
    // consumes itself. When the remote end (bound with EVTCHNOP_bind_interdomain) sends, `consumer`
    // runs with the port's vCPU instead of the port becoming pending in dom's shared_info; Xen
    // notifies the remote end with notify_via_xen. -XEN_E* (as get_free_port) or the port.
    long alloc_xen_channel(DomId dom, unsigned vcpu, DomId remote,
                           std::function<void(unsigned vcpu)> consumer);
    void notify_via_xen(DomId dom, evtchn_port_t port);

    // The domain is going away: close all its ports (interdomain peers revert to unbound as Xen does).
    // Afterwards the domain can allocate no port (get_free_port on a dying domain: -XEN_EINVAL).
    void domain_destroyed(DomId domid);

    // (Re)initialises the domain's port table as evtchn_init does (only port 0 reserved, not dying).
    // Optional for a new id (state is created on first use); required to reuse a destroyed domain's id.
    // Aborts if the domain still has ports in use (peers could point at them). Resets max_evtchn_port,
    // so call it before set_max_evtchn_port.
    void domain_created(DomId domid);

    // The domain's max_evtchn_port (XEN_DOMCTL_createdomain); default: no cap below kMaxPorts - 1.
    void set_max_evtchn_port(DomId domid, evtchn_port_t max_port);

    // Introspection: the port's status as EVTCHNOP_status would report it (for tests and reports).
    // Same errnos as the hypercall for an unknown domain or invalid port; no privilege check.
    long status(DomId dom, evtchn_port_t port, evtchn_status_t& out);

    // Ports of the domain not in ECS_FREE / ECS_RESERVED (Xen's active_evtchns), and over all domains.
    unsigned ports_in_use(DomId dom) const;
    unsigned ports_in_use() const { return ports_in_use_; }

    // What the last successful EVTCHNOP_send did, for the wrapper's cost and trace: target dom/vcpu/port,
    // and whether it was delivered (kick), found already pending, or masked, or dropped (unbound).
    // upcall_already_pending covers both "selector bit already set" and "evtchn_upcall_pending already
    // 1": the event joined an upcall the vCPU has yet to handle. For dropped, target is the sender's
    // own unbound port. to_xen: the remote port is consumed by Xen itself (an ioreq server's
    // reply to a vCPU waiting in the hypervisor), so no pending bit is set anywhere.
    struct SendResult {
        DomId target_dom;
        unsigned target_vcpu;
        evtchn_port_t target_port;
        enum Outcome { kicked, already_pending, masked, upcall_already_pending, dropped, to_xen } outcome;
    };
    const SendResult& last_send() const { return last_send_; }

    static bool virq_is_global(unsigned virq);
    // The EVTCHNOP_* name of a sub-op number (the public headers' spelling), "EVTCHNOP_unknown" else.
    static const char* op_name(unsigned cmd);

  private:
    struct Channel {
        std::uint8_t state = ECS_FREE;
        std::uint16_t notify_vcpu_id = 0;
        DomId remote_dom = 0;           // ECS_UNBOUND: remote_domid; ECS_INTERDOMAIN: remote_dom
        evtchn_port_t remote_port = 0;  // ECS_INTERDOMAIN
        std::uint32_t virq = 0;         // ECS_VIRQ
        std::uint32_t pirq = 0;         // ECS_PIRQ
        bool xen_consumer = false;      // Xen-attached: Xen consumes events sent to it
    };
    struct DomainChannels {
        std::vector<Channel> channels;  // valid_evtchns entries, whole buckets
        std::vector<std::array<evtchn_port_t, NR_VIRQS>> virq_to_evtchn;  // per vCPU
        std::map<unsigned, evtchn_port_t> pirq_to_evtchn;                 // granted PIRQs; 0 = not bound
        evtchn_port_t max_evtchn_port = kMaxPorts - 1;
        unsigned active = 0;  // active_evtchns
        bool is_dying = false;
        bool port_is_valid(evtchn_port_t p) const { return p < channels.size(); }
    };
    struct OpRow;
    static const OpRow kOpTable[];

    DomainRecord& record(DomId dom);
    DomainChannels& channels_of(DomId dom);
    bool may_act_on(DomId caller, DomId target);
    long get_free_port(DomainChannels& d);
    void bind_port(DomainChannels& d, Channel& chn, std::uint8_t state);
    void evtchn_free(DomId dom, DomainChannels& d, evtchn_port_t port);
    long evtchn_close(DomId dom, evtchn_port_t port, bool guest);
    long evtchn_status(DomId caller, evtchn_status_t& st);

    // evtchn_2l_set_pending / evtchn_2l_unmask on the guest-visible bitmaps. They report what happened
    // and leave the kick to the caller, which runs it after all engine state is updated (the callback
    // may re-enter the engine).
    SendResult::Outcome set_pending(DomId dom, unsigned vcpu, evtchn_port_t port);
    bool unmask_2l(DomId dom, unsigned vcpu, evtchn_port_t port);
    void kick(DomId dom, unsigned vcpu, bool upcall_raised);

    long op_alloc_unbound(DomId caller, evtchn_alloc_unbound_t& a);
    long op_bind_interdomain(DomId caller, evtchn_bind_interdomain_t& b);
    long op_bind_virq(DomId caller, evtchn_bind_virq_t& b);
    long op_bind_ipi(DomId caller, evtchn_bind_ipi_t& b);
    long op_bind_pirq(DomId caller, evtchn_bind_pirq_t& b);
    long op_close(DomId caller, evtchn_close_t& c);
    long op_send(DomId caller, evtchn_send_t& s);
    long op_status(DomId caller, evtchn_status_t& s);
    long op_bind_vcpu(DomId caller, evtchn_bind_vcpu_t& b);
    long op_unmask(DomId caller, evtchn_unmask_t& u);

    DomainTable& domains_;
    UpcallKick kick_;
    std::map<DomId, DomainChannels> doms_;
    unsigned ports_in_use_ = 0;
    SendResult last_send_{};
    std::map<std::pair<DomId, evtchn_port_t>, std::function<void(unsigned)>> xen_consumers_;

    CounterFamily ops_;
    std::vector<std::uint64_t*> op_slots_;  // ops_ by kOpTable row, then EVTCHNOP_unknown (at())
    CounterFamily errors_;
    Counter sends_;
    Counter virqs_;
    Counter pirqs_;
    Counter upcalls_;
    Counter already_pending_;
    Counter masked_;
    Counter dropped_unbound_;
    Counter ports_in_use_peak_;
};

}  // namespace xensim
