// The XenStore engine: xenstored's node tree, permissions, transactions, watches and quotas, with
// the request dispatch of the wire protocol. Pure C++: no SystemC, no I/O, no time.
//
// What is modelled. XenStore is a tree of nodes named by /-separated paths; each node has a value
// (bytes), an ordered list of children and a permission list. The first permission entry names the
// owner and gives the access of every domain not listed; later entries give per-domain access
// ("r0", "w1", "b2", "n3" on the wire: read, write, both, none). Clients speak the protocol of
// docs/misc/xenstore.txt over a connection: a domain's shared ring or a socket of dom0's tools.
// handle() takes one request and returns its reply; WATCH_EVENTs it causes are queued on the
// watching connections (any of them, including the caller) and fetched with take_events(), so the
// SystemC wrapper can cost and interleave them as it likes.
//
// Source followed: Xen tools/xenstored (the C daemon, 4.18/4.19 tree), by function:
//   core.c     process_message + wire_funcs (one table row per type, XS_FLAG_PRIV -> EACCES,
//              XS_FLAG_NOTID -> tx_id ignored, unknown type -> ENOSYS, transaction_lookup ->
//              ENOENT), send_error (errno -> name via xsd_errors[], untranslatable -> EINVAL),
//              send_reply (reply > XENSTORE_PAYLOAD_MAX -> E2BIG), onearg / get_strings /
//              xenstore_count_strings (argument splitting), canonicalize (valid_chars, relative
//              paths against /local/domain/<domid>, no "//" nor trailing "/", '@' only where special
//              names are allowed, path-length quota measured after "/local/domain/<id>/"),
//              perm_for_conn, get_node_chk_perm + errno_from_parents (a failure on a node the caller
//              may not see through its nearest existing ancestor is reported as EACCES),
//              construct_node / create_node (implicit parents; new nodes copy the parent's
//              permissions and an unprivileged creator becomes owner; per-node ENOSPC quota),
//              do_read, do_write, do_mkdir, do_rm + rm_node + delnode_sub (recursive, post-order,
//              descendants fire "exact" watches, RM "/" -> EINVAL, RM of a missing node is OK if
//              its parent exists), send_directory, send_directory_part (byte offset into the
//              children list, "<gen>\0" prefix, a closing empty string at the end of the list),
//              do_get_perms, do_set_perms (unprivileged may not change the owner -> EPERM, at most
//              5 entries -> ENOSPC, owner-only), setup_structure (initial /, /tool,
//              /tool/xenstored, @releaseDomain, @introduceDomain, all "n0"), write_node_raw
//              (node-size quota on calc_node_acc_size).
//   watch.c    do_watch (exactly 2 strings, EEXIST on a duplicate (path, token), E2BIG over the
//              watch quota, fires once at once), do_unwatch (ENOENT if absent), fire_watches +
//              is_child + watch_permitted (node or its parent readable, old permissions count),
//              relative watches report relative paths (prefix_len).
//   transaction.c  do_transaction_start (EBUSY when sent inside a transaction, ENOSPC over quota,
//              ids never 0), do_transaction_end ("T"/"F" else EINVAL), access_node-style lazy
//              copies with the generation seen at first access, finalize_transaction (EAGAIN if
//              any accessed node's generation changed, including created or deleted meanwhile),
//              queue_watches (events of a transaction fire only at commit).
//   domain.c   hard_quotas defaults (nodes 1000, watches 128, transactions 10, node-permissions 5,
//              path-max XENSTORE_REL_PATH_MAX, node-size 2048), do_get_domain_path,
//              do_is_domain_introduced, do_introduce / do_release (+ fire_special_watches),
//              parse_domid (every domid argument: base 10, whole string, <= 65535, else EINVAL),
//              onearg_domain (RELEASE / RESUME of dom0, the store's own domain -> EINVAL),
//              do_reset_watches. control.c do_control ("print", "log", "quota", "help"; an unknown
//              command -> EINVAL).
//   send_event  an identical WATCH_EVENT already queued on the connection is not queued again
//              (except for special @ paths).
//
// Invariants. Every node's parent exists (special @ nodes stand apart). A node's children list is
// in creation order (core.c add_child appends; remove_child_entry keeps the others' order) and is
// changed in place: adding a child is amortised O(1) whatever the parent's size (xenstored
// rewrites the parent's whole record instead); removing one is O(children), as its memmove. A
// transaction copies a node once, at its first access. Quotas apply only to
// unprivileged connections, as in xenstored (domain_is_unprivileged). Memory is bounded by the
// quotas: nodes per owner, node size, watches per domain, transactions per connection, nodes per
// transaction; the wire payload bound keeps any single argument small. Queued replies and events
// of a ring connection are bounded by its transport (xenstored.h); take_events() must be called.
//
// Deliberate differences from xenstored:
//   - Errnos: xsd_errors[] has no EQUOTA, and xenstored itself answers quota excess with ENOSPC
//     (nodes, node size, transactions, permissions per node) or E2BIG (watches; replies larger than
//     XENSTORE_PAYLOAD_MAX); this engine does the same. Path-length excess is EINVAL (canonicalize).
//   - The watch and transaction quota checks keep xenstored's "count > quota" comparison, so a domain
//     may hold quota + 1 of each; tests pin this.
//   - Node ownership counts are per owner domain; inside a transaction they are adjusted at commit
//     without the re-check acc_fix_domains does. Per-domain memory quota (ACC_MEM), outstanding
//     requests (ACC_OUTST) and queued output are enforced by the ring transport
//     (models/dom0/xenstored.h), not here; this engine has no per-domain memory quota (ACC_MEM) on
//     nodes, no write rate limiting (wrl_*) and no watch event timeouts.
//   - Accessed nodes per transaction (ACC_TRANSNODES, transaction.c access_node): an unprivileged
//     connection's transaction holds at most quota.transaction_nodes nodes, present or absent (each
//     read of a missing path inside a transaction is one). The access beyond it fails the request
//     with ENOSPC (read_node_can_propagate_errno) and fails the transaction: its commit ("T")
//     answers ENOMEM, as do_transaction_end does for trans->fail.
//   - No SET_TARGET (ENOSYS here) and no RESUME semantics beyond onearg_domain's checks. INTRODUCE
//     does not map a ring page or bind an event channel: the platform owns the transport. RELEASE
//     and release_domain() leave nodes owned by the domain in place (xenstored reassigns orphans to
//     dom0 lazily in domain_adjust_node_perms).
//   - Transaction ids count from 1 per connection; generation numbers are global, as in xenstored.
//   - CONTROL "quota" prints the hard quotas in this engine's own text format.
//   - A socket (privileged) connection resolves relative paths against /local/domain/<domid> of
//     its domid, like a domain; xenstore.txt says sockets should not use relative paths.
//   - Finding the watches a change fires: watch.c fire_watches walks every connection and each of
//     its watches (O(all watches) per change, O(guests^2) over a boot of many guests). Here every
//     watch is also filed under the path it watches (watch_index_), and a change to /a/b looks up
//     "/", "/a" and "/a/b" only (an "exact" firing or an @special name: the name only). The events
//     are the same and come in the same order as the walk's: by connection id, then by each
//     connection's registration order (XsWatchIndexTest checks this against the walk itself).
//     connections_with_events() names the connections with queued events, so a transport need not
//     ask every connection after every request.
#pragma once

