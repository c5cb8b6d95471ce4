// The xenstored Unix socket: dom0's tools (xenstore-read, xenstore-ls, libxl ...) talking to the
// simulator's XenStore engine over the real wire protocol.
//
// The problem. Debian's libxenstore connects to the Unix stream socket named by XENSTORED_PATH and
// speaks docs/misc/xenstore.txt on it: struct xsd_sockmsg + payload, requests answered in order,
// WATCH_EVENTs interleaved whenever a watch fires. XenStoreSocketServer accepts any number of such
// clients on one Boost.Asio io_context (local stream sockets, epoll underneath, one thread) and
// hands every framed request to the shared XenStore engine.
//
// Invariants.
//   - Every accepted client is its own privileged engine connection for domid 0 (xenstored treats
//     its socket connections as dom0's tools); closing the client (EOF, error, protocol error,
//     server stop) calls XenStore::disconnect, which drops its watches, open transactions and
//     queued events: a vanished client leaves nothing behind.
//   - A reply goes to the client that sent the request, before the events that request caused for
//     that same client (xenstored's do_watch acks, then fires the initial event).
//   - After every handled request, take_events() is drained for EVERY client, so a watch fires to
//     its client whichever client (or the simulation, at the next 100 ms tick) made the change.
//   - Every engine call happens with the shared std::mutex held, so the simulation thread may use
//     the same engine concurrently under that mutex. All other state belongs to the io thread.
//   - Each client has a write queue bounded by XenStoreSocketLimits::output_bytes: at or above
//     it, no request of that client is handled and its socket is not read (backpressure for a
//     client that pipelines without reading); a WATCH_EVENT that would take the queue past the
//     bound is dropped and counted (xenstored core.c send_event drops an event when
//     domain_memory_add_chk refuses it). So a client's queue never exceeds the bound plus one
//     reply (sizeof(xsd_sockmsg) + XENSTORE_PAYLOAD_MAX).
//   - accept() failing for want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) retries after a
//     back-off (10 ms doubling to 1 s), not at once: the listening socket stays readable while the
//     process is out of fds, so retrying at once is a busy loop. Clients past the limit wait in
//     the listen backlog and are accepted once others leave.
//   - No busy polling: the thread sleeps in epoll until a socket or a timer is ready.
//
// Fidelity limits (versus tools/xenstored/core.c and its socket handling):
//   - A malformed (oversized len) message closes the client at once, as ignore_connection does for a
//     socket; xenstored also logs it. Here it is counted in protocol_errors.
//   - xenstored applies the memory quota (and so the event drop) only to unprivileged domains
//     (domain_chk_quota returns false for dom0); its socket clients are dom0 and unbounded. The
//     bound here applies to socket clients all the same, so a stuck tool cannot grow the
//     simulator without limit. xenstored's identical-event suppression against the whole pending
//     output list is done by the engine only within one drain, not across the socket queue.
//   - No per-connection outstanding-request quota or write rate limiting.
//   - Events caused by the simulation thread's own requests reach socket clients at the next
//     socket request or the next 100 ms tick.
//   - XS_CONTROL, XS_INTRODUCE ... are handled by the engine exactly as for any privileged caller.
//
// Deterministic simulation results do not depend on this server: it touches the engine only when a
// client connects, and its counters live in its own StatsGroup, not in the run's report tree.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "models/xen/xenstore_store.h"
#include "models/xen/xenstore_wire.h"
#include "sim/core/stats.h"

namespace xensim {

struct XenStoreSocketLimits {
    // Per-client write queue bound in bytes (see the invariants above).
    std::size_t output_bytes = 1024 * 1024;
};

class XenStoreSocketServer {
  public:
    // The engine and the mutex that guards it outlive the server. Nothing happens until start().
    XenStoreSocketServer(XenStore& store, std::mutex& store_mutex, std::string path,
                         XenStoreSocketLimits limits = {});
    ~XenStoreSocketServer();  // stops the background thread, closes every client, removes the socket
    XenStoreSocketServer(const XenStoreSocketServer&) = delete;
    XenStoreSocketServer& operator=(const XenStoreSocketServer&) = delete;

    // Binds and listens. A stale socket file (nobody accepting) is removed first; a live one, a
    // non-socket file at the path, a path too long for sockaddr_un or a bind failure throw
    // std::runtime_error with the path and the reason.
    void start();
    // Serves until `stop` becomes true (checked at least every ~100 ms). Requires start().
    void run_until(const std::atomic<bool>& stop);
    // Runs the handlers ready now (timeout_ms 0) or for up to timeout_ms; for tests. True if any ran.
    bool poll_once(int timeout_ms);
    // run_until on a thread of its own; stop_background() joins it (idempotent).
    void start_background();
    void stop_background();
    // Closes every client (disconnecting it from the engine), the listening socket, and unlinks the
    // socket file. Called by the destructor; idempotent.
    void close();

    const std::string& path() const { return path_; }
    std::size_t client_count() const;
    // Counters, read them when the loop is not running (after stop_background()).
    const StatsGroup& stats() const { return stats_; }
    std::uint64_t connections_accepted() const { return accepted_.value(); }
    std::uint64_t requests() const { return requests_.value(); }
    std::uint64_t bytes_in() const { return bytes_in_.value(); }
    std::uint64_t bytes_out() const { return bytes_out_.value(); }
    std::uint64_t protocol_errors() const { return protocol_errors_.value(); }
    std::uint64_t watch_events_dropped() const { return events_dropped_.value(); }
    std::uint64_t accept_errors() const { return accept_errors_.value(); }
    // The largest write queue any client had, in bytes.
    std::size_t output_high_water() const { return high_water_; }

  private:
    struct Session;
    struct Impl;
    using SessionPtr = std::shared_ptr<Session>;

    void do_accept();
    void start_read(const SessionPtr& s);
    void start_write(const SessionPtr& s);
    void handle_requests(const SessionPtr& s);
    void drain_events_locked();  // store_mutex_ held
    void queue(Session& s, const XsMessage& m, bool event);
    void kick_writes();
    void close_session(const SessionPtr& s);
    void arm_tick();

    XenStore& store_;
    std::mutex& store_mutex_;
    std::string path_;
    XenStoreSocketLimits limits_;
    std::unique_ptr<Impl> impl_;
    bool bound_ = false;  // we created the socket file and remove it in close()
    std::size_t high_water_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_thread_{false};

    StatsGroup stats_{"xenstore_socket"};
    Counter accepted_{stats_, "connections_accepted", "connections", "clients accepted on the socket"};
    Counter closed_{stats_, "connections_closed", "connections", "clients closed (EOF, error, protocol)"};
    Counter requests_{stats_, "requests", "messages", "requests handled by the engine"};
    Counter events_{stats_, "watch_events", "messages", "WATCH_EVENTs sent to clients"};
    Counter bytes_in_{stats_, "bytes_in", "bytes", "bytes read from clients"};
    Counter bytes_out_{stats_, "bytes_out", "bytes", "bytes written to clients"};
    Counter protocol_errors_{stats_, "protocol_errors", "connections",
                             "clients closed for a malformed (oversized) message"};
    Counter events_dropped_{stats_, "watch_events_dropped", "messages",
                            "WATCH_EVENTs dropped: the client's write queue was at its bound"};
    Counter accept_errors_{stats_, "accept_errors", "errors", "accept() failures (EMFILE ... back off)"};
};

}  // namespace xensim
