// A vif's transmit rate limit end to end: the scenario's nics[].rate (xl's syntax) -> the
// toolstack's `rate` node -> netback's credit scheduler (xen_net_read_rate, tx_credit_exceeded)
// -> the queue's credit timer, armed with mod_timer on dom0's kernel, programmed with
// VCPUOP_set_singleshot_timer and fired by VIRQ_TIMER -> xenvif_tx_credit_callback resumes NAPI.
// The guest runs netperf against the remote host on the wire. Bounds come from Linux 6.1's
// credit rules (netif_ring_backend.h, "Credit"), not from a run. One Simulation per TEST.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

// 10Mb/s@10ms: xlu_vif_parse_rate gives 1 250 000 B/s x 10 000 us = 12 500 bytes per 10 ms window.
constexpr std::uint64_t kCreditBytes = 12500;
constexpr std::uint64_t kWindowNs = 10'000'000;
constexpr std::uint64_t kFrameBytes = 1514;  // a 1472-byte UDP payload + UDP 8 + IPv4 20 + Ethernet 14

json scenario(const char* rate, const char* workload) {
    json s = json::parse(R"({
        "name": "net-rate",
        "platform": {"pcpus": 2},
        "stop": {"sim_time_ms": 2000},
        "domains": [
            {"name": "dom0", "type": "pv", "vcpus": 1, "memory_mb": 1024},
            {"name": "guest", "type": "hvm", "vcpus": 1, "memory_mb": 512,
             "nics": [{"mac": "00:16:3e:00:00:01"}]}
        ],
        "workloads": [{"type": "netperf", "name": "np", "guest": "guest", "peer": "wire",
                       "message_size": 1472}]
    })");
    if (rate) s["domains"][1]["nics"][0]["rate"] = rate;
    s["workloads"][0].merge_patch(json::parse(workload));
    return s;
}

std::uint64_t dom0_hypercalls(const Simulation& sim, const std::string& op) {
    return count(sim.domain("dom0").at("hypercalls"), op);
}
const json& window(const Simulation& sim) { return sim.report.at("workloads").at(0).at("window"); }
std::uint64_t remote_rx_bytes(const Simulation& sim) {
    return sim.report.at("stats").at("remote").at("rx_bytes").get<std::uint64_t>();
}

// UDP_STREAM without limit of its own for 200 ms: the ring is never empty, so netback spends every
// window's credit. Upper bound (tx_add_credit / tx_credit_exceeded): the first window starts with
// credit_bytes at connect, and each further credit_bytes comes at least a window after the last
// (the timer at window_start + period, or a round after that time), so by time t at most
// credit_bytes x (1 + floor(t / window)) left. Lower bound: from the stream's start every window's
// credit is spent but for less than one frame, and the timer fires on time: at least credit_bytes x
// floor(duration / window) - one frame.
TEST(NetRate, UdpStreamIsHeldToTheRateWithinOneCreditWindow) {
    Simulation sim(scenario("10Mb/s@10ms", R"({"test": "UDP_STREAM", "duration_ms": 200})"));
    const json& w = window(sim);
    EXPECT_EQ(w.at("closed_by"), "finished") << "the stream ran its 200 ms and ended: no stall";
    const std::uint64_t end = w.at("end_ns"), start = w.at("start_ns");
    const std::uint64_t rx = remote_rx_bytes(sim);
    EXPECT_LE(rx, kCreditBytes * (1 + end / kWindowNs));
    EXPECT_GE(rx, kCreditBytes * ((end - start) / kWindowNs) - kFrameBytes);
    EXPECT_EQ(rx % kFrameBytes, 0u) << "whole 1514-byte frames";
    EXPECT_GT(sim.stat("dom0.vif_1_0.queue0.tx_credit_stalls"), 0u);
    // One arm per window in which a round ran out of credit (the deadline is the window's end);
    // each fired but possibly the last (pending when the run ended).
    const std::uint64_t arms = sim.stat("dom0.vif_1_0.credit_timer_arms");
    const std::uint64_t fires = sim.stat("dom0.vif_1_0.credit_timer_fires");
    EXPECT_GE(arms, (end - start) / kWindowNs - 1);
    EXPECT_LE(arms, 1 + end / kWindowNs) << "at most one stall arms it per window";
    EXPECT_LE(arms - fires, 1u);
    // dom0's kernel bound VIRQ_TIMER once (lazily, on its one vCPU) and programmed the one-shot
    // timer once per arm: each deadline was the earliest, and nothing else was pending.
    EXPECT_EQ(dom0_hypercalls(sim, "event_channel_op/EVTCHNOP_bind_virq"), 1u);
    EXPECT_EQ(dom0_hypercalls(sim, "vcpu_op/VCPUOP_set_singleshot_timer"), arms);
    EXPECT_EQ(sim.report.at("stats").at("remote").at("np").at("stream0").at("payload_errors"), 0u);
}

