// xenstored's ring transport (models/dom0/xenstored.h) against a fake dom0: the bounds on what a
// guest can make dom0 hold, as tools/xenstored has them — domain_can_read's quota-outstanding
// check (domain.c), send_reply / free_buffered_data's outstanding accounting and send_event's
// memory check (core.c).
#include "models/dom0/xenstored.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

namespace xensim {
namespace {

class FakeDom0 : public BackendServices {
  public:
    FakeDom0() : costs_(CostModel::defaults()) {}
    const CostModel& costs() const override { return costs_; }
    void compute(Cycles c) override { cycles += c; }
    std::uint64_t now_ns() const override { return 0; }
    long hypercall(unsigned op, unsigned long a1, unsigned long a2, unsigned long, unsigned long,
                   unsigned long) override {
        if (op == __HYPERVISOR_grant_table_op && a1 == GNTTABOP_map_grant_ref) {
            reinterpret_cast<gnttab_map_grant_ref_t*>(a2)->status = GNTST_okay;
            return 0;
        }
        if (op != __HYPERVISOR_event_channel_op) return -XEN_ENOSYS;
        if (a1 == EVTCHNOP_bind_interdomain)
            reinterpret_cast<evtchn_bind_interdomain_t*>(a2)->local_port = next_port++;
        else if (a1 == EVTCHNOP_send)
            ++sends, sent_to.push_back(reinterpret_cast<evtchn_send_t*>(a2)->port);
        return 0;
    }
    std::optional<std::uint64_t> alloc_page() override { return next_gfn++; }
    void free_page(std::uint64_t) override {}
    std::uint8_t* page(std::uint64_t gfn) override {
        auto& p = pages[gfn];
        if (!p) p = std::make_unique<std::array<std::uint8_t, 4096>>();
        return p->data();
    }
    std::optional<std::uint64_t> take_unpopulated_frame() override { return std::nullopt; }

