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

}  // namespace cli_testing
