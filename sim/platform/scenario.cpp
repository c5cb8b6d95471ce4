#include "sim/platform/scenario.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

#include "frontends/blkif_misbehaviour.h"
#include "frontends/netif_misbehaviour.h"
#include "sim/core/cost_model.h"
#include "sim/platform/xl_vif_rate.h"

namespace xensim {

using nlohmann::json;
using N = ConfigNode;

ConfigNodePtr scenario_schema() {
    static const ConfigNodePtr schema = [] {
        auto scheduler = N::object(
            {
                {"tslice_us",
                 N::integer(30000, 100, 1'000'000, "us", "time slice (credit1 sched_credit_tslice_ms)")},
                {"ratelimit_us",
                 N::integer(1000, 0, 1'000'000, "us", "minimum run time before wake-up preemption")},
                {"accounting_period_us",
                 N::integer(30000, 1000, 1'000'000, "us", "credit accounting period (credits handed out)")},
                {"wakeup_preemption",
                 N::boolean(true, "a BOOSTed waking vCPU preempts a lower-priority one")},
            },
            "credit-like scheduler parameters");
        auto hvm = N::object(
            {
                {"posted_interrupts",
                 N::boolean(
                     false,
                     "posted interrupts: event delivery to a running vCPU takes no EXTERNAL_INTERRUPT exit")},
                {"apic_virtualization",
                 N::enumeration(
                     "off", {"off", "register", "full"},
                     "EOI handling: off = APIC_ACCESS exit, register = APIC_WRITE exit, full = no exit")},
            },
            "hardware virtualization features");
        auto gnttab = N::object(
            {
                {"max_grant_frames", N::integer(64, 1, 4096, "frames", "grant table frames per domain")},
                {"max_maptrack_frames", N::integer(1024, 1, 65536, "frames", "maptrack frames per domain")},
            },
            "grant table limits (Xen's gnttab_max_frames, gnttab_max_maptrack_frames)");
        auto platform = N::object(
            {
                {"pcpus", N::integer(2, 1, 64, "CPUs", "physical CPUs")},
                {"cpu_mhz", N::integer(2100, 100, 10000, "MHz", "CPU clock; costs are cycles at this clock")},
                {"seed", N::integer(1, 0, 9007199254740991LL, "", "seed of the scenario's random generator")},
                {"fast_paths",
                 N::boolean(
                     true,
                     "temporal decoupling: work that nothing else can interleave with runs without "
                     "a SystemC wait (docs/temporal-decoupling.md); the report is the same either way")},
                {"cost", CostModel::schema()},
                {"scheduler", scheduler},
                {"hvm", hvm},
                {"grant_table", gnttab},
                {"blkback",
                 N::object(
                     {
                         {"max_ring_page_order",
                          N::integer(4, 0, 4, "", "largest ring-page-order offered (max-ring-page-order)")},
                         {"max_queues", N::integer(4, 1, 32, "queues", "multi-queue-max-queues offered")},
                         {"max_indirect_segments",
                          N::integer(256, 0, 4096, "segments",
                                     "feature-max-indirect-segments offered; 0: no indirect descriptors")},
                         {"feature_persistent", N::boolean(true, "offer persistent grants")},
                         {"grant_mode",
                          N::enumeration("map", {"map", "copy"},
                                         "reach the guest's data by grant map (Linux blkback) or "
                                         "GNTTABOP_copy (QEMU xen-block; no persistent grants)")},
                         {"max_persistent_grants",
                          N::integer(1056, 0, 1'000'000, "grants", "persistent grants kept per ring")},
                     },
                     "dom0's block backend (Linux xen-blkback parameters)")},
                {"network",
                 N::object(
                     {
                         {"bridges",
                          N::array(N::string(std::nullopt, "a bridge name (Linux interface name rules)"), 0,
                                   16,
                                   "dom0's software bridges; the first holds the physical NIC; empty: one, "
                                   "\"xenbr0\"")},
                         {"line_rate_gbps",
                          N::number(10, 0.001, 1000, "Gbit/s", "the physical NIC's line rate")},
                         {"propagation_ns",
                          N::integer(500, 0, 1'000'000'000, "ns",
                                     "one-way propagation delay of the wire to the remote host")},
                         {"txqueuelen",
                          N::integer(
                              1000, 0, 1'000'000, "frames",
                              "frames waiting for the line per direction (Linux's default txqueuelen)")},
                         {"nic",
                          N::object(
                              {
                                  {"interrupt_delay_us",
                                   N::integer(50, 0, 100'000, "us",
                                              "interrupt moderation (ethtool rx-usecs; i40e's default "
                                              "I40E_ITR_20K, without adaptive ITR)")},
                                  {"rx_ring", N::integer(512, 1, 65536, "frames",
                                                         "receive descriptors (IXGBE_DEFAULT_RXD, "
                                                         "I40E_DEFAULT_NUM_DESCRIPTORS)")},
                                  {"napi_budget", N::integer(64, 1, 65536, "frames",
                                                             "frames per NAPI poll (NAPI_POLL_WEIGHT)")},
                              },
                              "dom0's physical NIC")},
                         {"remote", N::object(
                                        {
                                            {"mac", N::string(std::string("00:16:3e:ff:ff:fe"),
                                                              "the remote host's MAC address")},
                                            {"ip", N::string(std::string("10.0.0.254"),
                                                             "the remote host's IPv4 address")},
                                        },
                                        "the host at the far end of the wire (runs netperf endpoints)")},
                     },
                     "dom0's network: bridges, the physical NIC and its wire, the remote host "
                     "(docs/network.md)")},
            },
            "the physical machine and hypervisor");
        auto domain = N::object(
            {
                {"name", N::string(std::nullopt, "domain name, unique"), true},
                {"type", N::enumeration("hvm", {"hvm", "pv", "pvh"}, "hvm for guests; dom0 is pv or pvh")},
                {"vcpus", N::integer(1, 1, 32, "vCPUs", "virtual CPUs (at most XEN_LEGACY_MAX_VCPUS)")},
                {"memory_mb", N::integer(256, 4, 1'048'576, "MiB", "guest memory")},
                {"weight", N::integer(256, 1, 65535, "", "credit scheduler weight")},
                {"pinning",
                 N::array(N::integer(0, 0, 63, "", "a pCPU id"), 0, 64, "hard affinity; empty = any pCPU")},
                {"upcall", N::enumeration("callback_vector", {"callback_vector", "percpu_vector"},
                                          "HVM event upcall: HVM_PARAM_CALLBACK_IRQ vector (no EOI) or "
                                          "HVMOP_set_evtchn_upcall_vector (LAPIC, EOI per upcall)")},
                {"grant_frames", N::integer(1, 1, 64, "frames", "grant table frames the guest maps at boot")},
                {"xen_platform_pci",
                 N::boolean(false,
                            "HVM: the Xen platform device in dom0's device model; the guest runs the "
                            "unplug protocol at boot (an ioreq per port access)")},
                {"ide_bmdma_base",
                 N::integer(0xc000, 0x1000, 0xfff0, "I/O port",
                            "HVM with IDE disks: where firmware put the PIIX3 IDE function's bus-master "
                            "BAR4 (16 ports, 16-byte aligned); the device model decodes it there and "
                            "the guest's ata_piix takes it from BAR4")},
                {"vga", N::enumeration("none", {"none", "stdvga"},
                                       "HVM: an emulated standard VGA in dom0's device model (text mode; "
                                       "Xen buffers single writes to its memory window)")},
                {"disks",
                 N::array(
                     N::object(
                         {
                             {"vdev", N::string(std::nullopt, "guest device name: xvd[a-z] or hd[a-d]"),
                              true},
                             {"sectors",
                              N::integer(2'097'152, 1, 1LL << 40, "512-byte sectors", "disk size")},
                             {"mode", N::enumeration("w", {"w", "r"}, "read-write or read-only")},
                             {"image", N::string(std::string(""),
                                                 "absolute path of a sparse image file (created if "
                                                 "absent); empty: the image lives in memory")},
                             {"attach",
                              N::enumeration("pv", {"pv", "ide"},
                                             "pv: blkfront/blkback; ide: the PIIX3 IDE controller of "
                                             "dom0's device model (vdev hda-hdd)")},
                             {"ide_transfer",
                              N::enumeration("dma", {"dma", "pio"},
                                             "attach ide only: how the guest's ata_piix moves data; dma: "
                                             "READ/WRITE DMA through the bus master (libata's default); "
                                             "pio: READ/WRITE MULTIPLE or SECTORS through the data port, "
                                             "as with libata.dma=0")},
                             {"ide_set_multiple",
                              N::integer(-1, -1, 16, "sectors",
                                         "attach ide only: the guest runs hdparm -m N at boot (SET "
                                         "MULTIPLE MODE N, then libata re-reads IDENTIFY); 0 turns "
                                         "multiple mode off, so PIO uses READ/WRITE SECTORS; -1: "
                                         "leave the drive's setting (16)")},
                             {"model", N::enumeration("ssd", {"null", "ramdisk", "ssd", "hdd"},
                                                      "service-time model of the storage behind it")},
                             {"write_cache", N::boolean(false,
                                                        "volatile write cache: writes complete into it, a "
                                                        "flush destages them")},
                             {"detach_at_us",
                              N::integer(0, 0, 1LL << 40, "us",
                                         "the toolstack detaches the disk at this simulated time "
                                         "(xl block-detach), requests in flight or not; 0: never")},
                         },
                         "a PV disk (vbd) served by dom0"),
                     0, 16, "PV disks; the toolstack writes their XenStore nodes")},
                {"blkfront",
                 N::object(
                     {
                         {"profile",
                          N::enumeration("linux", {"linux", "gplpv", "winpv"},
                                         "which guest PV block driver (docs/blkfront-profiles.md)")},
                         {"queues",
                          N::integer(0, 0, 32, "queues", "rings wanted per disk; 0: the profile's choice")},
                         {"ring_page_order",
                          N::integer(-1, -1, 4, "", "ring pages = 2^order; -1: the profile's choice")},
                         {"persistent_grants",
                          N::enumeration("profile", {"profile", "on", "off"}, "offer feature-persistent")},
                         {"max_indirect_segments",
                          N::integer(-1, -1, 4096, "segments",
                                     "indirect segments per request wanted; 0: no indirect descriptors; -1: "
                                     "the profile's choice")},
                     },
                     "the guest's PV block driver")},
                {"netfront",
                 N::object(
                     {
                         {"profile",
                          N::enumeration("linux", {"linux", "gplpv", "winpv"},
                                         "which guest PV network driver (docs/netfront-profiles.md)")},
                         {"queues", N::integer(0, 0, 32, "queues",
                                               "queue pairs wanted per vif; 0: the profile's choice")},
                         {"tso", N::boolean(true,
                                            "the guest stack's TSO (ethtool -K tso): off sends TCP as "
                                            "MSS-sized frames")},
                     },
                     "the guest's PV network driver")},
                {"nics",
                 N::array(
                     N::object(
                         {
                             {"mac", N::string(std::nullopt, "MAC address aa:bb:cc:dd:ee:ff"), true},
                             {"rate", N::string(std::nullopt,
                                                "transmit rate limit in xl's syntax RATE/s[@INTERVAL], e.g. "
                                                "10Mb/s@20ms (RATE in B or b with K, M or G; INTERVAL in s, "
                                                "ms or us, default 50ms); written as the backend's `rate` "
                                                "node, enforced by netback's credit scheduler; absent: "
                                                "unlimited")},
                         },
                         "a PV network interface (vif) served by dom0"),
                     0, 16, "PV network interfaces; the toolstack writes their XenStore nodes")},
            },
            "a domain; the first is dom0");
        auto pingpong = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"initiator", N::string(std::nullopt, "domain that sends first and measures"), true},
                {"responder", N::string(std::nullopt, "domain that answers"), true},
                {"round_trips", N::integer(1000, 1, 1'000'000'000, "round trips", "round trips to run")},
                {"think_cycles",
                 N::integer(0, 0, 1'000'000'000, "cycles", "initiator compute between round trips")},
                {"wait",
                 N::enumeration("halt", {"halt", "poll"},
                                "how the initiator waits for a reply: HLT until the upcall, or spin in "
                                "guest mode (the reply then interrupts a running vCPU)")},
                {"poll_cycles", N::integer(100, 1, 1'000'000'000, "cycles", "length of one poll iteration")},
            },
            "event-channel ping-pong between two domains");
        auto grant_copy = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest domain that grants pages to dom0"), true},
                {"pages", N::integer(4, 1, 32, "pages", "data pages per request")},
                {"rounds", N::integer(100, 1, 1'000'000'000, "requests", "requests to run")},
            },
            "a guest grants pages, dom0 copies them with GNTTABOP_copy");
        auto cpu_burn = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"domain", N::string(std::nullopt, "domain whose every vCPU burns CPU"), true},
                {"slice_cycles",
                 N::integer(1'000'000, 1000, 1'000'000'000'000LL, "cycles", "compute per operation")},
                {"slices", N::integer(0, 0, 1'000'000'000, "operations",
                                      "slices per vCPU; 0 burns until the run ends (a background load)")},
            },
            "a guest that only computes: the neighbour in contention studies");
        auto xenstore_ops = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest domain that talks to xenstored over its ring"),
                 true},
                {"mode", N::enumeration("write_read", {"read", "write", "write_read", "write_watch"},
                                        "what each operation does under the guest's data/ directory")},
                {"ops", N::integer(100, 1, 1'000'000'000, "operations", "operations to run")},
                {"value_bytes", N::integer(16, 0, 2000, "bytes", "size of each value written")},
                {"keys", N::integer(8, 1, 512, "nodes", "distinct nodes used round-robin")},
            },
            "XenStore reads and writes from a guest over its xenstore ring");
        auto handshake = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest whose disks go through the XenBus handshake"), true},
            },
            "the XenbusState handshake of every PV disk of a guest with dom0, over XenStore");
        auto fio = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest that runs the job on one of its PV disks"), true},
                {"disk", N::string(std::string(""), "vdev of the disk; empty: the guest's first disk")},
                {"rw", N::enumeration("randread", {"read", "write", "randread", "randwrite", "rw", "randrw"},
                                      "fio's rw: sequential or random, reads, writes or mixed")},
                {"bs", N::integer(4096, 512, 4 << 20, "bytes", "block size of every I/O (multiple of 512)")},
                {"iodepth", N::integer(1, 1, 4096, "I/Os", "I/Os in flight per job")},
                {"numjobs", N::integer(1, 1, 256, "jobs", "job clones, spread over the guest's vCPUs")},
                {"size", N::integer(0, 0, 1LL << 50, "bytes", "region per job; 0: to the end of the disk")},
                {"offset", N::integer(0, 0, 1LL << 50, "bytes", "start of job 0's region")},
                {"offset_increment",
                 N::integer(0, 0, 1LL << 50, "bytes", "job i starts at offset + i * this")},
                {"number_ios", N::integer(0, 0, 1LL << 40, "I/Os", "I/Os per job at most; 0: no limit")},
                {"runtime_ms", N::integer(0, 0, 1'000'000'000, "ms", "stop issuing after this; 0: no limit")},
                {"time_based", N::boolean(false, "run for runtime_ms, wrapping around the region")},
                {"rwmixread", N::integer(50, 0, 100, "%", "reads in a mixed job")},
                {"fsync",
                 N::integer(0, 0, 1'000'000, "writes",
                            "fio's fsync: a cache flush (PV: BLKIF_OP_FLUSH_DISKCACHE; IDE: FLUSH CACHE) "
                            "after every N writes of a job, none when the disk's queue has no volatile "
                            "write cache; 0: never")},
                {"sync", N::enumeration("none", {"none", "sync", "dsync"},
                                        "fio's sync: open the raw disk O_SYNC or O_DSYNC (every job is "
                                        "direct=1, ioengine libaio); each write is then REQ_FUA, which no "
                                        "disk here supports, so a write-cached disk gets a flush after the "
                                        "write (blk-flush.c, coalesced while other such writes are in "
                                        "flight) and the write completes with it")},
                {"norandommap", N::boolean(false, "random offsets may repeat")},
                {"verify", N::enumeration("none", {"none", "crc32c"},
                                          "write headers and checksums, read every block back and compare")},
            },
            "an fio-style block job on a guest's PV disk (blkfront -> ring -> blkback -> storage)");
        auto misbehaviour = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest whose blkfront misbehaves on one of its PV disks"),
                 true},
                {"disk", N::string(std::string(""), "vdev of the disk; empty: the guest's first disk")},
                {"cases",
                 N::array(N::enumeration("valid_read", BlkifMisbehaviour::case_names(), "a misbehaviour"), 0,
                          64, "cases to run in this order; empty: all, the producer overrun last")},
            },
            "a guest's blkfront writes malformed requests and a bogus producer index; each is answered as "
            "Linux blkback answers it (frontends/blkif_misbehaviour.h)");
        auto vga_console = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "HVM guest with vga \"stdvga\" that prints"), true},
                {"lines", N::integer(100, 1, 1'000'000'000, "lines", "lines to print (one operation each)")},
                {"line_length", N::integer(64, 1, 79, "characters", "characters per line before \"\\r\\n\"")},
                {"clear_screen", N::boolean(false,
                                            "clear the screen first (2000 stores in a row, more than the "
                                            "buffered page holds)")},
            },
            "a guest prints lines on its VGA text console as Linux vgacon does (buffered ioreqs)");
        auto netperf = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest that runs netperf over one of its nics"), true},
                {"nic", N::integer(0, 0, 15, "", "index of the guest's nic in its nics")},
                {"test",
                 N::enumeration("UDP_STREAM", {"UDP_STREAM", "TCP_STREAM", "UDP_RR", "TCP_RR", "ping"},
                                "netperf's test (-t), or ping")},
                {"peer", N::string(std::string("wire"),
                                   "the other end: \"wire\" (the remote host beyond dom0's physical NIC) or "
                                   "the name of another guest with a nic (through dom0's bridge)")},
                {"direction", N::enumeration("send", {"send", "receive"},
                                             "send: the guest runs the active end (sender, RR client, ping); "
                                             "receive: the peer does and the guest answers or sinks")},
                {"message_size",
                 N::integer(0, 0, 1 << 20, "bytes",
                            "payload per send (netperf -m), RR request (-r), ping data (-s); 0: the test's "
                            "default (UDP_STREAM 1472, TCP_STREAM 16384, RR 1, ping 56)")},
                {"response_size", N::integer(0, 0, 1 << 20, "bytes", "RR response size; 0: 1")},
                {"rate_pps", N::integer(0, 0, 1'000'000'000, "packets/s",
                                        "UDP_STREAM datagrams or ping requests per second per stream; 0: "
                                        "as fast as the device takes them (ping: the next on the reply)")},
                {"number", N::integer(0, 0, 1'000'000'000'000LL, "packets or transactions",
                                      "per stream: UDP_STREAM datagrams, TCP_STREAM sends of message_size, "
                                      "RR transactions, ping requests; 0: no limit (give duration_ms)")},
                {"duration_ms", N::integer(0, 0, 1'000'000'000, "ms", "stop after this; 0: no limit")},
                {"mss", N::integer(0, 0, 65535, "bytes", "TCP maximum segment size; 0: MTU - 52")},
                {"window_bytes",
                 N::integer(65536, 1, 1 << 30, "bytes", "TCP receive window the receiver advertises")},
                {"streams", N::integer(1, 1, 64, "flows",
                                       "concurrent flows, stream k on vCPU k % vcpus and that vCPU's queue")},
            },
            "a netperf-style network test from a guest over its PV nic (frontends/netperf_workload.h)");
        auto net_misbehaviour = N::object(
            {
                {"name", N::string(std::nullopt, "workload name, unique"), true},
                {"guest", N::string(std::nullopt, "guest whose netfront misbehaves on one of its nics"),
                 true},
                {"nic", N::integer(0, 0, 15, "", "index of the guest's nic in its nics")},
                {"cases",
                 N::array(N::enumeration("nineteen_frags_dropped", NetifMisbehaviour::case_names(),
                                         "a misbehaviour"),
                          0, 64,
                          "cases to run in this order, the non-fatal ones first and at most one fatal one, "
                          "last; empty: every non-fatal case, then producer_more_than_a_ring_ahead")},
            },
            "a guest's netfront writes malformed transmit requests and a bogus producer index; each is "
            "answered as Linux netback answers it (frontends/netif_misbehaviour.h)");
        auto workload = N::variant({{"evtchn_pingpong", pingpong},
                                    {"netperf", netperf},
                                    {"netif_misbehaviour", net_misbehaviour},
                                    {"fio", fio},
                                    {"blkif_misbehaviour", misbehaviour},
                                    {"xenbus_handshake", handshake},
                                    {"grant_copy", grant_copy},
                                    {"cpu_burn", cpu_burn},
                                    {"xenstore_ops", xenstore_ops},
                                    {"vga_console", vga_console}},
                                   "a workload, selected by type");
        auto stop = N::object(
            {
                {"sim_time_ms",
                 N::integer(1000, 1, 1'000'000'000, "ms", "stop after this much simulated time")},
                {"ops", N::integer(0, 0, 1'000'000'000'000LL, "operations",
                                   "stop after this many workload operations in all (0: no limit)")},
            },
            "stop condition (the run also ends when every workload is done)");
        return N::object(
            {
                {"name", N::string(std::nullopt, "scenario name"), true},
                {"description", N::string(std::string("-"), "what the scenario shows")},
                {"platform", platform},
                {"domains", N::array(domain, 1, 257, "domains; the first is dom0 (at most 256 guests)"),
                 true},
                {"workloads", N::array(workload, 0, 512, "workloads")},
                {"stop", stop},
            },
            "an xensim scenario");
    }();
    return schema;
}

