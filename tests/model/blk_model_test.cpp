// The PV block path through the whole platform: an fio job in an HVM guest -> blkfront -> blkif ring
// -> event channel -> dom0's blkback -> storage -> response -> upcall. Every expected count below is
// derived from the protocol and the code (frontends/blkfront.cpp, frontends/blkif_ring_frontend.cpp,
// frontends/fio_workload.cpp, models/dom0/blkback.cpp, models/dom0/blkif_ring_backend.cpp), not read
// off a run. One Simulation per TEST: SystemC elaborates once per process.
#include "models/dom0/blkif_ring_backend.h"
#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

// dom0 (PV, 1 vCPU) and one HVM guest (1 vCPU) with one 100 MiB disk, xvda (devid 51712), behind
// the null service model (completes at once: the Xen path alone sets the pace). One fio job.
json blk_scenario() {
    return json::parse(R"({
        "name": "blk",
        "platform": {"pcpus": 2},
        "domains": [
            {"name": "dom0", "type": "pv", "vcpus": 1, "memory_mb": 1024},
            {"name": "guest", "type": "hvm", "vcpus": 1, "memory_mb": 256,
             "disks": [{"vdev": "xvda", "sectors": 204800, "model": "null"}]}
        ],
        "workloads": [{"type": "fio", "name": "fio", "guest": "guest", "rw": "randread", "bs": 4096,
                       "iodepth": 1, "number_ios": 100}]
    })");
}

json& fio(json& s) { return s["workloads"][0]; }
json& guest(json& s) { return s["domains"][1]; }

const json& workload(const Simulation& sim) { return sim.report.at("workloads").at(0); }
const json& block(const Simulation& sim) { return workload(sim).at("block"); }

// Stats paths: the guest's driver (queue 0's ring engine below it) and dom0's backend for
// (domid 1, devid 51712) with ring 0's engine below it, under the disk's group.
const std::string kFront = "dom1.guest.vbd_51712";
const std::string kFrontQ0 = kFront + ".queue0";
const std::string kBack = "disk_guest_xvda.vbd_1_51712";
const std::string kBackRing0 = kBack + ".ring0";
const std::string kDisk = "disk_guest_xvda";
// XenStore directories of the device.
const std::string kFrontDir = "/local/domain/1/device/vbd/51712";
const std::string kBackDir = "/local/domain/0/backend/vbd/1/51712";

// GNTTABOP_map_grant_ref hypercalls dom0 makes whatever the block job does: xenstored maps the
// guest's xenstore ring at boot (one of kXenstoredHypercallsPerGuest, the other is the bind).
constexpr std::uint64_t kXenstoredRingMaps = 1;
// blkback maps each blkif ring (all its 2^order pages) with one batched GNTTABOP_map_grant_ref
// (map_ring / xenbus_map_ring_valloc): one hypercall per queue.
constexpr std::uint64_t kBlkifRingMapsPerQueue = 1;

std::uint64_t dom0_hypercalls(const Simulation& sim, const std::string& name) {
    return count(sim.domain("dom0").at("hypercalls"), name);
}

std::uint64_t u64(const json& j, const char* key) { return j.at(key).get<std::uint64_t>(); }

