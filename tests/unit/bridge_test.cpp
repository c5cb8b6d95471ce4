// dom0's bridge engine (models/net/bridge.h) against Linux 6.1 net/bridge: learning, forwarding,
// flooding, moves, ageing, port down, link-local groups, the fdb bound. Each scenario is a table of
// frames and port changes with the egress ports (or drop reason) Linux would give.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "models/net/bridge.h"

namespace xensim {
namespace {

constexpr std::uint64_t kSecond = 1'000'000'000'000ull;  // ps

MacAddress mac(std::uint8_t last) { return {0x00, 0x16, 0x3e, 0x00, 0x00, last}; }
const MacAddress A = mac(1), B = mac(2), C = mac(3), D = mac(4);
const MacAddress kMcast = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};     // 224.0.0.1's group MAC
const MacAddress kStpGroup = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};  // bridge group address
const MacAddress kPause = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x01};
const MacAddress kSlow = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x02};  // LACP / slow protocols
const MacAddress kLldp = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e};
const MacAddress kZero = {0, 0, 0, 0, 0, 0};

EthernetFrame frame(const MacAddress& dst, const MacAddress& src, std::size_t len = kEthMinFrameLen) {
    EthernetFrame f;
    f.bytes.assign(len, 0);
    for (std::size_t i = 0; i < 6; ++i) {
        f.bytes[i] = dst[i];
        f.bytes[6 + i] = src[i];
    }
    f.bytes[12] = 0x08;  // IPv4
    return f;
}

// Ports as dom0 adds them: the NIC first, then each guest's vif.
constexpr BridgePort eth0 = 0, vif1 = 1, vif2 = 2;

enum class Op { frame, down, up };
struct Step {
    const char* intent;
    std::uint64_t t_ps;
    Op op;
    BridgePort port;  // ingress, or the port going down/up
    MacAddress dst, src;
    std::vector<BridgePort> egress;  // expected (port_list order: newest port first)
    BridgeDrop drop;
};

struct Fixture {
    explicit Fixture(BridgeParams p = {}) : bridge(p, stats) {
        EXPECT_EQ(bridge.add_port("eth0"), eth0);
        EXPECT_EQ(bridge.add_port("vif1.0"), vif1);
        EXPECT_EQ(bridge.add_port("vif2.0"), vif2);
    }
    void run(const std::vector<Step>& steps) {
        for (const Step& s : steps) {
            SCOPED_TRACE(s.intent);
            if (s.op != Op::frame) {
                bridge.set_port_up(s.port, s.op == Op::up, s.t_ps);
                continue;
            }
            BridgeDecision d = bridge.handle_frame(s.port, frame(s.dst, s.src), s.t_ps);
            EXPECT_EQ(d.egress, s.egress);
            EXPECT_EQ(bridge_drop_name(d.drop), std::string(bridge_drop_name(s.drop)));
        }
    }
    std::uint64_t counter(const std::string& n) const { return stats.find_counter(n)->value(); }
    std::uint64_t family(const std::string& n, const std::string& label) const {
        return stats.find_family(n)->value(label);
    }
    StatsGroup stats{"xenbr0"};
    Bridge bridge;
};

constexpr BridgeDrop ok = BridgeDrop::none;

