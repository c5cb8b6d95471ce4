// XenStore engine (models/xen/xenstore_store.h). Expected replies follow xen tools/xenstored
// (core.c, watch.c, transaction.c, domain.c, control.c); the function behind each is in the intent.
#include "models/xen/xenstore_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace xensim {
namespace {

// "a", "b" -> "a\0b\0": NUL-terminated arguments as on the wire.
std::string args(std::initializer_list<std::string> v) {
    std::string s;
    for (const auto& a : v) s.append(a).push_back('\0');
    return s;
}
const std::string kOK = args({"OK"});
std::string err(const char* e) { return args({e}); }

class XsTest : public ::testing::Test {
  protected:
    explicit XsTest(XsQuota q = {}) : stats("xs"), xs(stats, q) {
        dom0 = xs.connect(0, true);
        dom1 = xs.connect(1, false);
        dom2 = xs.connect(2, false);
    }
    XsMessage req(XsConnId c, std::uint32_t type, const std::string& payload, std::uint32_t tx = 0) {
        auto r = xs.handle(c, XsMessage{type, 42, tx, payload});
        EXPECT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].req_id, 42u);
        EXPECT_EQ(r[0].tx_id, tx);
        return r[0];
    }
    // The reply payload, or the error name framed as on the wire.
    std::string rq(XsConnId c, std::uint32_t type, const std::string& payload, std::uint32_t tx = 0) {
        XsMessage m = req(c, type, payload, tx);
        if (m.type != XS_ERROR) {
            EXPECT_EQ(m.type, type);
        }
        return m.payload;
    }
    std::uint32_t start(XsConnId c) {
        XsMessage m = req(c, XS_TRANSACTION_START, args({""}));
        EXPECT_EQ(m.type, static_cast<std::uint32_t>(XS_TRANSACTION_START));
        return static_cast<std::uint32_t>(std::stoul(m.payload));
    }
    std::vector<std::string> events(XsConnId c) {
        std::vector<std::string> out;
        for (auto& m : xs.take_events(c)) {
            EXPECT_EQ(m.type, static_cast<std::uint32_t>(XS_WATCH_EVENT));
            EXPECT_EQ(m.req_id, 0u);
            out.push_back(m.payload);
        }
        return out;
    }
    StatsGroup stats;
    XenStore xs;
    XsConnId dom0, dom1, dom2;
};

using Ev = std::vector<std::string>;

// ---- dispatch ----

TEST_F(XsTest, UnknownTypesAreENOSYS) {
    for (std::uint32_t t :
         {static_cast<std::uint32_t>(XS_WATCH_EVENT), static_cast<std::uint32_t>(XS_ERROR),
          static_cast<std::uint32_t>(XS_SET_TARGET), static_cast<std::uint32_t>(XS_TYPE_COUNT),
          static_cast<std::uint32_t>(XS_INVALID)}) {
        XsMessage m = req(dom0, t, args({"/"}));
        EXPECT_EQ(m.type, static_cast<std::uint32_t>(XS_ERROR)) << t;
        EXPECT_EQ(m.payload, err("ENOSYS")) << t;
    }
    EXPECT_EQ(stats.find_family("errors")->value("ENOSYS"), 5u);
    EXPECT_EQ(xs.conn_errors(dom0), 5u);
}

TEST_F(XsTest, PrivilegedOnlyOpsGiveEACCES) {  // wire_funcs XS_FLAG_PRIV
    for (std::uint32_t t : {XS_CONTROL, XS_INTRODUCE, XS_RELEASE, XS_IS_DOMAIN_INTRODUCED, XS_RESUME})
        EXPECT_EQ(rq(dom1, t, args({"1"})), err("EACCES")) << t;
}

