// Grant table v1 engine, driven the way guests drive it: the granter writes entries through its
// own physmap (the grant frames it placed with XENMEM_add_to_physmap), the grantee issues
// GNTTABOP_* hypercalls with ABI structs, and every test asserts statuses, the shared flags the
// granter sees, pin counts and the memory each domain can reach. Expected values follow
// xen/common/grant_table.c (Xen 4.17); the function behind each is named in the row's intent or
// in grant_table.h.
#include "models/xen/grant_table.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <type_traits>
#include <vector>

namespace xensim {
namespace {

constexpr DomId kDom0 = 0;   // privileged
constexpr DomId kFront = 1;  // the granter in most tests
constexpr DomId kBack = 2;   // the grantee in most tests
constexpr DomId kOther = 3;  // a bystander
constexpr DomId kNoSuchDomain = 42;
constexpr std::uint64_t kPages = 2048;
constexpr Gfn kGntGfn = 0x80;     // grant frame i sits at kGntGfn + i in every domain
constexpr Gfn kHostGfn = 0x400;   // first gfn the grantee maps grants at (unpopulated)
constexpr grant_ref_t kRef = 10;  // the standard grant
constexpr std::uint16_t kRW = GTF_reading | GTF_writing;
constexpr std::uint32_t kHostMap = GNTMAP_host_map;
constexpr std::uint32_t kHostMapRo = GNTMAP_host_map | GNTMAP_readonly;

// Four domains, a grant table, and the guest-side helpers a frontend and a backend would use.
struct World {
    DomainTable domains;
    StatsGroup stats{"gnttab"};
    std::unique_ptr<GrantTable> gt;

    explicit World(GrantTableLimits limits = {}) {
        domains.add(kDom0, "dom0", true, 1, kPages);
        domains.add(kFront, "front", false, 1, kPages);
        domains.add(kBack, "back", false, 1, kPages);
        domains.add(kOther, "other", false, 1, kPages);
        gt = std::make_unique<GrantTable>(domains, stats, limits);
        for (DomId d : {kDom0, kFront, kBack, kOther}) EXPECT_EQ(gt->add_to_physmap(d, 0, kGntGfn), 0);
    }

    GuestMemory& mem(DomId d) { return domains.find(d)->memory; }

    Gfn alloc(DomId d, std::uint8_t fill) {
        auto g = mem(d).allocate_page();
        EXPECT_TRUE(g.has_value());
        std::memset(mem(d).page(*g), fill, kPageSize);
        return *g;
    }

    static std::uint64_t entry_gpa(grant_ref_t ref) {
        return ((kGntGfn + ref / GrantTable::kEntriesPerFrame) << kPageShift) +
               (ref % GrantTable::kEntriesPerFrame) * sizeof(grant_entry_v1_t);
    }

    // gnttab_grant_foreign_access_ref: frame and domid first, then the flags (after a wmb).
    void grant(DomId granter, grant_ref_t ref, DomId to, Gfn frame, std::uint16_t flags) {
        const std::uint64_t gpa = entry_gpa(ref);
        const auto frame32 = std::uint32_t(frame);
        ASSERT_TRUE(mem(granter).write(gpa + offsetof(grant_entry_v1_t, frame), &frame32, sizeof(frame32)));
        ASSERT_TRUE(mem(granter).write(gpa + offsetof(grant_entry_v1_t, domid), &to, sizeof(to)));
        set_flags(granter, ref, flags);
    }
    void set_flags(DomId granter, grant_ref_t ref, std::uint16_t flags) {
        ASSERT_TRUE(
            mem(granter).write(entry_gpa(ref) + offsetof(grant_entry_v1_t, flags), &flags, sizeof(flags)));
    }
    void set_frame(DomId granter, grant_ref_t ref, Gfn frame) {
        const auto frame32 = std::uint32_t(frame);
        ASSERT_TRUE(mem(granter).write(entry_gpa(ref) + offsetof(grant_entry_v1_t, frame), &frame32, 4));
    }
    std::uint16_t flags(DomId granter, grant_ref_t ref) {
        std::uint16_t f = 0xffff;
        EXPECT_TRUE(mem(granter).read(entry_gpa(ref) + offsetof(grant_entry_v1_t, flags), &f, sizeof(f)));
        return f;
    }

    long call(DomId caller, unsigned cmd, void* uop, unsigned count = 1) {
        GrantWork work;
        return gt->hypercall(caller, cmd, uop, count, work);
    }

    gnttab_map_grant_ref_t map(DomId mapper, DomId granter, grant_ref_t ref, std::uint64_t host_addr,
                               std::uint32_t flags) {
        gnttab_map_grant_ref_t op{};
        op.host_addr = host_addr;
        op.flags = flags;
        op.ref = ref;
        op.dom = granter;
        op.handle = 0xdeadbeef;
        EXPECT_EQ(call(mapper, GNTTABOP_map_grant_ref, &op), 0);
        return op;
    }
    gnttab_map_grant_ref_t map_at(DomId mapper, DomId granter, grant_ref_t ref, Gfn gfn,
                                  std::uint32_t flags) {
        return map(mapper, granter, ref, gfn << kPageShift, flags);
    }

    std::int16_t unmap(DomId mapper, grant_handle_t handle, std::uint64_t host_addr,
                       std::uint64_t dev_bus_addr = 0) {
        gnttab_unmap_grant_ref_t op{};
        op.host_addr = host_addr;
        op.dev_bus_addr = dev_bus_addr;
        op.handle = handle;
        op.status = 99;
        EXPECT_EQ(call(mapper, GNTTABOP_unmap_grant_ref, &op), 0);
        return op.status;
    }
    std::int16_t unmap_at(DomId mapper, grant_handle_t handle, Gfn gfn) {
        return unmap(mapper, handle, gfn << kPageShift);
    }

