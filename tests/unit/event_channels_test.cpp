// Event channel engine (models/xen/event_channels.h), 2-level ABI.
//
// Most tests are tables of {actions -> expected return codes, then guest-visible bits and kicks}, one
// line of intent each, run by one interpreter. The guest side is emulated the way a Linux guest's
// 2-level upcall handler (drivers/xen/events/events_2l.c) reads shared_info: clear
// evtchn_upcall_pending, exchange evtchn_pending_sel with 0, then for each selected word take the
// pending & ~mask bits and clear them. Expected errnos and bit effects follow Xen 4.17
// xen/common/event_channel.c and event_2l.c; the function behind each is named in the intent.
#include "models/xen/event_channels.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace xensim {
namespace {

using Kick = std::pair<DomId, unsigned>;

// dom0 is privileged with 2 vCPUs; dom1 has 2 vCPUs; dom2 has 1. No other domain exists.
constexpr DomId kDom0 = 0, kDom1 = 1, kDom2 = 2, kNoDom = 7;
constexpr unsigned kBucket = EventChannels::kPortsPerBucket;

class EventChannelsTest : public ::testing::Test {
  protected:
    EventChannelsTest() {
        domains.add(kDom0, "dom0", true, 2, 16);
        domains.add(kDom1, "dom1", false, 2, 16);
        domains.add(kDom2, "dom2", false, 1, 16);
    }

    shared_info_t& si(DomId d) { return domains.find(d)->shared_info(); }
    vcpu_info_t& vi(DomId d, unsigned v) { return domains.find(d)->vcpu_info(v); }
    static bool bit(const xen_ulong_t* words, unsigned b) {
        return (words[b / EventChannels::kBitsPerWord] >> (b % EventChannels::kBitsPerWord)) & 1;
    }
    bool pending(DomId d, evtchn_port_t p) { return bit(si(d).evtchn_pending, p); }
    bool masked(DomId d, evtchn_port_t p) { return bit(si(d).evtchn_mask, p); }
    void guest_mask(DomId d, evtchn_port_t p) {
        si(d).evtchn_mask[p / EventChannels::kBitsPerWord] |= xen_ulong_t{1}
                                                              << (p % EventChannels::kBitsPerWord);
    }

    // The guest's 2-level upcall handler on vCPU v; returns the ports it handled.
    std::vector<evtchn_port_t> guest_handle(DomId d, unsigned v) {
        std::vector<evtchn_port_t> handled;
        vi(d, v).evtchn_upcall_pending = 0;
        xen_ulong_t sel = vi(d, v).evtchn_pending_sel;
        vi(d, v).evtchn_pending_sel = 0;
        for (unsigned w = 0; w < EventChannels::kBitsPerWord; ++w) {
            if (!((sel >> w) & 1)) continue;
            xen_ulong_t bits = si(d).evtchn_pending[w] & ~si(d).evtchn_mask[w];
            si(d).evtchn_pending[w] &= ~bits;
            for (unsigned b = 0; b < EventChannels::kBitsPerWord; ++b)
                if ((bits >> b) & 1) handled.push_back(w * EventChannels::kBitsPerWord + b);
        }
        return handled;
    }

    long alloc_unbound(DomId caller, DomId dom, DomId remote, evtchn_port_t* port = nullptr) {
        evtchn_alloc_unbound_t a{};
        a.dom = dom;
        a.remote_dom = remote;
        long rc = ec.hypercall(caller, EVTCHNOP_alloc_unbound, &a);
        if (port) *port = a.port;
        return rc;
    }
    long bind_interdomain(DomId caller, DomId rdom, evtchn_port_t rport, evtchn_port_t* port = nullptr) {
        evtchn_bind_interdomain_t b{};
        b.remote_dom = rdom;
        b.remote_port = rport;
        long rc = ec.hypercall(caller, EVTCHNOP_bind_interdomain, &b);
        if (port) *port = b.local_port;
        return rc;
    }
    long send(DomId caller, evtchn_port_t port) {
        evtchn_send_t s{};
        s.port = port;
        return ec.hypercall(caller, EVTCHNOP_send, &s);
    }
    std::uint64_t counter(const char* name) { return stats.find_counter(name)->value(); }