TEST_F(XsTest, ArgumentParsing) {
    const struct {
        const char* intent;
        std::uint32_t type;
        std::string payload;
        std::string reply;
    } cases[] = {
        {"onearg: READ needs its trailing NUL", XS_READ, "/tool", err("EINVAL")},
        {"onearg: READ with two strings", XS_READ, args({"/tool", "x"}), err("EINVAL")},
        {"READ empty payload", XS_READ, "", err("EINVAL")},
        {"WRITE without any NUL", XS_WRITE, "/a", err("EINVAL")},
        {"WRITE value may hold NULs", XS_WRITE, std::string("/a\0x\0y", 6), kOK},
        {"WATCH needs exactly path|token|", XS_WATCH, args({"/a"}), err("EINVAL")},
        {"canonicalize: trailing slash", XS_READ, args({"/tool/"}), err("EINVAL")},
        {"canonicalize: double slash", XS_READ, args({"//tool"}), err("EINVAL")},
        {"canonicalize: bad character", XS_READ, args({"/to ol"}), err("EINVAL")},
        {"canonicalize: @ only where special is allowed", XS_READ, args({"@releaseDomain"}), err("EINVAL")},
        {"GET_PERMS allows special nodes", XS_GET_PERMS, args({"@releaseDomain"}), args({"n0"})},
        {"TRANSACTION_END needs T or F", XS_TRANSACTION_END, args({"X"}), err("EINVAL")},
        {"TRANSACTION_END outside a transaction", XS_TRANSACTION_END, args({"T"}), err("ENOENT")},
        {"GET_DOMAIN_PATH", XS_GET_DOMAIN_PATH, args({"7"}), args({"/local/domain/7"})},
        {"RM / refused", XS_RM, args({"/"}), err("EINVAL")},
        {"RM missing node with existing parent is fine", XS_RM, args({"/tool/none"}), kOK},
        {"RM missing node with missing parent", XS_RM, args({"/none/none"}), err("ENOENT")},
        {"unknown CONTROL command", XS_CONTROL, args({"frobnicate"}), err("EINVAL")},
        {"CONTROL print", XS_CONTROL, args({"print", "hello"}), kOK},
        {"CONTROL log on", XS_CONTROL, args({"log", "on"}), kOK},
        {"CONTROL log bogus", XS_CONTROL, args({"log", "maybe"}), err("EINVAL")},
    };
    for (const auto& tc : cases) EXPECT_EQ(rq(dom0, tc.type, tc.payload), tc.reply) << tc.intent;
    EXPECT_EQ(xs.read("/a"), std::string("x\0y", 3));
    EXPECT_EQ(xs.control_log(), std::vector<std::string>{"hello"});
    EXPECT_NE(rq(dom0, XS_CONTROL, args({"quota"})).find("nodes: 1000\n"), std::string::npos);
}

// domain.c parse_domid (strtoul base 10, the whole string, at most 65535 -> else EINVAL) and
// onearg_domain (the store's own domain, dom0 here, -> EINVAL; not introduced -> ENOENT).
TEST_F(XsTest, DomidArgumentsAreParsedStrictly) {
    const struct {
        const char* intent;
        std::uint32_t type;
        std::string payload;
        std::string reply;
    } cases[] = {
        {"RELEASE of dom0 is refused", XS_RELEASE, args({"0"}), err("EINVAL")},
        {"RELEASE of a non-number (atoi would say 0)", XS_RELEASE, args({"abc"}), err("EINVAL")},
        {"RELEASE with trailing junk", XS_RELEASE, args({"5x"}), err("EINVAL")},
        {"RELEASE of a domain never introduced", XS_RELEASE, args({"9"}), err("ENOENT")},
        {"RESUME of dom0 is refused", XS_RESUME, args({"0"}), err("EINVAL")},
        {"RESUME of a non-number", XS_RESUME, args({"x"}), err("EINVAL")},
        {"INTRODUCE beyond 65535", XS_INTRODUCE, args({"99999999999", "1", "2"}), err("EINVAL")},
        {"INTRODUCE of 65536", XS_INTRODUCE, args({"65536", "1", "2"}), err("EINVAL")},
        {"INTRODUCE of a non-number", XS_INTRODUCE, args({"d5", "1", "2"}), err("EINVAL")},
        {"GET_DOMAIN_PATH of -1 (strtoul wraps past 65535)", XS_GET_DOMAIN_PATH, args({"-1"}), err("EINVAL")},
        {"GET_DOMAIN_PATH of a non-number", XS_GET_DOMAIN_PATH, args({"abc"}), err("EINVAL")},
        {"GET_DOMAIN_PATH of 65535", XS_GET_DOMAIN_PATH, args({"65535"}), args({"/local/domain/65535"})},
        {"IS_DOMAIN_INTRODUCED of a non-number", XS_IS_DOMAIN_INTRODUCED, args({"abc"}), err("EINVAL")},
        {"IS_DOMAIN_INTRODUCED of dom0", XS_IS_DOMAIN_INTRODUCED, args({"0"}), args({"T"})},
    };
    for (const auto& tc : cases) EXPECT_EQ(rq(dom0, tc.type, tc.payload), tc.reply) << tc.intent;
    EXPECT_TRUE(xs.is_domain_introduced(0)) << "dom0 stays introduced";
    EXPECT_FALSE(xs.is_domain_introduced(static_cast<DomId>(99999999999ull)));
    EXPECT_EQ(rq(dom0, XS_INTRODUCE, args({"5", "1", "2"})), kOK);
    EXPECT_EQ(rq(dom0, XS_RESUME, args({"5"})), kOK);
    EXPECT_EQ(rq(dom0, XS_RELEASE, args({"5"})), kOK);
}

