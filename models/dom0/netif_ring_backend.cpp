// The ring side of netback; see netif_ring_backend.h for what is modelled and where it differs.
#include "models/dom0/netif_ring_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace xensim {
namespace {

// One read of a guest-written ring index.
RING_IDX read_once(const RING_IDX& shared) { return *static_cast<const volatile RING_IDX*>(&shared); }

[[noreturn]] void invariant_broken(const char* what) {
    std::fprintf(stderr, "netif_ring_backend: internal invariant broken: %s\n", what);
    std::abort();
}

std::uint32_t pending_index(std::uint32_t i) { return i & (NetifRingBackend::kMaxPendingReqs - 1); }

// Drop reasons (CounterFamily labels).
constexpr const char* kTooManySlots = "too_many_slots";              // xenvif_count_requests, E2BIG
constexpr const char* kSlotSize = "slot_size_exceeds_remaining";     // xenvif_count_requests, EIO
constexpr const char* kBadPacketSize = "first_slot_below_eth_hlen";  // "Bad packet size"
constexpr const char* kCopyFailed = "grant_copy_failed";             // xenvif_tx_check_gop
constexpr const char* kMapFailed = "grant_map_failed";               // xenvif_tx_check_gop

constexpr std::uint64_t kPsPerMs = 1000000000ull;
constexpr xen_pfn_t kRxGfnsPerFrame = 32;  // > (kRxSourceOffset + 0xFFFF) / 4096 + 1

}  // namespace

const char* netback_fatal_name(NetbackFatal f) {
    switch (f) {
        case NetbackFatal::none:
            return "none";
        case NetbackFatal::bad_ring_attach:
            return "bad_ring_attach";
        case NetbackFatal::impossible_requests:
            return "impossible_requests";
        case NetbackFatal::missing_extra_info:
            return "missing_extra_info";
        case NetbackFatal::invalid_extra_type:
            return "invalid_extra_type";
        case NetbackFatal::slots_exceed_ring:
            return "slots_exceed_ring";
        case NetbackFatal::malicious_slots:
            return "malicious_slots";
        case NetbackFatal::frag_cross_page:
            return "frag_cross_page";
        case NetbackFatal::first_cross_page:
            return "first_cross_page";
        case NetbackFatal::gso_size_zero:
            return "gso_size_zero";
        case NetbackFatal::gso_bad_type:
            return "gso_bad_type";
    }
    return "unknown";
}

// The per-packet state of one round (Linux keeps it in the skb's cb and shinfo).
struct NetifRingBackend::TxPacketState {
    static constexpr unsigned kMaxSlots = kLegacySlotsMax + 1;  // first + 18 frags at most
    std::uint16_t copy_idx[kMaxSlots] = {};                     // copy_pending_idx
    unsigned copy_count = 0;
    std::uint32_t split_mask = 0;  // copy i took two ops (dom0 page boundary)
    unsigned first_copy_op = 0;
    std::uint16_t frag_idx[kMaxSlots] = {};
    unsigned nr_frags = 0;
    unsigned first_map_op = 0;
    std::vector<std::uint8_t> head;  // the skb's linear area
    std::uint16_t flags = 0;         // the first slot's NETTXF_*
    GsoType gso_type = GsoType::none;
    std::uint16_t gso_size = 0;
    unsigned total = 0;  // the packet's size as the first slot gave it
};

NetifRingBackend::Stats::Stats(StatsGroup& g)
    : tx_packets(g, "tx_packets", "packets", "packets the guest sent that reached dom0's stack"),
      tx_bytes(g, "tx_bytes", "bytes", "bytes of those packets"),
      tx_error_responses(g, "tx_error_responses", "responses", "TX slots answered NETIF_RSP_ERROR"),
      tx_dropped(g, "tx_dropped", "packets", "TX packets dropped (answered NETIF_RSP_ERROR)"),
      tx_mcast(g, "tx_mcast_requests", "requests", "MCAST_ADD / MCAST_DEL extras served"),
      tx_gso_checksum_fixup(g, "tx_gso_checksum_fixup", "packets",
                            "GSO packets without NETTXF_csum_blank forced to csum_blank"),
      tx_fatal(g, "tx_fatal", "events", "fatal frontend errors that disabled the vif, by kind"),
      tx_drop_reason(g, "tx_drop_reason", "packets", "TX packets dropped, by reason"),
      tx_copy_ops(g, "tx_copy_ops", "ops", "TX gnttab_copy ops built (head copies)"),
      tx_map_ops(g, "tx_map_ops", "ops", "TX gnttab_map_grant_ref ops built"),
      tx_unmap_ops(g, "tx_unmap_ops", "ops", "TX gnttab_unmap_grant_ref ops built"),
      tx_bytes_copied(g, "tx_bytes_copied", "bytes", "bytes of successful TX head copies"),
      tx_credit_stalls(g, "tx_credit_stalls", "events", "TX rounds stopped for lack of credit"),
      rx_packets(g, "rx_packets", "packets", "frames put on the guest's RX ring"),
      rx_bytes(g, "rx_bytes", "bytes", "bytes of those frames"),
      rx_copy_ops(g, "rx_copy_ops", "ops", "RX gnttab_copy ops built"),
      rx_bytes_copied(g, "rx_bytes_copied", "bytes", "bytes of successful RX copies"),
      rx_copy_failures(g, "rx_copy_failures", "ops", "RX copies that failed (status in the response)"),
      rx_ring_full_stalls(g, "rx_ring_full_stalls", "events",
                          "RX actions that stopped with frames queued for want of posted slots"),
      rx_drops(g, "rx_drops", "frames", "frames not queued for the guest, by reason"),
      notifications_sent(g, "notifications_sent", "events", "pushes after which the frontend must be kicked"),
      notifications_suppressed(g, "notifications_suppressed", "events",
                               "pushes the frontend's rsp_event said need no kick") {}