TEST(Blk, Qd1ReadsNotifyAndInterruptOncePerRequestAndRunOneRequestPerBatch) {
    const std::uint64_t ios = 100;
    json s = blk_scenario();
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    EXPECT_EQ(b.at("reads"), ios);
    EXPECT_EQ(b.at("bytes_read"), ios * 4096);
    // iodepth 1: each push publishes one request onto an empty ring. The backend's last
    // RING_FINAL_CHECK_FOR_REQUESTS left req_event = req_cons + 1, so the push moving req_prod from
    // req_cons to req_cons + 1 crosses it: RING_PUSH_REQUESTS_AND_CHECK_NOTIFY always says notify.
    // Symmetrically the frontend's RING_FINAL_CHECK_FOR_RESPONSES left rsp_event = rsp_cons + 1 and
    // the backend pushes exactly one response: notify again. Nothing is ever suppressed.
    const json& f = b.at("frontend");
    const json& k = b.at("backend");
    EXPECT_EQ(f.at("notifications_sent"), ios);
    EXPECT_EQ(f.at("notifications_suppressed"), 0u);
    EXPECT_EQ(k.at("notifications_sent"), ios);
    EXPECT_EQ(k.at("notifications_suppressed"), 0u);
    EXPECT_EQ(sim.stat(kFrontQ0 + ".notifications_sent"), ios);
    EXPECT_EQ(sim.stat(kBackRing0 + ".notifications_sent"), ios);
    // One interrupt per response, each finding its response (no empty interrupt).
    EXPECT_EQ(f.at("interrupts"), ios);
    EXPECT_EQ(f.at("empty_interrupts"), 0u);
    // One disk completion interrupt per request (one completion outstanding at a time).
    EXPECT_EQ(k.at("disk_irqs"), ios);
    // Every request is its own batch: each ring event finds exactly one request.
    EXPECT_EQ(k.at("requests"), ios);
    EXPECT_EQ(sim.stat(kBack + ".batches"), ios);
    const json& batch = sim.report.at("stats").at("disk_guest_xvda").at("vbd_1_51712").at("batch_size");
    EXPECT_EQ(batch.at("count"), ios);
    EXPECT_EQ(batch.at("min"), 1u);
    EXPECT_EQ(batch.at("max"), 1u);
    // And one request in flight at each push; no I/O merged into another (nothing left unpushed).
    EXPECT_EQ(b.at("ring_occupancy").at(0).at("max"), 1u);
    EXPECT_EQ(b.at("ring_occupancy").at(0).at("histogram"), json::array({0, ios}));
    // Every disk interrupt found its completion.
    EXPECT_EQ(k.at("disk_irqs_empty"), 0u);
    // One job, whose figures are the workload's.
    ASSERT_EQ(b.at("jobs").size(), 1u);
    EXPECT_EQ(b.at("jobs").at(0).at("job"), 0u);
    EXPECT_EQ(b.at("jobs").at(0).at("ops"), ios);
    EXPECT_EQ(b.at("jobs").at(0).at("reads"), ios);
    EXPECT_EQ(b.at("jobs").at(0).at("bytes_read"), ios * 4096);
    EXPECT_EQ(f.at("merges"), 0u);
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_READ"), ios);
    EXPECT_EQ(sim.stat(kFront + ".ios_completed"), ios);
}

// Two jobs (numjobs=2) of 50 reads each on a 2-vCPU guest: jobs[] reports each on its own, and
// their operations add up to the workload's. Two jobs at QD1 keep at most two requests in flight,
// and the occupancy histogram counts every push once.
TEST(Blk, EachFioJobReportsItsOwnFigures) {
    json s = blk_scenario();
    guest(s)["vcpus"] = 2;
    fio(s)["numjobs"] = 2;
    fio(s)["number_ios"] = 50;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = block(sim);
    ASSERT_EQ(workload(sim).at("ops"), 100u);
    const json& jobs = b.at("jobs");
    ASSERT_EQ(jobs.size(), 2u);
    for (unsigned j = 0; j < 2; ++j) {
        EXPECT_EQ(jobs.at(j).at("job"), j);
        EXPECT_EQ(jobs.at(j).at("ops"), 50u);
        EXPECT_EQ(jobs.at(j).at("reads"), 50u);
        EXPECT_EQ(jobs.at(j).at("writes"), 0u);
        EXPECT_EQ(jobs.at(j).at("bytes_read"), 50u * 4096);
        EXPECT_GT(jobs.at(j).at("iops").get<double>(), 0.0);
        EXPECT_GT(jobs.at(j).at("latency_ns").at("p50").get<double>(), 0.0);
    }
    std::uint64_t pushes = 0;
    for (const json& q : b.at("ring_occupancy")) {
        const json& h = q.at("histogram");
        EXPECT_LE(h.size(), 3u);  // 0, 1 or 2 in flight
        EXPECT_EQ(h.at(0), 0u);   // a push always leaves its own request in flight
        for (const json& n : h) pushes += n.get<std::uint64_t>();
        EXPECT_EQ(q.at("count"), [&] {
            std::uint64_t c = 0;
            for (const json& n : h) c += n.get<std::uint64_t>();
            return c;
        }());
    }
    EXPECT_EQ(pushes, u64(b.at("frontend"), "notifications_sent") +
                          u64(b.at("frontend"), "notifications_suppressed"));
}

