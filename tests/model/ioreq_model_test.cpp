// The ioreq path: a guest's port access to an emulated device exits, Xen forwards it to the device
// model on dom0, and the vCPU waits until the device model answers.
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json platform_scenario(bool platform_pci) {
    return {{"name", "ioreq"},
            {"platform", {{"pcpus", 2}}},
            {"domains",
             {{{"name", "dom0"}, {"type", "pv"}, {"memory_mb", 1024}},
              {{"name", "guest"}, {"type", "hvm"}, {"xen_platform_pci", platform_pci}}}},
            {"workloads", json::array()},
            {"stop", {{"sim_time_ms", 5}}}};
}

// Linux's unplug sequence (check_platform_magic + xen_unplug_emulated_devices) is six port
// accesses: inw(0x10) magic, inb(0x12) protocol version, outw(0x12) product, outl(0x10) driver
// version, inw(0x10) magic again, outw(0x10) unplug mask. Each is one IO_INSTRUCTION exit and one
// ioreq, answered by the device model on dom0 with one EVTCHNOP_send.
TEST(Ioreq, UnplugProtocolIsSixPortAccessesEachAnIoreqToTheDeviceModel) {
    Simulation sim(platform_scenario(true));
    const json& g = sim.domain("guest");
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), 6u);
    EXPECT_EQ(count(g.at("exits_by_cause"), "IO_INSTRUCTION:port:0x10"), 4u);
    EXPECT_EQ(count(g.at("exits_by_cause"), "IO_INSTRUCTION:port:0x12"), 2u);
    EXPECT_EQ(g.at("unclaimed_io"), 0u);
    const json& dm = g.at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_read"), 3u);
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_write"), 3u);
    EXPECT_EQ(dm.at("unplugged_mask"), 7u);  // IDE disks | NICs | auxiliary IDE disks
    EXPECT_EQ(dm.at("unplug_product"), 3u);  // xen/hvm/pvdrivers.h: "linux"
    EXPECT_EQ(sim.stat("xen.ioreqs"), 6u);
    // dom0 answered each ioreq with one send; its binds: the loopback store channel, the guest's
    // store channel, and the device model's one ioreq channel (one guest vCPU).
    const json& d0 = sim.domain("dom0");
    EXPECT_EQ(count(d0.at("hypercalls"), "event_channel_op/EVTCHNOP_send"), 6u);
    EXPECT_EQ(count(d0.at("hypercalls"), "event_channel_op/EVTCHNOP_bind_interdomain"), 3u);
}

// Without the platform device the guest does not run the protocol (the scenario says the device is
// absent, as xen_platform_pci=0 hides it from the PCI scan a real guest does first).
TEST(Ioreq, WithoutThePlatformDeviceTheGuestMakesNoPortAccess) {
    Simulation sim(platform_scenario(false));
    const json& g = sim.domain("guest");
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), 0u);
    EXPECT_FALSE(g.contains("device_model"));
    EXPECT_EQ(sim.stat("xen.ioreqs"), 0u);
}

}  // namespace
}  // namespace xensim::testing
