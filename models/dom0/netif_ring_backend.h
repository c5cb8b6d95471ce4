// The ring side of netback: one xenvif queue's TX and RX rings, driven by a frontend that may
// write anything into them.
//
// The problem. A netfront guest and dom0's netback share two single-page rings per queue: on TX
// the guest posts netif_tx_request slots describing a packet scattered over granted pages (first
// slot: total size; NETTXF_more_data chains further slots; NETTXF_extra_info is followed by
// netif_extra_info slots such as GSO), on RX the guest posts empty granted pages that netback
// fills by grant copy. The guest owns the requests and req_prod and can rewrite them at any time,
// so every ring entry is copied out once (RING_COPY_REQUEST) and only the private copy is
// validated and used. Linux netback never touches guest memory directly: it builds arrays of grant
// operations, issues each array as ONE batched hypercall, and finishes the work from the results.
// This engine is exactly that part, with no SystemC and no hypercalls: it builds the arrays
// (gnttab_copy_t, gnttab_map_grant_ref_t, gnttab_unmap_grant_ref_t of xen/grant_table.h), the
// caller (the SystemC Netback) executes each array as one GNTTABOP_* call, writes the statuses
// (and map handles) in place and hands back host pointers of the pages it mapped, and the engine
// checks the results, assembles EthernetFrames and writes the responses.
//
// What is modelled, following Linux 6.1 drivers/net/xen-netback/{netback.c,rx.c,interface.c}:
//  * Attach (xenvif_map_frontend_data_rings): BACK_RING_ATTACH at the shared rsp_prod; req_prod
//    more than a ring ahead refuses the rings (attached() false: nothing is ever read).
//  * TX build (xenvif_tx_build_gops), up to `budget` packets a round: RING_REQUEST_PROD_OVERFLOW
//    -> fatal "Impossible number of requests"; the first slot is copied, credit is checked
//    (tx_credit_exceeded), xenvif_get_extras (no slot left -> fatal "Missing extra info"; type 0
//    or >= XEN_NETIF_EXTRA_TYPE_MAX -> fatal), MCAST_ADD / MCAST_DEL answered at once
//    (xenvif_mcast_add: XEN_NETBK_MCAST_MAX addresses, then NETIF_RSP_ERROR), then
//    xenvif_count_requests: more_data with no slot left -> fatal; fatal_skb_slots (20) reached ->
//    fatal; XEN_NETBK_LEGACY_SLOTS_MAX (18) reached or a slot larger than the remaining size ->
//    every slot answered NETIF_RSP_ERROR (xenvif_tx_err) and the round ends; a slot crossing its
//    page -> fatal. Then: first slot below ETH_HLEN -> xenvif_tx_err; first slot crossing its
//    page -> fatal; GSO extra with size 0 or a type other than TCPV4/TCPV6 -> fatal
//    (xenvif_set_skb_gso). A fatal error is xenvif_fatal_tx_err: the vif is disabled and no
//    request is taken again; packets already built in the round still complete.
//  * xenvif_get_requests as in 6.1 (XSA-423): the first min(size, XEN_NETBACK_TX_COPY_LEN = 128)
//    bytes of the packet (all of the first slot when the packet has 17+ further slots) are grant-
//    copied into a dom0 head buffer, possibly from several slots; a slot only partly copied has its
//    rest mapped (the "shared slot"); every remaining slot gets one read-only map op
//    (GNTMAP_host_map | GNTMAP_readonly). Copies never cross a dom0 page (6.1.y stable, "don't do
//    grant copy across page boundary"): such a copy is split in two ops checked together.
//    Each slot holds one pending index from the pending ring (MAX_PENDING_REQS = 256).
//  * submit_tx = xenvif_tx_check_gop + xenvif_tx_submit: fully copied slots are answered at once
//    (NETIF_RSP_OKAY, or NETIF_RSP_ERROR for a failed copy); a failed map answers its slot
//    NETIF_RSP_ERROR; a packet with any failure is dropped and its mapped frags are unmapped one
//    op each (xenvif_idx_unmap) before their responses. A good packet becomes an EthernetFrame
//    (bytes from the head buffer and the mapped pages; NETTXF_csum_blank -> csum_blank,
//    NETTXF_data_validated -> data_validated; GSO from the extra, forced csum_blank as
//    checksum_setup does). A packet with mapped frags stays in flight until release()
//    (xenvif_zerocopy_callback); build_dealloc() then returns ONE unmap array for everything
//    released (xenvif_tx_dealloc_action) and complete_dealloc() writes the NETIF_RSP_OKAY responses
//    (make_tx_response, with a NETIF_RSP_NULL per extra slot) and pushes them.
//  * Credit (tx_add_credit, tx_credit_exceeded, xenvif_tx_credit_callback), as a pure function of
//    the simulated time passed in: a packet larger than the remaining credit stops the round and
//    arms the credit timeout at the end of the current window; the caller reads credit_timeout()
//    and calls credit_timer_fired() (or simply builds again after that time).
//  * RX (rx.c): queue_rx (xenvif_rx_queue_tail: dropped once rx_queue_max bytes are queued);
//    xenvif_rx_action as build_rx()/complete_rx() steps: while frames are queued,
//    xenvif_rx_ring_slots_available (needed = DIV_ROUND_UP(len, XEN_PAGE_SIZE) + 1 if GSO; if not
//    enough, req_event = req_prod + 1 so the frontend's next post notifies) and fewer than
//    RX_BATCH_SIZE (64) packets: xenvif_rx_skb fills data slots (copy ops of at most a page, split
//    at source page boundaries as xenvif_rx_next_chunk; NETRXF_more_data; on the first slot
//    NETRXF_csum_blank|NETRXF_data_validated or NETRXF_data_validated and NETRXF_extra_info) and,
//    after the first data slot, the GSO extra slot (xenvif_rx_extra_slot) when the frontend
//    negotiated that GSO type. COPY_BATCH_SIZE (64) ops make one batch (xenvif_rx_copy_add flushes
//    a full batch); after each batch complete_rx() overwrites the status of the response of every
//    failed op with the op's GNTST_* status (xenvif_rx_copy_flush) and pushes the completed
//    packets' responses with RING_PUSH_RESPONSES_AND_CHECK_NOTIFY.
//
// Where it deliberately differs from Linux:
//  * RX requests are copied once (RING_COPY_REQUEST); Linux reads req->gref and req->id from the
//    shared slot. Like Linux, gref is not validated here: a bad one fails its grant copy.
//  * xenvif_tx_err re-reads the dropped slots from the ring for their ids; here the ids come from
//    the single copy taken while counting. Linux pushes after every response; here each engine
//    call pushes once (the notification decision is the same: rsp_event is only moved by the
//    frontend, which does not run inside one call).
//  * No sk_buff: no frag_list consolidation (xenvif_handle_frag_list) for 18-slot packets, no
//    checksum_setup header parsing (a csum_blank frame is not checked), no hash extras (a HASH extra
//    is accepted and ignored; none is sent on RX), no XDP headroom, no rx drain timeout or stall
//    carrier-off. The rx source is a linear buffer starting at page offset kRxSourceOffset.
//  * A good packet's bytes are copied out of the mapped pages into its EthernetFrame at submit_tx
//    (an sk_buff references them until the zerocopy callback); the pages stay mapped, and the
//    responses wait, until release(), as in Linux. A fatal error does not tear the rings down (the
//    toolstack's job): packets in flight can still be released and answered.
//  * A dropped packet's frags are unmapped by the caller after submit_tx (Linux unmaps inside
//    xenvif_tx_check_gop); their responses wait for complete_check_unmaps, so none is visible
//    before its grant is unmapped.
//  * netif_tx_request.size is 16 bits: a frame of 64 KiB or more cannot be stated and shows up as
//    a slot larger than the size remaining (dropped, as Linux does).
//  * Credit time: Linux uses jiffies; here the window is credit_usec truncated to ms (as
//    msecs_to_jiffies(credit_usec / 1000)) in exact simulated picoseconds.
//  * Frames queued for RX that Linux could never receive are dropped and counted: empty, longer
//    than XEN_NETIF_MAX_TX_SIZE, or GSO of a type the frontend did not negotiate (Linux segments
//    those in the stack before xenvif_start_xmit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "sim/core/ethernet.h"
#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

