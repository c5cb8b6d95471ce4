#include "frontends/netif_misbehaviour.h"

#include <cstring>

namespace xensim {

namespace {

using Raw = NetifRingFrontend::RawTxSlot;

// A reference beyond any grant table the guest has: GNTTABOP_copy and GNTTABOP_map_grant_ref both
// refuse it (GNTST_bad_gntref), as they refuse any reference the guest never granted.
constexpr grant_ref_t kNeverGranted = 0x00ffffffu;

Raw slot(std::uint16_t size, std::uint16_t flags = 0, std::uint16_t offset = 0) {
    Raw r;
    r.req.size = size;
    r.req.flags = flags;
    r.req.offset = offset;
    r.fill = 0x5a;
    return r;
}
Raw bogus(Raw r) {
    r.bogus_gref = kNeverGranted;
    return r;
}
Raw extra(std::uint8_t type, std::uint16_t gso_type = 0, std::uint16_t gso_size = 0) {
    Raw r;
    r.extra = true;
    r.info.type = type;
    r.info.u.gso.type = static_cast<std::uint8_t>(gso_type);
    r.info.u.gso.size = gso_size;
    return r;
}
// The first slot (the whole packet's size, `own` bytes of its own) and n frags of frag_size bytes.
std::vector<Raw> chain(unsigned n, unsigned frag_size, unsigned own = 100) {
    std::vector<Raw> s = {slot(std::uint16_t(own + n * frag_size), NETTXF_more_data)};
    for (unsigned i = 0; i < n; ++i)
        s.push_back(slot(std::uint16_t(frag_size), std::uint16_t(i + 1 < n ? NETTXF_more_data : 0)));
    return s;
}

struct Case {
    const char* name;
    bool fatal;
    std::vector<Raw> slots;          // empty: the producer overrun
    unsigned errors = 0, okays = 0;  // non-fatal: the answers (xenvif_tx_err / xenvif_tx_check_gop)
};

const std::vector<Case>& cases() {
    static const std::vector<Case> table = {
        // xenvif_count_requests: >= XEN_NETBK_LEGACY_SLOTS_MAX (18) further slots, below
        // fatal_skb_slots (20): -E2BIG, xenvif_tx_err answers every slot.
        {"nineteen_frags_dropped", false, chain(19, 10), 20, 0},
        // xenvif_count_requests: "Invalid tx request" (-EIO).
        {"slot_larger_than_remaining", false, {slot(100, NETTXF_more_data), slot(200)}, 2, 0},
        // xenvif_tx_build_gops: "Bad packet size" -> xenvif_tx_err.
        {"first_slot_below_eth_hlen", false, {slot(10)}, 1, 0},
        {"first_slot_below_eth_hlen_with_frags", false, {slot(110, NETTXF_more_data), slot(100)}, 2, 0},
        // xenvif_tx_check_gop: the header's GNTTABOP_copy fails.
        {"header_copy_fails", false, {bogus(slot(60))}, 1, 0},
        {"header_copy_and_slot_map_fail", false, {bogus(slot(1500))}, 1, 0},
        // xenvif_tx_check_gop: a frag's map fails; mapped shared slots are released with OKAY.
        {"frag_map_fails", false, {slot(2500, NETTXF_more_data), bogus(slot(1000))}, 1, 1},
        {"frag_map_fails_after_a_good_frag",
         false,
         {slot(3500, NETTXF_more_data), slot(1000, NETTXF_more_data), bogus(slot(1000))},
         1,
         2},
        // Fatal (xenvif_fatal_tx_err).
        // xenvif_tx_build_gops: "Impossible number of requests".
        {"producer_more_than_a_ring_ahead", true, {}},
        // xenvif_get_extras: "Missing extra info".
        {"missing_extra_info", true, {slot(60, NETTXF_extra_info)}},
        // xenvif_get_extras: "Invalid extra type".
        {"extra_type_none", true, {slot(60, NETTXF_extra_info), extra(XEN_NETIF_EXTRA_TYPE_NONE)}},
        {"extra_type_max", true, {slot(60, NETTXF_extra_info), extra(XEN_NETIF_EXTRA_TYPE_MAX)}},
        // xenvif_count_requests: "Asked for %d slots but exceeds this limit".
        {"more_data_on_the_last_slot", true, {slot(200, NETTXF_more_data), slot(100, NETTXF_more_data)}},
        // xenvif_count_requests: "Malicious frontend using %d slots" (>= fatal_skb_slots 20).
        {"twenty_one_frags", true, chain(21, 10)},
        // xenvif_count_requests: "Cross page boundary".
        {"frag_crossing_its_page", true, {slot(300, NETTXF_more_data), slot(200, 0, 4000)}},
        // xenvif_tx_build_gops: "txreq.offset: %u, size: %u, end: %lu".
        {"first_slot_crossing_its_page", true, {slot(200, 0, 4000)}},
        // xenvif_set_skb_gso: "Bad GSO type" / "GSO size must not be zero."
        {"gso_bad_type", true, {slot(1000, NETTXF_extra_info), extra(XEN_NETIF_EXTRA_TYPE_GSO, 7, 1448)}},
        {"gso_size_zero",
         true,
         {slot(1000, NETTXF_extra_info), extra(XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4, 0)}},
    };
    return table;
}

const Case* find_case(const std::string& name) {
    for (const Case& c : cases())
        if (name == c.name) return &c;
    return nullptr;
}

std::string answers(std::uint64_t errors, std::uint64_t okays, const std::string& then) {
    return std::to_string(errors) + " NETIF_RSP_ERROR, " + std::to_string(okays) + " NETIF_RSP_OKAY, then " +
           then;
}

constexpr const char* kDisabled = "no answer, and a good frame sent next is not taken (vif disabled)";

}  // namespace

const std::vector<std::string>& NetifMisbehaviour::case_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const Case& c : cases()) n.push_back(c.name);
        return n;
    }();
    return names;
}

