// Declared parameters: the one description of what a scenario may say.
//
// A scenario is JSON. Its shape is declared once as a tree of ConfigNodes — objects with named
// fields, arrays, typed leaves with default, bounds, unit and description, and tagged variants
// (an object whose "type" field selects the rest of its fields). The same tree
//   - validates a scenario, naming the file, the JSON pointer, what was expected and what was
//     found; unknown keys are errors; every problem is reported, not just the first;
//   - produces the effective configuration (the input with every default filled in), which the
//     platform builds from and the report records;
//   - renders the JSON Schema shipped in scenarios/schema/, so loader and schema cannot drift.
// Cross-field rules (a name that must refer to a declared domain, ...) are checked by the
// platform after this structural pass, with the same error format.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xensim {

struct ConfigError {
    std::string pointer;   // JSON pointer into the scenario, e.g. "/domains/1/vcpus"
    std::string expected;  // what the schema wants
    std::string found;     // what the scenario had
};

// A list of errors, rendered "FILE: POINTER: expected X, found Y" one per line.
std::string format_config_errors(const std::string& file, const std::vector<ConfigError>& errors);

class ConfigNode;
using ConfigNodePtr = std::shared_ptr<const ConfigNode>;

struct ConfigField {
    std::string name;
    ConfigNodePtr node;
    bool required = false;
};

class ConfigNode {
  public:
    enum class Kind { object, array, integer, number, boolean, string, enumeration, variant };

    // Leaves. `unit` may be empty. Integers and numbers take inclusive bounds.
    static ConfigNodePtr integer(std::int64_t def, std::int64_t min, std::int64_t max, std::string unit,
                                 std::string description);
    static ConfigNodePtr number(double def, double min, double max, std::string unit,
                                std::string description);
    static ConfigNodePtr boolean(bool def, std::string description);
    static ConfigNodePtr string(std::optional<std::string> def, std::string description);
    static ConfigNodePtr enumeration(std::string def, std::vector<std::string> choices,
                                     std::string description);
    // Composites. An object's absent optional fields take their node's default.
    static ConfigNodePtr object(std::vector<ConfigField> fields, std::string description);
    static ConfigNodePtr array(ConfigNodePtr item, std::size_t min_items, std::size_t max_items,
                               std::string description);
    // An object whose field "type" (one of the keys) selects which object node applies.
    static ConfigNodePtr variant(std::map<std::string, ConfigNodePtr> by_type, std::string description);

    Kind kind() const { return kind_; }
    const std::string& description() const { return description_; }

    // Validates `in` (at JSON pointer `at`) and returns the effective value with defaults filled.
    nlohmann::json resolve(const nlohmann::json& in, const std::string& at,
                           std::vector<ConfigError>& errors) const;
    // The default of this node (objects: all fields' defaults; arrays: empty).
    nlohmann::json default_value() const;
    // JSON Schema (draft 2020-12) fragment for this node.
    nlohmann::json json_schema() const;
    // The node found by walking a dotted path of object field names ("platform.cost.tlb_flush"),
    // or nullptr. Used by --set to type the value it parses.
    const ConfigNode* find(const std::string& dotted) const;

  private:
    Kind kind_ = Kind::object;
    std::string description_, unit_;
    nlohmann::json default_;
    std::int64_t imin_ = 0, imax_ = 0;
    double dmin_ = 0, dmax_ = 0;
    std::vector<std::string> choices_;
    std::vector<ConfigField> fields_;
    ConfigNodePtr item_;
    std::size_t min_items_ = 0, max_items_ = 0;
    std::map<std::string, ConfigNodePtr> variants_;
};

// Describes a JSON value for an error message: `integer 3`, `string "abc"`, `object`, ...
std::string describe_json(const nlohmann::json& v);

// "FILE:LINE:COL: not valid JSON: ..." for a parse error in `text` (the byte offset turned into a
// line and column).
std::string json_parse_error_message(const std::string& file, const std::string& text,
                                     const nlohmann::json::parse_error& e);

}  // namespace xensim
