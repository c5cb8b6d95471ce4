#include "sim/core/stats.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace xensim {

Counter::Counter(StatsGroup& group, std::string name, std::string unit, std::string description)
    : name_(std::move(name)), unit_(std::move(unit)), description_(std::move(description)) {
    group.add_name(name_);
    group.counters_.push_back(this);
}

CounterFamily::CounterFamily(StatsGroup& group, std::string name, std::string unit, std::string description)
    : name_(std::move(name)), unit_(std::move(unit)), description_(std::move(description)) {
    group.add_name(name_);
    group.families_.push_back(this);
}

std::uint64_t& CounterFamily::at(const std::string& label) {
    auto it = index_.find(label);
    if (it != index_.end()) return *it->second;
    return add(label);
}

std::uint64_t& CounterFamily::add(std::string label) {
    if (index_.size() >= kMaxLabels) {
        auto it = index_.find(kOverflowLabel);
        if (it != index_.end()) return *it->second;
        label = kOverflowLabel;
    }
    values_.push_back(0);
    index_.emplace(std::move(label), &values_.back());
    return values_.back();
}

std::uint64_t& CounterFamily::at(const char* label) {
    for (const Recent& r : recent_)
        if (r.ptr == label && std::strcmp(r.label->c_str(), label) == 0) return *r.value;
    std::string key(label);
    auto it = index_.find(key);
    if (it == index_.end()) return add(std::move(key));  // not remembered: new labels are rare
    recent_[recent_next_++ % kRecent] = Recent{label, &it->first, it->second};
    return *it->second;
}

std::uint64_t CounterFamily::value(const std::string& label) const {
    auto it = index_.find(label);
    return it == index_.end() ? 0 : *it->second;
}

std::uint64_t CounterFamily::total() const {
    std::uint64_t t = 0;
    for (auto v : values_) t += v;
    return t;
}

Distribution::Distribution(StatsGroup& group, std::string name, std::string unit, std::string description)
    : name_(std::move(name)), unit_(std::move(unit)), description_(std::move(description)) {
    group.add_name(name_);
    group.distributions_.push_back(this);
}

double Distribution::mean() const {
    if (count_ == 0) return 0.0;
    // The sum is exact; as a long double it is the value the sum of every sample in long double
    // arithmetic gave when the samples were kept (exact below 2^64).
    return static_cast<double>(static_cast<long double>(sum_) / count_);
}

std::uint64_t Distribution::bucket_value(unsigned idx) {
    if (idx < 2 * kPlatVal) return idx;
    const unsigned error_bits = (idx >> kPlatBits) - 1;
    const std::uint64_t base = std::uint64_t{1} << (error_bits + kPlatBits);
    const std::uint64_t width = std::uint64_t{1} << error_bits;
    return base + (idx % kPlatVal) * width + width / 2;
}

std::uint64_t Distribution::percentile(double p) const {
    if (count_ == 0) return 0;
    if (p <= 0) return min_;
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    auto rank = static_cast<std::uint64_t>((p / 100.0) * count_ + 0.999999999);
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    if (rank == count_) return max_;
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) return std::clamp(bucket_value(i), min_, max_);
    }
    return max_;
}

StatsGroup::StatsGroup(std::string name, StatsGroup* parent) : name_(std::move(name)), parent_(parent) {
    if (parent_) {
        parent_->add_name(name_);
        parent_->children_.push_back(this);
    }
}

StatsGroup::~StatsGroup() {
    // A child that outlives its group (a driver kept past its domain's teardown) is left orphaned,
    // not pointing at freed memory.
    for (StatsGroup* child : children_) child->parent_ = nullptr;
    if (parent_) {
        auto& c = parent_->children_;
        c.erase(std::remove(c.begin(), c.end(), this), c.end());
    }
}

std::string StatsGroup::path() const {
    if (!parent_ || parent_->path().empty()) return name_;
    return parent_->path() + "." + name_;
}

void StatsGroup::add_name(const std::string& n) {
    // A stat name declared twice in one group is a modelling bug, not user error.
    if (std::find(names_.begin(), names_.end(), n) != names_.end())
        throw std::logic_error("stat '" + n + "' declared twice in group '" + path() + "'");
    names_.push_back(n);
}

nlohmann::json StatsGroup::dump(bool describe) const {
    nlohmann::json j = nlohmann::json::object();
    for (const Counter* c : counters_) {
        if (describe)
            j[c->name()] = {{"value", c->value()}, {"unit", c->unit()}, {"description", c->description()}};
        else
            j[c->name()] = c->value();
    }
    for (const CounterFamily* f : families_) {
        nlohmann::json v = nlohmann::json::object();
        for (const auto& [label, ptr] : f->labels()) v[label] = *ptr;
        if (describe)
            j[f->name()] = {{"values", v}, {"unit", f->unit()}, {"description", f->description()}};
        else
            j[f->name()] = v;
    }
    for (const Distribution* d : distributions_) {
        nlohmann::json v = {{"count", d->count()},      {"mean", d->mean()},
                            {"min", d->min()},          {"p50", d->percentile(50)},
                            {"p99", d->percentile(99)}, {"p99_9", d->percentile(99.9)},
                            {"max", d->max()}};
        if (describe) {
            v["unit"] = d->unit();
            v["description"] = d->description();
        }
        j[d->name()] = v;
    }
    for (const StatsGroup* g : children_) j[g->name()] = g->dump(describe);
    return j;
}

const StatsGroup* StatsGroup::find_group(const std::string& dotted) const {
    if (dotted.empty()) return this;
    auto dot = dotted.find('.');
    std::string head = dotted.substr(0, dot);
    for (const StatsGroup* g : children_)
        if (g->name() == head) return dot == std::string::npos ? g : g->find_group(dotted.substr(dot + 1));
    return nullptr;
}

template <class T>
const T* StatsGroup::find_leaf(const std::string& dotted,
                               const std::vector<const T*>& (*list)(const StatsGroup&)) const {
    auto dot = dotted.rfind('.');
    const StatsGroup* g = dot == std::string::npos ? this : find_group(dotted.substr(0, dot));
    if (!g) return nullptr;
    std::string leaf = dot == std::string::npos ? dotted : dotted.substr(dot + 1);
    for (const T* item : list(*g))
        if (item->name() == leaf) return item;
    return nullptr;
}

const Counter* StatsGroup::find_counter(const std::string& dotted) const {
    return find_leaf<Counter>(
        dotted, [](const StatsGroup& g) -> const std::vector<const Counter*>& { return g.counters_; });
}

std::uint64_t StatsGroup::sum_counters(const std::string& name) const {
    std::uint64_t n = 0;
    for (const Counter* c : counters_)
        if (c->name() == name) n += c->value();
    for (const CounterFamily* f : families_)
        if (f->name() == name) n += f->total();
    for (const StatsGroup* g : children_) n += g->sum_counters(name);
    return n;
}

std::uint64_t StatsGroup::max_counters(const std::string& name) const {
    std::uint64_t n = 0;
    for (const Counter* c : counters_)
        if (c->name() == name) n = std::max(n, c->value());
    for (const StatsGroup* g : children_) n = std::max(n, g->max_counters(name));
    return n;
}

const CounterFamily* StatsGroup::find_family(const std::string& dotted) const {
    return find_leaf<CounterFamily>(
        dotted, [](const StatsGroup& g) -> const std::vector<const CounterFamily*>& { return g.families_; });
}

}  // namespace xensim
