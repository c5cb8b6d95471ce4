#include "models/dom0/device_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace xensim {

DeviceModel::Stats::Stats(StatsGroup& g)
    : ioreqs(g, "ioreqs", "ioreqs", "ioreqs served, by kind"),
      pci_config_by_sbdf(g, "pci_config_by_sbdf", "ioreqs",
                         "IOREQ_TYPE_PCI_CONFIG ioreqs, by function (SBDF)"),
      unclaimed(g, "unclaimed", "ioreqs", "accesses no emulated device claims (all ones / dropped)"),
      not_ready(g, "not_ready", "events", "events that found no ioreq in STATE_IOREQ_READY"),
      bind_failures(g, "bind_failures", "channels", "ioreq channels the device model could not bind"),
      irq_changes(g, "irq_changes", "calls", "XEN_DMOP_set_isa_irq_level calls (an IDE INTRQ line changed)"),
      timer_events(g, "timer_events", "events", "device timer expiries (IDE command completions due)") {}

DeviceModel::DeviceModel(domid_t guest, StatsGroup& parent)
    : guest_(guest), group_("device_model_" + std::to_string(guest), &parent), stats_(group_) {}

void DeviceModel::attach_ide(Ide ide, unsigned timer_pirq, std::function<void(std::uint64_t)> timer) {
    has_ide_ = true;
    ide_ = std::move(ide);
    timer_pirq_ = timer_pirq;
    timer_ = std::move(timer);
}

void DeviceModel::schedule_completion(unsigned channel, std::uint64_t at_ps) {
    const bool earliest = due_.empty() || at_ps < due_.begin()->first;
    due_.emplace(at_ps, channel);
    if (earliest && timer_) timer_(at_ps);
}

void DeviceModel::on_timer(BackendServices& s) {
    stats_.timer_events.inc();
    const std::uint64_t now_ps = s.now_ns() * 1000;
    while (!due_.empty() && due_.begin()->first <= now_ps + 999) {  // the timer fires at ns resolution
        const auto [at_ps, ch] = *due_.begin();
        due_.erase(due_.begin());
        // The timer fires on the nanosecond; the controller completes at its own picosecond time.
        ide_.complete(ch, std::max(now_ps, at_ps));
    }
    if (!due_.empty() && timer_) timer_(due_.begin()->first);
    forward_irqs(s);
}

void DeviceModel::forward_irqs(BackendServices& s) {
    if (!has_ide_) return;
    for (unsigned ch = 0; ch < 2; ++ch) {
        const bool level = ide_.irq_level(ch);
        if (level == irq_levels_[ch]) continue;
        irq_levels_[ch] = level;
        stats_.irq_changes.inc();
        xen_dm_op op{};
        op.op = XEN_DMOP_set_isa_irq_level;
        op.u.set_isa_irq_level.isa_irq = static_cast<std::uint8_t>(14 + ch);
        op.u.set_isa_irq_level.level = level ? 1 : 0;
        xen_dm_op_buf_t buf{};
        set_xen_guest_handle(buf.h, &op);
        buf.size = sizeof op;
        s.hypercall(__HYPERVISOR_dm_op, guest_, 1, reinterpret_cast<unsigned long>(&buf), 0, 0);
    }
}

void DeviceModel::start(BackendKernel& kernel, BackendServices& s, std::uint64_t ioreq_page_gfn,
                        const std::vector<evtchn_port_t>& guest_ports) {
    if (has_ide_) {
        evtchn_bind_pirq_t bp{};
        bp.pirq = timer_pirq_;
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_pirq,
                        reinterpret_cast<unsigned long>(&bp), 0, 0, 0) == 0) {
            kernel.set_port_handler(bp.port, [this](BackendServices& vs) { on_timer(vs); });
            kernel.unmask(s, bp.port);
        }
    }
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

std::uint64_t DeviceModel::serve_pci_config(const ioreq_t& req) {
    // cpu_ioreq_config: the function from the SBDF in the upper half of addr, the register from
    // the lower half.
    const bool read = req.dir == IOREQ_READ;
    const unsigned size = req.size;
    if (req.count != 1 || req.data_is_ptr || !(size == 1 || size == 2 || size == 4) || !pci_.read) {
        stats_.ioreqs.inc("unsupported");
        return read ? ~std::uint64_t(0) : req.data;
    }
    const auto sbdf = static_cast<std::uint32_t>(req.addr >> 32);
    const auto reg = static_cast<std::uint32_t>(req.addr);
    stats_.ioreqs.inc(read ? "pci_config_read" : "pci_config_write");
    char label[16];
    std::snprintf(label, sizeof label, "%04x:%02x:%02x.%u", sbdf >> 16, (sbdf >> 8) & 0xff,
                  (sbdf >> 3) & 0x1f, sbdf & 7u);
    stats_.pci_config_by_sbdf.inc(label);
    if (read) return pci_.read(sbdf, reg, size);
    pci_.write(sbdf, reg, size, static_cast<std::uint32_t>(req.data));
    return req.data;
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
    if (req.type == IOREQ_TYPE_PIO && req.data_is_ptr && req.count >= 1 &&
        (size == 1 || size == 2 || size == 4) && has_ide_ &&
        ide_.claims(static_cast<std::uint16_t>(req.addr))) {
        // A rep string access (cpu_ioreq_pio with data_is_ptr): count accesses to the port, the
        // data moved to / from the guest's buffer.
        const auto port = static_cast<std::uint16_t>(req.addr);
        stats_.ioreqs.inc(read ? "pio_rep_read" : "pio_rep_write");
        auto* buf = reinterpret_cast<std::uint8_t*>(req.data);
        for (std::uint32_t i = 0; i < req.count; ++i) {
            std::uint32_t v = 0;
            if (read) {
                v = ide_.read(port, size, now_ps);
                std::memcpy(buf + std::size_t{i} * size, &v, size);
            } else {
                std::memcpy(&v, buf + std::size_t{i} * size, size);
                ide_.write(port, size, v, now_ps);
            }
        }
    } else if (req.type == IOREQ_TYPE_PIO && req.count == 1 && !req.data_is_ptr &&
               (size == 1 || size == 2 || size == 4)) {
        const auto port = static_cast<std::uint16_t>(req.addr);
        stats_.ioreqs.inc(read ? "pio_read" : "pio_write");
        IoDevice* d = device_for(port);
        if (!d && has_ide_ && ide_.claims(port)) {
            if (read)
                data = ide_.read(port, size, now_ps);
            else
                ide_.write(port, size, static_cast<std::uint32_t>(data), now_ps);
        } else if (!d) {
            stats_.unclaimed.inc();
            if (read) data = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
        } else if (read) {
            data = d->read(port, size, now_ps);
        } else {
            d->write(port, size, static_cast<std::uint32_t>(data), now_ps);
        }
    } else if (req.type == IOREQ_TYPE_PCI_CONFIG) {
        data = serve_pci_config(req);
    } else {
        stats_.ioreqs.inc("unsupported");
        if (read) data = ~std::uint64_t(0);
    }
    forward_irqs(s);  // before answering: the interrupt is raised by the access's effect
    p->data = data;
    __atomic_thread_fence(__ATOMIC_RELEASE);  // the data before the state
    p->state = STATE_IORESP_READY;
    evtchn_send_t send{};
    send.port = local_ports_[vcpu];
    s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send), 0, 0,
                0);
}

}  // namespace xensim
