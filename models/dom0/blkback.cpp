#include "models/dom0/blkback.h"

#include <xen/io/protocols.h>

#include <algorithm>
#include <cstring>

namespace xensim {

namespace {

constexpr unsigned kPage = 4096;

}  // namespace

struct Blkback::Ring {
    unsigned index = 0;
    std::vector<Mapping> ring_pages;
    std::unique_ptr<BlkifRingBackend> engine;
    evtchn_port_t port = 0;
    std::map<grant_ref_t, Mapping> persistent;  // gref -> where it stays mapped
    std::unique_ptr<StatsGroup> group;
};

Blkback::Stats::Stats(StatsGroup& g)
    : requests(g, "requests", "requests", "requests accepted and submitted to the disk"),
      responses_error(g, "responses_error", "responses", "accepted requests answered with an error"),
      responses_dropped(g, "responses_dropped", "responses",
                        "requests completed after the device disconnected (no ring to answer on)"),
      grant_maps(g, "grant_maps", "grants", "grants mapped (ring, indirect and data pages)"),
      grant_unmaps(g, "grant_unmaps", "grants", "grant mappings undone"),
      persistent_hits(g, "persistent_hits", "grants", "data grants found already mapped (persistent)"),
      persistent_maps(g, "persistent_maps", "grants", "grants mapped and kept as persistent"),
      map_failures(g, "map_failures", "grants", "grant maps Xen refused (request answered with an error)"),
      grant_copies(g, "grant_copies", "segments", "segments copied with GNTTABOP_copy (grant_mode copy)"),
      copy_failures(g, "copy_failures", "segments",
                    "grant copies Xen refused (request answered with an error)"),
      disk_irqs(g, "disk_irqs", "interrupts", "disk completion interrupts handled"),
      disk_irqs_empty(g, "disk_irqs_empty", "interrupts", "disk interrupts that found nothing completed"),
      notifications_sent(g, "notifications_sent", "notifications", "EVTCHNOP_send to the frontend"),
      notifications_suppressed(g, "notifications_suppressed", "pushes",
                               "response pushes the frontend's rsp_event said need no notification"),
      connect_failures(g, "connect_failures", "devices", "connects refused (bad or missing XenStore keys)"),
      disconnects(g, "disconnects", "devices", "disconnects (frontend closed, a bogus ring, or a detach)"),
      detaches(g, "detaches", "devices",
               "devices closed with online 0: the toolstack's detach (xl block-detach)"),
      batches(g, "batches", "batches", "ring events that found requests"),
      batch_size(g, "batch_size", "requests", "requests taken off the ring per event") {}

Blkback::Blkback(const BlkbackParams& params, Disk& disk, StatsGroup& parent)
    : p_(params),
      disk_(disk),
      group_("vbd_" + std::to_string(params.frontend_domid) + "_" + std::to_string(params.devid), &parent),
      stats_(group_),
      front_("/local/domain/" + std::to_string(params.frontend_domid) + "/device/vbd/" +
             std::to_string(params.devid)),
      back_("/local/domain/0/backend/vbd/" + std::to_string(params.frontend_domid) + "/" +
            std::to_string(params.devid)) {}

Blkback::~Blkback() = default;

std::size_t Blkback::persistent_grants() const {
    std::size_t n = 0;
    for (const auto& r : rings_) n += r->persistent.size();
    return n;
}

void Blkback::switch_state(XenbusState to) {
    if (fsm_.state() == to || !fsm_.switch_to(to)) return;
    kernel_->xs_write(back_ + "/state", std::to_string(static_cast<int>(to)));
}

void Blkback::start(BackendKernel& kernel, BackendServices& s) {
    kernel_ = &kernel;
    // The disk's completion interrupt.
    evtchn_bind_pirq_t bp{};
    bp.pirq = p_.pirq;
    if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_pirq, reinterpret_cast<unsigned long>(&bp),
                    0, 0, 0) == 0) {
        pirq_port_ = bp.port;
        kernel.set_port_handler(pirq_port_, [this](BackendServices& vs) { disk_irq(vs); });
        kernel.unmask(s, pirq_port_);
    }
    // xen_blkbk_probe.
    kernel.xs_write(back_ + "/feature-max-indirect-segments", std::to_string(p_.max_indirect_segments));
    kernel.xs_write(back_ + "/multi-queue-max-queues", std::to_string(p_.max_queues));
    kernel.xs_write(back_ + "/max-ring-page-order", std::to_string(p_.max_ring_page_order));
    switch_state(XenbusStateInitWait);
    // watch_otherend (registered by xenbus_dev_probe after the driver's probe in Linux).
    watching_ = kernel.xs_watch(front_ + "/state", "blkback:" + back_,
                                [this](BackendServices& vs, const std::string&) { frontend_changed(vs); });
}

