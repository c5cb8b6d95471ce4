// The wire on the simulation's clock: frames handed to one end come out of the other at the time
// the Wire engine computes.
//
// The problem. The Wire engine (models/net/wire.h) says when a frame's last bit arrives; something
// has to hand the frame to the far end at that simulated instant, in a deterministic order, while
// the sender carries on. WireLink is that sc_module, the way gem5's EtherLink wraps its link
// model: `send(direction, frame)` transmits at sc_time_stamp() and schedules the delivery; the
// sink of that direction (dom0's NIC glue for `to_host`, the remote peer for `to_peer`) is called
// with the frame at its arrival time. Frames the engine drops are never delivered (its counters
// say why).
//
// What is modelled: one SC_METHOD, sensitive to one sc_event, delivers every frame whose arrival
// time has come, earliest first; frames arriving at the same picosecond (the two directions, or a
// zero-length line) are delivered in the order they were sent. The sink runs inside that method:
// it must not wait (it may call send() again, e.g. an echoing peer). Simulated time is integer
// picoseconds (SystemC's default 1 ps resolution, as the rest of xensim uses it).
//
// Deliberate differences: none beyond the engine's. The frame is moved, never copied.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include <systemc>

#include "models/net/wire.h"

namespace xensim {

class WireLink : public sc_core::sc_module {
  public:
    using Sink = std::function<void(EthernetFrame&&)>;

    // Counters go in a child of `parent` named after the module (e.g. "wire0.to_peer.frames").
    WireLink(sc_core::sc_module_name name, const WireParams& params, StatsGroup& parent);

    // Where frames of a direction are delivered; must be set before the first send() that way.
    void set_sink(WireDirection dir, Sink sink);
    // Transmits at sc_time_stamp(); returns the engine's answer (ok() false: dropped, not delivered).
    WireTransmit send(WireDirection dir, EthernetFrame frame);

    Wire& wire() { return wire_; }
    std::size_t in_flight() const { return pending_.size(); }

  private:
    struct Pending {
        WireDirection dir;
        EthernetFrame frame;
    };
    void deliver();
    void arm(std::uint64_t now_ps);

    StatsGroup group_;
    Wire wire_;
    std::array<Sink, 2> sinks_;
    std::map<std::pair<std::uint64_t, std::uint64_t>, Pending> pending_;  // (arrival_ps, send seq)
    std::uint64_t seq_ = 0;
    sc_core::sc_event arrival_ev_;
};

}  // namespace xensim
