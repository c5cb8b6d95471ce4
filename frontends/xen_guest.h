// The guest kernel's Xen support: what Linux's drivers/xen core (or Mini-OS) does for a driver.
//
// One XenGuest per domain, shared by its vCPUs. boot() performs the platform set-up a PVHVM or PV
// kernel does before any PV driver runs: an HVM/PVH kernel first finds Xen through the CPUID
// leaves 0x40000000-0x40000002 and installs the hypercall page with a WRMSR (CPUID and MSR_WRITE
// exits), then, each step a real hypercall: map shared_info
// (XENMEM_add_to_physmap, HVM), map the grant table frames (XENMEM_add_to_physmap with
// XENMAPSPACE_grant_table), and register the event upcall — HVM_PARAM_CALLBACK_IRQ with a vector,
// or HVMOP_set_evtchn_upcall_vector per vCPU (then every upcall ends with an EOI), or
// CALLBACKOP_register for a PV kernel. (A real PV kernel finds shared_info and its grant frames
// through start_info and GNTTABOP_setup_table; here both kinds use XENMEM_add_to_physmap, so one
// path serves both. Documented in docs/architecture.md.) An HVM guest whose machine has an
// emulated PCI bus then scans bus 0 (phase "pci_scan", frontends/pci_scan.h), and the PCI drivers
// it has probe what they find: the Xen platform device's driver when the guest has PV drivers
// (Linux maps its grant frames only in that probe, into the device's BAR1; here they were mapped
// during the set-up, at frames of RAM, so the probe does no grant-table work), then ata_piix on
// the PIIX3 IDE function when the guest has IDE disks (frontends/ata_piix_host.h).
//
// Event channels: the upcall handler scans the 2-level bitmaps in shared_info the way Linux's
// evtchn_2l_handle_events does (clear evtchn_upcall_pending, take the selector word, walk the
// pending & ~mask & per-CPU-mask words, clear each port's pending bit, call its handler), and loops
// while new events arrived. Each port the kernel uses is bound to one vCPU, as Linux binds an
// event-channel IRQ (events_base.c bind_evtchn_to_cpu; events_2l.c evtchn_2l_bind_to_cpu keeps
// per_cpu(cpu_evtchn_mask)): vCPU 0 when the kernel first meets the port (allocates, binds, unmasks
// or gives it a handler), another after bind_vcpu (xen_rebind_evtchn_to_cpu); an upcall on one vCPU
// handles only the ports bound to it (active_evtchns), so a vCPU never takes another's event even
// when both ports share a bitmap word. unmask is evtchn_2l_unmask: the guest clears the mask bit
// itself only for a port bound to the calling vCPU, and an HVM/PVH guest that finds the port
// pending masks it again and asks Xen (EVTCHNOP_unmask), as does any guest for a port bound to
// another vCPU. Not modelled: Linux's round-robin start point in the scan (the scan here starts at
// the lowest word and bit every time), the timer VIRQ's priority, the lateeoi machinery. Grants: entries are
// written straight into the mapped grant frames with the v1 protocol (frame and domid first, then flags after
// a write barrier); a grant is ended only if Xen's GTF_reading / GTF_writing show it is no longer in use, as
// gnttab_end_foreign_access_ref.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "frontends/ata_piix_host.h"
#include "frontends/guest_services.h"
#include "frontends/pci_scan.h"
#include "sim/core/xen_abi.h"

namespace xensim {

enum class GuestUpcall { callback_vector, percpu_vector };

struct GuestBootOptions {
    GuestUpcall upcall = GuestUpcall::callback_vector;
    std::uint8_t vector = 0xf3;  // Linux's HYPERVISOR_CALLBACK_VECTOR
    unsigned grant_frames = 1;   // grant table frames to map at boot
    // HVM: ask the Xen platform device to unplug the emulated disks and NICs (Linux's
    // xen_unplug_emulated_devices) after discovery, before any PV driver connects.
    bool unplug_emulated = false;
    // HVM whose machine has an emulated PCI bus (a device model): enumerate PCI bus 0
    // (subsys_initcall time, after the early Xen set-up; phase "pci_scan", frontends/pci_scan.h).
    bool pci_scan = false;
    // HVM with PV drivers, i.e. with the Xen platform PCI device: after the scan the platform-pci
    // driver probes 5853:0001; boot fails with -XEN_ENODEV if the scan did not find it, as no PV
    // driver can then attach. Without it the guest boots with emulated devices only.
    bool xen_platform_driver = false;
    // The guest's ata_piix driver (a guest with IDE disks): after the scan it probes the PIIX3 IDE
    // function 8086:7010 (AtaPiixHost::probe, still in phase "pci_scan"). Its failure does not fail
    // the boot; the IDE disks are then not usable. Not owned.
    AtaPiixHost* ata_piix = nullptr;
};

class XenGuest {
  public:
    using PortHandler = std::function<void(GuestServices&, evtchn_port_t)>;

