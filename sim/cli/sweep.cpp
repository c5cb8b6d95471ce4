#include "sim/cli/sweep.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "reports/sweep_results.h"
#include "sim/platform/scenario.h"
#include "sim/platform/sweep_spec.h"

extern char** environ;

namespace xensim {

namespace fs = std::filesystem;
using nlohmann::json;
using HostClock = std::chrono::steady_clock;  // progress and point.json only

SweepOptions parse_sweep_options(const std::vector<std::string>& v) {
    SweepOptions o;
    auto value = [&](std::size_t& i) -> std::string {
        if (i + 1 >= v.size()) throw SweepUsageError(v[i] + " needs a value");
        return v[++i];
    };
    auto count = [](const std::string& what, const std::string& text) {
        if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
            throw SweepUsageError(what + " expects a non-negative integer, found \"" + text + "\"");
        return static_cast<std::size_t>(std::stoul(text));
    };
    bool in_merge = false;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string& s = v[i];
        if (s == "--out") {
            o.out = value(i);
        } else if (s == "-j" || s == "--jobs") {
            o.jobs = static_cast<unsigned>(count(s, value(i)));
            if (o.jobs == 0) throw SweepUsageError(s + " expects at least 1");
        } else if (s == "--list") {
            o.list = true;
        } else if (s == "--shard") {
            const std::string spec = value(i);
            const auto slash = spec.find('/');
            if (slash == std::string::npos)
                throw SweepUsageError("--shard expects I/N, found \"" + spec + "\"");
            o.shard_index = count("--shard", spec.substr(0, slash));
            o.shard_count = count("--shard", spec.substr(slash + 1));
            if (o.shard_count == 0 || o.shard_index >= o.shard_count)
                throw SweepUsageError("--shard expects I/N with 0 <= I < N, found \"" + spec + "\"");
            o.sharded = true;
        } else if (s == "--point") {
            o.point = value(i);
        } else if (s == "--merge") {
            o.merge = in_merge = true;
            continue;
        } else if (!s.empty() && s[0] == '-') {
            throw SweepUsageError("sweep: unknown option " + s);
        } else if (in_merge) {
            o.merge_dirs.push_back(s);
            continue;
        } else if (o.file.empty()) {
            o.file = s;
        } else {
            throw SweepUsageError("sweep: unexpected argument " + s);
        }
        in_merge = false;
    }
    if (o.file.empty()) throw SweepUsageError("sweep needs a sweep file");
    if (o.out.empty()) throw SweepUsageError("sweep needs --out DIR");
    const int modes = int(o.list) + int(!o.point.empty()) + int(o.merge);
    if (modes > 1) throw SweepUsageError("sweep: --list, --point and --merge go alone");
    if (o.sharded && (o.merge || !o.point.empty()))
        throw SweepUsageError("sweep: --shard goes with a run or --list");
    return o;
}

namespace {

std::string shell_quote(const std::string& s) {
    if (!s.empty() &&
        s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=+:,@%") ==
            std::string::npos)
        return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

bool same_path(const fs::path& a, const fs::path& b) {
    std::error_code ec1, ec2;
    return fs::weakly_canonical(a, ec1) == fs::weakly_canonical(b, ec2);
}

std::string last_line(const fs::path& file) {
    std::ifstream in(file);
    std::string line, last;
    while (std::getline(in, line))
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    return last;
}

std::string format_duration(double seconds) {
    const long s = static_cast<long>(seconds + 0.5);
    std::ostringstream os;
    if (s >= 3600) os << s / 3600 << "h";
    if (s >= 60) os << (s / 60) % 60 << "m";
    os << s % 60 << "s";
    return os.str();
}

// One line of progress per finished point, or a bar rewritten in place on a terminal.
class Progress {
  public:
    Progress(std::size_t total, std::size_t already)
        : total_(total), done_(already), tty_(::isatty(STDERR_FILENO)) {
        if (already) std::cerr << "sweep: " << already << "/" << total << " points already done\n";
    }
    void finished(const std::string& id, const PointMarker& m, double run_seconds) {
        ++done_, ++ran_;
        failed_ += m.status != "ok";
        const double elapsed = std::chrono::duration<double>(HostClock::now() - start_).count();
        const double eta =
            ran_ ? elapsed / static_cast<double>(ran_) * static_cast<double>(total_ - done_) : 0;
        std::ostringstream line;
        line << done_ << "/" << total_ << " done";
        if (failed_) line << " (" << failed_ << " failed)";
        if (tty_) {
            // A failure gets a line of its own above the bar, which is then redrawn.
            if (m.status != "ok")
                std::cerr << "\r" << std::string(72, ' ') << "\rsweep: point " << id
                          << " failed: " << m.reason << "\n";
            const std::size_t width = 30, filled = total_ ? width * done_ / total_ : width;
            std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] "
                      << line.str() << ", ETA " << format_duration(eta) << "   " << std::flush;
            if (done_ == total_) std::cerr << "\n";
        } else {
            std::cerr << "sweep: " << line.str() << ", point " << id << " " << m.status << " in "
                      << format_duration(run_seconds) << ", ETA " << format_duration(eta);
            if (m.status != "ok") std::cerr << ": " << m.reason;
            std::cerr << std::endl;
        }
    }

  private:
    std::size_t total_, done_, ran_ = 0, failed_ = 0;
    bool tty_;
    HostClock::time_point start_ = HostClock::now();
};

class SweepDriver {
  public:
    SweepDriver(SweepSpec spec, std::string out, std::string exe)
        : spec_(std::move(spec)), points_(expand_sweep(spec_)), out_(std::move(out)), exe_(std::move(exe)) {}

