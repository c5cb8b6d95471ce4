// PCI bus 0 of an HVM guest's emulated machine and its configuration mechanism #1 (the 0xCF8
// address / 0xCFC data ports), as the device model (QEMU's xenfv machine) presents it.
//
// What is modelled, following QEMU's hw/pci/pci_host.c (pci_host_config_write / _read,
// pci_data_write / _read, pci_host_config_read_common), hw/pci-host/i440fx.c and hw/i386/pc_piix.c
// (the xenfv machine), and the PCI 3.0 spec §3.2.2.3.2 (configuration mechanism #1):
//  * CONFIG_ADDRESS at 0xCF8: a 4-byte write stores it, a read returns it; narrower writes are
//    ignored (pci_host_config_write only takes a 4-byte access at offset 0).
//  * CONFIG_DATA at 0xCFC-0xCFF: with the enable bit (31) set, a 1/2/4-byte access at 0xCFC + n
//    reaches register (CONFIG_ADDRESS & 0xFC) + n of the function bus:device.function names; with
//    the enable bit clear reads are all ones and writes dropped. Only bus 0 exists; an absent
//    function reads all ones (§6.1: a master abort on a configuration read returns FFFFh for the
//    vendor ID), writes to it are dropped.
//  * config_read / config_write: the same registers reached by Xen's IOREQ_TYPE_PCI_CONFIG ioreq
//    (QEMU's cpu_ioreq_config → pci_host_config_read_common / _write_common, 256-byte limit).
//  * xenfv_functions(): bus 0 of libxl's default HVM guest (device_model_version qemu-xen,
//    machine xenfv: i440FX + PIIX3), each header as firmware (hvmloader's pci_setup) left it:
//      00:00.0 i440FX host bridge 8086:1237 rev 02, class 0600, no BARs
//      00:01.0 PIIX3 ISA bridge 8086:7000, class 0601, multi-function, command 0007 (QEMU's
//              piix3 reset value: I/O, memory, bus master)
//      00:01.1 PIIX3 IDE 8086:7010 (piix_ide.h's identity), prog-if 80h, BAR4 the 16 bus-master
//              ports at the base the IDE engine decodes; command I/O + bus master; IDETIM 40h and
//              42h 8000h (both channels' decode enabled, hvmloader's pci_setup)
//      00:01.3 PIIX4 ACPI 8086:7113 rev 03, class 0680, INTA# (the SCI, line 9)
//      00:02.0 Cirrus CLGD5446 VGA 1013:00B8, class 0300, BAR0 32 MiB prefetchable frame
//              buffer, BAR1 4 KiB MMIO; command I/O + memory
//              (or, for a guest with vga "stdvga", QEMU's VGA 1234:1111 with BAR0 16 MiB
//              prefetchable frame buffer and BAR2 4 KiB MMIO)
//      00:03.0 the Xen platform device 5853:0001 (xen_platform.h), only with xen_platform_pci
//    QEMU gives every device subsystem 1AF4:1100 unless it sets its own (the platform device's
//    is 5853:0001).
//
// Where it differs: hvmloader allocates I/O BARs largest first from 0xC000, which would put the
// platform device's 256-byte BAR0 at 0xC000 and the IDE bus-master BAR at 0xC100; here the IDE
// BAR is where the scenario says (`domains[].ide_bmdma_base`, default 0xC000: the IDE engine
// decodes it there and the guest's ata_piix reads it from BAR4) and the platform BAR0 is at
// 0xC100. The interrupt lines are illustrative (firmware routing is not modelled). The
// VGA device has no ROM BAR and no VGA behaviour at all — it exists so that the scan sees the
// machine's real slot layout. PIIX3's reset control register at 0xCF9 is not modelled.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "models/devices/io_device.h"
#include "models/devices/pci_config.h"
#include "sim/core/stats.h"

namespace xensim {

// devfn = device << 3 | function (Linux's PCI_DEVFN); an SBDF as Xen's XEN_DMOP_PCI_SBDF.
constexpr std::uint8_t pci_devfn(unsigned device, unsigned function) {
    return static_cast<std::uint8_t>((device << 3) | function);
}
constexpr std::uint32_t pci_sbdf(unsigned segment, unsigned bus, std::uint8_t devfn) {
    return (segment << 16) | (bus << 8) | devfn;
}

class PciBus : public IoDevice {
  public:
    static constexpr std::uint16_t kConfigAddress = 0xcf8, kConfigData = 0xcfc;
    static constexpr std::uint32_t kEnable = 0x80000000u;

    explicit PciBus(StatsGroup& parent);

    // Plugs a function into bus 0 at devfn (a logic error if the slot is taken).
    PciConfigSpace& add(std::uint8_t devfn, const PciFunctionConfig& cfg);
    PciConfigSpace* function(std::uint8_t devfn);
    // The SBDFs of the functions present (what the device model registers with Xen).
    std::vector<std::uint32_t> sbdfs() const;

    // Configuration mechanism #1 through the ports.
    bool claims(std::uint16_t port) const override {
        return port >= kConfigAddress && port < kConfigData + 4;
    }
    std::uint32_t read(std::uint16_t port, unsigned size, std::uint64_t now_ps) override;
    void write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t now_ps) override;

    // A configuration access for an SBDF (Xen's IOREQ_TYPE_PCI_CONFIG). Absent functions and other
    // buses / segments read all ones; writes to them are dropped.
    std::uint32_t config_read(std::uint32_t sbdf, unsigned reg, unsigned size);
    void config_write(std::uint32_t sbdf, unsigned reg, unsigned size, std::uint32_t value);

    std::uint32_t config_address() const { return config_address_; }

    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily config_reads, config_writes;  // by function ("00:03.0")
        Counter absent;                             // accesses to no function (all ones / dropped)
    };
    const Stats& stats() const { return stats_; }

  private:
    PciConfigSpace* lookup(std::uint32_t sbdf);
    const std::string& label(std::uint8_t devfn);

    StatsGroup group_;
    Stats stats_;
    std::map<std::uint8_t, std::unique_ptr<PciConfigSpace>> functions_;
    std::map<std::uint8_t, std::string> labels_;
    std::uint32_t config_address_ = 0;
};

// The xenfv machine's bus 0 (see above); `platform_device` adds 00:03.0.
// `stdvga`: QEMU's standard VGA (1234:1111, libxl's vga="stdvga") at 00:02.0 instead of the Cirrus.
std::vector<std::pair<std::uint8_t, PciFunctionConfig>> xenfv_functions(bool platform_device,
                                                                        std::uint16_t ide_bmdma_base,
                                                                        bool stdvga = false);

}  // namespace xensim
