// An emulated device as the device model sees it: port I/O and MMIO handlers at a simulated time.
#pragma once

#include <cstdint>

namespace xensim {

class IoDevice {
  public:
    virtual ~IoDevice() = default;
    virtual bool claims(std::uint16_t port) const = 0;
    // size 1, 2 or 4
    virtual std::uint32_t read(std::uint16_t port, unsigned size, std::uint64_t now_ps) = 0;
    virtual void write(std::uint16_t port, unsigned size, std::uint32_t value, std::uint64_t now_ps) = 0;
};

// A device with a guest-physical MMIO window (IOREQ_TYPE_COPY ioreqs); size 1, 2, 4 or 8.
class MmioDevice {
  public:
    virtual ~MmioDevice() = default;
    virtual bool claims_mmio(std::uint64_t gpa) const = 0;
    virtual std::uint64_t mmio_read(std::uint64_t gpa, unsigned size, std::uint64_t now_ps) = 0;
    virtual void mmio_write(std::uint64_t gpa, unsigned size, std::uint64_t value, std::uint64_t now_ps) = 0;
};

}  // namespace xensim
