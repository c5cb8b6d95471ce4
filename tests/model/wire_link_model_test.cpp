// WireLink (models/net/wire_link.h) on the SystemC clock: frames come out of the far end at the
// times the Wire engine computes, in time order, ties in send order; an echoing peer sees the
// round trip; dropped frames are never delivered.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <systemc>

#include "models/net/wire_link.h"

namespace xensim {
namespace {

constexpr std::uint64_t kNs = 1000;  // ps

EthernetFrame plain(std::size_t len, std::uint8_t tag = 0) {
    EthernetFrame f;
    f.bytes.assign(len, 0);
    if (len > 20) f.bytes[20] = tag;  // tells frames apart
    if (len >= kEthHeaderLen) f.bytes[12] = 0x08;
    return f;
}

struct Delivery {
    std::uint64_t at_ps;
    WireDirection dir;
    std::size_t len;
    std::uint8_t tag;
    bool operator==(const Delivery& o) const {
        return at_ps == o.at_ps && dir == o.dir && len == o.len && tag == o.tag;
    }
};
std::ostream& operator<<(std::ostream& os, const Delivery& d) {
    return os << "{" << d.at_ps << " ps, " << wire_direction_name(d.dir) << ", " << d.len << " B, tag "
              << int(d.tag) << "}";
}

void record_into(WireLink& link, std::vector<Delivery>& log) {
    for (WireDirection dir : {WireDirection::to_peer, WireDirection::to_host})
        link.set_sink(dir, [&log, dir](EthernetFrame&& f) {
            log.push_back({sc_core::sc_time_stamp().value(), dir, f.size(),
                           f.size() > 20 ? f.bytes[20] : std::uint8_t{0}});
        });
}

void at(std::uint64_t ps) {
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    if (ps > now) sc_core::wait(sc_core::sc_time::from_value(ps - now));
}

TEST(WireLink, DeliversEachFrameAtItsArrivalTimeInTimeOrder) {
    StatsGroup root("");
    WireParams p;  // 10 Gbit/s, 500 ns of propagation
    WireLink link("wire0", p, root);
    std::vector<Delivery> log;
    record_into(link, log);
    std::vector<WireTransmit> sent;
    sc_core::sc_spawn([&] {
        // A burst of three full frames towards the peer, one small frame back.
        for (std::uint8_t k = 1; k <= 3; ++k)
            sent.push_back(link.send(WireDirection::to_peer, plain(1514, k)));
        sent.push_back(link.send(WireDirection::to_host, plain(60, 4)));
        at(10'000 * kNs);  // long after: the line is idle again
        sent.push_back(link.send(WireDirection::to_peer, plain(1514, 5)));
    });
    sc_core::sc_start();
    // 1514 B at 10G: 1230.4 ns each, back to back; 60 B: 67.2 ns; plus 500 ns on the cable.
    const std::vector<Delivery> want = {
        {67'200 + 500'000, WireDirection::to_host, 60, 4},
        {1'230'400 + 500'000, WireDirection::to_peer, 1514, 1},
        {2'460'800 + 500'000, WireDirection::to_peer, 1514, 2},
        {3'691'200 + 500'000, WireDirection::to_peer, 1514, 3},
        {10'000'000 + 1'230'400 + 500'000, WireDirection::to_peer, 1514, 5},
    };
    EXPECT_EQ(log, want);
    ASSERT_EQ(sent.size(), 5u);
    EXPECT_EQ(sent[2].arrival_ps, 3'691'200u + 500'000u) << "send() returns the delivery time";
    EXPECT_EQ(link.in_flight(), 0u);
    EXPECT_EQ(root.find_counter("wire0.to_peer.frames")->value(), 4u);
    EXPECT_EQ(root.find_counter("wire0.to_host.wire_bytes")->value(), 84u);
}

// Both directions arriving at the same picosecond come out in the order they were sent.
TEST(WireLink, FramesArrivingAtTheSameTimeComeOutInSendOrder) {
    StatsGroup root("");
    WireParams p;
    p.propagation_ps = 0;
    WireLink link("wire0", p, root);
    std::vector<Delivery> log;
    record_into(link, log);
    sc_core::sc_spawn([&] {
        link.send(WireDirection::to_host, plain(60, 1));
        link.send(WireDirection::to_peer, plain(60, 2));
        at(1'000'000);
        link.send(WireDirection::to_peer, plain(60, 3));
        link.send(WireDirection::to_host, plain(60, 4));
    });
    sc_core::sc_start();
    const std::vector<Delivery> want = {
        {67'200, WireDirection::to_host, 60, 1},
        {67'200, WireDirection::to_peer, 60, 2},
        {1'067'200, WireDirection::to_peer, 60, 3},
        {1'067'200, WireDirection::to_host, 60, 4},
    };
    EXPECT_EQ(log, want);
}

// A peer that echoes every frame from inside its sink (netperf's TCP_RR server in miniature): the
// round trip is two serializations and two propagation delays; at 1 Gbit/s and 1 us of cable a
// 1514-byte frame comes back after 2 * (12304 + 1000) ns.
TEST(WireLink, AnEchoingPeerSeesTheRoundTrip) {
    StatsGroup root("");
    WireParams p;
    p.line_rate_bps = 1'000'000'000;
    p.propagation_ps = 1000 * kNs;
    WireLink link("wire0", p, root);
    std::vector<std::uint64_t> back;
    link.set_sink(WireDirection::to_peer,
                  [&](EthernetFrame&& f) { link.send(WireDirection::to_host, std::move(f)); });
    link.set_sink(WireDirection::to_host,
                  [&](EthernetFrame&& f) { back.push_back(sc_core::sc_time_stamp().value()); });
    sc_core::sc_spawn([&] {
        link.send(WireDirection::to_peer, plain(1514));
        at(100'000 * kNs);
        link.send(WireDirection::to_peer, plain(60));
    });
    sc_core::sc_start();
    EXPECT_EQ(back, (std::vector<std::uint64_t>{2 * (12'304 + 1'000) * kNs,
                                                100'000 * kNs + 2 * (672 + 1'000) * kNs}));
}

TEST(WireLink, DroppedFramesAreNeverDelivered) {
    StatsGroup root("");
    WireParams p;
    p.txqueuelen = 1;
    WireLink link("wire0", p, root);
    std::vector<Delivery> log;
    record_into(link, log);
    std::vector<bool> ok;
    sc_core::sc_spawn([&] {
        ok.push_back(link.send(WireDirection::to_peer, plain(10)).ok());       // runt
        ok.push_back(link.send(WireDirection::to_peer, plain(1514, 1)).ok());  // on the wire
        ok.push_back(link.send(WireDirection::to_peer, plain(1514, 2)).ok());  // waits
        ok.push_back(link.send(WireDirection::to_peer, plain(1514, 3)).ok());  // queue full
    });
    sc_core::sc_start();
    EXPECT_EQ(ok, (std::vector<bool>{false, true, true, false}));
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].tag, 1);
    EXPECT_EQ(log[1].tag, 2);
    EXPECT_EQ(root.find_family("wire0.to_peer.dropped")->value("runt"), 1u);
    EXPECT_EQ(root.find_family("wire0.to_peer.dropped")->value("queue_full"), 1u);
}

TEST(WireLink, SendingWithoutASinkIsAWiringError) {
    StatsGroup root("");
    WireLink link("wire0", WireParams{}, root);
    EXPECT_THROW(link.send(WireDirection::to_peer, plain(60)), std::logic_error);
}

}  // namespace
}  // namespace xensim
