// The XenStore wire codec: framing of struct xsd_sockmsg + payload over a byte stream.
//
// What is modelled. Every XenStore message, in either direction and on either transport (the shared
// xenstore_domain_interface ring of a domain, or the xenstored Unix socket), is a 16-byte header
// struct xsd_sockmsg {type, req_id, tx_id, len} in host byte order (little-endian on x86) followed by
// len payload bytes (docs/misc/xenstore.txt; xen/include/public/io/xs_wire.h). XsWireParser is fed
// arbitrary chunks -- a ring is drained in whatever pieces the indexes allow -- and yields whole
// messages. Its buffer never holds more than one header plus XENSTORE_PAYLOAD_MAX bytes; completed
// messages are handed to the caller as they are framed.
//
// Source followed: xen tools/xenstored/core.c handle_input(): the header is accumulated first; as
// soon as it is complete, len > XENSTORE_PAYLOAD_MAX is a protocol error (syslog "Client tried to
// feed us %i", then ignore_connection(conn, XENSTORE_ERROR_PROTO)); only then is the payload read.
// xenstore.txt: "If a client exceeds the limit, its xenstored connection will be immediately killed".
// The parser reports this as a sticky error carrying XENSTORE_ERROR_PROTO; the transport (the SystemC
// wrapper) turns it into the disconnect. A zero-length payload is legal (e.g. TRANSACTION_START with
// an empty body from some clients) and completes the message at the header.
//
// Deliberate differences: none in framing. xenstored reads the ring in place; this parser copies.
// The message type is not validated here: an unknown type is a well-framed message that the store
// answers with ENOSYS (process_message), not a framing error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "sim/core/xen_abi.h"
#include <xen/io/xs_wire.h>

namespace xensim {

// One XenStore message: the header fields except len, and the payload bytes exactly as on the wire
// (NUL separators and terminators included; len is payload.size()).
struct XsMessage {
    std::uint32_t type = 0;
    std::uint32_t req_id = 0;
    std::uint32_t tx_id = 0;
    std::string payload;
};

inline bool operator==(const XsMessage& a, const XsMessage& b) {
    return a.type == b.type && a.req_id == b.req_id && a.tx_id == b.tx_id && a.payload == b.payload;
}

static_assert(sizeof(xsd_sockmsg) == 16, "xs_wire.h: the header is four uint32_t");

class XsWireParser {
  public:
    // Feeds bytes; returns false once the stream is in error (now or earlier). Bytes after the error
    // are ignored: the connection is dead, as in xenstored's ignore_connection.
    bool feed(const void* data, std::size_t len);
    bool feed(const std::string& bytes) { return feed(bytes.data(), bytes.size()); }

    // Completed messages in arrival order.
    bool has_message() const { return !ready_.empty(); }
    XsMessage pop();  // precondition: has_message()
    std::size_t ready_count() const { return ready_.size(); }

    bool error() const { return error_ != XENSTORE_ERROR_NONE; }
    // XENSTORE_ERROR_NONE, or XENSTORE_ERROR_PROTO after an oversized len (the value xenstored stores
    // in xenstore_domain_interface.error).
    std::uint32_t error_code() const { return error_; }
    // The offending header's len, for the transport's log.
    std::uint32_t bad_len() const { return bad_len_; }

    // Bytes of the message currently being framed (header or payload), for tests of the bound.
    std::size_t buffered() const { return header_used_ + payload_.size(); }
    // Bytes still to feed before the current part (header or payload) is complete: a reader that
    // must stop between messages (xenstored's outstanding-request quota) feeds at most this much.
    std::size_t until_boundary() const {
        return in_header_ ? sizeof(header_) - header_used_ : hdr_.len - payload_.size();
    }

  private:
    unsigned char header_[sizeof(xsd_sockmsg)] = {};
    std::size_t header_used_ = 0;
    bool in_header_ = true;
    xsd_sockmsg hdr_{};
    std::string payload_;
    std::deque<XsMessage> ready_;
    std::uint32_t error_ = XENSTORE_ERROR_NONE;
    std::uint32_t bad_len_ = 0;
};

// Serializes a message (header in host order, then the payload). Returns false and leaves `out`
// untouched if the payload exceeds XENSTORE_PAYLOAD_MAX, which no conforming peer may send.
bool xs_serialize(const XsMessage& msg, std::string& out);

}  // namespace xensim
