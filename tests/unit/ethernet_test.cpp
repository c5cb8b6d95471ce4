// The shared frame vocabulary (sim/core/ethernet.h): header fields, MAC text form, and the
// Internet checksum against published examples.
#include <gtest/gtest.h>

#include "sim/core/ethernet.h"

namespace xensim {
namespace {

TEST(Ethernet, HeaderFieldsAreReadFromTheBytes) {
    EthernetFrame f;
    f.bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01, 0x08, 0x06};
    EXPECT_EQ(f.dst(), kBroadcastMac);
    EXPECT_TRUE(is_multicast(f.dst()));
    EXPECT_EQ(to_string(f.src()), "00:16:3e:00:00:01");
    EXPECT_FALSE(is_multicast(f.src()));
    EXPECT_EQ(f.ethertype(), kEtherTypeArp);
    f.bytes.resize(13);
    EXPECT_EQ(f.ethertype(), 0) << "a runt has no ethertype";
}

TEST(Ethernet, MacTextFormRoundTripsAndRejectsAnythingElse) {
    auto m = parse_mac("00:16:3E:0a:ff:01");
    ASSERT_TRUE(m);
    EXPECT_EQ(to_string(*m), "00:16:3e:0a:ff:01");
    for (const char* bad :
         {"", "00:16:3e:0a:ff", "00:16:3e:0a:ff:0g", "00-16-3e-0a-ff-01", "00:16:3e:0a:ff:011"})
        EXPECT_FALSE(parse_mac(bad)) << bad;
}

// RFC 1071 section 3's example: the sum of 0001 f203 f4f5 f6f7 is ddf2 (checksum 220d).
TEST(Ethernet, InternetChecksumOfTheRfc1071Example) {
    const std::uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(internet_checksum(b, sizeof b), 0x220d);
    // Summed in two even pieces, the same.
    EXPECT_EQ(internet_checksum_fold(internet_checksum_add(internet_checksum_add(0, b, 4), b + 4, 4)),
              0x220d);
}

// An IPv4 header (192.168.0.1 -> 192.168.0.199, UDP, TTL 64) whose checksum is b861; with the
// checksum in place the header sums to zero, as a receiver checks it.
TEST(Ethernet, InternetChecksumOfAnIpv4Header) {
    std::uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(internet_checksum(h, sizeof h), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    EXPECT_EQ(internet_checksum(h, sizeof h), 0);
    const std::uint8_t odd[] = {0x01, 0x02, 0x03};  // the odd byte is padded with zero
    EXPECT_EQ(internet_checksum(odd, sizeof odd), static_cast<std::uint16_t>(~(0x0102 + 0x0300) & 0xffff));
}

}  // namespace
}  // namespace xensim
