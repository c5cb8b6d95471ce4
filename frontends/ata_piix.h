// A guest's emulated-IDE disk driver: Linux libata's ata_piix, register access by register access.
//
// The problem. The price of an emulated disk is the number of trapping register accesses per
// request and the device model's round trip behind each. This driver issues, for one disk on a
// PIIX3 IDE channel, the port accesses that Linux 6.1's libata makes (docs/ide-register-sequence.md
// derives them from libata-sff.c with line references), so that every one of them is a real
// IO_INSTRUCTION exit and ioreq in the model, and the completion is a real ISA interrupt.
//
// What is modelled:
//  * The controller: the bus-master base is BAR4 as the guest's PCI scan sized it, taken over by
//    the host probe at boot (frontends/ata_piix_host.h: piix_init_one's configuration accesses);
//    nothing here assumes where firmware put it.
//  * probe (connect): IDENTIFY DEVICE in PIO, as libata's ata_dev_read_id, capacity from words
//    60-61 / 100-103 (LBA48 when word 83 bit 10 says so), and the READ/WRITE MULTIPLE count as
//    ata_dev_configure takes it (libata-core.c:2805-2814): word 47 high byte 80h and word 59 bit 8
//    set, both counts powers of two, the current one (word 59 bits 7:0) not above the maximum
//    (word 47 bits 7:0); otherwise 0 (no multiple mode). Optionally, as `hdparm -m N` run at
//    boot: SET MULTIPLE MODE N, then IDENTIFY again (libata revalidates after ATA_CMD_SET_MULTI,
//    libata-core.c ata_qc_complete); both polled with nIEN set like the probe.
//  * The transfer mode is chosen once, like libata's, right after IDENTIFY: the host's
//    AtaPiixHost::set_mode picks the modes and writes the controller's timing registers
//    (set_piomode, set_dmamode: configuration accesses); DMA unless the disk is configured for PIO
//    (AtaPiixParams::pio, what `libata.dma=0` does: ata_dev_xfermask drops the DMA modes,
//    ATA_DFLAG_PIO is set and ata_rwcmd_protocol picks the PIO opcodes, libata-core.c:587-611) or
//    no DMA mode is common to drive and controller.
//  * A DMA READ or WRITE is one DMA command (READ/WRITE DMA, or the EXT forms when the request ends at
//    or above sector 2^28 - 1 or is longer than 256 sectors): device select (status, device,
//    alt-status pause, status), the task file (HOB bytes first for LBA48, then features, count,
//    LBA, device; status), bus master setup (PRD table pointer, BM command read-modify-write for
//    the direction), the command and its alt-status pause, bus master start. 18 accesses for
//    LBA28, 23 for LBA48. The PRD table is one guest page per channel, one entry per data page.
//  * A request larger than the queue's limits is split as the block layer's bio_split_to_limits
//    splits it before libata sees it (docs/ide-register-sequence.md §7.1): at most 128 segments
//    (ATA_BMDMA_SHT's sg_tablesize LIBATA_MAX_PRD), one per 4 KiB page, and max_sectors (256, or
//    2560 for LBA48: sd's BLK_DEF_MAX_SECTORS under ATA_MAX_SECTORS_LBA48). So 512 KiB per command
//    on an LBA48 disk; the PRD table never holds more than 128 entries. The pieces are issued one
//    after another, the next from the previous one's completion, DMA or PIO alike; the request
//    completes after its last piece, or with an error at the first that fails. A request with no
//    data, a buffer too small for it, a range past the disk's end, or a discard completes at once
//    with an error and touches nothing (the block layer fails such bios before any command).
//  * The DMA interrupt (ISA IRQ 14 / 15, vector 0x30 + irq): EOI first (handle_edge_irq acks before
//    the handler), then BM status, BM stop (read-modify-write), two alt-status reads, the status
//    read that clears INTRQ, BM status read and write-back: 8 accesses. The request completes
//    with an error when BM status shows an error or status is not exactly DRDY.
//  * A PIO READ or WRITE (docs/ide-register-sequence.md §2), interrupt driven as ata_sff_qc_issue
//    runs it for ata_piix (no ATA_FLAG_PIO_POLLING): READ/WRITE MULTIPLE (EXT) when the drive
//    reports a multiple count, READ/WRITE SECTORS (EXT) otherwise. Issue: select, task file, command
//    and its alt-status pause (13 accesses, 18 for LBA48). A DRQ block is one sector, or up to the
//    multiple count for MULTIPLE; each of its sectors is one `rep insl` / `rep outsl` of 128 dwords
//    on the data port (ata_pio_sector -> ata_sff_data_xfer32: 32-bit PIO is on for ata_piix), then
//    one alt-status read (ata_sff_sync). Reads: each interrupt reads alt status, status (clears
//    INTRQ), BM status and writes it back (ata_bmdma_irq_clear: the BM base is mapped even in PIO),
//    then moves one block; after the last block a status read (ata_wait_idle) ends the command
//    without another interrupt. Writes: the first block goes from the work item ata_sff_pio_task
//    (one status read, ata_sff_busy_wait(ATA_BUSY, 5), then the block); each following interrupt
//    does the same four accesses and sends the next block, and the interrupt after the last block
//    does the four accesses and completes. 4 KiB with multiple count 16: 27 accesses, 1 interrupt;
//    with READ/WRITE SECTORS: 62 accesses, 8 interrupts; +5 for LBA48.
//  * Interrupts are held off while a command is issued (libata issues under ap->lock with
//    interrupts disabled, and ata_sff_hsm_move sends the work item's block under the same lock): an
//    IDE interrupt delivered meanwhile is taken when the issue is over.
//  * FLUSH: FLUSH CACHE, or FLUSH CACHE EXT on an LBA48 disk of 2^28 sectors or more that reports
//    it (ata_dev_config_lba's ATA_DFLAG_FLUSH_EXT), built as ata_scsi_flush_xlat builds it: only
//    ATA_TFLAG_DEVICE, so select (4), Device and status (2), command and pause (2), then the
//    interrupt (4): 12 accesses. The block layer sends flushes only when the queue has a volatile
//    write cache, which feature_flush() reports from IDENTIFY (ata_id_wcache_enabled, as libata's
//    MODE SENSE caching page and sd_set_flush_flag turn it into blk_queue_write_cache); no FUA
//    (libata gives it only to NCQ devices).
//  * One command at a time per channel (PATA has no queueing): submit() refuses while one is
//    active, and the block layer (the fio workload) retries after a completion.
//
// Where it deliberately differs: no error handling beyond failing the request (libata's EH, with
// its task-file reads, freeze and reset, is not modelled); no probe of the other drive, and no
// probe-time SET FEATURES transfer-mode command (libata sends PIO 4 / MWDMA 2 on a PIIX3 after
// writing the controller's timings, which AtaPiixHost::set_mode does model; the device's
// modes do not change its timing here); status polls assume the device is ready at the first read
// (as the derivation's minimum counts do) and the udelay(10)/ndelay(400) around them cost no
// guest time; the PIO write's work item runs right after the issue on the same vCPU, with no
// kworker switch priced; ata_sff_pio_task's slow path (BSY still set after 5 reads: msleep(2), 10
// more reads, requeue after 16 ms) fails the command instead; a data block with ERR or DF set
// fails the command without moving the data; the interrupt handler looks at this drive's channel
// only; 16-bit PIO (hdparm -c0) is not offered.
#pragma once

