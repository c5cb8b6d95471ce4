// TCP_STREAM and TCP_RR, netperf's TCP tests, as endpoints of netperf_flow.h over TcpConnection
// (tcp_connection.h: segmentation, TSO, window, delayed ACKs, byte-exact verification; no loss
// recovery).
//
// TCP_STREAM (netperf -t TCP_STREAM): the sender writes `bytes` bytes (or, with bytes 0, keeps
// the send queue two windows ahead until duration_ns has passed since its first tx_frame()) and is
// finished when all it wrote is acknowledged. The receiver (netserver's sink) ACKs as Linux does,
// verifies every byte, and measures throughput from its first to its last data arrival, netperf's
// receive-side figure (TcpStreamReceiver::throughput_bps).
//
// TCP_RR (netperf -t TCP_RR -- -r req,resp): one transaction outstanding. The client writes a
// request of request_size bytes and waits for response_size bytes back; the server writes a
// response for every complete request it has read. Latency per transaction is from the client's
// write to the arrival of the response's last byte; the ACK of each request rides on its response
// and the ACK of each response on the next request (Linux's delayed ACK, what netperf measures
// with TCP_NODELAY off). Requests and responses larger than the MSS span segments or a super-packet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "frontends/netperf_flow.h"
#include "frontends/tcp_connection.h"
#include "sim/core/stats.h"

namespace xensim {

struct TcpStreamParams {
    PacketAddress addr;  // the sender's view
    std::uint32_t flow_id = 1;
    std::uint64_t bytes = 0;        // to transfer; 0: until duration_ns (neither: without end)
    std::uint64_t duration_ns = 0;  // 0: no limit
    unsigned mss = 0;               // 0: mtu - 52 (1448 at MTU 1500)
    std::uint32_t window = 65536;   // the receiver's advertised window, bytes
    std::uint64_t delayed_ack_ns = 40'000'000;
    std::uint64_t seed = 1;
};

class TcpStreamSender : public NetperfEndpoint {
  public:
    TcpStreamSender(const TcpStreamParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                    const std::string& name = "tcp_stream_send");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override { conn_.tx_taken(now_ns); }
    std::uint64_t next_tx_ns() const override;
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override {
        return conn_.receive(now_ns, f, p);
    }
    bool finished() const override;
    const TcpConnection& connection() const { return conn_; }

  private:
    TcpStreamParams p_;
    TcpConnection conn_;
    std::optional<std::uint64_t> start_ns_;
    bool stopped_ = false;  // no more writes
};

class TcpStreamReceiver : public NetperfEndpoint {
  public:
    // params as given to the sender (the receiver uses params.addr reversed).
    TcpStreamReceiver(const TcpStreamParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                      const std::string& name = "tcp_stream_recv");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override { return conn_.tx_frame(now_ns); }
    void tx_taken(std::uint64_t now_ns) override { conn_.tx_taken(now_ns); }
    std::uint64_t next_tx_ns() const override { return conn_.next_tx_ns(); }
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override { return !conn_.has_pending() && conn_.next_tx_ns() == kNoTxTime; }
    const TcpConnection& connection() const { return conn_; }
    // Bits per second of payload between the first and the last data arrival (0 before two).
    double throughput_bps() const;

  private:
    TcpConnection conn_;
    std::uint64_t first_rx_ns_ = 0, last_rx_ns_ = 0, bytes_at_first_ = 0;
};

struct TcpRrParams {
    PacketAddress addr;  // the client's view
    std::uint32_t flow_id = 1;
    std::size_t request_size = 1, response_size = 1;  // netperf -r (default 1,1)
    std::uint64_t count = 0;                          // transactions; 0: no limit
    std::uint64_t duration_ns = 0;                    // 0: no limit
    unsigned mss = 0;
    std::uint32_t window = 65536;
    std::uint64_t delayed_ack_ns = 40'000'000;
    std::uint64_t seed = 1;
};

class TcpRrClient : public NetperfEndpoint {
  public:
    TcpRrClient(const TcpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                const std::string& name = "tcp_rr_client");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override { conn_.tx_taken(now_ns); }
    std::uint64_t next_tx_ns() const override;
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override;
    const TcpConnection& connection() const { return conn_; }
    double transactions_per_s() const;  // from the first request to the last completion

    Counter transactions;
    Distribution latency_ns;

  private:
    TcpRrParams p_;
    TcpConnection conn_;
    std::optional<std::uint64_t> start_ns_;
    bool outstanding_ = false, stopped_ = false;
    std::uint64_t send_ns_ = 0, last_done_ns_ = 0;
};

class TcpRrServer : public NetperfEndpoint {
  public:
    // params as given to the client (the server uses params.addr reversed).
    TcpRrServer(const TcpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                const std::string& name = "tcp_rr_server");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override { return conn_.tx_frame(now_ns); }
    void tx_taken(std::uint64_t now_ns) override { conn_.tx_taken(now_ns); }
    std::uint64_t next_tx_ns() const override { return conn_.next_tx_ns(); }
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override { return !conn_.has_pending() && conn_.next_tx_ns() == kNoTxTime; }
    const TcpConnection& connection() const { return conn_; }

    Counter requests;  // complete requests read (each answered)

  private:
    TcpRrParams p_;
    TcpConnection conn_;
};

}  // namespace xensim