std::optional<std::uint32_t> parse_ipv4_text(const std::string& text) {
    std::uint32_t ip = 0;
    std::size_t at = 0;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (at >= text.size() || text[at] != '.') return std::nullopt;
            ++at;
        }
        std::size_t digits = 0;
        unsigned v = 0;
        while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) && digits < 3) {
            v = v * 10 + static_cast<unsigned>(text[at] - '0');
            ++at;
            ++digits;
        }
        if (digits == 0 || v > 255 || (digits > 1 && text[at - digits] == '0')) return std::nullopt;
        ip = ip << 8 | v;
    }
    if (at != text.size()) return std::nullopt;
    return ip;
}

std::uint32_t guest_ipv4(unsigned domid, unsigned nic) {
    return (10u << 24) | ((nic & 0xffu) << 8) | (domid & 0xffu);
}

std::optional<unsigned> vbd_devid(const std::string& vdev) {
    // docs/misc/vbd-interface.txt: xvd<x> -> (202 << 8) | (disk << 4) for the first 16 disks;
    // hd<x> -> the IDE majors 3 (hda, hdb) and 22 (hdc, hdd), 64 minors per disk.
    if (vdev.size() == 4 && vdev.compare(0, 3, "xvd") == 0 && vdev[3] >= 'a' && vdev[3] <= 'z') {
        unsigned disk = static_cast<unsigned>(vdev[3] - 'a');
        return disk < 16 ? (202u << 8) | (disk << 4) : (1u << 28) | (disk << 8);
    }
    if (vdev.size() == 3 && vdev.compare(0, 2, "hd") == 0 && vdev[2] >= 'a' && vdev[2] <= 'd') {
        unsigned disk = static_cast<unsigned>(vdev[2] - 'a');
        return ((disk < 2 ? 3u : 22u) << 8) | ((disk % 2) * 64);
    }
    return std::nullopt;
}