    std::int16_t copy(DomId caller, gnttab_copy_t op) {
        op.status = 99;
        EXPECT_EQ(call(caller, GNTTABOP_copy, &op), 0);
        return op.status;
    }
};

// One side of a GNTTABOP_copy, named the way the ABI names it.
struct Side {
    bool gref;
    DomId domid;
    std::uint64_t ref_or_gmfn;
    std::uint16_t offset;
};
Side gref(DomId d, grant_ref_t r, std::uint16_t off = 0) { return {true, d, r, off}; }
Side gmfn(Gfn g, std::uint16_t off = 0, DomId d = DOMID_SELF) { return {false, d, g, off}; }

gnttab_copy_t copy_op(Side src, Side dst, std::uint16_t len) {
    gnttab_copy_t op{};
    if (src.gref)
        op.source.u.ref = grant_ref_t(src.ref_or_gmfn);
    else
        op.source.u.gmfn = src.ref_or_gmfn;
    op.source.domid = src.domid;
    op.source.offset = src.offset;
    if (dst.gref)
        op.dest.u.ref = grant_ref_t(dst.ref_or_gmfn);
    else
        op.dest.u.gmfn = dst.ref_or_gmfn;
    op.dest.domid = dst.domid;
    op.dest.offset = dst.offset;
    op.len = len;
    op.flags = std::uint16_t((src.gref ? GNTCOPY_source_gref : 0) | (dst.gref ? GNTCOPY_dest_gref : 0));
    return op;
}

// A guest handle is a bare pointer below interface version 0x00030201 and a struct {T* p;} from
// then on (set_xen_guest_handle assumes the struct).
template <class Handle, class T>
void set_handle(Handle& h, T* p) {
    if constexpr (std::is_pointer_v<Handle>)
        h = p;
    else
        h.p = p;
}

bool page_filled(const std::uint8_t* p, std::uint8_t v, std::size_t from = 0, std::size_t to = kPageSize) {
    for (std::size_t i = from; i < to; ++i)
        if (p[i] != v) return false;
    return true;
}

// ---------------------------------------------------------------------------------------------
// The ABI the engine is built on.

TEST(GrantTableAbi, EntryGeometry) {
    EXPECT_EQ(sizeof(grant_entry_v1_t), 8u);
    EXPECT_EQ(GrantTable::kEntriesPerFrame, 512u);  // SHGNT_PER_PAGE_V1
    EXPECT_EQ(offsetof(grant_entry_v1_t, flags), 0u);
    EXPECT_EQ(offsetof(grant_entry_v1_t, domid), 2u);
    EXPECT_EQ(offsetof(grant_entry_v1_t, frame), 4u);
}

TEST(GrantTableAbi, Names) {
    EXPECT_STREQ(gntst_name(GNTST_okay), "GNTST_okay");
    EXPECT_STREQ(gntst_name(GNTST_bad_gntref), "GNTST_bad_gntref");
    EXPECT_STREQ(gntst_name(GNTST_no_space), "GNTST_no_space");
    EXPECT_STREQ(gntst_name(-14), "GNTST_unknown");
    EXPECT_STREQ(gntst_name(1), "GNTST_unknown");
    EXPECT_STREQ(gnttabop_name(GNTTABOP_copy), "GNTTABOP_copy");
    EXPECT_STREQ(gnttabop_name(12), "GNTTABOP_cache_flush");
    EXPECT_STREQ(gnttabop_name(13), "GNTTABOP_unknown");
}

// ---------------------------------------------------------------------------------------------
// Permission matrix: entry flags x entry domid x access kind. A failed access leaves the
// grantee's physmap and both pages untouched and the shared flags as the granter wrote them.

enum class Access { MapRo, MapRw, CopyFromGrant, CopyToGrant };

struct PermRow {
    const char* intent;
    std::uint16_t entry_flags;
    bool granted_to_back;  // false: the entry names kOther
    Access access;
    std::int16_t status;
};

const PermRow kPermissionMatrix[] = {
    {"permit: read-only map", GTF_permit_access, true, Access::MapRo, GNTST_okay},
    {"permit: writable map", GTF_permit_access, true, Access::MapRw, GNTST_okay},
    {"permit: copy out of the grant", GTF_permit_access, true, Access::CopyFromGrant, GNTST_okay},
    {"permit: copy into the grant", GTF_permit_access, true, Access::CopyToGrant, GNTST_okay},
    {"readonly grant: read-only map", GTF_permit_access | GTF_readonly, true, Access::MapRo, GNTST_okay},
    {"readonly grant: writable map refused (_set_status_v1)", GTF_permit_access | GTF_readonly, true,
     Access::MapRw, GNTST_general_error},
    {"readonly grant: copy out", GTF_permit_access | GTF_readonly, true, Access::CopyFromGrant, GNTST_okay},
    {"readonly grant: copy in refused (_set_status_v1)", GTF_permit_access | GTF_readonly, true,
     Access::CopyToGrant, GNTST_general_error},
    {"granted to another domain: ro map", GTF_permit_access, false, Access::MapRo, GNTST_general_error},
    {"granted to another domain: rw map", GTF_permit_access, false, Access::MapRw, GNTST_general_error},
    {"granted to another domain: copy out", GTF_permit_access, false, Access::CopyFromGrant,
     GNTST_general_error},
    {"granted to another domain: copy in", GTF_permit_access, false, Access::CopyToGrant,
     GNTST_general_error},
    {"revoked (GTF_invalid): ro map", GTF_invalid, true, Access::MapRo, GNTST_general_error},
    {"revoked (GTF_invalid): rw map", GTF_invalid, true, Access::MapRw, GNTST_general_error},
    {"revoked (GTF_invalid): copy out", GTF_invalid, true, Access::CopyFromGrant, GNTST_general_error},
    {"revoked (GTF_invalid): copy in", GTF_invalid, true, Access::CopyToGrant, GNTST_general_error},
    {"revoked but readonly bit left: ro map", GTF_readonly, true, Access::MapRo, GNTST_general_error},
    {"accept_transfer is not access: ro map", GTF_accept_transfer, true, Access::MapRo, GNTST_general_error},
    {"accept_transfer is not access: copy out", GTF_accept_transfer, true, Access::CopyFromGrant,
     GNTST_general_error},
    {"transitive type is v2 only: ro map", GTF_transitive, true, Access::MapRo, GNTST_general_error},
    {"transitive type is v2 only: copy out", GTF_transitive, true, Access::CopyFromGrant,
     GNTST_general_error},
    {"sub_page bit refused for maps (mask includes GTF_sub_page)", GTF_permit_access | GTF_sub_page, true,
     Access::MapRo, GNTST_general_error},
    {"sub_page bit ignored for copies in v1", GTF_permit_access | GTF_sub_page, true, Access::CopyFromGrant,
     GNTST_okay},
};

TEST(GrantTablePermissions, Matrix) {
    for (const PermRow& row : kPermissionMatrix) {
        SCOPED_TRACE(row.intent);
        World w;
        const Gfn page = w.alloc(kFront, 0xAA);
        const Gfn own = w.alloc(kBack, 0x55);
        w.grant(kFront, kRef, row.granted_to_back ? kBack : kOther, page, row.entry_flags);
        const bool ok = row.status == GNTST_okay;

        switch (row.access) {
            case Access::MapRo:
            case Access::MapRw: {
                const bool rw = row.access == Access::MapRw;
                auto op = w.map_at(kBack, kFront, kRef, kHostGfn, rw ? kHostMap : kHostMapRo);
                EXPECT_EQ(op.status, row.status);
                if (ok) {
                    EXPECT_EQ(w.mem(kBack).page(kHostGfn), w.mem(kFront).page(page));
                    EXPECT_EQ(w.flags(kFront, kRef), row.entry_flags | GTF_reading | (rw ? GTF_writing : 0));
                    EXPECT_EQ(w.gt->active_maps(kBack), 1u);
                    EXPECT_EQ(w.mem(kFront).foreign_refs(page), 1u);
                } else {
                    EXPECT_EQ(w.mem(kBack).page(kHostGfn), nullptr);
                    EXPECT_EQ(w.flags(kFront, kRef), row.entry_flags);
                    EXPECT_EQ(w.gt->active_maps(kBack), 0u);
                    EXPECT_EQ(w.mem(kFront).foreign_refs(page), 0u);
                    EXPECT_EQ(op.handle, 0xdeadbeefu);  // untouched on failure
                }
                break;
            }
            case Access::CopyFromGrant:
                EXPECT_EQ(w.copy(kBack, copy_op(gref(kFront, kRef), gmfn(own), kPageSize)), row.status);
                EXPECT_TRUE(page_filled(w.mem(kBack).page(own), ok ? 0xAA : 0x55));
                EXPECT_EQ(w.flags(kFront, kRef), row.entry_flags);
                break;
            case Access::CopyToGrant:
                EXPECT_EQ(w.copy(kBack, copy_op(gmfn(own), gref(kFront, kRef), kPageSize)), row.status);
                EXPECT_TRUE(page_filled(w.mem(kFront).page(page), ok ? 0x55 : 0xAA));
                EXPECT_EQ(w.flags(kFront, kRef), row.entry_flags);
                break;
        }
        EXPECT_EQ(w.gt->pin(kFront, kRef), ok && row.access <= Access::MapRw
                                               ? (row.access == Access::MapRw ? GrantTable::kPinHostWriteInc
                                                                              : GrantTable::kPinHostReadInc)
                                               : 0u);
    }
}

// ---------------------------------------------------------------------------------------------
// Pin / unpin sequences: GTF_reading and GTF_writing in the shared entry and the GNTPIN word after
// every step (unmap_common_complete, release_grant_for_copy).

enum class Act { MapRo, MapRw, Unmap, CopyOut, CopyIn, Revoke, Reframe };

struct Step {
    Act act;
    int slot;  // which mapping (host gfn kHostGfn + slot) for map / unmap
    std::int16_t status;
    std::uint16_t rw;   // expected (flags & (GTF_reading | GTF_writing))
    std::uint32_t pin;  // expected GNTPIN word
};

struct PinCase {
    const char* intent;
    std::uint16_t entry_flags;
    std::vector<Step> steps;
};

constexpr std::uint32_t R1 = GrantTable::kPinHostReadInc;
constexpr std::uint32_t W1 = GrantTable::kPinHostWriteInc;
constexpr std::uint16_t kR = GTF_reading;
constexpr std::int16_t kOk = GNTST_okay;

const PinCase kPinCases[] = {
    {"two read-only maps share the entry; GTF_reading stays until the last unmap",
     GTF_permit_access,
     {{Act::MapRo, 0, kOk, kR, R1},
      {Act::MapRo, 1, kOk, kR, 2 * R1},
      {Act::Unmap, 0, kOk, kR, R1},
      {Act::Unmap, 1, kOk, 0, 0}}},
    {"read-only then writable: GTF_writing goes with the writable pin",
     GTF_permit_access,
     {{Act::MapRo, 0, kOk, kR, R1},
      {Act::MapRw, 1, kOk, kRW, R1 + W1},
      {Act::Unmap, 1, kOk, kR, R1},
      {Act::Unmap, 0, kOk, 0, 0}}},
    {"writable then read-only, writable unmapped first",
     GTF_permit_access,
     {{Act::MapRw, 0, kOk, kRW, W1},
      {Act::MapRo, 1, kOk, kRW, W1 + R1},
      {Act::Unmap, 0, kOk, kR, R1},
      {Act::Unmap, 1, kOk, 0, 0}}},
    {"writable then read-only, read-only unmapped first keeps GTF_writing",
     GTF_permit_access,
     {{Act::MapRw, 0, kOk, kRW, W1},
      {Act::MapRo, 1, kOk, kRW, W1 + R1},
      {Act::Unmap, 1, kOk, kRW, W1},
      {Act::Unmap, 0, kOk, 0, 0}}},
    {"two writable maps: GTF_writing stays until both go",
     GTF_permit_access,
     {{Act::MapRw, 0, kOk, kRW, W1},
      {Act::MapRw, 1, kOk, kRW, 2 * W1},
      {Act::Unmap, 0, kOk, kRW, W1},
      {Act::Unmap, 1, kOk, 0, 0}}},
    {"copies take only transient pins",
     GTF_permit_access,
     {{Act::CopyOut, 0, kOk, 0, 0}, {Act::CopyIn, 0, kOk, 0, 0}}},
    {"copy into a read-mapped grant upgrades transiently and drops GTF_writing after",
     GTF_permit_access,
     {{Act::MapRo, 0, kOk, kR, R1}, {Act::CopyIn, 0, kOk, kR, R1}, {Act::Unmap, 0, kOk, 0, 0}}},
    {"copy out of a write-mapped grant leaves the writable pin alone",
     GTF_permit_access,
     {{Act::MapRw, 0, kOk, kRW, W1}, {Act::CopyOut, 0, kOk, kRW, W1}, {Act::Unmap, 0, kOk, 0, 0}}},
    {"readonly grant pinned read-only still refuses writable maps and copies in",
     GTF_permit_access | GTF_readonly,
     {{Act::MapRo, 0, kOk, kR, R1},
      {Act::MapRw, 1, GNTST_general_error, kR, R1},
      {Act::CopyIn, 0, GNTST_general_error, kR, R1},
      {Act::Unmap, 0, kOk, 0, 0}}},
    {"revoking while pinned is not seen until unpinned (the entry is only checked when pin == 0)",
     GTF_permit_access,
     {{Act::MapRo, 0, kOk, kR, R1},
      {Act::Revoke, 0, kOk, kR, R1},
      {Act::MapRw, 1, kOk, kRW, R1 + W1},
      {Act::Unmap, 1, kOk, kR, R1},
      {Act::Unmap, 0, kOk, 0, 0},
      {Act::MapRo, 2, GNTST_general_error, 0, 0},
      {Act::CopyOut, 0, GNTST_general_error, 0, 0}}},
    {"a second unmap of one handle is a bad handle and changes nothing",
     GTF_permit_access,
     {{Act::MapRo, 0, kOk, kR, R1},
      {Act::MapRo, 1, kOk, kR, 2 * R1},
      {Act::Unmap, 0, kOk, kR, R1},
      {Act::Unmap, 0, GNTST_bad_handle, kR, R1},
      {Act::Unmap, 1, kOk, 0, 0}}},
    {"a changed frame field is not used while pinned (the active entry keeps the frame)",
     GTF_permit_access,
     {{Act::MapRo, 0, kOk, kR, R1},
      {Act::Reframe, 0, kOk, kR, R1},
      {Act::MapRo, 1, kOk, kR, 2 * R1},  // checked below: slot 1 shows the original page
      {Act::Unmap, 0, kOk, kR, R1},
      {Act::Unmap, 1, kOk, 0, 0}}},
};

TEST(GrantTablePins, Sequences) {
    for (const PinCase& c : kPinCases) {
        SCOPED_TRACE(c.intent);
        World w;
        const Gfn page = w.alloc(kFront, 0xAA);
        const Gfn other_page = w.alloc(kFront, 0xBB);
        const Gfn own_out = w.alloc(kBack, 0x00);  // CopyOut lands here
        const Gfn own_in = w.alloc(kBack, 0x55);   // CopyIn reads from here
        w.grant(kFront, kRef, kBack, page, c.entry_flags);
        grant_handle_t handles[4] = {};
        int n = 0;
        for (const Step& s : c.steps) {
            SCOPED_TRACE(::testing::Message() << "step " << n++);
            const Gfn host = kHostGfn + Gfn(s.slot);
            std::int16_t status = GNTST_okay;
            switch (s.act) {
                case Act::MapRo:
                case Act::MapRw: {
                    auto op =
                        w.map_at(kBack, kFront, kRef, host, s.act == Act::MapRw ? kHostMap : kHostMapRo);
                    status = op.status;
                    if (status == GNTST_okay) {
                        handles[s.slot] = op.handle;
                        EXPECT_EQ(w.mem(kBack).page(host), w.mem(kFront).page(page));
                    } else {
                        EXPECT_EQ(w.mem(kBack).page(host), nullptr);
                    }
                    break;
                }
                case Act::Unmap:
                    status = w.unmap_at(kBack, handles[s.slot], host);
                    EXPECT_EQ(w.mem(kBack).page(host), nullptr);
                    break;
                case Act::CopyOut:
                    status = w.copy(kBack, copy_op(gref(kFront, kRef), gmfn(own_out), 16));
                    EXPECT_EQ(w.mem(kBack).page(own_out)[0],
                              status == GNTST_okay ? w.mem(kFront).page(page)[0] : 0);
                    break;
                case Act::CopyIn:
                    status = w.copy(kBack, copy_op(gmfn(own_in), gref(kFront, kRef), 16));
                    EXPECT_EQ(w.mem(kFront).page(page)[0], status == GNTST_okay ? 0x55 : 0xAA);
                    break;
                case Act::Revoke:  // a misbehaving granter clears GTF_permit_access while mapped
                    w.set_flags(kFront, kRef, std::uint16_t(w.flags(kFront, kRef) & ~GTF_permit_access));
                    break;
                case Act::Reframe:
                    w.set_frame(kFront, kRef, other_page);
                    break;
            }
            EXPECT_EQ(status, s.status);
            EXPECT_EQ(w.flags(kFront, kRef) & kRW, s.rw);
            EXPECT_EQ(w.gt->pin(kFront, kRef), s.pin);
        }
        EXPECT_EQ(w.mem(kFront).foreign_refs(page), 0u);
        EXPECT_EQ(w.mem(kFront).foreign_refs(other_page), 0u);
        EXPECT_EQ(w.gt->active_maps(kBack), 0u);
    }
}

// Every GNTTABOP_map_grant_ref status, in Xen's order of checks (map_grant_ref,
// create_grant_p2m_mapping).

struct StatusRow {
    const char* intent;
    std::function<std::int16_t(World&)> run;
    std::int16_t status;
};

// The standard setup: front grants kRef (writable) over a 0xAA page to back; back owns a 0x55
// page. Returns {front page, back page}.
std::pair<Gfn, Gfn> standard(World& w) {
    const Gfn page = w.alloc(kFront, 0xAA);
    const Gfn own = w.alloc(kBack, 0x55);
    w.grant(kFront, kRef, kBack, page, GTF_permit_access);
    return {page, own};
}

std::int16_t map_status(World& w, std::uint32_t flags, DomId dom = kFront, grant_ref_t ref = kRef,
                        std::uint64_t host_addr = kHostGfn << kPageShift) {
    standard(w);
    return w.map(kBack, dom, ref, host_addr, flags).status;
}

const StatusRow kMapStatuses[] = {
    {"no host_map or device_map flag", [](World& w) { return map_status(w, 0); }, GNTST_bad_gntref},
    {"GNTMAP_readonly alone maps nothing", [](World& w) { return map_status(w, GNTMAP_readonly); },
     GNTST_bad_gntref},
    {"device_map from a translated mapper", [](World& w) { return map_status(w, GNTMAP_device_map); },
     GNTST_general_error},
    {"host_map with device_map", [](World& w) { return map_status(w, kHostMap | GNTMAP_device_map); },
     GNTST_general_error},
    {"host_map with application_map",
     [](World& w) { return map_status(w, kHostMap | GNTMAP_application_map); }, GNTST_general_error},
    {"host_map with contains_pte", [](World& w) { return map_status(w, kHostMap | GNTMAP_contains_pte); },
     GNTST_general_error},
    {"guest-available flag bits are refused by create_grant_p2m_mapping",
     [](World& w) { return map_status(w, kHostMap | (1u << 16)); }, GNTST_general_error},
    {"DOMID_SELF is not a domain id for map (rcu_lock_domain_by_id)",
     [](World& w) { return map_status(w, kHostMap, DOMID_SELF); }, GNTST_bad_domain},
    {"unknown domain", [](World& w) { return map_status(w, kHostMap, kNoSuchDomain); }, GNTST_bad_domain},
    {"first ref past a one-frame table", [](World& w) { return map_status(w, kHostMap, kFront, 512); },
     GNTST_bad_gntref},
    {"ref 0xffffffff", [](World& w) { return map_status(w, kHostMap, kFront, 0xffffffffu); },
     GNTST_bad_gntref},
    {"granted frame not populated in the granter (get_paged_frame)",
     [](World& w) {
         standard(w);
         w.grant(kFront, 11, kBack, 0x700, GTF_permit_access);
         return w.map_at(kBack, kFront, 11, kHostGfn, kHostMap).status;
     },
     GNTST_bad_page},
    {"granted frame is a Xen page, not granter RAM (deliberate: could-not-pin code)",
     [](World& w) {
         standard(w);
         w.grant(kFront, 11, kBack, kGntGfn, GTF_permit_access);
         return w.map_at(kBack, kFront, 11, kHostGfn, kHostMapRo).status;
     },
     GNTST_general_error},
    {"host_addr beyond the mapper's physmap",
     [](World& w) { return map_status(w, kHostMap, kFront, kRef, (kPages + 5) << kPageShift); },
     GNTST_general_error},
    {"host_addr on the mapper's own RAM (deliberate: refused, not replaced)",
     [](World& w) {
         auto [page, own] = standard(w);
         return w.map_at(kBack, kFront, kRef, own, kHostMap).status;
     },
     GNTST_general_error},
    {"host_addr on an existing grant mapping",
     [](World& w) {
         standard(w);
         EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status, GNTST_okay);
         return w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status;
     },
     GNTST_general_error},
    {"offset bits of host_addr are ignored (addr >> PAGE_SHIFT)",
     [](World& w) { return map_status(w, kHostMap, kFront, kRef, (kHostGfn << kPageShift) | 0x123); },
     GNTST_okay},
    {"a domain may map its own grant",
     [](World& w) {
         const Gfn page = w.alloc(kFront, 0xAA);
         w.grant(kFront, 12, kFront, page, GTF_permit_access);
         auto op = w.map_at(kFront, kFront, 12, kHostGfn, kHostMap);
         EXPECT_EQ(w.mem(kFront).page(kHostGfn), w.mem(kFront).page(page));
         return op.status;
     },
     GNTST_okay},
    {"a ref pinned by another domain cannot be mapped by a third (act->domid check)",
     [](World& w) {
         auto [page, own] = standard(w);
         EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status, GNTST_okay);
         w.grant(kFront, kRef, kOther, page, GTF_permit_access | GTF_reading);  // re-aimed while pinned
         return w.map_at(kOther, kFront, kRef, kHostGfn, kHostMapRo).status;
     },
     GNTST_general_error},
};

