#include "models/xen/xenstore_wire.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace xensim {

bool XsWireParser::feed(const void* data, std::size_t len) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (!error()) {
        if (in_header_) {
            std::size_t n = std::min(len, sizeof(header_) - header_used_);
            if (n) std::memcpy(header_ + header_used_, p, n);
            header_used_ += n;
            p += n;
            len -= n;
            if (header_used_ != sizeof(header_)) return true;
            std::memcpy(&hdr_, header_, sizeof(hdr_));
            // handle_input: checked as soon as the header is complete, before any payload is read.
            if (hdr_.len > XENSTORE_PAYLOAD_MAX) {
                error_ = XENSTORE_ERROR_PROTO;
                bad_len_ = hdr_.len;
                return false;
            }
            in_header_ = false;
            payload_.clear();
            payload_.reserve(hdr_.len);
        }
        std::size_t n = std::min<std::size_t>(len, hdr_.len - payload_.size());
        payload_.append(reinterpret_cast<const char*>(p), n);
        p += n;
        len -= n;
        if (payload_.size() != hdr_.len) return true;
        ready_.push_back(XsMessage{hdr_.type, hdr_.req_id, hdr_.tx_id, std::move(payload_)});
        payload_ = std::string();
        in_header_ = true;
        header_used_ = 0;
        if (len == 0) return true;
    }
    return false;
}

XsMessage XsWireParser::pop() {
    if (ready_.empty()) std::abort();  // broken invariant: caller must check has_message()
    XsMessage m = std::move(ready_.front());
    ready_.pop_front();
    return m;
}

bool xs_serialize(const XsMessage& msg, std::string& out) {
    if (msg.payload.size() > XENSTORE_PAYLOAD_MAX) return false;
    xsd_sockmsg hdr{msg.type, msg.req_id, msg.tx_id, static_cast<std::uint32_t>(msg.payload.size())};
    out.append(reinterpret_cast<const char*>(&hdr), sizeof(hdr));
    out.append(msg.payload);
    return true;
}

}  // namespace xensim