json scenario_json_schema() {
    json s = scenario_schema()->json_schema();
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema";
    s["$id"] = "https://xensim.invalid/schema/scenario.schema.json";
    s["title"] = "xensim scenario";
    return s;
}

namespace {

// "a.b.1.c=value" applied to raw JSON (before validation, so typos surface as unknown keys). The
// path is walked in the schema alongside the document: where it ends on a string-typed key (a
// string or an enumeration) the value is taken as a bare word (model=null is the string "null")
// unless it is a JSON string ("\"null\""); elsewhere the value is JSON, or else the text as a
// string, which validation then reports against the key's type.
void apply_set(json& doc, const std::string& assignment, const std::string& file) {
    const std::string where = file + ": --set " + assignment + ": ";
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw ScenarioError(where + "expected PATH=VALUE, e.g. platform.pcpus=4");
    std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
    std::vector<std::string> parts;  // every component, empty ones included ("platform." has two)
    for (std::size_t from = 0;;) {
        auto dot = path.find('.', from);
        parts.push_back(path.substr(from, dot == std::string::npos ? std::string::npos : dot - from));
        if (dot == std::string::npos) break;
        from = dot + 1;
    }
    for (const auto& p : parts)
        if (p.empty())
            throw ScenarioError(where +
                                "expected PATH=VALUE with no empty component in PATH, e.g. platform.pcpus=4");
    json* node = &doc;
    const ConfigNode* schema = scenario_schema().get();
    std::string pointer;
    for (const std::string& p : parts) {
        const std::string at = pointer.empty() ? "/" : pointer;
        if (node->is_array()) {
            const std::string range = node->empty()
                                          ? "no index (the array is empty)"
                                          : "an array index from 0 to " + std::to_string(node->size() - 1);
            // Digits only: std::stoul would take "1x" as 1 and "-1" as a huge index.
            bool digits = p.size() <= 19;
            for (char c : p) digits = digits && c >= '0' && c <= '9';
            const std::size_t idx = digits ? std::stoull(p) : node->size();
            if (idx >= node->size())
                throw ScenarioError(where + at + ": expected " + range + ", found \"" + p + "\"");
            if (schema) schema = schema->child(p, *node);
            node = &(*node)[idx];
        } else {
            if (node->is_null()) *node = json::object();
            if (!node->is_object())
                throw ScenarioError(where + at + ": expected an object to hold \"" + p + "\", found " +
                                    describe_json(*node));
            if (schema) schema = schema->child(p, *node);
            node = &(*node)[p];
        }
        pointer += '/';
        for (char c : p) pointer += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    }
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded() || (schema && schema->takes_text() && !value.is_string())) value = text;
    *node = value;
}

