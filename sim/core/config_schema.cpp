#include "sim/core/config_schema.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

namespace xensim {

using nlohmann::json;

namespace {

std::string pointer_escape(const std::string& key) {
    std::string out;
    for (char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

std::string kind_name(ConfigNode::Kind k) {
    switch (k) {
        case ConfigNode::Kind::object:
            return "an object";
        case ConfigNode::Kind::variant:
            return "an object";
        case ConfigNode::Kind::array:
            return "an array";
        case ConfigNode::Kind::integer:
            return "an integer";
        case ConfigNode::Kind::number:
            return "a number";
        case ConfigNode::Kind::boolean:
            return "a boolean";
        case ConfigNode::Kind::string:
            return "a string";
        case ConfigNode::Kind::enumeration:
            return "a string";
        case ConfigNode::Kind::any:
            return "a JSON value";
    }
    return "?";
}

std::string join_quoted(const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
    return s;
}

}  // namespace

std::string describe_json(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return std::string("boolean ") + (v.get<bool>() ? "true" : "false");
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
            return "integer " + v.dump();
        case json::value_t::number_float:
            return "number " + v.dump();
        case json::value_t::string:
            return "string " + v.dump();
        case json::value_t::array:
            return "an array of " + std::to_string(v.size());
        case json::value_t::object:
            return "an object";
        default:
            return "an unsupported value";
    }
}

std::string format_config_errors(const std::string& file, const std::vector<ConfigError>& errors) {
    std::ostringstream os;
    for (const auto& e : errors)
        os << file << ": " << (e.pointer.empty() ? "/" : e.pointer) << ": expected " << e.expected
           << ", found " << e.found << "\n";
    return os.str();
}

ConfigNodePtr ConfigNode::integer(std::int64_t def, std::int64_t min, std::int64_t max, std::string unit,
                                  std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::integer;
    n->default_ = def;
    n->imin_ = min, n->imax_ = max;
    n->unit_ = std::move(unit);
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::number(double def, double min, double max, std::string unit,
                                 std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::number;
    n->default_ = def;
    n->dmin_ = min, n->dmax_ = max;
    n->unit_ = std::move(unit);
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::boolean(bool def, std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::boolean;
    n->default_ = def;
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::string(std::optional<std::string> def, std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::string;
    n->default_ = def ? json(*def) : json();
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::enumeration(std::string def, std::vector<std::string> choices,
                                      std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::enumeration;
    n->default_ = def;
    n->choices_ = std::move(choices);
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::object(std::vector<ConfigField> fields, std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::object;
    n->fields_ = std::move(fields);
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::array(ConfigNodePtr item, std::size_t min_items, std::size_t max_items,
                                std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::array;
    n->item_ = std::move(item);
    n->min_items_ = min_items, n->max_items_ = max_items;
    n->description_ = std::move(description);
    return n;
}

ConfigNodePtr ConfigNode::variant(std::map<std::string, ConfigNodePtr> by_type, std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::variant;
    n->variants_ = std::move(by_type);
    n->description_ = std::move(description);
    std::vector<std::string> types;
    for (const auto& [t, _] : n->variants_) types.push_back(t);
    n->variant_type_ = enumeration(types.empty() ? "" : types.front(), types, "selects the variant");
    return n;
}

ConfigNodePtr ConfigNode::any(std::string description) {
    auto n = std::make_shared<ConfigNode>();
    n->kind_ = Kind::any;
    n->description_ = std::move(description);
    return n;
}

json ConfigNode::default_value() const {
    switch (kind_) {
        case Kind::object: {
            json o = json::object();
            for (const auto& f : fields_)
                if (!f.required) o[f.name] = f.node->default_value();
            return o;
        }
        case Kind::array:
            return json::array();
        case Kind::variant:
            return json();
        default:
            return default_;
    }
}

json ConfigNode::resolve(const json& in, const std::string& at, std::vector<ConfigError>& errors) const {
    auto fail = [&](std::string expected) {
        errors.push_back({at, std::move(expected), describe_json(in)});
        return default_value();
    };
    switch (kind_) {
        case Kind::integer: {
            const std::string in_range =
                "an integer in [" + std::to_string(imin_) + ", " + std::to_string(imax_) + "]";
            if (!in.is_number_integer()) {
                if (in.is_number_float() && std::floor(in.get<double>()) == in.get<double>()) {
                    // An integral double (4.0, 1e3) is that integer. Converting a double outside
                    // int64 is undefined ([conv.fpint]), so its range is checked as a double first:
                    // -2^63 and 2^63 are exact, and every integer in [-2^63, 2^63) fits. Out of
                    // range, the number is reported as the file has it (-9223372036854775809 is
                    // parsed as the double -2^63, which is not what the file says).
                    const double d = in.get<double>();
                    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return fail(in_range);
                    const auto v = static_cast<std::int64_t>(d);
                    if (v < imin_ || v > imax_) return fail(in_range);
                    return v;
                }
                return fail("an integer" + (unit_.empty() ? "" : " (" + unit_ + ")"));
            }
            if (in.is_number_unsigned() && in.get<std::uint64_t>() > static_cast<std::uint64_t>(imax_))
                return fail(in_range);
            auto v = in.get<std::int64_t>();
            if (v < imin_ || v > imax_) return fail(in_range);
            return v;
        }
        case Kind::number: {
            if (!in.is_number()) return fail("a number" + (unit_.empty() ? "" : " (" + unit_ + ")"));
            double v = in.get<double>();
            if (!(v >= dmin_ && v <= dmax_)) {
                std::ostringstream os;
                os << "a number in [" << dmin_ << ", " << dmax_ << "]";
                return fail(os.str());
            }
            return v;
        }
        case Kind::boolean:
            if (!in.is_boolean()) return fail("a boolean (true or false)");
            return in;
        case Kind::string:
            if (!in.is_string() || in.get<std::string>().empty()) return fail("a non-empty string");
            return in;
        case Kind::enumeration: {
            if (in.is_string())
                for (const auto& c : choices_)
                    if (in.get<std::string>() == c) return in;
            return fail("one of " + join_quoted(choices_));
        }
        case Kind::array: {
            if (!in.is_array()) return fail("an array");
            if (in.size() < min_items_ || in.size() > max_items_)
                return fail("an array of " + std::to_string(min_items_) + " to " +
                            std::to_string(max_items_) + " items");
            json out = json::array();
            for (std::size_t i = 0; i < in.size(); ++i)
                out.push_back(item_->resolve(in[i], at + "/" + std::to_string(i), errors));
            return out;
        }
        case Kind::object: {
            if (!in.is_object()) return fail("an object");
            json out = json::object();
            for (const auto& [key, value] : in.items()) {
                bool known = false;
                for (const auto& f : fields_) known = known || f.name == key;
                if (!known) {
                    std::vector<std::string> names;
                    for (const auto& f : fields_) names.push_back(f.name);
                    errors.push_back({at + "/" + pointer_escape(key),
                                      "no such key (known keys: " + join_quoted(names) + ")",
                                      "key \"" + key + "\""});
                }
            }
            for (const auto& f : fields_) {
                std::string p = at + "/" + pointer_escape(f.name);
                if (in.contains(f.name))
                    out[f.name] = f.node->resolve(in.at(f.name), p, errors);
                else if (f.required)
                    errors.push_back(
                        {p, "required " + kind_name(f.node->kind()) + " (" + f.node->description() + ")",
                         "nothing"});
                else
                    out[f.name] = f.node->default_value();
            }
            return out;
        }
        case Kind::any:
            return in;
        case Kind::variant: {
            if (!in.is_object()) return fail("an object");
            std::vector<std::string> types;
            for (const auto& [t, _] : variants_) types.push_back(t);
            auto t = in.find("type");
            if (t == in.end() || !t->is_string() || !variants_.count(t->get<std::string>())) {
                errors.push_back({at + "/type", "one of " + join_quoted(types),
                                  t == in.end() ? "nothing" : describe_json(*t)});
                return json();
            }
            json rest = in;
            rest.erase("type");
            json out = variants_.at(t->get<std::string>())->resolve(rest, at, errors);
            out["type"] = *t;
            return out;
        }
    }
    return json();
}

json ConfigNode::json_schema() const {
    json s = json::object();
    if (!description_.empty()) s["description"] = description_;
    switch (kind_) {
        case Kind::integer:
            s["type"] = "integer";
            s["minimum"] = imin_;
            s["maximum"] = imax_;
            s["default"] = default_;
            if (!unit_.empty()) s["x-unit"] = unit_;
            break;
        case Kind::number:
            s["type"] = "number";
            s["minimum"] = dmin_;
            s["maximum"] = dmax_;
            s["default"] = default_;
            if (!unit_.empty()) s["x-unit"] = unit_;
            break;
        case Kind::boolean:
            s["type"] = "boolean";
            s["default"] = default_;
            break;
        case Kind::string:
            s["type"] = "string";
            s["minLength"] = 1;
            if (!default_.is_null()) s["default"] = default_;
            break;
        case Kind::enumeration:
            s["type"] = "string";
            s["enum"] = choices_;
            s["default"] = default_;
            break;
        case Kind::array:
            s["type"] = "array";
            s["items"] = item_->json_schema();
            s["minItems"] = min_items_;
            s["maxItems"] = max_items_;
            break;
        case Kind::object: {
            s["type"] = "object";
            s["additionalProperties"] = false;
            json props = json::object();
            json required = json::array();
            for (const auto& f : fields_) {
                props[f.name] = f.node->json_schema();
                if (f.required) required.push_back(f.name);
            }
            s["properties"] = props;
            if (!required.empty()) s["required"] = required;
            break;
        }
        case Kind::variant: {
            json one_of = json::array();
            for (const auto& [t, node] : variants_) {
                json v = node->json_schema();
                v["properties"]["type"] = {{"const", t}};
                json req = v.value("required", json::array());
                req.insert(req.begin(), "type");
                v["required"] = req;
                one_of.push_back(v);
            }
            s["oneOf"] = one_of;
            break;
        }
        case Kind::any:
            break;  // every JSON value: no "type"
    }
    return s;
}

const ConfigNode* ConfigNode::find(const std::string& dotted) const {
    if (dotted.empty()) return this;
    if (kind_ != Kind::object) return nullptr;
    auto dot = dotted.find('.');
    std::string head = dotted.substr(0, dot);
    for (const auto& f : fields_)
        if (f.name == head)
            return dot == std::string::npos ? f.node.get() : f.node->find(dotted.substr(dot + 1));
    return nullptr;
}

const ConfigNode* ConfigNode::child(const std::string& key, const json& here) const {
    switch (kind_) {
        case Kind::array:
            return item_.get();
        case Kind::object:
            for (const auto& f : fields_)
                if (f.name == key) return f.node.get();
            return nullptr;
        case Kind::variant: {
            if (key == "type") return variant_type_.get();
            auto t = here.is_object() ? here.find("type") : here.end();
            if (!here.is_object() || t == here.end() || !t->is_string()) return nullptr;
            auto v = variants_.find(t->get<std::string>());
            return v == variants_.end() ? nullptr : v->second->child(key, here);
        }
        default:
            return nullptr;
    }
}

namespace {

// "LINE:COL" of the `byte`-th byte (1-based) of `text`.
std::string line_col(const std::string& text, std::size_t byte) {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
        if (text[i] == '\n')
            ++line, col = 1;
        else
            ++col;
    }
    return std::to_string(line) + ":" + std::to_string(col);
}

// A SAX handler that builds nothing and keeps where parsing failed: nlohmann's DOM parser throws
// out_of_range.406 (a number beyond a double) without a position, but hands it to the SAX
// handler's parse_error with one (nlohmann/detail/input/parser.hpp, parser::sax_parse_internal).
struct ErrorLocator : nlohmann::json_sax<json> {
    std::size_t position = 0;
    std::string token;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t pos, const std::string& last_token, const json::exception&) override {
        position = pos, token = last_token;
        return false;
    }
};

}  // namespace

std::string describe_file_type(unsigned st_mode) {
    const mode_t m = st_mode;
    if (S_ISREG(m)) return "a regular file";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symbolic link";
    return "a special file";
}

json parse_json_text(const std::string& text, const std::string& file) {
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        throw InputError(json_parse_error_message(file, text, e));
    } catch (const json::out_of_range& e) {
        ErrorLocator where;
        json::sax_parse(text, &where);
        // The position is the byte after the token; the message points at the token's first byte.
        const std::size_t start =
            where.position >= where.token.size() ? where.position - where.token.size() + 1 : 1;
        throw InputError(file + ":" + line_col(text, start) + ": not valid JSON: " + e.what());
    }
}

std::string read_input_file(const std::string& path, const std::string& what, std::size_t max_bytes) {
    const std::string limit =
        "a file of at most " + std::to_string(max_bytes) + " bytes" +
        (max_bytes % (1u << 20) == 0 ? " (" + std::to_string(max_bytes >> 20) + " MiB)" : "");
    auto refuse_stat = [&](const struct stat& st) {
        if (!S_ISREG(st.st_mode))
            throw InputError(path + ": expected a regular JSON file, found " +
                             describe_file_type(st.st_mode));
        if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
            throw InputError(path + ": expected " + limit + ", found " + std::to_string(st.st_size) +
                             " bytes");
    };
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        throw InputError(path + ": cannot open the " + what + ": " + std::strerror(errno));
    refuse_stat(st);  // before open(2): opening a FIFO would wait for a writer
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) throw InputError(path + ": cannot open the " + what + ": " + std::strerror(errno));
    std::string text;
    try {
        if (::fstat(fd, &st) != 0) throw InputError(path + ": cannot stat: " + std::strerror(errno));
        refuse_stat(st);  // the file opened may not be the one stat(2) saw
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw InputError(path + ": cannot read the " + what + ": " + std::strerror(errno));
            if (n == 0) break;
            text.append(buf, static_cast<std::size_t>(n));
            if (text.size() > max_bytes)  // st_size was 0 or the file grew
                throw InputError(path + ": expected " + limit + ", found more");
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    return text;
}

std::string json_parse_error_message(const std::string& file, const std::string& text,
                                     const nlohmann::json::parse_error& e) {
    return file + ":" + line_col(text, e.byte) + ": not valid JSON: " + e.what();
}

}  // namespace xensim