    DomainTable domains;
    StatsGroup stats{"evtchn"};
    std::vector<Kick> kicks;
    EventChannels ec{domains, stats, [this](DomId d, unsigned v) { kicks.emplace_back(d, v); }};
};

// ---------------------------------------------------------------------------------------------------
// The table interpreter.

enum class Act {
    alloc_unbound,     // caller; x = dom, y = remote_dom                      -> out: port
    bind_interdomain,  // caller; x = remote_dom, y = remote_port              -> out: local_port
    bind_virq,         // caller; x = virq, y = vcpu                           -> out: port
    bind_ipi,          // caller; x = vcpu                                     -> out: port
    bind_vcpu,         // caller; x = port, y = vcpu
    send,              // caller; x = port
    close,             // caller; x = port
    unmask,            // caller; x = port
    status,            // caller; x = dom, y = port                            -> out: EVTCHNSTAT_*
    raw,               // caller; x = cmd, y != 0: null arg (failed copy_from_guest)
    guest_mask,        // dom; x = port: the guest sets its mask bit in shared_info
    guest_handle,      // dom; x = vcpu: the guest's upcall handler           -> rc: ports handled
    virq,              // dom; x = vcpu, y = virq: hypervisor raises it (send_virq)
    destroy,           // dom: domain_destroyed
    max_port,          // dom; x = max_evtchn_port
};

struct Step {
    Act act;
    DomId dom;
    std::uint32_t x = 0, y = 0;
    long rc = 0;    // expected return code
    long out = -1;  // expected OUT value; -1: not checked
};
struct PortBits {
    DomId dom;
    evtchn_port_t port;
    bool pending, masked;
};
struct VcpuBits {
    DomId dom;
    unsigned vcpu;
    xen_ulong_t sel;
    std::uint8_t upcall;
};
struct Case {
    const char* name;
    const char* intent;
    std::vector<Step> steps;
    std::vector<PortBits> ports;  // checked after the last step
    std::vector<VcpuBits> vcpus;  // checked after the last step
    std::vector<Kick> kicks;      // every kick during the case, in order
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

template <typename T>
std::string param_name(const ::testing::TestParamInfo<T>& p) {
    return p.param.name;
}

class EventChannelsTable : public EventChannelsTest, public ::testing::WithParamInterface<Case> {
  protected:
    // Runs one step; returns {rc, out}.
    std::pair<long, long> run(const Step& s) {
        switch (s.act) {
            case Act::alloc_unbound: {
                evtchn_port_t p = 0;
                long rc = alloc_unbound(s.dom, static_cast<DomId>(s.x), static_cast<DomId>(s.y), &p);
                return {rc, p};
            }
            case Act::bind_interdomain: {
                evtchn_port_t p = 0;
                long rc = bind_interdomain(s.dom, static_cast<DomId>(s.x), s.y, &p);
                return {rc, p};
            }
            case Act::bind_virq: {
                evtchn_bind_virq_t b{};
                b.virq = s.x;
                b.vcpu = s.y;
                long rc = ec.hypercall(s.dom, EVTCHNOP_bind_virq, &b);
                return {rc, b.port};
            }
            case Act::bind_ipi: {
                evtchn_bind_ipi_t b{};
                b.vcpu = s.x;
                long rc = ec.hypercall(s.dom, EVTCHNOP_bind_ipi, &b);
                return {rc, b.port};
            }
            case Act::bind_vcpu: {
                evtchn_bind_vcpu_t b{};
                b.port = s.x;
                b.vcpu = s.y;
                return {ec.hypercall(s.dom, EVTCHNOP_bind_vcpu, &b), -1};
            }
            case Act::send:
                return {send(s.dom, s.x), -1};
            case Act::close: {
                evtchn_close_t c{};
                c.port = s.x;
                return {ec.hypercall(s.dom, EVTCHNOP_close, &c), -1};
            }
            case Act::unmask: {
                evtchn_unmask_t u{};
                u.port = s.x;
                return {ec.hypercall(s.dom, EVTCHNOP_unmask, &u), -1};
            }
            case Act::status: {
                evtchn_status_t st{};
                st.dom = static_cast<DomId>(s.x);
                st.port = s.y;
                long rc = ec.hypercall(s.dom, EVTCHNOP_status, &st);
                return {rc, st.status};
            }
            case Act::raw: {
                evtchn_status_t scratch{};  // large enough for any EVTCHNOP_* argument
                return {ec.hypercall(s.dom, s.x, s.y ? nullptr : &scratch), -1};
            }
            case Act::guest_mask:
                guest_mask(s.dom, s.x);
                return {0, -1};
            case Act::guest_handle:
                return {static_cast<long>(guest_handle(s.dom, s.x).size()), -1};
            case Act::virq:
                ec.send_virq(s.dom, s.x, s.y);
                return {0, -1};
            case Act::destroy:
                ec.domain_destroyed(s.dom);
                return {0, -1};
            case Act::max_port:
                ec.set_max_evtchn_port(s.dom, s.x);
                return {0, -1};
        }
        return {0, -1};
    }
};

TEST_P(EventChannelsTable, Sequence) {
    const Case& c = GetParam();
    SCOPED_TRACE(c.intent);
    for (std::size_t i = 0; i < c.steps.size(); ++i) {
        SCOPED_TRACE("step " + std::to_string(i));
        auto [rc, out] = run(c.steps[i]);
        EXPECT_EQ(rc, c.steps[i].rc);
        if (c.steps[i].out >= 0) {
            EXPECT_EQ(out, c.steps[i].out);
        }
    }
    for (const PortBits& p : c.ports) {
        SCOPED_TRACE("dom" + std::to_string(p.dom) + " port " + std::to_string(p.port));
        EXPECT_EQ(pending(p.dom, p.port), p.pending);
        EXPECT_EQ(masked(p.dom, p.port), p.masked);
    }
    for (const VcpuBits& v : c.vcpus) {
        SCOPED_TRACE("dom" + std::to_string(v.dom) + " vcpu " + std::to_string(v.vcpu));
        EXPECT_EQ(vi(v.dom, v.vcpu).evtchn_pending_sel, v.sel);
        EXPECT_EQ(vi(v.dom, v.vcpu).evtchn_upcall_pending, v.upcall);
    }
    EXPECT_EQ(kicks, c.kicks);
}

using A = Act;
constexpr long kInval = -XEN_EINVAL;

// dom1 offers port 1 to dom2; dom2 binds it as its port 1 (set pending + kick on dom2 vCPU 0); dom2's
// handler then consumes that notification. Shared prefix of many cases.
std::vector<Step> connected(std::vector<Step> more = {}) {
    std::vector<Step> s = {
        {A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1},
        {A::bind_interdomain, kDom2, kDom1, 1, 0, 1},
        {A::guest_handle, kDom2, 0, 0, 1},
    };
    s.insert(s.end(), more.begin(), more.end());
    return s;
}
const Kick kBindKick{kDom2, 0};

const Case kSequences[] = {
    {"AllocLowestFree",
     "alloc_unbound: ports are handed out lowest-free-first from 1 (port 0 reserved)",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1},
      {A::alloc_unbound, kDom1, kDom1, kDom2, 0, 2},
      {A::status, kDom1, DOMID_SELF, 0, 0, EVTCHNSTAT_closed},
      {A::status, kDom1, DOMID_SELF, 2, 0, EVTCHNSTAT_unbound}},
     {{kDom1, 1, false, false}, {kDom1, 2, false, false}},
     {{kDom1, 0, 0, 0}},
     {}},
    {"BindSetsLocalPending",
     "evtchn_bind_interdomain sets the new local port pending, which kicks the binder's vCPU 0",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1},
      {A::bind_interdomain, kDom2, kDom1, 1, 0, 1},
      {A::status, kDom1, DOMID_SELF, 1, 0, EVTCHNSTAT_interdomain},
      {A::status, kDom2, DOMID_SELF, 1, 0, EVTCHNSTAT_interdomain}},
     {{kDom2, 1, true, false}, {kDom1, 1, false, false}},
     {{kDom2, 0, 1, 1}, {kDom1, 0, 0, 0}},
     {kBindKick}},
    {"SendInterdomain",
     "evtchn_send on an interdomain port sets the remote port pending and kicks its vCPU",
     connected({{A::send, kDom2, 1}}),
     {{kDom1, 1, true, false}, {kDom2, 1, false, false}},
     {{kDom1, 0, 1, 1}, {kDom2, 0, 0, 0}},
     {kBindKick, {kDom1, 0}}},
    {"SendBothWays",
     "either end of an interdomain channel notifies the other",
     connected({{A::send, kDom1, 1}, {A::guest_handle, kDom2, 0, 0, 1}, {A::send, kDom2, 1}}),
     {{kDom1, 1, true, false}, {kDom2, 1, false, false}},
     {{kDom1, 0, 1, 1}},
     {kBindKick, {kDom2, 0}, {kDom1, 0}}},
    {"SendCoalesces",
     "a second send before the handler runs finds the port already pending: no kick",
     connected({{A::send, kDom2, 1}, {A::send, kDom2, 1}}),
     {{kDom1, 1, true, false}},
     {{kDom1, 0, 1, 1}},
     {kBindKick, {kDom1, 0}}},
    {"SendUnboundDropped",
     "evtchn_send on ECS_UNBOUND is silently dropped and returns 0",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1}, {A::send, kDom1, 1}},
     {{kDom1, 1, false, false}},
     {{kDom1, 0, 0, 0}, {kDom2, 0, 0, 0}},
     {}},
    {"SendIpiLocal",
     "evtchn_send on ECS_IPI notifies the caller's own bound vCPU",
     {{A::bind_ipi, kDom1, 1, 0, 0, 1}, {A::send, kDom1, 1}},
     {{kDom1, 1, true, false}},
     {{kDom1, 1, 1, 1}, {kDom1, 0, 0, 0}},
     {{kDom1, 1}}},
    {"MaskedHeld",
     "evtchn_2l_set_pending on a masked port sets pending but neither selector nor upcall",
     connected({{A::guest_mask, kDom1, 1}, {A::send, kDom2, 1}}),
     {{kDom1, 1, true, true}},
     {{kDom1, 0, 0, 0}},
     {kBindKick}},
    {"UnmaskDeliversHeld",
     "evtchn_2l_unmask of a pending port sets selector and upcall and kicks",
     connected({{A::guest_mask, kDom1, 1}, {A::send, kDom2, 1}, {A::unmask, kDom1, 1}}),
     {{kDom1, 1, true, false}},
     {{kDom1, 0, 1, 1}},
     {kBindKick, {kDom1, 0}}},
    {"UnmaskNothingHeld",
     "unmask of a port that is not pending clears the mask and delivers nothing",
     connected({{A::guest_mask, kDom1, 1}, {A::unmask, kDom1, 1}}),
     {{kDom1, 1, false, false}},
     {{kDom1, 0, 0, 0}},
     {kBindKick}},
    {"UnmaskSelectorAlreadySet",
     "unmask finds the selector word already set: no second upcall",
     connected({{A::guest_mask, kDom1, 1},
                {A::send, kDom2, 1},
                {A::bind_ipi, kDom1, 0, 0, 0, 2},
                {A::send, kDom1, 2},
                {A::unmask, kDom1, 1}}),
     {{kDom1, 1, true, false}, {kDom1, 2, true, false}},
     {{kDom1, 0, 1, 1}},
     {kBindKick, {kDom1, 0}}},
    {"CloseRevertsPeer",
     "evtchn_close of an interdomain end: peer -> ECS_UNBOUND for the closer; closed port's pending "
     "cleared, its mask kept",
     connected({{A::guest_mask, kDom2, 1},
                {A::send, kDom1, 1},
                {A::close, kDom2, 1},
                {A::status, kDom1, DOMID_SELF, 1, 0, EVTCHNSTAT_unbound},
                {A::status, kDom2, DOMID_SELF, 1, 0, EVTCHNSTAT_closed},
                {A::send, kDom1, 1},
                {A::send, kDom2, 1, 0, kInval}}),
     {{kDom2, 1, false, true}, {kDom1, 1, false, false}},
     {{kDom1, 0, 0, 0}},
     {kBindKick}},
    {"CloseLeavesPeerBits",
     "closing one end sends nothing and leaves the peer's pending bit as it was",
     connected({{A::send, kDom2, 1}, {A::close, kDom2, 1}}),
     {{kDom1, 1, true, false}},
     {{kDom1, 0, 1, 1}},
     {kBindKick, {kDom1, 0}}},
    {"RebindAfterClose",
     "the peer left unbound by a close can be bound again by the same domain",
     connected({{A::close, kDom2, 1}, {A::bind_interdomain, kDom2, kDom1, 1, 0, 1}}),
     {{kDom2, 1, true, false}},
     {{kDom2, 0, 1, 1}},
     {kBindKick, kBindKick}},
    {"ReuseResetsVcpu",
     "a freed port is reused lowest-first and notifies vCPU 0 again (evtchn_free)",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1},
      {A::bind_vcpu, kDom1, 1, 1},
      {A::close, kDom1, 1},
      {A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1},
      {A::bind_interdomain, kDom2, kDom1, 1, 0, 1},
      {A::send, kDom2, 1}},
     {{kDom1, 1, true, false}},
     {{kDom1, 0, 1, 1}, {kDom1, 1, 0, 0}},
     {kBindKick, {kDom1, 0}}},
    {"BindVcpuInterdomain",
     "evtchn_bind_vcpu retargets an interdomain port: the send kicks vCPU 1",
     connected({{A::bind_vcpu, kDom1, 1, 1}, {A::send, kDom2, 1}}),
     {{kDom1, 1, true, false}},
     {{kDom1, 1, 1, 1}, {kDom1, 0, 0, 0}},
     {kBindKick, {kDom1, 1}}},
    {"VirqPerVcpu",
     "send_guest_vcpu_virq: VIRQ_TIMER bound on vCPU 1 kicks vCPU 1; on vCPU 0 nothing bound",
     {{A::bind_virq, kDom1, VIRQ_TIMER, 1, 0, 1},
      {A::virq, kDom1, 0, VIRQ_TIMER},
      {A::virq, kDom1, 1, VIRQ_TIMER}},
     {{kDom1, 1, true, false}},
     {{kDom1, 1, 1, 1}, {kDom1, 0, 0, 0}},
     {{kDom1, 1}}},
    {"VirqUnboundNoEffect",
     "a VIRQ nobody bound has no effect",
     {{A::bind_virq, kDom1, VIRQ_TIMER, 0, 0, 1},
      {A::virq, kDom1, 0, VIRQ_DEBUG},
      {A::virq, kDom2, 0, VIRQ_TIMER}},
     {{kDom1, 1, false, false}},
     {{kDom1, 0, 0, 0}, {kDom2, 0, 0, 0}},
     {}},
    {"VirqGlobalRebound",
     "a global VIRQ is bound on vCPU 0, re-targeted by bind_vcpu, and delivered to its notify vCPU",
     {{A::bind_virq, kDom0, VIRQ_DOM_EXC, 0, 0, 1},
      {A::bind_vcpu, kDom0, 1, 1},
      {A::virq, kDom0, 0, VIRQ_DOM_EXC},
      {A::status, kDom0, DOMID_SELF, 1, 0, EVTCHNSTAT_virq}},
     {{kDom0, 1, true, false}},
     {{kDom0, 1, 1, 1}, {kDom0, 0, 0, 0}},
     {{kDom0, 1}}},
    {"VirqCloseAndRebind",
     "closing a VIRQ port clears virq_to_evtchn: the VIRQ can be bound again",
     {{A::bind_virq, kDom1, VIRQ_TIMER, 1, 0, 1},
      {A::close, kDom1, 1},
      {A::virq, kDom1, 1, VIRQ_TIMER},
      {A::bind_virq, kDom1, VIRQ_TIMER, 1, 0, 1}},
     {{kDom1, 1, false, false}},
     {{kDom1, 1, 0, 0}},
     {}},
    {"VirqGlobalCloseAfterRebind",
     "closing a re-targeted global VIRQ clears vCPU 0's binding, not vCPU 1's",
     {{A::bind_virq, kDom0, VIRQ_CONSOLE, 0, 0, 1},
      {A::bind_vcpu, kDom0, 1, 1},
      {A::close, kDom0, 1},
      {A::bind_virq, kDom0, VIRQ_CONSOLE, 0, 0, 1}},
     {},
     {},
     {}},
    {"Loopback",
     "alloc_unbound and bind_interdomain with DOMID_SELF make a loopback channel",
     {{A::alloc_unbound, kDom1, DOMID_SELF, DOMID_SELF, 0, 1},
      {A::bind_interdomain, kDom1, DOMID_SELF, 1, 0, 2},
      {A::guest_handle, kDom1, 0, 0, 1},
      {A::send, kDom1, 2},
      {A::status, kDom1, DOMID_SELF, 2, 0, EVTCHNSTAT_interdomain}},
     {{kDom1, 1, true, false}, {kDom1, 2, false, false}},
     {{kDom1, 0, 1, 1}},
     {{kDom1, 0}, {kDom1, 0}}},
    {"PrivilegedAllocForOther",
     "dom0 allocates in dom1's table; remote DOMID_SELF means the caller (dom0), which can bind it",
     {{A::alloc_unbound, kDom0, kDom1, DOMID_SELF, 0, 1},
      {A::status, kDom1, DOMID_SELF, 1, 0, EVTCHNSTAT_unbound},
      {A::bind_interdomain, kDom0, kDom1, 1, 0, 1}},
     {{kDom0, 1, true, false}},
     {{kDom0, 0, 1, 1}},
     {{kDom0, 0}}},
    {"DestroyRevertsPeer",
     "evtchn_destroy closes the dying domain's ports; peers revert to unbound",
     connected({{A::bind_ipi, kDom2, 0, 0, 0, 2},
                {A::destroy, kDom2},
                {A::status, kDom1, DOMID_SELF, 1, 0, EVTCHNSTAT_unbound},
                {A::send, kDom1, 1},
                {A::status, kDom0, kDom2, 1, 0, EVTCHNSTAT_closed},
                {A::status, kDom0, kDom2, 2, 0, EVTCHNSTAT_closed},
                {A::alloc_unbound, kDom2, DOMID_SELF, kDom1, kInval},
                {A::bind_ipi, kDom2, 0, 0, kInval}}),
     {{kDom1, 1, false, false}},
     {{kDom1, 0, 0, 0}},
     {kBindKick}},
    {"DestroyNeverUsed",
     "destroying a domain that never used event channels is harmless",
     {{A::destroy, kDom2}, {A::destroy, kNoDom}, {A::alloc_unbound, kDom2, DOMID_SELF, kDom1, kInval}},
     {},
     {},
     {}},
};
INSTANTIATE_TEST_SUITE_P(Sequences, EventChannelsTable, ::testing::ValuesIn(kSequences), param_name<Case>);

