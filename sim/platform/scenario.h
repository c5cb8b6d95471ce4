// Scenario files: loading, overrides, validation, and the effective configuration.
//
// A scenario is checked completely before anything is simulated: JSON syntax (with line and
// column), structure against the declared schema (scenario_schema(), also rendered to
// scenarios/schema/scenario.schema.json), then the rules that relate fields to each other
// (domain 0 is dom0 of type pv or pvh and every other domain is hvm; names are unique; workloads
// name existing domains; pinning names existing pCPUs). Every problem is reported with the file,
// the JSON pointer, what was expected and what was found.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frontends/netperf_workload.h"
#include "sim/core/config_schema.h"

namespace xensim {

// Bad input: the message is ready for the user; the CLI exits with status 2.
class ScenarioError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

ConfigNodePtr scenario_schema();
// The JSON Schema document for scenario files.
nlohmann::json scenario_json_schema();

struct ScenarioOverrides {
    // "a.b.1.c=value": dotted keys and decimal array indices; value is JSON, except that a
    // string-typed key (per the schema) also takes a bare word (model=null is "null").
    std::vector<std::string> sets;
    bool has_seed = false;
    std::uint64_t seed = 0;
};

struct Scenario {
    std::string file;
    nlohmann::json effective;  // validated, every default filled in
};

// The Xen virtual-block-device number of a guest device name (docs/misc/vbd-interface.txt):
// xvda -> 51712, hda -> 768; nullopt for a name we do not model.
std::optional<unsigned> vbd_devid(const std::string& vdev);

// Network addressing (docs/network.md): "a.b.c.d" as a host-order IPv4 address, or nullopt.
std::optional<std::uint32_t> parse_ipv4_text(const std::string& text);
// The IPv4 address of nic `nic` of domain `domid` by xensim's convention: 10.0.<nic>.<domid>.
std::uint32_t guest_ipv4(unsigned domid, unsigned nic);
// A netperf workload's spec from its effective (validated, defaulted) JSON: everything but the
// addresses, which the platform gives (stream 0's ports are set here: netperf's data connection
// from the guest's ephemeral port 49152 to the peer's port 12866, one more per stream).
NetperfSpec netperf_spec(const nlohmann::json& workload, std::uint64_t seed);

// Reads, overrides, validates. Throws ScenarioError listing every problem. The file must be a
// regular file of at most kMaxInputFileBytes (16 MiB). Validation includes what the run would
// otherwise find only when building the platform: each disk image is tried on the host as the
// storage model will open or create it (nothing is created), and each fio job's region must fit
// its disk.
Scenario load_scenario(const std::string& file, const ScenarioOverrides& overrides = {});
// The same from JSON text already in memory (`file` names it in messages).
Scenario parse_scenario(const std::string& text, const std::string& file,
                        const ScenarioOverrides& overrides = {});

}  // namespace xensim
