// Statistics: counters declared once by the model that owns them, rendered elsewhere.
//
// Every counter has a name, a unit and a one-line description, and lives in a StatsGroup named
// after the model instance (the same dotted name as its sc_object, e.g. "dom1.vcpu0"). Models
// declare counters as members, increment them on the hot path (a plain integer add), and the run
// dumps the whole tree into report.json. A CounterFamily is a set of counters of one meaning keyed
// by a label (exits by Intel basic exit reason, hypercalls by op); labels appear in first-use order
// in memory but are dumped sorted, so reports are deterministic.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace xensim {

class StatsGroup;

class Counter {
  public:
    Counter(StatsGroup& group, std::string name, std::string unit, std::string description);
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;

    void inc(std::uint64_t n = 1) { value_ += n; }
    // A high-water mark: the value becomes v when v is larger.
    void raise_to(std::uint64_t v) {
        if (v > value_) value_ = v;
    }
    std::uint64_t value() const { return value_; }
    const std::string& name() const { return name_; }
    const std::string& unit() const { return unit_; }
    const std::string& description() const { return description_; }

  private:
    std::string name_, unit_, description_;
    std::uint64_t value_ = 0;
};

// Counters of one meaning keyed by a label. References returned by at() stay valid.
// A family holds at most kMaxLabels labels: a label first seen beyond that is counted under
// kOverflowLabel, so no input can grow a family (or the report) without bound. Models keep their
// own label sets bounded (unknown values share one label); this is the backstop.
class CounterFamily {
  public:
    static constexpr std::size_t kMaxLabels = 4096;
    static constexpr const char* kOverflowLabel = "(other labels)";
    CounterFamily(StatsGroup& group, std::string name, std::string unit, std::string description);
    CounterFamily(const CounterFamily&) = delete;
    CounterFamily& operator=(const CounterFamily&) = delete;

    std::uint64_t& at(const std::string& label);
    // The same for a C string; remembers the last few label pointers, so a hot caller passing a
    // string literal (or any stable buffer) skips building a std::string and the map lookup.
    std::uint64_t& at(const char* label);
    // A hot caller's handle on a fixed label: `slot` (the caller's, null at first) keeps the
    // counter after the first call, so later calls are a null test and an add, and the label still
    // appears in the family only once counted.
    std::uint64_t& at(std::uint64_t*& slot, const char* label) {
        if (!slot) slot = &at(std::string(label));
        return *slot;
    }
    void inc(const std::string& label, std::uint64_t n = 1) { at(label) += n; }
    void inc(const char* label, std::uint64_t n = 1) { at(label) += n; }
    std::uint64_t value(const std::string& label) const;
    std::uint64_t total() const;
    const std::map<std::string, std::uint64_t*>& labels() const { return index_; }
    const std::string& name() const { return name_; }
    const std::string& unit() const { return unit_; }
    const std::string& description() const { return description_; }

  private:
    std::string name_, unit_, description_;
    std::deque<std::uint64_t> values_;
    std::map<std::string, std::uint64_t*> index_;
    std::uint64_t& add(std::string label);  // a new label, or the overflow one past kMaxLabels
    struct Recent {
        const char* ptr = nullptr;           // a label pointer seen before
        const std::string* label = nullptr;  // its map key, to check the bytes are still the same
        std::uint64_t* value = nullptr;
    };
    static constexpr unsigned kRecent = 32;  // enough for a device's register names per request
    Recent recent_[kRecent];
    unsigned recent_next_ = 0;  // round-robin replacement
};

// Samples of a quantity (latency, occupancy) in bounded memory, as fio keeps completion latencies
// (fio's stat.h: FIO_IO_U_PLAT_BITS 6, plat_val_to_idx / plat_idx_to_val). count, sum (so mean),
// min and max are exact. Order statistics come from log-linear buckets: values below 128 each have
// their own bucket (exact); above, a value v with its highest set bit at b (b >= 7) falls into one
// of 64 equal buckets between 2^b and 2^(b+1), each 2^(b-6) wide. A percentile is the midpoint of
// the bucket holding the nearest-rank sample, clamped to [min, max]: within half a bucket of the
// exact order statistic, i.e. a relative error below 1/128 (0.8 %) of it (docs/report-schema.md).
// The bucket array grows to the largest bucket seen: at most 3,776 counters (30 KiB), about 800
// for latencies in the hundreds of microseconds measured in ns.
class Distribution {
  public:
    Distribution(StatsGroup& group, std::string name, std::string unit, std::string description);
    Distribution(const Distribution&) = delete;
    Distribution& operator=(const Distribution&) = delete;

