// The XenbusState handshake every PV device follows, for frontends and backends alike.
//
// Each side publishes its state in its own "state" node and watches the peer's (xen/io/xenbus.h,
// enum xenbus_state). The usual life of a device, as Linux's xenbus drivers and blkif.h /
// netif.h describe it:
//   backend:  Initialising -> InitWait (features written) -> Connected (after the frontend is
//             Initialised/Connected) -> Closing -> Closed
//   frontend: Initialising -> Initialised (rings granted, event channel bound, keys written) ->
//             Connected (after the backend is Connected) -> Closing -> Closed
// Reconfiguring / Reconfigured are used by netfront/netback for live changes; Closed ->
// Initialising restarts a device (reconnect after a backend restart). The table below is the set
// of transitions a well-behaved side makes; anything else is a protocol error the caller reports.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sim/core/xen_abi.h"
#include <xen/io/xenbus.h>

namespace xensim {

enum class XenbusSide { frontend, backend };

constexpr std::string_view xenbus_state_name(XenbusState s) {
    switch (s) {
        case XenbusStateUnknown:
            return "Unknown";
        case XenbusStateInitialising:
            return "Initialising";
        case XenbusStateInitWait:
            return "InitWait";
        case XenbusStateInitialised:
            return "Initialised";
        case XenbusStateConnected:
            return "Connected";
        case XenbusStateClosing:
            return "Closing";
        case XenbusStateClosed:
            return "Closed";
        case XenbusStateReconfiguring:
            return "Reconfiguring";
        case XenbusStateReconfigured:
            return "Reconfigured";
    }
    return "Invalid";
}

// Whether `side` may move from `from` to `to` (a write of the same state is always allowed).
constexpr bool xenbus_transition_allowed(XenbusSide side, XenbusState from, XenbusState to) {
    if (from == to) return true;
    // Any live state may start closing; Closing may only finish; Closed may restart.
    if (to == XenbusStateClosing) return from != XenbusStateClosed && from != XenbusStateUnknown;
    if (from == XenbusStateClosing) return to == XenbusStateClosed;
    if (from == XenbusStateClosed) return to == XenbusStateInitialising;
    if (to == XenbusStateClosed) return from == XenbusStateInitialising;  // gave up before connecting
    const bool backend = side == XenbusSide::backend;
    switch (from) {
        case XenbusStateUnknown:
            return to == XenbusStateInitialising;
        // The sides differ only here: the backend waits in InitWait, the frontend in Initialised.
        case XenbusStateInitialising:
            return backend ? to == XenbusStateInitWait
                           : (to == XenbusStateInitialised || to == XenbusStateConnected);
        case XenbusStateInitWait:
            return backend && to == XenbusStateConnected;
        case XenbusStateInitialised:
            return !backend && to == XenbusStateConnected;
        case XenbusStateConnected:
            return to == XenbusStateReconfiguring;
        case XenbusStateReconfiguring:
            return to == XenbusStateReconfigured;
        case XenbusStateReconfigured:
            return to == XenbusStateConnected;
        default:
            return false;
    }
    return false;
}

// The value of a "state" node ("4" -> XenbusStateConnected); Unknown for anything else, as a
// missing or garbled node means to a driver (xenbus_read_driver_state).
constexpr XenbusState parse_xenbus_state(std::string_view v) {
    if (v.empty() || v.size() > 2) return XenbusStateUnknown;
    int n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return XenbusStateUnknown;
        n = n * 10 + (c - '0');
    }
    return n <= XenbusStateReconfigured ? static_cast<XenbusState>(n) : XenbusStateUnknown;
}

// A XenStore node that holds a decimal number, as drivers read it with xenbus_scanf("%u"): the
// value, or nullopt when the node is missing or empty, holds anything but digits, or exceeds `max`.
inline std::optional<std::uint64_t> parse_xenstore_uint(const std::optional<std::string>& v,
                                                        std::uint64_t max = 0xffffffffu) {
    if (!v || v->empty() || v->size() > 19) return std::nullopt;  // 19 digits cannot overflow
    std::uint64_t n = 0;
    for (char c : *v) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (n > max) return std::nullopt;
    return n;
}

// One side's state, with the transitions checked. switch_to returns false (state unchanged) for
// a transition the protocol does not allow.
class XenbusStateMachine {
  public:
    explicit XenbusStateMachine(XenbusSide side, XenbusState initial = XenbusStateInitialising)
        : side_(side), state_(initial) {}
    XenbusState state() const { return state_; }
    bool switch_to(XenbusState to) {
        if (!xenbus_transition_allowed(side_, state_, to)) return false;
        state_ = to;
        return true;
    }
    // What this side should move to when the peer reports `peer` (nullopt-like: its own state
    // when there is nothing to do), following the usual handshake.
    XenbusState next_for_peer(XenbusState peer) const {
        if (peer == XenbusStateClosing && state_ != XenbusStateClosed) return XenbusStateClosing;
        if (peer == XenbusStateClosed && state_ == XenbusStateClosing) return XenbusStateClosed;
        if (side_ == XenbusSide::backend) {
            if (state_ == XenbusStateInitWait &&
                (peer == XenbusStateInitialised || peer == XenbusStateConnected))
                return XenbusStateConnected;
        } else {
            if (state_ == XenbusStateInitialised && peer == XenbusStateConnected) return XenbusStateConnected;
        }
        return state_;
    }

  private:
    XenbusSide side_;
    XenbusState state_;
};

}  // namespace xensim
