// Scenario -> built platform -> run -> results.
//
// The builder plays the toolstack: it creates dom0 and the guests with their vCPUs, memory,
// weights and pinning, writes their XenStore nodes and gives each guest its store ring (a guest
// frame recorded in HVM_PARAM_STORE_PFN and in the reserved grant GNTTAB_RESERVED_XENSTORE) and
// store channel (HVM_PARAM_STORE_EVTCHN); dom0 runs xenstored, which connects every guest's ring
// at dom0 boot. Dom0's kernel finds its backends as Linux's xenbus backend bus does
// (models/dom0/backend_bus.h): it watches its backend directory and probes the driver for each
// device's type from the platform's driver table ("vbd": blkback, over the disks the platform
// creates for every vbd as the toolstack and hardware would). It allocates the event channels a workload
// needs as libxl allocates console and xenstore channels (EVTCHNOP_alloc_unbound on the guest's behalf,
// before it runs), gives each domain a guest kernel (XenGuest) and each vCPU its program: vCPU 0 boots the
// kernel (its hypercalls are counted like any other), starts the domain's workload roles, runs the active
// ones, then idles; other vCPUs idle. The run ends when every workload is done, when the op limit
// or the simulated-time limit is reached (background loads such as an endless cpu_burn are not
// waited for), or — reported as "stalled" — when nothing is left to
// happen while a workload is still unfinished.
//
// SystemC elaborates once per process, so a process builds and runs one Platform.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frontends/evtchn_pingpong.h"
#include "frontends/grant_copy.h"
#include "frontends/workload.h"
#include "frontends/xen_guest.h"
#include "frontends/xenbus_client.h"
#include "models/dom0/backend_bus.h"
#include "models/dom0/backend_kernel.h"
#include "models/dom0/blkback.h"
#include "models/dom0/netback.h"
#include "models/dom0/vif_network.h"
#include "models/dom0/xenstored.h"
#include "models/xen/hypervisor.h"
#include "models/xen/xenstore_store.h"
#include "sim/core/cost_model.h"
#include "sim/core/stats.h"
#include "sim/core/trace.h"
#include "sim/platform/scenario.h"
#include "sim/platform/vcpu_guest_services.h"

namespace xensim {

struct RunResult {
    std::string stop_reason;  // workloads_done | sim_time_limit | op_limit | stalled
    std::uint64_t sim_time_ps = 0;
    double host_seconds = 0;
};

class Blkfront;
class Blkback;
class Dom0Network;
class RemoteHost;
class VifNetwork;
class WireLink;

class Platform {
  public:
    struct DomainRuntime;
    struct WorkloadRuntime;
    // What the network wiring (netfront, dom0's bridge and wire) provides to netperf workloads.
    // Given to the constructor (tests give a NetDevice of their own) or filled by the code that
    // builds the PV network path before build_workloads; every member may be empty (then: no device -> the
    // scenario is refused; default addresses; no peer attached).
    struct NetperfHooks {
        // The guest's NetDevice for its nic `nic` (its netfront), or nullptr when it has none.
        std::function<NetDevice*(DomainRuntime& guest, unsigned nic)> device;
        // Fills addr's dst_mac / dst_ip (the peer: the remote host on the wire, or the peer guest's
        // nic 0) and src_ip (the guest's address on that nic); false: the peer is unknown.
        std::function<bool(DomainRuntime& guest, unsigned nic, const std::string& peer, PacketAddress& addr)>
            addresses;
        // Attaches the peer's end of every stream: make_peer_endpoint(spec, k, offloads, group) for
        // k < spec.streams, run by the remote host on the wire or by the peer guest's responder.
        std::function<void(WorkloadRuntime& rt, const NetperfSpec& spec, const std::string& peer)>
            attach_peer;
    };

