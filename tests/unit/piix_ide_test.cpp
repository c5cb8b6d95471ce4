// The PIIX3 IDE engine driven the way a driver drives it (after QEMU's tests/qtest/ide-test.c):
// task-file registers through the legacy ports, PRD tables in a fake guest memory, the bus master
// through BAR4; asserting status bits, INTRQ, memory and disk contents. Expected status values are
// ATA8-ACS / ATA/ATAPI-6 bits: 0x50 = DRDY|DSC (idle), 0x58 = +DRQ (data phase or DMA waiting),
// 0xC0 = BSY|DRDY (at the disk), 0xD0 = BSY|DRDY|DSC (PIO block at the disk), 0x41 = DRDY|ERR.
// Disks are ramdisks of 10 us + 0.5 us per sector, so completion times are exact.
#include "models/devices/piix_ide.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace xensim {
namespace {

constexpr std::uint64_t kUs = 1'000'000;  // ps
constexpr std::uint16_t kCmd = 0x1F0, kCtl = 0x3F6, kCmd2 = 0x170, kCtl2 = 0x376, kBm = 0xC000;
constexpr std::uint16_t kData = kCmd, kError = kCmd + 1, kFeature = kCmd + 1, kNsect = kCmd + 2,
                        kLbal = kCmd + 3, kLbam = kCmd + 4, kLbah = kCmd + 5, kDevice = kCmd + 6,
                        kStatus = kCmd + 7, kCommand = kCmd + 7;
constexpr std::uint64_t kMemBytes = 1 << 20;  // fake guest memory: 1 MiB

// Ramdisk service time of an n-sector request: 10 us + n * 512 B at 1.024 GB/s.
std::uint64_t service(std::uint32_t sectors) { return 10 * kUs + std::uint64_t{sectors} * 500'000; }

std::vector<std::uint8_t> pattern(std::size_t bytes, std::uint8_t seed) {
    std::vector<std::uint8_t> v(bytes);
    for (std::size_t i = 0; i < bytes; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 13 + (i >> 9));
    return v;
}

struct Prd {
    std::uint32_t addr, count;  // count: byte count in bits 15:0, ATA_PRD_EOT in bit 31
};

// One controller, up to four ramdisks, 1 MiB of guest memory and a record of completion requests.
struct Bench {
    StatsGroup root{"ide"};
    std::vector<std::unique_ptr<StatsGroup>> disk_groups;
    std::vector<std::unique_ptr<Disk>> disk_store;
    std::array<Disk*, 4> disks{};
    std::vector<std::uint8_t> mem = std::vector<std::uint8_t>(kMemBytes);
    struct Request {
        unsigned channel;
        std::uint64_t at;
    };
    std::vector<Request> requests;
    std::unique_ptr<PiixIde> ide;
    std::uint64_t now = 0;

    explicit Bench(std::array<std::uint64_t, 4> sectors = {2048, 0, 0, 0}, DiskConfig dc = {}) {
        for (unsigned i = 0; i < 4; ++i) {
            if (!sectors[i]) continue;
            disk_groups.push_back(std::make_unique<StatsGroup>("disk" + std::to_string(i), &root));
            disk_store.push_back(
                std::make_unique<Disk>(std::make_unique<MemoryImage>(sectors[i]),
                                       std::make_unique<RamdiskModel>(RamdiskParams{10 * kUs, 1'024'000'000}),
                                       dc, *disk_groups.back()));
            disks[i] = disk_store.back().get();
        }
        auto access = [this](std::uint64_t gpa, void* buf, std::size_t len, bool write) {
            if (gpa > mem.size() || len > mem.size() - gpa) return false;
            if (write)
                std::memcpy(mem.data() + gpa, buf, len);
            else
                std::memcpy(buf, mem.data() + gpa, len);
            return true;
        };
        auto irq = [this](unsigned ch, std::uint64_t at) { requests.push_back({ch, at}); };
        ide = std::make_unique<PiixIde>(PiixIdeConfig{}, disks, access, irq, root);
    }

    std::uint8_t inb(std::uint16_t p) { return static_cast<std::uint8_t>(ide->read(p, 1, now)); }
    std::uint16_t inw(std::uint16_t p) { return static_cast<std::uint16_t>(ide->read(p, 2, now)); }
    std::uint32_t inl(std::uint16_t p) { return ide->read(p, 4, now); }
    void outb(std::uint16_t p, std::uint8_t v) { ide->write(p, 1, v, now); }
    void outw(std::uint16_t p, std::uint16_t v) { ide->write(p, 2, v, now); }
    void outl(std::uint16_t p, std::uint32_t v) { ide->write(p, 4, v, now); }

    // Runs the last requested completion at its time.
    bool finish(unsigned ch = 0) {
        if (requests.empty()) return false;
        now = requests.back().at;
        return ide->complete(ch, now);
    }

    void lba28(std::uint32_t lba, std::uint8_t count, std::uint8_t dev = 0) {
        outb(kNsect, count);
        outb(kLbal, static_cast<std::uint8_t>(lba));
        outb(kLbam, static_cast<std::uint8_t>(lba >> 8));
        outb(kLbah, static_cast<std::uint8_t>(lba >> 16));
        outb(kDevice, static_cast<std::uint8_t>(ATA_LBA | dev | ((lba >> 24) & 0x0F)));
    }
    // LBA48: each FIFO register written twice, high-order byte first.
    void lba48(std::uint64_t lba, std::uint16_t count) {
        outb(kNsect, static_cast<std::uint8_t>(count >> 8));
        outb(kNsect, static_cast<std::uint8_t>(count));
        outb(kLbal, static_cast<std::uint8_t>(lba >> 24));
        outb(kLbal, static_cast<std::uint8_t>(lba));
        outb(kLbam, static_cast<std::uint8_t>(lba >> 32));
        outb(kLbam, static_cast<std::uint8_t>(lba >> 8));
        outb(kLbah, static_cast<std::uint8_t>(lba >> 40));
        outb(kLbah, static_cast<std::uint8_t>(lba >> 16));
        outb(kDevice, ATA_LBA);
    }

    void put32(std::uint64_t gpa, std::uint32_t v) {
        for (unsigned i = 0; i < 4; ++i) mem[gpa + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    void prd_table(std::uint32_t table, const std::vector<Prd>& entries) {
        for (std::size_t i = 0; i < entries.size(); ++i) {
            put32(table + 8 * i, entries[i].addr);
            put32(table + 8 * i + 4, entries[i].count);
        }
        outl(kBm + ATA_DMA_TABLE_OFS, table);
    }
    // send_dma_request's preamble: stop the bus master, clear its interrupt, select device 0.
    void bm_idle() {
        outb(kDevice, ATA_LBA);
        outb(kBm + ATA_DMA_CMD, 0);
        outb(kBm + ATA_DMA_STATUS, ATA_DMA_INTR | ATA_DMA_ERR);
    }
    std::uint8_t bm_status() { return inb(kBm + ATA_DMA_STATUS); }

    void disk_write(unsigned drive, std::uint64_t lba, const std::vector<std::uint8_t>& data) {
        auto copy = data;
        auto n = static_cast<std::uint32_t>(data.size() / kSectorSize);
        ASSERT_TRUE(disks[drive]->submit({StorageOp::write, lba, n, 0}, 0, copy.data()).ok);
    }
    std::vector<std::uint8_t> disk_peek(unsigned drive, std::uint64_t lba, std::uint32_t n) {
        std::vector<std::uint8_t> v(std::size_t{n} * kSectorSize);
        disks[drive]->peek(lba, n, v.data());
        return v;
    }
    std::vector<std::uint8_t> mem_at(std::uint64_t gpa, std::size_t len) {
        return {mem.begin() + static_cast<long>(gpa), mem.begin() + static_cast<long>(gpa + len)};
    }

    // IDENTIFY DEVICE through PIO on the selected drive; the 256 words.
    std::vector<std::uint16_t> identify() {
        outb(kCommand, WIN_IDENTIFY);
        inb(kStatus);
        std::vector<std::uint16_t> w(256);
        for (auto& x : w) x = inw(kData);
        return w;
    }

    std::uint64_t family(const char* dotted, const char* label) const {
        const CounterFamily* f = root.find_family(dotted);
        return f ? f->value(label) : ~std::uint64_t{0};
    }
    std::uint64_t counter(const char* dotted) const {
        const Counter* c = root.find_counter(dotted);
        return c ? c->value() : ~std::uint64_t{0};
    }
};

std::string ata_string(const std::vector<std::uint16_t>& w, unsigned first, unsigned words) {
    std::string s;
    for (unsigned i = first; i < first + words; ++i) {
        s += static_cast<char>(w[i] >> 8);
        s += static_cast<char>(w[i] & 0xFF);
    }
    return s;
}

// ---- PCI identity and decoding ----------------------------------------------------------------

TEST(PiixIdePci, HeaderIsThePiix3IdeFunction) {
    Bench b;
    auto h = b.ide->pci_config().header();
    // 82371SB function 1: 8086:7010, class 01 01 80, status 0280h, BMIBA = C001h (I/O space).
    const std::pair<unsigned, std::uint8_t> expect[] = {
        {0x00, 0x86}, {0x01, 0x80}, {0x02, 0x10}, {0x03, 0x70}, {0x04, 0x00}, {0x05, 0x00},
        {0x06, 0x80}, {0x07, 0x02}, {0x08, 0x00}, {0x09, 0x80}, {0x0A, 0x01}, {0x0B, 0x01},
        {0x0E, 0x00}, {0x10, 0x00}, {0x20, 0x01}, {0x21, 0xC0}, {0x22, 0x00}, {0x23, 0x00},
    };
    for (auto [off, v] : expect) EXPECT_EQ(h[off], v) << "config offset 0x" << std::hex << off;
    EXPECT_EQ(b.ide->pci_config().bar4(), 0xC001u);
}

TEST(PiixIdePorts, ClaimsLegacyPortsAndBar4Only) {
    Bench b;
    struct Row {
        std::uint16_t port;
        bool claimed;
        const char* intent;
    } rows[] = {
        {0x1F0, true, "primary data"},
        {0x1F7, true, "primary status/command"},
        {0x1F8, false, "past the command block"},
        {0x1EF, false, "before it"},
        {0x3F6, true, "primary control"},
        {0x3F7, false, "0x3F7 belongs to the floppy"},
        {0x170, true, "secondary data"},
        {0x177, true, "secondary status"},
        {0x376, true, "secondary control"},
        {0x377, false, "floppy 2 DIR"},
        {0xC000, true, "BM primary command"},
        {0xC00F, true, "BM secondary table, last byte"},
        {0xC010, false, "past BAR4"},
    };
    for (const Row& r : rows) EXPECT_EQ(b.ide->claims(r.port), r.claimed) << r.intent;
    EXPECT_THROW(b.ide->read(0x1F8, 1, 0), std::invalid_argument);
    EXPECT_THROW(b.ide->read(0x1F0, 3, 0), std::invalid_argument);
}

// ---- IDENTIFY DEVICE ---------------------------------------------------------------------------

TEST(PiixIdeIdentify, PioDataInBlockWithCapacityWords) {
    Bench b({32768, 0, 0, 0});
    // Power-on: DRDY|DSC and the ATA signature (Sector Count 1, LBA Low 1, LBA Mid/High 0).
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.inb(kNsect), 1);
    EXPECT_EQ(b.inb(kLbal), 1);
    EXPECT_EQ(b.inb(kLbam), 0);
    EXPECT_EQ(b.inb(kLbah), 0);

    b.outb(kDevice, 0xA0);
    b.outb(kCommand, WIN_IDENTIFY);
    EXPECT_TRUE(b.requests.empty()) << "IDENTIFY needs no disk access";
    EXPECT_EQ(b.inb(kDevice) & ATA_DEV1, 0);
    // PIO data-in: INTRQ with DRQ. Alternate Status does not acknowledge it, Status does.
    EXPECT_TRUE(b.ide->irq_level(0));
    EXPECT_EQ(b.inb(kCtl), 0x58);
    EXPECT_TRUE(b.ide->irq_level(0));
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR) << "the bus master latches every INTRQ";
    EXPECT_EQ(b.inb(kStatus), 0x58);
    EXPECT_FALSE(b.ide->irq_level(0));

    std::vector<std::uint16_t> w(256);
    for (unsigned i = 0; i < 256; ++i) {
        ASSERT_EQ(b.inb(kCtl), 0x58) << "DRQ for word " << i;
        w[i] = b.inw(kData);
    }
    EXPECT_EQ(b.inb(kStatus), 0x50) << "DRQ clears after the 256th word";
    EXPECT_FALSE(b.ide->intrq_pending(0)) << "no interrupt after the last block";
    EXPECT_EQ(b.inw(kData), 0) << "data port outside a data phase";

    const std::pair<unsigned, std::uint16_t> words[] = {
        {0, 0x0040},                                // fixed ATA device
        {1, 32},                                    // cylinders = 32768 / (16 * 63)
        {3, 16},                                    // heads
        {6, 63},                                    // sectors per track
        {47, 0x8010},                               // READ/WRITE MULTIPLE up to 16 sectors
        {49, 0x0B00},                               // IORDY, LBA, DMA
        {50, 0x4000},  {53, 0x0007}, {57, 0x7E00},  // CHS capacity 32 * 16 * 63 = 32256
        {58, 0x0000},  {59, 0x0110},                // multiple setting valid, 16
        {60, 0x8000},                               // LBA28 capacity 32768
        {61, 0x0000},  {63, 0x0007},                // multiword DMA 0-2
        {64, 0x0003},                               // PIO 3-4
        {80, 0x01F0},  {82, 0x4000},                // NOP; no write cache on this disk
        {83, 0x7400},                               // FLUSH CACHE EXT, FLUSH CACHE, 48-bit address, bit 14
        {85, 0x4000},  {86, 0x3400}, {88, 0x203F},  // Ultra DMA 0-5, 5 selected
        {100, 0x8000},                              // LBA48 capacity 32768
        {101, 0},      {102, 0},     {103, 0},
    };
    for (auto [i, v] : words) EXPECT_EQ(w[i], v) << "IDENTIFY word " << i;
    EXPECT_EQ(ata_string(w, 10, 10), "XS00001             ");
    EXPECT_EQ(ata_string(w, 23, 4), "1.0     ");
    EXPECT_EQ(ata_string(w, 27, 20), "XENSIM HARDDISK                         ");
    // Integrity word: A5h and a checksum making all 512 bytes sum to 0 (mod 256).
    EXPECT_EQ(w[255] & 0xFF, 0xA5);
    unsigned sum = 0;
    for (auto x : w) sum += (x & 0xFF) + (x >> 8);
    EXPECT_EQ(sum % 256, 0u);
    EXPECT_EQ(b.family("primary.commands", "IDENTIFY DEVICE"), 1u);
    EXPECT_EQ(b.counter("primary.interrupts"), 1u);
    EXPECT_EQ(b.family("primary.register_reads", "Data"), 257u);
}

TEST(PiixIdeIdentify, DiskBeyondLba28CapsWords60And61) {
    const std::uint64_t sectors = (std::uint64_t{1} << 28) + 4096;  // 128 GiB + 2 MiB, sparse
    Bench b({sectors, 0, 0, 0});
    auto w = b.identify();
    EXPECT_EQ(w[60], 0xFFFF);
    EXPECT_EQ(w[61], 0x0FFF) << "ATA8-ACS: 0FFFFFFFh when the capacity exceeds LBA28";
    EXPECT_EQ(w[100], 0x1000);
    EXPECT_EQ(w[101], 0x1000);
    EXPECT_EQ(w[102], 0);
    EXPECT_EQ(w[103], 0);
    EXPECT_EQ(w[1], 16383) << "CHS cylinders are clamped";
}

// ---- DMA ---------------------------------------------------------------------------------------

TEST(PiixIdeDma, WriteDmaThenReadDmaThroughPrdTables) {
    Bench b;
    const auto data = pattern(4096, 7);
    std::memcpy(b.mem.data() + 0x10000, data.data(), data.size());

    // WRITE DMA of 8 sectors at LBA 100 from two regions (1 KiB + 3 KiB, the second ends the table).
    b.bm_idle();
    b.prd_table(0x1000, {{0x10000, 1024}, {0x10400, 3072 | ATA_PRD_EOT}});
    b.lba28(100, 8);
    b.now = 1000;
    b.outb(kCommand, WIN_WRITEDMA);
    EXPECT_EQ(b.inb(kCtl), 0x58) << "DRDY|DSC|DRQ: waiting for the bus master";
    EXPECT_TRUE(b.requests.empty());
    EXPECT_EQ(b.bm_status(), 0);

    b.now = 2000;
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START);  // bit 3 clear: the bus master reads memory
    ASSERT_EQ(b.requests.size(), 1u);
    EXPECT_EQ(b.requests[0].channel, 0u);
    EXPECT_EQ(b.requests[0].at, 2000 + service(8));
    EXPECT_EQ(b.inb(kCtl), 0xC0) << "BSY|DRDY while at the disk";
    EXPECT_EQ(b.bm_status(), ATA_DMA_ACTIVE);
    EXPECT_FALSE(b.ide->irq_level(0));
    EXPECT_EQ(b.disk_peek(0, 100, 8), data) << "data moves at submit";

    EXPECT_FALSE(b.ide->complete(0, b.requests[0].at - 1)) << "not before its time";
    EXPECT_EQ(b.inb(kCtl), 0xC0);
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.inb(kCtl), 0x50);
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR) << "PRDs exactly the transfer: Interrupt 1, Active 0";
    EXPECT_TRUE(b.ide->irq_level(0));
    b.inb(kCtl);
    EXPECT_TRUE(b.ide->irq_level(0)) << "Alternate Status leaves INTRQ";
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_FALSE(b.ide->irq_level(0)) << "Status acknowledges INTRQ";
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR) << "the bus-master bit stays until written 1";
    b.outb(kBm + ATA_DMA_STATUS, ATA_DMA_INTR);
    EXPECT_EQ(b.bm_status(), 0);
    // The task file points past the transfer (QEMU ide_set_sector), nothing remains.
    EXPECT_EQ(b.inb(kLbal), 108);
    EXPECT_EQ(b.inb(kNsect), 0);
    EXPECT_FALSE(b.ide->complete(0, b.now)) << "nothing left to complete";

