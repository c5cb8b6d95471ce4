// The per-domain and per-workload state the platform keeps (shared by platform.cpp and report.cpp).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "frontends/ata_piix.h"
#include "frontends/blkfront.h"
#include "frontends/blkif_misbehaviour.h"
#include "frontends/netif_misbehaviour.h"
#include "frontends/cpu_burn.h"
#include "frontends/vga_console.h"
#include "frontends/fio_workload.h"
#include "frontends/netfront.h"
#include "frontends/netperf_workload.h"
#include "models/devices/pci_bus.h"
#include "models/devices/piix_ide.h"
#include "models/devices/xen_platform.h"
#include "models/dom0/blkback.h"
#include "models/devices/std_vga.h"
#include "models/dom0/device_model.h"
#include "models/dom0/storage.h"
#include "frontends/xenbus_client.h"
#include "frontends/xenbus_handshake.h"
#include "frontends/xenstore_ops.h"
#include "sim/platform/platform.h"

namespace xensim {

// The counters a report divides or subtracts, by name ("exits.HLT",
// "hypercalls.event_channel_op/EVTCHNOP_send", "upcalls", "block.grant_maps" ...), at one moment of
// simulated time. The run takes one when a domain marks a phase and when a workload's window opens
// and closes (Platform::domain_tally, Platform::workload_tally); the report takes differences, so
// each section counts exactly what happened between its two moments.
struct Platform::Tally {
    std::uint64_t at_ps = 0;
    std::map<std::string, std::uint64_t> counts;
    std::uint64_t get(const std::string& key) const {
        auto it = counts.find(key);
        return it == counts.end() ? 0 : it->second;
    }
};

struct Platform::DomainRuntime {
    DomId id;
    std::string name;
    DomainType type;
    nlohmann::json config;
    std::unique_ptr<StatsGroup> group;
    std::unique_ptr<Counter> unclaimed_io;
    std::unique_ptr<Counter> rep_io_faults;  // rep strings Xen refused (buffer not RAM: #GP)
    std::unique_ptr<XenGuest> guest;
    std::map<unsigned, std::unique_ptr<Netfront>> netfronts;  // by nic: the PV network drivers in use
    std::vector<std::unique_ptr<VcpuGuestServices>> services;
    // Roles run on vCPU 0 after boot: passive ones (start) then active ones (run to completion).
    std::vector<std::function<void(GuestServices&)>> passive, active;
    // Roles every vCPU runs (vCPU 0 after its own roles).
    std::vector<std::function<void(GuestServices&)>> every_vcpu;
    // Roles the vCPUs other than 0 run (before every_vcpu roles).
    std::vector<std::function<void(GuestServices&)>> other_vcpus;
    // The store channel the toolstack allocated (a guest's end for xenstored; dom0's kernel end of
    // its loopback to xenstored) and the ring frame.
    evtchn_port_t store_port = 0;
    Gfn store_ring = 0;
    // The device model emulating this guest's devices (xen_platform_pci), and its devices.
    std::unique_ptr<DeviceModel> device_model;
    std::unique_ptr<XenPlatformPorts> platform_ports;
    std::unique_ptr<StdVga> vga;  // vga: "stdvga"
    // The machine's PCI bus 0 (config space of the xenfv functions, 0xCF8-0xCFF).
    std::unique_ptr<PciBus> pci_bus;
    // IDE disks (attach "ide") on the device model's PIIX3 controller, by vdev.
    std::unique_ptr<StatsGroup> ide_group;
    std::map<std::string, std::unique_ptr<Disk>> ide_disks;
    std::unique_ptr<PiixIde> ide;
    // The guest's ata_piix driver's hold on that controller (probed at boot, shared by the disks).
    std::unique_ptr<AtaPiixHost> ata_host;
    // Phases the guest marked (GuestServices::mark_phase): where each began, and the domain's
    // exit and hypercall counts at that moment (domain_tally; the report takes differences).
    struct Phase {
        std::string name;
        Tally at;
    };
    std::vector<Phase> phases;
    // The kernel's xenbus client on vCPU 0, connected on first use.
    std::unique_ptr<XenbusClient> xenbus;
    XenbusClient& kernel_xenbus(GuestServices& vcpu0) {
        if (!xenbus) {
            xenbus = std::make_unique<XenbusClient>(*guest, vcpu0);
            // A PV kernel finds its store in start_info (store_mfn / store_evtchn); dom0, PV or PVH,
            // has its own frame and the local channel set up for xenstored (xenbus_init's
            // xen_initial_domain() branch: no HVM params to read).
            if (type == DomainType::pv || id == 0)
                xenbus->connect_at(store_ring, store_port);
            else
                xenbus->connect();
        }
        return *xenbus;
    }
};

// One vbd the toolstack wrote (every disk of every guest): its medium and, once dom0's backend
// bus has probed it, the backend serving it.
struct Platform::VbdBackend {
    DomId domid = 0;
    unsigned devid = 0;
    std::string vdev;
    bool ide = false;                   // attach "ide": the medium is the IDE drive's (shared image)
    std::unique_ptr<StatsGroup> group;  // attach "pv": disk_<guest>_<vdev>
    std::unique_ptr<Disk> owned;        // attach "pv": the disk itself
    Disk* disk = nullptr;
    Blkback* blkback = nullptr;  // set by the "vbd" driver's probe
};

struct Platform::WorkloadRuntime {
    std::string name, type;
    std::unique_ptr<WorkloadStats> stats;
    std::unique_ptr<EvtchnPingPong> pingpong;
    std::unique_ptr<GrantCopyClient> copy_client;
    std::unique_ptr<GrantCopyBackend> copy_backend;
    std::unique_ptr<CpuBurn> burn;
    std::unique_ptr<VgaConsole> console;
    std::unique_ptr<XenstoreOps> xenstore_ops;
    std::unique_ptr<XenbusHandshakeFrontend> handshake_front;
    // fio on a PV disk: the disk and dom0's backend for it (the platform's VbdBackend; blkback is
    // there once dom0's backend bus has probed the device), the guest's driver and the job runner.
    VbdBackend* vbd = nullptr;
    const Blkback* blkback() const { return vbd ? vbd->blkback : nullptr; }
    std::unique_ptr<Blkfront> blkfront;
    Disk* medium = nullptr;        // the disk the workload's data lands on (for the audit)
    std::unique_ptr<AtaPiix> ata;  // fio on an IDE disk: the guest's ata_piix driver
    std::unique_ptr<FioWorkload> fio;
    std::unique_ptr<BlkifMisbehaviour> misbehaviour;
    // netif_misbehaviour: the guest's netfront misbehaving on purpose (net_guest / net_nic).
    std::unique_ptr<NetifMisbehaviour> net_misbehaviour;
    // netperf: the guest's workload over its NetDevice (owned by the network wiring), and the
    // spec the peer's end was built from.
    std::unique_ptr<NetperfWorkload> netperf;
    NetDevice* net_device = nullptr;
    NetperfSpec netperf_spec;
    std::string netperf_peer;
    // Where the report reads the network path's counters for this workload (report.cpp
    // kNetCounters): the guest's netfront queue groups, dom0's netback queue groups for the vif,
    // and the groups of dom0's network (bridge, NIC, wire) the traffic crosses. Set by the
    // network wiring; empty: those figures are 0.
    // A guest-to-guest test's other end: the peer guest runs the mirrored spec (its passive end) on
    // its own netfront; its figures are not the workload's operations.
    std::unique_ptr<WorkloadStats> peer_stats;
    std::unique_ptr<NetperfWorkload> netperf_peer_workload;
    DomId net_guest = 0;
    unsigned net_nic = 0;
    std::vector<const StatsGroup*> net_frontend_groups, net_backend_groups, net_network_groups;
    std::vector<DomId> domains;  // domains taking part (per-request figures are over these)
    // The workload's window (docs/report-schema.md): it opens when the workload starts issuing
    // (WorkloadStats::start) and closes when it finishes, when the op limit stops the run, or at
    // the end of a run that stopped without it finishing. Per-request figures are window / ops;
    // what came before the window is the workload's set-up.
    Tally window_open, window_close;
    bool opened = false, closed = false;
    std::string closed_by;         // finished | op_limit | end_of_run
    std::uint64_t seen_ops = 0;    // ops at the last progress call
    bool seen_done = false;        // stats->done at the last progress call
    std::uint64_t last_op_ps = 0;  // when the last operation completed
};

}  // namespace xensim