TEST(Bridge, LearnsSourcesAndForwardsToTheLearnedPort) {
    Fixture f;
    f.run({
        {"A->B: B unknown, flooded to every other port (br_flood)",
         0,
         Op::frame,
         vif1,
         B,
         A,
         {vif2, eth0},
         ok},
        {"B->A: A learned on vif1.0, forwarded there (br_forward)", 1, Op::frame, vif2, A, B, {vif1}, ok},
        {"A->B: B learned on vif2.0", 2, Op::frame, vif1, B, A, {vif2}, ok},
        {"C->A from the wire", 3, Op::frame, eth0, A, C, {vif1}, ok},
        {"A->C: C learned on eth0", 4, Op::frame, vif1, C, A, {eth0}, ok},
        {"D unknown: flood excludes only the ingress port", 5, Op::frame, eth0, D, C, {vif2, vif1}, ok},
    });
    EXPECT_EQ(f.bridge.fdb_size(), 3u);
    EXPECT_EQ(f.counter("fdb_learned"), 3u);
    EXPECT_EQ(f.counter("forwarded"), 4u);
    EXPECT_EQ(f.counter("flooded"), 2u);
    EXPECT_EQ(f.family("rx_frames", "vif1.0"), 3u);
    EXPECT_EQ(f.family("tx_frames", "vif1.0"), 3u) << "two forwarded to A, one flood of D";
    EXPECT_EQ(f.family("flooded_frames", "vif1.0"), 1u);
    EXPECT_EQ(f.family("tx_bytes", "eth0"), 2u * kEthMinFrameLen);
}

TEST(Bridge, BroadcastAndMulticastAreAlwaysFlooded) {
    Fixture f;
    f.run({
        {"learn A", 0, Op::frame, vif1, B, A, {vif2, eth0}, ok},
        {"broadcast (an ARP request)", 1, Op::frame, vif2, kBroadcastMac, B, {vif1, eth0}, ok},
        {"multicast with no querier: flooded as br_multicast_flood's fallback",
         2,
         Op::frame,
         eth0,
         kMcast,
         C,
         {vif2, vif1},
         ok},
        {"bridge group address with STP off: forwarded (flooded)",
         3,
         Op::frame,
         vif1,
         kStpGroup,
         A,
         {vif2, eth0},
         ok},
    });
    EXPECT_EQ(f.counter("flooded"), 4u);
    EXPECT_EQ(f.counter("forwarded"), 0u);
}

TEST(Bridge, DropsWhatLinuxNeverForwards) {
    Fixture f;
    EthernetFrame runt = frame(B, A);
    runt.bytes.resize(kEthHeaderLen - 1);
    EXPECT_EQ(f.bridge.handle_frame(vif1, runt, 0).drop, BridgeDrop::runt);
    f.run({
        {"multicast source: !is_valid_ether_addr, dropped before learning",
         1,
         Op::frame,
         vif1,
         B,
         kMcast,
         {},
         BridgeDrop::invalid_src},
        {"all-zero source", 2, Op::frame, vif1, B, kZero, {}, BridgeDrop::invalid_src},
        {"broadcast source", 3, Op::frame, vif1, B, kBroadcastMac, {}, BridgeDrop::invalid_src},
        {"802.3x PAUSE: br_handle_frame drops it", 4, Op::frame, eth0, kPause, C, {}, BridgeDrop::pause},
        {"slow protocols: to dom0's stack only (group_fwd_mask 0)",
         5,
         Op::frame,
         eth0,
         kSlow,
         C,
         {},
         BridgeDrop::link_local},
        {"LLDP: to dom0's stack only", 6, Op::frame, eth0, kLldp, C, {}, BridgeDrop::link_local},
    });
    EXPECT_EQ(f.bridge.fdb_size(), 0u) << "nothing learned from dropped frames";
    EXPECT_EQ(f.family("dropped", "vif1.0/runt"), 1u);
    EXPECT_EQ(f.family("dropped", "vif1.0/invalid_src"), 3u);
    EXPECT_EQ(f.family("dropped", "eth0/pause"), 1u);
    EXPECT_EQ(f.family("dropped", "eth0/link_local"), 2u);
    EXPECT_EQ(f.family("rx_frames", "vif1.0"), 4u) << "received frames are counted even when dropped";
}

TEST(Bridge, NeverSendsAFrameBackOutOfItsIngressPort) {
    Fixture f;
    f.run({
        {"A learned on vif1.0", 0, Op::frame, vif1, C, A, {vif2, eth0}, ok},
        {"B, also behind vif1.0 (a nested bridge)", 1, Op::frame, vif1, C, B, {vif2, eth0}, ok},
        {"B->A: A is on the ingress port, should_deliver refuses: dropped",
         2,
         Op::frame,
         vif1,
         A,
         B,
         {},
         BridgeDrop::same_port},
    });
    EXPECT_EQ(f.family("dropped", "vif1.0/same_port"), 1u);
}

