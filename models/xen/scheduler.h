// Physical CPUs and a credit-like scheduler that runs every vCPU of every domain, dom0 included.
//
// What is modelled (after Xen's credit scheduler, xen/common/sched/credit.c):
//   - one run queue per pCPU, ordered by priority BOOST > UNDER > OVER, FIFO within a priority;
//   - credits: every accounting period the active vCPUs (runnable, running, or ran in the period)
//     share period x pCPUs by weight (a vCPU earns at most one period), burn the time they run,
//     and stay within one period of credit either way; UNDER while credit > 0, else OVER. Each
//     vCPU carries its domain's whole weight, as credit1 counts sdom->weight once per active unit
//     (__csched_unit_acct_start, csched_acct): a domain's share grows with its busy vCPUs;
//   - a vCPU waking from blocked while UNDER is BOOSTed and preempts a lower-priority current vCPU
//     (wake-up preemption), unless the current one has run less than the rate limit; it loses
//     BOOST when it blocks or yields, or at the first credit tick (every tslice / 3, 10 ms by
//     default; ticks at multiples of it from time 0) that finds it running (csched_tick ->
//     csched_unit_acct), or at the accounting that finds it running;
//   - a time slice after which an equal-or-higher priority waiter takes the pCPU;
//   - placement on wake: the vCPU's last pCPU if idle, else the lowest idle pCPU it may run on,
//     else its last pCPU's run queue; an idle pCPU steals the best waiting vCPU it may run;
//   - hard affinity (pinning) from the scenario.
// Every switch costs pCPU time (decision + context switch, from the cost model), during which the
// pCPU runs nothing; switches are counted per pCPU by kind (same domain, domain change, to idle,
// from idle).
//
// pCPU time: at every instant a pCPU is in exactly one phase: busy (a vCPU holds it, from the end
// of the switch to it until it blocks or yields), switching (a decision and its context switch, a
// decision that finds nothing included), or idle. Each phase change adds the time since the last
// one to that phase's picosecond counter, so busy_ps + switch_ps + idle_ps is exactly the time
// accounted. finish(end) closes the phases open at `end` (the end of the report's window) and stops
// all time accounting, the vCPUs' guest and hypervisor cycles included; counts (switches,
// decisions) go on. The cycle figures are these times in cycles: busy_cycles and idle_cycles rounded
// down once at finish(), switch_cycles the cost model's cycles of each switch (of the part of a
// switch under way at `end`, its elapsed cycles rounded down).
//
// Switches that end at the same picosecond complete in pCPU order, in one method (switches_done),
// so that no count depends on SystemC's order among simultaneous notifications.
//
// How time works: a vCPU runs as a SystemC thread and leaves its pCPU only by its own action
// (block, or yield after the scheduler requested preemption), so it always knows exactly how
// much it ran. The scheduler only decides, requests, and completes switches.
//
// Fidelity limits: no soft affinity, no NUMA, no cpupools, no credit2/RTDS, no caps; credit is
// kept in picoseconds of run time rather than credit1's 10 ms ticks (accounting is exact, not
// sampled); the idle loop's lazy context switch is charged as context_switch_idle each way.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <systemc>

#include "sim/core/cost_model.h"
#include "sim/core/sim_time.h"
#include "sim/core/stats.h"
#include "sim/core/trace.h"

namespace xensim {

class Vcpu;

struct SchedulerParams {
    std::uint64_t tslice_us = 30000;             // credit1 default sched_credit_tslice_ms = 30
    std::uint64_t ratelimit_us = 1000;           // credit1 default sched_ratelimit_us = 1000
    std::uint64_t accounting_period_us = 30000;  // credit1 CSCHED_ACCT_PERIOD = 3 ticks of 10 ms
    bool wakeup_preemption = true;
};

enum class SchedPriority { boost = 0, under = 1, over = 2 };

class Scheduler;

class PhysicalCpu : public sc_core::sc_module {
  public:
    PhysicalCpu(sc_core::sc_module_name name, unsigned id, Scheduler& sched, StatsGroup& parent);

    unsigned id() const { return id_; }
    Vcpu* current() const { return current_; }
    bool idle() const { return !current_ && !switching_; }
    Vcpu* switching_to() const { return next_; }  // during a switch: the vCPU it brings in, or nullptr

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter switches_same_domain, switches_domain_change, switches_to_idle, switches_from_idle;
        Counter switch_cycles, decisions, ipis_received, idle_cycles, busy_cycles;
        Counter busy_ps, switch_ps, idle_ps;
    };
    enum class Phase { idle, switching, busy };

  private:
    friend class Scheduler;
    void on_tick();
    void on_credit_tick();  // csched_tick: a BOOSTed vCPU found running loses BOOST

    unsigned id_;
    Scheduler& sched_;
    StatsGroup group_;

  public:
    Stats stats;

