// dom0's network through the platform: test vifs (VifPorts written here, standing in for netback)
// attached to the real Dom0Network, the real WireLink and the real RemoteHost, with dom0's NIC
// interrupt raised as a PIRQ by the Hypervisor and handled on dom0's vCPU 0. Expected times come
// from the Wire engine's arithmetic (models/net/wire.h: (frame + 24 bytes of preamble, SFD, FCS
// and inter-frame gap) x 8 bits at 10 Gbit/s, plus 500 ns of propagation) and the NIC's
// interrupt moderation (models/dom0/dom0_network.h: first event + interrupt_delay). One platform
// per TEST: SystemC elaborates once per process.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frontends/net_packet.h"
#include "frontends/netperf_udp.h"
#include "models/dom0/dom0_network.h"
#include "sim/platform/platform.h"
#include "sim/platform/remote_host.h"
#include "sim/platform/scenario.h"

namespace xensim {
namespace {

using nlohmann::json;

constexpr std::uint64_t kNs = 1000, kUs = 1'000'000;  // ps
constexpr std::uint64_t kPropagationPs = 500 * kNs;   // platform.network.propagation_ns default
constexpr std::uint64_t kIrqDelayPs = 50 * kUs;       // platform.network.nic.interrupt_delay_us default
// Serialization at 10 Gbit/s: (len + 24) bytes x 8 bits x 100 ps.
constexpr std::uint64_t wire_ps(std::size_t len) { return (len + 24) * 8 * 100; }
// The test's traffic starts after dom0 has booted and bound the NIC's PIRQ.
constexpr std::uint64_t kStartNs = 1'000'000;

const MacAddress kGuestA{0x00, 0x16, 0x3e, 0x00, 0x00, 0x01};
const MacAddress kGuestB{0x00, 0x16, 0x3e, 0x00, 0x00, 0x02};
const MacAddress kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const MacAddress kRemote{0x00, 0x16, 0x3e, 0xff, 0xff, 0xfe};  // platform.network.remote.mac default

// dom0 and one HVM guest with one nic (so dom0 loads its NIC driver at boot); no workload: the
// run ends when nothing is left to happen.
json scenario() {
    return json::parse(R"({
        "name": "dom0net",
        "platform": {"pcpus": 2},
        "domains": [
            {"name": "dom0", "type": "pv", "vcpus": 1, "memory_mb": 1024},
            {"name": "guest", "type": "hvm", "vcpus": 1, "memory_mb": 256,
             "nics": [{"mac": "00:16:3e:00:00:01"}]}
        ],
        "stop": {"sim_time_ms": 20}
    })");
}

struct Machine {
    explicit Machine(const json& s)
        : scenario_(parse_scenario(s.dump(), "inline")),
          platform(scenario_, tracer),
          net(platform.dom0_network()) {
        net.trace.irq_requested = [this](std::uint64_t at) { irqs.push_back(at); };
        net.trace.uplink_tx = [this](const WireTransmit& t) { uplink.push_back(t); };
    }
    std::uint64_t stat(const std::string& dotted) const {
        const Counter* c = platform.stats().find_counter(dotted);
        if (!c) throw std::out_of_range("no counter " + dotted);
        return c->value();
    }
    std::uint64_t family(const std::string& dotted, const std::string& label) const {
        const CounterFamily* f = platform.stats().find_family(dotted);
        if (!f) throw std::out_of_range("no counter family " + dotted);
        return f->value(label);
    }
    RunResult run() { return platform.run(); }

  private:
    Scenario scenario_;

