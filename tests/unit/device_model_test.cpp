// The device model's ioreq handling against a fake dom0 (kernel and services): the buffered page's
// drain rules as QEMU's hw/xen/xen-hvm-common.c has them (cpu_get_ioreq, cpu_handle_ioreq,
// handle_buffered_iopage, handle_buffered_io), synchronous MMIO and port ioreqs, and the slot
// format of xen/hvm/ioreq.h. Buffered slots are written here the way Xen's ioreq_send_buffered
// writes them.
#include "models/dom0/device_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "models/devices/std_vga.h"
#include "tests/unit/timers_kept_kernel.h"

namespace xensim {
namespace {

class FakeServices : public BackendServices {
  public:
    FakeServices() : costs_(CostModel::defaults()) {}
    const CostModel& costs() const override { return costs_; }
    void compute(Cycles c) override { cycles += c; }
    std::uint64_t now_ns() const override { return now; }
    long hypercall(unsigned op, unsigned long a1, unsigned long a2, unsigned long, unsigned long,
                   unsigned long) override {
        if (op != __HYPERVISOR_event_channel_op) return -XEN_ENOSYS;
        if (a1 == EVTCHNOP_bind_pirq) {
            reinterpret_cast<evtchn_bind_pirq_t*>(a2)->port = next_port++;
        } else if (a1 == EVTCHNOP_bind_interdomain) {
            reinterpret_cast<evtchn_bind_interdomain_t*>(a2)->local_port = next_port++;
        } else if (a1 == EVTCHNOP_send) {
            sends.push_back(reinterpret_cast<evtchn_send_t*>(a2)->port);
        }
        return 0;
    }
    std::optional<std::uint64_t> alloc_page() override { return std::nullopt; }
    void free_page(std::uint64_t) override {}
    std::uint8_t* page(std::uint64_t gfn) override {
        auto& p = pages[gfn];
        if (!p) p = std::make_unique<std::array<std::uint8_t, 4096>>();
        return p->data();
    }
    std::optional<std::uint64_t> take_unpopulated_frame() override { return std::nullopt; }

    CostModel costs_;
    Cycles cycles = 0;
    std::uint64_t now = 1000;
    evtchn_port_t next_port = 10;
    std::vector<evtchn_port_t> sends;
    std::map<std::uint64_t, std::unique_ptr<std::array<std::uint8_t, 4096>>> pages;
};

// Its timers are kept, never fired: nothing it drives arms one (no vif with a `rate`).
class FakeKernel : public TimersKeptKernel {
  public:
    std::optional<std::string> xs_read(const std::string&) override { return std::nullopt; }
    bool xs_write(const std::string&, const std::string&) override { return false; }
    std::optional<std::vector<std::string>> xs_directory(const std::string&) override { return std::nullopt; }
    bool xs_watch(const std::string&, const std::string&,
                  std::function<void(BackendServices&, const std::string&)>) override {
        return false;
    }
    bool xs_unwatch(const std::string&, const std::string&) override { return false; }
    void set_port_handler(evtchn_port_t port, std::function<void(BackendServices&)> h) override {
        handlers[port] = std::move(h);
    }
    void clear_port_handler(evtchn_port_t port) override { handlers.erase(port); }
    void unmask(BackendServices&, evtchn_port_t port) override { masked[port] = false; }
    void mask(BackendServices&, evtchn_port_t port) override { masked[port] = true; }
    void defer(std::function<void(BackendServices&)>) override {}

    std::map<evtchn_port_t, std::function<void(BackendServices&)>> handlers;
    std::map<evtchn_port_t, bool> masked;
};

// Ports the fake hands out, in start()'s order: the timer PIRQ, the vCPU's ioreq channel, the
// buffered channel.
constexpr evtchn_port_t kTimerPort = 10, kIoreqPort = 11, kBufPort = 12;
constexpr std::uint64_t kIoreqGfn = 1, kBufGfn = 2;
constexpr std::uint64_t kText = StdVga::kTextBase;

struct Fixture {
    Fixture() : vga(group), dm(1, group) {
        dm.add_device(&vga);
        dm.add_mmio_device(&vga);
        dm.attach_timer(3, [this](std::uint64_t at) { timer_at.push_back(at); });
        DeviceModel::Pages p;
        p.ioreq_gfn = kIoreqGfn;
        p.bufioreq_gfn = kBufGfn;
        p.guest_ports = {7};
        p.bufioreq_port = 8;
        dm.start(kernel, s, p);
    }
    buffered_iopage_t& buf() { return *reinterpret_cast<buffered_iopage_t*>(s.page(kBufGfn)); }
    ioreq_t& slot() { return reinterpret_cast<shared_iopage_t*>(s.page(kIoreqGfn))->vcpu_ioreq[0]; }
    // What Xen's ioreq_send_buffered writes for a write of `size` bytes.
    void queue(std::uint8_t type, std::uint32_t addr, unsigned size, std::uint64_t data) {
        buf_ioreq_t b{};
        b.type = type;
        b.dir = IOREQ_WRITE;
        b.size = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
        b.addr = addr;
        b.data = static_cast<std::uint32_t>(data);
        buf().buf_ioreq[buf().write_pointer % IOREQ_BUFFER_SLOT_NUM] = b;
        if (size == 8) {
            b.data = static_cast<std::uint32_t>(data >> 32);
            buf().buf_ioreq[(buf().write_pointer + 1) % IOREQ_BUFFER_SLOT_NUM] = b;
        }
        buf().write_pointer += size == 8 ? 2 : 1;
    }
    void fire(evtchn_port_t port) { kernel.handlers.at(port)(s); }
    std::uint64_t ioreqs(const char* kind) const { return dm.stats().ioreqs.value(kind); }
    std::uint64_t drains(const char* trigger) const { return dm.stats().buffered_drains.value(trigger); }

