// The ring side of netfront over the real shared rings it sets up.
// The test plays the guest kernel (a fake grant table and page allocator whose grant refs map to
// test-owned pages) and the backend: it reads requests from and writes responses into the shared
// tx/rx rings with io/ring.h's back-ring macros, reaching data through the grants as netback does.
// Expected behaviour follows Linux 6.1 drivers/net/xen-netfront.c (function named in each test's
// intent) and xen/include/public/io/netif.h.
#include "frontends/netif_ring_frontend.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

namespace xensim {
namespace {

using Page = std::array<std::uint8_t, 4096>;
using Front = NetifRingFrontend;

// The guest kernel's grant table and page allocator, as the engine sees them through GrantOps.
struct FakeGuest {
    struct Entry {
        std::uint64_t gfn;
        bool readonly;
        bool mapped = false;  // the backend still maps it: end() refuses
    };
    std::map<std::uint64_t, std::unique_ptr<Page>> pages;
    std::map<grant_ref_t, Entry> grants;  // active grants
    grant_ref_t next_ref = 8;             // refs below 8 are reserved, as in Linux
    std::uint64_t next_gfn = 0x2000;
    std::size_t page_limit = ~std::size_t{0};
    std::set<std::uint64_t> touched;  // frames the engine asked for through page()
    std::function<void()> on_page;    // runs inside the engine's page() call (races)

    std::uint64_t new_page() {
        pages[next_gfn] = std::make_unique<Page>();
        return next_gfn++;
    }
    std::uint8_t* page(std::uint64_t gfn) { return pages.at(gfn)->data(); }
    GrantOps ops() {
        GrantOps o;
        o.grant = [this](std::uint64_t gfn, bool ro) -> std::optional<grant_ref_t> {
            if (!pages.count(gfn)) throw std::logic_error("grant of a frame not allocated");
            grants[next_ref] = Entry{gfn, ro};
            return next_ref++;
        };
        o.end = [this](grant_ref_t ref) {
            auto it = grants.find(ref);
            if (it == grants.end()) throw std::logic_error("end of a grant not active");
            if (it->second.mapped) return false;
            grants.erase(it);
            return true;
        };
        o.alloc_page = [this]() -> std::optional<std::uint64_t> {
            if (pages.size() >= page_limit) return std::nullopt;
            return new_page();
        };
        o.page = [this](std::uint64_t gfn) {
            touched.insert(gfn);
            if (on_page) {
                auto f = std::move(on_page);
                on_page = nullptr;
                f();
            }
            return page(gfn);
        };
        return o;
    }
};

// A frame of `len` bytes: the Ethernet type and the IPv4 fields skb_checksum_setup reads (version/ihl
// 0x45, no fragment, protocol TCP) when it is long enough to hold them, then a byte pattern.
EthernetFrame make_frame(std::size_t len, std::uint8_t seed = 1) {
    EthernetFrame f;
    f.bytes.resize(len);
    for (std::size_t i = 0; i < len; ++i) f.bytes[i] = std::uint8_t(seed + i * 7);
    if (len >= 24) {
        f.bytes[12] = 0x08;  // ETH_P_IP
        f.bytes[13] = 0x00;
        f.bytes[14] = 0x45;  // version 4, ihl 5
        f.bytes[20] = 0x40;  // DF, fragment offset 0
        f.bytes[21] = 0x00;
        f.bytes[23] = 6;  // IPPROTO_TCP
    }
    return f;
}

// Frontend under test, the fake guest and a backend on the real shared rings.
struct Rig {
    FakeGuest guest;
    StatsGroup root{""};
    StatsGroup stats{"netfront", &root};
    std::unique_ptr<Front> front;
    netif_tx_back_ring_t txb{};
    netif_rx_back_ring_t rxb{};

    explicit Rig(NetifFrontendConfig cfg = {}, std::size_t page_limit = ~std::size_t{0}) {
        guest.page_limit = page_limit;
        front = std::make_unique<Front>(cfg, guest.ops(), stats);
        if (!front->setup()) throw std::runtime_error("setup failed");
        BACK_RING_INIT(&txb, tx_sring(), 4096);
        BACK_RING_INIT(&rxb, rx_sring(), 4096);
    }
    netif_tx_sring_t* tx_sring() {
        return reinterpret_cast<netif_tx_sring_t*>(guest.page(front->tx_ring_gfn()));
    }
    netif_rx_sring_t* rx_sring() {
        return reinterpret_cast<netif_rx_sring_t*>(guest.page(front->rx_ring_gfn()));
    }

    std::uint64_t counter(const char* name) const { return stats.find_counter(name)->value(); }
    std::uint64_t family(const char* fam, const char* label) const {
        return stats.find_family(fam)->value(label);
    }

    // ---- backend, transmit side (as xenvif_tx_build_gops reads a packet) ----
    struct TxSeen {
        std::vector<netif_tx_request_t> reqs;  // data requests
        std::optional<netif_extra_info_t> extra;
        std::vector<std::uint8_t> bytes;
        bool readonly = true;
        bool in_page = true;  // offset + size <= 4096 for every slot
    };
    std::deque<std::pair<std::uint16_t, bool>> tx_owed;  // (id, is_extra) in ring order
    std::vector<TxSeen> tx_consume() {
        std::vector<TxSeen> out;
        RING_IDX rp = txb.sring->req_prod;
        while (txb.req_cons != rp) {
            TxSeen p;
            netif_tx_request_t req;
            RING_COPY_REQUEST(&txb, txb.req_cons, &req);
            ++txb.req_cons;
            p.reqs.push_back(req);
            tx_owed.push_back({req.id, false});
            if (req.flags & NETTXF_extra_info) {
                netif_extra_info_t x;
                RING_COPY_REQUEST(&txb, txb.req_cons, &x);
                ++txb.req_cons;
                p.extra = x;
                tx_owed.push_back({0, true});
            }
            while (req.flags & NETTXF_more_data) {
                RING_COPY_REQUEST(&txb, txb.req_cons, &req);
                ++txb.req_cons;
                p.reqs.push_back(req);
                tx_owed.push_back({req.id, false});
            }
            std::size_t rest = 0;
            for (std::size_t k = 1; k < p.reqs.size(); ++k) rest += p.reqs[k].size;
            for (std::size_t k = 0; k < p.reqs.size(); ++k) {
                const netif_tx_request_t& r = p.reqs[k];
                std::size_t size = k == 0 ? r.size - rest : r.size;  // "first slot: whole packet"
                const FakeGuest::Entry& e = guest.grants.at(r.gref);
                p.readonly = p.readonly && e.readonly;
                p.in_page = p.in_page && r.offset + size <= 4096;
                const std::uint8_t* src = guest.page(e.gfn) + r.offset;
                p.bytes.insert(p.bytes.end(), src, src + size);
            }
            out.push_back(std::move(p));
        }
        return out;
    }
    // Answers everything consumed: `status` for data slots, XEN_NETIF_RSP_NULL for extras.
    bool tx_respond_all(std::int16_t status = NETIF_RSP_OKAY) {
        while (!tx_owed.empty()) {
            tx_write(tx_owed.front().first, tx_owed.front().second ? std::int16_t(NETIF_RSP_NULL) : status);
            tx_owed.pop_front();
        }
        return tx_push();
    }
    void tx_write(std::uint16_t id, std::int16_t status) {
        netif_tx_response_t* r = RING_GET_RESPONSE(&txb, txb.rsp_prod_pvt);
        r->id = id;
        r->status = status;
        ++txb.rsp_prod_pvt;
    }
    bool tx_push() {
        int notify = 0;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&txb, notify);
        return notify != 0;
    }
    // transmit + push_tx + backend consume, for one frame.
    TxSeen send_one(const EthernetFrame& f) {
        EXPECT_EQ(front->transmit(f), NetTxVerdict::queued);
        front->push_tx();
        std::vector<TxSeen> seen = tx_consume();
        EXPECT_EQ(seen.size(), 1u);
        return seen.empty() ? TxSeen{} : seen[0];
    }