    CostModel costs_;
    Cycles cycles = 0;
    evtchn_port_t next_port = 10;
    std::uint64_t next_gfn = 0x1000;
    unsigned sends = 0;
    std::vector<evtchn_port_t> sent_to;  // EVTCHNOP_send ports, in order
    std::map<std::uint64_t, std::unique_ptr<std::array<std::uint8_t, 4096>>> pages;
};

// A guest's side of one ring: writes whole requests while they fit; may or may not read.
struct GuestRing {
    xenstore_domain_interface* intf;
    std::uint32_t next_id = 1;
    // Writes one request if it fits wholly; false when the ring has no room for it.
    bool put(std::uint32_t type, const std::string& payload, std::uint32_t tx = 0) {
        std::string msg;
        xs_serialize(XsMessage{type, next_id, tx, payload}, msg);
        if (XENSTORE_RING_SIZE - (intf->req_prod - intf->req_cons) < msg.size()) return false;
        for (std::size_t i = 0; i < msg.size(); ++i)
            intf->req[MASK_XENSTORE_IDX(intf->req_prod + i)] = msg[i];
        intf->req_prod += static_cast<XENSTORE_RING_IDX>(msg.size());
        ++next_id;
        return true;
    }
    // Takes every reply/event off the response ring.
    std::vector<XsMessage> take() {
        std::string bytes;
        for (; intf->rsp_cons != intf->rsp_prod; ++intf->rsp_cons)
            bytes.push_back(intf->rsp[MASK_XENSTORE_IDX(intf->rsp_cons)]);
        parser.feed(bytes);
        std::vector<XsMessage> out;
        while (parser.has_message()) out.push_back(parser.pop());
        return out;
    }
    XsWireParser parser;
};

std::string arg(const std::string& s) { return std::string(s).append(1, '\0'); }

class XenstoredTest : public ::testing::Test {
  protected:
    XenstoredTest() : stats("root"), store(stats), xsd(store, stats) {
        port = static_cast<evtchn_port_t>(xsd.connect_domain(dom0, 1, 5));
        ring.intf = reinterpret_cast<xenstore_domain_interface*>(dom0.page(0x1000));
        store.write("/local/domain/1/data", "");
        store.set_perms("/local/domain/1/data", {{1, XS_PERM_NONE}});
    }
    StatsGroup stats;
    XenStore store;
    Xenstored xsd;
    FakeDom0 dom0;
    evtchn_port_t port = 0;
    GuestRing ring;
};

// A guest that never takes its replies: xenstored fills the response ring, keeps quota-outstanding
// (20) replies more, then stops reading (domain_can_read); the rest stays in the request ring,
// which fills, and the guest can write no more. dom0 holds 20 replies, however long it goes on.
TEST_F(XenstoredTest, GuestThatNeverReadsIsStoppedAtTheOutstandingQuota) {
    const unsigned quota = store.quota().outstanding;
    ASSERT_EQ(quota, 20u);
    unsigned written = 0;
    for (int round = 0; round < 200; ++round) {
        while (ring.put(XS_READ, arg("data/missing" + std::to_string(written)))) ++written;
        xsd.on_event(dom0, port);
        ASSERT_LE(xsd.outstanding(1), quota);
        ASSERT_LE(xsd.queued_bytes(1), quota * (sizeof(xsd_sockmsg) + XENSTORE_PAYLOAD_MAX));
    }
    EXPECT_EQ(xsd.outstanding(1), quota);
    EXPECT_EQ(ring.intf->rsp_prod - ring.intf->rsp_cons, XENSTORE_RING_SIZE) << "the response ring is full";
    EXPECT_GT(ring.intf->req_prod - ring.intf->req_cons, XENSTORE_RING_SIZE - 64u)
        << "requests wait in the guest's ring, not in dom0";
    EXPECT_FALSE(xsd.connection_failed(1)) << "stalling is not an error: the connection lives on";
    // Each ENOENT reply is 16 + 7 bytes: a full response ring holds 44 of them and part of the 45th;
    // with 20 outstanding besides, 64 requests were read, and no more however often it kicks.
    const unsigned in_ring = XENSTORE_RING_SIZE / 23;
    EXPECT_EQ(stats.find_family("xenstored.dom1.requests")->value("XS_READ"), in_ring + quota);
    EXPECT_EQ(stats.find_counter("xenstored.dom1.bytes_out")->value(), XENSTORE_RING_SIZE);
    std::vector<XsMessage> got = ring.take();
    EXPECT_EQ(got.size(), in_ring);
    // Once the guest reads, xenstored resumes where it stopped: every request is answered, in order.
    for (int round = 0; round < 200 && got.size() < written; ++round) {
        xsd.on_event(dom0, port);
        for (XsMessage& m : ring.take()) got.push_back(std::move(m));
    }
    ASSERT_EQ(got.size(), written);
    for (unsigned i = 0; i < written; ++i) {
        EXPECT_EQ(got[i].req_id, i + 1);
        EXPECT_EQ(got[i].type, static_cast<std::uint32_t>(XS_ERROR));
    }
    EXPECT_EQ(xsd.outstanding(1), 0u);
    EXPECT_EQ(xsd.queued_bytes(1), 0u);
}

// Watch events for a guest that never reads are bounded by the memory quota (send_event drops an
// event when domain_memory_add_chk fails); the requests causing them come from dom0's tools.
TEST_F(XenstoredTest, WatchEventsForAGuestThatNeverReadsAreBoundedByTheMemoryQuota) {
    ASSERT_TRUE(ring.put(XS_WATCH, arg("/local/domain/1/data") + arg("tok")));
    xsd.on_event(dom0, port);
    ASSERT_EQ(xsd.outstanding(1), 0u) << "the WATCH reply is in the ring";
    const std::size_t memory = store.quota().memory;
    const std::string leaf(200, 'x');  // ~250-byte events: the quota is reached after ~10^4
    std::uint64_t writes = 0;
    for (; writes < 20000; ++writes) {
        std::string path =
            "/local/domain/1/data/g" + std::to_string(writes / 50) + "/" + leaf + std::to_string(writes % 50);
        store.write(path, "v");  // the toolstack (privileged) writes; the guest's watch fires
        if (writes % 100 == 0) xsd.on_event(dom0, port);
    }
    xsd.on_event(dom0, port);
    EXPECT_LE(xsd.queued_bytes(1), memory);
    EXPECT_GT(xsd.queued_bytes(1), memory - 300) << "queued up to the quota";
    EXPECT_GT(xsd.events_dropped(1), 0u);
    std::vector<XsMessage> got = ring.take();
    std::size_t delivered_later = 0;
    for (int round = 0; round < 100000 && xsd.queued_bytes(1); ++round) {
        xsd.on_event(dom0, port);
        delivered_later += ring.take().size();
    }
    // Every event not dropped arrives: the initial fire, then one per write up to the drop point.
    EXPECT_EQ(got.size() + delivered_later + xsd.events_dropped(1), 1 + 1 + writes)
        << "WATCH reply + initial event + one event per write";
}

// One change watched by many guests: the event of each is written and notified from whichever
// connection's event xenstored is serving, one EVTCHNOP_send per guest in port order (the order of
// the walk over every connection; watches were set in the reverse order), none to a guest without
// a matching watch. A guest whose response ring is full keeps its event until a later event of any
// connection finds room.
TEST_F(XenstoredTest, WatchEventsOfManyGuestsAreNotifiedInPortOrder) {
    store.write("/shared", "0");
    store.set_perms("/shared", {{0, XS_PERM_READ}});
    std::map<DomId, evtchn_port_t> ports;
    std::map<DomId, GuestRing> rings;
    for (DomId d = 2; d <= 7; ++d) {
        ports[d] = static_cast<evtchn_port_t>(xsd.connect_domain(dom0, d, 5));
        rings[d].intf = reinterpret_cast<xenstore_domain_interface*>(dom0.page(dom0.next_gfn - 1));
    }
    for (DomId d = 7; d >= 2; --d) {
        if (d == 5) continue;  // dom5 watches something else
        ASSERT_TRUE(rings[d].put(XS_WATCH, arg("/shared") + arg("t" + std::to_string(d))));
        xsd.on_event(dom0, ports[d]);
        ASSERT_EQ(rings[d].take().size(), 2u) << "the WATCH reply and the initial event";
    }
    ASSERT_TRUE(rings[5].put(XS_WATCH, arg("/other") + arg("t5")));
    xsd.on_event(dom0, ports[5]);
    rings[5].take();
    // dom3 fills its response ring with watch events it does not read (the last one partly written).
    for (int i = 0; rings[3].intf->rsp_prod - rings[3].intf->rsp_cons < XENSTORE_RING_SIZE; ++i) {
        store.write("/shared", std::to_string(i));
        xsd.on_event(dom0, ports[5]);
        for (DomId d : {2, 4, 6, 7}) rings[d].take();
    }
    ASSERT_GT(xsd.queued_bytes(3), 0u);
    dom0.sent_to.clear();
    store.write("/shared/x", "v");
    xsd.on_event(dom0, ports[5]);  // dom5's own event (nothing to read) serves everyone's output
    // Port order; not dom5 (no matching watch), not dom3 (its ring is full: nothing written).
    EXPECT_EQ(dom0.sent_to, (std::vector<evtchn_port_t>{ports[2], ports[4], ports[6], ports[7]}));
    for (DomId d : {2, 4, 6, 7}) {
        std::vector<XsMessage> ev = rings[d].take();
        ASSERT_EQ(ev.size(), 1u) << d;
        EXPECT_EQ(ev[0].payload, arg("/shared/x") + arg("t" + std::to_string(d)));
    }
    EXPECT_TRUE(rings[5].take().empty());
    // dom3 reads; the next event of any connection (dom2's, with nothing to read) delivers the rest.
    std::size_t before = rings[3].take().size();
    EXPECT_GT(before, 0u);
    ASSERT_GT(xsd.queued_bytes(3), 0u);
    xsd.on_event(dom0, ports[2]);
    EXPECT_EQ(xsd.queued_bytes(3), 0u);
    std::vector<XsMessage> rest = rings[3].take();
    ASSERT_FALSE(rest.empty());
    EXPECT_EQ(rest.back().payload, arg("/shared/x") + arg("t3"));
}

}  // namespace
}  // namespace xensim
