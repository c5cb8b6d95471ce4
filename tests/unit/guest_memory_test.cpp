#include "models/xen/guest_memory.h"

#include <cstring>

#include <gtest/gtest.h>

namespace xensim {
namespace {

TEST(GuestMemory, AllocatesLowestFreeFrameFromFirstAllocatableGfn) {
    GuestMemory m(GuestMemory::kFirstAllocatableGfn + 4);
    EXPECT_EQ(m.allocate_page(), GuestMemory::kFirstAllocatableGfn);
    EXPECT_EQ(m.allocate_page(), GuestMemory::kFirstAllocatableGfn + 1);
    EXPECT_TRUE(m.free_page(GuestMemory::kFirstAllocatableGfn));
    EXPECT_EQ(m.allocate_page(), GuestMemory::kFirstAllocatableGfn);
}

TEST(GuestMemory, RefusesAllocationPastTheMemorySize) {
    GuestMemory m(GuestMemory::kFirstAllocatableGfn + 2);
    EXPECT_TRUE(m.allocate_page());
    EXPECT_TRUE(m.allocate_page());
    EXPECT_FALSE(m.allocate_page());
}

TEST(GuestMemory, ReadAndWriteSpanPagesAndRefuseHoles) {
    GuestMemory m(GuestMemory::kFirstAllocatableGfn + 8);
    Gfn a = *m.allocate_page();
    Gfn b = *m.allocate_page();
    ASSERT_EQ(b, a + 1);
    std::uint8_t data[100];
    for (int i = 0; i < 100; ++i) data[i] = static_cast<std::uint8_t>(i);
    std::uint64_t gpa = (b << kPageShift) - 50;  // straddles a and b
    ASSERT_TRUE(m.write(gpa, data, sizeof data));
    std::uint8_t back[100] = {};
    ASSERT_TRUE(m.read(gpa, back, sizeof back));
    EXPECT_EQ(0, std::memcmp(data, back, sizeof data));
    // The next frame is not populated: nothing is written, false is returned.
    std::uint64_t tail = ((b + 1) << kPageShift) - 10;
    EXPECT_FALSE(m.write(tail, data, 20));
    EXPECT_EQ(m.page(b)[kPageSize - 10], 0);
}

TEST(GuestMemory, XenPageMappingReplacesRamAndIsShared) {
    GuestMemory m(GuestMemory::kFirstAllocatableGfn + 8);
    XenPage shared;
    Gfn g = *m.allocate_page();
    EXPECT_EQ(m.populated_ram_pages(), 1u);
    ASSERT_TRUE(m.map_xen_page(g, &shared));
    EXPECT_EQ(m.populated_ram_pages(), 0u);
    m.page(g)[5] = 0xab;
    EXPECT_EQ(shared.bytes[5], 0xab);
    EXPECT_FALSE(m.free_page(g)) << "a Xen-owned page is not the guest's to free";
}

// XENMEM_add_to_physmap of a Xen page (shared_info, a grant frame) must not land on a live grant
// mapping: the mapping would be lost with its pins still held. Xen's xenmem_add_to_physmap_one fails
// there (guest_remove_page cannot take a reference on another domain's page).
TEST(GuestMemory, XenPageIsRefusedOverAGrantMapping) {
    GuestMemory granter(GuestMemory::kFirstAllocatableGfn + 8), mapper(GuestMemory::kFirstAllocatableGfn + 8);
    Gfn g = *granter.allocate_page();
    Gfn slot = GuestMemory::kFirstAllocatableGfn + 3;
    ASSERT_TRUE(mapper.map_foreign_page(slot, granter.ram_frame(g)));
    XenPage shared;
    EXPECT_FALSE(mapper.map_xen_page(slot, &shared));
    EXPECT_EQ(mapper.page(slot), granter.page(g));
    EXPECT_TRUE(mapper.unmap_foreign_page(slot)) << "the grant mapping is still there to unmap";
}

TEST(GuestMemory, ForeignReferenceKeepsAGrantedFrameAlive) {
    GuestMemory granter(GuestMemory::kFirstAllocatableGfn + 8), mapper(GuestMemory::kFirstAllocatableGfn + 8);
    Gfn g = *granter.allocate_page();
    granter.get_foreign_ref(g);
    Gfn slot = GuestMemory::kFirstAllocatableGfn + 3;
    ASSERT_TRUE(mapper.map_foreign_page(slot, granter.ram_frame(g)));
    EXPECT_FALSE(granter.free_page(g));
    mapper.page(slot)[0] = 7;
    EXPECT_EQ(granter.page(g)[0], 7);
    EXPECT_FALSE(mapper.map_foreign_page(slot, granter.ram_frame(g))) << "slot already populated";
    ASSERT_TRUE(mapper.unmap_foreign_page(slot));
    EXPECT_EQ(mapper.page(slot), nullptr);
    granter.put_foreign_ref(g);
    EXPECT_TRUE(granter.free_page(g));
}

}  // namespace
// Host memory follows the frames a domain uses, not its size: the schema's largest guest (1 TiB,
// 2^28 frames) costs the top level of its directory (one pointer per 1 GiB) plus what it populates.
TEST(GuestMemory, ALargeGuestCostsWhatItTouchesNotItsSize) {
    const std::uint64_t pages = std::uint64_t{1} << 28;  // memory_mb 1048576
    GuestMemory m(pages);
    EXPECT_EQ(m.max_pages(), pages);
    EXPECT_EQ(m.table_bytes(), 1024u * sizeof(void*)) << "the top level: 1024 directory pointers";
    const std::size_t empty = m.table_bytes();
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(m.allocate_page());
    auto top = m.take_unpopulated_frame();
    ASSERT_TRUE(top);
    EXPECT_EQ(*top, pages - 1);
    EXPECT_EQ(m.page(*top), nullptr);
    XenPage shared;
    EXPECT_TRUE(m.map_foreign_page(*top, &shared));
    EXPECT_EQ(m.page(*top), shared.bytes);
    EXPECT_EQ(m.page(pages / 2), nullptr) << "an untouched frame is unpopulated";
    EXPECT_FALSE(m.read(std::uint64_t{pages / 2} << kPageShift, &shared, 1));
    EXPECT_EQ(m.populated_ram_pages(), 1000u);
    // 1000 frames from gfn 0x100 span 3 chunks under the first directory page, the top frame a
    // fourth chunk under the last: 4 x 512 x 32 bytes of records and 2 x 4 KiB of directory.
    EXPECT_EQ(m.table_bytes() - empty, 4u * 512 * 32 + 2u * 4096);
    EXPECT_EQ(m.page(pages), nullptr);
    EXPECT_FALSE(m.map_xen_page(pages, &shared)) << "outside the physmap";
}

}  // namespace xensim
