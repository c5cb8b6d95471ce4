// WaitEnds (models/xen/wait_ends.h): a multiset of wait end times with O(1) operations, checked
// against std::multiset under a long deterministic run of inserts and erases that collide on
// purpose (few distinct times, a table that grows and wraps), so the backward-shift deletion is
// exercised on every probe-run shape.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "models/xen/wait_ends.h"

namespace xensim {
namespace {

TEST(WaitEnds, CountsEachTimeAsOftenAsInserted) {
    WaitEnds w;
    EXPECT_EQ(w.count(5), 0u);
    w.insert(5);
    w.insert(5);
    w.insert(7);
    EXPECT_EQ(w.count(5), 2u);
    EXPECT_EQ(w.count(7), 1u);
    w.erase(5);
    EXPECT_EQ(w.count(5), 1u);
    w.erase(5);
    EXPECT_EQ(w.count(5), 0u);
    EXPECT_EQ(w.count(7), 1u);
}

TEST(WaitEnds, AgreesWithAMultisetUnderRandomInsertsAndErases) {
    for (unsigned distinct : {3u, 40u, 5000u}) {
        SCOPED_TRACE(distinct);
        std::mt19937_64 rng(distinct);
        std::uniform_int_distribution<std::uint64_t> time(0, distinct - 1);
        WaitEnds w;
        std::multiset<std::uint64_t> ref;
        std::vector<std::uint64_t> live;
        for (int step = 0; step < 20000; ++step) {
            if (live.empty() || rng() % 3 != 0) {
                const std::uint64_t t = time(rng) * 1'000'003;  // spread, as picosecond times are
                w.insert(t);
                ref.insert(t);
                live.push_back(t);
            } else {
                const std::size_t i = rng() % live.size();
                const std::uint64_t t = live[i];
                live[i] = live.back();
                live.pop_back();
                w.erase(t);
                ref.erase(ref.find(t));
            }
            const std::uint64_t probe = time(rng) * 1'000'003;
            ASSERT_EQ(w.count(probe), ref.count(probe)) << "step " << step;
        }
        for (std::uint64_t t : live) ASSERT_EQ(w.count(t), ref.count(t));
    }
}

}  // namespace
}  // namespace xensim
