#include "sim/platform/xenstore_layout.h"

#include "sim/platform/scenario.h"

#include <cstdio>

namespace xensim {

namespace {

// A deterministic UUID per domain id (the toolstack would generate a random one).
std::string uuid_for(DomId id) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012x", static_cast<unsigned>(id));
    return buf;
}

}  // namespace

void write_domain_layout(XenStore& store, DomId id, const std::string& name, std::uint64_t memory_kib,
                         unsigned vcpus) {
    const std::string home = XenStore::domain_path(id);
    const std::string vm = "/vm/" + uuid_for(id);
    // libxl: the home directory is dom0's, readable by the domain (set first, so the nodes below
    // inherit it); these subtrees are the domain's own.
    const std::vector<XsPerm> roperm = {{0, XS_PERM_NONE}, {id, XS_PERM_READ}};
    const std::vector<XsPerm> rwperm = {{id, XS_PERM_NONE}};
    store.mkdir(home);
    store.set_perms(home, roperm);
    store.write(vm + "/name", name);
    store.write(vm + "/uuid", uuid_for(id));
    store.write(home + "/name", name);
    store.write(home + "/domid", std::to_string(id));
    store.write(home + "/vm", vm);
    store.write(home + "/memory/target", std::to_string(memory_kib));
    store.write(home + "/memory/static-max", std::to_string(memory_kib));
    for (unsigned v = 0; v < vcpus; ++v)
        store.write(home + "/cpu/" + std::to_string(v) + "/availability", "online");
    for (const char* dir : {"device", "data", "control", "drivers", "feature", "attr", "error"}) {
        store.mkdir(home + "/" + dir);
        store.set_perms(home + "/" + dir, id == 0 ? roperm : rwperm);
    }
    store.write(home + "/control/shutdown", "");
    if (id != 0) store.set_perms(home + "/control/shutdown", rwperm);
}

namespace {

// libxl__device_generic_add: the frontend directory is the domain's, readable by the backend
// domain; the backend directory is the backend domain's, readable by the frontend's domain.
void device_dirs(XenStore& store, const std::string& front, const std::string& back, DomId domid,
                 DomId backend_domid) {
    store.mkdir(front);
    store.set_perms(front, {{domid, XS_PERM_NONE}, {backend_domid, XS_PERM_READ}});
    store.mkdir(back);
    store.set_perms(back, {{backend_domid, XS_PERM_NONE}, {domid, XS_PERM_READ}});
}

}  // namespace

void write_vbd(XenStore& store, DomId domid, DomId backend_domid, unsigned devid, const std::string& vdev,
               const std::string& mode) {
    const std::string id = std::to_string(devid);
    const std::string front = XenStore::domain_path(domid) + "/device/vbd/" + id;
    const std::string back =
        XenStore::domain_path(backend_domid) + "/backend/vbd/" + std::to_string(domid) + "/" + id;
    device_dirs(store, front, back, domid, backend_domid);
    store.write(front + "/backend", back);
    store.write(front + "/backend-id", std::to_string(backend_domid));
    store.write(front + "/state", std::to_string(XenbusStateInitialising));
    store.write(front + "/virtual-device", id);
    store.write(front + "/device-type", "disk");
    store.write(back + "/frontend", front);
    store.write(back + "/frontend-id", std::to_string(domid));
    store.write(back + "/online", "1");
    store.write(back + "/removable", "0");
    store.write(back + "/bootable", "1");
    store.write(back + "/state", std::to_string(XenbusStateInitialising));
    store.write(back + "/dev", vdev);
    store.write(back + "/type", "phy");
    store.write(back + "/mode", mode);
    store.write(back + "/device-type", "disk");
    store.write(back + "/params", "xensim:" + vdev);
}

void write_vif(XenStore& store, DomId domid, DomId backend_domid, unsigned devid, const std::string& mac,
               const std::optional<VifRate>& rate) {
    const std::string id = std::to_string(devid);
    const std::string front = XenStore::domain_path(domid) + "/device/vif/" + id;
    const std::string back =
        XenStore::domain_path(backend_domid) + "/backend/vif/" + std::to_string(domid) + "/" + id;
    device_dirs(store, front, back, domid, backend_domid);
    store.write(front + "/backend", back);
    store.write(front + "/backend-id", std::to_string(backend_domid));
    store.write(front + "/state", std::to_string(XenbusStateInitialising));
    store.write(front + "/handle", id);
    store.write(front + "/mac", mac);
    store.write(back + "/frontend", front);
    store.write(back + "/frontend-id", std::to_string(domid));
    store.write(back + "/online", "1");
    store.write(back + "/state", std::to_string(XenbusStateInitialising));
    store.write(back + "/script", "/etc/xen/scripts/vif-bridge");
    store.write(back + "/mac", mac);
    // libxl__set_xenstore_nic: "rate" after "mac" when rate_interval_usecs > 0.
    if (rate && rate->interval_usecs > 0) store.write(back + "/rate", vif_rate_node(*rate));
    store.write(back + "/bridge", "xenbr0");
    store.write(back + "/handle", id);
    store.write(back + "/type", "vif");
}

void write_scenario_layout(XenStore& store, const nlohmann::json& effective) {
    const auto& domains = effective.at("domains");
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const auto& d = domains[i];
        write_domain_layout(store, static_cast<DomId>(i),
                            i == 0 ? "Domain-0" : d.at("name").get<std::string>(),
                            d.at("memory_mb").get<std::uint64_t>() * 1024, d.at("vcpus").get<unsigned>());
        for (const auto& disk : d.at("disks"))
            write_vbd(store, static_cast<DomId>(i), 0, *vbd_devid(disk.at("vdev")), disk.at("vdev"),
                      disk.at("mode"));
        const auto& nics = d.at("nics");
        for (std::size_t k = 0; k < nics.size(); ++k) {
            std::optional<VifRate> rate;
            if (nics[k].contains("rate") && nics[k].at("rate").is_string())
                rate = parse_xl_vif_rate(nics[k].at("rate")).rate;  // validated with the scenario
            write_vif(store, static_cast<DomId>(i), 0, static_cast<unsigned>(k), nics[k].at("mac"), rate);
        }
    }
}

}  // namespace xensim
