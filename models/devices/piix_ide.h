// The PIIX3 IDE controller: two legacy ATA channels and SFF-8038i bus-master DMA, as an HVM guest
// sees them, over the disks of models/dom0/storage.h.
//
// The problem. An HVM guest without PV drivers reaches its disks through the emulated IDE
// controller of the 82371SB (PIIX3) south bridge, function 1: byte-wide ATA task-file registers at
// the legacy I/O ports, a 16/32-bit data port for PIO, and a bus master that walks a table of
// Physical Region Descriptors (PRDs) in guest memory for DMA. Every register access is a VM exit,
// so what a driver costs depends on how many accesses each command takes and on when the device
// raises INTRQ. This engine is the device side of that protocol in plain C++ (no SystemC, no clock):
// the platform hands it port accesses with their simulated time, it moves data between the
// Disk and guest memory, and it tells the platform when a command will complete.
//
// Sources followed (our own code; QEMU is the behavioural reference where the standards leave room):
//  * Task-file register layout: ATA/ATAPI-6 (T13/1410D), "Register descriptions" and its
//    Command Block / Control Block register tables: offset 0 Data, 1 Error/Features, 2 Sector Count,
//    3 LBA Low, 4 LBA Mid, 5 LBA High, 6 Device, 7 Status/Command; control block 0x3F6/0x376:
//    Alternate Status (read) / Device Control (write: nIEN bit 1, SRST bit 2, HOB bit 7).
//    48-bit addressing: ATA/ATAPI-6 "48-bit Address feature set": each of Features, Sector Count
//    and LBA Low/Mid/High is a two-deep FIFO (the previous value is the "high order byte"), read
//    back with HOB set in Device Control; any write to a task-file register clears HOB.
//  * Commands, status and error bits: ATA8-ACS (T13/1699-D) command descriptions (IDENTIFY DEVICE,
//    READ/WRITE SECTORS (EXT), READ/WRITE MULTIPLE (EXT), SET MULTIPLE MODE, READ/WRITE DMA (EXT),
//    SET FEATURES, FLUSH CACHE (EXT)) and its Status field (BSY 7, DRDY 6, DF 5, DRQ 3, ERR 0;
//    bit 4 is DSC/"seek complete" in ATA-6, kept set as QEMU does) and Error field (ABRT 2, IDNF 4).
//    The IDENTIFY DEVICE data follows ATA8-ACS's table of words (capacity 60-61 and 100-103, 47 and
//    59 for READ/WRITE MULTIPLE, 63/88 for DMA modes, 83/86 for LBA48 and FLUSH CACHE (EXT),
//    255 integrity word: A5h signature and checksum).
//  * Protocols (ATA/ATAPI-6, the "Protocol" clause): PIO data-in: before each block the device
//    asserts INTRQ with DRQ set; after the last block no interrupt. PIO data-out: DRQ for the first
//    block with no interrupt; after each block BSY, then INTRQ with DRQ for the next block or, after
//    the last, with DRQ clear. Non-data and DMA commands: one INTRQ at the end. Reading Status (not Alternate
//    Status) or writing Command clears the pending interrupt; nIEN masks the INTRQ line.
//  * Bus master: "Programming Interface for Bus Master IDE Controller", SFF-8038i rev 1.0: per
//    channel 8 ports at BAR4 + 8*channel: +0 Command (bit 0 Start/Stop, bit 3 Read/Write control,
//    1 = the bus master writes memory, i.e. device to memory), +2 Status (bit 0 Active, read-only;
//    bit 1 Error and bit 2 Interrupt, write 1 to clear; bits 5/6 drive 0/1 DMA capable, read/write),
//    +4 Descriptor Table Pointer (32-bit, dword aligned). A PRD is {u32 physical address, u16 byte
//    count (bit 0 ignored, 0 = 64 KiB), bit 15 of the last u16 = end of table}. Its rules for PRDs
//    shorter than, equal to and longer than the transfer (Interrupt and Active 0; Interrupt 1 and
//    Active 0; both 1) are what QEMU's tests/qtest/ide-test.c test_bmdma_various_prdts checks.
//  * QEMU hw/ide/core.c (ide_exec_cmd, ide_cmd_table, ide_ioport_read/write, ide_sector_read/write,
//    ide_dma_cb, cmd_set_features, cmd_set_multiple_mode, ide_identify), hw/ide/pci.c
//    (bmdma_prepare_buf, bmdma_cmd_writeb) and hw/ide/piix.c (bmdma_write's status mask, PCI
//    identity, ports and IRQs 14/15).
//  * PCI identity: Intel 82371SB datasheet, function 1: vendor 8086h, device 7010h, class 01h,
//    sub-class 01h, prog-if 80h (legacy mode, bus master capable), status 0280h, BMIBA (BAR4) at
//    20h with bit 0 = 1 (I/O space).
//
// What is modelled:
//  * Two channels (primary 0x1F0-0x1F7 + 0x3F6, IRQ 14; secondary 0x170-0x177 + 0x376, IRQ 15),
//    each with a master and a slave selected by bit 4 (DEV) of the Device register. Both devices on
//    a channel receive every task-file write (QEMU: "they're on the same bus"), each has its own
//    Status and Error. A present drive is a Disk&; an absent one follows QEMU: with no drive on the
//    channel or with the absent slave selected, Status, Alternate Status and Error read 0 (no
//    device answers; the other task-file registers read 0 only when the channel is empty); commands
//    to an absent slave are ignored; commands to an absent master run the command table, where
//    everything that needs media aborts (ABRT, ERR|DRDY, INTRQ) and FLUSH CACHE and SET MULTIPLE
//    MODE succeed, as in QEMU's handlers.
//  * Registers are declared in tables (task-file handlers; bus-master rows with reset value,
//    read/write and write-1-to-clear masks). Accesses of 2 or 4 bytes to byte-wide task-file
//    registers are split into byte accesses on consecutive ports as the port I/O path splits them;
//    the data port takes 2 and 4 bytes (a byte read returns 0xFF, a byte write is ignored, QEMU);
//    bus-master Command/Status take bytes only (other sizes read all ones, writes are ignored,
//    QEMU's piix bmdma_read/write); the table pointer takes 1, 2 or 4 bytes.
//  * While the selected drive has BSY or DRQ, writes to task-file registers 1-6 and commands are
//    ignored (QEMU ide_ioport_write / ide_exec_cmd).
//  * Commands go through a table {opcode, ATA8-ACS name, handler, flags}; the checks (slave
//    present, not busy, known opcode, medium present) run once before the handler: unknown opcode
//    -> ABRT, ERR|DRDY, INTRQ. LBA28, LBA48 and CHS addressing (CHS with QEMU's geometry guess:
//    16 heads, 63 sectors per track); a sector count of 0 means 256 (LBA28) or 65536 (LBA48).
//    After a data transfer the address registers point past the last sector moved and Sector
//    Count is what remains (QEMU ide_set_sector).
//  * PIO: READ/WRITE SECTORS (EXT) move one sector per DRQ block, READ/WRITE MULTIPLE (EXT) the
//    current multiple count (power-on 16, QEMU's MAX_MULT_SECTORS; SET MULTIPLE MODE takes 0 or a
//    power of two up to 16, else ABRT; READ/WRITE MULTIPLE with multiple mode off abort). Each
//    block is one Disk request: a read block is submitted when the command (or the previous block's
//    last data read) arrives, a write block when its last data word is written.
//  * DMA: READ/WRITE DMA (EXT) set DRDY|DRQ and wait for the bus master; the transfer starts when
//    both the command is in and Start is set (either order). The PRD walk follows QEMU's
//    bmdma_prepare_buf: entries are read until end-of-table or, failing that, until 4 KiB of table
//    (512 entries, QEMU's one-page fail-safe); bytes beyond the transfer are consumed and ignored.
//      - Table shorter than the transfer: nothing moves, Active and Interrupt stay 0, no INTRQ, the
//        drive ends DRDY without error (QEMU ide_dma_cb "Error condition!"); the guest times out.
//      - Table longer than the transfer (or without end-of-table): the transfer completes with
//        INTRQ and Interrupt set and Active left 1 (SFF-8038i; QEMU stay_active).
//      - Range past the end of the disk: ABRT, ERR|DRDY, INTRQ, Active cleared (ide_dma_error).
//      - A PRD, or the table itself, outside guest memory (the MemoryAccess callback returns
//        false): the transfer fails with bus-master Error set, Active cleared, and the drive ending
//        as ide_dma_error does (ABRT, ERR|DRDY, INTRQ). A write to the device fails at once and the
//        disk is not written; a read fails when the disk's data arrives (at the completion time).
//    One Disk request per DMA command. Clearing Start while the transfer is in flight completes it
//    at that moment, as QEMU does (bmdma_cmd_writeb drains the request: "behave like if the DMA was
//    completed by the time the guest trying to cancel"); Active is then clear.
//  * SET FEATURES: 03h set transfer mode (PIO default/mode, single-word, multiword and Ultra DMA;
//    the selection shows in IDENTIFY words 62/63/88 as QEMU writes them); 02h/82h enable/disable
//    write cache succeed only when they match the Disk's configuration (the Disk's cache cannot be
//    switched); QEMU's no-op subcommands (AAh, 55h, CCh, 66h, 05h, 85h, 42h, C2h, 67h, 69h, 96h,
//    9Ah) succeed; anything else aborts. FLUSH CACHE (EXT) submits a Disk flush (a write-cache
//    disk destages; storage.h).
//  * Interrupts: INTRQ is a latch per channel (QEMU keeps one per bus), set when a command or
//    block completes, cleared by a Status read, a Command write or SRST. irq_level(channel) =
//    INTRQ && !nIEN is the line the platform wires to the I/O APIC (IRQ 14 / 15). The bus-master
//    Interrupt bit is set whenever the line is raised (QEMU bmdma_irq), including when nIEN is
//    cleared with INTRQ pending.
//  * SRST (Device Control bit 2, on its 0 -> 1 edge): both drives reset at once: registers, the
//    signature (Sector Count 1, LBA Low 1, LBA Mid/High 0, or FFh for an absent drive), multiple
//    mode 16, Error 01h (diagnostic passed), DRDY|DSC, then INTRQ as QEMU's ide_perform_srst ->
//    cmd_exec_dev_diagnostic raises it. A command in flight is dropped (a DMA one completes first,
//    as QEMU drains it); its data has already moved (see timing).
//  * Timing. The engine has no clock: read/write take the access time, a command that goes to the
//    Disk submits at that time and gets its completion time from Disk::submit. The engine then
//    calls IrqRequest(channel, T) and stays BSY until the platform calls complete(channel, T),
//    which ends the command or block (status, registers, INTRQ). Commands that need no disk
//    (IDENTIFY, SET FEATURES, SET MULTIPLE MODE, errors) complete inside the access; the platform
//    samples irq_level() after every access and every complete(). Data moves at submit (storage.h
//    semantics): a DMA read is already in guest memory and a write already on the Disk while BSY is
//    set, which the guest cannot observe before completion.
//  * Stats, per channel (groups "primary" and "secondary"): commands by ATA8-ACS name, register
//    reads and writes by register name, errors by reason, ignored accesses, bytes moved each way,
//    DMA transfers, INTRQ assertions (and those masked by nIEN).
//
// Deliberate differences from QEMU and from hardware:
//  * While a command is at the disk the drive shows BSY|DRDY; QEMU shows DRDY|DSC|DRQ during a DMA
//    transfer (no BSY); real drives show either. Both read as "not done".
//  * A DMA address outside guest memory fails the transfer with the bus-master Error bit. QEMU maps
//    such addresses through a bounce buffer and completes normally (reads from nowhere, writes
//    discarded) and never sets Error; SFF-8038i defines Error as "an error in transferring data
//    to/from memory", which is what we report.
//  * LBA out of range aborts with ABRT as QEMU does (ide_sect_range_ok -> ide_rw_error /
//    ide_dma_error); ATA8-ACS would report IDNF for an address outside the user-accessible range.
//  * nIEN masks a latched INTRQ: an interrupt raised while nIEN is set appears when nIEN is cleared.
//    QEMU drops an interrupt raised while nIEN is set (ide_bus_set_irq does not raise the line).
//  * IDENTIFY data is rebuilt for every IDENTIFY, so word 59 shows the current multiple count
//    after SET MULTIPLE MODE (QEMU caches the block on first use and word 59 goes stale). Word 50
//    bit 14, 80 (ATA-4 to ATA8-ACS) and the word 255 checksum follow ATA8-ACS; retired and obsolete
//    words QEMU fills (4, 5, 20-22, 48, 51, 52, 81) are 0; no SMART (words 82/85 bit 0 clear).
//  * SET FEATURES transfer mode aborts for modes the drive does not list (single-word or multiword
//    DMA above 2, Ultra DMA above 5, PIO above 4), as ATA8-ACS requires; QEMU accepts any.
//  * After SRST device 0 is selected (the shared Device register reads A0h); QEMU resets the
//    register but leaves its bus->unit pointing at the previously selected drive.
//  * The bus master's Read/Write control bit is not checked against the command's direction (QEMU
//    neither); PRD regions may cross 64 KiB boundaries (SFF-8038i forbids it; QEMU allows it).
//  * Not modelled: ATAPI and CD-ROM, the native-mode programming interface (ports from BARs 0-3),
//    the PIIX timing registers (config 40h-47h), DEVICE RESET, EXECUTE DEVICE DIAGNOSTIC, SMART,
//    READ VERIFY, SEEK, power management, DATA SET MANAGEMENT (TRIM), NCQ, DF (never set), disk
//    errors other than a refused request (which aborts), PIO timing on the wire, and trace events.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/dom0/storage.h"
#include "sim/core/stats.h"

