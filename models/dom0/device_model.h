// The device model: a QEMU-like dom0 process that emulates a guest's devices, serving the ioreqs Xen
// forwards to it.
//
// What is modelled, following QEMU's hw/xen/xen-hvm-common.c (cpu_handle_ioreq, handle_ioreq,
// cpu_ioreq_pio) and Xen's xen/include/public/hvm/ioreq.h: the toolstack gives the device model the
// guest's shared ioreq page (mapped in dom0) and, per guest vCPU, a Xen-attached event channel that
// the device model binds (EVTCHNOP_bind_interdomain) at start. When one fires, the device model reads
// that vCPU's ioreq_t once, takes it only in STATE_IOREQ_READY (INPROCESS while it works), dispatches
// a port access (IOREQ_TYPE_PIO) to the device claiming the port, writes the result for a read, sets
// STATE_IORESP_READY and notifies the port, which wakes the vCPU in Xen. Each ioreq costs
// device_model_ioreq cycles of dom0 time (QEMU waking on the event-channel device and dispatching).
//
// PCI configuration: the PCI bus's 0xCF8-0xCFF ports are an IoDevice like any other (the 0xCF8
// address write Xen forwards as IOREQ_TYPE_PIO lands there), and an IOREQ_TYPE_PCI_CONFIG ioreq
// (Xen's conversion of a 0xCFC-0xCFF access, see Hypervisor::emulate_pio) is served by
// serve_pci_config as QEMU's cpu_ioreq_config does: SBDF = addr >> 32, register = the low 32 bits,
// size 1/2/4 and count 1 only (QEMU aborts on anything else; here it is counted as unsupported and
// reads all ones), one configuration read or write of that function (pci_host_config_read_common /
// _write_common).
//
// Where it deliberately differs: the handler runs in dom0's event handler, not in a user-space thread
// woken by the kernel (no dom0 context switch is counted for it); rep string accesses go only to the
// IDE controller; MMIO and buffered ioreqs are not handled yet; an access no device claims reads as
// all ones and writes are dropped (QEMU's unassigned I/O), counted.
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
    DeviceModel(domid_t guest, StatsGroup& parent);
    void add_device(IoDevice* device) { devices_.push_back(device); }

    // An emulated IDE controller. Its command completions need a timer: the device model asks for
    // `timer(at_ps)` (the platform raises a dom0 PIRQ then, as QEMU's timer fd wakes it) and runs
    // every completion due when it fires. After every access and completion the controller's
    // INTRQ lines are forwarded to the guest's ISA IRQs 14 / 15 with XEN_DMOP_set_isa_irq_level.
    struct Ide {
        std::function<std::uint32_t(std::uint16_t, unsigned, std::uint64_t)> read;
        std::function<void(std::uint16_t, unsigned, std::uint32_t, std::uint64_t)> write;
        std::function<bool(std::uint16_t)> claims;
        std::function<bool(unsigned channel, std::uint64_t now_ps)> complete;
        std::function<bool(unsigned channel)> irq_level;
    };
    void attach_ide(Ide ide, unsigned timer_pirq, std::function<void(std::uint64_t at_ps)> timer);
    // The controller asks for complete(channel) at at_ps.
    void schedule_completion(unsigned channel, std::uint64_t at_ps);

    // The emulated PCI bus's configuration access for an SBDF (IOREQ_TYPE_PCI_CONFIG ioreqs).
    struct PciConfig {
        std::function<std::uint32_t(std::uint32_t sbdf, unsigned reg, unsigned size)> read;
        std::function<void(std::uint32_t sbdf, unsigned reg, unsigned size, std::uint32_t value)> write;
    };
    void attach_pci(PciConfig pci) { pci_ = std::move(pci); }

    // At dom0 boot (thread context): bind every guest vCPU's ioreq channel.
    void start(BackendKernel& kernel, BackendServices& s, std::uint64_t ioreq_page_gfn,
               const std::vector<evtchn_port_t>& guest_ports);

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily ioreqs;  // by "pio_read" / "pio_write" / "pci_config_read" / "pci_config_write" ...
        CounterFamily pci_config_by_sbdf;  // PCI_CONFIG ioreqs by function ("0000:00:03.0")
        Counter unclaimed, not_ready, bind_failures, irq_changes, timer_events;
    };
    const Stats& stats() const { return stats_; }

  private:
    void serve(BackendServices& s, unsigned vcpu);
    std::uint64_t serve_pci_config(const ioreq_t& req);
    void on_timer(BackendServices& s);
    void forward_irqs(BackendServices& s);
    IoDevice* device_for(std::uint16_t port) const;

    domid_t guest_;
    StatsGroup group_;
    Stats stats_;
    std::vector<IoDevice*> devices_;
    std::uint64_t page_gfn_ = 0;
    std::vector<evtchn_port_t> local_ports_;  // per guest vCPU
    bool has_ide_ = false;
    Ide ide_;
    PciConfig pci_;
    unsigned timer_pirq_ = 0;
    std::function<void(std::uint64_t)> timer_;
    std::multimap<std::uint64_t, unsigned> due_;  // completion time -> channel
    std::array<bool, 2> irq_levels_{};
};

}  // namespace xensim
