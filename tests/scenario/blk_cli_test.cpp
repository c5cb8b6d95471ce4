// Multi-queue blkfront as a user compares it: the same scenario run twice by the xensim binary with
// `--set domains.1.blkfront.queues=N`, report.json compared. (A model test may build one Simulation
// per process; two runs need two processes.)
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/scenario/cli_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cli_testing;

// A 4-vCPU guest on 4 pCPUs, 4 fio jobs (one per vCPU) of 4 KiB random reads at iodepth 16 each:
// 64 I/Os want to be in flight. 2000 I/Os per job.
constexpr unsigned kJobs = 4, kIodepth = 16, kIosPerJob = 2000;

json mq_scenario(const std::string& model) {
    json s = json::parse(R"({
        "name": "blk-mq",
        "platform": {"pcpus": 4},
        "domains": [
            {"name": "dom0", "type": "pv", "vcpus": 1, "memory_mb": 1024},
            {"name": "guest", "type": "hvm", "vcpus": 4, "memory_mb": 512,
             "disks": [{"vdev": "xvda", "sectors": 2097152}]}
        ],
        "workloads": [{"type": "fio", "name": "mq", "guest": "guest", "rw": "randread", "bs": 4096}]
    })");
    s["domains"][1]["disks"][0]["model"] = model;
    s["workloads"][0]["iodepth"] = kIodepth;
    s["workloads"][0]["numjobs"] = kJobs;
    s["workloads"][0]["number_ios"] = kIosPerJob;
    return s;
}

// Runs the scenario with `queues` rings wanted; returns the report.
json run_with_queues(const fs::path& dir, const json& scenario, unsigned queues) {
    fs::path file = dir / "scenario.json";
    std::ofstream(file) << scenario.dump(2);
    fs::path out = dir / ("q" + std::to_string(queues));
    Result r = xensim("run " + file.string() + " --set domains.1.blkfront.queues=" + std::to_string(queues) +
                      " --out " + out.string());
    EXPECT_EQ(r.status, 0) << r.output;
    std::ifstream in(out / "report.json");
    if (!in) {
        ADD_FAILURE() << "no report.json in " << out << "\n" << r.output;
        return json::object();
    }
    return json::parse(in);
}

// The checks both runs must pass: the job finished, the device has the queues asked for, and each
// queue's ring held what the protocol lets it hold.
void check_run(const json& r, unsigned queues) {
    SCOPED_TRACE("queues=" + std::to_string(queues));
    ASSERT_TRUE(r.contains("workloads"));
    EXPECT_EQ(r.at("simulation").at("stop_reason"), "workloads_done");
    const json& w = r.at("workloads").at(0);
    const json& b = w.at("block");
    EXPECT_EQ(w.at("ops"), kJobs * kIosPerJob);
    EXPECT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    // negotiate_mq: min(wanted, blkback's multi-queue-max-queues 4, the guest's 4 vCPUs).
    EXPECT_EQ(b.at("device").at("queues"), queues);
    ASSERT_EQ(b.at("ring_occupancy").size(), queues);
    EXPECT_EQ(b.at("device").at("ring_slots"), 32u) << "linux: single-page rings";
    if (queues == 1) {
        // All 64 I/Os of the four jobs compete for one 32-slot ring: it fills, and the rest wait.
        EXPECT_EQ(b.at("ring_occupancy").at(0).at("max"), 32u);
        EXPECT_GT(r.at("stats").at("dom1").at("guest").at("vbd_51712").at("queue0").at("submit_full"), 0u);
    } else {
        // vCPU v runs job v and submits on queue v: at most that job's 16 I/Os on each ring.
        for (unsigned q = 0; q < queues; ++q)
            EXPECT_EQ(b.at("ring_occupancy").at(q).at("max"), kIodepth) << "queue " << q;
    }
}

TEST(BlkCli, MoreQueuesRaiseIopsWhenTheXenPathIsTheBottleneck) {
    // ramdisk: service time ~0, so the rings, grants and interrupts set the pace. One queue takes
    // every vCPU's I/O through one ring (32 slots), one event channel bound to vCPU 0 and one ring
    // event at a time in dom0; four queues spread the interrupts and completions over the vCPUs.
    fs::path dir = temp_dir("mq-ramdisk");
    json s = mq_scenario("ramdisk");
    json one = run_with_queues(dir, s, 1);
    json four = run_with_queues(dir, s, 4);
    check_run(one, 1);
    check_run(four, 4);
    if (HasFailure()) return;
    double iops1 = one.at("workloads").at(0).at("block").at("iops");
    double iops4 = four.at("workloads").at(0).at("block").at("iops");
    EXPECT_GE(iops4, iops1);
    EXPECT_GT(iops4, 1.2 * iops1) << "the gain must be more than noise";
    fs::remove_all(dir);
}