    // ---- backend, receive side (as xenvif_rx_skb fills the slots it consumed) ----
    std::deque<netif_rx_request_t> rx_reqs;  // consumed, unanswered, in ring order
    void rx_consume() {
        RING_IDX rp = rxb.sring->req_prod;
        for (; rxb.req_cons != rp; ++rxb.req_cons) {
            netif_rx_request_t r;
            RING_COPY_REQUEST(&rxb, rxb.req_cons, &r);
            rx_reqs.push_back(r);
        }
    }
    // One response slot for the oldest request; `data` (status bytes) copied through its grant.
    void rx_put(std::uint16_t offset, std::uint16_t flags, std::int16_t status,
                const std::uint8_t* data = nullptr) {
        rx_consume();
        std::uint16_t id = 0;
        if (!rx_reqs.empty()) {
            netif_rx_request_t req = rx_reqs.front();
            rx_reqs.pop_front();
            id = req.id;
            if (data) {
                const FakeGuest::Entry& e = guest.grants.at(req.gref);
                EXPECT_FALSE(e.readonly);
                std::memcpy(guest.page(e.gfn) + offset, data, std::size_t(status));
            }
        }
        netif_rx_response_t* r = RING_GET_RESPONSE(&rxb, rxb.rsp_prod_pvt);
        r->id = id;
        r->offset = offset;
        r->flags = flags;
        r->status = status;
        ++rxb.rsp_prod_pvt;
    }
    void rx_put_extra(const netif_extra_info_t& x) {
        rx_consume();
        if (!rx_reqs.empty()) rx_reqs.pop_front();
        netif_rx_response_t* r = RING_GET_RESPONSE(&rxb, rxb.rsp_prod_pvt);
        std::memcpy(r, &x, sizeof(x));
        ++rxb.rsp_prod_pvt;
    }
    // A packet as netback lays it out: chunks of `chunk` bytes at offset 0, `flags` on the first,
    // NETRXF_more_data on all but the last, extras right after the first slot.
    void rx_deliver(const EthernetFrame& f, std::uint16_t flags = 0,
                    std::vector<netif_extra_info_t> extras = {}, std::size_t chunk = 4096) {
        std::size_t n = (f.size() + chunk - 1) / chunk;
        if (n == 0) n = 1;
        for (std::size_t k = 0; k < n; ++k) {
            std::size_t off = k * chunk, len = std::min(chunk, f.size() - off);
            std::uint16_t fl = k == 0 ? flags : 0;
            if (k == 0 && !extras.empty()) fl |= NETRXF_extra_info;
            if (k + 1 < n) fl |= NETRXF_more_data;
            rx_put(0, fl, std::int16_t(len), f.bytes.data() + off);
            if (k == 0)
                for (std::size_t x = 0; x < extras.size(); ++x) {
                    netif_extra_info_t e = extras[x];
                    if (x + 1 < extras.size()) e.flags |= XEN_NETIF_EXTRA_FLAG_MORE;
                    rx_put_extra(e);
                }
        }
    }
    bool rx_push() {
        int notify = 0;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&rxb, notify);
        return notify != 0;
    }
    // Copies of every page but the ring pages, to prove a bad response made the engine write nothing.
    std::map<std::uint64_t, Page> snapshot() {
        std::map<std::uint64_t, Page> s;
        for (auto& p : guest.pages)
            if (p.first != front->tx_ring_gfn() && p.first != front->rx_ring_gfn()) s[p.first] = *p.second;
        return s;
    }
};

netif_extra_info_t gso_extra(std::uint16_t size, std::uint8_t type = XEN_NETIF_GSO_TYPE_TCPV4) {
    netif_extra_info_t x{};
    x.type = XEN_NETIF_EXTRA_TYPE_GSO;
    x.u.gso.size = size;
    x.u.gso.type = type;
    return x;
}

NetifFrontendConfig sg_config() {
    NetifFrontendConfig c;
    c.feature_sg = true;
    c.feature_gso_tcpv4 = true;
    c.feature_gso_tcpv6 = true;
    return c;
}

// ============================================================================ geometry and set-up

// netif.h / xen-netfront.c: NET_TX_RING_SIZE = NET_RX_RING_SIZE = __CONST_RING_SIZE(.., 4096) = 256;
// netfront_tx_slot_available: below 256 - XEN_NETIF_NR_SLOTS_MIN (18) - 1 = 237; NET_RX_SLOTS_MIN 19.
TEST(NetifRingFrontend, RingGeometry) {
    EXPECT_EQ(Front::kTxRingSize, 256u);
    EXPECT_EQ(Front::kRxRingSize, 256u);
    EXPECT_EQ(Front::kTxAvailableBelow, 237u);
    EXPECT_EQ(Front::kRxSlotsMin, 19u);
    EXPECT_EQ(Front::kMaxTxSlots, 18u);  // MAX_XEN_SKB_FRAGS + 1
    EXPECT_EQ(sizeof(netif_tx_request_t), 12u);
    EXPECT_EQ(sizeof(netif_rx_response_t), 8u);
    Rig rig;
    EXPECT_EQ(RING_SIZE(&rig.txb), 256u);
    EXPECT_EQ(RING_SIZE(&rig.rxb), 256u);
    EXPECT_NE(rig.front->tx_ring_gfn(), rig.front->rx_ring_gfn());
    // SHARED_RING_INIT: producers 0, events 1.
    EXPECT_EQ(rig.tx_sring()->req_prod, 0u);
    EXPECT_EQ(rig.tx_sring()->req_event, 1u);
    EXPECT_EQ(rig.rx_sring()->rsp_event, 1u);
}

// setup_netfront: -ENOMEM when a ring page cannot be had.
TEST(NetifRingFrontend, SetupNeedsTwoPages) {
    FakeGuest g;
    g.page_limit = 1;
    StatsGroup s{"nf"};
    Front f({}, g.ops(), s);
    EXPECT_FALSE(f.setup());
    EXPECT_EQ(f.transmit(make_frame(60)), NetTxVerdict::dropped);  // !netif_carrier_ok
}

TEST(NetifRingFrontend, ConfigRangesChecked) {
    FakeGuest g;
    StatsGroup s{"nf"};
    NetifFrontendConfig c;
    c.tx_head_bytes = 13;
    EXPECT_THROW(Front(c, g.ops(), s), std::invalid_argument);
    c.tx_head_bytes = 4096 - 64 + 1;
    EXPECT_THROW(Front(c, g.ops(), s), std::invalid_argument);
    c = {};
    c.rx_refill_batch = 257;
    EXPECT_THROW(Front(c, g.ops(), s), std::invalid_argument);
}

// ======================================================================================= transmit

// xennet_start_xmit: a 60-byte frame is one request, size = packet length, no flags, one
// read-only grant; the first push notifies (req_event starts at 1).
TEST(NetifRingFrontend, Tx60ByteFrameOneSlot) {
    Rig rig;
    EthernetFrame f = make_frame(60);
    NetTxResult res = rig.front->transmit(f);
    ASSERT_EQ(res, NetTxVerdict::queued);
    EXPECT_EQ(res.requests, 1u);
    EXPECT_EQ(res.grants, 1u);
    EXPECT_EQ(rig.tx_sring()->req_prod, 0u);  // not yet published
    EXPECT_TRUE(rig.front->push_tx());
    std::vector<Rig::TxSeen> seen = rig.tx_consume();
    ASSERT_EQ(seen.size(), 1u);
    ASSERT_EQ(seen[0].reqs.size(), 1u);
    const netif_tx_request_t& r = seen[0].reqs[0];
    EXPECT_EQ(r.size, 60u);
    EXPECT_EQ(r.flags, 0u);
    EXPECT_EQ(r.offset, Front::kTxHeadOffset);
    EXPECT_EQ(r.id, 0u);  // tx_skb_freelist starts at 0
    EXPECT_TRUE(seen[0].readonly);
    EXPECT_EQ(seen[0].bytes, f.bytes);
    EXPECT_EQ(rig.counter("tx_packets"), 1u);
    EXPECT_EQ(rig.counter("tx_slots"), 1u);
    EXPECT_EQ(rig.counter("grants_granted"), 1u);
    EXPECT_EQ(rig.counter("tx_notifications_sent"), 1u);
}

