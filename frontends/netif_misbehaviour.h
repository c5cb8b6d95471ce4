// A misbehaving netfront: transmit requests a correct driver never writes, and what netback answers.
//
// The problem. Netback must survive any guest: every field of a TX request on the shared ring is
// guest-controlled (sizes, offsets, flags, extra-info slots, grant references), and so is the
// ring's producer index. This workload connects the guest's vif normally (Netfront's handshake),
// then writes one malformed packet at a time straight into the shared TX ring
// (NetifRingFrontend::transmit_raw / publish_tx_producer) and checks what comes back against what
// Linux 6.1 drivers/net/xen-netback/netback.c does with it:
//  * Non-fatal (xenvif_tx_err, xenvif_tx_check_gop): the packet is dropped and each of its slots
//    answered - NETIF_RSP_ERROR where the fault is, NETIF_RSP_OKAY for shared slots netback had
//    mapped and gives back (xenvif_tx_check_gop's invalidation) - and the vif keeps working: a
//    well-formed frame sent next is answered NETIF_RSP_OKAY. Cases: 19 frags (>= 18, < 20:
//    xenvif_count_requests -E2BIG), a slot larger than the size remaining (-EIO), a first slot
//    below ETH_HLEN (alone and with frags: "Bad packet size"), a grant copy that fails (a
//    reference the guest never granted; alone and with the rest of the slot mapped), a frag's map
//    that fails (alone and after a good frag).
//  * Fatal (xenvif_fatal_tx_err): the vif is disabled; no slot of the packet is answered and no
//    request is taken again, so the frame sent next is never answered either. Cases: a producer
//    more than a ring ahead ("Impossible number of requests"), NETTXF_extra_info on the last
//    slot ("Missing extra info"), an extra of type NONE or MAX ("Invalid extra type"),
//    NETTXF_more_data on the last slot (xenvif_count_requests "Asked for %d slots but exceeds"),
//    21 frags ("Malicious frontend"), a frag crossing its page ("Cross page boundary"), a first
//    slot crossing its page (xenvif_tx_build_gops), a GSO extra with a bad type or size 0
//    (xenvif_set_skb_gso).
// The engine-level pins of the same answers are tests/unit/netif_ring_backend_test.cpp's
// MisbehavingFrontendTable. Since a fatal case ends the vif, the non-fatal cases run first and at
// most one fatal case runs, last (the scenario validation enforces it). Each case is one operation;
// a case answered otherwise than Linux answers it is a failure.
//
// Where it deliberately differs from a real hostile driver: it waits for each answer (a bounded
// wait on the one-shot timer: kAnswerWaitNs) before the next case, so each answer is attributed
// to its case; the well-formed frame after each case goes to the vif's own MAC, which dom0's bridge
// learned on the vif's port and so drops (br_forward's should_deliver): nothing reaches the network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "frontends/netfront.h"
#include "frontends/workload.h"

namespace xensim {

struct NetifMisbehaviourOutcome {
    std::string name;
    std::string expected, got;  // "2 NETIF_RSP_ERROR, then a good frame NETIF_RSP_OKAY", or "disabled"
    bool ok = false;
};

class NetifMisbehaviour {
  public:
    static constexpr std::uint64_t kAnswerWaitNs = 2'000'000;  // 2 ms: netback answers in microseconds

    // Every case name: the non-fatal ones first, then the fatal ones.
    static const std::vector<std::string>& case_names();
    static bool is_fatal(const std::string& name);
    // The cases run when the scenario names none: every non-fatal case, then the producer overrun.
    static std::vector<std::string> default_cases();

    // `cases` empty: default_cases().
    NetifMisbehaviour(std::vector<std::string> cases, Netfront& device, XenGuest& guest,
                      WorkloadStats& stats);

    // On the guest's vCPU 0 in thread context, after boot.
    void run(XenbusClient& xb, GuestServices& s);
    const std::vector<NetifMisbehaviourOutcome>& outcomes() const { return outcomes_; }

  private:
    // Waits until `answers` more TX responses (OKAY or ERROR) arrived than `before`, or the wait ran
    // out; returns the responses seen since `before` as {errors, okays}.
    struct Seen {
        std::uint64_t errors = 0, okays = 0;
    };
    Seen seen() const;
    Seen await(GuestServices& s, Seen before, std::uint64_t answers);
    std::string run_case(GuestServices& s, const std::string& name, std::string& expected);

    std::vector<std::string> cases_;
    Netfront& device_;
    XenGuest& guest_;
    WorkloadStats& stats_;
    std::vector<NetifMisbehaviourOutcome> outcomes_;
    evtchn_port_t timer_port_ = 0;
};

}  // namespace xensim