bool valid_mac(const std::string& m) {
    if (m.size() != 17) return false;
    for (std::size_t i = 0; i < m.size(); ++i) {
        if (i % 3 == 2) {
            if (m[i] != ':') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(m[i]))) {
            return false;
        }
    }
    return true;
}

// The disk object as the scenario wrote it (before defaults), or nullptr.
const json* raw_disk_at(const json& raw, std::size_t domain, std::size_t disk) {
    if (!raw.is_object() || !raw.contains("domains") || !raw.at("domains").is_array()) return nullptr;
    const json& domains = raw.at("domains");
    if (domain >= domains.size() || !domains[domain].is_object() || !domains[domain].contains("disks"))
        return nullptr;
    const json& disks = domains[domain].at("disks");
    if (!disks.is_array() || disk >= disks.size() || !disks[disk].is_object()) return nullptr;
    return &disks[disk];
}

// Each job's region on the disk, as FioJob's constructor computes it when the run builds the job
// (frontends/fio_job.cpp, after fio's own rules: job i starts at offset + i * offset_increment;
// size 0 runs to the end of the disk; a region must hold one bs). The run would fail the workload
// there; here the key at fault is named. The first job that does not fit is reported.
void check_fio_geometry(const json& w, const json& disks, const std::string& at,
                        std::vector<ConfigError>& errors) {
    const std::string vdev = w.at("disk");
    const json* disk = nullptr;
    for (const json& d : disks)
        if (!disk && (vdev.empty() || d.value("vdev", "") == vdev)) disk = &d;
    if (!disk) return;  // already reported
    using std::to_string;
    const std::uint64_t device = disk->at("sectors").get<std::uint64_t>() * 512, bs = w.at("bs"),
                        numjobs = w.at("numjobs"), offset = w.at("offset"), inc = w.at("offset_increment"),
                        size = w.at("size");
    for (std::uint64_t j = 0; j < numjobs; ++j) {
        // No overflow: the schema bounds offset and offset_increment by 2^50 and numjobs by 256.
        const std::uint64_t start = offset + j * inc;
        if (start >= device) {
            if (j == 0)
                errors.push_back({at + "/offset",
                                  "an offset inside the disk (below " + to_string(device) + " bytes)",
                                  describe_json(w.at("offset"))});
            else
                errors.push_back({at + "/offset_increment",
                                  "job " + to_string(j) + "'s start (offset " + to_string(offset) + " + " +
                                      to_string(j) + " x offset_increment) inside the disk (below " +
                                      to_string(device) + " bytes)",
                                  describe_json(w.at("offset_increment"))});
            return;
        }
        if (size > device - start) {
            errors.push_back({at + "/size",
                              "a region that ends inside the disk (job " + to_string(j) + ": at most " +
                                  to_string(device - start) + " bytes from " + to_string(start) + ")",
                              describe_json(w.at("size"))});
            return;
        }
        const std::uint64_t region = size == 0 ? device - start : size;
        if (bs > region) {
            errors.push_back(
                {at + "/bs",
                 "at most the region of job " + to_string(j) + " (" + to_string(region) + " bytes)",
                 describe_json(w.at("bs"))});
            return;
        }
    }
}

