// The guest kernel's Xen support without a simulator: a fake machine records what it is asked.
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "frontends/xen_guest.h"

namespace xensim {
namespace {

// Memory and a hypercall log; every hypercall succeeds unless on_hypercall says otherwise. `vcpu`
// is the vCPU the guest code runs on (tests switch it to act as another vCPU of the same machine).
class FakeMachine : public GuestServices {
  public:
    unsigned vcpu_id() const override { return vcpu; }
    bool is_pv() const override { return true; }
    const CostModel& costs() const override { return costs_; }
    void compute(Cycles c) override { computed += c; }
    std::uint64_t now_ns() const override { return 0; }
    std::uint32_t in(std::uint16_t, unsigned) override { return ~0u; }
    void out(std::uint16_t, unsigned, std::uint32_t) override {}
    bool ins(std::uint16_t, unsigned, std::uint64_t, std::uint32_t) override { return true; }
    bool outs(std::uint16_t, unsigned, std::uint64_t, std::uint32_t) override { return true; }
    std::uint64_t mmio_read(std::uint64_t, unsigned) override { return ~0ull; }
    void mmio_write(std::uint64_t, unsigned, std::uint64_t) override {}
    void cpuid(std::uint32_t leaf, std::uint32_t, std::uint32_t out[4]) override {
        out[0] = out[1] = out[2] = out[3] = 0;
        if (leaf == 0x40000000) {  // "XenVMMXenVMM", so that an HVM kernel finds Xen
            std::memcpy(&out[1], "XenV", 4);
            std::memcpy(&out[2], "MMXe", 4);
            std::memcpy(&out[3], "nVMM", 4);
        }
    }
    std::uint64_t rdmsr(std::uint32_t) override { return 0; }
    void wrmsr(std::uint32_t, std::uint64_t) override {}
    long hypercall(unsigned op, unsigned long a1, unsigned long a2, unsigned long, unsigned long,
                   unsigned long) override {
        hypercalls.push_back({op, a1});
        if (op == __HYPERVISOR_event_channel_op && a1 == EVTCHNOP_unmask)
            unmasks.push_back(reinterpret_cast<evtchn_unmask_t*>(a2)->port);
        if (op == __HYPERVISOR_memory_op && a1 == XENMEM_add_to_physmap) {
            const auto* x = reinterpret_cast<const xen_add_to_physmap_t*>(a2);
            if (x->space == XENMAPSPACE_shared_info) shared_info_gfn = x->gpfn;
        }
        return on_hypercall ? on_hypercall(op, a1, a2) : 0;
    }
    void halt() override { ++halts; }
    void mark_phase(const char*) override {}
    void set_irq_handler(std::uint8_t, std::function<void()>) override {}
    void set_upcall_handler(std::function<void()> h) override { handler = std::move(h); }
    void eoi() override {}
    std::optional<std::uint64_t> alloc_page() override {
        std::uint64_t g = next_gfn++;
        pages[g] = std::make_unique<std::uint8_t[]>(4096);  // value-initialized: zeros
        return g;
    }
    std::optional<std::uint64_t> alloc_pages(unsigned n) override {
        return n == 1 ? alloc_page() : std::nullopt;  // the kernel core never asks for more
    }
    void free_page(std::uint64_t gfn) override { pages.erase(gfn); }
    std::uint8_t* page(std::uint64_t gfn) override {
        auto it = pages.find(gfn);
        return it == pages.end() ? nullptr : it->second.get();
    }