    Platform(const Scenario& scenario, Tracer& tracer, NetperfHooks netperf_hooks = {});
    // PV networking (issue 12): model tests may give a VifNetwork of their own (not owned; must
    // outlive the Platform) in place of dom0's network (build_network) for netback to attach to.
    Platform(const Scenario& scenario, Tracer& tracer, VifNetwork* vif_network);
    ~Platform();

    // A program for vCPU 0 of `domain` after its boot and its other roles (a test hook, and the
    // seam a network workload can use): it gets the vCPU, the guest kernel, its xenbus client and
    // the domain's `guest` stats group. Call before run().
    using GuestRole = std::function<void(GuestServices&, XenGuest&, XenbusClient&, StatsGroup&)>;
    void add_guest_role(const std::string& domain, GuestRole role);
    // The tunables every netback gets (defaults: Linux's module parameters, max queues = dom0's
    // vCPUs); changes before run() apply to every vif probed.
    NetbackParams& netback_params() { return netback_params_; }
    // The netback serving (frontend domain, devid), once probed; nullptr otherwise.
    Netback* netback(DomId frontend, unsigned devid) const;

    RunResult run();
    // report.json (sim/platform/report.cpp); `run` is the result of run().
    nlohmann::json report(const RunResult& run) const;

    Hypervisor& hypervisor() { return *hv_; }
    XenStore& xenstore() { return *store_; }
    // Held around every XenStore access when a socket server shares the store with the run.
    std::mutex& xenstore_mutex() { return store_mutex_; }
    const StatsGroup& stats() const { return root_; }

    // dom0's network (build_network): what netback attaches vifs to and transmits into, the
    // Dom0Network behind it, the wire to the remote host and the remote host itself (where network
    // workloads add their far-end netperf endpoints). Always built; dom0 binds the NIC's PIRQ at boot
    // only when some domain has a nic.
    VifNetwork& vif_network();
    Dom0Network& dom0_network() { return *dom0_network_; }
    WireLink& wire() { return *wire_; }
    RemoteHost& remote_host() { return *remote_host_; }

    // Per-domain and per-workload state, and counter snapshots (platform_runtime.h).
    struct Tally;
    struct VbdBackend;

  private:
    Platform(const Scenario& scenario, Tracer& tracer, NetperfHooks netperf_hooks, VifNetwork* vif_network);
    void build_domains();
    void build_xenstore();
    void start_xenstored(GuestServices& dom0);
    void build_workloads();
    void build_device_models();
    // Every vbd gets a medium (and a completion PIRQ), dom0 a backend bus with the driver table,
    // and the toolstack its timed detaches.
    void build_backends();
    // The "vbd" driver's probe: blkback (or, for a guest running xenbus_handshake, the bare
    // handshake backend that workload measures).
    std::unique_ptr<BackendDevice> probe_vbd(const BackendDeviceNode& node, BackendKernel& kernel,
                                             BackendServices& s);
    // xl block-detach as libxl performs it (libxl__initiate_device_generic_remove, then
    // libxl__device_destroy once the backend is Closed), from dom0's xenbus client.
    void toolstack_detach(VbdBackend& vbd, GuestServices& dom0);
    VbdBackend* find_vbd(DomId domid, unsigned devid);
    // With the blkif trace category on: blkfront's and blkback's observation points emit events.
    void trace_blkfront(Blkfront& front, DomId guest);
    void trace_blkback(Blkback& back);
    BackendKernel& dom0_kernel();
    // platform.network: dom0's bridges and physical NIC (Dom0Network), the wire (WireLink) and the
    // remote host at its far end; the NIC's PIRQ, bound by dom0 at boot when any domain has a nic.
    void build_network();
    void mark_phase(DomainRuntime& d, const char* name);
    // Snapshots of the counters a report uses (defined in report.cpp beside the figures they feed):
    // one domain's exits and hypercalls (phases); a workload's per-request figures (windows).
    Tally domain_tally(const DomainRuntime& d) const;
    Tally workload_tally(const WorkloadRuntime& w) const;
    void open_window(WorkloadRuntime& w);
    void close_window(WorkloadRuntime& w, const char* why);
    // A guest disk with dom0's blkback and the guest's blkfront (fio and blkif_misbehaviour).
    DomainRuntime* build_block_device(WorkloadRuntime& rt, const nlohmann::json& workload);
    void build_fio(WorkloadRuntime& rt, const nlohmann::json& workload);
    void build_misbehaviour(WorkloadRuntime& rt, const nlohmann::json& workload);
    // A netperf workload (frontends/netperf_workload.h) on a guest's nic, over the NetDevice the
    // network wiring gives for it (netperf_hooks_); without one, a ScenarioError names the nic.
    void build_netperf(WorkloadRuntime& rt, const nlohmann::json& workload);
    NetDevice* guest_netfront(DomainRuntime& d, unsigned nic);
    // A netif_misbehaviour workload (frontends/netif_misbehaviour.h) on a guest's netfront.
    void build_net_misbehaviour(WorkloadRuntime& rt, const nlohmann::json& workload);
    void resolve_net_groups(WorkloadRuntime& w);

