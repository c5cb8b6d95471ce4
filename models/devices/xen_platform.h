// The Xen platform device's fixed I/O ports: how a PVHVM guest asks the device model to unplug its
// emulated disks and NICs before its PV drivers take over.
//
// What is modelled, following Xen's docs/misc/hvm-emulated-unplug.pandoc, QEMU's
// hw/i386/xen/xen_platform.c (platform_fixed_ioport_*) and the guest side in Linux's
// arch/x86/xen/platform-pci-unplug.c / include/xen/platform_pci.h:
//  * 0x10, 16-bit read: the magic 0x49d2 (0xd249 once the driver was blacklisted, which never
//    happens here); 16-bit write: the unplug mask (1 = all IDE disks, 2 = all NICs, 4 = auxiliary
//    IDE disks, 8 = every IDE disk but the primary master's); 32-bit write: the driver version.
//  * 0x12, 8-bit read: the protocol version (1); 16-bit write: the product number
//    (xen/hvm/pvdrivers.h: 3 = linux, 2 = gplpv-windows ...); 8-bit write: log byte.
// Unplug requests are recorded (the device model removes what is plugged; the IDE controller's
// drives when there is one) and counted.
//
// The platform device's PCI function (XenPlatformPci, on bus 0 at 00:03.0, pci_bus.h) follows
// QEMU's xen_platform_realize / xen_platform_class_init: vendor 5853h (XenSource), device 0001h,
// class FF80h (PCI_CLASS_OTHERS << 8 | 80h), revision 1, subsystem 5853:0001, interrupt pin INTA#,
// BAR0 256 bytes of I/O ("xen-pci"), BAR1 16 MiB of prefetchable memory ("xen-mmio", which Linux's
// platform-pci driver uses as the space to map grant frames into), command I/O + memory.
//
// Not modelled: the accesses behind BAR0 (QEMU decodes byte accesses there — platform flags at 0,
// log at 8 — none of which the Linux driver's probe uses; the ports are not claimed, so a guest
// access there is unclaimed I/O) and behind BAR1 (QEMU reads 0 and ignores writes; here MMIO
// outside RAM is unclaimed), the 0x10 byte-access platform flags, and blacklisting.
#pragma once

#include <cstdint>
#include <functional>

#include "models/devices/io_device.h"
#include "models/devices/pci_config.h"
#include "sim/core/stats.h"

namespace xensim {

struct XenPlatformPci {
    static constexpr std::uint16_t kVendorId = 0x5853;  // PCI_VENDOR_ID_XEN
    static constexpr std::uint16_t kDeviceId = 0x0001;  // PCI_DEVICE_ID_XEN_PLATFORM
    static constexpr std::uint32_t kClassCode = 0xff8000;
    static constexpr std::uint8_t kRevision = 1;
    static constexpr std::uint32_t kBar0Size = 0x100, kBar1Size = 0x1000000;
    // Where firmware put the BARs (see pci_bus.h for the I/O base).
    std::uint16_t io_base = 0xc100;
    std::uint32_t mmio_base = 0xf2000000;
    PciFunctionConfig function() const;
};

class XenPlatformPorts : public IoDevice {
  public:
    static constexpr std::uint16_t kBase = 0x10;
    static constexpr std::uint16_t kMagic = 0x49d2;
    static constexpr std::uint16_t kUnplugAllIdeDisks = 1, kUnplugAllNics = 2, kUnplugAuxIdeDisks = 4,
                                   kUnplugNvmeDisks = 8;

    explicit XenPlatformPorts(StatsGroup& parent);

    bool claims(std::uint16_t port) const override { return port >= kBase && port < kBase + 4; }
    std::uint32_t read(std::uint16_t port, unsigned size, std::uint64_t now_ps) override;
    void write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t now_ps) override;

    // Called with the mask of each unplug request (the device model detaches what it names).
    std::function<void(std::uint16_t mask)> on_unplug;

    std::uint16_t unplugged() const { return unplugged_; }
    std::uint16_t product() const { return product_; }
    std::uint32_t driver_version() const { return driver_version_; }

  private:
    StatsGroup group_;
    Counter accesses_, unplug_requests_;
    std::uint16_t unplugged_ = 0, product_ = 0;
    std::uint32_t driver_version_ = 0;
};

}  // namespace xensim