// Checks across keys. `raw` is the scenario as written, for keys whose presence matters.
void check_netperf(const json& w, const json& domains, long g, const std::string& at,
                   std::vector<ConfigError>& errors);
void check_net_misbehaviour(const json& w, const json& workloads, const json& domains, long g,
                            const std::string& at, std::vector<ConfigError>& errors);

void cross_check(const json& raw, const json& e, std::vector<ConfigError>& errors) {
    const json& domains = e.at("domains");
    std::set<std::string> names;
    unsigned pcpus = e.at("platform").at("pcpus").get<unsigned>();
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const json& d = domains[i];
        std::string at = "/domains/" + std::to_string(i);
        if (!d.contains("name")) continue;  // already reported
        std::string type = d.at("type");
        if (i == 0 && type == "hvm")
            errors.push_back(
                {at + "/type", "\"pv\" or \"pvh\" (the first domain is dom0)", "string \"hvm\""});
        if (i > 0 && type != "hvm")
            errors.push_back(
                {at + "/type", "\"hvm\" (only dom0 may be pv or pvh)", "string \"" + type + "\""});
        if (type != "hvm" && d.at("vga") != "none")
            errors.push_back(
                {at + "/vga", "\"none\" (an emulated VGA needs an HVM guest)", describe_json(d.at("vga"))});
        const unsigned bm = d.at("ide_bmdma_base");
        // 16-byte aligned, and clear of the platform device's BAR0 (0xC100-0xC1FF) and of the PCI
        // configuration ports.
        if ((bm & 0xf) || (bm <= 0xc1ff && bm + 15 >= 0xc100) || (bm <= 0xcff && bm + 15 >= 0xcf8))
            errors.push_back({at + "/ide_bmdma_base",
                              "a 16-byte aligned I/O base outside 0xC100-0xC1FF and 0xCF8-0xCFF",
                              describe_json(d.at("ide_bmdma_base"))});
        if (!names.insert(d.at("name").get<std::string>()).second)
            errors.push_back({at + "/name", "a name no other domain has", describe_json(d.at("name"))});
        const json& disks = d.at("disks");
        std::set<std::string> vdevs;
        for (std::size_t k = 0; k < disks.size(); ++k) {
            const json& disk = disks[k];
            if (!disk.contains("vdev")) continue;
            std::string at_vdev = at + "/disks/" + std::to_string(k) + "/vdev";
            if (!vbd_devid(disk.at("vdev")))
                errors.push_back({at_vdev, "xvd[a-z] or hd[a-d]", describe_json(disk.at("vdev"))});
            else if (!vdevs.insert(disk.at("vdev").get<std::string>()).second)
                errors.push_back(
                    {at_vdev, "a device name not used twice in the domain", describe_json(disk.at("vdev"))});
            if (disk.at("attach") == "ide" && disk.at("vdev").get<std::string>().rfind("hd", 0) != 0)
                errors.push_back(
                    {at_vdev, "hda, hdb, hdc or hdd for an ide disk", describe_json(disk.at("vdev"))});
            const json* raw_disk = raw_disk_at(raw, i, k);
            if (disk.at("attach") != "ide" && raw_disk && raw_disk->contains("ide_transfer"))
                errors.push_back(
                    {at + "/disks/" + std::to_string(k) + "/ide_transfer",
                     "no ide_transfer on a disk with attach \"pv\" (it applies to attach \"ide\")",
                     describe_json(raw_disk->at("ide_transfer"))});
            if (disk.at("attach") != "ide" && raw_disk && raw_disk->contains("ide_set_multiple"))
                errors.push_back({at + "/disks/" + std::to_string(k) + "/ide_set_multiple",
                                  "no ide_set_multiple on a disk with attach \"pv\" (it applies to attach "
                                  "\"ide\")",
                                  describe_json(raw_disk->at("ide_set_multiple"))});
            const int mult = disk.at("ide_set_multiple");
            if (mult > 0 && (mult & (mult - 1)))
                errors.push_back({at + "/disks/" + std::to_string(k) + "/ide_set_multiple",
                                  "-1, 0 or a power of two up to 16 (what SET MULTIPLE MODE accepts)",
                                  describe_json(disk.at("ide_set_multiple"))});
            const std::string image = disk.at("image");
            if (!image.empty() && image[0] != '/')
                errors.push_back({at + "/disks/" + std::to_string(k) + "/image",
                                  "an absolute path (or empty for an in-memory image)",
                                  describe_json(disk.at("image"))});
        }
        if (i == 0 && (!disks.empty() || !d.at("nics").empty()))
            errors.push_back({at + (disks.empty() ? "/nics" : "/disks"),
                              "no PV devices on dom0 (it runs the backends)", "a device"});
        const json& nics = d.at("nics");
        for (std::size_t k = 0; k < nics.size(); ++k)
            if (nics[k].contains("mac") && !valid_mac(nics[k].at("mac")))
                errors.push_back({at + "/nics/" + std::to_string(k) + "/mac",
                                  "a MAC address of six hex pairs, e.g. 00:16:3e:00:00:01",
                                  describe_json(nics[k].at("mac"))});
        for (std::size_t k = 0; k < nics.size(); ++k) {
            if (!nics[k].contains("rate") || !nics[k].at("rate").is_string()) continue;
            const VifRateParse r = parse_xl_vif_rate(nics[k].at("rate"));
            if (!r.rate)
                errors.push_back({at + "/nics/" + std::to_string(k) + "/rate",
                                  "a rate as xl takes it, RATE/s[@INTERVAL] such as 10Mb/s@20ms (RATE: "
                                  "digits, then K, M or G or nothing, then B for bytes or b for bits; "
                                  "INTERVAL: digits then s, ms or us) (xl: " +
                                      r.error + ")",
                                  describe_json(nics[k].at("rate"))});
        }
        const json& pin = d.at("pinning");
        for (std::size_t k = 0; k < pin.size(); ++k)
            if (pin[k].get<unsigned>() >= pcpus)
                errors.push_back({at + "/pinning/" + std::to_string(k),
                                  "a pCPU id below platform.pcpus (" + std::to_string(pcpus) + ")",
                                  describe_json(pin[k])});
    }
    auto dom_index = [&](const std::string& n) -> long {
        for (std::size_t i = 0; i < domains.size(); ++i)
            if (domains[i].value("name", "") == n) return static_cast<long>(i);
        return -1;
    };
    std::set<std::string> wnames;
    std::set<long> fio_guests, handshake_guests;
    const json& workloads = e.at("workloads");
    for (std::size_t i = 0; i < workloads.size(); ++i) {
        const json& w = workloads[i];
        std::string at = "/workloads/" + std::to_string(i);
        if (!w.contains("type") || !w.contains("name")) continue;
        if (!wnames.insert(w.at("name").get<std::string>()).second)
            errors.push_back({at + "/name", "a name no other workload has", describe_json(w.at("name"))});
        auto need_domain = [&](const char* key) -> long {
            if (!w.contains(key)) return -1;
            long idx = dom_index(w.at(key));
            if (idx < 0)
                errors.push_back(
                    {at + "/" + key, "the name of a domain in /domains", describe_json(w.at(key))});
            return idx;
        };
        if (w.at("type") == "evtchn_pingpong") {
            long a = need_domain("initiator"), b = need_domain("responder");
            if (a >= 0 && a == b)
                errors.push_back({at + "/responder", "a domain other than the initiator",
                                  describe_json(w.at("responder"))});
        } else if (w.at("type") == "cpu_burn") {
            need_domain("domain");
        } else if (w.at("type") == "xenbus_handshake") {
            long g = need_domain("guest");
            if (g > 0 && (fio_guests.count(g) || !handshake_guests.insert(g).second))
                errors.push_back({at + "/guest", "a guest no other fio or xenbus_handshake workload uses",
                                  describe_json(w.at("guest"))});
            if (g == 0)
                errors.push_back(
                    {at + "/guest", "a guest domain (dom0 runs the backends)", describe_json(w.at("guest"))});
            else if (g > 0 && domains[g].at("disks").empty())
                errors.push_back({at + "/guest", "a guest with at least one entry in disks",
                                  describe_json(w.at("guest"))});
        } else if (w.at("type") == "fio" || w.at("type") == "blkif_misbehaviour") {
            long g = need_domain("guest");
            if (g == 0) {
                errors.push_back(
                    {at + "/guest", "a guest domain (dom0 runs the backends)", describe_json(w.at("guest"))});
            } else if (g > 0) {
                const json& disks = domains[g].at("disks");
                std::string vdev = w.at("disk");
                bool found = false;
                for (const json& d : disks) found = found || (vdev.empty() || d.value("vdev", "") == vdev);
                if (!found)
                    errors.push_back({at + (vdev.empty() ? "/guest" : "/disk"),
                                      vdev.empty() ? "a guest with at least one entry in disks"
                                                   : "the vdev of one of the guest's disks",
                                      describe_json(vdev.empty() ? w.at("guest") : w.at("disk"))});
                if (!fio_guests.insert(g).second || handshake_guests.count(g))
                    errors.push_back({at + "/guest",
                                      "a guest no other block workload uses (one fio, blkif_misbehaviour or "
                                      "xenbus_handshake workload per guest)",
                                      describe_json(w.at("guest"))});
            }
            if (w.at("type") != "fio") continue;
            std::uint64_t bs = w.at("bs");
            if (bs % 512) errors.push_back({at + "/bs", "a multiple of 512", describe_json(w.at("bs"))});
            if (w.at("offset").get<std::uint64_t>() % 512)
                errors.push_back({at + "/offset", "a multiple of 512", describe_json(w.at("offset"))});
            if (w.at("time_based").get<bool>() && w.at("runtime_ms").get<std::uint64_t>() == 0)
                errors.push_back({at + "/runtime_ms", "a runtime above 0 (time_based needs one)", "0"});
            if (g > 0) check_fio_geometry(w, domains[g].at("disks"), at, errors);
        } else if (w.at("type") == "vga_console") {
            long g = need_domain("guest");
            if (g == 0 || (g > 0 && domains[g].at("vga") != "stdvga"))
                errors.push_back(
                    {at + "/guest", "a guest domain with vga \"stdvga\"", describe_json(w.at("guest"))});
        } else if (w.at("type") == "xenstore_ops") {
            need_domain("guest");  // dom0 too: its kernel talks to xenstored over a local ring
        } else if (w.at("type") == "netperf") {
            check_netperf(w, domains, need_domain("guest"), at, errors);
        } else if (w.at("type") == "netif_misbehaviour") {
            check_net_misbehaviour(w, workloads, domains, need_domain("guest"), at, errors);
        } else if (w.at("type") == "grant_copy") {
            long g = need_domain("guest");
            if (g == 0)
                errors.push_back({at + "/guest", "a guest domain (not dom0, which runs the backend)",
                                  describe_json(w.at("guest"))});
        }
    }
}

