// The XenBus handshake of a PV device, with nothing behind it: the state dance every blkfront /
// blkback (and netfront / netback) pair performs over XenStore before any ring is used.
//
// Backend (dom0 kernel): publishes InitWait in its backend directory, then follows the frontend's
// state through a watch (the callback runs as deferred work, as Linux's xenwatch thread runs
// backend_changed / frontend_changed), moving as XenbusStateMachine::next_for_peer says.
// Frontend (guest kernel): finds its backend through device/vbd/<devid>/backend, watches the
// backend's state, writes Initialised once the backend is in InitWait, and Connected once the
// backend is Connected. One operation per device; its latency is the whole handshake.
// What it leaves out until the block path exists: ring-ref, event-channel and feature keys.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frontends/workload.h"
#include "frontends/xenbus_client.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

class XenbusHandshakeBackend {
  public:
    XenbusHandshakeBackend(domid_t guest, unsigned devid);
    // On dom0 (thread context): InitWait, then follow the frontend from a watch callback.
    void start(XenbusClient& dom0_xenbus);
    XenbusState state() const { return fsm_.state(); }

  private:
    void frontend_changed(XenbusClient& xb);
    std::string front_, back_;
    XenbusStateMachine fsm_{XenbusSide::backend};
};

class XenbusHandshakeFrontend {
  public:
    XenbusHandshakeFrontend(std::vector<unsigned> devids, WorkloadStats& stats)
        : devids_(std::move(devids)), stats_(stats) {}
    // On the guest (thread context): connect every device in turn.
    void run(XenbusClient& xb, GuestServices& s);

  private:
    bool connect(XenbusClient& xb, unsigned devid);
    std::vector<unsigned> devids_;
    WorkloadStats& stats_;
};

}  // namespace xensim