std::unique_ptr<Blkback> Blkback::probe(const BackendDeviceNode& node, const BlkbackParams& tunables,
                                        const BlkbackDiskTable& disks, BackendKernel& kernel,
                                        BackendServices& s) {
    auto devid = parse_xenstore_uint(std::optional<std::string>(node.devid));
    auto params = kernel.xs_read(node.nodename + "/params");
    if (!devid || !params) return nullptr;
    auto it = disks.find({node.frontend_id, *params});
    if (it == disks.end() || !it->second.disk || !it->second.stats_parent) return nullptr;
    BlkbackParams p = tunables;
    p.frontend_domid = node.frontend_id;
    p.devid = static_cast<unsigned>(*devid);
    p.pirq = it->second.pirq;
    auto back = std::make_unique<Blkback>(p, *it->second.disk, *it->second.stats_parent);
    back->raise_irq = it->second.raise_irq;
    back->start(kernel, s);
    return back;
}

void Blkback::unwatch_frontend() {
    if (!watching_) return;
    watching_ = false;
    kernel_->xs_unwatch(front_ + "/state", "blkback:" + back_);
}

void Blkback::frontend_changed(BackendServices& s) {
    // An event queued before the watch was dropped (unregister_xenbus_watch discards them).
    if (!watching_) return;
    XenbusState peer = parse_xenbus_state(kernel_->xs_read(front_ + "/state").value_or(""));
    switch (peer) {
        case XenbusStateInitialised:
        case XenbusStateConnected:
            if (fsm_.state() == XenbusStateInitWait) {
                if (connect_rings(s))
                    connect(s);
                else
                    disconnect(s);
            }
            break;
        case XenbusStateClosing:
            disconnect(s);
            switch_state(XenbusStateClosing);
            break;
        case XenbusStateClosed:
            disconnect(s);
            switch_state(XenbusStateClosing);
            switch_state(XenbusStateClosed);
            // xenbus_dev_is_online: a device the toolstack took offline is unregistered.
            if (parse_xenstore_uint(kernel_->xs_read(back_ + "/online")).value_or(0) == 0) {
                stats_.detaches.inc();
                unwatch_frontend();
            }
            break;
        default:
            break;
    }
}

void Blkback::remove(BackendServices& s) {
    // xen_blkbk_remove. The state node is gone with the directory: no state write (Linux's
    // xenbus_switch_state finds no state node and writes nothing either).
    if (!kernel_) return;
    unwatch_frontend();
    disconnect(s);
}

void Blkback::fail(BackendServices& s, const std::string& why) {
    stats_.connect_failures.inc();  // and, as xenbus_dev_fatal does, the reason in the error node
    kernel_->xs_write(back_ + "/error", why);
    disconnect(s);
    switch_state(XenbusStateClosing);
}

std::optional<std::uint64_t> Blkback::frame(BackendServices& s) {
    if (!free_frames_.empty()) {
        std::uint64_t g = free_frames_.back();
        free_frames_.pop_back();
        return g;
    }
    return s.take_unpopulated_frame();
}