unsigned NetifRingBackend::tx_ring_size() { return __CONST_RING_SIZE(netif_tx, kPageSize); }
unsigned NetifRingBackend::rx_ring_size() { return __CONST_RING_SIZE(netif_rx, kPageSize); }

NetifRingBackend::NetifRingBackend(void* tx_sring, void* rx_sring, NetifBackendConfig cfg, StatsGroup& stats,
                                   std::uint64_t now_ps)
    : cfg_(cfg), stats_(stats), remaining_credit_(cfg.credit_bytes), credit_window_start_(now_ps) {
    if (!tx_sring || !rx_sring) throw std::invalid_argument("netif ring backend: no shared ring");
    // netback_init: "fatal_skb_slots too small, bump it to XEN_NETBK_LEGACY_SLOTS_MAX".
    cfg_.fatal_skb_slots = std::max(cfg_.fatal_skb_slots, kLegacySlotsMax);
    for (unsigned i = 0; i < kMaxPendingReqs; ++i) {
        pending_ring_[i] = static_cast<std::uint16_t>(i);
        grant_tx_handle_[i] = 0;
        dealloc_ring_[i] = 0;
    }
    std::fill(std::begin(grant_mapped_), std::end(grant_mapped_), false);
    // xenvif_map_frontend_data_rings: attach where the frontend's responses stand; a req_prod more
    // than a ring ahead of that cannot be honest.
    auto* txs = static_cast<netif_tx_sring_t*>(tx_sring);
    auto* rxs = static_cast<netif_rx_sring_t*>(rx_sring);
    RING_IDX tx_rsp = read_once(txs->rsp_prod), tx_req = read_once(txs->req_prod);
    RING_IDX rx_rsp = read_once(rxs->rsp_prod), rx_req = read_once(rxs->req_prod);
    BACK_RING_ATTACH(&tx_, txs, tx_rsp, kPageSize);
    BACK_RING_ATTACH(&rx_, rxs, rx_rsp, kPageSize);
    tx_pushed_ = tx_rsp;
    rx_pushed_ = rx_rsp;
    if (tx_req - tx_rsp > RING_SIZE(&tx_) || rx_req - rx_rsp > RING_SIZE(&rx_)) {
        attached_ = false;
        fatal_ = NetbackFatal::bad_ring_attach;
        stats_.tx_fatal.inc(netback_fatal_name(fatal_));
    }
    tx_copy_ops_.reserve(2 * kMaxPendingReqs);
    tx_copy_dest_.reserve(2 * kMaxPendingReqs);
    tx_map_ops_.reserve(kMaxPendingReqs);
    tx_unmap_ops_.reserve(kMaxPendingReqs);
    rx_ops_.reserve(kCopyBatchSize);
    rx_src_.reserve(kCopyBatchSize);
    rx_idx_.reserve(kCopyBatchSize);
}

NetifRingBackend::~NetifRingBackend() = default;

// ---------------------------------------------------------------------------------------------
// TX

void NetifRingBackend::fatal_tx_err(NetbackFatal why) {
    // xenvif_fatal_tx_err: "fatal error; disabling device"
    if (fatal_ == NetbackFatal::none) {
        fatal_ = why;
        stats_.tx_fatal.inc(netback_fatal_name(why));
    }
}

void NetifRingBackend::make_tx_response(std::uint16_t id, unsigned extra_count, std::int16_t st) {
    RING_IDX i = tx_.rsp_prod_pvt;
    // Never more responses than slots taken: each response answers a consumed slot.
    if (i + 1 + extra_count - tx_.rsp_prod_pvt > tx_.req_cons - tx_.rsp_prod_pvt)
        invariant_broken("TX response without a consumed request");
    netif_tx_response_t* resp = RING_GET_RESPONSE(&tx_, i);
    resp->id = id;
    resp->status = st;
    while (extra_count-- != 0) RING_GET_RESPONSE(&tx_, ++i)->status = NETIF_RSP_NULL;
    tx_.rsp_prod_pvt = ++i;
    if (st == NETIF_RSP_ERROR) stats_.tx_error_responses.inc();
}

bool NetifRingBackend::push_tx() {
    if (tx_pushed_ == tx_.rsp_prod_pvt) return false;
    int notify = 0;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&tx_, notify);
    tx_pushed_ = tx_.rsp_prod_pvt;
    (notify ? stats_.notifications_sent : stats_.notifications_suppressed).inc();
    return notify != 0;
}

void NetifRingBackend::tx_err(std::uint16_t first_id, unsigned extra_count, const std::uint16_t* ids,
                              unsigned n, RING_IDX end) {
    // xenvif_tx_err: the first slot (and its extras), then every following slot up to `end`.
    if (tx_.req_cons + n != end) invariant_broken("tx_err over a range that is not the packet's");
    tx_.req_cons = end;
    make_tx_response(first_id, extra_count, NETIF_RSP_ERROR);
    for (unsigned i = 0; i < n; ++i) make_tx_response(ids[i], 0, NETIF_RSP_ERROR);
    stats_.tx_dropped.inc();
}

void NetifRingBackend::idx_release(std::uint16_t pending_idx, std::int16_t status) {
    PendingTxInfo& info = pending_tx_info_[pending_idx];
    make_tx_response(info.req.id, info.extra_count, status);
    if (pending_prod_ - pending_cons_ >= kMaxPendingReqs) invariant_broken("pending ring overflow");
    pending_ring_[pending_index(pending_prod_++)] = pending_idx;
}

