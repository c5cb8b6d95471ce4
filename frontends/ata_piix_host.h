// The host side of a guest's ata_piix driver: how Linux 6.1 takes hold of the PIIX3 IDE function
// (8086:7010) through PCI configuration space before any disk command, and how libata programs
// the controller's timing registers for each drive it finds.
//
// The problem. The bus-master base the IDE driver uses is not a constant of the machine: firmware
// assigns it to BAR4 and the driver learns it from the PCI core. And the driver's probe is itself
// a run of configuration cycles — each an OUT to 0xCF8 and an access at 0xCFC, so two
// IO_INSTRUCTION exits, a PIO ioreq and (the function being present) a PCI_CONFIG ioreq — that a
// guest with emulated disks pays once at boot, plus a few per drive when its transfer mode is set.
// docs/ide-register-sequence.md §6 derives the whole sequence from the sources.
//
// What is modelled, following drivers/ata/ata_piix.c (piix_init_one, piix_pata_prereset,
// piix_set_timings, piix_set_piomode, do_pata_set_dmamode), drivers/ata/libata-sff.c
// (ata_pci_sff_init_host, ata_pci_bmdma_init, ata_pci_sff_activate_host), drivers/ata/libata-eh.c
// (ata_eh_reset), drivers/ata/libata-core.c (ata_do_set_mode, ata_dev_xfermask, ata_id_xfermask,
// ata_pio_need_iordy, pci_test_config_bits) and drivers/pci/pci.c (pcim_enable_device,
// pci_set_master, pcibios_set_master), for the piix_pata_mwdma entry (PIIX3: PIO 0-4, MWDMA 1-2,
// no UDMA, both devices of a port possible):
//  * probe(), once per guest at boot: pcim_enable_device (command read, a write only if I/O
//    decoding was off, interrupt pin read); the IOCFG dword at 54h saved; the ports' legacy
//    resources checked (ata_resources_present) and BAR4 taken from the scan's resource
//    (pci_resource_start(pdev, 4), no access), then one BM Status read per port at BAR4 + 8 * port
//    + 2 for the simplex bit (ata_pci_bmdma_init: a port access to the bus master, not a
//    configuration access); pci_set_master (command read, a write only if bus mastering was off;
//    latency timer read, and written with 64 when below 16); ata_pci_sff_activate_host's
//    programming-interface read (legacy mode: IRQs 14 and 15); then for each port the start of
//    libata's first EH reset: set_piomode at PIO 0 for both device slots (ata_eh_reset), and
//    piix_pata_prereset's check of the port's decode-enable bit (IDETIM bit 15, byte 41h / 43h).
//  * set_mode(), per drive after its IDENTIFY: ata_dev_xfermask (the controller's masks, the
//    drive's IDENTIFY words 51/53/63/64/88, no DMA with libata.dma=0, without BAR4 or when another
//    port holds a simplex controller's DMA), then set_piomode and, with a DMA mode, set_dmamode
//    (MWDMA is set through the PIO timings of needed_pio[]). Each timing write is a
//    read-modify-write of IDETIM (40h / 42h), and for a slave also of SIDETIM (44h); the UDMA
//    registers (48h) are touched only when the port has a UDMA mask, which a PIIX3 has not.
//
// Where it deliberately differs: only the configuration accesses of libata's probe and the
// simplex reads are made — its port I/O (freeze and thaw, softreset and classification, SET
// FEATURES - XFER MODE and the IDENTIFY that revalidates after it) is not; the drive's own IDENTIFY
// is AtaPiix::connect's. The EH reset's PIO 0 timings are written once per port at boot (Linux runs
// the ports' probes in parallel and resets again on errors); set_mode runs per drive as each
// AtaPiix connects, where libata sets the modes of both drives of a port together (the registers
// end the same). CFA drives, the DMA blacklist, libata.force and ACPI _GTM/_STM are not modelled.
// The PIIX3 has no UDMA, so do_pata_set_dmamode's UDMA branch is not implemented.
#pragma once

#include <cstdint>

#include "frontends/guest_services.h"
#include "frontends/pci_scan.h"

namespace xensim {

class AtaPiixHost {
  public:
    static constexpr std::uint16_t kVendor = 0x8086, kDevice = 0x7010;  // piix_pci_tbl: piix_pata_mwdma
    static constexpr unsigned kPorts = 2, kDevicesPerPort = 2;
    // Transfer mode codes (include/linux/ata.h XFER_*); kNoMode as libata's 0xff.
    static constexpr std::uint8_t kXferPio0 = 0x08, kXferMwDma0 = 0x20, kNoMode = 0xff;

    // piix_init_one on the function the scan found: 0, or a negative Xen errno (-XEN_ENODEV if it
    // is not 8086:7010 or neither port has its legacy resources).
    long probe(GuestServices& s, PciConf1& c, PciDev& dev);
    bool probed() const { return probed_; }
    unsigned bus() const { return bus_; }
    std::uint8_t devfn() const { return devfn_; }
    // ap->ioaddr.bmdma_addr: BAR4 + 8 * port; 0 when BAR4 was 0 (no DMA).
    std::uint16_t bmdma_addr(unsigned port) const;
    // Not a dummy port, and prereset found its decode enabled.
    bool port_enabled(unsigned port) const { return port < kPorts && enabled_[port]; }
    bool simplex() const { return simplex_; }
    std::uint32_t saved_iocfg() const { return saved_iocfg_; }

    struct Modes {
        std::uint8_t pio = kNoMode, dma = kNoMode;  // XFER_* codes chosen by ata_do_set_mode
    };
    // ata_do_set_mode for one drive (devno 0 master, 1 slave) after its IDENTIFY. `dma_allowed`
    // false is libata.dma=0 (libata_dma_mask without ATA_DMA_MASK_ATA).
    Modes set_mode(PciConf1& c, unsigned port, unsigned devno, const std::uint16_t id[256], bool dma_allowed);

  private:
    // piix_set_timings: `pio` is the PIO timing to load, `pio_mode` the drive's PIO mode,
    // `resetting` ATA_PFLAG_RESETTING (no IORDY), `ata` the drive's class is ATA_DEV_ATA.
    void set_timings(PciConf1& c, unsigned port, unsigned devno, unsigned pio, std::uint8_t pio_mode,
                     bool iordy_capable, bool resetting, bool ata);

    bool probed_ = false;
    unsigned bus_ = 0;
    std::uint8_t devfn_ = 0;
    std::uint16_t bar4_ = 0;
    std::uint32_t saved_iocfg_ = 0;
    bool enabled_[kPorts] = {false, false};
    bool simplex_ = false;
    int simplex_claimed_ = -1;  // host->simplex_claimed: the port that took DMA
};

}  // namespace xensim
