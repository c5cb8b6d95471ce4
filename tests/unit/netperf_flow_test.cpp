// The netperf-style engines run back to back over an in-memory loopback written here: each side
// has a device with a transmit queue of qlen frames drained at a line rate (0: infinitely fast),
// then a fixed one-way delay. The device refuses a frame when its queue is full, as
// NetDevice::transmit does, and the harness checks that the engine offers the same frame again.
// Expected values follow from the delay model (a round trip is 2 * delay plus serialization) and
// from the Linux behaviour each engine documents (tcp_connection.h: the ACK rule of
// __tcp_ack_snd_check; netperf_udp.h: sequence accounting).
#include <algorithm>
#include <deque>
#include <memory>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "frontends/net_packet.h"
#include "frontends/netperf_flow.h"
#include "frontends/netperf_ping.h"
#include "frontends/netperf_tcp.h"
#include "frontends/netperf_udp.h"
#include "frontends/tcp_connection.h"
#include "sim/core/stats.h"

namespace xensim {
namespace {

using Bytes = std::vector<std::uint8_t>;

PacketAddress client_address(std::uint16_t sport = 40000, std::uint16_t dport = 12865) {
    PacketAddress a;
    a.src_mac = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
    a.dst_mac = {0x00, 0x16, 0x3e, 0x00, 0x00, 0x02};
    a.src_ip = ipv4(10, 0, 0, 1);
    a.dst_ip = ipv4(10, 0, 0, 2);
    a.src_port = sport;
    a.dst_port = dport;
    return a;
}

class Loopback {
  public:
    struct Device {
        std::uint64_t rate_bps = 0;  // 0: serialization takes no time
        std::size_t qlen = 1u << 30;
        bool segment_gso = false;  // software GSO before the wire (a device without TSO support)
        std::deque<std::uint64_t> departures;
        std::uint64_t last_departure = 0, refused = 0, frames = 0;
    };
    // Sees each frame as it leaves side `from`: returns how many copies arrive (0: dropped) and may
    // change the frame or add delay.
    using Tap = std::function<int(int from, EthernetFrame& f, std::uint64_t& extra_delay_ns)>;

    explicit Loopback(std::uint64_t delay_ns) : delay_(delay_ns) {}

    std::vector<NetperfEndpoint*> side[2];
    Device dev[2];
    Tap tap;
    std::vector<Bytes> sent[2];  // every frame's bytes as the engine handed it over
    std::uint64_t unclaimed = 0, now = 0;
    // Bytes in flight of a TCP sender, checked against its window at every step.
    std::function<void()> check;

    void run(std::uint64_t until_ns = kNoTxTime, std::uint64_t max_steps = 5000000) {
        for (std::uint64_t step = 0; step < max_steps; ++step) {
            for (int s = 0; s < 2; ++s)
                for (NetperfEndpoint* ep : side[s]) send_all(s, *ep);
            if (check) check();
            std::uint64_t next = arrivals_.empty() ? kNoTxTime : arrivals_.begin()->first;
            for (int s = 0; s < 2; ++s)
                for (NetperfEndpoint* ep : side[s]) {
                    std::uint64_t t = ep->next_tx_ns();
                    if (t <= now) {
                        if (!full(s)) {
                            ADD_FAILURE()
                                << "an endpoint said it had a frame at " << t << " but gave none at " << now;
                            return;
                        }
                        t = dev[s].departures.front();  // on_tx_wake
                    }
                    next = std::min(next, t);
                }
            if (next == kNoTxTime || next > until_ns) return;
            now = next;
            while (!arrivals_.empty() && arrivals_.begin()->first <= now) {
                auto [to, f] = std::move(arrivals_.begin()->second);
                arrivals_.erase(arrivals_.begin());
                ParsedPacket p = parse_packet(f);
                bool claimed = false;
                for (NetperfEndpoint* ep : side[to])
                    if ((claimed = ep->receive(now, f, p))) break;
                if (!claimed) ++unclaimed;
            }
        }
        ADD_FAILURE() << "the loopback did not settle in " << max_steps << " steps";
    }

