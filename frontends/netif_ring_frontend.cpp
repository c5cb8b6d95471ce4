// The ring side of netfront; see netif_ring_frontend.h for what is modelled and where it differs.
#include "frontends/netif_ring_frontend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace xensim {
namespace {

// One read of a backend-written ring index (Linux: queue->tx.sring->rsp_prod, read once).
RING_IDX read_once(const RING_IDX& shared) { return *static_cast<const volatile RING_IDX*>(&shared); }

const char* tx_status_name(std::int16_t status) {
    switch (status) {
        case NETIF_RSP_OKAY:
            return "NETIF_RSP_OKAY";
        case NETIF_RSP_ERROR:
            return "NETIF_RSP_ERROR";
        case NETIF_RSP_DROPPED:
            return "NETIF_RSP_DROPPED";
        case NETIF_RSP_NULL:
            return "NETIF_RSP_NULL";
        default:
            return "other";
    }
}

constexpr unsigned kRxMask = NetifRingFrontend::kRxRingSize - 1;
static_assert((NetifRingFrontend::kRxRingSize & kRxMask) == 0, "xennet_rxidx needs a power of two");

}  // namespace

NetifRingFrontend::Stats::Stats(StatsGroup& g)
    : tx_packets(g, "tx_packets", "packets", "frames queued on the transmit ring"),
      tx_bytes(g, "tx_bytes", "bytes", "bytes of the frames queued on the transmit ring"),
      tx_slots(g, "tx_slots", "requests", "transmit data requests (one grant each)"),
      tx_gso_extras(g, "tx_gso_extras", "requests", "XEN_NETIF_EXTRA_TYPE_GSO extra-info requests"),
      tx_busy(g, "tx_busy", "packets", "frames refused because the queue was stopped"),
      tx_notifications_sent(g, "tx_notifications_sent", "events",
                            "transmit pushes after which the backend must be notified"),
      tx_notifications_suppressed(g, "tx_notifications_suppressed", "events",
                                  "transmit pushes the backend's req_event said need no notification"),
      tx_dropped(g, "tx_dropped", "packets", "frames dropped as xennet_start_xmit drops them, by reason"),
      tx_responses(g, "tx_responses", "responses", "transmit responses, by NETIF_RSP_* status"),
      rx_packets(g, "rx_packets", "packets", "frames delivered to the caller"),
      rx_bytes(g, "rx_bytes", "bytes", "bytes of the frames delivered"),
      rx_slots(g, "rx_slots", "responses", "receive data responses consumed"),
      rx_extra_slots(g, "rx_extra_slots", "responses", "receive extra-info responses consumed"),
      rx_buffers_posted(g, "rx_buffers_posted", "requests", "new receive buffers posted by refill"),
      rx_refill_deferred(g, "rx_refill_deferred", "refills",
                         "refills that pushed nothing (too few requests or no page): timer needed"),
      rx_notifications_sent(g, "rx_notifications_sent", "events",
                            "receive pushes after which the backend must be notified"),
      rx_notifications_suppressed(g, "rx_notifications_suppressed", "events",
                                  "receive pushes the backend's req_event said need no notification"),
      rx_gso_checksum_fixup(g, "rx_gso_checksum_fixup", "packets",
                            "GSO packets received without NETRXF_csum_blank (made CHECKSUM_PARTIAL)"),
      rx_errors(g, "rx_errors", "packets", "received packets dropped, by reason"),
      grants_granted(g, "grants_granted", "grants", "grants created (tx slots, rx buffers)"),
      grants_ended(g, "grants_ended", "grants", "grants ended"),
      bogus_responses(g, "bogus_responses", "responses",
                      "responses naming a bad or inactive id, or a response producer overflow"),
      broken(g, "broken", "events", "the device was disabled for further use, by cause"),
      tx_pushes(g, "tx_pushes", "samples", "transmit pushes that published requests"),
      tx_in_flight_sum(g, "tx_in_flight_sum", "slots",
                       "transmit slots in flight just after each push, summed over tx_pushes"),
      tx_in_flight_peak(g, "tx_in_flight_peak", "slots", "most transmit slots in flight after a push"),
      rx_polls(g, "rx_polls", "samples", "receive polls that found the ring usable"),
      rx_waiting_sum(g, "rx_waiting_sum", "responses",
                     "receive responses waiting as each poll began, summed over rx_polls"),
      rx_waiting_peak(g, "rx_waiting_peak", "responses", "most receive responses waiting at a poll"),
      rx_empty_sum(g, "rx_empty_sum", "buffers",
                   "posted receive buffers not yet filled as each poll began, summed over rx_polls"),
      rx_no_buffer_peak(g, "rx_no_buffer_peak", "slots",
                        "most receive ring slots without an empty posted buffer as a poll began") {}

