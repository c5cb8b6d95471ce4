// KernelTimers (models/dom0/kernel_timers.h): Linux timer_list semantics (mod_timer / del_timer /
// expire_timers) kept per vCPU, and when the vCPU's one-shot timer (VCPUOP_set_singleshot_timer)
// must be programmed.
#include "models/dom0/kernel_timers.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace xensim {
namespace {

// Everything that fires on `vcpu` at `now` (one interrupt).
std::vector<KernelTimerId> fire(KernelTimers& k, unsigned vcpu, std::uint64_t now) {
    std::vector<KernelTimerId> out;
    k.begin_expiry(vcpu, now);
    while (auto t = k.pop_expired(vcpu)) out.push_back(*t);
    return out;
}

TEST(KernelTimers, ModTimerReturnsWhetherItWasPendingAndMovesTheTimer) {
    KernelTimers k(2);
    const KernelTimerId t = k.create();
    EXPECT_FALSE(k.pending(t));
    EXPECT_FALSE(k.mod_timer(t, 0, 100)) << "mod_timer of an inactive timer returns 0";
    EXPECT_TRUE(k.mod_timer(t, 1, 50)) << "mod_timer of a pending timer returns 1";
    EXPECT_EQ(k.expires(t), 50u);
    EXPECT_EQ(k.vcpu_of(t), 1u);
    EXPECT_EQ(k.pending_on(0), 0u) << "one timer, one list: re-arming moved it";
    EXPECT_EQ(k.pending_on(1), 1u);
    EXPECT_TRUE(k.del_timer(t));
    EXPECT_FALSE(k.del_timer(t)) << "del_timer of an inactive timer returns 0";
    EXPECT_FALSE(k.expires(t).has_value());
}

// One line of intent each: arms as (timer, deadline) on vCPU 0, then one interrupt at `now`.
struct ExpiryCase {
    const char* intent;
    std::vector<std::pair<unsigned, std::uint64_t>> arms;
    std::uint64_t now;
    std::vector<KernelTimerId> fired;
};

class KernelTimersExpiry : public ::testing::TestWithParam<ExpiryCase> {};

TEST_P(KernelTimersExpiry, FiresDueTimersByDeadlineThenArmOrder) {
    const ExpiryCase& c = GetParam();
    KernelTimers k(1);
    for (int i = 0; i < 4; ++i) k.create();
    for (auto [t, at] : c.arms) k.mod_timer(t, 0, at);
    EXPECT_EQ(fire(k, 0, c.now), c.fired) << c.intent;
    for (KernelTimerId t : c.fired) EXPECT_FALSE(k.pending(t)) << c.intent;
}

INSTANTIATE_TEST_SUITE_P(
    Table, KernelTimersExpiry,
    ::testing::Values(
        ExpiryCase{"nothing due before its deadline", {{0, 100}}, 99, {}},
        ExpiryCase{"due at its deadline exactly", {{0, 100}}, 100, {0}},
        ExpiryCase{"earlier deadline first whatever the arm order", {{0, 200}, {1, 100}}, 300, {1, 0}},
        ExpiryCase{"equal deadlines in arm order", {{2, 100}, {0, 100}, {1, 100}}, 100, {2, 0, 1}},
        ExpiryCase{"re-arming moves a timer behind its equals", {{0, 100}, {1, 100}, {0, 100}}, 100, {1, 0}},
        ExpiryCase{"only the due ones", {{0, 100}, {1, 101}, {2, 50}}, 100, {2, 0}}));

TEST(KernelTimers, ProgramsOnlyAnEarlierDeadlineAndNothingOnDelete) {
    KernelTimers k(1);
    const KernelTimerId a = k.create(), b = k.create();
    EXPECT_FALSE(k.program(0).has_value()) << "nothing pending, nothing to program";
    k.mod_timer(a, 0, 1000);
    EXPECT_TRUE(k.needs_program(0));
    EXPECT_EQ(k.program(0), 1000u);
    EXPECT_FALSE(k.program(0).has_value()) << "already programmed at the head";
    k.mod_timer(b, 0, 2000);
    EXPECT_FALSE(k.program(0).has_value()) << "a later timer leaves the clockevent alone";
    k.mod_timer(b, 0, 500);
    EXPECT_EQ(k.program(0), 500u) << "an earlier one reprograms it";
    k.del_timer(b);
    EXPECT_FALSE(k.program(0).has_value()) << "del_timer does not reprogram";
    EXPECT_EQ(k.programmed(0), 500u);
    // The spurious interrupt at 500: nothing fires; then the next deadline is programmed.
    EXPECT_TRUE(fire(k, 0, 500).empty());
    EXPECT_FALSE(k.programmed(0).has_value()) << "the interrupt consumed the programmed deadline";
    EXPECT_EQ(k.program(0), 1000u);
    EXPECT_EQ(fire(k, 0, 1000), std::vector<KernelTimerId>{a});
    EXPECT_FALSE(k.program(0).has_value()) << "nothing left";
}

TEST(KernelTimers, ATimerReArmedDuringExpiryWaitsForTheNextInterrupt) {
    KernelTimers k(1);
    const KernelTimerId a = k.create(), b = k.create();
    k.mod_timer(a, 0, 100);
    k.mod_timer(b, 0, 100);
    k.begin_expiry(0, 100);
    EXPECT_EQ(k.pop_expired(0), a);
    k.mod_timer(a, 0, 90);  // a's function re-arms it into the past
    EXPECT_EQ(k.pop_expired(0), b);
    EXPECT_FALSE(k.pop_expired(0).has_value()) << "not again in this interrupt";
    EXPECT_EQ(k.program(0), 90u) << "programmed in the past: Xen fires it at once";
    EXPECT_EQ(fire(k, 0, 100), std::vector<KernelTimerId>{a});
}

TEST(KernelTimers, AFunctionMayDeleteATimerNotYetRun) {
    KernelTimers k(1);
    const KernelTimerId a = k.create(), b = k.create();
    k.mod_timer(a, 0, 10);
    k.mod_timer(b, 0, 20);
    k.begin_expiry(0, 30);
    EXPECT_EQ(k.pop_expired(0), a);
    EXPECT_TRUE(k.del_timer(b));
    EXPECT_FALSE(k.pop_expired(0).has_value());
}

TEST(KernelTimers, ListsArePerVcpu) {
    KernelTimers k(2);
    const KernelTimerId a = k.create(), b = k.create();
    k.mod_timer(a, 0, 100);
    k.mod_timer(b, 1, 50);
    EXPECT_EQ(k.program(0), 100u);
    EXPECT_EQ(k.program(1), 50u);
    EXPECT_TRUE(fire(k, 0, 60).empty()) << "vCPU 0's interrupt does not run vCPU 1's timer";
    EXPECT_EQ(fire(k, 1, 60), std::vector<KernelTimerId>{b});
    EXPECT_TRUE(k.pending(a));
}

TEST(KernelTimers, ShutdownCancelsAndReleasesTheId) {
    KernelTimers k(1);
    const KernelTimerId a = k.create(), b = k.create();
    k.mod_timer(a, 0, 100);
    k.shutdown(a);
    EXPECT_EQ(k.pending_on(0), 0u);
    EXPECT_EQ(k.create(), a) << "the lowest free id is reused";
    EXPECT_FALSE(k.pending(a)) << "a reused id starts inactive";
    (void)b;
}

TEST(KernelTimers, ForgetProgrammedAfterAFailedHypercall) {
    KernelTimers k(1);
    const KernelTimerId a = k.create();
    k.mod_timer(a, 0, 100);
    ASSERT_EQ(k.program(0), 100u);
    k.forget_programmed(0);
    EXPECT_EQ(k.program(0), 100u) << "asked again on the next chance";
}

}  // namespace
}  // namespace xensim