    XenGuest(unsigned vcpus, bool pv);

    // Platform set-up on the boot vCPU; registers the upcall on every vCPU's services.
    // Returns 0 or the first failing hypercall's negative errno.
    long boot(std::vector<GuestServices*> vcpus, const GuestBootOptions& opts);
    bool booted() const { return booted_; }

    // --- event channels ---
    long bind_interdomain(GuestServices& s, domid_t remote_dom, evtchn_port_t remote_port,
                          evtchn_port_t* local);
    long alloc_unbound(GuestServices& s, domid_t remote_dom, evtchn_port_t* port);
    // EVTCHNOP_bind_ipi for `vcpu`; the port is bound to that vCPU in the guest too (Linux's
    // bind_ipi_to_irq -> bind_evtchn_to_cpu). Left masked, as a new port is.
    long bind_ipi(GuestServices& s, unsigned vcpu, evtchn_port_t* port);
    // EVTCHNOP_bind_virq of a per-vCPU VIRQ (VIRQ_TIMER) on `vcpu`; the port is bound to that vCPU
    // in the guest too (Linux's bind_virq_to_irq). Left masked, as a new port is.
    long bind_virq(GuestServices& s, unsigned virq, unsigned vcpu, evtchn_port_t* port);
    // VCPUOP_set_singleshot_timer on the calling vCPU: VIRQ_TIMER at `timeout_abs_ns` (Xen system
    // time; here the simulated time), as Linux's xen_vcpuop_set_next_event arms its clockevent
    // (without VCPU_SSHOTTMR_future: a past timeout fires at once). Returns the hypercall's rc.
    long set_singleshot_timer(GuestServices& s, std::uint64_t timeout_abs_ns);
    long notify(GuestServices& s, evtchn_port_t port);
    // EVTCHNOP_close; on success the port's vCPU binding goes (Linux's __unbind_from_irq).
    long close(GuestServices& s, evtchn_port_t port);
    // Moves the port's events to `vcpu` as Linux's xen_rebind_evtchn_to_cpu does (an IRQ affinity
    // change): mask the port, EVTCHNOP_bind_vcpu, rebind the guest's per-CPU mask if Xen agreed,
    // then unmask unless the port was masked before (do_unmask with EVT_MASK_REASON_TEMPORARY) —
    // an unmask from another vCPU than the new one goes through Xen. Returns the hypercall's rc.
    long bind_vcpu(GuestServices& s, evtchn_port_t port, unsigned vcpu);
    // Linux's evtchn_2l_unmask, run on the calling vCPU. The port bound to that vCPU: clear the mask
    // bit; if an event is pending, a PV guest raises the selector and upcall flag itself, an HVM/PVH
    // guest sets the mask bit again and makes the EVTCHNOP_unmask hypercall ("hvm domains don't
    // have their own implementation of irq_enable"). Bound to another vCPU: EVTCHNOP_unmask.
    void unmask(GuestServices& s, evtchn_port_t port);
    // Masks a port (sets its bit in shared_info's evtchn_mask): its events stay pending without an
    // upcall until unmask(), as Linux's evtchn device does to a port between delivery and the
    // user's re-enable.
    void mask(GuestServices& s, evtchn_port_t port);
    // Gives the port a handler (binding it to vCPU 0 if the kernel did not know it yet).
    void set_port_handler(evtchn_port_t port, PortHandler handler) {
        bind_port(port);
        handlers_[port] = std::move(handler);
    }
    // Drops the handler and the port's vCPU binding (unbind_from_irqhandler before the close).
    void clear_port_handler(evtchn_port_t port) {
        handlers_.erase(port);
        unbind_port(port);
    }
    // The vCPU a port is bound to in the guest (Linux's cpu_from_evtchn); nullopt if not bound.
    std::optional<unsigned> port_vcpu(evtchn_port_t port) const;
    // The upcall handler body (public for tests).
    void handle_upcall(GuestServices& s);

