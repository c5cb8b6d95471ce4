#include "models/xen/vcpu.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "models/xen/hypervisor.h"
#include "sim/core/trace_events.h"

namespace xensim {

using sc_core::sc_time;

Vcpu::Stats::Stats(StatsGroup& g)
    : exits(g, "exits", "exits", "VM exits by Intel SDM basic exit reason"),
      exits_by_cause(g, "exits_by_cause", "exits", "VM exits by what caused them (port, hypercall, ...)"),
      hypercalls(g, "hypercalls", "calls", "hypercalls by op/sub-op"),
      upcalls(g, "upcalls", "upcalls", "event-channel upcalls delivered (handler invocations)"),
      device_irqs(g, "device_irqs", "interrupts", "device interrupt vectors delivered (I/O APIC)"),
      halts(g, "halts", "halts", "times the vCPU blocked waiting for an event"),
      wakeups(g, "wakeups", "wakeups", "times an event woke the blocked vCPU"),
      preemptions(g, "preemptions", "preemptions", "times the scheduler took the pCPU away"),
      ipis_received(g, "ipis_received", "interrupts", "IPIs that interrupted guest mode to deliver an event"),
      guest_cycles(g, "guest_cycles", "cycles", "time spent running guest code"),
      hypervisor_cycles(g, "hypervisor_cycles", "cycles", "time spent in Xen on this vCPU's behalf"),
      blocked_cycles(g, "blocked_cycles", "cycles", "time spent blocked"),
      eois(g, "eois", "writes", "EOIs written to the local APIC") {}

Vcpu::Vcpu(sc_core::sc_module_name name, Hypervisor& hv, DomainRecord& dom, DomainType type, unsigned id,
           StatsGroup& parent)
    : sc_module(name),
      hv_(hv),
      cost_(hv.cost()),
      clock_(hv.clock()),
      sched_(hv.scheduler()),
      tracer_(hv.tracer()),
      dom_(dom),
      type_(type),
      id_(id),
      group_("vcpu" + std::to_string(id), &parent),
      stats(group_) {
    SC_THREAD(carrier_main);
    tracer_.name_track(TraceTrack::vcpu(dom.id, id), "d" + std::to_string(dom.id) + " " + dom.name,
                       "vcpu" + std::to_string(id));
}

void Vcpu::carrier_main() {
    thread_ = sc_core::sc_get_current_process_b();
    code_ = std::make_unique<Fiber>([this] { code_main(); }, kCodeStackBytes);
    for (;;) {
        if (!request_pending_) run_code();  // until the code asks for a wait
        if (request_.kind == WaitKind::scheduled && borrow()) continue;
        if (request_.kind == WaitKind::scheduled)
            wait(scheduled_ev_);
        else
            timed_wait(request_);  // handed over by a borrowed run
        if (request_moved_) {      // a borrowed run of the code asked for another wait meanwhile
            request_moved_ = false;
            continue;
        }
        request_pending_ = false;
    }
}

void Vcpu::run_code() {
    // Carriers run no vCPU's code of their own: outside resume(), nobody's code is running.
    hv_.running_vcpu_ = this;
    code_->resume();
    hv_.running_vcpu_ = nullptr;
}

void Vcpu::wait_for(WaitKind kind, std::uint64_t delay_ps) {
    const WaitRequest r{kind, simc_->time_stamp().value() + delay_ps};
    if (kind != WaitKind::scheduled && !borrowed_) {
        // A timed wait no other carrier can take over: made right here, on this stack, by this
        // vCPU's own carrier (SystemC suspends the carrier wherever its stack pointer is).
        timed_wait(r);
        hv_.running_vcpu_ = this;  // other vCPUs' code ran meanwhile; this code goes on
        return;
    }
    request_ = r;
    request_pending_ = true;
    code_->suspend();  // resumed when the wait is over (request_pending_ cleared)
}

void Vcpu::timed_wait(const WaitRequest& r) {
    // Waits that end at the same picosecond go on in vCPU order (Hypervisor::defer_wake).
    const std::uint64_t now = simc_->time_stamp().value();
    hv_.wait_ends_.insert(r.until_ps);
    if (r.kind == WaitKind::time)
        wait(sc_time::from_value(r.until_ps - now));
    else
        wait(sc_time::from_value(r.until_ps - now), wake_ev_);
    if (simc_->time_stamp().value() == r.until_ps && hv_.wait_ends_.count(r.until_ps) > 1) {
        hv_.defer_wake(*this);
        wait(timer_ev_);
    }
    hv_.wait_ends_.erase(r.until_ps);
}

bool Vcpu::parked() const {
    return request_pending_ && !request_moved_ && request_.kind == WaitKind::scheduled &&
           state_ != VcpuState::running;
}

bool Vcpu::borrow() {
    // This vCPU's code waits to be scheduled. While the earliest pending activity anywhere is a
    // switch whose completion touches its pCPU alone (to idle, or to a parked vCPU, with nothing
    // queued) and nothing else is pending until then, complete it early at its time, here, and run
    // the switched-in vCPU's code here too, from that time: exactly what the switch's method and
    // that vCPU's thread would do then, in that order, without either being activated. Stops at the
    // first activity that is anything else (a tie included).
    if (!hv_.params().fast_paths) return false;
    for (;;) {
        const std::uint64_t now = simc_->time_stamp().value();
        const std::uint64_t at = hv_.horizon_ps();
        const std::vector<PhysicalCpu*>* early = hv_.claim_early_switches(at, true);
        if (!early) return false;
        // In the switch method's order; the switched-in vCPU's code (at most one) goes on at `at`,
        // running ahead of SystemC time by the gap.
        Vcpu* next = nullptr;
        for (PhysicalCpu* p : *early) {
            if (Vcpu* v = p->switching_to()) {
                next = v;
                next->request_pending_ = false;
                next->ahead_ps_ = next->owed_ps_ = at - now;
                sim_time::owing = next;
                sched_.complete_switch(*p, at, false);
                ++hv_.fast_path_counts().borrowed;
            } else {
                sched_.complete_switch(*p, at);
                ++hv_.fast_path_counts().idle_switch;
            }
        }
        if (!next) continue;
        if (next == this) return true;
        next->borrowed_ = true;
        next->run_code();
        next->borrowed_ = false;
        // Its carrier still waits to be scheduled: right if that is what the code asks for again.
        if (!next->parked() && next->request_pending_) {
            next->request_moved_ = true;
            sim_time::notify(next->scheduled_ev_, sc_core::SC_ZERO_TIME);
        }
    }
}

void Vcpu::code_main() {
    wait_until_running();
    deliver_upcalls();
    if (program_) program_();
    finished_ = true;
    // A program that returns leaves the vCPU idle for good (a guest's idle loop would halt).
    for (;;) {
        block_until_event();
        deliver_upcalls();
    }
}

void Vcpu::wait_until_running() {
    while (state_ != VcpuState::running) {
        check_nothing_owed();
        wait_for(WaitKind::scheduled);
    }
}

void Vcpu::owe(Cycles c) {
    owed_cycles_ += c;
    owed_ps_ += clock_.ps(c);
}

void Vcpu::count_guest(Cycles c) {
    if (!sched_.accounting_closed()) stats.guest_cycles.inc(c);
}

void Vcpu::count_hypervisor(Cycles c) {
    if (!sched_.accounting_closed()) stats.hypervisor_cycles.inc(c);
}

void Vcpu::close_accounting(std::uint64_t end_ps) {
    // Called once, before accounting closes; the thread is suspended in one wait at most.
    if (in_guest_mode_)
        count_guest(std::min(wait_uncounted_, clock_.cycles(end_ps - wait_since_ps_)));
    else if (in_hypervisor_wait_ && end_ps > wait_since_ps_)  // (a run-ahead guest part comes first)
        count_hypervisor(std::min(wait_uncounted_, clock_.cycles(end_ps - wait_since_ps_)));
}

void Vcpu::settle() { hypervisor_work(0); }

bool Vcpu::run_ahead(Cycles c) {
    if (!hv_.params().fast_paths || c == 0) return false;
    // Back off after stretches that did not fit: on a path where something is always about to
    // happen (a busy wire), looking would cost more than it saves. Whether to look is all this
    // decides; the answer, when looked for, is exact.
    if (run_ahead_skip_ > 0) {
        --run_ahead_skip_;
        return false;
    }
    if (state_ != VcpuState::running || owed_cycles_ != 0 || preempt_requested_ || irq_pending_signal_)
        return false;
    // Only from this vCPU's own code: another's wait would not pay this vCPU's debt.
    if (hv_.running_vcpu_ != this) return false;
    if (upcall_deliverable() || irq_deliverable()) return false;
    const std::uint64_t ps = clock_.ps(c);
    if (!hv_.before_horizon(now_ps() + ps)) {
        run_ahead_backoff_ =
            std::min<unsigned>(run_ahead_backoff_ ? 2 * run_ahead_backoff_ : 1, kMaxRunAheadBackoff);
        run_ahead_skip_ = run_ahead_backoff_;
        return false;
    }
    run_ahead_backoff_ = 0;
    count_guest(c);
    ahead_ps_ += ps;
    owed_ps_ += ps;
    sim_time::owing = this;
    ++hv_.fast_path_counts().run_ahead;
    return true;
}

bool Vcpu::work_ahead(Cycles cycles, std::uint64_t ps) {
    // Hypervisor work is not preemptible: the full path's wait of `ps` (from SystemC time) ends
    // exactly then, whatever happens; run ahead when nothing else can happen before.
    if (!hv_.params().fast_paths || state_ != VcpuState::running) return false;
    if (hv_.running_vcpu_ != this) return false;
    if (!hv_.before_horizon(simc_->time_stamp().value() + ps)) return false;
    count_hypervisor(cycles);
    owed_cycles_ = 0;
    owed_ps_ = ahead_ps_ = ps;
    sim_time::owing = this;
    ++hv_.fast_path_counts().work_ahead;
    return true;
}

std::uint64_t Vcpu::take_ahead() {
    const std::uint64_t ps = ahead_ps_;
    leave_pcpu_ahead();
    return ps;
}

void Vcpu::leave_pcpu_ahead() {
    // The vCPU has just blocked or yielded at its run-ahead time, which the scheduler decided at:
    // it next runs when a switch notified after that time completes, so the run-ahead is over
    // (nothing else ran before it) and nothing is waited for.
    owed_ps_ -= ahead_ps_;
    ahead_ps_ = 0;
    if (sim_time::owing == this) sim_time::owing = nullptr;
}

void Vcpu::block_pcpu() {
    sched_.block(*this);
    leave_pcpu_ahead();
}

void Vcpu::yield_pcpu() {
    stats.preemptions.inc();
    sched_.yield(*this);
    leave_pcpu_ahead();
}

void Vcpu::check_nothing_owed() const {
    // A thread that waits while time is owed would let other processes run in its past.
    if (sim_time::owing)
        throw std::logic_error(std::string(name()) + ": waited while run-ahead time was owed" +
                               (sim_time::owing == this ? "" : " by another vCPU"));
}

void Vcpu::sync() {
    // The run-ahead comes first in owed_ps_; entry costs owed after it stay owed.
    const std::uint64_t ps = ahead_ps_;
    if (!ps) return;
    ahead_ps_ = 0;
    owed_ps_ -= ps;
    sim_time::owing = nullptr;
    wait_for(WaitKind::time, ps);
}

void Vcpu::hypervisor_work(Cycles c) {
    const Cycles cycles = owed_cycles_ + c;
    const std::uint64_t ps = owed_ps_ + clock_.ps(c);
    if (ps == ahead_ps_) return;  // nothing owed beyond the run-ahead, which stays owed
    if (work_ahead(cycles, ps)) return;
    const std::uint64_t guest_ps = ahead_ps_;  // runs first, counted when owed
    owed_ps_ = 0;
    owed_cycles_ = 0;
    ahead_ps_ = 0;
    if (guest_ps) sim_time::owing = nullptr;
    wait_until_running();
    in_hypervisor_wait_ = true;
    wait_since_ps_ = now_ps() + guest_ps;
    wait_uncounted_ = cycles;
    wait_for(WaitKind::time, take_ahead() + ps);  // (switched in early: from its time)
    in_hypervisor_wait_ = false;
    count_hypervisor(cycles);
}

void Vcpu::run_guest(Cycles c) {
    if (run_ahead(c)) return;
    std::uint64_t remaining = clock_.ps(c);
    Cycles counted = 0;  // of this request's cycles
    while (remaining > 0) {
        settle();  // an upcall handler's guest code (below) may have run ahead
        sync();    // the wait below is interruptible: it starts at SystemC time
        wait_until_running();
        if (preempt_requested_) {  // requested while we were not yet waiting on wake_ev_
            yield_pcpu();
            continue;
        }
        if (upcall_deliverable() || irq_deliverable()) {
            deliver_upcalls();
            continue;
        }
        std::uint64_t t0 = now_ps();
        in_guest_mode_ = true;
        wait_since_ps_ = t0;
        wait_uncounted_ = c - counted;
        // Switched in early (Vcpu::borrow), the stretch starts at its time, which nothing can
        // precede: the wait runs from SystemC time to the same end, and nothing can wake it sooner.
        wait_for(WaitKind::time_or_wake, take_ahead() + remaining);
        in_guest_mode_ = false;
        const std::uint64_t ran = std::min(remaining, now_ps() - t0);
        remaining -= ran;
        // Count what ran: the whole rest at the request's end, else this stretch rounded down.
        const Cycles done = remaining == 0 ? c - counted : std::min(c - counted, clock_.cycles(ran));
        count_guest(done);
        counted += done;
        if (irq_pending_signal_) {
            irq_pending_signal_ = false;
            stats.ipis_received.inc();
            bool exits =
                type_ != DomainType::pv && !(type_ == DomainType::hvm && hv_.params().posted_interrupts);
            if (exits) record_exit(ExitReason::EXTERNAL_INTERRUPT, irq_signal_cause_, now_ps());
            after_hypervisor_work();
        }
        if (preempt_requested_) yield_pcpu();
    }
}

namespace {
std::size_t exit_slot(ExitReason reason, const ExitCause& cause) {
    std::uint64_t h = cause.value * 0x9E3779B97F4A7C15ull;
    h ^= (std::uint64_t(reason) << 16 | cause.kind.size() << 1 | cause.numbered) * 0xC2B2AE3D27D4EB4Full;
    return static_cast<std::size_t>(h >> 58);  // the top 6 bits: kExitSlots = 64
}
}  // namespace

void Vcpu::record_exit(ExitReason reason, const ExitCause& cause, std::uint64_t start_ps) {
    static_assert(kExitSlots == 64 && kExitSlots >= 2 * kMaxExitCounters, "exit_slot() yields 6 bits");
    std::size_t slot = exit_slot(reason, cause);
    const ExitCounters* known = nullptr;
    for (; exit_slots_[slot] != 0; slot = (slot + 1) % kExitSlots) {
        const ExitCounters& e = exit_counters_[exit_slots_[slot] - 1];
        if (e.reason == reason && e.value == cause.value && e.numbered == cause.numbered &&
            e.kind == cause.kind) {
            known = &e;
            break;
        }
    }
    if (known) {
        ++*known->exits;
        ++*known->by_cause;
    } else {
        const std::string name(exit_reason_name(reason));
        std::uint64_t& exits = stats.exits.at(name);
        std::uint64_t& by_cause = stats.exits_by_cause.at(name + ":" + cause.label());
        ++exits;
        ++by_cause;
        if (exit_counters_.size() < kMaxExitCounters) {  // slot is the free one the probe ended on
            exit_counters_.push_back(
                {reason, cause.numbered, cause.value, std::string(cause.kind), &exits, &by_cause});
            exit_slots_[slot] = static_cast<std::uint8_t>(exit_counters_.size());
        }
    }
    owe(cost_.exit_cost(reason));
    if (tracer_.on(TraceCategory::vmexit))
        tracer_.emit(trace_events::vmexit, TraceTrack::vcpu(dom_.id, id_), start_ps, now_ps() - start_ps,
                     {exit_reason_name(reason), cause.label()});
}

std::uint64_t& Vcpu::hypercall_counter(unsigned index, const std::string& name) {
    if (index >= hypercall_counters_.size()) hypercall_counters_.resize(index + 1, nullptr);
    std::uint64_t*& c = hypercall_counters_[index];
    if (!c) c = &stats.hypercalls.at(name);
    return *c;
}

void Vcpu::after_hypervisor_work() {
    settle();
    if (preempt_requested_) {
        yield_pcpu();
        wait_until_running();
    }
    deliver_upcalls();
}

bool Vcpu::upcall_deliverable() const {
    if (in_upcall_ || upcall_mode_ == UpcallMode::none || !upcall_handler_) return false;
    if (upcall_mode_ == UpcallMode::percpu_vector && lapic_in_service_) return false;
    const vcpu_info_t& vi = const_cast<DomainRecord&>(dom_).vcpu_info(id_);
    if (!vi.evtchn_upcall_pending) return false;
    // A PV guest holds events off with evtchn_upcall_mask; an HVM guest's interrupt flag is not
    // modelled separately (it is clear only inside the handler, which in_upcall_ covers).
    return !(type_ == DomainType::pv && vi.evtchn_upcall_mask);
}

bool Vcpu::irq_deliverable() const {
    // A LAPIC-delivered vector waits while another is in service (until the guest's EOI).
    return irq_pending_.any() && !in_upcall_ && !lapic_in_service_ && type_ != DomainType::pv;
}

void Vcpu::deliver_upcalls() {
    while (irq_deliverable()) {
        unsigned vector = 255;
        while (!irq_pending_.test(vector)) --vector;  // the highest priority first, as the LAPIC does
        irq_pending_.reset(vector);
        auto h = irq_handlers_.find(static_cast<std::uint8_t>(vector));
        if (h == irq_handlers_.end() || !h->second) continue;  // no handler: the vector is dropped
        in_upcall_ = true;
        const std::uint64_t t = now_ps();
        hypervisor_work(cost_.interrupt_injection);
        stats.device_irqs.inc();
        if (tracer_.on(TraceCategory::ioreq))
            tracer_.emit(trace_events::device_irq, TraceTrack::vcpu(dom_.id, id_), t, 0,
                         {std::uint64_t{vector}});
        lapic_in_service_ = true;
        h->second();
        in_upcall_ = false;
    }
    while (upcall_deliverable()) {
        in_upcall_ = true;
        std::uint64_t t = now_ps();
        hypervisor_work(cost_.interrupt_injection);
        stats.upcalls.inc();
        if (upcall_mode_ == UpcallMode::percpu_vector) lapic_in_service_ = true;
        if (tracer_.on(TraceCategory::evtchn))
            tracer_.emit(trace_events::evtchn_upcall, TraceTrack::vcpu(dom_.id, id_), t, 0,
                         {std::uint64_t(upcall_vector_)});
        upcall_handler_();
        in_upcall_ = false;
    }
}

void Vcpu::block_until_event() {
    settle();
    if (dom_.vcpu_info(id_).evtchn_upcall_pending && upcall_mode_ != UpcallMode::none) return;
    if (irq_deliverable()) return;
    stats.halts.inc();
    std::uint64_t t0 = now_ps();
    block_pcpu();
    wait_until_running();
    stats.blocked_cycles.inc(clock_.cycles(now_ps() - t0));
}

void Vcpu::block_in_hypervisor() {
    std::uint64_t t0 = now_ps();
    block_pcpu();
    wait_until_running();
    stats.blocked_cycles.inc(clock_.cycles(now_ps() - t0));
}

void Vcpu::eoi() {
    stats.eois.inc();
    lapic_in_service_ = false;
    switch (hv_.params().apic_virtualization) {
        case ApicVirtualization::off:
            vmexit(ExitReason::APIC_ACCESS, "eoi", [] {});
            break;
        case ApicVirtualization::register_virt:
            vmexit(ExitReason::APIC_WRITE, "eoi", [] {});
            break;
        case ApicVirtualization::full:
            break;  // virtual-interrupt delivery: EOI virtualized, no exit
    }
}

bool Vcpu::inject_irq(std::uint8_t vector, int from_pcpu) {
    irq_pending_.set(vector);
    return kick(from_pcpu, "ipi:irq");
}

bool Vcpu::kick(int from_pcpu, const char* cause) {
    // Decided at sim_time::now_ps(): a wake-up's switch is notified relative to it; an IPI to a vCPU
    // in guest mode is a delta notification, sent at that time for real (notify_after syncs).
    switch (state_) {
        case VcpuState::blocked:
            stats.wakeups.inc();
            return sched_.wake(*this, from_pcpu) >= 0;
        case VcpuState::running:
            if (!in_guest_mode_ || irq_pending_signal_) return false;  // noticed at the next VM entry
            sim_time::sync();
            irq_pending_signal_ = true;
            irq_signal_cause_ = cause;
            sim_time::notify(wake_ev_, sc_core::SC_ZERO_TIME);
            sched_.pcpu(static_cast<unsigned>(pcpu_)).stats.ipis_received.inc();
            return true;
        case VcpuState::runnable:
            return false;  // injected when it next runs
    }
    return false;
}

}  // namespace xensim
