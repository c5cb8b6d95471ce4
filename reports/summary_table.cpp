#include "reports/summary_table.h"

#include <cstdio>
#include <sstream>

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

}  // namespace

std::string render_summary(const json& r) {
    std::ostringstream os;
    const json& sim = r.at("simulation");
    os << "scenario " << r.at("scenario").at("name").get<std::string>() << ": "
       << fmt("%.3f", sim.at("sim_time_ns").get<double>() / 1e6)
       << " ms simulated, stop: " << sim.at("stop_reason").get<std::string>() << "\n\n";

    os << "Domains\n";
    os << "  " << pad("domain", 14) << pad("type", 5) << pad("exits", 10, true) << pad("hypercalls", 12, true)
       << pad("upcalls", 10, true) << pad("halts", 9, true) << "   exits by reason\n";
    for (const json& d : r.at("domains")) {
        std::string reasons;
        for (const auto& [k, v] : d.at("exits").items())
            reasons += (reasons.empty() ? "" : ", ") + k + " " + u(v);
        os << "  " << pad("d" + u(d.at("id")) + " " + d.at("name").get<std::string>(), 14)
           << pad(d.at("type").get<std::string>(), 5) << pad(u(d.at("exits_total")), 10, true)
           << pad(u(d.at("hypercalls_total")), 12, true) << pad(u(d.at("upcalls")), 10, true)
           << pad(u(d.at("halts")), 9, true) << "   " << (reasons.empty() ? "-" : reasons) << "\n";
    }
    os << "\n  hypercalls by op\n";
    for (const json& d : r.at("domains")) {
        if (d.at("hypercalls").empty()) continue;
        os << "    d" << u(d.at("id")) << ":";
        for (const auto& [k, v] : d.at("hypercalls").items()) os << " " << k << "=" << u(v);
        os << "\n";
    }

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
            for (const auto& [dom, c] : xsd.items()) {
                if (c.at("requests").empty()) continue;
                os << "  " << pad(dom, 8) << " requests:";
                for (const auto& [type, n] : c.at("requests").items()) os << " " << type << "=" << u(n);
                os << "  bytes in/out " << u(c.at("bytes_in")) << "/" << u(c.at("bytes_out"))
                   << ", notifications " << u(c.at("notifications")) << ", errors " << u(c.at("errors"))
                   << "\n";
            }
            if (r.at("stats").contains("xenstore"))
                os << "  watch events " << u(r.at("stats").at("xenstore").at("watch_events")) << "\n";
        }
    }

    if (!r.at("workloads").empty()) {
        os << "\nWorkloads\n";
        os << "  " << pad("workload", 16) << pad("type", 17) << pad("ops", 9, true) << pad("fail", 6, true)
           << pad("ops/s", 12, true) << pad("mean us", 10, true) << pad("p50 us", 9, true)
           << pad("p99 us", 9, true) << pad("exits/op", 10, true) << "\n";
        for (const json& w : r.at("workloads")) {
            const json& l = w.at("latency_ns");
            os << "  " << pad(w.at("name").get<std::string>(), 16) << pad(w.at("type").get<std::string>(), 17)
               << pad(u(w.at("ops")), 9, true) << pad(u(w.at("failures")), 6, true)
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
                   << fmt("%.2f", w.at("block").at("slat_ns").at("mean").get<double>() / 1000)
                   << " us + clat "
                   << fmt("%.2f", w.at("block").at("clat_ns").at("mean").get<double>() / 1000)
                   << " us (means)\n";
            if (w.contains("net")) {
                // A netperf workload: its test, rates, and the network path per operation.
                const json& n = w.at("net");
                const json& pr = n.at("per_request");
                auto net_per = [&](const char* k) { return fmt("%.2f", pr.value(k, 0.0)); };
                os << "      net " << n.at("test").get<std::string>() << " "
                   << n.at("direction").get<std::string>() << " peer " << n.at("peer").get<std::string>()
                   << ": " << fmt("%.3f", n.at("gbit_per_s").get<double>()) << " Gbit/s, "
                   << fmt("%.0f", n.at("pps").get<double>()) << " pps, "
                   << fmt("%.0f", n.at("transactions_per_s").get<double>()) << " trans/s, payload errors "
                   << u(n.at("payload_errors")) << "\n";
                os << "      net per op: notify tx " << net_per("frontend_tx_notifications_sent")
                   << " (suppressed " << net_per("frontend_tx_notifications_suppressed") << "), backend "
                   << net_per("backend_notifications_sent") << ", grant copies " << net_per("grant_copies")
                   << ", maps " << net_per("grant_maps") << ", bytes copied " << net_per("bytes_copied")
                   << ", pkts/interrupt " << net_per("packets_per_interrupt") << "\n";
                std::string drops;
                for (const auto& [k, v] : n.at("drops").items())
                    if (v.get<std::uint64_t>()) drops += (drops.empty() ? "" : ", ") + k + " " + u(v);
                if (!drops.empty()) os << "      net drops: " << drops << "\n";
            }
        }
    }
    if (r.contains("host"))
        os << "\nhost: " << fmt("%.3f", r.at("host").at("wall_seconds").get<double>()) << " s, "
           << fmt("%.0f", r.at("host").at("hypervisor_operations_per_second").get<double>())
           << " simulated hypervisor operations per host second\n";
    return os.str();
}

}  // namespace xensim
