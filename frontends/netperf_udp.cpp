#include "frontends/netperf_udp.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "sim/core/rng.h"  // Uint128

namespace xensim {

namespace {

// The first IP id of one direction of a flow: deterministic, different per flow and direction.
std::uint16_t first_ip_id(std::uint64_t seed, std::uint32_t flow, std::uint64_t direction) {
    return static_cast<std::uint16_t>(pattern_key(seed, flow, ~direction));
}

EthernetFrame udp_message(const PacketAddress& a, std::uint16_t ip_id, std::size_t size, std::uint64_t seed,
                          const PayloadHeader& h, L4Checksum csum) {
    std::vector<std::uint8_t> payload(size);
    write_message(payload.data(), size, seed, h);
    return build_udp(a, ip_id, payload.data(), size, csum);
}

// Counts a frame of this flow that did not parse; true when it did (and should be processed).
bool parsed_ok(const ParsedPacket& p, Counter& csum_errors, Counter& malformed) {
    if (p.ok()) return true;
    (p.status == PacketStatus::bad_l4_checksum ? csum_errors : malformed).inc();
    return false;
}

// Counts a payload that failed its check; true when it is good.
bool payload_ok(const PayloadCheck& c, Counter& payload_errors, Counter& misdelivered) {
    if (c.good()) return true;
    (c.status == PayloadStatus::misdelivered ? misdelivered : payload_errors).inc();
    return false;
}

}  // namespace

void validate_udp_message_size(std::size_t size, unsigned mtu, const char* what) {
    std::size_t max = mtu > kIpv4HeaderLen + kUdpHeaderLen ? mtu - kIpv4HeaderLen - kUdpHeaderLen : 0;
    if (size > max)
        throw std::invalid_argument(std::string(what) + " " + std::to_string(size) + " exceeds " +
                                    std::to_string(max) + " bytes (MTU " + std::to_string(mtu) +
                                    " - 28; no IP fragmentation)");
}

// --- UDP_STREAM sender ---

UdpStreamSender::UdpStreamSender(const UdpStreamParams& params, const FlowOffloads& offloads,
                                 StatsGroup& parent, const std::string& name)
    : NetperfEndpoint(parent, name),
      sent(group_, "sent", "datagrams", "UDP_STREAM datagrams taken by the device"),
      bytes(group_, "bytes", "bytes", "UDP payload bytes taken by the device"),
      p_(params),
      off_(offloads),
      ip_id_(first_ip_id(params.seed, params.flow_id, 0)) {
    validate_udp_message_size(p_.message_size, off_.mtu, "udp_stream message_size");
}

std::uint64_t UdpStreamSender::due_ns(std::uint64_t i) const {
    if (p_.rate_pps == 0 || !start_ns_) return start_ns_.value_or(0);
    return *start_ns_ + static_cast<std::uint64_t>(static_cast<Uint128>(i) * 1000000000u / p_.rate_pps);
}

bool UdpStreamSender::finished() const {
    return !pending_ && (stopped_ || (p_.count && next_seq_ >= p_.count));
}

std::uint64_t UdpStreamSender::next_tx_ns() const {
    if (pending_) return 0;
    if (finished()) return kNoTxTime;
    return due_ns(next_seq_);
}

EthernetFrame* UdpStreamSender::tx_frame(std::uint64_t now_ns) {
    if (pending_) return &*pending_;
    if (!start_ns_) start_ns_ = now_ns;
    if (p_.duration_ns && now_ns - *start_ns_ >= p_.duration_ns) stopped_ = true;
    if (finished() || now_ns < due_ns(next_seq_)) return nullptr;
    pending_ = udp_message(p_.addr, ip_id_, p_.message_size, p_.seed, {p_.flow_id, next_seq_, now_ns},
                           off_.l4_checksum());
    return &*pending_;
}

void UdpStreamSender::tx_taken(std::uint64_t) {
    if (!pending_) return;
    pending_.reset();
    sent.inc();
    bytes.inc(p_.message_size);
    ++next_seq_;
    ++ip_id_;
}

bool UdpStreamSender::receive(std::uint64_t, const EthernetFrame&, const ParsedPacket&) { return false; }

// --- UDP_STREAM receiver ---

UdpStreamReceiver::UdpStreamReceiver(const UdpStreamParams& params, StatsGroup& parent,
                                     const std::string& name)
    : NetperfEndpoint(parent, name),
      received(group_, "received", "datagrams", "UDP_STREAM datagrams received and verified"),
      bytes(group_, "bytes", "bytes", "UDP payload bytes received and verified"),
      payload_errors(group_, "payload_errors", "datagrams", "datagrams whose payload was corrupt"),
      misdelivered(group_, "misdelivered", "datagrams", "intact datagrams of another flow"),
      csum_errors(group_, "csum_errors", "datagrams", "datagrams dropped for a wrong UDP checksum"),
      malformed(group_, "malformed", "datagrams", "datagrams of this flow with a bad UDP header"),
      lost(group_, "lost", "datagrams", "sequence numbers skipped and not seen later"),
      out_of_order(group_, "out_of_order", "datagrams", "datagrams arriving after a later one"),
      duplicates(group_, "duplicates", "datagrams", "datagrams whose sequence number was seen before"),
      one_way_max_ns(group_, "one_way_max_ns", "ns", "largest arrival time - send timestamp"),
      one_way_sum_ns(group_, "one_way_sum_ns", "ns", "sum of arrival time - send timestamp"),
      p_(params),
      local_(params.addr.reversed()) {}

bool UdpStreamReceiver::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    if (!flow_matches(p, local_, kIpProtoUdp)) return false;
    if (!parsed_ok(p, csum_errors, malformed)) return true;
    PayloadCheck c = check_message(&f.bytes[p.payload_offset], p.payload_len, p_.seed, p_.flow_id);
    if (!payload_ok(c, payload_errors, misdelivered)) return true;
    if (received.value() == 0)
        first_rx_ns_ = now_ns;
    else
        bytes_after_first_ += p.payload_len;
    last_rx_ns_ = now_ns;
    received.inc();
    bytes.inc(p.payload_len);
    if (c.status == PayloadStatus::ok) {
        seq_.observe(c.header.seq);
        ++sequenced_;
        if (now_ns >= c.header.send_ns) {
            one_way_max_ns.raise_to(now_ns - c.header.send_ns);
            one_way_sum_ns.inc(now_ns - c.header.send_ns);
        }
        // Counters mirror the tracker (lost can go down when a late datagram arrives).
        lost.inc(seq_.lost() - lost.value());
        out_of_order.inc(seq_.out_of_order() - out_of_order.value());
        duplicates.inc(seq_.duplicates() - duplicates.value());
    }
    return true;
}