    static constexpr unsigned kPlatBits = 6;               // FIO_IO_U_PLAT_BITS
    static constexpr unsigned kPlatVal = 1u << kPlatBits;  // FIO_IO_U_PLAT_VAL
    // plat_val_to_idx and plat_idx_to_val (the bucket's midpoint; exact below 2 * kPlatVal).
    static unsigned bucket_of(std::uint64_t v) {
        if (v < 2 * kPlatVal) return static_cast<unsigned>(v);
        const unsigned msb = 63 - static_cast<unsigned>(__builtin_clzll(v));
        const unsigned error_bits = msb - kPlatBits;
        return ((error_bits + 1) << kPlatBits) + static_cast<unsigned>((v >> error_bits) & (kPlatVal - 1));
    }
    static std::uint64_t bucket_value(unsigned idx);

    void sample(std::uint64_t v) {
        if (count_ == 0 || v < min_) min_ = v;
        if (v > max_) max_ = v;
        ++count_;
        sum_ += v;
        const unsigned b = bucket_of(v);
        if (b >= buckets_.size()) buckets_.resize(b + 1, 0);
        ++buckets_[b];
        if (observer_) observer_(v);
    }
    // A consumer that needs each sample as it is taken (netperf's per-transaction operations)
    // registers here instead of reading them back: the samples themselves are not kept.
    void observe(std::function<void(std::uint64_t)> f) { observer_ = std::move(f); }
    std::uint64_t count() const { return count_; }
    double mean() const;
    // The nearest-rank percentile (p in [0, 100]) to the buckets' precision; 0 when there are no
    // samples. percentile(0) is min() and percentile(100) is max(), both exact.
    std::uint64_t percentile(double p) const;
    std::uint64_t min() const { return count_ ? min_ : 0; }
    std::uint64_t max() const { return max_; }
    const std::string& name() const { return name_; }
    const std::string& unit() const { return unit_; }
    const std::string& description() const { return description_; }

  private:
    std::string name_, unit_, description_;
    std::uint64_t count_ = 0, min_ = 0, max_ = 0;
    __extension__ typedef unsigned __int128 Sum;  // a sum of 2^64 samples of 2^64 cannot overflow
    Sum sum_ = 0;
    std::vector<std::uint64_t> buckets_;
    std::function<void(std::uint64_t)> observer_;
};

class StatsGroup {
  public:
    // A root group has an empty name; a child's path is "parent.name".
    explicit StatsGroup(std::string name, StatsGroup* parent = nullptr);
    ~StatsGroup();
    StatsGroup(const StatsGroup&) = delete;
    StatsGroup& operator=(const StatsGroup&) = delete;

    const std::string& name() const { return name_; }
    std::string path() const;

    // {"counter": {"value": n, "unit": u}, ..., "child": {...}} — values only, or with units and
    // descriptions (the catalog) when describe is true.
    nlohmann::json dump(bool describe = false) const;
    // Finds a counter by dotted path below this group ("vcpu0.exits"), for tests and reports.
    const Counter* find_counter(const std::string& dotted) const;
    const CounterFamily* find_family(const std::string& dotted) const;
    const StatsGroup* find_group(const std::string& dotted) const;
    // The sum of every counter (or counter family's total) called `name` in this group and all
    // groups below it (a driver's figure over its queues).
    std::uint64_t sum_counters(const std::string& name) const;
    // The largest counter called `name` in this group and below (a high-water mark over queues).
    std::uint64_t max_counters(const std::string& name) const;

  private:
    friend class Counter;
    friend class CounterFamily;
    friend class Distribution;
    void add_name(const std::string& n);
    template <class T>
    const T* find_leaf(const std::string& dotted,
                       const std::vector<const T*>& (*list)(const StatsGroup&)) const;

    std::string name_;
    StatsGroup* parent_;
    std::vector<StatsGroup*> children_;
    std::vector<const Counter*> counters_;
    std::vector<const CounterFamily*> families_;
    std::vector<const Distribution*> distributions_;
    std::vector<std::string> names_;
};

}  // namespace xensim
