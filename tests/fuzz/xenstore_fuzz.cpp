// libFuzzer target: arbitrary bytes through the XenStore wire parser into the engine.
//
// The first byte picks the connection for the rest of the input: even -> dom0 (privileged, as the
// tools' socket), odd -> domain 1 (unprivileged, as a guest's ring). Every complete message is
// handled on that connection; a fresh byte after each message switches connections again, so one
// input mixes privileged and unprivileged requests against one store (transactions, watches and
// permissions set by one side are exercised by the other). Watch events are drained after every
// request on both connections. A framing error ends the input, as it ends the connection.
// The engine must never crash, leak, or break its invariants (asserted by ASan/UBSan and the checks
// below); every request gets exactly one reply of its own type or XS_ERROR, echoing req_id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "models/xen/xenstore_store.h"
#include "models/xen/xenstore_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace xensim;
    if (size == 0) return 0;
    StatsGroup root("");
    XenStore store(root);
    store.introduce_domain(1);
    store.write("/local/domain/1/name", "guest");
    store.set_perms("/local/domain/1", {{0, XS_PERM_NONE}, {1, XS_PERM_READ}});
    const XsConnId conns[2] = {store.connect(0, true), store.connect(1, false)};
    XsWireParser parser;
    unsigned which = data[0] & 1u;
    for (std::size_t i = 1; i < size; ++i) {
        if (!parser.feed(&data[i], 1)) break;
        if (!parser.has_message()) continue;
        XsMessage req = parser.pop();
        std::vector<XsMessage> replies = store.handle(conns[which], req);
        if (replies.size() != 1 || replies[0].req_id != req.req_id ||
            (replies[0].type != req.type && replies[0].type != XS_ERROR) ||
            replies[0].payload.size() > XENSTORE_PAYLOAD_MAX)
            std::abort();
        for (XsConnId c : conns) store.take_events(c);
        // The byte after a message (if any) picks the next connection.
        if (i + 1 < size) which = data[++i] & 1u;
    }
    return 0;
}
