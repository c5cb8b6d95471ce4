// The device model: a QEMU-like dom0 process that emulates a guest's devices, serving the ioreqs Xen
// forwards to it.
//
// What is modelled, following QEMU's hw/xen/xen-hvm-common.c (cpu_get_ioreq, cpu_handle_ioreq,
// handle_ioreq, cpu_ioreq_pio, cpu_ioreq_move, handle_buffered_iopage, handle_buffered_io) and Xen's
// xen/include/public/hvm/ioreq.h:
//  * Synchronous ioreqs. The toolstack gives the device model the guest's shared ioreq page (mapped
//    in dom0) and, per guest vCPU, a Xen-attached event channel that the device model binds
//    (EVTCHNOP_bind_interdomain) at start. When one fires, the device model first drains the
//    buffered page (below), then reads that vCPU's ioreq_t once, takes it only in
//    STATE_IOREQ_READY (INPROCESS while it works), dispatches a port access (IOREQ_TYPE_PIO, rep
//    strings included) or a memory access (IOREQ_TYPE_COPY) to the device claiming it, writes the
//    result for a read, sets STATE_IORESP_READY and notifies the port, which wakes the vCPU in Xen.
//    Each wake-up costs device_model_ioreq cycles of dom0 time.
//  * Buffered ioreqs. Writes Xen queued without waiting (Hypervisor::send_buffered_ioreq) sit in
//    the buffered page until the device model drains it: at every synchronous ioreq (before serving
//    it, so ordering with the vCPU's later accesses holds), on the buffered channel's event, and on
//    the 100 ms buffered-io timer (BUFFER_IO_MAX_DELAY). As QEMU does, the buffered port is left
//    masked after its event (Linux's evtchn device masks a port on delivery and QEMU does not
//    re-enable this one) and the timer is armed; while a drain on the timer finds writes the timer
//    is re-armed, and the first one that finds none unmasks the port. So a burst of buffered writes
//    costs one wake-up, then rides on the next synchronous ioreq or timer tick. Each drained write
//    costs device_model_buffered_ioreq.
//  * A device-model timer (the platform raises a dom0 PIRQ at the requested time, as QEMU's timer
//    fd wakes it) serves the buffered-io timer and emulated IDE command completions.
//
// Where it deliberately differs: the handler runs in dom0's event handler, not in a user-space thread
// woken by the kernel (no dom0 context switch is counted for it); the buffered-io timer runs on
// simulated time, where QEMU's runs on the host's real-time clock; rep string accesses (count > 1,
// data_is_ptr; `data` is the guest-physical address of the buffer, which Xen has checked is RAM
// within one page) are handled for the IDE ports only, and each element costs
// device_model_rep_element on top of the wake-up (cpu_ioreq_pio's loop: a port dispatch and a
// guest-memory copy per element); rep MMIO (IOREQ_TYPE_COPY with data_is_ptr) is not handled; an
// access no device claims reads as all ones and writes are dropped (QEMU's unassigned I/O), counted.
// IOREQ_TYPE_PCI_CONFIG ioreqs (cpu_ioreq_config) go to the emulated PCI bus by SBDF.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "models/devices/io_device.h"
#include "models/dom0/backend_kernel.h"
#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

namespace xensim {

class DeviceModel {
  public:
    // QEMU's BUFFER_IO_MAX_DELAY: the buffered-io timer period (100 ms).
    static constexpr std::uint64_t kBufferIoMaxDelayPs = 100'000'000'000ull;

    DeviceModel(domid_t guest, StatsGroup& parent);
    void add_device(IoDevice* device) { devices_.push_back(device); }
    void add_mmio_device(MmioDevice* device) { mmio_devices_.push_back(device); }
    // The device model's timer: it asks for `timer(at_ps)` and the platform raises dom0 PIRQ
    // `timer_pirq` then.
    void attach_timer(unsigned timer_pirq, std::function<void(std::uint64_t at_ps)> timer);

    // An emulated IDE controller. The device model runs every command completion due when its timer
    // fires. After every access and completion the controller's INTRQ lines are forwarded to the
    // guest's ISA IRQs 14 / 15 with XEN_DMOP_set_isa_irq_level.
    struct Ide {
        std::function<std::uint32_t(std::uint16_t, unsigned, std::uint64_t)> read;
        std::function<void(std::uint16_t, unsigned, std::uint32_t, std::uint64_t)> write;
        std::function<bool(std::uint16_t)> claims;
        std::function<bool(unsigned channel, std::uint64_t now_ps)> complete;
        std::function<bool(unsigned channel)> irq_level;
    };
    void attach_ide(Ide ide);
    // The controller asks for complete(channel) at at_ps.
    void schedule_completion(unsigned channel, std::uint64_t at_ps);

