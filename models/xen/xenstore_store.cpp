#include "models/xen/xenstore_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace xensim {
namespace {

constexpr unsigned kFlagNoTid = 1u << 0;  // XS_FLAG_NOTID: ignore the transaction id
constexpr unsigned kFlagPriv = 1u << 1;   // XS_FLAG_PRIV: privileged connections only
constexpr unsigned kPermAll = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
const std::string kOk("OK\0", 3);

// core.c valid_chars.
bool valid_chars(const std::string& s) {
    for (char ch : s) {
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '/' || ch == '_' || ch == '@';
        if (!ok) return false;
    }
    return true;
}

// core.c get_parent: everything before the last '/' after the first character, else "/".
std::string parent_of(const std::string& n) {
    std::size_t pos = n.size() > 1 ? n.find_last_of('/') : std::string::npos;
    if (pos == std::string::npos || pos == 0) return "/";
    return n.substr(0, pos);
}

std::string basename_of(const std::string& n) { return n.substr(n.find_last_of('/') + 1); }

std::string child_path(const std::string& parent, const std::string& leaf) {
    return parent == "/" ? "/" + leaf : parent + "/" + leaf;
}

// xenstore_count_strings: the number of NULs.
unsigned count_strings(const std::string& in) {
    return static_cast<unsigned>(std::count(in.begin(), in.end(), '\0'));
}

// core.c get_strings: the NUL-terminated strings, in order (bytes after the last NUL ignored).
std::vector<std::string> get_strings(const std::string& in) {
    std::vector<std::string> out;
    std::size_t off = 0;
    for (std::size_t nul; (nul = in.find('\0', off)) != std::string::npos; off = nul + 1)
        out.push_back(in.substr(off, nul - off));
    return out;
}

// core.c onearg: exactly one NUL, at the end.
bool onearg(const std::string& in, std::string& arg) {
    if (in.empty() || in.find('\0') != in.size() - 1) return false;
    arg = in.substr(0, in.size() - 1);
    return true;
}

// domain.c parse_domid (Xen 4.20's "use a common domid parser"; 4.17's atoi turned "abc" into 0):
// the whole string in base 10, at most 65535, else EINVAL.
int parse_domid(const std::string& in, DomId& domid) {
    char* end = nullptr;
    unsigned long v = std::strtoul(in.c_str(), &end, 10);
    if (*end != '\0' || v > 65535) return EINVAL;
    domid = static_cast<DomId>(v);
    return 0;
}

const char* errno_name(int err) {
    for (const auto& e : xsd_errors)
        if (e.errnum == err) return e.errstring;
    return xsd_errors[0].errstring;  // send_error: untranslatable -> EINVAL
}

std::string children_string(const std::vector<std::string>& children) {
    std::string s;
    for (const auto& ch : children) s.append(ch).push_back('\0');
    return s;
}

}  // namespace

std::string xs_perm_to_string(const XsPerm& p) {
    char c = 'n';
    switch (p.perms & (XS_PERM_READ | XS_PERM_WRITE)) {
        case XS_PERM_READ:
            c = 'r';
            break;
        case XS_PERM_WRITE:
            c = 'w';
            break;
        case XS_PERM_READ | XS_PERM_WRITE:
            c = 'b';
            break;
        default:
            break;
    }
    return c + std::to_string(p.id);
}

std::optional<XsPerm> xs_perm_from_string(const std::string& s) {
    if (s.size() < 2) return std::nullopt;
    XsPerm p{};
    switch (s[0]) {
        case 'w':
            p.perms = XS_PERM_WRITE;
            break;
        case 'r':
            p.perms = XS_PERM_READ;
            break;
        case 'b':
            p.perms = XS_PERM_READ | XS_PERM_WRITE;
            break;
        case 'n':
            p.perms = XS_PERM_NONE;
            break;
        default:
            return std::nullopt;
    }
    char* end = nullptr;
    unsigned long id = std::strtoul(s.c_str() + 1, &end, 0);
    if (*end || id > 0xffff) return std::nullopt;
    p.id = static_cast<unsigned>(id);
    return p;
}

struct XenStore::OpRow {
    std::uint32_t type;
    const char* name;
    int (XenStore::*handler)(Ctx&, const std::string&);
    unsigned flags;
};

