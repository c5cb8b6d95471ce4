// pCPU time accounting over every shipped scenario, run as a user runs it (one simulation per
// process). New scenarios are picked up without editing this test.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "tests/scenario/cli_util.h"

namespace {

using namespace cli_testing;
using nlohmann::json;

// On every pCPU the time a vCPU held it (busy), the time spent deciding and switching, and the
// idle time partition the report's window [0, simulation.sim_time_ps] exactly: picoseconds, no
// tolerance (docs/cost-model.md, "pCPU time"). The cycle figures are the same times in cycles:
// busy and idle rounded down, switch_cycles the cost model's cycles of each switch, whose pCPU time
// is that cost in picoseconds rounded down (< 1 ps per decision, so < 1 cycle per decision);
// each of the three may lose < 1 cycle to rounding down.
TEST(PcpuTimeCli, EveryShippedScenarioAccountsEveryPicosecondOfEveryPcpu) {
    unsigned checked = 0;
    for (const auto& entry : fs::directory_iterator(src("scenarios"))) {
        if (entry.path().extension() != ".json") continue;
        const std::string name = entry.path().stem().string();
        fs::path dir = temp_dir("pcpu-time-" + name);
        Result r = xensim("run " + entry.path().string() + " --out " + dir.string());
        ASSERT_EQ(r.status, 0) << name << ": " << r.output;
        const json rep = read_json(dir / "report.json");
        const std::uint64_t window_ps = rep.at("simulation").at("sim_time_ps");
        const std::uint64_t mhz = rep.at("config").at("platform").at("cpu_mhz");
        const std::uint64_t window_cycles = window_ps * mhz / 1'000'000;
        for (const json& p : rep.at("pcpus")) {
            const std::string pcpu = "pcpu" + std::to_string(p.at("id").get<unsigned>());
            const std::uint64_t busy = p.at("busy_ps"), sw = p.at("switch_ps"), idle = p.at("idle_ps");
            EXPECT_EQ(busy + sw + idle, window_ps) << name << " " << pcpu;
            const std::uint64_t decisions = rep.at("stats").at("xen").at(pcpu).at("decisions");
            const std::uint64_t cycles = p.at("busy_cycles").get<std::uint64_t>() +
                                         p.at("switch_cycles").get<std::uint64_t>() +
                                         p.at("idle_cycles").get<std::uint64_t>();
            EXPECT_LE(cycles, window_cycles + decisions + 1) << name << " " << pcpu;
            EXPECT_GE(cycles + 3, window_cycles) << name << " " << pcpu;
        }
        fs::remove_all(dir);
        ++checked;
    }
    EXPECT_GE(checked, 20u);
}

}  // namespace