    // READ DMA of the same sectors into one 4 KiB region.
    b.bm_idle();
    b.prd_table(0x2000, {{0x20000, 4096 | ATA_PRD_EOT}});
    b.lba28(100, 8);
    b.now = 50 * kUs;
    b.outb(kCommand, WIN_READDMA);
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
    ASSERT_EQ(b.requests.size(), 2u);
    EXPECT_EQ(b.requests[1].at, 50 * kUs + service(8));
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR);
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.mem_at(0x20000, 4096), data);

    EXPECT_EQ(b.family("primary.commands", "WRITE DMA"), 1u);
    EXPECT_EQ(b.family("primary.commands", "READ DMA"), 1u);
    EXPECT_EQ(b.counter("primary.bytes_written"), 4096u);
    EXPECT_EQ(b.counter("primary.bytes_read"), 4096u);
    EXPECT_EQ(b.counter("primary.dma_transfers"), 2u);
    EXPECT_EQ(b.counter("primary.interrupts"), 2u);
    EXPECT_EQ(b.family("primary.register_writes", "Command"), 2u);
}

TEST(PiixIdeDma, BusMasterStartedBeforeTheCommand) {
    Bench b;
    b.disk_write(0, 5, pattern(512, 3));
    b.bm_idle();
    b.prd_table(0x1000, {{0x8000, 512 | ATA_PRD_EOT}});
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
    EXPECT_EQ(b.bm_status(), ATA_DMA_ACTIVE);
    EXPECT_TRUE(b.requests.empty());
    b.lba28(5, 1);
    b.now = 7000;
    b.outb(kCommand, WIN_READDMA);
    ASSERT_EQ(b.requests.size(), 1u) << "the transfer starts with the command";
    EXPECT_EQ(b.requests[0].at, 7000 + service(1));
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR);
    EXPECT_EQ(b.mem_at(0x8000, 512), pattern(512, 3));
}

