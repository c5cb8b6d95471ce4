// The netperf workload's engine wiring (frontends/netperf_workload.h) without SystemC: the guest's
// end (make_guest_endpoint) and the peer's end (make_peer_endpoint) built from one spec must be
// the two ends of one flow for every test and direction, and a spec's streams must be distinct
// flows. Frames go straight from one end to the other here (no device, no wire); time advances to
// the next moment an end may send.
#include <gtest/gtest.h>

#include "frontends/netperf_ping.h"
#include "frontends/netperf_tcp.h"
#include "frontends/netperf_udp.h"
#include "frontends/netperf_workload.h"

namespace xensim {
namespace {

NetperfSpec spec_for(NetperfTest test, NetperfDirection dir) {
    NetperfSpec s;
    s.test = test;
    s.direction = dir;
    s.addr.src_mac = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
    s.addr.dst_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe};
    s.addr.src_ip = ipv4(10, 0, 0, 2);
    s.addr.dst_ip = ipv4(10, 0, 0, 254);
    s.addr.src_port = 49152;
    s.addr.dst_port = 12866;
    s.number = 20;
    return s;
}

// Runs both ends until the active one is finished (or a step bound, which fails the test): each
// step every end sends what it may now, frames are delivered to the other end, and time jumps to
// the earliest next_tx_ns when neither has anything now.
struct Pair {
    StatsGroup guest_root{"guest"}, peer_root{"peer"};
    std::unique_ptr<NetperfEndpoint> guest, peer;
    std::uint64_t now = 0, frames = 0;

    Pair(const NetperfSpec& s, unsigned stream = 0)
        : guest(make_guest_endpoint(s, stream, FlowOffloads{}, guest_root)),
          peer(make_peer_endpoint(s, stream, FlowOffloads{}, peer_root)) {}