// xennet_start_xmit: CHECKSUM_PARTIAL -> csum_blank|data_validated; CHECKSUM_UNNECESSARY ->
// data_validated; on the first request only.
TEST(NetifRingFrontend, TxChecksumFlags) {
    struct Case {
        bool csum_blank, data_validated;
        std::uint16_t flags;
    } cases[] = {
        {false, false, 0},
        {false, true, NETTXF_data_validated},
        {true, false, NETTXF_csum_blank | NETTXF_data_validated},
        {true, true, NETTXF_csum_blank | NETTXF_data_validated},
    };
    for (const Case& c : cases) {
        Rig rig(sg_config());
        EthernetFrame f = make_frame(1514);
        f.csum_blank = c.csum_blank;
        f.data_validated = c.data_validated;
        Rig::TxSeen s = rig.send_one(f);
        ASSERT_EQ(s.reqs.size(), 2u);
        EXPECT_EQ(s.reqs[0].flags, c.flags | NETTXF_more_data) << c.csum_blank << c.data_validated;
        EXPECT_EQ(s.reqs[1].flags, 0u);
    }
}

// xennet_make_txreqs with feature-sg: the head (tx_head_bytes = 128) then page-sized frags; no slot
// crosses a page; more_data on all but the last; first size = whole packet.
TEST(NetifRingFrontend, TxMultiSlotScatterGather) {
    struct Case {
        std::size_t len;
        unsigned slots;
    } cases[] = {
        {60, 1},
        {128, 1},
        {129, 2},
        {1514, 2},
        {128 + 4096, 2},  // head + one full frag page
        {128 + 4096 + 1, 3},
        {65535, 17},  // 128 + 15 * 4096 + 3967: the largest frame, within MAX_XEN_SKB_FRAGS + 1
    };
    for (const Case& c : cases) {
        Rig rig(sg_config());
        EthernetFrame f = make_frame(c.len, std::uint8_t(c.len));
        Rig::TxSeen s = rig.send_one(f);
        ASSERT_EQ(s.reqs.size(), c.slots) << c.len;
        EXPECT_EQ(s.reqs[0].size, c.len);
        for (std::size_t k = 0; k < s.reqs.size(); ++k)
            EXPECT_EQ(bool(s.reqs[k].flags & NETTXF_more_data), k + 1 < s.reqs.size()) << c.len << " " << k;
        for (std::size_t k = 1; k < s.reqs.size(); ++k) EXPECT_EQ(s.reqs[k].offset, 0u);
        EXPECT_TRUE(s.in_page) << c.len;
        EXPECT_TRUE(s.readonly);
        EXPECT_EQ(s.bytes, f.bytes) << c.len;
        EXPECT_EQ(rig.counter("tx_slots"), c.slots);
        std::set<grant_ref_t> refs;
        for (const auto& r : s.reqs) refs.insert(r.gref);
        EXPECT_EQ(refs.size(), c.slots);  // one grant per slot
    }
}

// Without feature-sg a frame must be one slot (xennet_start_xmit: slots > 1 && !xennet_can_sg
// -> drop); linear at offset 64 it fits up to 4032 bytes. Beyond XEN_NETIF_MAX_TX_SIZE: drop.
TEST(NetifRingFrontend, TxDrops) {
    struct Case {
        bool sg;
        std::size_t len;
        NetTxVerdict verdict;
        const char* reason;
    } cases[] = {
        {false, 1514, NetTxVerdict::queued, nullptr},    {false, 4032, NetTxVerdict::queued, nullptr},
        {false, 4033, NetTxVerdict::dropped, "no_sg"},   {true, 65535, NetTxVerdict::queued, nullptr},
        {true, 65536, NetTxVerdict::dropped, "too_big"}, {true, 0, NetTxVerdict::dropped, "empty"},
    };
    for (const Case& c : cases) {
        NetifFrontendConfig cfg;
        cfg.feature_sg = c.sg;
        Rig rig(cfg);
        EXPECT_EQ(rig.front->transmit(make_frame(c.len)), c.verdict) << c.len;
        if (c.reason) {
            EXPECT_EQ(rig.family("tx_dropped", c.reason), 1u) << c.len;
            EXPECT_EQ(rig.front->tx_in_flight(), 0u);
            EXPECT_TRUE(rig.guest.grants.empty());
        } else {
            EXPECT_GE(rig.front->tx_in_flight(), 1u);
        }
    }
}

// xennet_start_xmit: gso_size != 0 -> NETTXF_extra_info and a XEN_NETIF_EXTRA_TYPE_GSO slot right
// after the first; a GSO type whose feature was not negotiated is dropped (netif_needs_gso).
TEST(NetifRingFrontend, TxGsoExtraSlot) {
    struct Case {
        GsoType type;
        bool v4, v6;
        std::uint8_t wire_type;  // 0: dropped
    } cases[] = {
        {GsoType::tcpv4, true, false, XEN_NETIF_GSO_TYPE_TCPV4},
        {GsoType::tcpv6, false, true, XEN_NETIF_GSO_TYPE_TCPV6},
        {GsoType::tcpv4, false, true, 0},
        {GsoType::tcpv6, true, false, 0},
        {GsoType::none, true, true, 0},
    };
    for (const Case& c : cases) {
        NetifFrontendConfig cfg;
        cfg.feature_sg = true;
        cfg.feature_gso_tcpv4 = c.v4;
        cfg.feature_gso_tcpv6 = c.v6;
        Rig rig(cfg);
        EthernetFrame f = make_frame(20000);
        f.gso_type = c.type;
        f.gso_size = 1448;
        f.csum_blank = true;
        if (!c.wire_type) {
            EXPECT_EQ(rig.front->transmit(f), NetTxVerdict::dropped);
            EXPECT_EQ(rig.family("tx_dropped", "gso_not_negotiated"), 1u);
            continue;
        }
        NetTxResult res = rig.front->transmit(f);
        ASSERT_EQ(res, NetTxVerdict::queued);
        EXPECT_EQ(res.requests, 1u + 1u + 5u);  // head, extra, ceil(19872 / 4096) frags
        EXPECT_EQ(res.grants, 1u + 5u);
        EXPECT_EQ(rig.front->tx_in_flight(), res.requests);
        rig.front->push_tx();
        // The raw ring: slot 1 is the extra info.
        netif_extra_info_t x;
        std::memcpy(&x, RING_GET_REQUEST(&rig.txb, 1), sizeof(x));
        EXPECT_EQ(x.type, XEN_NETIF_EXTRA_TYPE_GSO);
        EXPECT_EQ(x.flags, 0u);
        EXPECT_EQ(x.u.gso.size, 1448u);
        EXPECT_EQ(x.u.gso.type, c.wire_type);
        EXPECT_EQ(x.u.gso.features, 0u);
        std::vector<Rig::TxSeen> seen = rig.tx_consume();
        ASSERT_EQ(seen.size(), 1u);
        EXPECT_EQ(seen[0].reqs[0].flags,
                  NETTXF_csum_blank | NETTXF_data_validated | NETTXF_extra_info | NETTXF_more_data);
        EXPECT_EQ(seen[0].bytes, f.bytes);
        EXPECT_EQ(rig.counter("tx_gso_extras"), 1u);
    }
}

// netfront_tx_slot_available / netif_tx_stop_queue: one-slot frames are taken until 237 are in
// flight; then the queue is stopped and refuses; xennet_tx_buf_gc frees the slots, ends the grants
// and wakes the queue (xennet_maybe_wake_tx).
TEST(NetifRingFrontend, TxRingFullRefusesThenGcWakes) {
    Rig rig;
    unsigned queued = 0;
    while (rig.front->transmit(make_frame(60, std::uint8_t(queued))) == NetTxVerdict::queued) ++queued;
    EXPECT_EQ(queued, Front::kTxAvailableBelow);
    EXPECT_TRUE(rig.front->tx_stopped());
    EXPECT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::busy);
    EXPECT_EQ(rig.counter("tx_busy"), 2u);  // the refusal that ended the loop and this one
    rig.front->push_tx();
    EXPECT_EQ(rig.tx_consume().size(), queued);
    EXPECT_EQ(rig.guest.grants.size(), queued);
    // Nothing answered yet: no wake.
    Front::TxGc none = rig.front->collect_tx();
    EXPECT_FALSE(none.work_done);
    EXPECT_FALSE(none.wake);
    rig.tx_respond_all();
    Front::TxGc gc = rig.front->collect_tx();
    EXPECT_TRUE(gc.work_done);
    EXPECT_TRUE(gc.wake);
    EXPECT_EQ(gc.responses, queued);
    EXPECT_EQ(gc.grants_ended, queued);
    EXPECT_FALSE(rig.front->tx_stopped());
    EXPECT_EQ(rig.front->tx_in_flight(), 0u);
    EXPECT_TRUE(rig.guest.grants.empty());
    EXPECT_EQ(rig.front->grants_live(), 0u);
    EXPECT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::queued);
}

// RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: notify only when the new requests pass the backend's
// req_event (ring.h: notify iff req_event - old < new - old).
TEST(NetifRingFrontend, TxNotifySuppressedByReqEvent) {
    Rig rig;
    struct Step {
        unsigned frames;
        RING_IDX set_req_event;  // 0: leave as is
        bool notify;
    } steps[] = {
        {1, 0, true},   // 0 -> 1 passes the initial req_event 1
        {1, 5, false},  // 1 -> 2, backend wants an event when req_prod passes 4
        {2, 0, false},  // 2 -> 4
        {1, 0, true},   // 4 -> 5 reaches 5
        {1, 0, false},  // 5 -> 6: req_event 5 already passed
    };
    unsigned sent = 0, suppressed = 0;
    for (const Step& s : steps) {
        if (s.set_req_event) rig.tx_sring()->req_event = s.set_req_event;
        for (unsigned i = 0; i < s.frames; ++i)
            ASSERT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::queued);
        EXPECT_EQ(rig.front->push_tx(), s.notify) << rig.tx_sring()->req_prod;
        (s.notify ? sent : suppressed)++;
    }
    EXPECT_EQ(rig.counter("tx_notifications_sent"), sent);
    EXPECT_EQ(rig.counter("tx_notifications_suppressed"), suppressed);
    EXPECT_FALSE(rig.front->push_tx());  // nothing new
}

// xennet_tx_buf_gc: every data slot's grant ended and id freed; the extra slot's
// XEN_NETIF_RSP_NULL skipped; statuses counted; pages reused by the next frame.
TEST(NetifRingFrontend, TxGcEndsGrantsAndCountsStatuses) {
    struct Case {
        std::int16_t status;
        const char* label;
    } cases[] = {
        {NETIF_RSP_OKAY, "NETIF_RSP_OKAY"},
        {NETIF_RSP_ERROR, "NETIF_RSP_ERROR"},
        {NETIF_RSP_DROPPED, "NETIF_RSP_DROPPED"},
    };
    for (const Case& c : cases) {
        Rig rig(sg_config());
        EthernetFrame f = make_frame(9000);
        f.gso_type = GsoType::tcpv4;
        f.gso_size = 1448;
        ASSERT_EQ(rig.front->transmit(f), NetTxVerdict::queued);  // 128 + 4096 + 4096 + 680: 4 slots
        rig.front->push_tx();
        rig.tx_consume();
        EXPECT_EQ(rig.guest.grants.size(), 4u);
        rig.tx_respond_all(c.status);
        Front::TxGc gc = rig.front->collect_tx();
        EXPECT_EQ(gc.responses, 5u);
        EXPECT_EQ(gc.grants_ended, 4u);
        EXPECT_FALSE(gc.wake);  // the queue was never stopped
        EXPECT_EQ(rig.family("tx_responses", c.label), 4u);
        EXPECT_EQ(rig.family("tx_responses", "NETIF_RSP_NULL"), 1u);
        EXPECT_TRUE(rig.guest.grants.empty());
        EXPECT_EQ(rig.front->tx_in_flight(), 0u);
        EXPECT_FALSE(rig.front->broken());
        // RING_FINAL_CHECK_FOR_RESPONSES re-armed the event for the next response.
        EXPECT_EQ(rig.tx_sring()->rsp_event, rig.txb.rsp_prod_pvt + 1);
        std::size_t pages = rig.guest.pages.size();
        ASSERT_EQ(rig.front->transmit(f), NetTxVerdict::queued);
        EXPECT_EQ(rig.guest.pages.size(), pages);  // the freed pages carry the next frame
    }
}

// "xen-netfront: don't trust the backend response data" (6.1): a response with an id out of
// range, for a free id or one not yet pushed, a producer a ring ahead, or a grant the backend
// still maps disables the device; nothing is read or freed past that point.
TEST(NetifRingFrontend, TxBogusResponsesBreakTheDevice) {
    enum Kind { bad_id, free_id, unpushed_id, prod_overflow, still_mapped };
    struct Case {
        Kind kind;
        const char* cause;
        bool bogus;
    } cases[] = {
        {bad_id, "tx_bad_id", true},
        {free_id, "tx_inactive_id", true},
        {unpushed_id, "tx_inactive_id", true},
        {prod_overflow, "tx_prod_overflow", true},
        {still_mapped, "tx_grant_in_use", false},
    };
    for (const Case& c : cases) {
        Rig rig;
        ASSERT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::queued);  // id 0
        rig.front->push_tx();
        rig.tx_consume();
        switch (c.kind) {
            case bad_id:
                rig.tx_write(256, NETIF_RSP_OKAY);
                rig.tx_push();
                break;
            case free_id:
                rig.tx_write(7, NETIF_RSP_OKAY);
                rig.tx_push();
                break;
            case unpushed_id:
                ASSERT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::queued);  // id 1, not pushed
                rig.tx_write(1, NETIF_RSP_OKAY);
                rig.tx_push();
                break;
            case prod_overflow:
                rig.tx_sring()->rsp_prod = 257;
                break;
            case still_mapped:
                rig.guest.grants.begin()->second.mapped = true;
                rig.tx_respond_all();
                break;
        }
        Front::TxGc gc = rig.front->collect_tx();
        EXPECT_FALSE(gc.wake);
        EXPECT_TRUE(rig.front->broken()) << c.cause;
        EXPECT_EQ(rig.family("broken", c.cause), 1u) << c.cause;
        EXPECT_EQ(rig.counter("bogus_responses"), c.bogus ? 1u : 0u) << c.cause;
        EXPECT_EQ(rig.counter("grants_ended"), 0u);
        // Disabled for further use: transmit drops, gc and poll do nothing.
        EXPECT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::dropped);
        EXPECT_EQ(rig.family("tx_dropped", "broken"), 1u);
        EXPECT_FALSE(rig.front->collect_tx().work_done);
        EXPECT_TRUE(rig.front->poll(64).packets.empty());
    }
}

// ======================================================================================== receive

// xennet_alloc_rx_buffers: every slot gets a buffer with a writable grant and id = ring index;
// pushed (>= NET_RX_SLOTS_MIN outstanding) with a notification (req_event starts at 1).
TEST(NetifRingFrontend, RxPostsAWholeRing) {
    Rig rig;
    Front::RxRefill r = rig.front->refill_rx();
    EXPECT_EQ(r.posted, 256u);
    EXPECT_TRUE(r.notify);
    EXPECT_FALSE(r.retry_later);
    EXPECT_EQ(rig.rx_sring()->req_prod, 256u);
    std::set<grant_ref_t> refs;
    for (RING_IDX i = 0; i < 256; ++i) {
        const netif_rx_request_t* q = RING_GET_REQUEST(&rig.rxb, i);
        EXPECT_EQ(q->id, i);
        EXPECT_FALSE(rig.guest.grants.at(q->gref).readonly);
        refs.insert(q->gref);
    }
    EXPECT_EQ(refs.size(), 256u);
    EXPECT_EQ(rig.counter("rx_buffers_posted"), 256u);
    EXPECT_EQ(rig.front->rx_posted(), 256u);
    // Full: a second refill posts nothing and pushes nothing.
    Front::RxRefill again = rig.front->refill_rx();
    EXPECT_EQ(again.posted, 0u);
    EXPECT_FALSE(again.notify);
}

