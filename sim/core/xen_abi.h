// The one include for the Xen public ABI.
//
// xensim uses the unmodified public headers shipped by Debian's libxen-dev (<xen/...>). io/ring.h
// asks its includer for the memory barriers xen_mb/xen_rmb/xen_wmb; this header supplies them and
// then includes the headers the models and frontends use. Everything else includes this file and
// never <xen/...> directly, so the barrier definitions are seen exactly once and before ring.h.
//
// The simulator is single-threaded (SystemC runs one process at a time), so a compiler barrier is
// a sufficient and faithful stand-in for the ordering the guest and backend rely on.
#pragma once

#include <cstdint>

// The newest guest interface these headers describe (as a current guest kernel builds against);
// without it, ring.h would fall back to pre-3.2.8 definitions of the barriers.
#ifndef __XEN_INTERFACE_VERSION__
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#endif

#ifndef xen_mb
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#include <xen/xen.h>
#include <xen/callback.h>
#include <xen/errno.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/ioreq.h>
#include <xen/hvm/dm_op.h>
#include <xen/hvm/params.h>
#include <xen/memory.h>
#include <xen/sched.h>
#include <xen/vcpu.h>
#include <xen/version.h>
#include <xen/io/ring.h>

namespace xensim {

// "EINVAL" for -XEN_EINVAL (or XEN_EINVAL): the errno names of xen/errno.h, taken from the header's
// own XEN_ERRNO list so they cannot drift; "E?" for a value the header does not name.
inline const char* xen_errno_name(long rc) {
    struct Entry {
        long value;
        const char* name;
    };
    static const Entry table[] = {
#define XEN_ERRNO(name, value) {value, #name},
#include <xen/errno.h>
    };
    long v = rc < 0 ? -rc : rc;
    for (const Entry& e : table)
        if (e.value == v) return e.name;
    return "E?";
}

}  // namespace xensim
