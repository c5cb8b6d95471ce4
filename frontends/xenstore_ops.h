// XenStore operations from a guest: what every PV driver's negotiation costs, request by request.
//
// The domain's kernel xenbus client (an HVM guest finds its ring through HVM_PARAM_STORE_PFN /
// _EVTCHN; dom0's kernel has a local ring to its own xenstored) performs `ops`
// operations on nodes under its own data/ directory (a relative path, resolved by xenstored
// against /local/domain/<id>): `write` writes a value of `value_bytes`, `read` reads back what a
// first write put there, `write_read` writes then reads back and compares (a mismatch is a
// failure), `write_watch` watches data/xsops (taking the event the watch fires at once), then
// writes and waits for the WATCH_EVENT naming the written node. One operation's latency is the
// simulated time of its request(s) (and, for write_watch, until the event arrived).
//
// Per XenStore request, by protocol: the guest notifies once after writing the request
// (EVTCHNOP_send, a VMCALL exit), halts until xenstored's notification, and notifies once after
// taking the reply off the ring (so xenstored may continue its output).
#pragma once

#include <cstdint>

#include "frontends/workload.h"
#include "frontends/xen_guest.h"
#include "frontends/xenbus_client.h"

namespace xensim {

struct XenstoreOpsParams {
    enum class Mode { read, write, write_read, write_watch };
    Mode mode = Mode::write_read;
    std::uint64_t ops = 100;
    unsigned value_bytes = 16;
    unsigned keys = 8;  // distinct nodes written round-robin
};

class XenstoreOps {
  public:
    XenstoreOps(XenstoreOpsParams params, WorkloadStats& stats) : p_(params), stats_(stats) {}
    // `xb` is the kernel's connected xenbus client.
    void run(XenbusClient& xb, GuestServices& s);
    std::uint64_t requests() const { return requests_; }
    std::uint64_t watch_events() const { return watch_events_; }

  private:
    XenstoreOpsParams p_;
    WorkloadStats& stats_;
    std::uint64_t requests_ = 0;
    std::uint64_t watch_events_ = 0;
};

}  // namespace xensim
