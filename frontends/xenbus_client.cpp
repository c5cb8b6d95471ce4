#include "frontends/xenbus_client.h"

#include <cstring>

#include <xen/io/xs_wire.h>

namespace xensim {

namespace {

std::string arg(const std::string& s) { return s + std::string(1, '\0'); }

std::vector<std::string> split_nul(const std::string& payload) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < payload.size()) {
        std::size_t end = payload.find('\0', start);
        if (end == std::string::npos) end = payload.size();
        out.push_back(payload.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

}  // namespace

long XenbusClient::connect() {
    xen_hvm_param_t p{};
    p.domid = DOMID_SELF;
    p.index = HVM_PARAM_STORE_PFN;
    if (long r = s_.hypercall(__HYPERVISOR_hvm_op, HVMOP_get_param, reinterpret_cast<unsigned long>(&p)))
        return r;
    std::uint64_t pfn = p.value;
    p.index = HVM_PARAM_STORE_EVTCHN;
    if (long r = s_.hypercall(__HYPERVISOR_hvm_op, HVMOP_get_param, reinterpret_cast<unsigned long>(&p)))
        return r;
    return connect_at(pfn, static_cast<evtchn_port_t>(p.value));
}

long XenbusClient::connect_at(std::uint64_t pfn, evtchn_port_t port) {
    std::uint8_t* page = s_.page(pfn);
    if (!page) return -XEN_EINVAL;
    ring_ = reinterpret_cast<::xenstore_domain_interface*>(page);
    port_ = port;
    // On the store's event, take what xenstored wrote (it never waits): watch events with a
    // callback are dispatched (deferred), replies wait for their requester.
    guest_.set_port_handler(port_, [this](GuestServices&, evtchn_port_t) { drain(); });
    guest_.unmask(s_, port_);
    return 0;
}

void XenbusClient::write_bytes(const char* data, std::size_t len) {
    bool wrote = false;
    while (len) {
        XENSTORE_RING_IDX cons = ring_->req_cons, prod = ring_->req_prod;
        xen_mb();
        std::size_t used = prod - cons;
        if (used >= XENSTORE_RING_SIZE) {  // full: let xenstored in, wait for it to consume
            if (wrote) guest_.notify(s_, port_);
            wrote = false;
            s_.halt();
            continue;
        }
        std::size_t avail = XENSTORE_RING_SIZE - used;
        std::size_t contiguous = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(prod);
        std::size_t n = std::min({len, avail, contiguous});
        std::memcpy(ring_->req + MASK_XENSTORE_IDX(prod), data, n);
        xen_wmb();
        ring_->req_prod = prod + static_cast<XENSTORE_RING_IDX>(n);
        data += n, len -= n;
        wrote = true;
    }
    if (wrote) guest_.notify(s_, port_);
}

bool XenbusClient::fill() {
    XENSTORE_RING_IDX cons = ring_->rsp_cons, prod = ring_->rsp_prod;
    xen_rmb();
    XENSTORE_RING_IDX avail = prod - cons;
    if (avail == 0 || avail > XENSTORE_RING_SIZE) return false;
    for (XENSTORE_RING_IDX i = 0; i < avail; ++i) inbox_.push_back(ring_->rsp[MASK_XENSTORE_IDX(cons + i)]);
    xen_mb();
    ring_->rsp_cons = prod;
    guest_.notify(s_, port_);  // xenstored may have output waiting for the space
    return true;
}

bool XenbusClient::take_message(std::uint32_t& type, std::uint32_t& req_id, std::string& payload) {
    if (inbox_.size() < sizeof(xsd_sockmsg)) return false;
    xsd_sockmsg hdr{};
    std::memcpy(&hdr, inbox_.data(), sizeof hdr);
    std::size_t len = std::min<std::uint32_t>(hdr.len, XENSTORE_PAYLOAD_MAX);
    if (inbox_.size() < sizeof hdr + len) return false;
    payload = inbox_.substr(sizeof hdr, len);
    inbox_.erase(0, sizeof hdr + len);
    type = hdr.type;
    req_id = hdr.req_id;
    return true;
}

bool XenbusClient::drain() {
    bool got = fill();
    std::uint32_t type = 0, id = 0;
    std::string payload;
    while (take_message(type, id, payload)) {
        got = true;
        if (type == XS_WATCH_EVENT)
            queue_watch_event(payload);
        else
            replies_.push_back({type, id, std::move(payload)});
    }
    return got;
}

void XenbusClient::queue_watch_event(const std::string& payload) {
    auto parts = split_nul(payload);  // "path\0token\0"
    XenbusWatchEvent ev{parts.size() > 0 ? parts[0] : "", parts.size() > 1 ? parts[1] : ""};
    auto cb = callbacks_.find(ev.token);
    if (cb == callbacks_.end()) {
        events_.push_back(std::move(ev));
        return;
    }
    // A watch with a callback runs it later in thread context (Linux's xenwatch thread): the
    // callback may make requests, which an upcall handler must not.
    auto fn = cb->second;
    guest_.defer([fn, ev](GuestServices&) { fn(ev); });
}

void XenbusClient::pump_until_reply(std::uint32_t req_id, XenbusReply& out) {
    for (;;) {
        for (auto it = replies_.begin(); it != replies_.end(); ++it) {
            if (it->req_id != req_id) continue;
            out.type = it->type;
            out.payload = std::move(it->payload);
            if (out.type == XS_ERROR) out.error = out.payload.substr(0, out.payload.find('\0'));
            replies_.erase(it);
            return;
        }
        if (!drain()) s_.halt();
    }
}

XenbusReply XenbusClient::request(std::uint32_t type, std::uint32_t tx_id, const std::string& payload) {
    XenbusReply reply;
    if (!ring_) {
        reply.type = XS_ERROR;
        reply.error = "ENOTCONN";
        return reply;
    }
    xsd_sockmsg hdr{};
    hdr.type = type;
    hdr.req_id = next_req_id_++;
    hdr.tx_id = tx_id;
    hdr.len = static_cast<std::uint32_t>(payload.size());
    ++requests_;
    std::string message(reinterpret_cast<const char*>(&hdr), sizeof hdr);
    message += payload;
    write_bytes(message.data(), message.size());
    pump_until_reply(hdr.req_id, reply);
    return reply;
}

std::optional<std::string> XenbusClient::read(const std::string& path, std::uint32_t tx) {
    XenbusReply r = request(XS_READ, tx, arg(path));
    if (!r.ok()) return std::nullopt;
    return r.payload;
}

XenbusReply XenbusClient::write(const std::string& path, const std::string& value, std::uint32_t tx) {
    return request(XS_WRITE, tx, arg(path) + value);
}

XenbusReply XenbusClient::mkdir(const std::string& path, std::uint32_t tx) {
    return request(XS_MKDIR, tx, arg(path));
}
XenbusReply XenbusClient::rm(const std::string& path, std::uint32_t tx) {
    return request(XS_RM, tx, arg(path));
}

std::vector<std::string> XenbusClient::directory(const std::string& path, std::uint32_t tx) {
    XenbusReply r = request(XS_DIRECTORY, tx, arg(path));
    return r.ok() ? split_nul(r.payload) : std::vector<std::string>{};
}

XenbusReply XenbusClient::watch(const std::string& path, const std::string& token) {
    return request(XS_WATCH, 0, arg(path) + arg(token));
}

XenbusReply XenbusClient::unwatch(const std::string& path, const std::string& token) {
    return request(XS_UNWATCH, 0, arg(path) + arg(token));
}

std::optional<std::uint32_t> XenbusClient::transaction_start() {
    XenbusReply r = request(XS_TRANSACTION_START, 0, arg(""));
    if (!r.ok()) return std::nullopt;
    return static_cast<std::uint32_t>(std::stoul(r.payload.substr(0, r.payload.find('\0'))));
}

XenbusReply XenbusClient::transaction_end(std::uint32_t tx, bool commit) {
    return request(XS_TRANSACTION_END, tx, arg(commit ? "T" : "F"));
}

std::vector<XenbusWatchEvent> XenbusClient::take_watch_events() {
    std::vector<XenbusWatchEvent> out(events_.begin(), events_.end());
    events_.clear();
    return out;
}

void XenbusClient::wait_for_watch_event() {
    while (events_.empty())
        if (!drain()) s_.halt();
}

XenbusReply XenbusClient::watch(const std::string& path, const std::string& token,
                                std::function<void(const XenbusWatchEvent&)> callback) {
    callbacks_[token] = std::move(callback);
    XenbusReply r = watch(path, token);
    if (!r.ok()) callbacks_.erase(token);
    return r;
}

}  // namespace xensim
