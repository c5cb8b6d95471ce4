// dom0's xenbus backend bus (models/dom0/backend_bus.h) over the real XenStore engine, with the
// toolstack's layout (sim/platform/xenstore_layout.h): devices found at start and when the
// toolstack writes them later (xenbus_probe_devices, backend_changed -> xenbus_dev_changed),
// dispatch by type through the driver table, what xenbus_probe_node refuses, removal when the
// directory vanishes (xenbus_cleanup_devices), and blkback as the "vbd" driver finding its disk by
// `params`. No SystemC: the fake kernel speaks XenStore's wire protocol to the store engine as
// dom0's privileged connection and delivers watch events when the test says so (as the xenwatch
// thread runs them later).
#include "models/dom0/backend_bus.h"

#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "models/dom0/blkback.h"
#include "models/dom0/storage.h"
#include "models/xen/xenstore_store.h"
#include "sim/platform/xenstore_layout.h"
#include "tests/unit/timers_kept_kernel.h"

namespace xensim {
namespace {

const std::string kRoot = "/local/domain/0/backend";

std::string arg(const std::string& s) { return s + std::string(1, '\0'); }

std::vector<std::string> split_nul(const std::string& p) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < p.size()) {
        std::size_t end = p.find('\0', at);
        if (end == std::string::npos) end = p.size();
        out.push_back(p.substr(at, end - at));
        at = end + 1;
    }
    return out;
}

class FakeServices : public BackendServices {
  public:
    FakeServices() : costs_(CostModel::defaults()) {}
    const CostModel& costs() const override { return costs_; }
    void compute(Cycles) override {}
    std::uint64_t now_ns() const override { return 0; }
    long hypercall(unsigned op, unsigned long a1, unsigned long a2, unsigned long, unsigned long,
                   unsigned long) override {
        if (op == __HYPERVISOR_event_channel_op && a1 == EVTCHNOP_bind_pirq) {
            reinterpret_cast<evtchn_bind_pirq_t*>(a2)->port = next_port++;
            return 0;
        }
        return -XEN_ENOSYS;
    }
    std::optional<std::uint64_t> alloc_page() override { return std::nullopt; }
    void free_page(std::uint64_t) override {}
    std::uint8_t* page(std::uint64_t) override { return nullptr; }
    std::optional<std::uint64_t> take_unpopulated_frame() override { return std::nullopt; }

    CostModel costs_;
    evtchn_port_t next_port = 10;
};

// dom0's kernel as the bus sees it, over the store engine: every call is one wire request on
// dom0's privileged connection; watch events queue until deliver().
// Its timers are kept, never fired: nothing it drives arms one (no vif with a `rate`).
class StoreKernel : public TimersKeptKernel {
  public:
    explicit StoreKernel(XenStore& store) : store_(store), conn_(store.connect(0, true)) {}

    XsMessage request(std::uint32_t type, const std::string& payload) {
        ++requests[XenStore::type_name(type)];
        XsMessage m;
        m.type = type;
        m.req_id = next_req_++;
        m.payload = payload;
        return store_.handle(conn_, m).at(0);
    }
    std::optional<std::string> xs_read(const std::string& path) override {
        XsMessage r = request(XS_READ, arg(path));
        if (r.type == XS_ERROR) return std::nullopt;
        return r.payload;
    }
    bool xs_write(const std::string& path, const std::string& value) override {
        return request(XS_WRITE, arg(path) + value).type != XS_ERROR;
    }
    std::optional<std::vector<std::string>> xs_directory(const std::string& path) override {
        XsMessage r = request(XS_DIRECTORY, arg(path));
        if (r.type == XS_ERROR) return std::nullopt;
        return split_nul(r.payload);
    }
    bool xs_watch(const std::string& path, const std::string& token,
                  std::function<void(BackendServices&, const std::string&)> callback) override {
        if (request(XS_WATCH, arg(path) + arg(token)).type == XS_ERROR) return false;
        callbacks_[token] = std::move(callback);
        return true;
    }
    bool xs_unwatch(const std::string& path, const std::string& token) override {
        callbacks_.erase(token);
        return request(XS_UNWATCH, arg(path) + arg(token)).type != XS_ERROR;
    }
    void set_port_handler(evtchn_port_t, std::function<void(BackendServices&)>) override {}
    void clear_port_handler(evtchn_port_t) override {}
    void unmask(BackendServices&, evtchn_port_t) override {}
    void mask(BackendServices&, evtchn_port_t) override {}
    void defer(std::function<void(BackendServices&)> work) override { deferred_.push_back(std::move(work)); }

