#include "frontends/cpu_burn.h"

namespace xensim {

void CpuBurn::run(GuestServices& s) {
    ++running_;
    stats_.start(s.now_ns());
    for (std::uint64_t i = 0; p_.slices == 0 || i < p_.slices; ++i) {
        std::uint64_t t0 = s.now_ns();
        s.compute(p_.slice_cycles);
        stats_.end_ns = s.now_ns();
        stats_.complete_op(stats_.end_ns - t0);
    }
    if (--running_ == 0) stats_.finish(s.now_ns());
}

}  // namespace xensim
