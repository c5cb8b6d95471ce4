// A simulated virtual CPU: a SystemC thread that runs guest code and traps into the hypervisor.
//
// What is modelled (VT-x as Xen uses it; Intel SDM Vol. 3C ch. 25-28):
//   - Guest time: run_guest(cycles) advances only while the vCPU holds a pCPU; it is preemptible
//     by the scheduler and interruptible by an event-channel upcall.
//   - A VM exit: vmexit(reason, cause, handler) charges the hardware round trip plus the handler
//     cost for that basic exit reason (cost model), runs the handler in hypervisor mode (not
//     preemptible, as Xen's hypervisor context is not), and on VM entry delivers a pending upcall.
//     Every exit is counted per vCPU by reason and by cause ("hypercall:event_channel_op/...",
//     "hlt", "ipi:evtchn", ...), which is how a count is attributed. The entry cost is owed and
//     waited for together with the handler's first hypervisor_work() (settle()), one SystemC
//     wait instead of two, with the same timestamps.
//   - Interrupt delivery: when an event channel marks evtchn_upcall_pending, a blocked vCPU is
//     woken; a vCPU running in guest mode on another pCPU is sent an IPI, which costs it an
//     EXTERNAL_INTERRUPT exit unless posted interrupts are enabled; a runnable or in-hypervisor
//     vCPU gets the vector injected at its next VM entry. The guest's upcall handler then runs on
//     this thread, with upcalls held off until it returns (the handler re-checks for more work).
//   - Upcall flavours: the HVM callback vector (HVM_PARAM_CALLBACK_IRQ type vector) needs no EOI;
//     the per-vCPU upcall vector (HVMOP_set_evtchn_upcall_vector) goes through the local APIC and
//     the guest's EOI traps as APIC_ACCESS, APIC_WRITE or not at all, by the APIC virtualization
//     level; a PV domain's event callback has no exits at all.
//   - A PV domain (dom0 as `pv`) never exits: hypercalls go straight to Xen (pv_hypercall cost)
//     and it idles with SCHEDOP_block; PVH and HVM use VMCALL and HLT.
//
// Device interrupts: inject_irq(vector) makes a LAPIC vector pending (an emulated device's ISA IRQ
// through the virtual I/O APIC); it is delivered at VM entry to the guest's handler for that vector
// and holds off further LAPIC deliveries until the guest's EOI.
//
// Time: guest_cycles and hypervisor_cycles count what ran, when it ran. A run_guest() request counts
// its cycles as it runs (an interrupted stretch what it ran, rounded down; the request's end the
// rest, so a request that completes counts exactly its cycles); hypervisor work counts when its wait
// ends, owed entry costs with it. When the scheduler closes accounting (Scheduler::finish, the end
// of the report's window) the work under way counts the part done by then, and nothing counts
// after. A vCPU's thread waits only in run_guest() and hypervisor_work() while it holds a pCPU, so
// its guest + hypervisor time is the time it held pCPUs (the pCPUs' busy time), up to rounding of
// cycles to picoseconds.
//
// Execution (docs/temporal-decoupling.md): the vCPU's code runs on a Fiber of its own, carried by
// the vCPU's SystemC thread, which performs every wait the code asks for (wait_for). With
// platform.fast_paths, guest and hypervisor time run ahead of SystemC time when nothing else can
// happen first, and a carrier whose vCPU waits to be scheduled may complete the next switch early
// and run the switched-in vCPU's code itself (borrow). Timed waits that end at the same
// picosecond are woken in vCPU creation order (Hypervisor::wake_at), not SystemC's queue order.
//
// Fidelity limits: no interrupt priorities beyond "highest vector first", no level-triggered lines; no guest
// timer tick (guests are tickless); exit cost is a per-reason constant, not a function of the instruction's
// operands.
#pragma once

#include <array>
#include <bitset>
#include <map>
#include <memory>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <systemc>

#include "models/xen/domain_table.h"
#include "models/xen/scheduler.h"
#include "sim/core/cost_model.h"
#include "sim/core/exit_reason.h"
#include "sim/core/fiber.h"
#include "sim/core/sim_time.h"
#include "sim/core/stats.h"

