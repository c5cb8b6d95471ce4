// The end times of the timed waits under way, as a multiset with O(1) insert, erase and count: how
// Hypervisor tells that two vCPUs' waits end at the same picosecond (a tie, whose order it then
// decides itself rather than SystemC's event queue; docs/temporal-decoupling.md).
//
// Open addressing with linear probing and backward-shift deletion over a power-of-two table kept at
// most half full; a slot holds a time and how many waits end then. No allocation per operation
// (the table grows by doubling, rarely).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace xensim {

class WaitEnds {
  public:
    WaitEnds() : slots_(16) {}

    void insert(std::uint64_t at) {
        if (2 * (used_ + 1) > slots_.size()) grow();
        Slot& s = slots_[find(at)];
        if (s.count == 0) {
            s.at = at;
            ++used_;
        }
        ++s.count;
    }
    std::uint32_t count(std::uint64_t at) const { return slots_[find(at)].count; }
    void erase(std::uint64_t at) {  // one of the waits ending at `at` (which must be there)
        std::size_t i = find(at);
        if (slots_[i].count == 0 || --slots_[i].count > 0) return;
        --used_;
        // Backward shift: move later entries of the probe run into the hole when they may live there.
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t j = (i + 1) & mask; slots_[j].count != 0; j = (j + 1) & mask) {
            const std::size_t home = hash(slots_[j].at) & mask;
            if (((j - home) & mask) >= ((j - i) & mask)) {
                slots_[i] = slots_[j];
                slots_[j].count = 0;
                i = j;
            }
        }
    }

  private:
    struct Slot {
        std::uint64_t at = 0;
        std::uint32_t count = 0;  // 0: empty
    };
    static std::size_t hash(std::uint64_t at) {
        return static_cast<std::size_t>((at * 0x9E3779B97F4A7C15ull) >> 32);
    }
    std::size_t find(std::uint64_t at) const {  // its slot, or the empty slot where it would go
        const std::size_t mask = slots_.size() - 1;
        std::size_t i = hash(at) & mask;
        while (slots_[i].count != 0 && slots_[i].at != at) i = (i + 1) & mask;
        return i;
    }
    void grow() {
        std::vector<Slot> old(2 * slots_.size());
        old.swap(slots_);
        used_ = 0;
        for (const Slot& s : old)
            if (s.count) {
                Slot& n = slots_[find(s.at)];
                n = s;
                ++used_;
            }
    }

    std::vector<Slot> slots_;
    std::size_t used_ = 0;
};

}  // namespace xensim