TEST(GrantTableStatus, MapGrantRef) {
    for (const StatusRow& row : kMapStatuses) {
        SCOPED_TRACE(row.intent);
        World w;
        EXPECT_EQ(row.run(w), row.status);
    }
}

// GNTTABOP_unmap_grant_ref / unmap_and_replace (unmap_common, replace_grant_p2m_mapping).

std::int16_t unmap_and_replace(World& w, grant_handle_t handle, std::uint64_t host_addr,
                               std::uint64_t new_addr) {
    gnttab_unmap_and_replace_t op{};
    op.host_addr = host_addr;
    op.new_addr = new_addr;
    op.handle = handle;
    op.status = 99;
    EXPECT_EQ(w.call(kBack, GNTTABOP_unmap_and_replace, &op), 0);
    return op.status;
}

grant_handle_t mapped(World& w) {
    standard(w);
    auto op = w.map_at(kBack, kFront, kRef, kHostGfn, kHostMap);
    EXPECT_EQ(op.status, GNTST_okay);
    return op.handle;
}

const StatusRow kUnmapStatuses[] = {
    {"handle before any maptrack frame exists", [](World& w) { return w.unmap_at(kBack, 0, kHostGfn); },
     GNTST_bad_handle},
    {"handle past the maptrack limit",
     [](World& w) {
         mapped(w);
         return w.unmap_at(kBack, GrantTable::kMaptrackPerPage, kHostGfn);
     },
     GNTST_bad_handle},
    {"free handle inside the maptrack", [](World& w) { return w.unmap_at(kBack, mapped(w) + 1, kHostGfn); },
     GNTST_bad_handle},
    {"handle already unmapped",
     [](World& w) {
         grant_handle_t h = mapped(w);
         EXPECT_EQ(w.unmap_at(kBack, h, kHostGfn), GNTST_okay);
         return w.unmap_at(kBack, h, kHostGfn);
     },
     GNTST_bad_handle},
    {"another domain's handle number is not ours",
     [](World& w) {
         grant_handle_t h = mapped(w);
         return w.unmap_at(kOther, h, kHostGfn);
     },
     GNTST_bad_handle},
    {"host_addr naming another gfn (replace_grant_p2m_mapping)",
     [](World& w) { return w.unmap_at(kBack, mapped(w), kHostGfn + 1); }, GNTST_general_error},
    {"host_addr of another mapping of the same frame (deliberate: Xen would accept it)",
     [](World& w) {
         const grant_handle_t h = mapped(w);
         EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn + 1, kHostMap).status, GNTST_okay);
         return w.unmap_at(kBack, h, kHostGfn + 1);
     },
     GNTST_general_error},
    {"nonzero dev_bus_addr matches no frame",
     [](World& w) { return w.unmap(kBack, mapped(w), kHostGfn << 12, 0x1000); }, GNTST_general_error},
    {"host_addr 0 removes nothing and succeeds", [](World& w) { return w.unmap(kBack, mapped(w), 0); },
     GNTST_okay},
    {"offset bits of host_addr are ignored",
     [](World& w) { return w.unmap(kBack, mapped(w), (kHostGfn << kPageShift) | 0xfff); }, GNTST_okay},
    {"unmap_and_replace with a new_addr is refused for a translated guest",
     [](World& w) { return unmap_and_replace(w, mapped(w), kHostGfn << kPageShift, 0x5000); },
     GNTST_general_error},
    {"unmap_and_replace with new_addr 0 unmaps",
     [](World& w) {
         auto rc = unmap_and_replace(w, mapped(w), kHostGfn << kPageShift, 0);
         EXPECT_EQ(w.mem(kBack).page(kHostGfn), nullptr);
         return rc;
     },
     GNTST_okay},
};

