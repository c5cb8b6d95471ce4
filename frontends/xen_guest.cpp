#include "frontends/xen_guest.h"

#include <cstring>

namespace xensim {

namespace {
constexpr unsigned kGuestPageSize = 4096;  // x86 base page
constexpr unsigned kEntriesPerFrame = kGuestPageSize / sizeof(grant_entry_v1_t);
}  // namespace

XenGuest::XenGuest(unsigned vcpus, bool pv)
    : vcpus_(vcpus), pv_(pv), cpu_evtchn_mask_(vcpus), threads_(vcpus) {}

long XenGuest::boot(std::vector<GuestServices*> vcpus, const GuestBootOptions& opts) {
    opts_ = opts;
    GuestServices& s = *vcpus.at(0);
    s.mark_phase(pv_ ? "xen_setup" : "discovery");
    if (!pv_) {
        // PVHVM platform discovery as Linux's xen_cpuid_base / init_hvm_pv_info: the signature
        // leaf, the version leaf, the hypercall-page leaf, then the MSR write that installs the
        // hypercall page (xen/include/public/arch-x86/cpuid.h).
        std::uint32_t r[4];
        s.cpuid(0x40000000, 0, r);
        if (std::memcmp(&r[1], "XenV", 4) || std::memcmp(&r[2], "MMXe", 4) || std::memcmp(&r[3], "nVMM", 4))
            return -XEN_ENOSYS;
        s.cpuid(0x40000001, 0, r);
        s.cpuid(0x40000002, 0, r);
        std::uint32_t hypercall_msr = r[1];
        auto page = s.alloc_page();
        if (!page) return -XEN_ENOMEM;
        s.wrmsr(hypercall_msr, *page << 12);
        if (opts.unplug_emulated) {
            s.mark_phase("unplug");
            unplugged_ = unplug_emulated_devices(s);
        }
        s.mark_phase("xen_setup");
    }
    // shared_info into our physmap.
    auto gfn = s.alloc_page();
    if (!gfn) return -XEN_ENOMEM;
    xen_add_to_physmap_t xatp{};
    xatp.domid = DOMID_SELF;
    xatp.space = XENMAPSPACE_shared_info;
    xatp.idx = 0;
    xatp.gpfn = *gfn;
    if (long r = s.hypercall(__HYPERVISOR_memory_op, XENMEM_add_to_physmap,
                             reinterpret_cast<unsigned long>(&xatp)))
        return r;
    shared_info_gfn_ = *gfn;
    // Grant table frames.
    for (unsigned i = 0; i < opts.grant_frames; ++i) {
        auto g = s.alloc_page();
        if (!g) return -XEN_ENOMEM;
        xen_add_to_physmap_t x{};
        x.domid = DOMID_SELF;
        x.space = XENMAPSPACE_grant_table;
        x.idx = i;
        x.gpfn = *g;
        if (long r = s.hypercall(__HYPERVISOR_memory_op, XENMEM_add_to_physmap,
                                 reinterpret_cast<unsigned long>(&x)))
            return r;
        grant_frame_gfns_.push_back(*g);
        grant_frames_.push_back(reinterpret_cast<grant_entry_v1_t*>(s.page(*g)));
    }
    // Free references, lowest first; the first GNTTAB_NR_RESERVED_ENTRIES belong to the toolstack.
    for (grant_ref_t r = opts.grant_frames * kEntriesPerFrame; r-- > GNTTAB_NR_RESERVED_ENTRIES;)
        free_grefs_.push_back(r);
    // Every port starts masked until a driver binds it (Linux masks all at boot).
    shared_info_t* si = shared_info(s);
    for (auto& w : si->evtchn_mask) w = ~xen_ulong_t(0);
    // The upcall.
    for (GuestServices* v : vcpus) v->set_upcall_handler([this, v] { handle_upcall(*v); });
    if (pv_) {
        callback_register_t cb{};
        cb.type = CALLBACKTYPE_event;
        if (long r = s.hypercall(__HYPERVISOR_callback_op, CALLBACKOP_register,
                                 reinterpret_cast<unsigned long>(&cb)))
            return r;
    } else if (opts.upcall == GuestUpcall::callback_vector) {
        xen_hvm_param_t p{};
        p.domid = DOMID_SELF;
        p.index = HVM_PARAM_CALLBACK_IRQ;
        p.value = (std::uint64_t(HVM_PARAM_CALLBACK_TYPE_VECTOR) << 56) | opts.vector;
        if (long r = s.hypercall(__HYPERVISOR_hvm_op, HVMOP_set_param, reinterpret_cast<unsigned long>(&p)))
            return r;
    } else {
        for (unsigned i = 0; i < vcpus.size(); ++i) {
            xen_hvm_evtchn_upcall_vector_t uv{};
            uv.vcpu = i;
            uv.vector = opts.vector;
            if (long r = s.hypercall(__HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector,
                                     reinterpret_cast<unsigned long>(&uv)))
                return r;
        }
    }
    if (!pv_ && opts.pci_scan) {
        s.mark_phase("pci_scan");
        if (long r = scan_pci(s)) return r;
    }
    booted_ = true;
    s.mark_phase("running");
    return 0;
}

bool XenGuest::unplug_emulated_devices(GuestServices& s) {
    // Linux arch/x86/xen/platform-pci-unplug.c (check_platform_magic, xen_unplug_emulated_devices)
    // with include/xen/platform_pci.h's ports: magic, protocol version, product number and driver
    // version, magic again (blacklisting), then the unplug mask.
    constexpr std::uint16_t kMagicPort = 0x10, kProtoPort = 0x12;
    constexpr std::uint16_t kMagic = 0x49d2, kLinuxProduct = 0x0003;  // xen/hvm/pvdrivers.h: "linux"
    constexpr std::uint32_t kDriverVersion = 0x060100;                // LINUX_VERSION_CODE of 6.1
    constexpr std::uint16_t kUnplugAll = 1 | 2 | 4;                   // IDE disks, NICs, auxiliary IDE disks
    if (s.in(kMagicPort, 2) != kMagic) return false;
    if (s.in(kProtoPort, 1) == 1) {
        s.out(kProtoPort, 2, kLinuxProduct);
        s.out(kMagicPort, 4, kDriverVersion);
        if (s.in(kMagicPort, 2) != kMagic) return false;  // blacklisted
    }
    s.out(kMagicPort, 2, kUnplugAll);
    return true;
}

long XenGuest::scan_pci(GuestServices& s) {
    // Linux's order: pci_arch_init (arch_initcall) checks mechanism #1, the subsys_initcall scans
    // bus 0, and the drivers (device_initcalls) probe what was found: the platform-pci driver
    // 5853:0001 (drivers/xen links before drivers/ata in drivers/Makefile).
    PciConf1 conf(s);
    if (!conf.check_type1()) return opts_.xen_platform_driver ? -XEN_ENODEV : 0;  // no PCI at all
    pci_devices_ = pci_scan_bus(conf, 0);
    if (opts_.xen_platform_driver) {
        for (std::size_t i = 0; i < pci_devices_.size() && platform_pci_ < 0; ++i) {
            PciDev& d = pci_devices_[i];
            if (d.vendor != XenPlatformPciDriver::kVendor || d.device != XenPlatformPciDriver::kDevice)
                continue;
            if (long r = XenPlatformPciDriver::probe(conf, d)) return r;
            platform_pci_ = static_cast<int>(i);
        }
        if (platform_pci_ < 0) return -XEN_ENODEV;  // the PV drivers have nothing to attach through
    }
    if (opts_.ata_piix) {
        // ata_piix (module_init, drivers/ata links after drivers/xen): piix_init_one on the first
        // 8086:7010. A failed probe leaves the driver unbound; the boot goes on.
        for (PciDev& d : pci_devices_)
            if (d.vendor == AtaPiixHost::kVendor && d.device == AtaPiixHost::kDevice) {
                opts_.ata_piix->probe(s, conf, d);
                break;
            }
    }
    return 0;
}

long XenGuest::bind_interdomain(GuestServices& s, domid_t remote_dom, evtchn_port_t remote_port,
                                evtchn_port_t* local) {
    evtchn_bind_interdomain_t op{};
    op.remote_dom = remote_dom;
    op.remote_port = remote_port;
    long r = s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                         reinterpret_cast<unsigned long>(&op));
    if (r == 0) {
        *local = op.local_port;
        bind_port(op.local_port);  // bind_evtchn_to_irq_chip: "initially bound to vCPU0"
        unmask(s, op.local_port);
    }
    return r;
}