// A network workload's `guest` and `nic`: a guest (not dom0) and one of its nics.
void check_guest_nic(const json& w, const json& domains, long g, const std::string& at,
                     std::vector<ConfigError>& errors) {
    if (g == 0)
        errors.push_back(
            {at + "/guest", "a guest domain (dom0 runs the backends)", describe_json(w.at("guest"))});
    const std::size_t nic = w.at("nic");
    if (g > 0 && nic >= domains[g].at("nics").size())
        errors.push_back({at + "/nic",
                          "the index of one of the guest's nics (it has " +
                              std::to_string(domains[g].at("nics").size()) + ")",
                          describe_json(w.at("nic"))});
}

// A netif_misbehaviour workload: a guest's nic no netperf workload uses (as its guest or its peer),
// and its cases with at most one fatal one, last (a fatal case disables the vif).
void check_net_misbehaviour(const json& w, const json& workloads, const json& domains, long g,
                            const std::string& at, std::vector<ConfigError>& errors) {
    check_guest_nic(w, domains, g, at, errors);
    const std::size_t nic = w.at("nic");
    const std::string guest = w.at("guest");
    for (const json& o : workloads) {
        if (&o == &w || !o.contains("type")) continue;
        const bool netperf = o.at("type") == "netperf";
        const bool same = o.at("type") == "netif_misbehaviour" || netperf;
        if (!same) continue;
        const bool as_guest = o.value("guest", "") == guest && o.value("nic", 0u) == nic;
        const bool as_peer = netperf && o.value("peer", "") == guest && nic == 0;
        if (as_guest || as_peer) {
            errors.push_back(
                {at + "/nic", "a guest nic no other network workload uses", describe_json(w.at("nic"))});
            break;
        }
    }
    const json& cases = w.at("cases");
    for (std::size_t k = 0; k < cases.size(); ++k) {
        if (!cases[k].is_string() || !NetifMisbehaviour::is_fatal(cases[k].get<std::string>())) continue;
        if (k + 1 != cases.size())
            errors.push_back({at + "/cases/" + std::to_string(k),
                              "a non-fatal case (a fatal case disables the vif: only the last may be one)",
                              describe_json(cases[k])});
    }
}