namespace {

// Checked before anything is registered, so a rejected config leaves the stats group untouched.
const NetifFrontendConfig& validated(const NetifFrontendConfig& cfg, const GrantOps& ops) {
    if (!ops.grant || !ops.end || !ops.alloc_page || !ops.page)
        throw std::invalid_argument("netif ring frontend: grant or page callbacks missing");
    if (cfg.tx_head_bytes < kEthHeaderLen ||
        cfg.tx_head_bytes > NetifRingFrontend::kPageSize - NetifRingFrontend::kTxHeadOffset)
        throw std::invalid_argument(
            "netif ring frontend: tx_head_bytes " + std::to_string(cfg.tx_head_bytes) + " outside 14.." +
            std::to_string(NetifRingFrontend::kPageSize - NetifRingFrontend::kTxHeadOffset));
    if (cfg.rx_refill_batch > NetifRingFrontend::kRxRingSize)
        throw std::invalid_argument("netif ring frontend: rx_refill_batch " +
                                    std::to_string(cfg.rx_refill_batch) + " above the ring size " +
                                    std::to_string(NetifRingFrontend::kRxRingSize));
    return cfg;
}

}  // namespace

NetifRingFrontend::NetifRingFrontend(NetifFrontendConfig cfg, GrantOps ops, StatsGroup& stats)
    : cfg_(validated(cfg, ops)), ops_(std::move(ops)), stats_(stats) {
    tx_slots_.resize(kTxRingSize);
    for (unsigned i = kTxRingSize; i-- > 0;) tx_free_ids_.push_back(i);  // id 0 first, as tx_skb_freelist
    rx_slots_.resize(kRxRingSize);
}

bool NetifRingFrontend::setup() {
    if (ready_) return true;
    if (!have_ring_pages_) {  // after disconnect() the same pages are initialised again
        std::optional<std::uint64_t> txp = ops_.alloc_page();
        if (!txp) return false;
        std::optional<std::uint64_t> rxp = ops_.alloc_page();
        if (!rxp) {
            tx_pages_.push_back(*txp);  // kept for transmit; nothing leaks
            return false;
        }
        tx_ring_gfn_ = *txp;
        rx_ring_gfn_ = *rxp;
        have_ring_pages_ = true;
    }
    std::memset(ops_.page(tx_ring_gfn_), 0, kPageSize);
    std::memset(ops_.page(rx_ring_gfn_), 0, kPageSize);
    auto* txs = reinterpret_cast<netif_tx_sring_t*>(ops_.page(tx_ring_gfn_));
    auto* rxs = reinterpret_cast<netif_rx_sring_t*>(ops_.page(rx_ring_gfn_));
    SHARED_RING_INIT(txs);
    FRONT_RING_INIT(&tx_, txs, kPageSize);
    SHARED_RING_INIT(rxs);
    FRONT_RING_INIT(&rx_, rxs, kPageSize);
    ready_ = true;
    return true;
}

void NetifRingFrontend::mark_broken(const char* why) {
    // "Disabled for further use": xennet_start_xmit drops, the interrupt handlers return early.
    broken_ = true;
    stats_.broken.inc(why);
}

// ---------------------------------------------------------------------------------------- transmit

std::optional<std::uint64_t> NetifRingFrontend::tx_page() {
    if (!tx_pages_.empty()) {
        std::uint64_t g = tx_pages_.back();
        tx_pages_.pop_back();
        return g;
    }
    return ops_.alloc_page();
}

void NetifRingFrontend::tx_free_slot(unsigned id) {
    TxSlot& s = tx_slots_[id];
    tx_pages_.push_back(s.gfn);
    s = TxSlot{};
    tx_free_ids_.push_back(id);  // add_id_to_list: the head of the free list
}

