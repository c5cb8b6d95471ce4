#include "models/net/wire_link.h"

#include <stdexcept>

#include "sim/core/sim_time.h"

namespace xensim {

WireLink::WireLink(sc_core::sc_module_name name, const WireParams& params, StatsGroup& parent)
    : sc_core::sc_module(name), group_(basename(), &parent), wire_(params, group_) {
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.dont_initialize();
    o.set_sensitivity(&arrival_ev_);
    sc_core::sc_spawn([this] { deliver(); }, "deliver", &o);
}

void WireLink::set_sink(WireDirection dir, Sink sink) {
    sinks_[static_cast<std::size_t>(dir)] = std::move(sink);
}

WireTransmit WireLink::send(WireDirection dir, EthernetFrame frame) {
    if (!sinks_[static_cast<std::size_t>(dir)])
        throw std::logic_error(std::string(name()) + ": no sink for " + wire_direction_name(dir));
    sim_time::sync();
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    WireTransmit t = wire_.transmit(dir, frame, now);
    if (!t.ok()) return t;
    pending_.emplace(std::make_pair(t.arrival_ps, seq_++), Pending{dir, std::move(frame)});
    arm(now);
    return t;
}

void WireLink::arm(std::uint64_t now_ps) {
    // sc_event keeps the earliest of several pending notifications.
    if (!pending_.empty())
        sim_time::notify(arrival_ev_, sc_core::sc_time::from_value(pending_.begin()->first.first - now_ps));
}

void WireLink::deliver() {
    sim_time::sync();
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    while (!pending_.empty() && pending_.begin()->first.first <= now) {
        auto node = pending_.extract(pending_.begin());
        Pending& p = node.mapped();
        sinks_[static_cast<std::size_t>(p.dir)](std::move(p.frame));
    }
    arm(now);
}

}  // namespace xensim
