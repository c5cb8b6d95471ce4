// An emulated device as the device model sees it: port I/O handlers at a simulated time.
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

}  // namespace xensim
