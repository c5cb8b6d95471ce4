#include "frontends/ata_piix.h"

#include <algorithm>
#include <cstring>

namespace xensim {

namespace {

// ATA status bits and registers (include/linux/ata.h), bus-master bits (SFF-8038i).
constexpr std::uint8_t kBsy = 0x80, kDrdy = 0x40, kDf = 0x20, kDrq = 0x08, kErr = 0x01;
constexpr std::uint8_t kBmStart = 0x01, kBmToMemory = 0x08, kBmError = 0x02, kBmIntr = 0x04;
constexpr unsigned kData = 0, kFeature = 1, kCount = 2, kLbaLow = 3, kLbaMid = 4, kLbaHigh = 5, kDevice = 6,
                   kStatusCmd = 7;
constexpr std::uint8_t kIdentify = 0xec, kReadDma = 0xc8, kWriteDma = 0xca, kReadDmaExt = 0x25,
                       kWriteDmaExt = 0x35, kFlushCache = 0xe7, kFlushCacheExt = 0xea, kSetMultiple = 0xc6;
constexpr unsigned kSector = 512, kSectorsPerPage = 4096 / kSector;

// The PIO opcodes by {multiple, LBA48, write}: libata-core.c's ata_rw_cmds table (core:546-574)
// as ata_rwcmd_protocol indexes it for a device with ATA_DFLAG_PIO (core:587-611).
struct PioCommand {
    std::uint8_t opcode;
    const char* name;  // ATA8-ACS
};
constexpr PioCommand kPioCommands[2][2][2] = {
    {{{0x20, "READ SECTORS"}, {0x30, "WRITE SECTORS"}},
     {{0x24, "READ SECTORS EXT"}, {0x34, "WRITE SECTORS EXT"}}},
    {{{0xc4, "READ MULTIPLE"}, {0xc5, "WRITE MULTIPLE"}},
     {{0x29, "READ MULTIPLE EXT"}, {0x39, "WRITE MULTIPLE EXT"}}},
};
constexpr std::uint8_t kNien = 0x02, kCtlDefault = 0x08;
constexpr std::uint64_t kLba28Limit = (1ull << 28) - 1;
// The request queue's limits as libata and sd set them for ata_piix (include/linux/libata.h
// ATA_BMDMA_SHT: sg_tablesize LIBATA_MAX_PRD = ATA_MAX_PRD / 2 = 128 segments; libata-core.c
// ata_dev_configure: dev->max_sectors ATA_MAX_SECTORS 256, or ATA_MAX_SECTORS_LBA48 65535 for an
// LBA48 device, and libata-scsi.c ata_scsi_dev_config: blk_queue_max_hw_sectors of it; sd.c
// sd_revalidate_disk: max_sectors = min(BLK_DEF_MAX_SECTORS 2560, max_hw_sectors), libata's Block
// Limits VPD page giving no transfer length of its own).
constexpr unsigned kMaxSegments = 128;
constexpr std::uint32_t kMaxSectorsLba28 = 256, kMaxSectorsLba48 = 2560;

// IDENTIFY words as include/linux/ata.h reads them: word 83 (command set 2) and word 87 (command set
// default) count only when their bits 15:14 are 01b.
bool id_valid(std::uint16_t w) { return (w & 0xc000) == 0x4000; }
bool id_has_lba48(const std::uint16_t* id) {  // ata_id_has_lba48
    const std::uint64_t cap = id[100] | (std::uint64_t{id[101]} << 16) | (std::uint64_t{id[102]} << 32) |
                              (std::uint64_t{id[103]} << 48);
    return id_valid(id[83]) && cap && (id[83] & (1u << 10));
}
bool id_has_flush_ext(const std::uint16_t* id) { return id_valid(id[83]) && (id[83] & (1u << 13)); }
bool id_wcache_enabled(const std::uint16_t* id) { return id_valid(id[87]) && (id[85] & (1u << 5)); }

bool power_of_two(unsigned v) { return v && !(v & (v - 1)); }

}  // namespace

AtaPiix::Stats::Stats(StatsGroup& g)
    : commands(g, "commands", "commands", "ATA commands issued, by name"),
      interrupts(g, "interrupts", "interrupts", "IRQ 14/15 handler invocations"),
      spurious_interrupts(
          g, "spurious_interrupts", "interrupts",
          "interrupts not for the driver: no command, BM Interrupt clear (DMA) or device busy (PIO)"),
      errors(g, "errors", "commands", "commands completed with an error"),
      pio_blocks(g, "pio_blocks", "blocks", "PIO DRQ blocks moved (ata_pio_sectors calls)"),
      interrupts_held(g, "interrupts_held", "interrupts",
                      "interrupts that arrived while a command was being issued, taken after it"),
      requests(g, "requests", "requests",
               "block-layer requests handed to the driver (an I/O or a flush); one may take several "
               "commands") {}

AtaPiix::AtaPiix(const AtaPiixParams& params, StatsGroup& parent)
    : p_(params),
      cmd_base_(params.channel ? 0x170 : 0x1f0),
      ctl_(params.channel ? 0x376 : 0x3f6),
      bm_(0),  // known once the host's probe has taken BAR4
      group_("ata" + std::to_string(params.channel) + "_" + std::to_string(params.drive), &parent),
      stats_(group_),
      pio_(params.pio) {}

std::uint8_t AtaPiix::wait_idle(GuestServices& s) {
    std::uint8_t st;
    unsigned tries = 0;
    do {
        st = static_cast<std::uint8_t>(s.in(cmd(kStatusCmd), 1));  // ata_sff_busy_wait
    } while ((st & (kBsy | kDrq)) && ++tries < 1000);
    return st;
}

// ata_sff_dev_select with wait: status, device, the alt-status pause, status (sff:343-354).
void AtaPiix::select(GuestServices& s) {
    wait_idle(s);
    s.out(cmd(kDevice), 1, 0xa0 | (p_.drive << 4));
    s.in(ctl_, 1);
    wait_idle(s);
}

// ata_sff_tf_load (sff:399-431): HOB bytes first for LBA48, then the low bytes, the device
// register (ATA_TFLAG_DEVICE) and the closing idle wait.
void AtaPiix::load_taskfile(GuestServices& s, std::uint64_t lba, std::uint32_t count, bool lba48) {
    if (lba48) {
        s.out(cmd(kFeature), 1, 0);
        s.out(cmd(kCount), 1, (count >> 8) & 0xff);
        s.out(cmd(kLbaLow), 1, (lba >> 24) & 0xff);
        s.out(cmd(kLbaMid), 1, (lba >> 32) & 0xff);
        s.out(cmd(kLbaHigh), 1, (lba >> 40) & 0xff);
    }
    s.out(cmd(kFeature), 1, 0);
    s.out(cmd(kCount), 1, count & 0xff);
    s.out(cmd(kLbaLow), 1, lba & 0xff);
    s.out(cmd(kLbaMid), 1, (lba >> 8) & 0xff);
    s.out(cmd(kLbaHigh), 1, (lba >> 16) & 0xff);
    s.out(cmd(kDevice), 1, 0xe0 | (p_.drive << 4) | (lba48 ? 0 : (lba >> 24) & 0x0f));
    wait_idle(s);
}

// IDENTIFY DEVICE, polled with nIEN set (libata's probe is interrupt driven; polling keeps the
// probe out of the interrupt path this driver models): 11 accesses.
bool AtaPiix::identify(GuestServices& s, std::uint16_t id[256]) {
    s.out(ctl_, 1, kCtlDefault | kNien);
    select(s);
    s.out(cmd(kStatusCmd), 1, kIdentify);
    s.in(ctl_, 1);
    std::uint8_t st;
    unsigned tries = 0;
    do {  // ata_sff_busy_wait for BSY only: DRQ is what we wait for
        st = static_cast<std::uint8_t>(s.in(cmd(kStatusCmd), 1));
    } while ((st & kBsy) && ++tries < 1000);
    if (!(st & kDrq) || (st & kErr)) {
        s.out(ctl_, 1, kCtlDefault);
        return false;
    }
    // ata_sff_data_xfer32: one rep insl of 128 dwords into the guest's buffer (libata's dev->id)
    if (!s.ins(cmd(kData), 4, id_gfn_ << 12, 128)) return false;
    std::memcpy(id, s.page(id_gfn_), 512);
    wait_idle(s);
    s.out(ctl_, 1, kCtlDefault);
    stats_.commands.inc("IDENTIFY");
    return true;
}

// SET MULTIPLE MODE (ATA8-ACS: Sector Count = sectors per block, 0 disables), non-data and polled
// with nIEN set like the probe: control, select (4), task file (7), command, pause, status,
// control. A drive that aborts it keeps its setting, which the following IDENTIFY shows.
void AtaPiix::set_multiple(GuestServices& s, unsigned count) {
    s.out(ctl_, 1, kCtlDefault | kNien);
    select(s);
    load_taskfile(s, 0, count, false);
    s.out(cmd(kStatusCmd), 1, kSetMultiple);
    s.in(ctl_, 1);
    wait_idle(s);
    s.out(ctl_, 1, kCtlDefault);
    stats_.commands.inc("SET MULTIPLE MODE");
}

bool AtaPiix::connect(XenbusClient&, GuestServices& s, unsigned) {
    // ata_piix must have bound the controller, with this channel enabled and a bus master (BAR4;
    // libata would run a controller without one in PIO with no BM Status accesses, not modelled).
    AtaPiixHost* host = p_.host;
    if (!host || !host->probed() || !host->port_enabled(p_.channel) || !host->bmdma_addr(p_.channel))
        return false;
    bm_ = host->bmdma_addr(p_.channel);
    // The PRD table: one page, reachable by the 32-bit PRD pointer.
    auto prd = s.alloc_page();
    if (!prd || (*prd << 12) >> 32) return false;
    prd_gfn_ = *prd;
    auto id_page = s.alloc_page();  // IDENTIFY's data, as libata's dev->id
    if (!id_page) return false;
    id_gfn_ = *id_page;
    s.set_irq_handler(static_cast<std::uint8_t>(kIsaVectorBase + 14 + p_.channel),
                      [this, &s] { irq_entry(s); });
    std::uint16_t id[256];
    if (!identify(s, id)) return false;  // no device, or it aborted IDENTIFY
    // ata_dev_configure, then ata_set_mode: the transfer modes and the controller's timings.
    PciConf1 conf(s);
    modes_ = host->set_mode(conf, p_.channel, p_.drive, id, !p_.pio);
    if (modes_.pio == AtaPiixHost::kNoMode) return false;
    pio_ = modes_.dma == AtaPiixHost::kNoMode;
    if (p_.set_multiple >= 0) {
        // hdparm -m N at boot: SET MULTIPLE MODE, after which libata revalidates the device
        // (ata_qc_complete schedules ATA_EH_REVALIDATE for ATA_CMD_SET_MULTI), re-reading IDENTIFY.
        set_multiple(s, static_cast<unsigned>(p_.set_multiple));
        if (!identify(s, id)) return false;
    }
    lba48_ = id_has_lba48(id);
    const std::uint64_t lba28 = id[60] | (std::uint64_t{id[61]} << 16);
    const std::uint64_t lba48 = id[100] | (std::uint64_t{id[101]} << 16) | (std::uint64_t{id[102]} << 32) |
                                (std::uint64_t{id[103]} << 48);
    sectors_ = lba48_ ? lba48 : lba28;
    // ata_dev_config_lba (core:2468-2473): FLUSH CACHE EXT only for an LBA48 device of 2^28 sectors
    // or more that reports it; every smaller disk gets FLUSH CACHE (ata_scsi_flush_xlat, scsi:1353).
    flush_ext_ = lba48_ && sectors_ >= (1ull << 28) && id_has_flush_ext(id);
    // The queue's volatile write cache: libata's MODE SENSE caching page reports WCE from
    // ata_id_wcache_enabled (scsi:2348), sd_set_flush_flag turns it into blk_queue_write_cache
    // (sd.c:134-145; no FUA: ATA_DFLAG_FUA needs NCQ, core:2516-2536).
    wcache_ = id_wcache_enabled(id);
    // ata_dev_configure's multiple count (core:2805-2814): the current setting when word 47 carries
    // its 80h signature and word 59 marks it valid, both powers of two, current <= maximum.
    multi_count_ = 0;
    if ((id[47] >> 8) == 0x80 && (id[59] & 0x100)) {
        const unsigned max = id[47] & 0xff, cnt = id[59] & 0xff;
        if (power_of_two(max) && power_of_two(cnt) && cnt <= max) multi_count_ = cnt;
    }
    connected_ = sectors_ > 0;
    return connected_;
}

bool AtaPiix::submit(GuestServices& s, unsigned, const BlockIo& io) {
    if (!connected_ || active_) return false;  // one command at a time per channel
    // A request the block layer would fail before any command: a discard (the disk offers none:
    // submit_bio_noacct's -EOPNOTSUPP), no data, a buffer too small for it, or a range past the end
    // of the disk (bio_check_eod). It completes at once with an error; nothing is touched.
    const bool rw = io.op == BlockOp::read || io.op == BlockOp::write;
    if (!(io.op == BlockOp::flush ||
          (rw && io.sectors && io.pages.size() * std::uint64_t{kSectorsPerPage} >= io.sectors &&
           io.sector < sectors_ && io.sectors <= sectors_ - io.sector))) {
        if (on_complete) on_complete(s, io.id, BLKIF_RSP_ERROR);
        return true;
    }
    stats_.requests.inc();
    req_id_ = io.id;
    req_op_ = io.op;
    req_sector_ = io.sector;
    req_sectors_ = io.sectors;
    req_done_ = 0;
    req_pages_.assign(io.pages.begin(), io.pages.end());
    active_ = true;
    issue_next(s);
    return true;
}

// The request's next command. A flush is one non-data command. A READ or WRITE is cut at the
// queue's limits, as the block layer's bio_split_to_limits (block/blk-merge.c) cuts a bio before
// libata sees it: at most max_sectors (256 sectors, 2560 with LBA48) and kMaxSegments segments,
// one segment per 4 KiB buffer page (a user buffer's pages are not assumed physically contiguous),
// so 512 KiB per command on an LBA48 disk and 128 KiB on an LBA28 one. Each piece starts on a page
// of the request's buffer; the block layer's plug issues them in order, one ATA command each.
void AtaPiix::issue_next(GuestServices& s) {
    s.compute(s.costs().blkfront_request);  // the block layer and libata's qc set-up, per request sent
    if (req_op_ == BlockOp::flush) {
        issue_flush(s);
        return;
    }
    const std::uint32_t max_sectors =
        std::min<std::uint32_t>(lba48_ ? kMaxSectorsLba48 : kMaxSectorsLba28, kMaxSegments * kSectorsPerPage);
    const std::uint32_t n = std::min(req_sectors_ - req_done_, max_sectors);
    piece_sectors_ = n;
    const std::uint64_t sector = req_sector_ + req_done_;
    const std::size_t first_page = req_done_ / kSectorsPerPage;  // pieces before this one are whole pages
    const bool read = req_op_ == BlockOp::read;
    const bool need48 = sector + n >= kLba28Limit || n > 256;
    if (need48 && !lba48_) {
        finish(s, BLKIF_RSP_ERROR);  // ata_build_rw_tf: -ERANGE
        return;
    }
    if (pio_) {
        submit_pio(s, sector, n, first_page, read, need48);
        return;
    }
    // ata_bmdma_qc_prep -> ata_bmdma_fill_sg: one PRD per segment (here per page), end-of-table on
    // the last. A piece has at most kMaxSegments entries of 8 bytes: half the 4 KiB table page
    // (ATA_PRD_TBL_SZ is 256 entries, libata keeps half for segments split at a 64 KiB boundary).
    auto* prd = reinterpret_cast<std::uint32_t*>(s.page(prd_gfn_));
    std::uint32_t left = n * kSector;
    for (std::size_t i = 0; left; ++i) {
        const std::uint32_t len = left < 4096 ? left : 4096;
        left -= len;
        prd[2 * i] = static_cast<std::uint32_t>(req_pages_[first_page + i] << 12);
        prd[2 * i + 1] = (len & 0xffff) | (left ? 0 : 0x80000000u);
    }
    active_dma_ = true;
    stats_.commands.inc(need48 ? (read ? "READ DMA EXT" : "WRITE DMA EXT")
                               : (read ? "READ DMA" : "WRITE DMA"));
    select(s);
    load_taskfile(s, sector, n == 65536 ? 0 : n, need48);
    // ata_bmdma_setup (sff:2949-2967).
    s.out(static_cast<std::uint16_t>(bm_ + 4), 4, static_cast<std::uint32_t>(prd_gfn_ << 12));
    std::uint8_t bm = static_cast<std::uint8_t>(s.in(bm_, 1));
    bm &= static_cast<std::uint8_t>(~(kBmToMemory | kBmStart));
    if (read) bm |= kBmToMemory;
    s.out(bm_, 1, bm);
    s.out(cmd(kStatusCmd), 1, need48 ? (read ? kReadDmaExt : kWriteDmaExt) : (read ? kReadDma : kWriteDma));
    s.in(ctl_, 1);
    // ata_bmdma_start (sff:2978-2985).
    bm = static_cast<std::uint8_t>(s.in(bm_, 1));
    s.out(bm_, 1, bm | kBmStart);
}

// FLUSH CACHE (EXT) as ata_scsi_flush_xlat builds it (scsi:1346-1362): ATA_PROT_NODATA with only
// ATA_TFLAG_DEVICE set, so ata_sff_tf_load (sff:399-431) writes the Device register alone (tf->device
// from ata_tf_init: 0xA0, 0xB0 for device 1; libata.h:1802-1805) and waits idle; then
// ata_sff_exec_command. Issue 8 accesses, interrupt 4: 12 (docs/ide-register-sequence.md §4).
void AtaPiix::issue_flush(GuestServices& s) {
    active_dma_ = false;
    piece_sectors_ = 0;
    stats_.commands.inc(flush_ext_ ? "FLUSH CACHE EXT" : "FLUSH CACHE");
    select(s);
    s.out(cmd(kDevice), 1, 0xa0 | (p_.drive << 4));
    wait_idle(s);
    s.out(cmd(kStatusCmd), 1, flush_ext_ ? kFlushCacheExt : kFlushCache);
    s.in(ctl_, 1);
}

void AtaPiix::irq_entry(GuestServices& s) {
    if (irq_held_) {
        // Taken while this CPU had interrupts off for an issue: the vector stays in service (no
        // EOI yet) and the handler runs when the issue ends, as the CPU would deliver it then.
        irq_deferred_ = true;
        stats_.interrupts_held.inc();
        return;
    }
    interrupt(s);
}

void AtaPiix::release_irq(GuestServices& s) {
    while (irq_deferred_) {
        irq_deferred_ = false;
        interrupt(s);
    }
    irq_held_ = false;
}

void AtaPiix::interrupt(GuestServices& s) {
    stats_.interrupts.inc();
    s.eoi();  // handle_edge_irq acknowledges before the handler runs
    if (!active_) {
        stats_.spurious_interrupts.inc();
        s.in(cmd(kStatusCmd), 1);  // clear INTRQ
        return;
    }
    if (!active_dma_ && hsm_ != Hsm::idle) {
        interrupt_pio(s);
        return;
    }
    std::int16_t status = BLKIF_RSP_OKAY;
    if (active_dma_) {
        // ata_bmdma_port_intr (sff:2781-2803): not ours unless the BM interrupt bit is set.
        const auto bmst = static_cast<std::uint8_t>(s.in(static_cast<std::uint16_t>(bm_ + 2), 1));
        if (!(bmst & kBmIntr)) {
            stats_.spurious_interrupts.inc();
            return;
        }
        const auto bm = static_cast<std::uint8_t>(s.in(bm_, 1));  // ata_bmdma_stop
        s.out(bm_, 1, bm & ~kBmStart);
        s.in(ctl_, 1);  // ata_sff_dma_pause
        if (bmst & kBmError) status = BLKIF_RSP_ERROR;
    }
    s.in(ctl_, 1);  // ata_sff_irq_status: alternate status
    const auto st = static_cast<std::uint8_t>(s.in(cmd(kStatusCmd), 1));  // clears INTRQ
    const auto bmst2 = static_cast<std::uint8_t>(s.in(static_cast<std::uint16_t>(bm_ + 2), 1));  // irq_clear
    s.out(static_cast<std::uint16_t>(bm_ + 2), 1, bmst2);
    if ((st & (kBsy | kDrdy | kDf | kDrq | kErr)) != kDrdy) status = BLKIF_RSP_ERROR;  // ata_ok
    finish(s, status);
}

// ---- PIO (docs/ide-register-sequence.md §2) ----------------------------------------------------

// ata_bmdma_qc_issue hands a PIO taskfile to ata_sff_qc_issue (sff:2725-2726 -> sff:1349): device
// select, ata_tf_to_host (tf_load, then exec_command: the opcode and the alt-status pause). A read
// then waits for the device's interrupt in HSM_ST; a write sets HSM_ST_FIRST and queues
// ata_sff_pio_task with no delay to send the first block (sff:1383-1401).
void AtaPiix::submit_pio(GuestServices& s, std::uint64_t sector, std::uint32_t n, std::size_t first_page,
                         bool read, bool lba48) {
    const PioCommand& c = kPioCommands[multi_count_ ? 1 : 0][lba48 ? 1 : 0][read ? 0 : 1];
    stats_.commands.inc(c.name);
    active_dma_ = false;
    pio_write_ = !read;
    pio_first_page_ = first_page;
    pio_total_ = n;
    pio_done_ = 0;
    hold_irq();  // ata_scsi_queuecmd holds ap->lock with interrupts off around ata_qc_issue
    select(s);
    load_taskfile(s, sector, n == 65536 ? 0 : n, lba48);
    s.out(cmd(kStatusCmd), 1, c.opcode);
    s.in(ctl_, 1);
    hsm_ = read ? Hsm::st : Hsm::first;
    if (!read) pio_task(s);  // the work item runs once the issuing context lets go of the CPU
    release_irq(s);
}

// ata_sff_pio_task (sff:1277-1330) for a PIO write's first block: ata_sff_busy_wait(ATA_BUSY, 5),
// then ata_sff_hsm_move in HSM_ST_FIRST (sff:1003-1069): DRQ must be set and ERR/DF clear; the
// state becomes HSM_ST and the block goes out; the interrupt handler takes over from there.
void AtaPiix::pio_task(GuestServices& s) {
    std::uint8_t st;
    unsigned tries = 0;
    do {
        st = static_cast<std::uint8_t>(s.in(cmd(kStatusCmd), 1));
    } while (st != 0xff && (st & kBsy) && ++tries < 5);
    if ((st & kBsy) || !(st & kDrq) || (st & (kErr | kDf))) {
        finish(s, BLKIF_RSP_ERROR);  // libata: msleep and requeue while BSY, else an HSM error
        return;
    }
    hsm_ = Hsm::st;
    pio_sectors(s);
}

// ata_pio_sectors (sff:717-733): one DRQ block, a sector per string instruction (ata_pio_sector,
// sff:657-705, through ata_sff_data_xfer32: rep insl / rep outsl of 128 dwords, sff:587-603),
// HSM_ST_LAST set before the request's last sector moves, then the alt-status flush.
void AtaPiix::pio_sectors(GuestServices& s) {
    const std::uint32_t left = pio_total_ - pio_done_;
    const std::uint32_t n = multi_count_ ? std::min<std::uint32_t>(left, multi_count_) : 1;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (pio_done_ == pio_total_ - 1) hsm_ = Hsm::last;
        const std::uint64_t gpa = (req_pages_[pio_first_page_ + pio_done_ / kSectorsPerPage] << 12) +
                                  (pio_done_ % kSectorsPerPage) * kSector;
        if (!(pio_write_ ? s.outs(cmd(kData), 4, gpa, kSector / 4)
                         : s.ins(cmd(kData), 4, gpa, kSector / 4))) {
            finish(s, BLKIF_RSP_ERROR);  // the string faulted (#GP): the buffer is not RAM
            return;
        }
        ++pio_done_;
    }
    s.in(ctl_, 1);  // ata_sff_sync
    stats_.pio_blocks.inc();
}