TEST(BlkCli, OnASaturatedSsdMoreQueuesAddLatencyNotIops) {
    // ssd: 4 flash channels of 50 us for a 4 KiB read: at most 4 / 50 us = 80,000 IOPS, and 64 I/Os
    // wanted in flight keep all 4 channels busy either way. So both runs sit at the device's ceiling
    // (IOPS cannot exceed it: 8000 reads need 2000 waves of 50 us), and the extra ring slots of four
    // queues only lengthen the queue at the disk: Little's law, latency = in flight / throughput,
    // 32 in flight (one full ring) against 64 (four rings of 16) doubles the mean latency.
    const double ceiling = 4 / 50e-6;
    fs::path dir = temp_dir("mq-ssd");
    json s = mq_scenario("ssd");
    json one = run_with_queues(dir, s, 1);
    json four = run_with_queues(dir, s, 4);
    check_run(one, 1);
    check_run(four, 4);
    if (HasFailure()) return;
    const json& w1 = one.at("workloads").at(0);
    const json& w4 = four.at("workloads").at(0);
    double iops1 = w1.at("block").at("iops"), iops4 = w4.at("block").at("iops");
    EXPECT_LE(iops1, ceiling);
    EXPECT_LE(iops4, ceiling);
    EXPECT_GE(iops1, 0.99 * ceiling) << "64 I/Os wanted in flight saturate four channels";
    EXPECT_GE(iops4, 0.99 * ceiling);
    double lat1 = w1.at("latency_ns").at("mean"), lat4 = w4.at("latency_ns").at("mean");
    EXPECT_GT(lat4, 1.8 * lat1);
    EXPECT_LT(lat4, 2.2 * lat1);
    fs::remove_all(dir);
}

}  // namespace

