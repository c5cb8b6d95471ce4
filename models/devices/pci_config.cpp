#include "models/devices/pci_config.h"

#include <stdexcept>

namespace xensim {

namespace {
constexpr std::uint32_t kCommandWritable = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
                                           PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;
constexpr std::uint32_t kStatusW1c = PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |
                                     PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT |
                                     PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY;
}  // namespace

// PCI 3.0 §6.1 figure 6-1, the type-0 header. BAR rows carry no mask here: a BAR's writable bits
// come from its declaration (PciBar), undeclared BARs stay read-only zero.
const std::array<PciRegister, 28> kHeaderRegisters = {{
    {PCI_VENDOR_ID, 2, "VENDOR_ID", 0, 0},
    {PCI_DEVICE_ID, 2, "DEVICE_ID", 0, 0},
    {PCI_COMMAND, 2, "COMMAND", kCommandWritable, 0},
    {PCI_STATUS, 2, "STATUS", 0, kStatusW1c},
    {PCI_CLASS_REVISION, 1, "REVISION_ID", 0, 0},
    {PCI_CLASS_PROG, 1, "CLASS_PROG", 0, 0},
    {PCI_CLASS_DEVICE, 2, "CLASS_DEVICE", 0, 0},
    {PCI_CACHE_LINE_SIZE, 1, "CACHE_LINE_SIZE", 0xff, 0},
    {PCI_LATENCY_TIMER, 1, "LATENCY_TIMER", 0, 0},
    {PCI_HEADER_TYPE, 1, "HEADER_TYPE", 0, 0},
    {PCI_BIST, 1, "BIST", 0, 0},
    {PCI_BASE_ADDRESS_0 + 0, 4, "BASE_ADDRESS_0", 0, 0},
    {PCI_BASE_ADDRESS_0 + 4, 4, "BASE_ADDRESS_1", 0, 0},
    {PCI_BASE_ADDRESS_0 + 8, 4, "BASE_ADDRESS_2", 0, 0},
    {PCI_BASE_ADDRESS_0 + 12, 4, "BASE_ADDRESS_3", 0, 0},
    {PCI_BASE_ADDRESS_0 + 16, 4, "BASE_ADDRESS_4", 0, 0},
    {PCI_BASE_ADDRESS_0 + 20, 4, "BASE_ADDRESS_5", 0, 0},
    {PCI_CARDBUS_CIS, 4, "CARDBUS_CIS", 0, 0},
    {PCI_SUBSYSTEM_VENDOR_ID, 2, "SUBSYSTEM_VENDOR_ID", 0, 0},
    {PCI_SUBSYSTEM_ID, 2, "SUBSYSTEM_ID", 0, 0},
    {PCI_ROM_ADDRESS, 4, "ROM_ADDRESS", 0, 0},
    {PCI_CAPABILITY_LIST, 1, "CAPABILITY_LIST", 0, 0},
    {PCI_CAPABILITY_LIST + 1, 3, "reserved", 0, 0},
    {PCI_CAPABILITY_LIST + 4, 4, "reserved", 0, 0},
    {PCI_INTERRUPT_LINE, 1, "INTERRUPT_LINE", 0xff, 0},
    {PCI_INTERRUPT_PIN, 1, "INTERRUPT_PIN", 0, 0},
    {PCI_MIN_GNT, 1, "MIN_GNT", 0, 0},
    {PCI_MAX_LAT, 1, "MAX_LAT", 0, 0},
}};

PciConfigSpace::PciConfigSpace(const PciFunctionConfig& cfg) : cfg_(cfg) {
    auto put = [&](unsigned off, unsigned width, std::uint32_t v) {
        for (unsigned i = 0; i < width; ++i) value_[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
    };
    for (const PciRegister& r : kHeaderRegisters)
        for (unsigned i = 0; i < r.width; ++i) {
            writable_[r.offset + i] = static_cast<std::uint8_t>(r.writable >> (8 * i));
            write1_clear_[r.offset + i] = static_cast<std::uint8_t>(r.write1_clear >> (8 * i));
        }
    put(PCI_VENDOR_ID, 2, cfg.vendor_id);
    put(PCI_DEVICE_ID, 2, cfg.device_id);
    put(PCI_COMMAND, 2, cfg.command);
    put(PCI_STATUS, 2, cfg.status & ~std::uint32_t{PCI_STATUS_CAP_LIST});  // no capability list
    put(PCI_CLASS_REVISION, 4, (cfg.class_code << 8) | cfg.revision);
    put(PCI_HEADER_TYPE, 1, cfg.header_type);
    put(PCI_SUBSYSTEM_VENDOR_ID, 2, cfg.subsystem_vendor_id);
    put(PCI_SUBSYSTEM_ID, 2, cfg.subsystem_id);
    put(PCI_INTERRUPT_LINE, 1, cfg.interrupt_line);
    put(PCI_INTERRUPT_PIN, 1, cfg.interrupt_pin);
    // QEMU pci_init_wmask: the device-specific part of the space is writable byte by byte.
    for (unsigned at = pci::kHeaderSize; at < pci::kConfigSpaceSize; ++at) writable_[at] = 0xff;
    for (const PciRegisterValue& r : cfg.device_specific) {
        if (r.offset < pci::kHeaderSize || r.width == 0 || r.width > 4 ||
            r.offset + r.width > pci::kConfigSpaceSize)
            throw std::logic_error("device-specific register of " + cfg.name + " is outside 40h-FFh");
        put(r.offset, r.width, r.value);
    }
    for (const PciBar& b : cfg.bars) {
        const bool io = b.kind == PciBarKind::io;
        if (b.index > 5 || b.size == 0 || (b.size & (b.size - 1)) || b.size < (io ? 4u : 16u) ||
            (b.address & (b.size - 1)))
            throw std::logic_error("PCI BAR declaration of " + cfg.name + " is not a valid BAR");
        const std::uint32_t type =
            io ? PCI_BASE_ADDRESS_SPACE_IO
               : (b.kind == PciBarKind::mem32_prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
        const unsigned off = PCI_BASE_ADDRESS_0 + 4 * b.index;
        put(off, 4, b.address | type);
        // §6.2.5.1: the address bits below the size are hardwired to zero, the type bits read-only.
        const auto type_mask =
            static_cast<std::uint32_t>(io ? PCI_BASE_ADDRESS_IO_MASK : PCI_BASE_ADDRESS_MEM_MASK);
        const std::uint32_t wmask = ~(b.size - 1) & type_mask;
        for (unsigned i = 0; i < 4; ++i) writable_[off + i] = static_cast<std::uint8_t>(wmask >> (8 * i));
    }
}

std::uint32_t PciConfigSpace::read(unsigned offset, unsigned size) const {
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size; ++i) {
        const unsigned at = offset + i;
        const std::uint32_t byte = at < pci::kConfigSpaceSize ? value_[at] : 0xffu;
        v |= byte << (8 * i);
    }
    return v;
}

void PciConfigSpace::write(unsigned offset, unsigned size, std::uint32_t value) {
    // pci_default_write_config: per byte, writable bits take the new value, write-1-to-clear bits
    // written as 1 are cleared, everything else keeps its value.
    for (unsigned i = 0; i < size; ++i) {
        const unsigned at = offset + i;
        if (at >= pci::kConfigSpaceSize) break;
        const auto v = static_cast<std::uint8_t>(value >> (8 * i));
        std::uint8_t b = static_cast<std::uint8_t>((value_[at] & ~writable_[at]) | (v & writable_[at]));
        b = static_cast<std::uint8_t>(b & ~(v & write1_clear_[at]));
        value_[at] = b;
    }
}

}  // namespace xensim