TEST(GrantTableStatus, UnmapGrantRef) {
    for (const StatusRow& row : kUnmapStatuses) {
        SCOPED_TRACE(row.intent);
        World w;
        EXPECT_EQ(row.run(w), row.status);
    }
}

TEST(GrantTableStatus, UnmapWithHostAddrZeroKeepsTheMapping) {
    World w;
    const grant_handle_t h = mapped(w);
    EXPECT_EQ(w.unmap(kBack, h, 0), GNTST_okay);
    EXPECT_NE(w.mem(kBack).page(kHostGfn), nullptr);
    EXPECT_EQ(w.gt->active_maps(kBack), 1u);
    EXPECT_EQ(w.flags(kFront, kRef) & kRW, kRW);
    EXPECT_EQ(w.unmap_at(kBack, h, kHostGfn), GNTST_okay);  // the handle is still live
    EXPECT_EQ(w.gt->active_maps(kBack), 0u);
}

// GNTTABOP_copy (gnttab_copy_lock_domain, gnttab_copy_claim_buf, acquire_grant_for_copy,
// gnttab_copy_buf).

std::int16_t copy_status(World& w, Side src, Side dst, std::uint16_t len = 64, DomId caller = kBack) {
    return w.copy(caller, copy_op(src, dst, len));
}

const StatusRow kCopyStatuses[] = {
    {"grant to own frame",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kFront, kRef), gmfn(own));
     },
     GNTST_okay},
    {"own frame to grant",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gmfn(own), gref(kFront, kRef));
     },
     GNTST_okay},
    {"source by frame in another domain",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gmfn(p, 0, kFront), gmfn(own));
     },
     GNTST_permission_denied},
    {"source by frame naming our own id instead of DOMID_SELF",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gmfn(own, 0, kBack), gmfn(own));
     },
     GNTST_permission_denied},
    {"dest by frame in another domain",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kFront, kRef), gmfn(p, 0, kFront));
     },
     GNTST_permission_denied},
    {"even dom0 may name only its own frames",
     [](World& w) {
         auto [p, own] = standard(w);
         const Gfn d0 = w.alloc(kDom0, 0);
         return copy_status(w, gmfn(p, 0, kFront), gmfn(d0), 64, kDom0);
     },
     GNTST_permission_denied},
    {"unknown source domain",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kNoSuchDomain, kRef), gmfn(own));
     },
     GNTST_bad_domain},
    {"unknown dest domain",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gmfn(own), gref(kNoSuchDomain, kRef));
     },
     GNTST_bad_domain},
    {"source ref past the table",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kFront, 512), gmfn(own));
     },
     GNTST_bad_gntref},
    {"dest ref past the table",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gmfn(own), gref(kFront, 4096));
     },
     GNTST_bad_gntref},
    {"source frame not populated",
     [](World& w) {
         standard(w);
         return copy_status(w, gmfn(0x600), gref(kFront, kRef));
     },
     GNTST_bad_page},
    {"dest frame not populated",
     [](World& w) {
         standard(w);
         return copy_status(w, gref(kFront, kRef), gmfn(0x600));
     },
     GNTST_bad_page},
    {"granted frame not populated",
     [](World& w) {
         auto [p, own] = standard(w);
         w.grant(kFront, 11, kBack, 0x700, GTF_permit_access);
         return copy_status(w, gref(kFront, 11), gmfn(own));
     },
     GNTST_bad_page},
    {"source offset + len past the page",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kFront, kRef, 4000), gmfn(own), 97);
     },
     GNTST_bad_copy_arg},
    {"dest offset + len past the page",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kFront, kRef), gmfn(own, 4095), 2);
     },
     GNTST_bad_copy_arg},
    {"claim errors come before the bounds check",
     [](World& w) {
         auto [p, own] = standard(w);
         return copy_status(w, gref(kFront, 999), gmfn(own, 4095), 2);
     },
     GNTST_bad_gntref},
    {"readonly grant as destination",
     [](World& w) {
         auto [p, own] = standard(w);
         w.grant(kFront, kRef, kBack, p, GTF_permit_access | GTF_readonly);
         return copy_status(w, gmfn(own), gref(kFront, kRef));
     },
     GNTST_general_error},
    {"into our frame that holds a read-only grant mapping (deliberate)",
     [](World& w) {
         auto [p, own] = standard(w);
         EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status, GNTST_okay);
         const std::int16_t rc = copy_status(w, gmfn(own), gmfn(kHostGfn));
         EXPECT_TRUE(page_filled(w.mem(kFront).page(p), 0xAA));
         return rc;
     },
     GNTST_general_error},
    {"into our frame that holds a writable grant mapping",
     [](World& w) {
         auto [p, own] = standard(w);
         EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMap).status, GNTST_okay);
         const std::int16_t rc = copy_status(w, gmfn(own), gmfn(kHostGfn));
         EXPECT_TRUE(page_filled(w.mem(kFront).page(p), 0x55, 0, 64));
         return rc;
     },
     GNTST_okay},
    {"own grant through DOMID_SELF",
     [](World& w) {
         const Gfn p = w.alloc(kFront, 1);
         const Gfn q = w.alloc(kFront, 2);
         w.grant(kFront, 12, kFront, p, GTF_permit_access);
         return copy_status(w, gref(DOMID_SELF, 12), gmfn(q), 64, kFront);
     },
     GNTST_okay},
    {"a ref pinned by another domain cannot be copied by a third",
     [](World& w) {
         standard(w);
         EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status, GNTST_okay);
         const Gfn mine = w.alloc(kOther, 0);
         return copy_status(w, gref(kFront, kRef), gmfn(mine), 64, kOther);
     },
     GNTST_general_error},
};

TEST(GrantTableStatus, Copy) {
    for (const StatusRow& row : kCopyStatuses) {
        SCOPED_TRACE(row.intent);
        World w;
        EXPECT_EQ(row.run(w), row.status);
        EXPECT_EQ(w.flags(kFront, kRef) & GTF_writing,
                  w.gt->pin(kFront, kRef) & GrantTable::kPinHostWriteMask ? GTF_writing : 0u);
    }
}