#include <cerrno>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/stats.h"
#include "sim/core/xen_abi.h"
#include <xen/io/xs_wire.h>
#include <xenstore_lib.h>

#include "models/xen/xenstore_wire.h"

namespace xensim {

using DomId = domid_t;
using XsConnId = unsigned;

// xenstored's hard_quotas defaults (tools/xenstored/domain.c); every one can be set by the scenario.
struct XsQuota {
    unsigned nodes_per_domain = 1000;              // ACC_NODES, "nodes": nodes owned by one domain
    unsigned watches_per_domain = 128;             // ACC_WATCH, "watches" (per connection here)
    unsigned transactions_per_domain = 10;         // ACC_TRANS, "transactions" (per connection here)
    unsigned value_size = 2048;                    // ACC_NODESZ, "node-size": calc_node_acc_size
    unsigned path_length = XENSTORE_REL_PATH_MAX;  // ACC_PATHLEN, "path-max": after /local/domain/<id>/
    unsigned perms_per_node = 5;                   // ACC_NPERM, "node-permissions"
    unsigned transaction_nodes = 1024;             // ACC_TRANSNODES, "transaction-nodes": per transaction
    // Enforced by the ring transport (models/dom0/xenstored.h), not by this engine:
    unsigned outstanding = 20;                       // ACC_OUTST, "outstanding": replies not yet in the ring
    unsigned memory = 2 * 1024 * 1024 + 512 * 1024;  // ACC_MEM, "memory" (here: queued output bytes)
};

// One permission entry: struct xs_permissions from xenstore_lib.h (id, XS_PERM_* bits).
using XsPerm = xs_permissions;
inline bool operator==(const XsPerm& a, const XsPerm& b) { return a.id == b.id && a.perms == b.perms; }

// "r0" / "w1" / "b2" / "n3" <-> xs_permissions, as xenstore_perm_to_string / xenstore_strings_to_perms.
std::string xs_perm_to_string(const XsPerm& p);
std::optional<XsPerm> xs_perm_from_string(const std::string& s);

class XenStore {
  public:
    // calc_node_acc_size: sizeof(struct node_hdr) + num_perms * sizeof(struct xs_permissions) +
    // datalen + childlen, with the x86-64 sizes of xenstored's internal node_hdr.
    static constexpr unsigned kNodeHdrSize = 16;
    static constexpr std::uint64_t kNoGeneration = ~std::uint64_t{0};  // NO_GENERATION

