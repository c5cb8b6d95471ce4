#include "sim/platform/platform.h"

#include "sim/core/sim_time.h"
#include "sim/core/trace_events.h"
#include "models/dom0/dom0_network.h"
#include "sim/platform/dom0_kernel.h"
#include "sim/platform/platform_runtime.h"
#include "sim/platform/remote_host.h"
#include "sim/platform/xenstore_layout.h"

#include <chrono>
#include <cmath>

namespace xensim {

using nlohmann::json;

namespace {

DomainType domain_type(const std::string& t) {
    return t == "pv" ? DomainType::pv : t == "pvh" ? DomainType::pvh : DomainType::hvm;
}

HypervisorParams hypervisor_params(const json& p) {
    HypervisorParams hp;
    hp.pcpus = p.at("pcpus");
    const json& s = p.at("scheduler");
    hp.scheduler.tslice_us = s.at("tslice_us");
    hp.scheduler.ratelimit_us = s.at("ratelimit_us");
    hp.scheduler.accounting_period_us = s.at("accounting_period_us");
    hp.scheduler.wakeup_preemption = s.at("wakeup_preemption");
    hp.grant_table.max_grant_frames = p.at("grant_table").at("max_grant_frames");
    hp.grant_table.max_maptrack_frames = p.at("grant_table").at("max_maptrack_frames");
    hp.posted_interrupts = p.at("hvm").at("posted_interrupts");
    hp.fast_paths = p.at("fast_paths");
    std::string apicv = p.at("hvm").at("apic_virtualization");
    hp.apic_virtualization = apicv == "full"       ? ApicVirtualization::full
                             : apicv == "register" ? ApicVirtualization::register_virt
                                                   : ApicVirtualization::off;
    return hp;
}

std::unique_ptr<Disk> make_disk(const json& disk, StatsGroup& group) {
    const std::uint64_t sectors = disk.at("sectors");
    const std::string image_path = disk.at("image");
    const bool read_only = disk.at("mode") == "r";
    std::unique_ptr<DiskImage> image;
    if (image_path.empty())
        image = std::make_unique<MemoryImage>(sectors);
    else
        image = std::make_unique<FileImage>(image_path, sectors * kSectorSize, false);
    std::unique_ptr<ServiceModel> model;
    const std::string m = disk.at("model");
    if (m == "null")
        model = std::make_unique<NullModel>();
    else if (m == "ramdisk")
        model = std::make_unique<RamdiskModel>();
    else if (m == "hdd")
        model = std::make_unique<HddModel>(HddParams{}, sectors);
    else
        model = std::make_unique<SsdModel>();
    DiskConfig cfg;
    cfg.write_cache = disk.at("write_cache");
    cfg.read_only = read_only;
    return std::make_unique<Disk>(std::move(image), std::move(model), cfg, group);
}

}  // namespace

Platform::Platform(const Scenario& scenario, Tracer& tracer, NetperfHooks netperf_hooks)
    : Platform(scenario, tracer, std::move(netperf_hooks), nullptr) {}

Platform::Platform(const Scenario& scenario, Tracer& tracer, VifNetwork* vif_network)
    : Platform(scenario, tracer, NetperfHooks{}, vif_network) {}

Platform::Platform(const Scenario& scenario, Tracer& tracer, NetperfHooks netperf_hooks,
                   VifNetwork* vif_network)
    : netperf_hooks_(std::move(netperf_hooks)),
      scenario_(scenario),
      tracer_(tracer),
      cost_(CostModel::from_config(scenario.effective.at("platform").at("cost"))),
      clock_(scenario.effective.at("platform").at("cpu_mhz").get<std::uint64_t>()),
      root_(""),
      workloads_group_("workloads", &root_),
      xenstore_group_("xenstore", &root_) {
    const json& e = scenario_.effective;
    op_limit_ = e.at("stop").at("ops");
    vif_network_ = vif_network;
    // xenvif_max_queues defaults to num_online_cpus() of dom0.
    netback_params_.max_queues = e.at("domains").at(0).at("vcpus").get<unsigned>();
    hv_ = std::make_unique<Hypervisor>("xen", hypervisor_params(e.at("platform")), cost_, clock_, tracer_,
                                       root_);
    build_domains();
    build_xenstore();
    build_device_models();
    build_backends();
    build_network();
    build_workloads();
    install_programs();
}

Platform::~Platform() = default;

void Platform::build_domains() {
    const json& domains = scenario_.effective.at("domains");
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const json& d = domains[i];
        auto rt = std::make_unique<DomainRuntime>();
        rt->id = static_cast<DomId>(i);
        rt->name = d.at("name");
        rt->type = domain_type(d.at("type"));
        rt->config = d;
        DomainSpec spec;
        spec.id = rt->id;
        spec.name = rt->name;
        spec.type = rt->type;
        spec.vcpus = d.at("vcpus");
        spec.memory_pages = d.at("memory_mb").get<std::uint64_t>() * 256;
        spec.weight = d.at("weight");
        spec.affinity = d.at("pinning").get<std::vector<unsigned>>();
        hv_->create_domain(spec);
        rt->group = std::make_unique<StatsGroup>("guest", &hv_->domain_stats(rt->id));
        rt->unclaimed_io = std::make_unique<Counter>(*rt->group, "unclaimed_io", "accesses",
                                                     "port/MMIO accesses no device claimed");
        rt->rep_io_faults =
            std::make_unique<Counter>(*rt->group, "rep_io_faults", "instructions",
                                      "rep INS/OUTS whose buffer was not the guest's RAM (Xen injects #GP)");
        rt->guest = std::make_unique<XenGuest>(spec.vcpus, rt->type == DomainType::pv);
        for (Vcpu* v : hv_->vcpus(rt->id)) {
            rt->services.push_back(
                std::make_unique<VcpuGuestServices>(*hv_, *v, *rt->unclaimed_io, *rt->rep_io_faults));
            DomainRuntime* dom = rt.get();
            rt->services.back()->on_phase = [this, dom](const char* name) { mark_phase(*dom, name); };
        }
        domains_.push_back(std::move(rt));
    }
}

void Platform::build_xenstore() {
    store_ = std::make_unique<XenStore>(xenstore_group_);
    xenstored_ = std::make_unique<Xenstored>(*store_, root_, &store_mutex_);
    write_scenario_layout(*store_, scenario_.effective);
    {
        // dom0's kernel reaches xenstored over a local ring: a dom0 frame and a loopback channel
        // whose kernel end is allocated here (xenstored binds the other end when it starts).
        DomainRuntime& d0 = *domains_[0];
        auto ring = hv_->domains().find(0)->memory.allocate_page();
        if (!ring) throw std::runtime_error("dom0 has no memory for its xenstore ring");
        d0.store_ring = *ring;
        d0.store_port = hv_->toolstack_alloc_unbound(0, 0);
    }
    for (auto& d : domains_) {
        if (d->id == 0) continue;
        // The toolstack's part (libxl__build_pre / xc_dom_gnttab_seed): a ring frame in the guest,
        // granted to dom0 in the reserved entry, and an unbound channel in the guest for dom0.
        DomainRecord& rec = *hv_->domains().find(d->id);
        auto ring = rec.memory.allocate_page();
        if (!ring) throw std::runtime_error("domain " + d->name + " has no memory for its xenstore ring");
        d->store_port = hv_->toolstack_alloc_unbound(d->id, 0);
        d->store_ring = *ring;
        hv_->toolstack_set_hvm_param(d->id, HVM_PARAM_STORE_PFN, *ring);
        hv_->toolstack_set_hvm_param(d->id, HVM_PARAM_STORE_EVTCHN, d->store_port);
        hv_->grant_table().seed_reserved_entry(d->id, GNTTAB_RESERVED_XENSTORE, *ring, 0);
        const std::string home = XenStore::domain_path(d->id);
        store_->write(home + "/store/port", std::to_string(d->store_port));
        store_->write(home + "/store/ring-ref", std::to_string(*ring));
    }
}