TEST(PiixIdeDma, ReadDmaExtBeyond128GiB) {
    const std::uint64_t sectors = (std::uint64_t{1} << 28) + 4096;
    const std::uint64_t lba = (std::uint64_t{1} << 28) + 7;  // unreachable with LBA28
    Bench b({sectors, 0, 0, 0});
    const auto data = pattern(1024, 99);
    b.disk_write(0, lba, data);

    b.bm_idle();
    b.prd_table(0x1000, {{0x30000, 1024 | ATA_PRD_EOT}});
    b.lba48(lba, 2);
    // The FIFO: HOB in Device Control reads the previous (high-order) bytes.
    EXPECT_EQ(b.inb(kLbal), 0x07);
    EXPECT_EQ(b.inb(kNsect), 2);
    b.outb(kCtl, ATA_HOB);
    EXPECT_EQ(b.inb(kLbal), 0x10);
    EXPECT_EQ(b.inb(kNsect), 0x00);
    EXPECT_EQ(b.inb(kLbam), 0x00);
    b.outb(kCtl, 0);

    b.outb(kCommand, WIN_READDMA_EXT);
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
    ASSERT_EQ(b.requests.size(), 1u);
    EXPECT_EQ(b.requests[0].at, service(2));
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR);
    EXPECT_EQ(b.mem_at(0x30000, 1024), data);
    // Address registers after the transfer: lba + 2, high-order bytes under HOB.
    EXPECT_EQ(b.inb(kLbal), 0x09);
    b.outb(kCtl, ATA_HOB);
    EXPECT_EQ(b.inb(kLbal), 0x10);
    b.outb(kCtl, 0);
    EXPECT_EQ(b.family("primary.commands", "READ DMA EXT"), 1u);
}

