// A guest printing on its emulated VGA text console: every character is an EPT_VIOLATION exit that
// Xen queues on the buffered ioreq page without making the vCPU wait, every CRTC update is a
// synchronous port ioreq, and the device model drains the queue before each synchronous ioreq.
// Expected counts follow from frontends/vga_console.h (Linux vgacon with hardware scrolling):
// per line, line_length 16-bit stores and a cursor update (2 OUTs); a line feed on the bottom row
// adds 80 stores (the cleared row) and a start-address update (2 OUTs).
#include "frontends/vga_console.h"
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

const json& phase_exits(const json& guest, const std::string& name) {
    for (const auto& p : guest.at("phases"))
        if (p.at("name") == name) return p.at("exits");
    throw std::out_of_range("no phase " + name);
}

json console_scenario(unsigned lines, unsigned length, bool clear = false) {
    return {{"name", "vga"},
            {"platform", {{"pcpus", 2}}},
            {"domains",
             {{{"name", "dom0"}, {"type", "pv"}, {"memory_mb", 1024}},
              {{"name", "guest"}, {"type", "hvm"}, {"vga", "stdvga"}}}},
            {"workloads",
             {{{"type", "vga_console"},
               {"name", "console"},
               {"guest", "guest"},
               {"lines", lines},
               {"line_length", length},
               {"clear_screen", clear}}}},
            {"stop", {{"sim_time_ms", 1000}}}};
}

// 30 lines of 10 characters: lines 0-23 move the cursor down, lines 24-29 scroll (6 scrolls), so
// 300 + 6 * 80 = 780 stores and 30 * 2 + 6 * 2 = 72 OUTs. The screen moved 6 rows: its start
// address is 480 cells, it shows lines 6-29 on rows 0-23, and the cursor is on the empty row 24.
TEST(VgaConsole, EveryCharacterIsABufferedWriteAndEveryCrtcUpdateASynchronousIoreq) {
    Simulation sim(console_scenario(30, 10));
    const json& g = sim.domain("guest");
    EXPECT_EQ(count(g.at("exits"), "EPT_VIOLATION"), 780u);
    // By page: lines 0-25 and the first 48 cells of the row cleared by scroll 1 lie below byte
    // 4096 of the text memory; the rest of that row (32), rows cleared by scrolls 2-6 (400) and
    // lines 26-29 (40) lie in the next page.
    EXPECT_EQ(count(g.at("exits_by_cause"), "EPT_VIOLATION:mmio:0xb8000"), 308u);
    EXPECT_EQ(count(g.at("exits_by_cause"), "EPT_VIOLATION:mmio:0xb9000"), 472u);
    // The guest scanned PCI bus 0 at boot (its machine has a device model): kScanExits port
    // accesses before the console's.
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), 72u + kScanExits);
    EXPECT_EQ(count(phase_exits(g, "pci_scan"), "IO_INSTRUCTION"), kScanExits);
    EXPECT_EQ(count(g.at("exits_by_cause"), "IO_INSTRUCTION:port:0x3d4"), 72u);
    EXPECT_EQ(sim.stat("xen.buffered_ioreqs"), 780u);
    EXPECT_EQ(sim.stat("xen.buffered_full"), 0u);
    EXPECT_EQ(sim.stat("xen.ioreqs"), 72u + kScanIoreqs);
    const json& dm = g.at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "buffered_mmio_write"), 780u);
    EXPECT_EQ(count(dm.at("ioreqs"), "pio_write"), 72u + kScanPioWrites);
    EXPECT_EQ(count(dm.at("ioreqs"), "mmio_write"), 0u);
    EXPECT_EQ(count(dm.at("ioreqs"), "mmio_read"), 0u);
    // Xen marks the buffered port pending when the device model binds it
    // (evtchn_bind_interdomain); the device model takes that event during the guest's PCI scan,
    // finds the page empty and leaves the port masked (cpu_get_ioreq), as it stays until the
    // 100 ms timer finds nothing to drain. So no character wakes it: each line's first OUT drains
    // what the line queued. Allowance: the first line can take one drain more.
    const json& drains = dm.at("buffered_drains");
    EXPECT_EQ(count(drains, "channel"), 0u);
    EXPECT_GE(count(drains, "ioreq"), 29u);
    EXPECT_LE(count(drains, "ioreq"), 31u);
    EXPECT_EQ(count(drains, "timer"), 0u);  // the run ends long before 100 ms
    const json& vga = dm.at("vga");
    EXPECT_EQ(vga.at("memory_writes"), 780u);
    EXPECT_EQ(vga.at("register_writes"), 72u);
    EXPECT_EQ(vga.at("start_address"), 480u);
    EXPECT_EQ(vga.at("cursor"), 480u + 24 * 80);
    const json& screen = vga.at("screen");
    ASSERT_EQ(screen.size(), 25u);
    EXPECT_EQ(screen[0], VgaConsole::line_text(6, 10));
    EXPECT_EQ(screen[23], VgaConsole::line_text(29, 10));
    EXPECT_EQ(screen[24], "");
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), 30u);
    EXPECT_EQ(w.at("console").at("characters"), 300u);
    EXPECT_EQ(w.at("console").at("scrolls"), 6u);
    EXPECT_EQ(w.at("console").at("wraps"), 0u);
}