TEST(Blk, PersistentGrantsMapOnlyWhileWarmingThePool) {
    const std::uint64_t ios = 400, iodepth = 8;
    json s = blk_scenario();
    fio(s)["iodepth"] = iodepth;
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    ASSERT_EQ(b.at("device").at("persistent_grants"), true) << "linux offers it, blkback offers it";
    const json& f = b.at("frontend");
    const json& k = b.at("backend");
    // The frontend pool (get_persistent): a new page is granted only when the pool is empty. The job
    // issues all `iodepth` I/Os before the first kick (FioWorkload::run_jobs), one 4 KiB segment
    // each, so the first batch takes `iodepth` new grants; afterwards at most `iodepth` are held and
    // every completion returns its grant before the next submission: the pool never runs dry again.
    // The ring page is granted by blkfront itself (talk_to_blkback), not by the engine: not counted.
    const std::uint64_t segments = sim.stat(kFrontQ0 + ".segments");
    ASSERT_EQ(segments, ios) << "bs 4096: one segment per I/O";
    EXPECT_EQ(f.at("grants_granted"), iodepth);
    EXPECT_EQ(f.at("grants_reused"), ios - iodepth);
    EXPECT_EQ(f.at("grants_ended"), 0u) << "persistent grants are never ended while connected";
    // blkback keeps every new grant (iodepth << max_persistent_grants 1056): one persistent map per
    // distinct grant the frontend made, a hit for every other segment, never an unmap.
    EXPECT_EQ(k.at("persistent_maps"), f.at("grants_granted"));
    EXPECT_EQ(k.at("persistent_hits"), segments - iodepth);
    EXPECT_EQ(k.at("grant_unmaps"), 0u);
    EXPECT_EQ(k.at("grant_maps"), 1 + iodepth) << "the ring page and the pool";
    // Hypercalls: one GNTTABOP_map_grant_ref per request that found a grant not mapped yet (the
    // first `iodepth` requests, one new grant each: a merge would put two in one request, and there
    // is none), plus the blkif ring and xenstored's ring map. Then the count stops growing: 392
    // further requests make no map hypercall at all, and none unmaps.
    ASSERT_EQ(f.at("merges"), 0u);
    EXPECT_EQ(k.at("requests"), ios);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + kBlkifRingMapsPerQueue + iodepth);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_unmap_grant_ref"), 0u);
    // Xen's side agrees: every map succeeded and none was undone.
    EXPECT_EQ(k.at("map_failures"), 0u);
}

// dispatch_rw_block_io submits the bio after xen_blkbk_map returns: the map hypercall is part of the
// request's latency. QD1 4 KiB reads on the SSD model (50 us + 8.2 us on the link, the same for every
// read) with persistent grants: only the first read maps its grant (the pool then holds it), so it
// alone pays the map, made 20 us long here (42,000 cycles at 2.1 GHz) while the disk takes ~58 us.
// Were the disk started before the map, the map would hide under the disk time and every read would
// take as long as the others.
TEST(Blk, TheDiskStartsAfterTheGrantMapSoTheMapIsInTheLatency) {
    const std::uint64_t map_cycles = 42000, map_ns = map_cycles * 1000 / 2100;
    json s = blk_scenario();
    guest(s)["disks"][0]["model"] = "ssd";
    s["platform"]["cpu_mhz"] = 2100;
    s["platform"]["cost"] = {{"grant_map_per_page", map_cycles}};
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = block(sim);
    ASSERT_EQ(b.at("device").at("persistent_grants"), true);
    ASSERT_EQ(b.at("backend").at("persistent_maps"), 1u) << "one grant, mapped once, kept";
    const json& lat = workload(sim).at("latency_ns");
    const std::uint64_t lo = lat.at("min"), hi = lat.at("max");
    // Disk started before the map, this spread is 10,944 ns (the first read's other first-time
    // work), whatever the map costs; started after it, the map adds its 20 us.
    EXPECT_GE(hi - lo, map_ns) << "the first read waits for its map before the disk starts";
    EXPECT_LT(hi - lo, map_ns + 12000) << "and the reads differ by little else";
}