// Every errno path, in the order of the source's checks (which errno wins when several apply).
const Case kErrnos[] = {
    {"AllocNoDomain",
     "evtchn_alloc_unbound: <dom> does not exist -> ESRCH",
     {{A::alloc_unbound, kDom1, kNoDom, kDom2, -XEN_ESRCH}},
     {},
     {},
     {}},
    {"AllocOtherUnprivileged",
     "alloc_unbound in another domain's table needs privilege -> EPERM",
     {{A::alloc_unbound, kDom1, kDom2, kDom1, -XEN_EPERM},
      {A::status, kDom0, kDom2, 1, 0, EVTCHNSTAT_closed}},
     {},
     {},
     {}},
    {"AllocRemoteNotChecked",
     "alloc_unbound does not check that remote_dom exists",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kNoDom, 0, 1}},
     {},
     {},
     {}},
    {"AllocFullBeforePerm",
     "get_free_port runs before the XSM check: a full table -> ENOSPC, not EPERM",
     {{A::max_port, kDom2, 1},
      {A::alloc_unbound, kDom2, DOMID_SELF, kDom1, 0, 1},
      {A::alloc_unbound, kDom1, kDom2, kDom1, -XEN_ENOSPC}},
     {},
     {},
     {}},
    {"AllocDyingBeforePerm",
     "a dying <dom> -> EINVAL from get_free_port, before the XSM check",
     {{A::destroy, kDom2}, {A::alloc_unbound, kDom1, kDom2, kDom1, kInval}},
     {},
     {},
     {}},
    {"BindNoRemote",
     "evtchn_bind_interdomain: remote domain does not exist -> ESRCH",
     {{A::bind_interdomain, kDom1, kNoDom, 1, -XEN_ESRCH}},
     {},
     {},
     {}},
    {"BindPortBeyondTable",
     "remote port outside the remote's allocated buckets -> EINVAL",
     {{A::bind_interdomain, kDom2, kDom1, kBucket, kInval}},
     {},
     {},
     {}},
    {"BindPortFree",
     "remote port valid but ECS_FREE -> EINVAL",
     {{A::bind_interdomain, kDom2, kDom1, 5, kInval}},
     {},
     {},
     {}},
    {"BindPortReserved",
     "remote port 0 (ECS_RESERVED) -> EINVAL",
     {{A::bind_interdomain, kDom2, kDom1, 0, kInval}},
     {},
     {},
     {}},
    {"BindOfferedToOther",
     "remote port unbound but offered to another domain -> EINVAL",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kDom0, 0, 1}, {A::bind_interdomain, kDom2, kDom1, 1, kInval}},
     {},
     {},
     {}},
    {"BindAlreadyConnected",
     "remote port already ECS_INTERDOMAIN -> EINVAL",
     connected({{A::bind_interdomain, kDom2, kDom1, 1, kInval}}),
     {},
     {},
     {kBindKick}},
    {"BindLocalFullFirst",
     "local port exhaustion is reported before a bad remote port -> ENOSPC",
     {{A::max_port, kDom2, 1},
      {A::bind_ipi, kDom2, 0, 0, 0, 1},
      {A::bind_interdomain, kDom2, kDom1, 5, -XEN_ENOSPC}},
     {},
     {},
     {}},
    {"BindFailureFreesPort",
     "a failed bind_interdomain leaves no port behind: the next alloc gets port 1",
     {{A::bind_interdomain, kDom2, kDom1, 5, kInval}, {A::alloc_unbound, kDom2, DOMID_SELF, kDom1, 0, 1}},
     {},
     {},
     {}},
    {"VirqOutOfRange",
     "evtchn_bind_virq: virq >= NR_VIRQS -> EINVAL",
     {{A::bind_virq, kDom1, NR_VIRQS, 0, kInval}},
     {},
     {},
     {}},
    {"VirqGlobalOnVcpu1",
     "a global VIRQ must be bound on vCPU 0 -> EINVAL",
     {{A::bind_virq, kDom0, VIRQ_DOM_EXC, 1, kInval}},
     {},
     {},
     {}},
    {"VirqGlobalBadVcpuIsEinval",
     "global VIRQ on a nonexistent vCPU: the vcpu != 0 check wins -> EINVAL",
     {{A::bind_virq, kDom0, VIRQ_CONSOLE, 9, kInval}},
     {},
     {},
     {}},
    {"VirqBadVcpu",
     "per-vCPU VIRQ on a nonexistent vCPU -> ENOENT",
     {{A::bind_virq, kDom2, VIRQ_TIMER, 1, -XEN_ENOENT}},
     {},
     {},
     {}},
    {"VirqTwice",
     "a VIRQ already bound on that vCPU -> EEXIST; on the other vCPU it is fine",
     {{A::bind_virq, kDom1, VIRQ_TIMER, 0, 0, 1},
      {A::bind_virq, kDom1, VIRQ_TIMER, 0, -XEN_EEXIST},
      {A::bind_virq, kDom1, VIRQ_TIMER, 1, 0, 2}},
     {},
     {},
     {}},
    {"VirqFull",
     "bind_virq with no free port -> ENOSPC",
     {{A::max_port, kDom2, 0}, {A::bind_virq, kDom2, VIRQ_TIMER, 0, -XEN_ENOSPC}},
     {},
     {},
     {}},
    {"IpiBadVcpu",
     "evtchn_bind_ipi: nonexistent vCPU -> ENOENT",
     {{A::bind_ipi, kDom1, 2, 0, -XEN_ENOENT}},
     {},
     {},
     {}},
    {"VcpuBadVcpuFirst",
     "evtchn_bind_vcpu: bad vCPU -> ENOENT, checked before the port",
     {{A::bind_vcpu, kDom1, 4000, 2, -XEN_ENOENT}},
     {},
     {},
     {}},
    {"VcpuBadPort",
     "evtchn_bind_vcpu: port outside the table -> EINVAL",
     {{A::bind_vcpu, kDom1, kBucket, 1, kInval}},
     {},
     {},
     {}},
    {"VcpuFreePort",
     "evtchn_bind_vcpu on ECS_FREE / ECS_RESERVED -> EINVAL",
     {{A::bind_vcpu, kDom1, 3, 1, kInval}, {A::bind_vcpu, kDom1, 0, 1, kInval}},
     {},
     {},
     {}},
    {"VcpuIpi",
     "an IPI's vCPU cannot be changed -> EINVAL",
     {{A::bind_ipi, kDom1, 0, 0, 0, 1}, {A::bind_vcpu, kDom1, 1, 1, kInval}},
     {},
     {},
     {}},
    {"VcpuPerVcpuVirq",
     "a per-vCPU VIRQ's vCPU cannot be changed -> EINVAL",
     {{A::bind_virq, kDom1, VIRQ_TIMER, 0, 0, 1}, {A::bind_vcpu, kDom1, 1, 1, kInval}},
     {},
     {},
     {}},
    {"VcpuUnbound",
     "an unbound port may be re-targeted (it keeps the vCPU when bound later)",
     {{A::alloc_unbound, kDom1, DOMID_SELF, kDom2, 0, 1},
      {A::bind_vcpu, kDom1, 1, 1},
      {A::bind_interdomain, kDom2, kDom1, 1, 0, 1},
      {A::send, kDom2, 1}},
     {{kDom1, 1, true, false}},
     {{kDom1, 1, 1, 1}},
     {kBindKick, {kDom1, 1}}},
    {"SendBadPort",
     "evtchn_send: port outside the table -> EINVAL",
     {{A::send, kDom1, kBucket, 0, kInval}, {A::send, kDom1, 100000, 0, kInval}},
     {},
     {},
     {}},
    {"SendFreeOrReserved",
     "evtchn_send on ECS_FREE or port 0 -> EINVAL",
     {{A::send, kDom1, 3, 0, kInval}, {A::send, kDom1, 0, 0, kInval}},
     {},
     {},
     {}},
    {"SendVirq",
     "evtchn_send on a VIRQ port -> EINVAL",
     {{A::bind_virq, kDom1, VIRQ_TIMER, 0, 0, 1}, {A::send, kDom1, 1, 0, kInval}},
     {},
     {},
     {}},
    {"CloseBad",
     "evtchn_close: outside the table, ECS_FREE, port 0 -> EINVAL",
     {{A::close, kDom1, kBucket, 0, kInval},
      {A::close, kDom1, 2, 0, kInval},
      {A::close, kDom1, 0, 0, kInval}},
     {},
     {},
     {}},
    {"CloseTwice",
     "closing a port twice: the second close finds ECS_FREE -> EINVAL",
     {{A::bind_ipi, kDom1, 0, 0, 0, 1}, {A::close, kDom1, 1}, {A::close, kDom1, 1, 0, kInval}},
     {},
     {},
     {}},
    {"CloseOtherDomainsPort",
     "close acts on the caller's table only: dom2 cannot close dom1's port 1",
     {{A::bind_ipi, kDom1, 0, 0, 0, 1},
      {A::close, kDom2, 1, 0, kInval},
      {A::status, kDom1, DOMID_SELF, 1, 0, EVTCHNSTAT_ipi}},
     {},
     {},
     {}},
    {"UnmaskBadPort",
     "evtchn_unmask: port outside the table -> EINVAL",
     {{A::unmask, kDom1, kBucket, 0, kInval}},
     {},
     {},
     {}},
    {"UnmaskFreePort",
     "evtchn_unmask on ECS_FREE returns 0 and leaves the mask bit set (evtchn_usable)",
     {{A::guest_mask, kDom1, 5}, {A::unmask, kDom1, 5}},
     {{kDom1, 5, false, true}},
     {},
     {}},
    {"StatusNoDomain",
     "evtchn_status: unknown dom -> ESRCH",
     {{A::status, kDom1, kNoDom, 1, -XEN_ESRCH}},
     {},
     {},
     {}},
    {"StatusBadPortBeforePerm",
     "evtchn_status: a bad port -> EINVAL even for an unprivileged foreign query",
     {{A::status, kDom1, kDom2, kBucket, kInval}},
     {},
     {},
     {}},
    {"StatusOtherUnprivileged",
     "evtchn_status of another domain's port needs privilege -> EPERM",
     {{A::status, kDom1, kDom2, 1, -XEN_EPERM}, {A::status, kDom0, kDom2, 1, 0, EVTCHNSTAT_closed}},
     {},
     {},
     {}},
    {"StatusBucketEdge",
     "the first bucket is valid from creation: port 63 is closed, port 64 is EINVAL",
     {{A::status, kDom1, DOMID_SELF, kBucket - 1, 0, EVTCHNSTAT_closed},
      {A::status, kDom1, DOMID_SELF, kBucket, kInval}},
     {},
     {},
     {}},
    {"NotModelled",
     "reset, FIFO ops and unknown sub-ops -> ENOSYS",
     {{A::raw, kDom1, EVTCHNOP_reset, 0, -XEN_ENOSYS},
      {A::raw, kDom1, 14, 0, -XEN_ENOSYS},
      {A::raw, kDom1, EVTCHNOP_init_control, 0, -XEN_ENOSYS},
      {A::raw, kDom1, EVTCHNOP_expand_array, 0, -XEN_ENOSYS},
      {A::raw, kDom1, EVTCHNOP_set_priority, 0, -XEN_ENOSYS},
      {A::raw, kDom1, 99, 0, -XEN_ENOSYS}},
     {},
     {},
     {}},
    {"NullArg",
     "a failed copy_from_guest -> EFAULT",
     {{A::raw, kDom1, EVTCHNOP_send, 1, -XEN_EFAULT},
      {A::raw, kDom1, EVTCHNOP_alloc_unbound, 1, -XEN_EFAULT}},
     {},
     {},
     {}},
};
INSTANTIATE_TEST_SUITE_P(Errnos, EventChannelsTable, ::testing::ValuesIn(kErrnos), param_name<Case>);