namespace {

// The comparison the issue asks to assert: on the same disk, the PV path takes fewer exits per
// request than emulated IDE.
TEST(IdeVsPvCli, PvTakesFewerExitsPerRequestThanIde) {
    const std::string file = std::string(XENSIM_SOURCE_DIR) + "/scenarios/ide-vs-pv-4k-randread.json";
    fs::path ide = temp_dir("ide"), pv = temp_dir("pv");
    Result a = xensim("run " + file + " --set workloads.0.number_ios=200 --out " + ide.string());
    ASSERT_EQ(a.status, 0) << a.output;
    Result b =
        xensim("run " + file + " --set workloads.0.number_ios=200 --set domains.1.disks.0.attach=pv --out " +
               pv.string());
    ASSERT_EQ(b.status, 0) << b.output;
    json ri, rp;
    std::ifstream(ide / "report.json") >> ri;
    std::ifstream(pv / "report.json") >> rp;
    const double ide_exits = ri["workloads"][0]["per_request"]["exits_total"];
    const double pv_exits = rp["workloads"][0]["per_request"]["exits_total"];
    EXPECT_EQ(ri["workloads"][0]["block"]["device"]["attach"], "ide");
    EXPECT_EQ(rp["workloads"][0]["block"]["device"]["attach"], "pv");
    EXPECT_LT(pv_exits, ide_exits);
    EXPECT_GT(ide_exits, 26.0);  // 26 port accesses and the EOI per request, at least
    fs::remove_all(ide);
    fs::remove_all(pv);
}

// The same, for every shipped scenario with an IDE disk: run it as shipped (capped at 200 I/Os per
// job) and with the same disks attached as PV, and the PV run takes fewer exits per request. New
// IDE scenarios are picked up without editing this test.
TEST(IdeVsPvCli, EveryShippedIdeScenarioTakesFewerExitsPerRequestAsPv) {
    unsigned checked = 0;
    for (const auto& entry : fs::directory_iterator(src("scenarios"))) {
        if (entry.path().extension() != ".json") continue;
        json sc;
        std::ifstream(entry.path()) >> sc;
        bool has_ide = false;
        for (const json& d : sc.value("domains", json::array()))
            for (const json& disk : d.value("disks", json::array()))
                has_ide |= disk.value("attach", "") == "ide";
        if (!has_ide) continue;
        for (json& w : sc["workloads"])
            if (w.value("type", "") == "fio") w["number_ios"] = 200;
        json pv = sc;
        for (json& d : pv["domains"])
            if (d.contains("disks"))
                for (json& disk : d["disks"])
                    if (disk.value("attach", "") == "ide") {
                        disk["attach"] = "pv";
                        disk.erase("ide_transfer");
                        disk.erase("ide_set_multiple");
                    }
        const std::string name = entry.path().stem().string();
        fs::path dir = temp_dir("every-ide-" + name);
        std::ofstream(dir / "ide.json") << sc.dump();
        std::ofstream(dir / "pv.json") << pv.dump();
        Result a = xensim("run " + (dir / "ide.json").string() + " --out " + (dir / "ide").string());
        Result b = xensim("run " + (dir / "pv.json").string() + " --out " + (dir / "pv").string());
        ASSERT_EQ(a.status, 0) << name << ": " << a.output;
        ASSERT_EQ(b.status, 0) << name << ": " << b.output;
        const json ri = read_json(dir / "ide" / "report.json"), rp = read_json(dir / "pv" / "report.json");
        for (std::size_t i = 0; i < ri["workloads"].size(); ++i) {
            if (ri["workloads"][i]["type"] != "fio") continue;
            const double ide_exits = ri["workloads"][i]["per_request"]["exits_total"];
            const double pv_exits = rp["workloads"][i]["per_request"]["exits_total"];
            EXPECT_LT(pv_exits, ide_exits) << name << " workload " << i;
            EXPECT_EQ(ri["workloads"][i]["failures"], 0u) << name;
            EXPECT_EQ(rp["workloads"][i]["failures"], 0u) << name;
            ++checked;
        }
        fs::remove_all(dir);
    }
    EXPECT_GE(checked, 4u);  // ide-vs-pv-4k-randread, ide-lba48, ide-write-flush, ide-dma-vs-pio
}

// The guest IDE driver's two transfer modes on the same disk and job: DMA takes fewer exits per
// request than PIO (26 port accesses against 27 with READ/WRITE MULTIPLE, one interrupt each), and
// both write and read back every block intact. xensim compare diffs the two reports.
TEST(IdeDmaVsPioCli, DmaTakesFewerExitsPerRequestThanPio) {
    const std::string file = src("scenarios/ide-dma-vs-pio.json");
    fs::path dma = temp_dir("ide-dma"), pio = temp_dir("ide-pio");
    const std::string small = " --set workloads.0.size=524288";  // 128 writes, 128 verify reads
    Result a = xensim("run " + file + small + " --out " + dma.string());
    ASSERT_EQ(a.status, 0) << a.output;
    Result b =
        xensim("run " + file + small + " --set domains.1.disks.0.ide_transfer=pio --out " + pio.string());
    ASSERT_EQ(b.status, 0) << b.output;
    json rd = read_json(dma / "report.json"), rp = read_json(pio / "report.json");
    const json& bd = rd["workloads"][0]["block"];
    const json& bp = rp["workloads"][0]["block"];
    EXPECT_EQ(bd["device"]["transfer"], "dma");
    EXPECT_EQ(bp["device"]["transfer"], "pio");
    for (const json* blk : {&bd, &bp}) {
        EXPECT_EQ((*blk)["writes"], 128u);
        EXPECT_EQ((*blk)["verified"], 128u);
        EXPECT_EQ((*blk)["verify_failures"], 0u);
        EXPECT_EQ((*blk)["audit"]["lost_writes"], 0u);
    }
    EXPECT_EQ(bd["ide"]["commands"]["WRITE DMA"], 128u);
    EXPECT_EQ(bd["ide"]["commands"]["READ DMA"], 128u);
    EXPECT_EQ(bp["ide"]["commands"]["WRITE MULTIPLE"], 128u);
    EXPECT_EQ(bp["ide"]["commands"]["READ MULTIPLE"], 128u);
    EXPECT_FALSE(bd["ide"]["commands"].contains("READ MULTIPLE"));
    EXPECT_FALSE(bp["ide"]["commands"].contains("READ DMA"));
    const double dma_exits = rd["workloads"][0]["per_request"]["exits_total"];
    const double pio_exits = rp["workloads"][0]["per_request"]["exits_total"];
    EXPECT_LT(dma_exits, pio_exits);
    Result c = xensim("compare " + (dma / "report.json").string() + " " + (pio / "report.json").string());
    EXPECT_EQ(c.status, 0) << c.output;
    EXPECT_NE(c.output.find("per_request.exits_total"), std::string::npos) << c.output;
    fs::remove_all(dma);
    fs::remove_all(pio);
}

}  // namespace
