#include "sim/platform/sweep_spec.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "sim/platform/scenario.h"

namespace xensim {

using nlohmann::json;

namespace {

using N = ConfigNode;

std::vector<std::string> split_dots(const std::string& s) {
    std::vector<std::string> parts;
    for (std::size_t from = 0;;) {
        const auto dot = s.find('.', from);
        parts.push_back(s.substr(from, dot == std::string::npos ? std::string::npos : dot - from));
        if (dot == std::string::npos) break;
        from = dot + 1;
    }
    return parts;
}

bool all_digits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// What is wrong with `key` as a --set key of a scenario whose effective configuration is `base`,
// walking the scenario schema alongside it as --set does; empty when nothing is (an index beyond the
// base's array, or a variant whose type the base does not fix, is left to validating the values).
std::string scenario_key_problem(const std::string& key, const json& base) {
    const ConfigNode* schema = scenario_schema().get();
    const json* here = &base;
    std::string walked;
    for (const std::string& part : split_dots(key)) {
        if (part.empty()) return "no empty component";
        if (schema->kind() == ConfigNode::Kind::array && !all_digits(part))
            return "an array index after \"" + walked + "\", not \"" + part + "\"";
        const ConfigNode* next = schema->child(part, here ? *here : json());
        if (!next) {
            if (schema->kind() == ConfigNode::Kind::variant && (!here || !here->is_object())) return "";
            return "a key the scenario schema has (\"" + part + "\" is not a field" +
                   (walked.empty() ? " of a scenario" : " of \"" + walked + "\"") + ")";
        }
        if (here && here->is_array() && all_digits(part) && part.size() <= 9 &&
            std::stoul(part) < here->size())
            here = &(*here)[std::stoul(part)];
        else if (here && here->is_object() && here->contains(part))
            here = &here->at(part);
        else
            here = nullptr;
        schema = next;
        walked += (walked.empty() ? "" : ".") + part;
    }
    return "";
}

// A scenario error message (one "FILE: POINTER: expected ..., found ..." per line) on one line.
std::string one_line(std::string message) {
    while (!message.empty() && message.back() == '\n') message.pop_back();
    for (std::size_t at; (at = message.find('\n')) != std::string::npos;) message.replace(at, 1, "; ");
    return message;
}

std::string slug_text(const json& v) {
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    std::string out;
    for (char c : text) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '.' || c == '+' || c == '-';
        out += keep ? c : '_';
    }
    return out;
}

// The readable name of an axis in a slug: its key's last component that is not an index.
std::string slug_name(const std::string& key) {
    const auto parts = split_dots(key);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        if (!all_digits(*it)) return slug_text(json(*it));
    return "axis";
}

}  // namespace

ConfigNodePtr sweep_schema() {
    static const ConfigNodePtr schema = N::object(
        {
            {"description", N::string(std::nullopt, "what the study asks"), false},
            {"base", N::string(std::nullopt, "the base scenario, relative to the sweep file's directory"),
             true},
            {"axes",
             N::array(N::object(
                          {
                              {"key",
                               N::string(std::nullopt, "a --set key exactly as `xensim run --set` takes it"),
                               true},
                              {"values",
                               N::array(N::any("a value for the key, as --set would parse it"), 1, 10000,
                                        "the values this axis takes"),
                               true},
                          },
                          "one swept --set key"),
                      0, 16, "the swept keys"),
             false},
            {"combine",
             N::enumeration("cross", {"cross", "zip"},
                            "cross: every combination of the axes' values; zip: the i-th values together"),
             false},
            {"seeds",
             N::array(N::integer(0, 0, INT64_MAX, "", "a platform.seed"), 0, 1000,
                      "each combination runs once per seed (default: the base scenario's seed)"),
             false},
            {"metrics",
             N::array(N::string(std::nullopt,
                                "a dotted report.json path, e.g. workloads.0.per_request.exits_total"),
                      1, 256, "the report figures collected per point"),
             true},
        },
        "a parameter sweep over a base scenario (xensim sweep)");
    return schema;
}

json sweep_json_schema() {
    json s = sweep_schema()->json_schema();
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema";
    s["$id"] = "https://xensim.invalid/schema/sweep.schema.json";
    s["title"] = "xensim sweep";
    return s;
}

std::string sweep_set_argument(const std::string& key, const json& value) { return key + "=" + value.dump(); }