long XenGuest::alloc_unbound(GuestServices& s, domid_t remote_dom, evtchn_port_t* port) {
    evtchn_alloc_unbound_t op{};
    op.dom = DOMID_SELF;
    op.remote_dom = remote_dom;
    long r = s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                         reinterpret_cast<unsigned long>(&op));
    if (r == 0) {
        *port = op.port;
        bind_port(op.port);
        unmask(s, op.port);
    }
    return r;
}

std::optional<unsigned> XenGuest::port_vcpu(evtchn_port_t port) const {
    auto it = port_cpu_.find(port);
    if (it == port_cpu_.end()) return std::nullopt;
    return it->second;
}

void XenGuest::bind_port(evtchn_port_t port) {
    if (!port_cpu_.count(port)) bind_to_cpu(port, 0);
}

// bind_evtchn_to_cpu -> evtchn_2l_bind_to_cpu: the port's bit leaves the old vCPU's mask for the new.
void XenGuest::bind_to_cpu(evtchn_port_t port, unsigned vcpu) {
    constexpr unsigned kBits = sizeof(xen_ulong_t) * 8;
    unbind_port(port);
    cpu_evtchn_mask_.at(vcpu).at(port / kBits) |= xen_ulong_t(1) << (port % kBits);
    port_cpu_[port] = vcpu;
}