// xennet_alloc_rx_buffers: with fewer than NET_RX_SLOTS_MIN requests outstanding, or after an
// allocation failure, nothing is pushed and the refill timer is asked for.
TEST(NetifRingFrontend, RxRefillHeldBackBelowSlotsMin) {
    struct Case {
        std::size_t rx_pages;  // pages the guest can give beyond the two ring pages
        unsigned posted;
        bool retry;
        RING_IDX req_prod;
    } cases[] = {
        {10, 10, true, 0},  // 10 < 19 and the allocation failed
        {30, 30, true, 0},  // 30 >= 19 but the allocation failed: -ENOMEM -> timer
        {256, 256, false, 256},
    };
    for (const Case& c : cases) {
        Rig rig({}, 2 + c.rx_pages);
        Front::RxRefill r = rig.front->refill_rx();
        EXPECT_EQ(r.posted, c.posted);
        EXPECT_EQ(r.retry_later, c.retry);
        EXPECT_EQ(rig.rx_sring()->req_prod, c.req_prod);
        EXPECT_EQ(rig.counter("rx_refill_deferred"), c.retry ? 1u : 0u);
    }
}

// xennet_poll: one-slot packets; the flags of the first response become the frame's checksum
// state (csum_blank -> CHECKSUM_PARTIAL, data_validated -> CHECKSUM_UNNECESSARY); the consumed
// buffers' grants are ended and new buffers posted (Linux: a new page and grant per refill).
TEST(NetifRingFrontend, RxSingleSlotPackets) {
    struct Case {
        std::uint16_t flags;
        bool csum_blank, data_validated;
    } cases[] = {
        {0, false, false},
        {NETRXF_data_validated, false, true},
        {NETRXF_csum_blank | NETRXF_data_validated, true, false},
    };
    Rig rig;
    rig.front->refill_rx();
    for (const Case& c : cases) rig.rx_deliver(make_frame(60, std::uint8_t(c.flags)), c.flags);
    rig.rx_push();
    Front::RxPoll p = rig.front->poll(64);
    ASSERT_EQ(p.packets.size(), 3u);
    for (std::size_t k = 0; k < 3; ++k) {
        const EthernetFrame& f = p.packets[k].frame;
        EXPECT_EQ(f.bytes, make_frame(60, std::uint8_t(cases[k].flags)).bytes);
        EXPECT_EQ(f.csum_blank, cases[k].csum_blank) << k;
        EXPECT_EQ(f.data_validated, cases[k].data_validated) << k;
        EXPECT_EQ(f.gso_size, 0u);
        EXPECT_EQ(p.packets[k].slots, 1u);
    }
    EXPECT_TRUE(p.complete);
    EXPECT_FALSE(p.more);
    EXPECT_EQ(p.responses, 3u);
    EXPECT_EQ(p.grants_ended, 3u);
    EXPECT_EQ(p.refill.posted, 3u);
    EXPECT_EQ(p.refill.grants, 3u);
    EXPECT_EQ(rig.front->rx_posted(), 256u);
    EXPECT_EQ(rig.counter("rx_packets"), 3u);
    EXPECT_EQ(rig.counter("rx_bytes"), 180u);
    EXPECT_EQ(rig.counter("grants_ended"), 3u);
    EXPECT_EQ(rig.counter("grants_granted"), 259u);
    EXPECT_EQ(rig.guest.grants.size(), 256u);
    EXPECT_EQ(rig.tx_sring()->req_prod, 0u);  // the tx ring is untouched by receiving
}

// xennet_get_responses + xennet_fill_frags: a 9000-byte packet in three slots (4096, 4096, 808)
// chained by NETRXF_more_data, and one with data at an offset in each page.
TEST(NetifRingFrontend, RxMultiSlotPacket) {
    Rig rig;
    rig.front->refill_rx();
    EthernetFrame f = make_frame(9000, 3);
    rig.rx_deliver(f);
    EthernetFrame g = make_frame(3000, 9);
    rig.rx_put(100, NETRXF_more_data, 1000, g.bytes.data());
    rig.rx_put(4000, NETRXF_more_data, 96, g.bytes.data() + 1000);
    rig.rx_put(0, 0, 1904, g.bytes.data() + 1096);
    rig.rx_push();
    Front::RxPoll p = rig.front->poll(64);
    ASSERT_EQ(p.packets.size(), 2u);
    EXPECT_EQ(p.packets[0].frame.bytes, f.bytes);
    EXPECT_EQ(p.packets[0].slots, 3u);
    EXPECT_EQ(p.packets[1].frame.bytes, g.bytes);
    EXPECT_EQ(p.packets[1].slots, 3u);
    EXPECT_EQ(rig.counter("rx_slots"), 6u);
    EXPECT_EQ(p.errors, 0u);
    EXPECT_EQ(rig.front->rx_posted(), 256u);
}

// xennet_get_extras / xennet_set_skb_gso: a GSO extra after the first slot sets the frame's
// gso_type/gso_size; the extra slot's buffer is re-posted as it is (no new grant); a GSO packet
// without NETRXF_csum_blank is made CHECKSUM_PARTIAL (checksum_setup); a bad GSO extra drops it.
TEST(NetifRingFrontend, RxGsoExtra) {
    struct Case {
        netif_extra_info_t extra;
        std::uint16_t flags;
        bool ok;
        GsoType type;
        bool fixup;
        const char* error;
    } cases[] = {
        {gso_extra(1448), NETRXF_csum_blank | NETRXF_data_validated, true, GsoType::tcpv4, false, nullptr},
        {gso_extra(1440, XEN_NETIF_GSO_TYPE_TCPV6), NETRXF_csum_blank, true, GsoType::tcpv6, false, nullptr},
        {gso_extra(1448), NETRXF_data_validated, true, GsoType::tcpv4, true, nullptr},
        {gso_extra(0), NETRXF_csum_blank, false, GsoType::none, false, "bad_gso"},
        {gso_extra(1448, 7), NETRXF_csum_blank, false, GsoType::none, false, "bad_gso"},
    };
    for (const Case& c : cases) {
        Rig rig;
        rig.front->refill_rx();
        EthernetFrame f = make_frame(20000);
        if (c.type == GsoType::tcpv6) {  // an IPv6/TCP frame for checksum_setup
            f.bytes[12] = 0x86;
            f.bytes[13] = 0xdd;
            f.bytes[14 + 6] = 6;
        }
        rig.rx_deliver(f, c.flags, {c.extra});  // 5 data slots + 1 extra
        rig.rx_push();
        Front::RxPoll p = rig.front->poll(64);
        EXPECT_EQ(rig.counter("rx_extra_slots"), 1u);
        if (!c.ok) {
            EXPECT_TRUE(p.packets.empty());
            EXPECT_EQ(rig.family("rx_errors", c.error), 1u);
            EXPECT_EQ(rig.rx_sring()->rsp_prod, rig.rxb.rsp_prod_pvt);
            EXPECT_EQ(rig.front->rx_posted(), 256u);
            continue;
        }
        ASSERT_EQ(p.packets.size(), 1u);
        EXPECT_EQ(p.responses, 6u);
        EXPECT_EQ(p.grants_ended, 5u);
        const EthernetFrame& got = p.packets[0].frame;
        EXPECT_EQ(got.bytes, f.bytes);
        EXPECT_EQ(got.gso_type, c.type);
        EXPECT_EQ(got.gso_size, c.extra.u.gso.size);
        EXPECT_TRUE(got.csum_blank);
        EXPECT_EQ(rig.counter("rx_gso_checksum_fixup"), c.fixup ? 1u : 0u);
        EXPECT_EQ(p.packets[0].slots, 5u);
        // 5 data buffers ended and replaced; the extra's buffer moved without a new grant.
        EXPECT_EQ(rig.counter("grants_ended"), 5u);
        EXPECT_EQ(rig.counter("grants_granted"), 256u + 5u);
        EXPECT_EQ(rig.front->rx_posted(), 256u);
    }
}

