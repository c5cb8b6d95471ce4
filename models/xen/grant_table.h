// The grant table, version 1: how one domain lets another reach a page of its memory.
//
// The problem. Split drivers need a backend (dom0) to read and write pages a frontend owns, without
// giving the backend the frontend's memory. Xen's answer is the grant table: the granting guest
// writes an entry {flags, domid, frame} into a table that lives in pages Xen owns and the guest
// maps into its own physmap; the grantee names the entry by (domain, ref) in GNTTABOP_map_grant_ref
// (the frame appears in the grantee's physmap) or GNTTABOP_copy (Xen copies bytes on its behalf).
//
// What is modelled, following xen/common/grant_table.c of Xen 4.17 (function names cited below):
//  * Guest-shared state: the v1 entries (grant_entry_v1_t) in Xen-owned frames (XenPage) the
//    granter places in its physmap with XENMEM_add_to_physmap(XENMAPSPACE_grant_table)
//    (gnttab_map_frame / gnttab_get_shared_frame_mfn: the table grows up to idx+1 frames). The
//    engine reads an entry exactly once per check into a local copy, validates the copy and uses
//    only the copy (_set_status_v1); the only writes it makes are GTF_reading / GTF_writing in the
//    flags field, set while the entry is pinned and cleared when the last pin of that kind goes
//    (gnttab_clear_flags in unmap_common_complete / release_grant_for_copy). These flags are what
//    makes revocation safe: a guest may clear GTF_permit_access only while both are clear (Linux
//    gnttab_end_foreign_access_ref), so the engine keeps them truthful.
//  * Private state: an active entry per ref (pin counts in Xen's GNTPIN_* layout: host read /
//    host write in bits 8-15 / 0-7; device pins are never taken), and per mapping domain a maptrack
//    table (handle -> {granting domain, ref, GNTMAP_* flags, mapped gfn}). Maptrack grows one
//    frame (MAPTRACK_PER_PAGE = 256 entries) at a time up to max_maptrack_frames, and keeps Xen's
//    free-list discipline (get_maptrack_handle / put_maptrack_handle): handles are handed out from
//    the head, returned to the tail, and the last free entry is never handed out, so a domain can
//    hold at most 256 * max_maptrack_frames - 1 mappings.
//  * map_grant_ref: every check in Xen's order and with Xen's GNTST code — no host/device flag
//    -> GNTST_bad_gntref; device_map / application_map / contains_pte from an auto-translated
//    mapper -> GNTST_general_error; unknown domain or DOMID_SELF (rcu_lock_domain_by_id) ->
//    GNTST_bad_domain; no maptrack handle -> GNTST_no_space (Xen >= 4.16; taken before the ref is even
//    looked at); ref out of range -> GNTST_bad_gntref; pinned by another domain or a pin count about
//    to overflow (pin & 0x80808080) -> GNTST_general_error; entry not GTF_permit_access (GTF_sub_page
//    also refused for maps), domid not the mapper, or GTF_readonly for a writable map ->
//    GNTST_general_error; frame not populated -> GNTST_bad_page; the physmap insertion failing
//    (create_grant_p2m_mapping) -> GNTST_general_error, with pins and flags undone. A domain may map
//    its own grant (dom == caller) as Xen allows.
//  * unmap_grant_ref (and unmap_and_replace with new_addr 0): handle beyond the maptrack or free ->
//    GNTST_bad_handle; a nonzero dev_bus_addr that does not match -> GNTST_general_error; host_addr
//    not naming the mapping -> GNTST_general_error (replace_grant_p2m_mapping); host_addr 0 removes
//    nothing and returns GNTST_okay with the handle still live, as Xen does. Xen flushes once per
//    batch of GNTTAB_UNMAP_BATCH_SIZE (32) unmaps (gnttab_unmap_grant_ref); GrantWork counts one
//    flush per such batch that removed at least one mapping.
//  * copy: a side named by gmfn must be DOMID_SELF, even for dom0 (gnttab_copy_lock_domain) ->
//    GNTST_permission_denied; unknown domain -> GNTST_bad_domain; grant checks as for map but with
//    transient pins (acquire_grant_for_copy / release_grant_for_copy), GTF_readonly destination ->
//    GNTST_general_error; an unpopulated frame -> GNTST_bad_page; offset + len beyond the page ->
//    GNTST_bad_copy_arg (checked after both sides are claimed, gnttab_copy_buf). Bytes are really
//    copied between the pages.
//  * setup_table / query_size: count must be 1 (-XEN_EINVAL); another domain than the caller needs
//    privilege (xsm_grant_setup / xsm_grant_query_size, XSM_TARGET) -> GNTST_permission_denied;
//    nr_frames above the limit -> GNTST_general_error; frame_list receives the gfn where each frame
//    sits in the target's physmap, or ~0 when it is not mapped (mfn_to_gmfn of an unmapped Xen
//    page yields INVALID_M2P_ENTRY).
//  * do_grant_table_op: (int)count < 0 or continuation bits in cmd -> -XEN_EINVAL; ops not
//    modelled (dump_table, transfer, set_version, get_status_frames, get_version, swap_grant_ref,
//    cache_flush, unknown) -> -XEN_ENOSYS; a null uop with count > 0 -> -XEN_EFAULT.
//
// Where it deliberately differs from real Xen:
//  * Every domain is auto-translated (HVM/PVH): host_addr is a guest physical address in the
//    mapper's physmap; low 12 bits are ignored as Xen ignores them (addr >> PAGE_SHIFT). A
//    populated or out-of-range host_addr is refused with GNTST_general_error (Xen's code for any
//    create_grant_p2m_mapping failure); Xen would silently replace RAM at that gfn and crash the
//    domain when it already holds a grant mapping.
//  * unmap checks host_addr against the handle's own mapping; Xen only checks that the gfn holds
//    a grant mapping of the same frame, so it accepts another handle's address for that frame.
//  * A granted frame must be RAM the granter owns. A gfn holding a Xen page (shared_info, grant
//    frames) or a foreign grant mapping is refused with GNTST_general_error for map and copy
//    (Xen's "could not pin" code); Xen lets a guest grant its shared Xen pages and lets copy reach
//    a grant-mapped frame.
//  * A copy into a DOMID_SELF gmfn where the caller holds a read-only grant mapping is refused with
//    GNTST_general_error; in Xen this depends on page-type accounting not modelled here.
//  * No machine addresses: dev_bus_addr is returned as 0 and only 0 is accepted on unmap.
//  * One maptrack free list per domain (Xen keeps one per vCPU and steals between them), so handle
//    numbers match a single-vCPU mapper. No preemption or continuations: a batch always completes.
//  * No XSM beyond the dummy policy, no IOMMU, no sub-page, transitive or v2 grants, no transfer.
//  * A destroyed domain whose grants are still mapped by others stays as a zombie table (Xen keeps
//    the dying domain until its pages are released): others can unmap; new maps and copies against
//    it get GNTST_bad_domain. The table is freed when its last pin goes. The granter's DomainRecord
//    (its RAM) must outlive those mappings; a record left in the DomainTable after its table is
//    freed reads as a fresh, empty table.
//  * add_to_physmap validates before growing (Xen grows the table even when the physmap update
//    then fails) and refuses (-XEN_EINVAL) a gfn holding a live grant mapping or RAM another domain
//    has mapped; RAM at the gfn is otherwise dropped, as Xen frees it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "models/xen/domain_table.h"
#include "models/xen/guest_memory.h"
#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"

