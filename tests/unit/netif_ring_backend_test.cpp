// The ring side of netback, driven by a frontend that plays by the rules and by one that does not.
// The test is the frontend: it initialises real shared TX/RX rings in test-owned pages
// (SHARED_RING_INIT / FRONT_RING_ATTACH), writes netif_tx_request / netif_extra_info /
// netif_rx_request slots with RING_GET_REQUEST and publishes them with RING_PUSH_REQUESTS, and
// reads the answers with RING_GET_RESPONSE, as netfront does. A fake executor plays Xen: it runs
// each grant-op array the engine builds (one "hypercall" per array, counted) over test-owned
// granted pages and can fail chosen grants. Expected values cite Linux 6.1
// drivers/net/xen-netback/{netback.c,rx.c} (the function behind each row is named) and netif.h.
#include "models/dom0/netif_ring_backend.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace xensim {
namespace {

constexpr domid_t kFront = 7;
constexpr std::uint64_t kMsPs = 1000000000ull;

// Xen, as far as grant ops on test pages go.
struct FakeXen {
    std::map<grant_ref_t, std::vector<std::uint8_t>> pages;  // the frontend's granted pages
    std::set<grant_ref_t> fail_copy, fail_map;               // grants whose ops fail
    std::map<grant_handle_t, grant_ref_t> mapped;
    grant_handle_t next_handle = 0x40;
    unsigned copy_calls = 0, map_calls = 0, unmap_calls = 0;  // hypercalls issued

    std::vector<std::uint8_t>& page(grant_ref_t g) {
        auto& p = pages[g];
        if (p.empty()) {
            p.resize(4096);
            for (unsigned i = 0; i < 4096; ++i) p[i] = std::uint8_t(g * 31 + i * 7);
        }
        return p;
    }
    std::vector<std::uint8_t>* find(grant_ref_t g) {
        auto it = pages.find(g);
        return it == pages.end() ? nullptr : &it->second;
    }

    // GNTTABOP_copy over the TX head copies (source: the frontend's grant; dest: dom0's buffer).
    void tx_copy(gnttab_copy_t* ops, std::uint8_t* const* dest, unsigned n) {
        ++copy_calls;
        for (unsigned i = 0; i < n; ++i) {
            gnttab_copy_t& op = ops[i];
            auto* p = find(op.source.u.ref);
            if (!(op.flags & GNTCOPY_source_gref) || op.source.domid != kFront || !p ||
                fail_copy.count(op.source.u.ref)) {
                op.status = GNTST_bad_gntref;
            } else if (op.source.offset + op.len > 4096u || op.dest.offset + op.len > 4096u) {
                op.status = GNTST_bad_copy_arg;
            } else {
                std::memcpy(dest[i], p->data() + op.source.offset, op.len);
                op.status = GNTST_okay;
            }
        }
    }
    // GNTTABOP_map_grant_ref; returns the page pointers the engine reads.
    std::vector<const std::uint8_t*> map(gnttab_map_grant_ref_t* ops, unsigned n) {
        ++map_calls;
        std::vector<const std::uint8_t*> out(n, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            gnttab_map_grant_ref_t& op = ops[i];
            auto* p = find(op.ref);
            if (op.flags != (GNTMAP_host_map | GNTMAP_readonly) || op.dom != kFront || !p ||
                fail_map.count(op.ref)) {
                op.status = GNTST_bad_gntref;
                continue;
            }
            op.status = GNTST_okay;
            op.handle = next_handle++;
            mapped[op.handle] = op.ref;
            out[i] = p->data();
        }
        return out;
    }
    void unmap(gnttab_unmap_grant_ref_t* ops, unsigned n) {
        ++unmap_calls;
        for (unsigned i = 0; i < n; ++i)
            ops[i].status = mapped.erase(ops[i].handle) ? GNTST_okay : GNTST_bad_handle;
    }
    // GNTTABOP_copy over an RX batch (source: dom0's buffer; dest: the frontend's grant).
    void rx_copy(const NetifRingBackend::RxBatch& b) {
        ++copy_calls;
        for (unsigned i = 0; i < b.nr; ++i) {
            gnttab_copy_t& op = b.ops[i];
            auto* p = find(op.dest.u.ref);
            if (op.flags != GNTCOPY_dest_gref || op.dest.domid != kFront || op.source.domid != DOMID_SELF ||
                !p || fail_copy.count(op.dest.u.ref)) {
                op.status = GNTST_bad_gntref;
            } else if (op.dest.offset + op.len > 4096u || op.source.offset + op.len > 4096u) {
                op.status = GNTST_bad_copy_arg;
            } else {
                std::memcpy(p->data() + op.dest.offset, b.src[i], op.len);
                op.status = GNTST_okay;
            }
        }
    }
};

struct Slot {
    grant_ref_t gref;
    std::uint16_t offset;
    std::uint16_t size;
    std::uint16_t flags;
};

netif_extra_info_t gso_extra(std::uint8_t type, std::uint16_t size, std::uint8_t flags = 0) {
    netif_extra_info_t e{};
    e.type = XEN_NETIF_EXTRA_TYPE_GSO;
    e.flags = flags;
    e.u.gso.type = type;
    e.u.gso.size = size;
    return e;
}

// Two shared rings, the frontend's view of them, the fake Xen and the engine under test.
struct Rig {
    std::vector<std::uint64_t> tx_mem = std::vector<std::uint64_t>(512);
    std::vector<std::uint64_t> rx_mem = std::vector<std::uint64_t>(512);
    netif_tx_sring_t* txs = reinterpret_cast<netif_tx_sring_t*>(tx_mem.data());
    netif_rx_sring_t* rxs = reinterpret_cast<netif_rx_sring_t*>(rx_mem.data());
    netif_tx_front_ring_t txf{};
    netif_rx_front_ring_t rxf{};
    StatsGroup stats{"vif7.0"};
    FakeXen xen;
    std::unique_ptr<NetifRingBackend> back;
    std::uint16_t next_id = 0;

    explicit Rig(NetifBackendConfig cfg = {}, std::uint64_t now_ps = 0) {
        SHARED_RING_INIT(txs);
        SHARED_RING_INIT(rxs);
        FRONT_RING_ATTACH(&txf, txs, 0, 4096);
        FRONT_RING_ATTACH(&rxf, rxs, 0, 4096);
        cfg.frontend_domid = kFront;
        back = std::make_unique<NetifRingBackend>(txs, rxs, cfg, stats, now_ps);
    }

    // --- TX, as xennet_start_xmit writes it
    std::uint16_t post(const Slot& s) {
        xen.page(s.gref);
        netif_tx_request_t* r = RING_GET_REQUEST(&txf, txf.req_prod_pvt);
        txf.req_prod_pvt++;
        *r = {};
        r->gref = s.gref;
        r->offset = s.offset;
        r->size = s.size;
        r->flags = s.flags;
        r->id = next_id++;
        return r->id;
    }
    void post_extra(const netif_extra_info_t& e) {
        void* slot = RING_GET_REQUEST(&txf, txf.req_prod_pvt);
        txf.req_prod_pvt++;
        std::memset(slot, 0, sizeof(netif_tx_request_t));
        std::memcpy(slot, &e, sizeof(e));
    }
    bool push() {
        int notify = 0;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&txf, notify);
        return notify != 0;
    }
    // The bytes a packet's slots describe: the first slot holds size - sum(rest) bytes.
    std::vector<std::uint8_t> bytes_of(const std::vector<Slot>& slots) {
        std::vector<std::uint8_t> out;
        unsigned rest = 0;
        for (std::size_t i = 1; i < slots.size(); ++i) rest += slots[i].size;
        for (std::size_t i = 0; i < slots.size(); ++i) {
            unsigned n = i == 0 ? slots[0].size - rest : slots[i].size;
            auto& p = xen.page(slots[i].gref);
            out.insert(out.end(), p.begin() + slots[i].offset, p.begin() + slots[i].offset + n);
        }
        return out;
    }