#include <xen/io/netif.h>

namespace xensim {

struct NetifBackendConfig {
    domid_t frontend_domid = 0;
    unsigned fatal_skb_slots = 20;  // module parameter; raised to XEN_NETBK_LEGACY_SLOTS_MAX if below
    // The "rate" node (xen_net_read_rate): credit_bytes per credit_usec; no node = unlimited.
    std::uint64_t credit_bytes = ~std::uint64_t{0};
    std::uint64_t credit_usec = 0;
    bool feature_gso_tcpv4 = false;         // the frontend's feature-gso-tcpv4 (RX GSO extra)
    bool feature_gso_tcpv6 = false;         // feature-gso-tcpv6
    bool multicast_control = false;         // request-multicast-control: RX multicast filtered
    std::size_t rx_queue_max = 128 * 4096;  // XENVIF_RX_QUEUE_BYTES: XEN_NETIF_RX_RING_SIZE/2 pages
    // Where the caller maps TX grants: map op i for pending index p gets host_addr
    // mmap_base + p * XEN_PAGE_SIZE (idx_to_kaddr). Opaque to the engine.
    std::uint64_t mmap_base = 0;
    // Synthetic dom0 frame numbers for the TX head buffers (copy dest.u.gmfn) and the RX source
    // buffers (copy source.u.gmfn); the host pointers in the batches are what count.
    xen_pfn_t tx_head_gfn_base = 0x100000;
    xen_pfn_t rx_source_gfn_base = 0x200000;
};

// A packet the guest sent, as dom0's stack receives it.
struct NetbackTxPacket {
    EthernetFrame frame;
    // Mapped guest pages back the frame (zerocopy): call release(release_handle) when dom0 is done
    // with it; its remaining responses are written after the unmap. False: all answered already.
    bool needs_release = false;
    std::uint16_t release_handle = 0;
};

enum class NetbackFatal {
    none,
    bad_ring_attach,      // xenvif_map_frontend_data_rings: req_prod - rsp_prod > ring size
    impossible_requests,  // xenvif_tx_build_gops: "Impossible number of requests"
    missing_extra_info,   // xenvif_get_extras: "Missing extra info"
    invalid_extra_type,   // xenvif_get_extras: "Invalid extra type"
    slots_exceed_ring,    // xenvif_count_requests: "Asked for %d slots but exceeds this limit"
    malicious_slots,      // xenvif_count_requests: "Malicious frontend using %d slots"
    frag_cross_page,      // xenvif_count_requests: "Cross page boundary"
    first_cross_page,     // xenvif_tx_build_gops: "txreq.offset: %u, size: %u, end: %lu"
    gso_size_zero,        // xenvif_set_skb_gso: "GSO size must not be zero."
    gso_bad_type,         // xenvif_set_skb_gso: "Bad GSO type"
};
const char* netback_fatal_name(NetbackFatal f);

class NetifRingBackend {
  public:
    static constexpr unsigned kPageSize = 4096;                          // XEN_PAGE_SIZE
    static constexpr unsigned kMaxPendingReqs = 256;                     // MAX_PENDING_REQS
    static constexpr unsigned kLegacySlotsMax = XEN_NETIF_NR_SLOTS_MIN;  // 18
    static constexpr unsigned kTxCopyLen = 128;                          // XEN_NETBACK_TX_COPY_LEN
    static constexpr unsigned kEthHlen = 14;                             // ETH_HLEN
    static constexpr unsigned kMcastMax = 64;                            // XEN_NETBK_MCAST_MAX
    static constexpr unsigned kCopyBatchSize = 64;                       // COPY_BATCH_SIZE
    static constexpr unsigned kRxBatchSize = 64;                         // RX_BATCH_SIZE
    static constexpr unsigned kTxHeadOffset = 64;       // NET_SKB_PAD: where the head buffer's data starts
    static constexpr unsigned kRxSourceOffset = 64;     // page offset of a queued frame's first byte
    static constexpr std::uint64_t kMaxBurst = 131072;  // tx_add_credit: a 128 KiB jumbo