// xen_evtchn_port_remove -> evtchn_2l_remove.
void XenGuest::unbind_port(evtchn_port_t port) {
    constexpr unsigned kBits = sizeof(xen_ulong_t) * 8;
    auto it = port_cpu_.find(port);
    if (it == port_cpu_.end()) return;
    cpu_evtchn_mask_.at(it->second).at(port / kBits) &= ~(xen_ulong_t(1) << (port % kBits));
    port_cpu_.erase(it);
}

long XenGuest::bind_ipi(GuestServices& s, unsigned vcpu, evtchn_port_t* port) {
    evtchn_bind_ipi_t op{};
    op.vcpu = vcpu;
    long r =
        s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_ipi, reinterpret_cast<unsigned long>(&op));
    if (r == 0) {
        *port = op.port;
        bind_to_cpu(op.port, vcpu);
    }
    return r;
}

long XenGuest::bind_virq(GuestServices& s, unsigned virq, unsigned vcpu, evtchn_port_t* port) {
    evtchn_bind_virq_t op{};
    op.virq = virq;
    op.vcpu = vcpu;
    long r =
        s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, reinterpret_cast<unsigned long>(&op));
    if (r == 0) {
        *port = op.port;
        bind_to_cpu(op.port, vcpu);
    }
    return r;
}

long XenGuest::set_singleshot_timer(GuestServices& s, std::uint64_t timeout_abs_ns) {
    vcpu_set_singleshot_timer_t t{};
    t.timeout_abs_ns = timeout_abs_ns;
    t.flags = 0;
    return s.hypercall(__HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, s.vcpu_id(),
                       reinterpret_cast<unsigned long>(&t));
}