// ata_bmdma_port_intr for a PIO command (no BM status check or stop outside DMA, sff:2789) ->
// __ata_sff_port_intr (sff:1465-1510) -> ata_sff_hsm_move.
void AtaPiix::interrupt_pio(GuestServices& s) {
    if (hsm_ == Hsm::first) {              // the device does not interrupt before the first data-out block
        stats_.spurious_interrupts.inc();  // ata_sff_idle_irq: no access
        return;
    }
    const auto alt = static_cast<std::uint8_t>(s.in(ctl_, 1));  // ata_sff_irq_status (sff:116-124)
    if (alt & kBsy) {                                           // "not us: we are busy"
        stats_.spurious_interrupts.inc();
        return;
    }
    auto st = static_cast<std::uint8_t>(s.in(cmd(kStatusCmd), 1));  // clears INTRQ
    const auto bmst = static_cast<std::uint8_t>(s.in(static_cast<std::uint16_t>(bm_ + 2), 1));
    s.out(static_cast<std::uint16_t>(bm_ + 2), 1, bmst);  // ata_bmdma_irq_clear (sff:2938)
    if (hsm_ == Hsm::st) {
        // HSM_ST (sff:1130-1191): the device wants a data block.
        if (!(st & kDrq) || (st & (kErr | kDf))) {
            finish(s, BLKIF_RSP_ERROR);
            return;
        }
        pio_sectors(s);
        if (hsm_ != Hsm::last || pio_write_) return;  // the next interrupt carries on
        st = wait_idle(s);  // a read's data is all in: ata_wait_idle, then HSM_ST_LAST (sff:1183-1186)
    }
    // HSM_ST_LAST (sff:1193-1210): ata_ok, exactly DRDY among BSY, DRDY, DF, DRQ and ERR.
    finish(s, (st & (kBsy | kDrdy | kDf | kDrq | kErr)) == kDrdy ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR);
}

// A command ended. The request goes on with its next piece (issued from the completion, as the
// block layer dispatches the next request when one ends) or completes: after its last piece, or at
// the first piece that failed.
void AtaPiix::finish(GuestServices& s, std::int16_t status) {
    if (status != BLKIF_RSP_OKAY) stats_.errors.inc();
    hsm_ = Hsm::idle;
    active_dma_ = false;
    req_done_ += piece_sectors_;
    if (status == BLKIF_RSP_OKAY && req_op_ != BlockOp::flush && req_done_ < req_sectors_) {
        issue_next(s);
        return;
    }
    active_ = false;
    if (on_complete) on_complete(s, req_id_, status);
}

}  // namespace xensim