    static unsigned tx_ring_size();  // __CONST_RING_SIZE(netif_tx, XEN_PAGE_SIZE): 256
    static unsigned rx_ring_size();  // __CONST_RING_SIZE(netif_rx, XEN_PAGE_SIZE): 256

    // `tx_sring` / `rx_sring`: the frontend-initialised shared rings, one page each. now_ps starts
    // the first credit window (xenvif_init_queue: credit_window_start = jiffies).
    NetifRingBackend(void* tx_sring, void* rx_sring, NetifBackendConfig cfg, StatsGroup& stats,
                     std::uint64_t now_ps = 0);
    ~NetifRingBackend();
    NetifRingBackend(const NetifRingBackend&) = delete;
    NetifRingBackend& operator=(const NetifRingBackend&) = delete;

    // ------------------------------------------------------------------------------- TX
    // The arrays of one xenvif_tx_build_gops round, engine-owned, valid until submit_tx. The caller
    // runs copy[0..nr_copy) as ONE GNTTABOP_copy and map[0..nr_map) as ONE GNTTABOP_map_grant_ref
    // (skipped when empty), writing status (and handle) in place.
    struct TxGops {
        gnttab_copy_t* copy = nullptr;
        unsigned nr_copy = 0;
        std::uint8_t* const* copy_dest = nullptr;  // host address of each copy op's dom0 destination
        gnttab_map_grant_ref_t* map = nullptr;
        unsigned nr_map = 0;
        unsigned packets = 0;       // packets built (each completes in submit_tx)
        bool notify = false;        // responses written while building (errors, multicast) need a kick
        bool rate_limited = false;  // stopped for credit: see credit_timeout()
    };
    TxGops build_tx(std::uint64_t now_ps, unsigned budget = 64);