// Item 29: adding a child appends to its parent's list in place (amortised O(1)); the list is not
// copied per write as it was (22 us per write at 5k children, 430 us at 100k). The directory
// keeps xenstored's order: creation order, a removed name leaves the others in place, a re-created
// name goes to the end (core.c add_child / remove_child_entry). A transaction copies the parent
// once, at its first access (transaction.c access_node), not once per child.
TEST_F(XsTest, AddingChildrenDoesNotCopyTheParentsList) {
    constexpr int kChildren = 5000;
    for (int i = 0; i < kChildren; ++i)
        ASSERT_EQ(rq(dom0, XS_WRITE, args({"/p/c" + std::to_string(i)}).append("v")), kOK);
    EXPECT_EQ(xs.children_copied(), 0u) << "child names copied while adding " << kChildren << " children";
    ASSERT_EQ(rq(dom0, XS_RM, args({"/p/c1"})), kOK);
    ASSERT_EQ(rq(dom0, XS_WRITE, args({"/p/c1"}).append("again")), kOK);
    std::vector<std::string> dir = xs.directory("/p");
    ASSERT_EQ(dir.size(), static_cast<std::size_t>(kChildren));
    EXPECT_EQ(dir[0], "c0");
    EXPECT_EQ(dir[1], "c2");
    EXPECT_EQ(dir.back(), "c1");
    std::string listing = rq(dom0, XS_DIRECTORY_PART, args({"/p", "0"}));
    EXPECT_EQ(listing.substr(listing.find('\0') + 1, 6), args({"c0", "c2"})) << "DIRECTORY_PART agrees";
    EXPECT_EQ(xs.children_copied(), 0u);

    std::uint32_t tx = start(dom0);
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(rq(dom0, XS_WRITE, args({"/p/t" + std::to_string(i)}).append("v"), tx), kOK);
    EXPECT_EQ(xs.children_copied(), static_cast<std::uint64_t>(kChildren))
        << "one copy of /p per transaction";
    ASSERT_EQ(rq(dom0, XS_TRANSACTION_END, args({"T"}), tx), kOK);
    EXPECT_EQ(xs.directory("/p").size(), static_cast<std::size_t>(kChildren + 100));
    EXPECT_EQ(xs.directory("/p").back(), "t99");
}

TEST_F(XsTest, InitialStructure) {  // setup_structure
    EXPECT_EQ(rq(dom0, XS_DIRECTORY, args({"/"})), args({"tool"}));
    EXPECT_EQ(rq(dom0, XS_DIRECTORY, args({"/tool"})), args({"xenstored"}));
    EXPECT_EQ(rq(dom0, XS_GET_PERMS, args({"/"})), args({"n0"}));
    EXPECT_EQ(rq(dom0, XS_IS_DOMAIN_INTRODUCED, args({"0"})), args({"T"}));
}

// ---- nodes and permissions ----

TEST_F(XsTest, WriteCreatesParentsThatInheritAndCreatorOwns) {  // construct_node
    xs.write("/local/domain/1", "");
    xs.set_perms("/local/domain/1", {{1, XS_PERM_NONE}, {2, XS_PERM_READ}});
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"a/b/c"}) + "v"), kOK);  // relative to /local/domain/1
    EXPECT_EQ(xs.read("/local/domain/1/a/b/c"), "v");
    EXPECT_EQ(rq(dom1, XS_READ, args({"/local/domain/1/a/b/c"})), "v");
    EXPECT_EQ(rq(dom1, XS_GET_PERMS, args({"a/b"})), args({"n1", "r2"}));
    EXPECT_EQ(rq(dom1, XS_DIRECTORY, args({"a"})), args({"b"}));
    // dom0 creating under a domU's node keeps the inherited owner.
    EXPECT_EQ(rq(dom0, XS_MKDIR, args({"/local/domain/1/z"})), kOK);
    EXPECT_EQ(rq(dom0, XS_GET_PERMS, args({"/local/domain/1/z"})), args({"n1", "r2"}));
    EXPECT_EQ(xs.nodes_owned(1), 5u);  // /local/domain/1 (set_perms) + a, a/b, a/b/c + z
    EXPECT_EQ(rq(dom1, XS_RM, args({"a"})), kOK);
    EXPECT_EQ(xs.read("/local/domain/1/a/b"), std::nullopt);
    EXPECT_EQ(xs.nodes_owned(1), 2u);
    EXPECT_EQ(rq(dom1, XS_READ, args({"a"})), err("ENOENT"));
}

