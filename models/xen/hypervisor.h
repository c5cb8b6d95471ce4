// The hypervisor: domains, vCPUs, pCPUs and scheduler, the hypercall table, and the engines
// (grant table, event channels) wrapped with time, stats and trace.
//
// What is modelled: Xen's hypercall entry for HVM/PVH guests (VMCALL exit) and PV guests (no
// exit), dispatch through a const table {number, name, sub-op names, handler} with per-op and
// per-domain counters, and the hypercalls the PV I/O paths need: event_channel_op,
// grant_table_op, sched_op (yield, block, shutdown), hvm_op (set_param for
// HVM_PARAM_CALLBACK_IRQ; get_param for the parameters Xen lets a guest read — callback, store
// and console; set_evtchn_upcall_vector), memory_op (XENMEM_add_to_physmap for
// shared_info and grant frames), xen_version, vcpu_op (is_up), callback_op (PV event callback).
// Anything else returns -ENOSYS as Xen does for an unknown hypercall; HVM guests get -ENOSYS
// for hypercalls absent from Xen's hvm_hypercall_table (callback_op).
// Each handler's cost is the cost model's per-op figure plus what the engine reports it did
// (grant maps, unmaps, TLB flushes, copied bytes; IPIs sent to deliver events).
//
// Fidelity limits: hypercall arguments are host pointers into the guest's own structures; a null
// pointer gets -EFAULT, but no other bad address can be expressed; no continuations/preemption of long
// hypercalls; only the callback types named above are modelled (others get -EOPNOTSUPP, documented in
// docs/architecture.md).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include <systemc>

#include "models/xen/domain_table.h"
#include "models/xen/wait_ends.h"
#include "models/xen/event_channels.h"
#include "models/xen/grant_table.h"
#include "models/xen/ioreq_routing.h"
#include "models/xen/scheduler.h"
#include "models/xen/vcpu.h"
#include "sim/core/cost_model.h"
#include "sim/core/stats.h"
#include "sim/core/trace.h"

namespace xensim {

struct HypervisorParams {
    unsigned pcpus = 2;
    SchedulerParams scheduler;
    GrantTableLimits grant_table;
    bool posted_interrupts = false;
    ApicVirtualization apic_virtualization = ApicVirtualization::off;
    // Temporal decoupling (docs/temporal-decoupling.md): work that ends before anything else can
    // happen runs without a SystemC wait. Reports are identical either way; off = every wait.
    bool fast_paths = true;
};

// How often each fast path was taken (not in the stats: a report must not depend on fast_paths).
struct FastPathCounts {
    std::uint64_t run_ahead = 0;    // Vcpu::run_guest stretches run ahead of SystemC time
    std::uint64_t work_ahead = 0;   // Vcpu::hypervisor_work run ahead of SystemC time
    std::uint64_t idle_switch = 0;  // switches to idle completed early (a run-ahead, a borrow)
    std::uint64_t borrowed = 0;     // switches to a vCPU completed early, its code run by a carrier
};

struct DomainSpec {
    DomId id;
    std::string name;
    DomainType type;
    unsigned vcpus;
    std::uint64_t memory_pages;
    unsigned weight;
    std::vector<unsigned> affinity;  // empty: any pCPU
};

using HypercallArgs = std::array<unsigned long, 5>;

class Hypervisor : public sc_core::sc_module {
    friend class Vcpu;  // running_vcpu_

  public:
    Hypervisor(sc_core::sc_module_name name, const HypervisorParams& params, const CostModel& cost,
               const Clock& clock, Tracer& tracer, StatsGroup& root);
    ~Hypervisor() override;