// xen_blkbk_map keeps a new grant while ring->persistent_gnt_c < max_pgrants: the limit is per ring.
// Four queues, a limit of 8: each ring keeps 8 grants of the 16 its job keeps in flight (4 KiB random
// reads at iodepth 16, one job per queue), so 4 * 8 are kept, and the rest are mapped per request.
TEST(Blk, ThePersistentGrantLimitIsPerRing) {
    const std::uint64_t queues = 4, limit = 8, iodepth = 16, ios = 200;
    json s = blk_scenario();
    s["platform"]["pcpus"] = 4;
    s["platform"]["blkback"] = {{"max_persistent_grants", limit}};
    guest(s)["vcpus"] = queues;
    guest(s)["blkfront"] = {{"queues", queues}};
    fio(s)["iodepth"] = iodepth;
    fio(s)["numjobs"] = queues;
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = block(sim);
    ASSERT_EQ(b.at("device").at("queues"), queues);
    ASSERT_EQ(b.at("device").at("persistent_grants"), true);
    for (unsigned q = 0; q < queues; ++q)
        ASSERT_GT(sim.stat(kFront + ".queue" + std::to_string(q) + ".grants_granted"), limit)
            << "queue " << q << " offers more grants than one ring may keep";
    const json& k = b.at("backend");
    EXPECT_EQ(k.at("persistent_maps"), queues * limit);
}

TEST(Blk, WithoutPersistentGrantsEveryRequestMapsAndUnmapsItsSegmentsInOneBatchEach) {
    // 16 KiB I/Os: four segments per request; iodepth 4 so that requests overlap.
    const std::uint64_t ios = 200, seg_per_io = 4;
    json s = blk_scenario();
    guest(s)["blkfront"] = {{"persistent_grants", "off"}};
    fio(s)["bs"] = 4096 * seg_per_io;
    fio(s)["iodepth"] = 4;
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    EXPECT_EQ(b.at("device").at("persistent_grants"), false);
    EXPECT_EQ(sim.platform.xenstore().read(kFrontDir + "/feature-persistent"), "0");
    EXPECT_EQ(sim.platform.xenstore().read(kBackDir + "/feature-persistent"), "0");
    const json& f = b.at("frontend");
    const json& k = b.at("backend");
    // Requests on the ring: one per I/O unless an I/O was merged into an unpushed neighbour.
    const std::uint64_t requests = u64(k, "requests");
    EXPECT_EQ(requests, ios - u64(f, "merges"));
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_READ"), requests);
    const std::uint64_t segments = ios * seg_per_io;
    EXPECT_EQ(sim.stat(kFrontQ0 + ".segments"), segments);
    // The frontend grants every data page for its request and ends the grant at completion (the
    // backend unmapped it before answering, so no end is deferred).
    EXPECT_EQ(f.at("grants_granted"), segments);
    EXPECT_EQ(f.at("grants_ended"), segments);
    EXPECT_EQ(f.at("grants_reused"), 0u);
    EXPECT_EQ(sim.stat(kFrontQ0 + ".grants_end_deferred"), 0u);
    // blkback: every segment mapped (plus the one ring page), every segment unmapped; nothing kept.
    EXPECT_EQ(k.at("grant_maps"), segments + 1);
    EXPECT_EQ(k.at("grant_unmaps"), segments);
    EXPECT_EQ(k.at("persistent_maps"), 0u);
    EXPECT_EQ(k.at("persistent_hits"), 0u);
    // One batched map (xen_blkbk_map) and one batched unmap (xen_blkbk_unmap_and_respond) per
    // request, whatever its segment count; plus the ring map and xenstored's ring map.
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + kBlkifRingMapsPerQueue + requests);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_unmap_grant_ref"), requests);
    EXPECT_EQ(sim.platform.hypervisor().grant_table().active_maps(0), 1u + 1u)
        << "only the xenstore ring and the blkif ring stay mapped";
}

// randwrite over 1 MiB with verify=crc32c: 256 blocks written once each (random map), then each read
// back once in offset order and checked.
void verify_run(const char* model) {
    const std::uint64_t size = 1 << 20, bs = 4096, blocks = size / bs;
    json s = blk_scenario();
    guest(s)["disks"][0]["model"] = model;
    json& j = fio(s);
    j.erase("number_ios");
    j["rw"] = "randwrite";
    j["verify"] = "crc32c";
    j["iodepth"] = 4;
    j["size"] = size;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    EXPECT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    EXPECT_EQ(b.at("first_failure"), "");
    // Operations: every write plus every verify read.
    EXPECT_EQ(b.at("writes"), blocks);
    EXPECT_EQ(b.at("reads"), blocks);
    EXPECT_EQ(w.at("ops"), 2 * blocks);
    EXPECT_EQ(b.at("bytes_written"), size);
    EXPECT_EQ(b.at("bytes_read"), size);
    // Every block checked and found good; none skipped (writes never overlap with the random map).
    EXPECT_EQ(b.at("verified"), blocks);
    EXPECT_EQ(b.at("unverified"), 0u);
    EXPECT_EQ(b.at("verify_failures"), 0u);
    EXPECT_EQ(b.at("errors"), 0u);
    // The bytes really went through the disk both ways (the disk counts merged requests, so bytes).
    EXPECT_EQ(sim.stat(kDisk + ".bytes_written"), size);
    EXPECT_EQ(sim.stat(kDisk + ".bytes_read"), size);
    EXPECT_EQ(sim.stat(kDisk + ".errors"), 0u);
    // Every request the ring engine accepted went to the disk (reads + writes, no other operation).
    EXPECT_EQ(sim.stat(kDisk + ".reads") + sim.stat(kDisk + ".writes"), u64(b.at("backend"), "requests"));
}

