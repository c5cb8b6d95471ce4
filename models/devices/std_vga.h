// A standard VGA adapter in 80x25 colour text mode, as the device model emulates it for an HVM
// guest's console: the window guest console output lands in, and the registers a console driver
// touches.
//
// Why it is here. VGA memory is where Xen uses buffered ioreqs: its standard-VGA intercept
// (xen/arch/x86/hvm/stdvga.c, Xen 4.20) queues every single, direct write to 0xA0000-0xBFFFF on
// the ioreq server's buffered page, without making the vCPU wait, and the device model applies
// them later (QEMU hw/xen/xen-hvm-common.c, handle_buffered_iopage). A console that prints
// character by character is the workload that shows the difference between the two ioreq paths.
//
// What is modelled:
//  * The state the VGA BIOS leaves after setting mode 3 (80x25, 16 colours): memory map select
//    0xB8000-0xBFFFF (Graphics Controller register 6 = 0x0E), odd/even addressing, so the CPU sees
//    character and attribute bytes interleaved (IBM VGA Technical Reference, "Memory Map Select",
//    "Odd/Even Mode"). The 32 KiB text window is stored as the CPU writes it; writes to the rest of
//    the 128 KiB window fall outside the selected map and are dropped, reads there return 0xFF.
//  * Registers at 0x3C0-0x3DF: sequencer (0x3C4/0x3C5), graphics controller (0x3CE/0x3CF) and CRT
//    controller (0x3D4/0x3D5) as index/data pairs; a 16-bit write to an index port sets the index
//    and the data register together (the low byte to the index, the high byte to the data), as
//    QEMU's byte-wide VGA ports split it. CRTC 0x0C/0x0D is the start address and 0x0E/0x0F the
//    cursor location, both in character cells (Linux vgacon's write_vga).
//  * text_screen() renders the 25 visible rows from the start address, the way the adapter's
//    scan-out would; a test or report uses it to check that console output arrived.
//
// Where it differs: no planar or graphics modes, no attribute controller, DAC or retrace timing
// (0x3DA reads 0), no display refresh (QEMU's display update timer costs dom0 time that is not
// charged here), and Cirrus extensions are absent (QEMU's default Xen VGA is Cirrus; stdvga is the
// `vga="stdvga"` choice).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "models/devices/io_device.h"
#include "sim/core/stats.h"

namespace xensim {

class StdVga : public IoDevice, public MmioDevice {
  public:
    static constexpr std::uint64_t kWindowBase = 0xa0000, kWindowSize = 0x20000;  // legacy VGA window
    static constexpr std::uint64_t kTextBase = 0xb8000, kTextSize = 0x8000;       // map select 11b
    static constexpr std::uint16_t kPortFirst = 0x3c0, kPortLast = 0x3df;
    static constexpr unsigned kColumns = 80, kRows = 25;

    explicit StdVga(StatsGroup& parent);

    bool claims(std::uint16_t port) const override { return port >= kPortFirst && port <= kPortLast; }
    std::uint32_t read(std::uint16_t port, unsigned size, std::uint64_t now_ps) override;
    void write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t now_ps) override;

    bool claims_mmio(std::uint64_t gpa) const override {
        return gpa >= kWindowBase && gpa < kWindowBase + kWindowSize;
    }
    std::uint64_t mmio_read(std::uint64_t gpa, unsigned size, std::uint64_t now_ps) override;
    void mmio_write(std::uint64_t gpa, unsigned size, std::uint64_t value, std::uint64_t now_ps) override;

    // The visible rows (kRows strings of kColumns characters, trailing blanks removed).
    std::vector<std::string> text_screen() const;
    unsigned start_address() const { return (crtc_[0x0c] << 8) | crtc_[0x0d]; }
    unsigned cursor() const { return (crtc_[0x0e] << 8) | crtc_[0x0f]; }

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter memory_writes, memory_reads, register_writes, register_reads;
    };
    const Stats& stats() const { return stats_; }

  private:
    void write_byte(std::uint16_t port, std::uint8_t v);
    std::uint8_t read_byte(std::uint16_t port) const;

    StatsGroup group_;
    Stats stats_;
    std::array<std::uint8_t, kTextSize> text_{};
    std::uint8_t seq_index_ = 0, gc_index_ = 0, crtc_index_ = 0;
    std::array<std::uint8_t, 8> seq_{};
    std::array<std::uint8_t, 9> gc_{};
    std::array<std::uint8_t, 0x19> crtc_{};
};

}  // namespace xensim
