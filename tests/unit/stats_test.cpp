#include "sim/core/stats.h"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include <cmath>

namespace xensim {
namespace {

TEST(Stats, CountersFamiliesAndDistributionsDumpUnderTheirGroupPath) {
    StatsGroup root("");
    StatsGroup dom("dom1", &root);
    StatsGroup vcpu("vcpu0", &dom);
    Counter halts(vcpu, "halts", "halts", "times blocked");
    CounterFamily exits(vcpu, "exits", "exits", "by reason");
    Distribution lat(vcpu, "latency_ns", "ns", "latency");
    halts.inc(3);
    exits.inc("VMCALL", 2);
    exits.inc("HLT");
    for (std::uint64_t v : {10, 20, 30, 40}) lat.sample(v);
    EXPECT_EQ(vcpu.path(), "dom1.vcpu0");
    auto j = root.dump();
    EXPECT_EQ(j["dom1"]["vcpu0"]["halts"], 3);
    EXPECT_EQ(j["dom1"]["vcpu0"]["exits"]["VMCALL"], 2);
    EXPECT_EQ(j["dom1"]["vcpu0"]["exits"]["HLT"], 1);
    EXPECT_EQ(j["dom1"]["vcpu0"]["latency_ns"]["p50"], 20);
    EXPECT_EQ(j["dom1"]["vcpu0"]["latency_ns"]["max"], 40);
    EXPECT_EQ(exits.total(), 3u);
    ASSERT_NE(root.find_counter("dom1.vcpu0.halts"), nullptr);
    EXPECT_EQ(root.find_counter("dom1.vcpu0.halts")->value(), 3u);
    EXPECT_EQ(root.find_family("dom1.vcpu0.exits")->value("VMCALL"), 2u);
    EXPECT_EQ(root.find_counter("dom1.vcpu1.halts"), nullptr);
}

TEST(Stats, RaiseToKeepsTheHighWaterMark) {
    StatsGroup g("g");
    Counter peak(g, "peak", "items", "most items held at once");
    for (std::uint64_t v : {3u, 1u, 7u, 7u, 2u}) peak.raise_to(v);
    EXPECT_EQ(peak.value(), 7u);
}

TEST(Stats, DescribedDumpCarriesUnitAndDescription) {
    StatsGroup root("");
    Counter c(root, "sends", "notifications", "EVTCHNOP_send calls");
    auto j = root.dump(true);
    EXPECT_EQ(j["sends"]["unit"], "notifications");
    EXPECT_EQ(j["sends"]["description"], "EVTCHNOP_send calls");
}

TEST(Stats, DeclaringANameTwiceInOneGroupIsAModelBug) {
    StatsGroup root("");
    Counter a(root, "x", "u", "d");
    EXPECT_THROW(Counter(root, "x", "u", "d"), std::logic_error);
}

TEST(Stats, PercentilesAreNearestRank) {
    StatsGroup root("");
    Distribution d(root, "d", "ns", "d");
    EXPECT_EQ(d.percentile(50), 0u) << "no samples";
    for (std::uint64_t v = 1; v <= 1000; ++v) d.sample(1001 - v);
    // Nearest rank over 1..1000, reported as the midpoint of the rank's log-linear bucket (fio's
    // plat_idx_to_val): below 128 exact; 500 is in [500, 504), 990 in [984, 992), 999 in [992, 1000).
    EXPECT_EQ(d.percentile(10), 100u);
    EXPECT_EQ(d.percentile(50), 502u);
    EXPECT_EQ(d.percentile(99), 988u);
    EXPECT_EQ(d.percentile(99.9), 996u);
    EXPECT_EQ(d.min(), 1u);
    EXPECT_EQ(d.max(), 1000u);
    EXPECT_EQ(d.percentile(0), 1u);
    EXPECT_EQ(d.percentile(100), 1000u);
    EXPECT_DOUBLE_EQ(d.mean(), 500.5);
}

// Samples spread over every magnitude of the 64-bit range, with duplicates: each percentile is
// within the stated precision (1/128 of the exact order statistic, docs/report-schema.md) of a
// sorted copy's; min, max and mean stay exact.
TEST(Stats, PercentilesOfManyWideSamplesAreWithinTheBucketPrecision) {
    StatsGroup root("");
    Distribution d(root, "d", "ns", "d");
    std::mt19937_64 rng(7);
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 5000; ++i) {
        std::uint64_t v = rng() >> (rng() % 64);  // magnitudes from 1 bit to 64 bits
        values.push_back(v);
        values.push_back(v);
    }
    for (std::uint64_t v : values) d.sample(v);
    std::sort(values.begin(), values.end());
    for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
        auto rank = static_cast<std::size_t>((p / 100.0) * values.size() + 0.999999999);
        rank = std::clamp<std::size_t>(rank, 1, values.size());
        const double exact = static_cast<double>(values[rank - 1]);
        EXPECT_LE(std::abs(static_cast<double>(d.percentile(p)) - exact), exact / 128) << "p" << p;
    }
    EXPECT_EQ(d.percentile(0), values.front());
    EXPECT_EQ(d.percentile(100), values.back());
    EXPECT_EQ(d.min(), values.front());
    EXPECT_EQ(d.max(), values.back());
    long double sum = 0;
    for (std::uint64_t v : values) sum += v;
    EXPECT_EQ(d.mean(), static_cast<double>(sum / values.size()));
}

// The backstop behind the models' own bounded label sets: past kMaxLabels, new labels share one.
TEST(Stats, FamilyLabelsAreBoundedByAnOverflowLabel) {
    StatsGroup root("");
    CounterFamily f(root, "f", "calls", "f");
    const std::size_t cap = CounterFamily::kMaxLabels;
    for (std::size_t i = 0; i < cap + 1000; ++i) f.inc("l" + std::to_string(i));
    f.inc("l0");
    static const char kLiteral[] = "literal";
    f.inc(kLiteral);
    EXPECT_EQ(f.labels().size(), cap + 1);
    EXPECT_EQ(f.value("l0"), 2u) << "labels seen before the cap keep counting";
    EXPECT_EQ(f.value(CounterFamily::kOverflowLabel), 1000u + 1);
    EXPECT_EQ(f.value("literal"), 0u);
    EXPECT_EQ(f.total(), cap + 1000 + 2);
}

// CounterFamily::at(slot, label): the caller's slot resolves on first use only (a label appears
// once counted, as with at(label)), then counts the same counter as a lookup by label would.
TEST(Stats, FamilySlotsResolveOnFirstUseAndShareTheLabelsCounter) {
    StatsGroup root("");
    CounterFamily f(root, "ops", "calls", "by op");
    std::uint64_t* slot = nullptr;
    EXPECT_TRUE(f.labels().empty());
    ++f.at(slot, "EVTCHNOP_send");
    ASSERT_NE(slot, nullptr);
    EXPECT_EQ(f.labels().size(), 1u);
    f.inc("EVTCHNOP_send", 2);
    ++f.at(slot, "EVTCHNOP_send");
    EXPECT_EQ(f.value("EVTCHNOP_send"), 4u);
    std::uint64_t* other = nullptr;
    ++f.at(other, "EVTCHNOP_close");
    EXPECT_NE(other, slot);
    EXPECT_EQ(f.value("EVTCHNOP_close"), 1u);
    EXPECT_EQ(f.total(), 5u);
}

}  // namespace
}  // namespace xensim
