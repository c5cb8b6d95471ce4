// The scenario's seeded random generator. The only source of randomness in a run.
//
// xoshiro256** seeded through SplitMix64 (Blackman & Vigna, "Scrambled linear pseudorandom number
// generators", 2018), with bounded integers by Lemire's multiply-shift rejection method, so a
// seed gives the same sequence on every compiler and standard library (std:: distributions do
// not promise that).
#pragma once

#include <cstdint>

namespace xensim {

__extension__ typedef unsigned __int128 Uint128;

class Rng {
  public:
    explicit Rng(std::uint64_t seed) {
        for (auto& w : s_) {
            seed += 0x9e3779b97f4a7c15ull;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            w = z ^ (z >> 31);
        }
    }
    std::uint64_t next() {
        std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0], s_[3] ^= s_[1], s_[1] ^= s_[2], s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    // Uniform in [0, bound); bound > 0.
    std::uint64_t below(std::uint64_t bound) {
        Uint128 m = static_cast<Uint128>(next()) * bound;
        auto low = static_cast<std::uint64_t>(m);
        if (low < bound) {
            std::uint64_t threshold = -bound % bound;
            while (low < threshold) {
                m = static_cast<Uint128>(next()) * bound;
                low = static_cast<std::uint64_t>(m);
            }
        }
        return static_cast<std::uint64_t>(m >> 64);
    }

  private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4];
};

}  // namespace xensim
