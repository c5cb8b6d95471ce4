// The netperf-style network workload (issue 12): the traffic engines of netperf_udp.h,
// netperf_tcp.h and netperf_ping.h driven over a guest's NetDevice (frontends/net_device.h) on the
// guest's vCPUs, as netperf's test loops drive a socket.
//
// The problem. An engine is a state machine that hands out frames and takes received ones; a guest
// has to run it the way the kernel and netperf would: the application writes while the device's
// queue has room (netif_stop_queue stops it; netif_wake_queue lets it go on), publishes a batch
// (xmit_more clear), sleeps in the idle loop until an interrupt or a timer, and is handed received
// frames by the driver's NAPI poll in softirq context.
//
// What is modelled, and after what:
//   - vCPU 0 connects the device (NetDevice::connect: the XenBus handshake for netfront), then opens
//     the workload's window (WorkloadStats::start) and wakes the other vCPUs that run a stream with
//     an event-channel IPI, as FioWorkload does.
//   - `streams` flows, stream k pinned to vCPU k % vcpus and that vCPU's queue
//     (NetDevice::queue_for_vcpu), as `netperf -T` pins its threads and XPS maps a CPU to a queue.
//     Stream k uses ports base + k (and ICMP identifier 1 + k), so each is its own flow.
//   - Transmit: while the engine has a frame now, NetDevice::transmit; a refused frame is left in
//     the engine unchanged (netperf_flow.h) and retried after NetDevice::on_tx_wake; a kick closes
//     each batch (dev_hard_start_xmit with xmit_more on every frame but the last).
//   - Receive: NetDevice::on_receive runs in the queue's poll on that queue's vCPU; the frame is
//     parsed and offered to the streams (flow_matches inside the engines). A frame for a stream whose
//     vCPU is inside its own transmit loop goes to that stream's backlog, as a softirq finding the
//     socket owned by the user queues to sk_backlog (tcp_v4_rcv / __udp_enqueue_schedule_skb): the
//     owner processes it when it leaves the loop (release_sock). The backlog is bounded
//     (kBacklogFrames, a stand-in for sk_rcvbuf); beyond it frames are dropped and counted.
//   - Timers: an engine that may send only later (rate_pps, ping's interval, TCP's delayed ACK)
//     and a duration limit need a wake-up. Each vCPU binds VIRQ_TIMER and arms a one-shot timer with
//     VCPUOP_set_singleshot_timer, as Linux's Xen clockevent does (xen_vcpuop_set_next_event), then
//     halts. When Xen refuses either hypercall the vCPU spins instead (compute in slices of
//     kSpinSliceCycles), as netperf built with --enable-spin waits between intervals; counted in
//     `timer_spins`.
//   - Per-packet guest work above the driver is charged from the cost model: guest_net_tx_packet
//     per frame the device takes, guest_net_rx_packet per frame received, plus the payload copy at
//     copy_bytes_per_cycle (user space to socket buffer and back).
//
// Operations (WorkloadStats): UDP_STREAM and TCP_STREAM count the frames moved in the test's
// direction (sent: frames the device took; receive: frames delivered to the stream); UDP_RR,
// TCP_RR and ping count transactions (a response or an echo reply), each with its latency sampled in
// WorkloadStats::latency_ns (the engines' own latency distributions, sample by sample). With
// direction "receive" the guest is the passive end (receiver, RR server, echo responder) and the
// peer runs the active end (make_peer_endpoint); the guest's operations are then frames received
// with payload (streams) or requests answered (RR server, echo responder: their `requests`), and
// the guest's end is over when `number` is reached (UDP_STREAM: datagrams received or known lost
// by sequence; TCP_STREAM: number x message_size bytes) or duration_ms has passed, with nothing
// left to send. Without either the guest would wait for ever: the scenario requires one. Failures are payload
// errors the engines count (corrupt or misdelivered payloads, bad checksums, malformed headers) plus frames
// the glue cannot parse.
//
// Where it differs from Linux and netperf: no socket buffers beyond the backlog bound, no qdisc
// (a refused frame waits in the application), no GRO; the stream loop is in the kernel's thread
// context without system-call exits (none exist on HVM/PVH); a vCPU with no timer spins.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "frontends/net_device.h"
#include "frontends/netperf_flow.h"
#include "frontends/workload.h"
#include "frontends/xen_guest.h"
#include "frontends/xenbus_client.h"