void Platform::start_xenstored(GuestServices& dom0) {
    // xenstored introduces every guest: maps its ring, binds its channel, then serves it from
    // dom0's event handler.
    auto& backend = static_cast<VcpuGuestServices&>(dom0);
    XenGuest& kernel = *domains_[0]->guest;
    for (auto& d : domains_) {
        long port = d->id == 0 ? xenstored_->connect_local(backend, 0, d->store_ring, d->store_port)
                               : xenstored_->connect_domain(backend, d->id, d->store_port);
        if (port <= 0) continue;  // counted by xenstored; the guest's requests will go unanswered
        auto local = static_cast<evtchn_port_t>(port);
        kernel.set_port_handler(local, [this](GuestServices& vs, evtchn_port_t p) {
            xenstored_->on_event(static_cast<VcpuGuestServices&>(vs), p);
        });
        kernel.unmask(dom0, local);
    }
}

void Platform::build_workloads() {
    const json& e = scenario_.effective;
    auto dom_id = [&](const std::string& name) -> DomId {
        for (auto& d : domains_)
            if (d->name == name) return d->id;
        throw std::logic_error("workload names unknown domain (validation missed it)");
    };
    for (const json& w : e.at("workloads")) {
        auto rt = std::make_unique<WorkloadRuntime>();
        rt->name = w.at("name");
        rt->type = w.at("type");
        rt->stats = std::make_unique<WorkloadStats>(workloads_group_, rt->name);
        WorkloadRuntime* wr = rt.get();
        rt->stats->on_start = [this, wr] { open_window(*wr); };
        rt->stats->on_progress = [this, wr] {
            if (wr->stats->ops.value() != wr->seen_ops) {
                seen_ops_total_ += wr->stats->ops.value() - wr->seen_ops;
                wr->seen_ops = wr->stats->ops.value();
                wr->last_op_ps = sim_time::now_ps();
            }
            if (wr->stats->done && !wr->seen_done) {
                wr->seen_done = true;
                done_changed_ = true;
            }
            if (wr->stats->done && !wr->closed) close_window(*wr, "finished");
            on_progress();
        };
        if (rt->type == "evtchn_pingpong") {
            DomId a = dom_id(w.at("initiator")), b = dom_id(w.at("responder"));
            PingPongParams p;
            p.responder_domid = b;
            p.responder_port = hv_->toolstack_alloc_unbound(b, a);
            p.round_trips = w.at("round_trips");
            p.think_cycles = w.at("think_cycles");
            p.poll = w.at("wait") == "poll";
            p.poll_cycles = w.at("poll_cycles");
            rt->pingpong = std::make_unique<EvtchnPingPong>(p, *rt->stats);
            EvtchnPingPong* pp = rt->pingpong.get();
            XenGuest* ga = domains_[a]->guest.get();
            XenGuest* gb = domains_[b]->guest.get();
            domains_[b]->passive.push_back([pp, gb](GuestServices& s) { pp->start_responder(*gb, s); });
            domains_[a]->active.push_back([pp, ga](GuestServices& s) { pp->run_initiator(*ga, s); });
            rt->domains = {a, b};
        } else if (rt->type == "xenstore_ops") {
            DomId g = dom_id(w.at("guest"));
            XenstoreOpsParams p;
            std::string mode = w.at("mode");
            p.mode = mode == "read"          ? XenstoreOpsParams::Mode::read
                     : mode == "write"       ? XenstoreOpsParams::Mode::write
                     : mode == "write_watch" ? XenstoreOpsParams::Mode::write_watch
                                             : XenstoreOpsParams::Mode::write_read;
            p.ops = w.at("ops");
            p.value_bytes = w.at("value_bytes");
            p.keys = w.at("keys");
            rt->xenstore_ops = std::make_unique<XenstoreOps>(p, *rt->stats);
            XenstoreOps* x = rt->xenstore_ops.get();
            DomainRuntime* dr = domains_[g].get();
            dr->active.push_back([x, dr](GuestServices& s) { x->run(dr->kernel_xenbus(s), s); });
            rt->domains = g == 0 ? std::vector<DomId>{0} : std::vector<DomId>{g, 0};
        } else if (rt->type == "xenbus_handshake") {
            DomId g = dom_id(w.at("guest"));
            std::vector<unsigned> devids;
            for (const json& disk : e.at("domains").at(g).at("disks"))
                devids.push_back(*vbd_devid(disk.at("vdev")));
            rt->handshake_front = std::make_unique<XenbusHandshakeFrontend>(devids, *rt->stats);
            XenbusHandshakeFrontend* f = rt->handshake_front.get();
            DomainRuntime* dr = domains_[g].get();
            dr->active.push_back([f, dr](GuestServices& s) { f->run(dr->kernel_xenbus(s), s); });
            rt->domains = {g, 0};
        } else if (rt->type == "fio") {
            build_fio(*rt, w);
        } else if (rt->type == "blkif_misbehaviour") {
            build_misbehaviour(*rt, w);
        } else if (rt->type == "netperf") {
            build_netperf(*rt, w);
        } else if (rt->type == "netif_misbehaviour") {
            build_net_misbehaviour(*rt, w);
        } else if (rt->type == "vga_console") {
            DomId g = dom_id(w.at("guest"));
            VgaConsoleParams p;
            p.lines = w.at("lines");
            p.line_length = w.at("line_length");
            p.clear_screen = w.at("clear_screen");
            rt->console = std::make_unique<VgaConsole>(p, *rt->stats);
            VgaConsole* c = rt->console.get();
            domains_[g]->active.push_back([c](GuestServices& s) { c->run(s); });
            rt->domains = {g, 0};
        } else if (rt->type == "cpu_burn") {
            DomId d = dom_id(w.at("domain"));
            CpuBurnParams p;
            p.slice_cycles = w.at("slice_cycles");
            p.slices = w.at("slices");
            rt->stats->background = p.slices == 0;
            rt->burn = std::make_unique<CpuBurn>(p, *rt->stats);
            CpuBurn* b = rt->burn.get();
            domains_[d]->every_vcpu.push_back([b](GuestServices& s) { b->run(s); });
            rt->domains = {d};
        } else if (rt->type == "grant_copy") {
            DomId g = dom_id(w.at("guest"));
            GrantCopyParams p;
            p.guest_domid = g;
            p.backend_port = hv_->toolstack_alloc_unbound(0, g);
            p.pages = w.at("pages");
            p.rounds = w.at("rounds");
            p.seed = e.at("platform").at("seed").get<std::uint64_t>() * 1000003u + workloads_.size();
            rt->copy_client = std::make_unique<GrantCopyClient>(p, *rt->stats);
            rt->copy_backend = std::make_unique<GrantCopyBackend>(p);
            GrantCopyClient* c = rt->copy_client.get();
            GrantCopyBackend* b = rt->copy_backend.get();
            XenGuest* gg = domains_[g]->guest.get();
            XenGuest* g0 = domains_[0]->guest.get();
            domains_[0]->passive.push_back([b, g0](GuestServices& s) { b->start(*g0, s); });
            domains_[g]->active.push_back([c, gg](GuestServices& s) { c->run(*gg, s); });
            rt->domains = {0, g};
        }
        workloads_.push_back(std::move(rt));
    }
}