    // Runs every queued watch event (and deferred work) until none is left, as xenwatch would.
    void deliver(BackendServices& s) {
        for (;;) {
            for (const XsMessage& e : store_.take_events(conn_)) {
                auto parts = split_nul(e.payload);
                if (parts.size() < 2) continue;
                auto cb = callbacks_.find(parts[1]);
                if (cb == callbacks_.end()) continue;
                auto fn = cb->second;
                deferred_.push_back([fn, path = parts[0]](BackendServices& vs) { fn(vs, path); });
            }
            if (deferred_.empty()) return;
            auto work = std::move(deferred_.front());
            deferred_.pop_front();
            work(s);
        }
    }

    std::map<std::string, unsigned> requests;  // by XS_* name

  private:
    XenStore& store_;
    XsConnId conn_;
    std::uint32_t next_req_ = 1;
    std::map<std::string, std::function<void(BackendServices&, const std::string&)>> callbacks_;
    std::deque<std::function<void(BackendServices&)>> deferred_;
};

// A driver that records what it was given.
struct Probed {
    std::string type, nodename, devid, frontend;
    domid_t frontend_id;
};

class RecordingDevice : public BackendDevice {
  public:
    explicit RecordingDevice(unsigned& removed) : removed_(removed) {}
    void remove(BackendServices&) override { ++removed_; }

  private:
    unsigned& removed_;
};

struct Recorder {
    std::vector<Probed> probed;
    unsigned removed = 0;
    bool refuse = false;
    BackendDriver driver(const std::string& type) {
        return {type,
                [this](const BackendDeviceNode& n, BackendKernel&,
                       BackendServices&) -> std::unique_ptr<BackendDevice> {
                    probed.push_back({n.type, n.nodename, n.devid, n.frontend, n.frontend_id});
                    if (refuse) return nullptr;
                    return std::make_unique<RecordingDevice>(removed);
                }};
    }
};

struct Fixture {
    StatsGroup root{""};
    XenStore store{root};
    StoreKernel kernel{store};
    FakeServices s;
    Fixture() {
        write_domain_layout(store, 0, "Domain-0", 1024 * 1024, 1);
        for (DomId d : {1, 2}) write_domain_layout(store, d, "guest" + std::to_string(d), 256 * 1024, 1);
    }
};

// Devices the toolstack wrote before dom0's kernel came up are found by the enumeration at start
// (xenbus_probe_devices): each handed to its type's driver once, with what xenbus_probe_node and
// talk_to_otherend read; a type with no driver (vif, netback not loaded) is registered unbound.
TEST(BackendBus, EnumeratesDevicesPresentAtStartAndDispatchesByType) {
    Fixture f;
    write_vbd(f.store, 1, 0, 51712, "xvda", "w");
    write_vbd(f.store, 2, 0, 51712, "xvda", "w");
    write_vif(f.store, 1, 0, 0, "00:16:3e:00:00:01");
    Recorder vbd;
    BackendBus bus(kRoot, {vbd.driver("vbd")}, f.root);
    bus.start(f.kernel, f.s);
    f.kernel.deliver(f.s);
    ASSERT_EQ(vbd.probed.size(), 2u);
    EXPECT_EQ(vbd.probed[0].type, "vbd");
    EXPECT_EQ(vbd.probed[0].nodename, kRoot + "/vbd/1/51712");
    EXPECT_EQ(vbd.probed[0].devid, "51712");
    EXPECT_EQ(vbd.probed[0].frontend_id, 1);
    EXPECT_EQ(vbd.probed[0].frontend, "/local/domain/1/device/vbd/51712");
    EXPECT_EQ(vbd.probed[1].nodename, kRoot + "/vbd/2/51712");  // XS_DIRECTORY order
    EXPECT_EQ(bus.stats().probes.value(), 2u);
    EXPECT_EQ(bus.stats().unbound.value(), 1u) << "backend/vif/1/0: no driver for vif";
    EXPECT_EQ(bus.devices(),
              (std::vector<std::string>{kRoot + "/vbd/1/51712", kRoot + "/vbd/2/51712", kRoot + "/vif/1/0"}));
    EXPECT_NE(bus.device(kRoot + "/vbd/1/51712"), nullptr);
    EXPECT_EQ(bus.device(kRoot + "/vif/1/0"), nullptr);
    // xenbus_probe_devices: backend, backend/vbd, backend/vbd/1, backend/vbd/2, backend/vif,
    // backend/vif/1, and one xenbus_exists of each frontend (3). The watch's first event (for
    // the root itself) costs nothing more.
    EXPECT_EQ(f.kernel.requests["XS_DIRECTORY"], 9u);
    EXPECT_EQ(f.kernel.requests["XS_READ"], 9u) << "state, frontend-id, frontend per device";
    EXPECT_EQ(f.kernel.requests["XS_WATCH"], 1u);
    EXPECT_EQ(bus.stats().watch_events.value(), 1u);
}