    StatsGroup group{""};
    FakeServices s;
    FakeKernel kernel;
    std::vector<std::uint64_t> timer_at;
    StdVga vga;
    DeviceModel dm;
};

TEST(DeviceModelBuffered, StartBindsTheTimerTheIoreqChannelAndTheBufferedChannel) {
    Fixture f;
    EXPECT_EQ(f.kernel.handlers.size(), 3u);
    EXPECT_FALSE(f.kernel.masked.at(kTimerPort));
    EXPECT_FALSE(f.kernel.masked.at(kIoreqPort));
    EXPECT_FALSE(f.kernel.masked.at(kBufPort));
}

// cpu_get_ioreq on the buffered port arms the 100 ms timer and leaves the port masked;
// cpu_handle_ioreq then drains every queued write in order.
TEST(DeviceModelBuffered, AChannelEventDrainsTheQueueLeavesThePortMaskedAndArmsTheTimer) {
    Fixture f;
    f.queue(IOREQ_TYPE_COPY, kText, 2, 0x0741);      // 'A'
    f.queue(IOREQ_TYPE_COPY, kText + 2, 2, 0x0742);  // 'B'
    f.fire(kBufPort);
    EXPECT_EQ(f.buf().read_pointer, 2u);
    EXPECT_EQ(f.ioreqs("buffered_mmio_write"), 2u);
    EXPECT_EQ(f.drains("channel"), 1u);
    EXPECT_TRUE(f.kernel.masked.at(kBufPort));
    ASSERT_EQ(f.timer_at.size(), 1u);
    EXPECT_EQ(f.timer_at[0], 1000u * 1000 + DeviceModel::kBufferIoMaxDelayPs);
    EXPECT_EQ(f.vga.text_screen()[0], "AB");
    // One wake-up and two dispatches.
    EXPECT_EQ(f.s.cycles, f.s.costs().device_model_ioreq + 2 * f.s.costs().device_model_buffered_ioreq);
    EXPECT_TRUE(f.s.sends.empty());  // nothing to answer
}

// handle_buffered_io: while the timer finds writes it is re-armed; the first expiry that finds none
// re-enables the buffered port and does not re-arm.
TEST(DeviceModelBuffered, TheTimerDrainsWhileWritesKeepComingThenUnmasksThePort) {
    Fixture f;
    f.queue(IOREQ_TYPE_COPY, kText, 2, 0x0741);
    f.fire(kBufPort);
    f.queue(IOREQ_TYPE_COPY, kText + 2, 2, 0x0743);  // arrives while the port is masked
    f.s.now = 100'001'000;                           // the timer's time (ns)
    f.fire(kTimerPort);
    EXPECT_EQ(f.drains("timer"), 1u);
    EXPECT_EQ(f.vga.text_screen()[0], "AC");
    EXPECT_TRUE(f.kernel.masked.at(kBufPort));
    ASSERT_EQ(f.timer_at.size(), 2u);
    EXPECT_EQ(f.timer_at[1], 100'001'000ull * 1000 + DeviceModel::kBufferIoMaxDelayPs);
    f.s.now = 200'001'000;
    f.fire(kTimerPort);
    EXPECT_EQ(f.drains("timer"), 1u);  // found nothing
    EXPECT_FALSE(f.kernel.masked.at(kBufPort));
    EXPECT_EQ(f.timer_at.size(), 2u);  // not re-armed
}

// cpu_handle_ioreq drains the buffered page before it serves the vCPU's ioreq, so a read after
// buffered writes sees them.
TEST(DeviceModelBuffered, ASynchronousIoreqDrainsTheQueueFirstSoAReadSeesEarlierWrites) {
    Fixture f;
    f.queue(IOREQ_TYPE_COPY, kText + 4, 2, 0x075a);  // 'Z' at column 2
    ioreq_t& p = f.slot();
    p.type = IOREQ_TYPE_COPY;
    p.dir = IOREQ_READ;
    p.addr = kText + 4;
    p.size = 2;
    p.count = 1;
    p.state = STATE_IOREQ_READY;
    f.fire(kIoreqPort);
    EXPECT_EQ(p.state, STATE_IORESP_READY);
    EXPECT_EQ(p.data, 0x075au);
    EXPECT_EQ(f.drains("ioreq"), 1u);
    EXPECT_EQ(f.ioreqs("mmio_read"), 1u);
    ASSERT_EQ(f.s.sends.size(), 1u);
    EXPECT_EQ(f.s.sends[0], kIoreqPort);
}

// An 8-byte write takes two slots, the high half in the second (xen/hvm/ioreq.h: "If 8, use two
// buf_ioreqs"); the pointer advances by two.
TEST(DeviceModelBuffered, AnEightByteWriteIsTwoSlotsReassembled) {
    Fixture f;
    f.queue(IOREQ_TYPE_COPY, kText, 8, 0x0744'0743'0742'0741ull);  // "ABCD"
    f.fire(kBufPort);
    EXPECT_EQ(f.buf().read_pointer, 2u);
    EXPECT_EQ(f.ioreqs("buffered_mmio_write"), 1u);
    EXPECT_EQ(f.vga.text_screen()[0], "ABCD");
}

// A port write can be buffered too (Xen only buffers MMIO today, but the slot carries the type).
TEST(DeviceModelBuffered, ABufferedPortWriteReachesThePortDevice) {
    Fixture f;
    f.queue(IOREQ_TYPE_PIO, 0x3d4, 2, 0x120e);  // CRTC 0x0E (cursor high) = 0x12
    f.fire(kBufPort);
    EXPECT_EQ(f.ioreqs("buffered_pio_write"), 1u);
    EXPECT_EQ(f.vga.cursor(), 0x1200u);
}

// The device model takes a vCPU's ioreq only in STATE_IOREQ_READY.
TEST(DeviceModelBuffered, AnEventWithoutAReadyIoreqIsCountedAndNotAnswered) {
    Fixture f;
    f.fire(kIoreqPort);
    EXPECT_EQ(f.dm.stats().not_ready.value(), 1u);
    EXPECT_TRUE(f.s.sends.empty());
}

// A rep string's data moves through the guest's RAM by guest-physical address, one element at a
// time as QEMU's cpu_ioreq_pio loop does; elements whose address is not RAM are counted and
// dropped (Xen checks the buffer before sending, so this guards a misbehaving producer), and the
// device still sees every port access of a read.
TEST(DeviceModelRep, RepStringsMoveDataThroughGuestRamByAddress) {
    Fixture f;
    std::vector<std::uint8_t> ram(4096, 0);
    constexpr std::uint64_t kRamBase = 0x10000;
    f.dm.attach_guest_ram([&](std::uint64_t gpa, void* buf, std::size_t len, bool to_guest) {
        if (gpa < kRamBase || gpa + len > kRamBase + ram.size()) return false;
        std::uint8_t* at = ram.data() + (gpa - kRamBase);
        to_guest ? std::memcpy(at, buf, len) : std::memcpy(buf, at, len);
        return true;
    });
    std::uint32_t next = 0x11111111;
    std::vector<std::uint32_t> written;
    DeviceModel::Ide ide;
    ide.read = [&](std::uint16_t, unsigned, std::uint64_t) { return next++; };
    ide.write = [&](std::uint16_t, unsigned, std::uint32_t v, std::uint64_t) { written.push_back(v); };
    ide.claims = [](std::uint16_t port) { return port == 0x1f0; };
    ide.complete = [](unsigned, std::uint64_t) { return false; };
    ide.irq_level = [](unsigned) { return false; };
    f.dm.attach_ide(ide);
    auto rep = [&](std::uint8_t dir, std::uint64_t gpa) {
        ioreq_t& p = f.slot();
        p = ioreq_t{};
        p.type = IOREQ_TYPE_PIO;
        p.dir = dir;
        p.addr = 0x1f0;
        p.size = 4;
        p.count = 4;
        p.data = gpa;
        p.data_is_ptr = 1;
        p.state = STATE_IOREQ_READY;
        f.fire(kIoreqPort);
        EXPECT_EQ(p.state, STATE_IORESP_READY);
    };
    rep(IOREQ_READ, kRamBase + 4096 - 8);  // 2 dwords in RAM, 2 beyond it
    EXPECT_EQ(next, 0x11111115u) << "the port was read 4 times";
    std::uint32_t got[2];
    std::memcpy(got, ram.data() + 4096 - 8, 8);
    EXPECT_EQ(got[0], 0x11111111u);
    EXPECT_EQ(got[1], 0x11111112u);
    EXPECT_EQ(f.dm.stats().rep_outside_ram.value(), 2u);
    const std::uint32_t out[2] = {0xaaaa5555, 0x5555aaaa};
    std::memcpy(ram.data(), out, 8);
    rep(IOREQ_WRITE, kRamBase - 8);  // 2 dwords below RAM (dropped), then 2 from it
    EXPECT_EQ(written, (std::vector<std::uint32_t>{0xaaaa5555, 0x5555aaaa}));
    EXPECT_EQ(f.dm.stats().rep_outside_ram.value(), 4u);
    EXPECT_EQ(f.ioreqs("pio_rep_read"), 1u);
    EXPECT_EQ(f.ioreqs("pio_rep_write"), 1u);
}

}  // namespace
}  // namespace xensim