// xennet_get_responses / xennet_fill_frags / checksum_setup: bad responses drop the packet,
// count the reason and consume the slots as Linux does; no page is read for the dropped packet
// (nor written at all), the ring stays full and no grant leaks. The next good packet arrives.
TEST(NetifRingFrontend, RxBadResponsesDroppedAndCounted) {
    using Put = std::function<void(Rig&)>;
    auto slots = [](unsigned n, std::int16_t first, std::int16_t rest) {
        return [=](Rig& r) {
            std::vector<std::uint8_t> data(4096, 0x5a);
            for (unsigned k = 0; k < n; ++k)
                r.rx_put(0, k + 1 < n ? NETRXF_more_data : 0, k ? rest : first, data.data());
        };
    };
    struct Case {
        const char* what;
        Put put;
        const char* error;  // nullptr: delivered
        RING_IDX consumed;  // slots the packet takes
    } cases[] = {
        {"negative status", [](Rig& r) { r.rx_put(0, 0, NETIF_RSP_ERROR); }, "negative_status", 1},
        {"offset + size past the page", [](Rig& r) { r.rx_put(4000, 0, 200); }, "offset_size", 1},
        {"offset 0 size 4096 fits",
         [](Rig& r) {
             std::vector<std::uint8_t> d(4096, 1);
             r.rx_put(0, 0, 4096, d.data());
         },
         nullptr, 1},
        {"bad second slot",
         [](Rig& r) {
             std::vector<std::uint8_t> d(4096, 1);
             r.rx_put(0, NETRXF_more_data, 4096, d.data());
             r.rx_put(4095, 0, 2);
         },
         "offset_size", 2},
        {"packet runs past rsp_prod", [](Rig& r) { r.rx_put(0, NETRXF_more_data, 100); }, "need_more_slots",
         1},
        {"extra info missing", [](Rig& r) { r.rx_put(0, NETRXF_extra_info, 100); }, "missing_extra", 1},
        {"extra type 0",
         [](Rig& r) {
             r.rx_put(0, NETRXF_extra_info, 100);
             r.rx_put_extra(netif_extra_info_t{});
         },
         "invalid_extra_type", 2},
        {"extra type >= MAX",
         [](Rig& r) {
             r.rx_put(0, NETRXF_extra_info, 100);
             netif_extra_info_t x{};
             x.type = XEN_NETIF_EXTRA_TYPE_MAX;
             r.rx_put_extra(x);
         },
         "invalid_extra_type", 2},
        // XEN_NETIF_NR_SLOTS_MIN = 18 slots, or 19 when the first holds <= RX_COPY_THRESHOLD bytes;
        // xennet_fill_frags then allows MAX_SKB_FRAGS = 17 frags, 18 slots when the first is pulled.
        {"17 slots", slots(17, 300, 300), nullptr, 17},
        {"18 slots, first > 256", slots(18, 300, 300), "too_many_frags", 18},
        {"18 slots, first <= 256", slots(18, 256, 300), nullptr, 18},
        {"19 slots, first > 256", slots(19, 300, 300), "too_many_slots", 19},
        {"19 slots, first <= 256", slots(19, 100, 300), "too_many_frags", 19},
        {"csum_blank frame skb_checksum_setup cannot parse",
         [](Rig& r) {
             std::vector<std::uint8_t> d(60, 0);  // ethertype 0
             r.rx_put(0, NETRXF_csum_blank, 60, d.data());
         },
         "checksum_setup", 1},
    };
    for (const Case& c : cases) {
        Rig rig;
        rig.front->refill_rx();
        c.put(rig);
        rig.rx_push();
        auto before = rig.snapshot();
        rig.guest.touched.clear();
        Front::RxPoll p = rig.front->poll(64);
        EXPECT_EQ(p.packets.size(), c.error ? 0u : 1u) << c.what;
        EXPECT_EQ(p.errors, c.error ? 1u : 0u) << c.what;
        if (c.error) {
            EXPECT_EQ(rig.family("rx_errors", c.error), 1u) << c.what;
            // No page read for a packet dropped before assembly (checksum_setup parses the copy).
            if (std::strcmp(c.error, "checksum_setup") != 0) {
                EXPECT_TRUE(rig.guest.touched.empty()) << c.what;
            }
        }
        EXPECT_TRUE(rig.snapshot() == before) << c.what;  // and no page written
        EXPECT_FALSE(rig.front->broken()) << c.what;
        // The slots were consumed as Linux consumes them: the next packet is found and delivered.
        EthernetFrame good = make_frame(80, 42);
        rig.rx_deliver(good);
        rig.rx_push();
        p = rig.front->poll(64);
        ASSERT_EQ(p.packets.size(), 1u) << c.what;
        EXPECT_EQ(p.packets[0].frame.bytes, good.bytes) << c.what;
        EXPECT_EQ(rig.rx_sring()->rsp_event, c.consumed + 2) << c.what;  // rsp_cons + 1
        EXPECT_EQ(rig.front->rx_posted(), 256u) << c.what;
        EXPECT_EQ(rig.guest.grants.size(), 256u) << c.what;  // no grant leaked
        EXPECT_EQ(rig.front->grants_live(), 256u) << c.what;
    }
}

// handle_incoming_queue -> checksum_setup -> skb_checksum_setup: a CHECKSUM_PARTIAL frame must
// let the L4 checksum be located (IPv4 not a fragment, or IPv6, carrying TCP or UDP with its
// header present) or it is dropped as rx_errors; other frames need no setup.
TEST(NetifRingFrontend, RxChecksumSetup) {
    auto ipv4 = [](std::size_t len, std::uint8_t proto, std::uint16_t frag = 0x4000) {
        EthernetFrame f = make_frame(len);
        f.bytes[23] = proto;
        f.bytes[20] = std::uint8_t(frag >> 8);
        f.bytes[21] = std::uint8_t(frag);
        return f;
    };
    auto ipv6 = [](std::size_t len, std::uint8_t next) {
        EthernetFrame f = make_frame(len);
        f.bytes[12] = 0x86;
        f.bytes[13] = 0xdd;
        f.bytes[14 + 6] = next;
        return f;
    };
    struct Case {
        const char* what;
        EthernetFrame frame;
        std::uint16_t flags;
        bool delivered;
    } cases[] = {
        {"IPv4 TCP", ipv4(54, 6), NETRXF_csum_blank, true},
        {"IPv4 TCP header cut short", ipv4(53, 6), NETRXF_csum_blank, false},
        {"IPv4 UDP", ipv4(42, 17), NETRXF_csum_blank, true},
        {"IPv4 UDP header cut short", ipv4(41, 17), NETRXF_csum_blank, false},
        {"IPv4 ICMP", ipv4(60, 1), NETRXF_csum_blank, false},
        {"IPv4 fragment (MF)", ipv4(60, 6, 0x2000), NETRXF_csum_blank, false},
        {"IPv4 fragment (offset)", ipv4(60, 6, 0x0001), NETRXF_csum_blank, false},
        {"IPv6 TCP", ipv6(74, 6), NETRXF_csum_blank, true},
        {"IPv6 UDP", ipv6(62, 17), NETRXF_csum_blank, true},
        {"IPv6 hop-by-hop first (not walked)", ipv6(80, 0), NETRXF_csum_blank, false},
        {"IPv4 ICMP, data_validated only: no setup", ipv4(60, 1), NETRXF_data_validated, true},
    };
    for (const Case& c : cases) {
        Rig rig;
        rig.front->refill_rx();
        rig.rx_deliver(c.frame, c.flags);
        rig.rx_push();
        Front::RxPoll p = rig.front->poll(64);
        EXPECT_EQ(p.packets.size(), c.delivered ? 1u : 0u) << c.what;
        EXPECT_EQ(rig.family("rx_errors", "checksum_setup"), c.delivered ? 0u : 1u) << c.what;
        EXPECT_TRUE(p.complete) << c.what;  // the dropped packet no longer counts as work
        EXPECT_EQ(rig.front->rx_posted(), 256u) << c.what;
    }
}