// core.c wire_funcs. Types without a row (WATCH_EVENT, ERROR, SET_TARGET, out of range) -> ENOSYS.
const XenStore::OpRow XenStore::kOpTable[] = {
    {XS_CONTROL, "XS_CONTROL", &XenStore::do_control, kFlagPriv},
    {XS_DIRECTORY, "XS_DIRECTORY", &XenStore::send_directory, 0},
    {XS_READ, "XS_READ", &XenStore::do_read, 0},
    {XS_GET_PERMS, "XS_GET_PERMS", &XenStore::do_get_perms, 0},
    {XS_WATCH, "XS_WATCH", &XenStore::do_watch, kFlagNoTid},
    {XS_UNWATCH, "XS_UNWATCH", &XenStore::do_unwatch, kFlagNoTid},
    {XS_TRANSACTION_START, "XS_TRANSACTION_START", &XenStore::do_transaction_start, 0},
    {XS_TRANSACTION_END, "XS_TRANSACTION_END", &XenStore::do_transaction_end, 0},
    {XS_INTRODUCE, "XS_INTRODUCE", &XenStore::do_introduce, kFlagPriv},
    {XS_RELEASE, "XS_RELEASE", &XenStore::do_release, kFlagPriv},
    {XS_GET_DOMAIN_PATH, "XS_GET_DOMAIN_PATH", &XenStore::do_get_domain_path, 0},
    {XS_WRITE, "XS_WRITE", &XenStore::do_write, 0},
    {XS_MKDIR, "XS_MKDIR", &XenStore::do_mkdir, 0},
    {XS_RM, "XS_RM", &XenStore::do_rm, 0},
    {XS_SET_PERMS, "XS_SET_PERMS", &XenStore::do_set_perms, 0},
    {XS_IS_DOMAIN_INTRODUCED, "XS_IS_DOMAIN_INTRODUCED", &XenStore::do_is_domain_introduced, kFlagPriv},
    {XS_RESUME, "XS_RESUME", &XenStore::do_resume, kFlagPriv},
    {XS_RESET_WATCHES, "XS_RESET_WATCHES", &XenStore::do_reset_watches, 0},
    {XS_DIRECTORY_PART, "XS_DIRECTORY_PART", &XenStore::send_directory_part, 0},
};

XenStore::XenStore(StatsGroup& stats, XsQuota quota)
    : quota_(quota),
      ops_(stats, "ops", "requests", "XenStore requests by message type"),
      errors_(stats, "errors", "replies", "XS_ERROR replies by errno name"),
      conn_errors_(stats, "conn_errors", "replies", "XS_ERROR replies by connection"),
      transactions_started_(stats, "transactions_started", "transactions", "TRANSACTION_START ok"),
      transactions_committed_(stats, "transactions_committed", "transactions", "TRANSACTION_END T committed"),
      transactions_aborted_(stats, "transactions_aborted", "transactions", "TRANSACTION_END F"),
      transactions_eagain_(stats, "transactions_eagain", "transactions",
                           "TRANSACTION_END T refused with EAGAIN (conflict)"),
      watch_events_(stats, "watch_events", "events", "WATCH_EVENT messages queued") {
    // setup_structure + domain_nbentry_fix(dom0_domid, 5); dom0_init introduces dom0.
    manual_node("/", {"tool"});
    manual_node("/tool", {"xenstored"});
    manual_node("/tool/xenstored", {});
    manual_node("@releaseDomain", {});
    manual_node("@introduceDomain", {});
    owned_[0] = 5;
    introduced_[0] = true;
}

void XenStore::manual_node(const std::string& name, std::vector<std::string> children) {
    Node n;
    n.perms = {XsPerm{0, XS_PERM_NONE}};
    for (const auto& ch : children) add_child(n, ch);
    n.generation = ++generation_;
    nodes_[name] = std::move(n);
}

// ---- connections ----

XenStore::Node XenStore::clone(const Node& n) {
    Node c;
    c.value = n.value;
    c.perms = n.perms;
    c.children = n.children;
    c.childlen = n.childlen;
    c.generation = n.generation;
    children_copied_ += n.children.size();
    return c;
}

XsConnId XenStore::connect(DomId domid, bool privileged) {
    XsConnId id = next_conn_++;
    Conn& c = conns_[id];
    c.id = id;
    c.domid = domid;
    c.privileged = privileged;
    return id;
}

void XenStore::disconnect(XsConnId conn) {
    auto it = conns_.find(conn);
    if (it == conns_.end()) return;
    for (const Watch& w : it->second.watches) unindex_watch(conn, w);
    with_events_.erase(conn);
    conns_.erase(it);
}

XenStore::Conn& XenStore::conn_of(XsConnId id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) std::abort();  // internal error: the transport holds a dead id
    return it->second;
}

const XenStore::Conn* XenStore::find_conn(XsConnId id) const {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : &it->second;
}

std::vector<XsMessage> XenStore::take_events(XsConnId conn) {
    Conn& c = conn_of(conn);
    std::vector<XsMessage> out(std::make_move_iterator(c.events.begin()),
                               std::make_move_iterator(c.events.end()));
    c.events.clear();
    with_events_.erase(conn);
    return out;
}

const char* XenStore::type_name(std::uint32_t type) {
    for (const OpRow& r : kOpTable)
        if (r.type == type) return r.name;
    return "XS_UNKNOWN";
}

// core.c process_message: lookup, privilege, transaction, then the handler; send_error on failure.
std::vector<XsMessage> XenStore::handle(XsConnId id, const XsMessage& req) {
    Conn& conn = conn_of(id);
    const OpRow* row = std::find_if(std::begin(kOpTable), std::end(kOpTable),
                                    [&](const OpRow& r) { return r.type == req.type; });
    Ctx c{&conn, nullptr, {}};
    int err = 0;
    if (row == std::end(kOpTable)) {
        ops_.inc("XS_UNKNOWN");
        err = ENOSYS;
    } else {
        ops_.inc(row->name);
        if ((row->flags & kFlagPriv) && !conn.privileged) {
            err = EACCES;
        } else if (!(row->flags & kFlagNoTid) && req.tx_id != 0) {
            auto it = conn.transactions.find(req.tx_id);
            if (it == conn.transactions.end())
                err = ENOENT;
            else
                c.tx = &it->second;
        }
        if (!err) err = (this->*(row->handler))(c, req.payload);
        if (c.access_error) err = c.access_error;  // read_node_can_propagate_errno: ENOSPC wins
        if (!err && c.reply.size() > XENSTORE_PAYLOAD_MAX) err = E2BIG;  // send_reply
    }
    XsMessage rep{req.type, req.req_id, req.tx_id, std::move(c.reply)};
    if (err) {
        const char* name = errno_name(err);
        rep.type = XS_ERROR;
        rep.payload.assign(name, std::strlen(name) + 1);
        errors_.inc(name);
        conn_errors_.inc("conn" + std::to_string(id));
    }
    return {std::move(rep)};
}