Platform::DomainRuntime* Platform::build_block_device(WorkloadRuntime& rt, const json& w) {
    DomId g = 0;
    for (auto& d : domains_)
        if (d->name == w.at("guest")) g = d->id;
    DomainRuntime* guest = domains_[g].get();
    const std::string vdev = w.at("disk");
    json disk;
    for (const json& d : guest->config.at("disks"))
        if (vdev.empty() || d.at("vdev") == vdev) {
            disk = d;
            break;
        }
    const unsigned devid = *vbd_devid(disk.at("vdev"));
    // dom0's side (the disk, blkback) exists for every vbd already (build_backends); only the
    // guest's driver belongs to the workload.
    rt.vbd = find_vbd(g, devid);
    // The guest's driver, as its profile and the scenario say.
    const json& bf = guest->config.at("blkfront");
    const BlkfrontProfile& prof = blkfront_profile(bf.at("profile").get<std::string>());
    BlkfrontParams fp;
    fp.devid = devid;
    fp.backend_domid = 0;
    fp.queues = bf.at("queues").get<unsigned>() ? bf.at("queues").get<unsigned>() : prof.max_queues;
    fp.ring_page_order = bf.at("ring_page_order").get<int>() >= 0 ? bf.at("ring_page_order").get<unsigned>()
                                                                  : prof.ring_page_order;
    const std::string pers = bf.at("persistent_grants");
    fp.persistent_grants = pers == "profile" ? prof.persistent_grants : pers == "on";
    fp.max_indirect_segments = bf.at("max_indirect_segments").get<int>() >= 0
                                   ? bf.at("max_indirect_segments").get<unsigned>()
                                   : prof.max_indirect_segments;
    rt.blkfront = std::make_unique<Blkfront>(*guest->guest, fp, *guest->group);
    if (tracer_.on(TraceCategory::blkif)) trace_blkfront(*rt.blkfront, g);
    rt.domains = {g, 0};
    return guest;
}

void Platform::build_backends() {
    const json& bb = scenario_.effective.at("platform").at("blkback");
    blkback_params_.max_ring_page_order = bb.at("max_ring_page_order");
    blkback_params_.max_queues = bb.at("max_queues");
    blkback_params_.max_indirect_segments = bb.at("max_indirect_segments");
    blkback_params_.feature_persistent = bb.at("feature_persistent");
    blkback_params_.max_persistent_grants = bb.at("max_persistent_grants");
    blkback_params_.grant_mode =
        bb.at("grant_mode") == "copy" ? BlkbackParams::GrantMode::copy : BlkbackParams::GrantMode::map;
    Hypervisor* hv = hv_.get();
    DomainRuntime* dom0 = domains_[0].get();
    BackendKernel* kernel = &dom0_kernel();
    std::vector<std::function<void(GuestServices&)>> detaches;
    // A guest running xenbus_handshake measures the negotiation alone: dom0's "vbd" driver for
    // its devices is the bare handshake backend, with no medium behind it.
    for (const json& w : scenario_.effective.at("workloads"))
        if (w.at("type") == "xenbus_handshake")
            for (auto& d : domains_)
                if (d->name == w.at("guest")) handshake_guests_.insert(d->id);
    // Every vbd the toolstack wrote (write_scenario_layout) gets its medium and the completion
    // PIRQ dom0's backend will bind: a disk of its own for attach "pv", the IDE drive's for
    // attach "ide" (on Xen, QEMU and blkback open the same image).
    for (auto& d : domains_) {
        if (handshake_guests_.count(d->id)) continue;
        for (const json& disk : d->config.at("disks")) {
            auto v = std::make_unique<VbdBackend>();
            v->domid = d->id;
            v->vdev = disk.at("vdev").get<std::string>();
            v->devid = *vbd_devid(v->vdev);
            v->ide = disk.at("attach") == "ide";
            StatsGroup* parent = nullptr;
            if (v->ide) {
                auto it = d->ide_disks.find(v->vdev);
                if (it == d->ide_disks.end()) continue;  // no device model: no drive, nothing to serve
                v->disk = it->second.get();
                parent = d->ide_group.get();
            } else {
                v->group = std::make_unique<StatsGroup>("disk_" + d->name + "_" + v->vdev, &root_);
                v->owned = make_disk(disk, *v->group);
                v->disk = v->owned.get();
                parent = v->group.get();
            }
            BlkbackDisk bd;
            bd.disk = v->disk;
            bd.pirq = next_pirq_++;
            bd.stats_parent = parent;
            hv_->event_channels().grant_pirq(0, bd.pirq);
            const unsigned pirq = bd.pirq;
            bd.raise_irq = [hv, pirq](std::uint64_t at_ps) { hv->raise_pirq_at(0, pirq, at_ps); };
            blkback_disks_[{d->id, "xensim:" + v->vdev}] = bd;
            if (const std::uint64_t detach_us = disk.at("detach_at_us")) {
                // The toolstack's detach reaches dom0 as an event at that time (libxl runs in dom0
                // and is woken then); dom0 performs it in thread context.
                const unsigned tpirq = next_pirq_++;
                hv_->event_channels().grant_pirq(0, tpirq);
                VbdBackend* vb = v.get();
                detaches.push_back([this, vb, kernel, hv, tpirq, detach_us](GuestServices& s) {
                    evtchn_bind_pirq_t b{};
                    b.pirq = tpirq;
                    if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_pirq,
                                    reinterpret_cast<unsigned long>(&b)))
                        return;
                    kernel->set_port_handler(b.port, [this, vb, kernel](BackendServices&) {
                        kernel->defer([this, vb](BackendServices& vs) {
                            toolstack_detach(*vb, static_cast<VcpuGuestServices&>(vs));
                        });
                    });
                    kernel->unmask(static_cast<VcpuGuestServices&>(s), b.port);
                    hv->raise_pirq_at(0, tpirq, detach_us * 1'000'000);
                });
            }
            vbds_.push_back(std::move(v));
        }
    }
    // Dom0's xenbus backend bus and its driver table (netback will add "vif").
    std::vector<BackendDriver> drivers = {
        {"vbd", [this](const BackendDeviceNode& node, BackendKernel& k, BackendServices& s) {
             return probe_vbd(node, k, s);
         }}};
    build_vif_driver(drivers);
    backend_bus_ = std::make_unique<BackendBus>(XenStore::domain_path(0) + "/backend", std::move(drivers),
                                                hv_->domain_stats(0));
    BackendBus* bus = backend_bus_.get();
    dom0->passive.push_back(
        [bus, kernel](GuestServices& s) { bus->start(*kernel, static_cast<VcpuGuestServices&>(s)); });
    for (auto& role : detaches) dom0->passive.push_back(std::move(role));
}