namespace xensim {

// ATA Status / Error / Device / Device Control bits and bus-master bits, with Linux
// <linux/ata.h>'s names.
constexpr std::uint8_t ATA_BUSY = 0x80;     // Status: BSY
constexpr std::uint8_t ATA_DRDY = 0x40;     // Status: DRDY
constexpr std::uint8_t ATA_DF = 0x20;       // Status: DF (device fault)
constexpr std::uint8_t ATA_DSC = 0x10;      // Status: DSC (ATA-6 "seek complete"), QEMU SEEK_STAT
constexpr std::uint8_t ATA_DRQ = 0x08;      // Status: DRQ
constexpr std::uint8_t ATA_ERR = 0x01;      // Status: ERR
constexpr std::uint8_t ATA_ABORTED = 0x04;  // Error: ABRT
constexpr std::uint8_t ATA_IDNF = 0x10;     // Error: IDNF
constexpr std::uint8_t ATA_DEV1 = 0x10;     // Device: DEV (select device 1)
constexpr std::uint8_t ATA_LBA = 0x40;      // Device: LBA addressing
constexpr std::uint8_t ATA_NIEN = 0x02;     // Device Control: nIEN
constexpr std::uint8_t ATA_SRST = 0x04;     // Device Control: SRST
constexpr std::uint8_t ATA_HOB = 0x80;      // Device Control: HOB
constexpr std::uint8_t ATA_DMA_CMD = 0;     // bus-master register offsets
constexpr std::uint8_t ATA_DMA_STATUS = 2;
constexpr std::uint8_t ATA_DMA_TABLE_OFS = 4;
constexpr std::uint8_t ATA_DMA_START = 0x01;        // Command: Start/Stop Bus Master
constexpr std::uint8_t ATA_DMA_WR = 0x08;           // Command: 1 = write to memory (device -> memory)
constexpr std::uint8_t ATA_DMA_ACTIVE = 0x01;       // Status: Bus Master IDE Active
constexpr std::uint8_t ATA_DMA_ERR = 0x02;          // Status: Error
constexpr std::uint8_t ATA_DMA_INTR = 0x04;         // Status: Interrupt
constexpr std::uint32_t ATA_PRD_EOT = 0x80000000u;  // PRD: end of table (bit 15 of the last word)

// Command opcodes, with Linux <linux/hdreg.h> / QEMU names.
constexpr std::uint8_t WIN_READ = 0x20;
constexpr std::uint8_t WIN_READ_EXT = 0x24;
constexpr std::uint8_t WIN_READDMA_EXT = 0x25;
constexpr std::uint8_t WIN_MULTREAD_EXT = 0x29;
constexpr std::uint8_t WIN_WRITE = 0x30;
constexpr std::uint8_t WIN_WRITE_EXT = 0x34;
constexpr std::uint8_t WIN_WRITEDMA_EXT = 0x35;
constexpr std::uint8_t WIN_MULTWRITE_EXT = 0x39;
constexpr std::uint8_t WIN_MULTREAD = 0xC4;
constexpr std::uint8_t WIN_MULTWRITE = 0xC5;
constexpr std::uint8_t WIN_SETMULT = 0xC6;
constexpr std::uint8_t WIN_READDMA = 0xC8;
constexpr std::uint8_t WIN_WRITEDMA = 0xCA;
constexpr std::uint8_t WIN_FLUSH_CACHE = 0xE7;
constexpr std::uint8_t WIN_FLUSH_CACHE_EXT = 0xEA;
constexpr std::uint8_t WIN_IDENTIFY = 0xEC;
constexpr std::uint8_t WIN_SETFEATURES = 0xEF;

// The PIIX3 IDE function's type-0 PCI configuration header (82371SB function 1), read-only here;
// a PCI bus model exposes it. Only BAR4 (BMIBA, config 20h) is implemented; BARs 0-3 read 0
// (legacy mode, prog-if 80h).
//
// Its device-specific registers are the ones Linux's ata_piix programs (82371SB datasheet, IDE
// timing registers): IDETIM at 40h (primary) and 42h (secondary), bit 15 the channel's decode
// enable, and SIDETIM at 44h. QEMU's hw/ide/piix.c implements none of them: they are generic
// configuration bytes (read/write, no effect on the emulation), which is how the bus model
// (pci_config.h) serves them. The PIIX4's UDMA registers (48h, 4Ah) and the ICH's IDE_CONFIG (54h)
// do not exist on a PIIX3 and read 0 the same way. hvmloader's pci_setup writes 8000h to both
// IDETIM registers ("enable IDE0/IDE1"), so that is what the guest finds.
struct PiixIdePciConfig {
    static constexpr std::uint16_t kVendorId = 0x8086;  // Intel
    static constexpr std::uint16_t kDeviceId = 0x7010;  // 82371SB PIIX3 IDE
    static constexpr std::uint8_t kRevision = 0x00;
    static constexpr std::uint8_t kProgIf = 0x80;     // legacy ATA, bus master capable
    static constexpr std::uint8_t kSubclass = 0x01;   // IDE
    static constexpr std::uint8_t kClass = 0x01;      // mass storage
    static constexpr std::uint16_t kStatus = 0x0280;  // fast back-to-back, DEVSEL medium
    static constexpr unsigned kBar4Offset = 0x20;
    static constexpr unsigned kIdetimPrimary = 0x40, kIdetimSecondary = 0x42, kSidetim = 0x44;
    static constexpr std::uint16_t kIdetimDecodeEnable = 0x8000;  // IDETIM bit 15 (IDE)

