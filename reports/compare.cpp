#include "reports/compare.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sim/core/config_schema.h"  // describe_json, parse_json_text, read_input_file

namespace xensim {

using nlohmann::json;

namespace {

// The figures compared, by dotted path below their object. A path ending in ".*" stands for every
// key of that object, over the union of both reports' keys.
constexpr const char* kWorkloadMetrics[] = {
    "ops",
    "failures",
    "ops_per_second",
    "latency_ns.mean",
    "latency_ns.p50",
    "latency_ns.p99",
    "latency_ns.p99_9",
    "per_request.exits.*",
    "per_request.exits_total",
    "per_request.hypercalls.*",
    "per_request.hypercalls_total",
    "per_request.upcalls",
    "per_request.context_switches",
    "per_request.guest_cycles",
    "per_request.hypervisor_cycles",
    "per_request.cpu_cycles",
    "per_request.device_model_ns",
    "setup.exits_total",
    "setup.hypercalls_total",
    "block.iops",
    "block.mb_per_s",
    "block.slat_ns.mean",
    "block.clat_ns.mean",
    "block.per_request.*",
    "block.frontend.notifications_sent",
    "block.frontend.notifications_suppressed",
    "block.backend.notifications_sent",
    "block.backend.notifications_suppressed",
    "block.backend.grant_maps",
    "net.gbit_per_s",
    "net.pps",
    "net.transactions_per_s",
    "net.payload_errors",
    "net.drops.*",
    "net.per_request.*",
    "net.ring_occupancy.tx_in_flight_mean",
    "net.ring_occupancy.rx_waiting_mean",
    "net.ring_occupancy.rx_empty_buffers_mean",
};
constexpr const char* kDomainMetrics[] = {"exits_total", "hypercalls_total"};
constexpr const char* kSimulationMetrics[] = {"sim_time_ns"};

std::vector<std::string> split_dots(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t dot; (dot = s.find('.', start)) != std::string::npos; start = dot + 1)
        out.push_back(s.substr(start, dot - start));
    out.push_back(s.substr(start));
    return out;
}

std::string join_dots(const std::vector<std::string>& tokens) {
    std::string s;
    for (const auto& t : tokens) s += (s.empty() ? "" : ".") + t;
    return s;
}

// One report's object a group of figures is read from (a workload, a domain, `simulation`);
// obj is null when the other report has it and this one does not.
struct Side {
    const ReportFile* file = nullptr;
    const json* obj = nullptr;
    json::json_pointer at;  // where obj is in the report, for messages
};

// The side of a report that lacks the object the other report has.
Side absent(const ReportFile& f) { return Side{&f, nullptr, json::json_pointer()}; }

[[noreturn]] void bad(const Side& s, const json::json_pointer& at, const std::string& expected,
                      const json& found) {
    std::string where = at.to_string();
    throw ReportInputError(s.file->file + ": " + (where.empty() ? "/" : where) + ": expected " + expected +
                           ", found " + describe_json(found));
}

// The value at tokens below the side's object: nullptr when absent or null on the way.
const json* lookup(const Side& s, const std::vector<std::string>& tokens, json::json_pointer& at) {
    at = s.at;
    const json* v = s.obj;
    for (const auto& t : tokens) {
        if (!v || v->is_null()) return nullptr;
        if (!v->is_object()) bad(s, at, "an object", *v);
        auto it = v->find(t);
        if (it == v->end()) return nullptr;
        v = &*it;
        at /= t;
    }
    return v && !v->is_null() ? v : nullptr;
}

struct Figure {
    std::optional<double> value;
    bool integral = false;
};

Figure figure(const Side& s, const std::vector<std::string>& tokens) {
    json::json_pointer at;
    const json* v = lookup(s, tokens, at);
    if (!v) return {};
    if (!v->is_number()) bad(s, at, "a number", *v);
    return {v->get<double>(), v->is_number_integer()};
}

void collect_keys(const Side& s, const std::vector<std::string>& tokens, std::set<std::string>& keys) {
    json::json_pointer at;
    const json* v = lookup(s, tokens, at);
    if (!v) return;
    if (!v->is_object()) bad(s, at, "an object", *v);
    for (const auto& [k, unused] : v->items()) keys.insert(k);
}

// Adds the rows of one group: name = row_prefix + the figure's path, path = group_path + name.
void add_group(Comparison& c, const std::string& group, const std::string& group_path,
               const std::string& row_prefix, const Side& b, const Side& n, const char* const* specs,
               std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
        std::vector<std::string> tokens = split_dots(specs[i]);
        std::vector<std::vector<std::string>> names;
        if (tokens.back() == "*") {
            tokens.pop_back();
            std::set<std::string> keys;
            collect_keys(b, tokens, keys);
            collect_keys(n, tokens, keys);
            for (const auto& k : keys) {
                names.push_back(tokens);
                names.back().push_back(k);
            }
        } else {
            names.push_back(tokens);
        }
        for (const auto& name : names) {
            Figure fb = figure(b, name), fn = figure(n, name);
            if (!fb.value && !fn.value) continue;
            MetricComparison m;
            m.group = group;
            m.name = row_prefix + join_dots(name);
            m.path = group_path + m.name;
            m.baseline = fb.value;
            m.current = fn.value;
            m.integral = (!fb.value || fb.integral) && (!fn.value || fn.integral);
            c.metrics.push_back(std::move(m));
        }
    }
}