TEST(Blk, VerifyCrc32cOnNullDiskReadsBackEveryWrittenBlock) { verify_run("null"); }
TEST(Blk, VerifyCrc32cOnRamdiskReadsBackEveryWrittenBlock) { verify_run("ramdisk"); }
TEST(Blk, VerifyCrc32cOnSsdReadsBackEveryWrittenBlock) { verify_run("ssd"); }

TEST(Blk, WritesToAReadOnlyDiskAreRejectedByTheRingEngine) {
    const std::uint64_t ios = 50;
    json s = blk_scenario();
    guest(s)["disks"][0]["mode"] = "r";
    fio(s)["rw"] = "randwrite";
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    // The backend advertises the disk read-only (info = VDISK_READONLY).
    EXPECT_EQ(sim.platform.xenstore().read(kBackDir + "/info"), std::to_string(VDISK_READONLY));
    // Every write completes, with BLKIF_RSP_ERROR: an operation with a failure each.
    EXPECT_EQ(w.at("ops"), ios);
    EXPECT_EQ(w.at("failures"), ios);
    EXPECT_EQ(b.at("writes"), ios);
    EXPECT_EQ(b.at("errors"), ios);
    EXPECT_EQ(sim.stat(kFront + ".ios_failed"), ios);
    EXPECT_NE(b.at("first_failure")
                  .get<std::string>()
                  .find("failed with status " + std::to_string(BLKIF_RSP_ERROR)),
              std::string::npos)
        << b.at("first_failure");
    // xen_vbd_translate rejects anything but READ on a read-only vbd. That check is the ring engine's
    // (dispatch_rw_block_io), before blkback maps or submits anything: the engine counts the
    // rejection under "read_only" and answers it itself. blkback's own responses_error counts only
    // *accepted* requests answered with an error, so it stays 0, as does its request count.
    EXPECT_EQ(sim.family(kBackRing0 + ".requests", "BLKIF_OP_WRITE"), ios);
    EXPECT_EQ(sim.family(kBackRing0 + ".rejected", "read_only"), ios);
    EXPECT_EQ(sim.stat(kBackRing0 + ".accepted"), 0u);
    EXPECT_EQ(sim.stat(kBackRing0 + ".responses"), ios);
    const json& k = b.at("backend");
    EXPECT_EQ(k.at("requests"), 0u);
    EXPECT_EQ(k.at("responses_error"), 0u);
    // Nothing reached the disk; no data page was mapped (only the ring page: one map hypercall).
    EXPECT_EQ(k.at("disk_irqs"), 0u);
    EXPECT_EQ(sim.stat(kDisk + ".writes"), 0u);
    EXPECT_EQ(sim.stat(kDisk + ".bytes_written"), 0u);
    EXPECT_EQ(k.at("grant_maps"), 1u);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + kBlkifRingMapsPerQueue);
    // The rejection is pushed at once and, at iodepth 1, always notifies (see the QD1 test).
    EXPECT_EQ(k.at("notifications_sent"), ios);
    EXPECT_EQ(b.at("frontend").at("interrupts"), ios);
}

// 128 KiB sequential reads: 32 segments per I/O.
json indirect_scenario() {
    json s = blk_scenario();
    fio(s)["rw"] = "read";
    fio(s)["bs"] = 131072;
    fio(s)["iodepth"] = 2;
    fio(s)["number_ios"] = 50;
    return s;
}

