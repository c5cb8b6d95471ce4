#include "sim/platform/xenstore_layout.h"

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
    store.write(vm + "/name", name);
    store.write(vm + "/uuid", uuid_for(id));
    store.write(home + "/name", name);
    store.write(home + "/domid", std::to_string(id));
    store.write(home + "/vm", vm);
    store.write(home + "/memory/target", std::to_string(memory_kib));
    store.write(home + "/memory/static-max", std::to_string(memory_kib));
    for (unsigned v = 0; v < vcpus; ++v)
        store.write(home + "/cpu/" + std::to_string(v) + "/availability", "online");
    // libxl: the home directory is dom0's, readable by the domain; these subtrees are the domain's.
    const std::vector<XsPerm> roperm = {{0, XS_PERM_NONE}, {id, XS_PERM_READ}};
    const std::vector<XsPerm> rwperm = {{id, XS_PERM_NONE}};
    store.set_perms(home, roperm);
    for (const char* dir : {"device", "data", "control", "drivers", "feature", "attr", "error"}) {
        store.mkdir(home + "/" + dir);
        store.set_perms(home + "/" + dir, id == 0 ? roperm : rwperm);
    }
    store.write(home + "/control/shutdown", "");
    if (id != 0) store.set_perms(home + "/control/shutdown", rwperm);
}

void write_scenario_layout(XenStore& store, const nlohmann::json& effective) {
    const auto& domains = effective.at("domains");
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const auto& d = domains[i];
        write_domain_layout(store, static_cast<DomId>(i),
                            i == 0 ? "Domain-0" : d.at("name").get<std::string>(),
                            d.at("memory_mb").get<std::uint64_t>() * 1024, d.at("vcpus").get<unsigned>());
    }
}

}  // namespace xensim
