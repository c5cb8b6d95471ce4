// Helpers for model tests: build a platform from inline scenario JSON, run it, read its report.
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sim/platform/platform.h"
#include "sim/platform/scenario.h"

namespace xensim::testing {

struct Simulation {
    explicit Simulation(const nlohmann::json& scenario, Platform::NetperfHooks netperf_hooks = {})
        : scenario_(parse_scenario(scenario.dump(), "inline")),
          platform(scenario_, tracer, std::move(netperf_hooks)) {
        result = platform.run();
        report = platform.report(result);
    }
    const nlohmann::json& domain(const std::string& name) const {
        for (const auto& d : report.at("domains"))
            if (d.at("name") == name) return d;
        throw std::out_of_range("no domain " + name);
    }
    std::uint64_t stat(const std::string& dotted) const {
        const Counter* c = platform.stats().find_counter(dotted);
        if (!c) throw std::out_of_range("no counter " + dotted);
        return c->value();
    }
    std::uint64_t family(const std::string& dotted, const std::string& label) const {
        const CounterFamily* f = platform.stats().find_family(dotted);
        if (!f) throw std::out_of_range("no counter family " + dotted);
        return f->value(label);
    }

  private:
    Scenario scenario_;

  public:
    Tracer tracer;
    Platform platform;
    RunResult result;
    nlohmann::json report;
};

// At dom0 boot xenstored connects dom0's own kernel (EVTCHNOP_bind_interdomain of the loopback
// channel; the ring is dom0's own frame) and every guest (GNTTABOP_map_grant_ref of the guest's
// ring through the reserved grant GNTTAB_RESERVED_XENSTORE, EVTCHNOP_bind_interdomain of its
// store channel). Each bind raises xenstored's new port while dom0 still has it masked (one
// "masked" notification per connection); dom0 takes each such event as one upcall when it
// unmasks the port.
constexpr std::uint64_t kXenstoredDom0Hypercalls = 1;
constexpr std::uint64_t kXenstoredHypercallsPerGuest = 2;
constexpr std::uint64_t xenstored_connections(std::uint64_t guests) { return guests + 1; }

// Dom0's xenbus backend bus at boot (models/dom0/backend_bus.h; Linux's backend_probe_and_watch:
// xenbus_probe_devices, then register_xenbus_watch(&be_watch)) costs, when the toolstack wrote no
// device: one XS_DIRECTORY of /local/domain/0/backend (ENOENT) and one XS_WATCH of it, whose
// first event comes back behind the reply. dom0's kernel notifies xenstored after writing each
// request and after taking each answer off the ring (as a guest's xenbus client does), and
// xenstored notifies once per answer: 2 x 2 + 2 = 6 EVTCHNOP_send, all made by dom0 (its kernel
// and xenstored both run there). The first, made from the upcall of xenstored's boot-time port
// events, finds dom0's evtchn_upcall_pending still set, so Xen kicks dom0's vCPU 5 times.
constexpr std::uint64_t kBackendBusRequests = 2;
constexpr std::uint64_t kBackendBusWatchEvents = 1;
constexpr std::uint64_t kBackendBusDom0Sends = 6;
constexpr std::uint64_t kBackendBusDom0Kicks = 5;

// The pci_scan phase of an HVM guest that has a device model but not the Xen platform device
// (IDE disks or stdvga only), from docs/pci-scan.md §3 without 00:03.0: pci_check_type1's 5 port
// accesses (0xCF8-0xCFB, PIO ioreqs: 3 writes, 2 reads), then 305 configuration accesses — 39
// vendor probes, 34 of them of absent functions (slots 3-31 and functions 01.2, 01.4-01.7), and the
// set-up of the five functions found (38 + 60 + 61 + 47 + 60 = 266) — each an OUT to 0xCF8 (a PIO
// ioreq) and a data access (an IOREQ_TYPE_PCI_CONFIG ioreq unless its function is absent, which Xen
// completes itself). No driver probe: such a guest has no PV drivers.
constexpr std::uint64_t kScanConfigAccesses = 39 + 266, kScanAbsent = 34;
constexpr std::uint64_t kScanExits = 5 + 2 * kScanConfigAccesses;                             // 615
constexpr std::uint64_t kScanPioReads = 2, kScanPioWrites = 3 + kScanConfigAccesses;          // 2, 308
constexpr std::uint64_t kScanPciConfigIoreqs = kScanConfigAccesses - kScanAbsent;             // 271
constexpr std::uint64_t kScanIoreqs = kScanPioReads + kScanPioWrites + kScanPciConfigIoreqs;  // 581

// A guest with IDE disks also runs ata_piix's probe of the PIIX3 IDE function in that phase
// (docs/ide-register-sequence.md §6): 21 configuration accesses (pcim_enable_device 2, IOCFG 1,
// pci_set_master 3, prog-if 1, and per port the EH reset's PIO-0 timings for both device slots,
// 2 + 4, and the prereset's decode-enable read, 1) and one BM Status read per port (the simplex
// check at BAR4 + 2 and BAR4 + 10): 44 port accesses, 21 + 2 more PIO ioreqs, 21 more PCI_CONFIG
// ioreqs. Then each drive, after its IDENTIFY (phase pv_connect), gets its timings: set_piomode
// (IDETIM read and write; for a slave SIDETIM too) and with DMA set_dmamode (the same again).
constexpr std::uint64_t kAtaProbeConfigAccesses = 21, kAtaProbeBmReads = 2;
constexpr std::uint64_t kIdeScanExits = kScanExits + 2 * kAtaProbeConfigAccesses + kAtaProbeBmReads;  // 659
constexpr std::uint64_t kIdeScanPioIoreqs =
    kScanPioReads + kScanPioWrites + kAtaProbeConfigAccesses + kAtaProbeBmReads;                   // 333
constexpr std::uint64_t kIdeScanPciConfigIoreqs = kScanPciConfigIoreqs + kAtaProbeConfigAccesses;  // 292
constexpr std::uint64_t kSetModeMasterDma = 4, kSetModeMasterPio = 2;  // configuration accesses

// Counts in a JSON object, 0 when the key is absent.
inline std::uint64_t count(const nlohmann::json& obj, const std::string& key) {
    return obj.contains(key) ? obj.at(key).get<std::uint64_t>() : 0;
}

}  // namespace xensim::testing