TEST(Blk, LargeIosGoIndirectWhenBothSidesOfferIt) {
    const std::uint64_t ios = 50, seg = 32, iodepth = 2;
    Simulation sim(indirect_scenario());
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    // linux wants 32 indirect segments, blkback offers 256: min = 32 > 11, so indirect is used, and
    // a 32-segment I/O fits one BLKIF_OP_INDIRECT request (one indirect page: 32 <= 512).
    EXPECT_EQ(b.at("device").at("max_indirect_segments"), seg);
    EXPECT_EQ(sim.platform.xenstore().read(kBackDir + "/feature-max-indirect-segments"), "256");
    const json& f = b.at("frontend");
    const json& k = b.at("backend");
    EXPECT_EQ(f.at("indirect_requests"), ios);
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_INDIRECT"), ios);
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_READ"), 0u);
    EXPECT_EQ(sim.stat(kFrontQ0 + ".segments"), ios * seg);
    EXPECT_EQ(f.at("merges"), 0u) << "nothing merges into an INDIRECT request";
    EXPECT_EQ(k.at("requests"), ios);
    EXPECT_EQ(sim.family(kBackRing0 + ".requests", "BLKIF_OP_INDIRECT"), ios);
    // Persistent grants: each I/O holds 32 data grants + 1 indirect-page grant from the pool; the
    // first two I/Os are issued together, so the pool grows to 2 * 33 and no further.
    const std::uint64_t per_io = seg + 1, pool = iodepth * per_io;
    EXPECT_EQ(f.at("grants_granted"), pool);
    EXPECT_EQ(k.at("persistent_maps"), pool);
    EXPECT_EQ(k.at("persistent_hits"), ios * per_io - pool);
    EXPECT_EQ(k.at("grant_maps"), 1 + pool);
    EXPECT_EQ(k.at("grant_unmaps"), 0u);
    // The first two requests each make two map hypercalls: the indirect page
    // (xen_blkbk_parse_indirect), then the 32 data pages in one batch. Later ones find all mapped.
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + kBlkifRingMapsPerQueue + 2 * iodepth);
    EXPECT_EQ(sim.stat(kDisk + ".bytes_read"), ios * 131072);
}

TEST(Blk, WithoutIndirectDescriptorsAnIoIsSplitIntoElevenSegmentRequests) {
    const std::uint64_t ios = 50, seg = 32, iodepth = 2;
    // ceil(32 / BLKIF_MAX_SEGMENTS_PER_REQUEST) = ceil(32 / 11) = 3 requests: 11 + 11 + 10 segments.
    const std::uint64_t parts = (seg + BLKIF_MAX_SEGMENTS_PER_REQUEST - 1) / BLKIF_MAX_SEGMENTS_PER_REQUEST;
    static_assert(BLKIF_MAX_SEGMENTS_PER_REQUEST == 11);
    ASSERT_EQ(parts, 3u);
    json s = indirect_scenario();
    guest(s)["blkfront"] = {{"max_indirect_segments", 0}};
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    EXPECT_EQ(b.at("device").at("max_indirect_segments"), 0u);
    const json& f = b.at("frontend");
    const json& k = b.at("backend");
    EXPECT_EQ(f.at("indirect_requests"), 0u);
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_INDIRECT"), 0u);
    // No merge: the next I/O's 32 segments never fit beside an unpushed 10-segment part.
    EXPECT_EQ(f.at("merges"), 0u);
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_READ"), ios * parts);
    EXPECT_EQ(sim.stat(kFrontQ0 + ".segments"), ios * seg);
    EXPECT_EQ(sim.stat(kFront + ".ios_completed"), ios) << "an I/O completes once, after all its parts";
    EXPECT_EQ(k.at("requests"), ios * parts);
    EXPECT_EQ(sim.family(kBackRing0 + ".requests", "BLKIF_OP_READ"), ios * parts);
    // Persistent grants: 32 data grants per I/O, two I/Os at once; no indirect pages.
    const std::uint64_t pool = iodepth * seg;
    EXPECT_EQ(f.at("grants_granted"), pool);
    EXPECT_EQ(k.at("persistent_maps"), pool);
    EXPECT_EQ(k.at("persistent_hits"), ios * seg - pool);
    // The first 2 * 3 requests each map their new grants in one hypercall.
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + kBlkifRingMapsPerQueue + iodepth * parts);
}

