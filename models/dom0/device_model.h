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
// Where it deliberately differs: the handler runs in dom0's event handler, not in a user-space thread
// woken by the kernel (no dom0 context switch is counted for it); rep string accesses (count > 1,
// data_is_ptr) and MMIO / PCI config ioreqs are not handled yet; an access no device claims reads as
// all ones and writes are dropped (QEMU's unassigned I/O), counted.
#pragma once

#include <cstdint>
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

    // At dom0 boot (thread context): bind every guest vCPU's ioreq channel.
    void start(BackendKernel& kernel, BackendServices& s, std::uint64_t ioreq_page_gfn,
               const std::vector<evtchn_port_t>& guest_ports);

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily ioreqs;  // by "pio_read" / "pio_write"
        Counter unclaimed, not_ready, bind_failures;
    };
    const Stats& stats() const { return stats_; }

  private:
    void serve(BackendServices& s, unsigned vcpu);
    IoDevice* device_for(std::uint16_t port) const;

    domid_t guest_;
    StatsGroup group_;
    Stats stats_;
    std::vector<IoDevice*> devices_;
    std::uint64_t page_gfn_ = 0;
    std::vector<evtchn_port_t> local_ports_;  // per guest vCPU
};

}  // namespace xensim