// Copy bounds (gnttab_copy_buf): offset + len must stay within the page on both sides, and exactly
// the named bytes move.
struct BoundsRow {
    const char* intent;
    std::uint16_t src_off, dst_off, len;
    std::int16_t status;
};

const BoundsRow kCopyBounds[] = {
    {"whole page", 0, 0, 4096, GNTST_okay},
    {"zero bytes", 100, 200, 0, GNTST_okay},
    {"last byte to last byte", 4095, 4095, 1, GNTST_okay},
    {"unaligned middle", 1, 2049, 2047, GNTST_okay},
    {"source one byte over", 1, 0, 4096, GNTST_bad_copy_arg},
    {"dest one byte over", 0, 4095, 2, GNTST_bad_copy_arg},
    {"offset at the page size", 4096, 0, 0, GNTST_okay},  // 4096 + 0 is not beyond the page
    {"offset past the page with zero length", 4097, 0, 0, GNTST_bad_copy_arg},
    {"len larger than a page", 0, 0, 4097, GNTST_bad_copy_arg},
};

TEST(GrantTableCopy, Bounds) {
    for (const BoundsRow& row : kCopyBounds) {
        SCOPED_TRACE(row.intent);
        World w;
        const Gfn page = w.alloc(kFront, 0);
        for (std::size_t i = 0; i < kPageSize; ++i) w.mem(kFront).page(page)[i] = std::uint8_t(i * 7);
        const Gfn own = w.alloc(kBack, 0xEE);
        w.grant(kFront, kRef, kBack, page, GTF_permit_access);
        GrantWork work;
        gnttab_copy_t op = copy_op(gref(kFront, kRef, row.src_off), gmfn(own, row.dst_off), row.len);
        EXPECT_EQ(w.gt->hypercall(kBack, GNTTABOP_copy, &op, 1, work), 0);
        EXPECT_EQ(op.status, row.status);
        const std::uint8_t* dst = w.mem(kBack).page(own);
        const bool ok = row.status == GNTST_okay;
        for (std::size_t i = 0; i < kPageSize; ++i) {
            const bool inside = ok && i >= row.dst_off && i < std::size_t(row.dst_off) + row.len;
            const std::uint8_t want = inside ? std::uint8_t((i - row.dst_off + row.src_off) * 7) : 0xEE;
            if (dst[i] != want) {
                ADD_FAILURE() << "byte " << i;
                break;
            }
        }
        EXPECT_EQ(work.copies, ok ? 1u : 0u);
        EXPECT_EQ(work.bytes_copied, ok ? row.len : 0u);
        EXPECT_EQ(w.flags(kFront, kRef), GTF_permit_access);
        EXPECT_EQ(w.gt->pin(kFront, kRef), 0u);
    }
}

TEST(GrantTableCopy, SameGrantAsSourceAndDestination) {
    World w;
    const Gfn page = w.alloc(kFront, 0);
    std::memset(w.mem(kFront).page(page), 0x11, 100);
    w.grant(kFront, kRef, kBack, page, GTF_permit_access);
    EXPECT_EQ(w.copy(kBack, copy_op(gref(kFront, kRef, 0), gref(kFront, kRef, 50), 100)), GNTST_okay);
    EXPECT_TRUE(page_filled(w.mem(kFront).page(page), 0x11, 0, 150));
    EXPECT_TRUE(page_filled(w.mem(kFront).page(page), 0, 150, kPageSize));
    EXPECT_EQ(w.flags(kFront, kRef), GTF_permit_access);
    EXPECT_EQ(w.gt->pin(kFront, kRef), 0u);
}

TEST(GrantTableCopy, BatchReportsPerOpStatusAndWork) {
    World w;
    auto [page, own] = standard(w);
    gnttab_copy_t ops[4] = {
        copy_op(gref(kFront, kRef), gmfn(own), 100), copy_op(gref(kFront, 999), gmfn(own), 100),  // bad ref
        copy_op(gmfn(own), gref(kFront, kRef, 10), 30),
        copy_op(gref(kFront, kRef, 4000), gmfn(own), 200),  // bad copy arg
    };
    GrantWork work;
    EXPECT_EQ(w.gt->hypercall(kBack, GNTTABOP_copy, ops, 4, work), 0);
    EXPECT_EQ(ops[0].status, GNTST_okay);
    EXPECT_EQ(ops[1].status, GNTST_bad_gntref);
    EXPECT_EQ(ops[2].status, GNTST_okay);
    EXPECT_EQ(ops[3].status, GNTST_bad_copy_arg);
    EXPECT_EQ(work.copies, 2u);
    EXPECT_EQ(work.bytes_copied, 130u);
    EXPECT_EQ(work.maps + work.unmaps + work.tlb_flushes, 0u);
}

// GNTTABOP_setup_table / GNTTABOP_query_size (gnttab_setup_table, gnttab_query_size).

std::int16_t setup_status(World& w, DomId caller, DomId dom, std::uint32_t nr_frames) {
    std::vector<xen_pfn_t> frames(nr_frames + 1, 0x1234);
    gnttab_setup_table_t op{};
    op.dom = dom;
    op.nr_frames = nr_frames;
    set_handle(op.frame_list, frames.data());
    op.status = 99;
    EXPECT_EQ(w.call(caller, GNTTABOP_setup_table, &op), 0);
    EXPECT_EQ(frames[nr_frames], 0x1234u);  // nothing written past nr_frames
    return op.status;
}

std::int16_t query_status(World& w, DomId caller, DomId dom) {
    gnttab_query_size_t op{};
    op.dom = dom;
    op.status = 99;
    EXPECT_EQ(w.call(caller, GNTTABOP_query_size, &op), 0);
    return op.status;
}

const StatusRow kTableStatuses[] = {
    {"setup_table DOMID_SELF", [](World& w) { return setup_status(w, kBack, DOMID_SELF, 2); }, GNTST_okay},
    {"setup_table naming our own id", [](World& w) { return setup_status(w, kBack, kBack, 2); }, GNTST_okay},
    {"setup_table of another domain, unprivileged (xsm_grant_setup)",
     [](World& w) { return setup_status(w, kBack, kFront, 1); }, GNTST_permission_denied},
    {"setup_table of another domain by dom0", [](World& w) { return setup_status(w, kDom0, kFront, 1); },
     GNTST_okay},
    {"setup_table of an unknown domain", [](World& w) { return setup_status(w, kDom0, kNoSuchDomain, 1); },
     GNTST_bad_domain},
    {"setup_table past max_grant_frames", [](World& w) { return setup_status(w, kBack, DOMID_SELF, 65); },
     GNTST_general_error},
    {"setup_table of zero frames", [](World& w) { return setup_status(w, kBack, DOMID_SELF, 0); },
     GNTST_okay},
    {"query_size DOMID_SELF", [](World& w) { return query_status(w, kBack, DOMID_SELF); }, GNTST_okay},
    {"query_size of another domain, unprivileged", [](World& w) { return query_status(w, kBack, kFront); },
     GNTST_permission_denied},
    {"query_size of another domain by dom0", [](World& w) { return query_status(w, kDom0, kFront); },
     GNTST_okay},
    {"query_size of an unknown domain", [](World& w) { return query_status(w, kDom0, kNoSuchDomain); },
     GNTST_bad_domain},
};

TEST(GrantTableStatus, SetupAndQuery) {
    for (const StatusRow& row : kTableStatuses) {
        SCOPED_TRACE(row.intent);
        World w;
        EXPECT_EQ(row.run(w), row.status);
    }
}

// Whole-call errors from do_grant_table_op and the per-op handlers.
struct CallRow {
    const char* intent;
    unsigned cmd;
    bool null_uop;
    unsigned count;
    long rc;
};

const CallRow kCallErrors[] = {
    {"count that is negative as an int", GNTTABOP_map_grant_ref, false, 0x80000000u, -XEN_EINVAL},
    {"continuation bits on map", GNTTABOP_map_grant_ref | (1u << 12), false, 1, -XEN_EINVAL},
    {"transfer is not modelled", GNTTABOP_transfer, false, 1, -XEN_ENOSYS},
    {"dump_table is not an op Xen serves", GNTTABOP_dump_table, false, 1, -XEN_ENOSYS},
    {"set_version is not modelled", 8, false, 1, -XEN_ENOSYS},
    {"get_status_frames is not modelled", 9, false, 1, -XEN_ENOSYS},
    {"get_version is not modelled", 10, false, 1, -XEN_ENOSYS},
    {"swap_grant_ref is not modelled", 11, false, 1, -XEN_ENOSYS},
    {"cache_flush is not modelled, continuation bits or not", 12 | (5u << 12), false, 1, -XEN_ENOSYS},
    {"unknown command", 99, false, 1, -XEN_ENOSYS},
    {"setup_table takes exactly one op", GNTTABOP_setup_table, false, 2, -XEN_EINVAL},
    {"query_size takes exactly one op", GNTTABOP_query_size, false, 0, -XEN_EINVAL},
    {"null array for map", GNTTABOP_map_grant_ref, true, 1, -XEN_EFAULT},
    {"null array for copy", GNTTABOP_copy, true, 3, -XEN_EFAULT},
    {"null array for query_size", GNTTABOP_query_size, true, 1, -XEN_EFAULT},
    {"empty batch is a no-op", GNTTABOP_unmap_grant_ref, true, 0, 0},
};

