// Guest operations become VM exits with the right Intel basic exit reason and cause, through a
// hypervisor built directly (no scenario), as a device model test would drive a device.
#include <cstring>

#include <gtest/gtest.h>

#include "models/xen/hypervisor.h"
#include "sim/core/hex.h"
#include "sim/platform/vcpu_guest_services.h"

namespace xensim {
namespace {

struct Machine {
    explicit Machine(DomainType guest_type)
        : clock(2100),
          root(""),
          io_group("io", &root),
          unclaimed(io_group, "unclaimed_io", "accesses", "unclaimed"),
          rep_faults(io_group, "rep_io_faults", "instructions", "rep faults") {
        HypervisorParams hp;
        hp.pcpus = 2;
        hv = std::make_unique<Hypervisor>("xen", hp, cost, clock, tracer, root);
        hv->create_domain({0, "dom0", DomainType::pv, 1, 4096, 256, {}});
        if (guest_type != DomainType::pv) hv->create_domain({1, "guest", guest_type, 1, 4096, 256, {}});
    }
    CostModel cost = CostModel::defaults();
    Clock clock;
    Tracer tracer;
    StatsGroup root;
    StatsGroup io_group;
    Counter unclaimed;
    Counter rep_faults;
    std::unique_ptr<Hypervisor> hv;
};

std::uint64_t exits(Vcpu& v, const char* reason) { return v.stats.exits.value(reason); }
std::uint64_t by_cause(Vcpu& v, const std::string& c) { return v.stats.exits_by_cause.value(c); }

TEST(GuestServices, HvmTrappingOperationsAreOneExitEachWithReasonAndCause) {
    Machine m(DomainType::hvm);
    Vcpu& v = m.hv->vcpu(1, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;  // as guest code sees it
    std::uint32_t in_value = 0;
    std::uint64_t mmio_value = 0;
    std::uint64_t buf_gfn = 0;
    long unknown = 0, hvm_forbidden = 0, bad_port = 0, version = 0, null_arg = 0, null_evtchn = 0;
    std::uint32_t leaf[4];
    v.set_program([&] {
        s.out(0x80, 1, 0x12);
        in_value = s.in(0x1f7, 1);
        buf_gfn = *s.alloc_page();
        s.ins(0x1f0, 2, buf_gfn << 12, 256);  // rep insw: one exit for the whole string
        s.outs(0x1f0, 2, buf_gfn << 12, 256);
        mmio_value = s.mmio_read(0xfebc0000, 4);
        s.mmio_write(0xfebc0008, 4, 1);
        s.cpuid(0x40000000, 0, leaf);
        (void)s.rdmsr(0x1b);
        s.wrmsr(0x40000000, 0x1000);
        unknown = s.hypercall(63);
        hvm_forbidden = s.hypercall(__HYPERVISOR_callback_op, CALLBACKOP_register, 0);
        evtchn_send_t send{};
        send.port = 77;
        bad_port =
            s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send));
        version = s.hypercall(__HYPERVISOR_xen_version, XENVER_version);
        null_arg = s.hypercall(__HYPERVISOR_hvm_op, HVMOP_set_param, 0);
        null_evtchn = s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, 0);
        sc_core::sc_stop();
    });
    m.hv->vcpu(0, 0).set_program([] {});
    m.hv->start();
    sc_core::sc_start();