// PV networking (issue 12): the "vif" row of dom0's driver table. Every vif the toolstack writes
// gets a netback attached to dom0's network (build_network), or to the VifNetwork the platform was
// constructed with (model tests); queue q of every vif runs on dom0 vCPU q % dom0 vCPUs (netback.h).
void Platform::build_vif_driver(std::vector<BackendDriver>& drivers) {
    drivers.push_back({"vif", [this](const BackendDeviceNode& node, BackendKernel& k, BackendServices& s) {
                           VifNetwork* net = vif_network_ ? vif_network_ : dom0_network_.get();
                           std::unique_ptr<Netback> b =
                               Netback::probe(node, netback_params_, net, hv_->domain_stats(0), k, s);
                           if (b) netbacks_.push_back(b.get());
                           return std::unique_ptr<BackendDevice>(std::move(b));
                       }});
}

Netback* Platform::netback(DomId frontend, unsigned devid) const {
    const std::string name = "vif_" + std::to_string(frontend) + "_" + std::to_string(devid);
    for (Netback* b : netbacks_)
        if (b->group().name() == name) return b;
    return nullptr;
}

void Platform::add_guest_role(const std::string& domain, GuestRole role) {
    for (auto& d : domains_) {
        if (d->name != domain) continue;
        DomainRuntime* rt = d.get();
        rt->active.push_back(
            [rt, role](GuestServices& s) { role(s, *rt->guest, rt->kernel_xenbus(s), *rt->group); });
        return;
    }
    throw std::invalid_argument("add_guest_role: no domain " + domain);
}

namespace {

// The xenbus_handshake workload's backend (no rings: the negotiation alone) as a bus device.
class HandshakeBackendDevice : public BackendDevice {
  public:
    HandshakeBackendDevice(domid_t guest, unsigned devid) : backend(guest, devid) {}
    void remove(BackendServices&) override {}
    XenbusHandshakeBackend backend;
};

}  // namespace

std::unique_ptr<BackendDevice> Platform::probe_vbd(const BackendDeviceNode& node, BackendKernel& kernel,
                                                   BackendServices& s) {
    if (handshake_guests_.count(node.frontend_id)) {
        auto devid = parse_xenstore_uint(std::optional<std::string>(node.devid));
        if (!devid) return nullptr;
        auto h = std::make_unique<HandshakeBackendDevice>(node.frontend_id, static_cast<unsigned>(*devid));
        h->backend.start(domains_[0]->kernel_xenbus(static_cast<VcpuGuestServices&>(s)));
        return h;
    }
    std::unique_ptr<Blkback> b = Blkback::probe(node, blkback_params_, blkback_disks_, kernel, s);
    if (!b) return nullptr;
    if (VbdBackend* v = find_vbd(node.frontend_id, b->devid())) v->blkback = b.get();
    if (tracer_.on(TraceCategory::blkif)) trace_blkback(*b);
    return b;
}

Platform::VbdBackend* Platform::find_vbd(DomId domid, unsigned devid) {
    for (auto& v : vbds_)
        if (v->domid == domid && v->devid == devid) return v.get();
    return nullptr;
}

void Platform::toolstack_detach(VbdBackend& vbd, GuestServices& dom0) {
    XenbusClient& xb = domains_[0]->kernel_xenbus(dom0);
    const std::string id = std::to_string(vbd.devid);
    const std::string back =
        XenStore::domain_path(0) + "/backend/vbd/" + std::to_string(vbd.domid) + "/" + id;
    const std::string front = XenStore::domain_path(vbd.domid) + "/device/vbd/" + id;
    // libxl__initiate_device_generic_remove: online 0 and state Closing in one transaction
    // (retried on EAGAIN as libxl__xs_transaction_commit's caller does).
    for (;;) {
        auto tx = xb.transaction_start();
        if (!tx) return;
        xb.write(back + "/online", "0", *tx);
        xb.write(back + "/state", std::to_string(static_cast<int>(XenbusStateClosing)), *tx);
        XenbusReply r = xb.transaction_end(*tx, true);
        if (r.ok()) break;
        if (r.error != "EAGAIN") return;
    }
    // libxl__ev_devstate_wait for the backend's Closed, then libxl__device_destroy: both
    // directories removed in one transaction. (No timeout: libxl's LIBXL_DESTROY_TIMEOUT and its
    // forced removal are not modelled; a device whose frontend never closes stays.)
    const std::string token = "libxl-remove:" + back;
    auto done = std::make_shared<bool>(false);
    XenbusClient* x = &xb;
    xb.watch(back + "/state", token, [x, back, front, token, done](const XenbusWatchEvent&) {
        if (*done || parse_xenbus_state(x->read(back + "/state").value_or("")) != XenbusStateClosed) return;
        *done = true;
        x->unwatch(back + "/state", token);
        for (;;) {
            auto tx = x->transaction_start();
            if (!tx) return;
            x->rm(front, *tx);
            x->rm(back, *tx);
            XenbusReply r = x->transaction_end(*tx, true);
            if (r.ok() || r.error != "EAGAIN") return;
        }
    });
}

void Platform::trace_blkfront(Blkfront& front, DomId guest) {
    namespace te = trace_events;
    Tracer* t = &tracer_;
    auto now = [] { return sim_time::now_ps(); };
    auto on_vcpu = [guest](GuestServices& s) { return TraceTrack::vcpu(guest, s.vcpu_id()); };
    front.trace.submit = [t, now, on_vcpu](GuestServices& s, unsigned q, const BlockIo& io) {
        static constexpr std::string_view kOps[] = {"read", "write", "flush", "discard"};
        t->emit(te::blkif_submit, on_vcpu(s), now(), 0,
                {std::uint64_t{q}, io.id, kOps[static_cast<unsigned>(io.op)], io.sector,
                 std::uint64_t{io.sectors}});
    };
    front.trace.push = [t, now, on_vcpu](GuestServices& s, unsigned q, unsigned in_flight, bool notify) {
        t->emit(te::blkif_push, on_vcpu(s), now(), 0,
                {std::uint64_t{q}, std::uint64_t{in_flight}, std::string_view(notify ? "yes" : "no")});
    };
    front.trace.complete = [t, now, on_vcpu](GuestServices& s, unsigned q, std::uint64_t io, int status) {
        t->emit(te::blkif_complete, on_vcpu(s), now(), 0, {std::uint64_t{q}, io, std::int64_t{status}});
    };
}

