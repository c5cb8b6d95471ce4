#include "sim/core/trace.h"

#include <algorithm>

#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace xensim {

std::uint32_t Tracer::parse_categories(const std::string& list) {
    std::uint32_t mask = 0;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        auto comma = list.find(',', pos);
        std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        bool found = item == "all";
        if (found) mask = ~0u;
        for (const auto& c : kTraceCategories)
            if (item == c.name) mask |= static_cast<std::uint32_t>(c.category), found = true;
        if (!found) {
            std::string known = "all";
            for (const auto& c : kTraceCategories) known += ", " + std::string(c.name);
            throw std::invalid_argument("unknown trace category \"" + item + "\" (known: " + known + ")");
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return mask;
}

void Tracer::emit(const TraceEventDef& def, const TraceTrack& track, std::uint64_t start_ps,
                  std::uint64_t dur_ps, std::vector<TraceValue> values) {
    if (!on(def.category)) return;
    if (values.size() != def.fields.size()) throw std::logic_error("trace event field count mismatch");
    for (std::size_t i = 0; i < values.size(); ++i)
        if (values[i].index() != static_cast<std::size_t>(def.fields[i].type))
            throw std::logic_error("trace event field type mismatch");
    sink_->write(def, track, start_ps, dur_ps, values);
}

namespace {

std::string category_name(TraceCategory c) {
    for (const auto& i : kTraceCategories)
        if (i.category == c) return std::string(i.name);
    return "?";
}

std::string value_text(const TraceValue& v) {
    if (auto* u = std::get_if<std::uint64_t>(&v)) return std::to_string(*u);
    if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    return std::string(std::get<std::string_view>(v));
}

std::string track_text(const TraceTrack& t) {
    return t.is_pcpu ? "pcpu" + std::to_string(t.index)
                     : "d" + std::to_string(t.domain) + "v" + std::to_string(t.index);
}

class TextSink : public TraceSink {
  public:
    explicit TextSink(const std::string& path) : out_(path) {
        if (!out_) throw std::runtime_error("cannot open trace file " + path);
    }
    void name_track(const TraceTrack& track, const std::string& process, const std::string& thread) override {
        out_ << "# track " << track_text(track) << " = " << process << "/" << thread << "\n";
    }
    // Events arrive when they end (a slice is written once its duration is known), so the lines
    // are kept and written in order of start time at the end (ties in arrival order): the file
    // reads as a timeline. The whole text is held in memory until then.
    void write(const TraceEventDef& def, const TraceTrack& track, std::uint64_t start_ps,
               std::uint64_t dur_ps, const std::vector<TraceValue>& values) override {
        char ts[32];
        std::snprintf(ts, sizeof ts, "%14.6f", static_cast<double>(start_ps) / 1e6);
        std::string line = std::string(ts) + " us " + track_text(track) + " " + category_name(def.category) +
                           "." + std::string(def.name);
        if (def.slice) line += " dur_ps=" + std::to_string(dur_ps);
        for (std::size_t i = 0; i < values.size(); ++i)
            line += " " + std::string(def.fields[i].name) + "=" + value_text(values[i]);
        lines_.push_back({start_ps, std::move(line)});
    }
    void finish() override {
        std::stable_sort(lines_.begin(), lines_.end(),
                         [](const Line& a, const Line& b) { return a.start_ps < b.start_ps; });
        for (const Line& l : lines_) out_ << l.text << "\n";
        lines_.clear();
        out_.flush();
    }
    ~TextSink() override { finish(); }

  private:
    struct Line {
        std::uint64_t start_ps;
        std::string text;
    };
    std::ofstream out_;
    std::vector<Line> lines_;
};

// Chrome trace-event format: pid 0 is "physical CPUs" (tid = pCPU), pid 1 + domid is a domain
// (tid = vCPU). Timestamps are microseconds with picosecond fractions.
class PerfettoSink : public TraceSink {
  public:
    explicit PerfettoSink(const std::string& path) : out_(path) {
        if (!out_) throw std::runtime_error("cannot open trace file " + path);
        out_ << "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    }
    void name_track(const TraceTrack& track, const std::string& process, const std::string& thread) override {
        auto [pid, tid] = ids(track);
        put({{"ph", "M"},
             {"name", "process_name"},
             {"pid", pid},
             {"tid", tid},
             {"args", {{"name", process}}}});
        put({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", thread}}}});
    }
    void write(const TraceEventDef& def, const TraceTrack& track, std::uint64_t start_ps,
               std::uint64_t dur_ps, const std::vector<TraceValue>& values) override {
        auto [pid, tid] = ids(track);
        nlohmann::json args = nlohmann::json::object();
        for (std::size_t i = 0; i < values.size(); ++i) {
            const auto& v = values[i];
            std::string key(def.fields[i].name);
            if (auto* u = std::get_if<std::uint64_t>(&v))
                args[key] = *u;
            else if (auto* s = std::get_if<std::int64_t>(&v))
                args[key] = *s;
            else
                args[key] = std::string(std::get<std::string_view>(v));
        }
        nlohmann::json e = {{"name", def.name},     {"cat", category_name(def.category)},
                            {"pid", pid},           {"tid", tid},
                            {"ts", start_ps / 1e6}, {"args", args}};
        if (def.slice) {
            e["ph"] = "X";
            e["dur"] = dur_ps / 1e6;
        } else {
            e["ph"] = "i";
            e["s"] = "t";
        }
        put(e);
    }
    void finish() override {
        if (done_) return;
        done_ = true;
        out_ << "\n]}\n";
        out_.flush();
    }
    ~PerfettoSink() override { finish(); }

  private:
    static std::pair<unsigned, unsigned> ids(const TraceTrack& t) {
        return t.is_pcpu ? std::pair{0u, t.index} : std::pair{1u + t.domain, t.index};
    }
    void put(const nlohmann::json& e) {
        out_ << (first_ ? "" : ",\n") << e.dump();
        first_ = false;
    }
    std::ofstream out_;
    bool first_ = true, done_ = false;
};

}  // namespace

std::unique_ptr<TraceSink> make_text_trace_sink(const std::string& path) {
    return std::make_unique<TextSink>(path);
}
std::unique_ptr<TraceSink> make_perfetto_trace_sink(const std::string& path) {
    return std::make_unique<PerfettoSink>(path);
}

}  // namespace xensim