    EXPECT_EQ(exits(v, "IO_INSTRUCTION"), 4u);
    EXPECT_EQ(by_cause(v, "IO_INSTRUCTION:port:0x80"), 1u);
    EXPECT_EQ(by_cause(v, "IO_INSTRUCTION:port:0x1f0"), 2u);
    EXPECT_EQ(exits(v, "EPT_VIOLATION"), 2u);
    EXPECT_EQ(by_cause(v, "EPT_VIOLATION:mmio:unclaimed"), 2u);  // no device model claims the page
    EXPECT_EQ(exits(v, "CPUID"), 1u);
    EXPECT_EQ(exits(v, "MSR_READ"), 1u);
    EXPECT_EQ(exits(v, "MSR_WRITE"), 1u);
    EXPECT_EQ(exits(v, "VMCALL"), 6u);
    EXPECT_EQ(v.stats.exits.total(), 15u);
    // No device claims anything yet: reads float high, as on an unclaimed port / MMIO range.
    EXPECT_EQ(in_value, 0xffu);
    EXPECT_EQ(mmio_value, 0xffffffffu);
    EXPECT_EQ(v.domain().memory.page(buf_gfn)[0], 0xff);
    EXPECT_EQ(v.domain().memory.page(buf_gfn)[511], 0xff);
    EXPECT_EQ(v.domain().memory.page(buf_gfn)[512], 0) << "256 words, no more";
    EXPECT_EQ(m.unclaimed.value(), 6u);
    EXPECT_EQ(std::memcmp(&leaf[1], "XenVMMXenVMM", 12), 0) << "Xen's signature leaf";
    // Xen's errnos: unknown hypercall, a hypercall absent from the HVM table, a bad port.
    EXPECT_EQ(unknown, -XEN_ENOSYS);
    EXPECT_EQ(hvm_forbidden, -XEN_ENOSYS);
    EXPECT_EQ(bad_port, -XEN_EINVAL);
    EXPECT_EQ(version, (4 << 16) | 17);
    EXPECT_EQ(null_arg, -XEN_EFAULT) << "a null argument pointer is a fault, not a crash";
    EXPECT_EQ(null_evtchn, -XEN_EFAULT);
    EXPECT_EQ(m.hv->stats.hypercall_errors.value("event_channel_op/EVTCHNOP_send:EINVAL"), 1u);
    EXPECT_EQ(v.stats.hypercalls.value("unknown_63"), 1u);
    // Time: every exit charged exit_cost(reason) on the vCPU.
    Cycles expected = 4 * m.cost.exit_cost(ExitReason::IO_INSTRUCTION) +
                      2 * m.cost.exit_cost(ExitReason::EPT_VIOLATION) + m.cost.exit_cost(ExitReason::CPUID) +
                      m.cost.exit_cost(ExitReason::MSR_READ) + m.cost.exit_cost(ExitReason::MSR_WRITE) +
                      4 * m.cost.exit_cost(ExitReason::VMCALL);
    EXPECT_GE(v.stats.hypervisor_cycles.value(), expected);
}

