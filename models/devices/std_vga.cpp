#include "models/devices/std_vga.h"

namespace xensim {

StdVga::Stats::Stats(StatsGroup& g)
    : memory_writes(g, "memory_writes", "accesses", "writes to the VGA memory window"),
      memory_reads(g, "memory_reads", "accesses", "reads of the VGA memory window"),
      register_writes(g, "register_writes", "accesses", "writes to the VGA ports 0x3C0-0x3DF"),
      register_reads(g, "register_reads", "accesses", "reads of the VGA ports 0x3C0-0x3DF") {}

StdVga::StdVga(StatsGroup& parent) : group_("vga", &parent), stats_(group_) {
    // Mode 3 as the VGA BIOS programs it: odd/even text addressing (sequencer memory mode 0x02,
    // graphics mode 0x10, miscellaneous 0x0E: map 0xB8000, chain odd/even), blank screen of
    // spaces in light grey.
    seq_[2] = 0x03;
    seq_[4] = 0x02;
    gc_[5] = 0x10;
    gc_[6] = 0x0e;
    for (std::size_t i = 0; i < text_.size(); i += 2) {
        text_[i] = ' ';
        text_[i + 1] = 0x07;
    }
}

void StdVga::write_byte(std::uint16_t port, std::uint8_t v) {
    switch (port) {
        case 0x3c4:
            seq_index_ = v;
            break;
        case 0x3c5:
            if (seq_index_ < seq_.size()) seq_[seq_index_] = v;
            break;
        case 0x3ce:
            gc_index_ = v;
            break;
        case 0x3cf:
            if (gc_index_ < gc_.size()) gc_[gc_index_] = v;
            break;
        case 0x3d4:
            crtc_index_ = v;
            break;
        case 0x3d5:
            if (crtc_index_ < crtc_.size()) crtc_[crtc_index_] = v;
            break;
        default:
            break;  // attribute controller, DAC, misc output: not modelled
    }
}

std::uint8_t StdVga::read_byte(std::uint16_t port) const {
    switch (port) {
        case 0x3c4:
            return seq_index_;
        case 0x3c5:
            return seq_index_ < seq_.size() ? seq_[seq_index_] : 0xff;
        case 0x3ce:
            return gc_index_;
        case 0x3cf:
            return gc_index_ < gc_.size() ? gc_[gc_index_] : 0xff;
        case 0x3d4:
            return crtc_index_;
        case 0x3d5:
            return crtc_index_ < crtc_.size() ? crtc_[crtc_index_] : 0xff;
        case 0x3da:
            return 0;  // input status 1: no retrace modelled
        default:
            return 0xff;
    }
}

std::uint32_t StdVga::read(std::uint16_t port, unsigned size, std::uint64_t) {
    stats_.register_reads.inc();
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i)
        v |= std::uint32_t{read_byte(static_cast<std::uint16_t>(port + i))} << (8 * i);
    return v;
}

void StdVga::write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t) {
    stats_.register_writes.inc();
    for (unsigned i = 0; i < size; ++i)
        write_byte(static_cast<std::uint16_t>(port + i), static_cast<std::uint8_t>(value >> (8 * i)));
}

std::uint64_t StdVga::mmio_read(std::uint64_t gpa, unsigned size, std::uint64_t) {
    stats_.memory_reads.inc();
    std::uint64_t v = 0;
    for (unsigned i = 0; i < size; ++i) {
        const std::uint64_t a = gpa + i;
        const std::uint8_t b = a >= kTextBase && a < kTextBase + kTextSize ? text_[a - kTextBase] : 0xff;
        v |= std::uint64_t{b} << (8 * i);
    }
    return v;
}

void StdVga::mmio_write(std::uint64_t gpa, unsigned size, std::uint64_t value, std::uint64_t) {
    stats_.memory_writes.inc();
    for (unsigned i = 0; i < size; ++i) {
        const std::uint64_t a = gpa + i;
        if (a >= kTextBase && a < kTextBase + kTextSize)
            text_[a - kTextBase] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

std::vector<std::string> StdVga::text_screen() const {
    std::vector<std::string> rows;
    const unsigned cells = kTextSize / 2;
    for (unsigned r = 0; r < kRows; ++r) {
        std::string row;
        for (unsigned c = 0; c < kColumns; ++c) {
            const unsigned cell = (start_address() + r * kColumns + c) % cells;
            const std::uint8_t ch = text_[2 * cell];
            row.push_back(ch >= 0x20 && ch < 0x7f ? static_cast<char>(ch) : '.');
        }
        row.erase(row.find_last_not_of(' ') + 1);
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace xensim