// ---- permissions and node access ----

// core.c perm_for_conn (without SET_TARGET).
unsigned XenStore::perm_for_conn(const Conn& conn, const std::vector<XsPerm>& perms) {
    if (conn.privileged || perms[0].id == conn.domid) return kPermAll;
    for (std::size_t i = 1; i < perms.size(); ++i)
        if (!(perms[i].perms & XS_PERM_IGNORE) && perms[i].id == conn.domid) return perms[i].perms & kPermAll;
    return perms[0].perms & kPermAll;
}

unsigned XenStore::perm_for(const Ctx& c, const std::vector<XsPerm>& perms) {
    return c.conn ? perm_for_conn(*c.conn, perms) : kPermAll;
}

// transaction.c access_node: a node new to the transaction is counted against ACC_TRANSNODES
// (domain_max_chk(conn, ACC_TRANSNODES, trans->nodes + 1) -> ENOSPC, trans->fail = true).
XenStore::Access* XenStore::access(Ctx& c, const std::string& path) {
    Transaction& tx = *c.tx;
    auto it = tx.accessed.find(path);
    if (it != tx.accessed.end()) return &it->second;
    if (unprivileged(c) && quota_.transaction_nodes && tx.accessed.size() + 1 > quota_.transaction_nodes) {
        tx.fail = true;
        c.access_error = ENOSPC;
        return nullptr;
    }
    Access a;
    auto g = nodes_.find(path);
    if (g != nodes_.end()) {
        a.generation = g->second.generation;
        a.node = clone(g->second);
        a.old_perms = g->second.perms;
    }
    return &tx.accessed.emplace(path, std::move(a)).first->second;
}

const XenStore::Node* XenStore::lookup(Ctx& c, const std::string& path) {
    if (c.tx) {
        Access* a = access(c, path);
        return a && a->node ? &*a->node : nullptr;
    }
    auto it = nodes_.find(path);
    return it == nodes_.end() ? nullptr : &it->second;
}

void XenStore::store(Ctx& c, const std::string& path, Node node) {
    if (c.tx) {
        Access* a = access(c, path);
        if (!a) return;
        node.generation = c.tx->generation;
        a->node = std::move(node);
        a->modified = true;
        return;
    }
    node.generation = ++generation_;
    nodes_[path] = std::move(node);
}

void XenStore::erase(Ctx& c, const std::string& path) {
    if (c.tx) {
        Access* a = access(c, path);
        if (!a) return;
        a->node.reset();
        a->modified = true;
        return;
    }
    nodes_.erase(path);
}

void XenStore::owned_add(Ctx& c, DomId owner, long n) {
    if (c.tx) {
        c.tx->owned_delta[owner] += n;
        return;
    }
    owned_[owner] = static_cast<unsigned>(static_cast<long>(owned_[owner]) + n);
}

unsigned XenStore::owned_now(Ctx& c, DomId owner) {
    long n = owned_[owner];
    if (c.tx) n += c.tx->owned_delta[owner];
    return n < 0 ? 0 : static_cast<unsigned>(n);
}

// core.c canonicalize.
int XenStore::canonicalize(const Ctx& c, const std::string& raw, bool allow_special, std::string& out) const {
    if (!valid_chars(raw) || (!raw.empty() && raw[0] == '@' && !allow_special)) return EINVAL;
    if (raw.empty() || (raw[0] != '/' && raw[0] != '@')) {
        if (!c.conn) return EINVAL;
        out = domain_path(c.conn->domid) + "/" + raw;
    } else {
        out = raw;
    }
    // sscanf(name, "/local/domain/%5u/%n", ...): the quota counts what follows the domain's home.
    std::size_t local_off = 0;
    static const std::string kLocal = "/local/domain/";
    if (out.compare(0, kLocal.size(), kLocal) == 0) {
        std::size_t i = kLocal.size(), digits = 0;
        while (i < out.size() && digits < 5 && out[i] >= '0' && out[i] <= '9') ++i, ++digits;
        if (digits && i < out.size() && out[i] == '/') local_off = i + 1;
    }
    if ((out.size() > 1 && out.back() == '/') || out.find("//") != std::string::npos) return EINVAL;
    if (unprivileged(c) && out.size() - local_off > quota_.path_length) return EINVAL;
    return 0;
}

// core.c errno_from_parents + ask_parents: hide a node's existence from those who may not see it.
int XenStore::errno_from_parents(Ctx& c, const std::string& name, int err, unsigned perm) {
    std::string p = name;
    const Node* node = nullptr;
    do {
        p = parent_of(p);
        node = lookup(c, p);
    } while (!node && p != "/");
    unsigned parent_perm = node ? perm_for(c, node->perms) : XS_PERM_NONE;
    return (parent_perm & perm) ? err : EACCES;
}

