// What a network workload needs of a guest's network driver: the PV driver (netfront, in its
// linux / gplpv / winpv profiles) and the emulated-NIC drivers (E1000, RTL8139) offer it, so one
// netperf-style workload can compare them on the same bridge and wire.
//
// The shape is Linux's net_device seen from the stack: ndo_start_xmit with xmit_more (transmit,
// then kick once per batch), netif_stop_queue / netif_wake_queue (transmit refusing, on_tx_wake),
// and NAPI delivering received frames from the queue's poll (on_receive, in softirq context on the
// queue's vCPU). Offloads are what the driver negotiated with its backend or device.
#pragma once

#include <functional>

#include "frontends/guest_services.h"
#include "sim/core/ethernet.h"

namespace xensim {

class XenbusClient;

// What the stack may hand the driver (Linux netdev features after negotiation).
struct NetDeviceFeatures {
    bool sg = false;       // scatter-gather: a frame may span several pages/slots (NETIF_F_SG)
    bool tx_csum = false;  // the stack may leave the L4 checksum blank (NETIF_F_IP_CSUM)
    bool tx_csum_ipv6 = false;
    bool gso_tcpv4 = false;  // the stack may hand over TCPv4 super-packets (NETIF_F_TSO)
    bool gso_tcpv6 = false;
    unsigned mtu = 1500;
};

class NetDevice {
  public:
    // A received frame, in the receiving queue's poll context on that queue's vCPU.
    using Receive = std::function<void(GuestServices&, unsigned queue, EthernetFrame&& frame)>;
    // Transmit room is back on a queue that refused a frame (netif_wake_subqueue).
    using Wake = std::function<void(GuestServices&, unsigned queue)>;
    virtual ~NetDevice() = default;

    // Bring the device up in thread context on vCPU 0 (PV: the XenBus handshake; emulated: probe).
    virtual bool connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) = 0;
    virtual bool connected() const = 0;
    virtual MacAddress mac() const = 0;
    virtual NetDeviceFeatures features() const = 0;
    virtual unsigned queues() const = 0;
    virtual unsigned queue_for_vcpu(unsigned vcpu) const = 0;
    // Queue a frame for transmission on queue q (ndo_start_xmit with xmit_more set); false when the
    // queue has no room now (the frame is not taken; on_tx_wake says when to retry). A frame must
    // fit the negotiated features: no GSO or csum_blank that was not negotiated, at most mtu + 14
    // bytes unless it is a GSO super-packet.
    virtual bool transmit(GuestServices& s, unsigned q, EthernetFrame&& frame) = 0;
    // End of a batch (xmit_more clear): publish what was queued and notify if needed.
    virtual void kick(GuestServices& s, unsigned q) = 0;

    Receive on_receive;
    Wake on_tx_wake;
};

}  // namespace xensim