    struct TxSubmit {
        std::vector<NetbackTxPacket> packets;  // good packets, in ring order
        unsigned dropped = 0;                  // packets dropped for a failed copy or map
        // xenvif_idx_unmap: each op is ONE GNTTABOP_unmap_grant_ref of count 1; run them, then call
        // complete_check_unmaps() for the responses that follow them.
        std::vector<gnttab_unmap_grant_ref_t> unmaps;
        bool notify = false;
    };
    // `mapped_pages[i]`: host pointer of the XEN_PAGE_SIZE page map op i mapped (ignored where the
    // op failed); one per map op.
    TxSubmit submit_tx(const std::vector<const std::uint8_t*>& mapped_pages);
    // After TxSubmit::unmaps ran (`done`: those ops with their statuses; an unmap failure is a
    // simulator bug, as Linux's BUG()): the responses that follow them; true = notify.
    bool complete_check_unmaps(const std::vector<gnttab_unmap_grant_ref_t>& done);

    // xenvif_zerocopy_callback: dom0 is done with the packet's mapped pages.
    void release(std::uint16_t release_handle);
    // xenvif_tx_dealloc_action: ONE unmap array for every released frag (nr 0: nothing to do).
    // Run it as one GNTTABOP_unmap_grant_ref, then complete_dealloc() answers; true = notify.
    struct TxUnmaps {
        gnttab_unmap_grant_ref_t* ops = nullptr;
        unsigned nr = 0;
    };
    TxUnmaps build_dealloc();
    bool complete_dealloc();

