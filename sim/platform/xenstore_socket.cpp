#include "sim/platform/xenstore_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace xensim {

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

}  // namespace

XenStoreSocketServer::XenStoreSocketServer(XenStore& store, std::mutex& store_mutex, std::string path)
    : store_(store), store_mutex_(store_mutex), path_(std::move(path)) {}

XenStoreSocketServer::~XenStoreSocketServer() {
    stop_background();
    close();
}

void XenStoreSocketServer::start() {
    if (listen_fd_ >= 0) throw std::logic_error("XenStoreSocketServer::start called twice");
    sockaddr_un addr = socket_address(path_);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error("xenstore socket " + path_ + ": exists and is not a socket");
        if (socket_is_live(addr))
            throw std::runtime_error("xenstore socket " + path_ + ": another server is listening there");
        if (::unlink(path_.c_str()) != 0) throw socket_error(path_, "cannot remove stale socket", errno);
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw socket_error(path_, "socket", errno);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd);
        throw socket_error(path_, "bind", err);
    }
    bound_ = true;
    if (::listen(fd, 64) != 0) {
        int err = errno;
        ::close(fd);
        ::unlink(path_.c_str());
        bound_ = false;
        throw socket_error(path_, "listen", err);
    }
    listen_fd_ = fd;
}

void XenStoreSocketServer::run_until(const std::atomic<bool>& stop) {
    if (listen_fd_ < 0) throw std::logic_error("XenStoreSocketServer::run_until before start");
    // After activity, poll without sleeping for a short while: a client's next request is then
    // seen at once instead of after an idle-CPU wake-up (tens of microseconds on a VM).
    auto spin_until = std::chrono::steady_clock::time_point::min();
    while (!stop.load(std::memory_order_relaxed)) {
        bool spinning = std::chrono::steady_clock::now() < spin_until;
        if (poll_once(spinning ? 0 : 100)) spin_until = std::chrono::steady_clock::now() + kSpin;
    }
}

void XenStoreSocketServer::start_background() {
    if (thread_.joinable()) return;
    if (listen_fd_ < 0) start();
    stop_thread_ = false;
    thread_ = std::thread([this] { run_until(stop_thread_); });
}

void XenStoreSocketServer::stop_background() {
    if (!thread_.joinable()) return;
    stop_thread_ = true;
    thread_.join();
}

bool XenStoreSocketServer::poll_once(int timeout_ms) {
    std::vector<pollfd> fds;
    fds.reserve(clients_.size() + 1);
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& [fd, c] : clients_) {
        short ev = 0;
        std::size_t pending = c.out.size() - c.out_off;
        if (pending < kMaxPendingOut) ev |= POLLIN;
        if (pending > 0) ev |= POLLOUT;
        fds.push_back({fd, ev, 0});
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) throw socket_error(path_, "poll", errno);
    if (n > 0) {
        for (std::size_t i = 1; i < fds.size(); ++i) {
            if (!fds[i].revents) continue;
            auto it = clients_.find(fds[i].fd);
            if (it == clients_.end() || it->second.dead) continue;
            Client& c = it->second;
            if (fds[i].revents & POLLOUT) flush_client(c);
            if (!c.dead && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) read_client(c);
        }
        reap_dead();  // before accept: a closed client's fd number may be reused at once
        if (fds[0].revents & POLLIN) accept_clients();
    }
    // Events the simulation thread caused since the last round reach their socket watchers (not on
    // the zero-timeout spin rounds, which would take the store mutex in a tight loop).
    if (!clients_.empty() && (n > 0 || timeout_ms != 0)) {
        {
            std::lock_guard<std::mutex> lock(store_mutex_);
            drain_events_locked();
        }
        for (auto& [fd, c] : clients_)
            if (!c.dead && c.out.size() > c.out_off) flush_client(c);
    }
    reap_dead();
    return n > 0;
}

void XenStoreSocketServer::accept_clients() {
    for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return;  // EAGAIN, or a transient failure (EMFILE, ECONNABORTED): try at the next poll
        }
        Client c;
        c.fd = fd;
        {
            std::lock_guard<std::mutex> lock(store_mutex_);
            c.conn = store_.connect(0, true);
        }
        accepted_.inc();
        clients_.emplace(fd, std::move(c));
    }
}

void XenStoreSocketServer::read_client(Client& c) {
    char buf[kReadChunk];
    ssize_t n;
    do {
        n = ::recv(c.fd, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF or a socket error: the client is gone
        close_client(c);
        return;
    }
    bytes_in_.inc(static_cast<std::uint64_t>(n));
    bool ok = c.parser.feed(buf, static_cast<std::size_t>(n));
    handle_requests(c);  // messages framed before a malformed header are still answered
    if (!ok) {
        protocol_errors_.inc();
        flush_client(c);
        close_client(c);
        return;
    }
    flush_client(c);
}

void XenStoreSocketServer::handle_requests(Client& c) {
    if (!c.parser.has_message()) return;
    std::lock_guard<std::mutex> lock(store_mutex_);
    while (c.parser.has_message()) {
        XsMessage req = c.parser.pop();
        requests_.inc();
        for (const XsMessage& reply : store_.handle(c.conn, req)) queue(c, reply);
        drain_events_locked();
    }
}

void XenStoreSocketServer::drain_events_locked() {
    for (auto& [fd, c] : clients_) {
        if (c.dead) continue;
        for (const XsMessage& ev : store_.take_events(c.conn)) {
            events_.inc();
            queue(c, ev);
        }
    }
}

void XenStoreSocketServer::queue(Client& c, const XsMessage& m) {
    if (c.out_off > 0 && c.out_off == c.out.size()) {
        c.out.clear();
        c.out_off = 0;
    }
    // The engine never produces a payload over XENSTORE_PAYLOAD_MAX (E2BIG instead), so this holds.
    if (!xs_serialize(m, c.out)) throw std::logic_error("XenStore reply exceeds XENSTORE_PAYLOAD_MAX");
}

void XenStoreSocketServer::flush_client(Client& c) {
    while (c.out_off < c.out.size()) {
        ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // POLLOUT will resume
            close_client(c);
            return;
        }
        c.out_off += static_cast<std::size_t>(n);
        bytes_out_.inc(static_cast<std::uint64_t>(n));
    }
    c.out.clear();
    c.out_off = 0;
}

void XenStoreSocketServer::close_client(Client& c) {
    if (c.dead) return;
    c.dead = true;
    ::close(c.fd);
    {
        std::lock_guard<std::mutex> lock(store_mutex_);
        store_.disconnect(c.conn);
    }
    closed_.inc();
}

void XenStoreSocketServer::reap_dead() {
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second.dead)
            it = clients_.erase(it);
        else
            ++it;
    }
}

void XenStoreSocketServer::close() {
    for (auto& [fd, c] : clients_) close_client(c);
    clients_.clear();
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    if (bound_) {
        ::unlink(path_.c_str());
        bound_ = false;
    }
}

}  // namespace xensim