    struct Round {
        NetifRingBackend::TxGops gops;
        NetifRingBackend::TxSubmit sub;
        bool notify = false;
    };
    // One xenvif_tx_action: build, ONE copy call, ONE map call, check/submit, single unmaps.
    Round tx_round(std::uint64_t now_ps = 0, unsigned budget = 64) {
        Round r;
        r.gops = back->build_tx(now_ps, budget);
        r.notify = r.gops.notify;
        if (!r.gops.packets) return r;
        xen.tx_copy(r.gops.copy, r.gops.copy_dest, r.gops.nr_copy);
        std::vector<const std::uint8_t*> pages;
        if (r.gops.nr_map) pages = xen.map(r.gops.map, r.gops.nr_map);
        r.sub = back->submit_tx(pages);
        r.notify |= r.sub.notify;
        if (!r.sub.unmaps.empty()) {
            for (auto& op : r.sub.unmaps) xen.unmap(&op, 1);  // xenvif_idx_unmap: one call each
            r.notify |= back->complete_check_unmaps(r.sub.unmaps);
        }
        return r;
    }
    // Release every in-flight packet of a round and run the dealloc; returns the notify decision.
    bool release_and_dealloc(const std::vector<NetbackTxPacket>& pkts) {
        for (const auto& p : pkts)
            if (p.needs_release) back->release(p.release_handle);
        auto u = back->build_dealloc();
        if (!u.nr) return false;
        xen.unmap(u.ops, u.nr);
        return back->complete_dealloc();
    }
    std::vector<netif_tx_response_t> tx_responses() {
        std::vector<netif_tx_response_t> out;
        for (RING_IDX rp = txs->rsp_prod; txf.rsp_cons != rp; txf.rsp_cons++)
            out.push_back(*RING_GET_RESPONSE(&txf, txf.rsp_cons));
        return out;
    }

    // --- RX, as xennet_alloc_rx_buffers posts and xennet_poll reads
    void post_rx(std::uint16_t id, grant_ref_t gref) {
        if (gref < 0x8000) xen.page(gref);  // grefs from 0x8000 are "bogus": never granted
        netif_rx_request_t* r = RING_GET_REQUEST(&rxf, rxf.req_prod_pvt);
        rxf.req_prod_pvt++;
        r->id = id;
        r->gref = gref;
    }
    bool push_rx() {
        int notify = 0;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&rxf, notify);
        return notify != 0;
    }
    // One xenvif_rx_action: batches until the last, each ONE copy call; returns notify.
    bool rx_action(unsigned* batches = nullptr) {
        bool notify = false;
        for (;;) {
            auto b = back->build_rx();
            xen.rx_copy(b);
            notify |= back->complete_rx();
            if (batches) ++*batches;
            if (b.last) break;
        }
        return notify;
    }
    std::vector<netif_rx_response_t> rx_responses() {
        std::vector<netif_rx_response_t> out;
        for (RING_IDX rp = rxs->rsp_prod; rxf.rsp_cons != rp; rxf.rsp_cons++)
            out.push_back(*RING_GET_RESPONSE(&rxf, rxf.rsp_cons));
        return out;
    }

    std::uint64_t counter(const char* n) const { return stats.find_counter(n)->value(); }
    std::uint64_t family(const char* f, const char* label) const {
        return stats.find_family(f)->value(label);
    }
};

EthernetFrame frame_of(std::size_t n, std::uint8_t seed = 1) {
    EthernetFrame f;
    f.bytes.resize(n);
    for (std::size_t i = 0; i < n; ++i) f.bytes[i] = std::uint8_t(seed + i * 13);
    f.bytes[0] = 0x02;  // unicast destination
    return f;
}

TEST(NetifRingBackend, RingGeometry) {
    // netif.h: 12-byte TX requests and 8-byte RX requests behind a 64-byte header, rounded down to
    // a power of two: 256 slots each (XEN_NETIF_TX_RING_SIZE / XEN_NETIF_RX_RING_SIZE); an extra
    // info fits both a TX request and an RX response.
    EXPECT_EQ(sizeof(netif_tx_request_t), 12u);
    EXPECT_EQ(sizeof(netif_rx_request_t), 8u);
    EXPECT_EQ(sizeof(netif_rx_response_t), 8u);
    EXPECT_EQ(sizeof(netif_extra_info_t), 8u);
    EXPECT_EQ(NetifRingBackend::tx_ring_size(), 256u);
    EXPECT_EQ(NetifRingBackend::rx_ring_size(), 256u);
    EXPECT_EQ(NetifRingBackend::kMaxPendingReqs, NetifRingBackend::tx_ring_size());  // MAX_PENDING_REQS
    EXPECT_EQ(NetifRingBackend::kLegacySlotsMax, 18u);  // XEN_NETBK_LEGACY_SLOTS_MAX
    Rig rig;
    EXPECT_TRUE(rig.back->attached());
    EXPECT_FALSE(rig.back->disabled());
}

TEST(NetifRingBackend, AttachRefusesImpossibleProducer) {
    // xenvif_map_frontend_data_rings: req_prod - rsp_prod > RING_SIZE -> -EIO.
    std::vector<std::uint64_t> tx(512), rx(512);
    auto* txs = reinterpret_cast<netif_tx_sring_t*>(tx.data());
    auto* rxs = reinterpret_cast<netif_rx_sring_t*>(rx.data());
    SHARED_RING_INIT(txs);
    SHARED_RING_INIT(rxs);
    txs->req_prod = 257;
    StatsGroup stats{"vif"};
    NetifRingBackend back(txs, rxs, {}, stats);
    EXPECT_FALSE(back.attached());
    EXPECT_EQ(back.fatal(), NetbackFatal::bad_ring_attach);
    EXPECT_EQ(back.build_tx(0).packets, 0u);
    EXPECT_FALSE(back.queue_rx(frame_of(60)));
}

// ---------------------------------------------------------------------------------------------
// TX, well-formed

