// The PV network path through the whole platform: a guest program using Netfront -> netif rings ->
// event channels -> dom0's Netback -> a VifNetwork written here (an echo: every frame comes back
// to the vif it came from with its MACs swapped, its zero-copy pages released at once) -> back to
// the guest. Expected counts are derived from Linux 6.1 xen-netfront.c / xen-netback (as
// frontends/netfront.cpp and models/dom0/netback.cpp follow them) and the ring engines, not read
// off a run. One Simulation per TEST: SystemC elaborates once per process.
#include <map>

#include "frontends/netfront.h"
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

// The echo network: attach succeeds for xenbr0 only (the bridge write_vif names).
class EchoNetwork : public VifNetwork {
  public:
    int attach(const std::string& bridge, const std::string& name, VifPort& port) override {
        if (bridge != bridge_name) return -1;
        ports.push_back(&port);
        names.push_back(name);
        return static_cast<int>(ports.size() - 1);
    }
    void detach(int handle) override {
        ++detached;
        (void)handle;
    }
    void transmit(BackendServices& s, int handle, EthernetFrame&& frame,
                  std::function<void(BackendServices&)> release) override {
        ++frames;
        if (release) release(s);  // the bytes are ours from the call on: release at once
        for (int i = 0; i < 6; ++i) std::swap(frame.bytes[i], frame.bytes[6 + i]);
        ports.at(static_cast<std::size_t>(handle))->deliver(s, std::move(frame));
    }
    std::vector<VifPort*> ports;
    std::vector<std::string> names;
    unsigned frames = 0, detached = 0;
    std::string bridge_name = "xenbr0";
};

struct NetSim {
    NetSim(const json& scenario, EchoNetwork* net)
        : scenario_(parse_scenario(scenario.dump(), "inline")), platform(scenario_, tracer, net) {}
    void run() {
        result = platform.run();
        report = platform.report(result);
    }
    const json& domain(const std::string& name) const {
        for (const auto& d : report.at("domains"))
            if (d.at("name") == name) return d;
        throw std::out_of_range("no domain " + name);
    }
    std::uint64_t hypercalls(const std::string& dom, const std::string& op) const {
        return count(domain(dom).at("hypercalls"), op);
    }
    std::uint64_t stat(const std::string& dotted) const {
        const Counter* c = platform.stats().find_counter(dotted);
        if (!c) throw std::out_of_range("no counter " + dotted);
        return c->value();
    }

  private:
    Scenario scenario_;

  public:
    Tracer tracer;
    Platform platform;
    RunResult result;
    json report;
};

json net_scenario(unsigned dom0_vcpus = 1, unsigned guest_vcpus = 1, unsigned nics = 1) {
    json s = json::parse(R"({
        "name": "net",
        "platform": {"pcpus": 2},
        "stop": {"sim_time_ms": 200},
        "domains": [
            {"name": "dom0", "type": "pv", "vcpus": 1, "memory_mb": 1024},
            {"name": "guest", "type": "hvm", "vcpus": 1, "memory_mb": 256, "nics": [], "grant_frames": 4}
        ],
        "workloads": []
    })");
    s["domains"][0]["vcpus"] = dom0_vcpus;
    s["domains"][1]["vcpus"] = guest_vcpus;
    for (unsigned i = 0; i < nics; ++i)
        s["domains"][1]["nics"].push_back({{"mac", "00:16:3e:00:00:0" + std::to_string(i + 1)}});
    return s;
}

// A frame of `len` bytes from `src` to a made-up peer, payload numbered by `seq`.
EthernetFrame make_frame(const MacAddress& src, unsigned len, unsigned seq) {
    EthernetFrame f;
    f.bytes.resize(len);
    const std::uint8_t peer[6] = {0x02, 0, 0, 0, 0, 0x99};
    std::copy(peer, peer + 6, f.bytes.begin());
    std::copy(src.begin(), src.end(), f.bytes.begin() + 6);
    f.bytes[12] = 0x88;  // IEEE 802 local experimental EtherType 88B5
    f.bytes[13] = 0xb5;
    for (unsigned i = 14; i < len; ++i) f.bytes[i] = static_cast<std::uint8_t>(seq * 7 + i);
    return f;
}