TEST(Bridge, AMacSeenOnAnotherPortMovesThere) {
    Fixture f;
    f.run({
        {"A learned on vif1.0", 0, Op::frame, vif1, C, A, {vif2, eth0}, ok},
        {"to A: vif1.0", 1, Op::frame, eth0, A, C, {vif1}, ok},
        {"A now sends from vif2.0 (migrated guest): br_fdb_update moves it",
         2,
         Op::frame,
         vif2,
         C,
         A,
         {eth0},
         ok},
        {"to A: vif2.0", 3, Op::frame, eth0, A, C, {vif2}, ok},
    });
    EXPECT_EQ(f.counter("fdb_moved"), 1u);
    EXPECT_EQ(f.counter("fdb_learned"), 2u) << "A and C; the move is not a new entry";
    EXPECT_EQ(f.bridge.fdb_find(A, 4), vif2);
}

// br_fdb_cleanup deletes an entry once updated + ageing_time <= now; ageing_time is 300 s.
TEST(Bridge, EntriesAgeOutAfterAgeingTimeWithoutTraffic) {
    Fixture f;
    const std::uint64_t T = 300 * kSecond;
    f.run({
        {"A learned at 0", 0, Op::frame, vif1, C, A, {vif2, eth0}, ok},
        {"C learned at 10 s", 10 * kSecond, Op::frame, eth0, A, C, {vif1}, ok},
        {"forwarding to A does not refresh it: still there 1 ps before 300 s",
         T - 1,
         Op::frame,
         eth0,
         A,
         C,
         {vif1},
         ok},
        {"at 300 s A is gone: flooded", T, Op::frame, eth0, A, C, {vif2, vif1}, ok},
        {"A learned again at 300 s", T, Op::frame, vif1, C, A, {eth0}, ok},
        {"A refreshed at 400 s", 400 * kSecond, Op::frame, vif1, C, A, {eth0}, ok},
        {"A still known at 699.999 s", 700 * kSecond - 1, Op::frame, eth0, A, C, {vif1}, ok},
        {"and gone at 700 s", 700 * kSecond, Op::frame, vif2, A, B, {vif1, eth0}, ok},
    });
    EXPECT_EQ(f.counter("fdb_expired"), 3u) << "A twice, and C (last seen at 300 s) at 600 s";
}

TEST(Bridge, AgeingTimeZeroLearnsNothingAndFloodsEverything) {
    BridgeParams p;
    p.ageing_time_ps = 0;  // hold_time() == 0: "some users want to always flood"
    Fixture f(p);
    f.run({
        {"A->B", 0, Op::frame, vif1, B, A, {vif2, eth0}, ok},
        {"B->A: A not learned", 1, Op::frame, vif2, A, B, {vif1, eth0}, ok},
    });
    EXPECT_EQ(f.bridge.fdb_size(), 0u);
}

TEST(Bridge, APortGoingDownFlushesItsEntriesAndStopsForwarding) {
    Fixture f;
    f.run({
        {"A learned on vif1.0", 0, Op::frame, vif1, C, A, {vif2, eth0}, ok},
        {"B learned on vif2.0", 1, Op::frame, vif2, C, B, {vif1, eth0}, ok},
        {"vif1.0 disconnects: br_fdb_delete_by_port", 2, Op::down, vif1, {}, {}, {}, ok},
        {"to A: flooded, and not to the port that is down", 3, Op::frame, eth0, A, C, {vif2}, ok},
        {"a frame on a disabled port is dropped", 4, Op::frame, vif1, B, A, {}, BridgeDrop::port_down},
        {"vif1.0 reconnects", 5, Op::up, vif1, {}, {}, {}, ok},
        {"to A: unknown until A speaks, flooded to vif1.0 too", 6, Op::frame, vif2, A, B, {vif1, eth0}, ok},
    });
    EXPECT_EQ(f.counter("fdb_flushed"), 1u);
    EXPECT_EQ(f.bridge.fdb_find(B, 7), vif2) << "other ports' entries stay";
    EXPECT_EQ(f.family("dropped", "vif1.0/port_down"), 1u);
}