  public:
    Tracer tracer;
    Platform platform;
    Dom0Network& net;
    std::vector<std::uint64_t> irqs;  // times the NIC asked for its interrupt
    std::vector<WireTransmit> uplink;
};

// A vif as the network sees it: records each delivery; `on_deliver` may act on dom0's vCPU.
struct TestVif : VifPort {
    struct Rx {
        std::uint64_t at_ps;
        EthernetFrame frame;
    };
    bool deliver(BackendServices& s, EthernetFrame&& f) override {
        rx.push_back({sc_core::sc_time_stamp().value(), std::move(f)});
        if (on_deliver) on_deliver(s, rx.back().frame);
        return accept;
    }
    std::vector<Rx> rx;
    std::function<void(BackendServices&, const EthernetFrame&)> on_deliver;
    bool accept = true;
};

// A remote endpoint that sends one frame at a given time (the test's trigger) and records what
// reaches the remote host, with the exact arrival time, without taking it (others may).
class ProbeEndpoint : public NetperfEndpoint {
  public:
    ProbeEndpoint(StatsGroup& parent, std::optional<EthernetFrame> send, std::uint64_t at_ns)
        : NetperfEndpoint(parent, "probe"), send_(std::move(send)), at_ns_(at_ns) {}
    EthernetFrame* tx_frame(std::uint64_t) override { return send_ ? &*send_ : nullptr; }
    void tx_taken(std::uint64_t) override { send_.reset(); }
    std::uint64_t next_tx_ns() const override { return send_ ? at_ns_ : kNoTxTime; }
    bool receive(std::uint64_t, const EthernetFrame& f, const ParsedPacket& p) override {
        seen.push_back({sc_core::sc_time_stamp().value(), f.size(), p.status});
        return false;
    }
    bool finished() const override { return !send_; }
    struct Seen {
        std::uint64_t at_ps;
        std::size_t len;
        PacketStatus status;
    };
    std::vector<Seen> seen;

  private:
    std::optional<EthernetFrame> send_;
    std::uint64_t at_ns_;
};

// A frame from the remote host to guest A, sent at kStartNs: the trigger of the vif's actions.
EthernetFrame trigger_frame() {
    PacketAddress a{kRemote, kGuestA, ipv4(10, 0, 0, 254), ipv4(10, 0, 0, 1), 9, 9};
    std::uint8_t payload[18] = {};
    return build_udp(a, 1, payload, sizeof payload, L4Checksum::full);
}

EthernetFrame frame_to(const MacAddress& dst, const MacAddress& src, std::size_t payload_len) {
    PacketAddress a{src, dst, ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 254), 7, 7};
    std::vector<std::uint8_t> payload(payload_len, 0x5a);
    return build_udp(a, 2, payload.data(), payload.size(), L4Checksum::full);
}

TEST(Dom0Network, AttachNamesAPortOfAKnownBridgeOnly) {
    Machine m(scenario());
    TestVif a, b;
    EXPECT_EQ(m.net.attach("xenbr1", "vif1.0", a), -1) << "no such bridge";
    EXPECT_EQ(m.net.attach("xenbr0", "", a), -1) << "no name";
    EXPECT_EQ(m.net.attach("xenbr0", "eth0", a), -1) << "the NIC's port name";
    const int h = m.net.attach("xenbr0", "vif1.0", a);
    EXPECT_EQ(h, 0);
    EXPECT_EQ(m.net.attach("xenbr0", "vif1.0", b), -1) << "already a port (br_add_if: EBUSY)";
    m.net.detach(h);
    EXPECT_FALSE(m.net.bridge("xenbr0")->port_up(1));
    EXPECT_EQ(m.net.attach("xenbr0", "vif1.0", b), h) << "re-attached: the same port, up again";
    EXPECT_TRUE(m.net.bridge("xenbr0")->port_up(1));
    EXPECT_EQ(m.net.attach("xenbr0", "vif2.0", a), 1) << "a second vif";
}

TEST(Dom0Network, AVifNameIsUniqueAcrossBridgesAndHostOnlyBridgesHaveNoUplink) {
    json sc = scenario();
    sc["platform"]["network"] = {{"bridges", {"xenbr0", "hostonly"}}};
    Machine m(sc);
    TestVif a, b;
    EXPECT_EQ(m.net.attach("hostonly", "vif1.0", a), 0);
    EXPECT_EQ(m.net.attach("xenbr0", "vif1.0", b), -1) << "the name is taken on the other bridge";
    EXPECT_EQ(m.net.bridge("hostonly")->port_count(), 1u) << "no eth0 on a host-only bridge";
    EXPECT_EQ(m.net.bridge("xenbr0")->port_count(), 1u) << "eth0 alone";
    EXPECT_EQ(m.net.bridge("xenbr1"), nullptr);
}