bool NetifRingBackend::get_extras(netif_extra_info_t* extras, unsigned& extra_count, int& work_to_do) {
    netif_extra_info_t extra;
    RING_IDX cons = tx_.req_cons;
    do {
        if (work_to_do-- <= 0) {
            fatal_tx_err(NetbackFatal::missing_extra_info);  // "Missing extra info"
            return false;
        }
        static_assert(sizeof(extra) <= sizeof(netif_tx_request_t), "an extra fits a TX slot");
        std::memcpy(&extra, RING_GET_REQUEST(&tx_, cons), sizeof(extra));  // RING_COPY_REQUEST
        tx_.req_cons = ++cons;
        ++extra_count;
        if (extra.type == XEN_NETIF_EXTRA_TYPE_NONE || extra.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
            fatal_tx_err(NetbackFatal::invalid_extra_type);  // "Invalid extra type: %d"
            return false;
        }
        extras[extra.type - 1] = extra;
    } while (extra.flags & XEN_NETIF_EXTRA_FLAG_MORE);
    return true;
}

int NetifRingBackend::count_requests(netif_tx_request_t& first, unsigned extra_count,
                                     netif_tx_request_t* txfrags, std::uint16_t* ids, int work_to_do) {
    const RING_IDX cons = tx_.req_cons;
    int slots = 0;
    const char* drop_err = nullptr;
    if (!(first.flags & NETTXF_more_data)) return 0;
    bool more_data;
    do {
        netif_tx_request_t dropped_tx{};
        if (slots >= work_to_do) {  // "Asked for %d slots but exceeds this limit"
            fatal_tx_err(NetbackFatal::slots_exceed_ring);
            return -1;
        }
        if (static_cast<unsigned>(slots) >= cfg_.fatal_skb_slots) {  // "Malicious frontend using %d slots"
            fatal_tx_err(NetbackFatal::malicious_slots);
            return -1;
        }
        if (!drop_err && static_cast<unsigned>(slots) >= kLegacySlotsMax) drop_err = kTooManySlots;
        netif_tx_request_t* txp = drop_err ? &dropped_tx : &txfrags[slots];
        RING_COPY_REQUEST(&tx_, cons + slots, txp);
        ids[slots] = txp->id;
        // A frame >= 64 KiB overflowed first->size: not fatal (buggy frontends), drop the packet.
        if (!drop_err && txp->size > first.size) drop_err = kSlotSize;
        first.size = static_cast<std::uint16_t>(first.size - txp->size);
        ++slots;
        if (unsigned(txp->offset) + txp->size > kPageSize) {  // "Cross page boundary"
            fatal_tx_err(NetbackFatal::frag_cross_page);
            return -1;
        }
        more_data = (txp->flags & NETTXF_more_data) != 0;
    } while (more_data);
    if (drop_err) {
        stats_.tx_drop_reason.inc(drop_err);
        tx_err(first.id, extra_count, ids, static_cast<unsigned>(slots), cons + slots);
        return -1;
    }
    return slots;
}

std::uint64_t NetifRingBackend::credit_period_ps() const {
    // msecs_to_jiffies(credit_usec / 1000), without the jiffy rounding.
    std::uint64_t ms = cfg_.credit_usec / 1000;
    if (ms > ~std::uint64_t{0} / kPsPerMs) return ~std::uint64_t{0};
    return ms * kPsPerMs;
}

void NetifRingBackend::tx_add_credit() {
    // Allow a burst big enough for a 128 KiB jumbo packet; never wrap when adding a chunk.
    std::uint64_t max_burst = std::max(kMaxBurst, cfg_.credit_bytes);
    std::uint64_t max_credit = remaining_credit_ + cfg_.credit_bytes;
    if (max_credit < remaining_credit_) max_credit = ~std::uint64_t{0};
    remaining_credit_ = std::min(max_credit, max_burst);
}

bool NetifRingBackend::tx_credit_exceeded(std::uint64_t now_ps, unsigned size) {
    std::uint64_t period = credit_period_ps();
    std::uint64_t next_credit = credit_window_start_ + period;
    if (next_credit < credit_window_start_) next_credit = ~std::uint64_t{0};
    if (credit_timer_) {  // "Timer could already be pending in rare cases."
        stats_.tx_credit_stalls.inc();
        return true;
    }
    if (now_ps >= next_credit) {  // passed the point where credit is replenished
        credit_window_start_ = now_ps;
        tx_add_credit();
    }
    if (size > remaining_credit_) {  // still too big: retry at the end of the window
        credit_timer_ = next_credit;
        credit_window_start_ = next_credit;
        stats_.tx_credit_stalls.inc();
        return true;
    }
    return false;
}

std::optional<std::uint64_t> NetifRingBackend::credit_timeout() const { return credit_timer_; }

void NetifRingBackend::credit_timer_fired(std::uint64_t now_ps) {
    // xenvif_tx_credit_callback; a timer fires at or after its deadline.
    if (!credit_timer_ || now_ps < *credit_timer_) return;
    credit_timer_.reset();
    tx_add_credit();
}

bool NetifRingBackend::mcast_add(const std::uint8_t* addr) {
    if (mcast_.size() >= kMcastMax) return false;  // "Too many multicast addresses": -ENOSPC
    MacAddress m;
    std::copy(addr, addr + 6, m.begin());
    mcast_.push_back(m);
    return true;
}

void NetifRingBackend::mcast_del(const std::uint8_t* addr) {
    for (auto it = mcast_.begin(); it != mcast_.end(); ++it)
        if (std::equal(it->begin(), it->end(), addr)) {
            mcast_.erase(it);
            return;
        }
}