// core.c get_node + get_node_chk_perm.
int XenStore::get_node(Ctx& c, const std::string& name, unsigned perm, const Node*& node) {
    node = lookup(c, name);
    int err = 0;
    if (node && (perm_for(c, node->perms) & perm) != perm)
        err = EACCES;
    else if (!node)
        err = ENOENT;
    if (!err) return 0;
    node = nullptr;
    return errno_from_parents(c, name, err, perm);
}

// write_node_raw: domain_max_chk(conn, ACC_NODESZ, calc_node_acc_size(...)).
std::size_t XenStore::acc_size(const Node& n) {
    return kNodeHdrSize + n.perms.size() * sizeof(XsPerm) + n.value.size() + n.childlen;
}

bool XenStore::node_too_big(const Ctx& c, std::size_t size) const {
    return unprivileged(c) && size > quota_.value_size;
}

// core.c add_child: the name goes at the end of the list (directory order is creation order).
void XenStore::add_child(Node& n, const std::string& leaf) {
    n.children.push_back(leaf);
    n.childlen += leaf.size() + 1;
}

// core.c remove_child_entry: the others keep their order. O(children), as xenstored's memmove.
void XenStore::remove_child(Node& n, const std::string& leaf) {
    auto it = std::find(n.children.begin(), n.children.end(), leaf);
    if (it == n.children.end()) return;
    n.childlen -= leaf.size() + 1;
    n.children.erase(it);
}

XenStore::Node* XenStore::modify(Ctx& c, const std::string& path) {
    if (c.tx) {
        // Callers looked the node up in this transaction first, so it is in the access list and
        // the ACC_TRANSNODES check cannot refuse it here.
        Access* a = access(c, path);
        if (!a || !a->node) return nullptr;
        a->node->generation = c.tx->generation;
        a->modified = true;
        return &*a->node;
    }
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return nullptr;
    it->second.generation = ++generation_;
    return &it->second;
}

// core.c construct_node + create_node. All checks come before any change, so a failure leaves
// nothing behind (xenstored undoes partial writes instead).
int XenStore::create_node(Ctx& c, const std::string& name, const std::string& value) {
    std::vector<std::string> names;  // names[0]: the node; names.back(): the topmost missing one
    std::string p = name;
    const Node* parent = nullptr;
    while (!parent) {
        names.push_back(p);
        p = parent_of(p);
        parent = lookup(c, p);
        if (!parent && p == "/") std::abort();  // the root always exists
    }
    const std::string parent_name = p;
    std::vector<XsPerm> perms = parent->perms;
    if (unprivileged(c)) perms[0].id = c.conn->domid;  // unprivileged domains own what they create
    DomId owner = static_cast<DomId>(perms[0].id);
    if (unprivileged(c) && owned_now(c, owner) + names.size() > quota_.nodes_per_domain) return ENOSPC;

    const std::string leaf = basename_of(names.back());
    std::vector<Node> fresh(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        fresh[i].perms = perms;
        if (i == 0) fresh[i].value = value;
        if (i > 0) add_child(fresh[i], basename_of(names[i - 1]));
        if (node_too_big(c, acc_size(fresh[i]))) return ENOSPC;
    }
    if (node_too_big(c, acc_size(*parent) + leaf.size() + 1)) return ENOSPC;

    // The parent gains the name in place (amortised O(1)); a transaction's first access copies it.
    add_child(*modify(c, parent_name), leaf);
    for (std::size_t i = names.size(); i-- > 0;) store(c, names[i], std::move(fresh[i]));
    owned_add(c, owner, static_cast<long>(names.size()));
    return 0;
}

// core.c rm_node + delnode_sub: post-order; the removed root fires watches on itself and above,
// each descendant fires only watches set exactly on it.
int XenStore::rm_node(Ctx& c, const std::string& name) {
    const std::string parent_name = parent_of(name);
    if (!lookup(c, parent_name)) return EINVAL;
    struct Walk {
        XenStore& xs;
        Ctx& c;
        const std::string& root;
        void operator()(const std::string& path) {
            // Nodes live in std::maps: the recursion below erases and inserts other entries only,
            // so `n` and its children list stay valid.
            const Node* n = xs.lookup(c, path);
            if (!n) return;
            for (const auto& ch : n->children) (*this)(child_path(path, ch));
            xs.owned_add(c, static_cast<DomId>(n->perms[0].id), -1);
            xs.fire_watches(c, path, path != root, n, nullptr);
            xs.erase(c, path);
        }
    };
    Walk{*this, c, name}(name);
    remove_child(*modify(c, parent_name), basename_of(name));  // remove_child_entry: no quota check
    return 0;
}

// ---- watches ----

void XenStore::fire_watches(Ctx& c, const std::string& name, bool exact, const Node* node,
                            const std::vector<XsPerm>* old_perms) {
    if (c.tx) {  // transaction.c queue_watches
        Access* a = access(c, name);
        if (!a) return;  // the transaction has failed already
        if (!a->fire_watch) {
            a->fire_watch = true;
            a->watch_exact = exact;
        } else if (!exact) {
            a->watch_exact = false;
        }
        return;
    }
    fire_now(name, exact, node, old_perms);
}

