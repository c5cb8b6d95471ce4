// The XenStore nodes the toolstack writes when it builds a domain, as libxl does
// (libxl__domain_make / libxl__domain_build; layout per docs/misc/xenstore-paths.pandoc):
//   /local/domain/<id>                 owner dom0, the domain may read       (libxl's roperm)
//     name, domid, vm, memory/target, memory/static-max, cpu/<n>/availability
//     device/, data/, control/, drivers/, feature/, attr/, error/   owned by the domain (rwperm)
//     control/shutdown                 owned by the domain
//   /vm/<uuid>                         name, uuid                  (dom0 only)
// Device nodes (device/vbd, backend/vbd ...) are written by the PV device work that uses them.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "models/xen/xenstore_store.h"

namespace xensim {

void write_domain_layout(XenStore& store, DomId id, const std::string& name, std::uint64_t memory_kib,
                         unsigned vcpus);
// Every domain of an effective scenario configuration, in order (dom0 first).
void write_scenario_layout(XenStore& store, const nlohmann::json& effective);

}  // namespace xensim