// A device the toolstack writes after dom0 is up is found from the watch (backend_changed): it is
// probed once, however many of its nodes fired the watch; the rest of the events only cost the
// xenbus_exists check.
TEST(BackendBus, BackendAppearsWhenTheToolstackWritesNodesAfterStart) {
    Fixture f;
    Recorder vbd;
    BackendBus bus(kRoot, {vbd.driver("vbd")}, f.root);
    bus.start(f.kernel, f.s);
    f.kernel.deliver(f.s);
    EXPECT_TRUE(vbd.probed.empty());
    EXPECT_EQ(f.kernel.requests["XS_DIRECTORY"], 1u) << "backend does not exist yet";
    f.kernel.requests.clear();
    // The toolstack's whole write (libxl does it in one transaction): every node fires.
    write_vbd(f.store, 1, 0, 51728, "xvdb", "r");
    f.kernel.deliver(f.s);
    ASSERT_EQ(vbd.probed.size(), 1u);
    EXPECT_EQ(vbd.probed[0].nodename, kRoot + "/vbd/1/51728");
    EXPECT_EQ(vbd.probed[0].frontend_id, 1);
    const std::uint64_t events = bus.stats().watch_events.value() - 1;  // the registration's
    EXPECT_GT(events, 10u) << "each node written under backend/ fires the watch";
    // Every event names a node at or below the device's directory (the mkdir, its permissions,
    // each key): one xenbus_exists each, plus the frontend's at the probe.
    EXPECT_EQ(f.kernel.requests["XS_DIRECTORY"], events + 1);
    EXPECT_EQ(f.kernel.requests["XS_READ"], 3u) << "one xenbus_probe_node";
    EXPECT_EQ(bus.stats().probes.value(), 1u);
}

// What xenbus_probe_node refuses, one case a row: the device is not probed, is counted, and stays
// unregistered, so a later event retries it.
TEST(BackendBus, IncompleteOrNotNewDevicesAreNotProbedAndAreCounted) {
    struct Case {
        const char* intent;
        std::string node;   // removed after write_vbd ("" : none)
        std::string state;  // written after write_vbd ("" : untouched)
        bool incomplete, not_initialising;
    } cases[] = {
        {"no frontend-id: backend_bus_id's xenbus_gather fails", "frontend-id", "", true, false},
        {"no frontend path: xenbus_gather fails", "frontend", "", true, false},
        {"frontend directory absent: xenbus_exists fails", "@frontend", "", true, false},
        {"no state: xenbus_read_driver_state is Unknown, not new", "state", "", false, true},
        {"state Closed: a device going away is not new", "", "6", false, true},
    };
    for (const Case& c : cases) {
        Fixture f;
        write_vbd(f.store, 1, 0, 51712, "xvda", "w");
        const std::string dev = kRoot + "/vbd/1/51712";
        if (c.node == "@frontend")
            f.store.rm("/local/domain/1/device/vbd/51712");
        else if (!c.node.empty())
            f.store.rm(dev + "/" + c.node);
        if (!c.state.empty()) f.store.write(dev + "/state", c.state);
        Recorder vbd;
        BackendBus bus(kRoot, {vbd.driver("vbd")}, f.root);
        bus.start(f.kernel, f.s);
        f.kernel.deliver(f.s);
        EXPECT_TRUE(vbd.probed.empty()) << c.intent;
        EXPECT_EQ(bus.stats().incomplete.value(), c.incomplete ? 1u : 0u) << c.intent;
        EXPECT_EQ(bus.stats().not_initialising.value(), c.not_initialising ? 1u : 0u) << c.intent;
        EXPECT_TRUE(bus.devices().empty()) << c.intent;
        // The toolstack completes the device: the next event probes it.
        write_vbd(f.store, 1, 0, 51712, "xvda", "w");
        f.kernel.deliver(f.s);
        EXPECT_EQ(vbd.probed.size(), 1u) << c.intent;
    }
}

