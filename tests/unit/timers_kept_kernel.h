// A BackendKernel base for test fakes whose backends may set up kernel timers but that never run
// time: the timers are kept (KernelTimers, so arming, deleting and pending behave as on dom0) and
// never fired. A fake that drives a vif with a `rate` needs a real timer path instead.
#pragma once

#include <cstdint>
#include <functional>

#include "models/dom0/backend_kernel.h"
#include "models/dom0/kernel_timers.h"

namespace xensim {

class TimersKeptKernel : public BackendKernel {
  public:
    KernelTimerId timer_setup(std::function<void(BackendServices&)>) override { return timers.create(); }
    bool mod_timer(BackendServices&, unsigned vcpu, KernelTimerId t, std::uint64_t expires_ns) override {
        return timers.mod_timer(t, vcpu, expires_ns);
    }
    bool del_timer(KernelTimerId t) override { return timers.del_timer(t); }
    bool timer_pending(KernelTimerId t) const override { return timers.pending(t); }
    void timer_shutdown(KernelTimerId t) override { timers.shutdown(t); }
    KernelTimers timers;
};

}  // namespace xensim
