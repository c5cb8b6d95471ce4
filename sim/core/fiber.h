// A stack of its own for a vCPU's code, switched to and from without the SystemC kernel.
//
// Why (docs/temporal-decoupling.md, step 2): a vCPU's guest and hypervisor code used to run on its
// SystemC thread's stack, so only that thread could ever continue it, and every hand-over between
// two vCPUs (an ioreq to dom0's device model and its answer) cost SystemC activations. On a fiber,
// the code can be continued by any SystemC thread that holds the right to run it at that simulated
// time: the vCPU's own (its carrier), or another carrier that finds the vCPU's next step to be the
// earliest activity anywhere.
//
// The switch is Boost.Context's fcontext (make_fcontext / jump_fcontext, the primitive under
// boost::context::fiber), used directly because fiber's destructor unwinds an unfinished stack by
// resuming it; a vCPU's code never finishes, and unwinding guest code at teardown would run it
// against models already destroyed. An unfinished Fiber is released without running anything; its
// stack, whose frames may hold the only pointers to what its code allocated, is kept until the
// process exits (reachable, as SystemC keeps its coroutine stacks), not freed. Under AddressSanitizer every
// switch is announced
// (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber), so ASan knows which stack is
// live.
//
// Rules: resume() runs the body until it calls suspend() (or returns); suspend() may be called only
// from inside the body; an exception that escapes the body ends the fiber and is rethrown by the
// resume() that ran it. Whoever resumes next (any thread of the same OS thread) gets control back
// at the next suspend().
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>

namespace xensim {

class Fiber {
  public:
    Fiber(std::function<void()> body, std::size_t stack_bytes);
    ~Fiber();
    Fiber(const Fiber&) = delete;
    Fiber& operator=(const Fiber&) = delete;

    void resume();   // from outside: run until the body suspends or ends
    void suspend();  // from inside: back to the resume() that ran it
    bool finished() const { return finished_; }

  private:
    void switched_in();  // AddressSanitizer's bookkeeping on arrival

    std::function<void()> body_;
    std::unique_ptr<char[]> stack_;
    std::size_t stack_bytes_;
    void* context_ = nullptr;  // the suspended fiber (fcontext_t)
    void* caller_ = nullptr;   // the context that resumed it, while it runs
    bool started_ = false, finished_ = false;
    std::exception_ptr error_;
    // AddressSanitizer's view of the stacks being switched between (unused without ASan).
    void* asan_fake_stack_ = nullptr;
    const void* caller_stack_bottom_ = nullptr;
    std::size_t caller_stack_size_ = 0;
};

}  // namespace xensim
