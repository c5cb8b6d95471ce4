// The guest's XenStore client: requests over the xenstore ring page, as Linux's xenbus_comms.c.
//
// The toolstack gives an HVM guest the ring's frame and event channel in HVM_PARAM_STORE_PFN and
// HVM_PARAM_STORE_EVTCHN (read with HVMOP_get_param). The ring page is a
// struct xenstore_domain_interface (xen/io/xs_wire.h): 1 KiB request and response rings with
// free-running indexes. Writing a message copies it behind req_prod (in pieces when it wraps or
// the ring is full), publishes the index after a write barrier and notifies the store's event
// channel once the message is in; reading takes every byte between rsp_cons and rsp_prod, frees
// the space and notifies, so xenstored can continue its output. A full ring or an empty one waits
// for the next event (HLT). Replies are matched by req_id; XS_WATCH_EVENT messages that
// arrive meanwhile are queued for take_watch_events(), or, for a watch registered with a callback,
// run as deferred work. The store port's handler drains the ring whenever xenstored notifies.
//
// One request is in flight at a time (as Linux serializes xenbus requests per transaction
// mutex); the client is used from one vCPU, and never from an upcall handler: a request waits
// for an event, which cannot be delivered while the handler runs. Handlers defer such work
// (XenGuest::defer), as Linux hands it to the xenwatch / xenbus kernel threads.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "frontends/guest_services.h"
#include "frontends/xen_guest.h"

struct xenstore_domain_interface;  // xen/io/xs_wire.h

namespace xensim {

struct XenbusReply {
    std::uint32_t type = 0;  // XS_* of the reply; XS_ERROR on failure
    std::string payload;     // raw payload bytes
    std::string error;       // the errno name ("ENOENT") when type is XS_ERROR
    bool ok() const { return error.empty(); }
};

struct XenbusWatchEvent {
    std::string path, token;
};

class XenbusClient {
  public:
    XenbusClient(XenGuest& guest, GuestServices& s) : guest_(guest), s_(s) {}

    // Reads the store's frame and port from the HVM params and hooks the port. 0 or -errno.
    long connect();
    // The same with the frame and port given (a PV kernel's start_info store_mfn / store_evtchn).
    long connect_at(std::uint64_t pfn, evtchn_port_t port);
    bool connected() const { return ring_ != nullptr; }

    // One request: type XS_*, transaction id, payload (NUL-separated arguments as the protocol
    // wants them). Blocks (halts) until the reply arrives.
    XenbusReply request(std::uint32_t type, std::uint32_t tx_id, const std::string& payload);

    // Conveniences over request().
    std::optional<std::string> read(const std::string& path, std::uint32_t tx = 0);
    XenbusReply write(const std::string& path, const std::string& value, std::uint32_t tx = 0);
    XenbusReply mkdir(const std::string& path, std::uint32_t tx = 0);
    XenbusReply rm(const std::string& path, std::uint32_t tx = 0);
    std::vector<std::string> directory(const std::string& path, std::uint32_t tx = 0);
    XenbusReply watch(const std::string& path, const std::string& token);
    // A watch whose events run `callback` in thread context (deferred work on the kernel's vCPU 0),
    // as Linux's xenwatch thread runs watch callbacks; the callback may make requests.
    XenbusReply watch(const std::string& path, const std::string& token,
                      std::function<void(const XenbusWatchEvent&)> callback);
    XenbusReply unwatch(const std::string& path, const std::string& token);
    std::optional<std::uint32_t> transaction_start();
    XenbusReply transaction_end(std::uint32_t tx, bool commit);

    // Watch events received so far (and drained).
    std::vector<XenbusWatchEvent> take_watch_events();
    // Waits (halts) until at least one watch event is queued.
    void wait_for_watch_event();

    std::uint64_t requests() const { return requests_; }

  private:
    void write_bytes(const char* data, std::size_t len);  // notifies once, or when it must wait
    bool fill();  // moves every available reply byte into inbox_, notifies; false if none
    bool take_message(std::uint32_t& type, std::uint32_t& req_id, std::string& payload);
    bool drain();  // fill() and frame every complete message: events dispatched, replies kept
    void pump_until_reply(std::uint32_t req_id, XenbusReply& out);
    void queue_watch_event(const std::string& payload);

    XenGuest& guest_;
    GuestServices& s_;
    ::xenstore_domain_interface* ring_ = nullptr;
    evtchn_port_t port_ = 0;
    std::uint32_t next_req_id_ = 1;
    std::deque<XenbusWatchEvent> events_;
    std::string inbox_;  // reply bytes taken off the ring, not yet framed
    struct PendingReply {
        std::uint32_t type, req_id;
        std::string payload;
    };
    std::deque<PendingReply> replies_;  // framed replies not yet claimed by their request
    std::map<std::string, std::function<void(const XenbusWatchEvent&)>> callbacks_;  // by token
    std::uint64_t requests_ = 0;
};

}  // namespace xensim
