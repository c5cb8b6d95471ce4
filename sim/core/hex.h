// "0x1f7": how numbers that name hardware (ports, addresses, grant frames) are written in exit
// causes, trace fields and messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace xensim {

// As printf's "0x%" PRIx64, without the format parser: exit causes are built on every exit.
inline std::string hex_string(std::uint64_t v) {
    char b[18];  // "0x" + 16 digits
    char* p = b + sizeof b;
    do {
        *--p = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    *--p = 'x';
    *--p = '0';
    return std::string(p, static_cast<std::size_t>(b + sizeof b - p));
}

}  // namespace xensim