void XenGuest::unmask(GuestServices& s, evtchn_port_t port) {
    // Linux 6.1 drivers/xen/events/events_2l.c evtchn_2l_unmask.
    constexpr unsigned kBits = sizeof(xen_ulong_t) * 8;
    bind_port(port);  // Linux unmasks only ports it has bound (to vCPU 0 at first)
    shared_info_t* si = shared_info(s);
    const xen_ulong_t bit = xen_ulong_t(1) << (port % kBits);
    const unsigned word = port / kBits;
    bool do_hypercall = false, pending = false;
    if (s.vcpu_id() != port_cpu_.at(port)) {
        do_hypercall = true;
    } else {
        // Clear the mask before checking pending, to avoid a race with an event becoming pending;
        // EVTCHNOP_unmask only acts if the mask bit is set, so re-mask before the hypercall.
        __atomic_fetch_and(&si->evtchn_mask[word], ~bit, __ATOMIC_SEQ_CST);
        pending = (si->evtchn_pending[word] & bit) != 0;
        if (pending && !pv_) {
            __atomic_fetch_or(&si->evtchn_mask[word], bit, __ATOMIC_SEQ_CST);
            do_hypercall = true;
        }
    }
    if (do_hypercall) {
        // "Slow path (hypercall) if this is a non-local port or if this is an hvm domain and an
        // event is pending." The result is ignored, as Linux ignores it.
        evtchn_unmask_t op{};
        op.port = port;
        s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_unmask, reinterpret_cast<unsigned long>(&op));
        return;
    }
    // The equivalent of hw_resend_irq: a pending event raises the selector and the upcall flag.
    if (pending) {
        vcpu_info_t& vi = si->vcpu_info[s.vcpu_id()];
        const xen_ulong_t sel_bit = xen_ulong_t(1) << word;
        if (!(__atomic_fetch_or(&vi.evtchn_pending_sel, sel_bit, __ATOMIC_SEQ_CST) & sel_bit))
            vi.evtchn_upcall_pending = 1;
    }
}

long XenGuest::bind_vcpu(GuestServices& s, evtchn_port_t port, unsigned vcpu) {
    // Linux 6.1 drivers/xen/events/events_base.c xen_rebind_evtchn_to_cpu: "Mask the event while
    // changing the VCPU binding to prevent it being delivered on an unexpected VCPU."
    constexpr unsigned kBits = sizeof(xen_ulong_t) * 8;
    if (vcpu >= vcpus_) return -XEN_ENOENT;
    bind_port(port);
    shared_info_t* si = shared_info(s);
    const xen_ulong_t bit = xen_ulong_t(1) << (port % kBits);
    const bool was_masked = __atomic_fetch_or(&si->evtchn_mask[port / kBits], bit, __ATOMIC_SEQ_CST) & bit;
    evtchn_bind_vcpu_t op{};
    op.port = port;
    op.vcpu = vcpu;
    const long r =
        s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_vcpu, reinterpret_cast<unsigned long>(&op));
    if (r >= 0) bind_to_cpu(port, vcpu);
    if (!was_masked) unmask(s, port);  // do_unmask(EVT_MASK_REASON_TEMPORARY)
    return r;
}

void XenGuest::mask(GuestServices& s, evtchn_port_t port) {
    constexpr unsigned kBits = sizeof(xen_ulong_t) * 8;
    __atomic_fetch_or(&shared_info(s)->evtchn_mask[port / kBits], xen_ulong_t(1) << (port % kBits),
                      __ATOMIC_SEQ_CST);
}

long XenGuest::notify(GuestServices& s, evtchn_port_t port) {
    evtchn_send_t op{};
    op.port = port;
    return s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&op));
}

long XenGuest::close(GuestServices& s, evtchn_port_t port) {
    evtchn_close_t op{};
    op.port = port;
    const long r =
        s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_close, reinterpret_cast<unsigned long>(&op));
    if (r == 0) unbind_port(port);
    return r;
}