// ---------------------------------------------------------------------------------------------------
// Ping-pong: N sends dom2 -> dom1.

class PingPong : public EventChannelsTest, public ::testing::WithParamInterface<unsigned> {
  protected:
    void SetUp() override {
        ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);
        ASSERT_EQ(bind_interdomain(kDom2, kDom1, 1), 0);
        guest_handle(kDom2, 0);
        kicks.clear();
    }
};

TEST_P(PingPong, HandlerBetweenSendsKicksEveryTime) {
    // The receiver's handler clears upcall_pending, the selector and the pending bit between sends,
    // so every send takes the full set_pending path: exactly N kicks.
    const unsigned n = GetParam();
    const std::uint64_t upcalls0 = counter("upcalls");
    for (unsigned i = 0; i < n; ++i) {
        ASSERT_EQ(send(kDom2, 1), 0);
        EXPECT_EQ(ec.last_send().outcome, EventChannels::SendResult::kicked);
        EXPECT_EQ(guest_handle(kDom1, 0), std::vector<evtchn_port_t>{1});
    }
    EXPECT_EQ(kicks, std::vector<Kick>(n, Kick{kDom1, 0}));
    EXPECT_EQ(counter("upcalls") - upcalls0, n);
    EXPECT_EQ(counter("already_pending"), 0u);
}