TEST(Dom0Network, VifFrameReachesTheRemoteHostAtLineTimingAndIsReleasedAtTheNicsTxCompletion) {
    Machine m(scenario());
    RemoteHost& remote = m.platform.remote_host();
    auto probe = std::make_unique<ProbeEndpoint>(remote.stats(), trigger_frame(), kStartNs);
    ProbeEndpoint& seen = *probe;
    remote.add_endpoint(std::move(probe));
    TestVif vif;
    const int h = m.net.attach("xenbr0", "vif1.0", vif);
    std::optional<std::uint64_t> sent_ps, released_ps;
    unsigned releases = 0;
    vif.on_deliver = [&](BackendServices& s, const EthernetFrame&) {
        if (sent_ps) return;
        sent_ps = 0;
        // 1226 bytes: (1226 + 24) x 8 bits = 10,000 bits = 1 us at 10 Gbit/s.
        m.net.transmit(s, h, frame_to(kRemote, kGuestA, 1226 - 42), [&](BackendServices&) {
            ++releases;
            released_ps = sc_core::sc_time_stamp().value();
        });
        EXPECT_EQ(releases, 0u) << "the NIC still holds the guest's pages";
    };
    m.run();
    ASSERT_EQ(m.uplink.size(), 1u);
    const WireTransmit& t = m.uplink[0];
    EXPECT_EQ(t.end_ps - t.start_ps, wire_ps(1226));
    EXPECT_EQ(t.arrival_ps, t.end_ps + kPropagationPs);
    ASSERT_EQ(seen.seen.size(), 1u);
    EXPECT_EQ(seen.seen[0].at_ps, t.arrival_ps) << "the remote host sees the frame at its arrival time";
    EXPECT_EQ(seen.seen[0].len, 1226u);
    // Interrupts: the trigger's arrival, then the TX completion (first event after re-enable).
    ASSERT_EQ(m.irqs.size(), 2u);
    EXPECT_EQ(m.irqs[0], kStartNs * kNs + wire_ps(trigger_frame().size()) + kPropagationPs + kIrqDelayPs);
    EXPECT_EQ(m.irqs[1], t.end_ps + kIrqDelayPs) << "TX completion moderated like RX";
    EXPECT_EQ(releases, 1u);
    ASSERT_TRUE(released_ps);
    EXPECT_GE(*released_ps, m.irqs[1]) << "released in the poll of the completion's interrupt";
    EXPECT_LT(*released_ps, m.irqs[1] + 10 * kUs);
    EXPECT_EQ(m.stat("dom0.eth0.tx_completions"), 1u);
    EXPECT_EQ(m.stat("dom0.eth0.interrupts"), 2u);
    EXPECT_EQ(m.stat("wire0.to_peer.frames"), 1u);
    EXPECT_EQ(m.stat("remote.rx_frames"), 1u);
}

