// The cost model's defaults and docs/cost-model.md's table must say the same thing.
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "sim/core/cost_model.h"

namespace xensim {
namespace {

std::map<std::string, std::uint64_t> documented_defaults() {
    std::ifstream in(std::string(XENSIM_SOURCE_DIR) + "/docs/cost-model.md");
    std::map<std::string, std::uint64_t> rows;
    std::string line;
    std::regex row(R"(^\|\s*`([A-Za-z_.]+)`\s*\|\s*([0-9]+)\s*\|)");
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_search(line, m, row)) rows[m[1]] = std::stoull(m[2]);
    }
    return rows;
}

TEST(CostModel, DocumentedTableAndCodeDefaultsAgree) {
    auto doc = documented_defaults();
    auto code = CostModel::defaults().flatten();
    ASSERT_FALSE(doc.empty()) << "docs/cost-model.md has no parameter table";
    for (const auto& [name, value] : code) {
        ASSERT_TRUE(doc.count(name)) << name << " is not documented in docs/cost-model.md";
        EXPECT_EQ(doc.at(name), value) << name;
    }
    EXPECT_EQ(doc.size(), code.size()) << "the doc lists parameters the code does not have";
}

TEST(CostModel, OverridesReplaceOnlyWhatTheyName) {
    nlohmann::json cost = {{"tlb_flush", 9}, {"handler", {{"VMCALL", 11}}}};
    CostModel m = CostModel::from_config(cost);
    CostModel d = CostModel::defaults();
    EXPECT_EQ(m.tlb_flush, 9u);
    EXPECT_EQ(m.exit_cost(ExitReason::VMCALL), d.vmexit_roundtrip + 11);
    EXPECT_EQ(m.exit_cost(ExitReason::HLT), d.exit_cost(ExitReason::HLT));
}

TEST(Clock, CyclesToPicosecondsAtTheConfiguredFrequency) {
    Clock c(2000);
    EXPECT_EQ(c.ps(2000), 1'000'000u);  // 2000 cycles at 2 GHz = 1 us
    EXPECT_EQ(c.cycles(1'000'000), 2000u);
    Clock odd(2100);
    EXPECT_EQ(odd.ps(21), 10'000u);
}

}  // namespace
}  // namespace xensim