TEST(NetifRingBackend, SmallPacketIsCopiedOnlyAndAnsweredAtOnce) {
    Rig rig;
    std::vector<Slot> slots = {{11, 100, 60, NETTXF_data_validated}};
    std::uint16_t id = rig.post(slots[0]);
    rig.push();
    auto r = rig.tx_round();
    // xenvif_get_requests: min(60, XEN_NETBACK_TX_COPY_LEN) = 60 bytes copied, nothing mapped.
    ASSERT_EQ(r.gops.nr_copy, 1u);
    EXPECT_EQ(r.gops.nr_map, 0u);
    const gnttab_copy_t& op = r.gops.copy[0];
    EXPECT_EQ(op.flags, GNTCOPY_source_gref);
    EXPECT_EQ(op.source.u.ref, 11u);
    EXPECT_EQ(op.source.domid, kFront);
    EXPECT_EQ(op.source.offset, 100u);
    EXPECT_EQ(op.dest.domid, DOMID_SELF);
    EXPECT_EQ(op.len, 60u);
    EXPECT_EQ(rig.xen.copy_calls, 1u);
    EXPECT_EQ(rig.xen.map_calls, 0u);
    ASSERT_EQ(r.sub.packets.size(), 1u);
    const NetbackTxPacket& p = r.sub.packets[0];
    EXPECT_EQ(p.frame.bytes, rig.bytes_of(slots));
    EXPECT_TRUE(p.frame.data_validated);  // NETTXF_data_validated -> CHECKSUM_UNNECESSARY
    EXPECT_FALSE(p.frame.csum_blank);
    EXPECT_FALSE(p.needs_release);
    // xenvif_tx_check_gop answers a fully copied slot at once; rsp_event was 1: notify.
    EXPECT_TRUE(r.notify);
    auto rsp = rig.tx_responses();
    ASSERT_EQ(rsp.size(), 1u);
    EXPECT_EQ(rsp[0].id, id);
    EXPECT_EQ(rsp[0].status, NETIF_RSP_OKAY);
    EXPECT_EQ(rig.back->pending_in_use(), 0u);
    EXPECT_EQ(rig.counter("tx_packets"), 1u);
    EXPECT_EQ(rig.counter("tx_bytes_copied"), 60u);
    EXPECT_FALSE(rig.back->tx_final_check());
}

TEST(NetifRingBackend, MtuPacketHeadCopiedRestMappedAnsweredOnRelease) {
    Rig rig;
    std::vector<Slot> slots = {{21, 0, 1500, NETTXF_csum_blank}};
    std::uint16_t id = rig.post(slots[0]);
    rig.push();
    auto r = rig.tx_round();
    ASSERT_EQ(r.gops.nr_copy, 1u);
    EXPECT_EQ(r.gops.copy[0].len, 128u);  // XEN_NETBACK_TX_COPY_LEN
    ASSERT_EQ(r.gops.nr_map, 1u);         // the rest of the same slot: the "shared slot"
    const gnttab_map_grant_ref_t& m = r.gops.map[0];
    EXPECT_EQ(m.flags, std::uint32_t(GNTMAP_host_map | GNTMAP_readonly));
    EXPECT_EQ(m.ref, 21u);
    EXPECT_EQ(m.dom, kFront);
    const grant_handle_t handle = m.handle;
    ASSERT_EQ(r.sub.packets.size(), 1u);
    EXPECT_EQ(r.sub.packets[0].frame.bytes, rig.bytes_of(slots));
    EXPECT_TRUE(r.sub.packets[0].frame.csum_blank);  // NETTXF_csum_blank -> CHECKSUM_PARTIAL
    EXPECT_TRUE(r.sub.packets[0].needs_release);
    EXPECT_TRUE(rig.tx_responses().empty());  // the shared slot is answered after the unmap
    EXPECT_EQ(rig.back->pending_in_use(), 1u);

    rig.back->release(r.sub.packets[0].release_handle);
    auto u = rig.back->build_dealloc();
    ASSERT_EQ(u.nr, 1u);
    EXPECT_EQ(u.ops[0].handle, handle);
    EXPECT_TRUE(rig.tx_responses().empty());  // not before the unmap ran
    rig.xen.unmap(u.ops, u.nr);
    EXPECT_TRUE(rig.back->complete_dealloc());
    auto rsp = rig.tx_responses();
    ASSERT_EQ(rsp.size(), 1u);
    EXPECT_EQ(rsp[0].id, id);
    EXPECT_EQ(rsp[0].status, NETIF_RSP_OKAY);
    EXPECT_TRUE(rig.xen.mapped.empty());
    EXPECT_EQ(rig.back->pending_in_use(), 0u);
}

TEST(NetifRingBackend, ThreeSlotScatterGatherWithGso) {
    Rig rig;
    // first: total 3000 (1000 own), extra GSO TCPv4 MSS 1448, then two 1000-byte slots.
    std::vector<Slot> slots = {{31, 200, 3000, NETTXF_more_data | NETTXF_extra_info | NETTXF_csum_blank},
                               {32, 0, 1000, NETTXF_more_data},
                               {33, 96, 1000, 0}};
    std::uint16_t id0 = rig.post(slots[0]);
    rig.post_extra(gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 1448));
    std::uint16_t id1 = rig.post(slots[1]);
    std::uint16_t id2 = rig.post(slots[2]);
    rig.push();
    auto r = rig.tx_round();
    EXPECT_EQ(r.gops.nr_copy, 1u);
    EXPECT_EQ(r.gops.nr_map, 3u);  // rest of the first slot + two frags
    EXPECT_EQ(rig.xen.copy_calls, 1u);
    EXPECT_EQ(rig.xen.map_calls, 1u);  // ONE batched map for all three
    ASSERT_EQ(r.sub.packets.size(), 1u);
    const EthernetFrame& f = r.sub.packets[0].frame;
    EXPECT_EQ(f.bytes, rig.bytes_of(slots));
    EXPECT_EQ(f.size(), 3000u);
    EXPECT_EQ(f.gso_type, GsoType::tcpv4);  // xenvif_set_skb_gso
    EXPECT_EQ(f.gso_size, 1448u);
    EXPECT_TRUE(f.csum_blank);
    EXPECT_TRUE(rig.tx_responses().empty());
    rig.release_and_dealloc(r.sub.packets);
    EXPECT_EQ(rig.xen.unmap_calls, 1u);  // ONE batched unmap
    auto rsp = rig.tx_responses();
    // make_tx_response: the first slot's response is followed by NETIF_RSP_NULL for its extra.
    ASSERT_EQ(rsp.size(), 4u);
    EXPECT_EQ(rsp[0].id, id0);
    EXPECT_EQ(rsp[0].status, NETIF_RSP_OKAY);
    EXPECT_EQ(rsp[1].status, NETIF_RSP_NULL);
    EXPECT_EQ(rsp[2].id, id1);
    EXPECT_EQ(rsp[3].id, id2);
    EXPECT_EQ(rsp[3].status, NETIF_RSP_OKAY);
}

TEST(NetifRingBackend, HeadCopySpansSlotsWhenFirstSlotIsSmall) {
    // 6.1 (XSA-423) xenvif_get_requests: 128 bytes are copied even when the first slot holds
    // fewer: 60 from the first slot (answered at once) and 68 from the second (shared, mapped).
    Rig rig;
    std::vector<Slot> slots = {{41, 0, 1060, NETTXF_more_data}, {42, 0, 1000, 0}};
    std::uint16_t id0 = rig.post(slots[0]);
    std::uint16_t id1 = rig.post(slots[1]);
    rig.push();
    auto r = rig.tx_round();
    ASSERT_EQ(r.gops.nr_copy, 2u);
    EXPECT_EQ(r.gops.copy[0].len, 60u);
    EXPECT_EQ(r.gops.copy[1].len, 68u);
    EXPECT_EQ(r.gops.copy[1].source.u.ref, 42u);
    ASSERT_EQ(r.gops.nr_map, 1u);
    EXPECT_EQ(r.gops.map[0].ref, 42u);
    ASSERT_EQ(r.sub.packets.size(), 1u);
    EXPECT_EQ(r.sub.packets[0].frame.bytes, rig.bytes_of(slots));
    auto early = rig.tx_responses();
    ASSERT_EQ(early.size(), 1u);
    EXPECT_EQ(early[0].id, id0);
    rig.release_and_dealloc(r.sub.packets);
    auto late = rig.tx_responses();
    ASSERT_EQ(late.size(), 1u);
    EXPECT_EQ(late[0].id, id1);
}