// xennet_get_responses: a response in a slot with no posted buffer ("Bad rx response id") is an
// error; Linux finds buffers by ring index and ignores rx->id.
TEST(NetifRingFrontend, RxResponseWithoutBuffer) {
    Rig rig({}, 2 + 20);  // the guest has pages for 20 buffers
    Front::RxRefill r = rig.front->refill_rx();
    ASSERT_EQ(r.posted, 20u);
    EXPECT_TRUE(r.retry_later);  // the 21st page could not be had: nothing pushed yet
    EXPECT_EQ(rig.rx_sring()->req_prod, 0u);
    // The caller's timer fires; pushing needs >= 19 outstanding and no failure: still none.
    EXPECT_TRUE(rig.front->refill_rx().retry_later);
    // The backend answers slots it was never given (within a ring of rsp_cons: no overflow).
    std::vector<std::uint8_t> d(60, 1);
    for (unsigned k = 0; k < 21; ++k) rig.rx_put(0, 0, 60, d.data());
    rig.rx_push();
    Front::RxPoll p = rig.front->poll(64);
    EXPECT_EQ(p.packets.size(), 20u);  // the posted (if unpushed) buffers are taken, as Linux does
    EXPECT_EQ(rig.family("rx_errors", "bad_id"), 1u);
    EXPECT_FALSE(rig.front->broken());
}

// xennet_poll: a producer more than a ring ahead of rsp_cons ("Illegal number of responses")
// disables the device at once; nothing is read.
TEST(NetifRingFrontend, RxProducerOverflowBreaks) {
    Rig rig;
    rig.front->refill_rx();
    rig.rx_sring()->rsp_prod = 257;
    rig.guest.touched.clear();
    Front::RxPoll p = rig.front->poll(64);
    EXPECT_TRUE(p.packets.empty());
    EXPECT_TRUE(rig.front->broken());
    EXPECT_EQ(rig.family("broken", "rx_prod_overflow"), 1u);
    EXPECT_EQ(rig.counter("bogus_responses"), 1u);
    EXPECT_TRUE(rig.guest.touched.empty());
    EXPECT_EQ(rig.front->refill_rx().posted, 0u);
}

// xennet_get_responses: a buffer whose grant the backend still maps disables the device.
TEST(NetifRingFrontend, RxGrantStillMappedBreaks) {
    Rig rig;
    rig.front->refill_rx();
    rig.rx_consume();
    rig.guest.grants.at(rig.rx_reqs.front().gref).mapped = true;
    std::vector<std::uint8_t> d(60, 1);
    rig.rx_put(0, 0, 60, d.data());
    rig.rx_push();
    Front::RxPoll p = rig.front->poll(64);
    EXPECT_TRUE(p.packets.empty());
    EXPECT_TRUE(rig.front->broken());
    EXPECT_EQ(rig.family("broken", "rx_grant_in_use"), 1u);
}

// xennet_poll: at most `budget` packets; at budget no napi_complete_done (poll again); under
// budget RING_FINAL_CHECK_FOR_RESPONSES re-arms rsp_event, or reports responses that arrived
// meanwhile (napi_schedule).
TEST(NetifRingFrontend, RxBudgetAndFinalCheck) {
    Rig rig;
    rig.front->refill_rx();
    for (unsigned k = 0; k < 10; ++k) rig.rx_deliver(make_frame(60, std::uint8_t(k)));
    rig.rx_push();
    struct Step {
        unsigned budget, packets;
        bool complete;
    } steps[] = {{4, 4, false}, {4, 4, false}, {4, 2, true}};
    unsigned k = 0;
    for (const Step& s : steps) {
        RING_IDX event_before = rig.rx_sring()->rsp_event;
        Front::RxPoll p = rig.front->poll(s.budget);
        ASSERT_EQ(p.packets.size(), s.packets);
        for (const Front::RxPacket& pkt : p.packets)
            EXPECT_EQ(pkt.frame.bytes, make_frame(60, std::uint8_t(k++)).bytes);
        EXPECT_EQ(p.complete, s.complete);
        EXPECT_FALSE(p.more);
        if (!s.complete) {
            EXPECT_EQ(rig.rx_sring()->rsp_event, event_before);
        }
    }
    EXPECT_EQ(rig.rx_sring()->rsp_event, 11u);  // rsp_cons + 1
    // A response published while the poll runs (after rsp_prod was read): the final check finds it.
    rig.rx_deliver(make_frame(60, 50));
    rig.rx_push();
    rig.guest.on_page = [&rig] {
        rig.rx_deliver(make_frame(60, 51));
        rig.rx_push();
    };
    Front::RxPoll p = rig.front->poll(64);
    ASSERT_EQ(p.packets.size(), 1u);
    EXPECT_TRUE(p.complete);
    EXPECT_TRUE(p.more);
    p = rig.front->poll(64);
    ASSERT_EQ(p.packets.size(), 1u);
    EXPECT_EQ(p.packets[0].frame.bytes, make_frame(60, 51).bytes);
    // Errors do not count against the budget (xennet_poll: `continue` before work_done++).
    rig.rx_put(0, 0, NETIF_RSP_ERROR);
    rig.rx_put(0, 0, NETIF_RSP_ERROR);
    rig.rx_deliver(make_frame(60, 52));
    rig.rx_push();
    p = rig.front->poll(1);
    EXPECT_EQ(p.packets.size(), 1u);
    EXPECT_EQ(p.errors, 2u);
    EXPECT_FALSE(p.complete);
}

// Linux (rx_refill_batch 1) refills at every poll; GPLPV's XenNet_FillRing only once a quarter
// of the ring (64 slots) is free.
TEST(NetifRingFrontend, RxRefillBatching) {
    struct Case {
        unsigned batch;
        unsigned first_posted, second_posted;
    } cases[] = {{1, 10, 54}, {64, 0, 64}};
    for (const Case& c : cases) {
        NetifFrontendConfig cfg;
        cfg.rx_refill_batch = c.batch;
        Rig rig(cfg);
        rig.front->refill_rx();
        for (unsigned k = 0; k < 10; ++k) rig.rx_deliver(make_frame(60));
        rig.rx_push();
        Front::RxPoll p = rig.front->poll(64);
        EXPECT_EQ(p.packets.size(), 10u);
        EXPECT_EQ(p.refill.posted, c.first_posted) << c.batch;
        EXPECT_EQ(rig.front->rx_posted(), 246u + c.first_posted);
        for (unsigned k = 0; k < 54; ++k) rig.rx_deliver(make_frame(60));
        rig.rx_push();
        p = rig.front->poll(64);
        EXPECT_EQ(p.packets.size(), 54u);
        EXPECT_EQ(p.refill.posted, c.second_posted) << c.batch;
        EXPECT_EQ(rig.front->rx_posted(), 256u);
    }
}