// xennet_start_xmit up to (not including) the push.
NetTxResult NetifRingFrontend::transmit(const EthernetFrame& frame) {
    auto drop = [this](const char* why) {
        stats_.tx_dropped.inc(why);
        return NetTxResult{NetTxVerdict::dropped, 0, 0};
    };
    if (!ready_) return drop("no_carrier");  // !netif_carrier_ok
    if (broken_) return drop("broken");
    if (tx_stopped_) {
        stats_.tx_busy.inc();
        return NetTxResult{NetTxVerdict::busy, 0, 0};
    }
    const std::size_t len = frame.size();
    if (len == 0) return drop("empty");
    if (len > XEN_NETIF_MAX_TX_SIZE) return drop("too_big");  // "too big for wire format"

    // The layout (header comment): pieces of at most a page, none crossing one.
    struct Span {
        std::uint16_t offset, size;
    };
    Span spans[kMaxTxSlots + 1];
    unsigned nspans = 0;
    if (!cfg_.feature_sg) {
        // xennet_count_skb_slots over a linear skb: gnttab_count_grant(offset, len).
        if (kTxHeadOffset + len > kPageSize) return drop("no_sg");  // slots > 1 && !xennet_can_sg
        spans[nspans++] = {std::uint16_t(kTxHeadOffset), std::uint16_t(len)};
    } else {
        std::size_t head = std::min<std::size_t>(len, cfg_.tx_head_bytes);
        spans[nspans++] = {std::uint16_t(kTxHeadOffset), std::uint16_t(head)};
        // len <= 0xFFFF and head >= 14: at most 16 frag pages, 17 slots <= MAX_XEN_SKB_FRAGS + 1,
        // so the "rides the rocket" linearisation never applies.
        for (std::size_t off = head; off < len; off += kPageSize)
            spans[nspans++] = {0, std::uint16_t(std::min<std::size_t>(kPageSize, len - off))};
    }
    const bool gso = frame.gso_size != 0;  // skb_is_gso
    if (gso) {
        // netif_needs_gso: the stack hands a GSO skb only to a device with that feature.
        bool ok = (frame.gso_type == GsoType::tcpv4 && cfg_.feature_gso_tcpv4) ||
                  (frame.gso_type == GsoType::tcpv6 && cfg_.feature_gso_tcpv6);
        if (!ok) return drop("gso_not_negotiated");
    }
    const unsigned needed = nspans + (gso ? 1u : 0u);
    if (RING_FREE_REQUESTS(&tx_) < needed || tx_free_ids_.size() < nspans) {
        // Not reached while the stop threshold holds (237 in flight leaves 19 slots); kept as a guard.
        stats_.tx_busy.inc();
        return NetTxResult{NetTxVerdict::busy, 0, 0};
    }

    // Pages and grants first, so a shortage leaves the ring untouched.
    struct Taken {
        std::uint64_t gfn;
        grant_ref_t ref;
    };
    Taken taken[kMaxTxSlots + 1];
    unsigned ntaken = 0;
    const char* failure = nullptr;
    std::size_t copied = 0;
    for (unsigned i = 0; i < nspans && !failure; ++i) {
        std::optional<std::uint64_t> pg = tx_page();
        if (!pg) {
            failure = "no_page";
            break;
        }
        std::memcpy(ops_.page(*pg) + spans[i].offset, frame.bytes.data() + copied, spans[i].size);
        std::optional<grant_ref_t> ref = ops_.grant(*pg, /*readonly=*/true);
        if (!ref) {
            tx_pages_.push_back(*pg);
            failure = "no_grant";
            break;
        }
        stats_.grants_granted.inc();
        taken[ntaken++] = {*pg, *ref};
        copied += spans[i].size;
    }
    if (failure) {
        for (unsigned i = 0; i < ntaken; ++i) {
            if (ops_.end(taken[i].ref)) {
                stats_.grants_ended.inc();
                tx_pages_.push_back(taken[i].gfn);
            } else {
                // Never published, yet mapped: only a backend guessing references does this.
                mark_broken("tx_grant_in_use");
            }
        }
        return drop(failure);
    }

    // xennet_make_first_txreq, the optional GSO extra, xennet_make_txreqs.
    netif_tx_request_t* prev = nullptr;
    for (unsigned i = 0; i < nspans; ++i) {
        unsigned id = tx_free_ids_.back();  // get_id_from_list
        tx_free_ids_.pop_back();
        TxSlot& s = tx_slots_[id];
        s.used = true;
        s.pending = false;
        s.ref = taken[i].ref;
        s.gfn = taken[i].gfn;
        tx_unpushed_.push_back(id);  // tx_pend_queue
        netif_tx_request_t req{};
        req.gref = taken[i].ref;
        req.offset = spans[i].offset;
        req.flags = 0;
        req.id = std::uint16_t(id);
        req.size = spans[i].size;
        if (i == 0) {
            req.size = std::uint16_t(len);  // "First request has the packet length."
            if (frame.csum_blank)
                req.flags |= NETTXF_csum_blank | NETTXF_data_validated;  // CHECKSUM_PARTIAL
            else if (frame.data_validated)
                req.flags |= NETTXF_data_validated;  // CHECKSUM_UNNECESSARY
            if (gso) req.flags |= NETTXF_extra_info;
        } else {
            prev->flags |= NETTXF_more_data;  // xennet_make_one_txreq
        }
        netif_tx_request_t* slot = RING_GET_REQUEST(&tx_, tx_.req_prod_pvt++);
        *slot = req;
        prev = slot;
        if (i == 0 && gso) {
            netif_extra_info_t extra{};
            extra.type = XEN_NETIF_EXTRA_TYPE_GSO;
            extra.flags = 0;
            extra.u.gso.size = frame.gso_size;
            extra.u.gso.type =
                frame.gso_type == GsoType::tcpv6 ? XEN_NETIF_GSO_TYPE_TCPV6 : XEN_NETIF_GSO_TYPE_TCPV4;
            extra.u.gso.pad = 0;
            extra.u.gso.features = 0;
            static_assert(sizeof(extra) <= sizeof(netif_tx_request_t), "extra info fits a tx slot");
            netif_tx_request_t* xslot = RING_GET_REQUEST(&tx_, tx_.req_prod_pvt++);
            std::memset(xslot, 0, sizeof(*xslot));
            std::memcpy(xslot, &extra, sizeof(extra));
            stats_.tx_gso_extras.inc();
        }
    }
    stats_.tx_packets.inc();
    stats_.tx_bytes.inc(len);
    stats_.tx_slots.inc(nspans);
    if (!(tx_in_flight() < kTxAvailableBelow)) tx_stopped_ = true;  // netif_tx_stop_queue
    return NetTxResult{NetTxVerdict::queued, needed, nspans};
}

