// The PV block path under a misbehaving guest and under a backend that goes away.
#include <fstream>
#include <sstream>

#include "tests/model/model_test_util.h"

namespace xensim::testing {
namespace {

using nlohmann::json;

json scenario_file(const std::string& name) {
    std::ifstream in(std::string(XENSIM_SOURCE_DIR) + "/scenarios/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
}

const json& workload(const Simulation& sim, const std::string& name) {
    for (const auto& w : sim.report.at("workloads"))
        if (w.at("name") == name) return w;
    throw std::out_of_range("no workload " + name);
}

// Every misbehaviour is answered as Linux blkback answers it, the last one (a producer more than a
// ring ahead) disconnects the device, and the other guest's verified writes are all intact.
TEST(BlkRobustness, EveryMisbehaviourIsAnsweredAsBlkbackWouldAndTheNeighbourIsUntouched) {
    Simulation sim(scenario_file("blk-misbehaving-guest.json"));
    EXPECT_EQ(sim.result.stop_reason, "workloads_done");
    const json& attacks = workload(sim, "attacks");
    const json& cases = attacks.at("misbehaviour").at("cases");
    ASSERT_EQ(cases.size(), 25u);
    unsigned errors = 0, unsupported = 0, okay = 0;
    for (const auto& c : cases) {
        EXPECT_TRUE(c.at("ok").get<bool>()) << c.dump();
        errors += c.at("got") == "BLKIF_RSP_ERROR";
        unsupported += c.at("got") == "BLKIF_RSP_EOPNOTSUPP";
        okay += c.at("got") == "BLKIF_RSP_OKAY";
    }
    // 16 malformed requests get BLKIF_RSP_ERROR, 3 unknown or unoffered operations EOPNOTSUPP,
    // 5 valid requests (read, one grant named twice, indirect read, flush, read after the errors)
    // succeed.
    EXPECT_EQ(errors, 16u);
    EXPECT_EQ(unsupported, 3u);
    EXPECT_EQ(okay, 5u);
    EXPECT_EQ(cases.back().at("case"), "producer_more_than_a_ring_ahead");
    EXPECT_EQ(cases.back().at("got"), "disconnect");
    EXPECT_EQ(attacks.at("failures"), 0u);
    // Five grants Xen refused to map: never granted (as data and as an indirect page), beyond the
    // table, granted to another domain, read-only for a READ.
    EXPECT_EQ(attacks.at("misbehaviour").at("backend_map_failures"), 5u);
    EXPECT_EQ(attacks.at("misbehaviour").at("backend_disconnects"), 1u);
    const json& victim = workload(sim, "victim-io");
    EXPECT_EQ(victim.at("failures"), 0u);
    EXPECT_EQ(victim.at("block").at("verified"), 1024u);
    EXPECT_EQ(victim.at("block").at("audit").at("lost_writes"), 0u);
}

// The same cases against a backend without indirect descriptors or persistent grants: INDIRECT is
// then an unknown operation (BLKIF_RSP_EOPNOTSUPP), and grants are mapped per request.
TEST(BlkRobustness, WithoutIndirectDescriptorsIndirectRequestsAreUnknownOperations) {
    json sc = scenario_file("blk-misbehaving-guest.json");
    sc["platform"]["blkback"] = {{"max_indirect_segments", 0}, {"feature_persistent", false}};
    Simulation sim(sc);
    const json& cases = workload(sim, "attacks").at("misbehaviour").at("cases");
    for (const auto& c : cases) {
        EXPECT_TRUE(c.at("ok").get<bool>()) << c.dump();
        if (c.at("case").get<std::string>().rfind("indirect_", 0) == 0 ||
            c.at("case") == "valid_indirect_read") {
            EXPECT_EQ(c.at("got"), "BLKIF_RSP_EOPNOTSUPP") << c.dump();
        }
    }
}

// xen_blkbk_map with the persistent-grant pool full (max_persistent_grants 0): a grant named twice in
// one request is mapped twice, neither kept, and the request is served like any other.
TEST(BlkRobustness, AGrantNamedTwiceIsServedWhenNoMoreGrantsCanBeKept) {
    json sc = scenario_file("blk-misbehaving-guest.json");
    sc["platform"]["blkback"] = {{"max_persistent_grants", 0}};
    Simulation sim(sc);
    const json& cases = workload(sim, "attacks").at("misbehaviour").at("cases");
    bool seen = false;
    for (const auto& c : cases) {
        EXPECT_TRUE(c.at("ok").get<bool>()) << c.dump();
        if (c.at("case") == "one_grant_named_twice") {
            seen = true;
            EXPECT_EQ(c.at("got"), "BLKIF_RSP_OKAY") << c.dump();
        }
    }
    EXPECT_TRUE(seen);
    EXPECT_EQ(sim.stat("disk_attacker_xvda.vbd_1_51712.persistent_maps"), 0u);
}

// xl block-detach while writes are in flight: the frontend fails what was in flight, nothing
// hangs, and every write that was acknowledged is on the medium.
TEST(BlkRobustness, DetachWithRequestsInFlightFailsThemAndLosesNoAcknowledgedWrite) {
    json sc = scenario_file("blk-seqwrite-64k.json");
    sc["domains"][1]["disks"][0]["detach_at_us"] = 5000;
    Simulation sim(sc);
    EXPECT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    const json& b = w.at("block");
    EXPECT_FALSE(b.at("device").at("connected").get<bool>());
    EXPECT_GT(b.at("aborted").get<std::uint64_t>(), 0u);
    EXPECT_EQ(b.at("errors"), b.at("aborted"));
    EXPECT_EQ(w.at("failures"), b.at("errors"));
    // Every issued write either completed or was aborted.
    EXPECT_EQ(w.at("ops").get<std::uint64_t>(), b.at("writes").get<std::uint64_t>());
    EXPECT_EQ(b.at("audit").at("blocks").get<std::uint64_t>() + b.at("aborted").get<std::uint64_t>(),
              b.at("writes").get<std::uint64_t>());
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
    EXPECT_EQ(b.at("backend").at("disconnects"), 1u);
    // The detach as libxl performs it: online 0 and state Closing in the backend directory; the
    // frontend follows (Closing, Closed), blkback follows the frontend and, finding online 0 at
    // Closed, counts the detach; the toolstack, seeing the backend Closed, removes both
    // directories, and dom0's backend bus removes the device.
    EXPECT_EQ(sim.stat("disk_guest_xvda.vbd_1_51712.detaches"), 1u);
    XenStore& store = sim.platform.xenstore();
    EXPECT_FALSE(store.read("/local/domain/0/backend/vbd/1/51712"));
    EXPECT_FALSE(store.read("/local/domain/1/device/vbd/51712"));
    EXPECT_EQ(sim.stat("dom0.xenbus_backend.removals"), 1u);
    // blkif_free: every grant the frontend gave (persistent pool, requests in flight, indirect
    // pages) is ended by the end of the run, the ones the backend still mapped at the close once it
    // unmapped them.
    const std::string q0 = "dom1.guest.vbd_51712.queue0";
    EXPECT_GT(sim.stat(q0 + ".grants_granted"), 0u);
    EXPECT_EQ(sim.stat(q0 + ".grants_ended"), sim.stat(q0 + ".grants_granted"));
}

}  // namespace
}  // namespace xensim::testing

namespace xensim::testing {
namespace {

// grant_mode copy (QEMU xen-block's way): no data page is ever mapped; a READ's data goes to the
// guest with one batched GNTTABOP_copy per request at completion, and verify still proves every
// block. 4 KiB writes then their verify reads at QD1: one copy hypercall per request, one segment
// each; the only grant map is the ring's; no persistent grants are negotiated.
TEST(BlkGrantCopy, EveryRequestIsOneBatchedCopyAndNothingButTheRingIsMapped) {
    json sc = scenario_file("blk-qd1-read.json");
    sc["platform"]["blkback"] = {{"grant_mode", "copy"}};
    sc["workloads"][0]["rw"] = "randwrite";
    sc["workloads"][0]["size"] = 409600;  // 100 blocks
    sc["workloads"][0]["verify"] = "crc32c";
    Simulation sim(sc);
    const json& w = sim.report.at("workloads").at(0);
    const json& b = w.at("block");
    EXPECT_EQ(w.at("failures"), 0u);
    EXPECT_EQ(b.at("writes"), 100u);
    EXPECT_EQ(b.at("verified"), 100u);
    EXPECT_FALSE(b.at("device").at("persistent_grants").get<bool>());
    EXPECT_EQ(b.at("backend").at("grant_maps"), 1u);  // the ring page
    EXPECT_EQ(b.at("backend").at("grant_unmaps"), 0u);
    EXPECT_EQ(b.at("backend").at("grant_copies"), 200u);
    EXPECT_DOUBLE_EQ(b.at("per_request").at("grant_copies").get<double>(),
                     200.0 / w.at("ops").get<double>());  // one per write and one per verify read
    EXPECT_DOUBLE_EQ(b.at("per_request").at("grant_maps").get<double>(), 0.0);  // the ring's is set-up
    const json& d0 = sim.domain("dom0").at("hypercalls");
    EXPECT_EQ(count(d0, "grant_table_op/GNTTABOP_copy"), 200u);
    // xenstored's map of the guest's store ring, and the blkif ring.
    EXPECT_EQ(count(d0, "grant_table_op/GNTTABOP_map_grant_ref"), 2u);
}

// grant_mode copy with I/Os of more than 64 segments: each indirect page is copied whole
// (first_sect 0, last_sect 7: 512 descriptors of 8 bytes), so a 65-segment request's descriptors
// 64.. are the guest's, not a recycled local page's. 260 KiB writes (65 segments, one indirect
// page each) then their verify reads: every request is accepted and every block verifies.
TEST(BlkGrantCopy, IndirectPagesAreCopiedWholeSoRequestsOfSixtyFiveSegmentsWork) {
    json sc = scenario_file("blk-seqwrite-64k.json");
    sc["platform"]["blkback"] = {{"grant_mode", "copy"}, {"max_indirect_segments", 256}};
    sc["domains"][1]["blkfront"] = {{"max_indirect_segments", 256}};
    const std::uint64_t bs = 65 * 4096, blocks = 20;
    sc["workloads"][0]["bs"] = bs;
    sc["workloads"][0]["size"] = blocks * bs;
    Simulation sim(sc);
    EXPECT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    const json& b = w.at("block");
    EXPECT_EQ(w.at("failures"), 0u) << b.at("first_failure");
    EXPECT_EQ(b.at("writes"), blocks);
    EXPECT_EQ(b.at("verified"), blocks);
    EXPECT_EQ(sim.family("disk_guest_xvda.vbd_1_51712.ring0.rejected", "bad_first_last_sect"), 0u);
    EXPECT_EQ(sim.family("dom1.guest.vbd_51712.queue0.requests", "BLKIF_OP_INDIRECT"), 2 * blocks);
    // One indirect page and 65 data segments copied per request, writes and verify reads alike.
    EXPECT_EQ(b.at("backend").at("grant_copies"), 2 * blocks * (1 + 65));
    EXPECT_EQ(b.at("backend").at("copy_failures"), 0u);
}

// fio's fsync=16 on a disk with a volatile write cache: 1024 64 KiB writes make 64 flushes, each
// issued once the job's writes drained (BLKIF_OP_FLUSH_DISKCACHE -> Disk flush), and every cached
// write is destaged by one of them; verify still reads every block back intact.
TEST(BlkFlush, FsyncFlushesTheWriteCacheEveryNWrites) {
    json sc = scenario_file("blk-seqwrite-64k.json");
    sc["workloads"][0]["fsync"] = 16;
    sc["domains"][1]["disks"][0]["write_cache"] = true;
    Simulation sim(sc);
    const json& b = sim.report.at("workloads").at(0).at("block");
    EXPECT_EQ(b.at("writes"), 1024u);
    EXPECT_EQ(b.at("flushes"), 64u);
    EXPECT_EQ(b.at("verified"), 1024u);
    EXPECT_EQ(b.at("errors"), 0u);
    EXPECT_EQ(sim.stat("disk_guest_xvda.flushes"), 64u);
    EXPECT_EQ(sim.stat("disk_guest_xvda.destaged_writes"), 1024u);
    EXPECT_EQ(sim.family("dom1.guest.vbd_51712.queue0.requests", "BLKIF_OP_FLUSH_DISKCACHE"), 64u);
}

// fio sync=1 with direct=1 on a PV disk: blkback offers feature-flush-cache, so blkfront's queue has
// a write cache and no FUA (blkfront_gather_backend_features, xlvbd_flush); each REQ_FUA write
// becomes BLKIF_OP_WRITE, then a BLKIF_OP_FLUSH_DISKCACHE once it completes (blk-flush.c
// POSTFLUSH), and every acknowledged write is durable: 8 writes, 8 flushes, 8 destaged writes.
TEST(BlkFlush, SyncWriteIsWriteThenFlushDiskcache) {
    json sc = scenario_file("blk-qd1-read.json");
    sc["workloads"][0]["rw"] = "randwrite";
    sc["workloads"][0]["number_ios"] = 8;
    sc["workloads"][0]["sync"] = "sync";
    sc["domains"][1]["disks"][0]["write_cache"] = true;
    Simulation sim(sc);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    EXPECT_EQ(w.at("ops"), 8u);
    EXPECT_EQ(w.at("failures"), 0u);
    EXPECT_EQ(sim.family("dom1.guest.vbd_51712.queue0.requests", "BLKIF_OP_WRITE"), 8u);
    EXPECT_EQ(sim.family("dom1.guest.vbd_51712.queue0.requests", "BLKIF_OP_FLUSH_DISKCACHE"), 8u);
    EXPECT_EQ(sim.stat("disk_guest_xvda.flushes"), 8u);
    EXPECT_EQ(sim.stat("disk_guest_xvda.destaged_writes"), 8u);
}

// At iodepth 32 the flushes coalesce as blk-flush.c's C1 and C2 make them: a flush goes out only
// when no FUA write is in its data step and no flush is in flight; each completes every write it
// was issued for. 64 writes at depth 32 on a null disk: two rounds of 32, one flush each.
TEST(BlkFlush, SyncWritesInFlightShareAFlush) {
    json sc = scenario_file("blk-qd1-read.json");
    sc["workloads"][0]["rw"] = "randwrite";
    sc["workloads"][0]["number_ios"] = 64;
    sc["workloads"][0]["iodepth"] = 32;
    sc["workloads"][0]["sync"] = "dsync";
    sc["domains"][1]["disks"][0]["write_cache"] = true;
    Simulation sim(sc);
    ASSERT_EQ(sim.result.stop_reason, "workloads_done");
    EXPECT_EQ(sim.report.at("workloads").at(0).at("ops"), 64u);
    EXPECT_EQ(sim.family("dom1.guest.vbd_51712.queue0.requests", "BLKIF_OP_WRITE"), 64u);
    EXPECT_EQ(sim.family("dom1.guest.vbd_51712.queue0.requests", "BLKIF_OP_FLUSH_DISKCACHE"), 2u);
    EXPECT_EQ(sim.stat("disk_guest_xvda.destaged_writes"), 64u);
}

// xl block-detach during O_SYNC writes on a write-cached disk: writes waiting for their post-flush
// when the device goes fail with it (nothing hangs), and every write acknowledged to fio is durable.
TEST(BlkFlush, DetachDuringSyncWritesFailsTheWaitersAndLosesNoAcknowledgedWrite) {
    json sc = scenario_file("blk-seqwrite-64k.json");
    sc["domains"][1]["disks"][0]["detach_at_us"] = 5000;
    sc["domains"][1]["disks"][0]["write_cache"] = true;
    sc["workloads"][0]["sync"] = "sync";
    Simulation sim(sc);
    EXPECT_EQ(sim.result.stop_reason, "workloads_done");
    const json& w = sim.report.at("workloads").at(0);
    const json& b = w.at("block");
    EXPECT_FALSE(b.at("device").at("connected").get<bool>());
    EXPECT_GT(b.at("errors").get<std::uint64_t>(), 0u);
    EXPECT_EQ(w.at("failures"), b.at("errors"));
    EXPECT_EQ(w.at("ops").get<std::uint64_t>(), b.at("writes").get<std::uint64_t>());
    EXPECT_EQ(b.at("audit").at("blocks").get<std::uint64_t>() + b.at("errors").get<std::uint64_t>(),
              b.at("writes").get<std::uint64_t>());
    EXPECT_EQ(b.at("audit").at("lost_writes"), 0u);
}

}  // namespace
}  // namespace xensim::testing
