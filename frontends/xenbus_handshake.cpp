#include "frontends/xenbus_handshake.h"

#include <xen/io/xs_wire.h>

namespace xensim {

namespace {

std::string state_text(XenbusState s) { return std::to_string(static_cast<int>(s)); }

XenbusState parse_state(const std::optional<std::string>& v) {
    return v ? parse_xenbus_state(*v) : XenbusStateUnknown;
}

}  // namespace

XenbusHandshakeBackend::XenbusHandshakeBackend(domid_t guest, unsigned devid)
    : front_("/local/domain/" + std::to_string(guest) + "/device/vbd/" + std::to_string(devid)),
      back_("/local/domain/0/backend/vbd/" + std::to_string(guest) + "/" + std::to_string(devid)) {}

void XenbusHandshakeBackend::start(XenbusClient& xb) {
    if (fsm_.switch_to(XenbusStateInitWait)) xb.write(back_ + "/state", state_text(fsm_.state()));
    xb.watch(front_ + "/state", "backend:" + back_,
             [this, &xb](const XenbusWatchEvent&) { frontend_changed(xb); });
}

void XenbusHandshakeBackend::frontend_changed(XenbusClient& xb) {
    XenbusState peer = parse_state(xb.read(front_ + "/state"));
    XenbusState next = fsm_.next_for_peer(peer);
    if (next != fsm_.state() && fsm_.switch_to(next)) xb.write(back_ + "/state", state_text(next));
}

bool XenbusHandshakeFrontend::connect(XenbusClient& xb, unsigned devid) {
    const std::string front = "device/vbd/" + std::to_string(devid);
    auto back = xb.read(front + "/backend");
    if (!back) return false;
    XenbusStateMachine fsm(XenbusSide::frontend);
    if (!xb.watch(*back + "/state", "frontend:" + front).ok()) return false;
    for (;;) {
        xb.take_watch_events();
        XenbusState peer = parse_state(xb.read(*back + "/state"));
        if (peer == XenbusStateInitWait && fsm.state() == XenbusStateInitialising) {
            // (ring-ref, event-channel and feature keys would be written here by a real driver)
            if (!fsm.switch_to(XenbusStateInitialised)) return false;
            if (!xb.write(front + "/state", state_text(fsm.state())).ok()) return false;
        } else if (peer == XenbusStateConnected && fsm.state() == XenbusStateInitialised) {
            if (!fsm.switch_to(XenbusStateConnected)) return false;
            if (!xb.write(front + "/state", state_text(fsm.state())).ok()) return false;
            xb.unwatch(*back + "/state", "frontend:" + front);
            return true;
        } else if (peer == XenbusStateClosing || peer == XenbusStateClosed) {
            return false;
        }
        xb.wait_for_watch_event();
    }
}

void XenbusHandshakeFrontend::run(XenbusClient& xb, GuestServices& s) {
    stats_.start(s.now_ns());
    for (unsigned devid : devids_) {
        std::uint64_t t0 = s.now_ns();
        if (!xb.connected() || !connect(xb, devid)) stats_.failures.inc();
        stats_.complete_op(s.now_ns() - t0);
    }
    stats_.finish(s.now_ns());
}

}  // namespace xensim
