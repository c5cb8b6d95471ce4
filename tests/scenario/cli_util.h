// Running the xensim binary from a test: its exit status and output, scratch directories, reports.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace cli_testing {

namespace fs = std::filesystem;

struct Result {
    int status;
    std::string output;  // stdout and stderr
};

// Runs `xensim ARGS` (XENSIM_BIN) through the shell.
inline Result xensim(const std::string& args) {
    std::string cmd = std::string(XENSIM_BIN) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// A path in the source tree (XENSIM_SOURCE_DIR).
inline std::string src(const std::string& rel) { return std::string(XENSIM_SOURCE_DIR) + "/" + rel; }

// An empty scratch directory, unique to this process.
inline fs::path temp_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("xensim-test-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

inline nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

// The scaling case (cmake/scale-scenario.py): dom0 PV with 2 vCPUs on 4 pCPUs, and `guests` HVM
// guests, each with a null-model PV disk and a fio job of `ios_each` 4 KiB random reads at QD32.
inline nlohmann::json scale_scenario(int guests, int ios_each) {
    nlohmann::json s = {{"name", "scale-" + std::to_string(guests)},
                        {"platform", {{"pcpus", 4}, {"seed", 1}}},
                        {"stop", {{"sim_time_ms", 1000000}}}};
    s["domains"] =
        nlohmann::json::array({{{"name", "dom0"}, {"type", "pv"}, {"vcpus", 2}, {"memory_mb", 1024}}});
    s["workloads"] = nlohmann::json::array();
    for (int i = 1; i <= guests; ++i) {
        const std::string name = "guest" + std::to_string(i);
        s["domains"].push_back(
            {{"name", name},
             {"type", "hvm"},
             {"vcpus", 1},
             {"memory_mb", 512},
             {"disks",
              nlohmann::json::array({{{"vdev", "xvda"}, {"sectors", 16777216}, {"model", "null"}}})}});
        s["workloads"].push_back({{"type", "fio"},
                                  {"name", "randread-" + name},
                                  {"guest", name},
                                  {"rw", "randread"},
                                  {"bs", 4096},
                                  {"iodepth", 32},
                                  {"number_ios", ios_each}});
    }
    return s;
}

}  // namespace cli_testing
