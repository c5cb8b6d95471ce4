// XenStore throughput (Google Benchmark): engine READ / WRITE / TRANSACTION_START+WRITE+END on a
// populated store, WRITE of a new child under a parent with 1k / 20k / 100k children, and request/response
// round trips over the xenstored Unix socket with one blocking client. Results and the command that produced
// them: docs/performance.md.
#include <benchmark/benchmark.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "models/xen/xenstore_store.h"
#include "models/xen/xenstore_wire.h"
#include "sim/platform/xenstore_socket.h"

namespace xensim {
namespace {

std::string str(const std::string& s) { return s + std::string(1, '\0'); }

// 64 domains x 16 nodes, like a host's libxl layout plus device entries.
void populate(XenStore& store) {
    for (int d = 0; d < 64; ++d)
        for (int n = 0; n < 16; ++n)
            store.write("/local/domain/" + std::to_string(d) + "/data/key" + std::to_string(n),
                        "value-" + std::to_string(n));
}

void BM_XenStoreRead(benchmark::State& state) {
    StatsGroup root("");
    XenStore store(root);
    populate(store);
    XsConnId conn = store.connect(0, true);
    XsMessage req{XS_READ, 1, 0, str("/local/domain/17/data/key9")};
    for (auto _ : state) {
        auto reply = store.handle(conn, req);
        benchmark::DoNotOptimize(reply);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_XenStoreRead);

void BM_XenStoreWrite(benchmark::State& state) {
    StatsGroup root("");
    XenStore store(root);
    populate(store);
    XsConnId conn = store.connect(0, true);
    XsMessage req{XS_WRITE, 1, 0, str("/local/domain/17/data/key9") + "new-value"};
    for (auto _ : state) {
        auto reply = store.handle(conn, req);
        benchmark::DoNotOptimize(reply);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_XenStoreWrite);

void BM_XenStoreTransactionWrite(benchmark::State& state) {
    StatsGroup root("");
    XenStore store(root);
    populate(store);
    XsConnId conn = store.connect(0, true);
    XsMessage start{XS_TRANSACTION_START, 1, 0, str("")};
    XsMessage write{XS_WRITE, 2, 0, str("/local/domain/17/data/key9") + "new-value"};
    XsMessage end{XS_TRANSACTION_END, 3, 0, str("T")};
    for (auto _ : state) {
        auto t = store.handle(conn, start);
        write.tx_id = end.tx_id = static_cast<std::uint32_t>(std::stoul(t[0].payload));
        store.handle(conn, write);
        auto e = store.handle(conn, end);
        if (e[0].type != XS_TRANSACTION_END) state.SkipWithError("transaction failed");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_XenStoreTransactionWrite);

// WRITE of a new child under a parent that already has range(0) children (issue 11 item 29: was
// 94 us at 20k and 430 us at 100k children when the parent's list was copied per child). A fixed
// 10000 iterations each add one more child, so the size stays within 10k of the argument.
void BM_XenStoreAddChild(benchmark::State& state) {
    StatsGroup root("");
    XenStore store(root);
    XsConnId conn = store.connect(0, true);
    const long existing = state.range(0);
    for (long i = 0; i < existing; ++i) store.write("/p/c" + std::to_string(i), "v");
    long next = existing;
    for (auto _ : state) {
        auto reply =
            store.handle(conn, XsMessage{XS_WRITE, 1, 0, str("/p/c" + std::to_string(next++)) + "v"});
        benchmark::DoNotOptimize(reply);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_XenStoreAddChild)->Arg(1000)->Arg(20000)->Arg(100000)->Iterations(10000);

// One blocking client, the server on its own thread: READ request -> reply, one at a time.
void BM_XenStoreSocketRoundTrip(benchmark::State& state) {
    StatsGroup root("");
    XenStore store(root);
    populate(store);
    std::mutex mutex;
    std::string path = "/tmp/xensim-bench-xs-" + std::to_string(::getpid());
    XenStoreSocketServer server(store, mutex, path);
    server.start_background();
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        state.SkipWithError("cannot connect");
        return;
    }
    std::string request;
    xs_serialize(XsMessage{XS_READ, 1, 0, str("/local/domain/17/data/key9")}, request);
    XsWireParser parser;
    char buf[4096];
    for (auto _ : state) {
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
            state.SkipWithError("send failed");
            break;
        }
        while (!parser.has_message()) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            parser.feed(buf, static_cast<std::size_t>(n));
        }
        if (!parser.has_message()) {
            state.SkipWithError("connection closed");
            break;
        }
        parser.pop();
    }
    ::close(fd);
    server.stop_background();
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_XenStoreSocketRoundTrip)->UseRealTime();

}  // namespace
}  // namespace xensim