// perm_for_conn: the owner has everything; others get their own entry, else the first entry's bits.
TEST_F(XsTest, PermissionMatrix) {
    struct Case {
        const char* who;  // "owner" or "other"
        unsigned perm;
        const char* read;
        const char* write;
        const char* rm;
        const char* get_perms;
        const char* set_perms;
    };
    const Case cases[] = {
        {"owner", XS_PERM_NONE, "v", "OK", "OK", "OK", "OK"},
        {"owner", XS_PERM_READ, "v", "OK", "OK", "OK", "OK"},
        {"owner", XS_PERM_WRITE, "v", "OK", "OK", "OK", "OK"},
        {"owner", XS_PERM_READ | XS_PERM_WRITE, "v", "OK", "OK", "OK", "OK"},
        {"other", XS_PERM_NONE, "EACCES", "EACCES", "EACCES", "EACCES", "EACCES"},
        {"other", XS_PERM_READ, "v", "EACCES", "EACCES", "OK", "EACCES"},
        {"other", XS_PERM_WRITE, "EACCES", "OK", "OK", "EACCES", "EACCES"},
        {"other", XS_PERM_READ | XS_PERM_WRITE, "v", "OK", "OK", "OK", "EACCES"},
    };
    auto expect = [](const char* e, const std::string& got, const std::string& ok_payload,
                     const std::string& ctx) {
        if (std::string(e) == "OK")
            EXPECT_EQ(got, ok_payload) << ctx;
        else if (std::string(e) == "v")
            EXPECT_EQ(got, "v") << ctx;
        else
            EXPECT_EQ(got, err(e)) << ctx;
    };
    for (const auto& tc : cases) {
        // Parent /p owned by dom1 and writable by dom2, so only the node's own permissions decide.
        xs.rm("/p");
        xs.write("/p/n", "v");
        xs.set_perms("/p", {{1, XS_PERM_NONE}, {2, XS_PERM_READ | XS_PERM_WRITE}});
        const std::string ctx = std::string(tc.who) + " perm " + std::to_string(tc.perm);
        // Per-domain entry for dom2 as "other"; dom1 owns the node; the default denies.
        xs.set_perms("/p/n", {{1, XS_PERM_NONE}, {2, tc.perm}});
        if (std::string(tc.who) == "owner") xs.set_perms("/p/n", {{1, tc.perm}});
        XsConnId c = std::string(tc.who) == "owner" ? dom1 : dom2;
        std::string perms_now;
        const std::vector<XsPerm> cur = *xs.get_perms("/p/n");
        for (const auto& p : cur) perms_now += xs_perm_to_string(p) + '\0';
        expect(tc.read, rq(c, XS_READ, args({"/p/n"})), "", ctx + " read");
        expect(tc.get_perms, rq(c, XS_GET_PERMS, args({"/p/n"})), perms_now, ctx + " get_perms");
        expect(tc.set_perms, rq(c, XS_SET_PERMS, args({"/p/n", "n1", "r2"})), kOK, ctx + " set_perms");
        expect(tc.write, rq(c, XS_WRITE, args({"/p/n"}) + "v"), kOK, ctx + " write");
        expect(tc.rm, rq(c, XS_RM, args({"/p/n"})), kOK, ctx + " rm");
    }
}

TEST_F(XsTest, HiddenNodesReportEACCESNotENOENT) {  // errno_from_parents
    xs.write("/secret/x", "1");                     // n0: nobody but dom0
    EXPECT_EQ(rq(dom1, XS_READ, args({"/secret/missing"})), err("EACCES"));
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"/secret/new"}) + "v"), err("EACCES"));
    xs.set_perms("/secret", {{0, XS_PERM_READ}});
    EXPECT_EQ(rq(dom1, XS_READ, args({"/secret/missing"})), err("ENOENT"));
}

TEST_F(XsTest, SetPermsRules) {  // do_set_perms
    xs.write("/local/domain/1/x", "");
    xs.set_perms("/local/domain/1/x", {{1, XS_PERM_NONE}});
    EXPECT_EQ(rq(dom1, XS_SET_PERMS, args({"/local/domain/1/x", "b2"})), err("EPERM"));  // owner change
    EXPECT_EQ(rq(dom1, XS_SET_PERMS, args({"/local/domain/1/x", "q1"})), err("EINVAL"));
    EXPECT_EQ(rq(dom1, XS_SET_PERMS, args({"/local/domain/1/x"})), err("EINVAL"));
    EXPECT_EQ(rq(dom1, XS_SET_PERMS, args({"/local/domain/1/x", "n1", "r2", "r3", "r4", "r5", "r6"})),
              err("ENOSPC"));                                                   // ACC_NPERM = 5
    EXPECT_EQ(rq(dom0, XS_SET_PERMS, args({"/local/domain/1/x", "b2"})), kOK);  // dom0 may
    EXPECT_EQ(xs.nodes_owned(2), 1u);
}

