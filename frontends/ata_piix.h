// A guest's emulated-IDE disk driver: Linux libata's ata_piix, register access by register access.
//
// The problem. The price of an emulated disk is the number of trapping register accesses per
// request and the device model's round trip behind each. This driver issues, for one disk on a
// PIIX3 IDE channel, the port accesses that Linux 6.1's libata makes (docs/ide-register-sequence.md
// derives them from libata-sff.c with line references), so that every one of them is a real
// IO_INSTRUCTION exit and ioreq in the model, and the completion is a real ISA interrupt.
//
// What is modelled:
//  * probe (connect): IDENTIFY DEVICE in PIO, as libata's ata_dev_read_id, capacity from words
//    60-61 / 100-103 (LBA48 when word 83 bit 10 says so).
//  * A READ or WRITE is one DMA command (READ/WRITE DMA, or the EXT forms when the request ends at
//    or above sector 2^28 - 1 or is longer than 256 sectors): device select (status, device,
//    alt-status pause, status), the task file (HOB bytes first for LBA48, then features, count,
//    LBA, device; status), bus master setup (PRD table pointer, BM command read-modify-write for
//    the direction), the command and its alt-status pause, bus master start. 18 accesses for
//    LBA28, 23 for LBA48. The PRD table is one guest page per channel, one entry per data page.
//  * The interrupt (ISA IRQ 14 / 15, vector 0x30 + irq): EOI first (handle_edge_irq acks before
//    the handler), then BM status, BM stop (read-modify-write), two alt-status reads, the status
//    read that clears INTRQ, BM status read and write-back: 8 accesses. The request completes
//    with an error when BM status shows an error or status is not exactly DRDY.
//  * FLUSH: FLUSH CACHE (non-data command: select, task file, command, interrupt, status).
//  * One command at a time per channel (PATA has no queueing): submit() refuses while one is
//    active, and the block layer (the fio workload) retries after a completion.
//
// Where it deliberately differs: no PIO data path for reads and writes (libata uses DMA unless the
// device is in a PIO mode), no error handling beyond failing the request, no probe of the other
// drive, status polls assume the device is ready at the first read (as the derivation's minimum
// counts do), and the interrupt handler looks at this drive's channel only.
#pragma once

#include <cstdint>

#include "frontends/block_device.h"
#include "sim/core/stats.h"

namespace xensim {

struct AtaPiixParams {
    unsigned channel = 0;               // 0 primary (0x1F0, IRQ 14), 1 secondary (0x170, IRQ 15)
    unsigned drive = 0;                 // 0 master, 1 slave
    std::uint16_t bmdma_base = 0xc000;  // BAR4 of the PIIX3 IDE function
};

class AtaPiix : public BlockDevice {
  public:
    static constexpr std::uint8_t kIsaVectorBase = 0x30;  // Linux ISA_IRQ_VECTOR(irq) = 0x30 + irq

    AtaPiix(const AtaPiixParams& params, StatsGroup& parent);

    bool connect(XenbusClient& xb, GuestServices& s, unsigned vcpus) override;
    bool connected() const override { return connected_; }
    std::uint64_t sectors() const override { return sectors_; }
    bool read_only() const override { return false; }
    bool feature_flush() const override { return true; }
    unsigned queue_for_vcpu(unsigned) const override { return 0; }
    bool submit(GuestServices& s, unsigned q, const BlockIo& io) override;
    void kick(GuestServices&, unsigned) override {}

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily commands;
        Counter interrupts, spurious_interrupts, errors;
    };
    const Stats& stats() const { return stats_; }

  private:
    std::uint16_t cmd(unsigned reg) const { return static_cast<std::uint16_t>(cmd_base_ + reg); }
    std::uint8_t wait_idle(GuestServices& s);  // status read(s) until neither BSY nor DRQ
    void select(GuestServices& s);
    void load_taskfile(GuestServices& s, std::uint64_t lba, std::uint32_t count, bool lba48);
    void interrupt(GuestServices& s);

    AtaPiixParams p_;
    std::uint16_t cmd_base_, ctl_, bm_;
    StatsGroup group_;
    Stats stats_;
    bool connected_ = false, lba48_ = false;
    std::uint64_t sectors_ = 0;
    std::uint64_t prd_gfn_ = 0;
    bool active_ = false, active_dma_ = false;
    std::uint64_t active_id_ = 0;
};

}  // namespace xensim
