// xensim: the command-line tool. Exit status 0 ok, 2 bad input (scenario or flags), 1 internal
// error (including a run whose workloads failed verification or stalled).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "reports/compare.h"
#include "reports/summary_table.h"
#include "sim/cli/sweep.h"
#include "sim/platform/platform.h"
#include "sim/platform/scenario.h"
#include "sim/platform/sweep_spec.h"
#include "sim/platform/xenstore_layout.h"
#include "sim/platform/xenstore_socket.h"
#include "sim/core/version.h"

namespace {

const char* kUsage = R"(usage:
  xensim run SCENARIO.json [--set a.b.c=value]... [--seed N] [--out DIR]
                           [--trace CATEGORIES] [--trace-format perfetto|text]
                           [--xenstore-socket PATH [--hold]]
      Simulate the scenario, print a summary, write DIR/report.json and DIR/stats.json (every
      counter with its unit and description; DIR defaults to ./xensim-out) and, with --trace, DIR/trace.json (perfetto) or DIR/trace.txt (text).
      CATEGORIES: comma-separated from sched, vmexit, hypercall, evtchn, gnttab, ioreq, blkif, or all.
      --set: dotted keys and array indices (domains.1.vcpus=2); the value is JSON, or a bare word
      for a string-typed key (domains.1.disks.0.model=null).
      --xenstore-socket serves the simulated host's XenStore on PATH during the run (a client
      that writes makes the run depend on it); --hold keeps serving after the run until SIGINT.
  xensim validate SCENARIO.json [--set a.b.c=value]... [--seed N]
      Check the scenario without simulating; print the effective configuration.
  xensim bench SCENARIO.json [--set a.b.c=value]... [--seed N]
      Run without writing files; print simulated hypervisor operations per host second.
  xensim schema [sweep]
      Print the JSON Schema of scenario files (with sweep: of sweep files).
  xensim sweep SWEEP.json --out DIR [-j N] [--shard I/N]
      Run every point of a parameter sweep (each axis value x seed as its own `xensim run`, N at
      once, default every core) into DIR/points/<id>/, skipping points already finished there,
      then write DIR/sweep.csv and DIR/sweep.json (docs/sweep.md). --shard I/N runs only the
      points whose index % N == I. Exit status 1 if a point failed (the others still run).
  xensim sweep SWEEP.json --out DIR --list [--shard I/N]
      Print one shell command per point (for GNU parallel or a batch system).
  xensim sweep SWEEP.json --out DIR --point ID
      Run one point exactly as the sweep does.
  xensim sweep SWEEP.json --out DIR --merge [DIR2...]
      Write DIR/sweep.csv and sweep.json from the finished points in DIR and DIR2... (copied into DIR).
  xensim xenstored --socket PATH [--scenario SCENARIO.json]
      Serve a standalone XenStore on the Unix socket PATH for dom0 tools (XENSTORED_PATH=PATH
      xenstore-ls /) until SIGINT or SIGTERM; with --scenario, pre-populated with the nodes the
      toolstack writes for its domains.
  xensim compare BASELINE.json NEW.json [--tolerance SPEC]... [--json OUT.json]
      Compare two report.json files side by side (workloads by name, domains, simulated time;
      never host). With --tolerance, gate: SPEC is N% (relative, default for every metric), N
      (absolute), or PATTERN=N% / PATTERN=N for metrics whose path contains PATTERN (the longest
      pattern wins); exit 1 when a metric moved beyond its tolerance. --json writes the comparison.
  xensim --help | --version

Exit status: 0 ok, 2 bad input, 1 internal error or failed run (compare: a metric moved).
)";

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::atomic<bool> g_xenstored_stop{false};  // set by SIGINT / SIGTERM (lock-free: signal-safe)

extern "C" void xenstored_on_signal(int) { g_xenstored_stop.store(true); }

void install_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = xenstored_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

struct Args {
    std::string command, scenario, out = "xensim-out", trace, trace_format = "perfetto", xenstore_socket;
    bool hold = false;
    xensim::ScenarioOverrides overrides;
};

