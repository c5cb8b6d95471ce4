// Event-channel ping-pong: the smallest complete use of the notification path.
//
// The toolstack (the platform, at build time) allocates an unbound port in the responder for the
// initiator, as libxl does for the console and xenstore channels. The initiator binds to it
// (EVTCHNOP_bind_interdomain), then repeats: note the time, EVTCHNOP_send, halt until the
// responder's reply arrives (or spin until it does, in poll mode), record the round trip, think
// for `think_cycles`. The responder's
// upcall handler answers each event with EVTCHNOP_send on the same channel.
//
// Counts fixed by the protocol for N round trips (tests check them): 2N EVTCHNOP_send; one VMCALL
// exit per send from an HVM/PVH sender; one upcall per send at the receiver (each send finds the
// receiver's upcall flag clear, because its handler cleared it), plus one upcall at the initiator
// for the event Xen raises on its port at bind time. In poll mode each reply reaches a vCPU
// running guest code: one EXTERNAL_INTERRUPT exit per round trip, none with posted interrupts.
#pragma once

#include <cstdint>

#include "frontends/workload.h"
#include "frontends/xen_guest.h"

namespace xensim {

struct PingPongParams {
    domid_t responder_domid = 0;
    evtchn_port_t responder_port = 0;  // allocated by the toolstack in the responder
    std::uint64_t round_trips = 1000;
    Cycles think_cycles = 0;
    // How the initiator waits for the reply: halt until the upcall, or poll (spin in guest mode
    // in slices of poll_cycles), so the reply interrupts a running vCPU.
    bool poll = false;
    Cycles poll_cycles = 100;
};

class EvtchnPingPong {
  public:
    EvtchnPingPong(PingPongParams params, WorkloadStats& stats) : p_(params), stats_(stats) {}

    // On the responder, before its vCPU idles: answer every event on the port.
    void start_responder(XenGuest& guest, GuestServices& s);
    // On the initiator: runs all round trips, then returns.
    void run_initiator(XenGuest& guest, GuestServices& s);

    std::uint64_t replies_sent() const { return replies_sent_; }

  private:
    PingPongParams p_;
    WorkloadStats& stats_;
    std::uint64_t replies_sent_ = 0;
    bool reply_seen_ = false;
};

}  // namespace xensim
