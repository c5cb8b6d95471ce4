// Renders report.json as the readable summary `xensim run` prints: per domain, exits by reason,
// hypercalls, events and switches; per workload, ops, throughput and latency; per pCPU, context
// switches. Reads only the report, so it works as well on a report from an earlier run.
//
// At scale (issue 15: 64 domains printed 466 lines and the figures that matter scrolled away) every
// block that grows with the number of domains or workloads - the Domains table, "hypercalls by op",
// the XenStore lines and the Workloads table - shows its first kSummaryRowCap rows (dom0 and the
// first guests) individually and folds the rest:
//   - if the rest fall into at most kSummaryFoldGroups runs of consecutive rows whose every column
//     is equal, one line per run: "d8..d63 (56 guests, each)" with the shared figures;
//   - otherwise one "total" line (sums) and, for the tables, "min" and "max" lines per column.
// When anything was folded, the summary ends with one line saying every row is in report.json.
// A scenario with at most kSummaryRowCap domains and workloads prints exactly as before the cap.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace xensim {

// Rows a per-domain or per-workload block shows individually before folding the rest.
inline constexpr std::size_t kSummaryRowCap = 8;
// Runs of identical rows the folded rest may print as "each" lines before it becomes total/min/max.
inline constexpr std::size_t kSummaryFoldGroups = 3;

std::string render_summary(const nlohmann::json& report);

}  // namespace xensim