// What the guest program saw.
struct GuestLog {
    bool connected = false;
    std::map<std::string, std::string> keys;  // the frontend's and backend's nodes after connect
    std::vector<EthernetFrame> sent, received;
    NetDeviceFeatures features;
    unsigned queues = 0;
    bool split = false;
    std::size_t grants_after = 0;          // held while connected, after the last echo
    std::size_t grants_left_at_close = 0;  // close(): still mapped by the backend
    std::size_t grants_after_close = 0;
};

const char* kFrontKeys[] = {"tx-ring-ref",
                            "rx-ring-ref",
                            "event-channel",
                            "event-channel-tx",
                            "event-channel-rx",
                            "request-rx-copy",
                            "feature-rx-notify",
                            "feature-sg",
                            "feature-gso-tcpv4",
                            "feature-gso-tcpv6",
                            "feature-ipv6-csum-offload",
                            "multi-queue-num-queues",
                            "queue-0/tx-ring-ref",
                            "queue-3/event-channel-rx",
                            "state"};
const char* kBackKeys[] = {"feature-sg",
                           "feature-gso-tcpv4",
                           "feature-gso-tcpv6",
                           "feature-ipv6-csum-offload",
                           "feature-rx-copy",
                           "feature-rx-flip",
                           "feature-multicast-control",
                           "feature-dynamic-multicast-control",
                           "feature-split-event-channels",
                           "multi-queue-max-queues",
                           "state"};

// The guest program: connect vif `devid`, then send each frame and wait for its echo before the
// next (one frame in flight: every count per frame is deterministic). `before` may change the
// netfront parameters.
Platform::GuestRole echo_program(
    GuestLog& log, std::vector<unsigned> lengths, NetfrontParams params = {},
    std::function<void(Netfront&, GuestServices&, XenGuest&)> after_connect = {}) {
    return [&log, lengths, params, after_connect](GuestServices& s, XenGuest& guest, XenbusClient& xb,
                                                  StatsGroup& stats) {
        static std::vector<std::unique_ptr<Netfront>> keep;  // the driver outlives the program
        keep.push_back(std::make_unique<Netfront>(guest, params, stats));
        Netfront& nf = *keep.back();
        nf.on_receive = [&log](GuestServices&, unsigned, EthernetFrame&& f) {
            log.received.push_back(std::move(f));
        };
        log.connected = nf.connect(xb, s, 1);
        if (!log.connected) return;
        const std::string front = "device/vif/" + std::to_string(params.devid) + "/";
        for (const char* k : kFrontKeys)
            if (auto v = xb.read(front + k)) log.keys["front/" + std::string(k)] = *v;
        const std::string back = "/local/domain/0/backend/vif/1/" + std::to_string(params.devid) + "/";
        for (const char* k : kBackKeys)
            if (auto v = xb.read(back + k)) log.keys["back/" + std::string(k)] = *v;
        log.features = nf.features();
        log.queues = nf.queues();
        log.split = nf.split_event_channels();
        if (after_connect) after_connect(nf, s, guest);
        unsigned seq = 0;
        for (unsigned len : lengths) {
            EthernetFrame f = make_frame(nf.mac(), len, seq++);
            log.sent.push_back(f);
            const std::size_t want = log.received.size() + 1;
            if (!nf.transmit(s, 0, std::move(f))) return;
            nf.kick(s, 0);
            for (int spins = 0; log.received.size() < want && spins < 1000; ++spins) {
                guest.run_deferred(s);
                if (log.received.size() < want) s.halt();
            }
        }
        log.grants_after = nf.grants_outstanding();
        log.grants_left_at_close = nf.close(xb, s);
        log.grants_after_close = nf.grants_outstanding();
    };
}

void expect_echoed(const GuestLog& log) {
    ASSERT_EQ(log.received.size(), log.sent.size());
    for (std::size_t i = 0; i < log.sent.size(); ++i) {
        std::vector<std::uint8_t> want = log.sent[i].bytes;
        for (int b = 0; b < 6; ++b) std::swap(want[b], want[6 + b]);
        EXPECT_EQ(log.received[i].bytes, want) << "frame " << i;
    }
}

