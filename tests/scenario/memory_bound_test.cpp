// Host memory of schema-valid scenarios at the schema's size maxima (issue 11, item 26): the
// simulator's memory follows what the workload touches, not the sizes the scenario declares. Each
// run is a separate xensim process; its peak RSS is the child's ru_maxrss (wait4), so the bound is
// measured, not timed. The bounds are documented in docs/architecture.md ("Host memory").
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/scenario/cli_util.h"

namespace {

using namespace cli_testing;
using nlohmann::json;

struct MeasuredRun {
    int status = -1;
    long max_rss_kib = 0;
};

// Runs `xensim run SCENARIO --out DIR` with stdout/stderr to a file; returns its exit status and
// peak resident set size.
// Under AddressSanitizer (cmake/xensim-dev.sh asan-test) peak RSS measures ASan's shadow memory and
// quarantine, not xensim's: the bounds are checked in the plain build only. And LeakSanitizer,
// which cannot scan SystemC's coroutine stacks there (LSAN_OPTIONS=use_stacks=0), would report what
// a thread stopped in the middle of a call at the end of the run holds on its stack; the child
// runs without leak detection (the other tests keep it).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XENSIM_TEST_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(XENSIM_TEST_UNDER_ASAN)
#define XENSIM_TEST_UNDER_ASAN 1
#endif
#ifdef XENSIM_TEST_UNDER_ASAN
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif

MeasuredRun run_measured(const fs::path& scenario, const fs::path& out) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (!kRssMeaningful) {
            const char* asan = std::getenv("ASAN_OPTIONS");
            ::setenv("ASAN_OPTIONS", (std::string(asan ? asan : "") + ":detect_leaks=0").c_str(), 1);
        }
        std::string log = (out / "log.txt").string();
        if (!std::freopen(log.c_str(), "w", stdout) || !std::freopen(log.c_str(), "a", stderr)) _exit(126);
        ::execl(XENSIM_BIN, XENSIM_BIN, "run", scenario.c_str(), "--out", out.c_str(),
                static_cast<char*>(nullptr));
        _exit(127);
    }
    MeasuredRun r;
    int st = 0;
    struct rusage ru {};
    if (pid > 0 && ::wait4(pid, &st, 0, &ru) == pid) {
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        r.max_rss_kib = ru.ru_maxrss;  // Linux: KiB
    }
    return r;
}

json domain(const std::string& name, const std::string& type, int vcpus, long memory_mb) {
    return {{"name", name}, {"type", type}, {"vcpus", vcpus}, {"memory_mb", memory_mb}};
}

// The largest disk (2^40 sectors, 512 TiB) read randomly at bs=512 with the random map (2^40
// blocks: a 128 GiB bitmap if dense) by the largest guest (1 TiB: 2^28 frames, 8 GiB of frame
// records if eager), next to 62 more 1 TiB guests of 32 vCPUs: 64 domains, the schema's maximum.
TEST(MemoryBound, SchemaMaximaRunWithinAStatedHostRss) {
    fs::path dir = temp_dir("membound");
    json s = {{"name", "schema-maxima"}, {"platform", {{"pcpus", 64}, {"seed", 1}}}};
    s["domains"] = json::array({domain("dom0", "pv", 32, 1'048'576)});
    json guest = domain("guest", "hvm", 32, 1'048'576);
    guest["disks"] = json::array({{{"vdev", "xvda"}, {"sectors", 1LL << 40}, {"model", "ramdisk"}}});
    s["domains"].push_back(guest);
    for (int i = 2; i < 64; ++i)
        s["domains"].push_back(domain("idle" + std::to_string(i), "hvm", 32, 1'048'576));
    s["workloads"] = json::array({{{"type", "fio"},
                                   {"name", "randread-512"},
                                   {"guest", "guest"},
                                   {"rw", "randread"},
                                   {"bs", 512},
                                   {"iodepth", 32},
                                   {"number_ios", 20000}}});
    std::ofstream(dir / "s.json") << s.dump(1);
    MeasuredRun r = run_measured(dir / "s.json", dir);
    std::ifstream log(dir / "log.txt");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    ASSERT_EQ(r.status, 0) << text;
    json report = read_json(dir / "report.json");
    EXPECT_EQ(report.at("workloads").at(0).at("ops"), 20000u);
    EXPECT_EQ(report.at("workloads").at(0).at("failures"), 0u);
    // The bound: 384 MiB for the whole run. Measured 83 MiB here at the time of writing (see the
    // docs); one CI machine has shown about 190 MiB more than this one for the same binary, so the
    // bound leaves room for that while a 1 TiB guest's eager frame records (8 GiB) would still fail.
    if (kRssMeaningful) {
        EXPECT_LT(r.max_rss_kib, 384L * 1024) << "peak RSS " << r.max_rss_kib << " KiB";
    }
    std::printf("schema maxima: peak RSS %ld KiB\n", r.max_rss_kib);
    fs::remove_all(dir);
}

// The domain limit (issue 13): dom0 with 2 vCPUs and 256 HVM guests, each with a PV disk and a fio
// job of 10 4 KiB random reads at QD32 on 4 pCPUs (cmake/scale-scenario.py 256 2560). Every guest
// boots, connects its disk and finishes its job; the host memory per guest stays within a stated
// constant (docs/performance.md, "Scale": about 0.75 MiB per guest of this shape at the time of
// writing, 0.26 MiB of it fio's random map of the 8 GiB disk).
TEST(MemoryBound, TwoHundredFiftySixGuestsRunWithinAStatedHostRss) {
    constexpr int kGuests = 256;
    fs::path dir = temp_dir("membound256");
    std::ofstream(dir / "s.json") << scale_scenario(kGuests, 10).dump(1);
    MeasuredRun r = run_measured(dir / "s.json", dir);
    std::ifstream log(dir / "log.txt");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    ASSERT_EQ(r.status, 0) << text;
    json report = read_json(dir / "report.json");
    EXPECT_EQ(report.at("simulation").at("stop_reason"), "workloads_done");
    ASSERT_EQ(report.at("workloads").size(), static_cast<std::size_t>(kGuests));
    for (const json& w : report.at("workloads")) {
        EXPECT_EQ(w.at("ops"), 10u) << w.at("name");
        EXPECT_EQ(w.at("failures"), 0u) << w.at("name");
    }
    // The bound: 128 MiB of base plus 1 MiB per guest, plus the 190 MiB one CI machine has shown
    // above this one: 576 MiB. Measured about 200 MiB here; a guest costing 1.5 MiB more than now
    // (a SystemC stack committed in full, an eager frame table, a dense map) would fail it.
    if (kRssMeaningful) {
        EXPECT_LT(r.max_rss_kib, 576L * 1024) << "peak RSS " << r.max_rss_kib << " KiB";
    }
    std::printf("256 guests: peak RSS %ld KiB\n", r.max_rss_kib);
    fs::remove_all(dir);
}

}  // namespace