TEST(Blk, GplpvProfileUsesOneSinglePageRingWithoutPersistentGrantsOrIndirect) {
    // Two vCPUs: linux would negotiate two queues; gplpv has one ring whatever the vCPUs.
    // 64 KiB I/Os (16 segments) show that no indirect descriptor is used even where one would help.
    const std::uint64_t ios = 60, seg = 16;
    const std::uint64_t parts = 2;  // ceil(16 / 11): 11 + 5 segments
    json s = blk_scenario();
    guest(s)["vcpus"] = 2;
    guest(s)["blkfront"] = {{"profile", "gplpv"}};
    fio(s)["bs"] = 4096 * seg;
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    const json& d = b.at("device");
    EXPECT_EQ(d.at("queues"), 1u);
    EXPECT_EQ(d.at("ring_page_order"), 0u);
    EXPECT_EQ(d.at("ring_slots"), 32u);
    EXPECT_EQ(d.at("persistent_grants"), false);
    EXPECT_EQ(d.at("max_indirect_segments"), 0u);
    XenStore& xs = sim.platform.xenstore();
    EXPECT_FALSE(xs.read(kFrontDir + "/multi-queue-num-queues")) << "a single ring writes no queue count";
    EXPECT_FALSE(xs.read(kFrontDir + "/ring-page-order"));
    EXPECT_TRUE(xs.read(kFrontDir + "/ring-ref"));
    EXPECT_EQ(xs.read(kFrontDir + "/feature-persistent"), "0");
    const json& f = b.at("frontend");
    const json& k = b.at("backend");
    EXPECT_EQ(f.at("indirect_requests"), 0u);
    EXPECT_EQ(sim.family(kFrontQ0 + ".requests", "BLKIF_OP_READ"), ios * parts);
    // Without persistent grants: every segment granted, mapped, unmapped and ended; one batched map
    // and one batched unmap per request (iodepth 1: no merge is possible).
    EXPECT_EQ(f.at("grants_granted"), ios * seg);
    EXPECT_EQ(f.at("grants_ended"), ios * seg);
    EXPECT_EQ(k.at("grant_maps"), ios * seg + 1);
    EXPECT_EQ(k.at("grant_unmaps"), ios * seg);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + kBlkifRingMapsPerQueue + ios * parts);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_unmap_grant_ref"), ios * parts);
}

// __CONST_RING_SIZE(blkif, 4096 << order): (bytes - 64-byte shared header) / 112-byte entry, rounded
// down to a power of two. order 0: 4032 / 112 = 36 -> 32; order 1: 8128 / 112 = 72 -> 64;
// order 2: 16320 / 112 = 145 -> 128; order 4: 65472 / 112 = 584 -> 512.
static_assert(sizeof(union blkif_sring_entry) == 112);

TEST(Blk, WinpvProfileUsesSixteenPageRingsPerVcpuWithIndirectButNoPersistentGrants) {
    const std::uint64_t ios = 100;
    ASSERT_EQ(BlkifRingBackend::ring_size(4), 512u);
    json s = blk_scenario();
    guest(s)["vcpus"] = 2;
    guest(s)["blkfront"] = {{"profile", "winpv"}};
    fio(s)["number_ios"] = ios;
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = workload(sim);
    const json& b = block(sim);
    ASSERT_EQ(w.at("ops"), ios);
    ASSERT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    // winpv (XENVBD) asks for min(max-ring-page-order, 4): blkback allows 4, so 16 pages; and for as
    // many rings as vCPUs: min(2 vCPUs, blkback's multi-queue-max-queues 4) = 2.
    const json& d = b.at("device");
    EXPECT_EQ(sim.platform.xenstore().read(kBackDir + "/max-ring-page-order"), "4");
    EXPECT_EQ(d.at("ring_page_order"), 4u);
    EXPECT_EQ(d.at("ring_slots"), 512u);
    EXPECT_EQ(d.at("queues"), 2u);
    EXPECT_EQ(d.at("persistent_grants"), false);
    EXPECT_EQ(d.at("max_indirect_segments"), 256u) << "min(winpv's 1024, blkback's 256)";
    XenStore& xs = sim.platform.xenstore();
    EXPECT_EQ(xs.read(kFrontDir + "/ring-page-order"), "4");
    EXPECT_EQ(xs.read(kFrontDir + "/multi-queue-num-queues"), "2");
    for (int q = 0; q < 2; ++q) {
        const std::string qdir = kFrontDir + "/queue-" + std::to_string(q);
        for (int i = 0; i < 16; ++i) EXPECT_TRUE(xs.read(qdir + "/ring-ref" + std::to_string(i))) << q << i;
        EXPECT_FALSE(xs.read(qdir + "/ring-ref16")) << q;
        EXPECT_FALSE(xs.read(qdir + "/ring-ref")) << "a multi-page ring uses ring-refN only";
    }
    EXPECT_FALSE(xs.read(kFrontDir + "/ring-ref0")) << "several rings: the refs live under queue-N";
    // blkback mapped each ring's 16 pages in one hypercall per ring, then one map per 4 KiB request
    // (the one fio job runs on vCPU 0 and submits on queue 0).
    const json& k = b.at("backend");
    EXPECT_EQ(k.at("grant_maps"), 2 * 16 + ios);
    EXPECT_EQ(k.at("grant_unmaps"), ios);
    EXPECT_EQ(k.at("persistent_maps"), 0u);
    EXPECT_EQ(dom0_hypercalls(sim, "grant_table_op/GNTTABOP_map_grant_ref"),
              kXenstoredRingMaps + 2 * kBlkifRingMapsPerQueue + ios);
    EXPECT_EQ(sim.platform.hypervisor().grant_table().active_maps(0), 1u + 2u * 16u)
        << "the xenstore ring and the two rings' 16 pages each stay mapped";
}

