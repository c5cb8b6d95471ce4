#include "frontends/netperf_ping.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "frontends/net_payload.h"

namespace xensim {

PingClient::PingClient(const PingParams& params, const FlowOffloads& offloads, StatsGroup& parent,
                       const std::string& name)
    : NetperfEndpoint(parent, name),
      sent(group_, "sent", "packets", "echo requests taken by the device"),
      replies(group_, "replies", "packets", "distinct echo replies received and verified"),
      lost(group_, "lost", "packets", "requests without a reply when the client finished"),
      payload_errors(group_, "payload_errors", "packets", "replies whose data was corrupt"),
      misdelivered(group_, "misdelivered", "packets", "intact replies carrying another identifier's data"),
      csum_errors(group_, "csum_errors", "packets", "replies dropped for a wrong ICMP checksum"),
      malformed(group_, "malformed", "packets", "replies of this client with a bad ICMP header"),
      duplicates(group_, "duplicates", "packets", "replies to a request already answered"),
      out_of_order(group_, "out_of_order", "packets", "replies arriving after a later request's"),
      rtt_ns(group_, "rtt_ns", "ns", "reply arrival - request send timestamp"),
      p_(params),
      ip_id_(static_cast<std::uint16_t>(pattern_key(params.seed, params.id, ~std::uint64_t{6}))) {
    if (p_.payload_size < kPayloadHeaderLen)
        throw std::invalid_argument("ping payload_size " + std::to_string(p_.payload_size) + " is below " +
                                    std::to_string(kPayloadHeaderLen) + " (the timestamp header)");
    std::size_t max = offloads.mtu - kIpv4HeaderLen - kIcmpEchoHeaderLen;
    if (offloads.mtu < kIpv4HeaderLen + kIcmpEchoHeaderLen || p_.payload_size > max)
        throw std::invalid_argument("ping payload_size " + std::to_string(p_.payload_size) +
                                    " does not fit the MTU (no IP fragmentation)");
}

std::uint64_t PingClient::next_tx_ns() const {
    if (pending_) return 0;
    if (done_) return kNoTxTime;
    if (all_sent()) return last_send_ns_ + p_.timeout_ns;  // when the wait for replies ends
    if (!start_ns_) return 0;
    if (p_.interval_ns == 0) return waiting_ ? last_send_ns_ + p_.timeout_ns : 0;
    return *start_ns_ + next_seq_ * p_.interval_ns;
}

EthernetFrame* PingClient::tx_frame(std::uint64_t now_ns) {
    if (pending_) return &*pending_;
    if (done_) return nullptr;
    if (all_sent()) {
        if ((replies.value() >= p_.count && !waiting_) || now_ns >= last_send_ns_ + p_.timeout_ns) {
            done_ = true;
            lost.inc(p_.count - replies.value());
        }
        return nullptr;
    }
    if (!start_ns_) start_ns_ = now_ns;
    bool early = p_.interval_ns ? now_ns < *start_ns_ + next_seq_ * p_.interval_ns
                                : waiting_ && now_ns < last_send_ns_ + p_.timeout_ns;
    if (early) return nullptr;
    std::vector<std::uint8_t> data(p_.payload_size);
    write_message(data.data(), data.size(), p_.seed, {p_.id, next_seq_, now_ns});
    pending_ = build_icmp_echo(p_.addr, ip_id_, kIcmpEchoRequest, p_.id,
                               static_cast<std::uint16_t>(next_seq_), data.data(), data.size());
    last_send_ns_ = now_ns;
    return &*pending_;
}

void PingClient::tx_taken(std::uint64_t) {
    if (!pending_) return;
    pending_.reset();
    sent.inc();
    ++next_seq_;
    ++ip_id_;
    waiting_ = true;
}

bool PingClient::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    if (!flow_matches(p, p_.addr, kIpProtoIcmp)) return false;
    if (p.status == PacketStatus::bad_l4_checksum) {
        csum_errors.inc();  // the identifier cannot be trusted either, but the addresses match
        return true;
    }
    if (!p.ok()) {
        malformed.inc();
        return true;
    }
    if (p.icmp_type != kIcmpEchoReply || p.icmp_id != p_.id) return false;  // another socket's
    PayloadCheck c = check_message(&f.bytes[p.payload_offset], p.payload_len, p_.seed, p_.id);
    if (c.status == PayloadStatus::misdelivered) {
        misdelivered.inc();
        return true;
    }
    if (c.status != PayloadStatus::ok || static_cast<std::uint16_t>(c.header.seq) != p.icmp_seq) {
        payload_errors.inc();
        return true;
    }
    auto v = seq_.observe(c.header.seq);
    if (v == SequenceTracker::Verdict::duplicate) {
        duplicates.inc();
        return true;
    }
    if (v == SequenceTracker::Verdict::late) out_of_order.inc();
    replies.inc();
    if (now_ns >= c.header.send_ns) rtt_ns.sample(now_ns - c.header.send_ns);
    if (c.header.seq + 1 == next_seq_) waiting_ = false;
    return true;
}

IcmpEchoResponder::IcmpEchoResponder(const PacketAddress& addr, StatsGroup& parent, const std::string& name)
    : NetperfEndpoint(parent, name),
      requests(group_, "requests", "packets", "echo requests received"),
      replies_sent(group_, "replies_sent", "packets", "echo replies taken by the device"),
      csum_errors(group_, "csum_errors", "packets", "requests dropped for a wrong ICMP checksum"),
      malformed(group_, "malformed", "packets", "ICMP frames from the peer with a bad header"),
      backlog_drops(group_, "backlog_drops", "packets", "requests dropped with kBacklog replies waiting"),
      addr_(addr) {}

bool IcmpEchoResponder::receive(std::uint64_t, const EthernetFrame& f, const ParsedPacket& p) {
    if (!flow_matches(p, addr_, kIpProtoIcmp)) return false;
    if (!p.ok()) {
        (p.status == PacketStatus::bad_l4_checksum ? csum_errors : malformed).inc();
        return true;
    }
    if (p.icmp_type != kIcmpEchoRequest) return false;
    requests.inc();
    if (backlog_.size() >= kBacklog) {
        backlog_drops.inc();
        return true;
    }
    backlog_.push_back(build_icmp_echo(addr_, ip_id_++, kIcmpEchoReply, p.icmp_id, p.icmp_seq,
                                       f.bytes.data() + p.payload_offset, p.payload_len));
    return true;
}

EthernetFrame* IcmpEchoResponder::tx_frame(std::uint64_t) {
    return backlog_.empty() ? nullptr : &backlog_.front();
}

void IcmpEchoResponder::tx_taken(std::uint64_t) {
    if (backlog_.empty()) return;
    backlog_.pop_front();
    replies_sent.inc();
}

}  // namespace xensim
