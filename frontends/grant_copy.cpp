#include "frontends/grant_copy.h"

#include <cstring>

#include "sim/core/rng.h"

namespace xensim {

namespace {
constexpr std::size_t kGuestPageSize = 4096;
}

std::uint64_t fnv1a(const std::uint8_t* data, std::size_t len, std::uint64_t h) {
    for (std::size_t i = 0; i < len; ++i) h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

void GrantCopyClient::run(XenGuest& guest, GuestServices& s) {
    auto fail = [&] {
        stats_.failures.inc();
        stats_.finish(s.now_ns());
    };
    if (p_.pages == 0 || p_.pages > kMaxPages) return fail();
    evtchn_port_t local = 0;
    auto req_gfn = s.alloc_page();
    if (!req_gfn) return fail();
    auto req_ref = guest.grant_access(0, *req_gfn, false);
    if (!req_ref || *req_ref != GNTTAB_NR_RESERVED_ENTRIES) return fail();
    std::vector<std::uint64_t> data;
    for (unsigned i = 0; i < p_.pages; ++i) {
        auto g = s.alloc_page();
        if (!g) return fail();
        data.push_back(*g);
    }
    if (guest.bind_interdomain(s, 0, p_.backend_port, &local)) return fail();
    guest.set_port_handler(local, [this](GuestServices&, evtchn_port_t) { reply_seen_ = true; });
    s.compute(100);  // take the event Xen raises on our port at bind time
    Rng rng(p_.seed);
    auto* req = reinterpret_cast<GrantCopyRequest*>(s.page(*req_gfn));
    stats_.start(s.now_ns());
    for (std::uint64_t round = 0; round < p_.rounds; ++round) {
        std::uint64_t t0 = s.now_ns();
        std::uint64_t expect = 1469598103934665603ull;
        std::vector<grant_ref_t> refs;
        for (std::uint64_t gfn : data) {
            std::uint8_t* bytes = s.page(gfn);
            for (std::size_t i = 0; i < kGuestPageSize; i += 8) {
                std::uint64_t v = rng.next();
                std::memcpy(bytes + i, &v, 8);
            }
            expect = fnv1a(bytes, kGuestPageSize, expect);
            auto ref = guest.grant_access(0, gfn, true);
            if (!ref) return fail();
            refs.push_back(*ref);
        }
        s.compute(static_cast<Cycles>(p_.pages) * kGuestPageSize / 8);  // filling the pages
        req->seq = static_cast<std::uint32_t>(round + 1);
        req->count = p_.pages;
        req->status = 1;
        req->checksum = 0;
        for (unsigned i = 0; i < p_.pages; ++i) req->grefs[i] = refs[i];
        reply_seen_ = false;
        if (guest.notify(s, local)) return fail();
        while (!reply_seen_) s.halt();
        bool ok = req->status == 0 && req->checksum == expect;
        for (grant_ref_t r : refs) ok = guest.end_access(r) && ok;
        if (!ok) stats_.failures.inc();
        stats_.complete_op(s.now_ns() - t0);
    }
    stats_.finish(s.now_ns());
}

void GrantCopyBackend::start(XenGuest& guest, GuestServices& s) {
    for (unsigned i = 0; i < p_.pages; ++i)
        if (auto b = s.alloc_page()) buffers_.push_back(*b);
    // A frame to map foreign pages at: allocate and release one, as Linux takes ballooned pages
    // (after the buffers, so no later allocation here reuses it).
    auto g = s.alloc_page();
    if (!g) return;
    map_gfn_ = *g;
    s.free_page(*g);
    guest.set_port_handler(p_.backend_port,
                           [this, &guest](GuestServices& vs, evtchn_port_t) { serve(guest, vs); });
    guest.unmask(s, p_.backend_port);
}

void GrantCopyBackend::serve(XenGuest& guest, GuestServices& s) {
    gnttab_map_grant_ref_t map{};
    map.host_addr = map_gfn_ << 12;
    map.flags = GNTMAP_host_map;
    map.ref = GNTTAB_NR_RESERVED_ENTRIES;
    map.dom = p_.guest_domid;
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, reinterpret_cast<unsigned long>(&map),
                1);
    if (map.status != GNTST_okay) return;  // nothing to answer into; the guest's request stays pending
    auto* req = reinterpret_cast<GrantCopyRequest*>(s.page(map_gfn_));
    // Copy the request once and use only the copy (never read shared memory twice).
    GrantCopyRequest r;
    std::memcpy(&r, req, sizeof r);
    std::int32_t status = GNTST_okay;
    std::uint64_t sum = 1469598103934665603ull;
    if (r.count == 0 || r.count > buffers_.size()) {
        status = GNTST_general_error;
    } else {
        std::vector<gnttab_copy_t> ops(r.count);
        for (unsigned i = 0; i < r.count; ++i) {
            gnttab_copy_t& c = ops[i];
            c.source.u.ref = r.grefs[i];
            c.source.domid = p_.guest_domid;
            c.source.offset = 0;
            c.dest.u.gmfn = buffers_[i];
            c.dest.domid = DOMID_SELF;
            c.dest.offset = 0;
            c.len = kGuestPageSize;
            c.flags = GNTCOPY_source_gref;
        }
        s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_copy, reinterpret_cast<unsigned long>(ops.data()),
                    r.count);
        for (unsigned i = 0; i < r.count; ++i) {
            if (ops[i].status != GNTST_okay && status == GNTST_okay) status = ops[i].status;
            sum = fnv1a(s.page(buffers_[i]), kGuestPageSize, sum);
        }
        s.compute(static_cast<Cycles>(r.count) * kGuestPageSize / 8);  // checksumming
    }
    req->checksum = sum;
    req->status = status;
    gnttab_unmap_grant_ref_t unmap{};
    unmap.host_addr = map_gfn_ << 12;
    unmap.handle = map.handle;
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                reinterpret_cast<unsigned long>(&unmap), 1);
    ++served_;
    guest.notify(s, p_.backend_port);
}

}  // namespace xensim
