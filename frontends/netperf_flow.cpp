#include "frontends/netperf_flow.h"

namespace xensim {

bool flow_matches(const ParsedPacket& p, const PacketAddress& addr, std::uint8_t protocol) {
    if (p.protocol != protocol || p.src_ip != addr.dst_ip || p.dst_ip != addr.src_ip) return false;
    if (protocol != kIpProtoUdp && protocol != kIpProtoTcp) return true;
    return p.src_port == addr.dst_port && p.dst_port == addr.src_port;
}

SequenceTracker::Verdict SequenceTracker::observe(std::uint64_t seq) {
    if (!started_ || seq > highest_) {
        std::uint64_t from = started_ ? highest_ + 1 : seq;
        Verdict v = (!started_ || seq == from) ? Verdict::in_order : Verdict::gap;
        if (started_) lost_ += seq - from;
        // Numbers skipped (and any that fall out of the window) are no longer "seen".
        for (std::uint64_t s = from; s < seq && s < from + kWindow; ++s) seen_[s % kWindow] = false;
        seen_[seq % kWindow] = true;
        highest_ = seq;
        started_ = true;
        return v;
    }
    if (highest_ - seq < kWindow && seen_[seq % kWindow]) {
        ++dup_;
        return Verdict::duplicate;
    }
    if (highest_ - seq < kWindow) seen_[seq % kWindow] = true;
    ++late_;
    if (lost_ > 0) --lost_;
    return Verdict::late;
}

}  // namespace xensim