// watch.c fire_watches walks every connection and each of its watches; here the watch index gives
// the matching watches directly. They are served in the same order as that walk (connection id,
// then each connection's registration order), and watch_permitted is asked once per connection
// with a matching watch (it has no side effect, so skipping the others changes nothing).
void XenStore::fire_now(const std::string& name, bool exact, const Node* node,
                        const std::vector<XsPerm>* old_perms) {
    if (watch_index_.empty()) return;
    std::vector<WatchRef> hits;
    auto add = [&](std::string_view path) {
        auto it = watch_index_.find(path);
        if (it != watch_index_.end()) hits.insert(hits.end(), it->second.begin(), it->second.end());
    };
    if (exact) {
        add(name);
    } else {
        // watch.c is_child(name, w) (equal, or below; everything is below "/") holds exactly for w == "/", w
        // == name, and w == every prefix of name that is followed by a '/' in name. Each candidate is looked
        // up once.
        add("/");
        for (std::size_t i = name.find('/'); i != std::string::npos; i = name.find('/', i + 1))
            if (!(i == 1 && name[0] == '/')) add(std::string_view(name).substr(0, i));  // "/" is done
        if (name != "/") add(name);
    }
    if (hits.empty()) return;
    std::sort(hits.begin(), hits.end());
    for (std::size_t i = 0; i < hits.size();) {
        std::size_t end = i;
        while (end < hits.size() && hits[end].conn == hits[i].conn) ++end;
        Conn& w = conn_of(hits[i].conn);
        if (watch_permitted(w, name, node, old_perms)) {
            for (; i < end; ++i) {
                const Watch& watch = *find_watch(w, hits[i].seq);
                send_event(w, name.substr(watch.prefix_len), watch.token);
            }
        }
        i = end;
    }
}

void XenStore::index_watch(XsConnId conn, const Watch& w) { watch_index_[w.node].push_back({conn, w.seq}); }

void XenStore::unindex_watch(XsConnId conn, const Watch& w) {
    auto it = watch_index_.find(w.node);
    if (it == watch_index_.end()) return;
    auto& refs = it->second;
    refs.erase(std::remove_if(refs.begin(), refs.end(),
                              [&](const WatchRef& r) { return r.conn == conn && r.seq == w.seq; }),
               refs.end());
    if (refs.empty()) watch_index_.erase(it);
}

std::vector<XenStore::Watch>::iterator XenStore::find_watch(Conn& conn, std::uint64_t seq) {
    return std::lower_bound(conn.watches.begin(), conn.watches.end(), seq,
                            [](const Watch& w, std::uint64_t s) { return w.seq < s; });
}

// watch.c watch_permitted: the node (old or new permissions) or its parent must be readable.
bool XenStore::watch_permitted(const Conn& w, const std::string& name, const Node* node,
                               const std::vector<XsPerm>* old_perms) const {
    if (w.privileged) return true;
    if (old_perms && (perm_for_conn(w, *old_perms) & XS_PERM_READ)) return true;
    if (!node) {
        auto it = nodes_.find(name);
        if (it == nodes_.end()) return false;
        node = &it->second;
    }
    if (perm_for_conn(w, node->perms) & XS_PERM_READ) return true;
    auto parent = nodes_.find(parent_of(name));
    return parent != nodes_.end() && (perm_for_conn(w, parent->second.perms) & XS_PERM_READ);
}

// core.c send_event.
void XenStore::send_event(Conn& w, const std::string& path, const std::string& token) {
    XsMessage ev{XS_WATCH_EVENT, 0, 0, path};
    ev.payload.push_back('\0');
    ev.payload.append(token).push_back('\0');
    if (ev.payload.size() > XENSTORE_PAYLOAD_MAX) return;
    if (path.empty() || path[0] != '@') {
        for (const XsMessage& q : w.events)
            if (q.payload == ev.payload) return;  // identical event already pending
    }
    w.events.push_back(std::move(ev));
    with_events_.insert(w.id);
    watch_events_.inc();
}

void XenStore::fire_special(const std::string& name) {
    auto it = nodes_.find(name);
    fire_now(name, true, it == nodes_.end() ? nullptr : &it->second, nullptr);
}

// ---- handlers ----

int XenStore::do_read(Ctx& c, const std::string& in) {
    std::string arg, name;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = canonicalize(c, arg, false, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_READ, node)) return err;
    c.reply = node->value;
    return 0;
}

int XenStore::do_write(Ctx& c, const std::string& in) {
    std::size_t nul = in.find('\0');
    if (nul == std::string::npos) return EINVAL;  // get_strings(in, vec, 1) < 1
    std::string name;
    if (int err = canonicalize(c, in.substr(0, nul), false, name)) return err;
    const std::string value = in.substr(nul + 1);
    const Node* node;
    int err = get_node(c, name, XS_PERM_WRITE, node);
    if (!err) {
        if (node_too_big(c, acc_size(*node) - node->value.size() + value.size())) return ENOSPC;
        modify(c, name)->value = value;
    } else {
        if (err != ENOENT) return err;
        if ((err = create_node(c, name, value))) return err;
    }
    fire_watches(c, name, false, lookup(c, name), nullptr);
    c.reply = kOk;
    return 0;
}

int XenStore::do_mkdir(Ctx& c, const std::string& in) {
    std::string arg, name;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = canonicalize(c, arg, false, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_WRITE, node)) {
        if (err != ENOENT) return err;
        if ((err = create_node(c, name, ""))) return err;
        fire_watches(c, name, false, lookup(c, name), nullptr);
    }
    c.reply = kOk;
    return 0;
}

