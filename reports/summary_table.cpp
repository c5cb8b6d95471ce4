#include "reports/summary_table.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

namespace xensim {

using nlohmann::json;

namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string pad(const std::string& s, std::size_t w, bool right = false) {
    if (s.size() >= w) return s;
    return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

std::string u(const json& j) { return std::to_string(j.get<std::uint64_t>()); }

// --- folding the rows beyond kSummaryRowCap (see summary_table.h) ---

// A run [first, last] of consecutive rows whose keys are equal.
struct Run {
    std::size_t first;
    std::size_t last;
    std::size_t size() const { return last - first + 1; }
};

// The runs of equal keys among keys[from..].
std::vector<Run> equal_runs(const std::vector<json>& keys, std::size_t from) {
    std::vector<Run> runs;
    for (std::size_t i = from; i < keys.size(); ++i) {
        if (!runs.empty() && keys[i] == keys[runs.back().last])
            runs.back().last = i;
        else
            runs.push_back({i, i});
    }
    return runs;
}

std::string count_of(std::size_t n, const char* what) { return std::to_string(n) + " " + what; }

// "k1 v1, k2 v2" of an object of counters.
std::string listed(const json& counters) {
    std::string s;
    for (const auto& [k, v] : counters.items()) s += (s.empty() ? "" : ", ") + k + " " + u(v);
    return s;
}

// Sums objects of counters key by key (std::map: sorted, as the report's objects are).
void add_counters(std::map<std::string, std::uint64_t>& sum, const json& counters) {
    for (const auto& [k, v] : counters.items()) sum[k] += v.get<std::uint64_t>();
}

json to_json(const std::map<std::string, std::uint64_t>& m) {
    json j = json::object();
    for (const auto& [k, v] : m) j[k] = v;
    return j;
}

// The columns a Domains row shows; two domains with equal keys print the same row but for the name.
json domain_key(const json& d) {
    return {{"type", d.at("type")},
            {"exits_total", d.at("exits_total")},
            {"hypercalls_total", d.at("hypercalls_total")},
            {"upcalls", d.at("upcalls")},
            {"halts", d.at("halts")},
            {"exits", d.at("exits")}};
}

std::string domain_range(const json& domains, const Run& r) {
    return "d" + u(domains[r.first].at("id")) + "..d" + u(domains[r.last].at("id"));
}

void domain_row(std::ostringstream& os, const std::string& label, const std::string& type,
                const std::string& exits, const std::string& hypercalls, const std::string& upcalls,
                const std::string& halts, const std::string& reasons) {
    os << "  " << pad(label, 14) << pad(type, 5) << pad(exits, 10, true) << pad(hypercalls, 12, true)
       << pad(upcalls, 10, true) << pad(halts, 9, true) << "   " << (reasons.empty() ? "-" : reasons) << "\n";
}

void render_domains(std::ostringstream& os, const json& domains) {
    os << "Domains\n";
    os << "  " << pad("domain", 14) << pad("type", 5) << pad("exits", 10, true) << pad("hypercalls", 12, true)
       << pad("upcalls", 10, true) << pad("halts", 9, true) << "   exits by reason\n";
    auto row = [&](const json& d, const std::string& label, const std::string& before_reasons) {
        domain_row(os, label, d.at("type").get<std::string>(), u(d.at("exits_total")),
                   u(d.at("hypercalls_total")), u(d.at("upcalls")), u(d.at("halts")),
                   before_reasons + listed(d.at("exits")));
    };
    for (std::size_t i = 0; i < domains.size() && i < kSummaryRowCap; ++i)
        row(domains[i], "d" + u(domains[i].at("id")) + " " + domains[i].at("name").get<std::string>(), "");
    if (domains.size() <= kSummaryRowCap) return;

    std::vector<json> keys;
    for (const json& d : domains) keys.push_back(domain_key(d));
    const std::vector<Run> runs = equal_runs(keys, kSummaryRowCap);
    if (runs.size() <= kSummaryFoldGroups) {
        for (const Run& r : runs) {
            const json& d = domains[r.first];
            if (r.size() == 1)
                row(d, "d" + u(d.at("id")) + " " + d.at("name").get<std::string>(), "");
            else
                row(d, domain_range(domains, r), "(" + count_of(r.size(), "guests") + ", each) ");
        }
        return;
    }
    // Different rows: their total, and the least and greatest of each column.
    const Run rest{kSummaryRowCap, domains.size() - 1};
    os << "  " << domain_range(domains, rest) << ": " << count_of(rest.size(), "guests")
       << " (total, and min and max of each column)\n";
    const char* columns[] = {"exits_total", "hypercalls_total", "upcalls", "halts"};
    std::uint64_t total[4] = {}, lo[4], hi[4];
    std::map<std::string, std::uint64_t> reasons;
    std::string type = domains[rest.first].at("type").get<std::string>();
    for (std::size_t i = rest.first; i <= rest.last; ++i) {
        const json& d = domains[i];
        for (int c = 0; c < 4; ++c) {
            const std::uint64_t v = d.at(columns[c]).get<std::uint64_t>();
            total[c] += v;
            lo[c] = i == rest.first ? v : std::min(lo[c], v);
            hi[c] = i == rest.first ? v : std::max(hi[c], v);
        }
        add_counters(reasons, d.at("exits"));
        if (d.at("type").get<std::string>() != type) type = "mix";
    }
    auto s = [](std::uint64_t v) { return std::to_string(v); };
    domain_row(os, "  total", type, s(total[0]), s(total[1]), s(total[2]), s(total[3]),
               listed(to_json(reasons)));
    domain_row(os, "  min", "", s(lo[0]), s(lo[1]), s(lo[2]), s(lo[3]), "");
    domain_row(os, "  max", "", s(hi[0]), s(hi[1]), s(hi[2]), s(hi[3]), "");
}

void render_hypercalls_by_op(std::ostringstream& os, const json& domains) {
    os << "\n  hypercalls by op\n";
    auto line = [&](const std::string& label, const json& ops) {
        if (ops.empty()) return;
        os << "    " << label << ":";
        for (const auto& [k, v] : ops.items()) os << " " << k << "=" << u(v);
        os << "\n";
    };
    for (std::size_t i = 0; i < domains.size() && i < kSummaryRowCap; ++i)
        line("d" + u(domains[i].at("id")), domains[i].at("hypercalls"));
    if (domains.size() <= kSummaryRowCap) return;

    std::vector<json> keys;
    for (const json& d : domains) keys.push_back(d.at("hypercalls"));
    const std::vector<Run> runs = equal_runs(keys, kSummaryRowCap);
    if (runs.size() <= kSummaryFoldGroups) {
        for (const Run& r : runs)
            line(r.size() == 1 ? "d" + u(domains[r.first].at("id"))
                               : domain_range(domains, r) + " (" + count_of(r.size(), "guests") + ", each)",
                 keys[r.first]);
        return;
    }
    const Run rest{kSummaryRowCap, domains.size() - 1};
    std::map<std::string, std::uint64_t> sum;
    for (std::size_t i = rest.first; i <= rest.last; ++i) add_counters(sum, keys[i]);
    line(domain_range(domains, rest) + " (" + count_of(rest.size(), "guests") + ", total)", to_json(sum));
}

// The XenStore line of one or more guests: their requests by type, bytes, notifications, errors.
void xenstore_line(std::ostringstream& os, const std::string& label, const json& c) {
    os << "  " << pad(label, 8) << " requests:";
    for (const auto& [type, n] : c.at("requests").items()) os << " " << type << "=" << u(n);
    os << "  bytes in/out " << u(c.at("bytes_in")) << "/" << u(c.at("bytes_out")) << ", notifications "
       << u(c.at("notifications")) << ", errors " << u(c.at("errors")) << "\n";
}

// The domain id of a "domN" key of the xenstored stats; keys of another shape sort last.
std::uint64_t xenstore_domid(const std::string& key) {
    if (key.size() <= 3 || key.compare(0, 3, "dom") != 0 ||
        key.find_first_not_of("0123456789", 3) != std::string::npos || key.size() > 12)
        return std::numeric_limits<std::uint64_t>::max();
    return std::stoull(key.substr(3));
}

void render_xenstore(std::ostringstream& os, const json& xsd) {
    std::vector<std::pair<std::string, const json*>> rows;  // guests that spoke, in the report's order
    for (const auto& [dom, c] : xsd.items())
        if (!c.at("requests").empty()) rows.emplace_back(dom, &c);
    if (rows.size() <= kSummaryRowCap) {
        for (const auto& [dom, c] : rows) xenstore_line(os, dom, *c);
        return;
    }
    // Folding shows dom0 and the first guests by id (the report's keys sort as text: dom10 < dom2).
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return xenstore_domid(a.first) < xenstore_domid(b.first);
    });
    for (std::size_t i = 0; i < kSummaryRowCap; ++i) xenstore_line(os, rows[i].first, *rows[i].second);
    std::vector<json> keys;
    for (const auto& [dom, c] : rows)
        keys.push_back({{"requests", c->at("requests")},
                        {"bytes_in", c->at("bytes_in")},
                        {"bytes_out", c->at("bytes_out")},
                        {"notifications", c->at("notifications")},
                        {"errors", c->at("errors")}});
    auto range = [&](const Run& r) { return rows[r.first].first + ".." + rows[r.last].first; };
    const std::vector<Run> runs = equal_runs(keys, kSummaryRowCap);
    if (runs.size() <= kSummaryFoldGroups) {
        for (const Run& r : runs)
            xenstore_line(os,
                          r.size() == 1 ? rows[r.first].first
                                        : range(r) + " (" + count_of(r.size(), "guests") + ", each)",
                          keys[r.first]);
        return;
    }
    const Run rest{kSummaryRowCap, rows.size() - 1};
    std::map<std::string, std::uint64_t> requests, sums;
    for (std::size_t i = rest.first; i <= rest.last; ++i) {
        add_counters(requests, keys[i].at("requests"));
        for (const char* k : {"bytes_in", "bytes_out", "notifications", "errors"})
            sums[k] += keys[i].at(k).get<std::uint64_t>();
    }
    json total = to_json(sums);
    total["requests"] = to_json(requests);
    xenstore_line(os, range(rest) + " (" + count_of(rest.size(), "guests") + ", total)", total);
}