TEST(Net, HandshakeKeysAndConnectedOnBothSides) {
    EchoNetwork net;
    NetSim sim(net_scenario(), &net);
    GuestLog log;
    sim.platform.add_guest_role("guest", echo_program(log, {}));
    sim.run();
    ASSERT_TRUE(log.connected);
    // netback_probe's features (xenbus.c), multi-queue-max-queues = dom0's vCPUs (xenvif_max_queues).
    for (const char* k : {"feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6", "feature-ipv6-csum-offload",
                          "feature-rx-copy", "feature-multicast-control", "feature-dynamic-multicast-control",
                          "feature-split-event-channels"})
        EXPECT_EQ(log.keys["back/" + std::string(k)], "1") << k;
    EXPECT_EQ(log.keys["back/feature-rx-flip"], "0");
    EXPECT_EQ(log.keys["back/multi-queue-max-queues"], "1");
    EXPECT_EQ(log.keys["back/state"], "4");  // XenbusStateConnected
    // talk_to_netback: one queue: flat keys; multi-queue-num-queues written because the backend
    // wrote multi-queue-max-queues; split channels because it offered them.
    EXPECT_EQ(log.keys["front/state"], "4");
    EXPECT_EQ(log.keys["front/multi-queue-num-queues"], "1");
    EXPECT_TRUE(log.keys.count("front/tx-ring-ref"));
    EXPECT_TRUE(log.keys.count("front/rx-ring-ref"));
    EXPECT_TRUE(log.keys.count("front/event-channel-tx"));
    EXPECT_TRUE(log.keys.count("front/event-channel-rx"));
    EXPECT_FALSE(log.keys.count("front/event-channel"));
    EXPECT_FALSE(log.keys.count("front/queue-0/tx-ring-ref"));
    for (const char* k : {"request-rx-copy", "feature-rx-notify", "feature-sg", "feature-gso-tcpv4",
                          "feature-gso-tcpv6", "feature-ipv6-csum-offload"})
        EXPECT_EQ(log.keys["front/" + std::string(k)], "1") << k;
    EXPECT_TRUE(log.split);
    EXPECT_EQ(log.queues, 1u);
    EXPECT_TRUE(log.features.sg && log.features.gso_tcpv4 && log.features.gso_tcpv6 && log.features.tx_csum &&
                log.features.tx_csum_ipv6);
    // The hotplug step: enslaved to xenbr0 as vif<domid>.<devid>.
    ASSERT_EQ(net.names.size(), 1u);
    EXPECT_EQ(net.names[0], "vif1.0");
    Netback* nb = sim.platform.netback(1, 0);
    ASSERT_NE(nb, nullptr);
    EXPECT_EQ(nb->state(), XenbusStateClosed);  // the program closed the device at its end
    EXPECT_TRUE(nb->split_event_channels());
    // connect_data_rings: the two rings mapped with one GNTTABOP_map_grant_ref each, plus
    // xenstored's map of the guest's xenstore ring; no packet moved, no copy.
    EXPECT_EQ(sim.hypercalls("dom0", "grant_table_op/GNTTABOP_map_grant_ref"), 1u + 2u);
    EXPECT_EQ(sim.hypercalls("dom0", "grant_table_op/GNTTABOP_copy"), 0u);
}