int XenStore::do_rm(Ctx& c, const std::string& in) {
    std::string arg, name;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = canonicalize(c, arg, false, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_WRITE, node)) {
        if (err != ENOENT) return err;
        if (!lookup(c, parent_of(name))) return ENOENT;  // not there, and neither is its parent
        c.reply = kOk;
        return 0;
    }
    if (name == "/") return EINVAL;
    if (int err = rm_node(c, name)) return err;
    c.reply = kOk;
    return 0;
}

int XenStore::send_directory(Ctx& c, const std::string& in) {
    std::string arg, name;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = canonicalize(c, arg, false, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_READ, node)) return err;
    c.reply = children_string(node->children);
    return 0;
}

int XenStore::send_directory_part(Ctx& c, const std::string& in) {
    if (count_strings(in) != 2) return EINVAL;
    std::vector<std::string> args = get_strings(in);
    std::string name;
    if (int err = canonicalize(c, args[0], false, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_READ, node)) return err;
    const unsigned off = static_cast<unsigned>(std::atoi(args[1].c_str()));
    const std::string children = children_string(node->children);
    const std::size_t childlen = children.size();
    std::string gen = std::to_string(node->generation);
    gen.push_back('\0');
    if (off >= childlen) {  // offset behind the list: an empty string after the generation
        c.reply = gen;
        c.reply.push_back('\0');
        return 0;
    }
    const std::size_t maxlen = XENSTORE_PAYLOAD_MAX - gen.size() - 1;
    std::size_t len = 0;
    for (;;) {
        std::size_t slen = children.find('\0', off + len) - (off + len);
        if (len + slen >= maxlen) break;
        len += slen + 1;
        if (off + len == childlen) break;
    }
    c.reply = gen + children.substr(off, len);
    if (off + len == childlen) c.reply.push_back('\0');
    return 0;
}

int XenStore::do_get_perms(Ctx& c, const std::string& in) {
    std::string arg, name;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = canonicalize(c, arg, true, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_READ, node)) return err;
    for (const XsPerm& p : node->perms) c.reply.append(xs_perm_to_string(p)).push_back('\0');
    return 0;
}

int XenStore::do_set_perms(Ctx& c, const std::string& in) {
    unsigned num = count_strings(in);
    if (num < 2) return EINVAL;
    --num;
    if (unprivileged(c) && num > quota_.perms_per_node) return ENOSPC;
    std::vector<std::string> args = get_strings(in);
    std::vector<XsPerm> perms;
    for (std::size_t i = 1; i < args.size(); ++i) {
        auto p = xs_perm_from_string(args[i]);
        if (!p) return EINVAL;
        perms.push_back(*p);
    }
    std::string name;
    if (int err = canonicalize(c, args[0], true, name)) return err;
    const Node* node;
    if (int err = get_node(c, name, XS_PERM_WRITE | XS_PERM_OWNER, node)) return err;
    if (unprivileged(c) && perms[0].id != node->perms[0].id) return EPERM;
    if (node_too_big(c,
                     acc_size(*node) - node->perms.size() * sizeof(XsPerm) + perms.size() * sizeof(XsPerm)))
        return ENOSPC;
    std::vector<XsPerm> old_perms = node->perms;
    if (name[0] != '@') {  // special nodes are not accounted to anyone beyond setup
        owned_add(c, static_cast<DomId>(old_perms[0].id), -1);
        owned_add(c, static_cast<DomId>(perms[0].id), 1);
    }
    modify(c, name)->perms = perms;
    fire_watches(c, name, false, lookup(c, name), &old_perms);
    c.reply = kOk;
    return 0;
}

int XenStore::do_watch(Ctx& c, const std::string& in) {
    std::vector<std::string> vec = get_strings(in);
    if (vec.size() != 2) return EINVAL;
    const bool relative = vec[0].empty() || (vec[0][0] != '/' && vec[0][0] != '@');
    std::string name;
    if (int err = canonicalize(c, vec[0], true, name)) return err;
    Conn& conn = *c.conn;
    if (auto it = watch_index_.find(name); it != watch_index_.end())
        for (const WatchRef& r : it->second)
            if (r.conn == conn.id && find_watch(conn, r.seq)->token == vec[1]) return EEXIST;
    if (unprivileged(c) && conn.watches.size() > quota_.watches_per_domain) return E2BIG;
    Watch w{name, vec[1], relative ? domain_path(conn.domid).size() + 1 : 0, next_watch_seq_++};
    conn.watches.push_back(w);
    index_watch(conn.id, w);
    c.reply = kOk;
    send_event(conn, name.substr(w.prefix_len), w.token);  // "we fire once up front"
    return 0;
}

int XenStore::do_unwatch(Ctx& c, const std::string& in) {
    std::vector<std::string> vec = get_strings(in);
    if (vec.size() != 2) return EINVAL;
    std::string name;
    if (int err = canonicalize(c, vec[0], true, name)) return err;
    auto& ws = c.conn->watches;
    auto it = std::find_if(ws.begin(), ws.end(),
                           [&](const Watch& w) { return w.node == name && w.token == vec[1]; });
    if (it == ws.end()) return ENOENT;
    unindex_watch(c.conn->id, *it);
    ws.erase(it);
    c.reply = kOk;
    return 0;
}

