#include "sim/core/hex.h"

#include "sim/core/exit_reason.h"

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

// ExitCause::label: the kind alone, or "kind:" and the number as hex_string writes it (the
// exits_by_cause labels of docs/architecture.md: "port:0x1f7", "mmio:0xfebc0000").
TEST(Hex, ExitCauseLabelsWriteTheNumberInHex) {
    const std::string hypercall = "hypercall:sched_op/SCHEDOP_block";
    struct Case {
        ExitCause cause;
        const char* label;
    };
    const Case cases[] = {
        {ExitCause("hlt"), "hlt"},
        {ExitCause(hypercall), "hypercall:sched_op/SCHEDOP_block"},
        {ExitCause("port", 0x1f7), "port:0x1f7"},
        {ExitCause("port", 0), "port:0x0"},
        {ExitCause("mmio", 0xfebc0000), "mmio:0xfebc0000"},
    };
    for (const Case& c : cases) EXPECT_EQ(c.cause.label(), c.label);
}

}  // namespace
}  // namespace xensim
