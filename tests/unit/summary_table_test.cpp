// The summary table (reports/summary_table.cpp) on a hand-built report: a netperf workload gets its
// net lines (test, rates, per-op network figures, non-zero drops by place); other workloads do not.
// At scale (issue 15) the per-domain and per-workload blocks show kSummaryRowCap rows and fold the rest.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "reports/summary_table.h"

namespace xensim {
namespace {

using nlohmann::json;

json report(bool net) {
    json r = json::parse(R"({
      "scenario": {"name": "s"},
      "simulation": {"sim_time_ns": 1000000, "sim_time_ps": 1000000000, "stop_reason": "workloads_done"},
      "domains": [],
      "pcpus": [],
      "workloads": [{
        "name": "np", "type": "netperf", "ops": 1000, "failures": 0, "ops_per_second": 100000.0,
        "latency_ns": {"mean": 0.0, "p50": 0, "p99": 0},
        "per_request": {"exits": {"VMCALL": 1.5}, "exits_total": 1.5}
      }]
    })");
    if (net)
        r["workloads"][0]["net"] = json::parse(R"({
          "test": "UDP_STREAM", "direction": "send", "peer": "wire",
          "gbit_per_s": 0.512, "pps": 100000.0, "transactions_per_s": 0.0, "payload_errors": 0,
          "per_request": {"frontend_tx_notifications_sent": 0.25, "frontend_tx_notifications_suppressed": 0.75,
                          "backend_notifications_sent": 0.125, "grant_copies": 1.0, "grant_maps": 0.0,
                          "bytes_copied": 54.0, "packets_per_interrupt": 8.0},
          "drops": {"lost_by_sequence": 0, "backend_tx": 2}
        })");
    return r;
}

TEST(SummaryTable, NetperfWorkloadGetsItsNetLines) {
    const std::string s = render_summary(report(true));
    EXPECT_NE(s.find("net UDP_STREAM send peer wire: 0.512 Gbit/s, 100000 pps, 0 trans/s, payload errors 0"),
              std::string::npos)
        << s;
    EXPECT_NE(
        s.find("net per op: notify tx 0.25 (suppressed 0.75), backend 0.12, grant copies 1.00, maps 0.00, "
               "bytes copied 54.00, pkts/interrupt 8.00"),
        std::string::npos)
        << s;
    EXPECT_NE(s.find("net drops: backend_tx 2"), std::string::npos) << "only non-zero drops\n" << s;
    EXPECT_EQ(s.find("lost_by_sequence"), std::string::npos) << s;
    EXPECT_EQ(render_summary(report(false)).find("net "), std::string::npos);
}

// --- At scale (issue 15; the fold rules are in summary_table.h) ---

namespace scale {

// A guest row of the Domains table; FACTOR scales its counters so rows can differ.
json domain(std::uint64_t id, std::uint64_t factor) {
    return {{"id", id},
            {"name", id == 0 ? std::string("dom0") : "guest" + std::to_string(id)},
            {"type", id == 0 ? "pv" : "hvm"},
            {"exits_total", 100 * factor},
            {"exits", {{"HLT", 40 * factor}, {"VMCALL", 60 * factor}}},
            {"hypercalls_total", 60 * factor},
            {"hypercalls", {{"event_channel_op/EVTCHNOP_send", 60 * factor}}},
            {"upcalls", 30 * factor},
            {"halts", 40 * factor}};
}

json xenstored(std::uint64_t factor) {
    return {{"requests", {{"XS_READ", 15 * factor}, {"XS_WRITE", 6}}},
            {"bytes_in", 1500 * factor},
            {"bytes_out", 850},
            {"notifications", 28},
            {"errors", 0}};
}

json workload(const std::string& name, std::uint64_t factor) {
    return {
        {"name", name},
        {"type", "fio"},
        {"ops", 100 * factor},
        {"failures", 0},
        {"ops_per_second", 200000.0 * static_cast<double>(factor)},
        {"latency_ns", {{"mean", 120000.0 * static_cast<double>(factor)}, {"p50", 125440}, {"p99", 189440}}},
        {"per_request", {{"exits", {{"HLT", 0.05}}}, {"exits_total", 0.05}}}};
}

// dom0 and GUESTS guests, one workload per guest; FACTOR(i) gives guest i's counters.
template <typename Factor>
json report(std::uint64_t guests, Factor factor) {
    json r = json::parse(R"({
      "scenario": {"name": "scale"},
      "simulation": {"sim_time_ns": 1000000, "sim_time_ps": 1000000000, "stop_reason": "workloads_done"},
      "pcpus": [], "domains": [], "workloads": [], "stats": {"xenstored": {}}
    })");
    for (std::uint64_t i = 0; i <= guests; ++i) {
        r["domains"].push_back(domain(i, i == 0 ? 7 : factor(i)));
        r["stats"]["xenstored"]["dom" + std::to_string(i)] = xenstored(i == 0 ? 7 : factor(i));
        if (i > 0) r["workloads"].push_back(workload("fio-guest" + std::to_string(i), factor(i)));
    }
    return r;
}

