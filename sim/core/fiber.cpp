#include "sim/core/fiber.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/context/detail/fcontext.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define XENSIM_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XENSIM_FIBER_ASAN 1
#endif
#endif
#ifdef XENSIM_FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace xensim {

namespace ctx = boost::context::detail;

namespace {
// Announce a switch to the stack [bottom, bottom + size) (AddressSanitizer's fiber interface).
void asan_start(void** fake_stack_save, const void* bottom, std::size_t size) {
#ifdef XENSIM_FIBER_ASAN
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
    (void)fake_stack_save, (void)bottom, (void)size;
#endif
}
void asan_finish(void* fake_stack_save, const void** old_bottom, std::size_t* old_size) {
#ifdef XENSIM_FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#else
    (void)fake_stack_save, (void)old_bottom, (void)old_size;
#endif
}
}  // namespace

Fiber::Fiber(std::function<void()> body, std::size_t stack_bytes)
    : body_(std::move(body)), stack_(new char[stack_bytes]), stack_bytes_(stack_bytes) {
    // fcontext grows down from the top of the stack it is given.
    context_ = ctx::make_fcontext(stack_.get() + stack_bytes_, stack_bytes_, [](ctx::transfer_t t) {
        Fiber* f = static_cast<Fiber*>(t.data);
        f->caller_ = t.fctx;
        f->switched_in();
        try {
            f->body_();
        } catch (...) {
            f->error_ = std::current_exception();
        }
        f->finished_ = true;
        asan_start(nullptr, f->caller_stack_bottom_, f->caller_stack_size_);  // this stack is done
        ctx::jump_fcontext(f->caller_, nullptr);
    });
}

Fiber::~Fiber() {
    if (!started_ || finished_) return;                            // nothing lives on the stack
    static auto* kept = new std::vector<std::unique_ptr<char[]>>;  // never destroyed (see fiber.h)
    kept->push_back(std::move(stack_));
}

void Fiber::switched_in() { asan_finish(asan_fake_stack_, &caller_stack_bottom_, &caller_stack_size_); }

void Fiber::resume() {
    if (finished_) throw std::logic_error("a finished fiber was resumed");
    started_ = true;
    void* fake_stack = nullptr;
    asan_start(&fake_stack, stack_.get(), stack_bytes_);
    const ctx::transfer_t t = ctx::jump_fcontext(context_, this);
    asan_finish(fake_stack, nullptr, nullptr);
    context_ = t.fctx;  // where the body suspended (or ended)
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void Fiber::suspend() {
    asan_start(&asan_fake_stack_, caller_stack_bottom_, caller_stack_size_);
    const ctx::transfer_t t = ctx::jump_fcontext(caller_, nullptr);
    caller_ = t.fctx;  // whoever resumed it this time
    switched_in();
}

}  // namespace xensim
