// Grant copy: a guest grants pages, dom0 copies them out with GNTTABOP_copy.
//
// The smallest backend-shaped exchange. The guest (client) grants dom0 a request page (read-write)
// and `pages` data pages (read-only). Its first grant is the request page, so the reference is
// GNTTAB_NR_RESERVED_ENTRIES (8) — the fixed place dom0 looks, standing in for the XenStore
// negotiation a real device does (XenStore arrives with its own issue). The event channel is
// allocated by the toolstack in dom0 for the guest, as libxl does for the console.
//
// One round: the guest fills the data pages with seeded bytes, writes {seq, count, grefs} into the
// request page and notifies. Dom0's upcall handler maps the request page
// (GNTTABOP_map_grant_ref), copies every data page into its own memory with one batched
// GNTTABOP_copy, checksums what it received, writes the checksum back, unmaps
// (GNTTABOP_unmap_grant_ref, one TLB flush) and notifies. The guest compares the checksum with its
// own: a mismatch is a failure. Per round, by protocol: 1 map, 1 copy hypercall of `pages` ops,
// 1 unmap, 1 TLB flush, 2 EVTCHNOP_send.
#pragma once

#include <cstdint>
#include <vector>

#include "frontends/workload.h"
#include "frontends/xen_guest.h"

namespace xensim {

struct GrantCopyParams {
    domid_t guest_domid = 1;
    evtchn_port_t backend_port = 0;  // allocated by the toolstack in dom0 for the guest
    unsigned pages = 4;
    std::uint64_t rounds = 100;
    std::uint64_t seed = 1;
};

// The request page layout shared by both sides.
struct GrantCopyRequest {
    std::uint32_t seq;
    std::uint32_t count;
    std::int32_t status;  // 0, or the first failing GNTST_* code
    std::uint32_t pad;
    std::uint64_t checksum;  // FNV-1a of the copied bytes, written by dom0
    grant_ref_t grefs[32];
};

class GrantCopyClient {
  public:
    static constexpr unsigned kMaxPages = 32;
    GrantCopyClient(GrantCopyParams params, WorkloadStats& stats) : p_(params), stats_(stats) {}
    void run(XenGuest& guest, GuestServices& s);

  private:
    GrantCopyParams p_;
    WorkloadStats& stats_;
    bool reply_seen_ = false;
};

class GrantCopyBackend {
  public:
    explicit GrantCopyBackend(GrantCopyParams params) : p_(params) {}
    // On dom0: prepare buffers and answer requests from the upcall handler.
    void start(XenGuest& guest, GuestServices& s);
    std::uint64_t requests_served() const { return served_; }

  private:
    void serve(XenGuest& guest, GuestServices& s);
    GrantCopyParams p_;
    std::uint64_t map_gfn_ = 0;  // an unpopulated frame where the request page is mapped
    std::vector<std::uint64_t> buffers_;
    std::uint64_t served_ = 0;
};

std::uint64_t fnv1a(const std::uint8_t* data, std::size_t len, std::uint64_t h = 1469598103934665603ull);

}  // namespace xensim