TEST_P(PingPong, NoHandlerCoalesces) {
    // Nobody handles: the first send kicks, the other N-1 find the port already pending.
    const unsigned n = GetParam();
    for (unsigned i = 0; i < n; ++i) {
        ASSERT_EQ(send(kDom2, 1), 0);
        EXPECT_EQ(ec.last_send().outcome,
                  i == 0 ? EventChannels::SendResult::kicked : EventChannels::SendResult::already_pending);
    }
    EXPECT_EQ(kicks, std::vector<Kick>(1, Kick{kDom1, 0}));
    EXPECT_EQ(counter("already_pending"), n - 1);
    EXPECT_EQ(counter("sends"), n);
}

TEST_P(PingPong, BothDirections) {
    // A request/response exchange: each side handles the other's event before replying.
    const unsigned n = GetParam();
    std::vector<Kick> expected;
    for (unsigned i = 0; i < n; ++i) {
        ASSERT_EQ(send(kDom2, 1), 0);
        ASSERT_EQ(guest_handle(kDom1, 0).size(), 1u);
        ASSERT_EQ(send(kDom1, 1), 0);
        ASSERT_EQ(guest_handle(kDom2, 0).size(), 1u);
        expected.push_back({kDom1, 0});
        expected.push_back({kDom2, 0});
    }
    EXPECT_EQ(kicks, expected);
}

INSTANTIATE_TEST_SUITE_P(N, PingPong, ::testing::Values(1u, 2u, 17u, 1000u));

// ---------------------------------------------------------------------------------------------------
// last_send(): every outcome, one row each.

struct SendOutcomeCase {
    const char* name;
    bool mask;              // the receiver masks port 1 first
    bool other_word_first;  // an IPI in selector word 1 already raised the upcall
    bool same_word_first;   // an IPI in selector word 0 already set the selector bit
    EventChannels::SendResult::Outcome outcome;
};
void PrintTo(const SendOutcomeCase& c, std::ostream* os) { *os << c.name; }

class SendOutcome : public EventChannelsTest, public ::testing::WithParamInterface<SendOutcomeCase> {};

TEST_P(SendOutcome, LastSend) {
    const SendOutcomeCase& c = GetParam();
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);  // dom1 port 1
    ASSERT_EQ(bind_interdomain(kDom2, kDom1, 1), 0);        // dom2 port 1
    guest_handle(kDom2, 0);
    if (c.mask) guest_mask(kDom1, 1);
    if (c.other_word_first || c.same_word_first) {
        // Occupy ports 2..64 so the next IPI lands in word 1 (port 65), or take port 2 in word 0.
        evtchn_bind_ipi_t b{};
        if (c.other_word_first) {
            for (unsigned p = 2; p <= kBucket; ++p) {
                ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_ipi, &b), 0);
            }
        }
        ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_ipi, &b), 0);
        ASSERT_EQ(send(kDom1, b.port), 0);
        ASSERT_EQ(ec.last_send().outcome, EventChannels::SendResult::kicked);
    }
    kicks.clear();
    ASSERT_EQ(send(kDom2, 1), 0);
    const auto& r = ec.last_send();
    EXPECT_EQ(r.target_dom, kDom1);
    EXPECT_EQ(r.target_vcpu, 0u);
    EXPECT_EQ(r.target_port, 1u);
    EXPECT_EQ(r.outcome, c.outcome);
    EXPECT_EQ(kicks.size(), c.outcome == EventChannels::SendResult::kicked ? 1u : 0u);
}

const SendOutcomeCase kSendOutcomes[] = {
    {"Kicked", false, false, false, EventChannels::SendResult::kicked},
    {"Masked", true, false, false, EventChannels::SendResult::masked},
    {"UpcallAlreadyPending", false, true, false, EventChannels::SendResult::upcall_already_pending},
    {"SelectorAlreadySet", false, false, true, EventChannels::SendResult::upcall_already_pending},
};
INSTANTIATE_TEST_SUITE_P(Outcomes, SendOutcome, ::testing::ValuesIn(kSendOutcomes),
                         param_name<SendOutcomeCase>);

TEST_F(EventChannelsTest, LastSendAlreadyPendingAndDropped) {
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);
    ASSERT_EQ(send(kDom1, 1), 0);  // unbound: dropped
    EXPECT_EQ(ec.last_send().outcome, EventChannels::SendResult::dropped);
    EXPECT_EQ(ec.last_send().target_dom, kDom1);
    EXPECT_EQ(ec.last_send().target_port, 1u);
    EXPECT_EQ(counter("dropped_unbound"), 1u);
    ASSERT_EQ(bind_interdomain(kDom2, kDom1, 1), 0);  // dom2 port 1 pending from the bind
    ASSERT_EQ(send(kDom1, 1), 0);
    EXPECT_EQ(ec.last_send().outcome, EventChannels::SendResult::already_pending);
    EXPECT_EQ(ec.last_send().target_dom, kDom2);
    // A failed send leaves last_send() as it was.
    EXPECT_EQ(send(kDom1, 9), -XEN_EINVAL);
    EXPECT_EQ(ec.last_send().target_dom, kDom2);
}