bool NetifRingBackend::mcast_match(const MacAddress& m) const {
    return std::find(mcast_.begin(), mcast_.end(), m) != mcast_.end();
}

NetifRingBackend::TxGops NetifRingBackend::build_tx(std::uint64_t now_ps, unsigned budget) {
    if (awaiting_submit_) invariant_broken("build_tx before the previous round was submitted");
    tx_queue_.clear();
    tx_copy_ops_.clear();
    tx_copy_dest_.clear();
    tx_map_ops_.clear();
    std::vector<std::pair<std::size_t, unsigned>> dest_at;  // (packet, head offset) per copy op
    TxGops g;
    if (credit_timer_ && now_ps >= *credit_timer_) credit_timer_fired(now_ps);
    while (attached_ && !disabled() && tx_queue_.size() < budget) {
        const RING_IDX req_prod = read_once(tx_.sring->req_prod);
        xen_rmb();                                        // see the requests up to req_prod
        if (req_prod - tx_.req_cons > RING_SIZE(&tx_)) {  // "Impossible number of requests"
            fatal_tx_err(NetbackFatal::impossible_requests);
            break;
        }
        // XEN_RING_NR_UNCONSUMED_REQUESTS over the req_prod read above.
        unsigned req = req_prod - tx_.req_cons;
        unsigned rsp = RING_SIZE(&tx_) - (tx_.req_cons - tx_.rsp_prod_pvt);
        int work_to_do = static_cast<int>(std::min(req, rsp));
        if (!work_to_do) break;

        RING_IDX idx = tx_.req_cons;
        netif_tx_request_t txreq;
        RING_COPY_REQUEST(&tx_, idx, &txreq);
        if (txreq.size > remaining_credit_ && tx_credit_exceeded(now_ps, txreq.size)) {
            g.rate_limited = true;
            break;
        }
        remaining_credit_ -= txreq.size;
        --work_to_do;
        tx_.req_cons = ++idx;

        netif_extra_info_t extras[XEN_NETIF_EXTRA_TYPE_MAX - 1] = {};
        unsigned extra_count = 0;
        if (txreq.flags & NETTXF_extra_info) {
            if (!get_extras(extras, extra_count, work_to_do)) break;
            idx = tx_.req_cons;
        }
        if (extras[XEN_NETIF_EXTRA_TYPE_MCAST_ADD - 1].type) {
            bool ok = mcast_add(extras[XEN_NETIF_EXTRA_TYPE_MCAST_ADD - 1].u.mcast.addr);
            make_tx_response(txreq.id, extra_count, ok ? NETIF_RSP_OKAY : NETIF_RSP_ERROR);
            stats_.tx_mcast.inc();
            continue;
        }
        if (extras[XEN_NETIF_EXTRA_TYPE_MCAST_DEL - 1].type) {
            mcast_del(extras[XEN_NETIF_EXTRA_TYPE_MCAST_DEL - 1].u.mcast.addr);
            make_tx_response(txreq.id, extra_count, NETIF_RSP_OKAY);
            stats_.tx_mcast.inc();
            continue;
        }

        const unsigned total = txreq.size;
        unsigned data_len = std::min<unsigned>(txreq.size, kTxCopyLen);
        netif_tx_request_t txfrags[kLegacySlotsMax];
        std::uint16_t ids[kMaxPendingReqs];
        int ret = count_requests(txreq, extra_count, txfrags, ids, work_to_do);
        if (ret < 0) break;
        idx += static_cast<RING_IDX>(ret);

        if (txreq.size < kEthHlen) {  // "Bad packet size": the first slot must hold the header
            stats_.tx_drop_reason.inc(kBadPacketSize);
            tx_err(txreq.id, extra_count, ids, static_cast<unsigned>(ret), idx);
            break;
        }
        if (unsigned(txreq.offset) + txreq.size > kPageSize) {  // "No crossing a page"
            fatal_tx_err(NetbackFatal::first_cross_page);
            break;
        }
        if (static_cast<unsigned>(ret) >= kLegacySlotsMax - 1 && data_len < txreq.size) data_len = txreq.size;

        TxPacketState p;
        p.flags = txreq.flags;
        p.total = total;
        const netif_extra_info_t& gso = extras[XEN_NETIF_EXTRA_TYPE_GSO - 1];
        if (gso.type) {  // xenvif_set_skb_gso
            if (!gso.u.gso.size) {
                fatal_tx_err(NetbackFatal::gso_size_zero);  // "GSO size must not be zero."
                break;
            }
            if (gso.u.gso.type == XEN_NETIF_GSO_TYPE_TCPV4) {
                p.gso_type = GsoType::tcpv4;
            } else if (gso.u.gso.type == XEN_NETIF_GSO_TYPE_TCPV6) {
                p.gso_type = GsoType::tcpv6;
            } else {
                fatal_tx_err(NetbackFatal::gso_bad_type);  // "Bad GSO type %d."
                break;
            }
            p.gso_size = gso.u.gso.size;
        }
        // A HASH extra only sets skb->hash in Linux; EthernetFrame carries none.

        // xenvif_get_requests: copy ops for exactly data_len bytes into the head, maps for the rest.
        const std::size_t pkt_no = tx_queue_.size();
        p.head.resize(data_len);
        unsigned nr_slots = static_cast<unsigned>(ret) + 1;
        int cur = -1;  // -1: the first slot, else txfrags[cur]
        auto txp_at = [&]() -> netif_tx_request_t& { return cur < 0 ? txreq : txfrags[cur]; };
        p.first_copy_op = static_cast<unsigned>(tx_copy_ops_.size());
        unsigned pos = 0;
        while (pos < data_len) {
            netif_tx_request_t& txp = txp_at();
            unsigned amount = std::min<unsigned>(data_len - pos, txp.size);
            const std::uint16_t pending_idx = pending_ring_[pending_index(pending_cons_)];
            const unsigned dest_virt = kTxHeadOffset + pos;
            gnttab_copy_t cop{};
            cop.source.u.ref = txp.gref;
            cop.source.domid = cfg_.frontend_domid;
            cop.source.offset = txp.offset;
            cop.dest.domid = DOMID_SELF;
            cop.dest.offset = static_cast<std::uint16_t>(dest_virt % kPageSize);
            cop.dest.u.gmfn = cfg_.tx_head_gfn_base + 2 * xen_pfn_t{pending_idx} + dest_virt / kPageSize;
            bool split = false;
            if (cop.dest.offset + amount > kPageSize) {  // don't cross a local page boundary
                amount = kPageSize - cop.dest.offset;
                p.split_mask |= 1u << p.copy_count;
                split = true;
            }
            cop.len = static_cast<std::uint16_t>(amount);
            cop.flags = GNTCOPY_source_gref;
            tx_copy_ops_.push_back(cop);
            dest_at.emplace_back(pkt_no, pos);
            p.copy_idx[p.copy_count] = pending_idx;
            if (!split) ++p.copy_count;
            pos += amount;
            if (amount == txp.size) {  // the copy covered the whole slot
                PendingTxInfo& info = pending_tx_info_[pending_idx];
                info.req = txp;
                info.extra_count = cur < 0 ? extra_count : 0;
                ++cur;
                if (pending_prod_ == pending_cons_) invariant_broken("pending ring exhausted");
                ++pending_cons_;
                --nr_slots;
            } else {  // partly copied: the rest is mapped (the shared slot)
                txp.offset = static_cast<std::uint16_t>(txp.offset + amount);
                txp.size = static_cast<std::uint16_t>(txp.size - amount);
            }
        }
        p.first_map_op = static_cast<unsigned>(tx_map_ops_.size());
        for (unsigned i = 0; i < nr_slots; ++i) {
            netif_tx_request_t& txp = txp_at();
            if (pending_prod_ == pending_cons_) invariant_broken("pending ring exhausted");
            const std::uint16_t pending_idx = pending_ring_[pending_index(pending_cons_++)];
            gnttab_map_grant_ref_t mop{};
            mop.host_addr = cfg_.mmap_base + std::uint64_t{pending_idx} * kPageSize;
            mop.flags = GNTMAP_host_map | GNTMAP_readonly;
            mop.ref = txp.gref;
            mop.dom = cfg_.frontend_domid;
            tx_map_ops_.push_back(mop);
            PendingTxInfo& info = pending_tx_info_[pending_idx];
            info.req = txp;
            info.extra_count = cur < 0 ? extra_count : 0;
            p.frag_idx[p.nr_frags++] = pending_idx;
            ++cur;
        }
        tx_queue_.push_back(std::move(p));
        tx_.req_cons = idx;
        if (tx_map_ops_.size() >= kMaxPendingReqs || tx_copy_ops_.size() >= 2 * kMaxPendingReqs) break;
    }
    for (const auto& d : dest_at) tx_copy_dest_.push_back(tx_queue_[d.first].head.data() + d.second);
    stats_.tx_copy_ops.inc(tx_copy_ops_.size());
    stats_.tx_map_ops.inc(tx_map_ops_.size());
    g.notify = push_tx();
    g.packets = static_cast<unsigned>(tx_queue_.size());
    awaiting_submit_ = g.packets != 0;
    if (awaiting_submit_) {
        g.copy = tx_copy_ops_.data();
        g.nr_copy = static_cast<unsigned>(tx_copy_ops_.size());
        g.copy_dest = tx_copy_dest_.data();
        g.map = tx_map_ops_.data();
        g.nr_map = static_cast<unsigned>(tx_map_ops_.size());
    }
    return g;
}