// One workload: its row (labelled LABEL) and the lines under it (per op, set-up, net figures).
void workload_rows(std::ostringstream& os, const json& w, const std::string& label) {
    const json& l = w.at("latency_ns");
    os << "  " << pad(label, 16) << pad(w.at("type").get<std::string>(), 17) << pad(u(w.at("ops")), 9, true)
       << pad(u(w.at("failures")), 6, true)
       << pad(fmt("%.0f", w.at("ops_per_second").get<double>()), 12, true)
       << pad(fmt("%.2f", l.at("mean").get<double>() / 1000), 10, true)
       << pad(fmt("%.2f", l.at("p50").get<double>() / 1000), 9, true)
       << pad(fmt("%.2f", l.at("p99").get<double>() / 1000), 9, true)
       << pad(fmt("%.2f", w.at("per_request").at("exits_total").get<double>()), 10, true) << "\n";
    std::string per;
    for (const auto& [k, v] : w.at("per_request").at("exits").items())
        per += (per.empty() ? "" : ", ") + k + " " + fmt("%.2f", v.get<double>());
    // Per op over the workload's window (first submission to last completion); what came
    // before it (boot, handshakes) is its set-up, shown apart.
    if (!per.empty()) os << "      per op: " << per << "\n";
    if (w.contains("setup"))
        os << "      set-up before the first op: " << u(w.at("setup").at("exits_total")) << " exits, "
           << u(w.at("setup").at("hypercalls_total")) << " hypercalls, "
           << fmt("%.3f", w.at("setup").at("duration_ns").get<double>() / 1e6) << " ms\n";
    if (w.contains("block") && w.at("block").contains("slat_ns"))
        os << "      latency from issue: slat "
           << fmt("%.2f", w.at("block").at("slat_ns").at("mean").get<double>() / 1000) << " us + clat "
           << fmt("%.2f", w.at("block").at("clat_ns").at("mean").get<double>() / 1000) << " us (means)\n";
    if (w.contains("net")) {
        // A netperf workload: its test, rates, and the network path per operation.
        const json& n = w.at("net");
        const json& pr = n.at("per_request");
        auto net_per = [&](const char* k) { return fmt("%.2f", pr.value(k, 0.0)); };
        os << "      net " << n.at("test").get<std::string>() << " " << n.at("direction").get<std::string>()
           << " peer " << n.at("peer").get<std::string>() << ": "
           << fmt("%.3f", n.at("gbit_per_s").get<double>()) << " Gbit/s, "
           << fmt("%.0f", n.at("pps").get<double>()) << " pps, "
           << fmt("%.0f", n.at("transactions_per_s").get<double>()) << " trans/s, payload errors "
           << u(n.at("payload_errors")) << "\n";
        os << "      net per op: notify tx " << net_per("frontend_tx_notifications_sent") << " (suppressed "
           << net_per("frontend_tx_notifications_suppressed") << "), backend "
           << net_per("backend_notifications_sent") << ", grant copies " << net_per("grant_copies")
           << ", maps " << net_per("grant_maps") << ", bytes copied " << net_per("bytes_copied")
           << ", pkts/interrupt " << net_per("packets_per_interrupt") << "\n";
        std::string drops;
        for (const auto& [k, v] : n.at("drops").items())
            if (v.get<std::uint64_t>()) drops += (drops.empty() ? "" : ", ") + k + " " + u(v);
        if (!drops.empty()) os << "      net drops: " << drops << "\n";
    }
}

