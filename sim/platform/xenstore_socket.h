// The xenstored Unix socket: dom0's tools (xenstore-read, xenstore-ls, libxl ...) talking to the
// simulator's XenStore engine over the real wire protocol.
//
// The problem. Debian's libxenstore connects to the Unix stream socket named by XENSTORED_PATH and
// speaks docs/misc/xenstore.txt on it: struct xsd_sockmsg + payload, requests answered in order,
// WATCH_EVENTs interleaved whenever a watch fires. XenStoreSocketServer accepts any number of such
// clients with one poll() loop and hands every framed request to the shared XenStore engine.
//
// Invariants.
//   - Every accepted client is its own privileged engine connection for domid 0 (xenstored treats
//     its socket connections as dom0's tools); closing the client (EOF, error, protocol error,
//     server stop) calls XenStore::disconnect, which drops its watches, open transactions and
//     queued events: a vanished client leaves nothing behind.
//   - A reply goes to the client that sent the request, before the events that request caused for
//     that same client (xenstored's do_watch acks, then fires the initial event).
//   - After every handled request, take_events() is drained for EVERY client, so a watch fires to
//     its client whichever client (or the simulation, at its next request here) made the change.
//   - Every engine call happens with the shared std::mutex held, so the simulation thread may use
//     the same engine concurrently under that mutex.
//   - Sockets are non-blocking; each client has an output buffer flushed on POLLOUT, so a slow
//     reader never blocks the loop. Writes use MSG_NOSIGNAL: a peer that vanished is an error on
//     that client, not a SIGPIPE for the process.
//
// Fidelity limits (versus tools/xenstored/core.c and its socket handling):
//   - A malformed (oversized len) message closes the client at once, as ignore_connection does for a
//     socket; xenstored also logs it. Here it is counted in protocol_errors.
//   - No per-connection outstanding-request quota or write rate limiting; a client that stops
//     reading its socket is no longer read from once 1 MiB of output is pending (xenstored's
//     output limit is different), but events queued for it keep growing its buffer.
//   - Events caused by the simulation thread's own requests reach socket clients only when the
//     socket server next drains events, i.e. after the next socket request or within one poll
//     timeout (~100 ms) -- the drain also runs on every loop iteration.
//   - XS_CONTROL, XS_INTRODUCE ... are handled by the engine exactly as for any privileged caller.
//   - After any socket activity the loop busy-polls for 200 us before sleeping in poll(): on a VM an
//     idle-CPU wake-up costs ~35 us, which would otherwise dominate a request/response round trip.
//     Idle, it wakes every 100 ms (to notice the stop flag and deliver the simulation's events).
//
// Deterministic simulation results do not depend on this server: it touches the engine only when a
// client connects, and its counters live in its own StatsGroup, not in the run's report tree.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "models/xen/xenstore_store.h"
#include "models/xen/xenstore_wire.h"
#include "sim/core/stats.h"

namespace xensim {

class XenStoreSocketServer {
  public:
    // The engine and the mutex that guards it outlive the server. Nothing happens until start().
    XenStoreSocketServer(XenStore& store, std::mutex& store_mutex, std::string path);
    ~XenStoreSocketServer();  // stops the background thread, closes every client, removes the socket
    XenStoreSocketServer(const XenStoreSocketServer&) = delete;
    XenStoreSocketServer& operator=(const XenStoreSocketServer&) = delete;

    // Binds and listens. A stale socket file (nobody accepting) is removed first; a live one, a
    // non-socket file at the path, a path too long for sockaddr_un or a bind failure throw
    // std::runtime_error with the path and the reason.
    void start();
    // Serves until `stop` becomes true (checked at least every ~100 ms). Requires start().
    void run_until(const std::atomic<bool>& stop);
    // One poll round with the given timeout; for run_until and tests. True if any socket was ready.
    bool poll_once(int timeout_ms);
    // run_until on a thread of its own; stop_background() joins it (idempotent).
    void start_background();
    void stop_background();
    // Closes every client (disconnecting it from the engine), the listening socket, and unlinks the
    // socket file. Called by the destructor; idempotent.
    void close();

    const std::string& path() const { return path_; }
    std::size_t client_count() const { return clients_.size(); }
    // Counters, read them when the loop is not running (after stop_background()).
    const StatsGroup& stats() const { return stats_; }
    std::uint64_t connections_accepted() const { return accepted_.value(); }
    std::uint64_t requests() const { return requests_.value(); }
    std::uint64_t bytes_in() const { return bytes_in_.value(); }
    std::uint64_t bytes_out() const { return bytes_out_.value(); }
    std::uint64_t protocol_errors() const { return protocol_errors_.value(); }

  private:
    struct Client {
        int fd = -1;
        XsConnId conn = 0;
        XsWireParser parser;
        std::string out;          // serialized replies and events not yet written
        std::size_t out_off = 0;  // bytes of `out` already written
        bool dead = false;
    };
    static constexpr std::size_t kReadChunk = 64 * 1024;
    static constexpr std::size_t kMaxPendingOut = 1024 * 1024;  // stop reading past this
    static constexpr std::chrono::microseconds kSpin{200};      // busy-poll after activity

    void accept_clients();
    void read_client(Client& c);
    void flush_client(Client& c);
    void handle_requests(Client& c);
    void drain_events_locked();  // store_mutex_ held
    void queue(Client& c, const XsMessage& m);
    void close_client(Client& c);
    void reap_dead();

    XenStore& store_;
    std::mutex& store_mutex_;
    std::string path_;
    int listen_fd_ = -1;
    bool bound_ = false;             // we created the socket file and remove it in close()
    std::map<int, Client> clients_;  // by fd
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
};

}  // namespace xensim