void NetifRingBackend::idx_unmap(std::uint16_t pending_idx, std::int16_t then_status) {
    if (!grant_mapped_[pending_idx]) invariant_broken("Trying to unmap invalid handle");
    gnttab_unmap_grant_ref_t op{};
    op.host_addr = cfg_.mmap_base + std::uint64_t{pending_idx} * kPageSize;
    op.dev_bus_addr = 0;
    op.handle = grant_tx_handle_[pending_idx];
    grant_mapped_[pending_idx] = false;
    check_unmaps_.push_back(op);
    check_unmapped_.emplace_back(pending_idx, then_status);
    stats_.tx_unmap_ops.inc();
}

bool NetifRingBackend::check_gop(TxPacketState& p, const std::vector<const std::uint8_t*>& mapped_pages) {
    const bool sharedslot = p.nr_frags && p.frag_idx[0] == p.copy_idx[p.copy_count - 1];
    std::int16_t err = GNTST_okay;
    unsigned op = p.first_copy_op;
    for (unsigned i = 0; i < p.copy_count; ++i) {
        const std::uint16_t pending_idx = p.copy_idx[i];
        std::int16_t newerr = tx_copy_ops_[op].status;
        if (!newerr) stats_.tx_bytes_copied.inc(tx_copy_ops_[op].len);
        if (p.split_mask & (1u << i)) {  // split copies are checked together
            ++op;
            if (!newerr) {
                newerr = tx_copy_ops_[op].status;
                if (!newerr) stats_.tx_bytes_copied.inc(tx_copy_ops_[op].len);
            }
        }
        ++op;
        const bool release_now = i < p.copy_count - 1 || !sharedslot;  // else the first frag holds it
        if (newerr) err = newerr;
        if (release_now) idx_release(pending_idx, newerr ? NETIF_RSP_ERROR : NETIF_RSP_OKAY);
    }
    const char* why = err ? kCopyFailed : nullptr;
    for (unsigned i = 0; i < p.nr_frags; ++i) {
        const gnttab_map_grant_ref_t& m = tx_map_ops_[p.first_map_op + i];
        const std::uint16_t pending_idx = p.frag_idx[i];
        if (m.status == GNTST_okay) {
            if (grant_mapped_[pending_idx]) invariant_broken("Trying to overwrite active handle");
            if (!mapped_pages[p.first_map_op + i]) invariant_broken("a successful map without its page");
            grant_tx_handle_[pending_idx] = m.handle;
            grant_mapped_[pending_idx] = true;
            if (err)  // a previous error: invalidate this frag
                idx_unmap(pending_idx, (i == 0 && sharedslot) ? NETIF_RSP_ERROR : NETIF_RSP_OKAY);
            continue;
        }
        idx_release(pending_idx, NETIF_RSP_ERROR);  // "Grant map of %d. frag failed!"
        if (err) continue;
        for (unsigned j = 0; j < i; ++j) idx_unmap(p.frag_idx[j], NETIF_RSP_OKAY);
        err = m.status;
        why = kMapFailed;
    }
    if (why) {
        stats_.tx_drop_reason.inc(why);
        stats_.tx_dropped.inc();
    }
    return err == GNTST_okay;
}