void Platform::trace_blkback(Blkback& back) {
    namespace te = trace_events;
    Tracer* t = &tracer_;
    auto now = [] { return sim_time::now_ps(); };
    auto on_dom0 = [](BackendServices& s) {
        return TraceTrack::vcpu(0, static_cast<VcpuGuestServices&>(s).vcpu_id());
    };
    back.trace.consume = [t, now, on_dom0](BackendServices& s, unsigned q, unsigned n, unsigned rejected) {
        t->emit(te::blkif_consume, on_dom0(s), now(), 0,
                {std::uint64_t{q}, std::uint64_t{n}, std::uint64_t{rejected}});
    };
    back.trace.respond = [t, now, on_dom0](BackendServices& s, unsigned q, bool notify) {
        t->emit(te::blkif_respond, on_dom0(s), now(), 0,
                {std::uint64_t{q}, std::string_view(notify ? "yes" : "no")});
    };
}

void Platform::build_fio(WorkloadRuntime& rt, const json& w) {
    const json& e = scenario_.effective;
    DomainRuntime* guest = nullptr;
    for (auto& d : domains_)
        if (d->name == w.at("guest")) guest = d.get();
    json disk;
    for (const json& dj : guest->config.at("disks"))
        if (w.at("disk").get<std::string>().empty() || dj.at("vdev") == w.at("disk")) {
            disk = dj;
            break;
        }
    BlockDevice* device = nullptr;
    if (disk.at("attach") == "ide") {
        // The guest's ata_piix driver on the emulated controller; dom0's device model serves it.
        const std::string vdev = disk.at("vdev");
        AtaPiixParams ap;
        ap.channel = static_cast<unsigned>(vdev[2] - 'a') / 2;
        ap.drive = static_cast<unsigned>(vdev[2] - 'a') % 2;
        ap.pio = disk.at("ide_transfer") == "pio";  // libata.dma=0
        ap.set_multiple = disk.at("ide_set_multiple").get<int>();
        ap.host = guest->ata_host.get();
        rt.ata = std::make_unique<AtaPiix>(ap, *guest->group);
        rt.medium = guest->ide_disks.at(vdev).get();
        device = rt.ata.get();
        rt.domains = {guest->id, 0};
    } else {
        build_block_device(rt, w);
        device = rt.blkfront.get();
        rt.medium = rt.vbd->disk;
    }
    FioJobParams jp;
    jp.rw = FioJobParams::parse_rw(w.at("rw").get<std::string>());
    jp.bs = w.at("bs");
    jp.iodepth = w.at("iodepth");
    jp.numjobs = w.at("numjobs");
    jp.size = w.at("size");
    jp.offset = w.at("offset");
    jp.offset_increment = w.at("offset_increment");
    jp.number_ios = w.at("number_ios");
    jp.runtime_ns = w.at("runtime_ms").get<std::uint64_t>() * 1'000'000;
    jp.time_based = w.at("time_based");
    jp.rwmixread = w.at("rwmixread");
    jp.norandommap = w.at("norandommap");
    jp.verify = FioJobParams::parse_verify(w.at("verify").get<std::string>());
    jp.sync = FioJobParams::parse_sync(w.at("sync").get<std::string>());
    jp.seed = e.at("platform").at("seed").get<std::uint64_t>() * 1000003u + workloads_.size();
    const unsigned vcpus = guest->config.at("vcpus");
    rt.fio = std::make_unique<FioWorkload>(jp, *device, *guest->guest, vcpus, *rt.stats,
                                           w.at("fsync").get<unsigned>());
    FioWorkload* fio = rt.fio.get();
    guest->active.push_back(
        [fio, guest](GuestServices& s) { fio->run_boot_vcpu(guest->kernel_xenbus(s), s); });
    guest->other_vcpus.push_back([fio](GuestServices& s) { fio->run_vcpu(s); });
}

// The guest's netfront for nic `nic` (its PV network driver, as the scenario's `netfront` object
// says), made once per nic: the device netperf workloads use unless a test gives its own.
NetDevice* Platform::guest_netfront(DomainRuntime& d, unsigned nic) {
    auto it = d.netfronts.find(nic);
    if (it != d.netfronts.end()) return it->second.get();
    if (nic >= d.config.at("nics").size()) return nullptr;
    NetfrontParams p;
    p.devid = nic;
    p.backend_domid = 0;
    p.profile = d.config.at("netfront").at("profile").get<std::string>();
    p.queues = d.config.at("netfront").at("queues").get<unsigned>();
    p.tso = d.config.at("netfront").at("tso").get<bool>();
    auto nf = std::make_unique<Netfront>(*d.guest, p, *d.group);
    Netfront* raw = nf.get();
    d.netfronts.emplace(nic, std::move(nf));
    return raw;
}

