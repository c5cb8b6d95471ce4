#include "models/dom0/device_model.h"

namespace xensim {

DeviceModel::Stats::Stats(StatsGroup& g)
    : ioreqs(g, "ioreqs", "ioreqs", "ioreqs served, by kind"),
      unclaimed(g, "unclaimed", "ioreqs", "accesses no emulated device claims (all ones / dropped)"),
      not_ready(g, "not_ready", "events", "events that found no ioreq in STATE_IOREQ_READY"),
      bind_failures(g, "bind_failures", "channels", "ioreq channels the device model could not bind") {}

DeviceModel::DeviceModel(domid_t guest, StatsGroup& parent)
    : guest_(guest), group_("device_model_" + std::to_string(guest), &parent), stats_(group_) {}

void DeviceModel::start(BackendKernel& kernel, BackendServices& s, std::uint64_t ioreq_page_gfn,
                        const std::vector<evtchn_port_t>& guest_ports) {
    page_gfn_ = ioreq_page_gfn;
    local_ports_.assign(guest_ports.size(), 0);
    for (unsigned v = 0; v < guest_ports.size(); ++v) {
        evtchn_bind_interdomain_t b{};
        b.remote_dom = guest_;
        b.remote_port = guest_ports[v];
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                        reinterpret_cast<unsigned long>(&b), 0, 0, 0)) {
            stats_.bind_failures.inc();
            continue;
        }
        local_ports_[v] = b.local_port;
        kernel.set_port_handler(b.local_port, [this, v](BackendServices& vs) { serve(vs, v); });
        kernel.unmask(s, b.local_port);
    }
}

IoDevice* DeviceModel::device_for(std::uint16_t port) const {
    for (IoDevice* d : devices_)
        if (d->claims(port)) return d;
    return nullptr;
}

void DeviceModel::serve(BackendServices& s, unsigned vcpu) {
    auto* page = reinterpret_cast<shared_iopage_t*>(s.page(page_gfn_));
    if (!page) return;
    ioreq_t* p = &page->vcpu_ioreq[vcpu];
    if (p->state != STATE_IOREQ_READY) {
        stats_.not_ready.inc();
        return;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    ioreq_t req = *p;  // read once
    p->state = STATE_IOREQ_INPROCESS;
    s.compute(s.costs().device_model_ioreq);
    const std::uint64_t now_ps = s.now_ns() * 1000;
    const bool read = req.dir == IOREQ_READ;
    const unsigned size = req.size;
    std::uint64_t data = req.data;
    if (req.type == IOREQ_TYPE_PIO && req.count == 1 && !req.data_is_ptr &&
        (size == 1 || size == 2 || size == 4)) {
        const auto port = static_cast<std::uint16_t>(req.addr);
        stats_.ioreqs.inc(read ? "pio_read" : "pio_write");
        IoDevice* d = device_for(port);
        if (!d) {
            stats_.unclaimed.inc();
            if (read) data = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
        } else if (read) {
            data = d->read(port, size, now_ps);
        } else {
            d->write(port, size, static_cast<std::uint32_t>(data), now_ps);
        }
    } else {
        stats_.ioreqs.inc("unsupported");
        if (read) data = ~std::uint64_t(0);
    }
    p->data = data;
    __atomic_thread_fence(__ATOMIC_RELEASE);  // the data before the state
    p->state = STATE_IORESP_READY;
    evtchn_send_t send{};
    send.port = local_ports_[vcpu];
    s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send), 0, 0,
                0);
}

}  // namespace xensim