    const std::vector<SweepPoint>& points() const { return points_; }
    fs::path point_dir(const SweepPoint& p) const { return fs::path(out_) / "points" / p.id; }
    bool complete(const SweepPoint& p) const { return point_complete(point_dir(p), spec_.base, p.sets); }

    // Runs `todo` (points not yet complete), at most `jobs` at once. Returns how many failed.
    std::size_t run(const std::vector<const SweepPoint*>& todo, unsigned jobs, std::size_t total) {
        Progress progress(total, total - todo.size());
        struct Running {
            const SweepPoint* point;
            HostClock::time_point start;
        };
        std::map<pid_t, Running> running;
        std::size_t next = 0, failed = 0;
        while (next < todo.size() || !running.empty()) {
            while (next < todo.size() && running.size() < jobs) {
                const SweepPoint* p = todo[next++];
                const HostClock::time_point t0 = HostClock::now();
                std::string error;
                const pid_t pid = start(*p, error);
                if (pid > 0) {
                    running[pid] = {p, t0};
                } else {
                    const PointMarker m = finish(*p, -1, error, 0);
                    failed += m.status != "ok";
                    progress.finished(p->id, m, 0);
                }
            }
            if (running.empty()) continue;
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, 0);
            if (pid < 0) {
                if (errno == EINTR) continue;
                throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
            }
            auto it = running.find(pid);
            if (it == running.end()) continue;
            const double seconds = std::chrono::duration<double>(HostClock::now() - it->second.start).count();
            const PointMarker m = finish(*it->second.point, status, "", seconds);
            failed += m.status != "ok";
            progress.finished(it->second.point->id, m, seconds);
            running.erase(it);
        }
        return failed;
    }

    // The command --list prints for `p`: this binary doing what run() does for it.
    std::string command(const SweepPoint& p, const std::string& sweep_file) const {
        return shell_quote(exe_) + " sweep " +
               shell_quote(fs::absolute(sweep_file).lexically_normal().string()) + " --out " +
               shell_quote(fs::absolute(out_).lexically_normal().string()) + " --point " + shell_quote(p.id);
    }

    // Gathers every point from out/points and the other directories into out/sweep.csv and
    // sweep.json. Returns the number of points that are not "ok".
    std::size_t merge(const std::vector<std::string>& from) {
        SweepTable table;
        json axes = json::array();
        for (const auto& a : spec_.axes) {
            table.axes.push_back(a.key);
            axes.push_back({{"key", a.key}, {"values", a.values}});
        }
        table.metrics = spec_.metrics;
        table.spec = {{"base", spec_.base},
                      {"axes", axes},
                      {"combine", spec_.combine == SweepCombine::zip ? "zip" : "cross"},
                      {"seeds", spec_.seeds},
                      {"metrics", spec_.metrics}};
        std::size_t not_ok = 0;
        tally_.clear();
        for (const SweepPoint& p : points_) {
            const fs::path mine = point_dir(p);
            if (!point_complete(mine, spec_.base, p.sets)) {
                // The first finished copy elsewhere, else the first failed one.
                std::optional<fs::path> found;
                for (int want_ok = 1; want_ok >= 0 && !found; --want_ok)
                    for (const auto& d : from) {
                        const fs::path there = fs::path(d) / "points" / p.id;
                        const auto m = read_point_marker(there);
                        if (same_path(there, mine)) continue;
                        if (m && m->base == spec_.base && m->sets == p.sets &&
                            (want_ok ? point_complete(there, spec_.base, p.sets) : true)) {
                            found = there;
                            break;
                        }
                    }
                if (found) {
                    fs::remove_all(mine);
                    fs::create_directories(mine.parent_path());
                    fs::copy(*found, mine, fs::copy_options::recursive);
                }
            }
            SweepRow row;
            row.index = p.index;
            row.combination = p.combination;
            row.id = p.id;
            row.values = p.values;
            row.seed = p.seed;
            read_point_row(row, mine, spec_.base, p.sets, spec_.metrics);
            not_ok += row.status != "ok";
            ++tally_[row.status];
            table.rows.push_back(std::move(row));
        }
        fs::create_directories(out_);
        write_atomically(fs::path(out_) / "sweep.csv", render_sweep_csv(table));
        write_atomically(fs::path(out_) / "sweep.json", sweep_table_json(table).dump(2) + "\n");
        return not_ok;
    }