TEST(PiixIdeDma, SectorCountZeroMeans256Or65536) {
    Bench b;
    const auto data = pattern(256 * 512, 21);
    b.disk_write(0, 1000, data);
    b.bm_idle();
    b.prd_table(0x1000, {{0x10000, 0}, {0x20000, 0 | ATA_PRD_EOT}});  // 2 x 64 KiB
    b.lba28(1000, 0);
    b.outb(kCommand, WIN_READDMA);
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
    ASSERT_EQ(b.requests.size(), 1u);
    EXPECT_EQ(b.requests[0].at, service(256)) << "LBA28: count 0 is 256 sectors";
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR);
    EXPECT_EQ(b.mem_at(0x10000, data.size()), data);

    // LBA48: count 0 (both bytes) is 65536 sectors = 32 MiB, here 512 PRDs of 64 KiB over one
    // region (the whole 4 KiB table): exactly the transfer, so Active clears.
    Bench big({70000, 0, 0, 0});
    big.bm_idle();
    std::vector<Prd> prds(512, Prd{0x10000, 0});
    prds.back().count |= ATA_PRD_EOT;
    big.prd_table(0x1000, prds);
    big.lba48(0, 0);
    big.outb(kCommand, WIN_READDMA_EXT);
    big.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
    ASSERT_EQ(big.requests.size(), 1u);
    EXPECT_EQ(big.requests[0].at, service(65536));
    ASSERT_TRUE(big.finish());
    EXPECT_EQ(big.bm_status(), ATA_DMA_INTR);
    EXPECT_EQ(big.counter("primary.bytes_read"), 32u << 20);
}

// SFF-8038i's three cases as QEMU's test_bmdma_various_prdts checks them, plus the fail-safe and
// the byte-count encodings. READ DMA from LBA 0 into 0x10000; table at 0x4000.
TEST(PiixIdeDma, PrdTableLengthsDecideActiveAndInterrupt) {
    struct Row {
        const char* intent;
        std::vector<Prd> prds;
        bool fill_to_fail_safe;  // 512 entries of 2 bytes, no end-of-table
        std::uint8_t sectors;
        std::uint8_t bm_status;  // after completion
        bool transfer;           // data moved, INTRQ raised
    } rows[] = {
        {"PRDs equal to the transfer", {{0x10000, 1024 | ATA_PRD_EOT}}, false, 2, ATA_DMA_INTR, true},
        {"PRDs longer than the transfer",
         {{0x10000, 4096 | ATA_PRD_EOT}},
         false,
         2,
         ATA_DMA_INTR | ATA_DMA_ACTIVE,
         true},
        {"PRDs shorter than the transfer", {{0x10000, 512 | ATA_PRD_EOT}}, false, 2, 0, false},
        {"no end-of-table: walked to the 4 KiB fail-safe (zero entries mean 64 KiB)",
         {{0x10000, 512}, {0x10200, 512}},
         false,
         2,
         ATA_DMA_INTR | ATA_DMA_ACTIVE,
         true},
        {"no end-of-table, 512 two-byte entries: 1 KiB < 2 KiB", {}, true, 4, 0, false},
        {"byte count 0 means 64 KiB", {{0x10000, 0 | ATA_PRD_EOT}}, false, 128, ATA_DMA_INTR, true},
        {"bit 0 of the byte count is ignored", {{0x10000, 513 | ATA_PRD_EOT}}, false, 1, ATA_DMA_INTR, true},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        Bench b;
        const auto data = pattern(std::size_t{r.sectors} * 512, 42);
        b.disk_write(0, 0, data);
        b.bm_idle();
        std::vector<Prd> prds = r.prds;
        if (r.fill_to_fail_safe)
            for (unsigned i = 0; i < 520; ++i) prds.push_back({0x10000 + 2 * i, 2});
        b.prd_table(0x4000, prds);
        b.lba28(0, r.sectors);
        b.outb(kCommand, WIN_READDMA);
        b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
        EXPECT_EQ(b.requests.size(), r.transfer ? 1u : 0u);
        if (r.transfer) {
            ASSERT_TRUE(b.finish());
        }
        EXPECT_EQ(b.bm_status(), r.bm_status);
        EXPECT_EQ(b.ide->irq_level(0), r.transfer);
        EXPECT_EQ(b.inb(kStatus), 0x50) << "DRDY, no BSY/DRQ/ERR either way (QEMU)";
        EXPECT_EQ(b.mem_at(0x10000, data.size()) == data, r.transfer);
        EXPECT_EQ(b.family("primary.errors", "prd_table_too_short"), r.transfer ? 0u : 1u);
    }
}

TEST(PiixIdeDma, StopWhileAtTheDiskCompletesAtOnce) {
    Bench b;
    b.bm_idle();
    b.prd_table(0x1000, {{0x10000, 8192 | ATA_PRD_EOT}});
    b.lba28(0, 4);
    b.outb(kCommand, WIN_READDMA);
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | ATA_DMA_WR);
    ASSERT_EQ(b.requests.size(), 1u);
    b.now = 1000;
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_WR);  // Start cleared: QEMU drains the request
    EXPECT_EQ(b.inb(kCtl), 0x50);
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR) << "completed, and Active cleared by the stop";
    EXPECT_TRUE(b.ide->irq_level(0));
    EXPECT_FALSE(b.ide->in_flight(0));
    EXPECT_FALSE(b.finish()) << "the scheduled completion finds nothing";
    EXPECT_EQ(b.counter("primary.dma_transfers"), 1u);
}

