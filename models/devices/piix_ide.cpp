// The PIIX3 IDE controller engine; see piix_ide.h for what is modelled and where it differs.
#include "models/devices/piix_ide.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xensim {
namespace {

std::uint32_t all_ones(unsigned size) { return size >= 4 ? 0xFFFFFFFFu : (1u << (size * 8)) - 1; }

std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
}

// ATA string: two characters per word, the first in bits 15:8, padded with spaces.
void put_string(std::uint16_t* w, unsigned first_word, unsigned words, const std::string& s) {
    for (unsigned i = 0; i < words; ++i) {
        auto ch = [&](std::size_t k) -> std::uint16_t {
            return k < s.size() ? static_cast<unsigned char>(s[k]) : ' ';
        };
        w[first_word + i] = static_cast<std::uint16_t>(ch(2 * i) << 8 | ch(2 * i + 1));
    }
}

// The error reasons (labels of the "errors" family).
constexpr const char* kUnknownCommand = "unknown_command";
constexpr const char* kNoMedium = "no_medium";
constexpr const char* kOutOfRange = "lba_out_of_range";
constexpr const char* kDiskRefused = "disk_refused";
constexpr const char* kMultipleOff = "multiple_mode_off";
constexpr const char* kBadMultiple = "bad_multiple_count";
constexpr const char* kBadFeature = "bad_set_features";
constexpr const char* kPrdTooShort = "prd_table_too_short";
constexpr const char* kPrdOutside = "prd_table_outside_memory";
constexpr const char* kDmaOutside = "dma_outside_memory";

}  // namespace

// ---- Tables ----------------------------------------------------------------------------------

// ATA/ATAPI-6 register descriptions: Command Block registers at offsets 0-7, the Control Block
// register as 8.
const PiixIde::TaskfileReg PiixIde::kTaskfile[9] = {
    {0, "Data", "Data", &PiixIde::rd_data_byte, &PiixIde::wr_data_byte},
    {1, "Error", "Features", &PiixIde::rd_error, &PiixIde::wr_feature},
    {2, "Sector Count", "Sector Count", &PiixIde::rd_nsector, &PiixIde::wr_nsector},
    {3, "LBA Low", "LBA Low", &PiixIde::rd_lbal, &PiixIde::wr_lbal},
    {4, "LBA Mid", "LBA Mid", &PiixIde::rd_lbam, &PiixIde::wr_lbam},
    {5, "LBA High", "LBA High", &PiixIde::rd_lbah, &PiixIde::wr_lbah},
    {6, "Device", "Device", &PiixIde::rd_device, &PiixIde::wr_device},
    {7, "Status", "Command", &PiixIde::rd_status, &PiixIde::wr_command},
    {8, "Alternate Status", "Device Control", &PiixIde::rd_alt_status, &PiixIde::wr_devctl},
};

// SFF-8038i register map per channel. Command: Start (bit 0) and Read/Write control (bit 3) are
// read/write, the rest reads 0 (QEMU stores val & 0x09). Status: Active (bit 0) read-only, Error
// and Interrupt (bits 1, 2) write-1-to-clear, drive 0/1 DMA capable (bits 5, 6) read/write, simplex
// (bit 7) 0 (QEMU piix bmdma_write). Descriptor Table Pointer: bits 1:0 reserved (dword aligned).
const PiixIde::BmReg PiixIde::kBmRegs[3] = {
    {ATA_DMA_CMD, 1, "BM Command", 0, ATA_DMA_START | ATA_DMA_WR, 0, &Channel::bm_cmd,
     &PiixIde::bm_command_written},
    {ATA_DMA_STATUS, 1, "BM Status", 0, 0x60, ATA_DMA_ERR | ATA_DMA_INTR, &Channel::bm_status, nullptr},
    {ATA_DMA_TABLE_OFS, 4, "BM PRD Table", 0, 0xFFFFFFFCu, 0, &Channel::bm_prd, nullptr},
};

// ATA8-ACS command codes implemented (QEMU ide_cmd_table for these opcodes).
const PiixIde::CommandDesc PiixIde::kCommands[17] = {
    {WIN_READ, "READ SECTORS", &PiixIde::cmd_read_pio, kNeedsMedium},
    {WIN_READ_EXT, "READ SECTORS EXT", &PiixIde::cmd_read_pio, kNeedsMedium | kLba48},
    {WIN_READDMA_EXT, "READ DMA EXT", &PiixIde::cmd_read_dma, kNeedsMedium | kLba48},
    {WIN_MULTREAD_EXT, "READ MULTIPLE EXT", &PiixIde::cmd_read_multiple, kNeedsMedium | kLba48},
    {WIN_WRITE, "WRITE SECTORS", &PiixIde::cmd_write_pio, kNeedsMedium},
    {WIN_WRITE_EXT, "WRITE SECTORS EXT", &PiixIde::cmd_write_pio, kNeedsMedium | kLba48},
    {WIN_WRITEDMA_EXT, "WRITE DMA EXT", &PiixIde::cmd_write_dma, kNeedsMedium | kLba48},
    {WIN_MULTWRITE_EXT, "WRITE MULTIPLE EXT", &PiixIde::cmd_write_multiple, kNeedsMedium | kLba48},
    {WIN_MULTREAD, "READ MULTIPLE", &PiixIde::cmd_read_multiple, kNeedsMedium},
    {WIN_MULTWRITE, "WRITE MULTIPLE", &PiixIde::cmd_write_multiple, kNeedsMedium},
    {WIN_SETMULT, "SET MULTIPLE MODE", &PiixIde::cmd_set_multiple, kSetDsc},
    {WIN_READDMA, "READ DMA", &PiixIde::cmd_read_dma, kNeedsMedium},
    {WIN_WRITEDMA, "WRITE DMA", &PiixIde::cmd_write_dma, kNeedsMedium},
    {WIN_FLUSH_CACHE, "FLUSH CACHE", &PiixIde::cmd_flush, kSetDsc},
    {WIN_FLUSH_CACHE_EXT, "FLUSH CACHE EXT", &PiixIde::cmd_flush, kSetDsc},
    {WIN_IDENTIFY, "IDENTIFY DEVICE", &PiixIde::cmd_identify, kNeedsMedium},
    {WIN_SETFEATURES, "SET FEATURES", &PiixIde::cmd_set_features, kNeedsMedium | kSetDsc},
};