    // RING_FINAL_CHECK_FOR_REQUESTS (xenvif_napi_schedule_or_enable_events): true = build again.
    bool tx_final_check();
    // The armed credit timer (absolute ps), if any; credit_timer_fired = xenvif_tx_credit_callback.
    std::optional<std::uint64_t> credit_timeout() const;
    void credit_timer_fired(std::uint64_t now_ps);
    std::uint64_t remaining_credit() const { return remaining_credit_; }

    bool attached() const { return attached_; }
    bool disabled() const { return fatal_ != NetbackFatal::none; }
    NetbackFatal fatal() const { return fatal_; }
    // Slots taken and not yet answered (pending ring occupancy).
    unsigned pending_in_use() const { return kMaxPendingReqs - (pending_prod_ - pending_cons_); }
    std::size_t multicast_count() const { return mcast_.size(); }

    // ------------------------------------------------------------------------------- RX
    // xenvif_start_xmit / xenvif_rx_queue_tail; false = dropped (counted by reason).
    bool queue_rx(EthernetFrame frame);
    // One batch of xenvif_rx_action, engine-owned, valid until complete_rx. Run ops[0..nr) as ONE
    // GNTTABOP_copy (Linux issues it even with nr 0 at the end of an action), then complete_rx.
    struct RxBatch {
        gnttab_copy_t* ops = nullptr;
        unsigned nr = 0;
        const std::uint8_t* const* src = nullptr;  // host address of each op's dom0 source bytes
        bool last = false;  // the action ends with this batch (no more slots, frames or budget)
    };
    RxBatch build_rx();
    // xenvif_rx_copy_flush after the batch ran: failed ops' statuses into their responses, push;
    // true = notify the frontend.
    bool complete_rx();
    std::size_t rx_queue_len() const { return rx_queue_len_; }
    std::size_t rx_queued_frames() const { return rx_queue_.size(); }
    // xenvif_rx_ring_slots_available for the head frame (sets req_event when short).
    bool rx_slots_available();

  private:
    struct PendingTxInfo {
        netif_tx_request_t req{};  // private copy (offset/size as mapped for a shared slot)
        unsigned extra_count = 0;
        std::int32_t next = -1;      // zerocopy chain (callback_param ctx)
        bool zerocopy_head = false;  // release() handle in flight
    };
    struct TxPacketState;
    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter tx_packets, tx_bytes, tx_error_responses, tx_dropped, tx_mcast, tx_gso_checksum_fixup;
        CounterFamily tx_fatal, tx_drop_reason;
        Counter tx_copy_ops, tx_map_ops, tx_unmap_ops, tx_bytes_copied, tx_credit_stalls;
        Counter rx_packets, rx_bytes, rx_copy_ops, rx_bytes_copied, rx_copy_failures, rx_ring_full_stalls;
        CounterFamily rx_drops;
        Counter notifications_sent, notifications_suppressed;
    };

    // TX helpers, each named after the Linux function it follows.
    void fatal_tx_err(NetbackFatal why);
    bool get_extras(netif_extra_info_t* extras, unsigned& extra_count, int& work_to_do);
    int count_requests(netif_tx_request_t& first, unsigned extra_count, netif_tx_request_t* txfrags,
                       std::uint16_t* ids, int work_to_do);
    void tx_err(std::uint16_t first_id, unsigned extra_count, const std::uint16_t* ids, unsigned n,
                RING_IDX end);
    void make_tx_response(std::uint16_t id, unsigned extra_count, std::int16_t st);
    void idx_release(std::uint16_t pending_idx, std::int16_t status);
    void idx_unmap(std::uint16_t pending_idx, std::int16_t then_status);
    bool tx_credit_exceeded(std::uint64_t now_ps, unsigned size);
    void tx_add_credit();
    std::uint64_t credit_period_ps() const;
    bool check_gop(TxPacketState& p, const std::vector<const std::uint8_t*>& mapped_pages);
    bool push_tx();
    bool mcast_add(const std::uint8_t* addr);
    void mcast_del(const std::uint8_t* addr);
    bool mcast_match(const MacAddress& m) const;