int XenStore::do_reset_watches(Ctx& c, const std::string&) {
    for (const Watch& w : c.conn->watches) unindex_watch(c.conn->id, w);
    c.conn->watches.clear();
    c.conn->transactions.clear();  // conn_delete_all_transactions
    c.tx = nullptr;
    c.reply = kOk;
    return 0;
}

int XenStore::do_transaction_start(Ctx& c, const std::string&) {
    if (c.tx) return EBUSY;  // no nested transactions
    Conn& conn = *c.conn;
    if (unprivileged(c) && conn.transactions.size() > quota_.transactions_per_domain) return ENOSPC;
    std::uint32_t id;
    do {
        id = conn.next_transaction_id++;
    } while (id == 0 || conn.transactions.count(id));
    Transaction& tx = conn.transactions[id];
    tx.id = id;
    tx.generation = ++generation_;
    c.reply = std::to_string(id);
    c.reply.push_back('\0');
    transactions_started_.inc();
    return 0;
}

int XenStore::finalize_transaction(Ctx& c, Transaction& tx) {
    for (const auto& [path, a] : tx.accessed) {
        auto g = nodes_.find(path);
        std::uint64_t gen = g == nodes_.end() ? kNoGeneration : g->second.generation;
        if (gen != a.generation) return EAGAIN;
    }
    for (auto& [path, a] : tx.accessed) {
        if (!a.modified) continue;
        if (a.node) {
            a.node->generation = ++generation_;
            nodes_[path] = std::move(*a.node);
        } else {
            nodes_.erase(path);
        }
    }
    for (const auto& [dom, n] : tx.owned_delta)
        owned_[dom] = static_cast<unsigned>(std::max(0L, static_cast<long>(owned_[dom]) + n));
    for (const auto& [path, a] : tx.accessed)
        if (a.fire_watch) fire_now(path, a.watch_exact, nullptr, a.old_perms ? &*a.old_perms : nullptr);
    return 0;
}

int XenStore::do_transaction_end(Ctx& c, const std::string& in) {
    std::string arg;
    if (!onearg(in, arg) || (arg != "T" && arg != "F")) return EINVAL;
    if (!c.tx) return ENOENT;
    Conn& conn = *c.conn;
    std::uint32_t id = c.tx->id;
    int err = 0;
    if (arg == "T" && c.tx->fail) {  // do_transaction_end: trans->fail -> ENOMEM
        err = ENOMEM;
        transactions_aborted_.inc();
    } else if (arg == "T") {
        err = finalize_transaction(c, *c.tx);
        (err == EAGAIN ? transactions_eagain_ : transactions_committed_).inc();
    } else {
        transactions_aborted_.inc();
    }
    c.tx = nullptr;
    conn.transactions.erase(id);  // gone whatever the outcome
    if (err) return err;
    c.reply = kOk;
    return 0;
}

int XenStore::do_get_domain_path(Ctx& c, const std::string& in) {
    std::string arg;
    DomId domid;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = parse_domid(arg, domid)) return err;
    c.reply = domain_path(domid);
    c.reply.push_back('\0');
    return 0;
}

int XenStore::do_is_domain_introduced(Ctx& c, const std::string& in) {
    std::string arg;
    DomId domid;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = parse_domid(arg, domid)) return err;
    bool yes = domid == DOMID_SELF || is_domain_introduced(domid);
    c.reply = std::string(yes ? "T" : "F") + '\0';
    return 0;
}

int XenStore::do_introduce(Ctx& c, const std::string& in) {
    std::vector<std::string> vec = get_strings(in);
    if (vec.size() < 3) return EINVAL;  // <domid>|<mfn>|<evtchn>|
    DomId domid;
    if (int err = parse_domid(vec[0], domid)) return err;
    introduce_domain(domid);
    c.reply = kOk;
    return 0;
}

// domain.c onearg_domain: one argument, a valid domid, not the store's own domain (dom0 here:
// store_domid == priv_domid == 0) -> else EINVAL; find_connected_domain -> ENOENT if not introduced.
int XenStore::onearg_domain(const std::string& in, DomId& domid) const {
    std::string arg;
    if (!onearg(in, arg)) return EINVAL;
    if (int err = parse_domid(arg, domid)) return err;
    if (domid == 0) return EINVAL;
    if (!is_domain_introduced(domid)) return ENOENT;
    return 0;
}

int XenStore::do_release(Ctx& c, const std::string& in) {
    DomId domid;
    if (int err = onearg_domain(in, domid)) return err;
    release_domain(domid);
    c.reply = kOk;
    return 0;
}

int XenStore::do_resume(Ctx& c, const std::string& in) {
    DomId domid;
    if (int err = onearg_domain(in, domid)) return err;
    c.reply = kOk;
    return 0;
}

