// The summary table (reports/summary_table.cpp) on a hand-built report: a netperf workload gets its
// net lines (test, rates, per-op network figures, non-zero drops by place); other workloads do not.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace xensim
