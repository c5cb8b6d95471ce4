// The trace-event catalog: every event any model emits, declared once (see trace.h).
#pragma once

#include "sim/core/trace.h"

namespace xensim::trace_events {

using F = TraceFieldType;

inline const TraceEventDef context_switch{"context_switch",
                                          TraceCategory::sched,
                                          false,
                                          {{"from_domain", F::i64},
                                           {"from_vcpu", F::i64},
                                           {"to_domain", F::i64},
                                           {"to_vcpu", F::i64},
                                           {"kind", F::str}}};
inline const TraceEventDef vcpu_running{"running", TraceCategory::sched, true, {{"pcpu", F::u64}}};
inline const TraceEventDef vmexit{
    "vmexit", TraceCategory::vmexit, true, {{"reason", F::str}, {"cause", F::str}}};
inline const TraceEventDef hypercall{
    "hypercall", TraceCategory::hypercall, true, {{"op", F::str}, {"sub_op", F::str}, {"result", F::i64}}};
inline const TraceEventDef evtchn_send{
    "evtchn_send",
    TraceCategory::evtchn,
    false,
    {{"port", F::u64}, {"target_domain", F::u64}, {"target_port", F::u64}, {"outcome", F::str}}};
inline const TraceEventDef evtchn_upcall{"evtchn_upcall", TraceCategory::evtchn, false, {{"vector", F::u64}}};
inline const TraceEventDef gnttab_op{"gnttab_op",
                                     TraceCategory::gnttab,
                                     false,
                                     {{"op", F::str},
                                      {"count", F::u64},
                                      {"maps", F::u64},
                                      {"unmaps", F::u64},
                                      {"copies", F::u64},
                                      {"bytes", F::u64}}};

// A synchronous ioreq, drawn on the guest vCPU from the send to the consumed answer: its type
// ("pio", "copy" for MMIO, "pci_config"), address in hex (port, guest-physical address, or
// SBDF << 32 | register), size, direction, rep count and data (the value read, or written; 0 for a
// rep string, whose data is in guest memory).
inline const TraceEventDef ioreq{"ioreq",
                                 TraceCategory::ioreq,
                                 true,
                                 {{"type", F::str},
                                  {"addr", F::str},
                                  {"size", F::u64},
                                  {"dir", F::str},
                                  {"count", F::u64},
                                  {"data", F::u64}}};
// A write Xen queued on the buffered ioreq page without making the vCPU wait.
inline const TraceEventDef ioreq_buffered{
    "ioreq_buffered",
    TraceCategory::ioreq,
    false,
    {{"type", F::str}, {"addr", F::str}, {"size", F::u64}, {"data", F::u64}}};

}  // namespace xensim::trace_events
