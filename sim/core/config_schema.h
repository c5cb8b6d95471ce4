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
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xensim {

// Input refused before it is used (a file that is not a regular file, is too large, or is not
// JSON): the message is ready for the user, naming the file. The CLI maps it to exit status 2.
class InputError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

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
    enum class Kind { object, array, integer, number, boolean, string, enumeration, variant, any };

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
    // Any JSON value, taken as it is (a sweep axis's values, which the scenario schema checks once
    // they are applied with --set). Its default is null.
    static ConfigNodePtr any(std::string description);

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
    // or nullptr.
    const ConfigNode* find(const std::string& dotted) const;
    // The node that describes `key` inside a value `here` of this node: an object's field, an
    // array's item (key is an index), a variant's field, the variant being selected by here's
    // "type"; nullptr when the schema has no such key. --set walks it to type the value it parses.
    const ConfigNode* child(const std::string& key, const nlohmann::json& here) const;
    // A string or an enumeration: --set takes a bare word for it.
    bool takes_text() const { return kind_ == Kind::string || kind_ == Kind::enumeration; }

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
    ConfigNodePtr variant_type_;  // a variant's "type" key: one of the variants' names
};

// Describes a JSON value for an error message: `integer 3`, `string "abc"`, `object`, ...
std::string describe_json(const nlohmann::json& v);

// "FILE:LINE:COL: not valid JSON: ..." for a parse error in `text` (the byte offset turned into a
// line and column).
std::string json_parse_error_message(const std::string& file, const std::string& text,
                                     const nlohmann::json::parse_error& e);

// Parses JSON text read from `file`. Every way the text can fail is an InputError
// "FILE:LINE:COL: not valid JSON: ...": a syntax error, and a number beyond a double (1e400),
// which nlohmann reports as out_of_range.406 rather than as a parse_error.
nlohmann::json parse_json_text(const std::string& text, const std::string& file);

// "a directory", "a character device", "a FIFO", ... for a stat(2) st_mode.
std::string describe_file_type(unsigned st_mode);

// Input files (a scenario, a report) are small; anything larger is refused unread.
constexpr std::size_t kMaxInputFileBytes = 16u << 20;  // 16 MiB

// The whole content of the input file `path`. Refuses, with an InputError naming the file, what is
// not a regular file (a directory, /dev/zero, a FIFO: stat(2) first, so a FIFO is never opened and
// an endless device never read) and a file above `max_bytes` (checked on its size, then while
// reading, for files whose size stat(2) does not tell, as in /proc). `what` names the file in
// "cannot open the scenario file".
std::string read_input_file(const std::string& path, const std::string& what,
                            std::size_t max_bytes = kMaxInputFileBytes);

}  // namespace xensim