// control.c do_control: the first string names the command; an unknown one is EINVAL.
int XenStore::do_control(Ctx& c, const std::string& in) {
    std::vector<std::string> vec = get_strings(in);
    if (vec.empty()) return EINVAL;
    const std::string cmd = vec[0];
    vec.erase(vec.begin());
    const std::size_t num = vec.size();
    if (cmd == "check") {
        if (num) return EINVAL;
        c.reply = kOk;
    } else if (cmd == "print") {
        if (num != 1) return EINVAL;
        control_log_.push_back(vec[0]);
        c.reply = kOk;
    } else if (cmd == "log") {
        if (num == 0) {
            c.reply = std::string("Log switch settings:\nio      : ") + (log_on_ ? "on" : "off") + "\n";
            c.reply.push_back('\0');
            return 0;
        }
        if (num != 1) return EINVAL;
        if (vec[0] == "on")
            log_on_ = true;
        else if (vec[0] == "off")
            log_on_ = false;
        else
            return EINVAL;
        c.reply = kOk;
    } else if (cmd == "quota") {
        if (num == 0) {
            c.reply = "nodes: " + std::to_string(quota_.nodes_per_domain) +
                      "\nwatches: " + std::to_string(quota_.watches_per_domain) +
                      "\ntransactions: " + std::to_string(quota_.transactions_per_domain) +
                      "\nnode-size: " + std::to_string(quota_.value_size) +
                      "\npath-max: " + std::to_string(quota_.path_length) +
                      "\nnode-permissions: " + std::to_string(quota_.perms_per_node) + "\n";
        } else if (num == 1) {
            DomId d = static_cast<DomId>(std::atoi(vec[0].c_str()));
            unsigned watches = 0, txs = 0;
            for (const auto& [id, conn] : conns_)
                if (conn.domid == d) watches += conn.watches.size(), txs += conn.transactions.size();
            c.reply = "nodes: " + std::to_string(nodes_owned(d)) + "\nwatches: " + std::to_string(watches) +
                      "\ntransactions: " + std::to_string(txs) + "\n";
        } else {
            return EINVAL;
        }
        c.reply.push_back('\0');
    } else if (cmd == "help") {
        if (num) return EINVAL;
        c.reply = "check\t\nlog\t[on|off]\nprint\t<string>\nquota\t[<domid>]\nhelp\t\n";
        c.reply.push_back('\0');
    } else {
        return EINVAL;
    }
    return 0;
}

// ---- toolstack helpers ----

void XenStore::write(const std::string& path, const std::string& value) {
    Ctx c{nullptr, nullptr, {}};
    std::string name;
    if (canonicalize(c, path, false, name)) std::abort();  // a platform bug, not user input
    if (Node* n = modify(c, name)) {
        n->value = value;
    } else if (create_node(c, name, value)) {
        std::abort();
    }
    fire_watches(c, name, false, lookup(c, name), nullptr);
}

void XenStore::mkdir(const std::string& path) {
    Ctx c{nullptr, nullptr, {}};
    std::string name;
    if (canonicalize(c, path, false, name)) std::abort();
    if (lookup(c, name)) return;
    if (create_node(c, name, "")) std::abort();
    fire_watches(c, name, false, lookup(c, name), nullptr);
}

bool XenStore::rm(const std::string& path) {
    Ctx c{nullptr, nullptr, {}};
    std::string name;
    if (canonicalize(c, path, false, name) || name == "/") std::abort();
    if (!lookup(c, name)) return false;
    return rm_node(c, name) == 0;
}

std::optional<std::string> XenStore::read(const std::string& path) const {
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return std::nullopt;
    return it->second.value;
}

std::vector<std::string> XenStore::directory(const std::string& path) const {
    auto it = nodes_.find(path);
    return it == nodes_.end() ? std::vector<std::string>{} : it->second.children;
}

bool XenStore::set_perms(const std::string& path, const std::vector<XsPerm>& perms) {
    if (perms.empty()) std::abort();
    Ctx c{nullptr, nullptr, {}};
    Node* n = modify(c, path);
    if (!n) return false;
    std::vector<XsPerm> old_perms = n->perms;
    n->perms = perms;
    if (path[0] != '@') {
        owned_add(c, static_cast<DomId>(old_perms[0].id), -1);
        owned_add(c, static_cast<DomId>(perms[0].id), 1);
    }
    fire_watches(c, path, false, lookup(c, path), &old_perms);
    return true;
}

std::optional<std::vector<XsPerm>> XenStore::get_perms(const std::string& path) const {
    auto it = nodes_.find(path);
    if (it == nodes_.end()) return std::nullopt;
    return it->second.perms;
}

void XenStore::introduce_domain(DomId domid) {
    if (introduced_.count(domid)) return;
    introduced_[domid] = true;
    fire_special("@introduceDomain");
}

void XenStore::release_domain(DomId domid) {
    introduced_.erase(domid);
    fire_special("@releaseDomain");
}

// ---- introspection ----

unsigned XenStore::nodes_owned(DomId domid) const {
    auto it = owned_.find(domid);
    return it == owned_.end() ? 0 : it->second;
}

unsigned XenStore::watch_count(XsConnId conn) const {
    const Conn* c = find_conn(conn);
    return c ? static_cast<unsigned>(c->watches.size()) : 0;
}

unsigned XenStore::transaction_count(XsConnId conn) const {
    const Conn* c = find_conn(conn);
    return c ? static_cast<unsigned>(c->transactions.size()) : 0;
}

std::size_t XenStore::transaction_nodes(XsConnId conn, std::uint32_t tx_id) const {
    const Conn* c = find_conn(conn);
    if (!c) return 0;
    auto it = c->transactions.find(tx_id);
    return it == c->transactions.end() ? 0 : it->second.accessed.size();
}

std::uint64_t XenStore::generation(const std::string& path) const {
    auto it = nodes_.find(path);
    return it == nodes_.end() ? kNoGeneration : it->second.generation;
}

std::uint64_t XenStore::conn_errors(XsConnId conn) const {
    return conn_errors_.value("conn" + std::to_string(conn));
}

}  // namespace xensim