// A send to a Xen-attached port (an ioreq server answering a vCPU that waits in Xen) runs Xen's
// consumer and marks nothing pending; last_send() says so rather than keeping the previous send's.
TEST_F(EventChannelsTest, LastSendToXenAttachedPort) {
    std::vector<unsigned> consumed;
    const long xen_port = ec.alloc_xen_channel(kDom1, 1, kDom0, [&](unsigned v) { consumed.push_back(v); });
    ASSERT_GT(xen_port, 0);
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);  // an ordinary send first, to overwrite
    ASSERT_EQ(bind_interdomain(kDom2, kDom1, 2), 0);
    ASSERT_EQ(send(kDom1, 2), 0);
    ASSERT_EQ(ec.last_send().target_dom, kDom2);
    ASSERT_EQ(bind_interdomain(kDom0, kDom1, static_cast<evtchn_port_t>(xen_port)), 0);
    ASSERT_EQ(send(kDom0, 1), 0);
    EXPECT_EQ(consumed, std::vector<unsigned>{1});
    EXPECT_EQ(ec.last_send().outcome, EventChannels::SendResult::to_xen);
    EXPECT_EQ(ec.last_send().target_dom, kDom1);
    EXPECT_EQ(ec.last_send().target_port, static_cast<evtchn_port_t>(xen_port));
    EXPECT_EQ(ec.last_send().target_vcpu, 1u);
    EXPECT_FALSE(pending(kDom1, static_cast<evtchn_port_t>(xen_port)));
}

// A Xen-attached port (an ioreq server's, allocated in the guest's own table) belongs to Xen: Xen 4.17
// xen/common/event_channel.c refuses the guest's send ("Guest cannot send via a Xen-attached event
// channel", evtchn_send), close (evtchn_close with guest=true) and re-bind (evtchn_bind_vcpu) with
// -EINVAL, and evtchn_unmask does nothing on it (evtchn_port_unmask: !evtchn_usable). Each refusal
// leaves the channel working: dom0 still sends to Xen, Xen still notifies dom0.
TEST_F(EventChannelsTest, GuestCannotUseItsXenAttachedPort) {
    std::vector<unsigned> consumed;
    const long xp = ec.alloc_xen_channel(kDom1, 1, kDom0, [&](unsigned v) { consumed.push_back(v); });
    ASSERT_GT(xp, 0);
    const auto xen_port = static_cast<evtchn_port_t>(xp);
    evtchn_port_t dm_port = 0;
    ASSERT_EQ(bind_interdomain(kDom0, kDom1, xen_port, &dm_port), 0);
    guest_handle(kDom0, 0);  // take the bind's own notification
    kicks.clear();

    // evtchn_send: refused before the state switch; neither dom0 nor Xen's consumer hears of it.
    EXPECT_EQ(send(kDom1, xen_port), -XEN_EINVAL);
    EXPECT_FALSE(pending(kDom0, dm_port));
    EXPECT_TRUE(kicks.empty());
    EXPECT_TRUE(consumed.empty());

    // evtchn_bind_vcpu: the vCPU is checked first (-ENOENT), then the port (-EINVAL).
    evtchn_bind_vcpu_t bv{};
    bv.port = xen_port;
    bv.vcpu = 5;
    EXPECT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_vcpu, &bv), -XEN_ENOENT);
    bv.vcpu = 0;
    EXPECT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_vcpu, &bv), -XEN_EINVAL);

    // evtchn_close(guest=true): refused, both ends stay connected.
    evtchn_close_t c{};
    c.port = xen_port;
    EXPECT_EQ(ec.hypercall(kDom1, EVTCHNOP_close, &c), -XEN_EINVAL);
    evtchn_status_t st{};
    ASSERT_EQ(ec.status(kDom1, xen_port, st), 0);
    EXPECT_EQ(st.status, EVTCHNSTAT_interdomain);
    EXPECT_EQ(st.vcpu, 1u);  // the bind_vcpu above did not move it
    ASSERT_EQ(ec.status(kDom0, dm_port, st), 0);
    EXPECT_EQ(st.status, EVTCHNSTAT_interdomain);

    // evtchn_unmask: returns 0 and touches nothing, not even the mask bit.
    guest_mask(kDom1, xen_port);
    si(kDom1).evtchn_pending[0] |= xen_ulong_t{1} << xen_port;
    evtchn_unmask_t u{};
    u.port = xen_port;
    EXPECT_EQ(ec.hypercall(kDom1, EVTCHNOP_unmask, &u), 0);
    EXPECT_TRUE(masked(kDom1, xen_port));
    EXPECT_EQ(vi(kDom1, 1).evtchn_pending_sel, 0u);
    EXPECT_EQ(vi(kDom1, 0).evtchn_pending_sel, 0u);
    EXPECT_TRUE(kicks.empty());

    // The channel still works both ways.
    ASSERT_EQ(send(kDom0, dm_port), 0);
    EXPECT_EQ(consumed, std::vector<unsigned>{1});
    ec.notify_via_xen(kDom1, xen_port);
    EXPECT_TRUE(pending(kDom0, dm_port));
    EXPECT_EQ(counter("sends"), 2u);  // the refused guest send is not one
}

// Xen closes its own channels (evtchn_destroy -> evtchn_close with guest=false): dom0's end reverts to
// unbound, and the freed port is an ordinary one when the guest allocates it again (evtchn_free
// resets xen_consumer): a send to it is delivered to the guest, not to the old consumer.
TEST_F(EventChannelsTest, XenAttachedPortClosedByXenIsOrdinaryAfterwards) {
    std::vector<unsigned> consumed;
    const long xp = ec.alloc_xen_channel(kDom1, 0, kDom0, [&](unsigned v) { consumed.push_back(v); });
    ASSERT_GT(xp, 0);
    const auto xen_port = static_cast<evtchn_port_t>(xp);
    evtchn_port_t dm_port = 0;
    ASSERT_EQ(bind_interdomain(kDom0, kDom1, xen_port, &dm_port), 0);
    ec.domain_destroyed(kDom1);
    evtchn_status_t st{};
    ASSERT_EQ(ec.status(kDom0, dm_port, st), 0);
    EXPECT_EQ(st.status, EVTCHNSTAT_unbound);
    EXPECT_EQ(ec.ports_in_use(kDom1), 0u);
    // Reuse the id: the same port number comes back as an ordinary unbound port.
    ec.domain_created(kDom1);
    evtchn_port_t p = 0;
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2, &p), 0);
    ASSERT_EQ(p, xen_port);
    evtchn_port_t p2 = 0;
    ASSERT_EQ(bind_interdomain(kDom2, kDom1, p, &p2), 0);
    ASSERT_EQ(send(kDom2, p2), 0);
    EXPECT_TRUE(consumed.empty());
    EXPECT_TRUE(pending(kDom1, p));
    EXPECT_EQ(ec.last_send().outcome, EventChannels::SendResult::kicked);
}

// ---------------------------------------------------------------------------------------------------
// Port table geometry and exhaustion.

// One EVTCHNOP_* name table, shared with the hypervisor's hypercall names.
TEST(EventChannelsNames, OpNameFollowsThePublicHeaders) {
    EXPECT_STREQ(EventChannels::op_name(EVTCHNOP_bind_interdomain), "EVTCHNOP_bind_interdomain");
    EXPECT_STREQ(EventChannels::op_name(EVTCHNOP_unmask), "EVTCHNOP_unmask");
    EXPECT_STREQ(EventChannels::op_name(EVTCHNOP_set_priority), "EVTCHNOP_set_priority");
    EXPECT_STREQ(EventChannels::op_name(14), "EVTCHNOP_reset_cont");
    EXPECT_STREQ(EventChannels::op_name(15), "EVTCHNOP_unknown");
}