  private:
    bool full(int s) {
        Device& d = dev[s];
        while (!d.departures.empty() && d.departures.front() <= now) d.departures.pop_front();
        return d.departures.size() >= d.qlen;
    }
    void send_all(int s, NetperfEndpoint& ep) {
        while (EthernetFrame* f = ep.tx_frame(now)) {
            auto r = refused_.find(&ep);
            if (r != refused_.end()) {
                EXPECT_EQ(f->bytes, r->second) << "a refused frame must be offered again unchanged";
                refused_.erase(r);
            }
            if (full(s)) {
                ++dev[s].refused;
                refused_[&ep] = f->bytes;
                return;
            }
            EthernetFrame taken = std::move(*f);
            ep.tx_taken(now);
            sent[s].push_back(taken.bytes);
            std::vector<EthernetFrame> frames;
            if (dev[s].segment_gso && taken.gso_type != GsoType::none)
                frames = segment(taken, L4Checksum::full);
            else
                frames.push_back(std::move(taken));
            for (EthernetFrame& fr : frames) {
                Device& d = dev[s];
                std::uint64_t start = std::max(now, d.last_departure);
                std::uint64_t ser =
                    d.rate_bps ? (fr.size() + kEthWireOverhead) * 8 * 1000000000ull / d.rate_bps : 0;
                d.last_departure = start + ser;
                d.departures.push_back(d.last_departure);
                ++d.frames;
                std::uint64_t extra = 0;
                int copies = tap ? tap(s, fr, extra) : 1;
                for (int c = 0; c < copies; ++c)
                    arrivals_.emplace(d.last_departure + delay_ + extra, std::make_pair(1 - s, fr));
            }
        }
    }