    // RX helpers.
    unsigned rx_needed(const EthernetFrame& f) const;
    void rx_next_skb();
    void rx_finish_data_slot();
    bool push_rx();

    NetifBackendConfig cfg_;
    Stats stats_;
    bool attached_ = true;
    NetbackFatal fatal_ = NetbackFatal::none;

    netif_tx_back_ring_t tx_{};
    netif_rx_back_ring_t rx_{};

    // Pending ring (xenvif_queue: pending_ring, pending_prod/cons, pending_tx_info, grant handles).
    std::uint16_t pending_ring_[kMaxPendingReqs];
    std::uint32_t pending_prod_ = kMaxPendingReqs, pending_cons_ = 0;
    PendingTxInfo pending_tx_info_[kMaxPendingReqs];
    grant_handle_t grant_tx_handle_[kMaxPendingReqs];
    bool grant_mapped_[kMaxPendingReqs];  // grant_tx_handle != NETBACK_INVALID_HANDLE
    std::uint16_t dealloc_ring_[kMaxPendingReqs];
    std::uint32_t dealloc_prod_ = 0, dealloc_cons_ = 0;

    // One build/submit round.
    std::vector<TxPacketState> tx_queue_;
    std::vector<gnttab_copy_t> tx_copy_ops_;
    std::vector<std::uint8_t*> tx_copy_dest_;
    std::vector<gnttab_map_grant_ref_t> tx_map_ops_;
    bool awaiting_submit_ = false;
    std::vector<gnttab_unmap_grant_ref_t> check_unmaps_;                  // xenvif_idx_unmap ops
    std::vector<std::pair<std::uint16_t, std::int16_t>> check_unmapped_;  // responses after them
    std::vector<gnttab_unmap_grant_ref_t> tx_unmap_ops_;
    std::vector<std::uint16_t> pending_idx_release_;
    bool awaiting_dealloc_ = false;

    // Credit.
    std::uint64_t remaining_credit_;
    std::uint64_t credit_window_start_;
    std::optional<std::uint64_t> credit_timer_;

    std::vector<MacAddress> mcast_;  // fe_mcast_addr, at most kMcastMax

    // RX: the queue, the packet in progress and the current batch.
    std::deque<EthernetFrame> rx_queue_;
    std::size_t rx_queue_len_ = 0;
    struct RxPkt {
        bool active = false;
        EthernetFrame frame;
        std::uint64_t seq = 0;
        std::size_t remaining = 0;
        std::size_t pos = 0;  // bytes of the frame already given to copy ops
        bool gso_extra = false;
        netif_extra_info_t gso{};
        unsigned extra_count = 0;
        unsigned slot = 0;
        bool slot_open = false;  // inside xenvif_rx_data_slot (a batch may end mid-slot)
        netif_rx_request_t req{};
        unsigned offset = 0;
    } pkt_;
    std::uint64_t rx_seq_ = 0;
    bool rx_action_active_ = false;
    unsigned rx_work_done_ = 0;
    std::vector<gnttab_copy_t> rx_ops_;
    std::vector<const std::uint8_t*> rx_src_;
    std::vector<RING_IDX> rx_idx_;
    std::deque<EthernetFrame> rx_completed_;  // sources of the batch in flight
    bool awaiting_rx_ = false;
    RING_IDX rx_pushed_ = 0, tx_pushed_ = 0;
};

}  // namespace xensim