  private:
    Vcpu* current_ = nullptr;
    Vcpu* prev_ = nullptr;  // what ran before the switch in progress (for the switch kind)
    Vcpu* next_ = nullptr;  // the vCPU being switched to
    bool switching_ = false;
    // Waiting vCPUs, best first by priority, FIFO within one. A vector, not a deque: the queue is
    // short and mostly holds 0 or 1 entries, where a deque allocates and frees a chunk as the
    // front moves (push_front / pop_front), and vector keeps its storage.
    std::vector<Vcpu*> runq_;
    sc_core::sc_event tick_ev_;
    sc_core::sc_event credit_tick_ev_;  // armed only while a BOOSTed vCPU runs
    std::uint64_t running_since_ps_ = 0;
    Phase phase_ = Phase::idle;         // where the pCPU's time goes now (see the file comment)
    std::uint64_t phase_since_ps_ = 0;  // when that phase began
    Cycles switch_cost_ = 0;            // cost of the switch under way
    std::uint64_t switch_end_ps_ = 0;   // when it completes
};

class Scheduler {
  public:
    Scheduler(unsigned pcpus, SchedulerParams params, const CostModel& cost, const Clock& clock,
              Tracer& tracer, StatsGroup& stats);

    // Registers a vCPU (blocked until woken) with its hard affinity (empty = every pCPU).
    void add_vcpu(Vcpu& v, std::vector<unsigned> affinity, unsigned weight);
    // Makes a blocked vCPU runnable and places it. Returns the pCPU that must be sent an IPI to
    // notice (an idle or preempted pCPU other than `from_pcpu`), or -1.
    int wake(Vcpu& v, int from_pcpu);
    // Called by a running vCPU's own thread: it blocks / it gives up the pCPU (requeued).
    void block(Vcpu& v);
    void yield(Vcpu& v);

    unsigned pcpu_count() const { return static_cast<unsigned>(pcpus_.size()); }
    PhysicalCpu& pcpu(unsigned i) { return *pcpus_[i]; }
    // Closes time accounting at `end_ps`, the end of the report's window (>= the start of every
    // open phase): the open phases of every pCPU and the vCPUs' guest or hypervisor work under
    // way are counted up to it, and no time is counted after it. Later calls do nothing.
    void finish(std::uint64_t end_ps);
    bool accounting_closed() const { return closed_; }

    // The fast paths' early switches (docs/temporal-decoupling.md, step 2). A switch on a pCPU
    // with nothing queued, to idle or to a vCPU whose code is parked waiting for it, touches that
    // pCPU (and that vCPU) alone: when it is the next activity anywhere, completing it before its
    // time, at its time, changes nothing (Hypervisor::before_horizon and Vcpu::borrow decide).
    // Switches ending together complete in pCPU order (switches_done) and commute; they qualify
    // together, with at most one to a vCPU (whose code then runs after all of them, as its thread
    // would). early_switches: the switches ending at `at_ps`, in pCPU order, when all qualify (to
    // a vCPU only if `to_parked_vcpu`), else none; withdraw_switches takes them out of the
    // switch notification, restore_switches puts them back, and complete_switch(p, p's end,
    // notify_next = false) completes one without waking the vCPU's thread (the caller runs its
    // code), in the same order.
    const std::vector<PhysicalCpu*>& early_switches(std::uint64_t at_ps, bool to_parked_vcpu);
    void withdraw_switches(const std::vector<PhysicalCpu*>& ps);
    void restore_switches(const std::vector<PhysicalCpu*>& ps);
    void complete_switch(PhysicalCpu& p, std::uint64_t now, bool notify_next = true);

  private:
    friend class PhysicalCpu;
    void schedule(PhysicalCpu& p);  // p has no current vCPU: pick the next one and switch
    void switches_done();           // the switch method: completes those ending now
    void arm_switches(const std::vector<PhysicalCpu*>* except);  // notify at the earliest end
    // Counts the phase ending at `now` and starts `next`.
    void enter(PhysicalCpu& p, PhysicalCpu::Phase next, std::uint64_t now);
    void evaluate_preemption(PhysicalCpu& p);
    void enqueue(PhysicalCpu& p, Vcpu& v);
    Vcpu* pick(PhysicalCpu& p);  // best from p's queue, else steal
    void burn(Vcpu& v);          // charge run time since last accounting to credit
    void trace_run(Vcpu& v);     // the "running" slice of a vCPU leaving its pCPU
    void accounting();
    void arm_accounting();
    bool allowed(const Vcpu& v, unsigned pcpu) const;
    // The time a decision is made at: SystemC's (read inline) plus the run-ahead of the vCPU that
    // calls, if any (sim_time::now_ps()).
    std::uint64_t now_ps() const { return simc_->time_stamp().value() + sim_time::run_ahead_ps(); }
    sc_core::sc_simcontext* const simc_ = sc_core::sc_get_curr_simcontext();

    SchedulerParams params_;
    const CostModel& cost_;
    const Clock& clock_;
    Tracer& tracer_;
    std::vector<std::unique_ptr<PhysicalCpu>> pcpus_;
    std::vector<Vcpu*> vcpus_;
    std::vector<PhysicalCpu*> early_, due_;  // early_switches' answer, switches_done's (kept)
    sc_core::sc_event switch_ev_;            // the earliest end of a switch under way
    std::uint64_t total_weight_ = 0;
    sc_core::sc_event accounting_ev_;
    bool accounting_armed_ = false;
    bool closed_ = false;  // finish() was called: no more time is counted
};

}  // namespace xensim