bool Blkback::map_ring(BackendServices& s, Ring& r, const std::vector<grant_ref_t>& refs) {
    std::vector<gnttab_map_grant_ref_t> ops(refs.size());
    for (std::size_t i = 0; i < refs.size(); ++i) {
        auto g = frame(s);
        if (!g) return false;
        ops[i] = {};
        ops[i].host_addr = *g << 12;
        ops[i].flags = GNTMAP_host_map;
        ops[i].ref = refs[i];
        ops[i].dom = p_.frontend_domid;
    }
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                reinterpret_cast<unsigned long>(ops.data()), ops.size(), 0, 0);
    bool ok = true;
    for (auto& op : ops) {
        if (op.status == GNTST_okay) {
            stats_.grant_maps.inc();
            r.ring_pages.push_back({op.host_addr >> 12, op.handle});
        } else {
            free_frames_.push_back(op.host_addr >> 12);
            ok = false;
        }
    }
    if (!ok) return false;
    // The engine needs the pages as one span (Linux vmaps them). Only a frontend that granted one
    // contiguous allocation can be modelled: refuse anything else rather than read past a page.
    std::uint8_t* base = s.page(r.ring_pages[0].gfn);
    for (std::size_t i = 1; i < r.ring_pages.size(); ++i)
        if (s.page(r.ring_pages[i].gfn) != base + i * kPage) return false;
    return base != nullptr;
}

bool Blkback::connect_rings(BackendServices& s) {
    BackendKernel& k = *kernel_;
    auto protocol = k.xs_read(front_ + "/protocol");
    if (protocol && *protocol != XEN_IO_PROTO_ABI_X86_64) {
        fail(s, "unsupported protocol " + *protocol);
        return false;
    }
    persistent_ = p_.grant_mode == BlkbackParams::GrantMode::map && p_.feature_persistent &&
                  k.xs_read_uint(front_ + "/feature-persistent").value_or(0) == 1;
    unsigned queues = k.xs_read_uint(front_ + "/multi-queue-num-queues").value_or(1);
    if (queues == 0 || queues > p_.max_queues) {
        fail(s, "multi-queue-num-queues out of range");
        return false;
    }
    ring_page_order_ = k.xs_read_uint(front_ + "/ring-page-order").value_or(0);
    if (ring_page_order_ > p_.max_ring_page_order) {
        fail(s, "ring-page-order out of range");
        return false;
    }
    const unsigned pages = 1u << ring_page_order_;
    for (unsigned q = 0; q < queues; ++q) {
        const std::string dir = queues > 1 ? front_ + "/queue-" + std::to_string(q) : front_;
        std::vector<grant_ref_t> refs;
        for (unsigned i = 0; i < pages; ++i) {
            auto ref =
                k.xs_read_uint(dir + (ring_page_order_ ? "/ring-ref" + std::to_string(i) : "/ring-ref"));
            if (!ref) {
                fail(s, "missing ring-ref in " + dir);
                return false;
            }
            refs.push_back(*ref);
        }
        auto evtchn = k.xs_read_uint(dir + "/event-channel");
        if (!evtchn) {
            fail(s, "missing event-channel in " + dir);
            return false;
        }
        auto ring = std::make_unique<Ring>();
        ring->index = q;
        ring->group = std::make_unique<StatsGroup>("ring" + std::to_string(q), &group_);
        rings_.push_back(std::move(ring));
        Ring& r = *rings_.back();
        if (!map_ring(s, r, refs)) {
            fail(s, "mapping ring " + std::to_string(q) + " failed");
            return false;
        }
        BlkifBackendConfig cfg;
        cfg.ring_page_order = ring_page_order_;
        cfg.disk_sectors = disk_.sectors();
        cfg.read_only = disk_.config().read_only;
        cfg.max_indirect_segments = p_.max_indirect_segments;
        cfg.feature_flush = p_.feature_flush;
        cfg.feature_barrier = false;
        cfg.feature_discard = p_.feature_discard;
        r.engine = std::make_unique<BlkifRingBackend>(s.page(r.ring_pages[0].gfn), cfg, *r.group);
        evtchn_bind_interdomain_t bind{};
        bind.remote_dom = p_.frontend_domid;
        bind.remote_port = *evtchn;
        if (s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                        reinterpret_cast<unsigned long>(&bind), 0, 0, 0) != 0) {
            fail(s, "binding event-channel " + std::to_string(*evtchn) + " failed");
            return false;
        }
        r.port = bind.local_port;
        k.set_port_handler(r.port, [this, q](BackendServices& vs) { ring_event(vs, q); });
        k.unmask(s, r.port);
    }
    return true;
}