namespace xensim {

class Hypervisor;

enum class DomainType { hvm, pv, pvh };
enum class UpcallMode { none, callback_vector, percpu_vector, pv_callback };
enum class ApicVirtualization { off, register_virt, full };
enum class VcpuState { blocked, runnable, running };

class Vcpu : public sc_core::sc_module, private sim_time::RunAhead {
  public:
    SC_HAS_PROCESS(Vcpu);
    Vcpu(sc_core::sc_module_name name, Hypervisor& hv, DomainRecord& dom, DomainType type, unsigned id,
         StatsGroup& parent);

    // The guest program this vCPU runs from time zero; when it returns the vCPU idles (halts).
    void set_program(std::function<void()> program) { program_ = std::move(program); }
    void set_upcall_handler(std::function<void()> handler) { upcall_handler_ = std::move(handler); }
    // The guest's handler for a LAPIC vector of a device interrupt (an emulated device's IRQ
    // routed by the virtual I/O APIC); it runs like the upcall, and ends with the guest's EOI.
    void set_irq_handler(std::uint8_t vector, std::function<void()> handler) {
        irq_handlers_[vector] = std::move(handler);
    }

    // --- used by guest code through the guest-services adapter (on this vCPU's own thread) ---
    void run_guest(Cycles c);
    template <class Handler>
    void vmexit(ExitReason reason, const ExitCause& cause, Handler&& handler);
    // A PV hypercall: no VM exit, pv_hypercall cost, then the handler; events delivered after.
    template <class Handler>
    void pv_trap(const ExitCause& cause, Handler&& handler);
    // Hypervisor-mode work on this vCPU's pCPU time (not preemptible). Any exit or PV-trap entry
    // cost still owed is waited for in the same step (see settle()).
    void hypervisor_work(Cycles c);
    // Waits for the hypervisor time still owed. The entry cost of an exit or PV trap is not waited
    // for at once but together with the handler's first hypervisor_work(): the handler does only
    // local work before it (filling in a request, counting), so one SystemC wait serves both and
    // every timestamp is the same. Anything that other processes can observe (a kick, a block, a
    // shared page another domain polls) must settle() first; the vCPU's own waits all do.
    void settle();
    // Blocks in the hypervisor until an upcall is pending (HLT / SCHEDOP_block). Returns at once
    // if one already is.
    void block_until_event();
    // The guest's EOI of a LAPIC-delivered vector (percpu upcall vector).
    void eoi();
    // Blocks in the hypervisor (the vCPU is descheduled) until `done()` holds, re-checking each time
    // the vCPU is woken (an ioreq waiting for its device model). Event-channel kicks that wake it
    // early are absorbed; their upcall is delivered at the next VM entry.
    template <class Done>
    void wait_in_hypervisor(Done&& done);

    // --- used by the hypervisor (any process) ---
    // evtchn_upcall_pending went 0 -> 1 for this vCPU. Returns true when an IPI had to be sent
    // (the sender pays ipi_send).
    bool kick(int from_pcpu, const char* cause = "ipi:evtchn");
    // A device interrupt for `vector` (edge): pending until delivered at a VM entry, waking or
    // interrupting the vCPU as kick() does. Returns true when an IPI had to be sent.
    bool inject_irq(std::uint8_t vector, int from_pcpu);
    void set_upcall_mode(UpcallMode mode, std::uint8_t vector) {
        upcall_mode_ = mode;
        upcall_vector_ = vector;
    }
    UpcallMode upcall_mode() const { return upcall_mode_; }

    DomainRecord& domain() { return dom_; }
    DomainType type() const { return type_; }
    unsigned id() const { return id_; }
    int pcpu() const { return pcpu_; }
    VcpuState state() const { return state_; }
    bool finished() const { return finished_; }
    // Simulated time as this vCPU's handler sees it: SystemC time plus hypervisor time still owed.
    std::uint64_t now_ps() const { return simc_->time_stamp().value() + owed_ps_; }

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily exits, exits_by_cause, hypercalls;
        Counter upcalls, device_irqs, halts, wakeups, preemptions, ipis_received, guest_cycles,
            hypervisor_cycles, blocked_cycles, eois;
    };

