// dom0's kernel timers (Linux's timer_list): per-vCPU lists of pending timers, and the deadline
// each vCPU's one-shot Xen timer is programmed at.
//
// The problem. A backend sometimes has to act at a time no event will announce: netback's credit
// scheduler stops a rate-limited queue and must resume it when the next credit window opens
// (tx_credit_exceeded -> mod_timer(&queue->credit_timeout, next_credit)). Linux offers timer_list
// (timer_setup / mod_timer / del_timer), kept per CPU; under Xen each CPU's clockevent device is
// the vCPU's one-shot timer (drivers/xen/time.c xen_vcpuop_set_next_event ->
// VCPUOP_set_singleshot_timer), whose expiry raises VIRQ_TIMER on that vCPU; the interrupt runs
// the expired timers' functions in softirq context on that CPU (run_timer_softirq ->
// expire_timers) and the tick code programs the next deadline. This engine is that bookkeeping,
// without the hypercalls: the kernel wrapper (sim/platform/dom0_kernel.h) makes them when
// program() says so and calls pop_expired() from the VIRQ_TIMER handler.
//
// What is modelled:
//  * A timer is created once by its owner (timer_setup) and armed, re-armed or cancelled any
//    number of times: mod_timer on a pending timer moves it (one timer, one deadline, as Linux's
//    mod_timer detaches and re-enqueues; its return says whether it was pending), del_timer takes
//    it off its list. A timer is pending on exactly one vCPU's list.
//  * Order: timers fire by deadline, then by the order they were (re)armed, so equal deadlines
//    fire deterministically.
//  * The clockevent: program(v) answers the deadline vCPU v's one-shot timer must be set to when
//    the earliest pending deadline is earlier than the programmed one (or none is programmed), as
//    tick_nohz / clockevents_program_event reprogram only for an earlier event. del_timer never
//    reprograms: the interrupt then comes and finds nothing (a spurious tick, as in Linux).
//  * Expiry: begin_expiry(v, now) consumes the programmed deadline (the VIRQ_TIMER came) and fixes
//    the set of timers this interrupt runs: pop_expired() hands them out one at a time, each taken
//    off its list before its function runs (expire_timers detaches each before calling it), so a
//    function may re-arm its own timer or delete another not yet run. A timer re-armed during the
//    expiry, even into the past, waits for the next interrupt (Linux: base->clk has moved on).
//
// Where it deliberately differs from Linux:
//  * Deadlines are exact simulated nanoseconds, not jiffies on the timer wheel (no HZ rounding, no
//    wheel-level slack, no timer migration to an idle CPU's base).
//  * No deferrable timers, no hrtimers: one kind of timer.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

namespace xensim {

using KernelTimerId = std::uint32_t;

class KernelTimers {
  public:
    explicit KernelTimers(unsigned vcpus = 1);

    // timer_setup: a new timer, not pending. Ids of shut-down timers are reused (lowest first).
    KernelTimerId create();
    // timer_shutdown_sync: the timer stops being pending and its id is released. Unknown ids are a
    // caller bug (abort).
    void shutdown(KernelTimerId t);

    // mod_timer on vCPU `vcpu`'s list at `expires_ns`; true if the timer was pending before.
    bool mod_timer(KernelTimerId t, unsigned vcpu, std::uint64_t expires_ns);
    // del_timer: true if the timer was pending.
    bool del_timer(KernelTimerId t);
    bool pending(KernelTimerId t) const;
    // The pending timer's deadline and vCPU.
    std::optional<std::uint64_t> expires(KernelTimerId t) const;
    std::optional<unsigned> vcpu_of(KernelTimerId t) const;

    // The earliest pending deadline on `vcpu`.
    std::optional<std::uint64_t> next_deadline(unsigned vcpu) const;
    std::size_t pending_on(unsigned vcpu) const;
    // Would program(vcpu) answer a deadline? (Nothing changes.)
    bool needs_program(unsigned vcpu) const;
    // The deadline to program vCPU `vcpu`'s one-shot timer at, now counted as programmed; nullopt
    // when the programmed deadline is already at or before the earliest pending one (or nothing
    // is pending).
    std::optional<std::uint64_t> program(unsigned vcpu);
    std::optional<std::uint64_t> programmed(unsigned vcpu) const;
    // The one-shot timer could not be programmed (the hypercall failed): nothing is programmed.
    void forget_programmed(unsigned vcpu);

    // VIRQ_TIMER on `vcpu` at now_ns: the programmed deadline is consumed (if it is due); the
    // timers due at now_ns and armed before this call are the ones pop_expired() returns.
    void begin_expiry(unsigned vcpu, std::uint64_t now_ns);
    // The next of them, taken off its list; nullopt when none is left.
    std::optional<KernelTimerId> pop_expired(unsigned vcpu);

    unsigned vcpus() const { return static_cast<unsigned>(lists_.size()); }

  private:
    struct Timer {
        bool in_use = false, pending = false;
        unsigned vcpu = 0;
        std::uint64_t expires = 0, seq = 0;
    };
    using Key = std::tuple<std::uint64_t, std::uint64_t, KernelTimerId>;  // (expires, arm order, id)
    struct List {
        std::set<Key> pending;
        std::optional<std::uint64_t> programmed;
        std::uint64_t expiry_now = 0, expiry_seq = 0;  // the interrupt being handled
    };
    Timer& at(KernelTimerId t);
    const Timer& at(KernelTimerId t) const;
    List& list(unsigned vcpu);
    const List& list(unsigned vcpu) const;

    std::vector<Timer> timers_;
    std::vector<List> lists_;
    std::uint64_t next_seq_ = 1;
};

}  // namespace xensim
