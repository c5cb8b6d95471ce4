// The netperf workload's glue on the real platform (frontends/netperf_workload.h): its guest runs
// on simulated vCPUs with counted hypercalls, event channels and the VCPUOP_set_singleshot_timer /
// VIRQ_TIMER pair, over a NetDevice written here. The device is a loopback: transmit queues a
// frame if its ring (kRing frames) has room, kick spends kDelayCycles (the "wire"), hands the
// frames to the peer's engines (make_peer_endpoint, attached through Platform::NetperfHooks) and
// delivers what they answer through on_receive in the kicking vCPU's context, then wakes a queue
// it refused (on_tx_wake). The PV driver and dom0's network are not involved: the counts are the
// glue's. One Simulation per TEST: SystemC elaborates once per process.
#include <deque>

#include "frontends/netperf_udp.h"
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

constexpr unsigned kRing = 8;
constexpr Cycles kDelayCycles = 21000;  // 10 us at the default 2100 MHz

class LoopbackNetDevice : public NetDevice {
  public:
    bool connect(XenbusClient&, GuestServices&, unsigned) override { return connected_ = true; }
    bool connected() const override { return connected_; }
    MacAddress mac() const override { return {0x00, 0x16, 0x3e, 0x00, 0x00, 0x01}; }
    NetDeviceFeatures features() const override { return {}; }
    unsigned queues() const override { return 1; }
    unsigned queue_for_vcpu(unsigned) const override { return 0; }
    bool transmit(GuestServices&, unsigned, EthernetFrame&& frame) override {
        if (ring_.size() >= kRing) {
            ++refused;
            stopped_ = true;
            return false;
        }
        ring_.push_back(std::move(frame));
        ++transmitted;
        return true;
    }
    void kick(GuestServices& s, unsigned q) override {
        ++kicks;
        s.compute(kDelayCycles);
        while (!ring_.empty()) {
            EthernetFrame f = std::move(ring_.front());
            ring_.pop_front();
            const ParsedPacket p = parse_packet(f);
            for (auto& peer : peers)
                if (peer->receive(s.now_ns(), f, p)) break;
        }
        for (auto& peer : peers)
            while (EthernetFrame* f = peer->tx_frame(s.now_ns())) {
                EthernetFrame copy = *f;
                peer->tx_taken(s.now_ns());
                ++delivered;
                on_receive(s, q, std::move(copy));
            }
        if (stopped_) {
            stopped_ = false;
            on_tx_wake(s, q);
        }
    }

    StatsGroup group{"loopback_peer"};
    std::vector<std::unique_ptr<NetperfEndpoint>> peers;
    std::uint64_t transmitted = 0, refused = 0, kicks = 0, delivered = 0;

  private:
    bool connected_ = false, stopped_ = false;
    std::deque<EthernetFrame> ring_;
};

json scenario(const char* workload_patch, unsigned vcpus = 1) {
    json s = json::parse(R"({
        "name": "netperf",
        "platform": {"pcpus": 2},
        "domains": [
            {"name": "dom0", "type": "pv", "vcpus": 1, "memory_mb": 1024},
            {"name": "guest", "type": "hvm", "vcpus": 1, "memory_mb": 256,
             "nics": [{"mac": "00:16:3e:00:00:01"}]}
        ],
        "workloads": [{"type": "netperf", "name": "np", "guest": "guest"}]
    })");
    s["domains"][1]["vcpus"] = vcpus;
    s["workloads"][0].merge_patch(json::parse(workload_patch));
    return s;
}

Platform::NetperfHooks hooks(LoopbackNetDevice& dev) {
    Platform::NetperfHooks h;
    h.device = [&dev](Platform::DomainRuntime&, unsigned) -> NetDevice* { return &dev; };
    h.attach_peer = [&dev](Platform::WorkloadRuntime&, const NetperfSpec& spec, const std::string&) {
        for (unsigned k = 0; k < spec.streams; ++k)
            dev.peers.push_back(make_peer_endpoint(spec, k, FlowOffloads{}, dev.group));
    };
    return h;
}

const json& workload(const Simulation& sim) { return sim.report.at("workloads").at(0); }
std::uint64_t guest_hypercalls(const Simulation& sim, const std::string& name) {
    return count(sim.domain("guest").at("hypercalls"), name);
}