void Blkback::connect(BackendServices& s) {
    (void)s;
    BackendKernel& k = *kernel_;
    // connect(): the features and the disk's geometry, then Connected.
    k.xs_write(back_ + "/feature-flush-cache", p_.feature_flush ? "1" : "0");
    k.xs_write(back_ + "/feature-discard", p_.feature_discard ? "1" : "0");
    k.xs_write(back_ + "/feature-persistent", persistent_ ? "1" : "0");
    k.xs_write(back_ + "/sectors", std::to_string(disk_.sectors()));
    k.xs_write(back_ + "/info", disk_.config().read_only ? std::to_string(VDISK_READONLY) : "0");
    k.xs_write(back_ + "/sector-size", std::to_string(kSectorSize));
    switch_state(XenbusStateConnected);
}

void Blkback::unmap(BackendServices& s, const std::vector<Mapping>& maps) {
    if (maps.empty()) return;
    std::vector<gnttab_unmap_grant_ref_t> ops(maps.size());
    for (std::size_t i = 0; i < maps.size(); ++i) {
        ops[i] = {};
        ops[i].host_addr = maps[i].gfn << 12;
        ops[i].handle = maps[i].handle;
    }
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref,
                reinterpret_cast<unsigned long>(ops.data()), ops.size(), 0, 0);
    for (std::size_t i = 0; i < maps.size(); ++i) {
        if (ops[i].status == GNTST_okay) stats_.grant_unmaps.inc();
        free_frames_.push_back(maps[i].gfn);
    }
}

void Blkback::disconnect(BackendServices& s) {
    if (rings_.empty()) return;
    stats_.disconnects.inc();
    closing_ = true;
    for (auto& r : rings_) {
        if (r->port) {
            kernel_->clear_port_handler(r->port);
            evtchn_close_t c{};
            c.port = r->port;
            s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_close, reinterpret_cast<unsigned long>(&c), 0,
                        0, 0);
        }
        std::vector<Mapping> maps = r->ring_pages;
        for (const auto& [ref, m] : r->persistent) maps.push_back(m);
        unmap(s, maps);
    }
    rings_.clear();
}

void Blkback::ring_event(BackendServices& s, unsigned q) {
    if (closing_ || q >= rings_.size()) return;
    Ring& r = *rings_[q];
    bool notify = false;
    do {
        BlkifRingBackend::Batch batch = r.engine->consume();
        if (batch.disconnect) {
            // "Frontend provided bogus ring requests": stop, and close the device from thread context.
            closing_ = true;
            kernel_->defer([this](BackendServices& vs) {
                disconnect(vs);
                switch_state(XenbusStateClosing);
            });
            return;
        }
        if (!batch.verdicts.empty()) {
            stats_.batches.inc();
            stats_.batch_size.sample(batch.verdicts.size());
        }
        notify |= batch.notify;
        if (trace.consume && !batch.verdicts.empty())
            trace.consume(s, q, static_cast<unsigned>(batch.accepted.size()), batch.rejected);
        for (BlkbackRequest& req : batch.accepted) dispatch(s, q, req);
        notify |= r.engine->flush_responses();
    } while (r.engine->final_check());
    if (notify) {
        evtchn_send_t send{};
        send.port = r.port;
        s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send), 0,
                    0, 0);
        stats_.notifications_sent.inc();
    }
}