    std::uint16_t bmdma_base = 0;
    std::uint32_t bar4() const { return std::uint32_t{bmdma_base} | 1u; }  // bit 0: I/O space
    std::array<std::uint8_t, 64> header() const;                           // little-endian
};

struct PiixIdeConfig {
    std::uint16_t bmdma_base = 0xC000;      // BAR4: 16 ports, channel c at base + 8 * c
    std::string model = "XENSIM HARDDISK";  // IDENTIFY words 27-46 (40 characters)
    std::string firmware = "1.0";           // words 23-26 (8 characters)
    std::string serial_prefix = "XS";       // words 10-19: prefix + 5-digit drive index
};

class PiixIde {
  public:
    // Guest-physical access for the bus master: write == true stores buf into guest memory.
    // Returns false (and need not touch anything) when [gpa, gpa + len) is not guest memory.
    using MemoryAccess = std::function<bool(std::uint64_t gpa, void* buf, std::size_t len, bool write)>;
    // "Call complete(channel, at_ps) at at_ps": the command or block at the disk finishes then.
    // Called from inside read/write; it must only schedule, not call back into the engine.
    using IrqRequest = std::function<void(unsigned channel, std::uint64_t at_ps)>;

    static constexpr unsigned kChannels = 2;
    static constexpr std::uint16_t kCommandBase[kChannels] = {0x1F0, 0x170};
    static constexpr std::uint16_t kControlPort[kChannels] = {0x3F6, 0x376};
    static constexpr unsigned kIsaIrq[kChannels] = {14, 15};
    static constexpr unsigned kMaxMultSectors = 16;           // QEMU MAX_MULT_SECTORS
    static constexpr std::uint32_t kPrdTableFailSafe = 4096;  // QEMU BMDMA_PAGE_SIZE