NetifRingBackend::TxSubmit NetifRingBackend::submit_tx(const std::vector<const std::uint8_t*>& mapped_pages) {
    if (!awaiting_submit_) invariant_broken("submit_tx without a built round");
    if (mapped_pages.size() != tx_map_ops_.size()) invariant_broken("submit_tx: one page per map op");
    if (!check_unmaps_.empty()) invariant_broken("submit_tx before the previous unmaps completed");
    awaiting_submit_ = false;
    TxSubmit r;
    for (TxPacketState& p : tx_queue_) {
        if (!check_gop(p, mapped_pages)) {
            ++r.dropped;
            continue;
        }
        NetbackTxPacket out;
        EthernetFrame& f = out.frame;
        f.bytes = std::move(p.head);
        f.bytes.reserve(p.total);
        for (unsigned i = 0; i < p.nr_frags; ++i) {  // xenvif_fill_frags
            const netif_tx_request_t& req = pending_tx_info_[p.frag_idx[i]].req;
            const std::uint8_t* page = mapped_pages[p.first_map_op + i];
            f.bytes.insert(f.bytes.end(), page + req.offset, page + req.offset + req.size);
            PendingTxInfo& info = pending_tx_info_[p.frag_idx[i]];
            info.next = i + 1 < p.nr_frags ? p.frag_idx[i + 1] : -1;
        }
        if (p.flags & NETTXF_csum_blank)
            f.csum_blank = true;  // CHECKSUM_PARTIAL
        else if (p.flags & NETTXF_data_validated)
            f.data_validated = true;  // CHECKSUM_UNNECESSARY
        f.gso_type = p.gso_type;
        f.gso_size = p.gso_size;
        if (f.gso_type != GsoType::none && !f.csum_blank) {  // checksum_setup: GSO must be PARTIAL
            f.csum_blank = true;
            f.data_validated = false;
            stats_.tx_gso_checksum_fixup.inc();
        }
        if (p.nr_frags) {
            out.needs_release = true;
            out.release_handle = p.frag_idx[0];
            pending_tx_info_[p.frag_idx[0]].zerocopy_head = true;
        }
        stats_.tx_packets.inc();
        stats_.tx_bytes.inc(f.bytes.size());
        r.packets.push_back(std::move(out));
    }
    tx_queue_.clear();
    r.unmaps = check_unmaps_;
    r.notify = push_tx();
    return r;
}

bool NetifRingBackend::complete_check_unmaps(const std::vector<gnttab_unmap_grant_ref_t>& done) {
    if (done.size() != check_unmaps_.size())
        invariant_broken("complete_check_unmaps: not the unmaps returned");
    for (const gnttab_unmap_grant_ref_t& op : done)
        if (op.status != GNTST_okay) invariant_broken("Unmap fail (xenvif_idx_unmap BUG)");
    for (const auto& [pending_idx, status] : check_unmapped_) idx_release(pending_idx, status);
    check_unmaps_.clear();
    check_unmapped_.clear();
    return push_tx();
}

void NetifRingBackend::release(std::uint16_t release_handle) {
    if (release_handle >= kMaxPendingReqs || !pending_tx_info_[release_handle].zerocopy_head)
        invariant_broken("release of a packet not in flight");
    pending_tx_info_[release_handle].zerocopy_head = false;
    std::int32_t idx = release_handle;
    while (idx >= 0) {  // xenvif_zerocopy_callback walks the ubuf chain
        if (dealloc_prod_ - dealloc_cons_ >= kMaxPendingReqs) invariant_broken("dealloc ring overflow");
        dealloc_ring_[pending_index(dealloc_prod_++)] = static_cast<std::uint16_t>(idx);
        std::int32_t next = pending_tx_info_[idx].next;
        pending_tx_info_[idx].next = -1;
        idx = next;
    }
}