namespace xensim {

enum class NetperfTest { udp_stream, tcp_stream, udp_rr, tcp_rr, ping };
enum class NetperfDirection { send, receive };  // send: the guest runs the active end

// "UDP_STREAM" ... "ping" (the scenario's names); throws std::invalid_argument on others.
NetperfTest parse_netperf_test(const std::string& name);
const char* to_string(NetperfTest t);
NetperfDirection parse_netperf_direction(const std::string& name);
const char* to_string(NetperfDirection d);

struct NetperfSpec {
    NetperfTest test = NetperfTest::udp_stream;
    NetperfDirection direction = NetperfDirection::send;
    // Stream 0's addresses from the guest's side (src = the guest). The guest's MAC is replaced
    // by the device's once connected. Stream k adds k to both ports.
    PacketAddress addr;
    std::size_t message_size = 0;   // UDP/TCP payload per send, RR request, ping data; 0: the test's default
    std::size_t response_size = 0;  // RR response; 0: the test's default (1)
    std::uint64_t rate_pps = 0;     // UDP_STREAM datagrams per second, ping requests per second; 0: unlimited
    std::uint64_t number = 0;       // packets (streams) or transactions (RR, ping) per stream; 0: no limit
    std::uint64_t duration_ns = 0;  // 0: no limit
    unsigned mss = 0;               // TCP; 0: mtu - 52
    std::uint32_t window_bytes = 65536;
    unsigned streams = 1;
    std::uint64_t seed = 1;
};

// Stream k's addresses from the guest's side.
PacketAddress netperf_stream_addr(const NetperfSpec& spec, unsigned stream);
// The guest's engine for stream k (active with direction send, passive with receive).
std::unique_ptr<NetperfEndpoint> make_guest_endpoint(const NetperfSpec& spec, unsigned stream,
                                                     const FlowOffloads& offloads, StatsGroup& parent);
// The peer's engine for stream k, built from the same spec (the remote host on the wire, or the
// other guest's responder): the other end of make_guest_endpoint. `offloads` are the peer's.
std::unique_ptr<NetperfEndpoint> make_peer_endpoint(const NetperfSpec& spec, unsigned stream,
                                                    const FlowOffloads& offloads, StatsGroup& parent);
// True when the guest's end of the test is the active one (it decides when the test is over).
inline bool guest_is_active(const NetperfSpec& spec) { return spec.direction == NetperfDirection::send; }

class NetperfWorkload {
  public:
    static constexpr std::size_t kBacklogFrames = 1024;
    static constexpr Cycles kSpinSliceCycles = 20'000;  // about 9 us at the reference clock

    // device is not owned and must outlive the workload's run (its callbacks point here).
    NetperfWorkload(const NetperfSpec& spec, NetDevice& device, XenGuest& guest, unsigned vcpus,
                    WorkloadStats& stats);
    ~NetperfWorkload();

    // vCPU 0, thread context, after boot: connect the device, start the streams, run vCPU 0's.
    void run_boot_vcpu(XenbusClient& xb, GuestServices& s);
    // Every other vCPU: wait for the start, run this vCPU's streams.
    void run_vcpu(GuestServices& s);

