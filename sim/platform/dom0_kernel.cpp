#include "sim/platform/dom0_kernel.h"

namespace xensim {

void Dom0Kernel::set_vcpus(unsigned n) {
    vcpus_ = n ? n : 1;
    timers_ = KernelTimers(vcpus_);
    timer_functions_.clear();
    timer_ports_.assign(vcpus_, 0);
    program_kicked_.assign(vcpus_, false);
}

KernelTimerId Dom0Kernel::timer_setup(std::function<void(BackendServices&)> function) {
    const KernelTimerId t = timers_.create();
    if (t >= timer_functions_.size()) timer_functions_.resize(t + 1);
    timer_functions_[t] = std::move(function);
    return t;
}

void Dom0Kernel::timer_shutdown(KernelTimerId t) {
    timers_.shutdown(t);
    timer_functions_.at(t) = nullptr;
}

bool Dom0Kernel::mod_timer(BackendServices& s, unsigned vcpu, KernelTimerId t, std::uint64_t expires_ns) {
    const bool was = timers_.mod_timer(t, vcpu, expires_ns);
    auto& vs = static_cast<VcpuGuestServices&>(s);
    if (vs.vcpu_id() == vcpu) {
        program_here(vs);
    } else if (timers_.needs_program(vcpu) && !program_kicked_[vcpu]) {
        // add_timer_on a remote CPU: it reprograms its own clockevent once woken.
        program_kicked_[vcpu] = true;
        guest_.defer_on(vs, vcpu, [this, vcpu](GuestServices& ws) {
            program_kicked_[vcpu] = false;
            program_here(ws);
        });
    }
    return was;
}

void Dom0Kernel::program_here(GuestServices& s) {
    const unsigned v = s.vcpu_id();
    if (!timers_.needs_program(v) || !bind_timer_virq(s, v)) return;
    const auto at = timers_.program(v);
    // xen_vcpuop_set_next_event (without VCPU_SSHOTTMR_future: a past deadline fires at once).
    if (guest_.set_singleshot_timer(s, *at) != 0) timers_.forget_programmed(v);
}

bool Dom0Kernel::bind_timer_virq(GuestServices& s, unsigned vcpu) {
    if (timer_ports_[vcpu]) return true;
    evtchn_port_t port = 0;
    if (guest_.bind_virq(s, VIRQ_TIMER, vcpu, &port) != 0) return false;
    timer_ports_[vcpu] = port;
    guest_.set_port_handler(port,
                            [this, vcpu](GuestServices& gs, evtchn_port_t) { timer_interrupt(gs, vcpu); });
    guest_.unmask(s, port);
    return true;
}

void Dom0Kernel::timer_interrupt(GuestServices& s, unsigned vcpu) {
    ++timer_interrupts_;
    timers_.begin_expiry(vcpu, s.now_ns());
    while (auto t = timers_.pop_expired(vcpu)) {
        auto function = timer_functions_[*t];  // a copy: the function may shut its timer down
        ++timers_run_;
        if (function) function(backend(s));
    }
    program_here(s);
}

}  // namespace xensim