// A driver that refuses its device gets xenbus_dev_probe's fail path: the error node and Closed;
// the device stays registered (no second probe on later events).
TEST(BackendBus, RefusedProbeWritesTheErrorAndClosesTheDevice) {
    Fixture f;
    write_vbd(f.store, 1, 0, 51712, "xvda", "w");
    Recorder vbd;
    vbd.refuse = true;
    BackendBus bus(kRoot, {vbd.driver("vbd")}, f.root);
    bus.start(f.kernel, f.s);
    f.kernel.deliver(f.s);
    EXPECT_EQ(bus.stats().probe_failures.value(), 1u);
    EXPECT_EQ(f.store.read(kRoot + "/vbd/1/51712/state"), "6");
    EXPECT_EQ(f.store.read("/local/domain/0/error/backend/vbd/1/51712/error"),
              "19 xenbus_dev_probe on backend/vbd/1/51712");
    f.store.write(kRoot + "/vbd/1/51712/online", "1");
    f.kernel.deliver(f.s);
    EXPECT_EQ(vbd.probed.size(), 1u);
}

// The toolstack removes a device's directory (libxl__device_destroy): the bus removes the device
// (xenbus_cleanup_devices -> the driver's remove) once, and only that device.
TEST(BackendBus, VanishedDirectoryRemovesTheDevice) {
    Fixture f;
    write_vbd(f.store, 1, 0, 51712, "xvda", "w");
    write_vbd(f.store, 1, 0, 51728, "xvdb", "w");
    Recorder vbd;
    BackendBus bus(kRoot, {vbd.driver("vbd")}, f.root);
    bus.start(f.kernel, f.s);
    f.kernel.deliver(f.s);
    ASSERT_EQ(bus.devices().size(), 2u);
    f.store.rm(kRoot + "/vbd/1/51712");
    f.kernel.deliver(f.s);
    EXPECT_EQ(vbd.removed, 1u);
    EXPECT_EQ(bus.stats().removals.value(), 1u);
    EXPECT_EQ(bus.devices(), std::vector<std::string>{kRoot + "/vbd/1/51728"});
    // Written again by the toolstack: a new device, probed again.
    write_vbd(f.store, 1, 0, 51712, "xvda", "w");
    f.kernel.deliver(f.s);
    EXPECT_EQ(vbd.probed.size(), 3u);
}

// Blkback as the "vbd" driver: its probe finds the disk by the node's params in the platform's
// table (xensim:<vdev> of that frontend domain), advertises its features and waits in InitWait; a
// params naming no disk is refused (and the bus closes the device).
TEST(BackendBus, BlkbackProbeFindsItsDiskByParams) {
    Fixture f;
    write_vbd(f.store, 1, 0, 51712, "xvda", "w");
    write_vbd(f.store, 2, 0, 51712, "xvda", "w");
    f.store.write(kRoot + "/vbd/2/51712/params", "xensim:nosuchdisk");
    StatsGroup disks("disks", &f.root);
    Disk disk(std::make_unique<MemoryImage>(2048), std::make_unique<NullModel>(), DiskConfig{}, disks);
    BlkbackDiskTable table;
    table[{1, "xensim:xvda"}] = BlkbackDisk{&disk, 21, nullptr, &disks};
    std::vector<Blkback*> made;
    BackendDriver vbd{"vbd", [&](const BackendDeviceNode& n, BackendKernel& k, BackendServices& s) {
                          auto b = Blkback::probe(n, BlkbackParams{}, table, k, s);
                          if (b) made.push_back(b.get());
                          return std::unique_ptr<BackendDevice>(std::move(b));
                      }};
    BackendBus bus(kRoot, {vbd}, f.root);
    bus.start(f.kernel, f.s);
    f.kernel.deliver(f.s);
    ASSERT_EQ(made.size(), 1u);
    EXPECT_EQ(made[0]->devid(), 51712u);
    EXPECT_EQ(made[0]->state(), XenbusStateInitWait);
    EXPECT_EQ(f.store.read(kRoot + "/vbd/1/51712/state"), "2");
    EXPECT_EQ(f.store.read(kRoot + "/vbd/1/51712/max-ring-page-order"), "4");
    EXPECT_EQ(bus.stats().probe_failures.value(), 1u) << "dom2's params names no disk";
    EXPECT_EQ(f.store.read(kRoot + "/vbd/2/51712/state"), "6");
}

}  // namespace
}  // namespace xensim
