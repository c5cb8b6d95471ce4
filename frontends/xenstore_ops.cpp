#include "frontends/xenstore_ops.h"

namespace xensim {

namespace {

std::string value_for(std::uint64_t i, unsigned bytes) {
    std::string v(bytes, 'a');
    for (unsigned k = 0; k < bytes; ++k) v[k] = static_cast<char>('a' + (i * 7 + k) % 26);
    return v;
}

}  // namespace

void XenstoreOps::run(XenbusClient& xb, GuestServices& s) {
    if (!xb.connected()) {
        stats_.failures.inc();
        stats_.finish(s.now_ns());
        return;
    }
    std::uint64_t requests_before = xb.requests();
    using Mode = XenstoreOpsParams::Mode;
    auto key = [&](std::uint64_t i) { return "data/xsops/k" + std::to_string(i % p_.keys); };
    if (p_.mode == Mode::read)  // something to read: one write per key first (not timed)
        for (unsigned k = 0; k < p_.keys; ++k)
            if (!xb.write(key(k), value_for(k, p_.value_bytes)).ok()) stats_.failures.inc();
    const std::string watched = "data/xsops";
    if (p_.mode == Mode::write_watch) {
        if (!xb.watch(watched, "xsops").ok()) stats_.failures.inc();
        xb.wait_for_watch_event();  // a new watch fires once at once
        watch_events_ += xb.take_watch_events().size();
    }
    stats_.start(s.now_ns());
    for (std::uint64_t i = 0; i < p_.ops; ++i) {
        std::uint64_t t0 = s.now_ns();
        bool ok = true;
        if (p_.mode != Mode::read) ok = xb.write(key(i), value_for(i, p_.value_bytes)).ok();
        if (ok && p_.mode == Mode::write_watch) {
            // The event names the written node (relative watches report relative paths).
            bool seen = false;
            while (!seen) {
                xb.wait_for_watch_event();
                for (const auto& ev : xb.take_watch_events()) {
                    ++watch_events_;
                    seen = seen || ev.path == key(i);
                }
            }
        } else if (ok && p_.mode != Mode::write) {
            auto v = xb.read(key(i));
            std::uint64_t written = p_.mode == Mode::read ? i % p_.keys : i;
            ok = v && *v == value_for(written, p_.value_bytes);
        }
        if (!ok) stats_.failures.inc();
        stats_.complete_op(s.now_ns() - t0);
    }
    requests_ = xb.requests() - requests_before;
    stats_.finish(s.now_ns());
}

}  // namespace xensim