TEST(Dom0Network, RemoteUdpRrServerEchoesAndTheAnswerReachesTheVifThroughTheNicPirq) {
    Machine m(scenario());
    RemoteHost& remote = m.platform.remote_host();
    remote.add_endpoint(std::make_unique<ProbeEndpoint>(remote.stats(), trigger_frame(), kStartNs));
    UdpRrParams rr;
    rr.addr = {kGuestA, kRemote, ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 254), 40000, 12865};
    rr.request_size = rr.response_size = 64;
    rr.count = 1;
    StatsGroup client_stats("client", nullptr);
    UdpRrClient client(rr, FlowOffloads{}, client_stats);
    remote.add_endpoint(std::make_unique<UdpRrServer>(rr, FlowOffloads{}, remote.stats()));
    TestVif vif;
    const int h = m.net.attach("xenbr0", "vif1.0", vif);
    const std::uint64_t pirqs_before = m.stat("xen.evtchn.pirqs");
    vif.on_deliver = [&](BackendServices& s, const EthernetFrame& f) {
        const ParsedPacket p = parse_packet(f);
        if (p.ok() && p.dst_port == 9) {  // the trigger: send the request
            const std::uint64_t now = s.now_ns();
            EthernetFrame* req = client.tx_frame(now);
            ASSERT_NE(req, nullptr);
            m.net.transmit(s, h, EthernetFrame(*req), [](BackendServices&) {});
            client.tx_taken(now);
            return;
        }
        client.receive(s.now_ns(), f, p);
    };
    m.run();
    EXPECT_EQ(client.transactions.value(), 1u) << "the server's answer reached the vif intact";
    ASSERT_EQ(vif.rx.size(), 2u);
    // The answer left the remote host the instant the request arrived (zero CPU cost there) and
    // came in through the NIC interrupt, moderated from its arrival.
    ASSERT_EQ(m.uplink.size(), 1u);
    const std::uint64_t answer_len = vif.rx[1].frame.size();
    const std::uint64_t answer_arrival = m.uplink[0].arrival_ps + wire_ps(answer_len) + kPropagationPs;
    // The request's TX completion (its last bit sent) asks for the interrupt 50 us later; the
    // answer arrives 2 x 500 ns + its serialization after that, within the same moderation
    // interval: one interrupt cleans the completion and takes the answer.
    ASSERT_EQ(m.irqs.size(), 2u) << "trigger; request's TX completion + answer";
    EXPECT_EQ(m.irqs[1], m.uplink[0].end_ps + kIrqDelayPs);
    EXPECT_LT(answer_arrival, m.irqs[1]);
    EXPECT_GE(vif.rx[1].at_ps, m.irqs[1]);
    EXPECT_EQ(m.stat("dom0.eth0.interrupts"), 2u);
    // Each NIC interrupt is a dom0 PIRQ that found its bound port (send_guest_pirq).
    EXPECT_EQ(m.stat("xen.evtchn.pirqs") - pirqs_before, m.stat("dom0.eth0.interrupts"));
    EXPECT_EQ(m.stat("dom0.eth0.rx_frames"), 2u);
    EXPECT_EQ(m.stat("dom0.eth0.tx_completions"), 1u);
    EXPECT_EQ(m.stat("remote.udp_rr_server.requests"), 1u);
}

TEST(Dom0Network, VifToVifCopiesAndReleasesAtOnceAndABroadcastFloodsEveryOtherPort) {
    json sc = scenario();
    sc["domains"].push_back(
        {{"name", "guest2"}, {"type", "hvm"}, {"nics", {{{"mac", "00:16:3e:00:00:02"}}}}});
    Machine m(sc);
    RemoteHost& remote = m.platform.remote_host();
    auto probe = std::make_unique<ProbeEndpoint>(remote.stats(), trigger_frame(), kStartNs);
    ProbeEndpoint& seen = *probe;
    remote.add_endpoint(std::move(probe));
    TestVif a, b;
    const int ha = m.net.attach("xenbr0", "vif1.0", a);
    const int hb = m.net.attach("xenbr0", "vif2.0", b);
    unsigned broadcast_releases = 0, unicast_releases = 0;
    std::size_t b_before = 99;
    bool unicast_released_inline = false;
    a.on_deliver = [&](BackendServices& s, const EthernetFrame& f) {
        if (parse_packet(f).dst_port != 9) return;
        // B says hello to everyone (br_flood: A and the uplink), which also teaches the bridge B.
        m.net.transmit(s, hb, frame_to(kBroadcast, kGuestB, 100),
                       [&](BackendServices&) { ++broadcast_releases; });
        EXPECT_EQ(broadcast_releases, 0u) << "the uplink copy is still on the NIC";
        // A answers B by unicast: one copy into B's queue, the guest's pages free at once.
        b_before = b.rx.size();
        m.net.transmit(s, ha, frame_to(kGuestB, kGuestA, 200), [&](BackendServices&) { ++unicast_releases; });
        unicast_released_inline = unicast_releases == 1;
    };
    m.run();
    EXPECT_TRUE(unicast_released_inline) << "a vif-to-vif frame is copied, then released";
    EXPECT_EQ(unicast_releases, 1u);
    EXPECT_EQ(broadcast_releases, 1u) << "released after the uplink's TX completion";
    // B got the trigger (for A, whose MAC the bridge had not learned yet: flooded), then A's unicast.
    EXPECT_EQ(b_before, 1u);
    ASSERT_EQ(b.rx.size(), b_before + 1);
    EXPECT_EQ(b.rx.back().frame.size(), 14u + 20 + 8 + 200);
    // A got the trigger and B's broadcast.
    ASSERT_EQ(a.rx.size(), 2u);
    EXPECT_EQ(a.rx[1].frame.size(), 14u + 20 + 8 + 100);
    // The remote host got the broadcast (accepted by its filter), not A's unicast to B.
    ASSERT_EQ(seen.seen.size(), 1u);
    EXPECT_EQ(seen.seen[0].len, 14u + 20 + 8 + 100);
    EXPECT_EQ(m.stat("dom0.eth0.vif_copies"), 2u) << "broadcast to A, unicast to B";
    EXPECT_EQ(m.stat("dom0.eth0.tx_frames"), 1u);
    EXPECT_EQ(m.stat("dom0.xenbr0.flooded"), 2u) << "the trigger (A not yet learned) and the broadcast";
    EXPECT_EQ(m.stat("dom0.xenbr0.forwarded"), 1u);
}

