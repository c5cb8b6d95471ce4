#include "sim/platform/xenstore_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace xensim {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;
using boost::system::error_code;

namespace {
std::runtime_error socket_error(const std::string& path, const std::string& what, int err) {
    return std::runtime_error("xenstore socket " + path + ": " + what + ": " + std::strerror(err));
}

// sockaddr_un for `path`, or throws if it does not fit.
sockaddr_un socket_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        throw std::runtime_error("xenstore socket " + path + ": path must be 1 to " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// True if something accepts connections at `path` (a live server, not a stale file).
bool socket_is_live(const sockaddr_un& addr) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return live;
}

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxGather = 64;  // messages per async_write
constexpr std::chrono::milliseconds kTick{100};
constexpr std::chrono::milliseconds kBackoffFirst{10}, kBackoffMax{1000};

// accept() failures that mean "out of descriptors or memory": the listening socket stays readable,
// so retrying at once would spin. Others (ECONNABORTED, EPROTO ...) concern one peer only.
bool resource_exhausted(const error_code& ec) {
    const int e = ec.value();
    return ec.category() == boost::system::system_category() &&
           (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM);
}

}  // namespace

struct XenStoreSocketServer::Session {
    explicit Session(asio::io_context& io) : socket(io) {}
    Local::socket socket;
    XsConnId conn = 0;
    XsWireParser parser;
    std::array<char, kReadChunk> rbuf;
    std::deque<std::string> out;  // serialized messages; the first `writing` are being written
    std::size_t queued = 0;       // bytes in `out`
    std::size_t writing = 0;
    bool reading = false;
    bool dirty = false;  // in Impl::dirty: has output that may need a write started
    bool open = true;
};

struct XenStoreSocketServer::Impl {
    asio::io_context io{1};
    Local::acceptor acceptor{io};
    asio::steady_timer accept_timer{io};
    asio::steady_timer tick{io};
    std::chrono::milliseconds backoff{0};
    std::map<Session*, SessionPtr> sessions;
    std::vector<SessionPtr> dirty;
};

XenStoreSocketServer::XenStoreSocketServer(XenStore& store, std::mutex& store_mutex, std::string path,
                                           XenStoreSocketLimits limits)
    : store_(store),
      store_mutex_(store_mutex),
      path_(std::move(path)),
      limits_(limits),
      impl_(std::make_unique<Impl>()) {}

XenStoreSocketServer::~XenStoreSocketServer() {
    stop_background();
    close();
}

std::size_t XenStoreSocketServer::client_count() const { return impl_->sessions.size(); }

void XenStoreSocketServer::start() {
    if (impl_->acceptor.is_open()) throw std::logic_error("XenStoreSocketServer::start called twice");
    sockaddr_un addr = socket_address(path_);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error("xenstore socket " + path_ + ": exists and is not a socket");
        if (socket_is_live(addr))
            throw std::runtime_error("xenstore socket " + path_ + ": another server is listening there");
        if (::unlink(path_.c_str()) != 0) throw socket_error(path_, "cannot remove stale socket", errno);
    }
    // Bound under a temporary name and renamed once listening, so a client that sees the path never
    // meets ECONNREFUSED in the window between bind() and listen().
    const std::string tmp = path_ + ".new";
    const bool via_tmp = tmp.size() < sizeof addr.sun_path;
    sockaddr_un bind_addr = via_tmp ? socket_address(tmp) : addr;
    if (via_tmp) ::unlink(tmp.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw socket_error(path_, "socket", errno);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&bind_addr), sizeof bind_addr) != 0) {
        int err = errno;
        ::close(fd);
        throw socket_error(path_, "bind", err);
    }
    if (::listen(fd, 64) != 0 || (via_tmp && ::rename(tmp.c_str(), path_.c_str()) != 0)) {
        int err = errno;
        ::close(fd);
        ::unlink(bind_addr.sun_path);
        throw socket_error(path_, "listen", err);
    }
    bound_ = true;
    error_code ec;
    impl_->acceptor.assign(Local(), fd, ec);
    if (ec) {
        ::close(fd);
        ::unlink(path_.c_str());
        bound_ = false;
        throw socket_error(path_, "register with the io_context", ec.value());
    }
    do_accept();
    arm_tick();
}