NetifRingBackend::TxUnmaps NetifRingBackend::build_dealloc() {
    if (awaiting_dealloc_) invariant_broken("build_dealloc before the previous unmaps completed");
    tx_unmap_ops_.clear();
    pending_idx_release_.clear();
    while (dealloc_cons_ != dealloc_prod_) {
        const std::uint16_t pending_idx = dealloc_ring_[pending_index(dealloc_cons_++)];
        if (!grant_mapped_[pending_idx]) invariant_broken("Trying to unmap invalid handle");
        gnttab_unmap_grant_ref_t op{};
        op.host_addr = cfg_.mmap_base + std::uint64_t{pending_idx} * kPageSize;
        op.handle = grant_tx_handle_[pending_idx];
        grant_mapped_[pending_idx] = false;
        tx_unmap_ops_.push_back(op);
        pending_idx_release_.push_back(pending_idx);
    }
    stats_.tx_unmap_ops.inc(tx_unmap_ops_.size());
    TxUnmaps u;
    awaiting_dealloc_ = !tx_unmap_ops_.empty();
    if (awaiting_dealloc_) {
        u.ops = tx_unmap_ops_.data();
        u.nr = static_cast<unsigned>(tx_unmap_ops_.size());
    }
    return u;
}

bool NetifRingBackend::complete_dealloc() {
    if (!awaiting_dealloc_) return false;
    for (const gnttab_unmap_grant_ref_t& op : tx_unmap_ops_)
        if (op.status != GNTST_okay) invariant_broken("Unmap fail (xenvif_tx_dealloc_action BUG)");
    for (std::uint16_t pending_idx : pending_idx_release_) idx_release(pending_idx, NETIF_RSP_OKAY);
    awaiting_dealloc_ = false;
    tx_unmap_ops_.clear();
    pending_idx_release_.clear();
    return push_tx();
}

bool NetifRingBackend::tx_final_check() {
    if (!attached_ || disabled()) return false;
    int more = 0;
    RING_FINAL_CHECK_FOR_REQUESTS(&tx_, more);
    return more != 0;
}

// ---------------------------------------------------------------------------------------------
// RX

unsigned NetifRingBackend::rx_needed(const EthernetFrame& f) const {
    unsigned needed = static_cast<unsigned>((f.size() + kPageSize - 1) / kPageSize);
    if (f.gso_type != GsoType::none) ++needed;  // skb_is_gso, negotiated or not
    return needed;
}

bool NetifRingBackend::queue_rx(EthernetFrame frame) {
    const char* drop = nullptr;
    if (!attached_ || disabled()) {
        drop = "vif_disabled";  // xenvif_start_xmit: !xenvif_schedulable
    } else if (frame.size() == 0 || frame.size() > XEN_NETIF_MAX_TX_SIZE) {
        drop = "bad_frame";
    } else if ((frame.gso_type == GsoType::tcpv4 && !cfg_.feature_gso_tcpv4) ||
               (frame.gso_type == GsoType::tcpv6 && !cfg_.feature_gso_tcpv6)) {
        drop = "gso_not_negotiated";
    } else if (cfg_.multicast_control && frame.has_header() && is_multicast(frame.dst()) &&
               frame.dst() != kBroadcastMac && !mcast_match(frame.dst())) {
        drop = "multicast_filter";  // PACKET_MULTICAST not in fe_mcast_addr
    } else if (rx_queue_len_ >= cfg_.rx_queue_max) {
        drop = "queue_full";  // xenvif_rx_queue_tail
    }
    if (drop) {
        stats_.rx_drops.inc(drop);
        return false;
    }
    rx_queue_len_ += frame.size();
    rx_queue_.push_back(std::move(frame));
    return true;
}

bool NetifRingBackend::rx_slots_available() {
    if (!attached_ || rx_queue_.empty()) return false;
    const unsigned needed = rx_needed(rx_queue_.front());
    RING_IDX prod;
    do {
        prod = read_once(rx_.sring->req_prod);
        if (prod - rx_.req_cons >= needed) return true;
        rx_.sring->req_event = prod + 1;
        xen_mb();  // the event is visible before req_prod is read again
    } while (read_once(rx_.sring->req_prod) != prod);
    return false;
}

void NetifRingBackend::rx_next_skb() {
    pkt_ = RxPkt{};
    pkt_.active = true;
    pkt_.frame = std::move(rx_queue_.front());
    rx_queue_.pop_front();
    rx_queue_len_ -= pkt_.frame.size();
    pkt_.seq = rx_seq_++;
    pkt_.remaining = pkt_.frame.size();
    stats_.rx_packets.inc();
    stats_.rx_bytes.inc(pkt_.frame.size());
    // xenvif_rx_next_skb: a GSO extra when (1 << gso_type) & gso_mask.
    if (pkt_.frame.gso_type != GsoType::none) {
        const bool v4 = pkt_.frame.gso_type == GsoType::tcpv4;
        if (v4 ? cfg_.feature_gso_tcpv4 : cfg_.feature_gso_tcpv6) {
            pkt_.gso.type = XEN_NETIF_EXTRA_TYPE_GSO;
            pkt_.gso.flags = 0;
            pkt_.gso.u.gso.type = v4 ? XEN_NETIF_GSO_TYPE_TCPV4 : XEN_NETIF_GSO_TYPE_TCPV6;
            pkt_.gso.u.gso.size = pkt_.frame.gso_size;
            pkt_.gso.u.gso.pad = 0;
            pkt_.gso.u.gso.features = 0;
            pkt_.extra_count = 1;
        }
    }
}

void NetifRingBackend::rx_finish_data_slot() {
    // The tail of xenvif_rx_data_slot.
    std::uint16_t flags = pkt_.remaining > 0 ? NETRXF_more_data : 0;
    if (pkt_.slot == 0) {
        if (pkt_.frame.csum_blank)
            flags |= NETRXF_csum_blank | NETRXF_data_validated;
        else if (pkt_.frame.data_validated)
            flags |= NETRXF_data_validated;
        if (pkt_.extra_count != 0) flags |= NETRXF_extra_info;
    }
    netif_rx_response_t* rsp = RING_GET_RESPONSE(&rx_, rx_.req_cons);
    rsp->offset = 0;
    rsp->flags = flags;
    rsp->id = pkt_.req.id;
    rsp->status = static_cast<std::int16_t>(pkt_.offset);
    pkt_.slot_open = false;
}

