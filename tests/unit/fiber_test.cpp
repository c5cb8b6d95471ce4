// Fiber (sim/core/fiber.h): a stack of its own, resumed and suspended without SystemC. What the
// vCPU carriers rely on: the body runs only between resume() and suspend(); whoever resumes gets
// control back at the next suspend (a different caller each time is fine); locals on the fiber's
// stack survive; an exception leaving the body reaches the resume() that ran it; a fiber left
// unfinished is released without running its body again.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "sim/core/fiber.h"

namespace xensim {
namespace {

constexpr std::size_t kStack = 64 * 1024;

TEST(Fiber, RunsTheBodyOnlyBetweenResumeAndSuspend) {
    std::vector<int> log;
    Fiber* self = nullptr;
    Fiber f(
        [&] {
            int local = 10;  // lives on the fiber's stack across suspensions
            for (int i = 0; i < 3; ++i) {
                log.push_back(local + i);
                self->suspend();
            }
        },
        kStack);
    self = &f;
    EXPECT_TRUE(log.empty());  // nothing runs before the first resume
    f.resume();
    EXPECT_EQ(log, (std::vector<int>{10}));
    f.resume();
    f.resume();
    EXPECT_EQ(log, (std::vector<int>{10, 11, 12}));
    EXPECT_FALSE(f.finished());
    f.resume();  // the body returns
    EXPECT_TRUE(f.finished());
    EXPECT_THROW(f.resume(), std::logic_error);
}

TEST(Fiber, AnotherFiberMayResumeIt) {
    // As a borrowing carrier does: fiber B resumes fiber A; A's suspend returns to B, not to the
    // test, and B's suspend then returns to the test.
    std::string trace;
    Fiber* a_ptr = nullptr;
    Fiber* b_ptr = nullptr;
    Fiber a(
        [&] {
            for (;;) {
                trace += "a";
                a_ptr->suspend();
            }
        },
        kStack);
    Fiber b(
        [&] {
            trace += "b";
            a_ptr->resume();
            trace += "B";
            b_ptr->suspend();
        },
        kStack);
    a_ptr = &a;
    b_ptr = &b;
    a.resume();  // from the test
    b.resume();  // b resumes a
    a.resume();  // and the test again
    EXPECT_EQ(trace, "abaBa");
}

TEST(Fiber, AnExceptionReachesTheResumeThatRanIt) {
    Fiber* self = nullptr;
    Fiber f(
        [&] {
            self->suspend();
            throw std::runtime_error("from the fiber");
        },
        kStack);
    self = &f;
    f.resume();
    try {
        f.resume();
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "from the fiber");
    }
    EXPECT_TRUE(f.finished());
}

TEST(Fiber, AnUnfinishedFiberIsReleasedWithoutRunning) {
    int runs = 0;
    {
        Fiber* self = nullptr;
        Fiber f(
            [&] {
                for (;;) {
                    ++runs;
                    self->suspend();
                }
            },
            kStack);
        self = &f;
        f.resume();
    }
    EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace xensim