TEST(Net, FramesOf60And1514BytesAreEchoedIntactWithOneCopyAndOneMapPerTxRound) {
    EchoNetwork net;
    NetSim sim(net_scenario(), &net);
    GuestLog log;
    const unsigned n = 10;
    std::vector<unsigned> lengths;
    for (unsigned i = 0; i < n; ++i) lengths.push_back(i % 2 ? 1514 : 60);
    sim.platform.add_guest_role("guest", echo_program(log, lengths));
    sim.run();
    ASSERT_TRUE(log.connected);
    expect_echoed(log);
    Netback* nb = sim.platform.netback(1, 0);
    ASSERT_NE(nb, nullptr);
    const auto& st = nb->stats();
    EXPECT_EQ(st.tx_frames.value(), n);
    EXPECT_EQ(st.rx_frames.value(), n);
    EXPECT_EQ(net.frames, n);
    // One frame in flight: each TX round builds one packet. xenvif_get_requests copies the first
    // XEN_NETBACK_TX_COPY_LEN (128) bytes: a 60-byte frame is all copied (one GNTTABOP_copy, no map,
    // answered at once), a 1514-byte one has its remaining 1386 bytes mapped (one copy + one
    // GNTTABOP_map_grant_ref) and answered after the echo released it: ONE batched unmap each.
    EXPECT_EQ(st.tx_rounds.value(), n);
    EXPECT_EQ(st.tx_copy_hypercalls.value(), n);
    EXPECT_EQ(st.tx_map_hypercalls.value(), n / 2);
    EXPECT_EQ(st.tx_unmap_hypercalls.value(), n / 2);
    EXPECT_EQ(st.dealloc_batches.value(), n / 2);
    EXPECT_EQ(sim.hypercalls("dom0", "grant_table_op/GNTTABOP_map_grant_ref"), 1u + 2u + n / 2);
    // Each frame's RX: one guest-rx kthread run (its packet fits one buffer: one copy op).
    EXPECT_EQ(st.rx_actions.value(), n);
    EXPECT_EQ(sim.hypercalls("dom0", "grant_table_op/GNTTABOP_copy"),
              st.tx_copy_hypercalls.value() + st.rx_copy_hypercalls.value());
    EXPECT_EQ(st.fatal_errors.value(), 0u);
    // The guest's rx ring was refilled and nothing leaked: every grant is a ring's, an in-flight
    // tx slot's (none), or a posted rx buffer's.
    const NetifRingBackend* ring = nb->ring(0);
    ASSERT_NE(ring, nullptr);
    EXPECT_EQ(ring->pending_in_use(), 0u);
    // Notifications, dom0 -> guest, per frame: a 60-byte frame's slot is answered at submit (one
    // push) and its echo is one rx push: 2; a 1514-byte frame is two slots (the 128-byte head,
    // tx_head_bytes, copied and answered at submit; the 1386-byte frag mapped and answered by the
    // dealloc kthread): 3. Each push follows the frontend's last RING_FINAL_CHECK, which left its
    // event index one past what it consumed, so nearly every push notifies; the one exception in
    // this run is a dealloc push made before the guest had taken the head slot's response.
    EXPECT_EQ(st.notifications_sent.value() + st.notifications_suppressed.value(), n / 2 * 2 + n / 2 * 3);
    EXPECT_EQ(sim.stat("dom0.vif_1_0.notifications_sent"), st.notifications_sent.value());
    // EVTCHNOP_bind_interdomain leaves the new local port pending (Xen's evtchn_bind_interdomain),
    // so each of the two ports takes one interrupt with nothing to do besides the 10 frames'.
    EXPECT_EQ(st.tx_interrupts.value(), n + 1);
    EXPECT_EQ(st.rx_interrupts.value(), 1u);
    // While connected the guest holds the two ring grants and one per posted rx buffer: every one
    // of the NET_RX_RING_SIZE (256) slots is posted (xennet_alloc_rx_buffers fills the ring); no
    // tx slot is in flight. close() ends them all: the backend unmapped everything at Closing.
    // The guest's side: xennet_start_xmit pushes each frame onto a tx ring netback had emptied,
    // whose last RING_FINAL_CHECK_FOR_REQUESTS left req_event = req_cons + 1: every push notifies.
    // The rx ring: the first refill (xennet_connect) pushes 256 requests across the initial
    // req_event of 1 and notifies; netback never moves req_event while it has slots
    // (xenvif_rx_ring_slots_available sets it only when short), so every later refill push is
    // suppressed: one per poll, one poll per frame.
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.queue0.tx_notifications_sent"), n);
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.queue0.tx_notifications_suppressed"), 0u);
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.queue0.rx_notifications_sent"), 1u);
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.queue0.rx_notifications_suppressed"), n);
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.napi_polls"), n);
    EXPECT_EQ(log.grants_after, 2u + 256u);
    EXPECT_EQ(log.grants_left_at_close, 0u);
    EXPECT_EQ(log.grants_after_close, 0u);
    EXPECT_EQ(nb->state(), XenbusStateClosed);
    EXPECT_EQ(net.detached, 1u);
    // The rings unmapped at the close: one GNTTABOP_unmap_grant_ref each (xenbus_unmap_ring_vfree).
    EXPECT_EQ(sim.hypercalls("dom0", "grant_table_op/GNTTABOP_unmap_grant_ref"), n / 2 + 2);
}

