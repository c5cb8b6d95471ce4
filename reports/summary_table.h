// Renders report.json as the readable summary `xensim run` prints: per domain, exits by reason,
// hypercalls, events and switches; per workload, ops, throughput and latency; per pCPU, context
// switches. Reads only the report, so it works as well on a report from an earlier run.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace xensim {

std::string render_summary(const nlohmann::json& report);

}  // namespace xensim