TEST(Blk, TheBackendsMaxRingPageOrderCapsWhatTheFrontendAsksFor) {
    ASSERT_EQ(BlkifRingBackend::ring_size(1), 64u);
    json s = blk_scenario();
    guest(s)["blkfront"] = {{"profile", "winpv"}};
    s["platform"]["blkback"] = {{"max_ring_page_order", 1}};
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& b = block(sim);
    ASSERT_EQ(workload(sim).at("failures"), 0u) << b.at("first_failure");
    EXPECT_EQ(b.at("device").at("ring_page_order"), 1u) << "min(winpv's 4, blkback's 1)";
    EXPECT_EQ(b.at("device").at("ring_slots"), 64u);
    EXPECT_EQ(sim.platform.xenstore().read(kFrontDir + "/ring-page-order"), "1");
    EXPECT_EQ(b.at("backend").at("grant_maps"), 2u + 100u) << "two ring pages, then one per request";
}

}  // namespace
}  // namespace xensim::testing

namespace xensim::testing {
namespace {

// Dom0 finds its backends through XenStore, as Linux's xenbus backend bus does: every vbd the
// toolstack wrote gets a blkback whether or not a workload uses it (xvdb: probed, InitWait,
// waiting for a frontend that never comes), and the vif has no driver yet (netback not loaded):
// registered unbound, counted. Nothing is probed twice, nothing fails.
TEST(BlkDiscovery, EveryDeviceTheToolstackWroteGetsABackendUsedOrNot) {
    json s = blk_scenario();
    guest(s)["disks"].push_back({{"vdev", "xvdb"}, {"sectors", 2048}, {"model", "null"}});
    guest(s)["nics"] = json::array({{{"mac", "00:16:3e:00:00:01"}}});
    Simulation sim(s);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    XenStore& store = sim.platform.xenstore();
    EXPECT_EQ(store.read("/local/domain/0/backend/vbd/1/51712/state"), "4") << "xvda: Connected";
    EXPECT_EQ(store.read("/local/domain/0/backend/vbd/1/51728/state"), "2") << "xvdb: InitWait";
    EXPECT_EQ(store.read("/local/domain/0/backend/vbd/1/51728/max-ring-page-order"), "4");
    // The vif gets netback too (netback_probe: features, InitWait), though no driver in the guest
    // uses it; a type with no driver stays unbound (BackendBus unit tests).
    EXPECT_EQ(store.read("/local/domain/0/backend/vif/1/0/state"), "2") << "vif: InitWait";
    EXPECT_EQ(store.read("/local/domain/0/backend/vif/1/0/feature-rx-copy"), "1");
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.probes"), 3u);
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.unbound"), 0u);
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.probe_failures"), 0u);
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.incomplete"), 0u);
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.not_initialising"), 0u);
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.removals"), 0u);
    // Each backend binds its disk's completion PIRQ at probe; with a nic in the platform, dom0's
    // NIC driver binds the physical NIC's PIRQ at boot (models/dom0/dom0_network.h, start).
    EXPECT_EQ(count(sim.domain("dom0").at("hypercalls"), "event_channel_op/EVTCHNOP_bind_pirq"), 2u + 1u);
    EXPECT_EQ(sim.stat("disk_guest_xvdb.vbd_1_51728.requests"), 0u);
}

}  // namespace
}  // namespace xensim::testing