const PiixIde::CommandDesc* PiixIde::find_command(std::uint8_t opcode) {
    for (const CommandDesc& c : kCommands)
        if (c.opcode == opcode) return &c;
    return nullptr;
}

const PiixIde::BmReg* PiixIde::find_bm_reg(unsigned offset) {
    for (const BmReg& r : kBmRegs)
        if (offset >= r.offset && offset < r.offset + r.width) return &r;
    return nullptr;
}

// ---- PCI identity ------------------------------------------------------------------------------

std::array<std::uint8_t, 64> PiixIdePciConfig::header() const {
    std::array<std::uint8_t, 64> h{};
    auto put16 = [&](unsigned off, std::uint16_t v) {
        h[off] = static_cast<std::uint8_t>(v);
        h[off + 1] = static_cast<std::uint8_t>(v >> 8);
    };
    put16(0x00, kVendorId);
    put16(0x02, kDeviceId);
    put16(0x06, kStatus);  // command register (04h) resets to 0
    h[0x08] = kRevision;
    h[0x09] = kProgIf;
    h[0x0A] = kSubclass;
    h[0x0B] = kClass;
    std::uint32_t bar = bar4();
    for (unsigned i = 0; i < 4; ++i) h[kBar4Offset + i] = static_cast<std::uint8_t>(bar >> (8 * i));
    return h;
}

// ---- Construction and reset --------------------------------------------------------------------

PiixIde::Stats::Stats(StatsGroup& g)
    : commands(g, "commands", "commands", "ATA commands issued, by ATA8-ACS name ('unknown 0xNN' aborted)"),
      register_reads(g, "register_reads", "accesses", "port reads, by register"),
      register_writes(g, "register_writes", "accesses", "port writes, by register"),
      errors(g, "errors", "commands", "commands ended in error or a bus-master error condition, by reason"),
      ignored(g, "ignored", "accesses", "register writes and commands ignored (busy drive, absent slave)"),
      bytes_read(g, "bytes_read", "bytes", "bytes moved from the disk to the host (PIO and DMA)"),
      bytes_written(g, "bytes_written", "bytes", "bytes moved from the host to the disk (PIO and DMA)"),
      dma_transfers(g, "dma_transfers", "transfers", "bus-master transfers completed without error"),
      interrupts(g, "interrupts", "interrupts", "INTRQ assertions by the drives"),
      interrupts_masked(g, "interrupts_masked", "interrupts", "INTRQ assertions while nIEN was set") {}

PiixIde::PiixIde(PiixIdeConfig cfg, std::array<Disk*, 4> drives, MemoryAccess dma, IrqRequest irq,
                 StatsGroup& stats)
    : cfg_(std::move(cfg)), dma_(std::move(dma)), irq_(std::move(irq)) {
    if (!dma_ || !irq_)
        throw std::invalid_argument("piix ide: memory access and irq request callbacks are required");
    if (cfg_.bmdma_base & 0xF || cfg_.bmdma_base > 0xFFF0)
        throw std::invalid_argument("piix ide: bus-master base must be 16-byte aligned below 0xFFF0");
    for (unsigned ch = 0; ch < kChannels; ++ch) {
        auto overlaps = [&](std::uint16_t lo, std::uint16_t hi) {
            return cfg_.bmdma_base <= hi && lo <= cfg_.bmdma_base + 15;
        };
        if (overlaps(kCommandBase[ch], kCommandBase[ch] + 7) || overlaps(kControlPort[ch], kControlPort[ch]))
            throw std::invalid_argument("piix ide: bus-master ports overlap the legacy ATA ports");
    }
    static const char* const names[kChannels] = {"primary", "secondary"};
    for (unsigned ch = 0; ch < kChannels; ++ch) {
        channels_[ch] = std::make_unique<Channel>(stats, names[ch]);
        for (unsigned u = 0; u < 2; ++u) {
            Drive& d = channels_[ch]->drives[u];
            d.index = ch * 2 + u;
            d.disk = drives[d.index];
            if (d.disk) {
                // QEMU's guess for a disk without a partition table: 16 heads, 63 sectors per track.
                std::uint64_t cyl = d.disk->sectors() / (d.heads * d.spt);
                d.cylinders = std::clamp<std::uint64_t>(cyl, 1, 16383);
            }
        }
    }
    reset();
}

PiixIde::~PiixIde() = default;

void PiixIde::unplug(unsigned index) {
    if (index >= 2 * kChannels) return;
    Drive& d = channels_[index / 2]->drives[index % 2];
    if (!d.disk) return;
    reset_drive(d);
    d.disk = nullptr;
    set_signature(d);
}

void PiixIde::set_signature(Drive& d) {
    d.select &= 0xF0;  // head bits cleared
    d.nsector = 1;
    d.sector = 1;
    d.lcyl = d.hcyl = d.disk ? 0x00 : 0xFF;
}

// QEMU ide_reset: registers, multiple mode, DRDY|DSC, the signature.
void PiixIde::reset_drive(Drive& d) {
    transfer_stop(d);
    d.mult_sectors = kMaxMultSectors;
    d.feature = d.error = d.sector = d.lcyl = d.hcyl = 0;
    d.nsector = 0;
    d.hob_feature = d.hob_sector = d.hob_nsector = d.hob_lcyl = d.hob_hcyl = 0;
    d.select = 0xA0;
    d.status = ATA_DRDY | ATA_DSC;
    d.lba48 = false;
    d.req_sectors = 1;
    set_signature(d);
}

void PiixIde::reset() {
    for (auto& cp : channels_) {
        Channel& c = *cp;
        c.unit = 0;
        c.devctl = 0;
        c.intrq = false;
        for (const BmReg& r : kBmRegs) c.*r.field = r.reset;
        c.prd_cur = 0;
        c.dma_armed = false;
        c.pending = Pending::none;
        for (Drive& d : c.drives) {
            reset_drive(d);
            // Power-on transfer modes as QEMU's IDENTIFY block: Ultra DMA 5 selected.
            d.word62 = 0x0007;
            d.word63 = 0x0007;
            d.word88 = 0x003F | 1u << 13;
        }
    }
}

// ---- Public interface --------------------------------------------------------------------------

PiixIde::Channel& PiixIde::channel(unsigned ch) {
    if (ch >= kChannels) throw std::invalid_argument("piix ide: no channel " + std::to_string(ch));
    return *channels_[ch];
}

const PiixIde::Channel& PiixIde::channel(unsigned ch) const {
    if (ch >= kChannels) throw std::invalid_argument("piix ide: no channel " + std::to_string(ch));
    return *channels_[ch];
}