// A netperf workload: its guest and peer have the nics it names, and the engines accept its sizes
// (built here with a scratch stats group, MTU 1500, so their own checks speak).
void check_netperf(const json& w, const json& domains, long g, const std::string& at,
                   std::vector<ConfigError>& errors) {
    check_guest_nic(w, domains, g, at, errors);
    const std::string peer = w.at("peer");
    if (peer != "wire") {
        long p = -1;
        for (std::size_t i = 0; i < domains.size(); ++i)
            if (domains[i].value("name", "") == peer) p = static_cast<long>(i);
        if (p <= 0 || p == g || domains[p].at("nics").empty())
            errors.push_back({at + "/peer", "\"wire\" or the name of another guest with at least one nic",
                              describe_json(w.at("peer"))});
    }
    if (w.at("number").get<std::uint64_t>() == 0 && w.at("duration_ms").get<std::uint64_t>() == 0)
        errors.push_back(
            {at + "/number", "a number above 0, or a duration_ms above 0", "0 (and duration_ms 0)"});
    const NetperfSpec spec = netperf_spec(w, 1);
    if (spec.test == NetperfTest::tcp_stream && spec.rate_pps)
        errors.push_back({at + "/rate_pps", "0 for TCP_STREAM (its pace is the window's)",
                          describe_json(w.at("rate_pps"))});
    StatsGroup guest_scratch("netperf_check_guest"), peer_scratch("netperf_check_peer");
    try {
        make_guest_endpoint(spec, 0, FlowOffloads{}, guest_scratch);
        make_peer_endpoint(spec, 0, FlowOffloads{}, peer_scratch);
    } catch (const std::invalid_argument& e) {
        const bool tcp = spec.test == NetperfTest::tcp_stream || spec.test == NetperfTest::tcp_rr;
        const std::string what = e.what();
        const char* key = what.find("mss") != std::string::npos                ? "/mss"
                          : what.find("window") != std::string::npos           ? "/window_bytes"
                          : what.find("response") != std::string::npos && !tcp ? "/response_size"
                                                                               : "/message_size";
        errors.push_back({at + key, "sizes the test can send (" + what + ")", describe_json(w.at(key + 1))});
    }
}