bool NetifMisbehaviour::is_fatal(const std::string& name) {
    const Case* c = find_case(name);
    return c && c->fatal;
}

std::vector<std::string> NetifMisbehaviour::default_cases() {
    std::vector<std::string> n;
    for (const Case& c : cases())
        if (!c.fatal) n.push_back(c.name);
    n.push_back("producer_more_than_a_ring_ahead");
    return n;
}

NetifMisbehaviour::NetifMisbehaviour(std::vector<std::string> cases, Netfront& device, XenGuest& guest,
                                     WorkloadStats& stats)
    : cases_(std::move(cases)), device_(device), guest_(guest), stats_(stats) {
    if (cases_.empty()) cases_ = default_cases();
}

NetifMisbehaviour::Seen NetifMisbehaviour::seen() const {
    Seen r;
    if (NetifRingFrontend* ring = device_.ring(0)) {
        r.errors = ring->tx_responses_seen(NETIF_RSP_ERROR);
        r.okays = ring->tx_responses_seen(NETIF_RSP_OKAY);
    }
    return r;
}

NetifMisbehaviour::Seen NetifMisbehaviour::await(GuestServices& s, Seen before, std::uint64_t answers) {
    const std::uint64_t deadline = s.now_ns() + kAnswerWaitNs;
    auto delta = [&] {
        Seen now = seen();
        return Seen{now.errors - before.errors, now.okays - before.okays};
    };
    bool armed = false;
    for (;;) {
        Seen d = delta();
        if (d.errors + d.okays >= answers || s.now_ns() >= deadline) return d;
        if (guest_.run_deferred(s)) continue;
        if (!armed) {
            armed = timer_port_ && guest_.set_singleshot_timer(s, deadline) == 0;
            if (!armed) {  // no timer: burn a slice and look again
                s.compute(20000);
                continue;
            }
        }
        s.halt();
    }
}

std::string NetifMisbehaviour::run_case(GuestServices& s, const std::string& name, std::string& expected) {
    const Case* k = find_case(name);
    NetifRingFrontend* ring = device_.ring(0);
    if (!k || !ring) {
        expected = "a known case";
        return "no such case";
    }
    expected = k->fatal ? kDisabled : answers(k->errors, k->okays, "a good frame NETIF_RSP_OKAY");
    if (ring->broken()) return "the frontend broke earlier";

    const Seen before = seen();
    unsigned data = 0;
    if (k->slots.empty()) {
        // A producer index more than a ring ahead of what netback consumed (everything published).
        ring->publish_tx_producer(ring->tx_req_prod_pvt() + NetifRingFrontend::kTxRingSize + 1);
        guest_.notify(s, device_.tx_port(0));
    } else {
        for (const Raw& r : k->slots) data += r.extra ? 0 : 1;
        if (!ring->transmit_raw(k->slots)) return "the ring had no room";
        device_.push(s, 0);
    }
    const Seen got = await(s, before, k->fatal ? ~0ull : data);

    // Then a well-formed frame to the vif's own MAC (dropped by the bridge): taken unless disabled.
    EthernetFrame f;
    f.bytes.assign(60, 0);
    const MacAddress mac = device_.mac();
    std::memcpy(f.bytes.data(), mac.data(), 6);
    std::memcpy(f.bytes.data() + 6, mac.data(), 6);
    f.bytes[12] = 0x88;  // IEEE 802 local experimental ethertype 0x88b5
    f.bytes[13] = 0xb5;
    const Seen mid = seen();
    if (!device_.transmit(s, 0, std::move(f))) return answers(got.errors, got.okays, "the queue was stopped");
    const Seen after = await(s, mid, 1);
    std::string then = after.okays == 1 && after.errors == 0 ? "a good frame NETIF_RSP_OKAY"
                       : after.errors + after.okays == 0     ? "a good frame not answered"
                                                             : "a good frame NETIF_RSP_ERROR";
    if (got.errors + got.okays == 0 && after.errors + after.okays == 0) return kDisabled;
    return answers(got.errors, got.okays, then);
}

void NetifMisbehaviour::run(XenbusClient& xb, GuestServices& s) {
    if (!xb.connected() || !device_.connect(xb, s, 1) || !device_.ring(0)) {
        stats_.failures.inc();
        stats_.finish(s.now_ns());
        return;
    }
    evtchn_port_t port = 0;
    if (guest_.bind_virq(s, VIRQ_TIMER, s.vcpu_id(), &port) == 0) {
        timer_port_ = port;
        guest_.set_port_handler(port, [](GuestServices&, evtchn_port_t) {});
        guest_.unmask(s, port);
    }
    stats_.start(s.now_ns());
    for (const std::string& name : cases_) {
        const std::uint64_t t0 = s.now_ns();
        NetifMisbehaviourOutcome o;
        o.name = name;
        o.got = run_case(s, name, o.expected);
        o.ok = o.got == o.expected;
        if (!o.ok) stats_.failures.inc();
        outcomes_.push_back(o);
        stats_.complete_op(s.now_ns() - t0);
    }
    stats_.finish(s.now_ns());
}

}  // namespace xensim