unsigned PiixIde::channel_index(const Channel& c) const { return &c == channels_[0].get() ? 0 : 1; }

bool PiixIde::decode(std::uint16_t port, Decoded& out) const {
    for (unsigned ch = 0; ch < kChannels; ++ch) {
        if (port >= kCommandBase[ch] && port < kCommandBase[ch] + 8) {
            out = {Decoded::taskfile, ch, unsigned(port - kCommandBase[ch])};
            return true;
        }
        if (port == kControlPort[ch]) {
            out = {Decoded::control, ch, 8};
            return true;
        }
    }
    if (port >= cfg_.bmdma_base && port < cfg_.bmdma_base + 16) {
        unsigned off = port - cfg_.bmdma_base;
        out = {Decoded::bus_master, off / 8, off % 8};
        return true;
    }
    return false;
}

bool PiixIde::claims(std::uint16_t port) const {
    Decoded d;
    return decode(port, d);
}

std::uint32_t PiixIde::read(std::uint16_t port, unsigned size, std::uint64_t now_ps) {
    if (size != 1 && size != 2 && size != 4)
        throw std::invalid_argument("piix ide: access size must be 1, 2 or 4");
    Decoded d;
    if (!decode(port, d)) throw std::invalid_argument("piix ide: port not claimed: " + std::to_string(port));
    Channel& c = *channels_[d.channel];
    if (d.kind == Decoded::bus_master) return bm_read(c, d.offset, size);
    if (d.kind == Decoded::taskfile && d.offset == 0 && size > 1) return read_data(c, size, now_ps);
    // Byte-wide registers: a wider access is split into byte accesses on consecutive ports.
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i) {
        Decoded di;
        std::uint32_t b = 0xFF;
        if (decode(static_cast<std::uint16_t>(port + i), di) && di.kind != Decoded::bus_master)
            b = read_byte(di, now_ps);
        v |= b << (8 * i);
    }
    return v;
}

void PiixIde::write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t now_ps) {
    if (size != 1 && size != 2 && size != 4)
        throw std::invalid_argument("piix ide: access size must be 1, 2 or 4");
    Decoded d;
    if (!decode(port, d)) throw std::invalid_argument("piix ide: port not claimed: " + std::to_string(port));
    Channel& c = *channels_[d.channel];
    if (d.kind == Decoded::bus_master) return bm_write(c, d.offset, size, value, now_ps);
    if (d.kind == Decoded::taskfile && d.offset == 0 && size > 1) return write_data(c, size, value, now_ps);
    for (unsigned i = 0; i < size; ++i) {
        Decoded di;
        if (decode(static_cast<std::uint16_t>(port + i), di) && di.kind != Decoded::bus_master)
            write_byte(di, static_cast<std::uint8_t>(value >> (8 * i)), now_ps);
    }
}

std::uint8_t PiixIde::read_byte(const Decoded& d, std::uint64_t) {
    Channel& c = *channels_[d.channel];
    const TaskfileReg& r = kTaskfile[d.offset];
    ++c.stats.register_reads.at(c.stats.taskfile_read_slots[d.offset], r.read_name);
    return (this->*r.read)(c);
}

void PiixIde::write_byte(const Decoded& d, std::uint8_t v, std::uint64_t now_ps) {
    Channel& c = *channels_[d.channel];
    const TaskfileReg& r = kTaskfile[d.offset];
    ++c.stats.register_writes.at(c.stats.taskfile_write_slots[d.offset], r.write_name);
    (this->*r.write)(c, v, now_ps);
}

bool PiixIde::complete(unsigned ch, std::uint64_t now_ps) {
    Channel& c = channel(ch);
    if (c.pending == Pending::none || now_ps < c.pending_at) return false;
    finish(c);
    return true;
}

bool PiixIde::irq_level(unsigned ch) const {
    const Channel& c = channel(ch);
    return c.intrq && !(c.devctl & ATA_NIEN);
}

bool PiixIde::intrq_pending(unsigned ch) const { return channel(ch).intrq; }
bool PiixIde::in_flight(unsigned ch) const { return channel(ch).pending != Pending::none; }
std::uint64_t PiixIde::completion_ps(unsigned ch) const { return channel(ch).pending_at; }

// ---- Task-file registers (QEMU ide_ioport_read / ide_ioport_write / ide_status_read) -------------

bool PiixIde::channel_empty(const Channel& c) const { return !c.drives[0].disk && !c.drives[1].disk; }

bool PiixIde::no_device_answers(const Channel& c) const {
    return channel_empty(c) || (c.unit == 1 && !c.drives[1].disk);
}

std::uint8_t PiixIde::rd_data_byte(Channel&) { return 0xFF; }

std::uint8_t PiixIde::rd_error(Channel& c) {
    if (no_device_answers(c)) return 0;
    const Drive& d = active(c);
    return (c.devctl & ATA_HOB) ? d.hob_feature : d.error;
}

std::uint8_t PiixIde::rd_nsector(Channel& c) {
    if (channel_empty(c)) return 0;
    const Drive& d = active(c);
    return (c.devctl & ATA_HOB) ? d.hob_nsector : static_cast<std::uint8_t>(d.nsector);
}

std::uint8_t PiixIde::rd_lbal(Channel& c) {
    if (channel_empty(c)) return 0;
    return (c.devctl & ATA_HOB) ? active(c).hob_sector : active(c).sector;
}

std::uint8_t PiixIde::rd_lbam(Channel& c) {
    if (channel_empty(c)) return 0;
    return (c.devctl & ATA_HOB) ? active(c).hob_lcyl : active(c).lcyl;
}

std::uint8_t PiixIde::rd_lbah(Channel& c) {
    if (channel_empty(c)) return 0;
    return (c.devctl & ATA_HOB) ? active(c).hob_hcyl : active(c).hcyl;
}

std::uint8_t PiixIde::rd_device(Channel& c) { return channel_empty(c) ? 0 : active(c).select; }

std::uint8_t PiixIde::rd_status(Channel& c) {
    std::uint8_t v = no_device_answers(c) ? 0 : active(c).status;
    c.intrq = false;  // reading Status acknowledges the interrupt
    return v;
}

std::uint8_t PiixIde::rd_alt_status(Channel& c) { return no_device_answers(c) ? 0 : active(c).status; }

void PiixIde::wr_data_byte(Channel& c, std::uint8_t, std::uint64_t) {
    c.stats.ignored.inc("data_byte_write");
}