TEST_F(EventChannelsTest, GeometryIs2Level) {
    EXPECT_EQ(EventChannels::kBitsPerWord, 64u);
    EXPECT_EQ(EventChannels::kMaxPorts, 4096u);
    EXPECT_EQ(sizeof(si(kDom1).evtchn_pending) * 8, EventChannels::kMaxPorts);
    EXPECT_EQ(sizeof(vi(kDom1, 0).evtchn_pending_sel) * 8, EventChannels::kBitsPerWord);
}

TEST_F(EventChannelsTest, ExhaustionAt4096) {
    // Ports 1..4095 can be allocated; the next is -ENOSPC; the table grew a bucket at a time.
    evtchn_status_t st{};
    EXPECT_EQ(ec.status(kDom1, kBucket, st), -XEN_EINVAL);
    for (evtchn_port_t p = 1; p < EventChannels::kMaxPorts; ++p) {
        evtchn_port_t got = 0;
        ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2, &got), 0) << p;
        ASSERT_EQ(got, p);
        if (p == kBucket) {
            EXPECT_EQ(ec.status(kDom1, 2 * kBucket - 1, st), 0);
            EXPECT_EQ(st.status, static_cast<std::uint32_t>(EVTCHNSTAT_closed));
            EXPECT_EQ(ec.status(kDom1, 2 * kBucket, st), -XEN_EINVAL);
        }
    }
    EXPECT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), -XEN_ENOSPC);
    evtchn_bind_ipi_t ipi{};
    EXPECT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_ipi, &ipi), -XEN_ENOSPC);
    EXPECT_EQ(bind_interdomain(kDom1, kDom2, 1), -XEN_ENOSPC);
    EXPECT_EQ(ec.ports_in_use(kDom1), EventChannels::kMaxPorts - 1);
    EXPECT_EQ(counter("ports_in_use_peak"), EventChannels::kMaxPorts - 1);
    EXPECT_EQ(stats.find_family("errors")->value("ENOSPC"), 3u);

    // Freeing one port in the middle makes exactly that port available again.
    evtchn_close_t c{};
    c.port = 1234;
    ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_close, &c), 0);
    evtchn_port_t got = 0;
    EXPECT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2, &got), 0);
    EXPECT_EQ(got, 1234u);
    EXPECT_EQ(counter("ports_in_use_peak"), EventChannels::kMaxPorts - 1);
}

TEST_F(EventChannelsTest, HighestPortDeliversInLastWord) {
    // Port 4095 pends in word 63 bit 63 and sets selector bit 63.
    for (evtchn_port_t p = 1; p < EventChannels::kMaxPorts - 1; ++p)
        ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);
    evtchn_bind_ipi_t b{};
    ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_ipi, &b), 0);
    ASSERT_EQ(b.port, 4095u);
    ASSERT_EQ(send(kDom1, 4095), 0);
    EXPECT_EQ(si(kDom1).evtchn_pending[63], xen_ulong_t{1} << 63);
    EXPECT_EQ(vi(kDom1, 0).evtchn_pending_sel, xen_ulong_t{1} << 63);
    EXPECT_EQ(guest_handle(kDom1, 0), std::vector<evtchn_port_t>{4095});
}

TEST_F(EventChannelsTest, MaxEvtchnPortCaps) {
    // libxl's default domU max_evtchn_port is 1023: ports 1..1023, then -ENOSPC.
    ec.set_max_evtchn_port(kDom2, 1023);
    for (evtchn_port_t p = 1; p <= 1023; ++p) ASSERT_EQ(alloc_unbound(kDom2, DOMID_SELF, kDom1), 0) << p;
    EXPECT_EQ(alloc_unbound(kDom2, DOMID_SELF, kDom1), -XEN_ENOSPC);
}

// ---------------------------------------------------------------------------------------------------
// Status contents, domain lifetime, stats, re-entrancy.

TEST_F(EventChannelsTest, StatusFillsUnion) {
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);  // 1: unbound to dom2
    ASSERT_EQ(alloc_unbound(kDom2, DOMID_SELF, kDom1), 0);  // dom2 port 1
    ASSERT_EQ(bind_interdomain(kDom1, kDom2, 1), 0);        // 2: interdomain dom2:1
    evtchn_bind_virq_t v{};
    v.virq = VIRQ_TIMER;
    v.vcpu = 1;
    ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_virq, &v), 0);  // 3
    evtchn_bind_ipi_t ipi{};
    ipi.vcpu = 1;
    ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_bind_ipi, &ipi), 0);  // 4

    evtchn_status_t st{};
    ASSERT_EQ(ec.status(kDom1, 1, st), 0);
    EXPECT_EQ(st.status, static_cast<std::uint32_t>(EVTCHNSTAT_unbound));
    EXPECT_EQ(st.u.unbound.dom, kDom2);
    EXPECT_EQ(st.vcpu, 0u);
    ASSERT_EQ(ec.status(kDom1, 2, st), 0);
    EXPECT_EQ(st.status, static_cast<std::uint32_t>(EVTCHNSTAT_interdomain));
    EXPECT_EQ(st.u.interdomain.dom, kDom2);
    EXPECT_EQ(st.u.interdomain.port, 1u);
    ASSERT_EQ(ec.status(kDom2, 1, st), 0);
    EXPECT_EQ(st.u.interdomain.dom, kDom1);
    EXPECT_EQ(st.u.interdomain.port, 2u);
    ASSERT_EQ(ec.status(kDom1, 3, st), 0);
    EXPECT_EQ(st.status, static_cast<std::uint32_t>(EVTCHNSTAT_virq));
    EXPECT_EQ(st.u.virq, static_cast<std::uint32_t>(VIRQ_TIMER));
    EXPECT_EQ(st.vcpu, 1u);
    ASSERT_EQ(ec.status(kDom1, 4, st), 0);
    EXPECT_EQ(st.status, static_cast<std::uint32_t>(EVTCHNSTAT_ipi));
    EXPECT_EQ(st.vcpu, 1u);
    EXPECT_EQ(ec.status(kNoDom, 1, st), -XEN_ESRCH);

    // Through the hypercall, OUT fields are copied back; on failure the caller's struct is untouched.
    evtchn_status_t h{};
    h.dom = DOMID_SELF;
    h.port = 2;
    ASSERT_EQ(ec.hypercall(kDom1, EVTCHNOP_status, &h), 0);
    EXPECT_EQ(h.u.interdomain.port, 1u);
    evtchn_status_t denied{};
    denied.dom = kDom1;
    denied.port = 2;
    denied.status = 77;
    EXPECT_EQ(ec.hypercall(kDom2, EVTCHNOP_status, &denied), -XEN_EPERM);
    EXPECT_EQ(denied.status, 77u);
}

TEST_F(EventChannelsTest, DestroyedDomainIdReused) {
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);
    ASSERT_EQ(bind_interdomain(kDom2, kDom1, 1), 0);
    ec.domain_destroyed(kDom2);
    EXPECT_EQ(ec.ports_in_use(kDom2), 0u);
    EXPECT_EQ(ec.ports_in_use(), 1u);  // dom1's port, unbound again
    domains.add(kDom2, "dom2-again", false, 1, 16);
    ec.domain_created(kDom2);
    evtchn_port_t p = 0;
    EXPECT_EQ(bind_interdomain(kDom2, kDom1, 1, &p), 0);
    EXPECT_EQ(p, 1u);
}

TEST_F(EventChannelsTest, DomainCreatedOnLiveDomainAborts) {
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);
    EXPECT_DEATH(ec.domain_created(kDom1), "ports in use");
}

TEST_F(EventChannelsTest, HypercallFromUnknownDomainAborts) {
    evtchn_send_t s{};
    EXPECT_DEATH(ec.hypercall(kNoDom, EVTCHNOP_send, &s), "domain not in the domain table");
}