TEST_F(XsTest, DirectoryPart) {  // send_directory_part
    xs.mkdir("/d");
    for (const char* n : {"aa", "b", "ccc"}) xs.mkdir(std::string("/d/") + n);
    const std::string gen = std::to_string(xs.generation("/d"));
    EXPECT_EQ(rq(dom0, XS_DIRECTORY_PART, args({"/d", "0"})), args({gen, "aa", "b", "ccc", ""}));
    EXPECT_EQ(rq(dom0, XS_DIRECTORY_PART, args({"/d", "3"})), args({gen, "b", "ccc", ""}));
    EXPECT_EQ(rq(dom0, XS_DIRECTORY_PART, args({"/d", "9"})), args({gen, ""}));
    EXPECT_EQ(rq(dom0, XS_DIRECTORY_PART, args({"/d"})), err("EINVAL"));
    // A long list is cut before XENSTORE_PAYLOAD_MAX, without the closing empty string.
    for (int i = 0; i < 300; ++i) xs.mkdir("/big/child-with-a-long-name-" + std::to_string(i));
    EXPECT_EQ(rq(dom0, XS_DIRECTORY, args({"/big"})), err("E2BIG"));  // send_reply
    std::string part = rq(dom0, XS_DIRECTORY_PART, args({"/big", "0"}));
    EXPECT_LE(part.size(), static_cast<std::size_t>(XENSTORE_PAYLOAD_MAX));
    EXPECT_NE(part.substr(part.size() - 2), std::string(2, '\0'));
}

// ---- transactions ----

TEST_F(XsTest, TransactionConflicts) {
    // {intent, steps}. Each step: conn (1 or 2), op, path, value; "T1"/"T2" start, "C1"/"A1" end.
    struct Step {
        int who;
        const char* op;
        const char* path;
        const char* expect;
    };
    struct Case {
        const char* intent;
        std::vector<Step> steps;
        const char* final_value;  // of /t/n after all
    };
    const Case cases[] = {
        {"two transactions write the same node: second commit EAGAIN",
         {{1, "start", "", ""},
          {2, "start", "", ""},
          {1, "write", "/t/n", "OK"},
          {2, "write", "/t/n", "OK"},
          {1, "commit", "", "OK"},
          {2, "commit", "", "EAGAIN"}},
         "1"},
        {"read-modify-write: a plain write after our read makes commit EAGAIN",
         {{1, "start", "", ""},
          {1, "read", "/t/n", "0"},
          {2, "write", "/t/n", "OK"},
          {1, "write", "/t/n", "OK"},
          {1, "commit", "", "EAGAIN"}},
         "2"},
        {"reads see the transaction's own writes, others do not until commit",
         {{1, "start", "", ""},
          {1, "write", "/t/n", "OK"},
          {1, "read", "/t/n", "1"},
          {2, "read", "/t/n", "0"},
          {1, "commit", "", "OK"},
          {2, "read", "/t/n", "1"}},
         "1"},
        {"abort discards; a commit after the abort is ENOENT",
         {{1, "start", "", ""},
          {1, "write", "/t/n", "OK"},
          {1, "abort", "", "OK"},
          {1, "commit", "", "ENOENT"}},
         "0"},
        {"disjoint nodes both commit",
         {{1, "start", "", ""},
          {2, "start", "", ""},
          {1, "write", "/t/n", "OK"},
          {2, "write", "/t/m", "OK"},
          {1, "commit", "", "OK"},
          {2, "commit", "", "OK"}},
         "1"},
        {"node created by someone else after our ENOENT read: EAGAIN",
         {{1, "start", "", ""},
          {1, "read", "/t/new", "ENOENT"},
          {2, "write", "/t/new", "OK"},
          {1, "write", "/t/n", "OK"},
          {1, "commit", "", "EAGAIN"}},
         "0"},
        {"rm inside a transaction is invisible outside until commit",
         {{1, "start", "", ""},
          {1, "rm", "/t/n", "OK"},
          {2, "read", "/t/n", "0"},
          {1, "commit", "", "OK"},
          {2, "read", "/t/n", "ENOENT"}},
         nullptr},
    };
    for (const auto& tc : cases) {
        xs.rm("/t");
        xs.write("/t/n", "0");
        xs.write("/t/m", "0");
        std::uint32_t tx[3] = {0, 0, 0};
        const XsConnId conn[3] = {0, dom0, xs.connect(0, true)};
        for (const auto& s : tc.steps) {
            const std::string op = s.op;
            XsConnId c = conn[s.who];
            std::string e = s.expect;
            std::string want = e == "OK" ? kOK : (e.size() > 1 && e[0] == 'E') ? err(s.expect) : e;
            if (op == "start") {
                tx[s.who] = start(c);
            } else if (op == "commit" || op == "abort") {
                EXPECT_EQ(rq(c, XS_TRANSACTION_END, args({op == "commit" ? "T" : "F"}), tx[s.who]), want)
                    << tc.intent;
            } else if (op == "write") {
                EXPECT_EQ(rq(c, XS_WRITE, args({s.path}) + std::to_string(s.who), tx[s.who]), want)
                    << tc.intent;
            } else if (op == "read") {
                EXPECT_EQ(rq(c, XS_READ, args({s.path}), tx[s.who]), want) << tc.intent;
            } else if (op == "rm") {
                EXPECT_EQ(rq(c, XS_RM, args({s.path}), tx[s.who]), want) << tc.intent;
            }
        }
        EXPECT_EQ(xs.read("/t/n"), tc.final_value ? std::optional<std::string>(tc.final_value) : std::nullopt)
            << tc.intent;
    }
    EXPECT_EQ(stats.find_counter("transactions_eagain")->value(), 3u);
    EXPECT_EQ(stats.find_counter("transactions_committed")->value(), 5u);
}

