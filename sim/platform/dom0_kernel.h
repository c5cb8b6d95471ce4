// dom0's kernel as backends see it: BackendKernel over dom0's XenGuest and its xenbus client.
//
// XenStore calls go through the kernel's xenbus client on vCPU 0 (connected on first use); watch
// callbacks and deferred work run on vCPU 0 in thread context; port handlers run where the port
// notifies. Every GuestServices dom0 code receives is a VcpuGuestServices, which is also the
// backend's BackendServices.
#pragma once

#include "models/dom0/backend_kernel.h"
#include "sim/platform/platform_runtime.h"

namespace xensim {

class Dom0Kernel : public BackendKernel {
  public:
    Dom0Kernel(XenGuest& guest, std::function<XenbusClient&()> xenbus, GuestServices& vcpu0)
        : guest_(guest), xenbus_(std::move(xenbus)), vcpu0_(vcpu0) {}

    std::optional<std::string> xs_read(const std::string& path) override { return xenbus_().read(path); }
    bool xs_write(const std::string& path, const std::string& value) override {
        return xenbus_().write(path, value).ok();
    }
    std::optional<std::vector<std::string>> xs_directory(const std::string& path) override {
        XenbusReply r = xenbus_().request(XS_DIRECTORY, 0, path + std::string(1, '\0'));
        if (!r.ok()) return std::nullopt;
        std::vector<std::string> names;
        std::size_t at = 0;
        while (at < r.payload.size()) {
            std::size_t end = r.payload.find('\0', at);
            if (end == std::string::npos) end = r.payload.size();
            if (end > at) names.push_back(r.payload.substr(at, end - at));
            at = end + 1;
        }
        return names;
    }
    bool xs_watch(const std::string& path, const std::string& token,
                  std::function<void(BackendServices&, const std::string&)> callback) override {
        GuestServices* v0 = &vcpu0_;
        return xenbus_()
            .watch(path, token, [callback, v0](const XenbusWatchEvent& e) { callback(backend(*v0), e.path); })
            .ok();
    }
    bool xs_unwatch(const std::string& path, const std::string& token) override {
        return xenbus_().unwatch(path, token).ok();
    }
    void set_port_handler(evtchn_port_t port, std::function<void(BackendServices&)> handler) override {
        guest_.set_port_handler(port, [handler](GuestServices& s, evtchn_port_t) { handler(backend(s)); });
    }
    void clear_port_handler(evtchn_port_t port) override { guest_.clear_port_handler(port); }
    void unmask(BackendServices& s, evtchn_port_t port) override {
        guest_.unmask(static_cast<VcpuGuestServices&>(s), port);
    }
    void mask(BackendServices& s, evtchn_port_t port) override {
        guest_.mask(static_cast<VcpuGuestServices&>(s), port);
    }
    void defer(std::function<void(BackendServices&)> work) override {
        guest_.defer([work](GuestServices& s) { work(backend(s)); });
    }

    unsigned vcpus() const override { return vcpus_; }
    void defer_on(BackendServices& s, unsigned vcpu, std::function<void(BackendServices&)> work) override {
        guest_.defer_on(static_cast<VcpuGuestServices&>(s), vcpu,
                        [work](GuestServices& vs) { work(backend(vs)); });
    }
    long bind_vcpu(BackendServices& s, evtchn_port_t port, unsigned vcpu) override {
        return guest_.bind_vcpu(static_cast<VcpuGuestServices&>(s), port, vcpu);
    }
    void set_vcpus(unsigned n) { vcpus_ = n ? n : 1; }

  private:
    unsigned vcpus_ = 1;
    static BackendServices& backend(GuestServices& s) { return static_cast<VcpuGuestServices&>(s); }
    XenGuest& guest_;
    std::function<XenbusClient&()> xenbus_;
    GuestServices& vcpu0_;
};

}  // namespace xensim