TEST_F(EventChannelsTest, StatsByNameAndErrno) {
    ASSERT_EQ(alloc_unbound(kDom1, DOMID_SELF, kDom2), 0);
    ASSERT_EQ(bind_interdomain(kDom2, kDom1, 1), 0);
    ASSERT_EQ(send(kDom1, 1), 0);
    ASSERT_EQ(send(kDom1, 1), 0);
    EXPECT_EQ(send(kDom1, 7), -XEN_EINVAL);
    EXPECT_EQ(alloc_unbound(kDom1, kNoDom, kDom2), -XEN_ESRCH);
    ec.hypercall(kDom1, EVTCHNOP_init_control, nullptr);
    ec.hypercall(kDom1, 99, nullptr);

    const CounterFamily* ops = stats.find_family("ops");
    ASSERT_NE(ops, nullptr);
    EXPECT_EQ(ops->value("EVTCHNOP_alloc_unbound"), 2u);
    EXPECT_EQ(ops->value("EVTCHNOP_bind_interdomain"), 1u);
    EXPECT_EQ(ops->value("EVTCHNOP_send"), 3u);
    EXPECT_EQ(ops->value("EVTCHNOP_init_control"), 1u);
    EXPECT_EQ(ops->value("EVTCHNOP_unknown"), 1u) << "unknown cmds share one label";
    const CounterFamily* errors = stats.find_family("errors");
    ASSERT_NE(errors, nullptr);
    EXPECT_EQ(errors->value("EINVAL"), 1u);
    EXPECT_EQ(errors->value("ESRCH"), 1u);
    EXPECT_EQ(errors->value("ENOSYS"), 2u);
    EXPECT_EQ(errors->total(), 4u);
    EXPECT_EQ(counter("sends"), 2u);
    EXPECT_EQ(counter("upcalls"), 1u);          // the bind's; the sends coalesce into dom2's upcall
    EXPECT_EQ(counter("already_pending"), 2u);  // port 1 was left pending by the bind
    EXPECT_EQ(counter("masked"), 0u);
    EXPECT_EQ(counter("ports_in_use_peak"), 2u);
}

TEST_F(EventChannelsTest, VirqCounterAndMasked) {
    evtchn_bind_virq_t v{};
    v.virq = VIRQ_TIMER;
    ASSERT_EQ(ec.hypercall(kDom2, EVTCHNOP_bind_virq, &v), 0);
    guest_mask(kDom2, v.port);
    ec.send_virq(kDom2, 0, VIRQ_TIMER);
    ec.send_virq(kDom2, 0, VIRQ_DEBUG);  // not bound: not counted
    EXPECT_EQ(counter("virqs"), 1u);
    EXPECT_EQ(counter("masked"), 1u);
    EXPECT_TRUE(kicks.empty());
    evtchn_unmask_t u{};
    u.port = v.port;
    ASSERT_EQ(ec.hypercall(kDom2, EVTCHNOP_unmask, &u), 0);
    EXPECT_EQ(kicks, std::vector<Kick>{Kick(kDom2, 0)});
    EXPECT_EQ(counter("upcalls"), 1u);
}

TEST_F(EventChannelsTest, KickMayReenter) {
    // A wrapper that runs the receiver's handler and replies from inside the kick callback: the engine
    // has finished its own update before calling out, so the nested send sees consistent state.
    StatsGroup stats2{"evtchn2"};
    std::vector<Kick> seen;
    unsigned replies = 0;
    EventChannels* self = nullptr;
    EventChannels ec2(domains, stats2, [&](DomId d, unsigned v) {
        seen.emplace_back(d, v);
        guest_handle(d, v);
        if (d == kDom1 && replies < 3) {
            ++replies;
            evtchn_send_t s{};
            s.port = 1;
            ASSERT_EQ(self->hypercall(kDom1, EVTCHNOP_send, &s), 0);
        }
    });
    self = &ec2;
    evtchn_alloc_unbound_t a{};
    a.dom = DOMID_SELF;
    a.remote_dom = kDom2;
    ASSERT_EQ(ec2.hypercall(kDom1, EVTCHNOP_alloc_unbound, &a), 0);
    evtchn_bind_interdomain_t b{};
    b.remote_dom = kDom1;
    b.remote_port = 1;
    ASSERT_EQ(ec2.hypercall(kDom2, EVTCHNOP_bind_interdomain, &b), 0);
    seen.clear();
    evtchn_send_t s{};
    s.port = 1;
    ASSERT_EQ(ec2.hypercall(kDom2, EVTCHNOP_send, &s), 0);
    // dom2 -> dom1 kick; dom1 replies -> dom2 kick (no reply from dom2). One reply per dom1 kick.
    EXPECT_EQ(seen, (std::vector<Kick>{{kDom1, 0}, {kDom2, 0}}));
    EXPECT_EQ(replies, 1u);
    // The outer send's own result is recorded before the callback ran; the nested send wrote last.
    EXPECT_EQ(ec2.last_send().target_dom, kDom2);
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

// Physical IRQs (evtchn_bind_pirq / send_guest_pirq): only granted PIRQs bind, once; a raised
// PIRQ sets its port pending on vCPU 0 (or the vCPU bind_vcpu chose); closing unbinds it.
class PirqTest : public ::testing::Test {
  protected:
    PirqTest() {
        domains.add(0, "dom0", true, 2, 16);
        domains.add(1, "guest", false, 1, 16);
    }
    long bind(DomId d, unsigned pirq, evtchn_port_t* port = nullptr) {
        evtchn_bind_pirq_t b{};
        b.pirq = pirq;
        long rc = ec.hypercall(d, EVTCHNOP_bind_pirq, &b);
        if (port) *port = b.port;
        return rc;
    }
    bool pending(DomId d, evtchn_port_t p) {
        return (domains.find(d)->shared_info().evtchn_pending[p / 64] >> (p % 64)) & 1;
    }
    DomainTable domains;
    StatsGroup root{""};
    std::vector<std::pair<DomId, unsigned>> kicks;
    EventChannels ec{domains, root, [this](DomId d, unsigned v) { kicks.emplace_back(d, v); }};
};

TEST_F(PirqTest, OnlyGrantedPirqsBindAndOnlyOnce) {
    EXPECT_EQ(bind(0, 14), -XEN_EPERM) << "not granted to dom0";
    EXPECT_EQ(bind(0, EventChannels::kNrPirqs), -XEN_EINVAL) << "out of range";
    ec.grant_pirq(0, 14);
    evtchn_port_t port = 0;
    ASSERT_EQ(bind(0, 14, &port), 0);
    EXPECT_GT(port, 0u);
    EXPECT_EQ(bind(0, 14), -XEN_EEXIST) << "already bound";
    EXPECT_EQ(bind(1, 14), -XEN_EPERM) << "granted to dom0, not to the guest";
    evtchn_status_t st{};
    ASSERT_EQ(ec.status(0, port, st), 0);
    EXPECT_EQ(st.status, EVTCHNSTAT_pirq);
    EXPECT_EQ(st.u.pirq, 14u);
    evtchn_send_t send{};
    send.port = port;
    EXPECT_EQ(ec.hypercall(0, EVTCHNOP_send, &send), -XEN_EINVAL) << "a PIRQ port is not sendable";
}

TEST_F(PirqTest, RaisedPirqSetsItsPortPendingAndKicksTheBoundVcpu) {
    ec.grant_pirq(0, 14);
    ec.send_pirq(0, 14);
    EXPECT_TRUE(kicks.empty()) << "an unbound PIRQ is dropped";
    evtchn_port_t port = 0;
    ASSERT_EQ(bind(0, 14, &port), 0);
    ec.send_pirq(0, 14);
    EXPECT_TRUE(pending(0, port));
    ASSERT_EQ(kicks.size(), 1u);
    EXPECT_EQ(kicks[0], (std::pair<DomId, unsigned>{0, 0}));
    // bind_vcpu moves it.
    domains.find(0)->shared_info().evtchn_pending[port / 64] = 0;
    domains.find(0)->vcpu_info(0).evtchn_upcall_pending = 0;
    domains.find(0)->vcpu_info(0).evtchn_pending_sel = 0;
    evtchn_bind_vcpu_t bv{};
    bv.port = port;
    bv.vcpu = 1;
    ASSERT_EQ(ec.hypercall(0, EVTCHNOP_bind_vcpu, &bv), 0);
    ec.send_pirq(0, 14);
    ASSERT_EQ(kicks.size(), 2u);
    EXPECT_EQ(kicks[1], (std::pair<DomId, unsigned>{0, 1}));
    // Closing unbinds: the PIRQ can be bound again.
    evtchn_close_t c{};
    c.port = port;
    ASSERT_EQ(ec.hypercall(0, EVTCHNOP_close, &c), 0);
    EXPECT_EQ(bind(0, 14), 0);
    EXPECT_EQ(root.find_counter("pirqs")->value(), 2u);
}

}  // namespace
}  // namespace xensim