// Connect only, with `queues` wanted on a guest of 4 vCPUs and a dom0 of `dom0_vcpus`; `tune` may
// change netback's tunables.
struct ConnectOnly {
    GuestLog log;
    std::unique_ptr<EchoNetwork> net = std::make_unique<EchoNetwork>();
    std::unique_ptr<NetSim> sim;
    ConnectOnly(unsigned dom0_vcpus, unsigned queues, std::function<void(NetbackParams&)> tune = {},
                const char* profile = "linux") {
        sim = std::make_unique<NetSim>(net_scenario(dom0_vcpus, 4), net.get());
        if (tune) tune(sim->platform.netback_params());
        NetfrontParams p;
        p.queues = queues;
        p.profile = profile;
        GuestLog* l = &log;
        sim->platform.add_guest_role("guest",
                                     [l, p](GuestServices& s, XenGuest& g, XenbusClient& xb, StatsGroup& st) {
                                         static std::unique_ptr<Netfront> nf;
                                         nf = std::make_unique<Netfront>(g, p, st);
                                         l->connected = nf->connect(xb, s, 4);
                                         for (const char* k : kFrontKeys)
                                             if (auto v = xb.read("device/vif/0/" + std::string(k)))
                                                 l->keys["front/" + std::string(k)] = *v;
                                         l->queues = nf->queues();
                                         l->split = nf->split_event_channels();
                                         l->features = nf->features();
                                     });
        sim->run();
    }
};

TEST(Net, FourQueuesWriteQueueKeysAndSpreadOverDom0Vcpus) {
    ConnectOnly c(4, 4);
    ASSERT_TRUE(c.log.connected);
    // xennet_create_queues: min(4 wanted, backend max 4 = dom0's vCPUs, 4 vCPUs); every queue's
    // keys under queue-N/ (write_queue_xenstore_keys with a hierarchical path), none flat.
    EXPECT_EQ(c.log.queues, 4u);
    EXPECT_EQ(c.log.keys["front/multi-queue-num-queues"], "4");
    EXPECT_TRUE(c.log.keys.count("front/queue-0/tx-ring-ref"));
    EXPECT_TRUE(c.log.keys.count("front/queue-3/event-channel-rx"));
    EXPECT_FALSE(c.log.keys.count("front/tx-ring-ref"));
    EXPECT_FALSE(c.log.keys.count("front/event-channel-tx"));
    Netback* nb = c.sim->platform.netback(1, 0);
    ASSERT_NE(nb, nullptr);
    EXPECT_EQ(nb->queues(), 4u);
    EXPECT_EQ(nb->state(), XenbusStateConnected);
    for (unsigned q = 0; q < 4; ++q) EXPECT_EQ(nb->queue_vcpu(q), q);  // q % 4 dom0 vCPUs
    // 2 rings per queue, one GNTTABOP_map_grant_ref each, plus xenstored's map of the guest's ring.
    EXPECT_EQ(c.sim->hypercalls("dom0", "grant_table_op/GNTTABOP_map_grant_ref"), 1u + 8u);
}

// The profiles' queue counts (docs/netfront-profiles.md): 4 vCPUs, dom0 offers 4 queues.
TEST(Net, WinpvAsksForAQueuePerVcpu) {
    ConnectOnly c(4, 0, {}, "winpv");
    ASSERT_TRUE(c.log.connected);
    EXPECT_EQ(c.log.queues, 4u);  // min(vCPUs 4, multi-queue-max-queues 4)
}

TEST(Net, GplpvUsesOneQueuePair) {
    ConnectOnly c(4, 0, {}, "gplpv");
    ASSERT_TRUE(c.log.connected);
    EXPECT_EQ(c.log.queues, 1u);
    EXPECT_EQ(c.log.keys["front/multi-queue-num-queues"], "1");
    EXPECT_TRUE(c.log.keys.count("front/tx-ring-ref"));
}

