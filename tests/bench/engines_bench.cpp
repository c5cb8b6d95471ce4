// Engine throughput (Google Benchmark): event-channel send -> upcall, grant map/unmap, grant copy.
// Results and the command that produced them: docs/performance.md.
#include <benchmark/benchmark.h>

#include "models/xen/event_channels.h"
#include "models/xen/grant_table.h"

namespace xensim {
namespace {

void BM_EvtchnSendUpcall(benchmark::State& state) {
    DomainTable domains;
    domains.add(0, "dom0", true, 1, 1024);
    domains.add(1, "guest", false, 1, 1024);
    StatsGroup root("");
    std::uint64_t kicks = 0;
    EventChannels ev(domains, root, [&](DomId, unsigned) { ++kicks; });
    evtchn_alloc_unbound_t au{};
    au.dom = 1;
    au.remote_dom = 0;
    ev.hypercall(1, EVTCHNOP_alloc_unbound, &au);
    evtchn_bind_interdomain_t bi{};
    bi.remote_dom = 1;
    bi.remote_port = au.port;
    ev.hypercall(0, EVTCHNOP_bind_interdomain, &bi);
    vcpu_info_t& vi = domains.find(1)->vcpu_info(0);
    shared_info_t& si = domains.find(1)->shared_info();
    evtchn_send_t send{};
    send.port = bi.local_port;
    for (auto _ : state) {
        ev.hypercall(0, EVTCHNOP_send, &send);
        // The guest's upcall handler: clear the flag, the selector and the pending bit.
        vi.evtchn_upcall_pending = 0;
        vi.evtchn_pending_sel = 0;
        si.evtchn_pending[au.port / 64] = 0;
    }
    state.SetItemsProcessed(state.iterations());
    if (kicks < static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("an upcall was lost");
}
BENCHMARK(BM_EvtchnSendUpcall);

void BM_GrantMapUnmap(benchmark::State& state) {
    DomainTable domains;
    DomainRecord& d0 = domains.add(0, "dom0", true, 1, 4096);
    DomainRecord& g = domains.add(1, "guest", false, 1, 4096);
    StatsGroup root("");
    GrantTable gt(domains, root);
    Gfn frame_gfn = *g.memory.allocate_page();
    g.memory.free_page(frame_gfn);
    gt.add_to_physmap(1, 0, frame_gfn);
    Gfn data = *g.memory.allocate_page();
    auto* entries = reinterpret_cast<grant_entry_v1_t*>(g.memory.page(frame_gfn));
    entries[8].frame = static_cast<std::uint32_t>(data);
    entries[8].domid = 0;
    entries[8].flags = GTF_permit_access;
    Gfn slot = *d0.memory.allocate_page();
    d0.memory.free_page(slot);
    GrantWork work;
    for (auto _ : state) {
        gnttab_map_grant_ref_t map{};
        map.host_addr = slot << kPageShift;
        map.flags = GNTMAP_host_map;
        map.ref = 8;
        map.dom = 1;
        gt.hypercall(0, GNTTABOP_map_grant_ref, &map, 1, work);
        gnttab_unmap_grant_ref_t unmap{};
        unmap.host_addr = map.host_addr;
        unmap.handle = map.handle;
        gt.hypercall(0, GNTTABOP_unmap_grant_ref, &unmap, 1, work);
        if (map.status != GNTST_okay || unmap.status != GNTST_okay) state.SkipWithError("map/unmap failed");
    }
    state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_GrantMapUnmap);

}  // namespace
}  // namespace xensim