TEST_F(XsTest, TransactionIdRules) {  // transaction_lookup, do_transaction_start
    EXPECT_EQ(rq(dom1, XS_READ, args({"/tool"}), 77), err("ENOENT"));  // unknown tx_id
    std::uint32_t t = start(dom1);
    EXPECT_NE(t, 0u);
    EXPECT_EQ(rq(dom1, XS_TRANSACTION_START, args({""}), t), err("EBUSY"));  // nested
    EXPECT_EQ(rq(dom2, XS_READ, args({"/tool"}), t), err("ENOENT"));         // another connection's id
    xs.disconnect(dom1);
    EXPECT_FALSE(xs.connected(dom1));
}

// ---- watches ----

TEST_F(XsTest, WatchFiringRules) {
    XsConnId w = dom0;
    EXPECT_EQ(rq(w, XS_WATCH, args({"/a/b", "tok"})), kOK);
    EXPECT_EQ(events(w), Ev{args({"/a/b", "tok"})}) << "a new watch fires once at once";
    EXPECT_EQ(rq(w, XS_WATCH, args({"/a/b", "tok"})), err("EEXIST"));
    EXPECT_EQ(rq(w, XS_WATCH, args({"/a/b", "tok2"})), kOK);
    events(w);

    xs.write("/a/b/c", "1");
    EXPECT_EQ(events(w), (Ev{args({"/a/b/c", "tok"}), args({"/a/b/c", "tok2"})})) << "subtree, each token";
    xs.write("/a/x", "1");
    EXPECT_EQ(events(w), Ev{}) << "sibling outside the watched subtree";
    xs.write("/a/b", "1");
    xs.write("/a/b", "2");
    EXPECT_EQ(events(w), (Ev{args({"/a/b", "tok"}), args({"/a/b", "tok2"})})) << "identical pending dropped";

    EXPECT_EQ(rq(w, XS_UNWATCH, args({"/a/b", "tok2"})), kOK);
    EXPECT_EQ(rq(w, XS_UNWATCH, args({"/a/b", "tok2"})), err("ENOENT"));
    xs.rm("/a");
    EXPECT_EQ(events(w), Ev{args({"/a/b", "tok"})})
        << "removing an ancestor fires with the watched path; descendants fire only exact watches";

    std::uint32_t t = start(w);
    EXPECT_EQ(rq(w, XS_WRITE, args({"/a/b"}) + "v", t), kOK);
    EXPECT_EQ(events(w), Ev{}) << "nothing before commit";
    EXPECT_EQ(rq(w, XS_TRANSACTION_END, args({"T"}), t), kOK);
    EXPECT_EQ(events(w), Ev{args({"/a/b", "tok"})}) << "fires at commit";
    t = start(w);
    EXPECT_EQ(rq(w, XS_WRITE, args({"/a/b"}) + "w", t), kOK);
    EXPECT_EQ(rq(w, XS_TRANSACTION_END, args({"F"}), t), kOK);
    EXPECT_EQ(events(w), Ev{}) << "aborted transaction fires nothing";
}

