#include "frontends/ata_piix_host.h"

#include <linux/pci_regs.h>

#include "sim/core/xen_abi.h"

namespace xensim {

namespace {
// ata_piix.c: PIIX_IOCFG, piix_enable_bits, the IDETIM / SIDETIM ports of piix_set_timings.
constexpr unsigned kIocfg = 0x54, kSidetim = 0x44;
constexpr unsigned kIdetim[2] = {0x40, 0x42};
constexpr unsigned kEnableByte[2] = {0x41, 0x43};
constexpr std::uint8_t kEnableBit = 0x80;
constexpr unsigned kUdmaCtl = 0x48;
constexpr std::uint8_t kBmStatus = 2, kBmSimplex = 0x80;  // SFF-8038i BM Status bit 7
// piix_port_info[piix_pata_mwdma]: ATA_PIO4, ATA_MWDMA12_ONLY, no UDMA.
constexpr unsigned kHostPioMask = 0x1f, kHostMwdmaMask = 0x06, kHostUdmaMask = 0;
// piix_set_timings' ISP / RTC pairs by PIO mode.
constexpr std::uint8_t kTimings[5][2] = {{0, 0}, {0, 0}, {1, 0}, {2, 1}, {2, 3}};
// do_pata_set_dmamode: the PIO timing each MWDMA mode needs (XFER_PIO_0, _3, _4).
constexpr unsigned kNeededPio[3] = {0, 3, 4};
constexpr std::uint16_t kClassStorageIde = 0x0101;

unsigned fls(unsigned mask) {  // 1-based index of the highest set bit, 0 for none
    unsigned n = 0;
    while (mask) {
        ++n;
        mask >>= 1;
    }
    return n;
}

}  // namespace

long AtaPiixHost::probe(GuestServices& s, PciConf1& c, PciDev& dev) {
    if (dev.vendor != kVendor || dev.device != kDevice) return -XEN_ENODEV;
    bus_ = dev.bus;
    devfn_ = dev.devfn;
    PciFnConfig f{c, dev.bus, dev.devfn};
    // pcim_enable_device -> pci_enable_device.
    if (long r = pci_enable_device(c, dev)) return r;
    // hpriv->saved_iocfg (cable detection on ICH; read on every chip).
    saved_iocfg_ = f.read(kIocfg, 4);
    // ata_pci_bmdma_prepare_host -> ata_pci_sff_init_host: a port without both of its resources
    // (command block and control) is a dummy; no port at all is -ENODEV.
    bool present[kPorts];
    for (unsigned p = 0; p < kPorts; ++p)
        present[p] = dev.resource[2 * p].start && dev.resource[2 * p].size && dev.resource[2 * p + 1].start &&
                     dev.resource[2 * p + 1].size;
    if (!present[0] && !present[1]) return -XEN_ENODEV;
    // ata_pci_bmdma_init: BAR4 as the PCI core sized it; each port's BM Status for the simplex bit
    // (ATA_FLAG_IGN_SIMPLEX is not set for PIIX).
    const PciResource& bar4 = dev.resource[4];
    bar4_ = bar4.io && bar4.size ? static_cast<std::uint16_t>(bar4.start) : 0;
    if (bar4_)
        for (unsigned p = 0; p < kPorts; ++p)
            if (present[p] && (s.in(static_cast<std::uint16_t>(bar4_ + 8 * p + kBmStatus), 1) & kBmSimplex))
                simplex_ = true;
    // piix_iocfg_bit18_quirk, piix_check_450nx_errata and piix_ignore_devices_quirk look at DMI and
    // the kernel's device list only (no 82454NX here); PIIX_FLAG_CHECKINTR is SATA-only.
    pci_set_master(c, dev);
    // ata_pci_sff_activate_host: a channel whose prog-if bit is clear runs in legacy mode.
    if ((dev.class_code >> 8) == kClassStorageIde) f.read(PCI_CLASS_PROG, 1);
    // ata_host_register -> each port's first EH reset (ata_eh_reset): PIO 0 timings for both device
    // slots (drive class still unknown, ATA_PFLAG_RESETTING: no IORDY), then piix_pata_prereset's
    // pci_test_config_bits: a port whose decode enable is clear is disabled (-ENOENT).
    for (unsigned p = 0; p < kPorts; ++p) {
        if (!present[p]) continue;
        for (unsigned d = 0; d < kDevicesPerPort; ++d) set_timings(c, p, d, 0, kXferPio0, false, true, false);
        enabled_[p] = (f.read(kEnableByte[p], 1) & kEnableBit) != 0;
    }
    probed_ = true;
    return 0;
}

std::uint16_t AtaPiixHost::bmdma_addr(unsigned port) const {
    return bar4_ && port < kPorts ? static_cast<std::uint16_t>(bar4_ + 8 * port) : 0;
}

AtaPiixHost::Modes AtaPiixHost::set_mode(PciConf1& c, unsigned port, unsigned devno,
                                         const std::uint16_t id[256], bool dma_allowed) {
    Modes m;
    if (!probed_ || !port_enabled(port) || devno >= kDevicesPerPort) return m;
    // ata_id_xfermask: word 53 bit 1 says word 64 (PIO 3/4) is valid, else word 51's high byte;
    // word 63 the multiword DMA modes; word 88 UDMA when word 53 bit 2 says so.
    unsigned pio_mask;
    if (id[53] & (1u << 1)) {
        pio_mask = ((id[64] & 0x03u) << 3) | 0x7u;
    } else {
        const unsigned mode = (id[51] >> 8) & 0xff;
        pio_mask = mode < 5 ? (2u << mode) - 1 : 1u;
    }
    unsigned mwdma_mask = id[63] & 0x07u;
    unsigned udma_mask = (id[53] & (1u << 2)) ? id[88] & 0xffu : 0;
    // ata_dev_xfermask: the controller's modes (none for DMA without BAR4: ata_bmdma_nodma), DMA
    // off when another port claimed a simplex controller's DMA; ata_do_set_mode: libata.dma.
    pio_mask &= kHostPioMask;
    mwdma_mask &= bar4_ ? kHostMwdmaMask : 0;
    udma_mask &= bar4_ ? kHostUdmaMask : 0;
    if (simplex_ && simplex_claimed_ >= 0 && simplex_claimed_ != static_cast<int>(port))
        mwdma_mask = udma_mask = 0;
    if (!dma_allowed) mwdma_mask = udma_mask = 0;
    if (!pio_mask) return m;  // "no PIO support"
    m.pio = static_cast<std::uint8_t>(kXferPio0 + fls(pio_mask) - 1);
    if (mwdma_mask) m.dma = static_cast<std::uint8_t>(kXferMwDma0 + fls(mwdma_mask) - 1);
    const bool iordy_capable = (id[49] & (1u << 11)) != 0;  // ata_id_has_iordy
    const bool ata = !(id[0] & 0x8000);                     // ATA_DEV_ATA (not ATAPI)
    // Step 2: set_piomode; step 3: set_dmamode for a DMA mode (MWDMA through the PIO timings).
    set_timings(c, port, devno, m.pio - kXferPio0, m.pio, iordy_capable, false, ata);
    if (m.dma != kNoMode) {
        set_timings(c, port, devno, kNeededPio[m.dma - kXferMwDma0], m.pio, iordy_capable, false, ata);
        if (simplex_) simplex_claimed_ = static_cast<int>(port);
    }
    return m;
}

void AtaPiixHost::set_timings(PciConf1& c, unsigned port, unsigned devno, unsigned pio, std::uint8_t pio_mode,
                              bool iordy_capable, bool resetting, bool ata) {
    PciFnConfig f{c, bus_, devfn_};
    const bool slave = devno != 0;
    unsigned control = 0;
    if (pio >= 2) control |= 1;  // TIME enable
    // ata_pio_need_iordy: never while resetting; mandatory from PIO 3; else if the drive has it.
    const bool iordy = !resetting && (pio_mode > kXferPio0 + 2 || iordy_capable);
    if (iordy) control |= 2;                       // IE enable
    if (ata) control |= 4;                         // PPE enable
    if (pio_mode < kXferPio0 + pio) control |= 8;  // DMA timing only, PIO cycles in PIO 0
    auto master = static_cast<std::uint16_t>(f.read(kIdetim[port], 2));
    std::uint8_t slave_data = 0;
    if (slave) {
        master = static_cast<std::uint16_t>((master & 0xff0f) | (control << 4));
        slave_data = static_cast<std::uint8_t>(f.read(kSidetim, 1));
        slave_data &= port ? 0x0f : 0xf0;
        slave_data = static_cast<std::uint8_t>(
            slave_data | (((kTimings[pio][0] << 2) | kTimings[pio][1]) << (port ? 4 : 0)));
    } else {
        master = static_cast<std::uint16_t>((master & 0xccf0) | control | (kTimings[pio][0] << 12) |
                                            (kTimings[pio][1] << 8));
    }
    master |= 0x4000;  // SITRE: separate slave timing
    f.write(kIdetim[port], 2, master);
    if (slave) f.write(kSidetim, 1, slave_data);
    // "Ensure the UDMA bit is off": only for a port with UDMA modes, which the PIIX3 has not.
    if (kHostUdmaMask) {
        auto udma_enable = static_cast<std::uint8_t>(f.read(kUdmaCtl, 1));
        udma_enable = static_cast<std::uint8_t>(udma_enable & ~(1u << (2 * port + devno)));
        f.write(kUdmaCtl, 1, udma_enable);
    }
}

}  // namespace xensim
