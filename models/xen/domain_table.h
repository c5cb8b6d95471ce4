// The hypervisor's record of each domain, shared by the pure engines (grant table, event channels,
// hypercall table).
//
// What is modelled: domain id, privilege (dom0 is the one privileged domain, as without XSM), vCPU
// count, the domain's guest physical memory, and its Xen-owned shared_info page (struct shared_info
// from xen.h, laid out exactly as real Xen lays it out, so the 2-level event-channel bitmaps and
// vcpu_info selectors are the guest-visible ones). vCPUs are limited to XEN_LEGACY_MAX_VCPUS (32):
// every vcpu_info lives in shared_info; VCPUOP_register_vcpu_info is not modelled.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "models/xen/guest_memory.h"
#include "sim/core/xen_abi.h"

namespace xensim {

using DomId = domid_t;

struct DomainRecord {
    DomainRecord(DomId id_, std::string name_, bool privileged_, unsigned vcpus_, std::uint64_t pages)
        : id(id_), name(std::move(name_)), privileged(privileged_), vcpus(vcpus_), memory(pages) {}

    DomId id;
    std::string name;
    bool privileged;
    unsigned vcpus;
    GuestMemory memory;
    XenPage shared_info_page;  // Xen-owned; the guest maps it with XENMAPSPACE_shared_info

    shared_info_t& shared_info() { return *reinterpret_cast<shared_info_t*>(shared_info_page.bytes); }

    // XENMEM_add_to_physmap(XENMAPSPACE_shared_info, idx 0) as Xen 4.17 xenmem_add_to_physmap_one
    // (arch/x86/mm/p2m.c): what was at gpfn leaves the physmap (a Xen page such as a grant frame is
    // unhooked from the slot, the domain's RAM there is freed), shared_info is unhooked from its old
    // gpfn (get_gpfn_from_mfn) and added at the new one. Mapping it where it already is does nothing.
    // Refused with -XEN_EINVAL, as GrantTable::add_to_physmap refuses for a grant frame (the same
    // deliberate difference): a gpfn outside the physmap, one holding a live grant mapping of another
    // domain's page (Xen: guest_remove_page cannot get_page it and fails with -ENXIO), or RAM another
    // domain has mapped (Xen frees it later, when the last mapping goes).
    int map_shared_info(Gfn gpfn) {
        const Gfn old = shared_info_gfn();
        if (gpfn == old) return 0;
        if (!memory.map_xen_page(gpfn, &shared_info_page)) return -XEN_EINVAL;
        if (old != kNoGfn) memory.map_xen_page(old, nullptr);
        shared_info_gfn_ = gpfn;
        return 0;
    }
    // Where shared_info is in the physmap, or kNoGfn: never mapped, or its slot since taken by
    // another Xen page (a grant frame added there unhooks it, as in Xen).
    static constexpr Gfn kNoGfn = ~Gfn(0);
    Gfn shared_info_gfn() const {
        return shared_info_gfn_ != kNoGfn && memory.page(shared_info_gfn_) == shared_info_page.bytes
                   ? shared_info_gfn_
                   : kNoGfn;
    }
    vcpu_info_t& vcpu_info(unsigned vcpu) { return shared_info().vcpu_info[vcpu]; }

  private:
    Gfn shared_info_gfn_ = kNoGfn;
};

static_assert(sizeof(shared_info_t) <= kPageSize, "shared_info must fit one page");

class DomainTable {
  public:
    // Creates a domain record; ids must be unique (an internal invariant, checked by the caller).
    DomainRecord& add(DomId id, std::string name, bool privileged, unsigned vcpus, std::uint64_t pages) {
        auto rec = std::make_unique<DomainRecord>(id, std::move(name), privileged, vcpus, pages);
        DomainRecord& ref = *rec;
        domains_[id] = std::move(rec);
        return ref;
    }
    DomainRecord* find(DomId id) {
        auto it = domains_.find(id);
        return it == domains_.end() ? nullptr : it->second.get();
    }
    const std::map<DomId, std::unique_ptr<DomainRecord>>& all() const { return domains_; }

  private:
    std::map<DomId, std::unique_ptr<DomainRecord>> domains_;
};

}  // namespace xensim