double UdpStreamReceiver::throughput_bps() const {
    if (last_rx_ns_ <= first_rx_ns_) return 0.0;
    return static_cast<double>(bytes_after_first_) * 8e9 / static_cast<double>(last_rx_ns_ - first_rx_ns_);
}

// --- UDP_RR client ---

UdpRrClient::UdpRrClient(const UdpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                         const std::string& name)
    : NetperfEndpoint(parent, name),
      transactions(group_, "transactions", "transactions", "request/response pairs completed"),
      requests_sent(group_, "requests_sent", "datagrams", "requests taken by the device"),
      request_bytes(group_, "request_bytes", "bytes", "UDP payload bytes of requests sent"),
      response_bytes(group_, "response_bytes", "bytes", "UDP payload bytes of responses received"),
      payload_errors(group_, "payload_errors", "datagrams", "responses whose payload was corrupt"),
      misdelivered(group_, "misdelivered", "datagrams", "intact responses of another flow"),
      csum_errors(group_, "csum_errors", "datagrams", "responses dropped for a wrong UDP checksum"),
      malformed(group_, "malformed", "datagrams", "responses of this flow with a bad UDP header"),
      unexpected(group_, "unexpected", "datagrams", "intact responses not for the outstanding request"),
      latency_ns(group_, "latency_ns", "ns", "response arrival - request send, per transaction"),
      p_(params),
      off_(offloads),
      ip_id_(first_ip_id(params.seed, params.flow_id, 0)) {
    validate_udp_message_size(p_.request_size, off_.mtu, "udp_rr request_size");
    validate_udp_message_size(p_.response_size, off_.mtu, "udp_rr response_size");
}

bool UdpRrClient::over(std::uint64_t now_ns) const {
    if (p_.count && transactions.value() >= p_.count) return true;
    return p_.duration_ns && start_ns_ && now_ns - *start_ns_ >= p_.duration_ns;
}

bool UdpRrClient::finished() const {
    if (pending_ || outstanding_) return false;
    return stopped_ || (p_.count && transactions.value() >= p_.count);
}

std::uint64_t UdpRrClient::next_tx_ns() const {
    if (pending_) return 0;
    if (outstanding_ || finished()) return kNoTxTime;
    return 0;
}