// The lines of S from the one equal to FIRST up to (not including) the next empty line.
std::vector<std::string> block(const std::string& s, const std::string& first) {
    std::vector<std::string> lines;
    std::istringstream in(s);
    bool inside = false;
    for (std::string line; std::getline(in, line);) {
        if (!inside && line == first) inside = true;
        if (inside && line.empty()) break;
        if (inside) lines.push_back(line);
    }
    return lines;
}

bool has_line(const std::string& s, const std::string& line) {
    return ("\n" + s).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace scale

TEST(SummaryTableAtScale, SixtyFourDomainsShowTheCapAndGroupIdenticalGuests) {
    // 63 guests: guests 1..62 alike, guest 63 different (its own run of one).
    const std::string s = render_summary(scale::report(63, [](std::uint64_t i) { return i == 63 ? 2 : 1; }));
    const std::vector<std::string> domains = scale::block(s, "Domains");
    // Header line, column line, kSummaryRowCap rows (dom0 .. guest7), one run of equal rows, one single row.
    ASSERT_EQ(domains.size(), 2 + kSummaryRowCap + 2) << s;
    EXPECT_EQ(domains[2],
              "  d0 dom0       pv          700         420       210      280   HLT 280, VMCALL 420");
    EXPECT_EQ(domains[9],
              "  d7 guest7     hvm         100          60        30       40   HLT 40, VMCALL 60");
    EXPECT_EQ(domains[10],
              "  d8..d62       hvm         100          60        30       40   (55 guests, each) HLT 40, "
              "VMCALL 60");
    EXPECT_EQ(domains[11],
              "  d63 guest63   hvm         200         120        60       80   HLT 80, VMCALL 120");
    EXPECT_TRUE(scale::has_line(s, "    d8..d62 (55 guests, each): event_channel_op/EVTCHNOP_send=60")) << s;
    EXPECT_TRUE(scale::has_line(s, "    d63: event_channel_op/EVTCHNOP_send=120")) << s;
    EXPECT_FALSE(scale::has_line(s, "    d8: event_channel_op/EVTCHNOP_send=60")) << s;
    // XenStore: the first rows by domain id (dom7 before dom10), then the runs.
    const std::vector<std::string> xs = scale::block(s, "XenStore (xenstored on dom0)");
    ASSERT_EQ(xs.size(), 1 + kSummaryRowCap + 2) << s;
    EXPECT_EQ(xs[8].substr(0, 6), "  dom7") << s;
    EXPECT_EQ(xs[9],
              "  dom8..dom62 (55 guests, each) requests: XS_READ=15 XS_WRITE=6  bytes in/out 1500/850, "
              "notifications 28, errors 0");
    EXPECT_EQ(xs[10].substr(0, 11), "  dom63    ") << s;
    // Workloads: the first kSummaryRowCap shown, then one run of 54 equal ones and fio-guest63 alone.
    EXPECT_TRUE(scale::has_line(s, "  fio-guest9..fio-guest62: 54 workloads, each")) << s;
    EXPECT_TRUE(
        scale::has_line(s,
                        "    each          fio                    100     0      200000    120.00   125.44   "
                        "189.44      0.05"))
        << s;
    EXPECT_FALSE(scale::has_line(s,
                                 "  fio-guest9      fio                    100     0      200000    120.00   "
                                 "125.44   189.44      0.05"))
        << s;
    // The one pointer to report.json, last.
    const std::string pointer =
        "folded above: 56 of 64 domains and 55 of 63 workloads beyond the first 8 rows of each table; "
        "report.json has every one\n";
    ASSERT_GE(s.size(), pointer.size());
    EXPECT_EQ(s.substr(s.size() - pointer.size()), pointer) << s;
    EXPECT_EQ(s.find("folded above"), s.rfind("folded above"));
}

TEST(SummaryTableAtScale, SixtyFourDifferentDomainsFoldToTotalMinAndMax) {
    // Guest i has counters i times the base: no two alike beyond the cap, so more runs than
    // kSummaryFoldGroups and the rest fold to total/min/max. Sums over guests 8..63 = 56 guests,
    // factor sum 8+...+63 = 1988.
    const std::string s = render_summary(scale::report(63, [](std::uint64_t i) { return i; }));
    const std::vector<std::string> domains = scale::block(s, "Domains");
    ASSERT_EQ(domains.size(), 2 + kSummaryRowCap + 4) << s;
    EXPECT_EQ(domains[10], "  d8..d63: 56 guests (total, and min and max of each column)");
    EXPECT_EQ(domains[11],
              "    total       hvm      198800      119280     59640    79520   HLT 79520, VMCALL 119280");
    EXPECT_EQ(domains[12], "    min                     800         480       240      320   -");
    EXPECT_EQ(domains[13], "    max                    6300        3780      1890     2520   -");
    EXPECT_TRUE(scale::has_line(s, "    d8..d63 (56 guests, total): event_channel_op/EVTCHNOP_send=119280"))
        << s;
    const std::vector<std::string> xs = scale::block(s, "XenStore (xenstored on dom0)");
    ASSERT_EQ(xs.size(), 1 + kSummaryRowCap + 1) << s;
    EXPECT_EQ(xs[9],
              "  dom8..dom63 (56 guests, total) requests: XS_READ=29820 XS_WRITE=336  bytes in/out "
              "2982000/47600, notifications 1568, errors 0");
    // Workloads 9..63 (55 of them, factor sum 1980): ops and ops/s add up, latencies do not.
    EXPECT_TRUE(
        scale::has_line(s, "  fio-guest9..fio-guest63: 55 workloads (total, and min and max of each column)"))
        << s;
    EXPECT_TRUE(
        scale::has_line(s,
                        "    total         fio                 198000     0   396000000         -        -   "
                        "     -         -"))
        << s;
    EXPECT_TRUE(
        scale::has_line(s,
                        "    min                                  900     0     1800000   1080.00   125.44   "
                        "189.44      0.05"))
        << s;
    EXPECT_TRUE(
        scale::has_line(s,
                        "    max                                 6300     0    12600000   7560.00   125.44   "
                        "189.44      0.05"))
        << s;
}

TEST(SummaryTableAtScale, ThreeDomainsPrintEveryRowAsBefore) {
    // At most kSummaryRowCap domains and workloads: every row, no fold, no pointer line; the format
    // as before issue 15 (the lexical XenStore order included).
    const std::string s = render_summary(scale::report(2, [](std::uint64_t) { return 1; }));
    EXPECT_EQ(
        s,
        "scenario scale: 1.000 ms simulated, stop: workloads_done\n"
        "\n"
        "Domains\n"
        "  domain        type      exits  hypercalls   upcalls    halts   exits by reason\n"
        "  d0 dom0       pv          700         420       210      280   HLT 280, VMCALL 420\n"
        "  d1 guest1     hvm         100          60        30       40   HLT 40, VMCALL 60\n"
        "  d2 guest2     hvm         100          60        30       40   HLT 40, VMCALL 60\n"
        "\n"
        "  hypercalls by op\n"
        "    d0: event_channel_op/EVTCHNOP_send=420\n"
        "    d1: event_channel_op/EVTCHNOP_send=60\n"
        "    d2: event_channel_op/EVTCHNOP_send=60\n"
        "\n"
        "Physical CPUs\n"
        "  pcpu    switches  same-dom  dom-chg  to-idle  from-idle  busy %  switch %  idle %\n"
        "\n"
        "XenStore (xenstored on dom0)\n"
        "  dom0     requests: XS_READ=105 XS_WRITE=6  bytes in/out 10500/850, notifications 28, errors 0\n"
        "  dom1     requests: XS_READ=15 XS_WRITE=6  bytes in/out 1500/850, notifications 28, errors 0\n"
        "  dom2     requests: XS_READ=15 XS_WRITE=6  bytes in/out 1500/850, notifications 28, errors 0\n"
        "\n"
        "Workloads\n"
        "  workload        type                   ops  fail       ops/s   mean us   p50 us   p99 us  "
        "exits/op\n"
        "  fio-guest1      fio                    100     0      200000    120.00   125.44   189.44      "
        "0.05\n"
        "      per op: HLT 0.05\n"
        "  fio-guest2      fio                    100     0      200000    120.00   125.44   189.44      "
        "0.05\n"
        "      per op: HLT 0.05\n");
}

}  // namespace
}  // namespace xensim
