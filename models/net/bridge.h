// dom0's software bridge (xenbr0): which ports a frame leaves by, learned from the frames seen.
//
// The problem. On Xen, a guest's vif (netback's net_device in dom0) and dom0's physical NIC are
// ports of one Linux bridge. Every frame a guest sends, and every frame the wire brings in, goes
// through that bridge, which decides where it goes: out of one port when the destination MAC has
// been learned there, out of every other port (a flood) when it has not or when it is a broadcast
// or multicast, nowhere when it came from a port that is down, carries an impossible source or is
// addressed to the port it came from. Guest-to-guest traffic therefore crosses dom0 twice (vif in,
// vif out), and what a guest sprays at the bridge is paid for by dom0 and every other port. This
// engine is that decision, plain C++ without SystemC: it names the egress ports of a frame and does
// not copy or move the frame; the caller (dom0's netback/NIC glue) moves it and charges dom0 the
// cycles.
//
// What is modelled, following Linux 6.1 net/bridge:
//  * Ports are indexed 0, 1, ... in the order they are added, each with a name ("vif1.0", "eth0")
//    that labels its counters. A new port is up (forwarding): with STP off, br_stp_enable_port
//    -> br_port_state_selection -> br_make_forwarding puts it straight into BR_STATE_FORWARDING. Flooding
//    visits ports in the bridge's port_list order, which is the most recently added first (br_add_if puts a
//    new port at the head with list_add_rcu), so egress lists come in descending index order.
//  * br_handle_frame: a frame shorter than the Ethernet header is dropped (netback refuses one
//    from a guest, and eth_type_trans needs the header, so none reaches Linux's bridge); a frame whose source
//    MAC is not a valid unicast address (a multicast/broadcast or all-zero source, !is_valid_ether_addr) is
//    dropped before learning. Destinations in the IEEE 802.1D link-local range 01:80:c2:00:00:0X are not
//    bridged: 0x01 (802.3x PAUSE) is dropped; 0x00 (the bridge group address) is flooded because STP is off
//    ("If STP is turned off, then must forward to keep loop detection"); every other one is passed
//    to dom0's own stack, which with the default group_fwd_mask of 0 means it is not forwarded.
//  * br_handle_frame_finish: a frame arriving on a port that is down (BR_STATE_DISABLED) is
//    dropped. Otherwise the source is learned (br_fdb_update), then a unicast destination is
//    looked up (br_fdb_find_rcu): a hit is forwarded to that one port (br_forward), a miss and
//    every broadcast or multicast destination is flooded (br_flood) to every other port that is
//    up. Multicast is flooded as Linux does when no IGMP/MLD querier exists (no mdb entries).
//  * br_forward / should_deliver: a frame is never sent back out of the port it came from (unless
//    the port is in hairpin mode, which xensim does not model). A destination learned on the
//    ingress port is therefore dropped (kfree_skb): counted here as `same_port`. Linux counts it
//    nowhere; the counter is ours, for visibility.
//  * br_fdb_update: learning a source creates an entry {MAC -> port, updated}; seeing a known MAC
//    again refreshes `updated`, and seeing it on another port moves the entry there (a guest
//    migrated, or a MAC spoofed: the last port wins). With ageing_time 0 nothing is learned
//    ("some users want to always flood", hold_time() == 0), and everything is flooded.
//  * Ageing (br_fdb_cleanup): an entry whose `updated + ageing_time <= now` is deleted. Linux's gc
//    work re-arms itself for the earliest expiry; here expiry is applied at the start of every
//    call that takes `now_ps`, which is the same as the gc running exactly at each expiry instant.
//    Time is the simulation's integer picoseconds; calls must not go back in time.
//  * Port down (br_stp_disable_port, which br_del_if's removal also amounts to here) flushes the
//    port's learned entries (br_fdb_delete_by_port); frames to those MACs are flooded until they are learned
//    again. A port can be brought up again (a vif reconnecting); its index stays.
//
// Where it deliberately differs:
//  * Bounded fdb. A guest that sprays frames with fresh source MACs makes Linux 6.1 learn every one
//    (its fdb has no default limit; `fdb_max_learned` appeared later, in 2023, default 0 =
//    unlimited). Here learned entries are limited (`fdb_max_learned`, default 8192, our choice: far
//    more MACs than a host's guests use, and under 1 MiB of entries); at the limit a new MAC is not
//    learned (frames to it are flooded) and counted in `fdb_learn_refused`, as Linux's later
//    limit refuses it. Expired entries are removed before the limit is checked.
//  * No bridge device of its own: no local fdb entries (the ports' and the bridge's own MACs), no
//    delivery to dom0's stack (what Linux passes up - broadcasts, link-local frames, frames to
//    dom0's MAC - is not represented), no STP, VLAN filtering, multicast snooping, hairpin, proxy
//    ARP, port isolation, static/user fdb entries or netfilter (bridge-nf-call-iptables).
//  * A frame's bytes are not copied: `handle_frame` returns egress port indexes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/ethernet.h"
#include "sim/core/stats.h"