// Writes to registers 1-6 are dropped while the selected drive is busy or in a data phase; an
// accepted write clears HOB and shifts the old value into the high-order-byte copy (both drives).
bool PiixIde::taskfile_write_allowed(Channel& c) {
    if (active(c).status & (ATA_BUSY | ATA_DRQ)) {
        c.stats.ignored.inc("register_write_while_busy");
        return false;
    }
    c.devctl &= static_cast<std::uint8_t>(~ATA_HOB);
    return true;
}

void PiixIde::wr_feature(Channel& c, std::uint8_t v, std::uint64_t) {
    if (!taskfile_write_allowed(c)) return;
    for (Drive& d : c.drives) d.hob_feature = d.feature, d.feature = v;
}

void PiixIde::wr_nsector(Channel& c, std::uint8_t v, std::uint64_t) {
    if (!taskfile_write_allowed(c)) return;
    for (Drive& d : c.drives) d.hob_nsector = static_cast<std::uint8_t>(d.nsector), d.nsector = v;
}

void PiixIde::wr_lbal(Channel& c, std::uint8_t v, std::uint64_t) {
    if (!taskfile_write_allowed(c)) return;
    for (Drive& d : c.drives) d.hob_sector = d.sector, d.sector = v;
}

void PiixIde::wr_lbam(Channel& c, std::uint8_t v, std::uint64_t) {
    if (!taskfile_write_allowed(c)) return;
    for (Drive& d : c.drives) d.hob_lcyl = d.lcyl, d.lcyl = v;
}

void PiixIde::wr_lbah(Channel& c, std::uint8_t v, std::uint64_t) {
    if (!taskfile_write_allowed(c)) return;
    for (Drive& d : c.drives) d.hob_hcyl = d.hcyl, d.hcyl = v;
}

void PiixIde::wr_device(Channel& c, std::uint8_t v, std::uint64_t) {
    if (!taskfile_write_allowed(c)) return;
    for (Drive& d : c.drives) d.select = v | 0xA0;  // bits 7 and 5 are obsolete and read as one
    c.unit = (v & ATA_DEV1) ? 1 : 0;
}

void PiixIde::wr_command(Channel& c, std::uint8_t v, std::uint64_t now_ps) {
    c.devctl &= static_cast<std::uint8_t>(~ATA_HOB);
    c.intrq = false;  // writing Command acknowledges the interrupt (even if the command is ignored)
    exec_command(c, v, now_ps);
}

void PiixIde::wr_devctl(Channel& c, std::uint8_t v, std::uint64_t) {
    std::uint8_t old = c.devctl;
    c.devctl = v;
    if (!(old & ATA_SRST) && (v & ATA_SRST)) software_reset(c);
    // Clearing nIEN with an interrupt pending raises the line: the bus master sees its edge.
    if ((old & ATA_NIEN) && !(v & ATA_NIEN) && c.intrq) c.bm_status |= ATA_DMA_INTR;
}

// ide_perform_srst for both drives, then cmd_exec_dev_diagnostic's outputs.
void PiixIde::software_reset(Channel& c) {
    if (c.pending == Pending::dma) finish(c);  // QEMU drains the DMA request first
    c.pending = Pending::none;
    c.dma_armed = false;
    for (Drive& d : c.drives) {
        reset_drive(d);
        d.error = 0x01;  // diagnostic code: device 0 passed, device 1 passed or not present
    }
    c.unit = 0;
    raise_irq(c);
}

// ---- Data port (QEMU ide_data_readw/readl/writew/writel) ---------------------------------------

std::uint32_t PiixIde::read_data(Channel& c, unsigned size, std::uint64_t now_ps) {
    ++c.stats.register_reads.at(c.stats.data_read_slot, "Data");
    Drive& d = active(c);
    if (!(d.status & ATA_DRQ) || d.xfer != Xfer::pio_in || d.pos + size > d.end) return 0;
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i) v |= std::uint32_t{d.buf[d.pos + i]} << (8 * i);
    d.pos += size;
    if (d.pos >= d.end) {
        d.status &= static_cast<std::uint8_t>(~ATA_DRQ);
        end_of_block(c, d, now_ps);
    }
    return v;
}

void PiixIde::write_data(Channel& c, unsigned size, std::uint32_t value, std::uint64_t now_ps) {
    ++c.stats.register_writes.at(c.stats.data_write_slot, "Data");
    Drive& d = active(c);
    if (!(d.status & ATA_DRQ) || d.xfer != Xfer::pio_out || d.pos + size > d.end) {
        c.stats.ignored.inc("data_write_outside_data_out_phase");
        return;
    }
    for (unsigned i = 0; i < size; ++i) d.buf[d.pos + i] = static_cast<std::uint8_t>(value >> (8 * i));
    d.pos += size;
    if (d.pos >= d.end) {
        d.status &= static_cast<std::uint8_t>(~ATA_DRQ);
        end_of_block(c, d, now_ps);
    }
}

void PiixIde::end_of_block(Channel& c, Drive& d, std::uint64_t now_ps) {
    if (d.after == AfterBlock::read_next)
        pio_read_block(c, d, now_ps);
    else if (d.after == AfterBlock::write_block)
        pio_write_block(c, d, now_ps);
    else
        transfer_stop(d);
}

void PiixIde::transfer_start(Drive& d, std::size_t bytes, Xfer x, AfterBlock after) {
    if (d.buf.size() < bytes) d.buf.resize(bytes);
    d.pos = 0;
    d.end = bytes;
    d.xfer = x;
    d.after = after;
    if (!(d.status & ATA_ERR)) d.status |= ATA_DRQ;
}

void PiixIde::transfer_stop(Drive& d) {
    d.pos = d.end = 0;
    d.xfer = Xfer::none;
    d.after = AfterBlock::stop;
    d.status &= static_cast<std::uint8_t>(~ATA_DRQ);
}

// ---- Bus master (QEMU piix bmdma_read/bmdma_write, bmdma_cmd_writeb, bmdma_addr_*) -------------

std::uint32_t PiixIde::bm_read(Channel& c, unsigned offset, unsigned size) {
    const BmReg* r = find_bm_reg(offset);
    if (!r || offset + size > r->offset + r->width) {
        c.stats.register_reads.inc("BM reserved");
        return all_ones(size);
    }
    ++c.stats.register_reads.at(c.stats.bm_read_slots[static_cast<std::size_t>(r - kBmRegs)], r->name);
    return (c.*r->field >> (8 * (offset - r->offset))) & all_ones(size);
}

