#include "models/devices/pci_bus.h"

#include <cstdio>
#include <stdexcept>

#include "models/devices/piix_ide.h"
#include "models/devices/xen_platform.h"

namespace xensim {

namespace {
std::uint32_t ones(unsigned size) { return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1; }
constexpr std::uint16_t kIntel = 0x8086;
constexpr std::uint16_t kQemuSubsystemVendor = 0x1af4, kQemuSubsystem = 0x1100;  // QEMU pci_init defaults
}  // namespace

PciBus::Stats::Stats(StatsGroup& g)
    : config_reads(g, "config_reads", "accesses", "configuration reads, by function (bb:dd.f)"),
      config_writes(g, "config_writes", "accesses", "configuration writes, by function (bb:dd.f)"),
      absent(g, "absent", "accesses", "configuration accesses to no function (read all ones / dropped)") {}

PciBus::PciBus(StatsGroup& parent) : group_("pci_bus", &parent), stats_(group_) {}

PciConfigSpace& PciBus::add(std::uint8_t devfn, const PciFunctionConfig& cfg) {
    if (functions_.count(devfn)) throw std::logic_error("PCI slot taken: " + cfg.name);
    auto& f = functions_[devfn] = std::make_unique<PciConfigSpace>(cfg);
    return *f;
}

PciConfigSpace* PciBus::function(std::uint8_t devfn) {
    auto it = functions_.find(devfn);
    return it == functions_.end() ? nullptr : it->second.get();
}

std::vector<std::uint32_t> PciBus::sbdfs() const {
    std::vector<std::uint32_t> v;
    for (const auto& [devfn, f] : functions_) v.push_back(pci_sbdf(0, 0, devfn));
    return v;
}

const std::string& PciBus::label(std::uint8_t devfn) {
    auto it = labels_.find(devfn);
    if (it != labels_.end()) return it->second;
    char buf[16];
    std::snprintf(buf, sizeof buf, "00:%02x.%u", devfn >> 3, devfn & 7u);
    return labels_[devfn] = buf;
}

PciConfigSpace* PciBus::lookup(std::uint32_t sbdf) {
    if (sbdf >> 8) return nullptr;  // segment 0, bus 0 only
    return function(static_cast<std::uint8_t>(sbdf));
}

std::uint32_t PciBus::config_read(std::uint32_t sbdf, unsigned reg, unsigned size) {
    PciConfigSpace* f = lookup(sbdf);
    if (!f || reg + size > pci::kConfigSpaceSize) {
        stats_.absent.inc();
        return ones(size);
    }
    stats_.config_reads.inc(label(static_cast<std::uint8_t>(sbdf)));
    return f->read(reg, size);
}

void PciBus::config_write(std::uint32_t sbdf, unsigned reg, unsigned size, std::uint32_t value) {
    PciConfigSpace* f = lookup(sbdf);
    if (!f || reg + size > pci::kConfigSpaceSize) {
        stats_.absent.inc();
        return;
    }
    stats_.config_writes.inc(label(static_cast<std::uint8_t>(sbdf)));
    f->write(reg, size, value);
}

std::uint32_t PciBus::read(std::uint16_t port, unsigned size, std::uint64_t) {
    if (port < kConfigData) {
        // pci_host_config_read: the stored address, at the byte offset the access names.
        return (config_address_ >> (8 * (port - kConfigAddress))) & ones(size);
    }
    if (!(config_address_ & kEnable)) return ones(size);
    const std::uint32_t sbdf = (config_address_ >> 8) & 0xffff;
    return config_read(sbdf, (config_address_ & 0xfc) | (port & 3u), size);
}

void PciBus::write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t) {
    if (port < kConfigData) {
        if (port == kConfigAddress && size == 4) config_address_ = value;
        return;
    }
    if (!(config_address_ & kEnable)) return;
    const std::uint32_t sbdf = (config_address_ >> 8) & 0xffff;
    config_write(sbdf, (config_address_ & 0xfc) | (port & 3u), size, value);
}