void workload_row(std::ostringstream& os, const std::string& label, const std::string& type,
                  const std::string& ops, const std::string& fail, const std::string& ops_s,
                  const std::string& mean, const std::string& p50, const std::string& p99,
                  const std::string& exits_op) {
    os << "  " << pad(label, 16) << pad(type, 17) << pad(ops, 9, true) << pad(fail, 6, true)
       << pad(ops_s, 12, true) << pad(mean, 10, true) << pad(p50, 9, true) << pad(p99, 9, true)
       << pad(exits_op, 10, true) << "\n";
}

void render_workloads(std::ostringstream& os, const json& workloads) {
    os << "\nWorkloads\n";
    workload_row(os, "workload", "type", "ops", "fail", "ops/s", "mean us", "p50 us", "p99 us", "exits/op");
    for (std::size_t i = 0; i < workloads.size() && i < kSummaryRowCap; ++i)
        workload_rows(os, workloads[i], workloads[i].at("name").get<std::string>());
    if (workloads.size() <= kSummaryRowCap) return;

    std::vector<json> keys;
    for (json w : workloads) {
        w.erase("name");
        keys.push_back(std::move(w));
    }
    auto range = [&](const Run& r) {
        return workloads[r.first].at("name").get<std::string>() + ".." +
               workloads[r.last].at("name").get<std::string>();
    };
    const std::vector<Run> runs = equal_runs(keys, kSummaryRowCap);
    if (runs.size() <= kSummaryFoldGroups) {
        for (const Run& r : runs) {
            if (r.size() == 1) {
                workload_rows(os, workloads[r.first], workloads[r.first].at("name").get<std::string>());
            } else {
                os << "  " << range(r) << ": " << count_of(r.size(), "workloads") << ", each\n";
                workload_rows(os, workloads[r.first], "  each");
            }
        }
        return;
    }
    // Different workloads: their total ops and rate, and the least and greatest of each column.
    const Run rest{kSummaryRowCap, workloads.size() - 1};
    os << "  " << range(rest) << ": " << count_of(rest.size(), "workloads")
       << " (total, and min and max of each column)\n";
    auto column = [](const json& w, int c) {
        const json& l = w.at("latency_ns");
        switch (c) {
            case 0:
                return w.at("ops").get<double>();
            case 1:
                return w.at("failures").get<double>();
            case 2:
                return w.at("ops_per_second").get<double>();
            case 3:
                return l.at("mean").get<double>() / 1000;
            case 4:
                return l.at("p50").get<double>() / 1000;
            case 5:
                return l.at("p99").get<double>() / 1000;
            default:
                return w.at("per_request").at("exits_total").get<double>();
        }
    };
    constexpr int kColumns = 7;
    double total[kColumns] = {}, lo[kColumns], hi[kColumns];
    std::string type = workloads[rest.first].at("type").get<std::string>();
    for (std::size_t i = rest.first; i <= rest.last; ++i) {
        for (int c = 0; c < kColumns; ++c) {
            const double v = column(workloads[i], c);
            total[c] += v;
            lo[c] = i == rest.first ? v : std::min(lo[c], v);
            hi[c] = i == rest.first ? v : std::max(hi[c], v);
        }
        if (workloads[i].at("type").get<std::string>() != type) type = "mix";
    }
    auto row = [&](const char* label, const std::string& t, const double* v, bool latencies) {
        workload_row(os, label, t, fmt("%.0f", v[0]), fmt("%.0f", v[1]), fmt("%.0f", v[2]),
                     latencies ? fmt("%.2f", v[3]) : "-", latencies ? fmt("%.2f", v[4]) : "-",
                     latencies ? fmt("%.2f", v[5]) : "-", latencies ? fmt("%.2f", v[6]) : "-");
    };
    // Latencies and exits per op do not add up; the total row shows ops, failures and ops/s only.
    row("  total", type, total, false);
    row("  min", "", lo, true);
    row("  max", "", hi, true);
}

}  // namespace