bool Blkback::map_segments(BackendServices& s, Ring& r, const BlkbackRequest& req, bool readonly,
                           std::vector<std::uint8_t*>& pages, std::vector<Mapping>& unmap_later) {
    const std::size_t n = req.segments.size();
    pages.assign(n, nullptr);
    std::vector<gnttab_map_grant_ref_t> ops;
    std::vector<std::size_t> op_seg;  // which segment each op maps
    std::vector<bool> keep;           // mapping becomes persistent
    for (std::size_t i = 0; i < n; ++i) {
        grant_ref_t ref = req.segments[i].gref;
        if (persistent_) {
            auto it = r.persistent.find(ref);
            if (it != r.persistent.end()) {
                stats_.persistent_hits.inc();
                pages[i] = s.page(it->second.gfn);
                continue;
            }
        }
        // xen_blkbk_map: every segment not found among the persistent grants is mapped, a grant
        // named twice in one request twice (Xen pins it once per mapping); only one of the two
        // can be kept (add_persistent_gnt refuses a gref already in the tree), the other is undone
        // at completion like any non-persistent mapping.
        auto g = frame(s);
        if (!g) return false;
        gnttab_map_grant_ref_t op{};
        op.host_addr = *g << 12;
        // The limit is per ring: ring->persistent_gnt_c < max_pgrants (xen_blkbk_map).
        const std::size_t kept = static_cast<std::size_t>(std::count(keep.begin(), keep.end(), true));
        bool persist = persistent_ && r.persistent.size() + kept < p_.max_persistent_grants;
        op.flags = GNTMAP_host_map | (readonly && !persist ? GNTMAP_readonly : 0);
        op.ref = ref;
        op.dom = p_.frontend_domid;
        ops.push_back(op);
        op_seg.push_back(i);
        keep.push_back(persist);
    }
    bool ok = true;
    if (!ops.empty()) {
        s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                    reinterpret_cast<unsigned long>(ops.data()), ops.size(), 0, 0);
        for (std::size_t k = 0; k < ops.size(); ++k) {
            const auto& op = ops[k];
            Mapping m{op.host_addr >> 12, op.handle};
            if (op.status != GNTST_okay) {
                stats_.map_failures.inc();
                free_frames_.push_back(m.gfn);
                ok = false;
                continue;
            }
            stats_.grant_maps.inc();
            if (keep[k] && r.persistent.emplace(op.ref, m).second) {
                stats_.persistent_maps.inc();
            } else {
                unmap_later.push_back(m);
            }
            pages[op_seg[k]] = s.page(m.gfn);
        }
    }
    return ok;
}

void Blkback::release_local(const std::vector<std::uint64_t>& pages) {
    local_pool_.insert(local_pool_.end(), pages.begin(), pages.end());
}

bool Blkback::copy_segments(BackendServices& s, const std::vector<blkif_request_segment>& segs, bool to_guest,
                            std::vector<std::uint8_t*>& pages, InFlight& f) {
    pages.assign(segs.size(), nullptr);
    std::vector<gnttab_copy_t> ops(segs.size());
    for (std::size_t i = 0; i < segs.size(); ++i) {
        std::uint64_t local;
        if (!local_pool_.empty()) {
            local = local_pool_.back();
            local_pool_.pop_back();
        } else if (auto g = s.alloc_page()) {
            local = *g;
        } else {
            return false;
        }
        f.local.push_back(local);
        pages[i] = s.page(local);
        const auto& sg = segs[i];
        gnttab_copy_t& c = ops[i];
        c = {};
        const std::uint16_t offset = static_cast<std::uint16_t>(sg.first_sect * kSectorSize);
        const std::uint16_t len =
            static_cast<std::uint16_t>((sg.last_sect - sg.first_sect + 1u) * kSectorSize);
        if (to_guest) {
            c.source.u.gmfn = local;
            c.source.domid = DOMID_SELF;
            c.source.offset = offset;
            c.dest.u.ref = sg.gref;
            c.dest.domid = p_.frontend_domid;
            c.dest.offset = offset;
            c.flags = GNTCOPY_dest_gref;
        } else {
            c.source.u.ref = sg.gref;
            c.source.domid = p_.frontend_domid;
            c.source.offset = offset;
            c.dest.u.gmfn = local;
            c.dest.domid = DOMID_SELF;
            c.dest.offset = offset;
            c.flags = GNTCOPY_source_gref;
        }
        c.len = len;
    }
    if (to_guest) {
        f.copy_out.insert(f.copy_out.end(), ops.begin(), ops.end());
        return true;
    }
    s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_copy, reinterpret_cast<unsigned long>(ops.data()),
                ops.size(), 0, 0);
    bool ok = true;
    for (const auto& c : ops) {
        if (c.status == GNTST_okay) {
            stats_.grant_copies.inc();
        } else {
            stats_.copy_failures.inc();
            ok = false;
        }
    }
    return ok;
}