bool NetifRingFrontend::transmit_raw(const std::vector<RawTxSlot>& slots) {
    if (!ready_ || broken_) return false;
    unsigned data = 0;
    for (const RawTxSlot& x : slots) data += x.extra ? 0 : 1;
    if (data > tx_free_ids_.size() || tx_.req_prod_pvt + slots.size() - tx_.rsp_cons > kTxRingSize)
        return false;
    for (const RawTxSlot& x : slots) {
        if (x.extra) {
            netif_tx_request_t* xslot = RING_GET_REQUEST(&tx_, tx_.req_prod_pvt++);
            std::memset(xslot, 0, sizeof(*xslot));
            std::memcpy(xslot, &x.info, sizeof(x.info));
            continue;
        }
        std::optional<std::uint64_t> pg = tx_page();
        if (!pg) return false;  // slots written so far stay (and are answered)
        std::memset(ops_.page(*pg), x.fill, kPageSize);
        grant_ref_t ref = 0;
        if (x.bogus_gref) {
            ref = *x.bogus_gref;
        } else {
            std::optional<grant_ref_t> r = ops_.grant(*pg, /*readonly=*/true);
            if (!r) {
                tx_pages_.push_back(*pg);
                return false;
            }
            stats_.grants_granted.inc();
            ref = *r;
        }
        unsigned id = tx_free_ids_.back();
        tx_free_ids_.pop_back();
        TxSlot& s = tx_slots_[id];
        s.used = true;
        s.pending = false;
        s.own_ref = !x.bogus_gref;
        s.ref = ref;
        s.gfn = *pg;
        tx_unpushed_.push_back(id);
        netif_tx_request_t req = x.req;
        req.gref = ref;
        req.id = std::uint16_t(id);
        *RING_GET_REQUEST(&tx_, tx_.req_prod_pvt++) = req;
    }
    return true;
}

std::uint64_t NetifRingFrontend::tx_responses_seen(std::int16_t status) const {
    return stats_.tx_responses.value(tx_status_name(status));
}

void NetifRingFrontend::publish_tx_producer(RING_IDX req_prod) {
    if (!ready_) return;
    xen_wmb();
    tx_.sring->req_prod = req_prod;
}

bool NetifRingFrontend::push_tx() {
    if (!ready_ || tx_.req_prod_pvt == tx_.sring->req_prod) return false;
    for (unsigned id : tx_unpushed_) tx_slots_[id].pending = true;  // xennet_mark_tx_pending
    tx_unpushed_.clear();
    int notify = 0;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&tx_, notify);
    (notify ? stats_.tx_notifications_sent : stats_.tx_notifications_suppressed).inc();
    stats_.tx_pushes.inc();
    stats_.tx_in_flight_sum.inc(tx_in_flight());
    stats_.tx_in_flight_peak.raise_to(tx_in_flight());
    return notify != 0;
}