    // The emulated PCI bus's configuration access for an SBDF (IOREQ_TYPE_PCI_CONFIG ioreqs).
    struct PciConfig {
        std::function<std::uint32_t(std::uint32_t sbdf, unsigned reg, unsigned size)> read;
        std::function<void(std::uint32_t sbdf, unsigned reg, unsigned size, std::uint32_t value)> write;
    };
    void attach_pci(PciConfig pci) { pci_ = std::move(pci); }

    // The guest's RAM as QEMU reaches it (its map cache of foreign mappings), by guest-physical
    // address: a rep string's data moves through it one element at a time (cpu_ioreq_pio ->
    // read/write_phys_req_item). False, and nothing moved, when a byte is not the guest's RAM.
    using GuestRam = std::function<bool(std::uint64_t gpa, void* buf, std::size_t len, bool to_guest)>;
    void attach_guest_ram(GuestRam ram) { ram_ = std::move(ram); }

    // At dom0 boot (thread context): bind every guest vCPU's ioreq channel and the buffered
    // channel, and take the timer PIRQ.
    struct Pages {
        std::uint64_t ioreq_gfn = 0, bufioreq_gfn = 0;  // in dom0's physmap
        std::vector<evtchn_port_t> guest_ports;         // per guest vCPU
        evtchn_port_t bufioreq_port = 0;                // the guest's end
    };
    void start(BackendKernel& kernel, BackendServices& s, const Pages& pages);

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily ioreqs;              // by kind: "pio_read", "mmio_write", "buffered_mmio_write" ...
        CounterFamily buffered_drains;     // drains that found writes, by trigger: channel, ioreq, timer
        CounterFamily pci_config_by_sbdf;  // PCI_CONFIG ioreqs by function ("0000:00:03.0")
        Counter unclaimed, not_ready, bind_failures, irq_changes, timer_events, busy_ns, rep_outside_ram;
        // Handles on the ioreqs counters of the kinds served per access (CounterFamily::at(slot, label)).
        std::uint64_t *pio_read = nullptr, *pio_write = nullptr, *buffered_pio_write = nullptr,
                      *pio_rep_read = nullptr, *pio_rep_write = nullptr, *mmio_read = nullptr,
                      *mmio_write = nullptr, *buffered_mmio_write = nullptr, *pci_config_read = nullptr,
                      *pci_config_write = nullptr;
    };
    const Stats& stats() const { return stats_; }

  private:
    static constexpr int kBufferedIoTimer = -1;  // a due_ entry that is not an IDE channel

    void serve(BackendServices& s, unsigned vcpu);
    // One access, synchronous or drained from the buffered page; returns the value of a read.
    // `buffered`: drained from the buffered page (counted as "buffered_*_write").
    std::uint64_t handle(const ioreq_t& req, std::uint64_t now_ps, bool buffered);
    std::uint64_t handle_pio(const ioreq_t& req, std::uint64_t now_ps, bool buffered);
    std::uint64_t handle_mmio(const ioreq_t& req, std::uint64_t now_ps, bool buffered);
    std::uint64_t handle_pci_config(const ioreq_t& req);
    // handle_buffered_iopage: applies every queued write; true if there was one.
    bool drain_buffered(BackendServices& s, const char* trigger);
    void on_bufioreq(BackendServices& s);
    void on_timer(BackendServices& s);
    void set_timer(int what, std::uint64_t at_ps);
    void arm_timer();
    void forward_irqs(BackendServices& s);
    IoDevice* device_for(std::uint16_t port) const;
    MmioDevice* mmio_device_for(std::uint64_t gpa) const;

    domid_t guest_;
    StatsGroup group_;
    Stats stats_;
    std::vector<IoDevice*> devices_;
    std::vector<MmioDevice*> mmio_devices_;
    std::uint64_t page_gfn_ = 0, buf_gfn_ = 0;
    std::vector<evtchn_port_t> local_ports_;  // per guest vCPU
    evtchn_port_t buf_local_port_ = 0;
    BackendKernel* kernel_ = nullptr;
    bool has_ide_ = false;
    Ide ide_;
    PciConfig pci_;
    GuestRam ram_;
    unsigned timer_pirq_ = 0;
    std::function<void(std::uint64_t)> timer_;
    // (time, IDE channel or kBufferedIoTimer), sorted by time, equal times in insertion order (as
    // a multimap keeps them); a few entries, so a flat vector: no node allocated per command.
    std::vector<std::pair<std::uint64_t, int>> due_;
    bool timer_armed_ = false;
    std::uint64_t armed_at_ps_ = 0;
    std::array<bool, 2> irq_levels_{};
};

}  // namespace xensim
