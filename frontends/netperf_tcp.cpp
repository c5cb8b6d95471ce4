#include "frontends/netperf_tcp.h"

#include <algorithm>
#include <stdexcept>

namespace xensim {

namespace {

TcpConnectionParams connection_params(const PacketAddress& addr, std::uint32_t flow, std::uint64_t seed,
                                      bool client, unsigned mss, std::uint32_t window,
                                      std::uint64_t delayed_ack_ns) {
    TcpConnectionParams c;
    c.addr = addr;
    c.flow_id = flow;
    c.seed = seed;
    c.client = client;
    c.mss = mss;
    c.window = window;
    c.delayed_ack_ns = delayed_ack_ns;
    return c;
}

}  // namespace

// --- TCP_STREAM ---

TcpStreamSender::TcpStreamSender(const TcpStreamParams& params, const FlowOffloads& offloads,
                                 StatsGroup& parent, const std::string& name)
    : NetperfEndpoint(parent, name),
      p_(params),
      conn_(connection_params(params.addr, params.flow_id, params.seed, true, params.mss, params.window,
                              params.delayed_ack_ns),
            offloads, group_) {}

EthernetFrame* TcpStreamSender::tx_frame(std::uint64_t now_ns) {
    if (!start_ns_) {
        start_ns_ = now_ns;
        if (p_.bytes) {
            conn_.write(p_.bytes);
            stopped_ = true;
        }
    }
    if (!stopped_ && p_.duration_ns && now_ns - *start_ns_ >= p_.duration_ns) stopped_ = true;
    // Unbounded: keep two windows queued, as netperf's send() loop keeps the socket buffer full.
    if (!stopped_ && conn_.bytes_written() - conn_.bytes_acked() < 2ull * p_.window)
        conn_.write(2ull * p_.window - (conn_.bytes_written() - conn_.bytes_acked()));
    return conn_.tx_frame(now_ns);
}

std::uint64_t TcpStreamSender::next_tx_ns() const {
    if (!start_ns_) return 0;
    std::uint64_t t = conn_.next_tx_ns();
    if (!stopped_ && p_.duration_ns) t = std::min(t, *start_ns_ + p_.duration_ns);
    return t;
}

bool TcpStreamSender::finished() const {
    return start_ns_ && stopped_ && !conn_.has_pending() && conn_.bytes_acked() == conn_.bytes_written();
}

TcpStreamReceiver::TcpStreamReceiver(const TcpStreamParams& params, const FlowOffloads& offloads,
                                     StatsGroup& parent, const std::string& name)
    : NetperfEndpoint(parent, name),
      conn_(connection_params(params.addr.reversed(), params.flow_id, params.seed, false, params.mss,
                              params.window, params.delayed_ack_ns),
            offloads, group_) {}

bool TcpStreamReceiver::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    std::uint64_t before = conn_.bytes_received();
    if (!conn_.receive(now_ns, f, p)) return false;
    if (conn_.bytes_received() > before) {
        if (before == 0) {
            first_rx_ns_ = now_ns;
            bytes_at_first_ = conn_.bytes_received();
        }
        last_rx_ns_ = now_ns;
    }
    return true;
}

double TcpStreamReceiver::throughput_bps() const {
    if (last_rx_ns_ <= first_rx_ns_) return 0.0;
    return static_cast<double>(conn_.bytes_received() - bytes_at_first_) * 8e9 /
           static_cast<double>(last_rx_ns_ - first_rx_ns_);
}

// --- TCP_RR ---

TcpRrClient::TcpRrClient(const TcpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                         const std::string& name)
    : NetperfEndpoint(parent, name),
      transactions(group_, "transactions", "transactions", "request/response pairs completed"),
      latency_ns(group_, "latency_ns", "ns", "response's last byte arrival - request write, per transaction"),
      p_(params),
      conn_(connection_params(params.addr, params.flow_id, params.seed, true, params.mss, params.window,
                              params.delayed_ack_ns),
            offloads, group_) {
    if (p_.request_size == 0 || p_.response_size == 0)
        throw std::invalid_argument("tcp_rr request_size and response_size must be at least 1");
}

EthernetFrame* TcpRrClient::tx_frame(std::uint64_t now_ns) {
    if (!start_ns_) start_ns_ = now_ns;
    if (!outstanding_ && !stopped_) {
        bool over = (p_.count && transactions.value() >= p_.count) ||
                    (p_.duration_ns && now_ns - *start_ns_ >= p_.duration_ns);
        if (over) {
            stopped_ = true;
        } else {
            conn_.write(p_.request_size);
            outstanding_ = true;
            send_ns_ = now_ns;
        }
    }
    return conn_.tx_frame(now_ns);
}

std::uint64_t TcpRrClient::next_tx_ns() const {
    if (!outstanding_ && !stopped_) return 0;  // the next request is due
    return conn_.next_tx_ns();
}

bool TcpRrClient::finished() const { return stopped_ && !conn_.has_pending(); }

bool TcpRrClient::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    if (!conn_.receive(now_ns, f, p)) return false;
    if (outstanding_ && conn_.bytes_received() >= (transactions.value() + 1) * p_.response_size) {
        outstanding_ = false;
        transactions.inc();
        latency_ns.sample(now_ns - send_ns_);
        last_done_ns_ = now_ns;
    }
    return true;
}

double TcpRrClient::transactions_per_s() const {
    if (!start_ns_ || last_done_ns_ <= *start_ns_) return 0.0;
    return static_cast<double>(transactions.value()) * 1e9 / static_cast<double>(last_done_ns_ - *start_ns_);
}

TcpRrServer::TcpRrServer(const TcpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                         const std::string& name)
    : NetperfEndpoint(parent, name),
      requests(group_, "requests", "requests", "complete requests read and answered"),
      p_(params),
      conn_(connection_params(params.addr.reversed(), params.flow_id, params.seed, false, params.mss,
                              params.window, params.delayed_ack_ns),
            offloads, group_) {
    if (p_.request_size == 0 || p_.response_size == 0)
        throw std::invalid_argument("tcp_rr request_size and response_size must be at least 1");
}

bool TcpRrServer::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    if (!conn_.receive(now_ns, f, p)) return false;
    while (conn_.bytes_received() >= (requests.value() + 1) * p_.request_size) {
        requests.inc();
        conn_.write(p_.response_size);
    }
    return true;
}

}  // namespace xensim
