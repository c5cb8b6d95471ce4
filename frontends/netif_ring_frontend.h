// The ring side of netfront: frames into netif transmit requests, receive responses into frames.
//
// The problem. A guest's netfront owns one transmit ring and one receive ring per queue (each a
// shared page it initialises) and must describe every byte it sends and every buffer it offers
// through grants. A frame to send is cut into slots that never cross a page, each with its own
// request id and read-only grant, and the backend answers each id once; buffers for receiving are
// posted empty with writable grants and come back filled, a packet possibly spread over several
// of them with extra-info slots between. The backend may write anything into the responses, so
// each is copied once, checked, and never allowed to make the driver read or write outside the
// pages it owns. This engine is that part of netfront with no SystemC, no xenbus and no event
// channel: grants and pages are the caller's (the future `Netfront` driver over XenGuest), passed
// as GrantOps callbacks so tests can fake them; the engine reports what it did (notify needed,
// responses and grants handled, whether the queue may be woken, whether NAPI must poll again)
// and the caller makes the hypercalls and charges the cycles.
//
// What is modelled: one queue of Linux 6.1 drivers/net/xen-netfront.c over xen/io/netif.h:
//  * Set-up (setup_netfront): two fresh pages, SHARED_RING_INIT + FRONT_RING_INIT; their frames
//    (tx_ring_gfn / rx_ring_gfn) are for the caller to grant and write as tx-ring-ref / rx-ring-ref.
//    NET_TX_RING_SIZE = NET_RX_RING_SIZE = __CONST_RING_SIZE(netif_tx, 4096) = 256.
//  * transmit (xennet_start_xmit, xennet_count_skb_slots, xennet_make_first_txreq,
//    xennet_make_txreqs, xennet_tx_setup_grant): the frame is laid into pages the engine owns (the
//    layout below), one slot per page piece, each with an id from the free list (get_id_from_list,
//    LIFO as tx_skb_freelist) and a read-only grant; the first slot's size is the whole packet
//    length; NETTXF_more_data on every slot but the last; CHECKSUM_PARTIAL (frame.csum_blank) ->
//    NETTXF_csum_blank | NETTXF_data_validated, CHECKSUM_UNNECESSARY (frame.data_validated) ->
//    NETTXF_data_validated; a GSO frame (gso_size != 0) gets NETTXF_extra_info and a
//    XEN_NETIF_EXTRA_TYPE_GSO slot right after the first. Dropped as xennet_start_xmit drops (and
//    counted by reason): no carrier (before setup, after disconnect), a broken device, an empty
//    frame, len > XEN_NETIF_MAX_TX_SIZE, more than one slot without feature-sg, a GSO type whose
//    feature was not negotiated (netif_needs_gso). After queueing,
//    the queue stops when !netfront_tx_slot_available (in flight >= 256 - 18 - 1 = 237); a frame
//    offered to a stopped queue is refused (NetTxVerdict::busy: the stack would not have called).
//  * push_tx: xennet_mark_tx_pending then RING_PUSH_REQUESTS_AND_CHECK_NOTIFY; a response may only
//    name an id that was pushed (tx_link[id] == TX_PENDING).
//  * collect_tx (xennet_tx_buf_gc): rsp_prod read once; RING_RESPONSE_PROD_OVERFLOW, an id >= 256,
//    an id not pending, or a grant the backend still maps (gnttab_end_foreign_access_ref false)
//    marks the device broken ("don't trust the backend response data", 6.1) and stops; each
//    response copied once; XEN_NETIF_RSP_NULL (the answer to an extra slot) skipped; statuses
//    counted; the id and its page freed; RING_FINAL_CHECK_FOR_RESPONSES loop; the queue is woken
//    when stopped and slots are available again (xennet_maybe_wake_tx).
//  * refill_rx (xennet_alloc_rx_buffers): posts a buffer page with a writable grant in every free
//    slot, request id = ring index (xennet_rxidx), then pushes only if at least NET_RX_SLOTS_MIN
//    (XEN_NETIF_NR_SLOTS_MIN + 1 = 19) requests are outstanding and no allocation failed;
//    otherwise nothing is pushed and retry_later asks the caller for rx_refill_timer (HZ/10).
//  * poll (xennet_poll + xennet_get_responses, xennet_get_extras, xennet_set_skb_gso,
//    xennet_fill_frags, handle_incoming_queue/checksum_setup): rsp_prod read once
//    (RING_RESPONSE_PROD_OVERFLOW -> broken); up to `budget` packets; each response copied once;
//    the buffer is found by ring index (Linux ignores rx->id, netif.h's NOTE); a slot without a
//    posted buffer ("Bad rx response id"), status < 0 or offset + status > 4096 (the buffer is
//    re-posted as is: xennet_move_rx_slot), missing or invalid extra info, a packet running past
//    rsp_prod ("Need more slots"), more than XEN_NETIF_NR_SLOTS_MIN (+1 when the first slot holds
//    <= RX_COPY_THRESHOLD bytes) slots, a bad GSO extra, more frags than MAX_SKB_FRAGS (17, the
//    first slot's frag pulled into the linear area when it holds <= 256 bytes), a csum_blank frame
//    skb_checksum_setup cannot parse: the packet is dropped and counted (rx_errors, by reason); the
//    slots are consumed as Linux consumes them. A grant still mapped at end marks the device broken.
//    Extra-info slots' buffers are re-posted as they are (xennet_get_extras). A GSO packet without
//    NETRXF_csum_blank is made CHECKSUM_PARTIAL (rx_gso_checksum_fixup). Then refill_rx, and below
//    budget RING_FINAL_CHECK_FOR_RESPONSES (napi_complete_done): `more` says to poll again.
//  * rx_interrupt (xennet_handle_rx): unconsumed responses counted; a producer going backwards
//    marks the device broken; says whether NAPI is to be scheduled and whether the event was
//    spurious (lateeoi).
//  * disconnect (xennet_disconnect_backend -> xennet_release_tx_bufs / xennet_release_rx_bufs):
//    every grant held is ended; those the backend still maps are returned for deferred freeing
//    and their pages never reused.
//
// The caller's sequence, as Linux 6.1 does it: xennet_start_xmit pushes every frame (no xmit_more
// batching in 6.1) and then runs xennet_tx_buf_gc, so a Linux-profile driver calls transmit,
// push_tx and collect_tx per frame; the tx interrupt runs collect_tx (work_done = not spurious);
// the rx interrupt runs rx_interrupt and, when it says so, NAPI runs poll(64) and sends the event
// when poll's refill says notify; connect runs setup, refill_rx (+ notify) and grants the rings.
//
// The TX layout (ours; Linux grants the sk_buff's own pages where they are): the first
// min(len, tx_head_bytes) bytes go at offset kTxHeadOffset (NET_SKB_PAD) of a page of their own, as
// a TCP skb keeps its headers in the linear area; the rest in page-sized pieces from offset 0 of
// further pages, as the payload's page frags (Linux's frags start anywhere in a 32 KiB page_frag,
// so a 1448-byte payload there sometimes takes two slots; here it always takes one). Without
// feature-sg the whole frame is linear at kTxHeadOffset: it must fit that page (a one-slot frame),
// as a kmalloc'd skb head of at most 2 KiB does. Every slot has its own page, freed when its
// response arrives. The frame is copied into the pages; Linux copies nothing (it grants the
// skb's pages), so the copy is bookkeeping and not to be charged.
//
// Profile knobs (NetifFrontendConfig; defaults are Linux 6.1's):
//  * rx_deferred_release: buffers of delivered packets are held until release_rx(handle), as GPLPV's
//    xennet holds its page buffers until NDIS returns the NET_BUFFER_LIST (put_pb_on_freelist);
//    meanwhile refill posts other pages, allocating new ones when the pool is empty, as
//    get_pb_from_freelist does. Linux hands its pages to the stack and refills with new ones,
//    modelled as immediate reuse of the page (its grant is still ended and a new one made).
//  * rx_refill_batch: refill only when at least this many slots are free (Linux 1: every poll;
//    GPLPV's XenNet_FillRing: rx_target / 4 = 64).
//  * rx_persistent_grants: a buffer page is granted once and keeps its grant while pooled (GPLPV's
//    page buffers keep pb->gref); Linux grants each posted buffer anew and ends it on receipt.
//
// Where it deliberately differs from Linux 6.1:
//  * No page pool, XDP, bounce buffers (trusted backend), per-queue locks or timers: the caller
//    arms the refill timer when refill_rx says retry_later. Received bytes are copied out of the
//    buffer pages into the EthernetFrame (Linux attaches the pages as frags and pulls at most 256
//    bytes); copy-only rx, as 6.1 requires request-rx-copy.
//  * xennet_fill_frags reads each response a second time from the shared ring; here the copies
//    validated by get_responses are used (read once).
//  * An extra-info slot without a posted buffer is skipped where Linux would post a request with
//    INVALID_GRANT_REF (xennet_move_rx_slot of a NULL skb).
//  * skb_checksum_setup is modelled as its parse only: an IPv4 (not a fragment) or IPv6 frame whose
//    next header is TCP or UDP with the L4 header present; IPv6 extension headers are not walked
//    (such a frame is dropped here); the pseudo-header checksum is not recomputed for the GSO fixup.
//  * Grant or page shortage on transmit (Linux pre-claims NET_TX_RING_SIZE references and sends
//    the skb's own pages, so it cannot fail there) drops the frame (counted as no_grant / no_page).
//  * GPLPV's XenNet_FillRing pushes whatever it could post; the refill here keeps Linux's rule (no
//    push below NET_RX_SLOTS_MIN or after an allocation failure) for every profile.
//  * The RX pool is bounded at kRxMaxPages (GPLPV's RX_MAX_PB_FREELIST, 4 rings' worth), so a
//    caller that never releases cannot grow it without bound.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "frontends/grant_ops.h"
#include "sim/core/ethernet.h"
#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