void PiixIde::bm_write(Channel& c, unsigned offset, unsigned size, std::uint32_t value,
                       std::uint64_t now_ps) {
    const BmReg* r = find_bm_reg(offset);
    if (!r || offset + size > r->offset + r->width) {
        c.stats.ignored.inc("bm_reserved_or_wide_write");
        return;
    }
    ++c.stats.register_writes.at(c.stats.bm_write_slots[static_cast<std::size_t>(r - kBmRegs)], r->name);
    unsigned shift = 8 * (offset - r->offset);
    std::uint32_t lanes = all_ones(size) << shift, v = value << shift;
    std::uint32_t rw = r->rw_mask & lanes, w1c = r->w1c_mask & lanes;
    std::uint32_t old = c.*r->field;
    std::uint32_t nv = (old & ~rw) | (v & rw);
    nv &= ~(v & w1c);
    c.*r->field = nv;
    if (r->after_write) (this->*r->after_write)(c, old, now_ps);
}

// Start 0 -> 1: the table walk restarts at the Descriptor Table Pointer; Active is set and a DMA
// command already waiting starts. Start 1 -> 0: a transfer at the disk completes now (QEMU drains
// it), then Active clears.
void PiixIde::bm_command_written(Channel& c, std::uint32_t old_value, std::uint64_t now_ps) {
    bool was = old_value & ATA_DMA_START, is = c.bm_cmd & ATA_DMA_START;
    if (was == is) return;
    if (!is) {
        if (c.pending == Pending::dma) finish(c);
        c.bm_status &= ~std::uint32_t{ATA_DMA_ACTIVE};
        return;
    }
    c.prd_cur = c.bm_prd;
    if (!(c.bm_status & ATA_DMA_ACTIVE)) {
        c.bm_status |= ATA_DMA_ACTIVE;
        if (c.dma_armed) dma_start(c, now_ps);
    }
}

// ---- Commands (QEMU ide_exec_cmd and the cmd_* handlers) ---------------------------------------

void PiixIde::exec_command(Channel& c, std::uint8_t opcode, std::uint64_t now_ps) {
    Drive& d = active(c);
    if (c.unit == 1 && !d.disk) {
        c.stats.ignored.inc("command_to_absent_slave");
        return;
    }
    if (d.status & (ATA_BUSY | ATA_DRQ)) {
        c.stats.ignored.inc("command_while_busy");
        return;
    }
    const CommandDesc* cmd = find_command(opcode);
    if (!cmd) {
        char label[16];
        std::snprintf(label, sizeof label, "unknown 0x%02x", opcode);
        c.stats.commands.inc(label);
        abort_command(c, d, kUnknownCommand);
        raise_irq(c);
        return;
    }
    c.stats.commands.inc(cmd->name);
    if ((cmd->flags & kNeedsMedium) && !d.disk) {
        abort_command(c, d, kNoMedium);
        raise_irq(c);
        return;
    }
    d.status = ATA_DRDY | ATA_BUSY;
    d.error = 0;
    if ((this->*cmd->handler)(c, d, *cmd, now_ps)) {
        d.status &= static_cast<std::uint8_t>(~ATA_BUSY);
        if (!d.error && (cmd->flags & kSetDsc)) d.status |= ATA_DSC;
        raise_irq(c);
    }
}

void PiixIde::abort_command(Channel& c, Drive& d, const char* reason) {
    transfer_stop(d);
    d.status = ATA_DRDY | ATA_ERR;
    d.error = ATA_ABORTED;
    c.stats.errors.inc(reason);
}

void PiixIde::raise_irq(Channel& c) {
    c.intrq = true;
    c.stats.interrupts.inc();
    if (c.devctl & ATA_NIEN)
        c.stats.interrupts_masked.inc();
    else
        c.bm_status |= ATA_DMA_INTR;  // SFF-8038i: set by the rising IDE interrupt line
}

void PiixIde::defer(Channel& c, Pending what, std::uint64_t at_ps) {
    c.pending = what;
    c.pending_at = at_ps;
    irq_(channel_index(c), at_ps);
}

// The sector count of a data command: 0 means 256 (LBA28) or 65536 (LBA48).
void PiixIde::lba48_transform(Drive& d, bool lba48) {
    d.lba48 = lba48;
    std::uint32_t lo = d.nsector & 0xFF;
    if (!lba48)
        d.nsector = lo ? lo : 256;
    else
        d.nsector = (lo || d.hob_nsector) ? (std::uint32_t{d.hob_nsector} << 8 | lo) : 65536;
}

std::uint64_t PiixIde::get_sector(const Drive& d) const {
    if (d.select & ATA_LBA) {
        if (d.lba48)
            return std::uint64_t{d.hob_hcyl} << 40 | std::uint64_t{d.hob_lcyl} << 32 |
                   std::uint64_t{d.hob_sector} << 24 | std::uint64_t{d.hcyl} << 16 |
                   std::uint64_t{d.lcyl} << 8 | d.sector;
        return std::uint64_t{d.select & 0x0Fu} << 24 | std::uint64_t{d.hcyl} << 16 |
               std::uint64_t{d.lcyl} << 8 | d.sector;
    }
    // CHS; sector 0 is invalid and wraps to an address past any disk.
    std::uint64_t cyl = std::uint64_t{d.hcyl} << 8 | d.lcyl;
    return cyl * d.heads * d.spt + (d.select & 0x0Fu) * d.spt + (std::uint64_t{d.sector} - 1);
}

void PiixIde::set_sector(Drive& d, std::uint64_t lba) {
    if (d.select & ATA_LBA) {
        d.sector = static_cast<std::uint8_t>(lba);
        d.lcyl = static_cast<std::uint8_t>(lba >> 8);
        d.hcyl = static_cast<std::uint8_t>(lba >> 16);
        if (d.lba48) {
            d.hob_sector = static_cast<std::uint8_t>(lba >> 24);
            d.hob_lcyl = static_cast<std::uint8_t>(lba >> 32);
            d.hob_hcyl = static_cast<std::uint8_t>(lba >> 40);
        } else {
            d.select = static_cast<std::uint8_t>((d.select & 0xF0) | ((lba >> 24) & 0x0F));
        }
        return;
    }
    std::uint64_t per_cyl = d.heads * d.spt, cyl = lba / per_cyl, r = lba % per_cyl;
    d.hcyl = static_cast<std::uint8_t>(cyl >> 8);
    d.lcyl = static_cast<std::uint8_t>(cyl);
    d.select = static_cast<std::uint8_t>((d.select & 0xF0) | ((r / d.spt) & 0x0F));
    d.sector = static_cast<std::uint8_t>(r % d.spt + 1);
}