    explicit XenStore(StatsGroup& stats, XsQuota quota = {});
    XenStore(const XenStore&) = delete;
    XenStore& operator=(const XenStore&) = delete;

    // A connection for `domid`. Privileged connections (dom0's ring, the tools' socket) bypass
    // permissions and quotas and may use XS_FLAG_PRIV operations.
    XsConnId connect(DomId domid, bool privileged);
    // Drops the connection's watches, open transactions and queued events.
    void disconnect(XsConnId conn);
    bool connected(XsConnId conn) const { return conns_.count(conn) != 0; }

    // One request -> exactly one reply (the request's type, or XS_ERROR with "E...\0"; req_id and
    // tx_id echoed). Watch events it causes are queued; fetch them with take_events().
    std::vector<XsMessage> handle(XsConnId conn, const XsMessage& request);
    std::vector<XsMessage> take_events(XsConnId conn);
    // The connections with queued watch events, in id order: a transport drains only these
    // instead of asking every connection after every request.
    const std::set<XsConnId>& connections_with_events() const { return with_events_; }

    // Toolstack helpers: privileged, no transaction, fire watches like a dom0 request would.
    void write(const std::string& path, const std::string& value);  // implicit parents
    void mkdir(const std::string& path);
    bool rm(const std::string& path);
    std::optional<std::string> read(const std::string& path) const;
    std::vector<std::string> directory(const std::string& path) const;
    // perms[0] is the owner and the default for unlisted domains. Returns false if the node is absent.
    bool set_perms(const std::string& path, const std::vector<XsPerm>& perms);
    std::optional<std::vector<XsPerm>> get_perms(const std::string& path) const;
    // INTRODUCE / RELEASE as the toolstack does them: fire @introduceDomain / @releaseDomain
    // (the introduce event only on the first introduction).
    void introduce_domain(DomId domid);
    void release_domain(DomId domid);
    bool is_domain_introduced(DomId domid) const { return introduced_.count(domid) != 0; }

    static std::string domain_path(DomId domid) { return "/local/domain/" + std::to_string(domid); }
    // "XS_READ" for XS_READ ...; "XS_UNKNOWN" for a type with no handler.
    static const char* type_name(std::uint32_t type);