    // The time before which nothing but the running process can act: SystemC's next pending
    // activity (the current time when something is pending now) or the run's stop time, whichever
    // is first. Work ending strictly before it cannot interleave with anything (sim_time.h).
    std::uint64_t horizon_ps() const;
    // Whether `end_ps` is strictly before the horizon. A "no" may come from the last horizon
    // computed, while it is still in the future: activity that was pending then is pending now or
    // was cancelled (a wait's timeout), so the true horizon is at most later — a conservative
    // answer, never a wrong "yes". A "yes" is always computed afresh.
    // Whether a run-ahead ending at `end_ps` ends strictly before the horizon. A switch to idle
    // that is the horizon, and the only activity then, is completed early on the way
    // (Scheduler::switch_ending_at).
    bool before_horizon(std::uint64_t end_ps);
    // The switches ending at `at_ps` (see Scheduler::early_switches), withdrawn from SystemC, when
    // they are the next activity anywhere and nothing else is pending until then; else nullptr
    // (nothing withdrawn). The caller completes them at `at_ps`.
    const std::vector<PhysicalCpu*>* claim_early_switches(std::uint64_t at_ps, bool to_parked_vcpu);
    void set_stop_ps(std::uint64_t ps) {
        stop_ps_ = ps;
        sim_time::activity_changed();
    }
    FastPathCounts& fast_path_counts() { return fast_path_counts_; }

    DomainRecord& create_domain(const DomainSpec& spec);
    Vcpu& vcpu(DomId dom, unsigned id);
    const std::vector<Vcpu*>& vcpus(DomId dom);

    // Makes every vCPU runnable at time zero (domains are built, guests start).
    void start();

    // The hypercall instruction of a guest running on `v` (VMCALL for HVM/PVH, syscall for PV).
    long hypercall(Vcpu& v, unsigned op, const HypercallArgs& args);

    // Toolstack actions at domain-build time (not charged, as they happen before the guest runs):
    // EVTCHNOP_alloc_unbound in `dom` for `remote`, as libxl does for console and xenstore.
    evtchn_port_t toolstack_alloc_unbound(DomId dom, DomId remote);
    // A device interrupt: at simulated time `at_ps` (not before now), PIRQ `pirq` of `dom` is
    // raised (a physical device's completion interrupt routed to the domain that drives it, e.g.
    // dom0's disk). Interrupts due at the same time are raised in the order they were scheduled.
    void raise_pirq_at(DomId dom, unsigned pirq, std::uint64_t at_ps);
    // An HVM parameter the toolstack sets at build (HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN ...).
    void toolstack_set_hvm_param(DomId dom, unsigned index, std::uint64_t value);