TEST(NetperfModel, UdpRrCountsTransactionsWithLatencyAndNeedsNoTimer) {
    LoopbackNetDevice dev;
    Simulation sim(scenario(R"({"test": "UDP_RR", "number": 10})"), hooks(dev));
    const json& w = workload(sim);
    EXPECT_TRUE(w.at("done").get<bool>());
    EXPECT_EQ(w.at("ops"), 10) << "ops are transactions (number 10)";
    EXPECT_EQ(w.at("failures"), 0);
    // One request out, one response in per transaction; each crosses the loopback's kick delay.
    EXPECT_EQ(dev.transmitted, 10u);
    EXPECT_EQ(dev.delivered, 10u);
    EXPECT_GE(w.at("latency_ns").at("min").get<std::uint64_t>(), 10'000u) << "at least the 10 us delay";
    const json& net = w.at("net");
    EXPECT_EQ(net.at("test"), "UDP_RR");
    EXPECT_EQ(net.at("transactions"), 10);
    EXPECT_EQ(net.at("tx_frames"), 10);
    EXPECT_EQ(net.at("rx_frames"), 10);
    EXPECT_EQ(net.at("payload_errors"), 0);
    EXPECT_EQ(net.at("timer_arms"), 0);
    EXPECT_EQ(guest_hypercalls(sim, "vcpu_op/VCPUOP_set_singleshot_timer"), 0u);
}

TEST(NetperfModel, RateLimitedUdpStreamSleepsOnTheOneShotTimer) {
    // rate_pps 50000: a datagram every 20 us. The first leaves at once; each of the other 19 is
    // due in the future when the vCPU looks, so it arms VCPUOP_set_singleshot_timer and halts
    // until VIRQ_TIMER (netperf_workload.h "Timers").
    LoopbackNetDevice dev;
    Simulation sim(scenario(R"({"test": "UDP_STREAM", "number": 20, "rate_pps": 50000, "message_size": 64})"),
                   hooks(dev));
    const json& w = workload(sim);
    EXPECT_TRUE(w.at("done").get<bool>());
    EXPECT_EQ(w.at("ops"), 20) << "ops are datagrams sent";
    EXPECT_EQ(w.at("failures"), 0);
    EXPECT_EQ(w.at("net").at("timer_arms"), 19);
    EXPECT_EQ(w.at("net").at("timer_spins"), 0);
    EXPECT_EQ(guest_hypercalls(sim, "vcpu_op/VCPUOP_set_singleshot_timer"), 19u);
    EXPECT_GE(w.at("duration_ns").get<std::uint64_t>(), 19u * 20'000u);
    ASSERT_EQ(dev.peers.size(), 1u);
    const auto& rx = dynamic_cast<const UdpStreamReceiver&>(*dev.peers[0]);
    EXPECT_EQ(rx.received.value(), 20u);
    EXPECT_EQ(rx.lost.value(), 0u);
    EXPECT_EQ(rx.payload_errors.value(), 0u);
}

TEST(NetperfModel, PingAtAnIntervalTimesEachReply) {
    // rate_pps 20000: a request every 50 us (ping -i 0.00005); the reply comes back from the
    // loopback's kick, 10 us later, so each RTT is at least the delay and the next request waits
    // for its time on the one-shot timer: 4 arms for 5 requests. The last reply ends the run
    // (ping's -W wait only runs while a reply is missing).
    LoopbackNetDevice dev;
    Simulation sim(scenario(R"({"test": "ping", "number": 5, "rate_pps": 20000})"), hooks(dev));
    const json& w = workload(sim);
    EXPECT_TRUE(w.at("done").get<bool>());
    EXPECT_EQ(w.at("ops"), 5) << "ops are echo replies";
    EXPECT_EQ(w.at("failures"), 0);
    EXPECT_GE(w.at("latency_ns").at("min").get<std::uint64_t>(), 10'000u);
    EXPECT_EQ(w.at("net").at("transactions"), 5);
    EXPECT_EQ(w.at("net").at("drops").at("lost_by_sequence"), 0);
    EXPECT_EQ(guest_hypercalls(sim, "vcpu_op/VCPUOP_set_singleshot_timer"),
              w.at("net").at("timer_arms").get<std::uint64_t>());
    EXPECT_EQ(w.at("net").at("timer_arms"), 4);
    EXPECT_GE(w.at("duration_ns").get<std::uint64_t>(), 4u * 50'000u);
}

TEST(NetperfModel, AFullDeviceQueueStopsTheStreamUntilTheWake) {
    // Unlimited rate: the loopback takes kRing frames, refuses the next, and wakes the queue from
    // its kick; the refused frame is sent unchanged after the wake (no loss, no duplicate).
    LoopbackNetDevice dev;
    Simulation sim(scenario(R"({"test": "UDP_STREAM", "number": 50})"), hooks(dev));
    const json& w = workload(sim);
    EXPECT_EQ(w.at("ops"), 50);
    EXPECT_EQ(dev.transmitted, 50u);
    EXPECT_EQ(dev.refused, 6u) << "50 frames in batches of 8: six full batches end with a refusal";
    EXPECT_EQ(w.at("net").at("tx_refused"), 6);
    EXPECT_EQ(w.at("net").at("tx_wakes"), 6);
    const auto& rx = dynamic_cast<const UdpStreamReceiver&>(*dev.peers.at(0));
    EXPECT_EQ(rx.received.value(), 50u);
    EXPECT_EQ(rx.lost.value() + rx.duplicates.value() + rx.out_of_order.value(), 0u);
}

TEST(NetperfModel, TwoStreamsRunOnTwoVcpus) {
    LoopbackNetDevice dev;
    Simulation sim(scenario(R"({"test": "UDP_RR", "number": 5, "streams": 2})", 2), hooks(dev));
    const json& w = workload(sim);
    EXPECT_TRUE(w.at("done").get<bool>());
    EXPECT_EQ(w.at("ops"), 10) << "5 transactions on each of 2 streams";
    EXPECT_EQ(w.at("net").at("streams"), 2);
    EXPECT_EQ(w.at("failures"), 0);
    // vCPU 1 was started with an IPI (EVTCHNOP_bind_ipi per vCPU, then a send).
    EXPECT_GE(guest_hypercalls(sim, "event_channel_op/EVTCHNOP_send"), 1u);
    for (const json& v : sim.domain("guest").at("vcpus"))
        EXPECT_GT(v.at("guest_cycles").get<std::uint64_t>(), 0u);
}

// A device hook that finds no device for the nic (the platform's own wiring gives netfront).
TEST(NetperfModel, WithoutANetworkDeviceTheScenarioIsRefusedAtBuild) {
    Platform::NetperfHooks none;
    none.device = [](Platform::DomainRuntime&, unsigned) -> NetDevice* { return nullptr; };
    try {
        Simulation sim(scenario(R"({"test": "UDP_RR", "number": 1})"), none);
        FAIL() << "expected a ScenarioError";
    } catch (const ScenarioError& e) {
        EXPECT_NE(std::string(e.what()).find("guest \"guest\" has no network device for nic 0"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace xensim::testing