namespace xensim {

struct BridgeParams {
    // br->ageing_time: BR_DEFAULT_AGEING_TIME is 300 * HZ, i.e. 300 s. 0 disables learning.
    std::uint64_t ageing_time_ps = 300'000'000'000'000ull;
    // Learned fdb entries at most (our bound; see the header comment). Must be at least 1.
    std::uint32_t fdb_max_learned = 8192;
};

using BridgePort = std::uint32_t;

// Why the bridge dropped a frame (the ingress port's `dropped` counter is labelled by the name).
enum class BridgeDrop : std::uint8_t {
    none,
    runt,         // shorter than the 14-byte Ethernet header
    port_down,    // arrived on a port that is down (BR_STATE_DISABLED)
    invalid_src,  // source MAC multicast/broadcast or all zero (!is_valid_ether_addr)
    pause,        // to 01:80:c2:00:00:01, 802.3x MAC control (br_handle_frame: goto drop)
    link_local,   // to 01:80:c2:00:00:02..0f: for dom0's stack, never forwarded (group_fwd_mask 0)
    same_port,    // destination learned on the ingress port (should_deliver refuses)
};
const char* bridge_drop_name(BridgeDrop d);

// What happened to one frame.
struct BridgeDecision {
    std::vector<BridgePort> egress;  // ports to send a copy out of; empty when dropped
    bool flooded = false;            // egress came from br_flood (unknown, broadcast, multicast)
    BridgeDrop drop = BridgeDrop::none;
};

class Bridge {
  public:
    // Counters are registered in `stats` (the bridge's group, e.g. "dom0.xenbr0").
    Bridge(const BridgeParams& params, StatsGroup& stats);
    Bridge(const Bridge&) = delete;
    Bridge& operator=(const Bridge&) = delete;

    // A new port, up. Names must be unique and non-empty (std::invalid_argument otherwise).
    BridgePort add_port(const std::string& name);
    // Carrier/admin state of a port (a vif connecting or disconnecting). Taking a port down flushes
    // its learned entries (br_fdb_delete_by_port). Expiry is applied at now_ps first.
    void set_port_up(BridgePort port, bool up, std::uint64_t now_ps);
    bool port_up(BridgePort port) const;
    const std::string& port_name(BridgePort port) const;
    std::size_t port_count() const { return ports_.size(); }

    // br_handle_frame for a frame received on `ingress` at now_ps.
    BridgeDecision handle_frame(BridgePort ingress, const EthernetFrame& frame, std::uint64_t now_ps);

    // br_fdb_find: the port a unicast MAC is learned on at now_ps (after ageing), or none.
    std::optional<BridgePort> fdb_find(const MacAddress& mac, std::uint64_t now_ps);
    // br_fdb_cleanup at now_ps: deletes entries with updated + ageing_time <= now_ps.
    void expire(std::uint64_t now_ps);
    std::size_t fdb_size() const { return fdb_.size(); }

  private:
    struct FdbEntry {
        BridgePort port;
        std::uint64_t updated_ps;
    };
    struct PortState {
        std::string name;
        bool up = true;
        // Slots in the bridge's counter families, labelled by the port name (stable references).
        std::uint64_t *rx_frames, *rx_bytes, *tx_frames, *tx_bytes, *flooded_frames;
        std::vector<std::uint64_t*> dropped;  // by BridgeDrop
    };
    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily rx_frames, rx_bytes, tx_frames, tx_bytes, flooded_frames, dropped;
        Counter forwarded, flooded, fdb_learned, fdb_moved, fdb_expired, fdb_flushed, fdb_learn_refused,
            fdb_peak;
    };

    PortState& port(BridgePort p);
    const PortState& port(BridgePort p) const;
    void advance(std::uint64_t now_ps);  // checks time order, then expires
    void learn(BridgePort ingress, const MacAddress& src, std::uint64_t now_ps);
    void erase(std::map<MacAddress, FdbEntry>::iterator it);
    void flood(BridgePort ingress, BridgeDecision& d);
    BridgeDecision drop(PortState& in, BridgeDrop why);
    void count_tx(BridgePort p, std::size_t len, bool flooded);

    BridgeParams params_;
    Stats stats_;
    std::vector<PortState> ports_;
    std::map<MacAddress, FdbEntry> fdb_;                     // br->fdb_hash_tbl (ordered: deterministic)
    std::set<std::pair<std::uint64_t, MacAddress>> by_age_;  // (updated_ps, mac) of every entry
    std::uint64_t last_now_ps_ = 0;
};

}  // namespace xensim