EthernetFrame* UdpRrClient::tx_frame(std::uint64_t now_ns) {
    if (pending_) return &*pending_;
    if (outstanding_) return nullptr;
    if (!start_ns_) start_ns_ = now_ns;
    if (over(now_ns)) {
        stopped_ = true;
        return nullptr;
    }
    pending_send_ns_ = now_ns;
    pending_ = udp_message(p_.addr, ip_id_, p_.request_size, p_.seed, {p_.flow_id, next_seq_, now_ns},
                           off_.l4_checksum());
    return &*pending_;
}

void UdpRrClient::tx_taken(std::uint64_t) {
    if (!pending_) return;
    pending_.reset();
    requests_sent.inc();
    request_bytes.inc(p_.request_size);
    outstanding_ = true;
    outstanding_seq_ = next_seq_++;
    outstanding_send_ns_ = pending_send_ns_;
    ++ip_id_;
}

bool UdpRrClient::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    if (!flow_matches(p, p_.addr, kIpProtoUdp)) return false;
    if (!parsed_ok(p, csum_errors, malformed)) return true;
    PayloadCheck c = check_message(&f.bytes[p.payload_offset], p.payload_len, p_.seed, p_.flow_id);
    if (!payload_ok(c, payload_errors, misdelivered)) return true;
    bool ours = outstanding_ && p.payload_len == p_.response_size &&
                (c.status == PayloadStatus::ok_short || c.header.seq == outstanding_seq_);
    if (!ours) {
        unexpected.inc();
        return true;
    }
    outstanding_ = false;
    transactions.inc();
    response_bytes.inc(p.payload_len);
    latency_ns.sample(now_ns - outstanding_send_ns_);
    last_done_ns_ = now_ns;
    return true;
}

double UdpRrClient::transactions_per_s() const {
    if (!start_ns_ || last_done_ns_ <= *start_ns_) return 0.0;
    return static_cast<double>(transactions.value()) * 1e9 / static_cast<double>(last_done_ns_ - *start_ns_);
}

// --- UDP_RR server ---

UdpRrServer::UdpRrServer(const UdpRrParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                         const std::string& name)
    : NetperfEndpoint(parent, name),
      requests(group_, "requests", "datagrams", "requests received and verified"),
      responses_sent(group_, "responses_sent", "datagrams", "responses taken by the device"),
      request_bytes(group_, "request_bytes", "bytes", "UDP payload bytes of requests received"),
      response_bytes(group_, "response_bytes", "bytes", "UDP payload bytes of responses sent"),
      payload_errors(group_, "payload_errors", "datagrams", "requests whose payload was corrupt"),
      misdelivered(group_, "misdelivered", "datagrams", "intact requests of another flow"),
      csum_errors(group_, "csum_errors", "datagrams", "requests dropped for a wrong UDP checksum"),
      malformed(group_, "malformed", "datagrams", "requests of this flow with a bad UDP header"),
      backlog_drops(group_, "backlog_drops", "datagrams", "requests dropped with kBacklog answers waiting"),
      p_(params),
      off_(offloads),
      local_(params.addr.reversed()),
      ip_id_(first_ip_id(params.seed, params.flow_id, 1)) {
    validate_udp_message_size(p_.response_size, off_.mtu, "udp_rr response_size");
}

bool UdpRrServer::receive(std::uint64_t, const EthernetFrame& f, const ParsedPacket& p) {
    if (!flow_matches(p, local_, kIpProtoUdp)) return false;
    if (!parsed_ok(p, csum_errors, malformed)) return true;
    PayloadCheck c = check_message(&f.bytes[p.payload_offset], p.payload_len, p_.seed, p_.flow_id);
    if (!payload_ok(c, payload_errors, misdelivered)) return true;
    requests.inc();
    request_bytes.inc(p.payload_len);
    if (backlog_.size() >= kBacklog) {
        backlog_drops.inc();
        return true;
    }
    backlog_.push_back(c.status == PayloadStatus::ok ? c.header.seq : unsequenced_++);
    return true;
}

EthernetFrame* UdpRrServer::tx_frame(std::uint64_t now_ns) {
    if (pending_) return &*pending_;
    if (backlog_.empty()) return nullptr;
    pending_ = udp_message(local_, ip_id_, p_.response_size, p_.seed, {p_.flow_id, backlog_.front(), now_ns},
                           off_.l4_checksum());
    return &*pending_;
}

void UdpRrServer::tx_taken(std::uint64_t) {
    if (!pending_) return;
    pending_.reset();
    backlog_.pop_front();
    responses_sent.inc();
    response_bytes.inc(p_.response_size);
    ++ip_id_;
}

}  // namespace xensim