// xennet_tx_buf_gc + xennet_maybe_wake_tx.
NetifRingFrontend::TxGc NetifRingFrontend::collect_tx() {
    TxGc r;
    if (!ready_ || broken_) return r;  // xennet_handle_tx: broken -> nothing
    int more = 0;
    do {
        RING_IDX prod = read_once(tx_.sring->rsp_prod);
        if (RING_RESPONSE_PROD_OVERFLOW(&tx_, prod)) {  // "Illegal number of responses"
            stats_.bogus_responses.inc();
            mark_broken("tx_prod_overflow");
            return r;
        }
        xen_rmb();  // see the responses up to prod
        for (RING_IDX cons = tx_.rsp_cons; cons != prod; ++cons) {
            r.work_done = true;
            ++r.responses;
            netif_tx_response_t rsp;
            RING_COPY_RESPONSE(&tx_, cons, &rsp);  // read once; only the copy is used
            stats_.tx_responses.inc(tx_status_name(rsp.status));
            if (rsp.status == NETIF_RSP_NULL) continue;
            if (rsp.id >= kTxRingSize) {  // "Response has incorrect id"
                stats_.bogus_responses.inc();
                mark_broken("tx_bad_id");
                return r;
            }
            TxSlot& s = tx_slots_[rsp.id];
            if (!s.used || !s.pending) {  // "Response for inactive request"
                stats_.bogus_responses.inc();
                mark_broken("tx_inactive_id");
                return r;
            }
            if (s.own_ref && !ops_.end(s.ref)) {  // "Grant still in use by backend domain"
                mark_broken("tx_grant_in_use");
                return r;
            }
            if (s.own_ref) {
                stats_.grants_ended.inc();
                ++r.grants_ended;
            }
            tx_free_slot(rsp.id);
        }
        tx_.rsp_cons = prod;
        RING_FINAL_CHECK_FOR_RESPONSES(&tx_, more);
    } while (more);
    if (tx_stopped_ && tx_in_flight() < kTxAvailableBelow) {  // netfront_tx_slot_available
        tx_stopped_ = false;
        r.wake = true;
    }
    return r;
}

// ----------------------------------------------------------------------------------------- receive

std::optional<NetifRingFrontend::RxBuf> NetifRingFrontend::rx_pool_get() {
    if (!rx_pool_.empty()) {
        RxBuf b = rx_pool_.back();
        rx_pool_.pop_back();
        return b;
    }
    if (rx_pages_ >= kRxMaxPages) return std::nullopt;
    std::optional<std::uint64_t> pg = ops_.alloc_page();
    if (!pg) return std::nullopt;
    ++rx_pages_;
    return RxBuf{*pg, std::nullopt};
}

void NetifRingFrontend::rx_pool_put(const RxBuf& b) { rx_pool_.push_back(b); }

std::optional<NetifRingFrontend::RxBuf> NetifRingFrontend::rx_take(RING_IDX i) {
    RxSlot& s = rx_slots_[i & kRxMask];
    if (!s.posted) return std::nullopt;  // grant_rx_ref[i] == INVALID_GRANT_REF
    s.posted = false;
    return s.buf;
}

void NetifRingFrontend::rx_move_slot(const RxBuf& b) {
    RING_IDX idx = rx_.req_prod_pvt;
    RxSlot& s = rx_slots_[idx & kRxMask];
    // BUG_ON(queue->rx_skbs[new]): consumption is in ring order, so the slot at req_prod_pvt was
    // taken before any buffer is moved there.
    if (s.posted) std::abort();
    s.posted = true;
    s.buf = b;
    netif_rx_request_t* req = RING_GET_REQUEST(&rx_, idx);
    req->id = std::uint16_t(idx & kRxMask);
    req->pad = 0;
    req->gref = *b.ref;
    rx_.req_prod_pvt = idx + 1;
}

bool NetifRingFrontend::rx_end_grant(RxBuf& b) {
    if (cfg_.rx_persistent_grants) return true;  // the page keeps its grant while pooled
    if (!ops_.end(*b.ref)) return false;
    stats_.grants_ended.inc();
    b.ref.reset();
    return true;
}

// xennet_alloc_rx_buffers.
NetifRingFrontend::RxRefill NetifRingFrontend::refill_rx() {
    RxRefill r;
    if (!ready_ || broken_) return r;
    bool err = false;
    unsigned free = kRxRingSize - (rx_.req_prod_pvt - rx_.rsp_cons);
    if (free >= std::max(1u, cfg_.rx_refill_batch)) {
        while (rx_.req_prod_pvt - rx_.rsp_cons < kRxRingSize) {
            std::optional<RxBuf> b = rx_pool_get();
            if (!b) {
                err = true;  // -ENOMEM
                break;
            }
            if (!b->ref) {
                std::optional<grant_ref_t> ref = ops_.grant(b->gfn, /*readonly=*/false);
                if (!ref) {
                    rx_pool_put(*b);
                    err = true;
                    break;
                }
                stats_.grants_granted.inc();
                ++r.grants;
                b->ref = *ref;
            }
            rx_move_slot(*b);  // the request at req_prod_pvt, id = xennet_rxidx(req_prod)
            ++r.posted;
        }
        stats_.rx_buffers_posted.inc(r.posted);
    }
    // "Try again later if there are not enough requests or skb allocation failed."
    if (rx_.req_prod_pvt - rx_.rsp_cons < kRxSlotsMin || err) {
        stats_.rx_refill_deferred.inc();
        r.retry_later = true;
        return r;
    }
    if (rx_.req_prod_pvt == rx_.sring->req_prod) return r;
    int notify = 0;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&rx_, notify);
    (notify ? stats_.rx_notifications_sent : stats_.rx_notifications_suppressed).inc();
    r.notify = notify != 0;
    return r;
}