// gplpv's receive path (rx buffers returned after delivery, refill when 64 slots are free,
// persistent buffer grants) moves the same frames intact.
TEST(Net, GplpvProfileEchoesIntactAndEndsItsGrants) {
    EchoNetwork net;
    NetSim sim(net_scenario(), &net);
    GuestLog log;
    NetfrontParams p;
    p.profile = "gplpv";
    sim.platform.add_guest_role("guest", echo_program(log, {60, 1514, 60, 1514, 1514, 60}, p));
    sim.run();
    ASSERT_TRUE(log.connected);
    expect_echoed(log);
    // Persistent rx grants: the 256 posted buffers were granted once and keep their grants when
    // returned (no new grant per received frame; with 6 slots free, below rx_refill_batch 64, no
    // refill posts anything). TX: one read-only grant per slot: a 60-byte frame is one slot, a
    // 1514-byte frame two (the 128-byte head and the rest): 3 + 3 * 2.
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.queue0.grants_granted"), 256u + 3u + 3u * 2u);
    EXPECT_EQ(sim.stat("dom1.guest.vif_0.queue0.rx_buffers_posted"), 256u);
    EXPECT_EQ(log.grants_after, 2u + 256u);  // rings + 250 posted + 6 returned, all still granted
    EXPECT_EQ(log.grants_after_close, 0u);
}

// The hotplug step fails when dom0 has no bridge of the backend's `bridge` name: netback fails the
// device as xenbus_dev_fatal does (the reason in its error node, Closing), and netfront, waiting for
// Connected, sees Closing and gives up.
TEST(Net, NoSuchBridgeFailsTheVif) {
    EchoNetwork net;
    net.bridge_name = "br-other";
    NetSim sim(net_scenario(), &net);
    GuestLog log;
    sim.platform.add_guest_role("guest", echo_program(log, {60}));
    sim.run();
    EXPECT_FALSE(log.connected);
    Netback* nb = sim.platform.netback(1, 0);
    ASSERT_NE(nb, nullptr);
    EXPECT_EQ(nb->stats().connect_failures.value(), 1u);
    EXPECT_EQ(nb->state(), XenbusStateClosing);
    auto err = sim.platform.xenstore().read("/local/domain/0/backend/vif/1/0/error");
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(err->find("xenbr0"), std::string::npos) << *err;
    // Its rings were mapped and are unmapped again.
    EXPECT_EQ(sim.hypercalls("dom0", "grant_table_op/GNTTABOP_unmap_grant_ref"), 2u);
}

TEST(Net, QueuesAreCappedByTheBackendsMaximum) {
    ConnectOnly c(2, 4);
    ASSERT_TRUE(c.log.connected);
    EXPECT_EQ(c.log.queues, 2u);
    EXPECT_EQ(c.log.keys["front/multi-queue-num-queues"], "2");
    EXPECT_EQ(c.sim->platform.netback(1, 0)->queues(), 2u);
}

TEST(Net, WithoutSplitEventChannelsOneEventChannelPerQueue) {
    ConnectOnly c(1, 1, [](NetbackParams& p) { p.split_event_channels = false; });
    ASSERT_TRUE(c.log.connected);
    EXPECT_FALSE(c.log.split);
    EXPECT_TRUE(c.log.keys.count("front/event-channel"));
    EXPECT_FALSE(c.log.keys.count("front/event-channel-tx"));
    EXPECT_FALSE(c.log.keys.count("front/event-channel-rx"));
    EXPECT_FALSE(c.sim->platform.netback(1, 0)->split_event_channels());
}

TEST(Net, ABackendWithoutSgGetsNoGsoFromTheStack) {
    // xennet_fix_features: no feature-sg -> no NETIF_F_SG, and TSO needs SG.
    ConnectOnly c(1, 1, [](NetbackParams& p) { p.feature_sg = false; });
    ASSERT_TRUE(c.log.connected);
    EXPECT_FALSE(c.log.features.sg);
    EXPECT_FALSE(c.log.features.gso_tcpv4);
    EXPECT_FALSE(c.log.features.gso_tcpv6);
    EXPECT_TRUE(c.log.features.tx_csum);
}

TEST(Net, ABackendWithoutGsoFeaturesGetsNoGso) {
    ConnectOnly c(1, 1, [](NetbackParams& p) {
        p.feature_gso_tcpv4 = false;
        p.feature_gso_tcpv6 = false;
    });
    ASSERT_TRUE(c.log.connected);
    EXPECT_TRUE(c.log.features.sg);
    EXPECT_FALSE(c.log.features.gso_tcpv4);
    EXPECT_FALSE(c.log.features.gso_tcpv6);
}

