// The randomized half of the temporal-decoupling proof (docs/temporal-decoupling.md): scenarios
// generated from a seed — domains, vCPUs, pCPUs, pinning, scheduler and interrupt settings,
// PV disks (queues; blkback's copy or map, persistent grants, indirect descriptors) and IDE disks
// (DMA or PIO), write caches with fsync, nics (queues, rate limits), and fio, netperf, ping-pong and
// CPU-burn workloads mixed, sometimes on identical guests in lock-step — run with
// platform.fast_paths on and off, and their reports must be identical. Each seed is a test of its
// own; a failing one leaves its scenario in the test's scratch directory and names it.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tests/scenario/cli_util.h"
#include "tests/scenario/fast_paths_util.h"

namespace {

using nlohmann::json;
using namespace cli_testing;

// Draws from std::mt19937_64 directly (its output is specified; the std distributions are not).
class Draw {
  public:
    explicit Draw(std::uint64_t seed) : g_(seed) {}
    std::uint64_t below(std::uint64_t n) { return g_() % n; }
    std::uint64_t in(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
    bool chance(unsigned percent) { return below(100) < percent; }
    template <class T>
    const T& pick(const std::vector<T>& v) {
        return v[below(v.size())];
    }

  private:
    std::mt19937_64 g_;
};

std::string mac(unsigned d) {
    char b[32];
    std::snprintf(b, sizeof b, "00:16:3e:00:00:%02x", d);
    return b;
}

json generate(std::uint64_t seed) {
    Draw r(seed);
    const unsigned pcpus = static_cast<unsigned>(r.in(1, 4));
    json platform = {{"pcpus", pcpus},
                     {"seed", seed},
                     {"scheduler",
                      {{"tslice_us", r.pick<std::uint64_t>({100, 1000, 30000})},
                       {"ratelimit_us", r.pick<std::uint64_t>({0, 100, 1000})},
                       {"accounting_period_us", r.pick<std::uint64_t>({1000, 30000})},
                       {"wakeup_preemption", r.chance(70)}}},
                     {"hvm",
                      {{"posted_interrupts", r.chance(30)},
                       {"apic_virtualization", r.pick<std::string>({"off", "register", "full"})}}},
                     // The block backend's options the fast path meets: copy vs map, persistent
                     // grants, indirect descriptors.
                     {"blkback",
                      {{"grant_mode", r.chance(30) ? "copy" : "map"},
                       {"feature_persistent", r.chance(70)},
                       {"max_indirect_segments", r.chance(30) ? 0 : 256}}}};
    json domains = json::array();
    domains.push_back({{"name", "dom0"},
                       {"type", r.chance(80) ? "pv" : "pvh"},
                       {"vcpus", r.in(1, 2)},
                       {"memory_mb", 1024}});
    const unsigned guests = static_cast<unsigned>(r.in(1, 3));
    // Lock-step: every guest drawn alike (the same draws), so that their steps fall on the same
    // picoseconds and only the model's same-time order keeps both paths alike (blk-five-guests).
    const bool lockstep = guests > 1 && r.chance(25);
    json workloads = json::array();
    std::vector<std::string> nic_guests, plain_guests;
    for (unsigned g = 1; g <= guests; ++g) {
        Draw gr(seed * 7919 + (lockstep ? 1 : g));  // this guest's draws
        const std::string name = "g" + std::to_string(g);
        json d = {{"name", name},
                  {"type", "hvm"},
                  {"vcpus", gr.in(1, 3)},
                  {"memory_mb", 256},
                  {"upcall", gr.chance(50) ? "callback_vector" : "percpu_vector"}};
        if (gr.chance(25)) d["pinning"] = json::array({gr.below(pcpus)});
        const unsigned kind = static_cast<unsigned>(gr.below(4));  // disk, nic, nothing (ping-pong/burn)
        if (kind == 0 || kind == 1) {
            const bool ide = kind == 1;
            const bool write_cache = gr.chance(30);
            json disk = {{"vdev", ide ? "hda" : "xvda"},
                         {"attach", ide ? "ide" : "pv"},
                         {"sectors", 262144},
                         {"model", gr.pick<std::string>({"null", "ramdisk", "ssd"})},
                         {"write_cache", write_cache}};
            if (ide && gr.chance(30)) disk["ide_transfer"] = "pio";
            d["disks"] = json::array({disk});
            if (!ide && gr.chance(30)) d["blkfront"] = {{"queues", gr.in(1, 4)}};
            workloads.push_back({{"type", "fio"},
                                 {"name", "fio-" + name},
                                 {"guest", name},
                                 {"rw", gr.pick<std::string>({"randread", "randwrite", "read", "randrw"})},
                                 {"bs", gr.pick<std::uint64_t>({512, 4096, 65536})},
                                 {"iodepth", ide ? 1 : gr.in(1, 8)},
                                 {"numjobs", gr.in(1, 2)},
                                 {"number_ios", gr.in(20, 200)},
                                 {"fsync", write_cache && gr.chance(50) ? gr.in(1, 8) : 0}});
        } else if (kind == 2) {
            json nic = {{"mac", mac(g)}};
            if (gr.chance(20)) nic["rate"] = gr.pick<std::string>({"10Mb/s@10ms", "100Mb/s", "1MB/s@1ms"});
            d["nics"] = json::array({nic});
            if (gr.chance(30)) d["netfront"] = {{"queues", gr.in(1, 4)}};
            nic_guests.push_back(name);
        } else {
            plain_guests.push_back(name);
        }
        domains.push_back(d);
    }
    for (const std::string& g : nic_guests) {
        const std::string test = r.pick<std::string>({"UDP_RR", "UDP_STREAM", "TCP_STREAM", "ping"});
        json w = {{"type", "netperf"}, {"name", "net-" + g}, {"guest", g}, {"test", test}};
        w["number"] = test == "UDP_STREAM" ? 500 : test == "TCP_STREAM" ? 20 : 100;
        if (test == "UDP_RR" && nic_guests.size() > 1 && g == nic_guests[0] && r.chance(50))
            w["peer"] = nic_guests[1];
        workloads.push_back(w);
    }
    for (std::size_t i = 0; i + 1 < plain_guests.size(); i += 2)
        workloads.push_back({{"type", "evtchn_pingpong"},
                             {"name", "pp-" + plain_guests[i]},
                             {"initiator", plain_guests[i]},
                             {"responder", plain_guests[i + 1]},
                             {"round_trips", r.in(20, 100)},
                             {"wait", r.chance(70) ? "halt" : "poll"}});
    if (plain_guests.size() % 2)
        workloads.push_back({{"type", "cpu_burn"},
                             {"name", "burn-" + plain_guests.back()},
                             {"domain", plain_guests.back()},
                             {"slice_cycles", r.pick<std::uint64_t>({20000, 1000000})},
                             {"slices", r.chance(50) ? 0 : r.in(5, 50)}});
    return {{"name", "fast-paths-random-" + std::to_string(seed)},
            {"description", lockstep ? "lock-step guests" : "mixed guests"},
            {"platform", platform},
            {"domains", domains},
            {"workloads", workloads},
            {"stop", {{"sim_time_ms", 200}}}};
}

class FastPathsRandom : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(FastPathsRandom, TheReportIsTheSameWithAndWithout) {
    const std::uint64_t seed = GetParam();
    fs::path dir = temp_dir("fast-random-" + std::to_string(seed));
    const fs::path scenario = dir / "scenario.json";
    std::ofstream(scenario) << generate(seed).dump(2) << "\n";
    const FastPathRun on = run_fast_paths(scenario, dir / "on", true),
                      off = run_fast_paths(scenario, dir / "off", false);
    EXPECT_EQ(on.status, off.status);
    ASSERT_FALSE(on.report.is_null()) << "the generated scenario must be valid and run: " << scenario;
    EXPECT_EQ(first_difference(on.report, off.report), "") << "the scenario is kept in " << scenario;
    EXPECT_EQ(first_difference(on.stats, off.stats), "") << "the scenario is kept in " << scenario;
    // What run-ahead must keep true: every pCPU's busy, switching and idle time partition the
    // report's window exactly (the invariant of tests/scenario/pcpu_time_cli_test.cpp).
    const std::uint64_t window_ps = on.report.at("simulation").at("sim_time_ps");
    for (const json& p : on.report.at("pcpus"))
        EXPECT_EQ(p.at("busy_ps").get<std::uint64_t>() + p.at("switch_ps").get<std::uint64_t>() +
                      p.at("idle_ps").get<std::uint64_t>(),
                  window_ps)
            << "pcpu" << p.at("id") << "; the scenario is kept in " << scenario;
    if (!HasFailure()) fs::remove_all(dir);
}

constexpr std::uint64_t kSeeds = 40;
INSTANTIATE_TEST_SUITE_P(Seeds, FastPathsRandom, ::testing::Range<std::uint64_t>(1, kSeeds + 1));

// The seeds above do reach the combinations the generator is there for (its draws are cheap to
// inspect without running anything).
TEST(FastPathsRandomCoverage, TheSeedsReachEveryOptionTheFastPathMeets) {
    std::map<std::string, unsigned> seen;
    for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
        const json s = generate(seed);
        const json& bb = s.at("platform").at("blkback");
        bool pv = false, ide = false;
        for (const json& d : s.at("domains")) {
            for (const json& disk : d.value("disks", json::array())) {
                (disk.at("attach") == "ide" ? ide : pv) = true;
                if (disk.value("ide_transfer", "dma") == "pio") ++seen["ide pio"];
                if (disk.at("write_cache")) ++seen["write cache"];
            }
            if (d.contains("blkfront")) ++seen["blkfront queues"];
            if (d.contains("netfront")) ++seen["netfront queues"];
            for (const json& nic : d.value("nics", json::array()))
                if (nic.contains("rate")) ++seen["vif rate"];
        }
        if (pv && bb.at("grant_mode") == "copy") ++seen["pv with grant copy"];
        if (pv && !bb.at("feature_persistent")) ++seen["pv without persistent grants"];
        if (pv && bb.at("max_indirect_segments") == 0) ++seen["pv without indirect"];
        if (ide) ++seen["ide"];
        if (s.at("description") == "lock-step guests") ++seen["lock-step guests"];
        for (const json& w : s.at("workloads")) {
            ++seen["workload " + w.at("type").get<std::string>()];
            if (w.value("fsync", 0) > 0) ++seen["fsync"];
        }
    }
    for (const char* want :
         {"ide pio", "write cache", "blkfront queues", "netfront queues", "vif rate", "pv with grant copy",
          "pv without persistent grants", "pv without indirect", "ide", "fsync", "workload fio",
          "workload netperf", "workload evtchn_pingpong", "workload cpu_burn", "lock-step guests"})
        EXPECT_GT(seen[want], 0u) << want;
}

}  // namespace