std::string render_summary(const json& r) {
    std::ostringstream os;
    const json& sim = r.at("simulation");
    os << "scenario " << r.at("scenario").at("name").get<std::string>() << ": "
       << fmt("%.3f", sim.at("sim_time_ns").get<double>() / 1e6)
       << " ms simulated, stop: " << sim.at("stop_reason").get<std::string>() << "\n\n";

    const json& domains = r.at("domains");
    render_domains(os, domains);
    render_hypercalls_by_op(os, domains);

    os << "\nPhysical CPUs\n";
    os << "  " << pad("pcpu", 6) << pad("switches", 10, true) << pad("same-dom", 10, true)
       << pad("dom-chg", 9, true) << pad("to-idle", 9, true) << pad("from-idle", 11, true)
       << pad("busy %", 8, true) << pad("switch %", 10, true) << pad("idle %", 8, true) << "\n";
    // Shares of the report's window: busy + switch + idle = sim_time_ps on every pCPU.
    const double window_ps = sim.at("sim_time_ps").get<double>();
    auto share = [&](const json& p, const char* key) {
        return window_ps > 0 ? fmt("%.1f", 100.0 * p.at(key).get<double>() / window_ps) : std::string("-");
    };
    for (const json& p : r.at("pcpus")) {
        const json& cs = p.at("context_switches");
        os << "  " << pad(u(p.at("id")), 6) << pad(u(p.at("context_switches_total")), 10, true)
           << pad(u(cs.at("same_domain")), 10, true) << pad(u(cs.at("domain_change")), 9, true)
           << pad(u(cs.at("to_idle")), 9, true) << pad(u(cs.at("from_idle")), 11, true)
           << pad(share(p, "busy_ps"), 8, true) << pad(share(p, "switch_ps"), 10, true)
           << pad(share(p, "idle_ps"), 8, true) << "\n";
    }

    // XenStore traffic over the guests' rings, from the stats tree (present when any guest spoke).
    if (r.contains("stats") && r.at("stats").contains("xenstored")) {
        const json& xsd = r.at("stats").at("xenstored");
        bool any = false;
        for (const auto& [dom, c] : xsd.items()) any = any || !c.at("requests").empty();
        if (any) {
            os << "\nXenStore (xenstored on dom0)\n";
            render_xenstore(os, xsd);
            if (r.at("stats").contains("xenstore"))
                os << "  watch events " << u(r.at("stats").at("xenstore").at("watch_events")) << "\n";
        }
    }

    const json& workloads = r.at("workloads");
    if (!workloads.empty()) render_workloads(os, workloads);
    if (r.contains("host"))
        os << "\nhost: " << fmt("%.3f", r.at("host").at("wall_seconds").get<double>()) << " s, "
           << fmt("%.0f", r.at("host").at("hypervisor_operations_per_second").get<double>())
           << " simulated hypervisor operations per host second\n";
    // One pointer to the rows the tables folded (the caller prints report.json's path next).
    std::string folded;
    if (domains.size() > kSummaryRowCap)
        folded =
            std::to_string(domains.size() - kSummaryRowCap) + " of " + count_of(domains.size(), "domains");
    if (workloads.size() > kSummaryRowCap)
        folded += (folded.empty() ? "" : " and ") + std::to_string(workloads.size() - kSummaryRowCap) +
                  " of " + count_of(workloads.size(), "workloads");
    if (!folded.empty())
        os << "\nfolded above: " << folded << " beyond the first " << kSummaryRowCap
           << " rows of each table; report.json has every one\n";
    return os.str();
}

}  // namespace xensim