    // Introspection for tests and reports.
    std::size_t node_count() const { return nodes_.size(); }
    unsigned nodes_owned(DomId domid) const;
    unsigned watch_count(XsConnId conn) const;
    unsigned transaction_count(XsConnId conn) const;
    // Nodes the transaction holds (its accessed list); 0 for an unknown transaction.
    std::size_t transaction_nodes(XsConnId conn, std::uint32_t tx_id) const;
    std::uint64_t generation(const std::string& path) const;  // kNoGeneration if absent
    std::uint64_t conn_errors(XsConnId conn) const;
    const std::vector<std::string>& control_log() const { return control_log_; }
    const XsQuota& quota() const { return quota_; }
    // Child names copied because a node was duplicated (a transaction's first access to it, a
    // rewrite of the node); adding or removing a child outside a transaction copies none.
    std::uint64_t children_copied() const { return children_copied_; }

  private:
    // Move-only: every copy goes through clone(), which counts the child names it copies.
    struct Node {
        Node() = default;
        Node(Node&&) = default;
        Node& operator=(Node&&) = default;
        Node(const Node&) = delete;
        Node& operator=(const Node&) = delete;
        std::string value;
        std::vector<XsPerm> perms;
        std::vector<std::string> children;  // leaf names, in creation order
        std::size_t childlen = 0;           // node_hdr childlen: sum of (name + NUL) over children
        std::uint64_t generation = 0;
    };
    // A node as seen by a transaction (transaction.c struct accessed_node).
    struct Access {
        std::uint64_t generation = kNoGeneration;  // global generation at first access
        std::optional<Node> node;                  // the transaction's copy; nullopt: absent
        std::optional<std::vector<XsPerm>> old_perms;
        bool modified = false;
        bool fire_watch = false;
        bool watch_exact = false;
    };
    struct Transaction {
        std::uint32_t id = 0;
        std::uint64_t generation = 0;
        std::map<std::string, Access> accessed;  // at most quota.transaction_nodes (unprivileged)
        bool fail = false;  // an access was refused: commit answers ENOMEM (transaction.c trans->fail)
        std::map<DomId, long> owned_delta;  // node-count changes to apply at commit
    };
    struct Watch {
        std::string node;  // canonical path or @special
        std::string token;
        std::size_t prefix_len = 0;  // relative watch: strip "/local/domain/<id>/"
        std::uint64_t seq = 0;       // registration order, global: Conn::watches is sorted by it
    };
    // One entry of the watch index: the watch `seq` of connection `conn`.
    struct WatchRef {
        XsConnId conn;
        std::uint64_t seq;
        bool operator<(const WatchRef& o) const { return conn != o.conn ? conn < o.conn : seq < o.seq; }
    };
    struct Conn {
        XsConnId id = 0;
        DomId domid = 0;
        bool privileged = false;
        std::vector<Watch> watches;  // in registration order (ascending seq)
        std::map<std::uint32_t, Transaction> transactions;
        std::uint32_t next_transaction_id = 1;
        std::deque<XsMessage> events;
    };
    // The request being handled: the caller, its transaction (or none) and the reply payload.
    struct Ctx {
        Conn* conn;  // nullptr: the toolstack helpers (privileged, no transaction)
        Transaction* tx;
        std::string reply;
        int access_error = 0;  // ENOSPC: the transaction's accessed-node quota refused a node
    };
    struct OpRow;
    static const OpRow kOpTable[];

    Node clone(const Node& n);
    Conn& conn_of(XsConnId id);
    const Conn* find_conn(XsConnId id) const;
    static bool unprivileged(const Ctx& c) { return c.conn && !c.conn->privileged; }
    static unsigned perm_for(const Ctx& c, const std::vector<XsPerm>& perms);
    static unsigned perm_for_conn(const Conn& conn, const std::vector<XsPerm>& perms);

    // Node access through the caller's view (its transaction's copies, or the global tree).
    // access() returns nullptr (and fails the transaction) when an unprivileged caller's
    // transaction already holds quota.transaction_nodes nodes (access_node's ACC_TRANSNODES check).
    Access* access(Ctx& c, const std::string& path);
    const Node* lookup(Ctx& c, const std::string& path);
    void store(Ctx& c, const std::string& path, Node node);
    void erase(Ctx& c, const std::string& path);
    void owned_add(Ctx& c, DomId owner, long n);
    unsigned owned_now(Ctx& c, DomId owner);

