// The XenStore engine's watch index (models/xen/xenstore_store.h, watch_index_): a change looks up
// the watches on its path and its ancestors instead of walking every connection's watches, and must
// fire exactly the events watch.c fire_watches would. The oracle here is that walk itself: every
// live watch of every connection, in connection then registration order, matched with watch.c
// is_child (or equality for the "exact" firings of delnode_sub and the @special names), each event
// dropped when an identical one is pending on that connection (core.c send_event).
#include "models/xen/xenstore_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace xensim {
namespace {

std::string args(std::initializer_list<std::string> v) {
    std::string s;
    for (const auto& a : v) s.append(a).push_back('\0');
    return s;
}

// watch.c is_child: equal, or below; everything is below "/".
bool is_child(const std::string& child, const std::string& parent) {
    if (parent == "/") return true;
    if (child.compare(0, parent.size(), parent) != 0) return false;
    return child.size() == parent.size() || child[parent.size()] == '/';
}

struct OracleWatch {
    std::string node;  // canonical
    std::string token;
    std::size_t prefix_len;
    bool live = true;
};

class XsWatchIndexTest : public ::testing::Test {
  protected:
    XsWatchIndexTest() : stats("xs"), xs(stats) {}

    // Privileged connections, so that watch_permitted never filters and every match must fire.
    XsConnId connect(DomId d) {
        XsConnId c = xs.connect(d, true);
        oracle[c];
        domid[c] = d;
        return c;
    }
    std::string rq(XsConnId c, std::uint32_t type, const std::string& payload) {
        auto r = xs.handle(c, XsMessage{type, 1, 0, payload});
        EXPECT_EQ(r.size(), 1u);
        return r.empty() ? std::string() : r[0].payload;
    }
    void watch(XsConnId c, const std::string& path, const std::string& token) {
        ASSERT_EQ(rq(c, XS_WATCH, args({path, token})), args({"OK"})) << path << " " << token;
        bool relative = path[0] != '/' && path[0] != '@';
        std::string prefix = XenStore::domain_path(domid[c]) + "/";
        oracle[c].push_back({relative ? prefix + path : path, token, relative ? prefix.size() : 0});
        drain();  // the event do_watch fires up front
    }
    void unwatch(XsConnId c, std::size_t i) {
        OracleWatch& w = oracle[c][i];
        std::string path = w.prefix_len ? w.node.substr(w.prefix_len) : w.node;
        ASSERT_EQ(rq(c, XS_UNWATCH, args({path, w.token})), args({"OK"}));
        w.live = false;
    }
    // The events the full walk would queue for the firings (name, exact), in order.
    std::map<XsConnId, std::vector<std::string>> expect(
        const std::vector<std::pair<std::string, bool>>& firings) const {
        std::map<XsConnId, std::vector<std::string>> out;
        for (const auto& [name, exact] : firings)
            for (const auto& [c, ws] : oracle)
                for (const OracleWatch& w : ws) {
                    if (!w.live || !(exact ? name == w.node : is_child(name, w.node))) continue;
                    std::string ev = args({name.substr(w.prefix_len), w.token});
                    auto& q = out[c];
                    bool dup = name[0] != '@' && std::find(q.begin(), q.end(), ev) != q.end();
                    if (!dup) q.push_back(ev);
                }
        return out;
    }
    std::map<XsConnId, std::vector<std::string>> drain() {
        std::map<XsConnId, std::vector<std::string>> out;
        std::vector<XsConnId> ready(xs.connections_with_events().begin(), xs.connections_with_events().end());
        for (XsConnId c : ready)
            for (const XsMessage& m : xs.take_events(c)) out[c].push_back(m.payload);
        EXPECT_TRUE(xs.connections_with_events().empty());
        return out;
    }

