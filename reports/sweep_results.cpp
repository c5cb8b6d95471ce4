#include "reports/sweep_results.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace xensim {

using nlohmann::json;
namespace fs = std::filesystem;

json point_marker_json(const PointMarker& m) {
    return json{{"id", m.id},         {"base", m.base},     {"sets", m.sets},
                {"status", m.status}, {"reason", m.reason}, {"host_seconds", m.host_seconds}};
}

std::optional<PointMarker> read_point_marker(const fs::path& dir) {
    std::ifstream in(dir / "point.json");
    if (!in) return std::nullopt;
    const json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    try {
        PointMarker m;
        m.id = j.at("id").get<std::string>();
        m.base = j.at("base").get<std::string>();
        m.sets = j.at("sets").get<std::vector<std::string>>();
        m.status = j.at("status").get<std::string>();
        m.reason = j.at("reason").get<std::string>();
        m.host_seconds = j.at("host_seconds").get<double>();
        return m;
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

void write_point_marker(const fs::path& dir, const PointMarker& m) {
    const fs::path tmp = dir / "point.json.tmp", final_path = dir / "point.json";
    {
        std::ofstream out(tmp);
        out << point_marker_json(m).dump(2) << "\n";
        out.flush();
        if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    if (std::rename(tmp.c_str(), final_path.c_str()) != 0)
        throw std::runtime_error("cannot rename " + tmp.string() + " to " + final_path.string());
}

bool point_complete(const fs::path& dir, const std::string& base, const std::vector<std::string>& sets) {
    const auto m = read_point_marker(dir);
    std::error_code ec;
    return m && m->status == "ok" && m->base == base && m->sets == sets &&
           fs::is_regular_file(dir / "report.json", ec);
}

std::optional<json> find_report_metric(const json& report, const std::string& path) {
    const json* here = &report;
    std::size_t from = 0;
    for (;;) {
        const auto dot = path.find('.', from);
        const std::string part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
        if (here->is_object()) {
            auto it = here->find(part);
            if (it == here->end()) return std::nullopt;
            here = &*it;
        } else if (here->is_array()) {
            if (part.empty() || part.size() > 9 || part.find_first_not_of("0123456789") != std::string::npos)
                return std::nullopt;
            const std::size_t i = std::stoul(part);
            if (i >= here->size()) return std::nullopt;
            here = &(*here)[i];
        } else {
            return std::nullopt;
        }
        if (dot == std::string::npos) return *here;
        from = dot + 1;
    }
}

void read_point_row(SweepRow& row, const fs::path& dir, const std::string& base,
                    const std::vector<std::string>& sets, const std::vector<std::string>& metrics) {
    row.metrics.assign(metrics.size(), json());
    const auto m = read_point_marker(dir);
    if (!m || m->base != base || m->sets != sets) {
        row.status = "not_run";
        row.reason.clear();
        return;
    }
    if (m->status != "ok") {
        row.status = "failed";
        row.reason = m->reason;
        return;
    }
    std::ifstream in(dir / "report.json");
    const json report = in ? json::parse(in, nullptr, false) : json();
    if (report.is_discarded() || !report.is_object()) {
        row.status = "failed";
        row.reason = "report.json is missing or not JSON";
        return;
    }
    row.status = "ok";
    row.reason.clear();
    std::string missing;
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        const auto v = find_report_metric(report, metrics[i]);
        if (v && (v->is_number() || v->is_boolean())) {
            row.metrics[i] = *v;
        } else {
            missing += (missing.empty() ? "" : ", ") + metrics[i] +
                       (v ? " is " + std::string(v->type_name()) + ", not a number" : " not in report.json");
        }
    }
    if (!missing.empty()) {
        row.status = "missing_metric";
        row.reason = missing;
    }
}

namespace {

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string csv_value(const json& v) {
    if (v.is_null()) return "";
    return csv_field(v.is_string() ? v.get<std::string>() : v.dump());
}

}  // namespace

std::string render_sweep_csv(const SweepTable& t) {
    std::ostringstream os;
    os << "index,id";
    for (const auto& a : t.axes) os << "," << csv_field(a);
    os << ",seed";
    for (const auto& m : t.metrics) os << "," << csv_field(m);
    os << ",status,reason\r\n";
    for (const SweepRow& r : t.rows) {
        os << r.index << "," << csv_field(r.id);
        for (const auto& v : r.values) os << "," << csv_value(v);
        os << "," << r.seed;
        for (std::size_t i = 0; i < t.metrics.size(); ++i)
            os << "," << (i < r.metrics.size() ? csv_value(r.metrics[i]) : "");
        os << "," << r.status << "," << csv_field(r.reason) << "\r\n";
    }
    return os.str();
}

// Two-sided 95 % critical values of Student's t distribution, t(0.975, dof), from the NIST/SEMATECH
// e-Handbook of Statistical Methods, section 1.3.6.7.2, "Critical Values of the Student's t
// Distribution" (https://www.itl.nist.gov/div898/handbook/eda/section3/eda3672.htm), column 0.025.
double student_t_975(std::size_t dof) {
    static const double kByDof[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                    2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                    2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    // Beyond 30: the table's rows at 40, 50, ..., 100, then the normal quantile (its "infinity" row).
    // Between rows the lower one is taken: a slightly wider interval, never a narrower one.
    static const struct {
        std::size_t dof;
        double t;
    } kSparse[] = {{100, 1.984}, {90, 1.987}, {80, 1.990}, {70, 1.994},
                   {60, 2.000},  {50, 2.009}, {40, 2.021}};
    if (dof == 0) throw std::invalid_argument("student_t_975: dof must be at least 1");
    if (dof <= 30) return kByDof[dof - 1];
    if (dof > 100) return 1.960;
    for (const auto& row : kSparse)
        if (dof >= row.dof) return row.t;
    return kByDof[29];
}

SampleSummary summarize_samples(const std::vector<double>& xs) {
    SampleSummary s;
    s.n = xs.size();
    if (xs.empty()) return s;
    double sum = 0;
    for (double x : xs) sum += x;
    s.mean = sum / static_cast<double>(s.n);
    if (s.n < 2) return s;
    double ss = 0;
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / static_cast<double>(s.n - 1));
    s.ci95_half_width = student_t_975(s.n - 1) * s.stddev / std::sqrt(static_cast<double>(s.n));
    return s;
}

json sweep_table_json(const SweepTable& t) {
    json points = json::array();
    for (const SweepRow& r : t.rows) {
        json values = json::object(), metrics = json::object();
        for (std::size_t a = 0; a < t.axes.size() && a < r.values.size(); ++a)
            values[t.axes[a]] = r.values[a];
        for (std::size_t i = 0; i < t.metrics.size(); ++i)
            metrics[t.metrics[i]] = i < r.metrics.size() ? r.metrics[i] : json();
        points.push_back({{"index", r.index},
                          {"id", r.id},
                          {"combination", r.combination},
                          {"values", values},
                          {"seed", r.seed},
                          {"status", r.status},
                          {"reason", r.reason},
                          {"metrics", metrics}});
    }
    // Per combination, in expansion order (rows of one combination are consecutive).
    json summary = json::array();
    for (std::size_t begin = 0; begin < t.rows.size();) {
        std::size_t end = begin;
        while (end < t.rows.size() && t.rows[end].combination == t.rows[begin].combination) ++end;
        json values = json::object(), metrics = json::object(), seeds = json::array();
        for (std::size_t a = 0; a < t.axes.size() && a < t.rows[begin].values.size(); ++a)
            values[t.axes[a]] = t.rows[begin].values[a];
        std::size_t ok = 0;
        for (std::size_t r = begin; r < end; ++r) {
            seeds.push_back(t.rows[r].seed);
            ok += t.rows[r].status == "ok";
        }
        for (std::size_t i = 0; i < t.metrics.size(); ++i) {
            std::vector<double> xs;
            json first;
            for (std::size_t r = begin; r < end; ++r)
                if (t.rows[r].status == "ok" && i < t.rows[r].metrics.size() &&
                    t.rows[r].metrics[i].is_number()) {
                    if (xs.empty()) first = t.rows[r].metrics[i];
                    xs.push_back(t.rows[r].metrics[i].get<double>());
                }
            bool varies = false;
            for (double x : xs) varies = varies || x != xs.front();
            json m = {{"n", xs.size()}, {"varies_with_seed", varies}};
            if (varies) {
                const SampleSummary s = summarize_samples(xs);
                m["mean"] = s.mean;
                m["stddev"] = s.stddev;
                m["ci95_half_width"] = s.ci95_half_width;
                m["t"] = student_t_975(s.n - 1);
            } else if (!xs.empty()) {
                m["value"] = first;
            }
            metrics[t.metrics[i]] = m;
        }
        summary.push_back({{"combination", t.rows[begin].combination},
                           {"values", values},
                           {"seeds", seeds},
                           {"ok", ok},
                           {"metrics", metrics}});
        begin = end;
    }
    return json{{"sweep", t.spec}, {"points", points}, {"summary", summary}};
}

}  // namespace xensim
