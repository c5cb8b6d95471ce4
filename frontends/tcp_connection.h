// TcpConnection: one end of an established TCP connection, reduced to what bulk transfer and
// request/response traffic exercise on a lossless path: segmentation (with TSO super-packets), a
// receive window, cumulative ACKs with Linux's delayed-ACK rule, timestamps, and verification of
// every byte. The netperf TCP_STREAM and TCP_RR engines (netperf_tcp.h) are built on it.
//
// Sending (tcp_write_xmit, simplified). The application write()s byte counts; the content of byte
// k of a direction is the pattern of net_payload.h at offset k, keyed by the flow and direction.
// A segment leaves when the peer's advertised window has room: its length is the lesser of the
// unsent data, the room, and one MSS, or with TSO (FlowOffloads::tso()) the largest multiple of
// the MSS that fits in both the room and a 64 KiB IP datagram (gso_max_size): one GSO super-packet
// with gso_size = MSS and a blank checksum, as Linux hands a TSO device; a super-packet of one MSS
// or less is an ordinary segment (tcp_set_skb_tso_segs). Without TSO, MSS-sized segments with the
// checksum full or blank per tx_csum. A segment shorter than the MSS leaves only when it carries
// all the unsent data (sender-side silly-window avoidance, tcp_snd_wnd_test) and, per Nagle as
// Linux applies it (Minshall's variant, tcp_nagle_check), no earlier sub-MSS segment is still
// unacknowledged. PSH marks a segment that empties the send queue. Bytes in flight (snd_nxt -
// snd_una) never exceed the peer's window: max_in_flight records the peak.
//
// MSS: params.mss, or mtu - 20 (IPv4) - 32 (TCP with the timestamps option) = 1448 at MTU 1500,
// Linux's value on Ethernet. Both ends are assumed to share MTU and window: there is no SYN
// exchange, so the window scale is derived from the window on both sides (the smallest shift that
// fits it in 16 bits, as if both SYNs carried it; 64 KiB gives shift 1).
//
// Receiving (tcp_rcv_established, __tcp_ack_snd_check). The receiver's application reads at once,
// so the advertised window is always params.window. In-order data is verified byte for byte
// (a wrong byte is counted as a payload error and still delivered, as a stack that trusted the
// checksum would) and acknowledged per Linux's default rule: at once when more than one full-sized
// segment (rcv_mss, learnt from the largest segment or gso_size seen, as tcp_measure_rcv_mss,
// starting at TCP_MSS_DEFAULT 536) is unacknowledged, so every second full segment -- and every
// GSO/GRO super-packet of two or more segments, since it is more than one full segment by itself;
// otherwise after delayed_ack_ns (TCP_DELACK_MIN, 40 ms) unless data leaving first carries the ACK
// (piggybacking, which is what TCP_RR does). A segment that is not the next expected is counted
// out_of_order, dropped, and answered with an immediate duplicate ACK.
//
// Deliberately not modelled: connection setup and teardown (no SYN, FIN or RST: the connection
// starts established with ISNs derived from the seed), retransmission and RTO, congestion control
// (the sender is limited by the receiver's window only), fast retransmit on duplicate ACKs, an
// out-of-order queue, SACK, quick-ack mode at connection start, window updates from a slow reader,
// urgent data. So a segment lost on the path stalls the connection for good: the receiver counts
// the gap as out_of_order, the sender's bytes stay in flight. The issue asks for no loss model;
// loss is for UDP_STREAM to show.
#pragma once

#include <cstdint>
#include <optional>

#include "frontends/net_packet.h"
#include "frontends/netperf_flow.h"
#include "sim/core/stats.h"

