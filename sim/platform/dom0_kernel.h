// dom0's kernel as backends see it: BackendKernel over dom0's XenGuest and its xenbus client.
//
// XenStore calls go through the kernel's xenbus client on vCPU 0 (connected on first use); watch
// callbacks and deferred work run on vCPU 0 in thread context; port handlers run where the port
// notifies. Every GuestServices dom0 code receives is a VcpuGuestServices, which is also the
// backend's BackendServices.
//
// Kernel timers, as Linux on Xen keeps them: pending timers per vCPU (KernelTimers); the earliest
// deadline of a vCPU is programmed on that vCPU with VCPUOP_set_singleshot_timer (Linux's
// xen_vcpuop_set_next_event: the clockevent device of a Xen vCPU), reprogrammed only for an
// earlier deadline; its expiry raises VIRQ_TIMER, whose handler runs the expired timers' functions
// on that vCPU (run_timer_softirq) and programs the next deadline. VIRQ_TIMER is bound
// (EVTCHNOP_bind_virq, then unmasked) on a vCPU the first time a timer is programmed there, not at
// boot as Linux's xen_setup_timer does: a dom0 that never arms a timer makes exactly the
// hypercalls it made before timers existed. A timer armed for another vCPU than the caller's is
// queued there and that vCPU programs it (Linux's add_timer_on + wake_up_nohz_cpu: a reschedule
// IPI when the vCPU is idle, XenGuest::defer_on). Where this differs from Linux: the periodic tick
// and the timer wheel's jiffies are not modelled (kernel_timers.h); a dom0 vCPU that has armed
// nothing takes no timer interrupt at all.
#pragma once

#include "models/dom0/backend_kernel.h"
#include "models/dom0/kernel_timers.h"
#include "sim/platform/platform_runtime.h"

namespace xensim {

class Dom0Kernel : public BackendKernel {
  public:
    Dom0Kernel(XenGuest& guest, std::function<XenbusClient&()> xenbus, GuestServices& vcpu0)
        : guest_(guest), xenbus_(std::move(xenbus)), vcpu0_(vcpu0) {
        set_vcpus(1);
    }

    std::optional<std::string> xs_read(const std::string& path) override { return xenbus_().read(path); }
    bool xs_write(const std::string& path, const std::string& value) override {
        return xenbus_().write(path, value).ok();
    }
    std::optional<std::vector<std::string>> xs_directory(const std::string& path) override {
        XenbusReply r = xenbus_().request(XS_DIRECTORY, 0, path + std::string(1, '\0'));
        if (!r.ok()) return std::nullopt;
        std::vector<std::string> names;
        std::size_t at = 0;
        while (at < r.payload.size()) {
            std::size_t end = r.payload.find('\0', at);
            if (end == std::string::npos) end = r.payload.size();
            if (end > at) names.push_back(r.payload.substr(at, end - at));
            at = end + 1;
        }
        return names;
    }
    bool xs_watch(const std::string& path, const std::string& token,
                  std::function<void(BackendServices&, const std::string&)> callback) override {
        GuestServices* v0 = &vcpu0_;
        return xenbus_()
            .watch(path, token, [callback, v0](const XenbusWatchEvent& e) { callback(backend(*v0), e.path); })
            .ok();
    }
    bool xs_unwatch(const std::string& path, const std::string& token) override {
        return xenbus_().unwatch(path, token).ok();
    }
    void set_port_handler(evtchn_port_t port, std::function<void(BackendServices&)> handler) override {
        guest_.set_port_handler(port, [handler](GuestServices& s, evtchn_port_t) { handler(backend(s)); });
    }
    void clear_port_handler(evtchn_port_t port) override { guest_.clear_port_handler(port); }
    void unmask(BackendServices& s, evtchn_port_t port) override {
        guest_.unmask(static_cast<VcpuGuestServices&>(s), port);
    }
    void mask(BackendServices& s, evtchn_port_t port) override {
        guest_.mask(static_cast<VcpuGuestServices&>(s), port);
    }
    void defer(std::function<void(BackendServices&)> work) override {
        guest_.defer([work](GuestServices& s) { work(backend(s)); });
    }

    unsigned vcpus() const override { return vcpus_; }
    void defer_on(BackendServices& s, unsigned vcpu, std::function<void(BackendServices&)> work) override {
        guest_.defer_on(static_cast<VcpuGuestServices&>(s), vcpu,
                        [work](GuestServices& vs) { work(backend(vs)); });
    }
    long bind_vcpu(BackendServices& s, evtchn_port_t port, unsigned vcpu) override {
        return guest_.bind_vcpu(static_cast<VcpuGuestServices&>(s), port, vcpu);
    }
    // Before any timer is set up.
    void set_vcpus(unsigned n);

    KernelTimerId timer_setup(std::function<void(BackendServices&)> function) override;
    bool mod_timer(BackendServices& s, unsigned vcpu, KernelTimerId t, std::uint64_t expires_ns) override;
    bool del_timer(KernelTimerId t) override { return timers_.del_timer(t); }
    bool timer_pending(KernelTimerId t) const override { return timers_.pending(t); }
    void timer_shutdown(KernelTimerId t) override;
    // VIRQ_TIMER interrupts taken (on any vCPU), and timer functions run.
    std::uint64_t timer_interrupts() const { return timer_interrupts_; }
    std::uint64_t timers_run() const { return timers_run_; }

  private:
    // Programs vCPU s.vcpu_id()'s one-shot timer if its earliest deadline asks for it.
    void program_here(GuestServices& s);
    bool bind_timer_virq(GuestServices& s, unsigned vcpu);
    void timer_interrupt(GuestServices& s, unsigned vcpu);

    unsigned vcpus_ = 1;
    KernelTimers timers_;
    std::vector<std::function<void(BackendServices&)>> timer_functions_;  // by KernelTimerId
    std::vector<evtchn_port_t> timer_ports_;                              // VIRQ_TIMER per vCPU; 0: not bound
    std::vector<bool> program_kicked_;  // a remote vCPU was asked to program its timer
    std::uint64_t timer_interrupts_ = 0, timers_run_ = 0;
    static BackendServices& backend(GuestServices& s) { return static_cast<VcpuGuestServices&>(s); }
    XenGuest& guest_;
    std::function<XenbusClient&()> xenbus_;
    GuestServices& vcpu0_;
};

}  // namespace xensim
