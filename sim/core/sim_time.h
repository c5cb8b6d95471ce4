// Simulated time as the running process sees it, with temporal decoupling (docs/temporal-decoupling.md).
//
// A vCPU may run guest code ahead of SystemC time when nothing else can happen before it ends (the
// fast path of Vcpu::run_guest): it counts the cycles and owes the time, waited for at its next
// hypervisor work. While it owes, SystemC's clock lags the running process's by run_ahead_ps(); code
// that reads "now" or schedules at an absolute time reads now_ps(), never sc_time_stamp() directly,
// and code about to stop or time the whole simulation calls sync() first. Only the running process
// can owe (the run-ahead ends before any other process runs), so one value serves the simulation.
#pragma once

#include <cstdint>

#include <systemc>

namespace xensim::sim_time {

class RunAhead {
  public:
    virtual ~RunAhead() = default;
    virtual std::uint64_t run_ahead_ps() const = 0;
    virtual void sync() = 0;  // wait the run-ahead out (on the owing process's thread)
};

// The process that owes time now, or nullptr (set and cleared by the owing vCPU).
inline RunAhead* owing = nullptr;

// What Hypervisor::horizon_ps() needs to keep SystemC's answer for one process activation
// instead of asking again (debug builds check every kept answer against SystemC's):
// activity_epoch changes whenever the next pending activity may have moved in a way it cannot
// follow (a delta notification, a withdrawn notification, a new process, the stop time), and
// earliest_notified_ps is the earliest time of the timed notifications issued since it last
// asked (the next activity is then the earlier of the two). All notifications in this code go
// through notify() or notify_after().
inline std::uint64_t activity_epoch = 0;
inline std::uint64_t earliest_notified_ps = ~std::uint64_t{0};
inline void activity_changed() { ++activity_epoch; }

// ev.notify(delay), keeping the two above: the one way this code notifies an event.
inline void notify(sc_core::sc_event& ev, const sc_core::sc_time& delay) {
    if (delay == sc_core::SC_ZERO_TIME) {
        ++activity_epoch;
    } else {
        const std::uint64_t at = sc_core::sc_time_stamp().value() + delay.value();
        if (at < earliest_notified_ps) earliest_notified_ps = at;
    }
    ev.notify(delay);
}

inline std::uint64_t run_ahead_ps() { return owing ? owing->run_ahead_ps() : 0; }
inline std::uint64_t now_ps() { return sc_core::sc_time_stamp().value() + run_ahead_ps(); }
inline void sync() {
    if (owing) owing->sync();
}

// Notifies `ev` `delay_ps` after now_ps(): at the absolute time the full path would name, issued
// from the owing process's future (no other process runs before the run-ahead ends, and the
// notification itself bounds every later run-ahead, being pending activity). A delta notification
// (delay 0) cannot be issued from the future, where it would fire in SystemC's present: the owing
// process syncs first.
inline void notify_after(sc_core::sc_event& ev, std::uint64_t delay_ps) {
    if (delay_ps == 0) {
        sync();
        notify(ev, sc_core::SC_ZERO_TIME);
        return;
    }
    notify(ev, sc_core::sc_time::from_value(run_ahead_ps() + delay_ps));
}

}  // namespace xensim::sim_time