void XenGuest::handle_upcall(GuestServices& s) {
    constexpr unsigned kBits = sizeof(xen_ulong_t) * 8;
    ++upcalls_handled_;
    s.compute(s.costs().upcall_dispatch);
    shared_info_t* si = shared_info(s);
    vcpu_info_t& vi = si->vcpu_info[s.vcpu_id()];
    const std::array<xen_ulong_t, kWords>& cpu_mask = cpu_evtchn_mask_.at(s.vcpu_id());
    do {
        vi.evtchn_upcall_pending = 0;
        xen_ulong_t sel = __atomic_exchange_n(&vi.evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
        while (sel) {
            unsigned word = static_cast<unsigned>(__builtin_ctzl(sel));
            sel &= sel - 1;
            // active_evtchns: pending & ~mask & per_cpu(cpu_evtchn_mask, cpu).
            xen_ulong_t pending = si->evtchn_pending[word] & ~si->evtchn_mask[word] & cpu_mask[word];
            while (pending) {
                unsigned bit = static_cast<unsigned>(__builtin_ctzl(pending));
                pending &= pending - 1;
                evtchn_port_t port = word * kBits + bit;
                si->evtchn_pending[word] &= ~(xen_ulong_t(1) << bit);  // clear_evtchn(): ack before handling
                ++events_handled_;
                auto h = handlers_.find(port);
                if (h != handlers_.end()) h->second(s, port);
            }
        }
    } while (vi.evtchn_upcall_pending);
    if (!pv_ && opts_.upcall == GuestUpcall::percpu_vector) s.eoi();
}

bool XenGuest::run_deferred(GuestServices& s) {
    const unsigned me = s.vcpu_id();
    bool ran = false;
    for (;;) {
        std::function<void(GuestServices&)> work;
        if (me < threads_.size() && !threads_[me].work.empty()) {
            work = std::move(threads_[me].work.front());
            threads_[me].work.pop_front();
        } else if (me == 0 && !deferred_.empty()) {
            work = std::move(deferred_.front());
            deferred_.pop_front();
        } else {
            break;
        }
        work(s);
        ran = true;
    }
    return ran;
}

void XenGuest::defer_on(GuestServices& s, unsigned vcpu, std::function<void(GuestServices&)> work) {
    if (vcpu >= threads_.size()) vcpu = 0;
    VcpuThreads& t = threads_[vcpu];
    t.work.push_back(std::move(work));
    if (vcpu == s.vcpu_id() || !t.halted || t.kicked) return;  // it will see the work before halting
    // try_to_wake_up on an idle remote CPU -> smp_send_reschedule -> xen_smp_send_reschedule:
    // EVTCHNOP_send on the target's reschedule IPI channel.
    t.kicked = true;
    if (!t.ipi) {
        evtchn_port_t port = 0;
        if (bind_ipi(s, vcpu, &port) != 0) return;  // no IPI: the work waits for the next wake-up
        t.ipi = port;
        set_port_handler(port, [](GuestServices&, evtchn_port_t) {});  // xen_reschedule_interrupt
        unmask(s, port);
    }
    ++wakeup_ipis_;
    notify(s, *t.ipi);
}

void XenGuest::idle(GuestServices& s) {
    const unsigned me = s.vcpu_id();
    for (;;) {
        if (me < threads_.size()) threads_[me].halted = threads_[me].kicked = false;  // awake
        run_deferred(s);
        if (me < threads_.size()) threads_[me].halted = true;
        s.halt();
    }
}

grant_entry_v1_t* XenGuest::grant_entry(grant_ref_t ref) {
    unsigned frame = ref / kEntriesPerFrame;
    return frame < grant_frames_.size() ? &grant_frames_[frame][ref % kEntriesPerFrame] : nullptr;
}

std::optional<grant_ref_t> XenGuest::grant_access(domid_t domid, std::uint64_t gfn, bool readonly) {
    if (free_grefs_.empty()) return std::nullopt;
    grant_ref_t ref = free_grefs_.back();
    free_grefs_.pop_back();
    grant_entry_v1_t* e = grant_entry(ref);
    e->frame = static_cast<std::uint32_t>(gfn);
    e->domid = domid;
    __atomic_thread_fence(__ATOMIC_RELEASE);  // frame and domid visible before the flags
    e->flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
    return ref;
}

bool XenGuest::end_access(grant_ref_t ref) {
    grant_entry_v1_t* e = grant_entry(ref);
    if (!e) return false;
    // gnttab_end_foreign_access_ref: clear the flags only if Xen is not reading or writing the frame.
    std::uint16_t flags = e->flags;
    if (flags & (GTF_reading | GTF_writing)) return false;
    e->flags = 0;
    free_grefs_.push_back(ref);
    return true;
}

}  // namespace xensim