std::string metric_path_problem(const std::string& path) {
    for (const std::string& part : split_dots(path)) {
        if (part.empty()) return "a dotted report path with no empty component";
        for (char c : part)
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                return "a dotted report path without whitespace";
    }
    return "";
}

SweepSpec parse_sweep(const std::string& text, const std::string& file, SweepChecks checks) {
    json doc;
    try {
        doc = parse_json_text(text, file);
    } catch (const InputError& e) {
        throw ScenarioError(e.what());
    }
    std::vector<ConfigError> errors;
    const json in = sweep_schema()->resolve(doc, "", errors);
    if (!errors.empty()) throw ScenarioError(format_config_errors(file, errors));

    SweepSpec spec;
    spec.file = file;
    spec.base = in.at("base").get<std::string>();
    const std::filesystem::path base(spec.base);
    spec.base_path = base.is_absolute()
                         ? spec.base
                         : (std::filesystem::path(file).parent_path() / base).lexically_normal().string();
    spec.combine = in.at("combine") == "zip" ? SweepCombine::zip : SweepCombine::cross;
    for (const auto& s : in.at("seeds")) spec.seeds.push_back(s.get<std::uint64_t>());
    for (const auto& m : in.at("metrics")) spec.metrics.push_back(m.get<std::string>());
    for (const auto& a : in.at("axes")) {
        SweepAxis axis;
        axis.key = a.at("key").get<std::string>();
        for (const auto& v : a.at("values")) axis.values.push_back(v);
        spec.axes.push_back(std::move(axis));
    }

    // Rules between fields.
    std::set<std::string> keys;
    for (std::size_t i = 0; i < spec.axes.size(); ++i) {
        const SweepAxis& a = spec.axes[i];
        const std::string at = "/axes/" + std::to_string(i);
        if (a.key.find('=') != std::string::npos)
            errors.push_back({at + "/key", "a --set key without \"=\" (the values come from \"values\")",
                              describe_json(json(a.key))});
        if (a.key == "platform.seed")
            errors.push_back({at + "/key", "a key other than platform.seed (list seeds in \"seeds\")",
                              describe_json(json(a.key))});
        if (!keys.insert(a.key).second)
            errors.push_back({at + "/key", "a key no other axis sweeps", describe_json(json(a.key))});
        if (spec.combine == SweepCombine::zip && a.values.size() != spec.axes[0].values.size())
            errors.push_back({at + "/values",
                              "as many values as /axes/0 has (" + std::to_string(spec.axes[0].values.size()) +
                                  ", combine \"zip\")",
                              describe_json(json(a.values))});
    }
    std::set<std::uint64_t> seen_seeds;
    for (std::size_t i = 0; i < spec.seeds.size(); ++i)
        if (!seen_seeds.insert(spec.seeds[i]).second)
            errors.push_back({"/seeds/" + std::to_string(i), "a seed not listed before",
                              "integer " + std::to_string(spec.seeds[i])});
    for (std::size_t i = 0; i < spec.metrics.size(); ++i) {
        const std::string problem = metric_path_problem(spec.metrics[i]);
        if (!problem.empty())
            errors.push_back(
                {"/metrics/" + std::to_string(i), problem, describe_json(json(spec.metrics[i]))});
    }
    std::size_t combinations = 1;
    for (const auto& a : spec.axes) {
        const std::size_t n = a.values.size();
        if (spec.combine == SweepCombine::zip) {
            combinations = n;
        } else if (combinations > kMaxSweepPoints / n) {
            combinations = kMaxSweepPoints + 1;
            break;
        } else {
            combinations *= n;
        }
    }
    const std::size_t seed_count = std::max<std::size_t>(1, spec.seeds.size());
    if (combinations > kMaxSweepPoints / seed_count)
        errors.push_back({"/axes",
                          "at most " + std::to_string(kMaxSweepPoints) + " points (combinations x seeds)",
                          "more"});
    if (!errors.empty()) throw ScenarioError(format_config_errors(file, errors));

    // The base scenario, and every value applied to it.
    Scenario base_scenario;
    try {
        base_scenario = load_scenario(spec.base_path);
    } catch (const ScenarioError& e) {
        throw ScenarioError(
            format_config_errors(file, {{"/base", "a valid scenario file",
                                         describe_json(json(spec.base)) + ": " + one_line(e.what())}}));
    }
    if (spec.seeds.empty())
        spec.seeds.push_back(base_scenario.effective.at("platform").at("seed").get<std::uint64_t>());
    for (std::size_t i = 0; i < spec.axes.size(); ++i) {
        const std::string problem = scenario_key_problem(spec.axes[i].key, base_scenario.effective);
        if (!problem.empty())
            errors.push_back(
                {"/axes/" + std::to_string(i) + "/key", problem, describe_json(json(spec.axes[i].key))});
    }
    if (!errors.empty()) throw ScenarioError(format_config_errors(file, errors));
    for (std::size_t i = 0; i < spec.axes.size(); ++i) {
        for (std::size_t j = 0; j < spec.axes[i].values.size(); ++j) {
            ScenarioOverrides o;
            o.sets.push_back(sweep_set_argument(spec.axes[i].key, spec.axes[i].values[j]));
            try {
                load_scenario(spec.base_path, o);
            } catch (const ScenarioError& e) {
                errors.push_back({"/axes/" + std::to_string(i) + "/values/" + std::to_string(j),
                                  "a value the base scenario takes with --set " + o.sets[0],
                                  one_line(e.what())});
            }
        }
    }
    if (!errors.empty()) throw ScenarioError(format_config_errors(file, errors));
    if (spec.axes.size() > 1 && checks == SweepChecks::all) {
        for (const SweepPoint& p : expand_sweep(spec)) {
            if (p.index % spec.seeds.size() != 0) continue;  // once per combination
            ScenarioOverrides o;
            o.sets.assign(p.sets.begin(), p.sets.end() - 1);
            try {
                load_scenario(spec.base_path, o);
            } catch (const ScenarioError& e) {
                std::string with;
                for (const auto& s : o.sets) with += " --set " + s;
                errors.push_back(
                    {"/axes",
                     "values that the base scenario takes together (point " + p.id + ":" + with + ")",
                     one_line(e.what())});
            }
        }
    }
    if (!errors.empty()) throw ScenarioError(format_config_errors(file, errors));
    return spec;
}