TEST(NetifRingBackend, ReleaseBatchesUnmapsAndDecidesNotification) {
    Rig rig;
    for (int i = 0; i < 3; ++i) rig.post({grant_ref_t(50 + i), 0, 1500, 0});
    rig.push();
    auto r = rig.tx_round();
    ASSERT_EQ(r.sub.packets.size(), 3u);
    EXPECT_EQ(r.gops.nr_map, 3u);
    EXPECT_EQ(rig.xen.map_calls, 1u);
    // Release all three; xenvif_tx_dealloc_action gathers them into ONE unmap array.
    for (const auto& p : r.sub.packets) rig.back->release(p.release_handle);
    auto u = rig.back->build_dealloc();
    ASSERT_EQ(u.nr, 3u);
    rig.xen.unmap(u.ops, u.nr);
    // rsp_event is 1 (SHARED_RING_INIT): the push from 0 to 3 crosses it -> notify.
    EXPECT_TRUE(rig.back->complete_dealloc());
    EXPECT_EQ(rig.xen.unmap_calls, 1u);
    EXPECT_EQ(rig.tx_responses().size(), 3u);
    EXPECT_EQ(rig.back->build_dealloc().nr, 0u);  // nothing left

    // The frontend has not moved rsp_event since: the next push needs no notification...
    rig.post({60, 0, 1500, 0});
    rig.push();
    auto r2 = rig.tx_round();
    EXPECT_FALSE(rig.release_and_dealloc(r2.sub.packets));
    EXPECT_EQ(rig.counter("notifications_suppressed"), 1u);
    // ...until it asks again (RING_FINAL_CHECK_FOR_RESPONSES sets rsp_event = rsp_cons + 1).
    rig.tx_responses();
    int more = 0;
    RING_FINAL_CHECK_FOR_RESPONSES(&rig.txf, more);
    EXPECT_EQ(more, 0);
    rig.post({61, 0, 1500, 0});
    rig.push();
    auto r3 = rig.tx_round();
    EXPECT_TRUE(rig.release_and_dealloc(r3.sub.packets));
}

TEST(NetifRingBackend, EighteenFragsAreTheMostAcceptedAndCopyTheWholeFirstSlot) {
    // xenvif_count_requests drops only at slots >= XEN_NETBK_LEGACY_SLOTS_MAX: 1 + 18 slots pass,
    // and with ret >= XEN_NETBK_LEGACY_SLOTS_MAX - 1 the whole first slot goes to the head.
    Rig rig;
    std::vector<Slot> slots = {{70, 0, std::uint16_t(300 + 18 * 100), NETTXF_more_data}};
    for (int i = 0; i < 18; ++i)
        slots.push_back({grant_ref_t(71 + i), 0, 100, std::uint16_t(i < 17 ? NETTXF_more_data : 0)});
    for (const Slot& s : slots) rig.post(s);
    rig.push();
    auto r = rig.tx_round();
    ASSERT_EQ(r.sub.packets.size(), 1u);
    EXPECT_EQ(r.gops.copy[0].len, 300u);  // data_len = txreq.size (the first slot)
    EXPECT_EQ(r.gops.nr_map, 18u);
    EXPECT_EQ(r.sub.packets[0].frame.bytes, rig.bytes_of(slots));
    rig.release_and_dealloc(r.sub.packets);
    EXPECT_EQ(rig.tx_responses().size(), 19u);
}

TEST(NetifRingBackend, HeadCopyNeverCrossesADom0Page) {
    // 6.1.y "xen/netback: don't do grant copy across page boundary": a 4050-byte head at
    // NET_SKB_PAD (64) would cross its page, so the copy is split in two ops checked together.
    for (bool fail_second_half : {false, true}) {
        SCOPED_TRACE(fail_second_half ? "second half fails" : "both halves succeed");
        Rig rig;
        std::vector<Slot> slots = {{80, 0, std::uint16_t(4050 + 18 * 10), NETTXF_more_data}};
        for (int i = 0; i < 18; ++i)
            slots.push_back({grant_ref_t(81 + i), 0, 10, std::uint16_t(i < 17 ? NETTXF_more_data : 0)});
        for (const Slot& s : slots) rig.post(s);
        rig.push();
        auto g = rig.back->build_tx(0);
        ASSERT_EQ(g.nr_copy, 2u);
        EXPECT_EQ(g.copy[0].len, 4096u - NetifRingBackend::kTxHeadOffset);
        EXPECT_EQ(g.copy[1].len, 4050u - (4096u - NetifRingBackend::kTxHeadOffset));
        EXPECT_EQ(g.copy[1].source.offset, g.copy[0].len);
        EXPECT_EQ(g.copy[1].dest.offset, 0u);
        EXPECT_EQ(g.copy[1].dest.u.gmfn, g.copy[0].dest.u.gmfn + 1);
        EXPECT_EQ(g.nr_map, 18u);
        rig.xen.tx_copy(g.copy, g.copy_dest, g.nr_copy);
        if (fail_second_half) g.copy[1].status = GNTST_general_error;
        auto sub = rig.back->submit_tx(rig.xen.map(g.map, g.nr_map));
        for (auto& op : sub.unmaps) rig.xen.unmap(&op, 1);
        if (!sub.unmaps.empty()) rig.back->complete_check_unmaps(sub.unmaps);
        if (fail_second_half) {
            EXPECT_TRUE(sub.packets.empty());
            EXPECT_EQ(sub.unmaps.size(), 18u);  // every mapped frag undone, one op each
            auto rsp = rig.tx_responses();
            ASSERT_EQ(rsp.size(), 19u);
            EXPECT_EQ(rsp[0].status, NETIF_RSP_ERROR);  // the head slot, answered once
            for (std::size_t i = 1; i < rsp.size(); ++i) EXPECT_EQ(rsp[i].status, NETIF_RSP_OKAY);
        } else {
            ASSERT_EQ(sub.packets.size(), 1u);
            EXPECT_EQ(sub.packets[0].frame.bytes, rig.bytes_of(slots));
        }
    }
}

TEST(NetifRingBackend, ChainedExtrasGsoAndHash) {
    // xenvif_get_extras follows XEN_NETIF_EXTRA_FLAG_MORE; a HASH extra is accepted (it only
    // sets skb->hash); each extra slot gets a NETIF_RSP_NULL after the first slot's response.
    Rig rig;
    std::vector<Slot> slots = {{90, 0, 500, NETTXF_extra_info}};
    std::uint16_t id = rig.post(slots[0]);
    rig.post_extra(gso_extra(XEN_NETIF_GSO_TYPE_TCPV6, 1440, XEN_NETIF_EXTRA_FLAG_MORE));
    netif_extra_info_t hash{};
    hash.type = XEN_NETIF_EXTRA_TYPE_HASH;
    hash.u.hash.type = _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;
    rig.post_extra(hash);
    rig.push();
    auto r = rig.tx_round();
    ASSERT_EQ(r.sub.packets.size(), 1u);
    const EthernetFrame& f = r.sub.packets[0].frame;
    EXPECT_EQ(f.gso_type, GsoType::tcpv6);
    EXPECT_EQ(f.gso_size, 1440u);
    EXPECT_TRUE(f.csum_blank);  // checksum_setup forces CHECKSUM_PARTIAL on GSO
    EXPECT_EQ(rig.counter("tx_gso_checksum_fixup"), 1u);
    rig.release_and_dealloc(r.sub.packets);
    auto rsp = rig.tx_responses();
    ASSERT_EQ(rsp.size(), 3u);
    EXPECT_EQ(rsp[0].id, id);
    EXPECT_EQ(rsp[0].status, NETIF_RSP_OKAY);
    EXPECT_EQ(rsp[1].status, NETIF_RSP_NULL);
    EXPECT_EQ(rsp[2].status, NETIF_RSP_NULL);
}