// A report's array of named objects (workloads, domains), checked: an array of objects with
// distinct string names. Absent means empty.
std::vector<std::pair<std::string, Side>> named_entries(const ReportFile& f, const char* key) {
    std::vector<std::pair<std::string, Side>> out;
    json::json_pointer at = json::json_pointer() / key;
    Side top{&f, &f.report, json::json_pointer()};
    auto it = f.report.find(key);
    if (it == f.report.end() || it->is_null()) return out;
    if (!it->is_array()) bad(top, at, "an array", *it);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < it->size(); ++i) {
        const json& e = (*it)[i];
        json::json_pointer ei = at / i;
        if (!e.is_object()) bad(top, ei, "an object", e);
        auto name = e.find("name");
        if (name == e.end() || !name->is_string())
            bad(top, ei / "name", "a name", name == e.end() ? json() : *name);
        if (!seen.insert(name->get<std::string>()).second)
            bad(top, ei / "name", "a name not used before", *name);
        out.push_back({name->get<std::string>(), Side{&f, &e, ei}});
    }
    return out;
}

int schema_version_of(const ReportFile& f) {
    Side top{&f, &f.report, json::json_pointer()};
    if (!f.report.is_object()) bad(top, json::json_pointer(), "a report object", f.report);
    auto v = f.report.find("schema_version");
    if (v == f.report.end() || !v->is_number_integer())
        bad(top, json::json_pointer("/schema_version"), "an integer (a report.json written by xensim run)",
            v == f.report.end() ? json() : *v);
    return v->get<int>();
}

std::string scenario_name(const ReportFile& f) {
    const json* v = &f.report;
    for (const char* k : {"scenario", "name"}) {
        if (!v->is_object() || !v->contains(k)) return "";
        v = &v->at(k);
    }
    return v->is_string() ? v->get<std::string>() : "";
}

