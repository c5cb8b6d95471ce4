// XenStore wire codec (models/xen/xenstore_wire.h): framing as xenstored's handle_input does it.
#include "models/xen/xenstore_wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace xensim {
namespace {

std::string frame(const XsMessage& m) {
    std::string s;
    EXPECT_TRUE(xs_serialize(m, s));
    return s;
}

const XsMessage kRead{XS_READ, 7, 0, std::string("/local/domain/1/name\0", 21)};
const XsMessage kWrite{XS_WRITE, 8, 3, std::string("data/x\0v\0al", 11)};  // value with a NUL
const XsMessage kStart{XS_TRANSACTION_START, 9, 0, ""};                    // empty payload

TEST(XsWire, HeaderIsHostOrderXsdSockmsg) {
    std::string s = frame(kRead);
    ASSERT_EQ(s.size(), 16u + kRead.payload.size());
    xsd_sockmsg h;
    std::memcpy(&h, s.data(), sizeof h);
    EXPECT_EQ(h.type, static_cast<std::uint32_t>(XS_READ));
    EXPECT_EQ(h.req_id, 7u);
    EXPECT_EQ(h.tx_id, 0u);
    EXPECT_EQ(h.len, kRead.payload.size());
    EXPECT_EQ(static_cast<unsigned char>(s[4]), 7u);  // little-endian req_id on x86
}

// Any split of a byte stream of several messages yields the same messages.
struct SplitCase {
    const char* intent;
    std::vector<std::size_t> cuts;  // chunk boundaries in the concatenated stream
};

TEST(XsWire, ArbitraryChunkingYieldsTheSameMessages) {
    const std::string stream = frame(kRead) + frame(kStart) + frame(kWrite);
    const SplitCase cases[] = {
        {"all three messages in one chunk", {}},
        {"header split after 1 byte", {1}},
        {"header split in the middle of len", {13}},
        {"header complete, payload split", {16, 20}},
        {"split exactly at a message boundary", {16 + 21}},
        {"empty-payload message alone in a chunk", {37, 53}},
        {"byte by byte", {}},
    };
    for (const auto& tc : cases) {
        XsWireParser p;
        std::vector<std::size_t> cuts = tc.cuts;
        if (std::string(tc.intent) == "byte by byte")
            for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
        std::size_t prev = 0;
        cuts.push_back(stream.size());
        for (std::size_t cut : cuts) {
            ASSERT_TRUE(p.feed(stream.data() + prev, cut - prev)) << tc.intent;
            prev = cut;
        }
        ASSERT_EQ(p.ready_count(), 3u) << tc.intent;
        EXPECT_EQ(p.pop(), kRead) << tc.intent;
        EXPECT_EQ(p.pop(), kStart) << tc.intent;
        EXPECT_EQ(p.pop(), kWrite) << tc.intent;
        EXPECT_EQ(p.buffered(), 0u) << tc.intent;
    }
}

TEST(XsWire, PartialMessageIsNotDelivered) {
    XsWireParser p;
    std::string s = frame(kRead);
    EXPECT_TRUE(p.feed(s.data(), s.size() - 1));
    EXPECT_FALSE(p.has_message());
    EXPECT_EQ(p.buffered(), s.size() - 1);
    EXPECT_TRUE(p.feed(s.data() + s.size() - 1, 1));
    EXPECT_TRUE(p.has_message());
}

// handle_input: len > XENSTORE_PAYLOAD_MAX is XENSTORE_ERROR_PROTO as soon as the header is in.
TEST(XsWire, OversizedLenIsAStickyProtocolError) {
    struct Case {
        const char* intent;
        std::uint32_t len;
        bool ok;
    } cases[] = {
        {"len == XENSTORE_PAYLOAD_MAX is legal", XENSTORE_PAYLOAD_MAX, true},
        {"len == XENSTORE_PAYLOAD_MAX + 1 kills the connection", XENSTORE_PAYLOAD_MAX + 1, false},
        {"len == 0xffffffff kills the connection", 0xffffffffu, false},
    };
    for (const auto& tc : cases) {
        XsWireParser p;
        xsd_sockmsg h{XS_WRITE, 1, 0, tc.len};
        EXPECT_EQ(p.feed(&h, sizeof h), tc.ok) << tc.intent;
        EXPECT_EQ(p.error(), !tc.ok) << tc.intent;
        if (!tc.ok) {
            EXPECT_EQ(p.error_code(), static_cast<std::uint32_t>(XENSTORE_ERROR_PROTO)) << tc.intent;
            EXPECT_EQ(p.bad_len(), tc.len) << tc.intent;
            std::string good = frame(kRead);
            EXPECT_FALSE(p.feed(good)) << tc.intent << ": stays dead";
            EXPECT_FALSE(p.has_message()) << tc.intent;
            EXPECT_EQ(p.buffered(), sizeof h) << tc.intent << ": nothing more buffered";
        }
    }
}

TEST(XsWire, MessagesBeforeTheBadHeaderAreDelivered) {
    XsWireParser p;
    xsd_sockmsg bad{XS_WRITE, 2, 0, XENSTORE_PAYLOAD_MAX + 1};
    std::string s = frame(kRead);
    s.append(reinterpret_cast<const char*>(&bad), sizeof bad);
    EXPECT_FALSE(p.feed(s));
    ASSERT_EQ(p.ready_count(), 1u);
    EXPECT_EQ(p.pop(), kRead);
}

TEST(XsWire, SerializeRefusesOversizedPayload) {
    std::string out = "x";
    XsMessage big{XS_READ, 1, 0, std::string(XENSTORE_PAYLOAD_MAX + 1, 'a')};
    EXPECT_FALSE(xs_serialize(big, out));
    EXPECT_EQ(out, "x");
    big.payload.pop_back();
    EXPECT_TRUE(xs_serialize(big, out));
    EXPECT_EQ(out.size(), 1 + 16 + XENSTORE_PAYLOAD_MAX);
}

}  // namespace
}  // namespace xensim
