// What a block workload needs of a guest's disk driver: the PV driver (Blkfront) and the emulated
// IDE driver (AtaPiix) both offer it, so one fio workload can compare them on the same disk model.
#pragma once

#include <cstdint>
#include <functional>

#include "frontends/blkif_ring_frontend.h"  // BlockIo
#include "frontends/guest_services.h"

namespace xensim {

class XenbusClient;

class BlockDevice {
  public:
    using Completion = std::function<void(GuestServices&, std::uint64_t id, std::int16_t status)>;
    virtual ~BlockDevice() = default;

    // Bring the device up in thread context on vCPU 0 (PV: the XenBus handshake; IDE: the probe).
    virtual bool connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) = 0;
    virtual bool connected() const = 0;
    virtual std::uint64_t sectors() const = 0;
    virtual bool read_only() const = 0;
    virtual bool feature_flush() const = 0;
    virtual unsigned queue_for_vcpu(unsigned vcpu) const = 0;
    // Queue an I/O; false when the device has no room now (retry after a completion).
    virtual bool submit(GuestServices& s, unsigned q, const BlockIo& io) = 0;
    // Publish what was queued (PV: push and notify if needed; IDE: nothing, commands start at once).
    virtual void kick(GuestServices& s, unsigned q) = 0;

    // Called for each completed I/O, in interrupt context. Status is BLKIF_RSP_*.
    Completion on_complete;
};

}  // namespace xensim