void Blkback::dispatch(BackendServices& s, unsigned q, BlkbackRequest& req) {
    Ring& r = *rings_[q];
    s.compute(s.costs().blkback_request);
    stats_.requests.inc();
    InFlight f{q, req.id, req.response_operation(), BLKIF_RSP_OKAY, {}, {}, {}};
    if (req.operation == BLKIF_OP_INDIRECT) {
        // xen_blkbk_parse_indirect: map the indirect pages, read the segments once, unmap.
        BlkbackRequest ind;
        // A whole page each (first_sect 0, last_sect 7): up to 512 descriptors of 8 bytes. The
        // sectors matter to grant_mode copy, which copies first_sect..last_sect.
        for (grant_ref_t g : req.indirect_grefs)
            ind.segments.push_back({g, 0, static_cast<std::uint8_t>(kPage / kSectorSize - 1)});
        std::vector<std::uint8_t*> pages;
        std::vector<Mapping> maps;
        InFlight staging{q, req.id, 0, 0, {}, {}, {}};
        bool mapped =
            p_.grant_mode == BlkbackParams::GrantMode::copy
                ? copy_segments(s,
                                std::vector<blkif_request_segment>(ind.segments.begin(), ind.segments.end()),
                                false, pages, staging)
                : map_segments(s, r, ind, true, pages, maps);
        bool parsed = false;
        if (mapped) {
            std::vector<const blkif_request_segment*> segs;
            for (auto* p : pages) segs.push_back(reinterpret_cast<const blkif_request_segment*>(p));
            parsed = r.engine->parse_indirect_segments(req, segs);  // writes the error response itself
        }
        unmap(s, maps);
        release_local(staging.local);
        if (!parsed) {
            if (!mapped) respond(s, q, req.id, f.operation, BLKIF_RSP_ERROR);
            stats_.responses_error.inc();
            return;
        }
    }
    StorageRequest sr;
    sr.id = req.id;
    sr.sector = req.sector_number;
    std::vector<std::uint8_t*>& pages = pages_;
    const std::uint8_t op = f.operation;
    std::uint8_t* data = nullptr;
    bool direct = false;
    if (op == BLKIF_OP_READ || op == BLKIF_OP_WRITE) {
        const bool ok =
            p_.grant_mode == BlkbackParams::GrantMode::copy
                ? copy_segments(s,
                                std::vector<blkif_request_segment>(req.segments.begin(), req.segments.end()),
                                op == BLKIF_OP_READ, pages, f)
                : map_segments(s, r, req, op == BLKIF_OP_WRITE, pages, f.unmap);
        if (!ok) {
            unmap(s, f.unmap);
            release_local(f.local);
            respond(s, q, req.id, op, BLKIF_RSP_ERROR);
            stats_.responses_error.inc();
            return;
        }
        sr.op = op == BLKIF_OP_READ ? StorageOp::read : StorageOp::write;
        sr.sectors = static_cast<std::uint32_t>(req.total_sectors());
        // One segment is one contiguous run of sectors in one granted page: the disk reads or
        // writes the mapped page itself, as the bio would. Several segments go through one
        // contiguous bounce buffer, since Disk::submit takes a single data pointer.
        direct = req.segments.size() == 1;
        if (direct) {
            data = pages[0] + req.segments[0].first_sect * kSectorSize;
        } else {
            bounce_.resize(std::size_t{sr.sectors} * kSectorSize);
            data = bounce_.data();
        }
        if (op == BLKIF_OP_WRITE && !direct) {
            std::size_t at = 0;
            for (std::size_t i = 0; i < req.segments.size(); ++i) {
                const auto& seg = req.segments[i];
                std::size_t len = (seg.last_sect - seg.first_sect + 1u) * kSectorSize;
                std::memcpy(bounce_.data() + at, pages[i] + seg.first_sect * kSectorSize, len);
                at += len;
            }
        }
    } else if (op == BLKIF_OP_FLUSH_DISKCACHE) {
        sr.op = StorageOp::flush;
    } else if (op == BLKIF_OP_DISCARD) {
        sr.op = StorageOp::discard;
        sr.sectors = req.nr_sectors;  // the full 64-bit length, as Linux's sector_t (dispatch_discard_io)
    } else {
        respond(s, q, req.id, op, BLKIF_RSP_EOPNOTSUPP);
        stats_.responses_error.inc();
        return;
    }
    // The bio is submitted once the grant maps (or copies) are done: the map hypercall's time is
    // part of the request's latency (xen_blkbk_map, then submit_bio in dispatch_rw_block_io).
    const std::uint64_t now_ns = s.now_ns();
    Disk::Result res = disk_.submit(sr, now_ns * 1000, data);
    if (!res.ok) {
        f.status = BLKIF_RSP_ERROR;
        stats_.responses_error.inc();
    } else if (op == BLKIF_OP_READ && !direct) {
        std::size_t at = 0;
        for (std::size_t i = 0; i < req.segments.size(); ++i) {
            const auto& seg = req.segments[i];
            std::size_t len = (seg.last_sect - seg.first_sect + 1u) * kSectorSize;
            std::memcpy(pages[i] + seg.first_sect * kSectorSize, bounce_.data() + at, len);
            at += len;
        }
    }
    std::uint64_t done_ns = (res.complete_ps + 999) / 1000;
    if (done_ns < now_ns) done_ns = now_ns;
    auto pos = std::upper_bound(in_flight_.begin(), in_flight_.end(), done_ns,
                                [](std::uint64_t t, const auto& e) { return t < e.first; });
    in_flight_.emplace(pos, done_ns, std::move(f));
    arm_irq(done_ns);
}