// Two queues on a dom0 of 2 vCPUs: queue q's interrupts and kthreads run on dom0 vCPU q. The guest
// sends every frame on queue 0; the echo comes back through the bridge side (deliver, called in
// queue 0's NAPI poll on dom0 vCPU 0), and netback's queue selection sends some frames to queue 1,
// whose guest-rx kthread runs on dom0 vCPU 1: waking it from vCPU 0 while it is halted costs a
// reschedule IPI (EVTCHNOP_send on an IPI channel bound once with EVTCHNOP_bind_ipi).
TEST(Net, RxKthreadRunsOnItsQueuesDom0VcpuWokenByAnIpi) {
    EchoNetwork net;
    NetSim sim(net_scenario(2, 2), &net);
    GuestLog log;
    const unsigned n = 16;
    sim.platform.add_guest_role(
        "guest", [&](GuestServices& s, XenGuest& g, XenbusClient& xb, StatsGroup& st) {
            static std::unique_ptr<Netfront> nf;
            NetfrontParams p;
            p.queues = 2;
            nf = std::make_unique<Netfront>(g, p, st);
            nf->on_receive = [&](GuestServices&, unsigned, EthernetFrame&& f) {
                log.received.push_back(std::move(f));
            };
            log.connected = nf->connect(xb, s, 2);
            if (!log.connected) return;
            log.queues = nf->queues();
            for (unsigned i = 0; i < n; ++i) {
                EthernetFrame f = make_frame(nf->mac(), 60, i);
                log.sent.push_back(f);
                const std::size_t want = log.received.size() + 1;
                nf->transmit(s, 0, std::move(f));
                // The echo may arrive on guest vCPU 1 (queue 1): poll instead of halting.
                for (int spin = 0; log.received.size() < want && spin < 100000; ++spin) {
                    g.run_deferred(s);
                    s.compute(2000);
                }
            }
        });
    sim.run();
    ASSERT_TRUE(log.connected);
    ASSERT_EQ(log.queues, 2u);
    ASSERT_EQ(log.received.size(), n);
    // Frames come back in order (one in flight); compare as sets of payloads anyway.
    expect_echoed(log);
    const std::uint64_t q1 = sim.stat("dom0.vif_1_0.queue1.rx_packets");
    const std::uint64_t q0 = sim.stat("dom0.vif_1_0.queue0.rx_packets");
    ASSERT_EQ(q0 + q1, n);
    ASSERT_GT(q1, 0u);  // the payloads spread over both queues
    ASSERT_GT(q0, 0u);
    const json& v = sim.domain("dom0").at("vcpus");
    // Queue 1's guest-rx kthread: one GNTTABOP_copy per frame, all on dom0 vCPU 1.
    EXPECT_EQ(count(v.at(1).at("hypercalls"), "grant_table_op/GNTTABOP_copy"), q1);
    // vCPU 0: every frame's TX round, and queue 0's rx copies.
    EXPECT_EQ(count(v.at(0).at("hypercalls"), "grant_table_op/GNTTABOP_copy"), n + q0);
    // One IPI channel bound (lazily, for vCPU 1), from vCPU 0.
    EXPECT_EQ(count(v.at(0).at("hypercalls"), "event_channel_op/EVTCHNOP_bind_ipi"), 1u);
}

// A guest whose driver writes one bad request on vif 0's tx ring (straight into the shared ring, as
// a hostile driver could) and then uses vif 1 normally: netback disables vif 0 only
// (xenvif_fatal_tx_err), and vif 1 still echoes.
struct FatalCase {
    const char* name;
    NetbackFatal fatal;
    // Writes into the shared ring at index `at`; returns the new req_prod.
    std::function<RING_IDX(netif_tx_sring_t*, RING_IDX at)> write;
};

class NetFatal : public ::testing::TestWithParam<FatalCase> {};