    std::uint64_t delay_;
    std::multimap<std::uint64_t, std::pair<int, EthernetFrame>> arrivals_;  // FIFO among equal times
    std::map<NetperfEndpoint*, Bytes> refused_;
};

// --- sequence accounting ---

TEST(SequenceTracker, CountsGapsLateArrivalsAndDuplicates) {
    using V = SequenceTracker::Verdict;
    struct Step {
        std::uint64_t seq;
        V verdict;
        std::uint64_t lost, late, dup;
    } steps[] = {
        {0, V::in_order, 0, 0, 0},   {1, V::in_order, 0, 0, 0},
        {4, V::gap, 2, 0, 0},        // 2 and 3 missing
        {2, V::late, 1, 1, 0},       // 2 was late, not lost
        {2, V::duplicate, 1, 1, 1},  // and now seen twice
        {4, V::duplicate, 1, 1, 2},  {5, V::in_order, 1, 1, 2},
        {5000, V::gap, 4995, 1, 2},  // jump past the window
        {3, V::late, 4994, 2, 2},    // older than the window: late (a duplicate cannot be told)
        {4999, V::late, 4993, 3, 2}, {4999, V::duplicate, 4993, 3, 3},
    };
    SequenceTracker t;
    for (const Step& s : steps) {
        EXPECT_EQ(t.observe(s.seq), s.verdict) << "seq " << s.seq;
        EXPECT_EQ(t.lost(), s.lost) << "seq " << s.seq;
        EXPECT_EQ(t.out_of_order(), s.late) << "seq " << s.seq;
        EXPECT_EQ(t.duplicates(), s.dup) << "seq " << s.seq;
    }
}

// --- UDP_STREAM ---

struct UdpStreamPair {
    StatsGroup root{""};
    UdpStreamParams params;
    FlowOffloads off;
    std::unique_ptr<UdpStreamSender> tx;
    std::unique_ptr<UdpStreamReceiver> rx;
    Loopback loop;
    UdpStreamPair(UdpStreamParams p, FlowOffloads o, std::uint64_t delay_ns)
        : params(p), off(o), loop(delay_ns) {
        tx = std::make_unique<UdpStreamSender>(params, off, root);
        rx = std::make_unique<UdpStreamReceiver>(params, root);
        loop.side[0].push_back(tx.get());
        loop.side[1].push_back(rx.get());
    }
};

UdpStreamParams udp_stream(std::uint64_t count, std::uint64_t rate_pps) {
    UdpStreamParams p;
    p.addr = client_address(40001, 5001);
    p.count = count;
    p.rate_pps = rate_pps;
    p.seed = 11;
    return p;
}

TEST(UdpStream, DeliversEveryDatagramVerifiedAtTheRate) {
    UdpStreamPair t(udp_stream(1000, 100000), FlowOffloads{}, 10000);
    t.loop.run();
    EXPECT_TRUE(t.tx->finished());
    EXPECT_EQ(t.tx->sent.value(), 1000u);
    EXPECT_EQ(t.tx->bytes.value(), 1000u * 1472);
    EXPECT_EQ(t.rx->received.value(), 1000u);
    EXPECT_EQ(t.rx->bytes.value(), 1000u * 1472);
    for (const Counter* c : {&t.rx->payload_errors, &t.rx->csum_errors, &t.rx->misdelivered, &t.rx->lost,
                             &t.rx->out_of_order, &t.rx->duplicates})
        EXPECT_EQ(c->value(), 0u) << c->name();
    // Datagram i leaves at i * 10 us (100 kpps) and arrives 10 us later.
    EXPECT_EQ(t.rx->sequenced(), 1000u);
    EXPECT_EQ(t.rx->one_way_max_ns.value(), 10000u);
    EXPECT_EQ(t.rx->one_way_sum_ns.value(), 1000u * 10000);
    EXPECT_EQ(t.loop.now, 999u * 10000 + 10000);
    EXPECT_DOUBLE_EQ(t.rx->throughput_bps(), 1472.0 * 8 * 100000);
    EXPECT_EQ(t.loop.unclaimed, 0u);
}

TEST(UdpStream, UnlimitedRateRunsAtTheDeviceAndRetriesRefusedFrames) {
    FlowOffloads off;
    off.tx_csum = true;  // blank checksums, trusted by the receiver (csum_blank)
    UdpStreamPair t(udp_stream(500, 0), off, 1000);
    t.loop.dev[0].rate_bps = 1000000000;
    t.loop.dev[0].qlen = 8;
    t.loop.run();
    EXPECT_GT(t.loop.dev[0].refused, 0u) << "the queue filled, so frames were refused and retried";
    EXPECT_EQ(t.rx->received.value(), 500u);
    EXPECT_EQ(t.rx->payload_errors.value(), 0u);
    EXPECT_EQ(t.rx->lost.value(), 0u);
    // 1472 + 42 bytes + 24 of wire overhead at 1 Gb/s: 12.304 us apart, the line rate.
    EXPECT_NEAR(t.rx->throughput_bps(), 1472.0 * 8 / 12.304e-6, 1.0);
}

// A byte flipped on the wire: caught by the UDP checksum when the receiver verifies it, and by
// the payload CRC when the checksum is trusted (data_validated, or csum_blank from an offloading
// sender). Either way the datagram is missing from the sequence.
TEST(UdpStream, AFlippedPayloadByteIsCaught) {
    struct Case {
        const char* what;
        bool tx_csum, mark_validated;
        std::uint64_t csum_errors, payload_errors;
    } cases[] = {
        {"full checksum, verified", false, false, 1, 0},
        {"full checksum, data_validated", false, true, 0, 1},
        {"blank checksum (CHECKSUM_PARTIAL) trusted", true, false, 0, 1},
    };
    for (const Case& c : cases) {
        FlowOffloads off;
        off.tx_csum = c.tx_csum;
        UdpStreamPair t(udp_stream(20, 100000), off, 10000);
        int n = 0;
        t.loop.tap = [&](int, EthernetFrame& f, std::uint64_t&) {
            if (n++ == 5) f.bytes[f.size() - 100] ^= 0x04;
            f.data_validated = c.mark_validated;
            return 1;
        };
        t.loop.run();
        EXPECT_EQ(t.rx->csum_errors.value(), c.csum_errors) << c.what;
        EXPECT_EQ(t.rx->payload_errors.value(), c.payload_errors) << c.what;
        EXPECT_EQ(t.rx->received.value(), 19u) << c.what;
        EXPECT_EQ(t.rx->lost.value(), 1u) << c.what;
    }
}

TEST(UdpStream, LossReorderAndDuplicatesBySequence) {
    UdpStreamPair t(udp_stream(1000, 100000), FlowOffloads{}, 10000);
    std::uint64_t n = 0;
    t.loop.tap = [&](int, EthernetFrame&, std::uint64_t& extra) {
        std::uint64_t i = n++;
        if (i == 10 || i == 11 || i == 500) return 0;  // dropped on the wire
        if (i == 20) extra = 25000;                    // overtaken by 21 and 22
        return i == 30 ? 2 : 1;                        // duplicated
    };
    t.loop.run();
    EXPECT_EQ(t.rx->received.value(), 998u);  // 1000 - 3 dropped + 1 duplicate
    EXPECT_EQ(t.rx->lost.value(), 3u);
    EXPECT_EQ(t.rx->out_of_order.value(), 1u);
    EXPECT_EQ(t.rx->duplicates.value(), 1u);
    EXPECT_EQ(t.rx->payload_errors.value(), 0u);
}

TEST(UdpStream, AnotherFlowsDatagramIsMisdelivered) {
    UdpStreamPair t(udp_stream(10, 100000), FlowOffloads{}, 10000);
    StatsGroup other_root("");
    UdpStreamParams other = t.params;
    other.flow_id = 2;  // same ports, another flow id: an intact payload in the wrong socket
    other.count = 3;
    UdpStreamSender intruder(other, FlowOffloads{}, other_root);
    t.loop.side[0].push_back(&intruder);
    t.loop.run();
    EXPECT_EQ(t.rx->received.value(), 10u);
    EXPECT_EQ(t.rx->misdelivered.value(), 3u);
    EXPECT_EQ(t.rx->payload_errors.value(), 0u);
}

TEST(UdpStream, MessageSizeMustFitTheMtu) {
    StatsGroup root("");
    UdpStreamParams p = udp_stream(1, 0);
    p.message_size = 1473;
    EXPECT_THROW(UdpStreamSender(p, FlowOffloads{}, root), std::invalid_argument);
    FlowOffloads jumbo;
    jumbo.mtu = 9000;
    EXPECT_NO_THROW(UdpStreamSender(p, jumbo, root, "jumbo"));
}

// --- TCP_STREAM ---

struct TcpStreamPair {
    StatsGroup root{""};
    std::unique_ptr<TcpStreamSender> tx;
    std::unique_ptr<TcpStreamReceiver> rx;
    Loopback loop;
    TcpStreamPair(const TcpStreamParams& p, FlowOffloads tx_off, FlowOffloads rx_off, std::uint64_t delay_ns)
        : loop(delay_ns) {
        tx = std::make_unique<TcpStreamSender>(p, tx_off, root);
        rx = std::make_unique<TcpStreamReceiver>(p, rx_off, root);
        loop.side[0].push_back(tx.get());
        loop.side[1].push_back(rx.get());
        loop.dev[0].rate_bps = loop.dev[1].rate_bps = 1000000000;  // segments arrive spaced
        std::uint32_t window = p.window;
        loop.check = [this, window] {
            ASSERT_LE(tx->connection().bytes_in_flight(), window) << "the send window was exceeded";
        };
    }
};

TcpStreamParams tcp_stream(std::uint64_t bytes) {
    TcpStreamParams p;
    p.addr = client_address();
    p.bytes = bytes;
    p.seed = 5;
    return p;
}

// 1,000,000 bytes at MSS 1448 are 690 full segments and one of 880 bytes. The receiver ACKs every
// second full segment at once (more than one rcv_mss unacknowledged, __tcp_ack_snd_check): 345
// ACKs; the 880-byte tail is acknowledged by the delayed-ACK timer 40 ms later: 346 in all.
TEST(TcpStream, MovesExactlyTheBytesWithinTheWindowAckingEverySecondSegment) {
    struct Case {
        const char* what;
        bool tso, segment_on_wire;
        std::uint64_t frames, gso_frames, acks, delayed_acks;
    } cases[] = {
        // Without TSO: MSS-sized frames.
        {"no GSO", false, false, 691, 0, 346, 1},
        // TSO, super-packets delivered whole (netback passes GSO to a guest that negotiated it,
        // or GRO merged them): each is more than one full segment, so each is ACKed at once.
        // 45 MSS (65160 bytes) fit a 64 KiB window and datagram; 15 of those and a 22600-byte tail.
        {"GSO delivered whole", true, false, 16, 16, 16, 0},
        // TSO, segmented by software GSO before the wire: the receiver sees single segments again
        // and ACKs as without GSO. The first super-packet fills the window (45 MSS); from then on
        // each ACK of two segments opens two MSS, which leave as one 2-MSS super-packet (no TSO
        // deferral, tcp_tso_should_defer, here): 322 of those carry 644 segments, and the last one
        // carries the 1448 + 880 bytes left: 1 + 322 + 1 = 324 frames, all super-packets.
        {"GSO segmented on the wire", true, true, 324, 324, 346, 1},
    };
    for (const Case& c : cases) {
        FlowOffloads off;
        off.tx_csum = off.gso_tcpv4 = c.tso;
        TcpStreamPair t(tcp_stream(1000000), off, FlowOffloads{}, 20000);
        t.loop.dev[0].segment_gso = c.segment_on_wire;
        t.loop.run();
        const TcpConnection& s = t.tx->connection();
        const TcpConnection& r = t.rx->connection();
        EXPECT_TRUE(t.tx->finished()) << c.what;
        EXPECT_EQ(r.bytes_received(), 1000000u) << c.what;
        EXPECT_EQ(r.data_bytes_received.value(), 1000000u) << c.what;
        EXPECT_EQ(s.bytes_acked(), 1000000u) << c.what;
        EXPECT_EQ(s.frames_sent.value(), c.frames) << c.what;
        EXPECT_EQ(s.segments_sent.value(), 691u) << c.what;
        EXPECT_EQ(s.gso_frames_sent.value(), c.gso_frames) << c.what;
        EXPECT_EQ(r.pure_acks_sent.value(), c.acks) << c.what;
        EXPECT_EQ(r.delayed_acks_sent.value(), c.delayed_acks) << c.what;
        EXPECT_LE(s.max_in_flight.value(), 65536u) << c.what;
        EXPECT_GE(s.max_in_flight.value(), 45u * 1448) << c.what << ": the window was filled";
        for (const Counter* k : {&r.payload_errors, &r.csum_errors, &r.out_of_order, &s.invalid_acks})
            EXPECT_EQ(k->value(), 0u) << c.what << " " << k->name();
        EXPECT_GT(t.rx->throughput_bps(), 0.0) << c.what;
        EXPECT_EQ(t.loop.unclaimed, 0u) << c.what;
    }
}

TEST(TcpStream, ASmallWindowBoundsBytesInFlight) {
    TcpStreamParams p = tcp_stream(200000);
    p.window = 8192;
    FlowOffloads off;
    off.tx_csum = off.gso_tcpv4 = true;
    TcpStreamPair t(p, off, off, 50000);
    t.loop.run();
    EXPECT_EQ(t.rx->connection().bytes_received(), 200000u);
    EXPECT_EQ(t.tx->connection().window_shift(), 0u);
    // Whole MSS only while more data waits: 5 * 1448 = 7240 of the 8192.
    EXPECT_EQ(t.tx->connection().max_in_flight.value(), 5u * 1448);
    // Window-limited: about one window per round trip (100 us + serialization).
    EXPECT_LT(t.rx->throughput_bps(), 8192.0 * 8 / 100e-6);
}

TEST(TcpStream, ACorruptedSegmentIsCountedAndTheStreamGoesOn) {
    TcpStreamPair t(tcp_stream(100000), FlowOffloads{}, FlowOffloads{}, 20000);
    int n = 0;
    t.loop.tap = [&](int from, EthernetFrame& f, std::uint64_t&) {
        if (from == 0 && n++ == 7) {
            f.bytes[f.size() - 1] ^= 0x80;
            f.data_validated = true;  // a checksum trusted on the way hides it from TCP
        }
        return 1;
    };
    t.loop.run();
    EXPECT_EQ(t.rx->connection().payload_errors.value(), 1u);
    EXPECT_EQ(t.rx->connection().bytes_received(), 100000u);
}

TEST(TcpStream, DurationBoundedStreamStopsWritingAndDrains) {
    TcpStreamParams p = tcp_stream(0);
    p.duration_ns = 2000000;  // 2 ms
    TcpStreamPair t(p, FlowOffloads{}, FlowOffloads{}, 20000);
    t.loop.run();
    EXPECT_TRUE(t.tx->finished());
    const TcpConnection& s = t.tx->connection();
    EXPECT_EQ(s.bytes_acked(), s.bytes_written());
    EXPECT_EQ(t.rx->connection().bytes_received(), s.bytes_written());
    EXPECT_GT(s.bytes_written(), 100000u);
}

TEST(TcpStream, WindowAndMssAreValidated) {
    StatsGroup root("");
    TcpStreamParams p = tcp_stream(1);
    p.window = 1000;  // below the MSS
    EXPECT_THROW(TcpStreamSender(p, FlowOffloads{}, root), std::invalid_argument);
    p.window = 65536;
    p.mss = 1449;  // 1449 + 52 > 1500
    EXPECT_THROW(TcpStreamSender(p, FlowOffloads{}, root, "b"), std::invalid_argument);
    p.mss = 0;
    TcpStreamSender ok(p, FlowOffloads{}, root, "c");
    EXPECT_EQ(ok.connection().mss(), 1448u) << "1500 - 20 (IPv4) - 32 (TCP with timestamps)";
    EXPECT_EQ(ok.connection().window_shift(), 1u) << "65536 needs a window scale of 1";
}

TEST(TcpStream, RefusedSegmentsAreRetriedUnchanged) {
    FlowOffloads off;
    off.tx_csum = off.gso_tcpv4 = true;
    TcpStreamPair t(tcp_stream(300000), off, FlowOffloads{}, 20000);
    t.loop.dev[0].qlen = 2;
    t.loop.dev[0].segment_gso = true;  // 45 segments of the first super-packet fill the queue
    t.loop.run();
    EXPECT_GT(t.loop.dev[0].refused, 0u);
    EXPECT_EQ(t.rx->connection().bytes_received(), 300000u);
    EXPECT_EQ(t.rx->connection().out_of_order.value(), 0u);
}

// What one end does with a peer's segment that is not what an established connection expects
// (tcp_validate_incoming / tcp_ack / tcp_data_queue, reduced): counted, dropped, never a crash.
TEST(TcpConnectionEdges, APeersOddSegmentsAreCountedAndDropped) {
    struct Case {
        const char* what;
        std::function<void(EthernetFrame&)> mutate;  // applied to the server's data+ACK segment
        const char* counter;
        bool acked_advances;  // snd_una moves to what the server acknowledged
        bool data_taken;
    } cases[] = {
        {"intact", [](EthernetFrame&) {}, nullptr, true, true},
        {"SYN set", [](EthernetFrame& f) { f.bytes[14 + 20 + 13] |= kTcpSyn; }, "ignored", false, false},
        {"RST set", [](EthernetFrame& f) { f.bytes[14 + 20 + 13] |= kTcpRst; }, "ignored", false, false},
        {"no ACK flag", [](EthernetFrame& f) { f.bytes[14 + 20 + 13] &= ~kTcpAck; }, "ignored", false, false},
        {"ACK of unsent data", [](EthernetFrame& f) { f.bytes[14 + 20 + 8] += 0x10; }, "invalid_acks", false,
         false},
        {"data ahead of rcv_nxt", [](EthernetFrame& f) { f.bytes[14 + 20 + 7] += 5; }, "out_of_order", true,
         false},
        {"payload off the pattern", [](EthernetFrame& f) { f.bytes.back() ^= 1; }, "payload_errors", true,
         true},
        {"checksum wrong", [](EthernetFrame& f) { f.bytes.back() ^= 1, f.data_validated = false; },
         "csum_errors", false, false},
    };
    for (const Case& c : cases) {
        StatsGroup root("");
        TcpConnectionParams cp;
        cp.addr = client_address();
        StatsGroup ga("a", &root), gb("b", &root);
        TcpConnection a(cp, FlowOffloads{}, ga);
        TcpConnectionParams sp = cp;
        sp.addr = cp.addr.reversed();
        sp.client = false;
        TcpConnection b(sp, FlowOffloads{}, gb);
        a.write(100);
        EthernetFrame* fa = a.tx_frame(0);
        ASSERT_NE(fa, nullptr);
        EthernetFrame request = *fa;
        a.tx_taken(0);
        ASSERT_TRUE(b.receive(10, request, parse_packet(request)));
        b.write(10);
        EthernetFrame* fb = b.tx_frame(10);
        ASSERT_NE(fb, nullptr);
        EthernetFrame reply = *fb;
        b.tx_taken(10);
        reply.data_validated = true;  // the mutations below do not re-sum the checksum
        c.mutate(reply);
        ASSERT_TRUE(a.receive(20, reply, parse_packet(reply))) << c.what;
        if (c.counter) {
            EXPECT_EQ(ga.find_counter(c.counter)->value(), 1u) << c.what;
        }
        EXPECT_EQ(a.bytes_acked(), c.acked_advances ? 100u : 0u) << c.what;
        EXPECT_EQ(a.bytes_received(), c.data_taken ? 10u : 0u) << c.what;
    }
}

TEST(TcpConnectionEdges, AZeroWindowStopsDataButNotAcks) {
    StatsGroup root("");
    TcpConnectionParams cp;
    cp.addr = client_address();
    TcpConnection a(cp, FlowOffloads{}, root);
    TcpConnectionParams sp = cp;
    sp.addr = cp.addr.reversed();
    sp.client = false;
    StatsGroup gb("b", &root);
    TcpConnection b(sp, FlowOffloads{}, gb);
    a.write(5000);
    std::vector<EthernetFrame> out;
    while (EthernetFrame* f = a.tx_frame(0)) {
        out.push_back(*f);
        a.tx_taken(0);
    }
    ASSERT_EQ(out.size(), 4u);  // 3 * 1448 + 656
    for (auto& f : out) b.receive(1, f, parse_packet(f));
    EthernetFrame ack = *b.tx_frame(1);
    b.tx_taken(1);
    ack.bytes[14 + 20 + 14] = ack.bytes[14 + 20 + 15] = 0;  // advertise a zero window
    ack.data_validated = true;
    a.write(5000);
    ASSERT_TRUE(a.receive(2, ack, parse_packet(ack)));
    EXPECT_EQ(a.bytes_acked(), 5000u);
    EXPECT_EQ(a.peer_window(), 0u);
    EXPECT_EQ(a.tx_frame(3), nullptr) << "no data into a zero window, and no ACK is due";
    EXPECT_EQ(a.next_tx_ns(), kNoTxTime);
}

// RFC 7323 as Linux sends it: TSval is a 1 ms clock, TSecr echoes the peer's latest TSval.
TEST(TcpConnectionEdges, TimestampsAreEchoed) {
    StatsGroup root("");
    TcpConnectionParams cp;
    cp.addr = client_address();
    StatsGroup ga("a", &root), gb("b", &root);
    TcpConnection a(cp, FlowOffloads{}, ga);
    TcpConnectionParams sp = cp;
    sp.addr = cp.addr.reversed();
    sp.client = false;
    TcpConnection b(sp, FlowOffloads{}, gb);
    a.write(10);
    EthernetFrame req = *a.tx_frame(3000000);
    a.tx_taken(3000000);
    EXPECT_EQ(parse_packet(req).tcp.tsval, 3u);
    ASSERT_TRUE(b.receive(3500000, req, parse_packet(req)));
    b.write(10);
    EthernetFrame resp = *b.tx_frame(7000000);
    b.tx_taken(7000000);
    ParsedPacket pr = parse_packet(resp);
    EXPECT_EQ(pr.tcp.tsval, 7u);
    EXPECT_EQ(pr.tcp.tsecr, 3u);
    ASSERT_TRUE(a.receive(8000000, resp, pr));
    a.write(10);
    EXPECT_EQ(parse_packet(*a.tx_frame(9000000)).tcp.tsecr, 7u);
}

// --- request / response ---

TEST(UdpRr, LatencyIsTheLoopbacksRoundTrip) {
    for (auto sizes : {std::pair<std::size_t, std::size_t>{1, 1}, {64, 1024}}) {
        StatsGroup root("");
        UdpRrParams p;
        p.addr = client_address(40002, 5002);
        p.request_size = sizes.first;
        p.response_size = sizes.second;
        p.count = 100;
        UdpRrClient client(p, FlowOffloads{}, root);
        UdpRrServer server(p, FlowOffloads{}, root);
        Loopback loop(25000);
        loop.side[0].push_back(&client);
        loop.side[1].push_back(&server);
        loop.run();
        EXPECT_TRUE(client.finished());
        EXPECT_EQ(client.transactions.value(), 100u);
        EXPECT_EQ(server.requests.value(), 100u);
        EXPECT_EQ(client.latency_ns.count(), 100u);
        EXPECT_EQ(client.latency_ns.min(), 50000u);
        EXPECT_EQ(client.latency_ns.percentile(99), 50000u);
        EXPECT_EQ(client.latency_ns.max(), 50000u);
        EXPECT_DOUBLE_EQ(client.transactions_per_s(), 20000.0);  // 100 in 5 ms
        EXPECT_EQ(client.response_bytes.value(), 100u * sizes.second);
        EXPECT_EQ(client.payload_errors.value() + client.unexpected.value(), 0u);
    }
}

TEST(UdpRr, ADuplicatedResponseIsUnexpected) {
    StatsGroup root("");
    UdpRrParams p;
    p.addr = client_address(40002, 5002);
    p.request_size = p.response_size = 64;
    p.count = 10;
    UdpRrClient client(p, FlowOffloads{}, root);
    UdpRrServer server(p, FlowOffloads{}, root);
    Loopback loop(25000);
    loop.side[0].push_back(&client);
    loop.side[1].push_back(&server);
    int n = 0;
    loop.tap = [&](int from, EthernetFrame&, std::uint64_t&) { return from == 1 && n++ == 3 ? 2 : 1; };
    loop.run();
    EXPECT_EQ(client.transactions.value(), 10u);
    EXPECT_EQ(client.unexpected.value(), 1u);
    EXPECT_EQ(client.latency_ns.max(), 50000u);
}

TEST(UdpRr, LatencyPercentilesFollowTheDelays) {
    StatsGroup root("");
    UdpRrParams p;
    p.addr = client_address(40002, 5002);
    p.request_size = p.response_size = 100;
    p.count = 10;
    UdpRrClient client(p, FlowOffloads{}, root);
    UdpRrServer server(p, FlowOffloads{}, root);
    Loopback loop(10000);
    loop.side[0].push_back(&client);
    loop.side[1].push_back(&server);
    int n = 0;
    loop.tap = [&](int from, EthernetFrame&, std::uint64_t& extra) {
        if (from == 1) extra = 1000 * static_cast<std::uint64_t>(n++);  // response i delayed i us more
        return 1;
    };
    loop.run();
    ASSERT_EQ(client.latency_ns.count(), 10u);
    EXPECT_EQ(client.latency_ns.min(), 20000u);
    // Nearest rank: the 5th of 10, 24000, reported as its bucket's midpoint (Distribution: 24000
    // lies in [23808, 24064)).
    EXPECT_EQ(client.latency_ns.percentile(50), 23936u);
    EXPECT_EQ(client.latency_ns.max(), 29000u);
}

TEST(TcpRr, LatencyIsTheRoundTripWithAcksRidingOnTheData) {
    struct Case {
        std::size_t req, resp;
        std::uint64_t server_frames;
    } cases[] = {
        {1, 1, 100},       // one segment each way per transaction, no pure ACK from the server
        {4000, 100, 100},  // three request segments arrive together; the response carries the ACK
    };
    for (const Case& c : cases) {
        StatsGroup root("");
        TcpRrParams p;
        p.addr = client_address();
        p.request_size = c.req;
        p.response_size = c.resp;
        p.count = 100;
        TcpRrClient client(p, FlowOffloads{}, root);
        TcpRrServer server(p, FlowOffloads{}, root);
        Loopback loop(25000);
        loop.side[0].push_back(&client);
        loop.side[1].push_back(&server);
        loop.run();
        EXPECT_TRUE(client.finished()) << c.req;
        EXPECT_EQ(client.transactions.value(), 100u) << c.req;
        EXPECT_EQ(server.requests.value(), 100u) << c.req;
        EXPECT_EQ(client.latency_ns.min(), 50000u) << c.req;
        EXPECT_EQ(client.latency_ns.max(), 50000u) << c.req;
        EXPECT_DOUBLE_EQ(client.transactions_per_s(), 20000.0) << c.req;
        EXPECT_EQ(server.connection().frames_sent.value(), c.server_frames) << c.req;
        EXPECT_EQ(server.connection().pure_acks_sent.value(), 0u) << c.req;
        // The last response's ACK has no request to ride on: the delayed-ACK timer sends it.
        EXPECT_EQ(client.connection().pure_acks_sent.value(), 1u) << c.req;
        EXPECT_EQ(client.connection().delayed_acks_sent.value(), 1u) << c.req;
        EXPECT_EQ(server.connection().bytes_received(), 100u * c.req) << c.req;
        EXPECT_EQ(server.connection().payload_errors.value() + client.connection().payload_errors.value(),
                  0u);
    }
}

// --- ping ---

TEST(Ping, RttIsTheRoundTripAndLostRepliesAreCounted) {
    for (bool drop_one : {false, true}) {
        StatsGroup root("");
        PingParams p;
        p.addr = client_address(0, 0);
        p.count = 5;
        p.interval_ns = 1000000;
        PingClient ping(p, FlowOffloads{}, root);
        IcmpEchoResponder echo(p.addr.reversed(), root);
        Loopback loop(100000);
        loop.side[0].push_back(&ping);
        loop.side[1].push_back(&echo);
        int n = 0;
        loop.tap = [&](int from, EthernetFrame&, std::uint64_t&) {
            return from == 1 && drop_one && n++ == 2 ? 0 : 1;
        };
        loop.run();
        EXPECT_TRUE(ping.finished());
        EXPECT_EQ(ping.sent.value(), 5u);
        EXPECT_EQ(echo.requests.value(), 5u);
        EXPECT_EQ(ping.replies.value(), drop_one ? 4u : 5u);
        EXPECT_EQ(ping.lost.value(), drop_one ? 1u : 0u);
        EXPECT_EQ(ping.rtt_ns.min(), 200000u);
        EXPECT_EQ(ping.rtt_ns.max(), 200000u);
        // Finished 1 s (timeout) after the last request (sent at 4 ms) when a reply is missing,
        // at the last reply's time plus its own wait otherwise.
        if (drop_one) {
            EXPECT_EQ(loop.now, 4000000u + 1000000000u);
        }
    }
}

TEST(Ping, FloodWaitsForEachReply) {
    StatsGroup root("");
    PingParams p;
    p.addr = client_address(0, 0);
    p.count = 50;
    p.interval_ns = 0;
    PingClient ping(p, FlowOffloads{}, root);
    IcmpEchoResponder echo(p.addr.reversed(), root);
    Loopback loop(5000);
    loop.side[0].push_back(&ping);
    loop.side[1].push_back(&echo);
    loop.run();
    EXPECT_EQ(ping.replies.value(), 50u);
    EXPECT_EQ(ping.rtt_ns.max(), 10000u);
    EXPECT_EQ(ping.lost.value(), 0u);
}

// --- determinism ---

std::vector<Bytes> run_mixed(std::uint64_t seed) {
    StatsGroup root("");
    UdpStreamParams u = udp_stream(50, 200000);
    u.seed = seed;
    TcpStreamParams t = tcp_stream(300000);
    t.seed = seed;
    FlowOffloads off;
    off.tx_csum = off.gso_tcpv4 = true;
    UdpStreamSender us(u, off, root, "us");
    UdpStreamReceiver ur(u, root, "ur");
    TcpStreamSender ts(t, off, root, "ts");
    TcpStreamReceiver tr(t, off, root, "tr");
    Loopback loop(15000);
    loop.dev[0].rate_bps = loop.dev[1].rate_bps = 10000000000ull;
    loop.dev[0].qlen = 16;
    loop.side[0] = {&us, &ts};
    loop.side[1] = {&ur, &tr};
    loop.run();
    EXPECT_EQ(ur.received.value(), 50u);
    EXPECT_EQ(tr.connection().bytes_received(), 300000u);
    std::vector<Bytes> all = loop.sent[0];
    all.insert(all.end(), loop.sent[1].begin(), loop.sent[1].end());
    return all;
}

TEST(NetperfDeterminism, SameSeedSameFramesByteForByte) {
    std::vector<Bytes> a = run_mixed(77), b = run_mixed(77), c = run_mixed(78);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c) << "another seed changes payloads, ISNs and IP ids";
}

}  // namespace
}  // namespace xensim