#include <xen/io/netif.h>

namespace xensim {

struct NetifFrontendConfig {
    bool feature_sg = false;         // feature-sg negotiated (NETIF_F_SG): frames may take many slots
    bool feature_gso_tcpv4 = false;  // feature-gso-tcpv4 (NETIF_F_TSO)
    bool feature_gso_tcpv6 = false;  // feature-gso-tcpv6 (NETIF_F_TSO6)
    // With feature-sg: bytes of a frame in its linear head (the first slot); the rest goes in
    // page-sized frags. 14 .. 4096 - kTxHeadOffset.
    unsigned tx_head_bytes = 128;
    bool rx_deferred_release = false;   // see the header comment (GPLPV: true)
    unsigned rx_refill_batch = 1;       // refill when at least this many slots are free (GPLPV: 64)
    bool rx_persistent_grants = false;  // buffer pages keep their grant while pooled (GPLPV: true)
};

enum class NetTxVerdict {
    queued,   // requests written (published by push_tx)
    dropped,  // not sent and counted, as xennet_start_xmit's `goto drop`
    busy,     // the queue is stopped: retry after collect_tx says wake
};

// What transmit did: the verdict and, when queued, the work to price.
struct NetTxResult {
    NetTxVerdict verdict = NetTxVerdict::dropped;
    unsigned requests = 0;  // ring slots written: data slots + the GSO extra
    unsigned grants = 0;    // read-only grants made (one per data slot)
    bool operator==(NetTxVerdict v) const { return verdict == v; }
    bool operator!=(NetTxVerdict v) const { return verdict != v; }
};

class NetifRingFrontend {
  public:
    static constexpr unsigned kPageSize = 4096;
    static constexpr unsigned kTxRingSize = __CONST_RING_SIZE(netif_tx, 4096);  // NET_TX_RING_SIZE
    static constexpr unsigned kRxRingSize = __CONST_RING_SIZE(netif_rx, 4096);  // NET_RX_RING_SIZE
    static constexpr unsigned kTxHeadOffset = 64;                               // NET_SKB_PAD
    static constexpr unsigned kRxSlotsMin = XEN_NETIF_NR_SLOTS_MIN + 1;         // NET_RX_SLOTS_MIN
    static constexpr unsigned kRxCopyThreshold = 256;                           // RX_COPY_THRESHOLD
    static constexpr unsigned kMaxSkbFrags = 17;                                // MAX_SKB_FRAGS, 4 KiB pages
    static constexpr unsigned kMaxTxSlots = 65536 / kPageSize + 1 + 1;          // MAX_XEN_SKB_FRAGS + 1
    // netfront_tx_slot_available: in flight below this.
    static constexpr unsigned kTxAvailableBelow = kTxRingSize - XEN_NETIF_NR_SLOTS_MIN - 1;
    static constexpr unsigned kRxMaxPages = 4 * kRxRingSize;