namespace xensim {

struct GrantTableLimits {
    unsigned max_grant_frames = 64;       // opt_max_grant_frames, Xen's "gnttab_max_frames" default
    unsigned max_maptrack_frames = 1024;  // opt_max_maptrack_frames, "gnttab_max_maptrack_frames"
};

// What one hypercall did, so the SystemC wrapper can charge the cost model exactly.
struct GrantWork {
    unsigned maps = 0;         // successful map operations
    unsigned unmaps = 0;       // successful unmap operations that removed a mapping
    unsigned tlb_flushes = 0;  // one per unmap batch (32 ops) that removed at least one mapping
    unsigned copies = 0;       // successful copy operations
    std::uint64_t bytes_copied = 0;
};

// "GNTST_bad_gntref" for -3 and so on; "GNTST_unknown" outside the ABI's range.
const char* gntst_name(int status);
// "GNTTABOP_map_grant_ref" for 0 and so on; "GNTTABOP_unknown" for an unassigned command.
const char* gnttabop_name(unsigned cmd);

class GrantTable {
  public:
    // Xen's constants, kept by name.
    static constexpr unsigned kEntriesPerFrame = kPageSize / sizeof(grant_entry_v1_t);  // SHGNT_PER_PAGE_V1
    static constexpr unsigned kMaptrackPerPage = 256;           // PAGE_SIZE / sizeof(struct grant_mapping)
    static constexpr unsigned kInitialNrGrantFrames = 1;        // INITIAL_NR_GRANT_FRAMES (x86)
    static constexpr unsigned kUnmapBatchSize = 32;             // GNTTAB_UNMAP_BATCH_SIZE
    static constexpr std::uint32_t kPinHostWriteInc = 1u << 0;  // GNTPIN_hstw_inc
    static constexpr std::uint32_t kPinHostWriteMask = 0xFFu << 0;
    static constexpr std::uint32_t kPinHostReadInc = 1u << 8;  // GNTPIN_hstr_inc
    static constexpr std::uint32_t kPinHostReadMask = 0xFFu << 8;
    static constexpr std::uint32_t kPinOverflowMask = 0x80808080u;
    static constexpr Gfn kInvalidGfn = ~Gfn(0);
    static constexpr unsigned kNrGnttabops = 13;  // GNTTABOP_map_grant_ref .. GNTTABOP_cache_flush
    static constexpr unsigned kNrGntst = 14;      // GNTST_okay .. GNTST_no_space