void XenStoreSocketServer::run_until(const std::atomic<bool>& stop) {
    if (!impl_->acceptor.is_open()) throw std::logic_error("XenStoreSocketServer::run_until before start");
    while (!stop.load(std::memory_order_relaxed)) {
        impl_->io.restart();
        impl_->io.run_for(kTick);  // sleeps in epoll; returns at the latest after one tick
    }
}

bool XenStoreSocketServer::poll_once(int timeout_ms) {
    impl_->io.restart();
    std::size_t n =
        timeout_ms == 0 ? impl_->io.poll() : impl_->io.run_for(std::chrono::milliseconds(timeout_ms));
    return n > 0;
}

void XenStoreSocketServer::start_background() {
    if (thread_.joinable()) return;
    if (!impl_->acceptor.is_open()) start();
    stop_thread_ = false;
    thread_ = std::thread([this] { run_until(stop_thread_); });
}

void XenStoreSocketServer::stop_background() {
    if (!thread_.joinable()) return;
    stop_thread_ = true;
    impl_->io.stop();  // run_for returns at once; the loop then sees the flag
    thread_.join();
}

// The simulation thread's own requests queue events on socket watchers; nothing tells this thread,
// so a tick delivers them (and idles the loop at 10 wake-ups a second, no busy polling).
void XenStoreSocketServer::arm_tick() {
    impl_->tick.expires_after(kTick);
    impl_->tick.async_wait([this](const error_code& ec) {
        if (ec || !impl_->acceptor.is_open()) return;
        if (!impl_->sessions.empty()) {
            {
                std::lock_guard<std::mutex> lock(store_mutex_);
                drain_events_locked();
            }
            kick_writes();
        }
        arm_tick();
    });
}

// posix.c accept_connection + core.c new_connection; an accept failing for want of fds backs off.
void XenStoreSocketServer::do_accept() {
    impl_->acceptor.async_accept([this](const error_code& ec, Local::socket sock) {
        if (ec == asio::error::operation_aborted || !impl_->acceptor.is_open()) return;
        if (ec) {
            accept_errors_.inc();
            if (!resource_exhausted(ec)) {
                do_accept();
                return;
            }
            impl_->backoff =
                impl_->backoff.count() ? std::min(impl_->backoff * 2, kBackoffMax) : kBackoffFirst;
            impl_->accept_timer.expires_after(impl_->backoff);
            impl_->accept_timer.async_wait([this](const error_code& tec) {
                if (!tec && impl_->acceptor.is_open()) do_accept();
            });
            return;
        }
        impl_->backoff = std::chrono::milliseconds(0);
        auto s = std::make_shared<Session>(impl_->io);
        s->socket = std::move(sock);
        {
            std::lock_guard<std::mutex> lock(store_mutex_);
            s->conn = store_.connect(0, true);
        }
        accepted_.inc();
        impl_->sessions.emplace(s.get(), s);
        start_read(s);
        do_accept();
    });
}

void XenStoreSocketServer::start_read(const SessionPtr& s) {
    if (!s->open || s->reading || s->queued >= limits_.output_bytes) return;  // backpressure
    s->reading = true;
    s->socket.async_read_some(asio::buffer(s->rbuf), [this, s](const error_code& ec, std::size_t n) {
        s->reading = false;
        if (!s->open) return;
        if (ec) {  // EOF or a socket error: the client is gone
            close_session(s);
            return;
        }
        bytes_in_.inc(n);
        bool ok = s->parser.feed(s->rbuf.data(), n);
        handle_requests(s);  // messages framed before a malformed header are still answered
        if (!ok) {
            protocol_errors_.inc();
            if (!s->writing) {  // core.c destroy_conn: flush what is pending if possible, don't block
                error_code wec;
                s->socket.non_blocking(true, wec);
                for (const std::string& m : s->out)
                    if (asio::write(s->socket, asio::buffer(m), wec), wec) break;
            }
            close_session(s);
            return;
        }
        start_read(s);
    });
}

