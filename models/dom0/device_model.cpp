#include "models/dom0/device_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace xensim {

DeviceModel::Stats::Stats(StatsGroup& g)
    : ioreqs(g, "ioreqs", "ioreqs", "ioreqs served, by kind"),
      buffered_drains(g, "buffered_drains", "drains",
                      "buffered-page drains that found writes, by what woke the device model"),
      pci_config_by_sbdf(g, "pci_config_by_sbdf", "ioreqs",
                         "IOREQ_TYPE_PCI_CONFIG ioreqs, by function (SBDF)"),
      unclaimed(g, "unclaimed", "ioreqs", "accesses no emulated device claims (all ones / dropped)"),
      not_ready(g, "not_ready", "events", "events that found no ioreq in STATE_IOREQ_READY"),
      bind_failures(g, "bind_failures", "channels", "ioreq channels the device model could not bind"),
      irq_changes(g, "irq_changes", "calls", "XEN_DMOP_set_isa_irq_level calls (an IDE INTRQ line changed)"),
      timer_events(g, "timer_events", "events", "device-model timer expiries (IDE completions, buffered io)"),
      busy_ns(g, "busy_ns", "ns",
              "simulated time dom0 spent in the device model's handlers (ioreqs, drains, timer), hypercalls "
              "included"),
      rep_outside_ram(g, "rep_outside_ram", "elements",
                      "rep-string elements whose guest address was not RAM (dropped; Xen checks first)") {}

namespace {
// Adds the simulated time from construction to destruction to a counter (every exit path).
class BusyTimer {
  public:
    BusyTimer(Counter& c, BackendServices& s) : c_(c), s_(s), t0_(s.now_ns()) {}
    ~BusyTimer() { c_.inc(s_.now_ns() - t0_); }
    BusyTimer(const BusyTimer&) = delete;
    BusyTimer& operator=(const BusyTimer&) = delete;

  private:
    Counter& c_;
    BackendServices& s_;
    std::uint64_t t0_;
};
}  // namespace

DeviceModel::DeviceModel(domid_t guest, StatsGroup& parent)
    : guest_(guest), group_("device_model_" + std::to_string(guest), &parent), stats_(group_) {}

void DeviceModel::attach_timer(unsigned timer_pirq, std::function<void(std::uint64_t)> timer) {
    timer_pirq_ = timer_pirq;
    timer_ = std::move(timer);
}

void DeviceModel::attach_ide(Ide ide) {
    has_ide_ = true;
    ide_ = std::move(ide);
}

void DeviceModel::set_timer(int what, std::uint64_t at_ps) {
    const auto later =
        std::upper_bound(due_.begin(), due_.end(), at_ps,
                         [](std::uint64_t t, const std::pair<std::uint64_t, int>& e) { return t < e.first; });
    due_.emplace(later, at_ps, what);
    arm_timer();
}

void DeviceModel::arm_timer() {
    // One platform timer, set for the earliest deadline; asked again only for an earlier one.
    if (due_.empty() || !timer_) return;
    const std::uint64_t first = due_.begin()->first;
    if (timer_armed_ && armed_at_ps_ <= first) return;
    timer_armed_ = true;
    armed_at_ps_ = first;
    timer_(first);
}

void DeviceModel::schedule_completion(unsigned channel, std::uint64_t at_ps) {
    set_timer(static_cast<int>(channel), at_ps);
}

void DeviceModel::on_timer(BackendServices& s) {
    const BusyTimer busy(stats_.busy_ns, s);
    stats_.timer_events.inc();
    const std::uint64_t now_ps = s.now_ns() * 1000;
    if (timer_armed_ && armed_at_ps_ <= now_ps + 999) timer_armed_ = false;  // this expiry
    bool buffered_due = false;
    while (!due_.empty() && due_.begin()->first <= now_ps + 999) {  // the timer fires at ns resolution
        const auto [at_ps, what] = *due_.begin();
        due_.erase(due_.begin());
        if (what == kBufferedIoTimer) {
            buffered_due = true;
            continue;
        }
        // The timer fires on the nanosecond; the controller completes at its own picosecond time.
        ide_.complete(static_cast<unsigned>(what), std::max(now_ps, at_ps));
    }
    if (buffered_due) {
        // handle_buffered_io: drain; re-arm while writes keep coming, else re-enable the channel.
        s.compute(s.costs().device_model_ioreq);
        if (drain_buffered(s, "timer"))
            set_timer(kBufferedIoTimer, now_ps + kBufferIoMaxDelayPs);
        else if (kernel_)
            kernel_->unmask(s, buf_local_port_);
    }
    arm_timer();
    forward_irqs(s);
}

