// BackendBus: dom0's xenbus backend bus — how dom0 finds the backends it must run.
//
// The problem. Nobody tells dom0's kernel "serve disk xvda of domain 1". The toolstack (libxl's
// libxl__device_generic_add) writes a device's frontend and backend directories in XenStore
// (docs/xenstore-layout.md); dom0's kernel watches its `backend` directory, notices a new
// `backend/<type>/<frontend-domid>/<devid>` and hands it to the driver registered for <type>
// ("vbd": blkback, "vif": netback). When the toolstack removes the directory, the device goes. So
// a backend exists for every device the toolstack wrote, whether or not the guest ever uses it,
// and the backend's discovery costs dom0 XenStore requests and watch events like any other.
//
// What is modelled, following Linux 6.1 drivers/xen/xenbus/xenbus_probe_backend.c and
// xenbus_probe.c:
//  * start(): xenbus_probe_devices — XS_DIRECTORY of backend, of backend/<type> per type, of
//    backend/<type>/<domid> per frontend domain (xenbus_probe_device_type, xenbus_probe_backend),
//    and xenbus_probe_node for each device found; then register_xenbus_watch on `backend`
//    (be_watch; its first event, for `backend` itself, is ignored as xenbus_dev_changed ignores a
//    path with fewer than two components below the root).
//  * Each watch event (backend_changed -> xenbus_dev_changed): a path with fewer than two
//    components below the root (backend/<type>) is ignored. If the path no longer exists (one
//    XS_DIRECTORY: xenbus_exists), every device at or below it is removed
//    (xenbus_cleanup_devices -> xenbus_dev_remove -> the driver's remove). Otherwise its device
//    root (three components: type, frontend domid, devid) is probed unless already known; a path
//    with only two components exists but names no device (strsep_len fails) and is left.
//  * xenbus_probe_node: the device's `state` must read Initialising (else the device is not new —
//    one going away after Closed, or one whose nodes are not all written yet — and is skipped,
//    counted); backend_bus_id / talk_to_otherend: `frontend-id` (a number) and `frontend` (not
//    empty, and existing: XS_DIRECTORY) must be there, else the device is incomplete, counted, and
//    not registered (a later event retries it, as in Linux). A complete device is registered; the
//    driver for its type is looked up in the table; none: it stays unbound (counted), as a device
//    whose module is not loaded. Otherwise xenbus_dev_probe calls the driver's probe; a probe that
//    fails gets xenbus_dev_probe's `fail:` path: xenbus_dev_error's message in
//    error/backend/<type>/<domid>/<devid>/error and the device's state set to Closed (counted).
//    A registered device, bound or not, is not probed again until it is removed.
//  * Determinism: devices are probed in the order XS_DIRECTORY lists them (xenstored's children
//    order) and removed in path order.
//
// Where it deliberately differs from Linux:
//  * The root is the absolute /local/domain/<dom0>/backend (Linux watches the relative
//    "backend"; xenstored resolves it to the same node, and the requests are the same).
//  * talk_to_otherend's second read of frontend-id / frontend and exists check are not repeated
//    (backend_bus_id has just made them); watch_otherend (the watch on the frontend's state) is
//    registered by the driver's own probe, not by the bus.
//  * A removed device's backend object is kept (not freed) until the bus is destroyed: requests it
//    had at the disk may still complete into it; the driver's remove() has made it inert.
//  * No uevents / hotplug scripts: the toolstack's `params` node names the medium directly.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/dom0/backend_kernel.h"
#include "sim/core/stats.h"

namespace xensim {

// What xenbus_probe_node and talk_to_otherend read of a device (struct xenbus_device's
// nodename, devicetype, otherend_id, otherend).
struct BackendDeviceNode {
    std::string type;      // "vbd", "vif"
    std::string nodename;  // /local/domain/0/backend/<type>/<frontend_id>/<devid>
    std::string devid;     // the last component, as written by the toolstack
    domid_t frontend_id = 0;
    std::string frontend;  // the frontend's directory (the other end)
};

// A bound device: what the bus keeps of a driver's backend for one device.
class BackendDevice {
  public:
    virtual ~BackendDevice() = default;
    // The device's directory vanished (xenbus_dev_remove -> the driver's remove): disconnect and
    // go inert. Thread context. May be called on a device that has already closed itself.
    virtual void remove(BackendServices& s) = 0;
};

// One row of the driver table (struct xenbus_driver's ids and probe): the driver for devices of
// `type`. probe runs in thread context; it returns the device's backend, or nullptr if it refuses
// the device (the bus then fails it as xenbus_dev_probe does).
struct BackendDriver {
    std::string type;
    std::function<std::unique_ptr<BackendDevice>(const BackendDeviceNode&, BackendKernel&, BackendServices&)>
        probe;
};

class BackendBus {
  public:
    // `root`: dom0's backend directory (/local/domain/0/backend). `drivers`: the table, one row
    // per type (the first row of a type wins). Stats in `parent`.xenbus_backend.
    BackendBus(std::string root, std::vector<BackendDriver> drivers, StatsGroup& parent);
    ~BackendBus();
    BackendBus(const BackendBus&) = delete;
    BackendBus& operator=(const BackendBus&) = delete;

    // In thread context on dom0 (once xenstored is up): enumerate, then watch.
    void start(BackendKernel& kernel, BackendServices& s);

    // Devices registered now (bound to a driver or not), by nodename.
    std::vector<std::string> devices() const;
    // The bound backend of a registered device, or nullptr (unknown, unbound or failed).
    BackendDevice* device(const std::string& nodename) const;

    struct Stats {
        explicit Stats(StatsGroup& g);
        Counter watch_events, probes, probe_failures, unbound, not_initialising, incomplete, removals;
    };
    const Stats& stats() const { return stats_; }

  private:
    struct Registered {
        std::string type;
        std::unique_ptr<BackendDevice> backend;  // null: no driver, or its probe failed
    };

    void changed(BackendServices& s, const std::string& path);
    void probe_node(BackendServices& s, const std::string& type, const std::string& nodename);
    void cleanup(BackendServices& s, const std::string& path);
    const BackendDriver* driver(const std::string& type) const;

    std::string root_;
    std::vector<BackendDriver> drivers_;
    StatsGroup group_;
    Stats stats_;
    BackendKernel* kernel_ = nullptr;
    std::map<std::string, Registered> devices_;
    std::vector<std::unique_ptr<BackendDevice>> removed_;  // kept alive, see the opening comment
};

}  // namespace xensim
