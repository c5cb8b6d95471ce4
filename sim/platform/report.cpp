// report.json: the results of one run, for people (via reports/) and programs.
// The layout is documented in docs/report-schema.md; bump kReportSchemaVersion when keys change.
#include "sim/platform/platform.h"
#include "sim/platform/platform_runtime.h"
#include "sim/platform/report.h"

#include <cstdio>

#include "sim/core/sim_time.h"
#include "sim/core/version.h"

namespace xensim {

using nlohmann::json;

namespace {

json family_json(const CounterFamily& f) {
    json j = json::object();
    for (const auto& [label, ptr] : f.labels()) j[label] = *ptr;
    return j;
}

void add_into(json& total, const json& part) {
    for (const auto& [k, v] : part.items())
        total[k] = total.value(k, std::uint64_t(0)) + v.get<std::uint64_t>();
}

std::uint64_t sum_values(const json& j) {
    std::uint64_t t = 0;
    for (const auto& [k, v] : j.items()) t += v.get<std::uint64_t>();
    return t;
}

using Counts = std::map<std::string, std::uint64_t>;

// b - a, key by key (counters only grow); zero differences are left out.
Counts difference(const Counts& a, const Counts& b) {
    Counts d;
    for (const auto& [k, v] : b) {
        auto it = a.find(k);
        const std::uint64_t n = v - (it == a.end() ? 0 : it->second);
        if (n) d[k] = n;
    }
    return d;
}

std::uint64_t count_of(const Counts& c, const std::string& key) {
    auto it = c.find(key);
    return it == c.end() ? 0 : it->second;
}

// A workload's figures from its counts (workload_tally's keys): exits and hypercalls by name and
// in total, upcalls, CPU cycles, device-model time, context switches.
json figures(const Counts& c) {
    json exits = json::object(), hypercalls = json::object();
    std::uint64_t exits_total = 0, hypercalls_total = 0;
    for (const auto& [k, v] : c) {
        if (k.rfind("exits.", 0) == 0) {
            exits[k.substr(6)] = v;
            exits_total += v;
        } else if (k.rfind("hypercalls.", 0) == 0) {
            hypercalls[k.substr(11)] = v;
            hypercalls_total += v;
        }
    }
    const std::uint64_t guest = count_of(c, "guest_cycles"), hyp = count_of(c, "hypervisor_cycles");
    return {{"exits", exits},
            {"exits_total", exits_total},
            {"hypercalls", hypercalls},
            {"hypercalls_total", hypercalls_total},
            {"upcalls", count_of(c, "upcalls")},
            {"guest_cycles", guest},
            {"hypervisor_cycles", hyp},
            {"cpu_cycles", guest + hyp},
            {"device_model_ns", count_of(c, "device_model_ns")},
            {"context_switches", count_of(c, "context_switches")}};
}

// Every figure of `figures` divided by ops (0 without ops).
json per_op_figures(const json& f, std::uint64_t ops) {
    auto per = [ops](const json& v) {
        return ops ? static_cast<double>(v.get<std::uint64_t>()) / static_cast<double>(ops) : 0.0;
    };
    json out = json::object();
    for (const auto& [k, v] : f.items()) {
        if (v.is_object()) {
            out[k] = json::object();
            for (const auto& [kk, vv] : v.items()) out[k][kk] = per(vv);
        } else {
            out[k] = per(v);
        }
    }
    return out;
}

json summary_json(const Distribution& d) {
    return {{"mean", d.mean()},
            {"min", d.min()},
            {"p50", d.percentile(50)},
            {"p99", d.percentile(99)},
            {"p99_9", d.percentile(99.9)},
            {"max", d.max()}};
}

// The block counters per_request divides, by their per_request name (IDE or PV).
Counts block_counts(const Platform::WorkloadRuntime& w) {
    Counts c;
    if (!w.fio) return c;
    if (!w.blkfront) {
        if (!w.ata) return c;
        c["block.interrupts"] = w.ata->stats().interrupts.value();
        c["block.pio_blocks"] = w.ata->stats().pio_blocks.value();
        return c;
    }
    if (!w.blkback()) return c;  // dom0 never probed the device's backend
    const Blkfront& f = *w.blkfront;
    const Blkback& b = *w.blkback();
    std::uint64_t granted = 0;
    json fdump = const_cast<Blkfront&>(f).group().dump(false);
    for (unsigned q = 0; q < f.queues(); ++q)
        granted += fdump.value("queue" + std::to_string(q), json::object())
                       .value("grants_granted", std::uint64_t(0));
    const auto& fs = f.stats();
    const auto& bs = b.stats();
    c["block.frontend_notifications_sent"] = fs.notifications_sent.value();
    c["block.frontend_notifications_suppressed"] = fs.notifications_suppressed.value();
    c["block.backend_notifications_sent"] = bs.notifications_sent.value();
    c["block.backend_notifications_suppressed"] = bs.notifications_suppressed.value();
    c["block.frontend_interrupts"] = fs.interrupts.value();
    c["block.grants_granted"] = granted;
    c["block.grant_maps"] = bs.grant_maps.value();
    c["block.grant_unmaps"] = bs.grant_unmaps.value();
    c["block.grant_copies"] = bs.grant_copies.value();
    c["block.disk_irqs"] = bs.disk_irqs.value();
    return c;
}

// block.per_request: the block counters over the window, per operation. Every key is present
// (0 when the window saw none), as the reader of a PV or IDE report expects its keys.
json block_per_request(const Platform::WorkloadRuntime& w, const Counts& window, std::uint64_t ops) {
    json j = json::object();
    for (const auto& [k, v] : block_counts(w)) {
        (void)v;
        const std::uint64_t n = count_of(window, k);
        j[k.substr(6)] = ops ? static_cast<double>(n) / static_cast<double>(ops) : 0.0;
    }
    return j;
}

// ---- The network path's counters a netperf workload's report reads ----------------------------
// The platform resolves, when the workload's window opens, WorkloadRuntime::net_frontend_groups
// (the guest's netfront: its own counters and its queues' NetifRingFrontend counters below it),
// net_backend_groups (dom0's netback for the vif, its queues' NetifRingBackend counters below it)
// and net_network_groups (dom0's bridges and NIC). Each row: the per_request key, the side, and a
// counter name summed over the side's groups and everything below them (StatsGroup::sum_counters).
// Several rows may feed one key.
enum class NetSide { frontend, backend, network };
struct NetCounterSource {
    const char* key;
    NetSide side;
    const char* counter;
};
constexpr NetCounterSource kNetCounters[] = {
    {"frontend_tx_notifications_sent", NetSide::frontend, "tx_notifications_sent"},
    {"frontend_tx_notifications_suppressed", NetSide::frontend, "tx_notifications_suppressed"},
    {"frontend_rx_notifications_sent", NetSide::frontend, "rx_notifications_sent"},
    {"frontend_rx_notifications_suppressed", NetSide::frontend, "rx_notifications_suppressed"},
    {"frontend_interrupts", NetSide::frontend, "tx_interrupts"},  // netfront's handlers
    {"frontend_interrupts", NetSide::frontend, "rx_interrupts"},
    {"frontend_rx_packets", NetSide::frontend, "rx_packets"},
    {"frontend_tx_slots", NetSide::frontend, "tx_slots"},
    {"frontend_rx_slots", NetSide::frontend, "rx_slots"},
    {"grants_granted", NetSide::frontend, "grants_granted"},
    {"backend_notifications_sent", NetSide::backend, "notifications_sent"},
    {"backend_notifications_suppressed", NetSide::backend, "notifications_suppressed"},
    {"backend_interrupts", NetSide::backend, "tx_interrupts"},  // netback's handlers
    {"backend_interrupts", NetSide::backend, "rx_interrupts"},
    {"grant_copies", NetSide::backend, "tx_copy_ops"},
    {"grant_copies", NetSide::backend, "rx_copy_ops"},
    {"grant_maps", NetSide::backend, "tx_map_ops"},
    {"grant_unmaps", NetSide::backend, "tx_unmap_ops"},
    {"bytes_copied", NetSide::backend, "tx_bytes_copied"},
    {"bytes_copied", NetSide::backend, "rx_bytes_copied"},
    {"dom0_netback_cycles", NetSide::backend, "cycles"},  // netback's own work, hypercalls excluded
    {"drops_frontend_tx", NetSide::frontend, "tx_dropped"},
    {"drops_frontend_rx", NetSide::frontend, "rx_errors"},
    {"drops_backend_tx", NetSide::backend, "tx_dropped"},
    {"drops_backend_rx", NetSide::backend, "rx_dropped"},
    {"drops_network", NetSide::network, "tx_refused"},  // the wire's queue was full
    {"drops_network", NetSide::network, "rx_missed"},   // the NIC's rx ring was full
    {"drops_network", NetSide::network, "vif_refused"},
};

std::uint64_t net_side_sum(const std::vector<const StatsGroup*>& groups, const char* counter) {
    std::uint64_t n = 0;
    for (const StatsGroup* g : groups)
        if (g) n += g->sum_counters(counter);
    return n;
}

// The network counters per_request divides ("net." + key), every key present.
Counts net_counts(const Platform::WorkloadRuntime& w) {
    Counts c;
    if (!w.netperf) return c;
    for (const auto& row : kNetCounters) {
        const auto& groups = row.side == NetSide::frontend  ? w.net_frontend_groups
                             : row.side == NetSide::backend ? w.net_backend_groups
                                                            : w.net_network_groups;
        c[std::string("net.") + row.key] += net_side_sum(groups, row.counter);
    }
    const NetperfWorkload::Totals t = w.netperf->totals();
    c["net.guest_tx_frames"] = t.tx_frames;
    c["net.guest_rx_frames"] = t.rx_frames;
    c["net.guest_tx_bytes"] = t.tx_bytes;
    c["net.guest_rx_bytes"] = t.rx_bytes;
    return c;
}

// The ring occupancy samples netfront's queues take (NetifRingFrontend), summed over its queues;
// the window's difference gives each mean. Not divided per operation: kept apart from net_counts.
constexpr const char* kNetRingSums[] = {"tx_pushes", "tx_in_flight_sum", "rx_polls", "rx_waiting_sum",
                                        "rx_empty_sum"};

Counts net_ring_counts(const Platform::WorkloadRuntime& w) {
    Counts c;
    if (!w.netperf) return c;
    for (const char* name : kNetRingSums)
        c[std::string("net_ring.") + name] = net_side_sum(w.net_frontend_groups, name);
    return c;
}

std::uint64_t net_side_max(const std::vector<const StatsGroup*>& groups, const char* counter) {
    std::uint64_t n = 0;
    for (const StatsGroup* g : groups)
        if (g) n = std::max(n, g->max_counters(counter));
    return n;
}

// How full the guest's rings ran: means over the window's samples (a push that published
// transmit requests; a receive poll), peaks over the whole run and every queue.
json ring_occupancy_json(const Platform::WorkloadRuntime& w, const Counts& window) {
    auto mean = [&](const char* sum, const char* samples) {
        const std::uint64_t n = count_of(window, std::string("net_ring.") + samples);
        return n ? static_cast<double>(count_of(window, std::string("net_ring.") + sum)) /
                       static_cast<double>(n)
                 : 0.0;
    };
    const std::uint64_t rx_ring = NetifRingFrontend::kRxRingSize;
    return {{"tx_ring_slots", NetifRingFrontend::kTxRingSize},
            {"tx_pushes", count_of(window, "net_ring.tx_pushes")},
            {"tx_in_flight_mean", mean("tx_in_flight_sum", "tx_pushes")},
            {"tx_in_flight_peak", net_side_max(w.net_frontend_groups, "tx_in_flight_peak")},
            {"rx_ring_slots", rx_ring},
            {"rx_polls", count_of(window, "net_ring.rx_polls")},
            {"rx_waiting_mean", mean("rx_waiting_sum", "rx_polls")},
            {"rx_waiting_peak", net_side_max(w.net_frontend_groups, "rx_waiting_peak")},
            {"rx_empty_buffers_mean", mean("rx_empty_sum", "rx_polls")},
            {"rx_empty_buffers_low",
             net_side_sum(w.net_frontend_groups, "rx_polls")
                 ? json(rx_ring - std::min(rx_ring, net_side_max(w.net_frontend_groups, "rx_no_buffer_peak")))
                 : json(nullptr)}};
}

// The netperf results: what the test moved, its rates, errors and drops by where they happened,
// and the network path's counters per operation over the window.
json net_json(const Platform::WorkloadRuntime& w, std::uint64_t dur, const Counts& window,
              std::uint64_t ops) {
    const NetperfWorkload& np = *w.netperf;
    const NetperfWorkload::Totals t = np.totals();
    const NetperfSpec& spec = np.spec();
    const double secs = static_cast<double>(dur) / 1e9;
    json per_request = json::object(), totals = json::object();
    for (const auto& [k, v] : net_counts(w)) {
        totals[k.substr(4)] = v;
        const std::uint64_t n = count_of(window, k);
        per_request[k.substr(4)] = ops ? static_cast<double>(n) / static_cast<double>(ops) : 0.0;
    }
    const std::uint64_t wtx = count_of(window, "net.guest_tx_frames"),
                        wrx = count_of(window, "net.guest_rx_frames");
    const std::uint64_t wint = count_of(window, "net.frontend_interrupts");
    per_request["packets_per_interrupt"] =
        wint ? static_cast<double>(wtx + wrx) / static_cast<double>(wint) : 0.0;
    json streams = json::array();
    for (unsigned k = 0; k < np.streams(); ++k) streams.push_back(np.endpoint(k).stats().dump(false));
    return {{"test", to_string(spec.test)},
            {"direction", to_string(spec.direction)},
            {"peer", w.netperf_peer},
            {"streams", np.streams()},
            {"connected", np.device_connected()},
            {"data_frames", t.data_frames},
            {"data_bytes", t.data_bytes},
            {"transactions", t.transactions},
            {"gbit_per_s", secs > 0 ? static_cast<double>(t.data_bytes) * 8 / 1e9 / secs : 0.0},
            {"pps", secs > 0 ? static_cast<double>(t.data_frames) / secs : 0.0},
            {"transactions_per_s", secs > 0 ? static_cast<double>(t.transactions) / secs : 0.0},
            {"tx_frames", t.tx_frames},
            {"rx_frames", t.rx_frames},
            {"tx_refused", t.tx_refused},
            {"tx_wakes", t.tx_wakes},
            {"timer_arms", t.timer_arms},
            {"timer_spins", t.timer_spins},
            {"payload_errors", t.payload_errors},
            {"drops",
             {{"lost_by_sequence", t.lost},
              {"guest_unparsed", t.rx_unparsed},
              {"guest_no_flow", t.rx_no_flow},
              {"guest_socket_backlog", t.rx_backlog_drops},
              {"frontend_tx", totals.value("drops_frontend_tx", std::uint64_t(0))},
              {"frontend_rx", totals.value("drops_frontend_rx", std::uint64_t(0))},
              {"backend_tx", totals.value("drops_backend_tx", std::uint64_t(0))},
              {"backend_rx", totals.value("drops_backend_rx", std::uint64_t(0))},
              {"network", totals.value("drops_network", std::uint64_t(0))}}},
            {"first_failure", np.first_failure()},
            {"ring_occupancy", ring_occupancy_json(w, window)},
            {"totals", totals},
            {"per_request", per_request},
            {"engines", streams}};
}

const char* type_name(DomainType t) {
    return t == DomainType::pv ? "pv" : t == DomainType::pvh ? "pvh" : "hvm";
}

// What every fio workload reports, whatever its device: I/O counts, rates, jobs, verify audit.
json block_common(const Platform::WorkloadRuntime& w, std::uint64_t dur, std::uint64_t ops) {
    const FioWorkload::Totals t = w.fio->totals();
    const double secs = static_cast<double>(dur) / 1e9;
    json jobs = json::array();
    for (unsigned j = 0; j < w.fio->jobs(); ++j) {
        const auto& js = *w.fio->job_stats()[j];
        const auto& c = w.fio->job(j).counters();
        const std::uint64_t jdur = js.end_ns > w.fio->start_ns() ? js.end_ns - w.fio->start_ns() : 0;
        const double jsecs = static_cast<double>(jdur) / 1e9;
        const std::uint64_t jops = js.ops.value();
        jobs.push_back({{"job", j},
                        {"ops", jops},
                        {"reads", c.reads},
                        {"writes", c.writes},
                        {"bytes_read", c.bytes_read},
                        {"bytes_written", c.bytes_written},
                        {"duration_ns", jdur},
                        {"iops", jsecs > 0 ? static_cast<double>(jops) / jsecs : 0.0},
                        {"mb_per_s",
                         jsecs > 0 ? static_cast<double>(c.bytes_read + c.bytes_written) / 1e6 / jsecs : 0.0},
                        {"latency_ns",
                         {{"mean", js.latency_ns.mean()},
                          {"p50", js.latency_ns.percentile(50)},
                          {"p99", js.latency_ns.percentile(99)},
                          {"p99_9", js.latency_ns.percentile(99.9)},
                          {"max", js.latency_ns.max()}}}});
    }
    json audit = nullptr;
    if (w.fio->verifying()) {
        const Disk& disk = *w.medium;
        FioWorkload::Audit a =
            w.fio->audit([&disk](std::uint64_t offset, std::uint32_t length, std::uint8_t* out) {
                disk.peek(offset / kSectorSize, length / kSectorSize, out);
            });
        audit = {{"blocks", a.blocks}, {"lost_writes", a.lost_writes}, {"first_problem", a.first_problem}};
    }
    return {{"reads", t.reads},
            {"writes", t.writes},
            {"bytes_read", t.bytes_read},
            {"bytes_written", t.bytes_written},
            {"errors", t.errors},
            {"flushes", t.flushes},
            {"verified", t.verified},
            {"unverified", t.unverified},
            {"verify_failures", t.verify_failures},
            {"first_failure", w.fio->first_failure()},
            {"iops", secs > 0 ? static_cast<double>(ops) / secs : 0.0},
            {"mb_per_s", secs > 0 ? static_cast<double>(t.bytes_read + t.bytes_written) / 1e6 / secs : 0.0},
            {"slat_ns", summary_json(w.fio->slat_ns())},
            {"clat_ns", summary_json(w.fio->clat_ns())},
            {"jobs", jobs},
            {"audit", audit}};
}

// The block results of an fio workload: what the job did, and what each layer did for it.
json block_json(const Platform::WorkloadRuntime& w, std::uint64_t dur, const Counts& window,
                std::uint64_t ops) {
    json out = block_common(w, dur, ops);
    if (!w.blkfront) {
        // An emulated IDE disk: the driver's commands and interrupts.
        const AtaPiix& a = *w.ata;
        out["device"] = {{"attach", "ide"},
                         {"sectors", a.sectors()},
                         {"connected", a.connected()},
                         {"transfer", a.pio() ? "pio" : "dma"},
                         {"multi_count", a.multi_count()}};
        out["ide"] = {{"requests", a.stats().requests.value()},
                      {"commands", family_json(a.stats().commands)},
                      {"interrupts", a.stats().interrupts.value()},
                      {"spurious_interrupts", a.stats().spurious_interrupts.value()},
                      {"errors", a.stats().errors.value()},
                      {"pio_blocks", a.stats().pio_blocks.value()}};
        out["per_request"] = block_per_request(w, window, ops);
        return out;
    }
    if (!w.blkback()) {
        // dom0 never probed the device's backend (the run ended first): nothing on dom0's side.
        out["device"] = {{"attach", "pv"}, {"connected", w.blkfront->connected()}};
        return out;
    }
    const Blkfront& f = *w.blkfront;
    const Blkback& b = *w.blkback();
    json front = json::object(), back = json::object(), occupancy = json::array();
    json fdump = const_cast<Blkfront&>(f).group().dump(false);
    std::uint64_t granted = 0, reused = 0, ended = 0, indirect = 0, merges = 0, bogus = 0;
    for (unsigned q = 0; q < f.queues(); ++q) {
        const json& qj = fdump.value("queue" + std::to_string(q), json::object());
        granted += qj.value("grants_granted", std::uint64_t(0));
        reused += qj.value("grants_reused", std::uint64_t(0));
        ended += qj.value("grants_ended", std::uint64_t(0));
        indirect += qj.value("indirect_requests", std::uint64_t(0));
        merges += qj.value("merges", std::uint64_t(0));
        bogus += qj.value("bogus_responses", std::uint64_t(0));
        json occ = qj.value("ring_occupancy", json::object());
        occ["histogram"] = f.occupancy_histogram(q);
        occupancy.push_back(occ);
    }
    const auto& fs = f.stats();
    front = {{"notifications_sent", fs.notifications_sent.value()},
             {"notifications_suppressed", fs.notifications_suppressed.value()},
             {"interrupts", fs.interrupts.value()},
             {"empty_interrupts", fs.empty_interrupts.value()},
             {"grants_granted", granted},
             {"grants_reused", reused},
             {"grants_ended", ended},
             {"indirect_requests", indirect},
             {"merges", merges},
             {"bogus_responses", bogus}};
    const auto& bs = b.stats();
    back = {{"requests", bs.requests.value()},
            {"responses_error", bs.responses_error.value()},
            {"responses_dropped", bs.responses_dropped.value()},
            {"grant_maps", bs.grant_maps.value()},
            {"grant_unmaps", bs.grant_unmaps.value()},
            {"persistent_hits", bs.persistent_hits.value()},
            {"persistent_maps", bs.persistent_maps.value()},
            {"map_failures", bs.map_failures.value()},
            {"grant_copies", bs.grant_copies.value()},
            {"copy_failures", bs.copy_failures.value()},
            {"disk_irqs", bs.disk_irqs.value()},
            {"disk_irqs_empty", bs.disk_irqs_empty.value()},
            {"notifications_sent", bs.notifications_sent.value()},
            {"notifications_suppressed", bs.notifications_suppressed.value()},
            {"disconnects", bs.disconnects.value()}};
    out["device"] = {{"attach", "pv"},
                     {"devid", b.devid()},
                     {"queues", f.queues()},
                     {"ring_page_order", f.ring_page_order()},
                     {"ring_slots", f.ring_size()},
                     {"persistent_grants", f.persistent()},
                     {"max_indirect_segments", f.max_indirect_segments()},
                     {"sectors", f.sectors()},
                     {"connected", f.connected()}};
    out["frontend"] = front;
    out["backend"] = back;
    out["aborted"] = fs.ios_aborted.value();
    out["ring_occupancy"] = occupancy;
    out["per_request"] = block_per_request(w, window, ops);
    return out;
}

}  // namespace

Platform::Tally Platform::domain_tally(const DomainRuntime& d) const {
    Tally t;
    t.at_ps = sim_time::now_ps();
    for (Vcpu* v : const_cast<Hypervisor&>(*hv_).vcpus(d.id)) {
        for (const auto& [reason, n] : v->stats.exits.labels()) t.counts["exits." + reason] += *n;
        for (const auto& [op, n] : v->stats.hypercalls.labels()) t.counts["hypercalls." + op] += *n;
    }
    return t;
}

Platform::Tally Platform::workload_tally(const WorkloadRuntime& w) const {
    Tally t;
    t.at_ps = sim_time::now_ps();
    for (DomId id : w.domains) {
        for (const auto& d : domains_)
            if (d->id == id) {
                for (const auto& [k, v] : domain_tally(*d).counts) t.counts[k] += v;
                if (d->device_model) t.counts["device_model_ns"] += d->device_model->stats().busy_ns.value();
            }
        for (Vcpu* v : const_cast<Hypervisor&>(*hv_).vcpus(id)) {
            t.counts["upcalls"] += v->stats.upcalls.value();
            t.counts["guest_cycles"] += v->stats.guest_cycles.value();
            t.counts["hypervisor_cycles"] += v->stats.hypervisor_cycles.value();
        }
    }
    // Context switches of every pCPU: a workload's switches cannot be told from another's.
    auto& sched = const_cast<Hypervisor&>(*hv_).scheduler();
    for (unsigned i = 0; i < sched.pcpu_count(); ++i) {
        const auto& ps = sched.pcpu(i).stats;
        t.counts["context_switches"] += ps.switches_same_domain.value() + ps.switches_domain_change.value() +
                                        ps.switches_to_idle.value() + ps.switches_from_idle.value();
    }
    for (const auto& [k, v] : block_counts(w)) t.counts[k] = v;
    for (const auto& [k, v] : net_counts(w)) t.counts[k] = v;
    for (const auto& [k, v] : net_ring_counts(w)) t.counts[k] = v;
    return t;
}

json Platform::report(const RunResult& run) const {
    json r;
    r["schema_version"] = kReportSchemaVersion;
    r["xensim_version"] = XENSIM_VERSION;
    r["scenario"] = {{"file", scenario_.file}, {"name", scenario_.effective.at("name")}};
    r["config"] = scenario_.effective;
    r["cost_model"] = json::object();
    for (const auto& [name, value] : cost_.flatten()) r["cost_model"][name] = value;

    std::uint64_t hv_ops = 0;
    json domains = json::array();
    std::map<DomId, json> dom_totals;
    for (const auto& d : domains_) {
        json dj;
        dj["id"] = d->id;
        dj["name"] = d->name;
        dj["type"] = type_name(d->type);
        json exits = json::object(), by_cause = json::object(), hypercalls = json::object();
        std::uint64_t upcalls = 0, halts = 0, wakeups = 0, guest = 0, hyp = 0, ipis = 0, eois = 0;
        json vcpus = json::array();
        for (Vcpu* v : const_cast<Hypervisor&>(*hv_).vcpus(d->id)) {
            json vj;
            vj["id"] = v->id();
            vj["exits"] = family_json(v->stats.exits);
            vj["exits_by_cause"] = family_json(v->stats.exits_by_cause);
            vj["hypercalls"] = family_json(v->stats.hypercalls);
            vj["upcalls"] = v->stats.upcalls.value();
            vj["halts"] = v->stats.halts.value();
            vj["wakeups"] = v->stats.wakeups.value();
            vj["preemptions"] = v->stats.preemptions.value();
            vj["guest_cycles"] = v->stats.guest_cycles.value();
            vj["hypervisor_cycles"] = v->stats.hypervisor_cycles.value();
            add_into(exits, vj["exits"]);
            add_into(by_cause, vj["exits_by_cause"]);
            add_into(hypercalls, vj["hypercalls"]);
            upcalls += v->stats.upcalls.value();
            halts += v->stats.halts.value();
            wakeups += v->stats.wakeups.value();
            guest += v->stats.guest_cycles.value();
            hyp += v->stats.hypervisor_cycles.value();
            ipis += v->stats.ipis_received.value();
            eois += v->stats.eois.value();
            vcpus.push_back(vj);
        }
        dj["exits"] = exits;
        dj["exits_total"] = sum_values(exits);
        dj["exits_by_cause"] = by_cause;
        dj["hypercalls"] = hypercalls;
        dj["hypercalls_total"] = sum_values(hypercalls);
        dj["upcalls"] = upcalls;
        dj["halts"] = halts;
        dj["wakeups"] = wakeups;
        dj["ipis_received"] = ipis;
        dj["eois"] = eois;
        dj["guest_cycles"] = guest;
        dj["hypervisor_cycles"] = hyp;
        dj["unclaimed_io"] = d->unclaimed_io->value();
        // Per phase the guest marked: what it cost, up to the next phase or the end of the run.
        json phases = json::array();
        const Tally now = domain_tally(*d);
        for (std::size_t i = 0; i < d->phases.size(); ++i) {
            const auto& p = d->phases[i];
            const bool last = i + 1 == d->phases.size();
            const Tally& end = last ? now : d->phases[i + 1].at;
            const std::uint64_t end_ps = last ? run.sim_time_ps : end.at_ps;
            const json f = figures(difference(p.at.counts, end.counts));
            phases.push_back({{"name", p.name},
                              {"start_ns", p.at.at_ps / 1000},
                              {"duration_ns", (end_ps - p.at.at_ps) / 1000},
                              {"exits", f.at("exits")},
                              {"exits_total", f.at("exits_total")},
                              {"hypercalls_total", f.at("hypercalls_total")}});
        }
        dj["phases"] = phases;
        if (d->device_model) {
            const auto& ds = d->device_model->stats();
            dj["device_model"] = {{"ioreqs", family_json(ds.ioreqs)},
                                  {"buffered_drains", family_json(ds.buffered_drains)},
                                  {"busy_ns", ds.busy_ns.value()},
                                  {"unclaimed", ds.unclaimed.value()},
                                  {"unplugged_mask", d->platform_ports ? d->platform_ports->unplugged() : 0},
                                  {"unplug_product", d->platform_ports ? d->platform_ports->product() : 0},
                                  {"pci_config_by_sbdf", family_json(ds.pci_config_by_sbdf)}};
            if (d->vga) {
                const auto& vs = d->vga->stats();
                dj["device_model"]["vga"] = {{"memory_writes", vs.memory_writes.value()},
                                             {"memory_reads", vs.memory_reads.value()},
                                             {"register_writes", vs.register_writes.value()},
                                             {"register_reads", vs.register_reads.value()},
                                             {"start_address", d->vga->start_address()},
                                             {"cursor", d->vga->cursor()},
                                             {"screen", d->vga->text_screen()}};
            }
        }
        // The guest's own view of PCI bus 0 after its scan (HVM guests with a device model).
        if (!d->guest->pci_devices().empty()) {
            json devs = json::array();
            const PciDev* platform = d->guest->platform_pci();
            for (const PciDev& p : d->guest->pci_devices()) {
                char bdf[16], id[16], cls[8];
                std::snprintf(bdf, sizeof bdf, "%02x:%02x.%u", p.bus, p.devfn >> 3, p.devfn & 7u);
                std::snprintf(id, sizeof id, "%04x:%04x", p.vendor, p.device);
                std::snprintf(cls, sizeof cls, "%06x", p.class_code);
                const bool ata = d->ata_host && d->ata_host->probed() && d->ata_host->devfn() == p.devfn;
                devs.push_back({{"bdf", bdf},
                                {"id", id},
                                {"class", cls},
                                {"driver", &p == platform ? "xen-platform-pci"
                                           : ata          ? "ata_piix"
                                                          : ""}});
            }
            dj["pci_devices"] = devs;
        }
        dj["vcpus"] = vcpus;
        hv_ops +=
            dj["exits_total"].get<std::uint64_t>() + dj["hypercalls_total"].get<std::uint64_t>() + upcalls;
        dom_totals[d->id] = dj;
        domains.push_back(dj);
    }
    r["domains"] = domains;

    json pcpus = json::array();
    auto& sched = const_cast<Hypervisor&>(*hv_).scheduler();
    for (unsigned i = 0; i < sched.pcpu_count(); ++i) {
        const auto& s = sched.pcpu(i).stats;
        json pj = {
            {"id", i},
            {"context_switches",
             {{"same_domain", s.switches_same_domain.value()},
              {"domain_change", s.switches_domain_change.value()},
              {"to_idle", s.switches_to_idle.value()},
              {"from_idle", s.switches_from_idle.value()}}},
            {"context_switches_total", s.switches_same_domain.value() + s.switches_domain_change.value() +
                                           s.switches_to_idle.value() + s.switches_from_idle.value()},
            {"busy_cycles", s.busy_cycles.value()},
            {"switch_cycles", s.switch_cycles.value()},
            {"idle_cycles", s.idle_cycles.value()},
            {"busy_ps", s.busy_ps.value()},  // busy + switch + idle = simulation.sim_time_ps
            {"switch_ps", s.switch_ps.value()},
            {"idle_ps", s.idle_ps.value()},
            {"ipis_received", s.ipis_received.value()}};
        hv_ops += pj["context_switches_total"].get<std::uint64_t>();
        pcpus.push_back(pj);
    }
    r["pcpus"] = pcpus;

    json workloads = json::array();
    for (const auto& w : workloads_) {
        const WorkloadStats& s = *w->stats;
        const std::uint64_t ops = s.ops.value();
        // The window: from the workload's start to its finish, or (a run stopped before it finished)
        // to its last completion. Its figures are the counts between the two tallies.
        const std::uint64_t start_ps = w->window_open.at_ps;
        std::uint64_t end_ps = w->closed_by == "finished" ? w->window_close.at_ps : w->last_op_ps;
        if (end_ps < start_ps) end_ps = start_ps;
        const std::uint64_t dur = end_ps / 1000 - start_ps / 1000;  // as the ns timestamps the workload sees
        const Counts window_counts = difference(w->window_open.counts, w->window_close.counts);
        json window = figures(window_counts);
        json setup = figures(difference({}, w->window_open.counts));
        json totals = figures(workload_tally(*w).counts);
        json per_request = per_op_figures(window, ops);
        window["start_ns"] = start_ps / 1000;
        window["end_ns"] = end_ps / 1000;
        window["duration_ns"] = dur;
        window["closed_by"] = w->closed_by;
        setup["duration_ns"] = start_ps / 1000;
        json wj = {{"name", w->name},
                   {"type", w->type},
                   {"done", s.done},
                   {"ops", ops},
                   {"failures", s.failures.value()},
                   {"duration_ns", dur},
                   {"ops_per_second", dur ? static_cast<double>(ops) * 1e9 / static_cast<double>(dur) : 0.0},
                   {"latency_ns", summary_json(s.latency_ns)}};
        json doms = json::array();
        for (DomId id : w->domains) doms.push_back(dom_totals.at(id).at("name"));
        if (w->fio) wj["block"] = block_json(*w, dur, window_counts, ops);
        if (w->netperf) wj["net"] = net_json(*w, dur, window_counts, ops);
        if (w->console) {
            const auto& c = w->console->counts();
            wj["console"] = {{"characters", c.characters},
                             {"scrolls", c.scrolls},
                             {"wraps", c.wraps},
                             {"cursor_updates", c.cursor_updates},
                             {"clears", c.clears}};
        }
        if (w->misbehaviour) {
            json cases = json::array();
            for (const auto& o : w->misbehaviour->outcomes())
                cases.push_back({{"case", o.name}, {"expected", o.expected}, {"got", o.got}, {"ok", o.ok}});
            const Blkback* back = w->blkback();  // null only if dom0 never probed the device
            wj["misbehaviour"] = {
                {"cases", cases},
                {"backend_disconnects", back ? back->stats().disconnects.value() : 0},
                {"backend_map_failures", back ? back->stats().map_failures.value() : 0},
                {"backend_state", static_cast<int>(back ? back->state() : XenbusStateUnknown)}};
        }
        if (w->net_misbehaviour) {
            json cases = json::array();
            for (const auto& o : w->net_misbehaviour->outcomes())
                cases.push_back({{"case", o.name}, {"expected", o.expected}, {"got", o.got}, {"ok", o.ok}});
            wj["misbehaviour"] = {{"cases", cases}};
        }
        wj["domains"] = doms;
        wj["setup"] = setup;
        wj["window"] = window;
        wj["totals"] = totals;
        wj["per_request"] = per_request;
        workloads.push_back(wj);
    }
    r["workloads"] = workloads;

    r["simulation"] = {{"stop_reason", run.stop_reason},
                       {"sim_time_ps", run.sim_time_ps},
                       {"sim_time_ns", run.sim_time_ps / 1000},
                       {"hypervisor_operations", hv_ops}};
    r["host"] = {{"wall_seconds", run.host_seconds},
                 {"hypervisor_operations_per_second",
                  run.host_seconds > 0 ? static_cast<double>(hv_ops) / run.host_seconds : 0.0}};
    r["stats"] = root_.dump(false);
    return r;
}

}  // namespace xensim
