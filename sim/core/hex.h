// "0x1f7": how numbers that name hardware (ports, addresses, grant frames) are written in exit
// causes, trace fields and messages.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

namespace xensim {

inline std::string hex_string(std::uint64_t v) {
    char b[19];  // "0x" + 16 digits + NUL
    std::snprintf(b, sizeof b, "0x%" PRIx64, v);
    return b;
}

}  // namespace xensim
