#include "models/net/bridge.h"

#include <iterator>
#include <stdexcept>

namespace xensim {

namespace {
constexpr std::size_t kDropReasons = static_cast<std::size_t>(BridgeDrop::same_port) + 1;

// 01:80:c2:00:00:00 .. 0f, the IEEE 802.1D reserved group addresses (is_link_local_ether_addr).
bool is_link_local(const MacAddress& m) {
    return m[0] == 0x01 && m[1] == 0x80 && m[2] == 0xc2 && m[3] == 0x00 && m[4] == 0x00 && (m[5] & 0xf0) == 0;
}

// is_valid_ether_addr: not multicast (broadcast included) and not 00:00:00:00:00:00.
bool is_valid_ether_addr(const MacAddress& m) {
    if (is_multicast(m)) return false;
    for (auto b : m)
        if (b) return true;
    return false;
}
}  // namespace

const char* bridge_drop_name(BridgeDrop d) {
    switch (d) {
        case BridgeDrop::none:
            return "none";
        case BridgeDrop::runt:
            return "runt";
        case BridgeDrop::port_down:
            return "port_down";
        case BridgeDrop::invalid_src:
            return "invalid_src";
        case BridgeDrop::pause:
            return "pause";
        case BridgeDrop::link_local:
            return "link_local";
        case BridgeDrop::same_port:
            return "same_port";
    }
    return "unknown";
}

Bridge::Stats::Stats(StatsGroup& g)
    : rx_frames(g, "rx_frames", "frames", "frames received on each port (all, dropped ones included)"),
      rx_bytes(g, "rx_bytes", "bytes", "bytes of the frames received on each port"),
      tx_frames(g, "tx_frames", "frames", "copies sent out of each port (forwarded or flooded)"),
      tx_bytes(g, "tx_bytes", "bytes", "bytes of the copies sent out of each port"),
      flooded_frames(g, "flooded_frames", "frames", "copies sent out of each port by flooding"),
      dropped(g, "dropped", "frames", "frames dropped, by ingress port and reason (port/reason)"),
      forwarded(g, "forwarded", "frames", "frames forwarded to the one port their destination is learned on"),
      flooded(g, "flooded", "frames",
              "frames flooded (unknown unicast, broadcast, multicast, bridge group address)"),
      fdb_learned(g, "fdb_learned", "entries", "fdb entries created by learning (br_fdb_update)"),
      fdb_moved(g, "fdb_moved", "entries", "learned MACs seen on another port and moved there"),
      fdb_expired(g, "fdb_expired", "entries", "fdb entries deleted by ageing (br_fdb_cleanup)"),
      fdb_flushed(g, "fdb_flushed", "entries", "fdb entries deleted because their port went down"),
      fdb_learn_refused(g, "fdb_learn_refused", "frames",
                        "sources not learned because the fdb held fdb_max_learned entries"),
      fdb_peak(g, "fdb_peak", "entries", "most fdb entries held at once") {}

Bridge::Bridge(const BridgeParams& params, StatsGroup& stats) : params_(params), stats_(stats) {
    if (params_.fdb_max_learned == 0)
        throw std::invalid_argument("bridge: fdb_max_learned must be at least 1");
}

BridgePort Bridge::add_port(const std::string& name) {
    if (name.empty()) throw std::invalid_argument("bridge: a port needs a name");
    for (const PortState& p : ports_)
        if (p.name == name) throw std::invalid_argument("bridge: port " + name + " added twice");
    PortState p;
    p.name = name;
    p.rx_frames = &stats_.rx_frames.at(name);
    p.rx_bytes = &stats_.rx_bytes.at(name);
    p.tx_frames = &stats_.tx_frames.at(name);
    p.tx_bytes = &stats_.tx_bytes.at(name);
    p.flooded_frames = &stats_.flooded_frames.at(name);
    p.dropped.assign(kDropReasons, nullptr);  // labelled on first use
    ports_.push_back(std::move(p));
    return static_cast<BridgePort>(ports_.size() - 1);
}

Bridge::PortState& Bridge::port(BridgePort p) {
    if (p >= ports_.size()) throw std::logic_error("bridge: no port " + std::to_string(p));
    return ports_[p];
}

const Bridge::PortState& Bridge::port(BridgePort p) const {
    if (p >= ports_.size()) throw std::logic_error("bridge: no port " + std::to_string(p));
    return ports_[p];
}

bool Bridge::port_up(BridgePort p) const { return port(p).up; }
const std::string& Bridge::port_name(BridgePort p) const { return port(p).name; }

void Bridge::advance(std::uint64_t now_ps) {
    if (now_ps < last_now_ps_) throw std::logic_error("bridge: time went backwards");
    last_now_ps_ = now_ps;
    expire(now_ps);
}

void Bridge::erase(std::map<MacAddress, FdbEntry>::iterator it) {
    by_age_.erase({it->second.updated_ps, it->first});
    fdb_.erase(it);
}

void Bridge::expire(std::uint64_t now_ps) {
    // br_fdb_cleanup: this_timer = updated + hold_time; deleted unless time_after(this_timer, now).
    while (!by_age_.empty()) {
        auto oldest = by_age_.begin();
        // updated + ageing <= now, written so it cannot overflow
        if (oldest->first > now_ps || now_ps - oldest->first < params_.ageing_time_ps) break;
        MacAddress mac = oldest->second;
        by_age_.erase(oldest);
        fdb_.erase(mac);
        stats_.fdb_expired.inc();
    }
}

void Bridge::set_port_up(BridgePort p, bool up, std::uint64_t now_ps) {
    PortState& ps = port(p);
    advance(now_ps);
    if (ps.up == up) return;
    ps.up = up;
    if (up) return;
    // br_stp_disable_port -> br_fdb_delete_by_port: every dynamic entry of the port goes.
    for (auto it = fdb_.begin(); it != fdb_.end();) {
        auto next = std::next(it);
        if (it->second.port == p) {
            erase(it);
            stats_.fdb_flushed.inc();
        }
        it = next;
    }
}

std::optional<BridgePort> Bridge::fdb_find(const MacAddress& mac, std::uint64_t now_ps) {
    advance(now_ps);
    auto it = fdb_.find(mac);
    if (it == fdb_.end()) return std::nullopt;
    return it->second.port;
}

void Bridge::learn(BridgePort ingress, const MacAddress& src, std::uint64_t now_ps) {
    if (params_.ageing_time_ps == 0) return;  // hold_time() == 0: "some users want to always flood"
    auto it = fdb_.find(src);
    if (it != fdb_.end()) {
        // Refresh `updated`, and move the entry if the MAC shows up on another port.
        by_age_.erase({it->second.updated_ps, src});
        it->second.updated_ps = now_ps;
        by_age_.insert({now_ps, src});
        if (it->second.port != ingress) {
            it->second.port = ingress;
            stats_.fdb_moved.inc();
        }
        return;
    }
    if (fdb_.size() >= params_.fdb_max_learned) {
        stats_.fdb_learn_refused.inc();
        return;
    }
    fdb_.emplace(src, FdbEntry{ingress, now_ps});
    by_age_.insert({now_ps, src});
    stats_.fdb_learned.inc();
    stats_.fdb_peak.raise_to(fdb_.size());
}

BridgeDecision Bridge::drop(PortState& in, BridgeDrop why) {
    auto i = static_cast<std::size_t>(why);
    if (!in.dropped[i]) in.dropped[i] = &stats_.dropped.at(in.name + "/" + bridge_drop_name(why));
    ++*in.dropped[i];
    BridgeDecision d;
    d.drop = why;
    return d;
}

void Bridge::count_tx(BridgePort p, std::size_t len, bool flooded) {
    PortState& ps = ports_[p];
    ++*ps.tx_frames;
    *ps.tx_bytes += len;
    if (flooded) ++*ps.flooded_frames;
}

void Bridge::flood(BridgePort ingress, BridgeDecision& d) {
    // br_flood walks port_list, newest port first; should_deliver skips the ingress port and ports
    // that are not forwarding.
    d.flooded = true;
    for (std::size_t i = ports_.size(); i-- > 0;) {
        if (i == ingress || !ports_[i].up) continue;
        d.egress.push_back(static_cast<BridgePort>(i));
    }
}

BridgeDecision Bridge::handle_frame(BridgePort ingress, const EthernetFrame& frame, std::uint64_t now_ps) {
    PortState& in = port(ingress);
    advance(now_ps);
    ++*in.rx_frames;
    *in.rx_bytes += frame.size();
    if (!frame.has_header()) return drop(in, BridgeDrop::runt);
    const MacAddress src = frame.src(), dst = frame.dst();
    // br_handle_frame
    if (!is_valid_ether_addr(src)) return drop(in, BridgeDrop::invalid_src);
    if (is_link_local(dst)) {
        if (dst[5] == 0x01) return drop(in, BridgeDrop::pause);
        // 0x00 with STP off goes on to be forwarded; the rest go up to dom0's stack only.
        if (dst[5] != 0x00) return drop(in, BridgeDrop::link_local);
    }
    // br_handle_frame_finish
    if (!in.up) return drop(in, BridgeDrop::port_down);
    learn(ingress, src, now_ps);

    BridgeDecision d;
    if (!is_multicast(dst)) {
        auto it = fdb_.find(dst);
        if (it != fdb_.end()) {
            // br_forward: should_deliver refuses the ingress port.
            if (it->second.port == ingress) return drop(in, BridgeDrop::same_port);
            if (ports_[it->second.port].up) d.egress.push_back(it->second.port);  // always: flushed on down
            stats_.forwarded.inc();
            for (BridgePort p : d.egress) count_tx(p, frame.size(), false);
            return d;
        }
    }
    flood(ingress, d);
    stats_.flooded.inc();
    for (BridgePort p : d.egress) count_tx(p, frame.size(), true);
    return d;
}

}  // namespace xensim
