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
// An emulated device's interrupt line: the device model sets an ISA IRQ's level with
// XEN_DMOP_set_isa_irq_level (on dom0's vCPU; a rising edge is routed by the virtual I/O APIC to
// LAPIC vector 0x30 + irq), and the guest's handler for that vector starts (on the guest's vCPU).
inline const TraceEventDef isa_irq{
    "isa_irq", TraceCategory::ioreq, false, {{"domain", F::u64}, {"irq", F::u64}, {"level", F::u64}}};
inline const TraceEventDef device_irq{"device_irq", TraceCategory::ioreq, false, {{"vector", F::u64}}};

// The PV block path (instants): blkfront queues an I/O on a queue's ring, pushes the queue
// (requests in flight after the push, and whether RING_PUSH_REQUESTS_AND_CHECK_NOTIFY asked for a
// notification), and collects an I/O's response; blkback takes a batch off a ring (accepted, and
// rejected ones answered at once) and pushes responses after disk completions.
inline const TraceEventDef blkif_submit{
    "blkif_submit",
    TraceCategory::blkif,
    false,
    {{"queue", F::u64}, {"io", F::u64}, {"op", F::str}, {"sector", F::u64}, {"sectors", F::u64}}};
inline const TraceEventDef blkif_push{"blkif_push",
                                      TraceCategory::blkif,
                                      false,
                                      {{"queue", F::u64}, {"in_flight", F::u64}, {"notify", F::str}}};
inline const TraceEventDef blkif_complete{
    "blkif_complete", TraceCategory::blkif, false, {{"queue", F::u64}, {"io", F::u64}, {"status", F::i64}}};
inline const TraceEventDef blkif_consume{"blkif_consume",
                                         TraceCategory::blkif,
                                         false,
                                         {{"ring", F::u64}, {"requests", F::u64}, {"rejected", F::u64}}};
inline const TraceEventDef blkif_respond{
    "blkif_respond", TraceCategory::blkif, false, {{"ring", F::u64}, {"notify", F::str}}};

}  // namespace xensim::trace_events
