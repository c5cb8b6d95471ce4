// The guest kernel's PCI enumeration of bus 0 and the Xen platform PCI driver's probe, as a Linux
// 6.1 x86 HVM guest without MMCONFIG does them: every configuration access through mechanism #1,
// one OUT to 0xCF8 and one IN/OUT at 0xCFC + (reg & 3) — two port accesses, hence two
// IO_INSTRUCTION exits, per configuration read or write.
//
// What is modelled (docs/pci-scan.md has the whole sequence with the Linux source it follows):
//  * PciConf1: arch/x86/pci/direct.c pci_conf1_read / pci_conf1_write (the PCI_CONF1_ADDRESS
//    encoding: enable bit, bus, devfn, reg & 0xFC) and pci_check_type1, the start-up probe of
//    the mechanism; raw_pci_read's rule that registers past 255 need MMCONFIG (no access, error).
//  * pci_scan_bus: drivers/pci/probe.c pci_scan_child_bus → pci_scan_slot (function 0 of each
//    of the 32 slots; functions 1-7 of a multi-function slot) → pci_scan_device (the vendor/device
//    dword; all ones, zero or a half of ones means no function) → pci_setup_device (header type,
//    the PCI Express and PCI-X capability look-ups, class and revision, the INTx-disable
//    writability test (pci_intx_mask_broken), interrupt pin and line,
//    the six BARs and the ROM BAR sized by __pci_read_base — decoding switched off around each
//    BAR unless the early quirk quirk_mmio_always_on marked a host bridge —, subsystem IDs, and
//    an IDE controller's programming interface, whose legacy-mode channels get the fixed
//    resources 1F0h/3F6h and 170h/376h).
//  * pci_enable_device: drivers/pci/pci.c do_pci_enable_device → pcibios_enable_device →
//    drivers/pci/setup-res.c pci_enable_resources (I/O and memory decoding for the BARs the
//    device has, written only if they were off), then the INTx-disable check.
//  * pci_set_master: drivers/pci/pci.c __pci_set_master and pcibios_set_master (its default,
//    which x86 uses: pcibios_max_latency 255).
//  * xen_platform_pci_probe: drivers/xen/platform-pci.c platform_pci_probe: pci_enable_device,
//    then BAR0 (I/O) and BAR1 (MMIO) must be set, or the probe fails with -ENOENT.
//
// Simplified (docs/pci-scan.md §4): pci_device_add's capability set-up (pci_init_capabilities,
// pci_configure_device) and header/final quirks, resource claiming, bridges (only header type 0
// is set up; other functions are skipped as Linux skips an unknown header type), capability walks
// beyond the look-up itself, ACPI IRQ routing at enable.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "frontends/guest_services.h"

namespace xensim {

class PciConf1 {
  public:
    static constexpr std::uint16_t kAddressPort = 0xcf8, kDataPort = 0xcfc;
    explicit PciConf1(GuestServices& s) : s_(s) {}

    // pci_check_type1: is configuration mechanism #1 there? Five port accesses.
    bool check_type1();
    // pci_conf1_read / _write of `len` (1, 2, 4) bytes; false without an access for a register
    // past 255 or a bus past 255 (raw_pci_read with no MMCONFIG).
    bool read(unsigned bus, unsigned devfn, unsigned reg, unsigned len, std::uint32_t* value);
    bool write(unsigned bus, unsigned devfn, unsigned reg, unsigned len, std::uint32_t value);
    // Configuration accesses made (each two port accesses).
    std::uint64_t accesses() const { return accesses_; }

  private:
    GuestServices& s_;
    std::uint64_t accesses_ = 0;
};

// One function's configuration space through PciConf1, typed as pci_read_config_{byte,word,dword}
// and pci_write_config_*: a failed access reads as all ones.
struct PciFnConfig {
    PciConf1& c;
    unsigned bus, devfn;
    std::uint32_t read(unsigned reg, unsigned len) {
        std::uint32_t v = 0;
        if (!c.read(bus, devfn, reg, len, &v)) v = len >= 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
        return v;
    }
    void write(unsigned reg, unsigned len, std::uint32_t v) { c.write(bus, devfn, reg, len, v); }
};

struct PciResource {
    bool io = false, prefetch = false;
    std::uint64_t start = 0, size = 0;  // size 0: no resource (BAR not implemented)
};

// What the kernel knows of a function after pci_setup_device (a subset of struct pci_dev).
struct PciDev {
    unsigned bus = 0;
    std::uint8_t devfn = 0;
    std::uint16_t vendor = 0, device = 0;
    std::uint32_t class_code = 0;  // dev->class: base class, subclass, prog-if
    std::uint8_t revision = 0, hdr_type = 0, pin = 0, irq = 0;
    bool multifunction = false, mmio_always_on = false, broken_intx_masking = false;
    std::uint16_t subsystem_vendor = 0, subsystem_device = 0;
    std::array<PciResource, 7> resource{};  // BARs 0-5, then the expansion ROM (PCI_ROM_RESOURCE)
    unsigned enable_cnt = 0;
};

// pci_scan_child_bus: the functions found on `bus`, in devfn order.
std::vector<PciDev> pci_scan_bus(PciConf1& c, unsigned bus);
// pci_enable_device: 0 (the resources are taken as claimed).
long pci_enable_device(PciConf1& c, PciDev& dev);
// pci_set_master: bus mastering on (written only if it was off), then pcibios_set_master's latency
// timer check (written with 64 when it reads below 16; a conventional PCI function).
void pci_set_master(PciConf1& c, PciDev& dev);

struct XenPlatformPciDriver {
    static constexpr std::uint16_t kVendor = 0x5853, kDevice = 0x0001;  // PCI_VENDOR_ID_XEN, ..._PLATFORM
    // platform_pci_probe's PCI part: 0, or a negative Xen errno (-XEN_ENOENT: no BAR0 / BAR1).
    static long probe(PciConf1& c, PciDev& dev);
};

}  // namespace xensim