Args parse_args(int argc, char** argv) {
    Args a;
    std::vector<std::string> v(argv + 1, argv + argc);
    if (v.empty()) throw UsageError("no command given");
    a.command = v[0];
    auto value = [&](std::size_t& i) -> std::string {
        if (i + 1 >= v.size()) throw UsageError(v[i] + " needs a value");
        return v[++i];
    };
    for (std::size_t i = 1; i < v.size(); ++i) {
        const std::string& s = v[i];
        if (s == "--set") {
            a.overrides.sets.push_back(value(i));
        } else if (s == "--seed") {
            std::string n = value(i);
            try {
                std::size_t used = 0;
                a.overrides.seed = std::stoull(n, &used);
                if (used != n.size() || n[0] == '-') throw std::invalid_argument(n);
            } catch (const std::exception&) {
                throw UsageError("--seed expects a non-negative integer, found \"" + n + "\"");
            }
            a.overrides.has_seed = true;
        } else if (s == "--out") {
            a.out = value(i);
        } else if (s == "--xenstore-socket") {
            a.xenstore_socket = value(i);
        } else if (s == "--hold") {
            a.hold = true;
        } else if (s == "--trace") {
            a.trace = value(i);
        } else if (s == "--trace-format") {
            a.trace_format = value(i);
            if (a.trace_format != "perfetto" && a.trace_format != "text")
                throw UsageError("--trace-format expects perfetto or text, found \"" + a.trace_format + "\"");
        } else if (!s.empty() && s[0] == '-') {
            throw UsageError("unknown option " + s);
        } else if (a.scenario.empty()) {
            a.scenario = s;
        } else {
            throw UsageError("unexpected argument " + s);
        }
    }
    bool needs_scenario = a.command == "run" || a.command == "validate" || a.command == "bench";
    if (needs_scenario && a.scenario.empty()) throw UsageError(a.command + " needs a scenario file");
    if (!needs_scenario && a.command != "schema") throw UsageError("unknown command " + a.command);
    if ((!a.xenstore_socket.empty() || a.hold) && a.command != "run")
        throw UsageError("--xenstore-socket and --hold go with run");
    if (a.hold && a.xenstore_socket.empty()) throw UsageError("--hold needs --xenstore-socket PATH");
    return a;
}

// Opens `path` for writing as the run will (created or truncated) and writes one byte, which a
// file that opens but takes nothing (a link to /dev/full: ENOSPC) refuses; then empties it. A file
// that cannot be written is bad input (exit 2), found before anything is simulated.
void check_writable(const std::string& out, const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct stat st;
    bool ok = fd >= 0 && ::write(fd, "\n", 1) == 1 && ::fstat(fd, &st) == 0 &&
              (!S_ISREG(st.st_mode) || ::ftruncate(fd, 0) == 0);
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (!ok)
        throw xensim::ScenarioError("--out " + out + ": cannot write " + path + ": " + std::strerror(err));
}

// After the run: a write that fails now (the disk filled up meanwhile) is a host error, exit 1.
void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

