#include "sim/core/hex.h"

#include <cinttypes>
#include <cstdio>

#include <gtest/gtest.h>

namespace xensim {
namespace {

TEST(Hex, WritesAsPrintfDoes) {
    EXPECT_EQ(hex_string(0), "0x0");
    EXPECT_EQ(hex_string(0x1f7), "0x1f7");
    EXPECT_EQ(hex_string(0xa0000), "0xa0000");
    EXPECT_EQ(hex_string(~std::uint64_t(0)), "0xffffffffffffffff");
    for (std::uint64_t v = 1; v; v <<= 3) {
        char b[32];
        std::snprintf(b, sizeof b, "0x%" PRIx64, v + 0x5a);
        EXPECT_EQ(hex_string(v + 0x5a), b);
    }
}

}  // namespace
}  // namespace xensim
