#include "models/xen/scheduler.h"

#include <algorithm>
#include <stdexcept>

#include "models/xen/vcpu.h"
#include "sim/core/trace_events.h"

namespace xensim {

using sc_core::sc_time;

namespace {
__extension__ typedef __int128 Int128;
// Every notification is relative to sim_time::now_ps(), the time the decision is made at: a vCPU
// running ahead of SystemC time (docs/temporal-decoupling.md) decides at its own time.
void notify_in(sc_core::sc_event& ev, std::uint64_t delay_ps) { sim_time::notify_after(ev, delay_ps); }
}  // namespace

PhysicalCpu::Stats::Stats(StatsGroup& g)
    : switches_same_domain(g, "switches_same_domain", "switches",
                           "context switches between vCPUs of one domain"),
      switches_domain_change(g, "switches_domain_change", "switches",
                             "context switches between vCPUs of different domains"),
      switches_to_idle(g, "switches_to_idle", "switches", "switches from a vCPU to the idle loop"),
      switches_from_idle(g, "switches_from_idle", "switches", "switches from the idle loop to a vCPU"),
      switch_cycles(g, "switch_cycles", "cycles", "pCPU time spent deciding and switching"),
      decisions(g, "decisions", "decisions", "scheduling decisions taken on this pCPU"),
      ipis_received(g, "ipis_received", "interrupts", "IPIs received (event delivery, wake-ups)"),
      idle_cycles(g, "idle_cycles", "cycles", "time with nothing to run (idle_ps in cycles)"),
      busy_cycles(g, "busy_cycles", "cycles", "time a vCPU held this pCPU (busy_ps in cycles)"),
      busy_ps(g, "busy_ps", "ps", "time a vCPU held this pCPU"),
      switch_ps(g, "switch_ps", "ps", "time spent deciding and switching"),
      idle_ps(g, "idle_ps", "ps", "time with nothing to run") {}

PhysicalCpu::PhysicalCpu(sc_core::sc_module_name name, unsigned id, Scheduler& sched, StatsGroup& parent)
    : sc_module(name), id_(id), sched_(sched), group_("pcpu" + std::to_string(id), &parent), stats(group_) {
    sc_core::sc_spawn_options tk;
    tk.spawn_method();
    tk.dont_initialize();
    tk.set_sensitivity(&tick_ev_);
    sc_core::sc_spawn([this] { on_tick(); }, "tick", &tk);
    sc_core::sc_spawn_options ct;
    ct.spawn_method();
    ct.dont_initialize();
    ct.set_sensitivity(&credit_tick_ev_);
    sc_core::sc_spawn([this] { on_credit_tick(); }, "credit_tick", &ct);
}

void PhysicalCpu::on_credit_tick() {
    // csched_unit_acct: "If the UNIT is found here, then it's consuming a non-negligeable amount
    // of CPU resources and should no longer be boosted" (pri = CSCHED_PRI_TS_UNDER). A BOOSTed
    // waiter may now preempt it.
    Vcpu* cur = current_;
    if (!cur || cur->prio_ != SchedPriority::boost) return;
    cur->prio_ = SchedPriority::under;
    sched_.evaluate_preemption(*this);
}

void PhysicalCpu::on_tick() {
    Vcpu* cur = current_;
    if (!cur || cur->preempt_requested_) return;
    std::uint64_t now = sched_.now_ps();
    std::uint64_t ran = now - running_since_ps_;
    std::uint64_t slice = sched_.params_.tslice_us * 1'000'000;
    if (ran >= slice) {
        // End of the time slice: an equal-or-better waiter takes over, else a new slice starts.
        auto best = std::min_element(runq_.begin(), runq_.end(),
                                     [](Vcpu* a, Vcpu* b) { return a->prio_ < b->prio_; });
        if (best != runq_.end() && (*best)->prio_ <= cur->prio_) {
            cur->preempt_requested_ = true;
            notify_in(cur->wake_ev_, 0);
            return;
        }
        running_since_ps_ = now;
        notify_in(tick_ev_, slice);
        return;
    }
    sched_.evaluate_preemption(*this);
    notify_in(tick_ev_, slice - ran);
}

Scheduler::Scheduler(unsigned pcpus, SchedulerParams params, const CostModel& cost, const Clock& clock,
                     Tracer& tracer, StatsGroup& stats)
    : params_(params), cost_(cost), clock_(clock), tracer_(tracer) {
    for (unsigned i = 0; i < pcpus; ++i) {
        pcpus_.push_back(
            std::make_unique<PhysicalCpu>(("pcpu" + std::to_string(i)).c_str(), i, *this, stats));
        tracer_.name_track(TraceTrack::pcpu(i), "physical CPUs", "pcpu" + std::to_string(i));
    }
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.dont_initialize();
    o.set_sensitivity(&accounting_ev_);
    sc_core::sc_spawn([this] { accounting(); }, "sched_accounting", &o);
    sc_core::sc_spawn_options sw;
    sw.spawn_method();
    sw.dont_initialize();
    sw.set_sensitivity(&switch_ev_);
    sc_core::sc_spawn([this] { switches_done(); }, "switches_done", &sw);
}

void Scheduler::switches_done() {
    // Every switch ending now completes, in pCPU order: one canonical order for switches that end
    // together, whatever SystemC's event queue would have made of them (their vCPUs' threads then
    // start in that order too), so that no report depends on the queue's history.
    const std::uint64_t now = now_ps();
    due_.clear();
    for (auto& p : pcpus_)
        if (p->switching_ && p->switch_end_ps_ == now) due_.push_back(p.get());
    for (PhysicalCpu* p : due_) complete_switch(*p, now);
    arm_switches(nullptr);
}

void Scheduler::arm_switches(const std::vector<PhysicalCpu*>* except) {
    std::uint64_t next = ~std::uint64_t{0};
    for (auto& p : pcpus_)
        if (p->switching_ && p->switch_end_ps_ < next &&
            !(except && std::find(except->begin(), except->end(), p.get()) != except->end()))
            next = p->switch_end_ps_;
    if (next != ~std::uint64_t{0})
        sim_time::notify(switch_ev_, sc_time::from_value(next - simc_->time_stamp().value()));
}

bool Scheduler::allowed(const Vcpu& v, unsigned pcpu) const {
    return v.affinity_.empty() ||
           std::find(v.affinity_.begin(), v.affinity_.end(), pcpu) != v.affinity_.end();
}

void Scheduler::add_vcpu(Vcpu& v, std::vector<unsigned> affinity, unsigned weight) {
    v.affinity_ = std::move(affinity);
    v.weight_ = weight;
    v.state_ = VcpuState::blocked;
    v.credit_ps_ = static_cast<std::int64_t>(params_.accounting_period_us) * 1'000'000;
    vcpus_.push_back(&v);
    total_weight_ += weight;
}

void Scheduler::burn(Vcpu& v) {
    std::uint64_t now = now_ps();
    v.credit_ps_ -= static_cast<std::int64_t>(now - v.acct_since_ps_);
    v.acct_since_ps_ = now;
}

void Scheduler::arm_accounting() {
    if (accounting_armed_) return;
    accounting_armed_ = true;
    notify_in(accounting_ev_, params_.accounting_period_us * 1'000'000);
}

void Scheduler::accounting() {
    accounting_armed_ = false;
    const std::int64_t period = static_cast<std::int64_t>(params_.accounting_period_us) * 1'000'000;
    // As csched_acct: the period's CPU time (period x pCPUs) is shared among the *active* vCPUs
    // (runnable, running, or ran during the period) by weight; a vCPU cannot use more than one
    // pCPU, so its share is capped at one period; credit stays within [-period, period].
    std::uint64_t active_weight = 0;
    for (Vcpu* v : vcpus_)
        if (v->state_ != VcpuState::blocked || v->ran_in_period_) active_weight += v->weight_;
    bool any_active = false;
    for (Vcpu* v : vcpus_) {
        if (v->state_ == VcpuState::running) burn(*v);
        bool active = v->state_ != VcpuState::blocked || v->ran_in_period_;
        v->ran_in_period_ = v->state_ == VcpuState::running;
        if (active && active_weight) {
            std::int64_t share = static_cast<std::int64_t>(static_cast<Int128>(period) * pcpus_.size() *
                                                           v->weight_ / active_weight);
            v->credit_ps_ += std::min(share, period);
        }
        v->credit_ps_ = std::clamp(v->credit_ps_, -period, period);
        if (v->prio_ == SchedPriority::boost && v->state_ == VcpuState::running)
            v->prio_ = SchedPriority::under;
        if (v->prio_ != SchedPriority::boost)
            v->prio_ = v->credit_ps_ > 0 ? SchedPriority::under : SchedPriority::over;
        any_active = any_active || v->state_ != VcpuState::blocked;
    }
    for (auto& p : pcpus_) evaluate_preemption(*p);
    if (any_active) arm_accounting();
}

void Scheduler::enqueue(PhysicalCpu& p, Vcpu& v) {
    // FIFO within a priority: insert after the last entry of equal or better priority.
    auto it = std::find_if(p.runq_.begin(), p.runq_.end(), [&](Vcpu* w) { return w->prio_ > v.prio_; });
    p.runq_.insert(it, &v);
    // An idle pCPU that may run v picks it up (steals) at once, as credit1 tickles idlers.
    for (auto& q : pcpus_)
        if (q.get() != &p && q->idle() && allowed(v, q->id())) {
            schedule(*q);
            return;
        }
}

int Scheduler::wake(Vcpu& v, int from_pcpu) {
    if (v.state_ != VcpuState::blocked) return -1;
    v.state_ = VcpuState::runnable;
    if (v.prio_ == SchedPriority::under) v.prio_ = SchedPriority::boost;
    arm_accounting();
    PhysicalCpu* target = nullptr;
    if (v.last_pcpu_ >= 0 && pcpus_[v.last_pcpu_]->idle()) target = pcpus_[v.last_pcpu_].get();
    for (unsigned i = 0; !target && i < pcpus_.size(); ++i)
        if (pcpus_[i]->idle() && allowed(v, i)) target = pcpus_[i].get();
    if (target) {
        target->runq_.insert(target->runq_.begin(), &v);
        schedule(*target);
        if (static_cast<int>(target->id()) != from_pcpu) {
            target->stats.ipis_received.inc();
            return static_cast<int>(target->id());
        }
        return -1;
    }
    unsigned home = v.last_pcpu_ >= 0 && allowed(v, v.last_pcpu_)
                        ? v.last_pcpu_
                        : (v.affinity_.empty() ? 0 : v.affinity_[0]);
    PhysicalCpu& p = *pcpus_[home];
    bool was_requested = p.current_ && p.current_->preempt_requested_;
    enqueue(p, v);
    evaluate_preemption(p);
    if (p.current_ && p.current_->preempt_requested_ && !was_requested &&
        static_cast<int>(home) != from_pcpu) {
        p.stats.ipis_received.inc();
        return static_cast<int>(home);
    }
    return -1;
}

void Scheduler::evaluate_preemption(PhysicalCpu& p) {
    Vcpu* cur = p.current_;
    if (!cur) {
        if (!p.switching_ && !p.runq_.empty()) schedule(p);
        return;
    }
    if (!params_.wakeup_preemption || cur->preempt_requested_ || p.runq_.empty()) return;
    auto best = std::min_element(p.runq_.begin(), p.runq_.end(),
                                 [](Vcpu* a, Vcpu* b) { return a->prio_ < b->prio_; });
    if ((*best)->prio_ >= cur->prio_) return;
    std::uint64_t ran = now_ps() - p.running_since_ps_;
    std::uint64_t limit = params_.ratelimit_us * 1'000'000;
    if (ran < limit) {
        notify_in(p.tick_ev_, limit - ran);
        return;
    }
    cur->preempt_requested_ = true;
    notify_in(cur->wake_ev_, 0);
}

Vcpu* Scheduler::pick(PhysicalCpu& p) {
    auto better = [](Vcpu* a, Vcpu* b) { return a->prio_ < b->prio_; };
    if (!p.runq_.empty()) {
        auto best = std::min_element(p.runq_.begin(), p.runq_.end(), better);
        Vcpu* v = *best;
        p.runq_.erase(best);
        return v;
    }
    // Steal the best waiter this pCPU may run from the other run queues, nearest pCPU first.
    Vcpu* found = nullptr;
    PhysicalCpu* from = nullptr;
    for (unsigned k = 1; k < pcpus_.size(); ++k) {
        PhysicalCpu& q = *pcpus_[(p.id() + k) % pcpus_.size()];
        for (Vcpu* w : q.runq_)
            if (allowed(*w, p.id()) && (!found || better(w, found))) found = w, from = &q;
    }
    if (found) from->runq_.erase(std::find(from->runq_.begin(), from->runq_.end(), found));
    return found;
}

void Scheduler::enter(PhysicalCpu& p, PhysicalCpu::Phase next, std::uint64_t now) {
    if (!closed_) {
        const std::uint64_t d = now - p.phase_since_ps_;
        switch (p.phase_) {
            case PhysicalCpu::Phase::idle:
                p.stats.idle_ps.inc(d);
                break;
            case PhysicalCpu::Phase::switching:
                p.stats.switch_ps.inc(d);
                p.stats.switch_cycles.inc(p.switch_cost_);
                break;
            case PhysicalCpu::Phase::busy:
                p.stats.busy_ps.inc(d);
                break;
        }
    }
    p.phase_ = next;
    p.phase_since_ps_ = now;
}

void Scheduler::schedule(PhysicalCpu& p) {
    if (p.current_ || p.switching_) return;
    p.stats.decisions.inc();
    Vcpu* next = pick(p);
    Vcpu* prev = p.prev_;
    Cycles cost = cost_.scheduler_decision;
    if (!next) {
        if (prev) cost += cost_.context_switch_idle;
    } else if (!prev) {
        cost += cost_.context_switch_idle;
    } else if (prev != next) {
        cost += &prev->domain() == &next->domain() ? cost_.context_switch_vcpu : cost_.context_switch_domain;
    }
    // The phase ending here: the idle time before a decision on an idle pCPU, or the run of the
    // vCPU that just blocked or yielded.
    const std::uint64_t now = now_ps();
    enter(p, PhysicalCpu::Phase::switching, now);
    p.switching_ = true;
    p.next_ = next;
    p.switch_cost_ = cost;
    p.switch_end_ps_ = now + clock_.ps(cost);
    notify_in(switch_ev_, clock_.ps(cost));  // (an earlier pending notification stays)
}

void Scheduler::complete_switch(PhysicalCpu& p, std::uint64_t now, bool notify_next) {
    p.switching_ = false;
    Vcpu* prev = p.prev_;
    Vcpu* next = p.next_;
    p.next_ = nullptr;
    enter(p, next ? PhysicalCpu::Phase::busy : PhysicalCpu::Phase::idle, now);
    if (!next) {
        if (prev) p.stats.switches_to_idle.inc();
        if (prev && tracer_.on(TraceCategory::sched))
            tracer_.emit(trace_events::context_switch, TraceTrack::pcpu(p.id()), now, 0,
                         {std::int64_t(prev->domain().id), std::int64_t(prev->id()), std::int64_t(-1),
                          std::int64_t(-1), std::string_view("to_idle")});
        p.prev_ = nullptr;
        if (!p.runq_.empty()) schedule(p);
        return;
    }
    std::string_view kind = "same_vcpu";
    if (!prev) {
        p.stats.switches_from_idle.inc();
        kind = "from_idle";
    } else if (prev != next) {
        bool same = &prev->domain() == &next->domain();
        (same ? p.stats.switches_same_domain : p.stats.switches_domain_change).inc();
        kind = same ? "same_domain" : "domain_change";
    }
    if (tracer_.on(TraceCategory::sched))
        tracer_.emit(trace_events::context_switch, TraceTrack::pcpu(p.id()), now, 0,
                     {prev ? std::int64_t(prev->domain().id) : std::int64_t(-1),
                      prev ? std::int64_t(prev->id()) : std::int64_t(-1), std::int64_t(next->domain().id),
                      std::int64_t(next->id()), kind});
    p.prev_ = next;
    p.current_ = next;
    p.running_since_ps_ = now;
    next->state_ = VcpuState::running;
    next->pcpu_ = static_cast<int>(p.id());
    next->last_pcpu_ = next->pcpu_;
    next->run_start_ps_ = now;
    next->acct_since_ps_ = now;
    next->ran_in_period_ = true;
    if (notify_next) notify_in(next->scheduled_ev_, 0);
    notify_in(p.tick_ev_, params_.tslice_us * 1'000'000);
    if (next->prio_ == SchedPriority::boost) {
        // credit1's per-pCPU ticker fires every tslice / CSCHED_TICKS_PER_TSLICE (3; 1 below 3 ms),
        // __csched_set_tslice; modelled as ticks at multiples of that period, armed only while a
        // BOOSTed vCPU runs (nothing else happens at a tick here: credit is burnt exactly).
        const std::uint64_t tick =
            (params_.tslice_us >= 3000 ? params_.tslice_us / 3 : params_.tslice_us) * 1'000'000;
        notify_in(p.credit_tick_ev_, (now / tick + 1) * tick - now);
    }
    // A vCPU that woke while the switch was under way competes with the one just switched in.
    evaluate_preemption(p);
}

const std::vector<PhysicalCpu*>& Scheduler::early_switches(std::uint64_t at_ps, bool to_parked_vcpu) {
    early_.clear();
    bool to_vcpu = false;
    for (auto& p : pcpus_) {
        if (!p->switching_ || p->switch_end_ps_ != at_ps) continue;
        // Each touches its own pCPU only (nothing queued: no decision follows), and at most one
        // brings a vCPU in, whose code then runs after all of them, as its thread would.
        const bool ok = p->runq_.empty() && (!p->next_ || (to_parked_vcpu && !to_vcpu && p->next_->parked()));
        if (!ok) {
            early_.clear();
            return early_;
        }
        to_vcpu = to_vcpu || p->next_;
        early_.push_back(p.get());
    }
    return early_;
}

void Scheduler::withdraw_switches(const std::vector<PhysicalCpu*>& ps) {
    switch_ev_.cancel();
    sim_time::activity_changed();
    arm_switches(&ps);
}

void Scheduler::restore_switches(const std::vector<PhysicalCpu*>& /*ps*/) { arm_switches(nullptr); }

void Scheduler::trace_run(Vcpu& v) {
    if (tracer_.on(TraceCategory::sched))
        tracer_.emit(trace_events::vcpu_running, TraceTrack::vcpu(v.domain().id, v.id()), v.run_start_ps_,
                     now_ps() - v.run_start_ps_, {std::uint64_t(v.pcpu_)});
}

void Scheduler::block(Vcpu& v) {
    trace_run(v);
    PhysicalCpu& p = *pcpus_[v.pcpu_];
    burn(v);
    if (v.prio_ == SchedPriority::boost)
        v.prio_ = v.credit_ps_ > 0 ? SchedPriority::under : SchedPriority::over;
    v.state_ = VcpuState::blocked;
    v.preempt_requested_ = false;
    v.pcpu_ = -1;
    p.current_ = nullptr;
    schedule(p);
}

void Scheduler::yield(Vcpu& v) {
    trace_run(v);
    PhysicalCpu& p = *pcpus_[v.pcpu_];
    burn(v);
    v.prio_ = v.credit_ps_ > 0 ? SchedPriority::under : SchedPriority::over;
    v.state_ = VcpuState::runnable;
    v.preempt_requested_ = false;
    v.pcpu_ = -1;
    p.current_ = nullptr;
    // Requeue behind its equals, then let the pCPU choose (it may pick v again).
    auto it = std::find_if(p.runq_.begin(), p.runq_.end(), [&](Vcpu* w) { return w->prio_ > v.prio_; });
    p.runq_.insert(it, &v);
    schedule(p);
}

void Scheduler::finish(std::uint64_t end_ps) {
    if (closed_) return;
    for (auto& p : pcpus_) {
        if (end_ps < p->phase_since_ps_)
            throw std::logic_error("scheduler accounting closed before a phase began");
        const std::uint64_t d = end_ps - p->phase_since_ps_;
        switch (p->phase_) {
            case PhysicalCpu::Phase::idle:
                p->stats.idle_ps.inc(d);
                break;
            case PhysicalCpu::Phase::switching:  // a switch under way: the part of it done
                p->stats.switch_ps.inc(d);
                p->stats.switch_cycles.inc(std::min(p->switch_cost_, clock_.cycles(d)));
                break;
            case PhysicalCpu::Phase::busy:
                p->stats.busy_ps.inc(d);
                break;
        }
        p->phase_since_ps_ = end_ps;
        p->stats.idle_cycles.inc(clock_.cycles(p->stats.idle_ps.value()));
        p->stats.busy_cycles.inc(clock_.cycles(p->stats.busy_ps.value()));
    }
    for (Vcpu* v : vcpus_) v->close_accounting(end_ps);
    closed_ = true;
}

}  // namespace xensim