int run(const Args& a) {
    using namespace xensim;
    Scenario sc = load_scenario(a.scenario, a.overrides);
    if (a.command == "validate") {
        std::cout << sc.effective.dump(2) << "\n" << a.scenario << ": valid\n";
        return 0;
    }
    Tracer tracer;
    bool writes = a.command == "run";
    if (writes) {
        std::uint32_t mask = 0;
        if (!a.trace.empty()) {
            try {
                mask = Tracer::parse_categories(a.trace);
            } catch (const std::invalid_argument& e) {
                throw UsageError(std::string("--trace: ") + e.what());
            }
        }
        std::error_code ec;
        std::filesystem::create_directories(a.out, ec);
        if (ec) throw ScenarioError("--out " + a.out + ": cannot create directory: " + ec.message());
        const bool text = a.trace_format == "text";
        const std::string trace_path = a.out + (text ? "/trace.txt" : "/trace.json");
        // Every file the run writes is tried now, so that an --out that cannot take them is bad
        // input found before simulating rather than an error after it.
        check_writable(a.out, a.out + "/report.json");
        check_writable(a.out, a.out + "/stats.json");
        if (!a.trace.empty()) {
            check_writable(a.out, trace_path);
            tracer.enable(mask,
                          text ? make_text_trace_sink(trace_path) : make_perfetto_trace_sink(trace_path));
        }
    }
    Platform platform(sc, tracer);
    std::unique_ptr<XenStoreSocketServer> store_server;
    if (!a.xenstore_socket.empty()) {
        store_server = std::make_unique<XenStoreSocketServer>(platform.xenstore(), platform.xenstore_mutex(),
                                                              a.xenstore_socket);
        try {
            store_server->start();
        } catch (const std::runtime_error& e) {
            throw UsageError(std::string("--xenstore-socket: ") + e.what());
        }
        store_server->start_background();
        std::cout << "xenstored: listening on " << a.xenstore_socket << std::endl;
    }
    RunResult result = platform.run();
    if (store_server) store_server->stop_background();  // the report reads the store's counters
    nlohmann::json report = platform.report(result);
    if (a.command == "bench") {
        std::cout << "scenario " << sc.effective.at("name").get<std::string>() << ": "
                  << report["simulation"]["hypervisor_operations"] << " hypervisor operations in "
                  << report["host"]["wall_seconds"] << " s = "
                  << static_cast<std::uint64_t>(
                         report["host"]["hypervisor_operations_per_second"].get<double>())
                  << " per host second\n";
        const double wall = report["host"]["wall_seconds"].get<double>();
        for (const auto& w : report["workloads"])
            std::cout << "workload " << w["name"].get<std::string>() << ": " << w["ops"] << " operations = "
                      << static_cast<std::uint64_t>(wall > 0 ? w["ops"].get<double>() / wall : 0.0)
                      << " per host second\n";
        // How often the fast paths ran (docs/temporal-decoupling.md); not in the report, which must
        // not depend on platform.fast_paths.
        const FastPathCounts& fast = platform.hypervisor().fast_path_counts();
        std::cout << "fast paths: run_ahead " << fast.run_ahead << ", work_ahead " << fast.work_ahead
                  << ", idle_switch " << fast.idle_switch << ", borrowed " << fast.borrowed << "\n";
    } else {
        write_file(a.out + "/report.json", report.dump(2) + "\n");
        // The stats catalog: every counter with its value, unit and description.
        write_file(a.out + "/stats.json", platform.stats().dump(true).dump(2) + "\n");
        std::cout << render_summary(report) << "report: " << a.out << "/report.json\n";
    }
    if (store_server && a.hold) {
        std::cout << "xenstored: holding the store on " << a.xenstore_socket << " until SIGINT" << std::endl;
        install_stop_signals();
        store_server->run_until(g_xenstored_stop);
    }
    if (store_server) store_server->close();
    int failures = 0;
    for (const auto& w : report["workloads"]) failures += w["failures"].get<int>();
    if (result.stop_reason == "stalled") {
        std::cerr << "xensim: the run stalled: nothing left to simulate while a workload was unfinished\n";
        return 1;
    }
    if (failures) {
        std::cerr << "xensim: " << failures << " workload operation(s) failed\n";
        return 1;
    }
    return 0;
}

// --- xensim xenstored: a standalone store on a Unix socket ---

int run_xenstored(const std::vector<std::string>& v) {
    std::string socket, scenario;
    for (std::size_t i = 1; i < v.size(); ++i) {
        if (v[i] != "--socket" && v[i] != "--scenario")
            throw UsageError("xenstored: unexpected argument " + v[i]);
        if (i + 1 >= v.size()) throw UsageError(v[i] + " needs a value");
        (v[i] == "--socket" ? socket : scenario) = v[i + 1];
        ++i;
    }
    if (socket.empty()) throw UsageError("xenstored needs --socket PATH");
    xensim::StatsGroup stats("xenstore");
    xensim::XenStore store(stats);
    if (!scenario.empty()) {
        const nlohmann::json effective = xensim::load_scenario(scenario).effective;
        xensim::write_scenario_layout(store, effective);
        // The toolstack introduces each domain it built (libxl__domain_make -> xs_introduce_domain), as the
        // simulated xenstored does when it connects a guest's ring (Xenstored::add_connection).
        for (std::size_t i = 1; i < effective.at("domains").size(); ++i)
            store.introduce_domain(static_cast<xensim::DomId>(i));
    }
    std::mutex mutex;
    xensim::XenStoreSocketServer server(store, mutex, socket);
    try {
        server.start();
    } catch (const std::runtime_error& e) {
        std::cerr << "xensim: " << e.what() << "\n";
        return 2;
    }
    install_stop_signals();
    std::cout << "xenstored: listening on " << socket << std::endl;
    server.run_until(g_xenstored_stop);
    server.close();
    // What the server did, for the person who stopped it (and for tests of its back-off).
    std::cout << "xenstored: stopped: " << server.connections_accepted() << " connections, "
              << server.requests() << " requests, " << server.protocol_errors() << " protocol errors, "
              << server.accept_errors() << " accept failures, " << server.watch_events_dropped()
              << " watch events dropped" << std::endl;
    return 0;
}

