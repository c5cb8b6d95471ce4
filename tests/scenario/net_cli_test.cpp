// The PV network path as a user runs it: every shipped net-* scenario through the xensim binary,
// report.json checked for what the traffic did (every frame delivered intact, nothing dropped) and
// for the per-packet work each path must cost (docs/network.md, netfront/netback headers).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/scenario/cli_util.h"

namespace {

using nlohmann::json;
using namespace cli_testing;

json run_scenario(const std::string& name, const std::string& extra = "") {
    fs::path dir = temp_dir("net-" + name);
    Result r = xensim("run " + src("scenarios/" + name + ".json") + " --out " + dir.string() + extra);
    EXPECT_EQ(r.status, 0) << r.output;
    json report = read_json(dir / "report.json");
    fs::remove_all(dir);
    return report;
}

const json& net(const json& report) { return report.at("workloads").at(0).at("net"); }

// Every shipped network scenario finishes its operations with no payload error and no drop
// anywhere on the path.
TEST(NetCli, EveryShippedScenarioMovesItsTrafficIntact) {
    struct Case {
        const char* name;
        std::uint64_t ops;
    };
    for (const Case& c :
         {Case{"net-udp-stream-64", 20000}, Case{"net-udp-stream-1500", 20000}, Case{"net-udp-rr", 2000},
          Case{"net-udp-rr-guests", 2000}, Case{"net-ping", 100}, Case{"net-profile-gplpv", 2000},
          Case{"net-profile-winpv", 2000}, Case{"net-queues-4", 4 * 20000}}) {
        SCOPED_TRACE(c.name);
        json r = run_scenario(c.name);
        const json& w = r.at("workloads").at(0);
        EXPECT_EQ(w.at("ops"), c.ops);
        EXPECT_EQ(w.at("failures"), 0u);
        EXPECT_EQ(net(r).at("payload_errors"), 0u);
        for (const auto& [where, n] : net(r).at("drops").items()) EXPECT_EQ(n, 0u) << where;
    }
}

// 60-byte frames: one slot and one grant each, the whole frame grant-copied into dom0 (it is below
// XEN_NETBACK_TX_COPY_LEN), nothing mapped; the remote host verified every datagram.
TEST(NetCli, MinimumFramesAreCopiedWholeAndNeverMapped) {
    json r = run_scenario("net-udp-stream-64");
    const json& t = net(r).at("totals");
    EXPECT_EQ(t.at("guest_tx_frames"), 20000u);
    EXPECT_EQ(t.at("guest_tx_bytes"), 20000u * 60);
    EXPECT_EQ(t.at("frontend_tx_slots"), 20000u);
    EXPECT_EQ(t.at("grant_copies"), 20000u);
    EXPECT_EQ(t.at("bytes_copied"), 20000u * 60);
    EXPECT_EQ(t.at("grant_maps"), 0u);
    // netfront grants one slot per frame and 256 posted receive buffers (NET_RX_RING_SIZE).
    EXPECT_EQ(t.at("grants_granted"), 20000u + 256);
    const json& remote = r.at("stats").at("remote");
    EXPECT_EQ(remote.at("rx_frames"), 20000u);
    EXPECT_EQ(remote.at("udp-stream-64").at("stream0").at("received"), 20000u);
    EXPECT_EQ(remote.at("udp-stream-64").at("stream0").at("payload_errors"), 0u);
}

// 1514-byte frames: the head (128 bytes) is copied and the rest of the first slot grant-mapped,
// each map undone by the dealloc path (one unmap per map: grants released).
TEST(NetCli, FullFramesCopyTheHeadMapTheRestAndUnmapEveryMap) {
    json r = run_scenario("net-udp-stream-1500");
    const json& t = net(r).at("totals");
    EXPECT_EQ(t.at("guest_tx_frames"), 20000u);
    EXPECT_EQ(t.at("frontend_tx_slots"), 2u * 20000) << "head slot + one frag slot per frame";
    EXPECT_EQ(t.at("grant_copies"), 20000u);
    EXPECT_EQ(t.at("bytes_copied"), 20000u * 128);
    EXPECT_EQ(t.at("grant_maps"), 20000u);
    EXPECT_EQ(t.at("grant_unmaps"), t.at("grant_maps"));
}

// UDP_RR: per transaction one frame each way, the response grant-copied into a posted buffer by
// netback's guest-rx kthread; the guest's tx notification is never suppressed (one transaction
// outstanding), and the latency is at least the NIC's interrupt moderation (50 us).
TEST(NetCli, RequestResponseCostsOneFrameEachWay) {
    json r = run_scenario("net-udp-rr");
    const json& t = net(r).at("totals");
    EXPECT_EQ(t.at("guest_tx_frames"), 2000u);
    EXPECT_EQ(t.at("guest_rx_frames"), 2000u);
    EXPECT_EQ(t.at("frontend_tx_notifications_sent"), 2000u);
    EXPECT_EQ(t.at("grant_copies"), 2u * 2000);
    const json& lat = r.at("workloads").at(0).at("latency_ns");
    EXPECT_GE(lat.at("p50").get<double>(), 50000.0);
}

// Guest to guest: the request and the response each cross dom0's bridge from one vif to the other
// (copied there), so each guest sends and receives one frame per transaction and nothing reaches
// the NIC; without the NIC's interrupt moderation the transaction is faster than to the wire.
TEST(NetCli, GuestToGuestCrossesTheBridgeAndNeverTheWire) {
    json r = run_scenario("net-udp-rr-guests");
    const json& t = net(r).at("totals");
    EXPECT_EQ(t.at("guest_tx_frames"), 2000u);
    EXPECT_EQ(t.at("guest_rx_frames"), 2000u);
    EXPECT_EQ(r.at("stats").at("dom0").at("eth0").at("tx_frames"), 1u)
        << "only the first request, flooded before the bridge learned guest2's address";
    EXPECT_LT(r.at("workloads").at(0).at("latency_ns").at("p50").get<double>(), 50000.0);
}

// Four queues on four vCPUs against one: the stream rate rises (the single queue's vCPU and its
// dom0 vCPU are the bottleneck of the 1-queue run).
TEST(NetCli, FourQueuesCarryMorePacketsThanOne) {
    json four = run_scenario("net-queues-4");
    json one = run_scenario("net-queues-4", " --set domains.1.netfront.queues=1");
    EXPECT_GT(net(four).at("pps").get<double>(), 1.5 * net(one).at("pps").get<double>());
    // Ring occupancy with several queues: the peak is one queue's (a ring never holds more than
    // netfront_tx_slot_available lets in, 237), not a sum over the four.
    EXPECT_EQ(net(four).at("ring_occupancy").at("tx_in_flight_peak"), 237u);
    EXPECT_LE(net(four).at("ring_occupancy").at("tx_in_flight_mean").get<double>(), 237.0);
}

// One guest's netfront misbehaves (frontends/netif_misbehaviour.h): every case is answered as Linux
// netback answers it, the last (a producer more than a ring ahead) disables its vif; the other
// guest's UDP_RR with the remote host meanwhile completes every transaction intact.
TEST(NetCli, AMisbehavingNetfrontIsAnsweredAsLinuxAndTheOtherGuestIsUntouched) {
    json r = run_scenario("net-misbehaving-guest");
    const json* attacks = nullptr;
    const json* victim = nullptr;
    for (const json& w : r.at("workloads")) {
        if (w.at("name") == "attacks") attacks = &w;
        if (w.at("name") == "victim-rr") victim = &w;
    }
    ASSERT_TRUE(attacks && victim);
    EXPECT_EQ(attacks->at("ops"), 9u);
    EXPECT_EQ(attacks->at("failures"), 0u);
    for (const json& c : attacks->at("misbehaviour").at("cases"))
        EXPECT_TRUE(c.at("ok").get<bool>()) << c.dump();
    const json& vif1 = r.at("stats").at("dom0").at("vif_1_0");
    EXPECT_EQ(vif1.at("fatal_errors"), 1u);
    EXPECT_EQ(vif1.at("queue0").at("tx_fatal").at("impossible_requests"), 1u);
    EXPECT_EQ(victim->at("ops"), 2000u);
    EXPECT_EQ(victim->at("failures"), 0u);
    const json& n = victim->at("net");
    EXPECT_EQ(n.at("transactions"), 2000u);
    EXPECT_EQ(n.at("payload_errors"), 0u);
    for (const auto& [where, count] : n.at("drops").items()) {
        // The NIC's group is shared by every vif: its one refusal is the copy of the victim's first
        // request (flooded before the bridge learned the remote host's address) that the attacker's
        // disabled vif refused (Netback::deliver), not a frame of the victim's.
        if (where == "network") {
            EXPECT_EQ(count, 1u);
            EXPECT_EQ(vif1.at("rx_dropped"), 1u);
        } else {
            EXPECT_EQ(count, 0u) << where;
        }
    }
    const json& vif2 = r.at("stats").at("dom0").at("vif_2_0");
    EXPECT_EQ(vif2.at("fatal_errors"), 0u);
    EXPECT_EQ(vif2.at("rx_dropped"), 0u);
    EXPECT_EQ(vif2.at("queue0").at("tx_dropped"), 0u);
}

// TCP_STREAM with the guest's TSO (64 KiB super-packets, GSO extra slot, segmented by the NIC)
// and without (`netfront.tso` false: MSS-sized frames): the remote host receives the same
// 2000 x 16 KiB of stream data intact either way; with TSO under a twentieth of the frames carry
// it, faster; every grant netback maps for the frames is unmapped again.
TEST(NetCli, TcpStreamWithAndWithoutTso) {
    json gso = run_scenario("net-tcp-stream");
    json nogso = run_scenario("net-tcp-stream", " --set domains.1.netfront.tso=false");
    for (const json* r : {&gso, &nogso}) {
        const json& rx = r->at("stats").at("remote").at("tcp-stream").at("stream0");
        EXPECT_EQ(rx.at("data_bytes_received"), 2000u * 16384);
        EXPECT_EQ(rx.at("payload_errors"), 0u);
        EXPECT_EQ(net(*r).at("payload_errors"), 0u);
    }
    const std::uint64_t frames_gso = net(gso).at("totals").at("guest_tx_frames");
    const std::uint64_t frames_nogso = net(nogso).at("totals").at("guest_tx_frames");
    EXPECT_LT(frames_gso * 20, frames_nogso);
    EXPECT_GT(net(gso).at("gbit_per_s").get<double>(), net(nogso).at("gbit_per_s").get<double>());
    EXPECT_EQ(net(nogso).at("totals").at("grant_maps"), net(nogso).at("totals").at("grant_unmaps"));
}

// Ring occupancy as the report gives it (workloads[].net.ring_occupancy). An unlimited 64-byte
// stream fills the transmit ring until netfront stops its queue: netfront_tx_slot_available
// wants fewer than NET_TX_RING_SIZE - XEN_NETIF_NR_SLOTS_MIN - 1 = 256 - 18 - 1 = 237 slots in
// flight, so 237 is the peak. UDP_RR keeps one slot in flight and finds one response per poll;
// Linux refills every posted slot at once (255 of 256 buffers still empty when a packet waits),
// the gplpv profile only when 64 are free (rx_refill_batch), so its ring runs down to 192.
TEST(NetCli, RingOccupancyShowsAFullTransmitRingAndEachProfilesRefill) {
    const json stream = net(run_scenario("net-udp-stream-64")).at("ring_occupancy");
    EXPECT_EQ(stream.at("tx_ring_slots"), 256u);
    EXPECT_EQ(stream.at("tx_in_flight_peak"), 237u);
    EXPECT_GT(stream.at("tx_in_flight_mean").get<double>(), 100.0) << "the ring runs nearly full";
    EXPECT_EQ(stream.at("tx_pushes"), 20000u) << "one push per frame, as Linux 6.1 transmits";
    EXPECT_EQ(stream.at("rx_polls"), 0u) << "nothing comes back to a UDP_STREAM sender";
    EXPECT_TRUE(stream.at("rx_empty_buffers_low").is_null());

    const json linux = net(run_scenario("net-udp-rr")).at("ring_occupancy");
    EXPECT_EQ(linux.at("tx_in_flight_mean").get<double>(), 1.0);
    EXPECT_EQ(linux.at("tx_in_flight_peak"), 1u);
    EXPECT_EQ(linux.at("rx_polls"), 2000u);
    EXPECT_EQ(linux.at("rx_waiting_mean").get<double>(), 1.0);
    EXPECT_EQ(linux.at("rx_empty_buffers_low"), 255u);

    const json gplpv = net(run_scenario("net-profile-gplpv")).at("ring_occupancy");
    EXPECT_EQ(gplpv.at("rx_empty_buffers_low"), 256u - 64);
    EXPECT_LT(gplpv.at("rx_empty_buffers_mean").get<double>(), 255.0);
    EXPECT_GT(gplpv.at("rx_empty_buffers_mean").get<double>(), 192.0);
}

// `xensim compare` over the driver profiles on one UDP_RR workload, as an architect compares
// them: linux against gplpv moves the receive-side figures gplpv's batched refill changes
// (notifications suppressed, empty buffers) and nothing of the transmit path; linux against
// winpv on a one-vCPU guest (one queue either way) moves nothing.
TEST(NetCli, CompareShowsWhatEachDriverProfileChanges) {
    fs::path d = temp_dir("net-compare");
    auto run = [&](const std::string& name) {
        Result r = xensim("run " + src("scenarios/" + name + ".json") + " --out " + (d / name).string());
        EXPECT_EQ(r.status, 0) << r.output;
        return (d / name / "report.json").string();
    };
    const std::string linux = run("net-udp-rr"), gplpv = run("net-profile-gplpv"),
                      winpv = run("net-profile-winpv");

    Result g =
        xensim("compare " + linux + " " + gplpv + " --tolerance 0 --json " + (d / "gplpv.json").string());
    EXPECT_EQ(g.status, 1) << "figures moved\n" << g.output;
    auto row = [](const Result& r, const std::string& metric) {
        const std::size_t at = r.output.find("  " + metric + " ");
        return at == std::string::npos ? std::string() : r.output.substr(at, r.output.find('\n', at) - at);
    };
    for (const char* m : {"net.per_request.frontend_rx_notifications_suppressed",
                          "net.ring_occupancy.rx_empty_buffers_mean"}) {
        EXPECT_NE(row(g, m).find("MOVED"), std::string::npos) << m << "\n" << g.output;
    }
    for (const char* m : {"net.per_request.frontend_tx_slots", "net.per_request.grant_copies",
                          "net.ring_occupancy.tx_in_flight_mean", "per_request.exits_total"}) {
        EXPECT_FALSE(row(g, m).empty()) << m << "\n" << g.output;
        EXPECT_EQ(row(g, m).find("MOVED"), std::string::npos) << m << "\n" << g.output;
    }
    const json cj = read_json(d / "gplpv.json");
    EXPECT_GE(cj.at("moved").get<int>(), 2);

    Result w = xensim("compare " + linux + " " + winpv + " --tolerance 0");
    EXPECT_EQ(w.status, 0) << w.output;
    EXPECT_NE(w.output.find("verdict: pass"), std::string::npos) << w.output;
    fs::remove_all(d);
}

// Same scenario and seed: the same report, bit for bit (but the host section).
// The shipped rate limit (nics[].rate "10Mb/s@10ms": 12 500 bytes per 10 ms window, xl's
// arithmetic): the remote host gets at most the credit of the windows the run spanned (the first
// at connect, then one per window: netback's tx_credit_exceeded / tx_add_credit), netback's credit
// timer ran, and the same scenario with --set rate=100Mb/s@10ms (125 000 bytes per window) moves
// more than five times as much in the same 200 ms.
TEST(NetCli, RateLimitHoldsTheStreamToItsCreditAndASetRaisesIt) {
    auto rx_bytes = [](const json& r) {
        return r.at("stats").at("remote").at("rx_bytes").get<std::uint64_t>();
    };
    json slow = run_scenario("net-rate-limit");
    const json& w = slow.at("workloads").at(0);
    EXPECT_EQ(w.at("window").at("closed_by"), "finished");
    const std::uint64_t end_ns = w.at("window").at("end_ns");
    EXPECT_LE(rx_bytes(slow), 12500u * (1 + end_ns / 10'000'000));
    EXPECT_GE(rx_bytes(slow), 12500u * 19) << "20 windows in 200 ms, less a window of slack";
    EXPECT_EQ(net(slow).at("payload_errors"), 0u);
    EXPECT_GT(slow.at("domains").at(0).at("hypercalls").value("vcpu_op/VCPUOP_set_singleshot_timer", 0u), 0u)
        << "dom0 programmed its one-shot timer for the credit timer";
    json fast = run_scenario("net-rate-limit", " --set domains.1.nics.0.rate=100Mb/s@10ms");
    EXPECT_GT(rx_bytes(fast), 5 * rx_bytes(slow));
    EXPECT_LE(rx_bytes(fast),
              125000u * (1 + fast.at("workloads").at(0).at("window").at("end_ns").get<std::uint64_t>() /
                                 10'000'000));
}

TEST(NetCli, SameSeedSameReport) {
    json a = run_scenario("net-udp-rr"), b = run_scenario("net-udp-rr");
    a.erase("host");
    b.erase("host");
    a.at("scenario").erase("file");
    b.at("scenario").erase("file");
    EXPECT_EQ(a, b);
}

}  // namespace