#include <cstdint>
#include <vector>

#include "frontends/ata_piix_host.h"
#include "frontends/block_device.h"
#include "sim/core/stats.h"

namespace xensim {

struct AtaPiixParams {
    unsigned channel = 0;  // 0 primary (0x1F0, IRQ 14), 1 secondary (0x170, IRQ 15)
    unsigned drive = 0;    // 0 master, 1 slave
    // The controller as the guest's ata_piix probed it at boot (bus-master base from BAR4, timing
    // registers); connect fails unless it was probed and this channel is enabled. Not owned.
    AtaPiixHost* host = nullptr;
    bool pio = false;       // PIO data transfers (libata.dma=0); DMA otherwise
    int set_multiple = -1;  // >= 0: hdparm -m N at boot (SET MULTIPLE MODE, revalidate)
};

class AtaPiix : public BlockDevice {
  public:
    static constexpr std::uint8_t kIsaVectorBase = 0x30;  // Linux ISA_IRQ_VECTOR(irq) = 0x30 + irq

    AtaPiix(const AtaPiixParams& params, StatsGroup& parent);

    bool connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) override;
    bool connected() const override { return connected_; }
    std::uint64_t sectors() const override { return sectors_; }
    bool read_only() const override { return false; }
    // The queue has a volatile write cache (IDENTIFY word 85 bit 5, ata_id_wcache_enabled): the block
    // layer sends flushes only then.
    bool feature_flush() const override { return wcache_; }
    unsigned queue_for_vcpu(unsigned) const override { return 0; }
    bool submit(GuestServices& s, unsigned q, const BlockIo& io) override;
    void kick(GuestServices&, unsigned) override {}

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily commands;
        Counter interrupts, spurious_interrupts, errors, pio_blocks, interrupts_held, requests;
    };
    const Stats& stats() const { return stats_; }
    // PIO transfers: libata.dma=0, or no DMA mode was found for the drive at probe.
    bool pio() const { return pio_; }
    // The transfer modes libata set for the drive at probe (XFER_* codes).
    AtaPiixHost::Modes modes() const { return modes_; }
    // The READ/WRITE MULTIPLE count found at probe (0: READ/WRITE SECTORS).
    unsigned multi_count() const { return multi_count_; }
    // FLUSH CACHE EXT rather than FLUSH CACHE (ATA_DFLAG_FLUSH_EXT).
    bool flush_ext() const { return flush_ext_; }

  private:
    std::uint16_t cmd(unsigned reg) const { return static_cast<std::uint16_t>(cmd_base_ + reg); }
    std::uint8_t wait_idle(GuestServices& s);  // status read(s) until neither BSY nor DRQ
    void select(GuestServices& s);
    bool identify(GuestServices& s, std::uint16_t id[256]);
    void set_multiple(GuestServices& s, unsigned count);
    void load_taskfile(GuestServices& s, std::uint64_t lba, std::uint32_t count, bool lba48);
    void issue_next(GuestServices& s);  // the active request's next command
    void issue_flush(GuestServices& s);
    void submit_pio(GuestServices& s, std::uint64_t sector, std::uint32_t n, std::size_t first_page,
                    bool read, bool lba48);
    void pio_task(GuestServices& s);
    void pio_sectors(GuestServices& s);
    void finish(GuestServices& s, std::int16_t status);
    // The IRQ 14/15 handler as the vCPU calls it, and the handler's body.
    void irq_entry(GuestServices& s);
    void interrupt(GuestServices& s);
    void interrupt_pio(GuestServices& s);
    // Interrupts off while a command is issued (spin_lock_irqsave); a held interrupt runs at the end.
    void hold_irq() { irq_held_ = true; }
    void release_irq(GuestServices& s);

    AtaPiixParams p_;
    std::uint16_t cmd_base_, ctl_, bm_;
    StatsGroup group_;
    Stats stats_;
    bool connected_ = false, lba48_ = false, pio_ = false, flush_ext_ = false, wcache_ = false;
    AtaPiixHost::Modes modes_;
    std::uint64_t sectors_ = 0;
    std::uint64_t prd_gfn_ = 0;
    std::uint64_t id_gfn_ = 0;  // IDENTIFY DEVICE data
    bool active_ = false, active_dma_ = false;
    // The active block-layer request (copied at submit) and how far its commands got.
    std::uint64_t req_id_ = 0, req_sector_ = 0;
    BlockOp req_op_ = BlockOp::read;
    std::uint32_t req_sectors_ = 0, req_done_ = 0, piece_sectors_ = 0;
    std::vector<std::uint64_t> req_pages_;  // the request's data pages
    unsigned multi_count_ = 0;
    // libata's host state machine for the active PIO command (ap->hsm_task_state).
    enum class Hsm { idle, first, st, last };
    Hsm hsm_ = Hsm::idle;
    bool pio_write_ = false;
    std::size_t pio_first_page_ = 0;              // the command's first page in req_pages_
    std::uint32_t pio_total_ = 0, pio_done_ = 0;  // sectors in the command, sectors moved
    bool irq_held_ = false, irq_deferred_ = false;
};

}  // namespace xensim