    GrantTable(DomainTable& domains, StatsGroup& stats, GrantTableLimits limits = {});
    GrantTable(const GrantTable&) = delete;
    GrantTable& operator=(const GrantTable&) = delete;
    ~GrantTable();

    // do_grant_table_op: cmd is GNTTABOP_*, uop points at an array of `count` ABI structs (the
    // guest's own memory; pointers inside them — setup_table's frame_list — are host pointers).
    // Returns 0 or a negative XEN_E* errno for the whole call; per-op results go in each struct's
    // status field as Xen does. `work` is reset and then describes this call.
    long hypercall(DomId caller, unsigned cmd, void* uop, unsigned count, GrantWork& work);
    // XENMEM_add_to_physmap with XENMAPSPACE_grant_table: grows the table to idx+1 frames if within
    // max_grant_frames and places shared frame idx at gfn in the caller's physmap (moving it if it
    // was mapped elsewhere). 0 or -XEN_EINVAL.
    int add_to_physmap(DomId caller, unsigned idx, Gfn gfn);
    // The toolstack writes a reserved entry (GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE)
    // into a domain's table before the domain runs, as libxl's xc_dom_gnttab_seed does: frame
    // `gfn` of `dom` granted to `grantee`. False for an unknown domain or a ref beyond the
    // reserved range.
    bool seed_reserved_entry(DomId dom, grant_ref_t ref, Gfn gfn, DomId grantee);
    // The domain is going away: its own mappings of others' grants are released
    // (gnttab_release_mappings) and its table freed, or kept as a zombie while others map its grants.
    void domain_destroyed(DomId domid);

    // Introspection for tests and reports.
    unsigned nr_frames(DomId) const;                          // 0 for an unknown domain
    unsigned active_maps(DomId mapper) const;                 // live maptrack entries
    std::uint32_t pin(DomId granter, grant_ref_t ref) const;  // GNTPIN_* word of the active entry
    unsigned pinned_entries(DomId granter) const;             // refs with a nonzero pin

  private:
    friend const char* gnttabop_name(unsigned cmd);