NetifRingBackend::RxBatch NetifRingBackend::build_rx() {
    if (awaiting_rx_) invariant_broken("build_rx before the previous batch completed");
    rx_ops_.clear();
    rx_src_.clear();
    rx_idx_.clear();
    RxBatch b;
    if (!rx_action_active_) {
        if (disabled() && !rx_queue_.empty()) {
            // xenvif_kthread_guest_rx: a disabled vif's thread stops and bins what is queued.
            stats_.rx_drops.inc("vif_disabled", rx_queue_.size());
            rx_queue_.clear();
            rx_queue_len_ = 0;
        }
        rx_action_active_ = true;
        rx_work_done_ = 0;
    }
    for (;;) {
        if (!pkt_.active) {  // xenvif_rx_action's loop condition
            if (rx_work_done_ >= kRxBatchSize || rx_queue_.empty() || !rx_slots_available()) {
                if (rx_work_done_ < kRxBatchSize && !rx_queue_.empty()) stats_.rx_ring_full_stalls.inc();
                rx_action_active_ = false;
                b.last = true;
                break;
            }
            rx_next_skb();
            ++rx_work_done_;
        }
        // One slot of xenvif_rx_skb.
        if (!pkt_.slot_open) {
            if (pkt_.slot != 0 && pkt_.extra_count != 0) {  // extras go after the first data slot
                --pkt_.extra_count;
                netif_extra_info_t extra = pkt_.gso;
                if (pkt_.extra_count != 0) extra.flags |= XEN_NETIF_EXTRA_FLAG_MORE;
                static_assert(sizeof(extra) == sizeof(netif_rx_response_t), "an extra fills an RX slot");
                std::memcpy(RING_GET_RESPONSE(&rx_, rx_.req_cons), &extra, sizeof(extra));
            } else {
                RING_COPY_REQUEST(&rx_, rx_.req_cons, &pkt_.req);  // once; Linux reads the slot
                pkt_.slot_open = true;
                pkt_.offset = 0;  // vif->xdp_headroom
            }
        }
        if (pkt_.slot_open) {
            bool full = false;
            while (pkt_.offset < kPageSize && pkt_.remaining > 0) {
                if (rx_ops_.size() == kCopyBatchSize) {  // xenvif_rx_copy_add flushes a full batch
                    full = true;
                    break;
                }
                // xenvif_rx_next_chunk: at most to the end of the guest page and of the source page.
                const std::size_t src_virt = kRxSourceOffset + pkt_.pos;
                const unsigned src_off = static_cast<unsigned>(src_virt % kPageSize);
                std::size_t len = std::min<std::size_t>(pkt_.remaining, kPageSize - pkt_.offset);
                len = std::min<std::size_t>(len, kPageSize - src_off);
                gnttab_copy_t op{};
                op.flags = GNTCOPY_dest_gref;
                op.source.domid = DOMID_SELF;
                op.source.u.gmfn = cfg_.rx_source_gfn_base + (pkt_.seq % 0x10000) * kRxGfnsPerFrame +
                                   static_cast<xen_pfn_t>(src_virt / kPageSize);
                op.source.offset = static_cast<std::uint16_t>(src_off);
                op.dest.u.ref = pkt_.req.gref;
                op.dest.domid = cfg_.frontend_domid;
                op.dest.offset = static_cast<std::uint16_t>(pkt_.offset);
                op.len = static_cast<std::uint16_t>(len);
                rx_ops_.push_back(op);
                rx_src_.push_back(pkt_.frame.bytes.data() + pkt_.pos);
                rx_idx_.push_back(rx_.req_cons);
                pkt_.offset += static_cast<unsigned>(len);
                pkt_.remaining -= len;
                pkt_.pos += len;
            }
            if (full) break;
            rx_finish_data_slot();
        }
        ++rx_.req_cons;
        ++pkt_.slot;
        if (pkt_.remaining == 0 && pkt_.extra_count == 0) {  // xenvif_rx_complete
            rx_.rsp_prod_pvt = rx_.req_cons;
            rx_completed_.push_back(std::move(pkt_.frame));
            pkt_.active = false;
        }
    }
    stats_.rx_copy_ops.inc(rx_ops_.size());
    awaiting_rx_ = true;
    b.ops = rx_ops_.data();
    b.nr = static_cast<unsigned>(rx_ops_.size());
    b.src = rx_src_.data();
    return b;
}

bool NetifRingBackend::complete_rx() {
    if (!awaiting_rx_) invariant_broken("complete_rx without a batch");
    awaiting_rx_ = false;
    for (std::size_t i = 0; i < rx_ops_.size(); ++i) {
        if (rx_ops_[i].status != GNTST_okay) {  // overwrite the status of the slot's response
            RING_GET_RESPONSE(&rx_, rx_idx_[i])->status = rx_ops_[i].status;
            stats_.rx_copy_failures.inc();
        } else {
            stats_.rx_bytes_copied.inc(rx_ops_[i].len);
        }
    }
    rx_ops_.clear();
    rx_src_.clear();
    rx_idx_.clear();
    rx_completed_.clear();
    return push_rx();
}

bool NetifRingBackend::push_rx() {
    if (rx_pushed_ == rx_.rsp_prod_pvt) return false;
    int notify = 0;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&rx_, notify);
    rx_pushed_ = rx_.rsp_prod_pvt;
    (notify ? stats_.notifications_sent : stats_.notifications_suppressed).inc();
    return notify != 0;
}

}  // namespace xensim