  private:
    NetperfHooks netperf_hooks_;
    void install_programs();
    void on_progress();
    void stop_simulation();  // sc_stop(), with the fast paths' horizon at the stop
    bool finite_workloads_done() const;

    Scenario scenario_;
    Tracer& tracer_;
    CostModel cost_;
    Clock clock_;
    StatsGroup root_;
    StatsGroup workloads_group_;
    std::unique_ptr<Hypervisor> hv_;
    StatsGroup xenstore_group_;
    std::unique_ptr<XenStore> store_;
    std::unique_ptr<Xenstored> xenstored_;
    std::mutex store_mutex_;
    std::vector<std::unique_ptr<DomainRuntime>> domains_;
    std::vector<std::unique_ptr<WorkloadRuntime>> workloads_;
    std::unique_ptr<BackendKernel> dom0_kernel_;  // what dom0's backends see of its kernel
    std::vector<std::unique_ptr<VbdBackend>> vbds_;
    BlkbackDiskTable blkback_disks_;  // what blkback's probe finds by params
    BlkbackParams blkback_params_;    // platform.blkback: the tunables every blkback gets
    std::set<DomId> handshake_guests_;
    std::unique_ptr<BackendBus> backend_bus_;  // dom0's xenbus backend bus
    // PV networking (build_vif_driver): dom0's network, netback's tunables, the vifs probed.
    VifNetwork* vif_network_ = nullptr;
    NetbackParams netback_params_;
    std::vector<Netback*> netbacks_;
    void build_vif_driver(std::vector<BackendDriver>& drivers);
    unsigned next_pirq_ = 16;                    // PIRQs handed to dom0's disks
    std::unique_ptr<WireLink> wire_;             // dom0's physical NIC <-> the remote host
    std::unique_ptr<Dom0Network> dom0_network_;  // bridges + NIC (VifNetwork for netback)
    std::unique_ptr<RemoteHost> remote_host_;    // the far end of the wire
    std::uint64_t op_limit_ = 0;
    static constexpr std::uint64_t kStopGraceUs = 1000;  // simulated time allowed for work under way
    bool stopping_ = false;
    // The stop condition without a scan over the workloads per operation (issue 13): the sum of
    // every workload's seen_ops, and whether a workload finished since finite_workloads_done()
    // was last asked. Exact because a workload's ops only grow in WorkloadStats::complete_op (or
    // an ops.inc() followed at once by on_progress) and its done only in finish(), each of which
    // reports through its own on_progress before any other workload's.
    std::uint64_t seen_ops_total_ = 0;
    bool done_changed_ = true;
    std::uint64_t done_ps_ = 0;  // when the last finite workload finished
    bool stopped_for_ops_ = false;
};

}  // namespace xensim