    // core.c helpers.
    int canonicalize(const Ctx& c, const std::string& raw, bool allow_special, std::string& out) const;
    int get_node(Ctx& c, const std::string& name, unsigned perm, const Node*& node);
    int errno_from_parents(Ctx& c, const std::string& name, int err, unsigned perm);
    static std::size_t acc_size(const Node& n);               // calc_node_acc_size
    bool node_too_big(const Ctx& c, std::size_t size) const;  // write_node_raw's node-size quota
    static void add_child(Node& n, const std::string& leaf);
    static void remove_child(Node& n, const std::string& leaf);
    // The node in the caller's view (its transaction's copy, or the tree), to change in place; its
    // generation is bumped as store() would. nullptr if absent.
    Node* modify(Ctx& c, const std::string& path);
    int create_node(Ctx& c, const std::string& name, const std::string& value);
    int rm_node(Ctx& c, const std::string& name);
    void fire_watches(Ctx& c, const std::string& name, bool exact, const Node* node,
                      const std::vector<XsPerm>* old_perms);
    void fire_now(const std::string& name, bool exact, const Node* node,
                  const std::vector<XsPerm>* old_perms);
    bool watch_permitted(const Conn& w, const std::string& name, const Node* node,
                         const std::vector<XsPerm>* old_perms) const;
    void send_event(Conn& w, const std::string& path, const std::string& token);
    // The watch index (watch_index_): add / remove one watch of `conn`, and the watch a ref names.
    void index_watch(XsConnId conn, const Watch& w);
    void unindex_watch(XsConnId conn, const Watch& w);
    static std::vector<Watch>::iterator find_watch(Conn& conn, std::uint64_t seq);
    void fire_special(const std::string& name);
    void manual_node(const std::string& name, std::vector<std::string> children);

    // Handlers (one per wire_funcs row): return 0 and fill c.reply, or an errno.
    int do_control(Ctx& c, const std::string& in);
    int send_directory(Ctx& c, const std::string& in);
    int send_directory_part(Ctx& c, const std::string& in);
    int do_read(Ctx& c, const std::string& in);
    int do_get_perms(Ctx& c, const std::string& in);
    int do_watch(Ctx& c, const std::string& in);
    int do_unwatch(Ctx& c, const std::string& in);
    int do_transaction_start(Ctx& c, const std::string& in);
    int do_transaction_end(Ctx& c, const std::string& in);
    int do_introduce(Ctx& c, const std::string& in);
    int do_release(Ctx& c, const std::string& in);
    int do_get_domain_path(Ctx& c, const std::string& in);
    int do_write(Ctx& c, const std::string& in);
    int do_mkdir(Ctx& c, const std::string& in);
    int do_rm(Ctx& c, const std::string& in);
    int do_set_perms(Ctx& c, const std::string& in);
    int do_is_domain_introduced(Ctx& c, const std::string& in);
    int do_resume(Ctx& c, const std::string& in);
    int onearg_domain(const std::string& in, DomId& domid) const;
    int do_reset_watches(Ctx& c, const std::string& in);
    int finalize_transaction(Ctx& c, Transaction& tx);

    XsQuota quota_;
    std::map<std::string, Node> nodes_;
    std::map<DomId, unsigned> owned_;  // nodes per owner (perms[0].id)
    std::map<XsConnId, Conn> conns_;
    // Every watch, by the path (or @special name) it watches: a change to /a/b looks up "/", "/a"
    // and "/a/b" instead of scanning every connection's watches. Refs of one path in registration
    // order.
    std::map<std::string, std::vector<WatchRef>, std::less<>> watch_index_;  // found by string_view
    std::uint64_t next_watch_seq_ = 0;
    std::set<XsConnId> with_events_;  // connections whose events deque is not empty
    std::map<DomId, bool> introduced_;
    XsConnId next_conn_ = 1;
    std::uint64_t generation_ = 0;
    std::vector<std::string> control_log_;
    bool log_on_ = false;
    std::uint64_t children_copied_ = 0;

    CounterFamily ops_;
    CounterFamily errors_;
    CounterFamily conn_errors_;
    Counter transactions_started_;
    Counter transactions_committed_;
    Counter transactions_aborted_;
    Counter transactions_eagain_;
    Counter watch_events_;
};

}  // namespace xensim