// netback's own context (its NAPI poll on some dom0 vCPU) as a stand-in: time passes by waiting
// on the SystemC clock, no hypercalls. The NIC's interrupt still runs on dom0's real vCPU 0.
struct NetbackContext : BackendServices {
    const CostModel& costs() const override { return cost; }
    void compute(Cycles c) override { sc_core::wait(sc_core::sc_time::from_value(clock.ps(c))); }
    std::uint64_t now_ns() const override { return sc_core::sc_time_stamp().value() / 1000; }
    long hypercall(unsigned, unsigned long, unsigned long, unsigned long, unsigned long,
                   unsigned long) override {
        return -38;  // ENOSYS: this context makes none
    }
    std::optional<std::uint64_t> alloc_page() override { return std::nullopt; }
    void free_page(std::uint64_t) override {}
    std::uint8_t* page(std::uint64_t) override { return nullptr; }
    std::optional<std::uint64_t> take_unpopulated_frame() override { return std::nullopt; }
    CostModel cost = CostModel::defaults();
    Clock clock{2100};
};

TEST(Dom0Network, ATransmitOutsideTheNicPollAsksForTheInterruptAtItsCompletion) {
    Machine m(scenario());
    TestVif vif;
    const int h = m.net.attach("xenbr0", "vif1.0", vif);
    NetbackContext netback;
    std::optional<std::uint64_t> released_ps;
    sc_core::sc_spawn([&] {
        sc_core::wait(sc_core::sc_time::from_value(kStartNs * kNs));
        m.net.transmit(netback, h, frame_to(kRemote, kGuestA, 1226 - 42),
                       [&](BackendServices&) { released_ps = sc_core::sc_time_stamp().value(); });
    });
    m.run();
    ASSERT_EQ(m.uplink.size(), 1u);
    const WireTransmit& t = m.uplink[0];
    // The line was idle: the frame starts once the bridge's work (1500 cycles at 2100 MHz) is done.
    EXPECT_EQ(t.start_ps, kStartNs * kNs + netback.clock.ps(netback.cost.bridge_forward));
    EXPECT_EQ(t.end_ps, t.start_ps + wire_ps(1226));
    ASSERT_EQ(m.irqs.size(), 1u);
    EXPECT_EQ(m.irqs[0], t.end_ps + kIrqDelayPs) << "moderated from the completion, not the send";
    ASSERT_TRUE(released_ps);
    EXPECT_GE(*released_ps, m.irqs[0]);
    EXPECT_EQ(m.stat("dom0.eth0.interrupts"), 1u);
    EXPECT_EQ(m.stat("dom0.eth0.tx_completions"), 1u);
}

