// Guest physical memory of one domain.
//
// What is modelled: a domain's physmap as an array of 4 KiB frames indexed by guest frame number (gfn).
// A frame is either RAM the domain owns (allocated on demand, zero-filled, bounded by the domain's
// memory size) or a Xen-owned page the domain has mapped into its physmap (shared_info, grant table
// frames), as XENMEM_add_to_physmap does on real Xen. Everything a domain can touch directly is here;
// another domain's frames are reachable only through the grant table (grant_table.h), which hands
// out page pointers for mapped grants and performs copies.
//
// Host memory follows what the domain touches, not its size: frame records live in chunks of
// kChunkFrames gfns (2 MiB of guest memory each), allocated when a frame in them is first used and
// kept (so host memory follows the high-water mark of what was touched). Chunks hang off a two-level
// directory, like a page table: a top level of one pointer per 1 GiB of guest memory (8 KiB for a
// 1 TiB guest) and, made on first use, a 4 KiB directory page per 1 GiB region touched. A populated
// page costs its 4 KiB plus a 32-byte record; an untouched gfn costs nothing but its share of the
// top level.
//
// Fidelity limits: no page types or reference counts, no balloon driver (only the unpopulated frames
// a backend takes for grant mappings), no superpages, no p2m types
// (ram/mmio/grant_map are not distinguished); gfns are handed out lowest-free-first from
// kFirstAllocatableGfn, so a guest's layout is deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace xensim {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

using Gfn = std::uint64_t;

// A page owned by the hypervisor that a domain may map into its physmap.
struct XenPage {
    alignas(64) std::uint8_t bytes[kPageSize] = {};
};

class GuestMemory {
  public:
    // Frames below this are left unpopulated (the legacy low-memory hole of an HVM guest).
    static constexpr Gfn kFirstAllocatableGfn = 0x100;

    explicit GuestMemory(std::uint64_t max_pages);

    // Populates the lowest free RAM frame; nullopt when the domain reached its memory size.
    std::optional<Gfn> allocate_page();
    // Populates `n` consecutive free frames whose bytes are also consecutive in host memory (one
    // 4096 * n block), the first at the lowest such gfn; nullopt if there is no such run or not
    // enough memory. A multi-page shared ring is one of these: the engines see it as one span.
    std::optional<Gfn> allocate_contiguous(unsigned n);
    // Releases a RAM frame allocated by allocate_page. False for a Xen-owned mapping, an
    // unpopulated frame, or a frame another domain holds a grant mapping of (foreign_refs > 0).
    bool free_page(Gfn gfn);
    // An unpopulated frame at the top of the physmap, taken out of allocation for good: where a
    // backend maps foreign grants (Linux's xen_alloc_unpopulated_pages / ballooned pages). Each
    // such frame lowers the RAM the domain can allocate by one page. nullopt when none is left.
    std::optional<Gfn> take_unpopulated_frame();

    // Grant mappings of this domain's frames held by other domains keep the frame alive, as the
    // page reference Xen takes on a mapped grant does.
    void get_foreign_ref(Gfn gfn);
    void put_foreign_ref(Gfn gfn);
    unsigned foreign_refs(Gfn gfn) const;

    // The RAM frame object at gfn (nullptr when not owned RAM), so a grant mapping can place the
    // granter's frame into the mapper's physmap.
    XenPage* ram_frame(Gfn gfn);

    // Places another domain's frame (a granted page) at an unpopulated gfn; removes it again.
    // False when gfn is outside the physmap or already populated / not a foreign mapping.
    bool map_foreign_page(Gfn gfn, XenPage* page);
    bool unmap_foreign_page(Gfn gfn);

    // Places a Xen-owned page at gfn (XENMEM_add_to_physmap), or with page == nullptr unhooks the
    // one there. Replaces RAM at that gfn, whose contents are dropped as Xen does. False (nothing
    // changed) when gfn is outside the physmap, holds a grant mapping of another domain's frame, or
    // is RAM another domain has mapped (foreign_refs > 0).
    bool map_xen_page(Gfn gfn, XenPage* page);

    // The frame's bytes, or nullptr when gfn is not populated.
    std::uint8_t* page(Gfn gfn);
    const std::uint8_t* page(Gfn gfn) const;

    // Byte-granular access by guest physical address; false (and nothing copied) when any byte
    // of the range falls on an unpopulated frame.
    bool read(std::uint64_t gpa, void* dst, std::size_t len) const;
    bool write(std::uint64_t gpa, const void* src, std::size_t len);

    std::uint64_t max_pages() const { return max_pages_; }
    std::uint64_t populated_ram_pages() const { return ram_pages_; }
    // Host memory of the frame table itself (directory and chunks), for tests of the bound.
    std::size_t table_bytes() const;

  private:
    struct Frame {
        std::shared_ptr<XenPage> ram;  // owned RAM (possibly part of a contiguous block), or
        XenPage* xen = nullptr;        // a Xen-owned page or a granted foreign frame mapped here
        bool foreign = false;          // xen points at another domain's RAM (grant mapping)
        unsigned foreign_refs = 0;     // grant mappings of this RAM frame held by other domains
        std::uint8_t* data() const { return xen ? xen->bytes : (ram ? ram->bytes : nullptr); }
    };
    static constexpr unsigned kChunkShift = 9;  // 512 frames: one 2 MiB superpage's worth
    static constexpr Gfn kChunkFrames = Gfn{1} << kChunkShift;
    struct Chunk {
        Frame frames[kChunkFrames];
    };
    static constexpr unsigned kDirShift = kChunkShift + 9;  // 512 chunks: 1 GiB of guest memory
    struct Directory {
        std::unique_ptr<Chunk> chunks[1u << (kDirShift - kChunkShift)];
    };
    // The frame at gfn, or nullptr when its chunk was never needed (every frame in it is empty).
    const Frame* find(Gfn gfn) const {
        if (gfn >= max_pages_) return nullptr;
        const Directory* d = dirs_[gfn >> kDirShift].get();
        const Chunk* c =
            d ? d->chunks[(gfn >> kChunkShift) & ((1u << (kDirShift - kChunkShift)) - 1)].get() : nullptr;
        return c ? &c->frames[gfn & (kChunkFrames - 1)] : nullptr;
    }
    Frame* find(Gfn gfn) { return const_cast<Frame*>(static_cast<const GuestMemory*>(this)->find(gfn)); }
    Frame& make(Gfn gfn);  // precondition: gfn < max_pages_; allocates the chunk if needed

    std::uint64_t max_pages_;
    std::vector<std::unique_ptr<Directory>> dirs_;
    std::uint64_t ram_pages_ = 0;
    Gfn ceiling_;  // frames at and above this were taken by take_unpopulated_frame
    Gfn next_free_hint_ = kFirstAllocatableGfn;
};

}  // namespace xensim