    bool pump(NetperfEndpoint& from, NetperfEndpoint& to) {
        bool any = false;
        while (EthernetFrame* f = from.tx_frame(now)) {
            EthernetFrame copy = *f;
            from.tx_taken(now);
            ++frames;
            const ParsedPacket p = parse_packet(copy);
            EXPECT_TRUE(to.receive(now, copy, p)) << "a frame the other end does not take";
            any = true;
        }
        return any;
    }
    bool run(NetperfEndpoint& active) {
        for (int step = 0; step < 100000; ++step) {
            const bool a = pump(*guest, *peer);
            const bool b = pump(*peer, *guest);
            if (active.finished() && guest->finished() && peer->finished()) return true;
            if (!a && !b) {
                const std::uint64_t next = std::min(guest->next_tx_ns(), peer->next_tx_ns());
                if (next == kNoTxTime) return false;  // both wait for the other: stuck
                now = std::max(now + 1, next);
            } else {
                now += 1000;  // a microsecond per exchange
            }
        }
        return false;
    }
};

std::uint64_t value(const NetperfEndpoint& ep, const char* name) {
    const Counter* c = ep.stats().find_counter(name);
    return c ? c->value() : 0;
}

struct EndsCase {
    const char* intent;
    NetperfTest test;
    NetperfDirection dir;
    const char* receiver_counter;  // on the passive end (or the client for RR / ping)
    std::uint64_t expected;
};

class NetperfEnds : public ::testing::TestWithParam<EndsCase> {};

TEST_P(NetperfEnds, GuestAndPeerEndsAreOneFlowAndFinish) {
    const EndsCase& c = GetParam();
    const NetperfSpec s = spec_for(c.test, c.dir);
    Pair pair(s);
    NetperfEndpoint& active = guest_is_active(s) ? *pair.guest : *pair.peer;
    NetperfEndpoint& passive = guest_is_active(s) ? *pair.peer : *pair.guest;
    const bool stream = c.test == NetperfTest::udp_stream || c.test == NetperfTest::tcp_stream;
    NetperfEndpoint& counted = stream ? passive : active;  // the receiver, or the RR / ping client
    ASSERT_TRUE(pair.run(active)) << c.intent;
    EXPECT_EQ(value(counted, c.receiver_counter), c.expected) << c.intent;
    for (const auto* ep : {pair.guest.get(), pair.peer.get()})
        for (const char* bad : {"payload_errors", "misdelivered", "csum_errors", "malformed"})
            EXPECT_EQ(value(*ep, bad), 0u) << c.intent << ": " << bad;
}

// Expected values: number = 20 per stream (spec_for); UDP_STREAM counts datagrams at the receiver
// (netperf_udp.h UdpStreamReceiver::received), RR and ping transactions at the client
// (UdpRrClient / TcpRrClient::transactions, PingClient::replies), TCP_STREAM 20 sends of 16384 bytes
// (netperf_workload.cpp message_size default) arriving as data bytes.
INSTANTIATE_TEST_SUITE_P(
    Tests, NetperfEnds,
    ::testing::Values(
        EndsCase{"UDP_STREAM guest sends", NetperfTest::udp_stream, NetperfDirection::send, "received", 20},
        EndsCase{"UDP_STREAM peer sends", NetperfTest::udp_stream, NetperfDirection::receive, "received", 20},
        EndsCase{"TCP_STREAM guest sends", NetperfTest::tcp_stream, NetperfDirection::send,
                 "data_bytes_received", 20 * 16384},
        EndsCase{"TCP_STREAM peer sends", NetperfTest::tcp_stream, NetperfDirection::receive,
                 "data_bytes_received", 20 * 16384},
        EndsCase{"UDP_RR guest asks", NetperfTest::udp_rr, NetperfDirection::send, "transactions", 20},
        EndsCase{"UDP_RR peer asks", NetperfTest::udp_rr, NetperfDirection::receive, "transactions", 20},
        EndsCase{"TCP_RR guest asks", NetperfTest::tcp_rr, NetperfDirection::send, "transactions", 20},
        EndsCase{"TCP_RR peer asks", NetperfTest::tcp_rr, NetperfDirection::receive, "transactions", 20},
        EndsCase{"ping from the guest", NetperfTest::ping, NetperfDirection::send, "replies", 20},
        EndsCase{"ping from the peer", NetperfTest::ping, NetperfDirection::receive, "replies", 20}),
    [](const ::testing::TestParamInfo<EndsCase>& p) {
        std::string n;
        for (const char* c = p.param.intent; *c; ++c)
            n += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
        return n;
    });

TEST(NetperfEnds, StreamsAreDistinctFlows) {
    // Stream k uses ports + k (netperf_stream_addr): stream 1's peer takes none of stream 0's frames.
    // (ping is told apart by its ICMP identifier at the client only: an echo responder answers every
    // request addressed to it, as the kernel's icmp_echo does.)
    for (NetperfTest t : {NetperfTest::udp_stream, NetperfTest::udp_rr, NetperfTest::tcp_rr}) {
        const NetperfSpec s = spec_for(t, NetperfDirection::send);
        StatsGroup root("t");
        auto g0 = make_guest_endpoint(s, 0, FlowOffloads{}, root);
        auto p1 = make_peer_endpoint(s, 1, FlowOffloads{}, root);
        EthernetFrame* f = g0->tx_frame(0);
        ASSERT_NE(f, nullptr) << to_string(t);
        EXPECT_FALSE(p1->receive(0, *f, parse_packet(*f))) << to_string(t);
        const PacketAddress a1 = netperf_stream_addr(s, 1);
        EXPECT_EQ(a1.src_port, 49153);
        EXPECT_EQ(a1.dst_port, 12867);
    }
}

TEST(NetperfEnds, RatePacesTheUdpSender) {
    // rate_pps 100000: datagram i is due at start + i x 10 us (netperf_udp.h due_ns).
    NetperfSpec s = spec_for(NetperfTest::udp_stream, NetperfDirection::send);
    s.rate_pps = 100000;
    StatsGroup root("t");
    auto g = make_guest_endpoint(s, 0, FlowOffloads{}, root);
    ASSERT_NE(g->tx_frame(0), nullptr);
    g->tx_taken(0);
    EXPECT_EQ(g->tx_frame(1), nullptr);
    EXPECT_EQ(g->next_tx_ns(), 10000u);
}

TEST(NetperfNames, TestsAndDirectionsRoundTripAndOthersAreRefused) {
    for (const char* n : {"UDP_STREAM", "TCP_STREAM", "UDP_RR", "TCP_RR", "ping"})
        EXPECT_STREQ(to_string(parse_netperf_test(n)), n);
    EXPECT_THROW(parse_netperf_test("udp_stream"), std::invalid_argument);
    EXPECT_THROW(parse_netperf_test("TCP_MAERTS"), std::invalid_argument);
    EXPECT_EQ(parse_netperf_direction("receive"), NetperfDirection::receive);
    EXPECT_THROW(parse_netperf_direction("both"), std::invalid_argument);
}

}  // namespace
}  // namespace xensim