TEST(Dom0Network, AFullWireQueueDropsAreCountedAndReleasedAtOnce) {
    json sc = scenario();
    sc["platform"]["network"] = {{"txqueuelen", 2}};
    sc["platform"]["cost"] = {{"bridge_forward", 0}};  // every frame queued at the same instant
    Machine m(sc);
    RemoteHost& remote = m.platform.remote_host();
    auto probe = std::make_unique<ProbeEndpoint>(remote.stats(), trigger_frame(), kStartNs);
    ProbeEndpoint& seen = *probe;
    remote.add_endpoint(std::move(probe));
    TestVif vif;
    const int h = m.net.attach("xenbr0", "vif1.0", vif);
    unsigned released = 0, released_inline = 0;
    vif.on_deliver = [&](BackendServices& s, const EthernetFrame&) {
        // Ten frames at once: one on the line, txqueuelen (2) waiting, seven dropped.
        for (int k = 0; k < 10; ++k)
            m.net.transmit(s, h, frame_to(kRemote, kGuestA, 1000), [&](BackendServices&) { ++released; });
        released_inline = released;
    };
    m.run();
    EXPECT_EQ(released_inline, 7u) << "dropped frames are freed at once";
    EXPECT_EQ(released, 10u);
    EXPECT_EQ(m.family("wire0.to_peer.dropped", "queue_full"), 7u);
    EXPECT_EQ(m.stat("dom0.eth0.tx_refused"), 7u);
    EXPECT_EQ(m.stat("dom0.eth0.tx_completions"), 3u);
    ASSERT_EQ(seen.seen.size(), 3u);
    ASSERT_EQ(m.uplink.size(), 3u);
    for (std::size_t k = 1; k < 3; ++k)
        EXPECT_EQ(m.uplink[k].start_ps, m.uplink[k - 1].end_ps) << "back to back";
}

