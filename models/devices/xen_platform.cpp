#include "models/devices/xen_platform.h"

namespace xensim {

PciFunctionConfig XenPlatformPci::function() const {
    PciFunctionConfig f;
    f.name = "xen-platform";
    f.vendor_id = kVendorId;
    f.device_id = kDeviceId;
    f.revision = kRevision;
    f.class_code = kClassCode;
    f.command = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    f.subsystem_vendor_id = kVendorId;
    f.subsystem_id = kDeviceId;
    f.interrupt_pin = 1;  // INTA#
    f.interrupt_line = 11;
    f.bars = {{0, PciBarKind::io, kBar0Size, io_base}, {1, PciBarKind::mem32_prefetch, kBar1Size, mmio_base}};
    return f;
}

XenPlatformPorts::XenPlatformPorts(StatsGroup& parent)
    : group_("xen_platform", &parent),
      accesses_(group_, "accesses", "accesses", "accesses to the fixed I/O ports 0x10-0x13"),
      unplug_requests_(group_, "unplug_requests", "writes", "unplug masks written to port 0x10") {}

std::uint32_t XenPlatformPorts::read(std::uint16_t port, unsigned size, std::uint64_t) {
    accesses_.inc();
    if (port == kBase && size == 2) return kMagic;
    if (port == kBase + 2 && size == 1) return 1;  // protocol version
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

void XenPlatformPorts::write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t) {
    accesses_.inc();
    if (port == kBase && size == 2) {
        unplug_requests_.inc();
        const auto mask = static_cast<std::uint16_t>(value);
        unplugged_ |= mask;
        if (on_unplug) on_unplug(mask);
    } else if (port == kBase && size == 4) {
        driver_version_ = value;
    } else if (port == kBase + 2 && size == 2) {
        product_ = static_cast<std::uint16_t>(value);
    }
}

}  // namespace xensim
