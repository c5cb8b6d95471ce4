// What netback sees of dom0's network: the port of dom0's bridge a vif is enslaved to.
//
// On Xen, netback's vif is a Linux net_device in dom0; the hotplug script (vif-bridge) adds it to
// the bridge named in the backend's `bridge` node. From then on a packet the guest transmits is
// handed to the bridge (netif_receive_skb on the vif), and a packet the bridge forwards to the vif
// is queued for the guest (xenvif_start_xmit). This interface is that seam, so netback
// (models/dom0/netback.h) and dom0's network (bridge, physical NIC, wire) are built and tested
// apart: the platform implements it over the bridge.
//
// Contexts and costs: both directions are called in dom0 kernel context on a dom0 vCPU (netback's
// NAPI poll, the NIC's interrupt, another vif's poll), with that vCPU's BackendServices so the work
// each side does is charged where it runs.
#pragma once

#include <functional>
#include <string>

#include "models/dom0/backend_services.h"
#include "sim/core/ethernet.h"

namespace xensim {

// The guest side of one vif as the network sees it (netback implements it): a frame the bridge
// forwards to the vif (xenvif_start_xmit). Returns false when netback dropped it (vif down, queue
// full); the drop is counted by netback.
class VifPort {
  public:
    virtual ~VifPort() = default;
    virtual bool deliver(BackendServices& s, EthernetFrame&& frame) = 0;
};

class VifNetwork {
  public:
    virtual ~VifNetwork() = default;

    // The vif is up and enslaved to `bridge` (the backend's `bridge` node; vif-bridge's brctl addif),
    // named as Linux names it ("vif<domid>.<devid>"). Returns a handle for the calls below, or -1
    // when there is no such bridge (netback then fails the device).
    virtual int attach(const std::string& bridge, const std::string& name, VifPort& port) = 0;
    // The vif goes down (disconnect): the bridge forgets it and its learned addresses.
    virtual void detach(int handle) = 0;

    // A frame the guest transmitted, entering the bridge from the vif. `release` is the zero-copy
    // callback (Linux's ubuf_info: xenvif_zerocopy_callback): the network calls it exactly once,
    // when it no longer needs the frame's data in the guest's mapped pages (the frame was copied
    // to another vif, sent on by the NIC, or dropped), possibly later and on another vCPU. The
    // frame's bytes are owned by the network from this call on.
    virtual void transmit(BackendServices& s, int handle, EthernetFrame&& frame,
                          std::function<void(BackendServices&)> release) = 0;
};

}  // namespace xensim