void Platform::build_netperf(WorkloadRuntime& rt, const json& w) {
    const json& e = scenario_.effective;
    DomainRuntime* guest = nullptr;
    DomainRuntime* peer_guest = nullptr;
    for (auto& d : domains_) {
        if (d->name == w.at("guest")) guest = d.get();
        if (d->name == w.at("peer")) peer_guest = d.get();
    }
    const unsigned nic = w.at("nic");
    const std::string name = w.at("name");
    NetDevice* device =
        netperf_hooks_.device ? netperf_hooks_.device(*guest, nic) : guest_netfront(*guest, nic);
    if (!device)
        throw ScenarioError(scenario_.file + ": workload \"" + name + "\": guest \"" + guest->name +
                            "\" has no network device for nic " + std::to_string(nic));
    NetperfSpec spec =
        netperf_spec(w, e.at("platform").at("seed").get<std::uint64_t>() * 1000003u + workloads_.size());
    // Addresses (docs/network.md): a guest's nic k is 10.0.k.<domid>; the remote host at the far end
    // of the wire has the scenario's platform.network.remote address.
    spec.addr.src_mac = *parse_mac(guest->config.at("nics").at(nic).at("mac").get<std::string>());
    spec.addr.src_ip = guest_ipv4(guest->id, nic);
    if (peer_guest) {
        spec.addr.dst_mac = *parse_mac(peer_guest->config.at("nics").at(0).at("mac").get<std::string>());
        spec.addr.dst_ip = guest_ipv4(peer_guest->id, 0);
    } else {
        spec.addr.dst_mac = remote_host_->mac();
        spec.addr.dst_ip = remote_host_->ip();
    }
    if (netperf_hooks_.addresses && !netperf_hooks_.addresses(*guest, nic, w.at("peer"), spec.addr))
        throw ScenarioError(scenario_.file + ": workload \"" + name + "\": no route to peer \"" +
                            w.at("peer").get<std::string>() + "\"");
    rt.net_device = device;
    rt.netperf_spec = spec;
    rt.netperf_peer = w.at("peer");
    rt.net_guest = guest->id;
    rt.net_nic = nic;
    const unsigned vcpus = guest->config.at("vcpus");
    rt.netperf = std::make_unique<NetperfWorkload>(spec, *device, *guest->guest, vcpus, *rt.stats);
    rt.domains = {guest->id, 0};
    if (peer_guest) rt.domains.push_back(peer_guest->id);
    if (netperf_hooks_.attach_peer) {
        netperf_hooks_.attach_peer(rt, spec, rt.netperf_peer);
    } else if (peer_guest) {
        // The other guest runs the test's other end on its nic 0: the same spec seen from there.
        NetDevice* peer_dev = guest_netfront(*peer_guest, 0);
        NetperfSpec mirrored = spec;
        mirrored.addr = spec.addr.reversed();
        mirrored.direction =
            spec.direction == NetperfDirection::send ? NetperfDirection::receive : NetperfDirection::send;
        rt.peer_stats = std::make_unique<WorkloadStats>(workloads_group_, name + "_peer");
        rt.peer_stats->background = true;
        rt.netperf_peer_workload =
            std::make_unique<NetperfWorkload>(mirrored, *peer_dev, *peer_guest->guest,
                                              peer_guest->config.at("vcpus").get<unsigned>(), *rt.peer_stats);
        NetperfWorkload* pw = rt.netperf_peer_workload.get();
        const DomId pid = peer_guest->id;
        rt.netperf->peer_ready = [this, pid] {
            const Netback* b = netback(pid, 0);
            return b && b->state() == XenbusStateConnected;
        };
        peer_guest->active.push_back(
            [pw, peer_guest](GuestServices& s) { pw->run_boot_vcpu(peer_guest->kernel_xenbus(s), s); });
        peer_guest->other_vcpus.push_back([pw](GuestServices& s) { pw->run_vcpu(s); });
    } else {
        // The remote host runs the other end of every stream, with a NIC that offloads checksums
        // and segmentation (TSO) as a 10 Gbit/s server NIC does.
        StatsGroup& peer_group = remote_host_->endpoint_group(name);
        FlowOffloads off;
        off.tx_csum = true;
        off.gso_tcpv4 = true;
        for (unsigned k = 0; k < spec.streams; ++k)
            remote_host_->add_endpoint(make_peer_endpoint(spec, k, off, peer_group));
    }
    NetperfWorkload* np = rt.netperf.get();
    guest->active.push_back([np, guest](GuestServices& s) { np->run_boot_vcpu(guest->kernel_xenbus(s), s); });
    guest->other_vcpus.push_back([np](GuestServices& s) { np->run_vcpu(s); });
}

void Platform::build_misbehaviour(WorkloadRuntime& rt, const json& w) {
    DomainRuntime* guest = build_block_device(rt, w);
    rt.misbehaviour = std::make_unique<BlkifMisbehaviour>(w.at("cases").get<std::vector<std::string>>(),
                                                          *rt.blkfront, *guest->guest, *rt.stats);
    BlkifMisbehaviour* m = rt.misbehaviour.get();
    guest->active.push_back([m, guest](GuestServices& s) { m->run(guest->kernel_xenbus(s), s); });
}

void Platform::build_net_misbehaviour(WorkloadRuntime& rt, const json& w) {
    DomainRuntime* guest = nullptr;
    for (auto& d : domains_)
        if (d->name == w.at("guest")) guest = d.get();
    const unsigned nic = w.at("nic");
    guest_netfront(*guest, nic);  // the scenario validation checked the nic exists
    Netfront* device = guest->netfronts.at(nic).get();
    rt.domains = {guest->id, 0};
    rt.net_guest = guest->id;
    rt.net_nic = nic;
    rt.net_misbehaviour = std::make_unique<NetifMisbehaviour>(w.at("cases").get<std::vector<std::string>>(),
                                                              *device, *guest->guest, *rt.stats);
    NetifMisbehaviour* m = rt.net_misbehaviour.get();
    guest->active.push_back([m, guest](GuestServices& s) { m->run(guest->kernel_xenbus(s), s); });
}

// The groups a netperf workload's report sums (report.cpp, kNetCounters): the guest's netfront for
// the nic (with its queues), dom0's netback for that vif (probed and connected by now: the window
// opens after the device connected), and dom0's NIC.
void Platform::resolve_net_groups(WorkloadRuntime& w) {
    for (auto& d : domains_) {
        if (d->id != w.net_guest) continue;
        auto it = d->netfronts.find(w.net_nic);
        if (it != d->netfronts.end()) w.net_frontend_groups.push_back(&it->second->group());
    }
    if (Netback* b = netback(w.net_guest, w.net_nic)) w.net_backend_groups.push_back(&b->group());
    if (const StatsGroup* nic = hv_->domain_stats(0).find_group("eth0")) w.net_network_groups.push_back(nic);
}

void Platform::mark_phase(DomainRuntime& d, const char* name) {
    if (!d.phases.empty() && d.phases.back().name == name) return;
    d.phases.push_back({name, domain_tally(d)});
}

void Platform::open_window(WorkloadRuntime& w) {
    if (w.opened) return;
    if (w.netperf && w.net_frontend_groups.empty()) resolve_net_groups(w);
    w.opened = true;
    w.window_open = workload_tally(w);
}

void Platform::close_window(WorkloadRuntime& w, const char* why) {
    if (w.closed) return;
    open_window(w);  // a workload that never started: an empty window at the end
    w.closed = true;
    w.closed_by = why;
    w.window_close = workload_tally(w);
}

BackendKernel& Platform::dom0_kernel() {
    if (!dom0_kernel_) {
        DomainRuntime* dom0 = domains_[0].get();
        GuestServices* v0 = dom0->services[0].get();
        auto k = std::make_unique<Dom0Kernel>(
            *dom0->guest, [dom0, v0]() -> XenbusClient& { return dom0->kernel_xenbus(*v0); }, *v0);
        k->set_vcpus(static_cast<unsigned>(dom0->services.size()));
        dom0_kernel_ = std::move(k);
    }
    return *dom0_kernel_;
}

VifNetwork& Platform::vif_network() { return *dom0_network_; }

void Platform::build_network() {
    const json& n = scenario_.effective.at("platform").at("network");
    WireParams wp;
    wp.line_rate_bps = static_cast<std::uint64_t>(std::llround(n.at("line_rate_gbps").get<double>() * 1e9));
    wp.propagation_ps = n.at("propagation_ns").get<std::uint64_t>() * 1000;
    wp.txqueuelen = n.at("txqueuelen");
    wire_ = std::make_unique<WireLink>("wire0", wp, root_);
    Dom0NetworkParams np;
    if (!n.at("bridges").empty()) np.bridges = n.at("bridges").get<std::vector<std::string>>();
    const json& nic = n.at("nic");
    np.interrupt_delay_ps = nic.at("interrupt_delay_us").get<std::uint64_t>() * 1'000'000;
    np.rx_ring = nic.at("rx_ring");
    np.napi_budget = nic.at("napi_budget");
    np.pirq = next_pirq_++;
    hv_->event_channels().grant_pirq(0, np.pirq);
    dom0_network_ = std::make_unique<Dom0Network>(np, *wire_, hv_->domain_stats(0));
    Hypervisor* hv = hv_.get();
    const unsigned pirq = np.pirq;
    dom0_network_->raise_irq = [hv, pirq](std::uint64_t at_ps) { hv->raise_pirq_at(0, pirq, at_ps); };
    RemoteHostParams rp;
    rp.mac = *parse_mac(n.at("remote").at("mac"));
    rp.ip = *parse_ipv4_text(n.at("remote").at("ip"));
    remote_host_ = std::make_unique<RemoteHost>("remote", rp, *wire_, root_);
    bool any_nic = false;
    for (auto& d : domains_) any_nic = any_nic || !d->config.at("nics").empty();
    if (!any_nic) return;  // no vif: dom0's NIC driver is not loaded (no PIRQ bind at boot)
    Dom0Network* net = dom0_network_.get();
    BackendKernel* kernel = &dom0_kernel();
    domains_[0]->passive.push_back(
        [net, kernel](GuestServices& s) { net->start(*kernel, static_cast<VcpuGuestServices&>(s)); });
}

