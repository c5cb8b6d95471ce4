#include "models/dom0/backend_bus.h"

#include "sim/core/xenbus_state.h"

namespace xensim {

namespace {

// The components of `path` below `root` ("vbd/1/51712/state" -> vbd, 1, 51712, state); empty if
// `path` is not strictly below `root`.
std::vector<std::string> below(const std::string& root, const std::string& path) {
    std::vector<std::string> parts;
    if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 || path[root.size()] != '/')
        return parts;
    std::size_t at = root.size() + 1;
    while (at <= path.size()) {
        std::size_t end = path.find('/', at);
        if (end == std::string::npos) end = path.size();
        parts.push_back(path.substr(at, end - at));
        at = end + 1;
    }
    return parts;
}

}  // namespace

BackendBus::Stats::Stats(StatsGroup& g)
    : watch_events(g, "watch_events", "events", "events of the watch on the backend directory"),
      probes(g, "probes", "devices", "devices handed to their driver's probe (xenbus_dev_probe)"),
      probe_failures(g, "probe_failures", "devices",
                     "devices whose driver refused them (error node written, state Closed)"),
      unbound(g, "unbound", "devices", "devices registered with no driver for their type"),
      not_initialising(g, "not_initialising", "attempts",
                       "probe attempts skipped: the device's state was not Initialising (xenbus_probe_node)"),
      incomplete(g, "incomplete", "attempts",
                 "probe attempts refused: frontend-id or frontend missing, or the frontend absent"),
      removals(g, "removals", "devices", "registered devices removed (their directory vanished)") {}

BackendBus::BackendBus(std::string root, std::vector<BackendDriver> drivers, StatsGroup& parent)
    : root_(std::move(root)),
      drivers_(std::move(drivers)),
      group_("xenbus_backend", &parent),
      stats_(group_) {}

BackendBus::~BackendBus() = default;

const BackendDriver* BackendBus::driver(const std::string& type) const {
    for (const BackendDriver& d : drivers_)
        if (d.type == type) return &d;
    return nullptr;
}

std::vector<std::string> BackendBus::devices() const {
    std::vector<std::string> names;
    for (const auto& [name, reg] : devices_) names.push_back(name);
    return names;
}

BackendDevice* BackendBus::device(const std::string& nodename) const {
    auto it = devices_.find(nodename);
    return it == devices_.end() ? nullptr : it->second.backend.get();
}

void BackendBus::start(BackendKernel& kernel, BackendServices& s) {
    kernel_ = &kernel;
    // xenbus_probe_devices -> xenbus_probe_device_type -> xenbus_probe_backend (-> _unit).
    if (auto types = kernel.xs_directory(root_)) {
        for (const std::string& type : *types) {
            const std::string tdir = root_ + "/" + type;
            auto domids = kernel.xs_directory(tdir);
            if (!domids) continue;
            for (const std::string& domid : *domids) {
                const std::string ddir = tdir + "/" + domid;
                auto devids = kernel.xs_directory(ddir);
                if (!devids) continue;
                for (const std::string& devid : *devids) probe_node(s, type, ddir + "/" + devid);
            }
        }
    }
    // register_xenbus_watch(&be_watch).
    kernel.xs_watch(root_, "backend",
                    [this](BackendServices& vs, const std::string& path) { changed(vs, path); });
}

void BackendBus::changed(BackendServices& s, const std::string& path) {
    // xenbus_dev_changed.
    stats_.watch_events.inc();
    const std::vector<std::string> parts = below(root_, path);
    if (parts.size() < 2) return;  // backend, backend/<type>: char_count(node, '/') < 2
    if (!kernel_->xs_directory(path)) {
        cleanup(s, path);  // xenbus_cleanup_devices
        return;
    }
    if (parts.size() < 3) return;  // backend/<type>/<domid>: strsep_len finds no device root
    const std::string dev = root_ + "/" + parts[0] + "/" + parts[1] + "/" + parts[2];
    if (devices_.count(dev) == 0) probe_node(s, parts[0], dev);
}

void BackendBus::probe_node(BackendServices& s, const std::string& type, const std::string& nodename) {
    BackendKernel& k = *kernel_;
    // xenbus_probe_node: only a new device (xenbus_read_driver_state: Unknown if unreadable).
    if (parse_xenbus_state(k.xs_read(nodename + "/state").value_or("")) != XenbusStateInitialising) {
        stats_.not_initialising.inc();
        return;
    }
    // backend_bus_id: xenbus_gather of frontend-id ("%i") and frontend, then xenbus_exists.
    BackendDeviceNode node;
    node.type = type;
    node.nodename = nodename;
    node.devid = nodename.substr(nodename.rfind('/') + 1);
    auto frontend_id = parse_xenstore_uint(k.xs_read(nodename + "/frontend-id"), DOMID_FIRST_RESERVED - 1);
    auto frontend = k.xs_read(nodename + "/frontend");
    if (!frontend_id || !frontend || frontend->empty() || !k.xs_directory(*frontend)) {
        stats_.incomplete.inc();
        return;
    }
    node.frontend_id = static_cast<domid_t>(*frontend_id);
    node.frontend = *frontend;
    // device_register: the bus now knows the device; bus_probe_device matches a driver.
    Registered& reg = devices_[nodename];
    reg.type = type;
    const BackendDriver* drv = driver(type);
    if (!drv || !drv->probe) {
        stats_.unbound.inc();
        return;
    }
    // xenbus_dev_probe.
    stats_.probes.inc();
    reg.backend = drv->probe(node, k, s);
    if (!reg.backend) {
        // fail: xenbus_dev_error(dev, err, "xenbus_dev_probe on %s") then state Closed.
        stats_.probe_failures.inc();
        const std::string home = root_.substr(0, root_.rfind('/'));
        const std::string relative = nodename.substr(home.size() + 1);
        k.xs_write(home + "/error/" + relative + "/error", "19 xenbus_dev_probe on " + relative);  // ENODEV
        k.xs_write(nodename + "/state", std::to_string(static_cast<int>(XenbusStateClosed)));
    }
}

void BackendBus::cleanup(BackendServices& s, const std::string& path) {
    // Every registered device at `path` or below it (cleanup_dev's match), in path order.
    for (auto it = devices_.begin(); it != devices_.end();) {
        const std::string& name = it->first;
        const bool match = name.compare(0, path.size(), path) == 0 &&
                           (name.size() == path.size() || name[path.size()] == '/');
        if (!match) {
            ++it;
            continue;
        }
        stats_.removals.inc();
        if (it->second.backend) {
            it->second.backend->remove(s);
            removed_.push_back(std::move(it->second.backend));
        }
        it = devices_.erase(it);
    }
}

}  // namespace xensim