TEST_F(XsTest, WatchesRespectReadPermission) {  // watch_permitted
    xs.write("/local/domain/1/x", "");
    xs.set_perms("/local/domain/1", {{1, XS_PERM_NONE}});
    xs.set_perms("/local/domain/1/x", {{1, XS_PERM_NONE}});
    EXPECT_EQ(rq(dom2, XS_WATCH, args({"/local/domain/1/x", "t"})), kOK);
    events(dom2);
    xs.write("/local/domain/1/x", "1");
    EXPECT_EQ(events(dom2), Ev{}) << "dom2 may read neither the node nor its parent";
    xs.set_perms("/local/domain/1/x", {{1, XS_PERM_NONE}, {2, XS_PERM_READ}});
    EXPECT_EQ(events(dom2), Ev{args({"/local/domain/1/x", "t"})});
}

TEST_F(XsTest, RelativeWatchReportsRelativePaths) {
    xs.write("/local/domain/1", "");
    xs.set_perms("/local/domain/1", {{1, XS_PERM_NONE}});
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"device", "d"})), kOK);
    EXPECT_EQ(events(dom1), Ev{args({"device", "d"})});
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"device/vbd"}) + "x"), kOK);
    EXPECT_EQ(events(dom1), Ev{args({"device/vbd", "d"})});
    EXPECT_EQ(rq(dom1, XS_UNWATCH, args({"device", "d"})), kOK);
}

TEST_F(XsTest, SpecialWatches) {
    EXPECT_EQ(rq(dom0, XS_WATCH, args({"@introduceDomain", "i"})), kOK);
    EXPECT_EQ(rq(dom0, XS_WATCH, args({"@releaseDomain", "r"})), kOK);
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"@releaseDomain", "r"})), kOK);
    events(dom0);
    events(dom1);
    EXPECT_EQ(rq(dom0, XS_INTRODUCE, args({"5", "1234", "7"})), kOK);
    EXPECT_EQ(events(dom0), Ev{args({"@introduceDomain", "i"})});
    EXPECT_EQ(rq(dom0, XS_IS_DOMAIN_INTRODUCED, args({"5"})), args({"T"}));
    EXPECT_EQ(rq(dom0, XS_RELEASE, args({"5"})), kOK);
    EXPECT_EQ(events(dom0), Ev{args({"@releaseDomain", "r"})});
    EXPECT_EQ(events(dom1), Ev{}) << "@releaseDomain is n0: unprivileged watchers need a permission";
    xs.set_perms("@releaseDomain", {{0, XS_PERM_READ}});
    EXPECT_EQ(events(dom1), Ev{args({"@releaseDomain", "r"})}) << "do_set_perms fires on the node too";
    events(dom0);
    xs.introduce_domain(6);
    xs.release_domain(6);
    EXPECT_EQ(events(dom1), Ev{args({"@releaseDomain", "r"})});
    EXPECT_EQ(rq(dom0, XS_RELEASE, args({"6"})), err("ENOENT"));
    EXPECT_EQ(rq(dom0, XS_IS_DOMAIN_INTRODUCED, args({"6"})), args({"F"}));
}

TEST_F(XsTest, ResetWatchesDropsWatchesAndTransactions) {
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"/tool", "t"})), kOK);
    start(dom1);
    EXPECT_EQ(rq(dom1, XS_RESET_WATCHES, ""), kOK);
    EXPECT_EQ(xs.watch_count(dom1), 0u);
    EXPECT_EQ(xs.transaction_count(dom1), 0u);
}

// ---- quotas (small) ----

class XsQuotaTest : public XsTest {
  protected:
    XsQuotaTest() : XsTest(XsQuota{4, 2, 1, 100, 20, 5}) {
        xs.write("/local/domain/1", "");
        xs.set_perms("/local/domain/1", {{1, XS_PERM_NONE}});  // dom1 owns 1 node
    }
};

TEST_F(XsQuotaTest, NodesPerDomain) {  // create_node: domain_nbentry >= quota -> ENOSPC
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"a/b"}) + "v"), kOK);  // 3 owned
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"c/d"}) + "v"), err("ENOSPC")) << "would be 5 > 4, nothing created";
    EXPECT_EQ(xs.read("/local/domain/1/c"), std::nullopt);
    EXPECT_EQ(rq(dom1, XS_MKDIR, args({"c"})), kOK);  // 4
    EXPECT_EQ(rq(dom1, XS_MKDIR, args({"e"})), err("ENOSPC"));
    EXPECT_EQ(rq(dom0, XS_MKDIR, args({"/local/domain/1/e"})), kOK) << "quotas bind only unprivileged";
}

