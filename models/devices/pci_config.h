// A conventional PCI function's type-0 configuration header (PCI Local Bus Specification 3.0,
// §6.1-6.2.5), as a device model exposes it to a guest's configuration cycles.
//
// The problem: a guest kernel finds and sizes devices only through configuration reads and writes
// of 1, 2 or 4 bytes at any offset of the 256-byte space, and it relies on exact register
// behaviour — read-only identity fields, a command register whose decode bits it toggles, status
// bits that are cleared by writing 1, and BARs that answer an all-ones write with their size mask.
//
// What is modelled, following QEMU's hw/pci/pci.c (pci_config_alloc's config / wmask / w1cmask byte
// arrays, pci_init_wmask, pci_init_w1cmask, pci_register_bar, pci_default_write_config) and the
// PCI 3.0 spec:
//  * The header registers are declared once (kHeaderRegisters: offset, width, name, writable and
//    write-1-to-clear masks); construction expands them into per-byte value / writable /
//    write-1-to-clear arrays, and every access goes through those arrays byte by byte, so a
//    partial access (a byte of the command register, a word of a BAR) behaves as the full one
//    would on those bytes.
//  * Writable: command bits I/O, memory, bus master, parity, SERR#, INTx disable (§6.2.2; QEMU's
//    wmask); cache line size and interrupt line; BARs. Write-1-to-clear: the status error bits
//    (§6.2.3: parity, signalled/received target abort, received master abort, signalled system
//    error, detected parity). Everything else in the header is read-only.
//  * BARs (§6.2.5.1): a declared BAR of size 2^n has its address bits below n read-only zero and
//    its type bits (bit 0 I/O; bits 1-3 memory type and prefetchable) read-only, so writing all
//    ones and reading back gives the size mask; an undeclared BAR is read-only zero. The
//    expansion ROM BAR at 30h is not implemented (read-only zero; QEMU exposes a ROM BAR only
//    for devices with a ROM file).
//  * The initial contents are what firmware left when the guest boots: hvmloader
//    (tools/firmware/hvmloader/pci.c, pci_setup) has already assigned the BARs and set the
//    command register; the declaration carries those values.
//
//  * Device-specific registers 40h-FFh are what QEMU's generic configuration space makes of them
//    (pci_init_wmask: every byte past the 64-byte header writable, no write-1-to-clear): plain
//    read/write bytes, zero at power-on unless firmware wrote them (PciFunctionConfig::
//    device_specific; e.g. hvmloader's IDETIM writes to the PIIX3 IDE function). A device model
//    that gives some of them a side effect (QEMU's i440FX PAM registers, PIIX3 PIRQ routing) is not
//    modelled; the value written still reads back, as in QEMU.
//
// Not modelled: capability lists (status bit 4 is 0, 34h reads 0), side effects of device-specific
// registers, extended configuration space, 64-bit BARs, and the effect of a BAR or decode change
// on the address map: an emulated device's port and MMIO claims are fixed by the toolstack's
// ioreq-server ranges, so moving a BAR moves nothing (a guest that sizes a BAR restores it, as
// Linux does).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <linux/pci_regs.h>

namespace xensim {

// Register offsets and bits: Linux's <linux/pci_regs.h> (the spec's names), from the system.
namespace pci {
constexpr unsigned kConfigSpaceSize = PCI_CFG_SPACE_SIZE;
constexpr unsigned kHeaderSize = 0x40;  // the type-0 header; device-specific registers follow
constexpr std::uint8_t kHeaderTypeMultiFunction = 0x80;  // PCI 3.0 §6.2.1, header type bit 7
}  // namespace pci

// One row per header register: the declaration the per-byte masks are built from.
struct PciRegister {
    unsigned offset, width;  // bytes
    const char* name;
    std::uint32_t writable, write1_clear;  // masks over the register's width (BARs: from the BAR)
};
extern const std::array<PciRegister, 28> kHeaderRegisters;

enum class PciBarKind { io, mem32, mem32_prefetch };

struct PciBar {
    unsigned index;  // 0-5
    PciBarKind kind;
    std::uint32_t size;     // a power of two (I/O >= 4, memory >= 16 bytes)
    std::uint32_t address;  // as firmware assigned it
};

// A device-specific register (40h-FFh) as firmware left it.
struct PciRegisterValue {
    unsigned offset, width;  // bytes
    std::uint32_t value;
};

// Identity and firmware-set contents of one function's header.
struct PciFunctionConfig {
    std::string name;  // for stats and tests ("xen-platform")
    std::uint16_t vendor_id = 0xffff, device_id = 0xffff;
    std::uint8_t revision = 0;
    std::uint32_t class_code = 0;  // base class << 16 | subclass << 8 | prog-if
    std::uint8_t header_type = 0;  // 00h, | 80h for a multi-function device's function 0
    std::uint16_t command = 0;     // as firmware left it
    std::uint16_t status = 0;
    std::uint16_t subsystem_vendor_id = 0, subsystem_id = 0;
    std::uint8_t interrupt_line = 0, interrupt_pin = 0;  // pin: 0 none, 1 INTA# ...
    std::vector<PciBar> bars;
    std::vector<PciRegisterValue> device_specific;  // 40h-FFh; the rest of that space reads 0
};

class PciConfigSpace {
  public:
    explicit PciConfigSpace(const PciFunctionConfig& cfg);

    // A configuration read / write of `size` (1, 2, 4) bytes at `offset`. Bytes past 255 read as
    // ones and are not written (QEMU pci_host_config_read_common's limit).
    std::uint32_t read(unsigned offset, unsigned size) const;
    void write(unsigned offset, unsigned size, std::uint32_t value);

    const PciFunctionConfig& config() const { return cfg_; }
    std::uint16_t command() const { return static_cast<std::uint16_t>(read(PCI_COMMAND, 2)); }
    bool io_enabled() const { return command() & PCI_COMMAND_IO; }
    bool memory_enabled() const { return command() & PCI_COMMAND_MEMORY; }
    std::uint32_t bar(unsigned index) const { return read(PCI_BASE_ADDRESS_0 + 4 * index, 4); }

  private:
    PciFunctionConfig cfg_;
    std::array<std::uint8_t, pci::kConfigSpaceSize> value_{}, writable_{}, write1_clear_{};
};

}  // namespace xensim