bool PiixIde::range_ok(const Drive& d, std::uint64_t lba, std::uint64_t n) const {
    std::uint64_t total = d.disk->sectors();
    return lba <= total && n <= total - lba;
}

bool PiixIde::cmd_identify(Channel& c, Drive& d, const CommandDesc&, std::uint64_t) {
    if (d.buf.size() < 512) d.buf.resize(512);
    identify(d, d.buf.data());
    d.status = ATA_DRDY | ATA_DSC;
    transfer_start(d, 512, Xfer::pio_in, AfterBlock::stop);
    raise_irq(c);  // PIO data-in: INTRQ with the block's DRQ
    return false;
}

bool PiixIde::cmd_read_pio(Channel& c, Drive& d, const CommandDesc& cmd, std::uint64_t now_ps) {
    lba48_transform(d, cmd.flags & kLba48);
    d.req_sectors = 1;
    pio_read_block(c, d, now_ps);
    return false;
}

bool PiixIde::cmd_read_multiple(Channel& c, Drive& d, const CommandDesc& cmd, std::uint64_t now_ps) {
    if (!d.mult_sectors) {
        abort_command(c, d, kMultipleOff);
        return true;
    }
    lba48_transform(d, cmd.flags & kLba48);
    d.req_sectors = d.mult_sectors;
    pio_read_block(c, d, now_ps);
    return false;
}

// PIO data-out: DRQ for the first block at once, without an interrupt.
bool PiixIde::cmd_write_pio(Channel&, Drive& d, const CommandDesc& cmd, std::uint64_t) {
    lba48_transform(d, cmd.flags & kLba48);
    d.req_sectors = 1;
    d.status = ATA_DRDY | ATA_DSC;
    transfer_start(d, kSectorSize, Xfer::pio_out, AfterBlock::write_block);
    return false;
}

bool PiixIde::cmd_write_multiple(Channel& c, Drive& d, const CommandDesc& cmd, std::uint64_t) {
    if (!d.mult_sectors) {
        abort_command(c, d, kMultipleOff);
        return true;
    }
    lba48_transform(d, cmd.flags & kLba48);
    d.req_sectors = d.mult_sectors;
    std::uint32_t n = std::min(d.nsector, d.req_sectors);
    d.status = ATA_DRDY | ATA_DSC;
    transfer_start(d, std::size_t{n} * kSectorSize, Xfer::pio_out, AfterBlock::write_block);
    return false;
}

// ATA8-ACS SET MULTIPLE MODE: 0 disables, otherwise a supported power of two (QEMU: up to 16).
bool PiixIde::cmd_set_multiple(Channel& c, Drive& d, const CommandDesc&, std::uint64_t) {
    unsigned v = d.nsector & 0xFF;
    if (v != 0 && (v > kMaxMultSectors || (v & (v - 1)) != 0))
        abort_command(c, d, kBadMultiple);
    else
        d.mult_sectors = v;
    return true;
}

bool PiixIde::cmd_read_dma(Channel& c, Drive& d, const CommandDesc& cmd, std::uint64_t now_ps) {
    lba48_transform(d, cmd.flags & kLba48);
    d.status = ATA_DRDY | ATA_DSC | ATA_DRQ;  // waiting for the bus master
    c.dma_armed = true;
    c.dma_to_device = false;
    if (c.bm_status & ATA_DMA_ACTIVE) dma_start(c, now_ps);
    return false;
}

bool PiixIde::cmd_write_dma(Channel& c, Drive& d, const CommandDesc& cmd, std::uint64_t now_ps) {
    lba48_transform(d, cmd.flags & kLba48);
    d.status = ATA_DRDY | ATA_DSC | ATA_DRQ;
    c.dma_armed = true;
    c.dma_to_device = true;
    if (c.bm_status & ATA_DMA_ACTIVE) dma_start(c, now_ps);
    return false;
}

// ATA8-ACS SET FEATURES; the subcommands QEMU accepts, with transfer modes checked against the
// modes IDENTIFY lists (PIO 0-4, single-word and multiword DMA 0-2, Ultra DMA 0-5).
bool PiixIde::cmd_set_features(Channel& c, Drive& d, const CommandDesc&, std::uint64_t) {
    static constexpr std::uint8_t kNoOps[] = {0xCC, 0x66, 0xAA, 0x55, 0x05, 0x85,
                                              0x69, 0x67, 0x96, 0x9A, 0x42, 0xC2};
    const bool cache = d.disk->config().write_cache;
    if (std::find(std::begin(kNoOps), std::end(kNoOps), d.feature) != std::end(kNoOps)) return true;
    if (d.feature == 0x02 && cache) return true;   // enable write cache: it is on
    if (d.feature == 0x82 && !cache) return true;  // disable write cache: it is off
    if (d.feature == 0x03) {
        unsigned kind = (d.nsector & 0xFF) >> 3, mode = d.nsector & 0x07;
        struct Mode {
            unsigned kind, max_mode;
            std::uint16_t w62, w63, w88;  // the word that selects gets 1 << (mode + 8)
            int select_word;              // 62, 63, 88 or 0 (PIO)
        };
        static constexpr Mode kModes[] = {
            {0x00, 1, 0x07, 0x07, 0x3F, 0},   // PIO default (mode 1: disable IORDY)
            {0x01, 4, 0x07, 0x07, 0x3F, 0},   // PIO flow control mode
            {0x02, 2, 0x07, 0x07, 0x3F, 62},  // single-word DMA (obsolete)
            {0x04, 2, 0x07, 0x07, 0x3F, 63},  // multiword DMA
            {0x08, 5, 0x07, 0x07, 0x3F, 88},  // Ultra DMA
        };
        for (const Mode& m : kModes) {
            if (m.kind != kind || mode > m.max_mode) continue;
            d.word62 = m.w62;
            d.word63 = m.w63;
            d.word88 = m.w88;
            std::uint16_t sel = static_cast<std::uint16_t>(1u << (mode + 8));
            if (m.select_word == 62) d.word62 |= sel;
            if (m.select_word == 63) d.word63 |= sel;
            if (m.select_word == 88) d.word88 |= sel;
            return true;
        }
    }
    abort_command(c, d, kBadFeature);
    return true;
}

