#pragma once

namespace xensim {
// Version of report.json's layout (docs/report-schema.md). Bump when a key changes meaning or goes.
inline constexpr int kReportSchemaVersion = 5;
}  // namespace xensim