std::vector<std::pair<std::uint8_t, PciFunctionConfig>> xenfv_functions(bool platform_device,
                                                                        std::uint16_t ide_bmdma_base,
                                                                        bool stdvga) {
    std::vector<std::pair<std::uint8_t, PciFunctionConfig>> v;
    auto base = [](const char* name, std::uint16_t vendor, std::uint16_t device, std::uint32_t cls) {
        PciFunctionConfig f;
        f.name = name;
        f.vendor_id = vendor;
        f.device_id = device;
        f.class_code = cls;
        f.subsystem_vendor_id = kQemuSubsystemVendor;
        f.subsystem_id = kQemuSubsystem;
        return f;
    };
    PciFunctionConfig host = base("i440fx", kIntel, 0x1237, 0x060000);
    host.revision = 0x02;
    v.emplace_back(pci_devfn(0, 0), host);

    PciFunctionConfig isa = base("piix3-isa", kIntel, 0x7000, 0x060100);
    isa.header_type = pci::kHeaderTypeMultiFunction;
    isa.command = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    isa.status = 0x0200;  // DEVSEL medium
    v.emplace_back(pci_devfn(1, 0), isa);

    PciFunctionConfig ide =
        base("piix3-ide", PiixIdePciConfig::kVendorId, PiixIdePciConfig::kDeviceId,
             (std::uint32_t{PiixIdePciConfig::kClass} << 16) |
                 (std::uint32_t{PiixIdePciConfig::kSubclass} << 8) | PiixIdePciConfig::kProgIf);
    ide.revision = PiixIdePciConfig::kRevision;
    ide.status = PiixIdePciConfig::kStatus;
    ide.command = PCI_COMMAND_IO | PCI_COMMAND_MASTER;
    ide.bars = {{4, PciBarKind::io, 16, ide_bmdma_base}};
    // hvmloader pci_setup, class 0101h of vendor 8086h: "enable IDE0" and "enable IDE1".
    ide.device_specific = {{PiixIdePciConfig::kIdetimPrimary, 2, PiixIdePciConfig::kIdetimDecodeEnable},
                           {PiixIdePciConfig::kIdetimSecondary, 2, PiixIdePciConfig::kIdetimDecodeEnable}};
    v.emplace_back(pci_devfn(1, 1), ide);

    PciFunctionConfig acpi = base("piix4-acpi", kIntel, 0x7113, 0x068000);
    acpi.revision = 0x03;
    acpi.status = 0x0280;
    acpi.interrupt_pin = 1;
    acpi.interrupt_line = 9;  // the SCI
    v.emplace_back(pci_devfn(1, 3), acpi);

    if (stdvga) {
        // QEMU's "VGA" (hw/display/vga-pci.c): 1234:1111, BAR0 the 16 MiB frame buffer, BAR2 the
        // 4 KiB MMIO register window.
        PciFunctionConfig vga = base("VGA", 0x1234, 0x1111, 0x030000);
        vga.command = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
        vga.bars = {{0, PciBarKind::mem32_prefetch, 0x1000000, 0xf0000000},
                    {2, PciBarKind::mem32, 0x1000, 0xf3000000}};
        v.emplace_back(pci_devfn(2, 0), vga);
    } else {
        PciFunctionConfig vga = base("cirrus-vga", 0x1013, 0x00b8, 0x030000);
        vga.command = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
        vga.bars = {{0, PciBarKind::mem32_prefetch, 0x2000000, 0xf0000000},
                    {1, PciBarKind::mem32, 0x1000, 0xf3000000}};
        v.emplace_back(pci_devfn(2, 0), vga);
    }

    if (platform_device) {
        XenPlatformPci p;
        v.emplace_back(pci_devfn(3, 0), p.function());
    }
    return v;
}

}  // namespace xensim
