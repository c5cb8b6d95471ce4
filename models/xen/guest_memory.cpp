#include "models/xen/guest_memory.h"

#include <algorithm>
#include <cstring>

namespace xensim {

GuestMemory::GuestMemory(std::uint64_t max_pages) : frames_(max_pages), ceiling_(max_pages) {}

std::optional<Gfn> GuestMemory::take_unpopulated_frame() {
    while (ceiling_ > kFirstAllocatableGfn && ram_pages_ + kFirstAllocatableGfn < ceiling_) {
        Gfn g = --ceiling_;
        if (!frames_[g].data()) return g;
    }
    return std::nullopt;
}

std::optional<Gfn> GuestMemory::allocate_page() {
    if (ram_pages_ + kFirstAllocatableGfn >= ceiling_) return std::nullopt;
    for (Gfn g = next_free_hint_; g < ceiling_; ++g) {
        Frame& f = frames_[g];
        if (f.data()) continue;
        f.ram = std::make_shared<XenPage>();
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
        while (run < n && !frames_[start + run].data()) ++run;
        if (run < n) {
            start += run;  // skip past the populated frame
            continue;
        }
        std::shared_ptr<XenPage[]> block(new XenPage[n]);
        for (unsigned i = 0; i < n; ++i)
            frames_[start + i].ram = std::shared_ptr<XenPage>(block, &block[i]);  // aliases the block
        ram_pages_ += n;
        if (start == next_free_hint_) next_free_hint_ = start + n;
        return start;
    }
    return std::nullopt;
}

bool GuestMemory::free_page(Gfn gfn) {
    if (gfn >= frames_.size() || !frames_[gfn].ram || frames_[gfn].foreign_refs) return false;
    frames_[gfn].ram.reset();
    --ram_pages_;
    if (gfn < next_free_hint_ && gfn >= kFirstAllocatableGfn) next_free_hint_ = gfn;
    return true;
}

bool GuestMemory::map_xen_page(Gfn gfn, XenPage* page) {
    if (gfn >= frames_.size()) return false;
    Frame& f = frames_[gfn];
    if (f.foreign_refs || f.foreign) return false;
    if (f.ram) {
        f.ram.reset();
        --ram_pages_;
    }
    f.xen = page;
    return true;
}

void GuestMemory::get_foreign_ref(Gfn gfn) { ++frames_.at(gfn).foreign_refs; }

void GuestMemory::put_foreign_ref(Gfn gfn) {
    Frame& f = frames_.at(gfn);
    if (f.foreign_refs) --f.foreign_refs;
}

unsigned GuestMemory::foreign_refs(Gfn gfn) const {
    return gfn < frames_.size() ? frames_[gfn].foreign_refs : 0;
}

XenPage* GuestMemory::ram_frame(Gfn gfn) { return gfn < frames_.size() ? frames_[gfn].ram.get() : nullptr; }

bool GuestMemory::map_foreign_page(Gfn gfn, XenPage* page) {
    if (gfn >= frames_.size() || frames_[gfn].data() || !page) return false;
    frames_[gfn].xen = page;
    frames_[gfn].foreign = true;
    return true;
}

bool GuestMemory::unmap_foreign_page(Gfn gfn) {
    if (gfn >= frames_.size() || !frames_[gfn].foreign) return false;
    frames_[gfn].xen = nullptr;
    frames_[gfn].foreign = false;
    return true;
}

std::uint8_t* GuestMemory::page(Gfn gfn) { return gfn < frames_.size() ? frames_[gfn].data() : nullptr; }

const std::uint8_t* GuestMemory::page(Gfn gfn) const {
    return gfn < frames_.size() ? frames_[gfn].data() : nullptr;
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