    // --- ioreq servers: emulated devices in a device model (Xen's hvm/ioreq.c) ---
    // What the toolstack sets up for a device model (XEN_DMOP_create_ioreq_server,
    // XEN_DMOP_map_io_range_to_ioreq_server, and the ioreq page the DM acquires): one server per
    // guest, the shared ioreq page (a Xen page, one ioreq_t per guest vCPU, xen/hvm/ioreq.h) placed
    // in the DM domain's physmap at dm_gfn, and per guest vCPU a Xen-attached event channel in the
    // guest offered to the DM, which binds it with EVTCHNOP_bind_interdomain.
    // Every server also gets the buffered ioreq page (buffered_iopage_t, at dm_buf_gfn) and its
    // Xen-attached channel (bufioreq_port), as QEMU asks for with HVM_IOREQSRV_BUFIOREQ_ATOMIC.
    struct IoreqServer : IoreqRanges {  // port ranges and PCI SBDFs (models/xen/ioreq_routing.h)
        DomId guest = 0, dm = 0;
        std::uint64_t dm_gfn = 0, dm_buf_gfn = 0;
        std::vector<evtchn_port_t> guest_ports;
        evtchn_port_t bufioreq_port = 0;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> mmio_ranges;  // inclusive
    };
    const IoreqServer& create_ioreq_server(DomId guest, DomId dm,
                                           std::vector<std::pair<std::uint16_t, std::uint16_t>> port_ranges);
    // XEN_DMOP_map_io_range_to_ioreq_server with XEN_DMOP_IO_RANGE_PCI for one function (QEMU's
    // xen_map_pcidev when it realizes a PCI device): configuration cycles for that SBDF go to the
    // guest's server as IOREQ_TYPE_PCI_CONFIG.
    void map_pcidev_to_ioreq_server(DomId guest, std::uint32_t sbdf);
    bool ioreq_claims_port(DomId guest, std::uint16_t port) const;
    // An HVM guest's IN / OUT (size 1, 2, 4; not a rep string), as Xen's hvmemul_do_io handles it
    // (the rules are in models/xen/ioreq_routing.h): update the domain's CF8 latch
    // (hvm_access_cf8), choose the ioreq (a PCI config cycle for 0xCFC-0xCFF with the latch enabled,
    // IOREQ_TYPE_PCI_CONFIG to the server that mapped the SBDF; else IOREQ_TYPE_PIO to the server
    // whose ranges hold the port), then send_ioreq. Returns the value of a read (the written value
    // for a write), or nullopt when no server is selected: Xen then completes the access with its
    // null handler (reads all ones, writes dropped), which the caller counts as unclaimed I/O.
    std::optional<std::uint64_t> emulate_pio(Vcpu& v, std::uint16_t port, unsigned size, bool read,
                                             std::uint32_t value);
    std::uint32_t pci_cf8(DomId guest) const;
    // XEN_DMOP_map_io_range_to_ioreq_server with XEN_DMOP_IO_RANGE_MEMORY: guest-physical
    // [first, last] is emulated by the guest's server (the p2m has no RAM there: p2m_mmio_dm).
    void map_mmio_range(DomId guest, std::uint64_t first, std::uint64_t last);
    bool ioreq_claims_mmio(DomId guest, std::uint64_t gpa) const;
    // Xen's own standard-VGA intercept (xen/arch/x86/hvm/stdvga.c), on for guests the toolstack
    // gives an emulated VGA (XEN_X86_EMU_VGA): a single, direct write (count 1, no data pointer)
    // entirely inside the VGA window 0xA0000-0xBFFFF is sent as a buffered ioreq; everything else
    // in the window (reads, rep writes) goes the synchronous way.
    void enable_stdvga(DomId guest) { stdvga_.insert(guest); }
    bool stdvga_accepts(DomId guest, std::uint64_t gpa, unsigned size) const;
    // From a guest vCPU's exit handler (hvm_send_ioreq): fill the vCPU's ioreq slot, notify the
    // device model, and wait descheduled until it answers (STATE_IORESP_READY); ioreq_roundtrip is
    // charged. Returns the data the device model wrote (the value of a read).
    // The virtual I/O APIC's ISA lines of an HVM guest (XEN_DMOP_set_isa_irq_level): a rising edge
    // of ISA IRQ n injects vector kIsaVectorBase + n on vCPU 0 (legacy ISA interrupts are edge
    // triggered; Linux maps ISA IRQ n to vector 0x30 + n, ISA_IRQ_VECTOR).
    static constexpr std::uint8_t kIsaVectorBase = 0x30;
    void set_isa_irq_level(DomId guest, unsigned isa_irq, bool level);
    // A rep string access is one ioreq with its count and data_is_ptr; the pointer is a host address
    // in the guest's memory (as hypercall arguments are here; Xen passes a guest physical address).
    std::uint64_t send_ioreq(Vcpu& v, std::uint8_t type, std::uint64_t addr, unsigned size,
                             std::uint32_t count, bool read, std::uint64_t data, bool data_is_ptr = false);
    // A write that needs no reply (ioreq_send_buffered, xen/common/ioreq.c): appended to the
    // server's buffered page as one buf_ioreq_t (two for 8 bytes), the write pointer advanced and the
    // buffered channel notified; the vCPU does not wait (ioreq_buffered is charged). False, with
    // nothing written, when Xen cannot buffer it (address above 1 MiB, which buf_ioreq_t's 20-bit
    // field cannot hold; a size other than 1, 2, 4, 8; the page full): the caller then sends the
    // write synchronously, as hvmemul_do_io falls back to hvm_send_ioreq.
    bool send_buffered_ioreq(Vcpu& v, std::uint8_t type, std::uint64_t addr, unsigned size,
                             std::uint64_t data);