// What FileImage's constructor (models/dom0/storage.cpp) needs of each disk's image when the
// platform is built, checked on the host now so that validate catches it and nothing is
// simulated: an existing image is a regular file of exactly sectors x 512 bytes that opens
// read-write; a new one can be created in an existing directory and sized (a file system's largest
// file can be smaller: 16 TiB on ext4 with 4 KiB blocks, EFBIG). Nothing is left behind: the size
// is tried on an unnamed O_TMPFILE file, gone on close.
// platform.network: bridge names as Linux's dev_valid_name takes them, unique; the remote host's
// MAC a unicast address and its IP a dotted quad no guest vif has (docs/network.md: addressing).
void check_network(const json& e, std::vector<ConfigError>& errors) {
    const json& n = e.at("platform").at("network");
    const std::string at = "/platform/network";
    const json& bridges = n.at("bridges");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < bridges.size(); ++i) {
        const std::string name = bridges[i];
        bool ok = !name.empty() && name.size() < 16 && name != "." && name != "..";
        for (char c : name)
            if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) ok = false;
        if (!ok)
            errors.push_back({at + "/bridges/" + std::to_string(i),
                              "an interface name of 1-15 characters without '/', ':' or spaces",
                              describe_json(bridges[i])});
        else if (!seen.insert(name).second || name == "eth0")
            errors.push_back({at + "/bridges/" + std::to_string(i),
                              "a name no other bridge (nor the NIC, eth0) has", describe_json(bridges[i])});
    }
    const json& remote = n.at("remote");
    const std::string mac = remote.at("mac");
    if (!valid_mac(mac) || (std::stoul(mac.substr(0, 2), nullptr, 16) & 1) || mac == "00:00:00:00:00:00")
        errors.push_back({at + "/remote/mac",
                          "a unicast MAC address of six hex pairs, e.g. 00:16:3e:ff:ff:fe",
                          describe_json(remote.at("mac"))});
    const auto ip = parse_ipv4_text(remote.at("ip"));
    if (!ip) {
        errors.push_back(
            {at + "/remote/ip", "an IPv4 address a.b.c.d, e.g. 10.0.0.254", describe_json(remote.at("ip"))});
        return;
    }
    const json& domains = e.at("domains");
    for (std::size_t d = 0; d < domains.size(); ++d)
        for (std::size_t k = 0; k < domains[d].at("nics").size(); ++k)
            if (guest_ipv4(static_cast<unsigned>(d), static_cast<unsigned>(k)) == *ip)
                errors.push_back({at + "/remote/ip",
                                  "an address no guest vif has (nic " + std::to_string(k) + " of domain " +
                                      std::to_string(d) + " is 10.0." + std::to_string(k) + "." +
                                      std::to_string(d) + ")",
                                  describe_json(remote.at("ip"))});
}

void check_disk_images(const json& e, std::vector<ConfigError>& errors) {
    const json& domains = e.at("domains");
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const json& disks = domains[i].at("disks");
        for (std::size_t k = 0; k < disks.size(); ++k) {
            const std::string image = disks[k].at("image");
            if (image.empty() || image[0] != '/') continue;  // in memory, or already reported
            const std::string at = "/domains/" + std::to_string(i) + "/disks/" + std::to_string(k) + "/image";
            const std::uint64_t sectors = disks[k].at("sectors"), bytes = sectors * 512;
            const std::string found = describe_json(disks[k].at("image"));
            auto bad = [&](const std::string& expected, const std::string& what) {
                errors.push_back({at, expected, what});
            };
            struct stat st;
            if (::stat(image.c_str(), &st) == 0) {
                if (!S_ISREG(st.st_mode)) {
                    bad("a regular file (or a path where one can be created)",
                        describe_file_type(st.st_mode));
                } else if (static_cast<std::uint64_t>(st.st_size) != bytes) {
                    bad("a file of " + std::to_string(bytes) + " bytes (sectors " + std::to_string(sectors) +
                            " x 512)",
                        "a file of " + std::to_string(st.st_size) + " bytes");
                } else {
                    const int fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);  // as FileImage opens it
                    if (fd < 0)
                        bad("a file xensim can open for reading and writing",
                            found + " (" + std::strerror(errno) + ")");
                    else
                        ::close(fd);
                }
                continue;
            }
            if (errno != ENOENT) {
                bad("a path xensim can reach", found + " (" + std::strerror(errno) + ")");
                continue;
            }
            const auto slash = image.rfind('/');
            const std::string dir = slash == 0 ? "/" : image.substr(0, slash);
            std::string why;
            if (::stat(dir.c_str(), &st) != 0)
                why = std::strerror(errno);
            else if (!S_ISDIR(st.st_mode))
                why = describe_file_type(st.st_mode);
            if (!why.empty()) {
                bad("a path in an existing directory", found + " (" + dir + ": " + why + ")");
                continue;
            }
            int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
            bool named = false;
            if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
                // No O_TMPFILE on this file system: create the image's own name and remove it.
                fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                named = fd >= 0;
            }
            if (fd < 0) {
                bad("a file xensim can create", found + " (" + dir + ": " + std::strerror(errno) + ")");
                continue;
            }
            if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
                bad("a size the file system can hold (" + std::to_string(bytes) + " bytes)",
                    found + " (" + std::strerror(errno) + ")");
            ::close(fd);
            if (named) ::unlink(image.c_str());
        }
    }
}

}  // namespace

Scenario parse_scenario(const std::string& text, const std::string& file,
                        const ScenarioOverrides& overrides) {
    json doc;
    try {
        doc = parse_json_text(text, file);
    } catch (const InputError& e) {
        throw ScenarioError(e.what());
    }
    for (const auto& s : overrides.sets) apply_set(doc, s, file);
    if (overrides.has_seed) {
        if (!doc.is_object()) throw ScenarioError(file + ": /: expected an object");
        doc["platform"]["seed"] = overrides.seed;
    }
    std::vector<ConfigError> errors;
    json effective = scenario_schema()->resolve(doc, "", errors);
    if (errors.empty()) {
        cross_check(doc, effective, errors);
        check_disk_images(effective, errors);
        check_network(effective, errors);
    }
    if (!errors.empty()) throw ScenarioError(format_config_errors(file, errors));
    return Scenario{file, effective};
}

NetperfSpec netperf_spec(const json& w, std::uint64_t seed) {
    NetperfSpec s;
    s.test = parse_netperf_test(w.at("test").get<std::string>());
    s.direction = parse_netperf_direction(w.at("direction").get<std::string>());
    s.message_size = w.at("message_size");
    s.response_size = w.at("response_size");
    s.rate_pps = w.at("rate_pps");
    s.number = w.at("number");
    s.duration_ns = w.at("duration_ms").get<std::uint64_t>() * 1'000'000;
    s.mss = w.at("mss");
    s.window_bytes = w.at("window_bytes");
    s.streams = w.at("streams");
    s.addr.src_port = 49152;  // Linux's first ephemeral port (ip_local_port_range's IANA-style start)
    s.addr.dst_port = 12866;  // netperf's data port next to netserver's control port 12865
    s.seed = seed;
    return s;
}

Scenario load_scenario(const std::string& file, const ScenarioOverrides& overrides) {
    std::string text;
    try {
        text = read_input_file(file, "scenario file");
    } catch (const InputError& e) {
        throw ScenarioError(e.what());
    }
    return parse_scenario(text, file, overrides);
}

}  // namespace xensim