void DeviceModel::on_bufioreq(BackendServices& s) {
    const BusyTimer busy(stats_.busy_ns, s);
    // cpu_get_ioreq on the buffered port: the port stays masked (the evtchn device masked it on
    // delivery) and the buffered-io timer is (re)armed; cpu_handle_ioreq then drains the page.
    if (kernel_) kernel_->mask(s, buf_local_port_);
    s.compute(s.costs().device_model_ioreq);
    const std::uint64_t now_ps = s.now_ns() * 1000;
    for (auto it = due_.begin(); it != due_.end(); ++it)
        if (it->second == kBufferedIoTimer) {
            due_.erase(it);
            break;
        }
    set_timer(kBufferedIoTimer, now_ps + kBufferIoMaxDelayPs);
    drain_buffered(s, "channel");
    forward_irqs(s);
}

bool DeviceModel::drain_buffered(BackendServices& s, const char* trigger) {
    auto* pg = reinterpret_cast<buffered_iopage_t*>(buf_gfn_ ? s.page(buf_gfn_) : nullptr);
    if (!pg) return false;
    bool any = false;
    for (;;) {
        const std::uint32_t rd = pg->read_pointer;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        const std::uint32_t wr = pg->write_pointer;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (rd == wr) break;
        const buf_ioreq_t b = pg->buf_ioreq[rd % IOREQ_BUFFER_SLOT_NUM];  // read once
        ioreq_t req{};
        req.type = b.type;
        req.dir = IOREQ_WRITE;
        req.count = 1;
        req.size = 1u << b.size;
        req.addr = b.addr;
        req.data = b.data;
        const unsigned slots = req.size == 8 ? 2 : 1;
        if (slots == 2) {
            if (rd + 1 == wr) break;  // the second half is not there yet (QEMU: hw_error)
            req.data |= std::uint64_t{pg->buf_ioreq[(rd + 1) % IOREQ_BUFFER_SLOT_NUM].data} << 32;
        }
        s.compute(s.costs().device_model_buffered_ioreq);
        handle(req, s.now_ns() * 1000, true);
        __atomic_fetch_add(&pg->read_pointer, slots, __ATOMIC_SEQ_CST);
        any = true;
    }
    if (any) stats_.buffered_drains.inc(trigger);
    return any;
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

void DeviceModel::start(BackendKernel& kernel, BackendServices& s, const Pages& pages) {
    kernel_ = &kernel;
    if (timer_) {
        evtchn_bind_pirq_t bp{};
        bp.pirq = timer_pirq_;
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_pirq,
                        reinterpret_cast<unsigned long>(&bp), 0, 0, 0) == 0) {
            kernel.set_port_handler(bp.port, [this](BackendServices& vs) { on_timer(vs); });
            kernel.unmask(s, bp.port);
        } else {
            stats_.bind_failures.inc();
        }
    }
    page_gfn_ = pages.ioreq_gfn;
    buf_gfn_ = pages.bufioreq_gfn;
    local_ports_.assign(pages.guest_ports.size(), 0);
    for (unsigned v = 0; v < pages.guest_ports.size(); ++v) {
        evtchn_bind_interdomain_t b{};
        b.remote_dom = guest_;
        b.remote_port = pages.guest_ports[v];
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                        reinterpret_cast<unsigned long>(&b), 0, 0, 0)) {
            stats_.bind_failures.inc();
            continue;
        }
        local_ports_[v] = b.local_port;
        kernel.set_port_handler(b.local_port, [this, v](BackendServices& vs) { serve(vs, v); });
        kernel.unmask(s, b.local_port);
    }
    if (buf_gfn_) {
        evtchn_bind_interdomain_t b{};
        b.remote_dom = guest_;
        b.remote_port = pages.bufioreq_port;
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                        reinterpret_cast<unsigned long>(&b), 0, 0, 0)) {
            stats_.bind_failures.inc();
        } else {
            buf_local_port_ = b.local_port;
            kernel.set_port_handler(b.local_port, [this](BackendServices& vs) { on_bufioreq(vs); });
            kernel.unmask(s, b.local_port);
        }
    }
}

IoDevice* DeviceModel::device_for(std::uint16_t port) const {
    for (IoDevice* d : devices_)
        if (d->claims(port)) return d;
    return nullptr;
}

MmioDevice* DeviceModel::mmio_device_for(std::uint64_t gpa) const {
    for (MmioDevice* d : mmio_devices_)
        if (d->claims_mmio(gpa)) return d;
    return nullptr;
}

