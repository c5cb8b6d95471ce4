#include "frontends/pci_scan.h"

#include <linux/pci_regs.h>

#include "sim/core/xen_abi.h"

namespace xensim {

namespace {
constexpr std::uint32_t kConf1Enable = 0x80000000u;
constexpr unsigned kDevfnsPerBus = 256, kFunctionsPerSlot = 8;
constexpr std::uint16_t kCommandDecodeEnable =
    PCI_COMMAND_IO | PCI_COMMAND_MEMORY;                                       // PCI_COMMAND_DECODE_ENABLE
constexpr std::uint16_t kClassBridgeHost = 0x0600, kClassStorageIde = 0x0101;  // PCI_CLASS_*
constexpr unsigned kFindCapTtl = 48;                                           // PCI_FIND_CAP_TTL
constexpr std::uint8_t kHeaderTypeMask = 0x7f, kHeaderTypeMultiFunction = 0x80;
constexpr std::uint32_t kIoSpaceLimit = 0xffff;  // x86 IO_SPACE_LIMIT

std::uint32_t conf1_address(unsigned bus, unsigned devfn, unsigned reg) {
    // PCI_CONF1_ADDRESS: enable, extended register bits 8-11 in 24-27, bus, devfn, dword register.
    return kConf1Enable | ((reg & 0xf00u) << 16) | (bus << 16) | (devfn << 8) | (reg & 0xfcu);
}

// pci_find_capability (drivers/pci/pci.c): __pci_bus_find_cap_start reads the status register;
// without a capability list that is all; with one, __pci_find_next_cap_ttl walks it.
unsigned find_capability(PciFnConfig& f, std::uint8_t hdr_type, unsigned cap) {
    const auto status = static_cast<std::uint16_t>(f.read(PCI_STATUS, 2));
    if (!(status & PCI_STATUS_CAP_LIST)) return 0;
    if ((hdr_type & kHeaderTypeMask) > 1) return 0;  // CardBus: PCI_CB_CAPABILITY_LIST, not modelled
    unsigned pos = f.read(PCI_CAPABILITY_LIST, 1);
    for (unsigned ttl = kFindCapTtl; ttl--;) {
        if (pos < 0x40) break;
        pos &= ~3u;
        const std::uint32_t ent = f.read(pos, 2);
        const unsigned id = ent & 0xff;
        if (id == 0xff) break;
        if (id == cap) return pos;
        pos = ent >> 8;
    }
    return 0;
}

// __pci_read_base for a 32-bit BAR (pos 10h-24h) or the ROM BAR (30h). Returns 1 for a 64-bit
// memory BAR (which occupies the next BAR too; its upper half is not sized here).
unsigned read_base(PciFnConfig& f, PciDev& dev, PciResource& res, unsigned pos, bool rom) {
    const std::uint32_t mask = rom ? static_cast<std::uint32_t>(PCI_ROM_ADDRESS_MASK) : ~0u;
    std::uint16_t orig_cmd = 0;
    if (!dev.mmio_always_on) {
        // "No printks while decoding is disabled!"
        orig_cmd = static_cast<std::uint16_t>(f.read(PCI_COMMAND, 2));
        if (orig_cmd & kCommandDecodeEnable) f.write(PCI_COMMAND, 2, orig_cmd & ~kCommandDecodeEnable);
    }
    std::uint32_t l = f.read(pos, 4);
    f.write(pos, 4, l | mask);
    std::uint32_t sz = f.read(pos, 4);
    f.write(pos, 4, l);
    if (!dev.mmio_always_on && (orig_cmd & kCommandDecodeEnable)) f.write(PCI_COMMAND, 2, orig_cmd);
    if (sz == 0xffffffffu) sz = 0;  // PCI_POSSIBLE_ERROR: the device is not working properly
    if (l == 0xffffffffu) l = 0;
    std::uint64_t l64 = 0, sz64 = 0, mask64 = 0;
    unsigned is64 = 0;
    res = PciResource{};
    if (!rom) {
        // decode_bar
        res.io = (l & PCI_BASE_ADDRESS_SPACE) == PCI_BASE_ADDRESS_SPACE_IO;
        if (res.io) {
            l64 = l & static_cast<std::uint32_t>(PCI_BASE_ADDRESS_IO_MASK);
            sz64 = sz & static_cast<std::uint32_t>(PCI_BASE_ADDRESS_IO_MASK);
            mask64 = static_cast<std::uint32_t>(PCI_BASE_ADDRESS_IO_MASK) & kIoSpaceLimit;
        } else {
            res.prefetch = l & PCI_BASE_ADDRESS_MEM_PREFETCH;
            is64 = (l & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64 ? 1 : 0;
            l64 = l & static_cast<std::uint32_t>(PCI_BASE_ADDRESS_MEM_MASK);
            sz64 = sz & static_cast<std::uint32_t>(PCI_BASE_ADDRESS_MEM_MASK);
            mask64 = static_cast<std::uint32_t>(PCI_BASE_ADDRESS_MEM_MASK);
        }
    } else {
        l64 = l & static_cast<std::uint32_t>(PCI_ROM_ADDRESS_MASK);
        sz64 = sz & static_cast<std::uint32_t>(PCI_ROM_ADDRESS_MASK);
        mask64 = static_cast<std::uint32_t>(PCI_ROM_ADDRESS_MASK);
    }
    // pci_size: the lowest significant bit of the read-back mask is the decode size.
    std::uint64_t size = mask64 & sz64;
    if (size) {
        size &= ~(size - 1);
        if (l64 == sz64 && ((l64 | (size - 1)) & mask64) != mask64) size = 0;
    }
    if (!size) {
        res = PciResource{};  // "fail": no resource
        return is64;
    }
    res.start = l64;
    res.size = size;
    return is64;
}

// pci_setup_device for a type-0 header; false if Linux would ignore the function.
bool setup_device(PciConf1& c, PciDev& dev) {
    PciFnConfig f{c, dev.bus, dev.devfn};
    const auto hdr_type = static_cast<std::uint8_t>(f.read(PCI_HEADER_TYPE, 1));
    dev.hdr_type = hdr_type & kHeaderTypeMask;
    dev.multifunction = hdr_type & kHeaderTypeMultiFunction;
    find_capability(f, hdr_type, PCI_CAP_ID_EXP);  // set_pcie_port_type (no PCIe modelled beyond it)
    const std::uint32_t class_rev = f.read(PCI_CLASS_REVISION, 4);  // pci_class
    dev.revision = static_cast<std::uint8_t>(class_rev);
    dev.class_code = class_rev >> 8;
    const auto cls = static_cast<std::uint16_t>(dev.class_code >> 8);
    // pci_cfg_space_size: a host bridge tries the extended space at 100h (no access without
    // MMCONFIG); others look for a PCI-X capability.
    std::uint32_t ignored = 0;
    if (cls == kClassBridgeHost)
        c.read(dev.bus, dev.devfn, PCI_CFG_SPACE_SIZE, 4, &ignored);
    else
        find_capability(f, hdr_type, PCI_CAP_ID_PCIX);
    // Early fixups: quirk_mmio_always_on for host bridges (drivers/pci/quirks.c).
    dev.mmio_always_on = cls == kClassBridgeHost;
    // pci_intx_mask_broken: can INTx be disabled? Toggle the bit, read back, restore.
    const auto orig = static_cast<std::uint16_t>(f.read(PCI_COMMAND, 2));
    const auto toggle = static_cast<std::uint16_t>(orig ^ PCI_COMMAND_INTX_DISABLE);
    f.write(PCI_COMMAND, 2, toggle);
    dev.broken_intx_masking = static_cast<std::uint16_t>(f.read(PCI_COMMAND, 2)) != toggle;
    f.write(PCI_COMMAND, 2, orig);
    if (dev.hdr_type != PCI_HEADER_TYPE_NORMAL) return false;  // bridges: not modelled
    // pci_read_irq
    dev.pin = static_cast<std::uint8_t>(f.read(PCI_INTERRUPT_PIN, 1));
    dev.irq = dev.pin ? static_cast<std::uint8_t>(f.read(PCI_INTERRUPT_LINE, 1)) : 0;
    // pci_read_bases(dev, 6, PCI_ROM_ADDRESS)
    for (unsigned pos = 0; pos < 6; ++pos)
        pos += read_base(f, dev, dev.resource[pos], PCI_BASE_ADDRESS_0 + 4 * pos, false);
    read_base(f, dev, dev.resource[6], PCI_ROM_ADDRESS, true);
    // pci_subsystem_ids
    dev.subsystem_vendor = static_cast<std::uint16_t>(f.read(PCI_SUBSYSTEM_VENDOR_ID, 2));
    dev.subsystem_device = static_cast<std::uint16_t>(f.read(PCI_SUBSYSTEM_ID, 2));
    // Legacy-mode ATA controllers (probe.c "legacy IDE quirk"): the programming interface says
    // which channels are legacy; those have the fixed ISA addresses whatever BARs 0-3 hold.
    if (cls == kClassStorageIde) {
        const std::uint32_t progif = f.read(PCI_CLASS_PROG, 1);
        if (!(progif & 1)) {
            dev.resource[0] = {true, false, 0x1f0, 8};
            dev.resource[1] = {true, false, 0x3f6, 1};
        }
        if (!(progif & 4)) {
            dev.resource[2] = {true, false, 0x170, 8};
            dev.resource[3] = {true, false, 0x376, 1};
        }
    }
    return true;
}
}  // namespace

bool PciConf1::check_type1() {
    // The byte write to 0xCFB is what tells mechanism #1 from #2 on old chipsets; then the
    // address register must hold what was written, and the old value is put back.
    s_.out(kAddressPort + 3, 1, 0x01);
    const std::uint32_t tmp = s_.in(kAddressPort, 4);
    s_.out(kAddressPort, 4, kConf1Enable);
    const bool ok = s_.in(kAddressPort, 4) == kConf1Enable;
    // pci_sanity_check passes without an access: the BIOS is from 2001 or later (DMI).
    s_.out(kAddressPort, 4, tmp);
    return ok;
}

bool PciConf1::read(unsigned bus, unsigned devfn, unsigned reg, unsigned len, std::uint32_t* value) {
    if (bus > 255 || devfn > 255 || reg > 255 || !(len == 1 || len == 2 || len == 4)) {
        *value = 0xffffffffu;
        return false;
    }
    ++accesses_;
    s_.out(kAddressPort, 4, conf1_address(bus, devfn, reg));
    switch (len) {
        case 1:
            *value = s_.in(static_cast<std::uint16_t>(kDataPort + (reg & 3)), 1);
            break;
        case 2:
            *value = s_.in(static_cast<std::uint16_t>(kDataPort + (reg & 2)), 2);
            break;
        default:
            *value = s_.in(kDataPort, 4);
            break;
    }
    return true;
}

bool PciConf1::write(unsigned bus, unsigned devfn, unsigned reg, unsigned len, std::uint32_t value) {
    if (bus > 255 || devfn > 255 || reg > 255 || !(len == 1 || len == 2 || len == 4)) return false;
    ++accesses_;
    s_.out(kAddressPort, 4, conf1_address(bus, devfn, reg));
    const unsigned off = len == 1 ? (reg & 3) : len == 2 ? (reg & 2) : 0;
    s_.out(static_cast<std::uint16_t>(kDataPort + off), len, value);
    return true;
}

std::vector<PciDev> pci_scan_bus(PciConf1& c, unsigned bus) {
    std::vector<PciDev> found;
    for (unsigned devfn = 0; devfn < kDevfnsPerBus; devfn += kFunctionsPerSlot) {
        // pci_scan_slot: function 0 must exist; then functions 1-7 only of a multi-function slot
        // (next_fn), each found function counting as part of a multi-function device.
        for (unsigned fn = 0; fn < kFunctionsPerSlot; ++fn) {
            PciFnConfig f{c, bus, devfn + fn};
            // pci_scan_device → pci_bus_generic_read_dev_vendor_id
            const std::uint32_t l = f.read(PCI_VENDOR_ID, 4);
            const bool present = !(l == 0xffffffffu || l == 0 || l == 0x0000ffffu || l == 0xffff0000u);
            PciDev* dev = nullptr;
            if (present) {
                PciDev d;
                d.bus = bus;
                d.devfn = static_cast<std::uint8_t>(devfn + fn);
                d.vendor = static_cast<std::uint16_t>(l);
                d.device = static_cast<std::uint16_t>(l >> 16);
                if (setup_device(c, d)) {
                    if (fn > 0) d.multifunction = true;
                    found.push_back(d);
                    dev = &found.back();
                }
            }
            if (!dev && fn == 0) break;             // no function 0: nothing else in the slot
            if (dev && !dev->multifunction) break;  // next_fn
        }
    }
    return found;
}

long pci_enable_device(PciConf1& c, PciDev& dev) {
    if (++dev.enable_cnt > 1) return 0;  // already enabled
    PciFnConfig f{c, dev.bus, dev.devfn};
    // pci_enable_resources: decoding for every BAR resource (the ROM only if enabled, which it
    // never is here).
    const auto old_cmd = static_cast<std::uint16_t>(f.read(PCI_COMMAND, 2));
    std::uint16_t cmd = old_cmd;
    for (unsigned i = 0; i < 6; ++i) {
        const PciResource& r = dev.resource[i];
        if (!r.size) continue;  // (resources are taken as claimed: pcibios_resource_survey is not modelled)
        cmd |= r.io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    }
    if (cmd != old_cmd) f.write(PCI_COMMAND, 2, cmd);
    // do_pci_enable_device: INTx must not be disabled for a function with a pin.
    const auto pin = static_cast<std::uint8_t>(f.read(PCI_INTERRUPT_PIN, 1));
    if (pin) {
        const auto c2 = static_cast<std::uint16_t>(f.read(PCI_COMMAND, 2));
        if (c2 & PCI_COMMAND_INTX_DISABLE) f.write(PCI_COMMAND, 2, c2 & ~PCI_COMMAND_INTX_DISABLE);
    }
    return 0;
}

void pci_set_master(PciConf1& c, PciDev& dev) {
    PciFnConfig f{c, dev.bus, dev.devfn};
    const auto old_cmd = static_cast<std::uint16_t>(f.read(PCI_COMMAND, 2));
    if (!(old_cmd & PCI_COMMAND_MASTER)) f.write(PCI_COMMAND, 2, old_cmd | PCI_COMMAND_MASTER);
    // pcibios_set_master (not PCI Express here): a latency timer below 16 is raised to 64, one
    // above pcibios_max_latency (255) lowered to it; otherwise nothing is written.
    const auto lat = static_cast<std::uint8_t>(f.read(PCI_LATENCY_TIMER, 1));
    if (lat < 16) f.write(PCI_LATENCY_TIMER, 1, 64);
}

long XenPlatformPciDriver::probe(PciConf1& c, PciDev& dev) {
    if (dev.vendor != kVendor || dev.device != kDevice) return -XEN_ENODEV;
    if (long r = pci_enable_device(c, dev)) return r;
    // pci_resource_start(pdev, 0) / (pdev, 1): the kernel's resources, no configuration access.
    const PciResource& io = dev.resource[0];
    const PciResource& mmio = dev.resource[1];
    if (!io.size || !io.io || !io.start || !mmio.size || mmio.io || !mmio.start) return -XEN_ENOENT;
    return 0;
}

}  // namespace xensim