    // --- grants ---
    // Grants `domid` access to our frame `gfn`; returns the reference, or nullopt if the table is full.
    std::optional<grant_ref_t> grant_access(domid_t domid, std::uint64_t gfn, bool readonly);
    // Ends a grant when the remote no longer uses it; false (grant left in place) while it does.
    bool end_access(grant_ref_t ref);
    grant_entry_v1_t* grant_entry(grant_ref_t ref);

    // --- deferred work (Linux's work queues / kernel threads) ---
    // Work an upcall handler must not do itself (anything that waits for an event) runs later in
    // thread context: the idle loop calls run_deferred before it halts.
    void defer(std::function<void(GuestServices&)> work) { deferred_.push_back(std::move(work)); }
    // Work for a kernel thread pinned to `vcpu` (Linux's wake_up_process of a per-CPU kthread), queued
    // from vCPU s.vcpu_id(): it runs in `vcpu`'s idle loop. When `vcpu` is another vCPU halted in its
    // idle loop and not yet kicked, the wake-up costs what it costs Linux under Xen, a reschedule IPI:
    // EVTCHNOP_send on that vCPU's IPI channel (bound with EVTCHNOP_bind_ipi the first time, as
    // xen_smp_intr_init binds XEN_RESCHEDULE_VECTOR; here lazily, so kernels that never wake a
    // thread on another vCPU make no extra hypercall). docs/architecture.md, "Guest kernels".
    void defer_on(GuestServices& s, unsigned vcpu, std::function<void(GuestServices&)> work);
    // Runs every queued item of the calling vCPU (vCPU 0: defer()'s queue too) and items they
    // queue; false if there was nothing to run.
    bool run_deferred(GuestServices& s);
    // The kernel's idle loop on s's vCPU: run its deferred work, halt when there is none. Never
    // returns.
    [[noreturn]] void idle(GuestServices& s);
    // IPIs sent by defer_on (reschedule kicks of halted vCPUs).
    std::uint64_t wakeup_ipis() const { return wakeup_ipis_; }

    // The platform device's answer: true when the unplug protocol ran (magic found), false when no
    // platform device answered.
    bool unplugged() const { return unplugged_; }
    // What the PCI scan found (empty without one), and the platform device if it was probed.
    const std::vector<PciDev>& pci_devices() const { return pci_devices_; }
    const PciDev* platform_pci() const { return platform_pci_ < 0 ? nullptr : &pci_devices_[platform_pci_]; }
    std::uint64_t upcalls_handled() const { return upcalls_handled_; }
    std::uint64_t events_handled() const { return events_handled_; }

  private:
    bool unplug_emulated_devices(GuestServices& s);
    long scan_pci(GuestServices& s);
    // Per-CPU port binding (bind_evtchn_to_cpu / evtchn_2l_bind_to_cpu / evtchn_2l_remove).
    static constexpr unsigned kWords = EVTCHN_2L_NR_CHANNELS / (sizeof(xen_ulong_t) * 8);
    void bind_port(evtchn_port_t port);  // to vCPU 0, if not bound yet
    void bind_to_cpu(evtchn_port_t port, unsigned vcpu);
    void unbind_port(evtchn_port_t port);
    shared_info_t* shared_info(GuestServices& s) {
        return reinterpret_cast<shared_info_t*>(s.page(shared_info_gfn_));
    }

    unsigned vcpus_;
    bool pv_;
    bool booted_ = false;
    bool unplugged_ = false;
    std::vector<PciDev> pci_devices_;
    int platform_pci_ = -1;
    GuestBootOptions opts_;
    std::uint64_t shared_info_gfn_ = 0;
    std::vector<std::uint64_t> grant_frame_gfns_;
    std::vector<grant_entry_v1_t*> grant_frames_;
    std::vector<grant_ref_t> free_grefs_;
    std::map<evtchn_port_t, PortHandler> handlers_;
    std::map<evtchn_port_t, unsigned> port_cpu_;                    // info->cpu of each bound port
    std::vector<std::array<xen_ulong_t, kWords>> cpu_evtchn_mask_;  // per vCPU, as per_cpu(cpu_evtchn_mask)
    std::deque<std::function<void(GuestServices&)>> deferred_;
    struct VcpuThreads {  // per vCPU: its kthreads' queued work and whether its idle loop halted
        std::deque<std::function<void(GuestServices&)>> work;
        bool halted = false, kicked = false;
        std::optional<evtchn_port_t> ipi;
    };
    std::vector<VcpuThreads> threads_;
    std::uint64_t wakeup_ipis_ = 0;
    std::uint64_t upcalls_handled_ = 0, events_handled_ = 0;
};

}  // namespace xensim