// xennet_get_responses with xennet_get_extras. Leaves rsp_cons where Linux leaves it: on error one
// past the packet; on success at its first slot or last extra (fill_frags moves it on).
void NetifRingFrontend::get_responses(const netif_rx_response_t& first, RING_IDX rp, Gathered& g) {
    g.error = nullptr;
    g.broken = false;
    g.pieces.clear();
    g.gso.reset();
    g.slots = 0;
    auto fail = [&g](const char* why) {
        if (!g.error) g.error = why;  // the first reason is the one counted
    };
    netif_rx_response_t rx = first;
    const int max = XEN_NETIF_NR_SLOTS_MIN + (rx.status <= int(kRxCopyThreshold) ? 1 : 0);
    RING_IDX cons = rx_.rsp_cons;
    std::optional<RxBuf> buf = rx_take(cons);

    if (rx.flags & NETRXF_extra_info) {
        // xennet_get_extras: each extra's buffer goes back on the ring as it is.
        netif_extra_info_t extra{};
        do {
            if (cons + 1 == rp) {
                fail("missing_extra");
                break;
            }
            ++cons;
            RING_COPY_RESPONSE(&rx_, cons, &extra);
            stats_.rx_extra_slots.inc();
            if (!extra.type || extra.type >= XEN_NETIF_EXTRA_TYPE_MAX)
                fail("invalid_extra_type");
            else if (extra.type == XEN_NETIF_EXTRA_TYPE_GSO)
                g.gso = extra;
            if (std::optional<RxBuf> eb = rx_take(cons)) rx_move_slot(*eb);
        } while (extra.flags & XEN_NETIF_EXTRA_FLAG_MORE);
        rx_.rsp_cons = cons;
    }

    unsigned slots = 1;
    for (;;) {
        if (!buf) {
            fail("bad_id");  // "Bad rx response id": no buffer posted in this slot
        } else if (rx.status < 0 || unsigned(rx.offset) + unsigned(rx.status) > kPageSize) {
            fail(rx.status < 0 ? "negative_status" : "offset_size");
            rx_move_slot(*buf);
        } else {
            if (!rx_end_grant(*buf)) {  // "Grant still in use by backend domain"
                mark_broken("rx_grant_in_use");
                g.broken = true;
                rx_pool_put(*buf);  // the page is ours; the device is dead anyway
                return;
            }
            g.pieces.push_back({*buf, rx.offset, std::uint16_t(rx.status)});
            stats_.rx_slots.inc();
        }
        if (!(rx.flags & NETRXF_more_data)) break;
        if (cons + slots == rp) {
            fail("need_more_slots");
            break;
        }
        RING_COPY_RESPONSE(&rx_, cons + slots, &rx);
        buf = rx_take(cons + slots);
        ++slots;
    }
    if (int(slots) > max) fail("too_many_slots");
    g.slots = slots;
    if (g.error) rx_.rsp_cons = cons + slots;
}

// xennet_fill_frags: the first slot is frags[0] with pull_to = min(status, RX_COPY_THRESHOLD)
// bytes to be pulled into the linear area; once MAX_SKB_FRAGS are in use __pskb_pull_tail pulls
// them, which frees every frag it empties (and any of size 0) unless it only trims the first.
bool NetifRingFrontend::fill_frags(std::int16_t first_status, const std::vector<Piece>& pieces) {
    RING_IDX cons = rx_.rsp_cons;
    std::vector<unsigned>& frags = frag_sizes_;
    frags.clear();
    frags.push_back(pieces.front().size);
    unsigned headlen = 0;
    const unsigned pull_to = std::min<unsigned>(unsigned(first_status), kRxCopyThreshold);
    for (std::size_t k = 1; k < pieces.size(); ++k) {
        ++cons;
        if (frags.size() == kMaxSkbFrags) {
            unsigned eat = pull_to - headlen;  // BUG_ON(pull_to < skb_headlen(skb)) cannot fire
            headlen = pull_to;
            std::size_t keep = 0;
            for (std::size_t i = 0; i < frags.size(); ++i) {
                if (frags[i] <= eat) {
                    eat -= frags[i];
                } else {
                    frags[keep] = frags[i];
                    if (eat) {
                        frags[keep] -= eat;
                        eat = 0;
                        if (i == 0) {  // `goto end`: only the first frag trimmed
                            keep = frags.size();
                            break;
                        }
                    }
                    ++keep;
                }
            }
            frags.resize(keep);
        }
        if (frags.size() >= kMaxSkbFrags) {
            rx_.rsp_cons = cons + 1 + RING_IDX(pieces.size() - 1 - k);
            return false;
        }
        frags.push_back(pieces[k].size);
    }
    rx_.rsp_cons = cons;
    return true;
}