    struct ActiveEntry {
        std::uint32_t pin = 0;
        DomId domid = 0;  // the domain holding the pins
        Gfn gfn = 0;      // the granter's frame, fixed while pinned
        XenPage* frame = nullptr;
    };
    struct Mapping {
        std::uint32_t flags = 0;  // GNTMAP_*; 0 = free
        DomId domid = 0;          // granting domain
        grant_ref_t ref = 0;
        Gfn gfn = 0;  // where the frame sits in the mapper's physmap
    };
    struct DomainGrants {
        std::vector<std::unique_ptr<XenPage>> shared;  // the v1 entries, guest-shared
        std::vector<Gfn> shared_gfn;                   // where each frame was placed, or kInvalidGfn
        std::vector<ActiveEntry> active;               // one per ref
        std::vector<Mapping> maptrack;                 // size is Xen's maptrack_limit
        std::deque<grant_handle_t> maptrack_free;      // head is handed out, tail receives
        std::map<Gfn, grant_handle_t> mapped_at;       // live host mappings by gfn in this physmap
        unsigned maptrack_frames = 0;
        unsigned live_maps = 0;
        bool dying = false;
    };
    struct OpDesc;
    struct Stats {
        explicit Stats(StatsGroup& g);
        CounterFamily hypercalls, ops, errors, call_errors;
        Counter maps, unmaps, copies, bytes_copied, tlb_flushes, maptrack_peak;
        std::uint64_t* call_slots[kNrGnttabops] = {};  // hypercalls.at(name), once used
        std::uint64_t* op_slots[kNrGnttabops] = {};    // ops.at(name), once used
        std::uint64_t* error_slots[kNrGntst] = {};     // errors.at(GNTST name), by -status
    };
    struct CopySide {
        DomId dom = 0;
        DomainGrants* table = nullptr;  // set when the side holds a transient grant pin
        grant_ref_t ref = 0;
        bool readonly = true;
        std::uint8_t* bytes = nullptr;
    };

    static const OpDesc* find_op(unsigned cmd);
    long op_map_grant_ref(DomId caller, void* uop, unsigned count, GrantWork& work);
    long op_unmap_grant_ref(DomId caller, void* uop, unsigned count, GrantWork& work);
    long op_unmap_and_replace(DomId caller, void* uop, unsigned count, GrantWork& work);
    long op_setup_table(DomId caller, void* uop, unsigned count, GrantWork& work);
    long op_copy(DomId caller, void* uop, unsigned count, GrantWork& work);
    long op_query_size(DomId caller, void* uop, unsigned count, GrantWork& work);

    std::int16_t map_one(DomId caller, gnttab_map_grant_ref_t& op);
    std::int16_t unmap_one(DomId caller, std::uint64_t host_addr, std::uint64_t dev_bus_addr,
                           std::uint64_t new_addr, grant_handle_t handle, bool& removed);
    std::int16_t copy_one(DomId caller, const gnttab_copy_t& op, std::uint64_t& bytes);
    std::int16_t claim_copy_side(DomId caller, const gnttab_copy_t& op, bool source, CopySide& side);
    void release_copy_side(CopySide& side);
    std::int16_t acquire_grant_for_copy(DomainGrants& rt, DomId rd, grant_ref_t ref, DomId ldom,
                                        bool readonly, XenPage*& frame);
    void release_grant_for_copy(DomainGrants& rt, grant_ref_t ref, bool readonly);

    // Shared entries: one read into a copy, and the only writes the engine makes.
    grant_entry_v1_t read_entry(const DomainGrants& t, grant_ref_t ref) const;
    std::uint16_t read_flags(const DomainGrants& t, grant_ref_t ref) const;
    void write_flags(DomainGrants& t, grant_ref_t ref, std::uint16_t flags);
    void clear_flags(DomainGrants& t, grant_ref_t ref, std::uint16_t mask);
    std::int16_t set_status_v1(DomainGrants& t, grant_ref_t ref, DomId ldom, bool readonly, bool mapflag,
                               grant_entry_v1_t& entry);
    void clear_status_after(DomainGrants& t, grant_ref_t ref, bool readonly);
    std::int16_t granted_frame(DomId rd, Gfn gfn, XenPage*& frame);

    DomainGrants* table(DomId d);  // created on first use for a domain that exists
    const DomainGrants* find_table(DomId d) const;
    void grow(DomainGrants& t, unsigned frames);
    Gfn frame_gfn(DomId d, const DomainGrants& t, unsigned idx) const;
    unsigned nr_entries(const DomainGrants& t) const { return unsigned(t.active.size()); }
    bool get_maptrack_handle(DomainGrants& t, grant_handle_t& handle);
    void put_maptrack_handle(DomainGrants& t, grant_handle_t handle);
    bool holds_readonly_mapping(const DomainGrants& t, Gfn gfn) const;
    void note(unsigned cmd, std::int16_t status);
    void note_maptrack(const DomainGrants& t);
    void reap_dying();

    DomainTable& domains_;
    GrantTableLimits limits_;
    Stats stats_;
    std::map<DomId, std::unique_ptr<DomainGrants>> tables_;
};

}  // namespace xensim