void Platform::build_device_models() {
    // The toolstack starts a device model in dom0 for each guest with emulated devices and
    // registers it with Xen as the guest's ioreq server (XEN_DMOP_create_ioreq_server and
    // XEN_DMOP_map_io_range_to_ioreq_server for the ports it emulates).
    for (auto& d : domains_) {
        if (d->id == 0) continue;
        const bool platform_pci = d->config.at("xen_platform_pci").get<bool>();
        const bool vga = d->config.at("vga") == "stdvga";
        // Where firmware put the IDE function's bus-master BAR: the engine decodes it there and
        // the function's BAR4 says so (the guest finds it by scanning).
        const auto ide_bmdma_base = d->config.at("ide_bmdma_base").get<std::uint16_t>();
        std::vector<const json*> ide;
        for (const json& disk : d->config.at("disks"))
            if (disk.at("attach") == "ide") ide.push_back(&disk);
        if (!platform_pci && ide.empty() && !vga) continue;
        std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges;
        // The PCI host's configuration ports (QEMU's i440FX "pci-conf-idx" and "pci-conf-data").
        ranges.push_back({PciBus::kConfigAddress, PciBus::kConfigData + 3});
        if (platform_pci) ranges.push_back({XenPlatformPorts::kBase, XenPlatformPorts::kBase + 3});
        if (vga) ranges.push_back({StdVga::kPortFirst, StdVga::kPortLast});
        if (!ide.empty()) {
            // The PIIX3 IDE function's legacy ports and its bus-master BAR.
            const std::uint16_t bm = ide_bmdma_base;
            ranges.insert(ranges.end(), {{0x1f0, 0x1f7},
                                         {0x3f6, 0x3f6},
                                         {0x170, 0x177},
                                         {0x376, 0x376},
                                         {bm, static_cast<std::uint16_t>(bm + 15)}});
        }
        const Hypervisor::IoreqServer& srv = hv_->create_ioreq_server(d->id, 0, ranges);
        d->device_model = std::make_unique<DeviceModel>(d->id, root_);
        DeviceModel* dm = d->device_model.get();
        if (platform_pci) {
            d->platform_ports = std::make_unique<XenPlatformPorts>(*d->group);
            dm->add_device(d->platform_ports.get());
        }
        if (vga || !ide.empty()) {
            // QEMU's timers (IDE completions, the buffered-io timer) wake it through its timer fd:
            // a dom0 PIRQ here.
            const unsigned timer_pirq = next_pirq_++;
            hv_->event_channels().grant_pirq(0, timer_pirq);
            Hypervisor* hv = hv_.get();
            dm->attach_timer(timer_pirq,
                             [hv, timer_pirq](std::uint64_t at) { hv->raise_pirq_at(0, timer_pirq, at); });
        }
        if (vga) {
            // The toolstack's XEN_X86_EMU_VGA turns Xen's stdvga intercept on; QEMU maps the
            // legacy window into its ioreq server.
            d->vga = std::make_unique<StdVga>(*d->group);
            dm->add_device(d->vga.get());
            dm->add_mmio_device(d->vga.get());
            hv_->map_mmio_range(d->id, StdVga::kWindowBase, StdVga::kWindowBase + StdVga::kWindowSize - 1);
            hv_->enable_stdvga(d->id);
        }
        // Bus 0 of the xenfv machine; QEMU registers each function it realizes with Xen
        // (xen_map_pcidev), so configuration cycles for it reach this device model.
        d->pci_bus = std::make_unique<PciBus>(*d->group);
        PciBus* bus = d->pci_bus.get();
        for (const auto& [devfn, fn] : xenfv_functions(platform_pci, ide_bmdma_base, vga))
            bus->add(devfn, fn);
        for (std::uint32_t sbdf : bus->sbdfs()) hv_->map_pcidev_to_ioreq_server(d->id, sbdf);
        dm->add_device(bus);
        DeviceModel::PciConfig pci;
        pci.read = [bus](std::uint32_t sbdf, unsigned reg, unsigned size) {
            return bus->config_read(sbdf, reg, size);
        };
        pci.write = [bus](std::uint32_t sbdf, unsigned reg, unsigned size, std::uint32_t v) {
            bus->config_write(sbdf, reg, size, v);
        };
        dm->attach_pci(std::move(pci));
        if (!ide.empty()) {
            d->ide_group = std::make_unique<StatsGroup>("ide_" + d->name, &root_);
            std::array<Disk*, 4> drives{};
            for (const json* disk : ide) {
                const std::string vdev = disk->at("vdev");
                auto img = make_disk(*disk, *d->ide_group);
                drives[static_cast<unsigned>(vdev[2] - 'a')] = img.get();
                d->ide_disks[vdev] = std::move(img);
            }
            GuestMemory* mem = &hv_->domains().find(d->id)->memory;
            // QEMU reaches guest RAM through its map cache (foreign mappings); modelled as direct.
            auto dma = [mem](std::uint64_t gpa, void* buf, std::size_t len, bool write) {
                return write ? mem->write(gpa, buf, len) : mem->read(gpa, buf, len);
            };
            dm->attach_guest_ram(dma);                      // rep strings reach guest RAM the same way
            d->ata_host = std::make_unique<AtaPiixHost>();  // the guest's driver for the controller
            PiixIdeConfig ide_cfg;
            ide_cfg.bmdma_base = ide_bmdma_base;
            d->ide = std::make_unique<PiixIde>(
                ide_cfg, drives, dma,
                [dm](unsigned ch, std::uint64_t at) { dm->schedule_completion(ch, at); }, *d->ide_group);
            PiixIde* piix = d->ide.get();
            DeviceModel::Ide hooks;
            hooks.read = [piix](std::uint16_t p, unsigned sz, std::uint64_t t) {
                return piix->read(p, sz, t);
            };
            hooks.write = [piix](std::uint16_t p, unsigned sz, std::uint32_t v, std::uint64_t t) {
                piix->write(p, sz, v, t);
            };
            hooks.claims = [piix](std::uint16_t p) { return piix->claims(p); };
            hooks.complete = [piix](unsigned ch, std::uint64_t t) { return piix->complete(ch, t); };
            hooks.irq_level = [piix](unsigned ch) { return piix->irq_level(ch); };
            dm->attach_ide(std::move(hooks));
            if (d->platform_ports) {
                // The unplug protocol removes the emulated disks (docs/misc/hvm-emulated-unplug):
                // all IDE disks, or with the auxiliary bit all but the primary master.
                d->platform_ports->on_unplug = [piix](std::uint16_t mask) {
                    for (unsigned i = 0; i < 4; ++i)
                        if ((mask & XenPlatformPorts::kUnplugAllIdeDisks) ||
                            ((mask & XenPlatformPorts::kUnplugAuxIdeDisks) && i != 0))
                            piix->unplug(i);
                };
            }
        }
        BackendKernel* kernel = &dom0_kernel();
        DeviceModel::Pages pages;
        pages.ioreq_gfn = srv.dm_gfn;
        pages.bufioreq_gfn = srv.dm_buf_gfn;
        pages.guest_ports = srv.guest_ports;
        pages.bufioreq_port = srv.bufioreq_port;
        domains_[0]->passive.push_back([dm, kernel, pages](GuestServices& s) {
            dm->start(*kernel, static_cast<VcpuGuestServices&>(s), pages);
        });
    }
}

