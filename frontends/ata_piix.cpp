#include "frontends/ata_piix.h"

#include <cstring>

namespace xensim {

namespace {

// ATA status bits and registers (include/linux/ata.h), bus-master bits (SFF-8038i).
constexpr std::uint8_t kBsy = 0x80, kDrdy = 0x40, kDf = 0x20, kDrq = 0x08, kErr = 0x01;
constexpr std::uint8_t kBmStart = 0x01, kBmToMemory = 0x08, kBmError = 0x02, kBmIntr = 0x04;
constexpr unsigned kData = 0, kFeature = 1, kCount = 2, kLbaLow = 3, kLbaMid = 4, kLbaHigh = 5, kDevice = 6,
                   kStatusCmd = 7;
constexpr std::uint8_t kIdentify = 0xec, kReadDma = 0xc8, kWriteDma = 0xca, kReadDmaExt = 0x25,
                       kWriteDmaExt = 0x35, kFlushCache = 0xe7;
constexpr std::uint8_t kNien = 0x02, kCtlDefault = 0x08;
constexpr std::uint64_t kLba28Limit = (1ull << 28) - 1;

}  // namespace

AtaPiix::Stats::Stats(StatsGroup& g)
    : commands(g, "commands", "commands", "ATA commands issued, by name"),
      interrupts(g, "interrupts", "interrupts", "IRQ 14/15 handler invocations"),
      spurious_interrupts(g, "spurious_interrupts", "interrupts", "interrupts with no DMA interrupt pending"),
      errors(g, "errors", "commands", "commands completed with an error") {}

AtaPiix::AtaPiix(const AtaPiixParams& params, StatsGroup& parent)
    : p_(params),
      cmd_base_(params.channel ? 0x170 : 0x1f0),
      ctl_(params.channel ? 0x376 : 0x3f6),
      bm_(static_cast<std::uint16_t>(params.bmdma_base + 8 * params.channel)),
      group_("ata" + std::to_string(params.channel) + "_" + std::to_string(params.drive), &parent),
      stats_(group_) {}

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

bool AtaPiix::connect(XenbusClient&, GuestServices& s, unsigned) {
    // The PRD table: one page, reachable by the 32-bit PRD pointer.
    auto prd = s.alloc_page();
    if (!prd || (*prd << 12) >> 32) return false;
    prd_gfn_ = *prd;
    s.set_irq_handler(static_cast<std::uint8_t>(kIsaVectorBase + 14 + p_.channel),
                      [this, &s] { interrupt(s); });
    // IDENTIFY DEVICE, polled with nIEN set (libata's probe is interrupt driven; polling keeps the
    // probe out of the interrupt path this driver models).
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
        return false;  // no device, or it aborted IDENTIFY
    }
    std::uint16_t id[256];
    s.ins(cmd(kData), 4, id, 128);  // ata_sff_data_xfer32: one rep insl of 128 dwords
    wait_idle(s);
    s.out(ctl_, 1, kCtlDefault);
    stats_.commands.inc("IDENTIFY");
    lba48_ = (id[83] & (1u << 10)) != 0;
    const std::uint64_t lba28 = id[60] | (std::uint64_t{id[61]} << 16);
    const std::uint64_t lba48 = id[100] | (std::uint64_t{id[101]} << 16) | (std::uint64_t{id[102]} << 32) |
                                (std::uint64_t{id[103]} << 48);
    sectors_ = lba48_ && lba48 ? lba48 : lba28;
    connected_ = sectors_ > 0;
    return connected_;
}

bool AtaPiix::submit(GuestServices& s, unsigned, const BlockIo& io) {
    if (!connected_ || active_) return false;  // one command at a time per channel
    s.compute(s.costs().blkfront_request);     // the block layer and libata's qc set-up
    active_ = true;
    active_id_ = io.id;
    if (io.op == BlockOp::flush) {
        active_dma_ = false;
        stats_.commands.inc("FLUSH CACHE");
        select(s);
        load_taskfile(s, 0, 0, false);
        s.out(cmd(kStatusCmd), 1, kFlushCache);
        s.in(ctl_, 1);
        return true;
    }
    if (io.op != BlockOp::read && io.op != BlockOp::write) {
        active_ = false;
        return false;  // discard: not offered by this disk
    }
    const bool read = io.op == BlockOp::read;
    const bool need48 = io.sector + io.sectors >= kLba28Limit || io.sectors > 256;
    if (need48 && !lba48_) {
        active_ = false;
        return false;
    }
    // ata_bmdma_qc_prep: the PRD table in memory, one entry per 4 KiB page, end-of-table on the last.
    auto* prd = reinterpret_cast<std::uint32_t*>(s.page(prd_gfn_));
    std::uint32_t left = io.sectors * 512u;
    for (std::size_t i = 0; left; ++i) {
        const std::uint32_t len = left < 4096 ? left : 4096;
        left -= len;
        prd[2 * i] = static_cast<std::uint32_t>(io.pages[i] << 12);
        prd[2 * i + 1] = (len & 0xffff) | (left ? 0 : 0x80000000u);
    }
    active_dma_ = true;
    stats_.commands.inc(need48 ? (read ? "READ DMA EXT" : "WRITE DMA EXT")
                               : (read ? "READ DMA" : "WRITE DMA"));
    select(s);
    load_taskfile(s, io.sector, io.sectors == 65536 ? 0 : io.sectors, need48);
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
    return true;
}

void AtaPiix::interrupt(GuestServices& s) {
    stats_.interrupts.inc();
    s.eoi();  // handle_edge_irq acknowledges before the handler runs
    if (!active_) {
        stats_.spurious_interrupts.inc();
        s.in(cmd(kStatusCmd), 1);  // clear INTRQ
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
    if (status != BLKIF_RSP_OKAY) stats_.errors.inc();
    active_ = false;
    if (on_complete) on_complete(s, active_id_, status);
}

}  // namespace xensim