// A guest choosing numbers cannot grow host memory: thousands of distinct unknown sub-ops,
// unknown hypercall numbers and unclaimed MMIO pages get Xen's answers (ENOSYS; all-ones reads)
// and share one counter label and one cached name each.
TEST(GuestServices, GuestChosenNumbersDoNotGrowLabelsOrTheNameCache) {
    Machine m(DomainType::hvm);
    Vcpu& v = m.hv->vcpu(1, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;
    const unsigned n = 3000;
    unsigned enosys_evtchn = 0, enosys_sched = 0, enosys_op = 0, ones = 0;
    std::size_t cache_after_warmup = 0;
    v.set_program([&] {
        for (unsigned i = 0; i < n; ++i) {
            evtchn_send_t arg{};
            enosys_evtchn += s.hypercall(__HYPERVISOR_event_channel_op, 1000 + i,
                                         reinterpret_cast<unsigned long>(&arg)) == -XEN_ENOSYS;
            enosys_sched += s.hypercall(__HYPERVISOR_sched_op, 1000 + i, 0) == -XEN_ENOSYS;
            enosys_op += s.hypercall(100 + i) == -XEN_ENOSYS;
            ones += s.mmio_read(0x100000000ull + (std::uint64_t{i} << 12), 4) == 0xffffffffu;
            if (i == 0) cache_after_warmup = m.hv->hypercall_name_cache_size();
        }
        sc_core::sc_stop();
    });
    m.hv->vcpu(0, 0).set_program([] {});
    m.hv->start();
    sc_core::sc_start();

    EXPECT_EQ(enosys_evtchn, n) << "do_event_channel_op: unknown cmd -> ENOSYS";
    EXPECT_EQ(enosys_op, n) << "unknown hypercall -> ENOSYS";
    EXPECT_EQ(ones, n) << "an unclaimed MMIO read floats high";
    (void)enosys_sched;
    EXPECT_EQ(m.hv->hypercall_name_cache_size(), cache_after_warmup) << "one entry per name, not per number";
    EXPECT_EQ(v.stats.hypercalls.value("event_channel_op/EVTCHNOP_unknown"), n);
    EXPECT_EQ(v.stats.hypercalls.value("sched_op/SCHEDOP_unknown"), n);
    EXPECT_EQ(v.stats.hypercalls.value("unknown"), n) << "numbers beyond NR_hypercalls share one label";
    EXPECT_EQ(v.stats.hypercalls.labels().size(), 3u);
    const CounterFamily* ops = m.root.find_family("xen.evtchn.ops");
    ASSERT_NE(ops, nullptr);
    EXPECT_EQ(ops->value("EVTCHNOP_unknown"), n);
    EXPECT_EQ(ops->labels().size(), 1u);
    EXPECT_EQ(by_cause(v, "EPT_VIOLATION:mmio:unclaimed"), n);
    EXPECT_EQ(v.stats.exits_by_cause.labels().size(), 4u) << "three VMCALL:hypercall:<name>, one MMIO";
}

// A rep string is emulated a page of its buffer at a time (Xen's hvmemul_do_io_addr), and the
// instruction restarted for the rest. 1024 dwords starting 8 bytes before a page boundary: one exit
// for the 2 dwords in the first page, one for the other 1022. 3 dwords starting 2 bytes before the
// boundary: the straddling dword alone, then 2. A buffer that runs into a frame the guest does not
// own: the part in RAM, then a fault (#GP) on the next exit.
TEST(GuestServices, RepStringsExitOncePerPageOfTheirBuffer) {
    Machine m(DomainType::hvm);
    Vcpu& v = m.hv->vcpu(1, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;
    bool crossing = false, straddle = false, beyond = false;
    std::uint64_t pages = 0;
    v.set_program([&] {
        pages = *s.alloc_pages(2);
        const std::uint64_t base = pages << 12;
        crossing = s.ins(0x1f0, 4, base + 4096 - 8, 1024);  // 2 dwords, then 1022
        straddle = s.ins(0x1f0, 4, base + 4096 - 2, 3);     // one straddling dword, then 2
        beyond = s.ins(0x1f0, 4, base + 2 * 4096 - 8, 4);   // 2 dwords, then a frame not owned
        sc_core::sc_stop();
    });
    m.hv->vcpu(0, 0).set_program([] {});
    m.hv->start();
    sc_core::sc_start();
    EXPECT_TRUE(crossing);
    EXPECT_TRUE(straddle);
    EXPECT_FALSE(beyond);
    EXPECT_EQ(by_cause(v, "IO_INSTRUCTION:port:0x1f0"), 2u + 2u + 2u);
    EXPECT_EQ(m.rep_faults.value(), 1u);
    EXPECT_EQ(m.unclaimed.value(), 5u) << "every string part that was emulated reached no device";
    const std::uint8_t* second = v.domain().memory.page(pages + 1);
    EXPECT_EQ(second[4087], 0xff) << "the crossing string's last dword";
}

TEST(GuestServices, PvDomainTakesNoVmExits) {
    Machine m(DomainType::pv);
    Vcpu& v = m.hv->vcpu(0, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;
    long version = 0;
    v.set_program([&] {
        s.out(0x80, 1, 0);
        std::uint32_t leaf[4];
        s.cpuid(0x40000000, 0, leaf);
        version = s.hypercall(__HYPERVISOR_xen_version, XENVER_version);
        sc_core::sc_stop();
    });
    m.hv->start();
    sc_core::sc_start();
    EXPECT_EQ(v.stats.exits.total(), 0u);
    EXPECT_EQ(version, (4 << 16) | 17);
    EXPECT_EQ(v.stats.hypercalls.value("xen_version/XENVER_version"), 1u) << "still counted as a hypercall";
    EXPECT_GE(v.stats.hypervisor_cycles.value(), m.cost.pv_hypercall);
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

// A device's completion interrupt: raised at a simulated time as a PIRQ, it reaches dom0's bound
// port then (not before), wakes its halted vCPU, and runs its upcall; interrupts fire in time order
// whatever order they were scheduled in.
TEST(DeviceIrq, APirqRaisedAtATimeWakesDom0ThenAndNotBefore) {
    Machine m(DomainType::hvm);
    m.hv->event_channels().grant_pirq(0, 14);
    Vcpu& v = m.hv->vcpu(0, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;
    DomainRecord& dom0 = v.domain();
    std::vector<std::uint64_t> seen_ns;
    evtchn_port_t port = 0;
    long bound = -1;
    v.set_program([&] {
        callback_register_t cb{};
        cb.type = CALLBACKTYPE_event;
        s.hypercall(__HYPERVISOR_callback_op, CALLBACKOP_register, reinterpret_cast<unsigned long>(&cb));
        evtchn_bind_pirq_t b{};
        b.pirq = 14;
        bound = s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_pirq,
                            reinterpret_cast<unsigned long>(&b));
        port = b.port;
        s.set_upcall_handler([&] {  // a minimal 2-level handler for the one port
            dom0.vcpu_info(0).evtchn_upcall_pending = 0;
            dom0.vcpu_info(0).evtchn_pending_sel = 0;
            dom0.shared_info().evtchn_pending[port / 64] &= ~(xen_ulong_t(1) << (port % 64));
            seen_ns.push_back(s.now_ns());
        });
        for (;;) s.halt();
    });
    m.hv->vcpu(1, 0).set_program([] {});
    m.hv->raise_pirq_at(0, 14, 50'000'000);  // 50 us
    m.hv->raise_pirq_at(0, 14, 20'000'000);  // 20 us: scheduled second, due first
    m.hv->start();
    sc_core::sc_start(sc_core::sc_time(1, sc_core::SC_MS));
    ASSERT_EQ(bound, 0);
    ASSERT_EQ(seen_ns.size(), 2u);
    EXPECT_GE(seen_ns[0], 20'000u);
    EXPECT_LT(seen_ns[0], 25'000u) << "delivered promptly: wake-up and switch, microseconds";
    EXPECT_GE(seen_ns[1], 50'000u);
    EXPECT_LT(seen_ns[1], 55'000u);
    EXPECT_EQ(m.hv->stats.device_irqs.value(), 2u);
    EXPECT_EQ(v.stats.wakeups.value(), 2u) << "each interrupt woke the halted dom0 vCPU";
    EXPECT_EQ(v.stats.upcalls.value(), 2u);
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

// Vcpu::record_exit remembers the counters of the first 32 causes in a small hash table and looks
// any further cause up by its label: every exit lands on its own "reason:kind:0x<n>" label either
// way, with the same port under another reason or kind kept apart.
TEST(GuestServices, ExitCausesBeyondTheRememberedOnesAreCountedByLabel) {
    Machine m(DomainType::hvm);
    Vcpu& v = m.hv->vcpu(1, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;
    constexpr unsigned kPorts = 48;  // more than Vcpu::kMaxExitCounters
    v.set_program([&] {
        for (unsigned round = 0; round < 3; ++round)
            for (unsigned i = 0; i < kPorts; ++i) {
                s.out(static_cast<std::uint16_t>(0x300 + i), 1, 0);
                if (i % 8 == 0) (void)s.rdmsr(0x300 + i);  // the same number, another reason and kind
            }
        sc_core::sc_stop();
    });
    m.hv->vcpu(0, 0).set_program([] {});
    m.hv->start();
    sc_core::sc_start();

    EXPECT_EQ(exits(v, "IO_INSTRUCTION"), 3u * kPorts);
    EXPECT_EQ(exits(v, "MSR_READ"), 3u * kPorts / 8);
    for (unsigned i = 0; i < kPorts; ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(by_cause(v, "IO_INSTRUCTION:port:" + hex_string(0x300 + i)), 3u);
        EXPECT_EQ(by_cause(v, "MSR_READ:msr:" + hex_string(0x300 + i)), i % 8 == 0 ? 3u : 0u);
    }
    EXPECT_EQ(v.stats.exits_by_cause.labels().size(), kPorts + kPorts / 8);
}

}  // namespace
}  // namespace xensim