TEST(Bridge, TheFdbIsBoundedAndRefusesLearningBeyondTheLimit) {
    BridgeParams p;
    p.fdb_max_learned = 3;
    Fixture f(p);
    f.run({
        {"M1", 0, Op::frame, vif1, kBroadcastMac, mac(0x11), {vif2, eth0}, ok},
        {"M2", 1, Op::frame, vif1, kBroadcastMac, mac(0x12), {vif2, eth0}, ok},
        {"M3 fills the table", 2, Op::frame, vif1, kBroadcastMac, mac(0x13), {vif2, eth0}, ok},
        {"M4 refused", 3, Op::frame, vif1, kBroadcastMac, mac(0x14), {vif2, eth0}, ok},
        {"to M4: flooded (never learned)", 4, Op::frame, eth0, mac(0x14), C, {vif2, vif1}, ok},
        {"a known MAC is still refreshed at the limit and can move",
         5,
         Op::frame,
         vif2,
         kBroadcastMac,
         mac(0x11),
         {vif1, eth0},
         ok},
        {"to M1: vif2.0", 6, Op::frame, eth0, mac(0x11), C, {vif2}, ok},
    });
    EXPECT_EQ(f.bridge.fdb_size(), 3u);
    EXPECT_EQ(f.counter("fdb_learn_refused"), 3u) << "M4, then C twice";
    EXPECT_EQ(f.counter("fdb_peak"), 3u);
    // M2 and M3 expire at 300 s + 1 ps / 2 ps; then there is room again.
    f.run({{"M4 learned once M2, M3 aged out",
            300 * kSecond + 2,
            Op::frame,
            vif1,
            kBroadcastMac,
            mac(0x14),
            {vif2, eth0},
            ok},
           {"to M4: vif1.0", 300 * kSecond + 3, Op::frame, eth0, mac(0x14), C, {vif1}, ok}});
    EXPECT_EQ(f.counter("fdb_expired"), 2u);
}

TEST(Bridge, ASourceSprayStaysWithinTheBound) {
    BridgeParams p;
    p.fdb_max_learned = 64;
    StatsGroup stats("xenbr0");
    Bridge b(p, stats);
    BridgePort g = b.add_port("vif1.0");
    b.add_port("eth0");
    for (unsigned i = 0; i < 10000; ++i) {
        MacAddress src = {0x02,
                          0,
                          0,
                          static_cast<std::uint8_t>(i >> 16),
                          static_cast<std::uint8_t>(i >> 8),
                          static_cast<std::uint8_t>(i)};
        b.handle_frame(g, frame(kBroadcastMac, src), i);
    }
    EXPECT_EQ(b.fdb_size(), 64u);
    EXPECT_EQ(stats.find_counter("fdb_learn_refused")->value(), 10000u - 64u);
}

TEST(Bridge, RejectsCallerErrors) {
    StatsGroup stats("xenbr0");
    Bridge b({}, stats);
    b.add_port("eth0");
    EXPECT_THROW(b.add_port("eth0"), std::invalid_argument);
    EXPECT_THROW(b.add_port(""), std::invalid_argument);
    EXPECT_THROW(b.handle_frame(7, frame(A, B), 0), std::logic_error) << "no such port";
    b.handle_frame(0, frame(A, B), 10);
    EXPECT_THROW(b.handle_frame(0, frame(A, B), 9), std::logic_error) << "time went backwards";
    BridgeParams p;
    p.fdb_max_learned = 0;
    StatsGroup s2("br");
    EXPECT_THROW(Bridge(p, s2), std::invalid_argument);
}

}  // namespace
}  // namespace xensim