    const HypervisorParams& params() const { return params_; }
    const CostModel& cost() const { return cost_; }
    const Clock& clock() const { return clock_; }
    Tracer& tracer() { return tracer_; }
    Scheduler& scheduler() { return *scheduler_; }
    DomainTable& domains() { return domains_; }
    GrantTable& grant_table() { return *grant_table_; }
    EventChannels& event_channels() { return *event_channels_; }
    StatsGroup& stats_group() { return group_; }
    // The stats group of a domain ("dom1"), parent of its vCPUs' groups.
    StatsGroup& domain_stats(DomId dom) { return *domain_group_by_id_.at(dom); }

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily hypercalls, hypercall_errors;
        Counter ipis_sent, device_irqs, ioreqs, isa_irqs, pci_config_cycles, buffered_ioreqs, buffered_full;
    };

  private:
    struct HypercallEntry;
    static const HypercallEntry* find_hypercall(unsigned op);

    long do_event_channel_op(Vcpu& v, const HypercallArgs& a);
    long do_grant_table_op(Vcpu& v, const HypercallArgs& a);
    long do_sched_op(Vcpu& v, const HypercallArgs& a);
    long do_hvm_op(Vcpu& v, const HypercallArgs& a);
    long do_memory_op(Vcpu& v, const HypercallArgs& a);
    long do_xen_version(Vcpu& v, const HypercallArgs& a);
    long do_vcpu_op(Vcpu& v, const HypercallArgs& a);
    long do_callback_op(Vcpu& v, const HypercallArgs& a);
    long do_dm_op(Vcpu& v, const HypercallArgs& a);
    void on_upcall_kick(DomId dom, unsigned vcpu);

    HypervisorParams params_;
    std::uint64_t stop_ps_ = ~std::uint64_t{0};
    Vcpu* running_vcpu_ = nullptr;  // whose code runs now (Vcpu::run_code), on whichever carrier
    // horizon_ps()'s last answer and what it holds for: one process activation (SystemC time,
    // delta, process) while sim_time::activity_epoch stays the same.
    struct HorizonKey {
        std::uint64_t time, delta, epoch;
        const void* process;
        bool operator==(const HorizonKey& o) const {
            return time == o.time && delta == o.delta && epoch == o.epoch && process == o.process;
        }
    };
    mutable HorizonKey horizon_key_{~std::uint64_t{0}, 0, 0, nullptr};
    mutable std::uint64_t horizon_kept_ = 0;
    std::uint64_t pending_activity_ps() const;  // SystemC's answer, asked each time
    sc_core::sc_simcontext* const simc_ = sc_core::sc_get_curr_simcontext();  // time read inline
    FastPathCounts fast_path_counts_;
    const CostModel& cost_;
    const Clock& clock_;
    Tracer& tracer_;
    StatsGroup& root_;
    StatsGroup group_;

  public:
    Stats stats;

  private:
    StatsGroup gnttab_group_, evtchn_group_;
    DomainTable domains_;
    std::unique_ptr<Scheduler> scheduler_;
    std::unique_ptr<GrantTable> grant_table_;
    std::unique_ptr<EventChannels> event_channels_;
    std::vector<std::unique_ptr<StatsGroup>> domain_groups_;
    std::map<DomId, StatsGroup*> domain_group_by_id_;
    std::vector<std::unique_ptr<Vcpu>> vcpu_storage_;
    std::map<DomId, std::vector<Vcpu*>> vcpus_;
    // Interned "op/sub-op" names and exit causes: no allocation per hypercall, and nothing owned
    // by a vCPU thread's stack while it blocks inside one (SystemC never unwinds those stacks).
    struct HypercallNames {
        std::string name, cause;
        Cycles op_cost = 0;  // cost_.hypercall_op_cost(entry name): the cost model is fixed for a run
        unsigned index = 0;  // dense, in creation order: Vcpu::hypercall_counter's key
        std::uint64_t* count = nullptr;  // stats.hypercalls under `name`, resolved on first count
    };
    HypercallNames& names_for(unsigned op, unsigned long cmd);
    HypercallNames& resolve_names(unsigned op, unsigned long cmd);  // names_for without its memo
    // Hypercall numbers below NR_hypercalls (64) get "unknown_<op>"; from 64 up they share "unknown".
    static constexpr unsigned kUnknownHypercallLabels = 64;
    std::map<std::pair<unsigned, const char*>, HypercallNames> names_;  // (op, sub-op name): bounded
    // The last (cmd, names) resolved per hypercall number below kUnknownHypercallLabels: a guest
    // repeats the same call (dom0's EVTCHNOP_send per ioreq), so most calls skip the table and map.
    struct LastNames {
        unsigned long cmd = 0;
        HypercallNames* names = nullptr;
    };
    std::array<LastNames, 64> last_names_{};