// core.c process_message, one request after another while the client's write queue has room.
void XenStoreSocketServer::handle_requests(const SessionPtr& s) {
    if (s->parser.has_message() && s->queued < limits_.output_bytes) {
        std::lock_guard<std::mutex> lock(store_mutex_);
        while (s->parser.has_message() && s->queued < limits_.output_bytes) {
            XsMessage req = s->parser.pop();
            requests_.inc();
            for (const XsMessage& reply : store_.handle(s->conn, req)) queue(*s, reply, false);
            drain_events_locked();
        }
    }
    kick_writes();
}

void XenStoreSocketServer::drain_events_locked() {
    for (auto& [p, s] : impl_->sessions) {
        if (!s->open) continue;
        for (const XsMessage& ev : store_.take_events(s->conn)) queue(*s, ev, true);
    }
}

void XenStoreSocketServer::queue(Session& s, const XsMessage& m, bool event) {
    std::string bytes;
    // The engine never produces a payload over XENSTORE_PAYLOAD_MAX (E2BIG instead), so this holds.
    if (!xs_serialize(m, bytes)) throw std::logic_error("XenStore reply exceeds XENSTORE_PAYLOAD_MAX");
    if (event && s.queued + bytes.size() > limits_.output_bytes) {
        events_dropped_.inc();  // core.c send_event: domain_memory_add_chk refused -> not queued
        return;
    }
    if (event) events_.inc();
    s.queued += bytes.size();
    high_water_ = std::max(high_water_, s.queued);
    s.out.push_back(std::move(bytes));
    if (!s.dirty) {
        s.dirty = true;
        impl_->dirty.push_back(impl_->sessions.at(&s));
    }
}

void XenStoreSocketServer::kick_writes() {
    std::vector<SessionPtr> dirty;
    dirty.swap(impl_->dirty);
    for (const SessionPtr& s : dirty) {
        s->dirty = false;
        start_write(s);
    }
}

void XenStoreSocketServer::start_write(const SessionPtr& s) {
    if (!s->open || s->writing || s->out.empty()) return;
    std::vector<asio::const_buffer> bufs;
    s->writing = std::min(s->out.size(), kMaxGather);
    for (std::size_t i = 0; i < s->writing; ++i) bufs.push_back(asio::buffer(s->out[i]));
    // deque::push_back keeps references to the strings being written valid.
    asio::async_write(s->socket, bufs, [this, s](const error_code& ec, std::size_t n) {
        if (!s->open) return;
        if (ec) {
            close_session(s);
            return;
        }
        bytes_out_.inc(n);
        for (; s->writing; --s->writing) {
            s->queued -= s->out.front().size();
            s->out.pop_front();
        }
        handle_requests(s);  // requests held back while the queue was full
        start_write(s);
        start_read(s);
    });
}

void XenStoreSocketServer::close_session(const SessionPtr& s) {
    if (!s->open) return;
    s->open = false;
    error_code ec;
    s->socket.close(ec);  // pending operations complete with operation_aborted and see !open
    {
        std::lock_guard<std::mutex> lock(store_mutex_);
        store_.disconnect(s->conn);
    }
    closed_.inc();
    impl_->sessions.erase(s.get());
}

void XenStoreSocketServer::close() {
    std::vector<SessionPtr> all;
    for (auto& [p, s] : impl_->sessions) all.push_back(s);
    for (const SessionPtr& s : all) close_session(s);
    impl_->dirty.clear();
    error_code ec;
    impl_->acceptor.close(ec);
    impl_->accept_timer.cancel();
    impl_->tick.cancel();
    impl_->io.restart();
    impl_->io.poll();  // the aborted handlers run and release their sessions
    if (bound_) {
        ::unlink(path_.c_str());
        bound_ = false;
    }
}

}  // namespace xensim
