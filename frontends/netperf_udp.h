// UDP_STREAM and UDP_RR, netperf's UDP tests, as endpoints of netperf_flow.h.
//
// UDP_STREAM (netperf -t UDP_STREAM -- -m size): the sender emits datagrams of message_size bytes
// of UDP payload, at rate_pps datagrams per second (datagram i is due at start + i * 1e9 / rate,
// start being the first tx_frame() call; a sender held back by a full queue catches up in a burst,
// as a paced sender behind a blocking send() does) or, with rate 0, as fast as the device takes
// them; it stops after count datagrams or duration_ns, whichever comes first (neither: never).
// The receiver (netserver's sink) verifies each payload (net_payload.h), tracks loss, reorder and
// duplicates by sequence number (SequenceTracker), measures the one-way latency from the send
// timestamp (peak and mean), and measures throughput from its first to its last arrival. netperf reports the
// receiver's rate as the UDP_STREAM result because the sender's counts include what the path drops;
// so does this (UdpStreamReceiver::throughput_bps).
//
// UDP_RR (netperf -t UDP_RR -- -r req,resp): one transaction outstanding (netperf's default burst
// of 0): the client sends a request of request_size bytes, the responder answers each request with
// a response of response_size bytes carrying the request's sequence number, and the client's next
// request leaves when the response arrives. Latency per transaction = response arrival - request
// send, into a Distribution (exact percentiles); transactions/s from the first send to the last
// completion. A response that is not for the outstanding request (late, duplicate) is counted
// and ignored. As in netperf, a lost request or response stalls the client: there is no retry;
// the run's end shows it as fewer transactions.
//
// Both directions carry checksums as FlowOffloads says (blank with tx checksum offload). Messages
// must fit one frame: message_size <= mtu - 28 (no IP fragmentation, no UFO).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "frontends/net_payload.h"
#include "frontends/netperf_flow.h"
#include "sim/core/stats.h"

namespace xensim {

struct UdpStreamParams {
    PacketAddress addr;  // the sender's view: src = the sender
    std::uint32_t flow_id = 1;
    std::size_t message_size = 1472;  // bytes of UDP payload (netperf -m); 1500 - 20 - 8 by default
    std::uint64_t rate_pps = 0;       // datagrams per second; 0: as fast as the device takes them
    std::uint64_t count = 0;          // datagrams; 0: no limit
    std::uint64_t duration_ns = 0;    // 0: no limit
    std::uint64_t seed = 1;
};

// Throws std::invalid_argument naming the parameter when message_size does not fit the MTU.
void validate_udp_message_size(std::size_t size, unsigned mtu, const char* what);

class UdpStreamSender : public NetperfEndpoint {
  public:
    UdpStreamSender(const UdpStreamParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                    const std::string& name = "udp_stream_send");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override;
    std::uint64_t next_tx_ns() const override;
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override;

    Counter sent, bytes;  // datagrams taken by the device, UDP payload bytes

  private:
    std::uint64_t due_ns(std::uint64_t i) const;
    UdpStreamParams p_;
    FlowOffloads off_;
    std::optional<EthernetFrame> pending_;
    std::optional<std::uint64_t> start_ns_;
    bool stopped_ = false;  // duration over
    std::uint64_t next_seq_ = 0;
    std::uint16_t ip_id_;
};

class UdpStreamReceiver : public NetperfEndpoint {
  public:
    // params as given to the sender (the receiver uses params.addr reversed).
    UdpStreamReceiver(const UdpStreamParams& params, StatsGroup& parent,
                      const std::string& name = "udp_stream_recv");
    EthernetFrame* tx_frame(std::uint64_t) override { return nullptr; }
    void tx_taken(std::uint64_t) override {}
    std::uint64_t next_tx_ns() const override { return kNoTxTime; }
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override { return true; }

    // Bits per second of verified payload between the first and the last arrival (0 before two).
    double throughput_bps() const;
    const SequenceTracker& sequence() const { return seq_; }

    Counter received, bytes;  // verified datagrams and their payload bytes
    Counter payload_errors;   // corrupt payload (checksum trusted or passed, content wrong)
    Counter misdelivered;     // intact payload of another flow
    Counter csum_errors;      // L4 checksum verified and wrong (dropped, as UDP_MIB_CSUMERRORS)
    Counter malformed;        // this flow's ports, but a bad UDP header
    Counter lost, out_of_order, duplicates;  // by sequence number (SequenceTracker), kept current
    // Arrival - send timestamp of datagrams with a header: the peak and the sum (mean = sum /
    // sequenced()). Not a Distribution: a stream would keep a sample per datagram.
    Counter one_way_max_ns, one_way_sum_ns;
    std::uint64_t sequenced() const { return sequenced_; }  // datagrams with a header

  private:
    UdpStreamParams p_;
    PacketAddress local_;
    SequenceTracker seq_;
    std::uint64_t first_rx_ns_ = 0, last_rx_ns_ = 0, bytes_after_first_ = 0, sequenced_ = 0;
};

struct UdpRrParams {
    PacketAddress addr;  // the client's view
    std::uint32_t flow_id = 1;
    std::size_t request_size = 1, response_size = 1;  // netperf -r (default 1,1)
    std::uint64_t count = 0;                          // transactions; 0: no limit
    std::uint64_t duration_ns = 0;                    // 0: no limit
    std::uint64_t seed = 1;
};

class UdpRrClient : public NetperfEndpoint {
  public:
    UdpRrClient(const UdpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                const std::string& name = "udp_rr_client");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override;
    std::uint64_t next_tx_ns() const override;
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override;

    // Completed transactions per second, from the first request to the last completion.
    double transactions_per_s() const;

    Counter transactions, requests_sent, request_bytes, response_bytes;
    Counter payload_errors, misdelivered, csum_errors, malformed;
    Counter unexpected;  // intact responses that are not for the outstanding request
    Distribution latency_ns;

  private:
    bool over(std::uint64_t now_ns) const;
    UdpRrParams p_;
    FlowOffloads off_;
    std::optional<EthernetFrame> pending_;
    std::uint64_t pending_send_ns_ = 0;
    bool outstanding_ = false, stopped_ = false;  // stopped_: count or duration reached
    std::uint64_t outstanding_seq_ = 0, outstanding_send_ns_ = 0;
    std::optional<std::uint64_t> start_ns_;
    std::uint64_t last_done_ns_ = 0, next_seq_ = 0;
    std::uint16_t ip_id_;
};

// The responder (netserver's UDP_RR side, or a guest serving a peer). Answers in arrival order;
// at most kBacklog answers wait for the device, further requests are dropped and counted (the
// socket receive buffer overflowing, UDP_MIB_RCVBUFERRORS).
class UdpRrServer : public NetperfEndpoint {
  public:
    static constexpr std::size_t kBacklog = 256;
    // params as given to the client (the server uses params.addr reversed).
    UdpRrServer(const UdpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                const std::string& name = "udp_rr_server");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override;
    std::uint64_t next_tx_ns() const override { return backlog_.empty() ? kNoTxTime : 0; }
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override { return backlog_.empty(); }

    Counter requests, responses_sent, request_bytes, response_bytes;
    Counter payload_errors, misdelivered, csum_errors, malformed, backlog_drops;

  private:
    UdpRrParams p_;
    FlowOffloads off_;
    PacketAddress local_;
    std::deque<std::uint64_t> backlog_;  // sequence numbers of requests to answer
    std::optional<EthernetFrame> pending_;
    std::uint64_t unsequenced_ = 0;  // answers to short (header-less) requests, numbered here
    std::uint16_t ip_id_;
};

}  // namespace xensim