// rx_deferred_release (GPLPV): a delivered packet's buffers stay with the upper layer until
// release_rx; refill meanwhile posts other pages; released pages are reused (with their grant
// when rx_persistent_grants). The pages owned stay within kRxMaxPages however long the caller holds.
TEST(NetifRingFrontend, RxDeferredRelease) {
    NetifFrontendConfig cfg;
    cfg.rx_deferred_release = true;
    cfg.rx_persistent_grants = true;
    Rig rig(cfg);
    rig.front->refill_rx();
    // The grants of the buffers the next four slots will fill (responses overwrite the requests).
    std::set<grant_ref_t> delivered_refs;
    for (RING_IDX i = 0; i < 4; ++i) delivered_refs.insert(RING_GET_REQUEST(&rig.rxb, i)->gref);
    const std::set<grant_ref_t> second_packet = {RING_GET_REQUEST(&rig.rxb, 1)->gref,
                                                 RING_GET_REQUEST(&rig.rxb, 2)->gref};
    rig.rx_deliver(make_frame(60, 1));
    rig.rx_deliver(make_frame(5000, 2));  // two slots, two buffers held
    rig.rx_deliver(make_frame(60, 3));
    rig.rx_push();
    Front::RxPoll p = rig.front->poll(64);
    ASSERT_EQ(p.packets.size(), 3u);
    EXPECT_NE(p.packets[0].release, p.packets[1].release);
    EXPECT_EQ(rig.front->rx_held_packets(), 3u);
    EXPECT_EQ(rig.front->rx_pages(), 256u + 4u);  // four new pages posted in their place
    for (RING_IDX i = 256; i < 260; ++i)
        EXPECT_EQ(delivered_refs.count(RING_GET_REQUEST(&rig.rxb, i)->gref), 0u);  // not re-posted
    EXPECT_EQ(rig.counter("grants_ended"), 0u);  // persistent: GPLPV keeps pb->gref
    rig.front->release_rx(p.packets[1].release);
    rig.front->release_rx(p.packets[1].release);  // twice: ignored
    rig.front->release_rx(12345);                 // unknown: ignored
    EXPECT_EQ(rig.front->rx_held_packets(), 2u);
    // Two more one-slot packets: their refill takes the two released pages, with their grants.
    rig.rx_deliver(make_frame(60, 4));
    rig.rx_deliver(make_frame(60, 5));
    rig.rx_push();
    std::uint64_t granted = rig.counter("grants_granted");
    p = rig.front->poll(64);
    ASSERT_EQ(p.packets.size(), 2u);
    EXPECT_EQ(rig.front->rx_pages(), 260u);
    EXPECT_EQ(rig.counter("grants_granted"), granted);
    EXPECT_EQ(p.refill.posted, 2u);
    EXPECT_EQ(p.refill.grants, 0u);  // persistent: the released pages keep their grants
    EXPECT_EQ(p.grants_ended, 0u);
    std::set<grant_ref_t> reposted;
    for (RING_IDX i = 260; i < 262; ++i) reposted.insert(RING_GET_REQUEST(&rig.rxb, i)->gref);
    EXPECT_EQ(reposted, second_packet);  // the released buffers, under their old grants

    // Never releasing: the pages stop at kRxMaxPages and refill asks to retry.
    bool retry = false;
    for (unsigned round = 0; round < 12 && !retry; ++round) {
        for (unsigned k = 0; k < 128; ++k) rig.rx_deliver(make_frame(60));
        rig.rx_push();
        p = rig.front->poll(256);
        retry = p.refill.retry_later;
        EXPECT_LE(rig.front->rx_pages(), Front::kRxMaxPages);
    }
    EXPECT_TRUE(retry);
    EXPECT_EQ(rig.front->rx_pages(), Front::kRxMaxPages);
}

// xennet_handle_rx: new unconsumed responses schedule NAPI (not spurious); none new is spurious;
// a producer going backwards disables the device.
TEST(NetifRingFrontend, RxInterrupt) {
    Rig rig;
    rig.front->refill_rx();
    Front::RxIrq irq = rig.front->rx_interrupt();
    EXPECT_FALSE(irq.schedule);
    EXPECT_TRUE(irq.spurious);
    for (unsigned k = 0; k < 3; ++k) rig.rx_deliver(make_frame(60));
    rig.rx_push();
    irq = rig.front->rx_interrupt();
    EXPECT_TRUE(irq.schedule);
    EXPECT_FALSE(irq.spurious);
    irq = rig.front->rx_interrupt();  // the same three again
    EXPECT_TRUE(irq.schedule);
    EXPECT_TRUE(irq.spurious);
    rig.rx_sring()->rsp_prod = 2;  // backwards
    rig.front->rx_interrupt();
    EXPECT_TRUE(rig.front->broken());
    EXPECT_EQ(rig.family("broken", "rx_prod_backwards"), 1u);
}

// xennet_disconnect_backend: every grant the engine holds is ended (tx in flight, rx posted,
// pooled and held); a grant the backend still maps is handed back for deferred freeing.
TEST(NetifRingFrontend, DisconnectEndsEveryGrant) {
    NetifFrontendConfig cfg = sg_config();
    cfg.rx_deferred_release = true;
    cfg.rx_persistent_grants = true;
    Rig rig(cfg);
    rig.front->refill_rx();
    rig.rx_deliver(make_frame(60));
    rig.rx_push();
    ASSERT_EQ(rig.front->poll(64).packets.size(), 1u);                       // one buffer held, 256 posted
    ASSERT_EQ(rig.front->transmit(make_frame(3000)), NetTxVerdict::queued);  // two tx grants
    rig.front->push_tx();
    EXPECT_EQ(rig.front->grants_live(), 256u + 1u + 2u);
    EXPECT_EQ(rig.guest.grants.size(), 259u);
    grant_ref_t mapped = rig.guest.grants.begin()->first;
    rig.guest.grants.begin()->second.mapped = true;
    std::vector<grant_ref_t> left = rig.front->disconnect();
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0], mapped);
    EXPECT_EQ(rig.guest.grants.size(), 1u);
    EXPECT_EQ(rig.front->grants_live(), 0u);
    EXPECT_EQ(rig.front->transmit(make_frame(60)), NetTxVerdict::dropped);
    EXPECT_EQ(rig.family("tx_dropped", "no_carrier"), 1u);
    EXPECT_TRUE(rig.front->poll(64).packets.empty());
    EXPECT_EQ(rig.front->refill_rx().posted, 0u);
    // Reconnected (netfront_resume -> setup_netfront): fresh rings on the same pages, pages reused.
    std::size_t pages = rig.guest.pages.size();
    ASSERT_TRUE(rig.front->setup());
    EXPECT_EQ(rig.rx_sring()->req_prod, 0u);
    EXPECT_EQ(rig.front->refill_rx().posted, 256u);
    EXPECT_EQ(rig.guest.pages.size(), pages);
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

// transmit_raw (frontends/netif_misbehaviour.h's hook): slots written as given, each data slot with
// its own id and read-only grant unless a bogus reference is named; an extra slot as given. The
// answers free the ids; a bogus reference is never ended (the guest never granted it) and does not
// count as a grant held.
TEST(NetifRingFrontendRaw, RawSlotsAreWrittenAsGivenAndTheirAnswersFreeThem) {
    Rig rig;
    std::vector<Front::RawTxSlot> slots(3);
    slots[0].req.size = 1000;
    slots[0].req.flags = NETTXF_extra_info;
    slots[1].extra = true;
    slots[1].info.type = XEN_NETIF_EXTRA_TYPE_MAX;
    slots[2].req.size = 10;
    slots[2].req.offset = 4090;
    slots[2].bogus_gref = 0x00ffffffu;
    ASSERT_TRUE(rig.front->transmit_raw(slots));
    EXPECT_EQ(rig.front->grants_live(), 1u);  // the bogus slot holds none
    rig.front->push_tx();
    netif_tx_request_t r0, r2;
    netif_extra_info_t x;
    RING_COPY_REQUEST(&rig.txb, 0, &r0);
    RING_COPY_REQUEST(&rig.txb, 1, &x);
    RING_COPY_REQUEST(&rig.txb, 2, &r2);
    rig.txb.req_cons = 3;
    EXPECT_EQ(r0.size, 1000u);
    EXPECT_EQ(r0.flags, NETTXF_extra_info);
    EXPECT_TRUE(rig.guest.grants.at(r0.gref).readonly);
    EXPECT_EQ(x.type, XEN_NETIF_EXTRA_TYPE_MAX);
    EXPECT_EQ(r2.gref, 0x00ffffffu);
    EXPECT_EQ(r2.offset, 4090u);
    EXPECT_NE(r0.id, r2.id);
    rig.tx_write(r0.id, NETIF_RSP_ERROR);
    rig.tx_write(0, NETIF_RSP_NULL);
    rig.tx_write(r2.id, NETIF_RSP_ERROR);
    rig.tx_push();
    Front::TxGc gc = rig.front->collect_tx();  // would throw on ending a grant never made
    EXPECT_EQ(gc.responses, 3u);
    EXPECT_EQ(gc.grants_ended, 1u);
    EXPECT_FALSE(rig.front->broken());
    EXPECT_EQ(rig.front->tx_in_flight(), 0u);
    EXPECT_EQ(rig.front->grants_live(), 0u);
    EXPECT_EQ(rig.front->tx_responses_seen(NETIF_RSP_ERROR), 2u);
    // A producer published as given.
    rig.front->publish_tx_producer(rig.front->tx_req_prod_pvt() + 300);
    EXPECT_EQ(rig.tx_sring()->req_prod, 303u);
}

}  // namespace
}  // namespace xensim