// 210 lines scroll 186 times. The text memory (32 KiB) holds the 4000-byte screen for 179 scrolls
// of 160 bytes; at the 180th the 24 rows that stay are copied back to its start with 480 8-byte
// loads (synchronous reads) and stores (buffered, two slots each), then 6 more scrolls leave the
// start address at 6 rows. The copied rows include the line written just before the copy, still
// queued in the buffered page: the reads see it only because the device model drains the queue
// before serving each read.
TEST(VgaConsole, WrappingTheTextMemoryCopiesTheScreenBackThroughReadsThatDrainTheQueue) {
    Simulation sim(console_scenario(210, 10));
    const json& g = sim.domain("guest");
    constexpr std::uint64_t kStores = 210 * 10 + 186 * 80 + 480, kReads = 480, kOuts = 210 * 2 + 186 * 2;
    EXPECT_EQ(count(g.at("exits"), "EPT_VIOLATION"), kStores + kReads);
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), kOuts + kScanExits);
    EXPECT_EQ(sim.stat("xen.buffered_ioreqs"), kStores);
    EXPECT_EQ(sim.stat("xen.ioreqs"), kOuts + kReads + kScanIoreqs);
    const json& dm = g.at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "mmio_read"), kReads);
    EXPECT_EQ(count(dm.at("ioreqs"), "buffered_mmio_write"), kStores);
    const json& vga = dm.at("vga");
    EXPECT_EQ(vga.at("start_address"), 6u * 80);
    const json& screen = vga.at("screen");
    for (unsigned row = 0; row < 24; ++row)
        EXPECT_EQ(screen[row], VgaConsole::line_text(186 + row, 10)) << "row " << row;
    EXPECT_EQ(sim.report.at("workloads").at(0).at("console").at("wraps"), 1u);
}

// Clearing the screen is 2000 stores with no synchronous access among them. The device model's
// buffered port is already masked (it took the port's bind-time event during the boot's PCI scan,
// see above), so no store wakes it: the 511-slot page fills, and every 512th store finds it full
// and goes synchronously (hvmemul_do_io's fallback), its ioreq draining the 511 queued before it:
// floor(2000 / 512) = 3 synchronous stores. Order is kept: the cleared screen then
// shows exactly the three lines printed after it.
TEST(VgaConsole, AFullBufferedPageSendsTheWriteSynchronouslyAndDrainsTheQueueFirst) {
    Simulation sim(console_scenario(3, 12, true));
    const json& g = sim.domain("guest");
    EXPECT_EQ(count(g.at("exits"), "EPT_VIOLATION"), 2000u + 3 * 12);
    EXPECT_EQ(count(g.at("exits"), "IO_INSTRUCTION"), 2u + 3 * 2 + kScanExits);
    EXPECT_EQ(sim.stat("xen.buffered_full"), 3u);
    EXPECT_EQ(sim.stat("xen.buffered_ioreqs"), 2000u + 3 * 12 - 3);
    const json& dm = g.at("device_model");
    EXPECT_EQ(count(dm.at("ioreqs"), "mmio_write"), 3u);
    EXPECT_EQ(count(dm.at("ioreqs"), "buffered_mmio_write"), 2000u + 3 * 12 - 3);
    EXPECT_EQ(count(dm.at("buffered_drains"), "channel"), 0u);
    const json& screen = dm.at("vga").at("screen");
    for (unsigned row = 0; row < 3; ++row) EXPECT_EQ(screen[row], VgaConsole::line_text(row, 12));
    for (unsigned row = 3; row < 25; ++row) EXPECT_EQ(screen[row], "") << "row " << row;
    EXPECT_EQ(dm.at("vga").at("cursor"), 3u * 80);
    EXPECT_EQ(sim.report.at("workloads").at(0).at("console").at("clears"), 1u);
}

}  // namespace
}  // namespace xensim::testing