TEST(GrantTableHypercall, WholeCallErrors) {
    for (const CallRow& row : kCallErrors) {
        SCOPED_TRACE(row.intent);
        World w;
        gnttab_map_grant_ref_t buf[4] = {};  // big enough for any single op struct here
        GrantWork work;
        work.maps = 7;  // reset by the call
        EXPECT_EQ(w.gt->hypercall(kBack, row.cmd, row.null_uop ? nullptr : buf, row.count, work), row.rc);
        EXPECT_EQ(work.maps, 0u);
    }
}

TEST(GrantTableHypercall, SetupTableNullFrameList) {
    World w;
    gnttab_setup_table_t op{};
    op.dom = DOMID_SELF;
    op.nr_frames = 1;
    EXPECT_EQ(w.call(kBack, GNTTABOP_setup_table, &op), -XEN_EFAULT);
}

// ---------------------------------------------------------------------------------------------
// Frame limits, XENMEM_add_to_physmap and the frame_list setup_table reports.

TEST(GrantTableFrames, AddToPhysmapGrowsWithinTheLimit) {
    struct Row {
        const char* intent;
        unsigned idx;
        Gfn gfn;
        int rc;
        unsigned nr_frames_after;
    };
    const Row rows[] = {
        {"frame 0 exists from creation (INITIAL_NR_GRANT_FRAMES)", 0, 0x90, 0, 1},
        {"frame 2 grows the table to 3", 2, 0x92, 0, 3},
        {"the last frame allowed", 3, 0x93, 0, 4},
        {"one past max_grant_frames", 4, 0x94, -XEN_EINVAL, 4},
        {"the v2 status-frame bit is just a huge index in v1", XENMAPIDX_grant_table_status, 0x95,
         -XEN_EINVAL, 4},
        {"gfn outside the physmap", 1, kPages, -XEN_EINVAL, 4},
    };
    World w(GrantTableLimits{4, 8});
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        EXPECT_EQ(w.gt->add_to_physmap(kFront, r.idx, r.gfn), r.rc);
        EXPECT_EQ(w.gt->nr_frames(kFront), r.nr_frames_after);
        if (r.rc == 0) {
            EXPECT_NE(w.mem(kFront).page(r.gfn), nullptr);
        }
    }
    gnttab_query_size_t q{};
    q.dom = DOMID_SELF;
    EXPECT_EQ(w.call(kFront, GNTTABOP_query_size, &q), 0);
    EXPECT_EQ(q.status, GNTST_okay);
    EXPECT_EQ(q.nr_frames, 4u);
    EXPECT_EQ(q.max_nr_frames, 4u);
    EXPECT_EQ(w.gt->nr_frames(kNoSuchDomain), 0u);
}

TEST(GrantTableFrames, SetupTableReportsWhereFramesSit) {
    World w(GrantTableLimits{4, 8});
    EXPECT_EQ(w.gt->add_to_physmap(kFront, 2, 0x99), 0);
    std::vector<xen_pfn_t> frames(4, 0);
    gnttab_setup_table_t op{};
    op.dom = DOMID_SELF;
    op.nr_frames = 4;
    set_handle(op.frame_list, frames.data());
    EXPECT_EQ(w.call(kFront, GNTTABOP_setup_table, &op), 0);
    EXPECT_EQ(op.status, GNTST_okay);
    const xen_pfn_t unmapped = ~xen_pfn_t(0);
    EXPECT_EQ(frames, (std::vector<xen_pfn_t>{kGntGfn, unmapped, 0x99, unmapped}));
    EXPECT_EQ(w.gt->nr_frames(kFront), 4u);

    op.nr_frames = 5;  // beyond the limit: nothing grows
    EXPECT_EQ(w.call(kFront, GNTTABOP_setup_table, &op), 0);
    EXPECT_EQ(op.status, GNTST_general_error);
    EXPECT_EQ(w.gt->nr_frames(kFront), 4u);
}

TEST(GrantTableFrames, SetupTableGrowsAndLargeRefsWork) {
    World w;
    EXPECT_EQ(setup_status(w, kFront, DOMID_SELF, 3), GNTST_okay);
    EXPECT_EQ(w.gt->nr_frames(kFront), 3u);
    EXPECT_EQ(w.gt->add_to_physmap(kFront, 2, kGntGfn + 2), 0);
    const Gfn page = w.alloc(kFront, 0x3C);
    const grant_ref_t big = 2 * GrantTable::kEntriesPerFrame + 7;
    w.grant(kFront, big, kBack, page, GTF_permit_access);
    auto op = w.map_at(kBack, kFront, big, kHostGfn, kHostMapRo);
    EXPECT_EQ(op.status, GNTST_okay);
    EXPECT_EQ(w.flags(kFront, big), GTF_permit_access | GTF_reading);
    EXPECT_EQ(w.map_at(kBack, kFront, 3 * GrantTable::kEntriesPerFrame, kHostGfn + 1, kHostMapRo).status,
              GNTST_bad_gntref);
}

TEST(GrantTableFrames, MovingAFrameUnhooksItsOldSlot) {
    World w;
    const Gfn page = w.alloc(kFront, 0x42);
    w.grant(kFront, kRef, kBack, page, GTF_permit_access);
    const std::uint8_t* frame = w.mem(kFront).page(kGntGfn);
    EXPECT_EQ(w.gt->add_to_physmap(kFront, 0, 0x90), 0);
    EXPECT_EQ(w.mem(kFront).page(kGntGfn), nullptr);
    EXPECT_EQ(w.mem(kFront).page(0x90), frame);  // same frame, entries intact
    EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status, GNTST_okay);
    EXPECT_EQ(w.gt->add_to_physmap(kFront, 0, 0x90), 0);  // same slot again: no-op
    EXPECT_EQ(w.mem(kFront).page(0x90), frame);
}