    // A config outside its documented ranges throws std::invalid_argument.
    NetifRingFrontend(NetifFrontendConfig cfg, GrantOps ops, StatsGroup& stats);
    NetifRingFrontend(const NetifRingFrontend&) = delete;
    NetifRingFrontend& operator=(const NetifRingFrontend&) = delete;

    // setup_netfront: allocates and initialises both ring pages; false when a page cannot be had.
    // After disconnect() it initialises the same two pages again (the caller grants them anew).
    bool setup();
    std::uint64_t tx_ring_gfn() const { return tx_ring_gfn_; }
    std::uint64_t rx_ring_gfn() const { return rx_ring_gfn_; }

    // ---- transmit ----
    NetTxResult transmit(const EthernetFrame& frame);
    // Publishes the requests queued since the last push; true = notify the backend.
    bool push_tx();
    struct TxGc {
        bool work_done = false;  // responses consumed (the interrupt was not spurious)
        bool wake = false;       // the stopped queue may be woken (netif_tx_wake_queue)
        unsigned responses = 0;  // including XEN_NETIF_RSP_NULL ones
        unsigned grants_ended = 0;
    };
    TxGc collect_tx();
    // Writes requests a correct netfront never would (tests and frontends/netif_misbehaviour.h):
    // each RawTxSlot becomes one ring slot at req_prod_pvt, published by the next push_tx. A data
    // slot takes an id from the free list and a fresh page granted read-only (filled with `fill`),
    // unless `bogus_gref` names a reference the engine never granted (it is then not ended when
    // answered); an `extra` slot is written as given (no id, no response but NETIF_RSP_NULL).
    // False (nothing written) when ids, pages or grants run short, or the ring has no room.
    struct RawTxSlot {
        netif_tx_request_t req{};  // gref and id are the engine's unless bogus_gref
        bool extra = false;
        netif_extra_info_t info{};  // extra: the slot's contents
        std::optional<grant_ref_t> bogus_gref;
        std::uint8_t fill = 0;
    };
    bool transmit_raw(const std::vector<RawTxSlot>& slots);
    // Publishes req_prod as given (no request written): a producer the backend must refuse.
    void publish_tx_producer(RING_IDX req_prod);
    RING_IDX tx_req_prod_pvt() const { return tx_.req_prod_pvt; }
    // TX responses seen with this status (the tx_responses counter family).
    std::uint64_t tx_responses_seen(std::int16_t status) const;
    bool tx_stopped() const { return tx_stopped_; }
    unsigned tx_in_flight() const { return tx_.req_prod_pvt - tx_.rsp_cons; }