void Platform::install_programs() {
    for (auto& d : domains_) {
        DomainRuntime* rt = d.get();
        std::vector<GuestServices*> all;
        for (auto& s : rt->services) all.push_back(s.get());
        GuestBootOptions opts;
        opts.upcall = rt->config.at("upcall") == "percpu_vector" ? GuestUpcall::percpu_vector
                                                                 : GuestUpcall::callback_vector;
        opts.grant_frames = rt->config.at("grant_frames");
        // PV drivers go with the Xen platform device; an HVM guest with a device model has an
        // emulated PCI bus (the xenfv machine's bus 0) and enumerates it at boot. (An HVM guest with
        // no emulated device at all has no PCI bus here: no device model answers 0xCF8/0xCFC.)
        opts.unplug_emulated = rt->config.at("xen_platform_pci").get<bool>();
        opts.xen_platform_driver = opts.unplug_emulated;
        opts.pci_scan = rt->type == DomainType::hvm && rt->device_model != nullptr;
        opts.ata_piix = rt->ata_host.get();  // with IDE disks: ata_piix probes the PIIX3 IDE function
        for (std::size_t i = 0; i < rt->services.size(); ++i) {
            GuestServices* s = rt->services[i].get();
            Vcpu& v = hv_->vcpu(rt->id, static_cast<unsigned>(i));
            if (i == 0) {
                v.set_program([this, rt, s, all, opts] {
                    if (rt->guest->boot(all, opts) == 0) {
                        if (rt->id == 0) start_xenstored(*s);
                        for (auto& role : rt->passive) role(*s);
                        for (auto& role : rt->active) role(*s);
                    }
                    for (auto& role : rt->every_vcpu) role(*s);
                    rt->guest->idle(*s);  // deferred work runs on vCPU 0
                });
            } else {
                v.set_program([rt, s] {
                    for (auto& role : rt->other_vcpus) role(*s);
                    for (auto& role : rt->every_vcpu) role(*s);
                    rt->guest->idle(*s);  // kernel threads pinned to this vCPU (XenGuest::defer_on)
                });
            }
        }
    }
}

bool Platform::finite_workloads_done() const {
    // The run waits for every workload that can finish; background loads never do.
    bool any = false;
    for (auto& w : workloads_) {
        if (w->stats->background) continue;
        if (!w->stats->done) return false;
        any = true;
    }
    return any;
}

void Platform::stop_simulation() {
    // Processes still runnable in this delta run before SystemC stops (SC_STOP_FINISH_DELTA), and
    // their waits never end: the horizon becomes now, so none of them runs ahead past the stop.
    hv_->set_stop_ps(sc_core::sc_time_stamp().value());
    sc_core::sc_stop();
}

void Platform::on_progress() {
    // finite_workloads_done() can only turn true when a workload has just finished.
    auto all_done = [this] {
        if (!done_changed_) return false;
        done_changed_ = false;
        return finite_workloads_done();
    };
    if (op_limit_ && seen_ops_total_ >= op_limit_ && !stopped_for_ops_) {
        sim_time::sync();  // the run stops at the time the full path would stop it
        stopped_for_ops_ = true;
        for (auto& w : workloads_)
            if (w->opened) close_window(*w, "op_limit");
        stop_simulation();
    } else if (!stopping_ && all_done()) {
        sim_time::sync();
        stopping_ = true;
        done_ps_ = sc_core::sc_time_stamp().value();
        // The report ends here: pCPU and vCPU time is counted up to now, not in the grace tail.
        hv_->scheduler().finish(done_ps_);
        bool background = false;
        for (auto& w : workloads_) background = background || w->stats->background;
        if (background) {
            stop_simulation();
            return;
        }
        // Let work already under way finish (a backend closing a device, a XenStore reply on its
        // way): SystemC never unwinds a thread stopped in the middle of a call. The report still
        // ends at done_ps_; a run that goes idle sooner ends at once (starvation).
        sim_time::activity_changed();  // a new process
        sc_core::sc_spawn([this] {
            sc_core::wait(sc_core::sc_time(static_cast<double>(kStopGraceUs), sc_core::SC_US));
            stop_simulation();
        });
    }
}

RunResult Platform::run() {
    RunResult r;
    std::uint64_t limit_ms = scenario_.effective.at("stop").at("sim_time_ms");
    hv_->start();
    hv_->set_stop_ps(limit_ms * 1'000'000'000ull);
    auto t0 = std::chrono::steady_clock::now();
    sc_core::sc_start(sc_core::sc_time(static_cast<double>(limit_ms), sc_core::SC_MS),
                      sc_core::SC_EXIT_ON_STARVATION);
    r.host_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.sim_time_ps = sc_core::sc_time_stamp().value();
    for (auto& w : workloads_) close_window(*w, "end_of_run");
    // A closed blkfront's grants the backend still mapped at the close: the guest's deferred grant
    // free (gnttab_handle_deferred's timer) gets its turn at the end, once the disk has drained.
    for (auto& w : workloads_)
        if (w->blkfront) w->blkfront->end_deferred_grants();
    if (stopped_for_ops_)
        r.stop_reason = "op_limit";
    else if (finite_workloads_done()) {
        r.stop_reason = "workloads_done";
        r.sim_time_ps = done_ps_;
    } else if (sc_core::sc_pending_activity() || r.sim_time_ps >= limit_ms * 1'000'000'000ull) {
        // Starvation exit with work still scheduled past the limit: the limit was reached.
        r.stop_reason = "sim_time_limit";
        r.sim_time_ps = limit_ms * 1'000'000'000ull;
    } else {
        r.stop_reason = "stalled";
    }
    // Time accounting covers the report's window [0, sim_time_ps] (already closed at done_ps_ when
    // the workloads finished).
    hv_->scheduler().finish(r.sim_time_ps);
    tracer_.finish();
    return r;
}

}  // namespace xensim