namespace xensim {

struct TcpConnectionParams {
    PacketAddress addr;  // this end's view: src = this end
    std::uint32_t flow_id = 1;
    std::uint64_t seed = 1;
    bool client = true;                         // which end: the two directions differ in ISN and content
    unsigned mss = 0;                           // 0: mtu - 52
    std::uint32_t window = 65536;               // bytes; both ends' receive window
    std::uint64_t delayed_ack_ns = 40'000'000;  // TCP_DELACK_MIN (HZ / 25)
};

class TcpConnection {
  public:
    static constexpr unsigned kMssDefault = 536;  // TCP_MSS_DEFAULT: rcv_mss before any segment
    static constexpr std::size_t kHeaderBytes = kIpv4HeaderLen + kTcpHeaderLen + kTcpTimestampsOptionLen;

    // Throws std::invalid_argument naming the parameter (window below the MSS, MSS that does not
    // fit the MTU, window beyond 65535 << 14).
    TcpConnection(const TcpConnectionParams& params, const FlowOffloads& offloads, StatsGroup& group);

    // The application queues n more bytes to send.
    void write(std::uint64_t n) { app_end_ += n; }
    std::uint64_t bytes_written() const { return app_end_; }
    std::uint64_t bytes_sent() const { return snd_nxt_; }  // taken by the device
    std::uint64_t bytes_acked() const { return snd_una_; }
    std::uint64_t bytes_in_flight() const { return snd_nxt_ - snd_una_; }
    std::uint64_t bytes_received() const { return rcv_nxt_; }  // in order, delivered to the application
    std::uint32_t peer_window() const { return peer_wnd_; }
    unsigned mss() const { return mss_; }
    unsigned window_shift() const { return wshift_; }

    // The NetperfEndpoint protocol (netperf_flow.h).
    EthernetFrame* tx_frame(std::uint64_t now_ns);
    void tx_taken(std::uint64_t now_ns);
    std::uint64_t next_tx_ns() const;
    bool receive(std::uint64_t now_ns, const EthernetFrame& f, const ParsedPacket& p);
    bool has_pending() const { return pending_.has_value(); }

    Counter frames_sent, segments_sent, gso_frames_sent, data_bytes_sent;
    Counter pure_acks_sent, delayed_acks_sent;  // of pure ACKs, those the delayed-ACK timer sent
    Counter frames_received, data_bytes_received, acks_received;  // acks: ACKs that advanced snd_una
    Counter payload_errors, csum_errors, malformed, out_of_order, invalid_acks, ignored;
    Counter max_in_flight;  // high-water mark of bytes in flight, bytes

  private:
    std::uint64_t data_len_now() const;  // bytes of the next data segment, 0 when none may leave
    bool ack_due(std::uint64_t now_ns) const;
    std::uint32_t snd_seq(std::uint64_t off) const { return static_cast<std::uint32_t>(snd_isn_ + 1 + off); }
    std::uint32_t rcv_seq(std::uint64_t off) const { return static_cast<std::uint32_t>(rcv_isn_ + 1 + off); }

    TcpConnectionParams p_;
    FlowOffloads off_;
    unsigned mss_, wshift_;
    std::uint64_t max_gso_payload_;
    std::uint32_t snd_isn_, rcv_isn_;
    std::uint64_t tx_key_, rx_key_;  // content pattern keys of the two directions
    std::uint16_t ip_id_;

    // Send side (offsets from the first data byte).
    std::uint64_t app_end_ = 0, snd_nxt_ = 0, snd_una_ = 0, snd_sml_ = 0;
    std::uint32_t peer_wnd_;
    // Receive side.
    std::uint64_t rcv_nxt_ = 0, ack_sent_ = 0;
    unsigned rcv_mss_ = kMssDefault;
    bool ack_now_ = false;
    std::uint64_t delack_at_ = kNoTxTime;
    std::uint32_t ts_recent_ = 0;

    struct Pending {
        std::uint64_t data_end = 0;  // snd_nxt after it
        std::uint64_t data_len = 0;
        std::uint64_t acks = 0;  // rcv_nxt it acknowledges
        bool delayed = false;    // a pure ACK sent by the delayed-ACK timer
    };
    std::optional<EthernetFrame> pending_;
    Pending pending_info_;
};

}  // namespace xensim
