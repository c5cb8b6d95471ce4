#include "models/dom0/kernel_timers.h"

#include <cstdio>
#include <cstdlib>

namespace xensim {

namespace {

[[noreturn]] void invariant_broken(const char* what) {
    std::fprintf(stderr, "xensim: kernel timers: invariant broken: %s\n", what);
    std::abort();
}

}  // namespace

KernelTimers::KernelTimers(unsigned vcpus) : lists_(vcpus ? vcpus : 1) {}

KernelTimers::Timer& KernelTimers::at(KernelTimerId t) {
    if (t >= timers_.size() || !timers_[t].in_use) invariant_broken("unknown timer id");
    return timers_[t];
}

const KernelTimers::Timer& KernelTimers::at(KernelTimerId t) const {
    if (t >= timers_.size() || !timers_[t].in_use) invariant_broken("unknown timer id");
    return timers_[t];
}

KernelTimers::List& KernelTimers::list(unsigned vcpu) {
    if (vcpu >= lists_.size()) invariant_broken("timer on a vCPU the kernel does not have");
    return lists_[vcpu];
}

const KernelTimers::List& KernelTimers::list(unsigned vcpu) const {
    if (vcpu >= lists_.size()) invariant_broken("timer on a vCPU the kernel does not have");
    return lists_[vcpu];
}

KernelTimerId KernelTimers::create() {
    for (KernelTimerId t = 0; t < timers_.size(); ++t)
        if (!timers_[t].in_use) {
            timers_[t] = Timer{};
            timers_[t].in_use = true;
            return t;
        }
    timers_.push_back(Timer{});
    timers_.back().in_use = true;
    return static_cast<KernelTimerId>(timers_.size() - 1);
}

void KernelTimers::shutdown(KernelTimerId t) {
    del_timer(t);
    at(t).in_use = false;
}

bool KernelTimers::mod_timer(KernelTimerId t, unsigned vcpu, std::uint64_t expires_ns) {
    List& to = list(vcpu);  // checked before anything changes
    const bool was = del_timer(t);
    Timer& tm = at(t);
    tm.pending = true;
    tm.vcpu = vcpu;
    tm.expires = expires_ns;
    tm.seq = next_seq_++;
    to.pending.insert({tm.expires, tm.seq, t});
    return was;
}

bool KernelTimers::del_timer(KernelTimerId t) {
    Timer& tm = at(t);
    if (!tm.pending) return false;
    list(tm.vcpu).pending.erase({tm.expires, tm.seq, t});
    tm.pending = false;
    return true;
}

bool KernelTimers::pending(KernelTimerId t) const { return at(t).pending; }

std::optional<std::uint64_t> KernelTimers::expires(KernelTimerId t) const {
    const Timer& tm = at(t);
    if (!tm.pending) return std::nullopt;
    return tm.expires;
}

std::optional<unsigned> KernelTimers::vcpu_of(KernelTimerId t) const {
    const Timer& tm = at(t);
    if (!tm.pending) return std::nullopt;
    return tm.vcpu;
}

std::optional<std::uint64_t> KernelTimers::next_deadline(unsigned vcpu) const {
    const List& l = list(vcpu);
    if (l.pending.empty()) return std::nullopt;
    return std::get<0>(*l.pending.begin());
}

std::size_t KernelTimers::pending_on(unsigned vcpu) const { return list(vcpu).pending.size(); }

bool KernelTimers::needs_program(unsigned vcpu) const {
    const auto head = next_deadline(vcpu);
    const List& l = list(vcpu);
    return head && (!l.programmed || *head < *l.programmed);
}

std::optional<std::uint64_t> KernelTimers::program(unsigned vcpu) {
    if (!needs_program(vcpu)) return std::nullopt;
    List& l = list(vcpu);
    l.programmed = next_deadline(vcpu);
    return l.programmed;
}

std::optional<std::uint64_t> KernelTimers::programmed(unsigned vcpu) const { return list(vcpu).programmed; }

void KernelTimers::forget_programmed(unsigned vcpu) { list(vcpu).programmed.reset(); }

void KernelTimers::begin_expiry(unsigned vcpu, std::uint64_t now_ns) {
    List& l = list(vcpu);
    if (l.programmed && *l.programmed <= now_ns) l.programmed.reset();
    l.expiry_now = now_ns;
    l.expiry_seq = next_seq_;  // timers armed from here on wait for the next interrupt
}

std::optional<KernelTimerId> KernelTimers::pop_expired(unsigned vcpu) {
    List& l = list(vcpu);
    for (auto it = l.pending.begin(); it != l.pending.end() && std::get<0>(*it) <= l.expiry_now; ++it) {
        if (std::get<1>(*it) >= l.expiry_seq) continue;
        const KernelTimerId t = std::get<2>(*it);
        l.pending.erase(it);
        timers_[t].pending = false;
        return t;
    }
    return std::nullopt;
}

}  // namespace xensim
