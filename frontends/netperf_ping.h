// ping: ICMP echo request / reply (RFC 792) with RTT samples, as endpoints of netperf_flow.h.
//
// PingClient follows iputils ping: echo requests with the client's identifier and a sequence
// number counting from 0 (wrapping at 16 bits, as the field does), payload_size bytes of data
// (default 56) that open with a send timestamp (here the net_payload.h header, verified on the
// reply), one every interval_ns (default 1 s) until count have been sent; with interval 0, the
// next request leaves when the previous reply arrives, or timeout_ns after the previous request
// when the reply is lost (one outstanding, a deterministic flood). The
// RTT of a reply is its arrival minus the timestamp it carries, so late replies are timed right.
// After the last request the client waits timeout_ns (ping -W) for outstanding replies and then
// counts the rest as lost. Duplicate and reordered replies are counted by sequence
// (SequenceTracker on the 64-bit sequence in the payload header).
//
// IcmpEchoResponder is what the receiving kernel does (icmp_echo): it answers every echo request
// addressed to it from its peer with a reply carrying the same identifier, sequence number and
// data. It keeps at most kBacklog replies waiting for the device and drops (and counts) beyond.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "frontends/netperf_flow.h"
#include "sim/core/stats.h"

namespace xensim {

struct PingParams {
    PacketAddress addr;                      // the client's view (ports unused)
    std::uint16_t id = 1;                    // ICMP identifier (ping uses its socket's port)
    std::size_t payload_size = 56;           // ping -s; at least kPayloadHeaderLen
    std::uint64_t interval_ns = 1000000000;  // ping -i; 0: next request on the reply
    std::uint64_t count = 0;                 // ping -c; 0: no limit
    std::uint64_t timeout_ns = 1000000000;   // ping -W: wait after the last request
    std::uint64_t seed = 1;
};

class PingClient : public NetperfEndpoint {
  public:
    PingClient(const PingParams& params, const FlowOffloads& offloads, StatsGroup& parent,
               const std::string& name = "ping");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override;
    std::uint64_t next_tx_ns() const override;
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override { return done_; }

    Counter sent, replies, lost;  // lost: known once finished (sent - distinct replies)
    Counter payload_errors, misdelivered, csum_errors, malformed, duplicates, out_of_order;
    Distribution rtt_ns;

  private:
    bool all_sent() const { return p_.count && next_seq_ >= p_.count; }
    PingParams p_;
    std::optional<EthernetFrame> pending_;
    std::optional<std::uint64_t> start_ns_;
    std::uint64_t next_seq_ = 0, last_send_ns_ = 0;
    bool waiting_ = false;  // interval 0: a request is unanswered
    bool done_ = false;
    SequenceTracker seq_;
    std::uint16_t ip_id_;
};

class IcmpEchoResponder : public NetperfEndpoint {
  public:
    static constexpr std::size_t kBacklog = 64;
    // addr: the responder's view (src = the responder, dst = the peer it answers).
    IcmpEchoResponder(const PacketAddress& addr, StatsGroup& parent, const std::string& name = "icmp_echo");
    EthernetFrame* tx_frame(std::uint64_t now_ns) override;
    void tx_taken(std::uint64_t now_ns) override;
    std::uint64_t next_tx_ns() const override { return backlog_.empty() ? kNoTxTime : 0; }
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) override;
    bool finished() const override { return backlog_.empty(); }

    Counter requests, replies_sent, csum_errors, malformed, backlog_drops;

  private:
    PacketAddress addr_;
    std::deque<EthernetFrame> backlog_;  // replies built, waiting for the device
    std::uint16_t ip_id_ = 0;
};

}  // namespace xensim
