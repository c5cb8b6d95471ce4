// What dom0's kernel offers a backend driver beyond the machine itself: its xenbus connection,
// its event-channel dispatch and its work queue.
//
// A backend (blkback, netback) in models/dom0 never sees the guest kernel classes of frontends/;
// the platform implements this interface over dom0's kernel, and tests can fake it. The rules are
// Linux's: XenStore calls wait for xenstored, so they are made only in thread context (a backend's
// start() and watch callbacks, which run as deferred work on dom0's vCPU 0, as the xenwatch thread
// runs them); an event handler runs in interrupt context and hands anything that needs XenStore to
// defer(). Kernel timers (timer_list) run their function in (soft)interrupt context on the vCPU
// they were armed on, like an event handler.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/dom0/backend_services.h"
#include "models/dom0/kernel_timers.h"
#include "sim/core/xen_abi.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

class BackendKernel {
  public:
    virtual ~BackendKernel() = default;

    // XenStore, thread context only. Paths are absolute.
    virtual std::optional<std::string> xs_read(const std::string& path) = 0;
    // A node holding a decimal number (a ring-ref, a feature flag); nullopt if absent or not one.
    std::optional<std::uint64_t> xs_read_uint(const std::string& path) {
        return parse_xenstore_uint(xs_read(path));
    }
    virtual bool xs_write(const std::string& path, const std::string& value) = 0;
    // XS_DIRECTORY: the children's names, or nullopt if the node does not exist (xenbus_directory
    // failing; xenbus_exists is this call's success).
    virtual std::optional<std::vector<std::string>> xs_directory(const std::string& path) = 0;
    // `callback` runs in thread context each time the watch fires (once at registration, as
    // XS_WATCH always fires once), with the path that fired (the watch's own path the first time),
    // as a xenbus_watch callback gets it.
    virtual bool xs_watch(const std::string& path, const std::string& token,
                          std::function<void(BackendServices&, const std::string& path)> callback) = 0;
    virtual bool xs_unwatch(const std::string& path, const std::string& token) = 0;

    // Event channels: the handler runs in interrupt context on the vCPU the port notifies.
    virtual void set_port_handler(evtchn_port_t port, std::function<void(BackendServices&)> handler) = 0;
    virtual void clear_port_handler(evtchn_port_t port) = 0;
    virtual void unmask(BackendServices& s, evtchn_port_t port) = 0;
    // Holds a port's events back (pending, no handler call) until unmask().
    virtual void mask(BackendServices& s, evtchn_port_t port) = 0;

    // Work for thread context (dom0's vCPU 0 runs it before it next idles).
    virtual void defer(std::function<void(BackendServices&)> work) = 0;
    // dom0's vCPUs, and work for a kernel thread pinned to dom0 vCPU `vcpu` (netback's per-queue
    // guest-rx and dealloc kthreads), queued from the vCPU `s` runs on; waking a halted other vCPU
    // costs a reschedule IPI (XenGuest::defer_on). The defaults (a kernel of one vCPU) defer().
    virtual unsigned vcpus() const { return 1; }
    // Moves a port's events to dom0 vCPU `vcpu` (EVTCHNOP_bind_vcpu, an IRQ affinity change).
    virtual long bind_vcpu(BackendServices& s, evtchn_port_t port, unsigned vcpu) {
        (void)s;
        (void)port;
        (void)vcpu;
        return 0;
    }
    virtual void defer_on(BackendServices& s, unsigned vcpu, std::function<void(BackendServices&)> work) {
        (void)s;
        (void)vcpu;
        defer(std::move(work));
    }

    // Kernel timers (Linux's timer_list; the bookkeeping is models/dom0/kernel_timers.h). An owner
    // sets up one timer per purpose (timer_setup) and gets its id; mod_timer (re)arms it on dom0
    // vCPU `vcpu` (< vcpus()) at absolute simulated time `expires_ns`, replacing any earlier
    // deadline, from the vCPU `s` runs on, and returns whether it was pending (mod_timer's return);
    // when it expires, `function` runs in interrupt context on that vCPU. del_timer cancels (true
    // if it was pending); timer_shutdown cancels and releases the id, and the owner calls it before
    // it goes away (del_timer_sync). Under Xen the kernel programs each vCPU's earliest deadline with
    // VCPUOP_set_singleshot_timer and takes VIRQ_TIMER (Dom0Kernel); a kernel that never arms a
    // timer makes none of those hypercalls.
    virtual KernelTimerId timer_setup(std::function<void(BackendServices&)> function) = 0;
    virtual bool mod_timer(BackendServices& s, unsigned vcpu, KernelTimerId t, std::uint64_t expires_ns) = 0;
    virtual bool del_timer(KernelTimerId t) = 0;
    virtual bool timer_pending(KernelTimerId t) const = 0;
    virtual void timer_shutdown(KernelTimerId t) = 0;
};

}  // namespace xensim
