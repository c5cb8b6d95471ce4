// parse_xl_vif_rate (sim/platform/xl_vif_rate.h): xl's vif `rate=` syntax to libxl's
// rate_bytes_per_interval / rate_interval_usecs, every expectation from xen
// tools/libs/util/libxlu_vif.c (xlu_vif_parse_rate and its two helpers).
#include "sim/platform/xl_vif_rate.h"

#include <gtest/gtest.h>

namespace xensim {
namespace {

struct Case {
    const char* text;
    std::uint64_t bytes;  // expected rate_bytes_per_interval (when error is empty)
    std::uint32_t usecs;  // expected rate_interval_usecs
    const char* error;    // xl's message, or "" for success
};

class XlVifRate : public ::testing::TestWithParam<Case> {};

TEST_P(XlVifRate, ParsesAsXlDoes) {
    const Case& c = GetParam();
    const VifRateParse r = parse_xl_vif_rate(c.text);
    if (*c.error) {
        EXPECT_FALSE(r.rate.has_value()) << c.text;
        EXPECT_EQ(r.error, c.error) << c.text;
    } else {
        ASSERT_TRUE(r.rate.has_value()) << c.text << ": " << r.error;
        EXPECT_EQ(r.rate->bytes_per_interval, c.bytes) << c.text;
        EXPECT_EQ(r.rate->interval_usecs, c.usecs) << c.text;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Table, XlVifRate,
    ::testing::Values(
        // 10 Mbit/s = 1 250 000 B/s; the default interval is 50 ms: 62 500 B per 50 000 us.
        Case{"10Mb/s", 62500, 50000, ""}, Case{"1MB/s@100ms", 100000, 100000, ""},  // 10^6 B/s x 0.1 s
        Case{"100Kb/s@1s", 12500, 1000000, ""},                                     // 10^5 bit/s / 8 x 1 s
        Case{"10Mb/s@20ms", 25000, 20000, ""},      // the example of docs/network.md
        Case{"10Mb/s@10ms", 12500, 10000, ""},      // the model test's rate
        Case{"10Mb/s@20m", 25000, 20000, ""},       // "m" alone is milliseconds
        Case{"10Mb/s@20", 25000000, 20000000, ""},  // no unit: seconds
        Case{"10Mb/s@500us", 625, 500, ""}, Case{"10Mb/s@500u", 625, 500, ""},
        Case{"1Gb/s", 6250000, 50000, ""},            // 125 000 000 B/s x 0.05 s
        Case{"12b/s", 0, 50000, ""},                  // 1 B/s (12 / 8 truncated) x 0.05 s truncates to 0
        Case{"1B/s@1ms", 0, 1000, ""},                // accepted by xl: a limit nothing passes
        Case{"010MB/s@1s", 8000000, 1000000, ""},     // strtoull base 0: a leading 0 is octal
        Case{"4294967295B/s", 214748364, 50000, ""},  // the largest number; 0.05 s truncates
        Case{"10Mb/s@4294s", 5367500000u, 4294000000u, ""},  // the longest interval in seconds
        Case{"", 0, 0, "no rate specified"}, Case{"@10ms", 0, 0, "no rate specified"},
        Case{"100kb/s@1s", 0, 0, "invalid rate"},  // xl's regex has capital K only
        Case{"10 Mb/s", 0, 0, "invalid rate"}, Case{"10Mbit/s", 0, 0, "invalid rate"},
        Case{"10M/s", 0, 0, "invalid rate"}, Case{"10MB", 0, 0, "invalid rate"},
        Case{"-1MB/s", 0, 0, "invalid rate"}, Case{"0x10MB/s", 0, 0, "invalid rate"},
        Case{"0Mb/s", 0, 0, "rate overflow"},                    // zero is refused
        Case{"08Mb/s", 0, 0, "rate overflow"},                   // octal stops at 8: reads 0
        Case{"4294967296B/s", 0, 0, "rate overflow"},            // above UINT32_MAX
        Case{"99999999999999999999B/s", 0, 0, "rate overflow"},  // ERANGE
        Case{"4294967295GB/s@4294s", 0, 0, "rate overflow"},     // bytes x usecs above 2^64
        Case{"10Mb/s@", 0, 0, "invalid replenishment interval"},
        Case{"10Mb/s@10ms@1", 0, 0, "invalid replenishment interval"},
        Case{"10Mb/s@10ns", 0, 0, "invalid replenishment interval"},
        Case{"10Mb/s@0ms", 0, 0, "replenishment interval overflow"},
        Case{"10Mb/s@4295s", 0, 0, "replenishment interval overflow"},  // 4.295e9 us > UINT32_MAX
        Case{"10Mb/s@4294967296us", 0, 0, "replenishment interval overflow"}));

TEST(XlVifRate, TheNodeIsBytesCommaUsecs) {
    // libxl__set_xenstore_nic: "%"PRIu64",%"PRIu32.
    EXPECT_EQ(vif_rate_node(VifRate{25000, 20000}), "25000,20000");
    EXPECT_EQ(vif_rate_node(VifRate{5367500000u, 4294000000u}), "5367500000,4294000000");
}

}  // namespace
}  // namespace xensim