TEST_P(NetFatal, DisablesOnlyThatVif) {
    const FatalCase& fc = GetParam();
    EchoNetwork net;
    NetSim sim(net_scenario(1, 1, 2), &net);
    GuestLog log0, log1;
    sim.platform.add_guest_role(
        "guest", [&](GuestServices& s, XenGuest& g, XenbusClient& xb, StatsGroup& st) {
            static std::unique_ptr<Netfront> bad, good;
            NetfrontParams p0, p1;
            p1.devid = 1;
            bad = std::make_unique<Netfront>(g, p0, st);
            good = std::make_unique<Netfront>(g, p1, st);
            good->on_receive = [&](GuestServices&, unsigned, EthernetFrame&& f) {
                log1.received.push_back(std::move(f));
            };
            bad->on_receive = [&](GuestServices&, unsigned, EthernetFrame&& f) {
                log0.received.push_back(std::move(f));
            };
            log0.connected = bad->connect(xb, s, 1);
            log1.connected = good->connect(xb, s, 1);
            if (!log0.connected || !log1.connected) return;
            auto* sring = reinterpret_cast<netif_tx_sring_t*>(s.page(bad->ring(0)->tx_ring_gfn()));
            sring->req_prod = fc.write(sring, sring->req_prod);
            g.notify(s, bad->tx_port(0));
            // Then a good frame on each vif: vif 1's comes back, vif 0's is never taken.
            EthernetFrame f = make_frame(good->mac(), 60, 1);
            log1.sent.push_back(f);
            good->transmit(s, 0, std::move(f));
            bad->transmit(s, 0, make_frame(bad->mac(), 60, 2));
            for (int i = 0; i < 50 && log1.received.empty(); ++i) {
                g.run_deferred(s);
                if (log1.received.empty()) s.halt();
            }
        });
    sim.run();
    ASSERT_TRUE(log0.connected && log1.connected);
    Netback* b0 = sim.platform.netback(1, 0);
    Netback* b1 = sim.platform.netback(1, 1);
    ASSERT_NE(b0, nullptr);
    ASSERT_NE(b1, nullptr);
    EXPECT_TRUE(b0->disabled());
    EXPECT_EQ(b0->stats().fatal_errors.value(), 1u);
    EXPECT_EQ(b0->ring(0)->fatal(), fc.fatal) << netback_fatal_name(b0->ring(0)->fatal());
    EXPECT_EQ(b0->stats().tx_frames.value(), 0u);
    EXPECT_FALSE(b1->disabled());
    EXPECT_EQ(b1->stats().fatal_errors.value(), 0u);
    EXPECT_EQ(b1->stats().tx_frames.value(), 1u);
    expect_echoed(log1);
    EXPECT_TRUE(log0.received.empty());
}

netif_tx_request_t* slot(netif_tx_sring_t* sr, RING_IDX i) {
    return &sr->ring[i & (NetifRingFrontend::kTxRingSize - 1)].req;
}

INSTANTIATE_TEST_SUITE_P(
    Net, NetFatal,
    ::testing::Values(
        // xenvif_tx_build_gops: "txreq.offset: %u, size: %u, end: %lu" (the first slot crosses its page).
        FatalCase{"FirstSlotCrossesPage", NetbackFatal::first_cross_page,
                  [](netif_tx_sring_t* sr, RING_IDX at) {
                      *slot(sr, at) = netif_tx_request_t{};
                      slot(sr, at)->offset = 4000;
                      slot(sr, at)->size = 200;
                      return at + 1;
                  }},
        // xenvif_get_extras: NETTXF_extra_info with no slot after it: "Missing extra info".
        FatalCase{"MissingExtraInfo", NetbackFatal::missing_extra_info,
                  [](netif_tx_sring_t* sr, RING_IDX at) {
                      *slot(sr, at) = netif_tx_request_t{};
                      slot(sr, at)->flags = NETTXF_extra_info;
                      slot(sr, at)->size = 60;
                      return at + 1;
                  }},
        // RING_REQUEST_PROD_OVERFLOW: "Impossible number of requests" (req_prod a ring and more ahead).
        FatalCase{"ImpossibleNumberOfRequests", NetbackFatal::impossible_requests,
                  [](netif_tx_sring_t*, RING_IDX at) { return at + NetifRingFrontend::kTxRingSize + 1; }}),
    [](const ::testing::TestParamInfo<FatalCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace xensim::testing