    // ---- receive ----
    struct RxRefill {
        unsigned posted = 0;       // buffers newly posted
        unsigned grants = 0;       // writable grants made for them (none for a persistent one)
        bool notify = false;       // the push asks for an event to the backend
        bool retry_later = false;  // nothing pushed: arm the refill timer and call again
    };
    RxRefill refill_rx();
    struct RxPacket {
        EthernetFrame frame;
        unsigned slots = 0;         // data slots the packet took
        std::uint32_t release = 0;  // rx_deferred_release: the handle for release_rx
    };
    struct RxPoll {
        std::vector<RxPacket> packets;  // at most budget
        unsigned errors = 0;            // packets dropped (rx_errors)
        unsigned responses = 0;         // ring slots consumed (data, extra and dropped ones)
        unsigned grants_ended = 0;      // buffer grants ended (none with rx_persistent_grants)
        bool complete = false;          // under budget: napi_complete_done ran
        bool more = false;              // complete, and RING_FINAL_CHECK found responses: poll again
        RxRefill refill;
    };
    RxPoll poll(unsigned budget);
    // rx_deferred_release: the upper layer is done with a delivered packet; its buffers return to
    // the pool and are posted by the next refill (not done here). Unknown handles are ignored.
    void release_rx(std::uint32_t handle);
    struct RxIrq {
        bool schedule = false;  // responses await: napi_schedule
        bool spurious = true;   // no new responses since the last look (XEN_EOI_FLAG_SPURIOUS)
    };
    RxIrq rx_interrupt();

    // xennet_disconnect_backend (xennet_release_tx_bufs, xennet_release_rx_bufs): ends every grant
    // the engine holds (tx slots in flight, posted, pooled and held rx buffers); the rings go
    // quiet: transmit drops (no carrier), poll and collect do nothing. Returns the references the
    // backend still maps, which Linux hands to gnttab's deferred free (the caller's, here); the
    // ring pages' own grants are the caller's to end.
    std::vector<grant_ref_t> disconnect();

