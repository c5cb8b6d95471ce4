// A misbehaving blkfront: requests a correct driver never writes, and what the backend answers.
//
// The problem. A backend must survive any guest: every field of a request on the shared ring is
// guest-controlled, and so are the grant references it names and the ring's producer index. This
// workload connects a disk normally (Blkfront's handshake), then puts one malformed request at a
// time on the ring with the real ring macros and checks the backend's answer against what Linux
// blkback gives (drivers/block/xen-blkback/blkback.c: dispatch_rw_block_io, xen_vbd_translate,
// xen_blkbk_map, xen_blkbk_parse_indirect, dispatch_other_io, __do_block_io_op) and the status
// codes of xen/include/public/io/blkif.h. Valid requests are interleaved to show the device still
// works, and the last case overruns the producer index, after which the backend must disconnect.
// Each case is one operation; a case answered otherwise than expected is a failure.
//
// Expected answers follow the backend's advertised features: an INDIRECT request to a backend
// that offers no feature-max-indirect-segments is an unknown operation (BLKIF_RSP_EOPNOTSUPP).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "frontends/blkfront.h"
#include "frontends/workload.h"

namespace xensim {

struct MisbehaviourOutcome {
    std::string name;
    std::string expected, got;  // "BLKIF_RSP_ERROR", ..., or "disconnect"
    bool ok = false;
};

class BlkifMisbehaviour {
  public:
    // Every case name, in the order they run (the producer overrun last).
    static const std::vector<std::string>& case_names();

    // `cases` empty: all of them.
    BlkifMisbehaviour(std::vector<std::string> cases, Blkfront& device, XenGuest& guest,
                      WorkloadStats& stats);

    // On the guest's vCPU 0 in thread context, after boot.
    void run(XenbusClient& xb, GuestServices& s);
    const std::vector<MisbehaviourOutcome>& outcomes() const { return outcomes_; }

    struct Context;  // what the cases refer to (sizes, grants); defined in the .cpp

  private:
    bool await(XenbusClient& xb, GuestServices& s, std::uint64_t id, std::int16_t& status);

    std::vector<std::string> cases_;
    Blkfront& device_;
    XenGuest& guest_;
    WorkloadStats& stats_;
    std::vector<MisbehaviourOutcome> outcomes_;
    std::uint64_t done_id_ = ~0ull;
    std::int16_t done_status_ = 0;
};

}  // namespace xensim
