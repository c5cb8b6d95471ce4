// A guest printing to its VGA text console the way Linux's vgacon does: the workload that shows
// Xen's buffered ioreqs at work.
//
// The problem. Each character a VGA console prints is a store to emulated memory, an EPT_VIOLATION
// exit. Xen does not make the vCPU wait for the device model for these: its standard-VGA
// intercept queues single writes to 0xA0000-0xBFFFF on the buffered ioreq page (see
// models/devices/std_vga.h). Register writes (the cursor, the start address) still go the
// synchronous way and each one first drains the queue in the device model.
//
// What is modelled, following Linux 6.1 drivers/video/console/vgacon.c and drivers/tty/vt/vt.c
// for an 80x25 colour text console with hardware scrolling (the default):
//  * Each printed line is one write of `line_length` characters and "\r\n" (ONLCR). Every
//    character is one 16-bit store of character and attribute at the cursor (do_con_write's
//    scr_writew, a plain store on x86).
//  * A line feed on the bottom row scrolls (vgacon_scroll): the origin moves down a row, the new
//    bottom row is cleared with 80 16-bit stores (scr_memsetw), and the CRTC start address is set
//    (vga_set_mem_top). When the screen would run past the end of the 32 KiB text memory, the
//    visible rows are first copied back to its start (scr_memcpyw) and the origin wraps.
//  * At the end of each write the cursor is moved (vgacon_cursor). Both CRTC updates are
//    write_vga: two 16-bit OUTs to 0x3D4, each carrying an index and a data byte.
//  * With clear_screen, the run starts with "\e[2J\e[H" (csi_J(vc, 2): scr_memsetw of all 2000
//    cells, then the cursor home). 2000 stores with no synchronous access among them overflow the
//    511-slot buffered page while the device model leaves its buffered port masked, so Xen sends
//    some of them synchronously (Hypervisor::send_buffered_ioreq's fallback).
//
// Where it differs: the vt layer's own per-character work is not charged (only the exits and
// their emulation are); the scr_memcpyw of a wrap is modelled as 8-byte loads and stores, which is
// our reading of how Xen emulates a memcpy whose source and destination are both emulated MMIO
// (hvmemul_rep_movs declines it, so each iteration is a read ioreq and a buffered write), not a
// measured sequence; no blanking, no cursor shape changes, no colour attributes other than 0x07.
#pragma once

#include <cstdint>
#include <string>

#include "frontends/guest_services.h"
#include "frontends/workload.h"

namespace xensim {

struct VgaConsoleParams {
    std::uint64_t lines = 100;
    unsigned line_length = 64;  // characters before "\r\n", at most 79
    bool clear_screen = false;  // first "\e[2J\e[H": 2000 stores in a row, then the cursor home
};

class VgaConsole {
  public:
    static constexpr std::uint64_t kVramBase = 0xb8000, kVramEnd = 0xc0000;  // colour text memory
    static constexpr unsigned kColumns = 80, kRows = 25;

    VgaConsole(VgaConsoleParams params, WorkloadStats& stats) : p_(params), stats_(stats) {}
    // Prints every line on this vCPU, then returns.
    void run(GuestServices& s);

    // The text of line `n` (0-based): what the screen must show after the run.
    static std::string line_text(std::uint64_t n, unsigned length);

    struct Counts {
        std::uint64_t characters = 0, scrolls = 0, wraps = 0, cursor_updates = 0, clears = 0;
    };
    const Counts& counts() const { return counts_; }

  private:
    void write_vga(GuestServices& s, std::uint8_t reg, unsigned value);
    void scroll(GuestServices& s);

    VgaConsoleParams p_;
    WorkloadStats& stats_;
    Counts counts_;
    std::uint64_t origin_ = kVramBase, pos_ = kVramBase;
    unsigned row_ = 0;
};

}  // namespace xensim