    struct Totals {
        std::uint64_t tx_frames = 0, tx_bytes = 0;      // frames the device took, Ethernet bytes (no FCS)
        std::uint64_t rx_frames = 0, rx_bytes = 0;      // frames the device delivered
        std::uint64_t tx_refused = 0, tx_wakes = 0;     // transmit returned false; on_tx_wake calls
        std::uint64_t data_frames = 0, data_bytes = 0;  // frames/bytes in the test's data direction
        std::uint64_t payload_errors = 0;  // engines' payload, checksum, misdelivery, header errors
        std::uint64_t lost = 0;            // engines' sequence losses (UDP_STREAM receiver, ping)
        std::uint64_t rx_unparsed = 0, rx_no_flow = 0, rx_backlog_drops = 0;
        std::uint64_t timer_arms = 0, timer_spins = 0;
        std::uint64_t transactions = 0;
    };
    Totals totals() const;
    const NetperfSpec& spec() const { return spec_; }
    unsigned streams() const { return static_cast<unsigned>(streams_.size()); }
    const NetperfEndpoint& endpoint(unsigned stream) const { return *streams_.at(stream)->ep; }
    const std::string& first_failure() const { return first_failure_; }
    bool device_connected() const { return device_.connected(); }
    // For a peer that is another guest: whether a frame sent now would reach it (its vif is up on
    // the bridge). Until it is, the workload retries after TCP's initial retransmission timeout
    // (1 s, Linux TCP_TIMEOUT_INIT), as netperf's control connection would when its SYN is lost;
    // the test starts only then. Empty: the peer is always there (the remote host).
    std::function<bool()> peer_ready;
    static constexpr std::uint64_t kPeerRetryNs = 1'000'000'000;

  private:
    struct Stream {
        unsigned index = 0, vcpu = 0, queue = 0;
        std::unique_ptr<NetperfEndpoint> ep;
        const Distribution* latency = nullptr;  // the client's per-transaction latency, if a client
        PacketAddress addr;                     // the stream's addresses from the guest's side
        bool owned = false;                     // its vCPU is in the transmit loop (the socket lock)
        bool done = false;
        std::deque<std::pair<EthernetFrame, ParsedPacket>> backlog;
        // The engine's latency samples not yet copied to the workload (Distribution::observe: the
        // distribution keeps buckets, not samples); at most the transactions of one delivery.
        std::deque<std::uint64_t> latency_pending;
        std::uint64_t ops_seen = 0;     // engine operations already counted (passive RR, ping)
        bool charged = false;           // the pending frame's stack cost is paid
        bool refused = false;           // the device refused the pending frame; wait for on_tx_wake
        std::uint64_t data_frames = 0;  // in the test's direction (ops of streams and passive ends)
    };
    void run_streams(GuestServices& s);
    void receive(GuestServices& s, unsigned queue, EthernetFrame&& frame);
    void deliver(GuestServices& s, Stream& st, const EthernetFrame& f, const ParsedPacket& p);
    bool transmit(GuestServices& s, Stream& st);  // true when something was sent
    bool stream_over(const Stream& st, std::uint64_t now_ns) const;
    std::uint64_t wake_at(const Stream& st) const;
    void wait(GuestServices& s, std::uint64_t at_ns);
    void poke(GuestServices& s, unsigned vcpu);
    void collect_ops(Stream& st);
    void fail(GuestServices& s, const std::string& why);
    const Distribution* latency_of(const NetperfEndpoint& ep) const;
    Distribution* latency_of(NetperfEndpoint& ep);

    NetperfSpec spec_;
    NetDevice& device_;
    XenGuest& guest_;
    unsigned vcpus_;
    WorkloadStats& stats_;
    std::vector<std::unique_ptr<Stream>> streams_;
    std::vector<evtchn_port_t> ipi_ports_, timer_ports_;  // per vCPU; 0 = none
    std::vector<bool> progress_;                          // per vCPU: something to look at
    bool ready_ = false, failed_ = false;
    unsigned vcpus_used_ = 0;     // vCPUs with a stream
    unsigned vcpus_running_ = 0;  // of those, still running theirs
    Totals t_;
    std::string first_failure_;
};

}  // namespace xensim
