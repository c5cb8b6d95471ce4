#include "models/xen/guest_memory.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace xensim {

GuestMemory::GuestMemory(std::uint64_t max_pages)
    : max_pages_(max_pages),
      dirs_((max_pages + (Gfn{1} << kDirShift) - 1) >> kDirShift),
      ceiling_(max_pages) {}

GuestMemory::Frame& GuestMemory::make(Gfn gfn) {
    std::unique_ptr<Directory>& d = dirs_[gfn >> kDirShift];
    if (!d) d = std::make_unique<Directory>();
    std::unique_ptr<Chunk>& c = d->chunks[(gfn >> kChunkShift) & ((1u << (kDirShift - kChunkShift)) - 1)];
    if (!c) c = std::make_unique<Chunk>();
    return c->frames[gfn & (kChunkFrames - 1)];
}

std::size_t GuestMemory::table_bytes() const {
    std::size_t n = dirs_.capacity() * sizeof(dirs_[0]);
    for (const auto& d : dirs_) {
        if (!d) continue;
        n += sizeof(Directory);
        for (const auto& c : d->chunks)
            if (c) n += sizeof(Chunk);
    }
    return n;
}

std::optional<Gfn> GuestMemory::take_unpopulated_frame() {
    while (ceiling_ > kFirstAllocatableGfn && ram_pages_ + kFirstAllocatableGfn < ceiling_) {
        Gfn g = --ceiling_;
        const Frame* f = find(g);
        if (!f || !f->data()) return g;
    }
    return std::nullopt;
}

std::optional<Gfn> GuestMemory::allocate_page() {
    if (ram_pages_ + kFirstAllocatableGfn >= ceiling_) return std::nullopt;
    for (Gfn g = next_free_hint_; g < ceiling_; ++g) {
        const Frame* seen = find(g);
        if (seen && seen->data()) continue;
        make(g).ram = std::make_shared<XenPage>();
        ++ram_pages_;
        next_free_hint_ = g + 1;
        return g;
    }
    return std::nullopt;
}

std::optional<Gfn> GuestMemory::allocate_contiguous(unsigned n) {
    if (n == 0 || ram_pages_ + kFirstAllocatableGfn + n > ceiling_) return std::nullopt;
    for (Gfn start = next_free_hint_; start + n <= ceiling_; ++start) {
        unsigned run = 0;
        auto empty = [&](Gfn g) {
            const Frame* f = find(g);
            return !f || !f->data();
        };
        while (run < n && empty(start + run)) ++run;
        if (run < n) {
            start += run;  // skip past the populated frame
            continue;
        }
        std::shared_ptr<XenPage[]> block(new XenPage[n]);
        for (unsigned i = 0; i < n; ++i)
            make(start + i).ram = std::shared_ptr<XenPage>(block, &block[i]);  // aliases the block
        ram_pages_ += n;
        if (start == next_free_hint_) next_free_hint_ = start + n;
        return start;
    }
    return std::nullopt;
}

bool GuestMemory::free_page(Gfn gfn) {
    Frame* f = find(gfn);
    if (!f || !f->ram || f->foreign_refs) return false;
    f->ram.reset();
    --ram_pages_;
    if (gfn < next_free_hint_ && gfn >= kFirstAllocatableGfn) next_free_hint_ = gfn;
    return true;
}

bool GuestMemory::map_xen_page(Gfn gfn, XenPage* page) {
    if (gfn >= max_pages_) return false;
    Frame& f = make(gfn);
    if (f.foreign_refs || f.foreign) return false;
    if (f.ram) {
        f.ram.reset();
        --ram_pages_;
    }
    f.xen = page;
    return true;
}

void GuestMemory::get_foreign_ref(Gfn gfn) {
    if (gfn >= max_pages_) throw std::out_of_range("GuestMemory::get_foreign_ref");
    ++make(gfn).foreign_refs;
}

void GuestMemory::put_foreign_ref(Gfn gfn) {
    if (gfn >= max_pages_) throw std::out_of_range("GuestMemory::put_foreign_ref");
    Frame* f = find(gfn);
    if (f && f->foreign_refs) --f->foreign_refs;
}

unsigned GuestMemory::foreign_refs(Gfn gfn) const {
    const Frame* f = find(gfn);
    return f ? f->foreign_refs : 0;
}

XenPage* GuestMemory::ram_frame(Gfn gfn) {
    Frame* f = find(gfn);
    return f ? f->ram.get() : nullptr;
}

bool GuestMemory::map_foreign_page(Gfn gfn, XenPage* page) {
    if (gfn >= max_pages_ || !page) return false;
    const Frame* seen = find(gfn);
    if (seen && seen->data()) return false;
    Frame& f = make(gfn);
    f.xen = page;
    f.foreign = true;
    return true;
}

bool GuestMemory::unmap_foreign_page(Gfn gfn) {
    Frame* f = find(gfn);
    if (!f || !f->foreign) return false;
    f->xen = nullptr;
    f->foreign = false;
    return true;
}

std::uint8_t* GuestMemory::page(Gfn gfn) {
    Frame* f = find(gfn);
    return f ? f->data() : nullptr;
}

const std::uint8_t* GuestMemory::page(Gfn gfn) const {
    const Frame* f = find(gfn);
    return f ? f->data() : nullptr;
}

bool GuestMemory::read(std::uint64_t gpa, void* dst, std::size_t len) const {
    for (std::uint64_t a = gpa & ~std::uint64_t(kPageSize - 1); a < gpa + len; a += kPageSize)
        if (!page(a >> kPageShift)) return false;
    auto* out = static_cast<std::uint8_t*>(dst);
    while (len) {
        std::size_t off = gpa & (kPageSize - 1);
        std::size_t n = std::min(len, kPageSize - off);
        std::memcpy(out, page(gpa >> kPageShift) + off, n);
        out += n, gpa += n, len -= n;
    }
    return true;
}

bool GuestMemory::write(std::uint64_t gpa, const void* src, std::size_t len) {
    for (std::uint64_t a = gpa & ~std::uint64_t(kPageSize - 1); a < gpa + len; a += kPageSize)
        if (!page(a >> kPageShift)) return false;
    auto* in = static_cast<const std::uint8_t*>(src);
    while (len) {
        std::size_t off = gpa & (kPageSize - 1);
        std::size_t n = std::min(len, kPageSize - off);
        std::memcpy(page(gpa >> kPageShift) + off, in, n);
        in += n, gpa += n, len -= n;
    }
    return true;
}

}  // namespace xensim