  private:
    friend class Scheduler;
    friend class PhysicalCpu;
    friend class Hypervisor;
    // The vCPU's SystemC thread is its code's carrier (docs/temporal-decoupling.md, step 2): the
    // code (code_main: the program, then the idle loop) runs on a Fiber and asks the carrier for
    // every SystemC wait (wait_for). Before waiting to be scheduled, a carrier may complete the
    // earliest pending switch early and run the switched-in vCPU's code itself (borrow).
    void carrier_main();
    void code_main();
    void run_code();  // resumes the code on this thread until it asks for a wait
    enum class WaitKind { scheduled, time, time_or_wake };
    void wait_for(WaitKind kind, std::uint64_t delay_ps = 0);  // from the code: one SystemC wait
    struct WaitRequest {
        WaitKind kind;
        std::uint64_t until_ps;  // kinds time and time_or_wake
    };
    void timed_wait(const WaitRequest& r);  // on the calling carrier, in a canonical order at ties
    bool borrow();                          // true: this vCPU was switched in early, its code goes on here
    bool parked() const;                    // the code waits to be scheduled and its carrier waits for that
    static constexpr std::size_t kCodeStackBytes = 0x50000;  // as SystemC 2.3's default thread stack
    bool upcall_deliverable() const;
    bool irq_deliverable() const;
    void deliver_upcalls();
    void wait_until_running();
    void after_hypervisor_work();  // VM entry: honour a preemption request, then deliver
    void owe(Cycles c);            // hypervisor time waited for at the next settle()
    // The fast path of run_guest (docs/temporal-decoupling.md, step 1): counts the cycles and owes
    // their time when the stretch ends strictly before the horizon (Hypervisor::horizon_ps) and
    // nothing could end it early; false: run it with a wait.
    bool run_ahead(Cycles c);
    // The same for hypervisor work (step 2, same document): not preemptible, so it runs ahead
    // whenever its end (SystemC time + ps) is before the horizon; counts `cycles` as the wait would.
    bool work_ahead(Cycles cycles, std::uint64_t ps);
    std::uint64_t run_ahead_ps() const override { return ahead_ps_; }
    // Block / yield (Scheduler::block / yield, decided at the run-ahead time); the run-ahead ends.
    void block_pcpu();
    void yield_pcpu();
    void leave_pcpu_ahead();
    std::uint64_t take_ahead();       // the run-ahead, ended: for a wait that starts at SystemC time
    void sync() override;             // waits the owed guest time out (sim_time::sync)
    void check_nothing_owed() const;  // before a raw wait: throws std::logic_error if time is owed
    void count_guest(Cycles c);       // guest cycles that ran (not after accounting closed)
    void count_hypervisor(Cycles c);
    void close_accounting(std::uint64_t end_ps);  // Scheduler::finish: count the work under way
    void block_in_hypervisor();  // one round of wait_in_hypervisor: blocked until running again
    void record_exit(ExitReason reason, const ExitCause& cause, std::uint64_t start_ps);
    // The exits / exits_by_cause counters of the causes seen so far, found by (reason, kind,
    // number) through a small open-addressed table: no label string is built or looked up per exit.
    struct ExitCounters {
        ExitReason reason;
        bool numbered;
        std::uint64_t value;
        std::string kind;
        std::uint64_t *exits, *by_cause;
    };
    static constexpr std::size_t kMaxExitCounters = 32;  // beyond: looked up by label each time
    static constexpr std::size_t kExitSlots = 64;        // a power of two, at least twice the above
    std::vector<ExitCounters> exit_counters_;
    std::array<std::uint8_t, kExitSlots> exit_slots_{};  // index into exit_counters_ + 1; 0: free
    // The hypercall counter of each Hypervisor::HypercallNames index, resolved on first use (so
    // the label appears in stats.hypercalls only once counted, as with a lookup by name).
    std::uint64_t& hypercall_counter(unsigned index, const std::string& name);
    std::vector<std::uint64_t*> hypercall_counters_;

