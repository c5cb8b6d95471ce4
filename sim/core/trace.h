// Trace: a catalog of events, enabled per category at run time, written by a sink the run chooses.
//
// Each event is declared once in the catalog (trace_events.h) with its category, its kind (an
// instant or a slice with a duration) and its typed fields, as QEMU's trace-events files do.
// Models call Tracer::emit only after Tracer::on(category) — one bit test — so tracing costs
// nothing when off. A track says where the event belongs: a physical CPU or one vCPU of one
// domain; the Perfetto sink draws one track per pCPU and per vCPU, exits and hypercalls as slices.
//
// Sinks: text (one line per event, for people and diffs) and Chrome/Perfetto trace-event JSON
// (load in ui.perfetto.dev or chrome://tracing). Events are written in emission order, which is
// deterministic.
#pragma once

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace xensim {

enum class TraceCategory : std::uint32_t {
    sched = 1u << 0,      // scheduler decisions and context switches
    vmexit = 1u << 1,     // VM exits by reason and cause
    hypercall = 1u << 2,  // hypercalls by op
    evtchn = 1u << 3,     // event-channel sends and upcalls
    gnttab = 1u << 4,     // grant map / unmap / copy
    ioreq = 1u << 5,      // emulated accesses forwarded to a device model (synchronous or buffered)
    blkif = 1u << 6,      // PV block requests through blkfront, the shared ring and blkback
};

struct TraceCategoryInfo {
    TraceCategory category;
    std::string_view name;
};
inline constexpr TraceCategoryInfo kTraceCategories[] = {
    {TraceCategory::sched, "sched"},         {TraceCategory::vmexit, "vmexit"},
    {TraceCategory::hypercall, "hypercall"}, {TraceCategory::evtchn, "evtchn"},
    {TraceCategory::gnttab, "gnttab"},       {TraceCategory::ioreq, "ioreq"},
    {TraceCategory::blkif, "blkif"},
};

enum class TraceFieldType { u64, i64, str };

struct TraceFieldDef {
    std::string_view name;
    TraceFieldType type;
};

struct TraceEventDef {
    std::string_view name;
    TraceCategory category;
    bool slice;  // true: has a duration (drawn as a slice); false: an instant
    std::vector<TraceFieldDef> fields;
};

using TraceValue = std::variant<std::uint64_t, std::int64_t, std::string_view>;

// Where an event is drawn: a pCPU, or vCPU `vcpu` of domain `domain`.
struct TraceTrack {
    static TraceTrack pcpu(unsigned id) { return {true, 0, id}; }
    static TraceTrack vcpu(unsigned domain, unsigned vcpu) { return {false, domain, vcpu}; }
    bool is_pcpu;
    unsigned domain;
    unsigned index;
};

class TraceSink {
  public:
    virtual ~TraceSink() = default;
    virtual void name_track(const TraceTrack& track, const std::string& process,
                            const std::string& thread) = 0;
    virtual void write(const TraceEventDef& def, const TraceTrack& track, std::uint64_t start_ps,
                       std::uint64_t dur_ps, const std::vector<TraceValue>& values) = 0;
    virtual void finish() = 0;
};

std::unique_ptr<TraceSink> make_text_trace_sink(const std::string& path);
std::unique_ptr<TraceSink> make_perfetto_trace_sink(const std::string& path);

class Tracer {
  public:
    // Parses "sched,vmexit" or "all"; throws std::invalid_argument naming the unknown category.
    static std::uint32_t parse_categories(const std::string& list);

    void enable(std::uint32_t mask, std::unique_ptr<TraceSink> sink) {
        mask_ = sink ? mask : 0;
        sink_ = std::move(sink);
    }
    bool on(TraceCategory c) const { return mask_ & static_cast<std::uint32_t>(c); }
    void name_track(const TraceTrack& track, const std::string& process, const std::string& thread) {
        if (sink_) sink_->name_track(track, process, thread);
    }
    // values must match def.fields in number and type (checked; a mismatch is a model bug).
    void emit(const TraceEventDef& def, const TraceTrack& track, std::uint64_t start_ps, std::uint64_t dur_ps,
              std::vector<TraceValue> values);
    void finish() {
        if (sink_) sink_->finish();
    }

  private:
    std::uint32_t mask_ = 0;
    std::unique_ptr<TraceSink> sink_;
};

}  // namespace xensim
