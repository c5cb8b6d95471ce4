#include "frontends/evtchn_pingpong.h"

namespace xensim {

void EvtchnPingPong::start_responder(XenGuest& guest, GuestServices& s) {
    guest.set_port_handler(p_.responder_port, [this, &guest](GuestServices& vs, evtchn_port_t port) {
        ++replies_sent_;
        guest.notify(vs, port);
    });
    guest.unmask(s, p_.responder_port);
}

void EvtchnPingPong::run_initiator(XenGuest& guest, GuestServices& s) {
    evtchn_port_t local = 0;
    long r = guest.bind_interdomain(s, p_.responder_domid, p_.responder_port, &local);
    if (r) {
        stats_.failures.inc();
        stats_.finish(s.now_ns());
        return;
    }
    guest.set_port_handler(local, [this](GuestServices&, evtchn_port_t) { reply_seen_ = true; });
    // Xen raises our port once at bind time; take that event before the first round trip.
    s.compute(100);
    stats_.start(s.now_ns());
    for (std::uint64_t i = 0; i < p_.round_trips; ++i) {
        reply_seen_ = false;
        std::uint64_t t0 = s.now_ns();
        if (guest.notify(s, local)) {
            stats_.failures.inc();
            break;
        }
        while (!reply_seen_) {
            if (p_.poll)
                s.compute(p_.poll_cycles);
            else
                s.halt();
        }
        stats_.complete_op(s.now_ns() - t0);
        if (p_.think_cycles) s.compute(p_.think_cycles);
    }
    stats_.finish(s.now_ns());
}

}  // namespace xensim