std::uint64_t DeviceModel::handle_pio(const ioreq_t& req, std::uint64_t now_ps, bool buffered) {
    const bool read = req.dir == IOREQ_READ;
    const unsigned size = req.size;
    const auto port = static_cast<std::uint16_t>(req.addr);
    if (req.data_is_ptr && req.count >= 1 && has_ide_ && ide_.claims(port)) {
        // A rep string access (cpu_ioreq_pio with data_is_ptr): count accesses to the port, the
        // data moved to / from the guest's buffer.
        if (read)
            ++stats_.ioreqs.at(stats_.pio_rep_read, "pio_rep_read");
        else
            ++stats_.ioreqs.at(stats_.pio_rep_write, "pio_rep_write");
        for (std::uint32_t i = 0; i < req.count; ++i) {
            const std::uint64_t gpa = req.data + std::uint64_t{i} * size;
            std::uint32_t v = 0;
            if (read) {
                v = ide_.read(port, size, now_ps);
                if (!ram_ || !ram_(gpa, &v, size, true)) stats_.rep_outside_ram.inc();
            } else if (ram_ && ram_(gpa, &v, size, false)) {
                ide_.write(port, size, v, now_ps);
            } else {
                stats_.rep_outside_ram.inc();
            }
        }
        return req.data;
    }
    if (req.count != 1 || req.data_is_ptr) {
        stats_.ioreqs.inc("unsupported");
        return read ? ~std::uint64_t(0) : req.data;
    }
    if (read)
        ++stats_.ioreqs.at(stats_.pio_read, "pio_read");
    else if (buffered)
        ++stats_.ioreqs.at(stats_.buffered_pio_write, "buffered_pio_write");
    else
        ++stats_.ioreqs.at(stats_.pio_write, "pio_write");
    IoDevice* d = device_for(port);
    if (!d && has_ide_ && ide_.claims(port)) {
        if (read) return ide_.read(port, size, now_ps);
        ide_.write(port, size, static_cast<std::uint32_t>(req.data), now_ps);
    } else if (!d) {
        stats_.unclaimed.inc();
        if (read) return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    } else if (read) {
        return d->read(port, size, now_ps);
    } else {
        d->write(port, size, static_cast<std::uint32_t>(req.data), now_ps);
    }
    return req.data;
}

std::uint64_t DeviceModel::handle_mmio(const ioreq_t& req, std::uint64_t now_ps, bool buffered) {
    // cpu_ioreq_move for a single direct access; rep MMIO (data_is_ptr) is not modelled.
    const bool read = req.dir == IOREQ_READ;
    if (req.count != 1 || req.data_is_ptr) {
        stats_.ioreqs.inc("unsupported");
        return read ? ~std::uint64_t(0) : req.data;
    }
    if (read)
        ++stats_.ioreqs.at(stats_.mmio_read, "mmio_read");
    else if (buffered)
        ++stats_.ioreqs.at(stats_.buffered_mmio_write, "buffered_mmio_write");
    else
        ++stats_.ioreqs.at(stats_.mmio_write, "mmio_write");
    MmioDevice* d = mmio_device_for(req.addr);
    if (!d) {
        stats_.unclaimed.inc();
        return read ? (req.size >= 8 ? ~std::uint64_t(0) : (std::uint64_t(1) << (8 * req.size)) - 1)
                    : req.data;
    }
    if (read) return d->mmio_read(req.addr, req.size, now_ps);
    d->mmio_write(req.addr, req.size, req.data, now_ps);
    return req.data;
}

std::uint64_t DeviceModel::handle_pci_config(const ioreq_t& req) {
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
    if (read)
        ++stats_.ioreqs.at(stats_.pci_config_read, "pci_config_read");
    else
        ++stats_.ioreqs.at(stats_.pci_config_write, "pci_config_write");
    char label[16];
    std::snprintf(label, sizeof label, "%04x:%02x:%02x.%u", sbdf >> 16, (sbdf >> 8) & 0xff,
                  (sbdf >> 3) & 0x1f, sbdf & 7u);
    stats_.pci_config_by_sbdf.inc(label);
    if (read) return pci_.read(sbdf, reg, size);
    pci_.write(sbdf, reg, size, static_cast<std::uint32_t>(req.data));
    return req.data;
}

std::uint64_t DeviceModel::handle(const ioreq_t& req, std::uint64_t now_ps, bool buffered) {
    const unsigned size = req.size;
    const bool sized = req.type == IOREQ_TYPE_COPY ? (size == 1 || size == 2 || size == 4 || size == 8)
                                                   : (size == 1 || size == 2 || size == 4);
    if (sized && req.type == IOREQ_TYPE_PIO) return handle_pio(req, now_ps, buffered);
    if (sized && req.type == IOREQ_TYPE_COPY) return handle_mmio(req, now_ps, buffered);
    if (req.type == IOREQ_TYPE_PCI_CONFIG) return handle_pci_config(req);
    stats_.ioreqs.inc("unsupported");
    return req.dir == IOREQ_READ ? ~std::uint64_t(0) : req.data;
}

void DeviceModel::serve(BackendServices& s, unsigned vcpu) {
    const BusyTimer busy(stats_.busy_ns, s);
    auto* page = reinterpret_cast<shared_iopage_t*>(s.page(page_gfn_));
    if (!page) return;
    drain_buffered(s, "ioreq");  // cpu_handle_ioreq drains the buffered page first
    ioreq_t* p = &page->vcpu_ioreq[vcpu];
    if (p->state != STATE_IOREQ_READY) {
        stats_.not_ready.inc();
        return;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    const ioreq_t req = *p;  // read once
    p->state = STATE_IOREQ_INPROCESS;
    s.compute(s.costs().device_model_ioreq);
    if (req.data_is_ptr && req.count > 1)  // cpu_ioreq_pio / cpu_ioreq_move loop over the elements
        s.compute(std::uint64_t{req.count} * s.costs().device_model_rep_element);
    const std::uint64_t data = handle(req, s.now_ns() * 1000, false);
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