// ---- PIO ---------------------------------------------------------------------------------------

TEST(PiixIdePio, WriteSectorsThenReadSectors) {
    Bench b;
    const auto data = pattern(3 * 512, 5);
    b.lba28(10, 3);
    b.outb(kCommand, WIN_WRITE);
    EXPECT_EQ(b.inb(kCtl), 0x58) << "PIO data-out: DRQ for the first block";
    EXPECT_FALSE(b.ide->intrq_pending(0)) << "... without an interrupt";
    for (unsigned blk = 0; blk < 3; ++blk) {
        SCOPED_TRACE(blk);
        for (unsigned i = 0; i < 256; ++i)
            b.outw(kData,
                   static_cast<std::uint16_t>(data[blk * 512 + 2 * i] | data[blk * 512 + 2 * i + 1] << 8));
        EXPECT_EQ(b.inb(kCtl), 0xD0) << "BSY after each block";
        ASSERT_EQ(b.requests.size(), blk + 1);
        EXPECT_EQ(b.requests.back().at, b.now + service(1));
        ASSERT_TRUE(b.finish());
        EXPECT_TRUE(b.ide->irq_level(0)) << "INTRQ after each block";
        EXPECT_EQ(b.inb(kStatus), blk < 2 ? 0x58 : 0x50) << "DRQ for the next block, none after the last";
    }
    EXPECT_EQ(b.disk_peek(0, 10, 3), data);
    EXPECT_EQ(b.inb(kLbal), 13);
    EXPECT_EQ(b.inb(kNsect), 0);

    // READ SECTORS: INTRQ before each block; the middle block read with 32-bit accesses.
    b.lba28(10, 3);
    const std::uint64_t start = b.now;
    b.outb(kCommand, WIN_READ);
    EXPECT_EQ(b.inb(kCtl), 0xD0) << "BSY while the first block is read";
    ASSERT_EQ(b.requests.size(), 4u);
    EXPECT_EQ(b.requests.back().at, start + service(1));
    std::vector<std::uint8_t> got;
    for (unsigned blk = 0; blk < 3; ++blk) {
        SCOPED_TRACE(blk);
        ASSERT_TRUE(b.finish());
        EXPECT_TRUE(b.ide->irq_level(0));
        EXPECT_EQ(b.inb(kStatus), 0x58);
        if (blk == 1) {
            for (unsigned i = 0; i < 128; ++i) {
                std::uint32_t v = b.inl(kData);
                for (unsigned k = 0; k < 4; ++k) got.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
            }
        } else {
            for (unsigned i = 0; i < 256; ++i) {
                std::uint16_t v = b.inw(kData);
                got.push_back(static_cast<std::uint8_t>(v));
                got.push_back(static_cast<std::uint8_t>(v >> 8));
            }
        }
        if (blk < 2) {
            EXPECT_EQ(b.inb(kCtl), 0xD0) << "next block at the disk";
            EXPECT_EQ(b.requests.size(), 5u + blk);
        }
    }
    EXPECT_EQ(b.inb(kCtl), 0x50);
    EXPECT_EQ(b.requests.size(), 6u) << "three blocks, three disk requests";
    EXPECT_FALSE(b.ide->intrq_pending(0)) << "no interrupt after the last data-in block";
    EXPECT_EQ(got, data);
    EXPECT_EQ(b.counter("primary.bytes_read"), 1536u);
    EXPECT_EQ(b.counter("primary.bytes_written"), 1536u);
}

TEST(PiixIdePio, SetMultipleModeAndMultipleBlocks) {
    Bench b;
    struct Row {
        std::uint8_t count;
        std::uint8_t status, error;
        const char* intent;
    } rows[] = {
        {3, 0x41, ATA_ABORTED, "not a power of two"},
        {32, 0x41, ATA_ABORTED, "above the 16 of IDENTIFY word 47"},
        {4, 0x50, 0, "accepted"},
    };
    for (const Row& r : rows) {
        b.outb(kNsect, r.count);
        b.outb(kCommand, WIN_SETMULT);
        EXPECT_TRUE(b.ide->irq_level(0)) << r.intent;
        EXPECT_EQ(b.inb(kStatus), r.status) << r.intent;
        EXPECT_EQ(b.inb(kError), r.error) << r.intent;
    }
    EXPECT_EQ(b.identify()[59], 0x0104) << "current multiple count";

    // WRITE MULTIPLE of 10 sectors: DRQ blocks of 4, 4 and 2 sectors, one disk request each.
    const auto data = pattern(10 * 512, 77);
    b.lba28(200, 10);
    b.outb(kCommand, WIN_MULTWRITE);
    std::size_t off = 0;
    const std::uint32_t blocks[] = {4, 4, 2};
    for (std::uint32_t n : blocks) {
        SCOPED_TRACE(n);
        for (unsigned i = 0; i < n * 256; ++i, off += 2) {
            ASSERT_EQ(b.inb(kCtl), 0x58);
            b.outw(kData, static_cast<std::uint16_t>(data[off] | data[off + 1] << 8));
        }
        EXPECT_EQ(b.inb(kCtl), 0xD0);
        EXPECT_EQ(b.requests.back().at, b.now + service(n));
        ASSERT_TRUE(b.finish());
        b.inb(kStatus);
    }
    EXPECT_EQ(b.requests.size(), 3u);
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.disk_peek(0, 200, 10), data);

    // READ MULTIPLE of the same: three interrupts, three requests.
    b.lba28(200, 10);
    b.outb(kCommand, WIN_MULTREAD);
    std::vector<std::uint8_t> got;
    for (std::uint32_t n : blocks) {
        SCOPED_TRACE(n);
        EXPECT_EQ(b.requests.back().at, b.now + service(n));
        ASSERT_TRUE(b.finish());
        EXPECT_EQ(b.inb(kStatus), 0x58);
        for (unsigned i = 0; i < n * 256; ++i) {
            std::uint16_t v = b.inw(kData);
            got.push_back(static_cast<std::uint8_t>(v));
            got.push_back(static_cast<std::uint8_t>(v >> 8));
        }
    }
    EXPECT_EQ(b.requests.size(), 6u);
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(got, data);

    // Multiple mode off: READ MULTIPLE aborts.
    b.outb(kNsect, 0);
    b.outb(kCommand, WIN_SETMULT);
    EXPECT_EQ(b.inb(kStatus), 0x50);
    b.lba28(200, 1);
    b.outb(kCommand, WIN_MULTREAD);
    EXPECT_EQ(b.inb(kStatus), 0x41);
    EXPECT_EQ(b.inb(kError), ATA_ABORTED);
    EXPECT_EQ(b.requests.size(), 6u);
    EXPECT_EQ(b.family("primary.errors", "multiple_mode_off"), 1u);
}