  public:
    std::size_t hypercall_name_cache_size() const { return names_.size(); }  // for tests of the bound

  private:
    std::map<DomId, std::array<std::uint64_t, HVM_NR_PARAMS>> hvm_params_;
    std::map<DomId, IoreqServer> ioreq_servers_;                // by guest
    std::map<DomId, std::uint32_t> pci_cf8_;                    // d->arch.hvm.pci_cf8, by guest
    std::map<std::pair<DomId, unsigned>, bool> isa_levels_;     // (guest, ISA IRQ) -> line level
    std::map<DomId, std::unique_ptr<XenPage>> ioreq_pages_;     // by guest
    std::map<DomId, std::unique_ptr<XenPage>> bufioreq_pages_;  // by guest
    std::set<DomId> stdvga_;
    struct DeviceIrq {
        std::uint64_t at_ps, seq;
        DomId dom;
        unsigned pirq;
        bool operator>(const DeviceIrq& o) const { return at_ps != o.at_ps ? at_ps > o.at_ps : seq > o.seq; }
    };
    void fire_device_irqs();
    std::priority_queue<DeviceIrq, std::vector<DeviceIrq>, std::greater<DeviceIrq>> device_irqs_;
    // VCPUOP_set_singleshot_timer (xen/common/domain.c, do_vcpu_op): one one-shot timer per vCPU
    // whose expiry raises VIRQ_TIMER on that vCPU (vcpu_singleshot_timer_fn). Re-arming or
    // VCPUOP_stop_singleshot_timer replaces the armed one: an entry fires only if its generation is
    // still the vCPU's armed generation.
    struct VcpuTimer {
        std::uint64_t at_ps, seq;
        DomId dom;
        unsigned vcpu;
        std::uint64_t generation;
        bool operator>(const VcpuTimer& o) const { return at_ps != o.at_ps ? at_ps > o.at_ps : seq > o.seq; }
    };
    void fire_vcpu_timers();
    // Timed waits of vCPU code (Vcpu::carrier_main) end by SystemC's own timeout; when several
    // end at the same picosecond (wait_ends_ counts them), each defers itself by a delta
    // (defer_wake) and one method lets them go on in vCPU creation order (fire_wakeups).
    WaitEnds wait_ends_;
    std::vector<unsigned> deferred_;  // Vcpu::index_ of the deferred, this delta
    void defer_wake(Vcpu& v);
    void fire_wakeups();
    sc_core::sc_event wakeup_ev_;
    std::priority_queue<VcpuTimer, std::vector<VcpuTimer>, std::greater<VcpuTimer>> vcpu_timers_;
    std::map<std::pair<DomId, unsigned>, std::uint64_t> vcpu_timer_armed_;  // generation; 0 = none
    std::uint64_t vcpu_timer_seq_ = 0;
    sc_core::sc_event vcpu_timer_ev_;
    std::uint64_t device_irq_seq_ = 0;
    sc_core::sc_event device_irq_ev_;
    Vcpu* current_ = nullptr;  // the vCPU whose hypercall is being handled
    unsigned pending_ipis_ = 0;
};

}  // namespace xensim