// The control: no rate, no credit timer, no timer hypercall in dom0; 20 ms of the same stream move
// far more than 10 Mbit/s allows (the wire's 10 Gbit/s is the limit here).
TEST(NetRate, WithoutARateTheStreamIsUnlimitedAndDom0ArmsNoTimer) {
    Simulation sim(scenario(nullptr, R"({"test": "UDP_STREAM", "duration_ms": 20})"));
    const json& w = window(sim);
    const std::uint64_t ns = w.at("end_ns").get<std::uint64_t>() - w.at("start_ns").get<std::uint64_t>();
    const std::uint64_t rx = remote_rx_bytes(sim);
    EXPECT_GT(rx * 1'000'000'000ull / ns, 20 * kCreditBytes * 100) << "more than 20 x 1.25 MB/s";
    EXPECT_EQ(sim.stat("dom0.vif_1_0.queue0.tx_credit_stalls"), 0u);
    EXPECT_EQ(sim.stat("dom0.vif_1_0.credit_timer_arms"), 0u);
    EXPECT_EQ(dom0_hypercalls(sim, "event_channel_op/EVTCHNOP_bind_virq"), 0u);
    EXPECT_EQ(dom0_hypercalls(sim, "vcpu_op/VCPUOP_set_singleshot_timer"), 0u);
}

// The stall that needs the timer: UDP_RR sends one 1514-byte request and waits for its response, so
// once the credit is gone nothing but the timer can move the queue. Windows (tx_add_credit): 12 500
// -> 8 requests (12 112) leave 388; the 9th stops the round and arms the timer at the end of the
// first window; it adds 12 500 (12 888): 8 more leave 776; the 17th arms it again; 13 276 then
// carry the last 4. So 20 transactions complete after exactly two timer runs, the last one at
// least two windows after connect.
TEST(NetRate, RequestResponseResumesOnlyByTheCreditTimerAndCompletes) {
    Simulation sim(scenario("10Mb/s@10ms", R"({"test": "UDP_RR", "number": 20})"));
    const json& wl = sim.report.at("workloads").at(0);
    EXPECT_TRUE(wl.at("done").get<bool>());
    EXPECT_EQ(wl.at("ops"), 20);
    EXPECT_EQ(wl.at("failures"), 0);
    EXPECT_EQ(sim.stat("dom0.vif_1_0.credit_timer_arms"), 2u);
    EXPECT_EQ(sim.stat("dom0.vif_1_0.credit_timer_fires"), 2u);
    EXPECT_EQ(sim.stat("dom0.vif_1_0.queue0.tx_credit_stalls"), 2u);
    EXPECT_EQ(dom0_hypercalls(sim, "vcpu_op/VCPUOP_set_singleshot_timer"), 2u);
    EXPECT_EQ(dom0_hypercalls(sim, "event_channel_op/EVTCHNOP_bind_virq"), 1u);
    EXPECT_GE(window(sim).at("end_ns").get<std::uint64_t>(), 2 * kWindowNs);
    EXPECT_EQ(sim.report.at("stats").at("remote").at("rx_frames"), 20u);
}

}  // namespace
}  // namespace xensim::testing