// --- xensim compare: two reports side by side, and a gate ---

int run_compare(const std::vector<std::string>& v) {
    std::vector<std::string> files;
    xensim::ToleranceSet tolerances;
    std::string json_out;
    for (std::size_t i = 1; i < v.size(); ++i) {
        const std::string& s = v[i];
        if (s == "--tolerance" || s == "--json") {
            if (i + 1 >= v.size()) throw UsageError(s + " needs a value");
            const std::string& value = v[++i];
            if (s == "--json") {
                json_out = value;
                continue;
            }
            try {
                tolerances.add(value);
            } catch (const std::invalid_argument& e) {
                throw UsageError(std::string("--tolerance: ") + e.what());
            }
        } else if (!s.empty() && s[0] == '-') {
            throw UsageError("unknown option " + s);
        } else if (files.size() < 2) {
            files.push_back(s);
        } else {
            throw UsageError("unexpected argument " + s);
        }
    }
    if (files.size() != 2) throw UsageError("compare needs two reports: BASELINE.json NEW.json");
    xensim::ReportFile baseline = xensim::load_report(files[0]);
    xensim::ReportFile current = xensim::load_report(files[1]);
    xensim::Comparison c = xensim::compare_reports(baseline, current, tolerances);
    if (!json_out.empty()) {
        std::ofstream out(json_out);
        out << xensim::comparison_to_json(c).dump(2) << "\n";
        if (!out) throw xensim::ReportInputError("--json " + json_out + ": cannot write");
    }
    std::cout << xensim::render_comparison(c);
    if (c.moved) {
        std::cerr << "xensim: " << c.moved << " metric(s) moved beyond tolerance\n";
        return 1;
    }
    return 0;
}

}  // namespace

int sc_main(int argc, char** argv) {
    sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
    if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
                      std::string(argv[1]) == "help")) {
        std::cout << kUsage;
        return 0;
    }
    if (argc >= 2 && std::string(argv[1]) == "--version") {
        std::cout << "xensim " << XENSIM_VERSION << "\n";
        return 0;
    }
    try {
        if (argc >= 2 && std::string(argv[1]) == "xenstored")
            return run_xenstored(std::vector<std::string>(argv + 1, argv + argc));
        if (argc >= 2 && std::string(argv[1]) == "compare")
            return run_compare(std::vector<std::string>(argv + 1, argv + argc));
        if (argc >= 2 && std::string(argv[1]) == "sweep") {
            xensim::SweepOptions options;
            try {
                options = xensim::parse_sweep_options(std::vector<std::string>(argv + 2, argv + argc));
            } catch (const xensim::SweepUsageError& e) {
                throw UsageError(e.what());
            }
            std::error_code ec;
            const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
            if (ec) throw std::runtime_error("cannot read /proc/self/exe: " + ec.message());
            try {
                return xensim::run_sweep(options, self);
            } catch (const xensim::SweepUsageError& e) {
                throw UsageError(e.what());
            }
        }
        if (argc == 3 && std::string(argv[1]) == "schema") {
            const std::string which = argv[2];
            if (which != "sweep" && which != "scenario")
                throw UsageError("schema expects scenario or sweep, found \"" + which + "\"");
            std::cout
                << (which == "sweep" ? xensim::sweep_json_schema() : xensim::scenario_json_schema()).dump(2)
                << "\n";
            return 0;
        }
        Args a = parse_args(argc, argv);
        if (a.command == "schema") {
            std::cout << xensim::scenario_json_schema().dump(2) << "\n";
            return 0;
        }
        return run(a);
    } catch (const UsageError& e) {
        std::cerr << "xensim: " << e.what() << "\n" << kUsage;
        return 2;
    } catch (const xensim::ScenarioError& e) {
        std::cerr << e.what();
        if (std::string(e.what()).back() != '\n') std::cerr << "\n";
        return 2;
    } catch (const xensim::ReportInputError& e) {
        std::cerr << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "xensim: internal error: " << e.what() << "\n";
        return 1;
    }
}

// Our own entry point, so SystemC's banner is switched off before the kernel starts.
int main(int argc, char** argv) {
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
    return sc_core::sc_elab_and_sim(argc, argv);
}