// Numbers for people: whole numbers without a fraction, large ones with one decimal, the rest with
// six significant digits.
std::string fmt_number(double v) {
    char buf[64];
    if (std::floor(v) == v && std::fabs(v) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (std::fabs(v) >= 1e5)
        std::snprintf(buf, sizeof buf, "%.1f", v);
    else
        std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

std::string fmt_opt(const std::optional<double>& v) { return v ? fmt_number(*v) : "-"; }

std::string fmt_delta(const std::optional<double>& d) {
    if (!d) return "-";
    if (*d == 0) return "0";
    return (*d > 0 ? "+" : "-") + fmt_number(std::fabs(*d));
}

std::string fmt_ratio(const std::optional<double>& r) {
    if (!r) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", *r);
    return buf;
}

nlohmann::ordered_json number_json(const std::optional<double>& v, bool integral) {
    if (!v) return nullptr;
    if (integral) return static_cast<std::int64_t>(*v);
    return *v;
}

std::string why_moved(const MetricComparison& m) {
    if (!m.baseline) return "only in new";
    if (!m.current) return "only in baseline";
    return "allowed " + fmt_number(m.allowed);
}

}  // namespace

// --- tolerances ---

double Tolerance::allowed(double baseline) const {
    return relative ? std::fabs(baseline) * value / 100.0 : value;
}

Tolerance parse_tolerance(const std::string& spec) {
    Tolerance t;
    t.spec = spec;
    std::string number = spec;  // then without the pattern and the '%'
    auto eq = spec.rfind('=');
    if (eq != std::string::npos) {
        t.pattern = spec.substr(0, eq);
        number = spec.substr(eq + 1);
        if (t.pattern.empty())
            throw std::invalid_argument(
                "expected a PATTERN before '=' (VALUE alone sets the default); found \"" + spec + "\"");
    }
    if (!number.empty() && number.back() == '%') {
        t.relative = true;
        number.pop_back();
    }
    const char* first = number.data();
    const char* last = first + number.size();
    auto [end, ec] = std::from_chars(first, last, t.value);
    if (number.empty() || ec != std::errc() || end != last || !std::isfinite(t.value) || t.value < 0)
        throw std::invalid_argument(
            "expected VALUE or PATTERN=VALUE, VALUE being N% (relative to the baseline) or N "
            "(absolute) with N a non-negative number; found \"" +
            spec + "\"");
    return t;
}

void ToleranceSet::add(const std::string& spec) {
    Tolerance t = parse_tolerance(spec);
    for (const auto& o : tolerances_)
        if (o.pattern == t.pattern)
            throw std::invalid_argument(
                t.pattern.empty()
                    ? "the default tolerance is given twice (\"" + o.spec + "\", \"" + spec + "\")"
                    : "pattern \"" + t.pattern + "\" is given twice (\"" + o.spec + "\", \"" + spec + "\")");
    tolerances_.push_back(std::move(t));
}

const Tolerance* ToleranceSet::find(const std::string& path) const {
    const Tolerance* best = nullptr;
    for (const auto& t : tolerances_)
        if (path.find(t.pattern) != std::string::npos && (!best || t.pattern.size() >= best->pattern.size()))
            best = &t;  // the default's empty pattern matches every path and loses to any other
    return best;
}

// --- loading ---

ReportFile load_report(const std::string& file) {
    ReportFile f{file, {}};
    try {
        // Not a regular file (a directory, /dev/zero), above 256 MiB, not JSON, or a number beyond
        // a double (1e400): all bad input with the file named.
        f.report = parse_json_text(read_input_file(file, "report file", std::size_t{256} << 20), file);
    } catch (const InputError& e) {
        throw ReportInputError(e.what());
    }
    schema_version_of(f);
    return f;
}

// --- comparing ---

std::optional<double> MetricComparison::ratio() const {
    if (!baseline || !current || *baseline == 0) return std::nullopt;
    return *current / *baseline;
}

std::optional<double> MetricComparison::delta() const {
    if (!baseline || !current) return std::nullopt;
    return *current - *baseline;
}

std::string Comparison::verdict() const { return !gated ? "informational" : moved ? "fail" : "pass"; }

Comparison compare_reports(const ReportFile& baseline, const ReportFile& current,
                           const ToleranceSet& tolerances) {
    const int vb = schema_version_of(baseline), vn = schema_version_of(current);
    if (vb != vn)
        throw ReportInputError("schema_version differs: " + baseline.file + " has " + std::to_string(vb) +
                               ", " + current.file + " has " + std::to_string(vn) +
                               "; compare reports of the same schema (re-run the older one)");
    if (vb != kCompareSchemaVersion)
        throw ReportInputError(baseline.file + " and " + current.file + ": schema_version " +
                               std::to_string(vb) + "; this xensim compares schema_version " +
                               std::to_string(kCompareSchemaVersion));
    Comparison c;
    c.baseline_file = baseline.file;
    c.current_file = current.file;
    c.baseline_scenario = scenario_name(baseline);
    c.current_scenario = scenario_name(current);
    c.schema_version = vb;
    c.gated = !tolerances.empty();
    for (const auto& t : tolerances.all()) c.tolerances.push_back(t.spec);

    // Workloads: by name, or by position when each report has one and the names differ.
    auto wb = named_entries(baseline, "workloads"), wn = named_entries(current, "workloads");
    const std::size_t n_w = std::size(kWorkloadMetrics);
    if (wb.size() == 1 && wn.size() == 1 && wb[0].first != wn[0].first) {
        c.notes.push_back(
            "workload names differ (baseline \"" + wb[0].first + "\", new \"" + wn[0].first +
            "\"): matched by position, the only workload in each report; paths use the baseline's name");
        add_group(c, "workload " + wb[0].first + " (new: " + wn[0].first + ")",
                  "workloads." + wb[0].first + ".", "", wb[0].second, wn[0].second, kWorkloadMetrics, n_w);
    } else {
        for (const auto& [name, side] : wb) {
            auto it =
                std::find_if(wn.begin(), wn.end(), [&, &nm = name](const auto& e) { return e.first == nm; });
            Side other = absent(current);
            std::string label = "workload " + name;
            if (it == wn.end())
                label += " (only in baseline)";
            else
                other = it->second;
            add_group(c, label, "workloads." + name + ".", "", side, other, kWorkloadMetrics, n_w);
        }
        for (const auto& [name, side] : wn)
            if (std::none_of(wb.begin(), wb.end(), [&, &nm = name](const auto& e) { return e.first == nm; }))
                add_group(c, "workload " + name + " (only in new)", "workloads." + name + ".", "",
                          absent(baseline), side, kWorkloadMetrics, n_w);
    }

    // Domains, by name, in one group.
    auto db = named_entries(baseline, "domains"), dn = named_entries(current, "domains");
    std::vector<std::string> domain_names;
    for (const auto* list : {&db, &dn})
        for (const auto& e : *list)
            if (std::find(domain_names.begin(), domain_names.end(), e.first) == domain_names.end())
                domain_names.push_back(e.first);
    for (const auto& name : domain_names) {
        auto side_of = [&, &nm = name](const auto& list, const ReportFile& f) {
            for (const auto& e : list)
                if (e.first == nm) return e.second;
            return absent(f);
        };
        add_group(c, "domains", "domains.", name + ".", side_of(db, baseline), side_of(dn, current),
                  kDomainMetrics, std::size(kDomainMetrics));
    }

    auto sim_side = [](const ReportFile& f) {
        const json* s = f.report.contains("simulation") ? &f.report.at("simulation") : nullptr;
        return Side{&f, s, json::json_pointer("/simulation")};
    };
    add_group(c, "simulation", "simulation.", "", sim_side(baseline), sim_side(current), kSimulationMetrics,
              std::size(kSimulationMetrics));

    // The gate.
    std::set<std::string> used;
    for (auto& m : c.metrics) {
        for (const auto& t : tolerances.all())
            if (!t.pattern.empty() && m.path.find(t.pattern) != std::string::npos) used.insert(t.pattern);
        const Tolerance* t = tolerances.find(m.path);
        if (!t) continue;
        m.tolerance = *t;
        m.allowed = t->allowed(m.baseline.value_or(0));
        auto d = m.delta();
        m.moved = !d || std::fabs(*d) > m.allowed;
        if (m.moved) ++c.moved;
    }
    for (const auto& t : tolerances.all())
        if (!t.pattern.empty() && !used.count(t.pattern)) c.unmatched_patterns.push_back(t.pattern);
    return c;
}

// --- rendering ---

std::string render_comparison(const Comparison& c) {
    std::ostringstream os;
    auto scenario = [](const std::string& s) { return s.empty() ? std::string() : " (scenario " + s + ")"; };
    os << "baseline: " << c.baseline_file << scenario(c.baseline_scenario) << "\n"
       << "new:      " << c.current_file << scenario(c.current_scenario) << "\n";
    for (const auto& n : c.notes) os << "note: " << n << "\n";
    for (const auto& p : c.unmatched_patterns)
        os << "note: --tolerance pattern \"" << p << "\" matches no metric\n";

    // Cells first, so every column is as wide as its widest cell.
    std::vector<std::string> header = {"metric", "baseline", "new", "ratio", "delta"};
    if (c.gated) header.insert(header.end(), {"allowed", ""});
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : c.metrics) {
        std::vector<std::string> r = {m.name, fmt_opt(m.baseline), fmt_opt(m.current), fmt_ratio(m.ratio()),
                                      fmt_delta(m.delta())};
        if (c.gated) {
            r.push_back(m.tolerance ? fmt_number(m.allowed) : "-");
            r.push_back(m.moved ? "MOVED" : "");
        }
        rows.push_back(std::move(r));
    }
    std::vector<std::size_t> width(header.size());
    for (std::size_t i = 0; i < header.size(); ++i) {
        width[i] = header[i].size();
        for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s = "  " + cells[0] + std::string(width[0] - cells[0].size(), ' ');
        for (std::size_t i = 1; i < cells.size(); ++i) {
            if (header[i].empty()) {  // the MOVED mark, left-aligned
                if (!cells[i].empty()) s += "  " + cells[i];
                continue;
            }
            s += "  " + std::string(width[i] - cells[i].size(), ' ') + cells[i];
        }
        return s + "\n";
    };
    os << "\n" << line(header);
    std::string group;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (c.metrics[i].group != group) {
            group = c.metrics[i].group;
            os << group << "\n";
        }
        os << line(rows[i]);
    }

    os << "\n";
    if (!c.gated) {
        os << "verdict: informational (no --tolerance given)\n";
        return os.str();
    }
    std::size_t gated =
        std::count_if(c.metrics.begin(), c.metrics.end(), [](const auto& m) { return m.tolerance; });
    if (c.moved) {
        os << "moved beyond tolerance (" << c.moved << " of " << gated << " gated metrics):\n";
        for (const auto& m : c.metrics)
            if (m.moved)
                os << "  " << m.path << ": baseline " << fmt_opt(m.baseline) << ", new " << fmt_opt(m.current)
                   << ", " << why_moved(m) << " (--tolerance " << m.tolerance->spec << ")\n";
    }
    os << "verdict: " << c.verdict() << " (" << c.moved << " of " << gated << " gated metrics moved)\n";
    return os.str();
}

nlohmann::ordered_json comparison_to_json(const Comparison& c) {
    using ojson = nlohmann::ordered_json;
    ojson metrics = ojson::array();
    for (const auto& m : c.metrics) {
        ojson tol = nullptr;
        if (m.tolerance) tol = {{"spec", m.tolerance->spec}, {"allowed", m.allowed}};
        auto d = m.delta();
        metrics.push_back({{"path", m.path},
                           {"baseline", number_json(m.baseline, m.integral)},
                           {"new", number_json(m.current, m.integral)},
                           {"ratio", m.ratio() ? ojson(*m.ratio()) : ojson(nullptr)},
                           {"delta", number_json(d, m.integral)},
                           {"tolerance", tol},
                           {"moved", m.moved}});
    }
    return ojson{{"baseline_file", c.baseline_file},
                 {"new_file", c.current_file},
                 {"baseline_scenario", c.baseline_scenario},
                 {"new_scenario", c.current_scenario},
                 {"schema_version", c.schema_version},
                 {"tolerances", c.tolerances},
                 {"notes", c.notes},
                 {"unmatched_patterns", c.unmatched_patterns},
                 {"metrics", metrics},
                 {"moved", c.moved},
                 {"verdict", c.verdict()}};
}

}  // namespace xensim
