#include "models/xen/grant_table.h"

#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

namespace xensim {

namespace {

// GNTTABOP_set_version and later are hidden by the public header below interface version
// 0x0003020a; the numbers are ABI and fixed, so they are spelled here and checked when visible.
constexpr unsigned kGnttabopSetVersion = 8;
constexpr unsigned kGnttabopGetStatusFrames = 9;
constexpr unsigned kGnttabopGetVersion = 10;
constexpr unsigned kGnttabopSwapGrantRef = 11;
constexpr unsigned kGnttabopCacheFlush = 12;
#ifdef GNTTABOP_set_version
static_assert(GNTTABOP_set_version == kGnttabopSetVersion && GNTTABOP_cache_flush == kGnttabopCacheFlush);
#endif

// do_grant_table_op: the low 12 bits are the command, the rest is continuation state that only
// GNTTABOP_cache_flush may carry (GNTTABOP_CONTINUATION_ARG_SHIFT).
constexpr unsigned kGnttabopCmdMask = (1u << 12) - 1;

const char* const kGntstNames[] = {
    "GNTST_okay",         "GNTST_general_error",   "GNTST_bad_domain",
    "GNTST_bad_gntref",   "GNTST_bad_handle",      "GNTST_bad_virt_addr",
    "GNTST_bad_dev_addr", "GNTST_no_device_space", "GNTST_permission_denied",
    "GNTST_bad_page",     "GNTST_bad_copy_arg",    "GNTST_address_too_big",
    "GNTST_eagain",       "GNTST_no_space",
};
static_assert(GNTST_no_space == -13, "GNTST_* numbering");
static_assert(sizeof(kGntstNames) / sizeof(kGntstNames[0]) == GrantTable::kNrGntst);
static_assert(kGnttabopCacheFlush + 1 == GrantTable::kNrGnttabops);

// A guest handle is a plain pointer below interface version 0x00030201 and a struct {T* p;} from
// then on; the engine works with either.
template <class Handle>
auto* handle_ptr(Handle& h) {
    if constexpr (std::is_pointer_v<Handle>)
        return h;
    else
        return h.p;
}

[[noreturn]] void invariant_broken(const char* what, unsigned domid) {
    std::fprintf(stderr, "xensim: grant table invariant broken: %s (d%u)\n", what, domid);
    std::abort();
}

// Family counters are looked up by label once and then bumped through the cached reference (the
// references CounterFamily::at returns stay valid); labels still appear on first use only.
std::uint64_t& cached(std::uint64_t*& slot, CounterFamily& family, const char* label) {
    if (!slot) slot = &family.at(label);
    return *slot;
}

}  // namespace

// One row per GNTTABOP_*: the central checks in hypercall() use `single`; a null handler is an
// op xensim does not model (-XEN_ENOSYS, as an unknown command gets).
struct GrantTable::OpDesc {
    unsigned cmd;
    const char* name;
    long (GrantTable::*handler)(DomId, void*, unsigned, GrantWork&);
    bool single;  // count must be 1 (setup_table, query_size)
};

const GrantTable::OpDesc* GrantTable::find_op(unsigned cmd) {
    static const OpDesc kOps[] = {
        {GNTTABOP_map_grant_ref, "GNTTABOP_map_grant_ref", &GrantTable::op_map_grant_ref, false},
        {GNTTABOP_unmap_grant_ref, "GNTTABOP_unmap_grant_ref", &GrantTable::op_unmap_grant_ref, false},
        {GNTTABOP_setup_table, "GNTTABOP_setup_table", &GrantTable::op_setup_table, true},
        {GNTTABOP_dump_table, "GNTTABOP_dump_table", nullptr, false},
        {GNTTABOP_transfer, "GNTTABOP_transfer", nullptr, false},
        {GNTTABOP_copy, "GNTTABOP_copy", &GrantTable::op_copy, false},
        {GNTTABOP_query_size, "GNTTABOP_query_size", &GrantTable::op_query_size, true},
        {GNTTABOP_unmap_and_replace, "GNTTABOP_unmap_and_replace", &GrantTable::op_unmap_and_replace, false},
        {kGnttabopSetVersion, "GNTTABOP_set_version", nullptr, false},
        {kGnttabopGetStatusFrames, "GNTTABOP_get_status_frames", nullptr, false},
        {kGnttabopGetVersion, "GNTTABOP_get_version", nullptr, false},
        {kGnttabopSwapGrantRef, "GNTTABOP_swap_grant_ref", nullptr, false},
        {kGnttabopCacheFlush, "GNTTABOP_cache_flush", nullptr, false},
    };
    for (const OpDesc& d : kOps)
        if (d.cmd == cmd) return &d;
    return nullptr;
}

const char* gntst_name(int status) {
    if (status > 0 || status < GNTST_no_space) return "GNTST_unknown";
    return kGntstNames[-status];
}

const char* gnttabop_name(unsigned cmd) {
    const GrantTable::OpDesc* d = GrantTable::find_op(cmd);
    return d ? d->name : "GNTTABOP_unknown";
}

GrantTable::Stats::Stats(StatsGroup& g)
    : hypercalls(g, "hypercalls", "calls", "grant_table_op hypercalls by GNTTABOP_* command"),
      ops(g, "ops", "ops", "grant table operations processed (array elements) by GNTTABOP_* command"),
      errors(g, "errors", "ops", "operations that returned a GNTST_* error, by status"),
      call_errors(g, "call_errors", "calls", "hypercalls that failed as a whole, by XEN_E* errno"),
      maps(g, "maps", "ops", "grant mappings created"),
      unmaps(g, "unmaps", "ops", "grant mappings removed by unmap"),
      copies(g, "copies", "ops", "successful GNTTABOP_copy operations"),
      bytes_copied(g, "bytes_copied", "bytes", "bytes moved by GNTTABOP_copy"),
      tlb_flushes(g, "tlb_flushes", "flushes", "TLB flushes after unmap batches that removed a mapping"),
      maptrack_peak(g, "maptrack_peak", "entries", "most live maptrack entries held by one domain") {}

GrantTable::GrantTable(DomainTable& domains, StatsGroup& stats, GrantTableLimits limits)
    : domains_(domains), limits_(limits), stats_(stats) {}

GrantTable::~GrantTable() = default;

// ---------------------------------------------------------------------------------------------
// Tables, frames and maptrack

GrantTable::DomainGrants* GrantTable::table(DomId d) {
    auto it = tables_.find(d);
    if (it != tables_.end()) return it->second.get();
    if (!domains_.find(d)) return nullptr;
    auto t = std::make_unique<DomainGrants>();
    grow(*t, kInitialNrGrantFrames);  // grant_table_init -> gnttab_grow_table(d, 0)
    DomainGrants* raw = t.get();
    tables_.emplace(d, std::move(t));
    return raw;
}

const GrantTable::DomainGrants* GrantTable::find_table(DomId d) const {
    auto it = tables_.find(d);
    return it == tables_.end() ? nullptr : it->second.get();
}

void GrantTable::grow(DomainGrants& t, unsigned frames) {
    while (t.shared.size() < frames) {
        t.shared.push_back(std::make_unique<XenPage>());
        t.shared_gfn.push_back(kInvalidGfn);
    }
    t.active.resize(std::size_t(frames) * kEntriesPerFrame);
}

// Where frame idx sits in the owner's physmap now (the M2P lookup of gnttab_shared_gmfn): the
// recorded gfn if the frame is still there, else ~0.
Gfn GrantTable::frame_gfn(DomId d, const DomainGrants& t, unsigned idx) const {
    Gfn g = t.shared_gfn[idx];
    if (g == kInvalidGfn) return kInvalidGfn;
    const DomainRecord* rec = domains_.find(d);
    if (!rec || rec->memory.page(g) != t.shared[idx]->bytes) return kInvalidGfn;
    return g;
}

// get_maptrack_handle for one vCPU: hand out the head unless it is the last free entry; else add
// a maptrack frame whose first entry is returned and whose others go to the head of the list.
bool GrantTable::get_maptrack_handle(DomainGrants& t, grant_handle_t& handle) {
    if (t.maptrack_free.size() >= 2) {
        handle = t.maptrack_free.front();
        t.maptrack_free.pop_front();
        return true;
    }
    if (t.maptrack_frames >= limits_.max_maptrack_frames) return false;
    auto base = grant_handle_t(t.maptrack.size());
    t.maptrack.resize(t.maptrack.size() + kMaptrackPerPage);
    ++t.maptrack_frames;
    std::vector<grant_handle_t> fresh;
    for (unsigned i = 1; i < kMaptrackPerPage; ++i) fresh.push_back(base + i);
    t.maptrack_free.insert(t.maptrack_free.begin(), fresh.begin(), fresh.end());
    handle = base;
    return true;
}

void GrantTable::put_maptrack_handle(DomainGrants& t, grant_handle_t handle) {
    t.maptrack_free.push_back(handle);
}

bool GrantTable::holds_readonly_mapping(const DomainGrants& t, Gfn gfn) const {
    auto it = t.mapped_at.find(gfn);
    return it != t.mapped_at.end() && (t.maptrack[it->second].flags & GNTMAP_readonly);
}

// ---------------------------------------------------------------------------------------------
// Shared entries

grant_entry_v1_t GrantTable::read_entry(const DomainGrants& t, grant_ref_t ref) const {
    grant_entry_v1_t e;
    std::memcpy(&e, t.shared[ref / kEntriesPerFrame]->bytes + (ref % kEntriesPerFrame) * sizeof(e),
                sizeof(e));
    return e;
}

std::uint16_t GrantTable::read_flags(const DomainGrants& t, grant_ref_t ref) const {
    std::uint16_t f;
    std::memcpy(&f,
                t.shared[ref / kEntriesPerFrame]->bytes +
                    (ref % kEntriesPerFrame) * sizeof(grant_entry_v1_t) + offsetof(grant_entry_v1_t, flags),
                sizeof(f));
    return f;
}

void GrantTable::write_flags(DomainGrants& t, grant_ref_t ref, std::uint16_t flags) {
    std::memcpy(t.shared[ref / kEntriesPerFrame]->bytes +
                    (ref % kEntriesPerFrame) * sizeof(grant_entry_v1_t) + offsetof(grant_entry_v1_t, flags),
                &flags, sizeof(flags));
}

// gnttab_clear_flags: an atomic clear of the bits in the live field (the guest may have changed
// other bits since it was read).
void GrantTable::clear_flags(DomainGrants& t, grant_ref_t ref, std::uint16_t mask) {
    write_flags(t, ref, std::uint16_t(read_flags(t, ref) & ~mask));
}

// _set_status_v1: one read of the entry; an unpinned entry must be GTF_permit_access (and, for a
// map, not GTF_sub_page) for ldom; a writable pin needs the entry not GTF_readonly. On success the
// copy's flags plus GTF_reading (and GTF_writing) are written back, as Xen's cmpxchg does.
std::int16_t GrantTable::set_status_v1(DomainGrants& t, grant_ref_t ref, DomId ldom, bool readonly,
                                       bool mapflag, grant_entry_v1_t& entry) {
    const ActiveEntry& act = t.active[ref];
    entry = read_entry(t, ref);
    const unsigned mask = GTF_type_mask | (mapflag ? GTF_sub_page : 0u);
    if (!act.pin && ((entry.flags & mask) != GTF_permit_access || entry.domid != ldom))
        return GNTST_general_error;
    unsigned flags = entry.flags | GTF_reading;
    if (!readonly) {
        if (entry.flags & GTF_readonly) return GNTST_general_error;
        flags |= GTF_writing;
    }
    write_flags(t, ref, std::uint16_t(flags));
    return GNTST_okay;
}

// The flag clearing shared by map's failure path (unlock_out_clear), unmap_common_complete and
// release_grant_for_copy: GTF_writing goes with the last writable pin, GTF_reading with the last pin.
void GrantTable::clear_status_after(DomainGrants& t, grant_ref_t ref, bool readonly) {
    const ActiveEntry& act = t.active[ref];
    unsigned clear = 0;
    if (!readonly && !(act.pin & kPinHostWriteMask)) clear |= GTF_writing;
    if (!act.pin) clear |= GTF_reading;
    if (clear) clear_flags(t, ref, std::uint16_t(clear));
}

// get_paged_frame plus map_grant_ref's owner check: the granter's gfn must hold RAM it owns.
std::int16_t GrantTable::granted_frame(DomId rd, Gfn gfn, XenPage*& frame) {
    DomainRecord* rec = domains_.find(rd);
    if (!rec || !rec->memory.page(gfn)) return GNTST_bad_page;
    frame = rec->memory.ram_frame(gfn);
    return frame ? GNTST_okay : GNTST_general_error;
}

// ---------------------------------------------------------------------------------------------
// do_grant_table_op

long GrantTable::hypercall(DomId caller, unsigned cmd, void* uop, unsigned count, GrantWork& work) {
    work = GrantWork{};
    if (!domains_.find(caller)) invariant_broken("hypercall from a domain not in the domain table", caller);
    const unsigned op = cmd & kGnttabopCmdMask;
    const OpDesc* desc = find_op(op);
    if (desc)
        ++cached(stats_.call_slots[op], stats_.hypercalls, desc->name);
    else
        stats_.hypercalls.inc("GNTTABOP_unknown");

    long rc;
    if (count > unsigned(INT_MAX))
        rc = -XEN_EINVAL;  // (int)count < 0
    else if (op != kGnttabopCacheFlush && (cmd & ~kGnttabopCmdMask))
        rc = -XEN_EINVAL;  // continuation state on an op that takes none
    else if (!desc || !desc->handler)
        rc = -XEN_ENOSYS;
    else if (desc->single && count != 1)
        rc = -XEN_EINVAL;
    else if (!uop && count)
        rc = -XEN_EFAULT;  // guest_handle_okay / copy_from_guest
    else
        rc = (this->*desc->handler)(caller, uop, count, work);

    if (rc < 0) stats_.call_errors.inc(xen_errno_name(-rc));
    reap_dying();
    return rc;
}

void GrantTable::note(unsigned cmd, std::int16_t status) {
    ++cached(stats_.op_slots[cmd], stats_.ops, gnttabop_name(cmd));
    if (status != GNTST_okay) ++cached(stats_.error_slots[-status], stats_.errors, gntst_name(status));
}

void GrantTable::note_maptrack(const DomainGrants& t) { stats_.maptrack_peak.raise_to(t.live_maps); }

// ---------------------------------------------------------------------------------------------
// GNTTABOP_map_grant_ref

long GrantTable::op_map_grant_ref(DomId caller, void* uop, unsigned count, GrantWork& work) {
    auto* ops = static_cast<gnttab_map_grant_ref_t*>(uop);
    for (unsigned i = 0; i < count; ++i) {
        gnttab_map_grant_ref_t op = ops[i];  // __copy_from_guest_offset
        op.status = map_one(caller, op);
        ops[i] = op;  // __copy_to_guest_offset
        note(GNTTABOP_map_grant_ref, op.status);
        if (op.status == GNTST_okay) {
            ++work.maps;
            stats_.maps.inc();
        }
    }
    return 0;
}

// map_grant_ref, in Xen's order of checks.
std::int16_t GrantTable::map_one(DomId caller, gnttab_map_grant_ref_t& op) {
    if (!(op.flags & (GNTMAP_device_map | GNTMAP_host_map))) return GNTST_bad_gntref;
    // paging_mode_external(ld): no device, application or PTE mappings from a translated guest.
    if (op.flags & (GNTMAP_device_map | GNTMAP_application_map | GNTMAP_contains_pte))
        return GNTST_general_error;

    // rcu_lock_domain_by_id: a real domain id only, DOMID_SELF is not one.
    DomainGrants* rt = op.dom < DOMID_FIRST_RESERVED ? table(op.dom) : nullptr;
    if (!rt || rt->dying) return GNTST_bad_domain;

    DomainGrants& lt = *table(caller);
    grant_handle_t handle;
    // Xen >= 4.16 ("gnttab: ... GNTST_no_space"): "Failed to obtain maptrack handle" -> GNTST_no_space.
    if (!get_maptrack_handle(lt, handle)) return GNTST_no_space;

    const bool readonly = op.flags & GNTMAP_readonly;
    const std::uint32_t inc = readonly ? kPinHostReadInc : kPinHostWriteInc;
    auto fail = [&](std::int16_t rc) {
        put_maptrack_handle(lt, handle);
        return rc;
    };

    if (op.ref >= nr_entries(*rt)) return fail(GNTST_bad_gntref);
    ActiveEntry& act = rt->active[op.ref];
    if (act.pin && (act.domid != caller || (act.pin & kPinOverflowMask))) return fail(GNTST_general_error);

    if (!act.pin || (!readonly && !(act.pin & kPinHostWriteMask))) {
        grant_entry_v1_t entry;
        if (std::int16_t rc = set_status_v1(*rt, op.ref, caller, readonly, true, entry)) return fail(rc);
        if (!act.pin) {
            XenPage* frame = nullptr;
            if (std::int16_t rc = granted_frame(op.dom, entry.frame, frame)) {
                clear_status_after(*rt, op.ref, readonly);
                return fail(rc);
            }
            act.domid = caller;
            act.gfn = entry.frame;
            act.frame = frame;
        }
    }
    act.pin += inc;

    // create_grant_p2m_mapping: host_map (optionally readonly) and nothing else; the gfn must take it.
    const Gfn host_gfn = op.host_addr >> kPageShift;
    GuestMemory& lmem = domains_.find(caller)->memory;
    if ((op.flags & ~std::uint32_t(GNTMAP_readonly)) != GNTMAP_host_map ||
        !lmem.map_foreign_page(host_gfn, act.frame)) {
        act.pin -= inc;
        clear_status_after(*rt, op.ref, readonly);
        return fail(GNTST_general_error);
    }
    domains_.find(op.dom)->memory.get_foreign_ref(act.gfn);

    lt.maptrack[handle] = Mapping{op.flags, op.dom, op.ref, host_gfn};
    lt.mapped_at[host_gfn] = handle;
    ++lt.live_maps;
    note_maptrack(lt);
    op.handle = handle;
    op.dev_bus_addr = 0;  // no machine addresses in the model
    return GNTST_okay;
}

// ---------------------------------------------------------------------------------------------
// GNTTABOP_unmap_grant_ref / GNTTABOP_unmap_and_replace

long GrantTable::op_unmap_grant_ref(DomId caller, void* uop, unsigned count, GrantWork& work) {
    auto* ops = static_cast<gnttab_unmap_grant_ref_t*>(uop);
    for (unsigned base = 0; base < count; base += kUnmapBatchSize) {
        bool removed_any = false;
        for (unsigned i = base; i < count && i < base + kUnmapBatchSize; ++i) {
            const gnttab_unmap_grant_ref_t op = ops[i];
            bool removed = false;
            ops[i].status = unmap_one(caller, op.host_addr, op.dev_bus_addr, 0, op.handle, removed);
            note(GNTTABOP_unmap_grant_ref, ops[i].status);
            if (removed) {
                ++work.unmaps;
                stats_.unmaps.inc();
                removed_any = true;
            }
        }
        if (removed_any) {  // gnttab_flush_tlb once per batch
            ++work.tlb_flushes;
            stats_.tlb_flushes.inc();
        }
    }
    return 0;
}

long GrantTable::op_unmap_and_replace(DomId caller, void* uop, unsigned count, GrantWork& work) {
    auto* ops = static_cast<gnttab_unmap_and_replace_t*>(uop);
    for (unsigned base = 0; base < count; base += kUnmapBatchSize) {
        bool removed_any = false;
        for (unsigned i = base; i < count && i < base + kUnmapBatchSize; ++i) {
            const gnttab_unmap_and_replace_t op = ops[i];
            bool removed = false;
            ops[i].status = unmap_one(caller, op.host_addr, 0, op.new_addr, op.handle, removed);
            note(GNTTABOP_unmap_and_replace, ops[i].status);
            if (removed) {
                ++work.unmaps;
                stats_.unmaps.inc();
                removed_any = true;
            }
        }
        if (removed_any) {
            ++work.tlb_flushes;
            stats_.tlb_flushes.inc();
        }
    }
    return 0;
}

// unmap_common followed by unmap_common_complete.
std::int16_t GrantTable::unmap_one(DomId caller, std::uint64_t host_addr, std::uint64_t dev_bus_addr,
                                   std::uint64_t new_addr, grant_handle_t handle, bool& removed) {
    removed = false;
    DomainGrants& lt = *table(caller);
    if (handle >= lt.maptrack.size()) return GNTST_bad_handle;
    Mapping& map = lt.maptrack[handle];
    if (!map.flags) return GNTST_bad_handle;

    auto rit = tables_.find(map.domid);
    if (rit == tables_.end()) invariant_broken("mapping of a grant whose table is gone", map.domid);
    DomainGrants& rt = *rit->second;
    const grant_ref_t ref = map.ref;
    const DomId rd = map.domid;
    if (ref >= nr_entries(rt)) return GNTST_bad_handle;
    ActiveEntry& act = rt.active[ref];

    // No frame has a machine address here, so no nonzero bus address matches.
    if (dev_bus_addr) return GNTST_general_error;

    std::uint32_t done = 0;
    if (host_addr && (map.flags & GNTMAP_host_map)) {
        // replace_grant_p2m_mapping
        const Gfn gfn = host_addr >> kPageShift;
        GuestMemory& lmem = domains_.find(caller)->memory;
        if (new_addr != 0 || (map.flags & GNTMAP_contains_pte) || gfn != map.gfn ||
            lmem.page(gfn) != act.frame->bytes || !lmem.unmap_foreign_page(gfn))
            return GNTST_general_error;
        lt.mapped_at.erase(gfn);
        done = GNTMAP_host_map | (map.flags & GNTMAP_readonly);
        map.flags &= ~std::uint32_t(GNTMAP_host_map);
    }
    if (!(map.flags & (GNTMAP_device_map | GNTMAP_host_map))) {
        map = Mapping{};
        put_maptrack_handle(lt, handle);
        --lt.live_maps;
    }

    if (done) {
        const bool readonly = done & GNTMAP_readonly;
        act.pin -= readonly ? kPinHostReadInc : kPinHostWriteInc;
        if (DomainRecord* rrec = domains_.find(rd)) rrec->memory.put_foreign_ref(act.gfn);
        clear_status_after(rt, ref, readonly);
        removed = true;
    }
    return GNTST_okay;
}

// ---------------------------------------------------------------------------------------------
// GNTTABOP_copy

long GrantTable::op_copy(DomId caller, void* uop, unsigned count, GrantWork& work) {
    auto* ops = static_cast<gnttab_copy_t*>(uop);
    for (unsigned i = 0; i < count; ++i) {
        const gnttab_copy_t op = ops[i];  // __copy_from_guest
        std::uint64_t bytes = 0;
        ops[i].status = copy_one(caller, op, bytes);  // __copy_field_to_guest(status)
        note(GNTTABOP_copy, ops[i].status);
        if (ops[i].status == GNTST_okay) {
            ++work.copies;
            work.bytes_copied += bytes;
            stats_.copies.inc();
            stats_.bytes_copied.inc(bytes);
        }
    }
    return 0;
}

// gnttab_copy_one without the buffer cache: lock both domains, claim source then destination,
// check the bounds, copy, release. Claims are per op; within one synchronous hypercall this is
// indistinguishable from Xen reusing a claim for consecutive ops on the same page.
std::int16_t GrantTable::copy_one(DomId caller, const gnttab_copy_t& op, std::uint64_t& bytes) {
    CopySide src, dst;
    // gnttab_copy_lock_domain: only DOMID_SELF may be named by frame; any id (or DOMID_SELF) otherwise.
    auto lock = [&](DomId domid, bool is_gref, CopySide& side) -> std::int16_t {
        if (domid != DOMID_SELF && !is_gref) return GNTST_permission_denied;
        const DomId d = domid == DOMID_SELF ? caller : domid;
        const DomainGrants* t = d < DOMID_FIRST_RESERVED ? table(d) : nullptr;
        if (!t || t->dying) return GNTST_bad_domain;
        side.dom = d;
        return GNTST_okay;
    };
    if (std::int16_t rc = lock(op.source.domid, op.flags & GNTCOPY_source_gref, src)) return rc;
    if (std::int16_t rc = lock(op.dest.domid, op.flags & GNTCOPY_dest_gref, dst)) return rc;

    if (std::int16_t rc = claim_copy_side(caller, op, true, src)) return rc;
    if (std::int16_t rc = claim_copy_side(caller, op, false, dst)) {
        release_copy_side(src);
        return rc;
    }

    std::int16_t rc = GNTST_okay;
    // gnttab_copy_buf; v1 grants always cover the whole page, so the sub-page bounds never bite.
    if (unsigned(op.source.offset) + op.len > kPageSize || unsigned(op.dest.offset) + op.len > kPageSize) {
        rc = GNTST_bad_copy_arg;
    } else {
        std::memmove(dst.bytes + op.dest.offset, src.bytes + op.source.offset, op.len);
        bytes = op.len;
    }
    release_copy_side(src);
    release_copy_side(dst);
    return rc;
}

// gnttab_copy_claim_buf: a grant gets a transient pin (read-only for the source); a frame must be
// populated in the caller's physmap.
std::int16_t GrantTable::claim_copy_side(DomId caller, const gnttab_copy_t& op, bool source, CopySide& side) {
    const auto& ptr = source ? op.source : op.dest;
    side.readonly = source;
    if (op.flags & (source ? GNTCOPY_source_gref : GNTCOPY_dest_gref)) {
        DomainGrants& rt = *table(side.dom);
        XenPage* frame = nullptr;
        if (std::int16_t rc = acquire_grant_for_copy(rt, side.dom, ptr.u.ref, caller, side.readonly, frame))
            return rc;
        side.table = &rt;
        side.ref = ptr.u.ref;
        side.bytes = frame->bytes;
        return GNTST_okay;
    }
    std::uint8_t* bytes = domains_.find(side.dom)->memory.page(ptr.u.gmfn);
    if (!bytes) return GNTST_bad_page;
    // Deliberate: a read-only grant mapping stays read-only for copies into it too.
    if (!side.readonly && holds_readonly_mapping(*table(caller), ptr.u.gmfn)) return GNTST_general_error;
    side.bytes = bytes;
    return GNTST_okay;
}

void GrantTable::release_copy_side(CopySide& side) {
    if (side.table) release_grant_for_copy(*side.table, side.ref, side.readonly);
    side.table = nullptr;
}

// acquire_grant_for_copy for a v1 table (no transitive grants).
std::int16_t GrantTable::acquire_grant_for_copy(DomainGrants& rt, DomId rd, grant_ref_t ref, DomId ldom,
                                                bool readonly, XenPage*& frame) {
    if (ref >= nr_entries(rt)) return GNTST_bad_gntref;
    ActiveEntry& act = rt.active[ref];
    if (act.pin && (act.domid != ldom || (act.pin & kPinOverflowMask))) return GNTST_general_error;

    const std::uint32_t old_pin = act.pin;
    if (!old_pin || (!readonly && !(old_pin & kPinHostWriteMask))) {
        grant_entry_v1_t entry;
        if (std::int16_t rc = set_status_v1(rt, ref, ldom, readonly, false, entry)) return rc;
        // Xen looks the entry's frame up again even when upgrading a pinned entry, but then copies
        // through the frame recorded at the first pin.
        XenPage* current = nullptr;
        if (std::int16_t rc = granted_frame(rd, entry.frame, current)) {
            clear_status_after(rt, ref, readonly);
            return rc;
        }
        if (!act.pin) {
            act.domid = ldom;
            act.gfn = entry.frame;
            act.frame = current;
        }
    }
    act.pin += readonly ? kPinHostReadInc : kPinHostWriteInc;
    frame = act.frame;
    return GNTST_okay;
}

void GrantTable::release_grant_for_copy(DomainGrants& rt, grant_ref_t ref, bool readonly) {
    rt.active[ref].pin -= readonly ? kPinHostReadInc : kPinHostWriteInc;
    clear_status_after(rt, ref, readonly);
}

// ---------------------------------------------------------------------------------------------
// GNTTABOP_setup_table / GNTTABOP_query_size

long GrantTable::op_setup_table(DomId caller, void* uop, unsigned count, GrantWork& work) {
    gnttab_setup_table_t op = *static_cast<gnttab_setup_table_t*>(uop);
    if (op.nr_frames && !handle_ptr(op.frame_list)) return -XEN_EFAULT;  // guest_handle_okay(frame_list)

    const DomId d = op.dom == DOMID_SELF ? caller : op.dom;  // rcu_lock_domain_by_any_id
    DomainGrants* t = d < DOMID_FIRST_RESERVED ? table(d) : nullptr;
    if (!t || t->dying) {
        op.status = GNTST_bad_domain;
    } else if (d != caller && !domains_.find(caller)->privileged) {  // xsm_grant_setup, XSM_TARGET
        op.status = GNTST_permission_denied;
    } else if (op.nr_frames > limits_.max_grant_frames) {
        op.status = GNTST_general_error;
    } else {
        if (op.nr_frames > t->shared.size()) grow(*t, op.nr_frames);
        op.status = GNTST_okay;
        for (unsigned i = 0; i < op.nr_frames; ++i) handle_ptr(op.frame_list)[i] = frame_gfn(d, *t, i);
    }
    static_cast<gnttab_setup_table_t*>(uop)->status = op.status;
    note(GNTTABOP_setup_table, op.status);
    return 0;
}

long GrantTable::op_query_size(DomId caller, void* uop, unsigned count, GrantWork& work) {
    gnttab_query_size_t op = *static_cast<gnttab_query_size_t*>(uop);
    const DomId d = op.dom == DOMID_SELF ? caller : op.dom;
    const DomainGrants* t = d < DOMID_FIRST_RESERVED ? table(d) : nullptr;
    if (!t || t->dying) {
        op.status = GNTST_bad_domain;
    } else if (d != caller && !domains_.find(caller)->privileged) {  // xsm_grant_query_size, XSM_TARGET
        op.status = GNTST_permission_denied;
    } else {
        op.nr_frames = unsigned(t->shared.size());
        op.max_nr_frames = limits_.max_grant_frames;
        op.status = GNTST_okay;
    }
    *static_cast<gnttab_query_size_t*>(uop) = op;
    note(GNTTABOP_query_size, op.status);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// XENMEM_add_to_physmap(XENMAPSPACE_grant_table)

bool GrantTable::seed_reserved_entry(DomId dom, grant_ref_t ref, Gfn gfn, DomId grantee) {
    if (ref >= GNTTAB_NR_RESERVED_ENTRIES) return false;
    DomainGrants* t = table(dom);
    if (!t) return false;
    auto* entries = reinterpret_cast<grant_entry_v1_t*>(t->shared[0]->bytes);
    entries[ref].frame = static_cast<std::uint32_t>(gfn);
    entries[ref].domid = grantee;
    entries[ref].flags = GTF_permit_access;
    return true;
}

int GrantTable::add_to_physmap(DomId caller, unsigned idx, Gfn gfn) {
    DomainRecord* rec = domains_.find(caller);
    if (!rec) invariant_broken("add_to_physmap from a domain not in the domain table", caller);
    DomainGrants& t = *table(caller);
    if (t.dying) return -XEN_EINVAL;
    // gnttab_get_shared_frame_mfn: grow to idx+1 frames if the limit allows.
    if (idx >= t.shared.size() && idx >= limits_.max_grant_frames) return -XEN_EINVAL;
    GuestMemory& mem = rec->memory;
    // Deliberate: refuse to cover a live grant mapping or RAM another domain has mapped.
    if (gfn >= mem.max_pages() || t.mapped_at.count(gfn) || mem.foreign_refs(gfn)) return -XEN_EINVAL;
    if (idx >= t.shared.size()) grow(t, idx + 1);

    const Gfn old = frame_gfn(caller, t, idx);
    if (old == gfn) return 0;
    if (!mem.map_xen_page(gfn, t.shared[idx].get())) return -XEN_EINVAL;
    if (old != kInvalidGfn) mem.map_xen_page(old, nullptr);  // unhooked from its previous slot
    t.shared_gfn[idx] = gfn;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Domain teardown

void GrantTable::domain_destroyed(DomId domid) {
    auto it = tables_.find(domid);
    if (it == tables_.end()) return;
    DomainGrants& t = *it->second;
    DomainRecord* rec = domains_.find(domid);

    // gnttab_release_mappings: drop every pin and page reference this domain's mappings hold.
    for (Mapping& map : t.maptrack) {
        if (!(map.flags & (GNTMAP_device_map | GNTMAP_host_map))) continue;
        auto rit = tables_.find(map.domid);
        if (rit == tables_.end()) invariant_broken("mapping of a grant whose table is gone", map.domid);
        DomainGrants& rt = *rit->second;
        ActiveEntry& act = rt.active[map.ref];
        const bool readonly = map.flags & GNTMAP_readonly;
        act.pin -= readonly ? kPinHostReadInc : kPinHostWriteInc;
        if (DomainRecord* rrec = domains_.find(map.domid)) rrec->memory.put_foreign_ref(act.gfn);
        if (rec && rec->memory.page(map.gfn) == act.frame->bytes) rec->memory.unmap_foreign_page(map.gfn);
        clear_status_after(rt, map.ref, readonly);
        map = Mapping{};
    }
    t.mapped_at.clear();
    t.live_maps = 0;

    // Its own grant frames leave its physmap; the table stays while others still map its grants.
    for (unsigned idx = 0; idx < t.shared.size(); ++idx) {
        const Gfn g = frame_gfn(domid, t, idx);
        if (rec && g != kInvalidGfn) rec->memory.map_xen_page(g, nullptr);
        t.shared_gfn[idx] = kInvalidGfn;
    }
    t.dying = true;
    reap_dying();
}

void GrantTable::reap_dying() {
    for (auto it = tables_.begin(); it != tables_.end();) {
        const DomainGrants& t = *it->second;
        bool pinned = false;
        if (t.dying)
            for (const ActiveEntry& a : t.active)
                if (a.pin) {
                    pinned = true;
                    break;
                }
        if (t.dying && !pinned)
            it = tables_.erase(it);
        else
            ++it;
    }
}

// ---------------------------------------------------------------------------------------------
// Introspection

unsigned GrantTable::nr_frames(DomId d) const {
    if (const DomainGrants* t = find_table(d)) return unsigned(t->shared.size());
    return domains_.find(d) ? kInitialNrGrantFrames : 0;
}

unsigned GrantTable::active_maps(DomId mapper) const {
    const DomainGrants* t = find_table(mapper);
    return t ? t->live_maps : 0;
}

std::uint32_t GrantTable::pin(DomId granter, grant_ref_t ref) const {
    const DomainGrants* t = find_table(granter);
    return t && ref < t->active.size() ? t->active[ref].pin : 0;
}

unsigned GrantTable::pinned_entries(DomId granter) const {
    const DomainGrants* t = find_table(granter);
    unsigned n = 0;
    if (t)
        for (const ActiveEntry& a : t->active) n += a.pin != 0;
    return n;
}

}  // namespace xensim