SweepSpec load_sweep(const std::string& file, SweepChecks checks) {
    std::string text;
    try {
        text = read_input_file(file, "sweep file");
    } catch (const InputError& e) {
        throw ScenarioError(e.what());
    }
    return parse_sweep(text, file, checks);
}

std::vector<SweepPoint> expand_sweep(const SweepSpec& spec) {
    // The combinations: cross counts in mixed radix with the last axis fastest; zip takes row i.
    std::vector<std::vector<std::size_t>> combos;
    if (spec.axes.empty()) {
        combos.push_back({});
    } else if (spec.combine == SweepCombine::zip) {
        for (std::size_t i = 0; i < spec.axes[0].values.size(); ++i)
            combos.push_back(std::vector<std::size_t>(spec.axes.size(), i));
    } else {
        std::size_t count = 1;
        for (const auto& a : spec.axes) count *= a.values.size();
        for (std::size_t k = 0; k < count; ++k) {
            std::vector<std::size_t> digit(spec.axes.size());
            std::size_t rest = k;
            for (std::size_t a = spec.axes.size(); a-- > 0;) {
                digit[a] = rest % spec.axes[a].values.size();
                rest /= spec.axes[a].values.size();
            }
            combos.push_back(std::move(digit));
        }
    }
    const std::vector<std::uint64_t> seeds = spec.seeds.empty() ? std::vector<std::uint64_t>{0} : spec.seeds;
    const std::size_t total = combos.size() * seeds.size();
    std::size_t width = 4;
    for (std::size_t n = total ? total - 1 : 0; n >= 10000; n /= 10) ++width;

    std::vector<SweepPoint> points;
    points.reserve(total);
    for (std::size_t c = 0; c < combos.size(); ++c) {
        for (std::uint64_t seed : seeds) {
            SweepPoint p;
            p.index = points.size();
            p.combination = c;
            p.seed = seed;
            std::string slug;
            for (std::size_t a = 0; a < spec.axes.size(); ++a) {
                const json& v = spec.axes[a].values[combos[c][a]];
                p.values.push_back(v);
                p.sets.push_back(sweep_set_argument(spec.axes[a].key, v));
                slug += "-" + slug_name(spec.axes[a].key) + "=" + slug_text(v);
            }
            if (slug.size() > 64) slug.resize(64);
            p.sets.push_back("platform.seed=" + std::to_string(seed));
            std::string index = std::to_string(p.index);
            p.id = std::string(width - std::min(width, index.size()), '0') + index + slug + "-s" +
                   std::to_string(seed);
            points.push_back(std::move(p));
        }
    }
    return points;
}

}  // namespace xensim