bool PiixIde::cmd_flush(Channel& c, Drive& d, const CommandDesc&, std::uint64_t now_ps) {
    if (!d.disk) return true;  // QEMU ide_flush_cache with no backend: completes at once
    StorageRequest req{StorageOp::flush, 0, 0, next_request_id_++};
    Disk::Result r = d.disk->submit(req, now_ps, nullptr);
    if (!r.ok) {
        abort_command(c, d, kDiskRefused);
        return true;
    }
    defer(c, Pending::flush, r.complete_ps);
    return false;
}

// ---- PIO blocks (QEMU ide_sector_read / ide_sector_write and their callbacks) -------------------

void PiixIde::pio_read_block(Channel& c, Drive& d, std::uint64_t now_ps) {
    d.status = ATA_DRDY | ATA_DSC;
    d.error = 0;
    if (d.nsector == 0) {  // after the last block: no interrupt
        transfer_stop(d);
        return;
    }
    d.status |= ATA_BUSY;
    std::uint32_t n = std::min(d.nsector, d.req_sectors);
    std::uint64_t lba = get_sector(d);
    if (!range_ok(d, lba, n)) {
        abort_command(c, d, kOutOfRange);
        raise_irq(c);
        return;
    }
    if (d.buf.size() < std::size_t{n} * kSectorSize) d.buf.resize(std::size_t{n} * kSectorSize);
    StorageRequest req{StorageOp::read, lba, n, next_request_id_++};
    Disk::Result r = d.disk->submit(req, now_ps, d.buf.data());
    if (!r.ok) {
        abort_command(c, d, kDiskRefused);
        raise_irq(c);
        return;
    }
    c.pending_lba = lba;
    c.pending_sectors = n;
    defer(c, Pending::pio_read, r.complete_ps);
}

void PiixIde::pio_write_block(Channel& c, Drive& d, std::uint64_t now_ps) {
    d.status = ATA_DRDY | ATA_DSC | ATA_BUSY;
    std::uint32_t n = std::min(d.nsector, d.req_sectors);
    std::uint64_t lba = get_sector(d);
    if (!range_ok(d, lba, n)) {
        abort_command(c, d, kOutOfRange);
        raise_irq(c);
        return;
    }
    StorageRequest req{StorageOp::write, lba, n, next_request_id_++};
    Disk::Result r = d.disk->submit(req, now_ps, d.buf.data());
    if (!r.ok) {
        abort_command(c, d, kDiskRefused);
        raise_irq(c);
        return;
    }
    c.pending_lba = lba;
    c.pending_sectors = n;
    defer(c, Pending::pio_write, r.complete_ps);
}

// ---- DMA (QEMU ide_dma_cb, bmdma_prepare_buf, ide_dma_error) -----------------------------------

void PiixIde::dma_start(Channel& c, std::uint64_t now_ps) {
    Drive& d = active(c);
    c.dma_armed = false;
    const std::uint64_t n = d.nsector, limit = n * kSectorSize;

    // Walk the PRD table from where the bus master stands: every entry up to end-of-table or the
    // one-page fail-safe is consumed; only the first `limit` bytes are used.
    std::vector<DmaSegment>& sg = dma_sg_;
    sg.clear();
    std::uint64_t sg_bytes = 0, described = 0;
    for (bool last = false; !last && std::uint32_t(c.prd_cur - c.bm_prd) < kPrdTableFailSafe;) {
        std::uint8_t prd[8];
        if (!dma_(c.prd_cur, prd, sizeof prd, false)) {
            dma_fail(c, d, true, kPrdOutside);
            return;
        }
        c.prd_cur += 8;
        std::uint32_t addr = le32(prd), count = le32(prd + 4);
        std::uint32_t len = count & 0xFFFE;
        if (len == 0) len = 0x10000;
        last = count & ATA_PRD_EOT;
        auto take = static_cast<std::uint32_t>(std::min<std::uint64_t>(limit - sg_bytes, len));
        if (take) sg.push_back({addr, take});
        sg_bytes += take;
        described += len;
    }
    if (sg_bytes < limit) {
        // SFF-8038i: PRDs shorter than the transfer leave Interrupt and Active clear (an error
        // condition the host sees as a timeout); QEMU ends the drive's command without an error.
        d.status = ATA_DRDY | ATA_DSC;
        c.bm_status &= ~std::uint32_t{ATA_DMA_ACTIVE};
        c.stats.errors.inc(kPrdTooShort);
        return;
    }
    std::uint64_t lba = get_sector(d);
    if (!range_ok(d, lba, n)) {
        dma_fail(c, d, false, kOutOfRange);
        return;
    }
    d.status = ATA_DRDY | ATA_BUSY;
    // The staging buffer is kept between commands (no allocation or fill per request): every byte
    // is written before it is used, by the disk image for a read (DiskImage::read fills all it is
    // asked for) and by the PRD segments, which cover exactly `limit` bytes, for a write. One
    // larger than a 256-sector command is not kept (see release below).
    std::vector<std::uint8_t>& data = dma_buf_;
    data.resize(limit);
    struct Release {  // on every way out of this function
        std::vector<std::uint8_t>& buf;
        ~Release() {
            if (buf.capacity() > kKeptDmaBuffer) std::vector<std::uint8_t>().swap(buf);
        }
    } release{data};
    bool mem_fault = false;
    Disk::Result r;
    if (c.dma_to_device) {
        std::uint64_t off = 0;
        for (const DmaSegment& s : sg) {
            if (!dma_(s.addr, data.data() + off, s.len, false)) {
                dma_fail(c, d, true, kDmaOutside);
                return;
            }
            off += s.len;
        }
        r = d.disk->submit({StorageOp::write, lba, static_cast<std::uint32_t>(n), next_request_id_++}, now_ps,
                           data.data());
    } else {
        r = d.disk->submit({StorageOp::read, lba, static_cast<std::uint32_t>(n), next_request_id_++}, now_ps,
                           data.data());
        std::uint64_t off = 0;
        for (std::size_t i = 0; r.ok && i < sg.size() && !mem_fault; off += sg[i].len, ++i)
            mem_fault = !dma_(sg[i].addr, data.data() + off, sg[i].len, true);  // reported at completion
    }
    if (!r.ok) {
        dma_fail(c, d, false, kDiskRefused);
        return;
    }
    c.pending_lba = lba;
    c.pending_sectors = static_cast<std::uint32_t>(n);
    c.pending_mem_fault = mem_fault;
    c.pending_stay_active = described > limit;
    defer(c, Pending::dma, r.complete_ps);
}