// skb_checksum_setup's parse (see the header): can the L4 checksum be located?
bool NetifRingFrontend::checksum_setup_ok(const EthernetFrame& f) const {
    const std::vector<std::uint8_t>& b = f.bytes;
    if (!f.has_header()) return false;
    std::size_t l3 = kEthHeaderLen, l4 = 0;
    std::uint8_t proto = 0;
    if (f.ethertype() == kEtherTypeIpv4) {
        if (b.size() < l3 + 20) return false;
        std::size_t ihl = std::size_t(b[l3] & 0x0f) * 4;
        if (ihl < 20 || b.size() < l3 + ihl) return false;
        if (((b[l3 + 6] << 8 | b[l3 + 7]) & 0x3fff) != 0) return false;  // ip_is_fragment: -EPROTO
        proto = b[l3 + 9];
        l4 = l3 + ihl;
    } else if (f.ethertype() == kEtherTypeIpv6) {
        if (b.size() < l3 + 40) return false;
        proto = b[l3 + 6];
        l4 = l3 + 40;
    } else {
        return false;
    }
    if (proto == 6) return b.size() >= l4 + 20;  // IPPROTO_TCP: sizeof(struct tcphdr)
    if (proto == 17) return b.size() >= l4 + 8;  // IPPROTO_UDP: sizeof(struct udphdr)
    return false;
}

// xennet_poll.
NetifRingFrontend::RxPoll NetifRingFrontend::poll(unsigned budget) {
    RxPoll out;
    if (!ready_ || broken_) return out;
    RING_IDX rp = read_once(rx_.sring->rsp_prod);
    if (RING_RESPONSE_PROD_OVERFLOW(&rx_, rp)) {  // "Illegal number of responses"
        stats_.bogus_responses.inc();
        mark_broken("rx_prod_overflow");
        return out;
    }
    xen_rmb();  // see the responses up to rp
    stats_.rx_polls.inc();
    stats_.rx_waiting_sum.inc(rp - rx_.rsp_cons);
    stats_.rx_waiting_peak.raise_to(rp - rx_.rsp_cons);
    {
        // Buffers the backend can still fill: posted and not yet answered (a backend answering
        // more than was posted leaves none).
        const unsigned waiting = rp - rx_.rsp_cons;
        const unsigned empty = rx_posted() > waiting ? rx_posted() - waiting : 0;
        stats_.rx_empty_sum.inc(empty);
        stats_.rx_no_buffer_peak.raise_to(kRxRingSize - std::min<unsigned>(empty, kRxRingSize));
    }

    unsigned work_done = 0, dropped_late = 0;
    const RING_IDX cons_before = rx_.rsp_cons;
    const std::uint64_t ended_before = stats_.grants_ended.value();
    RING_IDX i = rx_.rsp_cons;
    Gathered& g = gathered_;
    while (i != rp && work_done < budget) {
        netif_rx_response_t first;
        RING_COPY_RESPONSE(&rx_, i, &first);  // read once; only the copy is used
        get_responses(first, rp, g);
        if (g.broken) {
            rx_unconsumed_ = read_once(rx_.sring->rsp_prod) - rx_.rsp_cons;
            return out;  // Linux returns 0 at once: no refill, no final check
        }
        const char* error = g.error;
        if (!error && g.gso) {
            // xennet_set_skb_gso
            const netif_extra_info_t& x = *g.gso;
            if (!x.u.gso.size ||
                (x.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 && x.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)) {
                error = "bad_gso";
                rx_.rsp_cons += RING_IDX(g.pieces.size());
            }
        }
        if (!error && !fill_frags(first.status, g.pieces)) error = "too_many_frags";
        if (error) {
            // err: the packet's buffers are freed (their grants already ended), rx_errors++.
            for (const Piece& p : g.pieces) rx_pool_put(p.buf);
            stats_.rx_errors.inc(error);
            ++out.errors;
            i = rx_.rsp_cons;
            continue;
        }

        RxPacket pkt;
        EthernetFrame& f = pkt.frame;
        std::size_t total = 0;
        for (const Piece& p : g.pieces) total += p.size;
        f.bytes.resize(total);
        std::size_t at = 0;
        for (const Piece& p : g.pieces) {  // offset + size <= 4096, checked on the copy
            std::memcpy(f.bytes.data() + at, ops_.page(p.buf.gfn) + p.offset, p.size);
            at += p.size;
        }
        if (first.flags & NETRXF_csum_blank)
            f.csum_blank = true;  // CHECKSUM_PARTIAL
        else if (first.flags & NETRXF_data_validated)
            f.data_validated = true;  // CHECKSUM_UNNECESSARY
        if (g.gso) {
            f.gso_size = g.gso->u.gso.size;
            f.gso_type = g.gso->u.gso.type == XEN_NETIF_GSO_TYPE_TCPV4 ? GsoType::tcpv4 : GsoType::tcpv6;
        }
        pkt.slots = unsigned(g.pieces.size());
        i = rx_.rsp_cons + 1;
        rx_.rsp_cons = i;
        ++work_done;

        // handle_incoming_queue -> checksum_setup.
        if (f.gso_size && !f.csum_blank) {
            stats_.rx_gso_checksum_fixup.inc();
            f.csum_blank = true;
            f.data_validated = false;
        }
        if (f.csum_blank && !checksum_setup_ok(f)) {
            for (const Piece& p : g.pieces) rx_pool_put(p.buf);
            stats_.rx_errors.inc("checksum_setup");
            ++out.errors;
            ++dropped_late;
            continue;
        }
        if (cfg_.rx_deferred_release) {
            std::vector<RxBuf>& held = held_[next_handle_];
            for (const Piece& p : g.pieces) held.push_back(p.buf);
            pkt.release = next_handle_++;
            if (next_handle_ == 0) next_handle_ = 1;
        } else {
            for (const Piece& p : g.pieces) rx_pool_put(p.buf);
        }
        stats_.rx_packets.inc();
        stats_.rx_bytes.inc(total);
        out.packets.push_back(std::move(pkt));
    }
    work_done -= dropped_late;  // work_done -= handle_incoming_queue(...)
    out.responses = unsigned(rx_.rsp_cons - cons_before);
    out.grants_ended = unsigned(stats_.grants_ended.value() - ended_before);

    out.refill = refill_rx();
    if (work_done < budget) {
        int more = 0;
        out.complete = true;  // napi_complete_done
        RING_FINAL_CHECK_FOR_RESPONSES(&rx_, more);
        out.more = more != 0;
    }
    rx_unconsumed_ = read_once(rx_.sring->rsp_prod) - rx_.rsp_cons;  // xennet_set_rx_rsp_cons
    return out;
}

