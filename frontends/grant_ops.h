// The guest kernel's grant and page services as a ring engine sees them.
//
// The ring engines of the PV frontends (blkif, netif) are plain C++: they do not call the guest
// kernel (XenGuest) directly but through these callbacks, so unit tests can hand them a fake grant
// table and pages they own, and the caller can price each operation where it happens (granting is
// a write into the guest's own grant table, ending a grant a compare-and-swap on it: Linux's
// gnttab_grant_foreign_access_ref / gnttab_end_foreign_access_ref, neither a hypercall with
// grant table v1).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "sim/core/xen_abi.h"

namespace xensim {

struct GrantOps {
    // Grants the backend access to frame `gfn`; nullopt when no grant reference is free.
    std::function<std::optional<grant_ref_t>(std::uint64_t gfn, bool readonly)> grant;
    std::function<bool(grant_ref_t)> end;  // false while the backend still maps it
    // A fresh 4 KiB guest page owned by the engine from now on; nullopt when none can be had.
    std::function<std::optional<std::uint64_t>()> alloc_page;
    // The bytes of a guest frame the engine owns (4096 of them).
    std::function<std::uint8_t*(std::uint64_t gfn)> page;
};

}  // namespace xensim