void PiixIde::dma_fail(Channel& c, Drive& d, bool memory_fault, const char* reason) {
    abort_command(c, d, reason);
    if (memory_fault) c.bm_status |= ATA_DMA_ERR;
    c.bm_status &= ~std::uint32_t{ATA_DMA_ACTIVE};
    c.dma_armed = false;
    raise_irq(c);
}

// ---- Completion --------------------------------------------------------------------------------

void PiixIde::finish(Channel& c) {
    Pending what = c.pending;
    c.pending = Pending::none;
    Drive& d = active(c);
    const std::uint32_t n = c.pending_sectors;
    const std::uint64_t bytes = std::uint64_t{n} * kSectorSize;
    if (what == Pending::pio_read) {
        // PIO data-in: the block is ready; INTRQ with DRQ.
        d.status &= static_cast<std::uint8_t>(~ATA_BUSY);
        set_sector(d, c.pending_lba + n);
        d.nsector -= n;
        transfer_start(d, bytes, Xfer::pio_in, AfterBlock::read_next);
        c.stats.bytes_read.inc(bytes);
        raise_irq(c);
    } else if (what == Pending::pio_write) {
        // PIO data-out: INTRQ after each block, with DRQ for the next one or without after the last.
        d.status &= static_cast<std::uint8_t>(~ATA_BUSY);
        d.nsector -= n;
        set_sector(d, c.pending_lba + n);
        c.stats.bytes_written.inc(bytes);
        if (d.nsector == 0)
            transfer_stop(d);
        else
            transfer_start(d, std::size_t{std::min(d.nsector, d.req_sectors)} * kSectorSize, Xfer::pio_out,
                           AfterBlock::write_block);
        raise_irq(c);
    } else if (what == Pending::dma) {
        if (c.pending_mem_fault) {
            dma_fail(c, d, true, kDmaOutside);
            return;
        }
        set_sector(d, c.pending_lba + n);
        d.nsector -= n;
        d.status = ATA_DRDY | ATA_DSC;
        (c.dma_to_device ? c.stats.bytes_written : c.stats.bytes_read).inc(bytes);
        c.stats.dma_transfers.inc();
        raise_irq(c);
        if (!c.pending_stay_active) c.bm_status &= ~std::uint32_t{ATA_DMA_ACTIVE};
    } else if (what == Pending::flush) {
        d.status = ATA_DRDY | ATA_DSC;
        raise_irq(c);
    }
}

// ---- IDENTIFY DEVICE data (ATA8-ACS; QEMU ide_identify for the values it chooses) ---------------

void PiixIde::identify(const Drive& d, std::uint8_t out[512]) const {
    std::uint16_t w[256] = {};
    const std::uint64_t total = d.disk->sectors();
    const bool cache = d.disk->config().write_cache;
    char serial[32];
    std::snprintf(serial, sizeof serial, "%s%05u", cfg_.serial_prefix.c_str(), d.index + 1);

    w[0] = 0x0040;  // fixed (non-removable) ATA device
    w[1] = static_cast<std::uint16_t>(d.cylinders);
    w[3] = static_cast<std::uint16_t>(d.heads);
    w[6] = static_cast<std::uint16_t>(d.spt);
    put_string(w, 10, 10, serial);
    put_string(w, 23, 4, cfg_.firmware);
    put_string(w, 27, 20, cfg_.model);
    w[47] = 0x8000 | kMaxMultSectors;            // 80h, maximum sectors per READ/WRITE MULTIPLE
    w[49] = (1u << 11) | (1u << 9) | (1u << 8);  // IORDY, LBA, DMA supported
    w[50] = 0x4000;                              // bit 14 shall be one
    w[53] = 0x0007;                              // words 54-58, 64-70 and 88 valid
    w[54] = w[1];
    w[55] = w[3];
    w[56] = w[6];
    std::uint32_t chs = static_cast<std::uint32_t>(d.cylinders * d.heads * d.spt);
    w[57] = static_cast<std::uint16_t>(chs);
    w[58] = static_cast<std::uint16_t>(chs >> 16);
    w[59] = static_cast<std::uint16_t>(0x0100 | d.mult_sectors);       // multiple setting valid + current
    std::uint64_t lba28 = std::min<std::uint64_t>(total, 0x0FFFFFFF);  // 0FFFFFFFh when larger
    w[60] = static_cast<std::uint16_t>(lba28);
    w[61] = static_cast<std::uint16_t>(lba28 >> 16);
    w[62] = d.word62;
    w[63] = d.word63;                     // multiword DMA 0-2 supported, bits 10:8 selected
    w[64] = 0x0003;                       // PIO 3 and 4 supported
    w[65] = w[66] = w[67] = w[68] = 120;  // cycle times, ns
    w[80] = 0x01F0;                       // major version: ATA/ATAPI-4 to ATA8-ACS
    w[82] = static_cast<std::uint16_t>((1u << 14) | (cache ? 1u << 5 : 0));  // NOP, write cache
    w[83] = (1u << 14) | (1u << 13) | (1u << 12) | (1u << 10);               // FLUSH CACHE (EXT), 48-bit
    w[84] = 1u << 14;
    w[85] = static_cast<std::uint16_t>((1u << 14) | (cache ? 1u << 5 : 0));
    w[86] = (1u << 13) | (1u << 12) | (1u << 10);
    w[87] = 1u << 14;
    w[88] = d.word88;  // Ultra DMA 0-5 supported, bits 13:8 selected
    w[93] = 0x6001;    // hardware reset result (QEMU's value)
    for (unsigned i = 0; i < 4; ++i) w[100 + i] = static_cast<std::uint16_t>(total >> (16 * i));
    // Word 255: A5h signature and a checksum making the 512 bytes sum to 0 mod 256.
    unsigned sum = 0xA5;
    for (unsigned i = 0; i < 255; ++i) sum += (w[i] & 0xFF) + (w[i] >> 8);
    w[255] = static_cast<std::uint16_t>(((0x100 - (sum & 0xFF)) & 0xFF) << 8 | 0xA5);
    for (unsigned i = 0; i < 256; ++i) {
        out[2 * i] = static_cast<std::uint8_t>(w[i]);
        out[2 * i + 1] = static_cast<std::uint8_t>(w[i] >> 8);
    }
}

}  // namespace xensim