TEST(NetifRingBackend, MulticastListIsBounded) {
    // xenvif_mcast_add: XEN_NETBK_MCAST_MAX addresses, then -ENOSPC -> NETIF_RSP_ERROR.
    Rig rig;
    for (unsigned i = 0; i <= NetifRingBackend::kMcastMax; ++i) {
        netif_extra_info_t add{};
        add.type = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
        add.u.mcast.addr[0] = 0x01;
        add.u.mcast.addr[5] = std::uint8_t(i);
        rig.post({95, 0, 0, NETTXF_extra_info});
        rig.post_extra(add);
    }
    rig.push();
    rig.tx_round();
    auto rsp = rig.tx_responses();
    ASSERT_EQ(rsp.size(), 2u * (NetifRingBackend::kMcastMax + 1));
    EXPECT_EQ(rsp[rsp.size() - 4].status, NETIF_RSP_OKAY);
    EXPECT_EQ(rsp[rsp.size() - 2].status, NETIF_RSP_ERROR);
    EXPECT_EQ(rig.back->multicast_count(), NetifRingBackend::kMcastMax);
}

TEST(NetifRingBackend, DisabledVifStopsRx) {
    // xenvif_kthread_guest_rx bins the queue of a disabled vif; xenvif_start_xmit drops.
    Rig rig;
    rig.post_rx(1, 960);
    rig.push_rx();
    ASSERT_TRUE(rig.back->queue_rx(frame_of(60)));
    rig.post({300, 0, 10, NETTXF_extra_info});  // missing extra: fatal
    rig.push();
    rig.tx_round();
    ASSERT_TRUE(rig.back->disabled());
    EXPECT_FALSE(rig.back->queue_rx(frame_of(60)));
    rig.rx_action();
    EXPECT_TRUE(rig.rx_responses().empty());
    EXPECT_EQ(rig.back->rx_queued_frames(), 0u);
    EXPECT_EQ(rig.family("rx_drops", "vif_disabled"), 2u);
}