    CostModel costs_ = CostModel::defaults();
    Cycles computed = 0;
    unsigned halts = 0;
    unsigned vcpu = 0;
    std::uint64_t shared_info_gfn = 0;
    std::vector<std::pair<unsigned, unsigned long>> hypercalls;
    std::vector<evtchn_port_t> unmasks;  // ports of EVTCHNOP_unmask calls
    std::function<long(unsigned, unsigned long, unsigned long)> on_hypercall;
    std::function<void()> handler;
    std::map<std::uint64_t, std::unique_ptr<std::uint8_t[]>> pages;
    std::uint64_t next_gfn = 0x100;
};

// shared_info where XenGuest::boot mapped it (add_to_physmap is faked: the guest's own page).
shared_info_t* booted(XenGuest& g, FakeMachine& m) {
    EXPECT_EQ(g.boot({&m}, {}), 0);
    return reinterpret_cast<shared_info_t*>(m.page(m.shared_info_gfn));
}

void raise(shared_info_t* si, evtchn_port_t port) {
    si->evtchn_pending[port / 64] |= xen_ulong_t(1) << (port % 64);
    si->vcpu_info[0].evtchn_pending_sel |= xen_ulong_t(1) << (port / 64);
    si->vcpu_info[0].evtchn_upcall_pending = 1;
}

TEST(XenGuest, UpcallScansTheTwoLevelBitmapsAndDispatchesUnmaskedPortsInOrder) {
    FakeMachine m;
    XenGuest g(1, true);
    shared_info_t* si = booted(g, m);
    std::vector<evtchn_port_t> seen;
    for (evtchn_port_t p : {3u, 70u, 130u})
        g.set_port_handler(p, [&](GuestServices&, evtchn_port_t port) { seen.push_back(port); });
    g.unmask(m, 3);
    g.unmask(m, 70);  // 130 stays masked (boot masks every port)
    raise(si, 130);
    raise(si, 70);
    raise(si, 3);
    g.handle_upcall(m);
    EXPECT_EQ(seen, (std::vector<evtchn_port_t>{3, 70}));
    EXPECT_EQ(si->vcpu_info[0].evtchn_upcall_pending, 0);
    EXPECT_EQ(si->vcpu_info[0].evtchn_pending_sel, 0u);
    EXPECT_EQ(si->evtchn_pending[0], 0u) << "handled ports are acknowledged";
    EXPECT_NE(si->evtchn_pending[2] & (xen_ulong_t(1) << 2), 0u) << "a masked port stays pending";
    EXPECT_EQ(m.computed, m.costs_.upcall_dispatch);
    // Unmasking a pending port raises the upcall from the guest side (evtchn_2l_unmask).
    g.unmask(m, 130);
    EXPECT_EQ(si->vcpu_info[0].evtchn_upcall_pending, 1);
    g.handle_upcall(m);
    EXPECT_EQ(seen.back(), 130u);
}

bool bit(const xen_ulong_t* words, evtchn_port_t port) { return (words[port / 64] >> (port % 64)) & 1; }

std::size_t count_evtchnop(const FakeMachine& m, unsigned cmd) {
    std::size_t n = 0;
    for (const auto& [op, a1] : m.hypercalls) n += op == __HYPERVISOR_event_channel_op && a1 == cmd;
    return n;
}

// Linux 6.1 evtchn_2l_unmask on the port's own vCPU: a PV kernel resends a pending event itself,
// an HVM kernel ("hvm domains don't have their own implementation of irq_enable") masks the port
// again and asks Xen with EVTCHNOP_unmask. Nothing pending: neither makes a hypercall.
TEST(XenGuest, UnmaskOfAPendingPortTakesTheHypercallOnlyInAnHvmGuest) {
    struct Row {
        const char* intent;
        bool pv;
        bool pending;
        std::size_t unmask_hypercalls;
        bool mask_after;
        std::uint8_t upcall_flag;  // set by the guest itself
    };
    const Row rows[] = {
        {"HVM, pending: re-mask, EVTCHNOP_unmask", false, true, 1, true, 0},
        {"HVM, nothing pending: clear the bit, no hypercall", false, false, 0, false, 0},
        {"PV, pending: clear the bit, raise the upcall flag", true, true, 0, false, 1},
        {"PV, nothing pending: clear the bit", true, false, 0, false, 0},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        FakeMachine m;
        XenGuest g(1, r.pv);
        shared_info_t* si = booted(g, m);
        if (r.pending) si->evtchn_pending[0] |= xen_ulong_t(1) << 9;
        const std::size_t before = m.hypercalls.size();
        g.unmask(m, 9);
        EXPECT_EQ(m.hypercalls.size() - before, r.unmask_hypercalls);
        EXPECT_EQ(m.unmasks, std::vector<evtchn_port_t>(r.unmask_hypercalls, 9));
        EXPECT_EQ(bit(si->evtchn_mask, 9), r.mask_after);
        EXPECT_EQ(si->vcpu_info[0].evtchn_upcall_pending, r.upcall_flag);
        EXPECT_EQ(si->vcpu_info[0].evtchn_pending_sel, xen_ulong_t(r.upcall_flag));
    }
}

// EVTCHNOP_bind_interdomain always leaves the new port pending (Xen's evtchn_bind_interdomain), so an
// HVM guest's bind is followed by EVTCHNOP_unmask: two hypercalls, not one.
TEST(XenGuest, HvmBindInterdomainIsFollowedByEvtchnopUnmask) {
    FakeMachine m;
    XenGuest g(1, false);
    shared_info_t* si = booted(g, m);
    m.on_hypercall = [&](unsigned op, unsigned long cmd, unsigned long arg) -> long {
        if (op == __HYPERVISOR_event_channel_op && cmd == EVTCHNOP_bind_interdomain) {
            reinterpret_cast<evtchn_bind_interdomain_t*>(arg)->local_port = 5;
            si->evtchn_pending[0] |= xen_ulong_t(1) << 5;  // masked (boot masks all): no upcall
        }
        return 0;
    };
    m.hypercalls.clear();
    evtchn_port_t local = 0;
    ASSERT_EQ(g.bind_interdomain(m, 0, 7, &local), 0);
    EXPECT_EQ(local, 5u);
    ASSERT_EQ(m.hypercalls.size(), 2u);
    EXPECT_EQ(m.hypercalls[0].second, static_cast<unsigned long>(EVTCHNOP_bind_interdomain));
    EXPECT_EQ(m.hypercalls[1].second, static_cast<unsigned long>(EVTCHNOP_unmask));
    EXPECT_EQ(m.unmasks, std::vector<evtchn_port_t>{5});
    EXPECT_TRUE(bit(si->evtchn_mask, 5)) << "left for Xen's unmask to clear";
    EXPECT_EQ(g.port_vcpu(5), 0u) << "a new interdomain port is bound to vCPU 0";
}

// Linux's per-CPU port mask (events_2l.c active_evtchns = pending & ~mask & cpu_evtchn_mask): two
// ports in one bitmap word, bound to vCPU 0 and vCPU 1; each vCPU's upcall takes only its own.
TEST(XenGuest, UpcallTakesOnlyThePortsBoundToItsVcpu) {
    FakeMachine m;
    XenGuest g(2, true);
    shared_info_t* si = booted(g, m);
    std::vector<std::pair<unsigned, evtchn_port_t>> seen;
    for (evtchn_port_t p : {3u, 4u}) {
        g.set_port_handler(
            p, [&](GuestServices& s, evtchn_port_t port) { seen.emplace_back(s.vcpu_id(), port); });
        g.unmask(m, p);
    }
    m.on_hypercall = [&](unsigned op, unsigned long cmd, unsigned long arg) -> long {
        if (op == __HYPERVISOR_event_channel_op && cmd == EVTCHNOP_unmask) {  // Xen clears the mask bit
            const evtchn_port_t p = reinterpret_cast<evtchn_unmask_t*>(arg)->port;
            si->evtchn_mask[p / 64] &= ~(xen_ulong_t(1) << (p % 64));
        }
        return 0;
    };
    m.hypercalls.clear();
    ASSERT_EQ(g.bind_vcpu(m, 4, 1), 0);
    EXPECT_EQ(m.unmasks, std::vector<evtchn_port_t>{4}) << "unmasked from vCPU 0, bound to vCPU 1";
    EXPECT_EQ(g.port_vcpu(3), 0u);
    EXPECT_EQ(g.port_vcpu(4), 1u);
    // Xen sets each port pending with the selector bit of its notify vCPU.
    si->evtchn_pending[0] |= (xen_ulong_t(1) << 3) | (xen_ulong_t(1) << 4);
    si->vcpu_info[0].evtchn_pending_sel = 1;
    si->vcpu_info[0].evtchn_upcall_pending = 1;
    si->vcpu_info[1].evtchn_pending_sel = 1;
    si->vcpu_info[1].evtchn_upcall_pending = 1;
    g.handle_upcall(m);
    EXPECT_EQ(seen, (std::vector<std::pair<unsigned, evtchn_port_t>>{{0, 3}}));
    EXPECT_TRUE(bit(si->evtchn_pending, 4)) << "vCPU 1's event waits for vCPU 1";
    m.vcpu = 1;
    g.handle_upcall(m);
    EXPECT_EQ(seen, (std::vector<std::pair<unsigned, evtchn_port_t>>{{0, 3}, {1, 4}}));
    EXPECT_EQ(si->evtchn_pending[0], 0u);
    // Closing the port unbinds it: its next event is handled by no vCPU.
    ASSERT_EQ(g.close(m, 4), 0);
    EXPECT_FALSE(g.port_vcpu(4).has_value());
    si->evtchn_pending[0] |= xen_ulong_t(1) << 4;
    si->vcpu_info[1].evtchn_pending_sel = 1;
    g.handle_upcall(m);
    EXPECT_EQ(seen.size(), 2u);
}

// xen_rebind_evtchn_to_cpu: mask, EVTCHNOP_bind_vcpu, rebind, then unmask unless the port was masked
// before; the unmask runs on the calling vCPU, so for a port now bound elsewhere it is a hypercall.
TEST(XenGuest, BindVcpuMasksAroundTheRebindAndUnmasksThroughXenFromAnotherVcpu) {
    FakeMachine m;
    XenGuest g(2, true);
    shared_info_t* si = booted(g, m);
    g.set_port_handler(6, [](GuestServices&, evtchn_port_t) {});
    g.unmask(m, 6);
    long rc_bind = 0;
    bool masked_during_bind = false;
    m.on_hypercall = [&](unsigned op, unsigned long cmd, unsigned long) -> long {
        if (op == __HYPERVISOR_event_channel_op && cmd == EVTCHNOP_bind_vcpu) {
            masked_during_bind = bit(si->evtchn_mask, 6);
            return rc_bind;
        }
        return 0;
    };
    m.hypercalls.clear();
    ASSERT_EQ(g.bind_vcpu(m, 6, 1), 0);
    EXPECT_TRUE(masked_during_bind);
    EXPECT_EQ(count_evtchnop(m, EVTCHNOP_bind_vcpu), 1u);
    EXPECT_EQ(m.unmasks, std::vector<evtchn_port_t>{6}) << "bound to vCPU 1, unmasked from vCPU 0";
    // Rebound from vCPU 1 to vCPU 1 itself: the unmask is local, no hypercall.
    m.vcpu = 1;
    si->evtchn_mask[0] &= ~(xen_ulong_t(1) << 6);  // what Xen's EVTCHNOP_unmask did
    ASSERT_EQ(g.bind_vcpu(m, 6, 1), 0);
    EXPECT_EQ(m.unmasks.size(), 1u);
    EXPECT_FALSE(bit(si->evtchn_mask, 6));
    // A port the guest holds masked stays masked; a refused rebind keeps the old binding.
    g.mask(m, 6);
    rc_bind = -XEN_EINVAL;
    EXPECT_EQ(g.bind_vcpu(m, 6, 0), -XEN_EINVAL);
    EXPECT_EQ(g.port_vcpu(6), 1u);
    EXPECT_TRUE(bit(si->evtchn_mask, 6));
    EXPECT_EQ(m.unmasks.size(), 1u);
}

TEST(XenGuest, DeferredWorkRunsLaterInOrderIncludingWorkItQueues) {
    FakeMachine m;
    XenGuest g(1, true);
    std::vector<int> order;
    g.defer([&](GuestServices&) {
        order.push_back(1);
        g.defer([&](GuestServices&) { order.push_back(3); });
    });
    g.defer([&](GuestServices&) { order.push_back(2); });
    EXPECT_TRUE(order.empty()) << "nothing runs at defer time";
    EXPECT_TRUE(g.run_deferred(m));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    EXPECT_FALSE(g.run_deferred(m)) << "the queue is empty";
}

TEST(XenGuest, GrantsAreEndedOnlyWhenXenNoLongerUsesThem) {
    FakeMachine m;
    XenGuest g(1, true);
    booted(g, m);
    auto ref = g.grant_access(0, 0x200, true);
    ASSERT_TRUE(ref);
    EXPECT_EQ(*ref, static_cast<grant_ref_t>(GNTTAB_NR_RESERVED_ENTRIES)) << "reserved entries are skipped";
    grant_entry_v1_t* e = g.grant_entry(*ref);
    EXPECT_EQ(e->flags, GTF_permit_access | GTF_readonly);
    EXPECT_EQ(e->frame, 0x200u);
    e->flags |= GTF_reading;  // as Xen sets it while the grant is mapped
    EXPECT_FALSE(g.end_access(*ref)) << "still mapped: the grant must stay";
    EXPECT_NE(e->flags & GTF_permit_access, 0);
    e->flags &= ~GTF_reading;
    EXPECT_TRUE(g.end_access(*ref));
    EXPECT_EQ(e->flags, 0);
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

// A vCPU whose halt leaves the idle loop (so a test can stop XenGuest::idle where it halts).
struct Halted {};
class HaltingMachine : public FakeMachine {
  public:
    void halt() override {
        ++halts;
        throw Halted{};
    }
};

// XenGuest::defer_on: work for a kernel thread on a vCPU runs in that vCPU's idle loop; waking a
// halted other vCPU costs one reschedule IPI (EVTCHNOP_bind_ipi once, then EVTCHNOP_send), as
// try_to_wake_up -> xen_smp_send_reschedule; no IPI for the caller's own vCPU, for a vCPU that is
// not halted, or for one already kicked since it halted.
TEST(XenGuest, DeferOnRunsWorkOnItsVcpuAndKicksAHaltedVcpuOnce) {
    HaltingMachine m0;
    m0.vcpu = 0;
    m0.on_hypercall = [](unsigned op, unsigned long cmd, unsigned long arg) -> long {
        if (op == __HYPERVISOR_event_channel_op && cmd == EVTCHNOP_bind_ipi)
            reinterpret_cast<evtchn_bind_ipi_t*>(arg)->port = 9;
        return 0;
    };
    HaltingMachine m1;
    m1.vcpu = 1;
    XenGuest g(2, true);
    ASSERT_EQ(g.boot({&m0, &m1}, {}), 0);
    std::vector<unsigned> ran;  // the vCPU each work item ran on
    auto work = [&ran](GuestServices& s) { ran.push_back(s.vcpu_id()); };

    // vCPU 1 not halted yet: queued, no IPI.
    g.defer_on(m0, 1, work);
    EXPECT_EQ(count_evtchnop(m0, EVTCHNOP_send), 0u);
    // Its idle loop runs it, then halts.
    EXPECT_THROW(g.idle(m1), Halted);
    EXPECT_EQ(ran, (std::vector<unsigned>{1}));
    // Now halted: the first wake-up binds the IPI channel and sends; the second is not sent.
    g.defer_on(m0, 1, work);
    g.defer_on(m0, 1, work);
    EXPECT_EQ(count_evtchnop(m0, EVTCHNOP_bind_ipi), 1u);
    EXPECT_EQ(count_evtchnop(m0, EVTCHNOP_send), 1u);
    EXPECT_EQ(g.wakeup_ipis(), 1u);
    EXPECT_EQ(g.port_vcpu(9), std::optional<unsigned>(1));
    // Work for the caller's own vCPU: no IPI.
    g.defer_on(m1, 1, work);
    EXPECT_EQ(count_evtchnop(m0, EVTCHNOP_send) + count_evtchnop(m1, EVTCHNOP_send), 1u);
    // vCPU 1 wakes (halt returns in a real run; here the loop is entered again): all three run
    // there, none on vCPU 0.
    EXPECT_THROW(g.idle(m1), Halted);
    EXPECT_EQ(ran, (std::vector<unsigned>{1, 1, 1, 1}));
    EXPECT_FALSE(g.run_deferred(m0));
    // Halted again: the next wake-up sends again, on the channel already bound.
    g.defer_on(m0, 1, work);
    EXPECT_EQ(count_evtchnop(m0, EVTCHNOP_bind_ipi), 1u);
    EXPECT_EQ(count_evtchnop(m0, EVTCHNOP_send), 2u);
}

}  // namespace
}  // namespace xensim
