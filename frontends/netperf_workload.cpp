#include "frontends/netperf_workload.h"

#include <algorithm>
#include <stdexcept>

#include "frontends/netperf_ping.h"
#include "frontends/netperf_tcp.h"
#include "frontends/netperf_udp.h"

namespace xensim {

namespace {
struct TestName {
    NetperfTest test;
    const char* name;
};
constexpr TestName kTests[] = {{NetperfTest::udp_stream, "UDP_STREAM"},
                               {NetperfTest::tcp_stream, "TCP_STREAM"},
                               {NetperfTest::udp_rr, "UDP_RR"},
                               {NetperfTest::tcp_rr, "TCP_RR"},
                               {NetperfTest::ping, "ping"}};

// netperf's defaults where the spec leaves 0: UDP_STREAM sends MTU-sized datagrams (1500 - 20 -
// 8), TCP_STREAM writes of 16 KiB (netperf's send size follows the socket buffer; 16384 is
// Linux's initial tcp_wmem), RR one byte each way (netperf -r 1,1), ping 56 bytes (ping -s).
std::size_t message_size(const NetperfSpec& s) {
    if (s.message_size) return s.message_size;
    switch (s.test) {
        case NetperfTest::udp_stream:
            return 1472;
        case NetperfTest::tcp_stream:
            return 16384;
        case NetperfTest::ping:
            return 56;
        default:
            return 1;
    }
}
std::size_t response_size(const NetperfSpec& s) { return s.response_size ? s.response_size : 1; }
std::uint64_t ping_interval_ns(const NetperfSpec& s) {
    return s.rate_pps ? 1'000'000'000ull / s.rate_pps : 0;
}

// `view` is the active end's addresses (src = the active end); `active` builds that end, else the
// passive one, which takes the active end's parameters as netperf_udp.h / netperf_tcp.h say.
std::unique_ptr<NetperfEndpoint> make_endpoint(const NetperfSpec& spec, unsigned k, const PacketAddress& view,
                                               bool active, const FlowOffloads& off, StatsGroup& parent) {
    const std::string name = "stream" + std::to_string(k);
    const std::uint32_t flow = 1 + k;
    const std::uint64_t seed = spec.seed * 1000003u + k;
    switch (spec.test) {
        case NetperfTest::udp_stream: {
            UdpStreamParams p;
            p.addr = view;
            p.flow_id = flow;
            p.message_size = message_size(spec);
            p.rate_pps = spec.rate_pps;
            p.count = spec.number;
            p.duration_ns = spec.duration_ns;
            p.seed = seed;
            if (active) return std::make_unique<UdpStreamSender>(p, off, parent, name);
            return std::make_unique<UdpStreamReceiver>(p, parent, name);
        }
        case NetperfTest::tcp_stream: {
            TcpStreamParams p;
            p.addr = view;
            p.flow_id = flow;
            p.bytes = spec.number * message_size(spec);
            p.duration_ns = spec.duration_ns;
            p.mss = spec.mss;
            p.window = spec.window_bytes;
            p.seed = seed;
            if (active) return std::make_unique<TcpStreamSender>(p, off, parent, name);
            return std::make_unique<TcpStreamReceiver>(p, off, parent, name);
        }
        case NetperfTest::udp_rr: {
            UdpRrParams p;
            p.addr = view;
            p.flow_id = flow;
            p.request_size = message_size(spec);
            p.response_size = response_size(spec);
            p.count = spec.number;
            p.duration_ns = spec.duration_ns;
            p.seed = seed;
            if (active) return std::make_unique<UdpRrClient>(p, off, parent, name);
            return std::make_unique<UdpRrServer>(p, off, parent, name);
        }
        case NetperfTest::tcp_rr: {
            TcpRrParams p;
            p.addr = view;
            p.flow_id = flow;
            p.request_size = message_size(spec);
            p.response_size = response_size(spec);
            p.count = spec.number;
            p.duration_ns = spec.duration_ns;
            p.mss = spec.mss;
            p.window = spec.window_bytes;
            p.seed = seed;
            if (active) return std::make_unique<TcpRrClient>(p, off, parent, name);
            return std::make_unique<TcpRrServer>(p, off, parent, name);
        }
        case NetperfTest::ping: {
            if (!active) return std::make_unique<IcmpEchoResponder>(view.reversed(), parent, name);
            PingParams p;
            p.addr = view;
            p.id = static_cast<std::uint16_t>(1 + k);
            p.payload_size = message_size(spec);
            p.interval_ns = ping_interval_ns(spec);
            p.count = spec.number;
            p.seed = seed;
            return std::make_unique<PingClient>(p, off, parent, name);
        }
    }
    throw std::logic_error("unknown netperf test");
}

std::uint64_t counter(const NetperfEndpoint& ep, const char* name) {
    const Counter* c = ep.stats().find_counter(name);
    return c ? c->value() : 0;
}

// What the engines count as a bad payload or header (netperf_udp.h, netperf_tcp.h, netperf_ping.h).
std::uint64_t engine_errors(const NetperfEndpoint& ep) {
    return counter(ep, "payload_errors") + counter(ep, "misdelivered") + counter(ep, "csum_errors") +
           counter(ep, "malformed");
}
}  // namespace

NetperfTest parse_netperf_test(const std::string& name) {
    for (const auto& t : kTests)
        if (name == t.name) return t.test;
    throw std::invalid_argument("unknown netperf test \"" + name + "\"");
}

const char* to_string(NetperfTest t) {
    for (const auto& e : kTests)
        if (e.test == t) return e.name;
    return "?";
}

NetperfDirection parse_netperf_direction(const std::string& name) {
    if (name == "send") return NetperfDirection::send;
    if (name == "receive") return NetperfDirection::receive;
    throw std::invalid_argument("unknown netperf direction \"" + name + "\"");
}

const char* to_string(NetperfDirection d) { return d == NetperfDirection::send ? "send" : "receive"; }

PacketAddress netperf_stream_addr(const NetperfSpec& spec, unsigned stream) {
    PacketAddress a = spec.addr;
    a.src_port = static_cast<std::uint16_t>(a.src_port + stream);
    a.dst_port = static_cast<std::uint16_t>(a.dst_port + stream);
    return a;
}

std::unique_ptr<NetperfEndpoint> make_guest_endpoint(const NetperfSpec& spec, unsigned stream,
                                                     const FlowOffloads& offloads, StatsGroup& parent) {
    const PacketAddress guest = netperf_stream_addr(spec, stream);
    const bool active = guest_is_active(spec);
    return make_endpoint(spec, stream, active ? guest : guest.reversed(), active, offloads, parent);
}

std::unique_ptr<NetperfEndpoint> make_peer_endpoint(const NetperfSpec& spec, unsigned stream,
                                                    const FlowOffloads& offloads, StatsGroup& parent) {
    const PacketAddress guest = netperf_stream_addr(spec, stream);
    const bool active = !guest_is_active(spec);
    return make_endpoint(spec, stream, active ? guest.reversed() : guest, active, offloads, parent);
}

NetperfWorkload::NetperfWorkload(const NetperfSpec& spec, NetDevice& device, XenGuest& guest, unsigned vcpus,
                                 WorkloadStats& stats)
    : spec_(spec),
      device_(device),
      guest_(guest),
      vcpus_(std::max(1u, vcpus)),
      stats_(stats),
      ipi_ports_(vcpus_, 0),
      timer_ports_(vcpus_, 0),
      progress_(vcpus_, false) {
    spec_.streams = std::max(1u, spec_.streams);
}

// The device's callbacks are left in place: the device may be destroyed first (it belongs to the
// platform's network wiring), and nothing runs during teardown.
NetperfWorkload::~NetperfWorkload() = default;

void NetperfWorkload::fail(GuestServices& s, const std::string& why) {
    failed_ = true;
    if (first_failure_.empty()) first_failure_ = why;
    stats_.failures.inc();
    ready_ = true;
    for (evtchn_port_t port : ipi_ports_)
        if (port) guest_.notify(s, port);
    stats_.finish(s.now_ns());
}

void NetperfWorkload::run_boot_vcpu(XenbusClient& xb, GuestServices& s) {
    // Per vCPU: an IPI channel (the start signal and remote wake-ups) and the timer VIRQ.
    for (unsigned v = 0; v < vcpus_; ++v) {
        evtchn_port_t port = 0;
        if (guest_.bind_ipi(s, v, &port) == 0) {
            ipi_ports_[v] = port;
            guest_.set_port_handler(port, [this, v](GuestServices&, evtchn_port_t) { progress_[v] = true; });
            guest_.unmask(s, port);
        }
        port = 0;
        if (guest_.bind_virq(s, VIRQ_TIMER, v, &port) == 0) {
            timer_ports_[v] = port;
            guest_.set_port_handler(port, [this, v](GuestServices&, evtchn_port_t) { progress_[v] = true; });
            guest_.unmask(s, port);
        }
    }
    s.mark_phase("pv_connect");
    if (!xb.connected() || !device_.connect(xb, s, vcpus_))
        return fail(s, "the network device did not connect (backend closed or refused it)");
    while (peer_ready && !peer_ready()) wait(s, s.now_ns() + kPeerRetryNs);
    const NetDeviceFeatures f = device_.features();
    FlowOffloads off;
    off.tx_csum = f.tx_csum;
    off.gso_tcpv4 = f.gso_tcpv4 && f.sg;
    off.mtu = f.mtu;
    spec_.addr.src_mac = device_.mac();
    try {
        for (unsigned k = 0; k < spec_.streams; ++k) {
            auto st = std::make_unique<Stream>();
            st->index = k;
            st->vcpu = k % vcpus_;
            st->queue = device_.queue_for_vcpu(st->vcpu);
            st->ep = make_guest_endpoint(spec_, k, off, stats_.group);
            if (Distribution* d = latency_of(*st->ep)) {
                Stream* sp = st.get();
                d->observe([sp](std::uint64_t v) { sp->latency_pending.push_back(v); });
                st->latency = d;
            }
            st->addr = netperf_stream_addr(spec_, k);
            streams_.push_back(std::move(st));
        }
    } catch (const std::invalid_argument& e) {
        return fail(s, e.what());
    }
    device_.on_receive = [this](GuestServices& vs, unsigned q, EthernetFrame&& frame) {
        receive(vs, q, std::move(frame));
    };
    device_.on_tx_wake = [this](GuestServices& vs, unsigned q) {
        ++t_.tx_wakes;
        for (auto& st : streams_) {
            if (st->queue != q || !st->refused) continue;
            st->refused = false;
            poke(vs, st->vcpu);
        }
    };
    vcpus_used_ = vcpus_running_ = std::min(spec_.streams, vcpus_);
    ready_ = true;
    s.mark_phase("net");
    stats_.start(s.now_ns());
    for (unsigned v = 1; v < vcpus_used_; ++v)
        if (ipi_ports_[v]) guest_.notify(s, ipi_ports_[v]);
    run_streams(s);
}

void NetperfWorkload::run_vcpu(GuestServices& s) {
    while (!ready_) s.halt();
    // vcpus_used_, not vcpus_running_: vCPU 0 may have finished its streams before this one woke.
    if (failed_ || s.vcpu_id() >= vcpus_used_) return;
    run_streams(s);
}

void NetperfWorkload::poke(GuestServices& s, unsigned vcpu) {
    progress_[vcpu] = true;
    if (vcpu != s.vcpu_id() && ipi_ports_[vcpu]) guest_.notify(s, ipi_ports_[vcpu]);
}

// NAPI delivering a frame in the queue's poll: the stack's receive work, then the socket (or its
// backlog when the owner holds it).
void NetperfWorkload::receive(GuestServices& s, unsigned, EthernetFrame&& frame) {
    ++t_.rx_frames;
    t_.rx_bytes += frame.bytes.size();
    s.compute(s.costs().guest_net_rx_packet + s.costs().copy_cost(frame.bytes.size()));
    ParsedPacket p = parse_packet(frame);
    if (p.status == PacketStatus::truncated || p.status == PacketStatus::not_ipv4 ||
        p.status == PacketStatus::bad_ip_header || p.status == PacketStatus::bad_ip_checksum) {
        ++t_.rx_unparsed;  // no flow to charge it to (netperf_flow.h: the glue's to count)
        stats_.failures.inc();
        return;
    }
    const std::uint8_t proto = spec_.test == NetperfTest::ping ? kIpProtoIcmp
                               : spec_.test == NetperfTest::tcp_stream || spec_.test == NetperfTest::tcp_rr
                                   ? kIpProtoTcp
                                   : kIpProtoUdp;
    for (auto& st : streams_) {
        if (!flow_matches(p, st->addr, proto)) continue;
        if (proto == kIpProtoIcmp && p.icmp_id != 1 + st->index && p.ok()) continue;
        if (st->owned) {
            if (st->backlog.size() >= kBacklogFrames) {
                ++t_.rx_backlog_drops;
                return;
            }
            st->backlog.emplace_back(std::move(frame), p);
            poke(s, st->vcpu);
            return;
        }
        deliver(s, *st, frame, p);
        return;
    }
    ++t_.rx_no_flow;
}

void NetperfWorkload::deliver(GuestServices& s, Stream& st, const EthernetFrame& f, const ParsedPacket& p) {
    if (!st.ep->receive(s.now_ns(), f, p)) {
        ++t_.rx_no_flow;
        return;
    }
    const bool stream_test = spec_.test == NetperfTest::udp_stream || spec_.test == NetperfTest::tcp_stream;
    if (stream_test && !guest_is_active(spec_) && p.ok() && p.payload_len > 0) {
        ++st.data_frames;
        ++t_.data_frames;
        t_.data_bytes += f.bytes.size();
        stats_.ops.inc();
        if (stats_.on_progress) stats_.on_progress();
    }
    collect_ops(st);
    poke(s, st.vcpu);
}

Distribution* NetperfWorkload::latency_of(NetperfEndpoint& ep) {
    return const_cast<Distribution*>(static_cast<const NetperfWorkload*>(this)->latency_of(
        static_cast<const NetperfEndpoint&>(ep)));  // the endpoint is ours, not const
}

const Distribution* NetperfWorkload::latency_of(const NetperfEndpoint& ep) const {
    if (auto* c = dynamic_cast<const UdpRrClient*>(&ep)) return &c->latency_ns;
    if (auto* c = dynamic_cast<const TcpRrClient*>(&ep)) return &c->latency_ns;
    if (auto* c = dynamic_cast<const PingClient*>(&ep)) return &c->rtt_ns;
    return nullptr;
}

// Transactions the engine completed since the last look: the active end's latency samples, one
// operation each; the passive RR / echo end's answered requests.
void NetperfWorkload::collect_ops(Stream& st) {
    if (st.latency) {
        while (!st.latency_pending.empty()) {
            const std::uint64_t v = st.latency_pending.front();
            st.latency_pending.pop_front();
            stats_.complete_op(v);
        }
        return;
    }
    const bool rr = spec_.test == NetperfTest::udp_rr || spec_.test == NetperfTest::tcp_rr ||
                    spec_.test == NetperfTest::ping;
    if (!rr) return;
    const std::uint64_t answered = counter(*st.ep, "requests");
    for (; st.ops_seen < answered; ++st.ops_seen) {
        stats_.ops.inc();
        if (stats_.on_progress) stats_.on_progress();
    }
}

// The application's send loop for one stream, holding the socket: frames while the engine has
// one now and the device takes it, one kick per batch, then the backlog (release_sock).
bool NetperfWorkload::transmit(GuestServices& s, Stream& st) {
    bool sent = false;
    st.owned = true;
    while (!st.refused && device_.connected()) {
        const std::uint64_t now = s.now_ns();
        EthernetFrame* f = st.ep->tx_frame(now);
        if (!f) break;
        const std::size_t len = f->bytes.size();
        if (!st.charged) {  // the stack's work and the user copy, once per frame
            s.compute(s.costs().guest_net_tx_packet + s.costs().copy_cost(len));
            st.charged = true;
        }
        if (!device_.transmit(s, st.queue, std::move(*f))) {
            ++t_.tx_refused;
            st.refused = true;
            break;
        }
        st.charged = false;
        st.ep->tx_taken(s.now_ns());
        sent = true;
        ++t_.tx_frames;
        t_.tx_bytes += len;
        const bool stream_test =
            spec_.test == NetperfTest::udp_stream || spec_.test == NetperfTest::tcp_stream;
        if (stream_test && guest_is_active(spec_)) {
            ++st.data_frames;
            ++t_.data_frames;
            t_.data_bytes += len;
            stats_.ops.inc();
            if (stats_.on_progress) stats_.on_progress();
        }
    }
    if (sent) device_.kick(s, st.queue);
    st.owned = false;
    while (!st.backlog.empty()) {
        auto item = std::move(st.backlog.front());
        st.backlog.pop_front();
        deliver(s, st, item.first, item.second);
    }
    return sent;
}

bool NetperfWorkload::stream_over(const Stream& st, std::uint64_t now_ns) const {
    const bool timed_out = spec_.duration_ns && now_ns >= stats_.start_ns + spec_.duration_ns;
    if (guest_is_active(spec_)) {
        if (st.ep->finished()) return true;
        // ping has no duration of its own (ping -w is not modelled in the engine): the glue stops it.
        return spec_.test == NetperfTest::ping && timed_out;
    }
    if (!st.ep->finished()) return false;  // an answer or ACK still to send
    if (timed_out) return true;
    if (!spec_.number) return false;
    switch (spec_.test) {
        case NetperfTest::udp_stream: {
            auto* r = dynamic_cast<const UdpStreamReceiver*>(st.ep.get());
            return r && r->sequence().expected() >= spec_.number;  // every datagram arrived or is known lost
        }
        case NetperfTest::tcp_stream: {
            auto* r = dynamic_cast<const TcpStreamReceiver*>(st.ep.get());
            return r && r->connection().data_bytes_received.value() >= spec_.number * message_size(spec_);
        }
        default:
            return counter(*st.ep, "requests") >= spec_.number;
    }
}

std::uint64_t NetperfWorkload::wake_at(const Stream& st) const {
    std::uint64_t at = st.refused ? kNoTxTime : st.ep->next_tx_ns();
    if (spec_.duration_ns && (spec_.test == NetperfTest::ping || !guest_is_active(spec_)))
        at = std::min(at, stats_.start_ns + spec_.duration_ns);
    return at;
}

// Sleep until `at_ns` or an interrupt: the one-shot timer and HLT / SCHEDOP_block, or a spin.
void NetperfWorkload::wait(GuestServices& s, std::uint64_t at_ns) {
    const unsigned v = s.vcpu_id();
    if (at_ns == kNoTxTime) {
        s.halt();
        return;
    }
    if (at_ns > s.now_ns() && timer_ports_[v] && guest_.set_singleshot_timer(s, at_ns) == 0) {
        ++t_.timer_arms;
        if (!progress_[v]) s.halt();
        return;
    }
    ++t_.timer_spins;  // no timer, or already due: burn a slice and look again
    s.compute(kSpinSliceCycles);
}

void NetperfWorkload::run_streams(GuestServices& s) {
    const unsigned v = s.vcpu_id();
    std::vector<Stream*> mine;
    for (auto& st : streams_)
        if (st->vcpu == v) mine.push_back(st.get());
    for (;;) {
        progress_[v] = false;
        bool all_done = true;
        for (Stream* st : mine) {
            if (st->done) continue;
            if (device_.connected()) transmit(s, *st);
            if (stream_over(*st, s.now_ns())) {
                st->done = true;
                collect_ops(*st);
                stats_.failures.inc(engine_errors(*st->ep));
                continue;
            }
            all_done = false;
        }
        if (all_done) break;
        if (!device_.connected()) {
            if (first_failure_.empty()) first_failure_ = "the network device disconnected during the run";
            stats_.failures.inc();
            break;
        }
        if (v == 0 && guest_.run_deferred(s)) continue;
        if (progress_[v]) continue;
        std::uint64_t at = kNoTxTime;
        for (Stream* st : mine)
            if (!st->done) at = std::min(at, wake_at(*st));
        wait(s, at);
    }
    if (vcpus_running_ && --vcpus_running_ == 0) stats_.finish(s.now_ns());
}

NetperfWorkload::Totals NetperfWorkload::totals() const {
    Totals t = t_;
    for (const auto& st : streams_) {
        t.payload_errors += engine_errors(*st->ep);
        t.lost += counter(*st->ep, "lost");
        if (const Distribution* d = latency_of(*st->ep))
            t.transactions += d->count();
        else if (spec_.test != NetperfTest::udp_stream && spec_.test != NetperfTest::tcp_stream)
            t.transactions += counter(*st->ep, "requests");
    }
    return t;
}

}  // namespace xensim