TEST(PiixIdePio, ChsAddressing) {
    Bench b;
    // Geometry 16 heads x 63 sectors: C/H/S 1/2/3 is LBA 1*1008 + 2*63 + 2 = 1136.
    b.disk_write(0, 1136, pattern(512, 11));
    b.outb(kNsect, 1);
    b.outb(kLbal, 3);  // sector
    b.outb(kLbam, 1);  // cylinder low
    b.outb(kLbah, 0);
    b.outb(kDevice, 0xA0 | 2);  // CHS, head 2
    b.outb(kCommand, WIN_READ);
    ASSERT_TRUE(b.finish());
    b.inb(kStatus);
    std::vector<std::uint8_t> got;
    for (unsigned i = 0; i < 256; ++i) {
        std::uint16_t v = b.inw(kData);
        got.push_back(static_cast<std::uint8_t>(v));
        got.push_back(static_cast<std::uint8_t>(v >> 8));
    }
    EXPECT_EQ(got, pattern(512, 11));
    EXPECT_EQ(b.inb(kLbal), 4) << "next sector, same track";
    EXPECT_EQ(b.inb(kDevice), 0xA2);
}

// ---- FLUSH CACHE -------------------------------------------------------------------------------

TEST(PiixIdeFlush, FlushCacheDrainsTheWriteCache) {
    DiskConfig dc;
    dc.write_cache = true;
    Bench b({2048, 0, 0, 0}, dc);
    auto w = b.identify();
    EXPECT_EQ(w[82], 0x4020) << "write cache supported";
    EXPECT_EQ(w[85], 0x4020) << "write cache enabled";

    std::memcpy(b.mem.data() + 0x10000, pattern(4096, 1).data(), 4096);
    b.bm_idle();
    b.prd_table(0x1000, {{0x10000, 4096 | ATA_PRD_EOT}});
    b.lba28(0, 8);
    b.outb(kCommand, WIN_WRITEDMA);
    b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START);
    ASSERT_TRUE(b.finish());
    b.inb(kStatus);
    EXPECT_EQ(b.disks[0]->cached_writes(), 1u);
    EXPECT_EQ(b.disks[0]->durable_writes(), 0u);

    b.now = 100 * kUs;
    b.outb(kCommand, WIN_FLUSH_CACHE);
    EXPECT_EQ(b.inb(kCtl), 0xC0) << "BSY while the cache destages";
    ASSERT_EQ(b.requests.size(), 2u);
    EXPECT_EQ(b.requests.back().at, 100 * kUs + service(8)) << "the destage of the cached write";
    EXPECT_EQ(b.disks[0]->cached_writes(), 0u);
    ASSERT_TRUE(b.finish());
    EXPECT_TRUE(b.ide->irq_level(0));
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.disks[0]->durable_writes(), 1u);

    // Nothing cached: FLUSH CACHE EXT completes at its submit time, still through complete().
    b.now = 200 * kUs;
    b.outb(kCommand, WIN_FLUSH_CACHE_EXT);
    EXPECT_EQ(b.inb(kCtl), 0xC0);
    EXPECT_EQ(b.requests.back().at, 200 * kUs);
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.family("primary.commands", "FLUSH CACHE"), 1u);
    EXPECT_EQ(b.family("primary.commands", "FLUSH CACHE EXT"), 1u);
}

// ---- Interrupts, SET FEATURES, registers -------------------------------------------------------

TEST(PiixIdeIrq, NienMasksTheLineNotTheLatch) {
    Bench b;
    b.outb(kCtl, ATA_NIEN);
    b.outb(kCommand, WIN_IDENTIFY);
    EXPECT_TRUE(b.ide->intrq_pending(0));
    EXPECT_FALSE(b.ide->irq_level(0));
    EXPECT_EQ(b.bm_status(), 0) << "no rising line, no bus-master Interrupt";
    EXPECT_EQ(b.counter("primary.interrupts_masked"), 1u);
    b.outb(kCtl, 0);
    EXPECT_TRUE(b.ide->irq_level(0)) << "clearing nIEN releases the pending interrupt";
    EXPECT_EQ(b.bm_status(), ATA_DMA_INTR);
    EXPECT_EQ(b.inb(kStatus), 0x58);
    EXPECT_FALSE(b.ide->irq_level(0));
    EXPECT_FALSE(b.ide->intrq_pending(0));
    EXPECT_FALSE(b.ide->irq_level(1)) << "the other channel is untouched";
}

TEST(PiixIdeFeatures, SetTransferModeShowsInIdentify) {
    struct Row {
        std::uint8_t feature, count;
        bool ok;
        std::uint16_t w62, w63, w88;
        const char* intent;
    } rows[] = {
        {0x03, 0x42, true, 0x0007, 0x0007, 0x043F, "Ultra DMA 2"},
        {0x03, 0x22, true, 0x0007, 0x0407, 0x003F, "multiword DMA 2"},
        {0x03, 0x12, true, 0x0407, 0x0007, 0x003F, "single-word DMA 2"},
        {0x03, 0x0C, true, 0x0007, 0x0007, 0x003F, "PIO flow control mode 4"},
        {0x03, 0x47, false, 0x0007, 0x0007, 0x203F, "Ultra DMA 7 is not listed: ABRT"},
        {0x03, 0x23, false, 0x0007, 0x0007, 0x203F, "multiword DMA 3: ABRT"},
        {0x03, 0x80, false, 0x0007, 0x0007, 0x203F, "unknown mode class: ABRT"},
        {0xAA, 0x00, true, 0x0007, 0x0007, 0x203F, "read look-ahead enable: accepted no-op"},
        {0x02, 0x00, false, 0x0007, 0x0007, 0x203F, "enable write cache the disk does not have"},
        {0x82, 0x00, true, 0x0007, 0x0007, 0x203F, "disable a write cache that is off"},
        {0x10, 0x00, false, 0x0007, 0x0007, 0x203F, "unknown subcommand: ABRT"},
    };
    for (const Row& r : rows) {
        Bench b;
        b.outb(kFeature, r.feature);
        b.outb(kNsect, r.count);
        b.outb(kCommand, WIN_SETFEATURES);
        EXPECT_TRUE(b.ide->irq_level(0)) << r.intent;
        EXPECT_EQ(b.inb(kStatus), r.ok ? 0x50 : 0x41) << r.intent;
        EXPECT_EQ(b.inb(kError), r.ok ? 0 : ATA_ABORTED) << r.intent;
        auto w = b.identify();
        EXPECT_EQ(w[62], r.w62) << r.intent;
        EXPECT_EQ(w[63], r.w63) << r.intent;
        EXPECT_EQ(w[88], r.w88) << r.intent;
    }
}