    // The simulation context this vCPU was elaborated in, kept so that now_ps() reads its time
    // inline (sc_time_stamp() is an out-of-line call that looks the context up each time).
    sc_core::sc_simcontext* const simc_ = sc_core::sc_get_curr_simcontext();
    Hypervisor& hv_;
    const CostModel& cost_;
    const Clock& clock_;
    Scheduler& sched_;
    Tracer& tracer_;
    DomainRecord& dom_;
    DomainType type_;
    unsigned id_;
    StatsGroup group_;

  public:
    Stats stats;

  private:
    std::function<void()> program_, upcall_handler_;
    UpcallMode upcall_mode_ = UpcallMode::none;
    std::uint8_t upcall_vector_ = 0;
    bool lapic_in_service_ = false;  // a LAPIC-delivered upcall awaits its EOI
    bool in_upcall_ = false;
    bool in_guest_mode_ = false;
    bool irq_pending_signal_ = false;
    const char* irq_signal_cause_ = "ipi:evtchn";
    std::bitset<256> irq_pending_;  // device vectors waiting for delivery
    std::map<std::uint8_t, std::function<void()>> irq_handlers_;
    bool finished_ = false;

    // Scheduler state (owned by Scheduler).
    VcpuState state_ = VcpuState::blocked;
    int pcpu_ = -1, last_pcpu_ = -1;
    std::vector<unsigned> affinity_;
    unsigned weight_ = 256;
    std::int64_t credit_ps_ = 0;
    SchedPriority prio_ = SchedPriority::under;
    bool preempt_requested_ = false;
    bool ran_in_period_ = false;
    std::uint64_t owed_ps_ = 0;   // time not yet waited for (settle()): owed guest time, then entry costs
    std::uint64_t ahead_ps_ = 0;  // the part of owed_ps_ run ahead (already counted), first in it
    static constexpr unsigned kMaxRunAheadBackoff = 16;
    unsigned run_ahead_backoff_ = 0, run_ahead_skip_ = 0;  // run_ahead's attempts skipped after misses
    const sc_core::sc_process_b* thread_ = nullptr;        // this vCPU's SystemC thread (the carrier)
    std::unique_ptr<Fiber> code_;
    WaitRequest request_{WaitKind::scheduled, 0};
    bool request_pending_ = false;  // the code is suspended in wait_for()
    bool request_moved_ = false;    // a borrowed run left a request other than the one waited on
    bool borrowed_ = false;         // the code runs on another vCPU's carrier (borrow)
    unsigned index_ = 0;            // creation order among all vCPUs (Hypervisor::defer_wake)
    sc_core::sc_event timer_ev_;    // a deferred wait's end (Hypervisor::fire_wakeups)
    Cycles owed_cycles_ = 0;        // the entry costs in owed_ps_ in cycles, counted when waited for
    // The wait under way, for close_accounting(): a stretch of guest code (in_guest_mode_) or
    // hypervisor work (in_hypervisor_wait_), when it began and the cycles it has not counted yet.
    bool in_hypervisor_wait_ = false;
    std::uint64_t wait_since_ps_ = 0;
    Cycles wait_uncounted_ = 0;
    std::uint64_t acct_since_ps_ = 0, run_start_ps_ = 0, blocked_since_ps_ = 0;
    sc_core::sc_event scheduled_ev_;
    // Ends guest mode early: a preemption request or an event to deliver (both notified with
    // SC_ZERO_TIME). One event rather than `preempt | irq`, whose list SystemC allocates per wait.
    sc_core::sc_event wake_ev_;
};

template <class Handler>
void Vcpu::vmexit(ExitReason reason, const ExitCause& cause, Handler&& handler) {
    record_exit(reason, cause, now_ps());
    handler();
    after_hypervisor_work();
}

template <class Done>
void Vcpu::wait_in_hypervisor(Done&& done) {
    settle();
    while (!done()) block_in_hypervisor();
}

template <class Handler>
void Vcpu::pv_trap(const ExitCause& /*cause*/, Handler&& handler) {
    owe(cost_.pv_hypercall);
    handler();
    after_hypervisor_work();
}

}  // namespace xensim