void NetifRingFrontend::release_rx(std::uint32_t handle) {
    auto it = held_.find(handle);
    if (it == held_.end()) return;
    for (const RxBuf& b : it->second) rx_pool_put(b);
    held_.erase(it);
}

// xennet_handle_rx.
NetifRingFrontend::RxIrq NetifRingFrontend::rx_interrupt() {
    RxIrq r;
    if (!ready_ || broken_) return r;
    RING_IDX work = read_once(rx_.sring->rsp_prod) - rx_.rsp_cons;  // XEN_RING_NR_UNCONSUMED_RESPONSES
    if (work > rx_unconsumed_) {
        rx_unconsumed_ = work;
        r.spurious = false;
    } else if (work < rx_unconsumed_) {  // "RX producer index going backwards"
        mark_broken("rx_prod_backwards");
        return r;
    }
    r.schedule = work != 0;
    return r;
}

std::vector<grant_ref_t> NetifRingFrontend::disconnect() {
    std::vector<grant_ref_t> still_mapped;
    if (!ready_) return still_mapped;
    // gnttab_end_foreign_access: a page the backend still maps goes with the deferred free and is
    // never reused here.
    auto end = [&](grant_ref_t ref) {
        if (ops_.end(ref)) {
            stats_.grants_ended.inc();
            return true;
        }
        still_mapped.push_back(ref);
        return false;
    };
    for (unsigned id = 0; id < kTxRingSize; ++id) {  // xennet_release_tx_bufs
        TxSlot& s = tx_slots_[id];
        if (!s.used) continue;
        bool ended = !s.own_ref || end(s.ref);
        tx_free_slot(id);
        if (!ended) tx_pages_.pop_back();  // the page tx_free_slot just pooled
    }
    tx_unpushed_.clear();
    std::vector<RxBuf> all;
    all.swap(rx_pool_);
    for (RxSlot& s : rx_slots_)  // xennet_release_rx_bufs
        if (s.posted) {
            s.posted = false;
            all.push_back(s.buf);
        }
    for (auto& h : held_) all.insert(all.end(), h.second.begin(), h.second.end());
    held_.clear();
    for (RxBuf& b : all) {
        if (b.ref && !end(*b.ref)) {
            --rx_pages_;
            continue;
        }
        b.ref.reset();
        rx_pool_.push_back(b);
    }
    ready_ = false;
    tx_stopped_ = false;
    rx_unconsumed_ = 0;
    return still_mapped;
}

std::size_t NetifRingFrontend::grants_live() const {
    std::size_t n = 0;
    for (const TxSlot& s : tx_slots_)
        if (s.used && s.own_ref) ++n;
    for (const RxSlot& s : rx_slots_)
        if (s.posted && s.buf.ref) ++n;
    for (const RxBuf& b : rx_pool_)
        if (b.ref) ++n;
    for (const auto& h : held_)
        for (const RxBuf& b : h.second)
            if (b.ref) ++n;
    return n;
}

}  // namespace xensim