    StatsGroup stats;
    XenStore xs;
    std::map<XsConnId, std::vector<OracleWatch>> oracle;
    std::map<XsConnId, DomId> domid;
};

// Many connections with many overlapping watches (the same path twice with other tokens, the same
// token on a path and its ancestor, look-alike prefixes "/ab" and "/a/bc", relative watches,
// @special names, "/"), some removed again; writes, a recursive rm and a SET_PERMS of a special
// node each fire exactly what the full walk fires, in its order.
TEST_F(XsWatchIndexTest, EveryFiringMatchesTheFullWalk) {
    const std::vector<std::string> paths = {"/",
                                            "/a",
                                            "/a/b",
                                            "/a/b/c",
                                            "/ab",
                                            "/a/bc",
                                            "/x/y",
                                            "dev",
                                            "dev/1",
                                            "@introduceDomain",
                                            "@releaseDomain",
                                            "/local/domain/3"};
    std::vector<XsConnId> conns;
    for (DomId d = 1; d <= 12; ++d) conns.push_back(connect(d));
    for (std::size_t i = 0; i < conns.size(); ++i)
        for (std::size_t j = 0; j < paths.size(); ++j)
            if ((i * 7 + j * 3) % 4 != 0) {
                watch(conns[i], paths[j], "t" + std::to_string((i + j) % 3));
                if (j % 5 == i % 5) watch(conns[i], paths[j], "u");  // a second token on the path
            }
    for (std::size_t i = 0; i < conns.size(); ++i)  // every third watch removed, in any order
        for (std::size_t k = i % 3; k < oracle[conns[i]].size(); k += 3) unwatch(conns[i], k);
    drain();

    struct Op {
        std::uint32_t type;
        std::string payload;
        std::vector<std::pair<std::string, bool>> firings;  // what the engine fires, per xenstored
    };
    const std::vector<Op> ops = {
        {XS_WRITE, args({"/a/b/c/d"}) + "v", {{"/a/b/c/d", false}}},  // do_write: the node only
        {XS_WRITE, args({"/ab/c"}) + "v", {{"/ab/c", false}}},
        {XS_WRITE, args({"/a/bc"}) + "v", {{"/a/bc", false}}},
        {XS_MKDIR, args({"/x/y/z"}), {{"/x/y/z", false}}},
        {XS_WRITE, args({"/local/domain/3/dev/1"}) + "v", {{"/local/domain/3/dev/1", false}}},
        {XS_WRITE, args({"/local/domain/4/dev"}) + "v", {{"/local/domain/4/dev", false}}},
        // rm_node + delnode_sub: descendants post-order, "exact"; the root as a normal change.
        {XS_RM, args({"/a/b"}), {{"/a/b/c/d", true}, {"/a/b/c", true}, {"/a/b", false}}},
        {XS_SET_PERMS, args({"@releaseDomain", "n0"}), {{"@releaseDomain", false}}},
    };
    for (const Op& op : ops) {
        // The nodes exist first where the op needs them (the set-up fires too; drained unchecked).
        if (op.type == XS_RM) {
            rq(conns[0], XS_WRITE, args({"/a/b/c/d"}) + "v");
            drain();
        }
        auto want = expect(op.firings);
        for (auto it = want.begin(); it != want.end();)
            it = it->second.empty() ? want.erase(it) : std::next(it);
        ASSERT_EQ(rq(conns[0], op.type, op.payload), args({"OK"})) << op.payload;
        EXPECT_EQ(drain(), want) << op.payload;
        EXPECT_FALSE(want.empty()) << op.payload;  // the case exercises some watch
    }
}

// @introduceDomain / @releaseDomain fire only watches set exactly on them ("/" does not see them).
TEST_F(XsWatchIndexTest, SpecialNamesFireOnlyTheirOwnWatches) {
    XsConnId a = connect(1), b = connect(2);
    watch(a, "/", "root");
    watch(b, "@introduceDomain", "in");
    watch(b, "@releaseDomain", "out");
    xs.introduce_domain(7);
    xs.release_domain(7);
    std::map<XsConnId, std::vector<std::string>> want = {
        {b, {args({"@introduceDomain", "in"}), args({"@releaseDomain", "out"})}}};
    EXPECT_EQ(drain(), want);
}

// Removing watches (UNWATCH, RESET_WATCHES, disconnect) removes them from the index: nothing fires
// for them afterwards, a removed (path, token) may be watched again, a live one is still EEXIST.
TEST_F(XsWatchIndexTest, RemovedWatchesNeverFire) {
    XsConnId a = connect(1), b = connect(2), c = connect(3);
    watch(a, "/p", "k");
    watch(a, "/p/q", "k2");
    watch(b, "/p", "k");
    watch(c, "/p", "k");
    EXPECT_EQ(rq(a, XS_WATCH, args({"/p", "k"})), args({"EEXIST"}));
    unwatch(a, 0);
    EXPECT_EQ(rq(a, XS_UNWATCH, args({"/p", "k"})), args({"ENOENT"}));
    ASSERT_EQ(rq(b, XS_RESET_WATCHES, ""), args({"OK"}));
    xs.disconnect(c);
    rq(a, XS_WRITE, args({"/p/q"}) + "v");
    std::map<XsConnId, std::vector<std::string>> want = {{a, {args({"/p/q", "k2"})}}};
    EXPECT_EQ(drain(), want);
    EXPECT_EQ(xs.watch_count(a), 1u);
    EXPECT_EQ(xs.watch_count(b), 0u);
    watch(a, "/p", "k");  // again, after the unwatch
    watch(b, "/p", "k");  // again, after the reset
    rq(a, XS_WRITE, args({"/p"}) + "w");
    want = {{a, {args({"/p", "k"})}}, {b, {args({"/p", "k"})}}};
    EXPECT_EQ(drain(), want);
}

// connections_with_events() lists exactly the connections with queued events, in id order.
TEST_F(XsWatchIndexTest, ConnectionsWithEventsTracksTheQueues) {
    XsConnId a = connect(1), b = connect(2), c = connect(3);
    (void)b;
    watch(a, "/n", "t");
    watch(c, "/n", "t");
    EXPECT_TRUE(xs.connections_with_events().empty());
    rq(b, XS_WRITE, args({"/n"}) + "v");
    EXPECT_EQ(xs.connections_with_events(), (std::set<XsConnId>{a, c}));
    xs.take_events(c);
    EXPECT_EQ(xs.connections_with_events(), (std::set<XsConnId>{a}));
    xs.disconnect(a);
    EXPECT_TRUE(xs.connections_with_events().empty());
}

}  // namespace
}  // namespace xensim
