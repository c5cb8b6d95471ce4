#include "frontends/vga_console.h"

#include <cstdio>

namespace xensim {

namespace {
constexpr std::uint16_t kCrtcIndex = 0x3d4;                    // colour CRTC index (vga_video_port_reg)
constexpr std::uint8_t kCrtcStart = 0x0c, kCrtcCursor = 0x0e;  // start address, cursor location (high)
constexpr std::uint16_t kErase = 0x0720;                       // a space on light grey: vc_video_erase_char
constexpr unsigned kRowBytes = VgaConsole::kColumns * 2;
constexpr unsigned kScreenBytes = kRowBytes * VgaConsole::kRows;
}  // namespace

std::string VgaConsole::line_text(std::uint64_t n, unsigned length) {
    char head[32];
    std::snprintf(head, sizeof head, "line %06llu:", static_cast<unsigned long long>(n));
    std::string t = head;
    for (unsigned i = 0; t.size() < length; ++i) t.push_back(static_cast<char>('a' + (n + i) % 26));
    t.resize(length);
    return t;
}

// write_vga: the index in the low byte and the data byte in the high byte of each OUT.
void VgaConsole::write_vga(GuestServices& s, std::uint8_t reg, unsigned value) {
    s.out(kCrtcIndex, 2, reg | (value & 0xff00));
    s.out(kCrtcIndex, 2, (reg + 1u) | ((value << 8) & 0xff00));
}

void VgaConsole::scroll(GuestServices& s) {
    const std::uint64_t old = origin_;
    if (origin_ + kScreenBytes + kRowBytes >= kVramEnd) {
        // scr_memcpyw(vga_vram_base, old + delta, screen - delta): the rows that stay visible.
        for (unsigned off = 0; off < kScreenBytes - kRowBytes; off += 8)
            s.mmio_write(kVramBase + off, 8, s.mmio_read(old + kRowBytes + off, 8));
        origin_ = kVramBase;
        ++counts_.wraps;
    } else {
        origin_ += kRowBytes;
    }
    // scr_memsetw of the new bottom row, then vga_set_mem_top.
    for (unsigned c = 0; c < kColumns; ++c)
        s.mmio_write(origin_ + kScreenBytes - kRowBytes + 2 * c, 2, kErase);
    write_vga(s, kCrtcStart, static_cast<unsigned>((origin_ - kVramBase) / 2));
    pos_ = pos_ - old + origin_;
    ++counts_.scrolls;
}

void VgaConsole::run(GuestServices& s) {
    stats_.start(s.now_ns());
    const unsigned length = p_.line_length < kColumns ? p_.line_length : kColumns - 1;
    if (p_.clear_screen) {
        for (unsigned c = 0; c < kColumns * kRows; ++c) s.mmio_write(origin_ + 2 * c, 2, kErase);
        pos_ = origin_;
        row_ = 0;
        write_vga(s, kCrtcCursor, static_cast<unsigned>((pos_ - kVramBase) / 2));
        ++counts_.clears;
        ++counts_.cursor_updates;
    }
    for (std::uint64_t n = 0; n < p_.lines; ++n) {
        const std::uint64_t t0 = s.now_ns();
        for (char ch : line_text(n, length)) {
            s.mmio_write(pos_, 2, 0x0700u | static_cast<std::uint8_t>(ch));
            pos_ += 2;
            ++counts_.characters;
        }
        pos_ -= 2 * length;  // '\r'
        if (row_ + 1 == kRows)
            scroll(s);  // '\n' on the bottom row
        else {
            ++row_;
            pos_ += kRowBytes;
        }
        write_vga(s, kCrtcCursor, static_cast<unsigned>((pos_ - kVramBase) / 2));
        ++counts_.cursor_updates;
        stats_.end_ns = s.now_ns();
        stats_.complete_op(stats_.end_ns - t0);
    }
    stats_.finish(s.now_ns());
}

}  // namespace xensim