TEST(GrantTableFrames, AddToPhysmapReplacesRamButNotMappedPages) {
    World w;
    const Gfn ram = w.alloc(kFront, 1);
    EXPECT_EQ(w.gt->add_to_physmap(kFront, 1, ram), 0);  // RAM at the slot is dropped, as Xen frees it
    EXPECT_EQ(w.mem(kFront).ram_frame(ram), nullptr);
    EXPECT_NE(w.mem(kFront).page(ram), nullptr);
    EXPECT_EQ(w.gt->nr_frames(kFront), 2u);

    const Gfn granted = w.alloc(kFront, 2);
    w.grant(kFront, kRef, kBack, granted, GTF_permit_access);
    EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo).status, GNTST_okay);
    EXPECT_EQ(w.gt->add_to_physmap(kFront, 1, granted), -XEN_EINVAL);  // another domain maps that RAM
    EXPECT_EQ(w.gt->add_to_physmap(kBack, 0, kHostGfn), -XEN_EINVAL);  // a live grant mapping
    EXPECT_EQ(w.mem(kBack).page(kHostGfn), w.mem(kFront).page(granted));
    EXPECT_NE(w.mem(kFront).ram_frame(granted), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Maptrack: Xen's handle free list and its limit (get_maptrack_handle, put_maptrack_handle).

// Maps `n` distinct refs (all over one page) from front into back; returns the statuses.
std::vector<gnttab_map_grant_ref_t> map_many(World& w, unsigned n) {
    const Gfn page = w.alloc(kFront, 0x77);
    std::vector<gnttab_map_grant_ref_t> ops(n);
    for (unsigned i = 0; i < n; ++i) {
        w.grant(kFront, i, kBack, page, GTF_permit_access | GTF_readonly);
        ops[i].host_addr = (kHostGfn + i) << kPageShift;
        ops[i].flags = kHostMapRo;
        ops[i].ref = i;
        ops[i].dom = kFront;
    }
    GrantWork work;
    EXPECT_EQ(w.gt->hypercall(kBack, GNTTABOP_map_grant_ref, ops.data(), n, work), 0);
    return ops;
}

// XENMAPSPACE_shared_info (DomainRecord::map_shared_info) goes through Xen 4.17's
// xenmem_add_to_physmap_one like a grant frame, so it gets the grant-frame path's checks: a live
// grant mapping at the gpfn is refused and stays intact (its pins can still be dropped), the old
// location is unhooked, and a grant frame added over shared_info unhooks shared_info.
TEST(GrantTableFrames, SharedInfoPhysmapRefusesGrantMappingsAndUnhooksTheOldSlot) {
    World w;
    DomainRecord& back = *w.domains.find(kBack);
    const Gfn granted = w.alloc(kFront, 0x5a);
    w.grant(kFront, kRef, kBack, granted, GTF_permit_access);
    auto op = w.map_at(kBack, kFront, kRef, kHostGfn, kHostMapRo);
    ASSERT_EQ(op.status, GNTST_okay);

    // A live grant mapping at the gpfn: refused, the mapping still shows the granted page.
    EXPECT_EQ(back.map_shared_info(kHostGfn), -XEN_EINVAL);
    EXPECT_EQ(w.mem(kBack).page(kHostGfn), w.mem(kFront).page(granted));
    EXPECT_EQ(back.shared_info_gfn(), DomainRecord::kNoGfn);
    // RAM another domain maps: refused too, as add_to_physmap refuses it for a grant frame.
    EXPECT_EQ(w.domains.find(kFront)->map_shared_info(granted), -XEN_EINVAL);
    EXPECT_EQ(w.mem(kFront).page(granted)[0], 0x5a);

    // Mapped, then moved: the old gpfn is unhooked (no alias), the new one shows the same page.
    const Gfn a = w.alloc(kBack, 1), b = w.alloc(kBack, 2);
    ASSERT_EQ(back.map_shared_info(a), 0);
    EXPECT_EQ(w.mem(kBack).page(a), back.shared_info_page.bytes);
    EXPECT_EQ(w.mem(kBack).ram_frame(a), nullptr);  // the RAM there was freed
    ASSERT_EQ(back.map_shared_info(b), 0);
    EXPECT_EQ(w.mem(kBack).page(a), nullptr);
    EXPECT_EQ(w.mem(kBack).page(b), back.shared_info_page.bytes);
    EXPECT_EQ(back.shared_info_gfn(), b);
    EXPECT_EQ(back.map_shared_info(b), 0);  // where it already is: nothing changes
    EXPECT_EQ(w.mem(kBack).page(b), back.shared_info_page.bytes);

    // shared_info over a grant frame unhooks the frame from that slot; a grant frame over
    // shared_info unhooks shared_info. Either way only one page answers at a gpfn.
    const std::uint8_t* frame0 = w.mem(kBack).page(kGntGfn);
    ASSERT_EQ(back.map_shared_info(kGntGfn), 0);
    EXPECT_EQ(w.mem(kBack).page(kGntGfn), back.shared_info_page.bytes);
    EXPECT_EQ(w.mem(kBack).page(b), nullptr);
    EXPECT_EQ(w.gt->add_to_physmap(kBack, 0, kGntGfn + 5), 0);  // the frame's old slot is no longer its
    EXPECT_EQ(w.mem(kBack).page(kGntGfn), back.shared_info_page.bytes);
    EXPECT_EQ(w.mem(kBack).page(kGntGfn + 5), frame0);
    EXPECT_EQ(w.gt->add_to_physmap(kBack, 0, kGntGfn), 0);
    EXPECT_EQ(w.mem(kBack).page(kGntGfn), frame0);
    EXPECT_EQ(back.shared_info_gfn(), DomainRecord::kNoGfn);
    EXPECT_EQ(back.map_shared_info(b), 0);  // mapped again from nowhere: the frame stays where it is
    EXPECT_EQ(w.mem(kBack).page(kGntGfn), frame0);

    // The refused attempt left the grant mapping whole: it unmaps and the pin goes.
    EXPECT_EQ(w.unmap_at(kBack, op.handle, kHostGfn), GNTST_okay);
    EXPECT_EQ(w.flags(kFront, kRef), GTF_permit_access);
}

TEST(GrantTableMaptrack, LimitIsFramesTimesEntriesLessOne) {
    struct Row {
        const char* intent;
        unsigned max_maptrack_frames;
        unsigned usable;  // 256 * frames - 1: the last free entry is never handed out
    };
    const Row rows[] = {
        {"no maptrack frames: nothing can be mapped", 0, 0},
        {"one frame", 1, 255},
        {"two frames", 2, 511},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        World w(GrantTableLimits{4, r.max_maptrack_frames});
        const unsigned n = r.usable + 1;
        auto ops = map_many(w, n);
        std::set<grant_handle_t> handles;
        for (unsigned i = 0; i < r.usable; ++i) {
            ASSERT_EQ(ops[i].status, GNTST_okay) << i;
            handles.insert(ops[i].handle);
        }
        EXPECT_EQ(handles.size(), r.usable);
        EXPECT_EQ(ops[r.usable].status, GNTST_no_space);
        EXPECT_EQ(w.mem(kBack).page(kHostGfn + r.usable), nullptr);
        EXPECT_EQ(w.flags(kFront, r.usable) & kRW, 0);  // the failed map left no flag behind
        EXPECT_EQ(w.gt->active_maps(kBack), r.usable);
        const Counter* peak = w.stats.find_counter("maptrack_peak");
        ASSERT_NE(peak, nullptr);
        EXPECT_EQ(peak->value(), r.usable);
    }
}

TEST(GrantTableMaptrack, HandleOrderFollowsTheFreeList) {
    World w(GrantTableLimits{4, 1});
    auto ops = map_many(w, 3);
    EXPECT_EQ(ops[0].handle, 0u);  // the new frame's first entry
    EXPECT_EQ(ops[1].handle, 1u);
    EXPECT_EQ(ops[2].handle, 2u);
    // A freed handle goes to the tail: it is reused only after the rest of the list.
    EXPECT_EQ(w.unmap_at(kBack, 1, kHostGfn + 1), GNTST_okay);
    const Gfn page = w.alloc(kFront, 0);
    w.grant(kFront, 300, kBack, page, GTF_permit_access);
    EXPECT_EQ(w.map_at(kBack, kFront, 300, kHostGfn + 300, kHostMapRo).handle, 3u);
}

TEST(GrantTableMaptrack, FullTableRecoversAfterUnmap) {
    World w(GrantTableLimits{4, 1});
    auto ops = map_many(w, 255);
    for (const auto& op : ops) ASSERT_EQ(op.status, GNTST_okay);
    const Gfn page = w.alloc(kFront, 0);
    w.grant(kFront, 400, kBack, page, GTF_permit_access);
    EXPECT_EQ(w.map_at(kBack, kFront, 400, kHostGfn + 400, kHostMapRo).status, GNTST_no_space);
    // The handle is taken before the ref is looked at, so even a bad ref reports no space.
    EXPECT_EQ(w.map_at(kBack, kFront, 9999, kHostGfn + 400, kHostMapRo).status, GNTST_no_space);
    EXPECT_EQ(w.unmap_at(kBack, ops[7].handle, kHostGfn + 7), GNTST_okay);
    auto again = w.map_at(kBack, kFront, 400, kHostGfn + 400, kHostMapRo);
    EXPECT_EQ(again.status, GNTST_okay);
    EXPECT_EQ(again.handle, 255u);  // the entry kept back as the list's last, now that one follows it
    EXPECT_EQ(w.map_at(kBack, kFront, 7, kHostGfn + 7, kHostMapRo).status, GNTST_no_space);
}

TEST(GrantTableMaptrack, PinCountOverflowIsRefused) {
    World w;
    const Gfn page = w.alloc(kFront, 0);
    w.grant(kFront, kRef, kBack, page, GTF_permit_access);
    for (unsigned i = 0; i < 128; ++i)
        ASSERT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn + i, kHostMapRo).status, GNTST_okay) << i;
    EXPECT_EQ(w.gt->pin(kFront, kRef), 128 * GrantTable::kPinHostReadInc);
    EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn + 128, kHostMapRo).status, GNTST_general_error);
    const Gfn own = w.alloc(kBack, 0);
    EXPECT_EQ(w.copy(kBack, copy_op(gref(kFront, kRef), gmfn(own), 8)), GNTST_general_error);
    EXPECT_EQ(w.unmap_at(kBack, 0, kHostGfn), GNTST_okay);
    EXPECT_EQ(w.map_at(kBack, kFront, kRef, kHostGfn + 128, kHostMapRo).status, GNTST_okay);
    EXPECT_EQ(w.mem(kFront).foreign_refs(page), 128u);
}

// ---------------------------------------------------------------------------------------------
// Unmap batches: one TLB flush per GNTTAB_UNMAP_BATCH_SIZE batch that removed a mapping.

TEST(GrantTableUnmap, FlushPerBatch) {
    struct Row {
        const char* intent;
        unsigned ops;
        std::vector<unsigned> valid;  // indices carrying a live handle
        unsigned flushes;
    };
    std::vector<unsigned> all40;
    for (unsigned i = 0; i < 40; ++i) all40.push_back(i);
    const Row rows[] = {
        {"one unmap, one flush", 1, {0}, 1},
        {"32 unmaps fill one batch", 32, std::vector<unsigned>(all40.begin(), all40.begin() + 32), 1},
        {"33 unmaps span two batches", 33, std::vector<unsigned>(all40.begin(), all40.begin() + 33), 2},
        {"only failures: nothing removed, no flush", 5, {}, 0},
        {"the only success is in the second batch", 40, {35}, 1},
        {"one success in each of two batches", 40, {0, 39}, 2},
    };
    for (const Row& r : rows) {
        SCOPED_TRACE(r.intent);
        World w;
        auto maps = map_many(w, unsigned(r.valid.size()));
        std::vector<gnttab_unmap_grant_ref_t> ops(r.ops);
        for (auto& op : ops) op.handle = 0xfffffff0u;  // bad handle
        for (unsigned k = 0; k < r.valid.size(); ++k) {
            ops[r.valid[k]].handle = maps[k].handle;
            ops[r.valid[k]].host_addr = maps[k].host_addr;
        }
        GrantWork work;
        EXPECT_EQ(w.gt->hypercall(kBack, GNTTABOP_unmap_grant_ref, ops.data(), r.ops, work), 0);
        EXPECT_EQ(work.tlb_flushes, r.flushes);
        EXPECT_EQ(work.unmaps, r.valid.size());
        unsigned ok = 0;
        for (const auto& op : ops) ok += op.status == GNTST_okay;
        EXPECT_EQ(ok, r.valid.size());
        EXPECT_EQ(w.gt->active_maps(kBack), 0u);
    }
}

// ---------------------------------------------------------------------------------------------
// Page lifetime and domain teardown.

TEST(GrantTableLifetime, GranterCannotFreeAMappedPage) {
    World w;
    auto [page, own] = standard(w);
    auto op = w.map_at(kBack, kFront, kRef, kHostGfn, kHostMap);
    ASSERT_EQ(op.status, GNTST_okay);
    EXPECT_FALSE(w.mem(kFront).free_page(page));
    w.mem(kBack).page(kHostGfn)[5] = 0x99;  // the backend writes through its mapping
    EXPECT_EQ(w.mem(kFront).page(page)[5], 0x99);
    EXPECT_EQ(w.unmap_at(kBack, op.handle, kHostGfn), GNTST_okay);
    EXPECT_EQ(w.flags(kFront, kRef), GTF_permit_access);  // safe to revoke now
    EXPECT_TRUE(w.mem(kFront).free_page(page));
}