void Blkback::respond(BackendServices& s, unsigned q, std::uint64_t id, std::uint8_t op,
                      std::int16_t status) {
    (void)s;
    rings_[q]->engine->push_response(id, op, status, false);
}

void Blkback::arm_irq(std::uint64_t at_ns) {
    // One completion interrupt outstanding at a time, for the earliest completion.
    if (irq_armed_ && irq_armed_ns_ <= at_ns) return;
    irq_armed_ = true;
    irq_armed_ns_ = at_ns;
    if (raise_irq) raise_irq(at_ns * 1000);
}

void Blkback::disk_irq(BackendServices& s) {
    stats_.disk_irqs.inc();
    const std::uint64_t now_ns = s.now_ns();
    if (irq_armed_ && irq_armed_ns_ <= now_ns) irq_armed_ = false;  // the armed interrupt fired
    const std::size_t before = in_flight_.size();
    std::vector<bool> touched(rings_.size(), false);
    while (!in_flight_.empty() && in_flight_.begin()->first <= now_ns) {
        InFlight f = std::move(in_flight_.front().second);
        in_flight_.pop_front();
        unmap(s, f.unmap);
        if (closing_ || f.ring >= rings_.size()) {
            release_local(f.local);
            stats_.responses_dropped.inc();
            continue;
        }
        if (!f.copy_out.empty() && f.status == BLKIF_RSP_OKAY) {
            // Grant copy: the data read goes to the guest's pages now, in one batch.
            s.hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_copy,
                        reinterpret_cast<unsigned long>(f.copy_out.data()), f.copy_out.size(), 0, 0);
            for (const auto& c : f.copy_out) {
                if (c.status == GNTST_okay) {
                    stats_.grant_copies.inc();
                } else {
                    stats_.copy_failures.inc();
                    f.status = BLKIF_RSP_ERROR;
                }
            }
            if (f.status != BLKIF_RSP_OKAY) stats_.responses_error.inc();
        }
        release_local(f.local);
        respond(s, f.ring, f.id, f.operation, f.status);
        touched[f.ring] = true;
    }
    if (in_flight_.size() == before) stats_.disk_irqs_empty.inc();
    if (!in_flight_.empty()) arm_irq(in_flight_.begin()->first);  // re-arm for the next completion
    for (std::size_t q = 0; q < rings_.size(); ++q) {
        if (!touched[q]) continue;
        const bool notify = rings_[q]->engine->flush_responses();
        if (trace.respond) trace.respond(s, static_cast<unsigned>(q), notify);
        if (notify) {
            evtchn_send_t send{};
            send.port = rings_[q]->port;
            s.hypercall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, reinterpret_cast<unsigned long>(&send),
                        0, 0, 0);
            stats_.notifications_sent.inc();
        } else {
            stats_.notifications_suppressed.inc();
        }
    }
}

}  // namespace xensim
