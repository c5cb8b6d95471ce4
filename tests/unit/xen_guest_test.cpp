// The guest kernel's Xen support without a simulator: a fake machine records what it is asked.
#include <map>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "frontends/xen_guest.h"

namespace xensim {
namespace {

// Memory and a hypercall log; every hypercall succeeds.
class FakeMachine : public GuestServices {
  public:
    unsigned vcpu_id() const override { return 0; }
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
    void cpuid(std::uint32_t, std::uint32_t, std::uint32_t out[4]) override {
        out[0] = out[1] = out[2] = out[3] = 0;
    }
    std::uint64_t rdmsr(std::uint32_t) override { return 0; }
    void wrmsr(std::uint32_t, std::uint64_t) override {}
    long hypercall(unsigned op, unsigned long a1, unsigned long, unsigned long, unsigned long,
                   unsigned long) override {
        hypercalls.push_back({op, a1});
        return 0;
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
    std::vector<std::pair<unsigned, unsigned long>> hypercalls;
    std::function<void()> handler;
    std::map<std::uint64_t, std::unique_ptr<std::uint8_t[]>> pages;
    std::uint64_t next_gfn = 0x100;
};

// shared_info as XenGuest::boot maps it: the first page it allocates (add_to_physmap is faked).
shared_info_t* booted(XenGuest& g, FakeMachine& m) {
    EXPECT_EQ(g.boot({&m}, {}), 0);
    return reinterpret_cast<shared_info_t*>(m.page(0x100));
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