TEST(GrantTableLifetime, MapperDestroyedReleasesItsMappings) {
    World w;
    const Gfn p1 = w.alloc(kFront, 1);
    const Gfn p2 = w.alloc(kFront, 2);
    w.grant(kFront, 10, kBack, p1, GTF_permit_access);
    w.grant(kFront, 11, kBack, p2, GTF_permit_access);
    w.grant(kBack, 5, kBack, w.alloc(kBack, 3), GTF_permit_access);
    ASSERT_EQ(w.map_at(kBack, kFront, 10, kHostGfn, kHostMapRo).status, GNTST_okay);
    ASSERT_EQ(w.map_at(kBack, kFront, 11, kHostGfn + 1, kHostMap).status, GNTST_okay);
    ASSERT_EQ(w.map_at(kBack, kBack, 5, kHostGfn + 2, kHostMap).status, GNTST_okay);  // its own grant too
    EXPECT_EQ(w.gt->active_maps(kBack), 3u);

    EXPECT_EQ(setup_status(w, kBack, DOMID_SELF, 2), GNTST_okay);
    w.gt->domain_destroyed(kBack);
    EXPECT_EQ(w.gt->nr_frames(kBack), GrantTable::kInitialNrGrantFrames);  // freed at once: nothing pins it
    EXPECT_EQ(w.gt->active_maps(kBack), 0u);
    EXPECT_EQ(w.flags(kFront, 10), GTF_permit_access);
    EXPECT_EQ(w.flags(kFront, 11), GTF_permit_access);
    EXPECT_EQ(w.gt->pin(kFront, 10), 0u);
    EXPECT_EQ(w.gt->pin(kFront, 11), 0u);
    EXPECT_EQ(w.gt->pinned_entries(kFront), 0u);
    EXPECT_EQ(w.gt->pinned_entries(kBack), 0u);
    EXPECT_EQ(w.mem(kBack).page(kHostGfn), nullptr);
    EXPECT_EQ(w.mem(kBack).page(kHostGfn + 1), nullptr);
    EXPECT_EQ(w.mem(kBack).page(kGntGfn), nullptr);  // its grant frame left its physmap
    EXPECT_TRUE(w.mem(kFront).free_page(p1));
    EXPECT_TRUE(w.mem(kFront).free_page(p2));
}

TEST(GrantTableLifetime, GranterDestroyedWhileMappedStaysUntilUnmapped) {
    World w;
    auto [page, own] = standard(w);
    w.grant(kFront, 11, kBack, page, GTF_permit_access);
    auto op = w.map_at(kBack, kFront, kRef, kHostGfn, kHostMap);
    ASSERT_EQ(op.status, GNTST_okay);
    EXPECT_EQ(setup_status(w, kFront, DOMID_SELF, 3), GNTST_okay);

    w.gt->domain_destroyed(kFront);
    EXPECT_EQ(w.gt->pinned_entries(kFront), 1u);  // a zombie table: the mapping still holds it
    EXPECT_EQ(w.gt->nr_frames(kFront), 3u);
    EXPECT_EQ(w.mem(kBack).page(kHostGfn), w.mem(kFront).page(page));
    EXPECT_EQ(w.mem(kFront).page(kGntGfn), nullptr);
    EXPECT_EQ(w.map_at(kBack, kFront, 11, kHostGfn + 1, kHostMapRo).status, GNTST_bad_domain);
    EXPECT_EQ(w.copy(kBack, copy_op(gref(kFront, 11), gmfn(own), 8)), GNTST_bad_domain);
    EXPECT_EQ(setup_status(w, kDom0, kFront, 1), GNTST_bad_domain);

    EXPECT_EQ(w.unmap_at(kBack, op.handle, kHostGfn), GNTST_okay);
    EXPECT_EQ(w.gt->pinned_entries(kFront), 0u);
    EXPECT_EQ(w.mem(kFront).foreign_refs(page), 0u);
    EXPECT_EQ(w.mem(kBack).page(kHostGfn), nullptr);
    // The last pin freed the table; the record left in the DomainTable now reads as a fresh one.
    EXPECT_EQ(w.gt->nr_frames(kFront), GrantTable::kInitialNrGrantFrames);
}

TEST(GrantTableLifetime, DestroyingAnUntouchedDomainIsHarmless) {
    World w;
    w.gt->domain_destroyed(kNoSuchDomain);
    w.gt->domain_destroyed(kOther);
    EXPECT_EQ(w.gt->active_maps(kOther), 0u);
}

// ---------------------------------------------------------------------------------------------
// Stats.

TEST(GrantTableStats, CountersFollowTheOps) {
    World w;
    auto [page, own] = standard(w);
    auto op = w.map_at(kBack, kFront, kRef, kHostGfn, kHostMap);
    w.map_at(kBack, kFront, 999, kHostGfn + 1, kHostMap);  // bad ref
    w.copy(kBack, copy_op(gref(kFront, kRef), gmfn(own), 100));
    w.copy(kBack, copy_op(gref(kFront, kRef), gmfn(own, 4000), 100));  // bad copy arg
    w.unmap_at(kBack, op.handle, kHostGfn);
    w.unmap_at(kBack, op.handle, kHostGfn);  // bad handle
    GrantWork work;
    EXPECT_EQ(w.gt->hypercall(kBack, GNTTABOP_transfer, &op, 1, work), -XEN_ENOSYS);

    const CounterFamily* ops = w.stats.find_family("ops");
    const CounterFamily* errors = w.stats.find_family("errors");
    const CounterFamily* calls = w.stats.find_family("hypercalls");
    const CounterFamily* call_errors = w.stats.find_family("call_errors");
    ASSERT_TRUE(ops && errors && calls && call_errors);
    EXPECT_EQ(ops->value("GNTTABOP_map_grant_ref"), 2u);
    EXPECT_EQ(ops->value("GNTTABOP_copy"), 2u);
    EXPECT_EQ(ops->value("GNTTABOP_unmap_grant_ref"), 2u);
    EXPECT_EQ(errors->value("GNTST_bad_gntref"), 1u);
    EXPECT_EQ(errors->value("GNTST_bad_copy_arg"), 1u);
    EXPECT_EQ(errors->value("GNTST_bad_handle"), 1u);
    EXPECT_EQ(errors->total(), 3u);
    EXPECT_EQ(calls->value("GNTTABOP_transfer"), 1u);
    EXPECT_EQ(calls->total(), 7u);
    EXPECT_EQ(call_errors->value("ENOSYS"), 1u);
    EXPECT_EQ(w.stats.find_counter("maps")->value(), 1u);
    EXPECT_EQ(w.stats.find_counter("unmaps")->value(), 1u);
    EXPECT_EQ(w.stats.find_counter("copies")->value(), 1u);
    EXPECT_EQ(w.stats.find_counter("bytes_copied")->value(), 100u);
    EXPECT_EQ(w.stats.find_counter("tlb_flushes")->value(), 1u);
    EXPECT_EQ(w.stats.find_counter("maptrack_peak")->value(), 1u);
}

}  // namespace
}  // namespace xensim

namespace xensim {
namespace {

TEST(GrantTableSeed, ToolstackSeededReservedEntryIsMappableAndSurvivesTheGuestMappingItsTable) {
    DomainTable domains;
    domains.add(0, "dom0", true, 1, 4096);
    DomainRecord& g = domains.add(1, "guest", false, 1, 4096);
    StatsGroup root("");
    GrantTable gt(domains, root);
    Gfn ring = *g.memory.allocate_page();
    g.memory.page(ring)[0] = 0x5a;
    ASSERT_TRUE(gt.seed_reserved_entry(1, GNTTAB_RESERVED_XENSTORE, ring, 0));
    EXPECT_FALSE(gt.seed_reserved_entry(1, GNTTAB_NR_RESERVED_ENTRIES, ring, 0)) << "only reserved refs";
    EXPECT_FALSE(gt.seed_reserved_entry(9, GNTTAB_RESERVED_XENSTORE, ring, 0)) << "unknown domain";
    // The guest maps its table frame 0 later: the seeded entry is there.
    Gfn frame = GuestMemory::kFirstAllocatableGfn + 100;
    ASSERT_EQ(gt.add_to_physmap(1, 0, frame), 0);
    auto* e = reinterpret_cast<grant_entry_v1_t*>(g.memory.page(frame));
    EXPECT_EQ(e[GNTTAB_RESERVED_XENSTORE].frame, ring);
    EXPECT_EQ(e[GNTTAB_RESERVED_XENSTORE].flags, GTF_permit_access);
    // xenstored in dom0 maps it.
    gnttab_map_grant_ref_t map{};
    map.host_addr = (GuestMemory::kFirstAllocatableGfn + 50) << kPageShift;
    map.flags = GNTMAP_host_map;
    map.ref = GNTTAB_RESERVED_XENSTORE;
    map.dom = 1;
    GrantWork work;
    ASSERT_EQ(gt.hypercall(0, GNTTABOP_map_grant_ref, &map, 1, work), 0);
    ASSERT_EQ(map.status, GNTST_okay);
    EXPECT_EQ(domains.find(0)->memory.page(GuestMemory::kFirstAllocatableGfn + 50)[0], 0x5a);
}

}  // namespace
}  // namespace xensim