    // drives: primary master, primary slave, secondary master, secondary slave; nullptr = absent.
    // The disks and the stats group must outlive the engine.
    PiixIde(PiixIdeConfig cfg, std::array<Disk*, 4> drives, MemoryAccess dma, IrqRequest irq,
            StatsGroup& stats);
    ~PiixIde();
    PiixIde(const PiixIde&) = delete;
    PiixIde& operator=(const PiixIde&) = delete;

    bool claims(std::uint16_t port) const;
    // size is 1, 2 or 4; the port must be claimed (std::invalid_argument otherwise).
    std::uint32_t read(std::uint16_t port, unsigned size, std::uint64_t now_ps);
    void write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t now_ps);
    // Ends the channel's command or block at the disk if its completion time has come (now_ps at
    // or after it); true when something completed. Stale or early calls do nothing.
    bool complete(unsigned channel, std::uint64_t now_ps);

    // The INTRQ line towards the interrupt controller: INTRQ pending and nIEN clear.
    bool irq_level(unsigned channel) const;
    // The latched interrupt, before nIEN.
    bool intrq_pending(unsigned channel) const;
    // A command or block is at the disk; its completion time.
    bool in_flight(unsigned channel) const;
    std::uint64_t completion_ps(unsigned channel) const;

    // Power-on / PCI reset of both channels and bus masters (QEMU piix_ide_reset).
    void reset();
    // The Xen platform device's unplug (QEMU pci_piix3_xen_ide_unplug): drive `index` (0..3:
    // primary master, primary slave, secondary master, secondary slave) loses its disk and is
    // reset; from then on it answers as an absent drive.
    void unplug(unsigned index);
    PiixIdePciConfig pci_config() const { return {cfg_.bmdma_base}; }