TEST(PiixIdeTaskfile, HobFifoAndWritesIgnoredWhileBusy) {
    Bench b;
    b.outb(kNsect, 0x12);
    b.outb(kNsect, 0x34);
    EXPECT_EQ(b.inb(kNsect), 0x34);
    b.outb(kCtl, ATA_HOB);
    EXPECT_EQ(b.inb(kNsect), 0x12) << "HOB reads the previous value";
    b.outb(kLbal, 0x56);  // any task-file write clears HOB
    EXPECT_EQ(b.inb(kNsect), 0x34);

    // While BSY (a PIO read at the disk), task-file writes and commands are ignored.
    b.lba28(0, 1);
    b.outb(kCommand, WIN_READ);
    EXPECT_EQ(b.inb(kCtl), 0xD0);
    b.outb(kLbal, 0x77);
    b.outb(kDevice, 0xB0);
    b.outb(kCommand, WIN_IDENTIFY);
    EXPECT_EQ(b.inb(kLbal), 0);
    EXPECT_EQ(b.inb(kDevice) & ATA_DEV1, 0);
    EXPECT_EQ(b.family("primary.ignored", "register_write_while_busy"), 2u);
    EXPECT_EQ(b.family("primary.ignored", "command_while_busy"), 1u);
    EXPECT_EQ(b.family("primary.commands", "IDENTIFY DEVICE"), 0u);
    // Byte access to the data port: reads FFh, writes are dropped.
    EXPECT_EQ(b.inb(kData), 0xFF);
}

TEST(PiixIdeBusMaster, RegisterMasks) {
    Bench b;
    struct Row {
        std::uint8_t write, expect;
        const char* intent;
    } rows[] = {
        {0xFF, 0x60, "only the DMA-capable bits are writable; Active is read-only"},
        {0x00, 0x00, "DMA-capable bits clear again"},
        {0x60, 0x60, "set drive 0/1 DMA capable"},
    };
    for (const Row& r : rows) {
        b.outb(kBm + ATA_DMA_STATUS, r.write);
        EXPECT_EQ(b.bm_status(), r.expect) << r.intent;
    }
    b.outb(kCommand, WIN_IDENTIFY);  // raises INTRQ: Interrupt set
    EXPECT_EQ(b.bm_status(), 0x64);
    b.outb(kBm + ATA_DMA_STATUS, 0x60);
    EXPECT_EQ(b.bm_status(), 0x64) << "writing 0 leaves Interrupt";
    b.outb(kBm + ATA_DMA_STATUS, 0x64);
    EXPECT_EQ(b.bm_status(), 0x60) << "writing 1 clears it";

    b.outb(kBm + ATA_DMA_CMD, 0xFF);
    EXPECT_EQ(b.inb(kBm + ATA_DMA_CMD), 0x09) << "Start and Read/Write control only";
    EXPECT_EQ(b.bm_status(), 0x61) << "Start sets Active";
    b.outb(kBm + ATA_DMA_CMD, 0);
    EXPECT_EQ(b.bm_status(), 0x60);

    b.outl(kBm + ATA_DMA_TABLE_OFS, 0x12345677);
    EXPECT_EQ(b.inl(kBm + ATA_DMA_TABLE_OFS), 0x12345674u) << "dword aligned";
    b.outw(kBm + ATA_DMA_TABLE_OFS + 2, 0xABCD);
    EXPECT_EQ(b.inl(kBm + ATA_DMA_TABLE_OFS), 0xABCD5674u);
    EXPECT_EQ(b.inw(kBm + ATA_DMA_TABLE_OFS + 2), 0xABCD);
    EXPECT_EQ(b.inl(kBm + 8 + ATA_DMA_TABLE_OFS), 0u) << "the secondary channel has its own";
    EXPECT_EQ(b.inw(kBm + ATA_DMA_CMD), 0xFFFF) << "Command is byte-wide (QEMU: all ones)";
    EXPECT_EQ(b.inb(kBm + 1), 0xFF) << "reserved";
}

// ---- Errors ------------------------------------------------------------------------------------

TEST(PiixIdeErrors, UnknownCommandsAbort) {
    const std::uint8_t opcodes[] = {0x00 /* NOP */, 0x5A, 0xA0 /* PACKET */, 0x90 /* DIAGNOSTIC */, 0xFF};
    for (std::uint8_t op : opcodes) {
        Bench b;
        b.outb(kCommand, op);
        EXPECT_TRUE(b.ide->irq_level(0)) << int(op);
        EXPECT_EQ(b.inb(kStatus), 0x41) << int(op);
        EXPECT_EQ(b.inb(kError), ATA_ABORTED) << int(op);
        EXPECT_TRUE(b.requests.empty());
        char label[16];
        std::snprintf(label, sizeof label, "unknown 0x%02x", op);
        EXPECT_EQ(b.family("primary.commands", label), 1u);
        EXPECT_EQ(b.family("primary.errors", "unknown_command"), 1u);
    }
}

TEST(PiixIdeErrors, DmaOutsideGuestMemory) {
    struct Row {
        const char* intent;
        std::uint32_t table;
        std::uint32_t region;
        std::uint8_t command;
        bool reaches_disk;  // the failure is reported at the disk's completion time
        const char* reason;
    } rows[] = {
        {"READ DMA into memory that is not there", 0x1000, 0x200000, WIN_READDMA, true, "dma_outside_memory"},
        {"READ DMA across the end of memory", 0x1000, kMemBytes - 512, WIN_READDMA, true,
         "dma_outside_memory"},
        {"WRITE DMA from memory that is not there", 0x1000, 0x200000, WIN_WRITEDMA, false,
         "dma_outside_memory"},
        {"PRD table outside memory", 0x300000, 0x10000, WIN_READDMA, false, "prd_table_outside_memory"},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        Bench b;
        b.bm_idle();
        if (r.table < kMemBytes)
            b.prd_table(r.table, {{r.region, 1024 | ATA_PRD_EOT}});
        else
            b.outl(kBm + ATA_DMA_TABLE_OFS, r.table);
        b.lba28(0, 2);
        b.outb(kCommand, r.command);
        b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | (r.command == WIN_READDMA ? ATA_DMA_WR : 0));
        EXPECT_EQ(b.requests.size(), r.reaches_disk ? 1u : 0u);
        if (r.reaches_disk) {
            EXPECT_EQ(b.inb(kCtl), 0xC0);
            ASSERT_TRUE(b.finish());
        }
        EXPECT_TRUE(b.ide->irq_level(0));
        EXPECT_EQ(b.bm_status(), ATA_DMA_ERR | ATA_DMA_INTR) << "Error set, Active clear";
        EXPECT_EQ(b.inb(kStatus), 0x41);
        EXPECT_EQ(b.inb(kError), ATA_ABORTED);
        EXPECT_EQ(b.family("primary.errors", r.reason), 1u);
        EXPECT_EQ(b.counter("primary.dma_transfers"), 0u);
        if (r.command == WIN_WRITEDMA) {
            EXPECT_EQ(b.disk_peek(0, 0, 2), std::vector<std::uint8_t>(1024, 0)) << "disk untouched";
        }
    }
}

