// The host at the far end of dom0's wire: a MAC, an IPv4 address and netperf endpoints.
//
// The problem. Traffic between a guest and "the world" needs a world: something that sinks what a
// guest streams out, answers its requests and pings, and streams towards it, with the timing of a
// real link but without simulating a second machine. RemoteHost is that peer. It sits on the
// WireLink's to_peer sink (models/net/wire_link.h), parses every frame it receives
// (frontends/net_packet.h parse_packet) and offers it to its netperf endpoints
// (frontends/netperf_flow.h NetperfEndpoint: UDP_STREAM / TCP_STREAM receivers as a sink, UDP_RR /
// TCP_RR servers and the ICMP echo responder as an echo, UDP_STREAM / TCP_STREAM senders as a
// generator) in the order they were added, until one takes it; what its endpoints produce it sends
// into the wire's to_host direction.
//
// What is modelled:
//  * Its NIC's receive filter: a frame for another unicast MAC is not taken (counted
//    `rx_not_for_us`: dom0's bridge floods unknown unicast out of eth0 too, and a NIC that is not
//    promiscuous drops what is not for it), broadcast and multicast frames are. Every taken frame is parsed
//    and offered, whatever parse_packet's status: the endpoints count checksum errors and malformed frames of
//    their flows themselves. A frame no endpoint takes is counted `rx_unclaimed`, labelled by the parse
//    status.
//  * Transmission paced by the line: one frame is handed to the wire when the line is free (the
//    previous frame's last bit sent), as a NIC with a one-frame queue driven by a sender that always
//    has the next frame ready; an endpoint's frame is taken (tx_taken) when it goes on the wire.
//    Endpoints are served round-robin. An endpoint whose next frame is due later (next_tx_ns) is
//    woken at that time by a SystemC event; one that waits for a receive is woken by it. A frame
//    the wire refuses (malformed, oversize) is dropped and the next try is 1 ns later.
//
// Where it deliberately differs: the remote host is not simulated beyond its NIC. Its CPU, kernel
// and interrupt moderation cost nothing and take no time: a frame is answered the instant it
// arrives (its endpoints see arrival time as now), so round trips measure the Xen side alone. No
// ARP: endpoints address guests by MAC and IP directly (docs/network.md: addressing).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "frontends/netperf_flow.h"
#include "models/net/wire_link.h"
#include "sim/core/stats.h"

namespace xensim {

struct RemoteHostParams {
    MacAddress mac{0x00, 0x16, 0x3e, 0xff, 0xff, 0xfe};
    Ipv4Address ip = ipv4(10, 0, 0, 254);
};

class RemoteHost : public sc_core::sc_module {
  public:
    // Counters go in a child of `parent` named after the module; sets the wire's to_peer sink.
    RemoteHost(sc_core::sc_module_name name, const RemoteHostParams& params, WireLink& wire,
               StatsGroup& parent);

    // Endpoints, offered received frames in this order. The owning form keeps it alive; the other
    // must outlive the host. Adding one wakes the transmitter.
    void add_endpoint(std::unique_ptr<NetperfEndpoint> endpoint);
    void add_endpoint(NetperfEndpoint& endpoint);

    const MacAddress& mac() const { return p_.mac; }
    Ipv4Address ip() const { return p_.ip; }
    // A PacketAddress from this host to (mac, ip) with the given ports, for building endpoints.
    PacketAddress address_to(const MacAddress& mac, Ipv4Address ip, std::uint16_t src_port,
                             std::uint16_t dst_port) const;
    // The stats group endpoints should be created under.
    StatsGroup& stats() { return group_; }
    // A child group of stats() owned by the host, for one workload's endpoints (they are owned by
    // the host too, so the group outlives them).
    StatsGroup& endpoint_group(const std::string& name);

    // The wire's to_peer sink (public for tests): one frame arrives now.
    void receive(EthernetFrame&& frame);

  private:
    void pump();  // sends what is due, then arms the wake-up
    std::uint64_t now_ps() const { return sc_core::sc_time_stamp().value(); }

    RemoteHostParams p_;
    WireLink& wire_;
    StatsGroup group_;
    Counter rx_frames, rx_bytes, rx_not_for_us, tx_frames, tx_bytes, tx_refused;
    CounterFamily rx_unclaimed;
    std::vector<std::unique_ptr<StatsGroup>> endpoint_groups_;  // destroyed after owned_
    std::vector<std::unique_ptr<NetperfEndpoint>> owned_;
    std::vector<NetperfEndpoint*> endpoints_;
    std::size_t next_rr_ = 0;
    std::uint64_t line_free_ps_ = 0;
    sc_core::sc_event wake_ev_;
};

}  // namespace xensim
