#include "frontends/tcp_connection.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "frontends/net_payload.h"

namespace xensim {

namespace {

unsigned derive_mss(const TcpConnectionParams& p, const FlowOffloads& off) {
    std::size_t fit = off.mtu > TcpConnection::kHeaderBytes ? off.mtu - TcpConnection::kHeaderBytes : 0;
    unsigned mss = p.mss ? p.mss : static_cast<unsigned>(fit);
    if (mss == 0 || mss > fit || mss > 0xffff)
        throw std::invalid_argument("tcp mss " + std::to_string(mss) + " must be 1.." + std::to_string(fit) +
                                    " (MTU " + std::to_string(off.mtu) + " - 52)");
    return mss;
}

unsigned derive_shift(std::uint32_t window, unsigned mss) {
    if (window < mss)
        throw std::invalid_argument("tcp window " + std::to_string(window) + " is below the MSS " +
                                    std::to_string(mss));
    unsigned shift = 0;
    while ((window >> shift) > 0xffff) ++shift;
    if (shift > 14 || (window >> shift) << shift != window)
        throw std::invalid_argument("tcp window " + std::to_string(window) +
                                    " must be at most 65535 << 14 and a multiple of its scale");
    return shift;
}

}  // namespace

TcpConnection::TcpConnection(const TcpConnectionParams& params, const FlowOffloads& offloads, StatsGroup& g)
    : frames_sent(g, "frames_sent", "frames", "TCP frames taken by the device (a super-packet is one)"),
      segments_sent(g, "segments_sent", "segments",
                    "TCP segments sent, a super-packet counting its MSS-sized parts"),
      gso_frames_sent(g, "gso_frames_sent", "frames", "TCP GSO super-packets taken by the device"),
      data_bytes_sent(g, "data_bytes_sent", "bytes", "TCP payload bytes taken by the device"),
      pure_acks_sent(g, "pure_acks_sent", "frames", "ACKs without data taken by the device"),
      delayed_acks_sent(g, "delayed_acks_sent", "frames",
                        "pure ACKs sent when the delayed-ACK timer expired"),
      frames_received(g, "frames_received", "frames", "TCP frames of this connection received"),
      data_bytes_received(g, "data_bytes_received", "bytes", "in-order payload bytes received"),
      acks_received(g, "acks_received", "frames", "received frames whose ACK advanced snd_una"),
      payload_errors(g, "payload_errors", "frames", "in-order segments with bytes off the stream pattern"),
      csum_errors(g, "csum_errors", "frames", "frames dropped for a wrong TCP checksum"),
      malformed(g, "malformed", "frames", "frames of this connection with a bad TCP header"),
      out_of_order(g, "out_of_order", "frames", "data segments that were not the next expected (dropped)"),
      invalid_acks(g, "invalid_acks", "frames", "frames acknowledging data never sent (dropped)"),
      ignored(g, "ignored", "frames", "frames with SYN or RST or without ACK (no handshake here)"),
      max_in_flight(g, "max_in_flight", "bytes", "peak of bytes sent and not yet acknowledged"),
      p_(params),
      off_(offloads),
      mss_(derive_mss(params, offloads)),
      wshift_(derive_shift(params.window, mss_)),
      peer_wnd_(params.window) {
    std::uint64_t dgram = std::min<std::uint64_t>(off_.gso_max_size, kIpv4MaxTotalLen);
    std::uint64_t room = dgram > kHeaderBytes ? dgram - kHeaderBytes : 0;
    max_gso_payload_ = off_.tso() ? std::max<std::uint64_t>(room / mss_ * mss_, mss_) : mss_;
    std::uint32_t client_isn =
        static_cast<std::uint32_t>(pattern_key(p_.seed, p_.flow_id, ~std::uint64_t{2}));
    std::uint32_t server_isn =
        static_cast<std::uint32_t>(pattern_key(p_.seed, p_.flow_id, ~std::uint64_t{3}));
    std::uint64_t client_key = pattern_key(p_.seed, p_.flow_id, 0),
                  server_key = pattern_key(p_.seed, p_.flow_id, 1);
    snd_isn_ = p_.client ? client_isn : server_isn;
    rcv_isn_ = p_.client ? server_isn : client_isn;
    tx_key_ = p_.client ? client_key : server_key;
    rx_key_ = p_.client ? server_key : client_key;
    ip_id_ =
        static_cast<std::uint16_t>(pattern_key(p_.seed, p_.flow_id, ~std::uint64_t{p_.client ? 4u : 5u}));
}

std::uint64_t TcpConnection::data_len_now() const {
    std::uint64_t unsent = app_end_ - snd_nxt_, in_flight = snd_nxt_ - snd_una_;
    if (unsent == 0 || in_flight >= peer_wnd_) return 0;
    std::uint64_t room = peer_wnd_ - in_flight;
    std::uint64_t len = std::min({unsent, room, max_gso_payload_});
    if (len > mss_ && len < unsent) len -= len % mss_;  // super-packets of whole MSS, but for the tail
    if (len < mss_ && len < unsent) return 0;           // no sub-MSS segment while more data waits
    if (len < mss_ && snd_sml_ > snd_una_) return 0;    // Nagle (Minshall): a small one is unacked
    return len;
}

bool TcpConnection::ack_due(std::uint64_t now_ns) const {
    if (rcv_nxt_ == ack_sent_ && !ack_now_) return false;
    return ack_now_ || now_ns >= delack_at_;
}

std::uint64_t TcpConnection::next_tx_ns() const {
    if (pending_ || data_len_now() > 0 || ack_now_) return 0;
    return rcv_nxt_ > ack_sent_ ? delack_at_ : kNoTxTime;
}

EthernetFrame* TcpConnection::tx_frame(std::uint64_t now_ns) {
    if (pending_) return &*pending_;
    std::uint64_t len = data_len_now();
    if (len == 0 && !ack_due(now_ns)) return nullptr;
    TcpFields t;
    t.seq = snd_seq(snd_nxt_);
    t.ack = rcv_seq(rcv_nxt_);
    t.flags = static_cast<std::uint8_t>(kTcpAck | (len && snd_nxt_ + len == app_end_ ? kTcpPsh : 0));
    t.window = static_cast<std::uint16_t>(p_.window >> wshift_);
    t.timestamps = true;
    t.tsval = static_cast<std::uint32_t>(now_ns / 1000000);  // a 1 ms clock, as tcp_time_stamp_ms
    t.tsecr = ts_recent_;
    std::vector<std::uint8_t> data(len);
    fill_pattern(tx_key_, snd_nxt_, data.data(), len);
    bool gso = len > mss_;
    pending_ = build_tcp(p_.addr, ip_id_, t, data.data(), len, gso ? L4Checksum::blank : off_.l4_checksum(),
                         gso ? static_cast<std::uint16_t>(mss_) : 0);
    pending_info_ = {snd_nxt_ + len, len, rcv_nxt_, len == 0 && !ack_now_};
    return &*pending_;
}

void TcpConnection::tx_taken(std::uint64_t now_ns) {
    if (!pending_) return;
    const Pending& pi = pending_info_;
    frames_sent.inc();
    if (pi.data_len) {
        snd_nxt_ = pi.data_end;
        if (pi.data_len < mss_) snd_sml_ = snd_nxt_;
        data_bytes_sent.inc(pi.data_len);
        segments_sent.inc((pi.data_len + mss_ - 1) / mss_);
        if (pi.data_len > mss_) gso_frames_sent.inc();
        // At most the window the frame was built for (data_len_now); a peer that shrinks its
        // window meanwhile only delays the next segment (tcp_snd_wnd_test), as in Linux.
        max_in_flight.raise_to(snd_nxt_ - snd_una_);
    } else {
        pure_acks_sent.inc();
        if (pi.delayed) delayed_acks_sent.inc();
    }
    ack_sent_ = std::max(ack_sent_, pi.acks);
    ip_id_++;
    pending_.reset();
    if (ack_sent_ >= rcv_nxt_) {
        ack_now_ = false;
        delack_at_ = kNoTxTime;
    } else {  // data arrived while the frame waited: the rule applies to what is still unacked
        ack_now_ = rcv_nxt_ - ack_sent_ > rcv_mss_;
        if (delack_at_ == kNoTxTime) delack_at_ = now_ns + p_.delayed_ack_ns;
    }
}

bool TcpConnection::receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p) {
    if (!flow_matches(p, p_.addr, kIpProtoTcp)) return false;
    frames_received.inc();
    if (!p.ok()) {
        (p.status == PacketStatus::bad_l4_checksum ? csum_errors : malformed).inc();
        return true;
    }
    const TcpFields& t = p.tcp;
    if ((t.flags & (kTcpSyn | kTcpRst)) || !(t.flags & kTcpAck)) {
        ignored.inc();
        return true;
    }
    // ACK processing (tcp_ack): acceptable when it acknowledges nothing new or data in flight.
    std::uint32_t advance = t.ack - snd_seq(snd_una_);
    if (advance > snd_nxt_ - snd_una_) {
        invalid_acks.inc();  // tcp_ack: "ACK of unsent data", the segment is dropped
        return true;
    }
    if (advance) {
        snd_una_ += advance;
        acks_received.inc();
    }
    peer_wnd_ = static_cast<std::uint32_t>(std::uint64_t{t.window} << wshift_);
    // tcp_replace_ts_recent, simplified: the timestamp of a segment at rcv_nxt is echoed next.
    if (t.timestamps && t.seq == rcv_seq(rcv_nxt_)) ts_recent_ = t.tsval;
    if (p.payload_len == 0) return true;

    // Data (tcp_data_queue): only the next expected segment is taken.
    std::uint64_t off = rcv_nxt_ + static_cast<std::int32_t>(t.seq - rcv_seq(rcv_nxt_));
    if (off != rcv_nxt_) {
        out_of_order.inc();
        ack_now_ = true;  // a duplicate ACK at once, as tcp_data_queue's out-of-window path
        return true;
    }
    if (!check_pattern(rx_key_, off, &f.bytes[p.payload_offset], p.payload_len)) payload_errors.inc();
    rcv_nxt_ += p.payload_len;
    data_bytes_received.inc(p.payload_len);
    // tcp_measure_rcv_mss: the largest segment seen, at most our own MSS.
    std::size_t seg = f.gso_type != GsoType::none && f.gso_size ? f.gso_size : p.payload_len;
    rcv_mss_ = std::max<unsigned>(rcv_mss_, static_cast<unsigned>(std::min<std::size_t>(seg, mss_)));
    if (rcv_nxt_ - ack_sent_ > rcv_mss_)
        ack_now_ = true;  // __tcp_ack_snd_check: more than one full-sized segment unacked
    else if (delack_at_ == kNoTxTime)
        delack_at_ = now_ns + p_.delayed_ack_ns;
    return true;
}

}  // namespace xensim