TEST(PiixIdeErrors, LbaOutOfRangeAborts) {
    struct Row {
        const char* intent;
        std::uint8_t command;
        std::uint64_t lba;
        std::uint16_t count;
        bool ok;
    } rows[] = {
        {"READ DMA of the last two sectors", WIN_READDMA, 2046, 2, true},
        {"READ DMA one sector past the end", WIN_READDMA, 2047, 2, false},
        {"WRITE DMA at the capacity", WIN_WRITEDMA, 2048, 1, false},
        {"READ DMA EXT far beyond", WIN_READDMA_EXT, std::uint64_t{1} << 40, 1, false},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        Bench b;
        b.bm_idle();
        b.prd_table(0x1000, {{0x10000, 4096 | ATA_PRD_EOT}});
        if (r.command == WIN_READDMA_EXT)
            b.lba48(r.lba, r.count);
        else
            b.lba28(static_cast<std::uint32_t>(r.lba), static_cast<std::uint8_t>(r.count));
        b.outb(kCommand, r.command);
        b.outb(kBm + ATA_DMA_CMD, ATA_DMA_START | (r.command == WIN_WRITEDMA ? 0 : ATA_DMA_WR));
        EXPECT_EQ(b.requests.size(), r.ok ? 1u : 0u);
        if (r.ok) {
            ASSERT_TRUE(b.finish());
        }
        EXPECT_TRUE(b.ide->irq_level(0));
        // QEMU: ABRT (ide_sect_range_ok -> ide_dma_error); ATA8-ACS would say IDNF.
        EXPECT_EQ(b.inb(kStatus), r.ok ? 0x50 : 0x41);
        EXPECT_EQ(b.inb(kError), r.ok ? 0 : ATA_ABORTED);
        EXPECT_EQ(b.bm_status(), r.ok ? ATA_DMA_INTR | ATA_DMA_ACTIVE : ATA_DMA_INTR);
        EXPECT_EQ(b.family("primary.errors", "lba_out_of_range"), r.ok ? 0u : 1u);
    }

    // PIO: the first block is in range and is delivered, the second aborts when it is due.
    Bench b;
    b.lba28(2047, 2);
    b.outb(kCommand, WIN_READ);
    ASSERT_TRUE(b.finish());
    EXPECT_EQ(b.inb(kStatus), 0x58);
    for (unsigned i = 0; i < 256; ++i) b.inw(kData);
    EXPECT_EQ(b.requests.size(), 1u);
    EXPECT_TRUE(b.ide->irq_level(0));
    EXPECT_EQ(b.inb(kStatus), 0x41);
    EXPECT_EQ(b.inb(kError), ATA_ABORTED);
}

TEST(PiixIdeErrors, AbsentDrivesAsQemu) {
    Bench b({2048, 0, 0, 0});  // primary master only; secondary empty
    b.outb(kNsect, 5);
    b.outb(kDevice, 0xB0);  // the absent slave
    EXPECT_EQ(b.inb(kStatus), 0);
    EXPECT_EQ(b.inb(kCtl), 0);
    EXPECT_EQ(b.inb(kError), 0);
    EXPECT_EQ(b.inb(kNsect), 5) << "other registers still read (both devices latch writes)";
    b.outb(kCommand, WIN_IDENTIFY);
    EXPECT_FALSE(b.ide->intrq_pending(0)) << "commands to an absent slave are ignored";
    EXPECT_EQ(b.family("primary.ignored", "command_to_absent_slave"), 1u);
    b.outb(kDevice, 0xA0);
    EXPECT_EQ(b.inb(kStatus), 0x50);

    // Empty secondary channel: everything reads 0, a command to its master still aborts with INTRQ.
    EXPECT_EQ(b.inb(kCmd2 + 7), 0);
    EXPECT_EQ(b.inb(kCtl2), 0);
    EXPECT_EQ(b.inb(kCmd2 + 2), 0);
    EXPECT_EQ(b.inb(kCmd2 + 6), 0);
    b.outb(kCmd2 + 6, 0xA0);
    b.outb(kCmd2 + 7, WIN_IDENTIFY);
    EXPECT_TRUE(b.ide->irq_level(1));
    EXPECT_FALSE(b.ide->irq_level(0));
    EXPECT_EQ(b.inb(kCmd2 + 7), 0);
    EXPECT_FALSE(b.ide->irq_level(1));
    EXPECT_EQ(b.family("secondary.errors", "no_medium"), 1u);

    // Slave only: the absent master answers and aborts commands that need media; FLUSH CACHE and
    // SET MULTIPLE MODE succeed (QEMU's handlers).
    Bench s({0, 2048, 0, 0});
    s.outb(kDevice, 0xA0);
    EXPECT_EQ(s.inb(kStatus), 0x50);
    struct Row {
        std::uint8_t command, status;
    } rows[] = {{WIN_IDENTIFY, 0x41}, {WIN_READDMA, 0x41}, {WIN_FLUSH_CACHE, 0x50}, {WIN_SETMULT, 0x50}};
    for (const Row& r : rows) {
        s.outb(kNsect, 8);
        s.outb(kCommand, r.command);
        EXPECT_TRUE(s.ide->irq_level(0)) << int(r.command);
        EXPECT_EQ(s.inb(kStatus), r.status) << int(r.command);
    }
    EXPECT_TRUE(s.requests.empty());
    s.outb(kDevice, 0xB0);
    EXPECT_EQ(s.identify()[100], 2048) << "the slave answers";
    EXPECT_EQ(s.ide->pci_config().bar4(), 0xC001u);
}

// ---- Software reset ----------------------------------------------------------------------------

TEST(PiixIdeSrst, ResetDropsTheCommandAndRestoresTheSignature) {
    Bench b({2048, 2048, 0, 0});
    b.outb(kDevice, ATA_LBA | ATA_DEV1);
    b.lba28(100, 2, ATA_DEV1);
    b.outb(kCommand, WIN_READ);
    ASSERT_TRUE(b.ide->in_flight(0));
    b.inb(kStatus);
    b.now = 1000;
    b.outb(kCtl, ATA_SRST);
    b.outb(kCtl, 0);
    EXPECT_FALSE(b.ide->in_flight(0));
    EXPECT_FALSE(b.finish()) << "the dropped block does not complete";
    EXPECT_TRUE(b.ide->irq_level(0)) << "QEMU raises INTRQ after the reset's diagnostic";
    EXPECT_EQ(b.inb(kStatus), 0x50);
    EXPECT_EQ(b.inb(kError), 0x01) << "diagnostic code: passed";
    EXPECT_EQ(b.inb(kDevice), 0xA0) << "device 0 selected";
    EXPECT_EQ(b.inb(kNsect), 1);
    EXPECT_EQ(b.inb(kLbal), 1);
    EXPECT_EQ(b.inb(kLbam), 0);
    EXPECT_EQ(b.inb(kLbah), 0);
    EXPECT_EQ(b.inw(kData), 0) << "no data phase";
    EXPECT_EQ(b.identify()[59], 0x0110) << "multiple mode back to 16";
}

}  // namespace
}  // namespace xensim
