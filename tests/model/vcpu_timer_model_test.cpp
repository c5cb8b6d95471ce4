// VCPUOP_set_singleshot_timer / VCPUOP_stop_singleshot_timer and VIRQ_TIMER (models/xen/hypervisor.cpp
// do_vcpu_op, as xen/common/domain.c's do_vcpu_op and vcpu_singleshot_timer_fn), through a
// hypervisor built directly. Each row of the table is one guest action at a simulated time and its
// expected result; the VIRQ count (xen.evtchn.virqs: raised with a bound port) is read at the end.
#include <gtest/gtest.h>

#include "models/xen/hypervisor.h"
#include "sim/platform/vcpu_guest_services.h"

namespace xensim {
namespace {

struct Machine {
    Machine()
        : clock(2100),
          root(""),
          io_group("io", &root),
          unclaimed(io_group, "unclaimed_io", "accesses", "unclaimed"),
          rep_faults(io_group, "rep_io_faults", "instructions", "rep faults") {
        HypervisorParams hp;
        hp.pcpus = 2;
        hv = std::make_unique<Hypervisor>("xen", hp, cost, clock, tracer, root);
        hv->create_domain({0, "dom0", DomainType::pv, 1, 4096, 256, {}});
        hv->create_domain({1, "guest", DomainType::hvm, 2, 4096, 256, {}});
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

long set_timer(GuestServices& s, unsigned vcpu, std::uint64_t at_ns, std::uint32_t flags = 0) {
    vcpu_set_singleshot_timer_t t{};
    t.timeout_abs_ns = at_ns;
    t.flags = flags;
    return s.hypercall(__HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, vcpu,
                       reinterpret_cast<unsigned long>(&t));
}

TEST(VcpuTimer, OneShotTimersRaiseVirqTimerOnTheCallingVcpuOnly) {
    Machine m;
    Vcpu& v = m.hv->vcpu(1, 0);
    VcpuGuestServices services(*m.hv, v, m.unclaimed, m.rep_faults);
    GuestServices& s = services;
    long bind = 1, other = 0, future_past = 0, null_arg = 0, bad_vcpu = 0, armed = 1, stop = 1, rearm = 1,
         rearm2 = 1, past = 1;
    std::uint64_t virqs_after_stop = 99, virqs_before_second = 99, virqs_after_second = 99,
                  virqs_after_past = 99;
    const Counter* virqs = nullptr;
    v.set_program([&] {
        evtchn_bind_virq_t b{};
        b.virq = VIRQ_TIMER;
        b.vcpu = 0;
        bind = s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                           reinterpret_cast<unsigned long>(&b));
        virqs = m.root.find_counter("xen.evtchn.virqs");
        // do_vcpu_op: "if ( v != current ) return -EINVAL" for the singleshot timer.
        other = set_timer(s, 1, s.now_ns() + 1000);
        // VCPU_SSHOTTMR_future and a timeout already past: -ETIME.
        future_past = set_timer(s, 0, 0, VCPU_SSHOTTMR_future);
        null_arg = s.hypercall(__HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 0, 0);
        bad_vcpu = set_timer(s, 7, s.now_ns() + 1000);  // a vCPU the domain lacks: -ENOENT
        // Armed, then stopped before it expires: no VIRQ.
        armed = set_timer(s, 0, s.now_ns() + 5000);
        stop = s.hypercall(__HYPERVISOR_vcpu_op, VCPUOP_stop_singleshot_timer, 0, 0);
        s.compute(2100 * 20);  // 20 us
        virqs_after_stop = virqs->value();
        // Armed at +5 us, re-armed at +15 us: only the second fires, once.
        rearm = set_timer(s, 0, s.now_ns() + 5000);
        rearm2 = set_timer(s, 0, s.now_ns() + 15000);
        s.compute(2100 * 10);  // 10 us: past the first deadline
        virqs_before_second = virqs->value();
        s.compute(2100 * 10);  // past the second
        virqs_after_second = virqs->value();
        // Without VCPU_SSHOTTMR_future a past timeout fires at once (Linux relies on this).
        past = set_timer(s, 0, 0);
        s.compute(2100);
        virqs_after_past = virqs->value();
    });
    m.hv->start();
    sc_core::sc_start();
    EXPECT_EQ(bind, 0);
    EXPECT_EQ(other, -XEN_EINVAL);
    EXPECT_EQ(future_past, -XEN_ETIME);
    EXPECT_EQ(null_arg, -XEN_EFAULT);
    EXPECT_EQ(bad_vcpu, -XEN_ENOENT);
    EXPECT_EQ(armed, 0);
    EXPECT_EQ(stop, 0);
    EXPECT_EQ(virqs_after_stop, 0u) << "a stopped timer does not fire";
    EXPECT_EQ(rearm, 0);
    EXPECT_EQ(rearm2, 0);
    EXPECT_EQ(virqs_before_second, 0u) << "re-arming replaced the first deadline";
    EXPECT_EQ(virqs_after_second, 1u);
    EXPECT_EQ(past, 0);
    EXPECT_EQ(virqs_after_past, 2u);
    EXPECT_EQ(v.stats.hypercalls.value("vcpu_op/VCPUOP_set_singleshot_timer"), 8u);
    EXPECT_EQ(v.stats.hypercalls.value("vcpu_op/VCPUOP_stop_singleshot_timer"), 1u);
}

}  // namespace
}  // namespace xensim