TEST(NetifRingBackend, MulticastExtrasAreAnsweredAtOnceAndFilterRx) {
    NetifBackendConfig cfg;
    cfg.multicast_control = true;
    Rig rig(cfg);
    netif_extra_info_t add{};
    add.type = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
    const std::uint8_t group[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    std::memcpy(add.u.mcast.addr, group, 6);
    std::uint16_t id = rig.post({80, 0, 0, NETTXF_extra_info});
    rig.post_extra(add);
    rig.push();
    auto r = rig.tx_round();
    EXPECT_EQ(r.gops.packets, 0u);
    auto rsp = rig.tx_responses();
    ASSERT_EQ(rsp.size(), 2u);
    EXPECT_EQ(rsp[0].id, id);
    EXPECT_EQ(rsp[0].status, NETIF_RSP_OKAY);
    EXPECT_EQ(rsp[1].status, NETIF_RSP_NULL);
    EXPECT_EQ(rig.back->multicast_count(), 1u);
    // xenvif_start_xmit: with multicast control, only joined groups (and broadcast) pass.
    EthernetFrame joined = frame_of(60), other = frame_of(60), bcast = frame_of(60);
    std::memcpy(joined.bytes.data(), group, 6);
    std::memcpy(other.bytes.data(), group, 6);
    other.bytes[5] = 2;
    std::fill(bcast.bytes.begin(), bcast.bytes.begin() + 6, 0xff);
    EXPECT_TRUE(rig.back->queue_rx(joined));
    EXPECT_FALSE(rig.back->queue_rx(other));
    EXPECT_TRUE(rig.back->queue_rx(bcast));
    EXPECT_EQ(rig.family("rx_drops", "multicast_filter"), 1u);
}

// ---------------------------------------------------------------------------------------------
// TX, a misbehaving frontend: one case per row, then a well-formed packet that must not be taken
// after a fatal error.

enum class Outcome { fatal, error_responses, dropped_after_check, delivered };

struct BadTxRow {
    const char* intent;  // what the frontend does, and the Linux 6.1 function that answers it
    std::function<void(Rig&)> frontend;
    Outcome outcome;
    NetbackFatal fatal;
    std::vector<std::int16_t> statuses;  // the responses in ring order (after any release)
    const char* drop_reason;             // tx_drop_reason label, or nullptr
};

std::vector<Slot> chain(unsigned nfrags, unsigned frag_size, unsigned first_own = 100) {
    std::vector<Slot> s = {{200, 0, std::uint16_t(first_own + nfrags * frag_size), NETTXF_more_data}};
    for (unsigned i = 0; i < nfrags; ++i)
        s.push_back({grant_ref_t(201 + i), 0, std::uint16_t(frag_size),
                     std::uint16_t(i + 1 < nfrags ? NETTXF_more_data : 0)});
    return s;
}
void post_all(Rig& rig, const std::vector<Slot>& s) {
    for (const Slot& x : s) rig.post(x);
}
std::vector<std::int16_t> n_errors(unsigned n) { return std::vector<std::int16_t>(n, NETIF_RSP_ERROR); }

const std::vector<BadTxRow>& bad_tx_rows() {
    static const std::vector<BadTxRow> rows = {
        {"req_prod more than a ring ahead of req_cons: xenvif_tx_build_gops \"Impossible number of "
         "requests\"",
         [](Rig& rig) {
             rig.post({300, 0, 60, 0});
             rig.push();
             rig.txs->req_prod = 300;
         },
         Outcome::fatal,
         NetbackFatal::impossible_requests,
         {},
         nullptr},
        {"NETTXF_extra_info on the last posted slot: xenvif_get_extras \"Missing extra info\"",
         [](Rig& rig) {
             rig.post({300, 0, 60, NETTXF_extra_info});
         },
         Outcome::fatal,
         NetbackFatal::missing_extra_info,
         {},
         nullptr},
        {"extra of type XEN_NETIF_EXTRA_TYPE_NONE: xenvif_get_extras \"Invalid extra type\"",
         [](Rig& rig) {
             rig.post({300, 0, 60, NETTXF_extra_info});
             rig.post_extra(netif_extra_info_t{});
         },
         Outcome::fatal,
         NetbackFatal::invalid_extra_type,
         {},
         nullptr},
        {"extra of type XEN_NETIF_EXTRA_TYPE_MAX: xenvif_get_extras \"Invalid extra type\"",
         [](Rig& rig) {
             rig.post({300, 0, 60, NETTXF_extra_info});
             netif_extra_info_t e{};
             e.type = XEN_NETIF_EXTRA_TYPE_MAX;
             rig.post_extra(e);
         },
         Outcome::fatal,
         NetbackFatal::invalid_extra_type,
         {},
         nullptr},
        {"NETTXF_more_data on the last posted slot: xenvif_count_requests \"Asked for %d slots but exceeds\"",
         [](Rig& rig) {
             rig.post({300, 0, 200, NETTXF_more_data});
             rig.post({301, 0, 100, NETTXF_more_data});
         },
         Outcome::fatal,
         NetbackFatal::slots_exceed_ring,
         {},
         nullptr},
        {"21 further slots (>= fatal_skb_slots 20): xenvif_count_requests \"Malicious frontend\"",
         [](Rig& rig) { post_all(rig, chain(21, 10)); },
         Outcome::fatal,
         NetbackFatal::malicious_slots,
         {},
         nullptr},
        {"19 further slots (>= XEN_NETBK_LEGACY_SLOTS_MAX 18, < 20): xenvif_count_requests drops, "
         "xenvif_tx_err answers every slot",
         [](Rig& rig) { post_all(rig, chain(19, 10)); }, Outcome::error_responses, NetbackFatal::none,
         n_errors(20), "too_many_slots"},
        {"a slot larger than the size remaining: xenvif_count_requests \"Invalid tx request\" (-EIO), not "
         "fatal",
         [](Rig& rig) {
             rig.post({300, 0, 100, NETTXF_more_data});
             rig.post({301, 0, 200, 0});
         },
         Outcome::error_responses, NetbackFatal::none, n_errors(2), "slot_size_exceeds_remaining"},
        {"a frag with offset + size past its page: xenvif_count_requests \"Cross page boundary\"",
         [](Rig& rig) {
             rig.post({300, 0, 300, NETTXF_more_data});
             rig.post({301, 4000, 200, 0});
         },
         Outcome::fatal,
         NetbackFatal::frag_cross_page,
         {},
         nullptr},
        {"first slot of 10 bytes (< ETH_HLEN): xenvif_tx_build_gops \"Bad packet size\" -> xenvif_tx_err",
         [](Rig& rig) {
             rig.post({300, 0, 10, 0});
         },
         Outcome::error_responses, NetbackFatal::none, n_errors(1), "first_slot_below_eth_hlen"},
        {"first slot below ETH_HLEN after its frags: the error covers the frags too",
         [](Rig& rig) {
             rig.post({300, 0, 110, NETTXF_more_data});
             rig.post({301, 0, 100, 0});
         },
         Outcome::error_responses, NetbackFatal::none, n_errors(2), "first_slot_below_eth_hlen"},
        {"first slot with offset + size past its page: xenvif_tx_build_gops (fatal)",
         [](Rig& rig) {
             rig.post({300, 4000, 200, 0});
         },
         Outcome::fatal,
         NetbackFatal::first_cross_page,
         {},
         nullptr},
        {"GSO extra with type 7: xenvif_set_skb_gso \"Bad GSO type\"",
         [](Rig& rig) {
             rig.post({300, 0, 1000, NETTXF_extra_info});
             rig.post_extra(gso_extra(7, 1448));
         },
         Outcome::fatal,
         NetbackFatal::gso_bad_type,
         {},
         nullptr},
        {"GSO extra with size 0: xenvif_set_skb_gso \"GSO size must not be zero\"",
         [](Rig& rig) {
             rig.post({300, 0, 1000, NETTXF_extra_info});
             rig.post_extra(gso_extra(XEN_NETIF_GSO_TYPE_TCPV4, 0));
         },
         Outcome::fatal,
         NetbackFatal::gso_size_zero,
         {},
         nullptr},
        {"the header's grant copy fails: xenvif_tx_check_gop answers that slot NETIF_RSP_ERROR, packet "
         "dropped",
         [](Rig& rig) {
             rig.post({300, 0, 60, 0});
             rig.xen.fail_copy.insert(300);
         },
         Outcome::dropped_after_check, NetbackFatal::none, n_errors(1), "grant_copy_failed"},
        {"the header copy fails while the rest of its slot mapped: the shared slot is unmapped, then ERROR",
         [](Rig& rig) {
             rig.post({300, 0, 1500, 0});
             rig.xen.fail_copy.insert(300);
         },
         Outcome::dropped_after_check, NetbackFatal::none, n_errors(1), "grant_copy_failed"},
        {"a frag's map fails: that slot ERROR, the mapped shared slot unmapped and OKAY "
         "(xenvif_tx_check_gop)",
         [](Rig& rig) {
             rig.post({300, 0, 2500, NETTXF_more_data});
             rig.post({301, 0, 1000, 0});
             rig.xen.fail_map.insert(301);
         },
         Outcome::dropped_after_check,
         NetbackFatal::none,
         {NETIF_RSP_ERROR, NETIF_RSP_OKAY},
         "grant_map_failed"},
        {"a frag's map fails after a good one: both earlier frags are invalidated with OKAY",
         [](Rig& rig) {
             rig.post({300, 0, 3500, NETTXF_more_data});
             rig.post({301, 0, 1000, NETTXF_more_data});
             rig.post({302, 0, 1000, 0});
             rig.xen.fail_map.insert(302);
         },
         Outcome::dropped_after_check,
         NetbackFatal::none,
         {NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETIF_RSP_OKAY},
         "grant_map_failed"},
    };
    return rows;
}

TEST(NetifRingBackend, MisbehavingFrontendTable) {
    ASSERT_GE(bad_tx_rows().size(), 12u);
    for (const BadTxRow& row : bad_tx_rows()) {
        SCOPED_TRACE(row.intent);
        Rig rig;
        row.frontend(rig);
        const RING_IDX forced = rig.txs->req_prod;  // the overflow row writes req_prod itself
        rig.push();
        if (forced > rig.txs->req_prod) rig.txs->req_prod = forced;
        auto r = rig.tx_round();
        EXPECT_TRUE(r.sub.packets.empty());
        if (row.outcome == Outcome::fatal) {
            EXPECT_TRUE(rig.back->disabled());
            EXPECT_EQ(rig.back->fatal(), row.fatal);
            EXPECT_EQ(rig.family("tx_fatal", netback_fatal_name(row.fatal)), 1u);
        } else {
            EXPECT_FALSE(rig.back->disabled());
        }
        if (row.outcome == Outcome::dropped_after_check) {
            EXPECT_EQ(r.sub.dropped, 1u);
        }
        std::vector<std::int16_t> got;
        for (const auto& rsp : rig.tx_responses()) got.push_back(rsp.status);
        EXPECT_EQ(got, row.statuses);
        if (row.drop_reason) {
            EXPECT_EQ(rig.family("tx_drop_reason", row.drop_reason), 1u);
            EXPECT_EQ(rig.counter("tx_dropped"), 1u);
        }
        EXPECT_EQ(rig.back->pending_in_use(), 0u);  // nothing left held
        EXPECT_TRUE(rig.xen.mapped.empty());        // every successful map was undone

        // Then a well-formed packet: taken unless the vif was disabled.
        const RING_IDX cons_before = rig.txs->req_prod;
        rig.xen.fail_copy.clear();
        rig.xen.fail_map.clear();
        if (row.outcome != Outcome::fatal || row.fatal != NetbackFatal::impossible_requests) {
            rig.post({400, 0, 60, 0});
            rig.push();
        }
        auto next = rig.tx_round();
        if (row.outcome == Outcome::fatal) {
            EXPECT_EQ(next.gops.packets, 0u) << "a disabled vif takes nothing more";
            EXPECT_FALSE(rig.back->tx_final_check());
        } else {
            EXPECT_EQ(next.sub.packets.size(), 1u);
            EXPECT_NE(rig.txs->req_prod, cons_before);
        }
    }
}

// Every taken slot holds a pending index until answered (MAX_PENDING_REQS = ring size).
std::vector<NetbackTxPacket> fill_pending(Rig& rig) {
    std::vector<NetbackTxPacket> inflight;
    for (int i = 0; i < 256; ++i) rig.post({500, 0, 1500, 0});
    rig.push();
    for (int round = 0; round < 4; ++round) {
        auto r = rig.tx_round(0, 64);
        EXPECT_EQ(r.sub.packets.size(), 64u);  // the NAPI budget per round
        for (auto& p : r.sub.packets) inflight.push_back(std::move(p));
    }
    EXPECT_EQ(rig.back->pending_in_use(), 256u);
    return inflight;
}

TEST(NetifRingBackend, PendingRingBoundsWhatIsTaken) {
    Rig rig;
    auto inflight = fill_pending(rig);
    EXPECT_TRUE(RING_FULL(&rig.txf));  // an honest frontend posts nothing more
    // One release answers one slot; the frontend sees it and posts one more, which is taken.
    rig.back->release(inflight[0].release_handle);
    auto u = rig.back->build_dealloc();
    rig.xen.unmap(u.ops, u.nr);
    rig.back->complete_dealloc();
    EXPECT_EQ(rig.tx_responses().size(), 1u);
    EXPECT_FALSE(RING_FULL(&rig.txf));
    rig.post({501, 0, 60, 0});
    rig.push();
    auto more = rig.tx_round();
    EXPECT_EQ(more.sub.packets.size(), 1u);
    EXPECT_EQ(rig.back->pending_in_use(), 255u);
}

TEST(NetifRingBackend, PostingPastAFullRingTakesNothing) {
    // A frontend that posts over unanswered slots: req_prod - req_cons stays <= RING_SIZE (no
    // "Impossible number of requests"), but XEN_RING_NR_UNCONSUMED_REQUESTS is 0: nothing is taken.
    Rig rig;
    auto inflight = fill_pending(rig);
    for (int i = 0; i < 4; ++i) rig.post({501, 0, 60, 0});
    rig.push();
    EXPECT_EQ(rig.tx_round().gops.packets, 0u);
    EXPECT_FALSE(rig.back->disabled());
    EXPECT_EQ(rig.back->pending_in_use(), 256u);
}

TEST(NetifRingBackend, CreditLimiterTiming) {
    // rate = 3000 bytes per 10 ms: tx_credit_exceeded / tx_add_credit / the credit timeout.
    NetifBackendConfig cfg;
    cfg.credit_bytes = 3000;
    cfg.credit_usec = 10000;
    Rig rig(cfg, /*now_ps=*/0);
    for (int i = 0; i < 4; ++i) rig.post({600, 0, 1000, 0});
    rig.push();
    auto r = rig.tx_round(0);
    EXPECT_EQ(r.sub.packets.size(), 3u);  // 3000 bytes of credit
    EXPECT_TRUE(r.gops.rate_limited);
    EXPECT_EQ(rig.back->remaining_credit(), 0u);
    ASSERT_TRUE(rig.back->credit_timeout().has_value());
    EXPECT_EQ(*rig.back->credit_timeout(), 10 * kMsPs);  // mod_timer(next_credit)
    EXPECT_EQ(rig.counter("tx_credit_stalls"), 1u);
    // Before the deadline the timer is pending: nothing is taken.
    auto early = rig.tx_round(5 * kMsPs);
    EXPECT_EQ(early.gops.packets, 0u);
    EXPECT_TRUE(early.gops.rate_limited);
    // At the deadline the credit callback refills (min(0 + 3000, max(131072, 3000))).
    auto late = rig.tx_round(10 * kMsPs);
    EXPECT_EQ(late.sub.packets.size(), 1u);
    EXPECT_FALSE(rig.back->credit_timeout().has_value());
    EXPECT_EQ(rig.back->remaining_credit(), 2000u);
}

TEST(NetifRingBackend, CreditReplenishesAtWindowEnd) {
    NetifBackendConfig cfg;
    cfg.credit_bytes = 1500;
    cfg.credit_usec = 1000;  // 1 ms
    Rig rig(cfg, 0);
    rig.post({610, 0, 1500, 0});
    rig.post({610, 0, 1500, 0});
    rig.push();
    EXPECT_EQ(rig.tx_round(0).sub.packets.size(), 1u);
    // 2 ms later the window has passed: the credit is replenished without a timer.
    auto r = rig.tx_round(2 * kMsPs);
    EXPECT_EQ(r.sub.packets.size(), 1u);
    EXPECT_FALSE(rig.back->credit_timeout().has_value());
}

// ---------------------------------------------------------------------------------------------
// RX

TEST(NetifRingBackend, RxSingleSlot) {
    Rig rig;
    rig.post_rx(7, 900);
    rig.push_rx();
    EthernetFrame f = frame_of(100);
    f.data_validated = true;
    ASSERT_TRUE(rig.back->queue_rx(f));
    auto b = rig.back->build_rx();
    ASSERT_EQ(b.nr, 1u);
    EXPECT_TRUE(b.last);
    const gnttab_copy_t& op = b.ops[0];
    EXPECT_EQ(op.flags, GNTCOPY_dest_gref);  // xenvif_rx_copy_add
    EXPECT_EQ(op.dest.u.ref, 900u);
    EXPECT_EQ(op.dest.domid, kFront);
    EXPECT_EQ(op.dest.offset, 0u);
    EXPECT_EQ(op.source.domid, DOMID_SELF);
    EXPECT_EQ(op.source.offset, NetifRingBackend::kRxSourceOffset);
    EXPECT_EQ(op.len, 100u);
    rig.xen.rx_copy(b);
    EXPECT_TRUE(rig.back->complete_rx());
    auto rsp = rig.rx_responses();
    ASSERT_EQ(rsp.size(), 1u);
    EXPECT_EQ(rsp[0].id, 7u);
    EXPECT_EQ(rsp[0].offset, 0u);
    EXPECT_EQ(rsp[0].status, 100);
    EXPECT_EQ(rsp[0].flags, NETRXF_data_validated);
    EXPECT_TRUE(std::equal(f.bytes.begin(), f.bytes.end(), rig.xen.page(900).begin()));
    EXPECT_EQ(rig.counter("rx_packets"), 1u);
}

TEST(NetifRingBackend, RxMultiSlotSplitsAtPageBoundaries) {
    Rig rig;
    for (int i = 0; i < 3; ++i) rig.post_rx(std::uint16_t(10 + i), grant_ref_t(910 + i));
    rig.push_rx();
    EthernetFrame f = frame_of(10000, 3);
    f.csum_blank = true;
    ASSERT_TRUE(rig.back->queue_rx(f));
    unsigned batches = 0;
    EXPECT_TRUE(rig.rx_action(&batches));
    EXPECT_EQ(batches, 1u);
    // xenvif_rx_next_chunk: each guest page is filled from two source pages (data at offset 64).
    EXPECT_EQ(rig.counter("rx_copy_ops"), 5u);  // 4032+64, 4032+64, 1808
    auto rsp = rig.rx_responses();
    ASSERT_EQ(rsp.size(), 3u);
    EXPECT_EQ(rsp[0].status, 4096);
    EXPECT_EQ(rsp[0].flags, NETRXF_more_data | NETRXF_csum_blank | NETRXF_data_validated);
    EXPECT_EQ(rsp[1].status, 4096);
    EXPECT_EQ(rsp[1].flags, NETRXF_more_data);
    EXPECT_EQ(rsp[2].status, 10000 - 8192);
    EXPECT_EQ(rsp[2].flags, 0u);
    std::vector<std::uint8_t> got;
    for (int i = 0; i < 3; ++i) {
        auto& p = rig.xen.page(grant_ref_t(910 + i));
        got.insert(got.end(), p.begin(), p.begin() + rsp[i].status);
    }
    EXPECT_EQ(got, f.bytes);
}

TEST(NetifRingBackend, RxGsoExtraSlotFollowsTheFirstDataSlot) {
    NetifBackendConfig cfg;
    cfg.feature_gso_tcpv4 = true;
    Rig rig(cfg);
    for (int i = 0; i < 3; ++i) rig.post_rx(std::uint16_t(20 + i), grant_ref_t(920 + i));
    rig.push_rx();
    EthernetFrame f = frame_of(5000);
    f.csum_blank = true;
    f.gso_type = GsoType::tcpv4;
    f.gso_size = 1448;
    ASSERT_TRUE(rig.back->queue_rx(f));
    rig.rx_action();
    auto rsp = rig.rx_responses();
    ASSERT_EQ(rsp.size(), 3u);
    EXPECT_EQ(rsp[0].flags, NETRXF_more_data | NETRXF_csum_blank | NETRXF_data_validated | NETRXF_extra_info);
    EXPECT_EQ(rsp[0].status, 4096);
    netif_extra_info_t extra;
    std::memcpy(&extra, &rsp[1], sizeof(extra));  // xenvif_rx_extra_slot
    EXPECT_EQ(extra.type, XEN_NETIF_EXTRA_TYPE_GSO);
    EXPECT_EQ(extra.flags, 0u);
    EXPECT_EQ(extra.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
    EXPECT_EQ(extra.u.gso.size, 1448u);
    EXPECT_EQ(rsp[2].id, 22u);
    EXPECT_EQ(rsp[2].status, 5000 - 4096);
    EXPECT_EQ(rsp[2].flags, 0u);
}

TEST(NetifRingBackend, RxStallsUntilEnoughSlotsArePosted) {
    Rig rig;
    rig.post_rx(1, 930);
    rig.push_rx();
    ASSERT_TRUE(rig.back->queue_rx(frame_of(6000)));  // needs DIV_ROUND_UP(6000, 4096) = 2
    auto b = rig.back->build_rx();
    EXPECT_EQ(b.nr, 0u);
    EXPECT_TRUE(b.last);
    rig.xen.rx_copy(b);
    EXPECT_FALSE(rig.back->complete_rx());
    EXPECT_EQ(rig.counter("rx_ring_full_stalls"), 1u);
    EXPECT_EQ(rig.rxs->req_event, 2u);  // xenvif_rx_ring_slots_available: req_prod + 1
    EXPECT_EQ(rig.back->rx_queued_frames(), 1u);
    // feature-rx-notify: the frontend's next post crosses req_event and notifies the backend.
    rig.post_rx(2, 931);
    EXPECT_TRUE(rig.push_rx());
    EXPECT_TRUE(rig.rx_action());
    auto rsp = rig.rx_responses();
    ASSERT_EQ(rsp.size(), 2u);
    EXPECT_EQ(rsp[0].status + rsp[1].status, 6000);
}

TEST(NetifRingBackend, RxBogusGrefFailsItsCopyAndTheResponseCarriesTheStatus) {
    // xenvif_rx_copy_flush: "If the copy failed, overwrite the status field in the corresponding
    // response" with the op's GNTST_* status (negative: netfront treats rx->status < 0 as an error).
    Rig rig;
    rig.post_rx(3, 0x8001);  // never granted
    rig.post_rx(4, 940);
    rig.push_rx();
    ASSERT_TRUE(rig.back->queue_rx(frame_of(300)));
    ASSERT_TRUE(rig.back->queue_rx(frame_of(400)));
    rig.rx_action();
    auto rsp = rig.rx_responses();
    ASSERT_EQ(rsp.size(), 2u);
    EXPECT_EQ(rsp[0].id, 3u);
    EXPECT_EQ(rsp[0].status, GNTST_bad_gntref);
    EXPECT_LT(rsp[0].status, 0);
    EXPECT_EQ(rsp[1].id, 4u);
    EXPECT_EQ(rsp[1].status, 400);
    EXPECT_EQ(rig.counter("rx_copy_failures"), 1u);
}

TEST(NetifRingBackend, RxQueueIsBoundedInBytes) {
    // xenvif_rx_queue_tail: a frame is refused once rx_queue_len >= rx_queue_max
    // (XENVIF_RX_QUEUE_BYTES = 128 pages); 1514-byte frames: 347 fit (346 * 1514 < 524288).
    Rig rig;
    unsigned accepted = 0;
    for (int i = 0; i < 400; ++i) accepted += rig.back->queue_rx(frame_of(1514));
    EXPECT_EQ(accepted, 347u);
    EXPECT_EQ(rig.family("rx_drops", "queue_full"), 400u - 347u);
    EXPECT_EQ(rig.back->rx_queue_len(), 347u * 1514u);
}

TEST(NetifRingBackend, RxRefusesFramesLinuxNeverQueues) {
    Rig rig;  // no GSO negotiated
    EthernetFrame gso = frame_of(3000);
    gso.gso_type = GsoType::tcpv6;
    gso.gso_size = 1440;
    EXPECT_FALSE(rig.back->queue_rx(gso));
    EXPECT_FALSE(rig.back->queue_rx(EthernetFrame{}));
    EXPECT_FALSE(rig.back->queue_rx(frame_of(70000)));
    EXPECT_EQ(rig.family("rx_drops", "gso_not_negotiated"), 1u);
    EXPECT_EQ(rig.family("rx_drops", "bad_frame"), 2u);
}

TEST(NetifRingBackend, RxBatchesAreBoundedByCopyAndPacketBudgets) {
    Rig rig;
    // Four 40000-byte frames: 10 slots and 19 chunks each (9 slots fed from two source pages,
    // the last from one): COPY_BATCH_SIZE cuts the fourth packet after 64 ops.
    for (int i = 0; i < 40; ++i) rig.post_rx(std::uint16_t(i), grant_ref_t(1000 + i));
    rig.push_rx();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(rig.back->queue_rx(frame_of(40000, std::uint8_t(i))));
    auto b1 = rig.back->build_rx();
    EXPECT_EQ(b1.nr, NetifRingBackend::kCopyBatchSize);
    EXPECT_FALSE(b1.last);
    rig.xen.rx_copy(b1);
    rig.back->complete_rx();
    EXPECT_EQ(rig.rxs->rsp_prod, 30u);  // only the three completed packets are pushed
    auto b2 = rig.back->build_rx();
    EXPECT_EQ(b2.nr, 4u * 19u - 64u);
    EXPECT_TRUE(b2.last);
    rig.xen.rx_copy(b2);
    rig.back->complete_rx();
    EXPECT_EQ(rig.rxs->rsp_prod, 40u);
    EXPECT_EQ(rig.counter("rx_bytes_copied"), 4u * 40000u);

    // RX_BATCH_SIZE: an action handles at most 64 packets.
    Rig small;
    for (int i = 0; i < 70; ++i) small.post_rx(std::uint16_t(i), grant_ref_t(2000 + i));
    small.push_rx();
    for (int i = 0; i < 70; ++i) ASSERT_TRUE(small.back->queue_rx(frame_of(60)));
    auto a = small.back->build_rx();
    EXPECT_TRUE(a.last);
    EXPECT_EQ(a.nr, 64u);
    small.xen.rx_copy(a);
    small.back->complete_rx();
    EXPECT_EQ(small.back->rx_queued_frames(), 6u);
    EXPECT_EQ(small.counter("rx_ring_full_stalls"), 0u);  // budget, not slots
    small.rx_action();
    EXPECT_EQ(small.back->rx_queued_frames(), 0u);
    EXPECT_EQ(small.rx_responses().size(), 70u);
}

}  // namespace
}  // namespace xensim