  private:
    static void write_atomically(const fs::path& path, const std::string& text) {
        const fs::path tmp = path.string() + ".tmp";
        {
            std::ofstream out(tmp, std::ios::binary);
            out << text;
            out.flush();
            if (!out) throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
        }
        fs::rename(tmp, path);
    }

    // Empties the point's directory and starts its run; 0 and `error` if it could not be started.
    pid_t start(const SweepPoint& p, std::string& error) {
        const fs::path dir = point_dir(p);
        std::error_code ec;
        fs::remove_all(dir, ec);
        fs::create_directories(dir, ec);
        if (ec) {
            error = "cannot create " + dir.string() + ": " + ec.message();
            return 0;
        }
        std::vector<std::string> args = {exe_, "run", spec_.base_path};
        for (const auto& s : p.sets) args.insert(args.end(), {"--set", s});
        args.insert(args.end(), {"--out", dir.string()});
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string out_file = (dir / "stdout.txt").string(), err_file = (dir / "stderr.txt").string();
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, exe_.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
            error = "cannot start " + exe_ + ": " + std::strerror(rc);
            return 0;
        }
        return pid;
    }

    // Records how the point ended (wait status from waitpid, or -1 with `error`), marker last.
    PointMarker finish(const SweepPoint& p, int status, const std::string& error, double seconds) {
        const fs::path dir = point_dir(p);
        PointMarker m;
        m.id = p.id;
        m.base = spec_.base;
        m.sets = p.sets;
        m.host_seconds = seconds;
        const std::string last = last_line(dir / "stderr.txt");
        std::error_code ec;
        if (status == -1) {
            m.reason = error;
        } else if (WIFSIGNALED(status)) {
            const char* name = ::sigabbrev_np(WTERMSIG(status));
            m.reason = "killed by signal " + std::to_string(WTERMSIG(status)) +
                       (name ? std::string(" (SIG") + name + ")" : std::string());
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            m.reason = "exit status " + std::to_string(WEXITSTATUS(status));
        } else if (!fs::is_regular_file(dir / "report.json", ec)) {
            m.reason = "no report.json";
        }
        if (!m.reason.empty() && !last.empty() && status != -1) m.reason += ": " + last;
        m.status = m.reason.empty() ? "ok" : "failed";
        fs::create_directories(dir, ec);
        write_point_marker(dir, m);
        return m;
    }

  public:
    // "8 ok, 1 failed, 2 missing_metric" for the last merge.
    std::string tally() const {
        std::string s;
        for (const auto& [status, n] : tally_)
            s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + status;
        return s;
    }

  private:
    SweepSpec spec_;
    std::map<std::string, std::size_t> tally_;
    std::vector<SweepPoint> points_;
    std::string out_, exe_;
};

}  // namespace

int run_sweep(const SweepOptions& o, const std::string& self_exe) {
    SweepDriver driver(
        load_sweep(o.file, o.point.empty() ? SweepChecks::all : SweepChecks::without_combinations), o.out,
        self_exe);
    const auto& points = driver.points();
    auto in_shard = [&](const SweepPoint& p) {
        return !o.sharded || p.index % o.shard_count == o.shard_index;
    };

    if (o.list) {
        for (const SweepPoint& p : points)
            if (in_shard(p)) std::cout << driver.command(p, o.file) << "\n";
        return 0;
    }
    if (o.merge) {
        const std::size_t not_ok = driver.merge(o.merge_dirs);
        std::cout << "sweep: merged " << points.size() << " points (" << driver.tally() << ") into " << o.out
                  << "/sweep.csv\n";
        return not_ok ? 1 : 0;
    }
    std::vector<const SweepPoint*> todo;
    std::size_t total = 0;
    for (const SweepPoint& p : points) {
        if (!o.point.empty() ? p.id != o.point : !in_shard(p)) continue;
        ++total;
        if (!driver.complete(p)) todo.push_back(&p);
    }
    if (!o.point.empty() && total == 0) throw SweepUsageError("sweep: no point " + o.point + " in " + o.file);
    unsigned jobs = o.jobs ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
    const std::size_t failed = driver.run(todo, jobs, total);
    if (!o.point.empty() || o.sharded) {
        if (o.sharded)
            std::cout << "sweep: shard " << o.shard_index << "/" << o.shard_count << ": " << total - failed
                      << "/" << total << " points ok; merge with: xensim sweep " << o.file << " --out "
                      << o.out << " --merge\n";
        return failed ? 1 : 0;
    }
    const std::size_t not_ok = driver.merge({});
    std::cout << "sweep: " << points.size() << " points (" << driver.tally() << "); results: " << o.out
              << "/sweep.csv, " << o.out << "/sweep.json\n";
    return not_ok ? 1 : 0;
}

}  // namespace xensim
