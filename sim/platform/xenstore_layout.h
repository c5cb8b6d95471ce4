// The XenStore nodes the toolstack writes when it builds a domain, as libxl does
// (libxl__domain_make / libxl__domain_build; layout per docs/misc/xenstore-paths.pandoc):
//   /local/domain/<id>                 owner dom0, the domain may read       (libxl's roperm)
//     name, domid, vm, memory/target, memory/static-max, cpu/<n>/availability
//     device/, data/, control/, drivers/, feature/, attr/, error/   owned by the domain (rwperm)
//     control/shutdown                 owned by the domain
//   /vm/<uuid>                         name, uuid                  (dom0 only)
// and for each PV device, the frontend and backend directories libxl__device_generic_add makes:
//   /local/domain/<id>/device/vbd/<devid>        backend, backend-id, state, virtual-device, device-type
//   /local/domain/0/backend/vbd/<id>/<devid>     frontend, frontend-id, online, removable, bootable,
//                                                state, dev, type, mode, device-type, params
//   .../device/vif/<n> and .../backend/vif/<id>/<n> likewise, with mac, handle, bridge, script,
//   and the backend's rate ("bytes,usec") when the nic has a rate limit.
// The keys a backend writes itself when it starts (sectors, sector-size, info, feature-*,
// max-ring-page-order, multi-queue-max-queues for vbd; feature-* for vif) come from the backend
// models, not from the toolstack. params is "xensim:<vdev>" until a storage model names an image.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/xen/xenstore_store.h"
#include "sim/platform/xl_vif_rate.h"
#include "sim/core/xenbus_state.h"

namespace xensim {

void write_domain_layout(XenStore& store, DomId id, const std::string& name, std::uint64_t memory_kib,
                         unsigned vcpus);
void write_vbd(XenStore& store, DomId domid, DomId backend_domid, unsigned devid, const std::string& vdev,
               const std::string& mode);
// `rate`: the nic's rate limit (xl's rate=, sim/platform/xl_vif_rate.h), written as the backend's
// `rate` node ("bytes,usec") as libxl__set_xenstore_nic does; none: no node (unlimited).
void write_vif(XenStore& store, DomId domid, DomId backend_domid, unsigned devid, const std::string& mac,
               const std::optional<VifRate>& rate = std::nullopt);
// Every domain of an effective scenario configuration, in order (dom0 first).
void write_scenario_layout(XenStore& store, const nlohmann::json& effective);

}  // namespace xensim