TEST(Dom0Network, UncleanedTxDescriptorsAreBoundedByTheRingAndTheLinesQueue) {
    json sc = scenario();
    sc["platform"]["network"] = {{"txqueuelen", 100}, {"nic", {{"interrupt_delay_us", 100'000}}}};
    sc["platform"]["cost"] = {{"bridge_forward", 0}};
    sc["stop"]["sim_time_ms"] = 300;
    Machine m(sc);
    RemoteHost& remote = m.platform.remote_host();
    remote.add_endpoint(std::make_unique<ProbeEndpoint>(remote.stats(), trigger_frame(), kStartNs));
    TestVif vif;
    const int h = m.net.attach("xenbr0", "vif1.0", vif);
    unsigned released = 0, released_inline = 0;
    bool done = false;
    vif.on_deliver = [&](BackendServices& s, const EthernetFrame&) {
        if (done) return;
        done = true;
        // 20 bursts of 100 minimum-size frames, the line drained between bursts (100 x 84 bytes
        // x 0.8 ns = 6.72 us < 20,000 cycles at 2100 MHz = 9.52 us), no interrupt meanwhile (100 ms
        // moderation): completions pile up uncleaned until tx_ring (512) + txqueuelen (100) = 612.
        for (int burst = 0; burst < 20; ++burst) {
            for (int k = 0; k < 100; ++k)
                m.net.transmit(s, h, frame_to(kRemote, kGuestA, 18), [&](BackendServices&) { ++released; });
            s.compute(20'000);
        }
        released_inline = released;
    };
    m.run();
    EXPECT_EQ(m.stat("dom0.eth0.tx_frames"), 612u);
    EXPECT_EQ(m.stat("dom0.eth0.tx_ring_full"), 2000u - 612u);
    EXPECT_EQ(m.family("wire0.to_peer.dropped", "queue_full"), 0u) << "the line kept up";
    EXPECT_EQ(released_inline, 2000u - 612u) << "refused frames are freed at once";
    EXPECT_EQ(released, 2000u);
    EXPECT_EQ(m.stat("dom0.eth0.tx_completions"), 612u);
}

TEST(Dom0Network, RemoteUdpStreamAtLineRateReachesTheVifWithExactTimingInOneCoalescedInterrupt) {
    Machine m(scenario());
    RemoteHost& remote = m.platform.remote_host();
    UdpStreamParams up;
    up.addr = remote.address_to(kGuestA, guest_ipv4(1, 0), 5001, 5001);
    up.count = 8;
    UdpStreamSender sender(up, FlowOffloads{}, remote.stats());
    StatsGroup guest_stats("guest_side", nullptr);
    UdpStreamReceiver receiver(up, guest_stats);
    TestVif vif;
    m.net.attach("xenbr0", "vif1.0", vif);
    vif.on_deliver = [&](BackendServices& s, const EthernetFrame& f) {
        receiver.receive(s.now_ns(), f, parse_packet(f));
    };
    // The sender starts after dom0's boot: added from a SystemC thread at kStartNs.
    sc_core::sc_spawn([&] {
        sc_core::wait(sc_core::sc_time::from_value(kStartNs * kNs));
        remote.add_endpoint(sender);
    });
    m.run();
    EXPECT_EQ(receiver.received.value(), 8u);
    EXPECT_EQ(receiver.lost.value(), 0u);
    EXPECT_EQ(receiver.payload_errors.value(), 0u);
    const std::uint64_t frame = 14 + 20 + 8 + 1472;  // 1514: netperf's default 1472-byte message
    // Back to back at line rate: frame k's last bit arrives at start + (k+1) x 1230.4 ns + 500 ns.
    EXPECT_EQ(m.stat("wire0.to_host.frames"), 8u);
    EXPECT_EQ(m.stat("wire0.to_host.busy_ps"), 8 * wire_ps(frame));
    ASSERT_EQ(m.irqs.size(), 1u) << "the whole burst within one moderation interval";
    EXPECT_EQ(m.irqs[0], kStartNs * kNs + wire_ps(frame) + kPropagationPs + kIrqDelayPs);
    ASSERT_EQ(vif.rx.size(), 8u);
    EXPECT_GE(vif.rx[0].at_ps, m.irqs[0]);
    EXPECT_EQ(m.stat("dom0.eth0.interrupts"), 1u);
    EXPECT_EQ(m.stat("dom0.eth0.polls"), 1u) << "8 frames: within one NAPI budget of 64";
}

TEST(Dom0Network, FramesBeyondTheNapiBudgetAreTakenByADeferredPollAndRefusalsAreCounted) {
    json sc = scenario();
    sc["platform"]["network"] = {{"nic", {{"napi_budget", 3}}}};
    Machine m(sc);
    RemoteHost& remote = m.platform.remote_host();
    UdpStreamParams up;
    up.addr = remote.address_to(kGuestA, guest_ipv4(1, 0), 5001, 5001);
    up.count = 7;
    UdpStreamSender sender(up, FlowOffloads{}, remote.stats());
    TestVif vif;
    vif.accept = false;  // netback's queue is full: it drops (and counts) every frame
    m.net.attach("xenbr0", "vif1.0", vif);
    sc_core::sc_spawn([&] {
        sc_core::wait(sc_core::sc_time::from_value(kStartNs * kNs));
        remote.add_endpoint(sender);
    });
    m.run();
    EXPECT_EQ(vif.rx.size(), 7u);
    EXPECT_EQ(m.stat("dom0.eth0.vif_refused"), 7u);
    EXPECT_EQ(m.stat("dom0.eth0.interrupts"), 1u);
    EXPECT_EQ(m.stat("dom0.eth0.polls"), 3u) << "3 + 3 + 1 frames";
    EXPECT_EQ(m.stat("dom0.eth0.polls_exhausted"), 2u);
}

// The remote host never crashes on what dom0's bridge floods at it: each frame is counted where
// Linux's receive path would leave it.
TEST(RemoteHost, GarbageFramesAreCountedNeverFatal) {
    StatsGroup root("");
    WireLink wire("wire0", WireParams{}, root);
    RemoteHost host("remote", RemoteHostParams{}, wire, root);
    UdpRrParams rr;
    rr.addr = {kGuestA, kRemote, ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 254), 40000, 12865};
    host.add_endpoint(std::make_unique<UdpRrServer>(rr, FlowOffloads{}, host.stats()));
    auto bytes = [](std::vector<std::uint8_t> b) {
        EthernetFrame f;
        f.bytes = std::move(b);
        return f;
    };
    std::vector<std::uint8_t> hdr;  // destination: the remote host; source: guest A
    for (std::uint8_t b : kRemote) hdr.push_back(b);
    for (std::uint8_t b : kGuestA) hdr.push_back(b);
    auto with = [&](std::uint16_t ethertype, std::vector<std::uint8_t> rest) {
        std::vector<std::uint8_t> b = hdr;
        b.push_back(ethertype >> 8);
        b.push_back(ethertype & 0xff);
        b.insert(b.end(), rest.begin(), rest.end());
        return b;
    };
    EthernetFrame good_udp = frame_to(kRemote, kGuestA, 10);
    EthernetFrame bad_sum = good_udp;
    bad_sum.bytes[24] ^= 0xff;  // the IPv4 header checksum (ip_rcv_core drops)
    EthernetFrame short_ip = good_udp;
    short_ip.bytes.resize(30);
    struct Case {
        const char* what;
        EthernetFrame frame;
        const char* counted;  // rx_unclaimed label, or "not_for_us"
    };
    const std::vector<Case> cases = {
        {"empty", bytes({}), "truncated"},
        {"shorter than the Ethernet header", bytes({1, 2, 3, 4, 5}), "truncated"},
        {"header only", bytes(with(0x0800, {})), "truncated"},
        {"ARP (not IPv4)", bytes(with(0x0806, std::vector<std::uint8_t>(28, 0))), "not_ipv4"},
        {"IHL below 5",
         bytes(with(0x0800, {0x41, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})),
         "bad_ip_header"},
        {"bad IPv4 header checksum", bad_sum, "bad_ip_checksum"},
        {"IP total length beyond the frame", short_ip, "truncated"},
        {"UDP to a port no endpoint has", good_udp, "ok"},
        {"unicast to another MAC", frame_to(kGuestB, kGuestA, 10), "not_for_us"},
        {"jumbo of zeros to broadcast", bytes(std::vector<std::uint8_t>(9000, 0xff)), "not_ipv4"},
    };
    sc_core::sc_spawn([&] {
        for (const Case& c : cases) host.receive(EthernetFrame(c.frame));
    });
    sc_core::sc_start();
    std::map<std::string, std::uint64_t> want;
    for (const Case& c : cases) ++want[c.counted];
    const CounterFamily* unclaimed = root.find_family("remote.rx_unclaimed");
    ASSERT_NE(unclaimed, nullptr);
    for (const auto& [label, n] : want) {
        if (label == "not_for_us")
            EXPECT_EQ(root.find_counter("remote.rx_not_for_us")->value(), n);
        else
            EXPECT_EQ(unclaimed->value(label), n) << label;
    }
    EXPECT_EQ(root.find_counter("remote.rx_frames")->value(), cases.size());
    EXPECT_EQ(root.find_counter("remote.tx_frames")->value(), 0u) << "nothing answered";
}

// Two line-rate senders share the line frame by frame (round-robin), back to back; a frame the
// wire refuses (a 2000-byte frame without GSO: oversize for the 1500-byte MTU) is dropped.
TEST(RemoteHost, SendersShareTheLineBackToBackRoundRobinAndRefusedFramesAreDropped) {
    StatsGroup root("");
    WireLink wire("wire0", WireParams{}, root);
    RemoteHost host("remote", RemoteHostParams{}, wire, root);
    struct Arrival {
        std::uint64_t at_ps;
        std::uint16_t port;
    };
    std::vector<Arrival> log;
    wire.set_sink(WireDirection::to_host, [&](EthernetFrame&& f) {
        log.push_back({sc_core::sc_time_stamp().value(), parse_packet(f).dst_port});
    });
    EthernetFrame oversize = frame_to(kGuestA, kRemote, 2000 - 42);
    host.add_endpoint(std::make_unique<ProbeEndpoint>(host.stats(), oversize, 0));
    for (std::uint16_t port : {5001, 5002}) {
        UdpStreamParams p;
        p.addr = host.address_to(kGuestA, guest_ipv4(1, 0), port, port);
        p.flow_id = port;
        p.count = 3;
        host.add_endpoint(std::make_unique<UdpStreamSender>(p, FlowOffloads{}, host.stats(),
                                                            "udp_stream_send_" + std::to_string(port)));
    }
    sc_core::sc_start();
    EXPECT_EQ(root.find_counter("remote.tx_refused")->value(), 1u);
    EXPECT_EQ(root.find_family("wire0.to_host.dropped")->value("oversize"), 1u);
    ASSERT_EQ(log.size(), 6u);
    // The refused frame at 0 costs 1 ns; then 1514-byte frames back to back, alternating flows.
    for (std::size_t k = 0; k < log.size(); ++k) {
        EXPECT_EQ(log[k].at_ps, 1000 + (k + 1) * wire_ps(1514) + kPropagationPs) << k;
        EXPECT_EQ(log[k].port, k % 2 ? 5002 : 5001) << k;
    }
}

}  // namespace
}  // namespace xensim