TEST_F(XsQuotaTest, NodeSizeAndPathLength) {
    // calc_node_acc_size = 16 + 8 * perms + value: 16 + 8 + 76 = 100 fits, 77 does not.
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"v"}) + std::string(76, 'x')), kOK);
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"v"}) + std::string(77, 'x')), err("ENOSPC"));
    EXPECT_EQ(xs.read("/local/domain/1/v")->size(), 76u);
    // path-max counts after "/local/domain/1/": 20 ok, 21 not.
    EXPECT_EQ(rq(dom1, XS_MKDIR, args({std::string(20, 'p')})), kOK);
    EXPECT_EQ(rq(dom1, XS_MKDIR, args({std::string(21, 'p')})), err("EINVAL"));
}

TEST_F(XsQuotaTest, WatchesAndTransactionsKeepXenstoredsOffByOne) {  // "count > quota"
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"/a", "1"})), kOK);
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"/a", "2"})), kOK);
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"/a", "3"})), kOK);
    EXPECT_EQ(rq(dom1, XS_WATCH, args({"/a", "4"})), err("E2BIG"));
    start(dom1);
    start(dom1);
    EXPECT_EQ(rq(dom1, XS_TRANSACTION_START, args({""})), err("ENOSPC"));
    EXPECT_EQ(xs.transaction_count(dom1), 2u);
}

// transaction.c access_node: each read of a missing path in a transaction adds a node to the
// transaction (ACC_TRANSNODES, default 1024); beyond it the read fails with ENOSPC, the
// transaction is failed, and its commit answers ENOMEM (do_transaction_end, trans->fail).
TEST_F(XsTest, TransactionAccessListIsBoundedByTransactionNodes) {
    const unsigned quota = xs.quota().transaction_nodes;
    ASSERT_EQ(quota, 1024u);
    std::uint32_t t = start(dom1);
    // dom1 may not read "/", so a missing path is EACCES to it (errno_from_parents), until the quota.
    unsigned denied = 0, enospc = 0;
    for (unsigned i = 0; i < 3 * quota; ++i) {
        std::string r = rq(dom1, XS_READ, args({"/missing/n" + std::to_string(i)}), t);
        if (r == err("EACCES")) ++denied;
        if (r == err("ENOSPC")) ++enospc;
        ASSERT_LE(xs.transaction_nodes(dom1, t), quota) << "read " << i;
    }
    EXPECT_EQ(xs.transaction_nodes(dom1, t), quota);
    // Each early read takes its own node; "/missing" and "/" (errno_from_parents) take two more.
    EXPECT_EQ(denied, quota - 2);
    EXPECT_EQ(enospc, 3 * quota - denied);
    EXPECT_EQ(rq(dom1, XS_READ, args({"/missing/n0"}), t), err("EACCES"))
        << "nodes it holds answer as before";
    EXPECT_EQ(rq(dom1, XS_TRANSACTION_END, args({"T"}), t), err("ENOMEM"));
    EXPECT_EQ(xs.transaction_count(dom1), 0u);
    // A write beyond the quota fails the same way and leaves the store untouched.
    t = start(dom1);
    for (unsigned i = 0; i < quota; ++i) rq(dom1, XS_READ, args({"/missing/n" + std::to_string(i)}), t);
    EXPECT_EQ(rq(dom1, XS_WRITE, args({"/local/domain/1/w"}) + "v", t), err("ENOSPC"));
    EXPECT_EQ(rq(dom1, XS_TRANSACTION_END, args({"T"}), t), err("ENOMEM"));
    EXPECT_EQ(xs.read("/local/domain/1/w"), std::nullopt);
    // Quotas bind only unprivileged connections (domain_max_chk).
    t = start(dom0);
    for (unsigned i = 0; i < 2 * quota; ++i)
        ASSERT_EQ(rq(dom0, XS_READ, args({"/missing/n" + std::to_string(i)}), t), err("ENOENT"));
    EXPECT_EQ(rq(dom0, XS_TRANSACTION_END, args({"T"}), t), kOK);
}

TEST_F(XsTest, StatsByOpName) {
    rq(dom0, XS_READ, args({"/tool"}));
    rq(dom0, XS_READ, args({"/nope"}));
    EXPECT_EQ(stats.find_family("ops")->value("XS_READ"), 2u);
    EXPECT_EQ(stats.find_family("errors")->value("ENOENT"), 1u);
}

}  // namespace
}  // namespace xensim