  private:
    enum class Xfer { none, pio_in, pio_out };  // data phase: device -> host / host -> device
    enum class AfterBlock { stop, read_next, write_block };
    enum class Pending { none, pio_read, pio_write, dma, flush };

    struct Drive {
        Disk* disk = nullptr;
        unsigned index = 0;  // 0..3, for the serial number
        std::uint64_t cylinders = 0, heads = 16, spt = 63;
        // Task-file registers; *_hob are the previous values (the LBA48 high-order bytes).
        std::uint8_t feature = 0, hob_feature = 0, error = 0, sector = 0, hob_sector = 0;
        std::uint8_t lcyl = 0, hob_lcyl = 0, hcyl = 0, hob_hcyl = 0, hob_nsector = 0;
        std::uint8_t select = 0xA0, status = 0;
        std::uint32_t nsector = 0;  // after the command's transform: the sector count, up to 65536
        bool lba48 = false;
        unsigned mult_sectors = kMaxMultSectors;
        unsigned req_sectors = 1;                          // sectors per DRQ block of the running PIO command
        std::uint16_t word62 = 0, word63 = 0, word88 = 0;  // transfer-mode words (SET FEATURES)
        // PIO data phase
        std::vector<std::uint8_t> buf;
        std::size_t pos = 0, end = 0;
        Xfer xfer = Xfer::none;
        AfterBlock after = AfterBlock::stop;
    };

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily commands, register_reads, register_writes, errors, ignored;
        Counter bytes_read, bytes_written, dma_transfers, interrupts, interrupts_masked;
        // Handles on the register counters (CounterFamily::at(slot, label)): by kTaskfile offset,
        // by kBmRegs row, and the data port's.
        std::array<std::uint64_t*, 9> taskfile_read_slots{}, taskfile_write_slots{};
        std::array<std::uint64_t*, 3> bm_read_slots{}, bm_write_slots{};
        std::uint64_t *data_read_slot = nullptr, *data_write_slot = nullptr;
    };

    struct Channel {
        Channel(StatsGroup& parent, const char* name) : group(name, &parent), stats(group) {}
        StatsGroup group;
        Stats stats;
        std::array<Drive, 2> drives;
        unsigned unit = 0;        // selected drive
        std::uint8_t devctl = 0;  // Device Control as last written
        bool intrq = false;
        // Bus master (SFF-8038i registers; prd_cur is QEMU's cur_addr: the next entry to fetch).
        std::uint32_t bm_cmd = 0, bm_status = 0, bm_prd = 0, prd_cur = 0;
        // A DMA command waiting for the bus master.
        bool dma_armed = false, dma_to_device = false;
        // The command or block at the disk.
        Pending pending = Pending::none;
        std::uint64_t pending_at = 0;
        std::uint32_t pending_sectors = 0;
        std::uint64_t pending_lba = 0;
        bool pending_mem_fault = false, pending_stay_active = false;
    };

    // Task-file registers (offsets 0-7 of the command block; 8 = the control block's register).
    struct TaskfileReg {
        unsigned offset;
        const char* read_name;
        const char* write_name;
        std::uint8_t (PiixIde::*read)(Channel&);
        void (PiixIde::*write)(Channel&, std::uint8_t value, std::uint64_t now_ps);
    };
    // Bus-master registers: declared masks; side effect after the write.
    struct BmReg {
        unsigned offset, width;
        const char* name;
        std::uint32_t reset, rw_mask, w1c_mask;  // bits outside both masks are read-only
        std::uint32_t Channel::*field;
        void (PiixIde::*after_write)(Channel&, std::uint32_t old_value, std::uint64_t now_ps);
    };
    struct CommandDesc {
        std::uint8_t opcode;
        const char* name;  // ATA8-ACS
        bool (PiixIde::*handler)(Channel&, Drive&, const CommandDesc&, std::uint64_t now_ps);
        unsigned flags;
    };
    static constexpr unsigned kNeedsMedium = 1, kLba48 = 2, kSetDsc = 4;
    static const TaskfileReg kTaskfile[9];
    static const BmReg kBmRegs[3];
    static const CommandDesc kCommands[17];
    static const CommandDesc* find_command(std::uint8_t opcode);

    // Port decoding
    struct Decoded {
        enum Kind { taskfile, control, bus_master } kind;
        unsigned channel, offset;
    };
    bool decode(std::uint16_t port, Decoded& out) const;
    std::uint8_t read_byte(const Decoded& d, std::uint64_t now_ps);
    void write_byte(const Decoded& d, std::uint8_t v, std::uint64_t now_ps);

    // Task-file register handlers
    std::uint8_t rd_data_byte(Channel& c);
    std::uint8_t rd_error(Channel& c);
    std::uint8_t rd_nsector(Channel& c);
    std::uint8_t rd_lbal(Channel& c);
    std::uint8_t rd_lbam(Channel& c);
    std::uint8_t rd_lbah(Channel& c);
    std::uint8_t rd_device(Channel& c);
    std::uint8_t rd_status(Channel& c);      // clears INTRQ
    std::uint8_t rd_alt_status(Channel& c);  // does not
    void wr_data_byte(Channel& c, std::uint8_t, std::uint64_t);
    void wr_feature(Channel& c, std::uint8_t v, std::uint64_t);
    void wr_nsector(Channel& c, std::uint8_t v, std::uint64_t);
    void wr_lbal(Channel& c, std::uint8_t v, std::uint64_t);
    void wr_lbam(Channel& c, std::uint8_t v, std::uint64_t);
    void wr_lbah(Channel& c, std::uint8_t v, std::uint64_t);
    void wr_device(Channel& c, std::uint8_t v, std::uint64_t);
    void wr_command(Channel& c, std::uint8_t v, std::uint64_t now_ps);
    void wr_devctl(Channel& c, std::uint8_t v, std::uint64_t now_ps);
    bool taskfile_write_allowed(Channel& c);
    bool no_device_answers(const Channel& c) const;  // status/error read 0
    bool channel_empty(const Channel& c) const;

    // Data port
    std::uint32_t read_data(Channel& c, unsigned size, std::uint64_t now_ps);
    void write_data(Channel& c, unsigned size, std::uint32_t value, std::uint64_t now_ps);
    void end_of_block(Channel& c, Drive& d, std::uint64_t now_ps);

    // Bus master
    std::uint32_t bm_read(Channel& c, unsigned offset, unsigned size);
    void bm_write(Channel& c, unsigned offset, unsigned size, std::uint32_t value, std::uint64_t now_ps);
    static const BmReg* find_bm_reg(unsigned offset);
    void bm_command_written(Channel& c, std::uint32_t old_value, std::uint64_t now_ps);

    // Commands
    void exec_command(Channel& c, std::uint8_t opcode, std::uint64_t now_ps);
    bool cmd_identify(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_read_pio(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_write_pio(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_read_multiple(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_write_multiple(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_set_multiple(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_read_dma(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_write_dma(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_set_features(Channel&, Drive&, const CommandDesc&, std::uint64_t);
    bool cmd_flush(Channel&, Drive&, const CommandDesc&, std::uint64_t);

    void lba48_transform(Drive& d, bool lba48);
    std::uint64_t get_sector(const Drive& d) const;
    void set_sector(Drive& d, std::uint64_t lba);
    bool range_ok(const Drive& d, std::uint64_t lba, std::uint64_t n) const;
    void abort_command(Channel& c, Drive& d, const char* reason);
    void transfer_start(Drive& d, std::size_t bytes, Xfer x, AfterBlock after);
    void transfer_stop(Drive& d);
    void pio_read_block(Channel& c, Drive& d, std::uint64_t now_ps);
    void pio_write_block(Channel& c, Drive& d, std::uint64_t now_ps);
    void dma_start(Channel& c, std::uint64_t now_ps);
    void dma_fail(Channel& c, Drive& d, bool memory_fault, const char* reason);
    void finish(Channel& c);  // applies the pending completion now
    void defer(Channel& c, Pending what, std::uint64_t at_ps);
    void raise_irq(Channel& c);
    void identify(const Drive& d, std::uint8_t out[512]) const;
    void reset_drive(Drive& d);
    void software_reset(Channel& c);
    void set_signature(Drive& d);
    Drive& active(Channel& c) { return c.drives[c.unit]; }
    unsigned channel_index(const Channel& c) const;
    Channel& channel(unsigned ch);
    const Channel& channel(unsigned ch) const;

    PiixIdeConfig cfg_;
    MemoryAccess dma_;
    IrqRequest irq_;
    std::array<std::unique_ptr<Channel>, kChannels> channels_;
    std::uint64_t next_request_id_ = 0;
    // dma_start's scratch, reused between commands: the PRD segments it walked and the data
    // staged between guest memory and the disk (released when larger than kKeptDmaBuffer).
    struct DmaSegment {
        std::uint64_t addr;
        std::uint32_t len;
    };
    static constexpr std::size_t kKeptDmaBuffer = 256 * 512;
    std::vector<DmaSegment> dma_sg_;
    std::vector<std::uint8_t> dma_buf_;
};

}  // namespace xensim