    bool broken() const { return broken_; }
    unsigned rx_posted() const { return rx_.req_prod_pvt - rx_.rsp_cons; }
    std::size_t rx_held_packets() const { return held_.size(); }
    std::size_t rx_pages() const { return rx_pages_; }
    // Grants this engine holds (tx slots in flight, posted rx buffers, persistent rx buffers).
    std::size_t grants_live() const;

  private:
    struct TxSlot {
        bool used = false;
        bool pending = false;  // pushed: a response may name it (TX_PENDING)
        bool own_ref = true;   // false: transmit_raw's bogus reference, not to be ended
        grant_ref_t ref = 0;
        std::uint64_t gfn = 0;
    };
    struct RxBuf {
        std::uint64_t gfn = 0;
        std::optional<grant_ref_t> ref;  // granted now
    };
    struct RxSlot {
        bool posted = false;
        RxBuf buf;
    };
    struct Piece {  // one validated data slot of a received packet
        RxBuf buf;
        std::uint16_t offset = 0, size = 0;
    };
    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter tx_packets, tx_bytes, tx_slots, tx_gso_extras, tx_busy, tx_notifications_sent,
            tx_notifications_suppressed;
        CounterFamily tx_dropped, tx_responses;
        Counter rx_packets, rx_bytes, rx_slots, rx_extra_slots, rx_buffers_posted, rx_refill_deferred,
            rx_notifications_sent, rx_notifications_suppressed, rx_gso_checksum_fixup;
        CounterFamily rx_errors;
        Counter grants_granted, grants_ended, bogus_responses;
        CounterFamily broken;
        // Ring occupancy, sampled: after each push that published requests (tx), and as each poll
        // finds the ring (rx). A mean is a sum over its samples; a peak is over the whole run.
        Counter tx_pushes, tx_in_flight_sum, tx_in_flight_peak;
        Counter rx_polls, rx_waiting_sum, rx_waiting_peak, rx_empty_sum, rx_no_buffer_peak;
    };

    struct Gathered {                 // what xennet_get_responses collected for one packet
        const char* error = nullptr;  // the rx_errors label, or nullptr
        bool broken = false;
        std::vector<Piece> pieces;  // the data slots whose grants were ended, in order
        std::optional<netif_extra_info_t> gso;
        unsigned slots = 0;  // data slots
    };
    void get_responses(const netif_rx_response_t& first, RING_IDX rp, Gathered& g);
    // xennet_fill_frags' MAX_SKB_FRAGS limit over the validated pieces; sets rsp_cons as Linux.
    bool fill_frags(std::int16_t first_status, const std::vector<Piece>& pieces);
    void mark_broken(const char* why);
    std::optional<std::uint64_t> tx_page();
    void tx_free_slot(unsigned id);
    // xennet_get_rx_skb + xennet_get_rx_ref: takes the buffer posted at ring index i, if any.
    std::optional<RxBuf> rx_take(RING_IDX i);
    void rx_move_slot(const RxBuf& b);  // xennet_move_rx_slot
    void rx_pool_put(const RxBuf& b);
    bool rx_end_grant(RxBuf& b);  // false: still mapped (broken)
    std::optional<RxBuf> rx_pool_get();
    bool checksum_setup_ok(const EthernetFrame& f) const;

    NetifFrontendConfig cfg_;
    GrantOps ops_;
    netif_tx_front_ring_t tx_{};
    netif_rx_front_ring_t rx_{};
    std::uint64_t tx_ring_gfn_ = 0, rx_ring_gfn_ = 0;
    bool have_ring_pages_ = false;
    bool ready_ = false;
    bool broken_ = false;

    std::vector<TxSlot> tx_slots_;
    std::vector<unsigned> tx_free_ids_;  // back() is the head of tx_skb_freelist
    std::vector<unsigned> tx_unpushed_;  // tx_pend_queue
    std::vector<std::uint64_t> tx_pages_;
    bool tx_stopped_ = false;

    std::vector<RxSlot> rx_slots_;  // by ring index & (kRxRingSize - 1): rx_skbs + grant_rx_ref
    std::vector<RxBuf> rx_pool_;
    std::size_t rx_pages_ = 0;  // pages owned for receiving: posted, pooled, held
    std::map<std::uint32_t, std::vector<RxBuf>> held_;
    std::uint32_t next_handle_ = 1;
    RING_IDX rx_unconsumed_ = 0;        // rx_rsp_unconsumed
    Gathered gathered_;                 // poll scratch, reused
    std::vector<unsigned> frag_sizes_;  // fill_frags scratch, reused

    Stats stats_;
};

}  // namespace xensim
