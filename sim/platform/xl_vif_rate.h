// A vif's rate limit as the toolstack takes it: xl's `rate=` syntax (xl-network-configuration(5))
// to libxl_device_nic's rate_bytes_per_interval / rate_interval_usecs, and the backend's `rate`
// node libxl writes from them.
//
// The problem. A user limits a guest's transmit bandwidth with e.g. rate=10Mb/s@20ms; netback
// enforces "so many bytes per so many microseconds" (xen_net_read_rate reads "bytes,usec" from the
// backend directory; its credit scheduler is NetifRingBackend's). The translation between the two
// is the toolstack's, and a scenario uses the same text the user would give xl.
//
// What is modelled, following xen tools/libs/util/libxlu_vif.c xlu_vif_parse_rate:
//  * RATE[@INTERVAL]: the text before the first '@' is the rate, the rest (if any) the interval;
//    an empty rate is "no rate specified".
//  * RATE must match ^[0-9]+[GMK]?[Bb]/s$ (capital K only, as xl's regex has it): the number is
//    read with strtoull base 0 (so a leading 0 reads octal, and "08" reads as 0), must be 1..2^32-1,
//    is multiplied by 10^9 / 10^6 / 10^3 for G / M / K, and divided by 8 (truncating) when the unit
//    is b (bits) rather than B (bytes).
//  * INTERVAL must match ^[0-9]+[mu]?s?$: read the same way, 1..2^32-1, in seconds when it ends
//    in s or nothing, milliseconds after m, microseconds after u; the result in microseconds must
//    fit 32 bits. Default 50 ms.
//  * bytes per interval = bytes_per_sec * interval_usecs / 10^6 (truncating; "rate overflow" if
//    the product would not fit 64 bits). It may be 0 (xl accepts "1B/s@1ms"): netback then never
//    has credit for a packet, as Linux with such a node.
//  * libxl__set_xenstore_nic writes `rate` = "%"PRIu64",%"PRIu32 of the two when the interval is
//    non-zero (always, after a successful parse).
// Deliberate difference: xl prints its error and exits; here the error text is returned for the
// scenario's error message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace xensim {

struct VifRate {
    std::uint64_t bytes_per_interval = 0;  // libxl_device_nic.rate_bytes_per_interval
    std::uint32_t interval_usecs = 0;      // libxl_device_nic.rate_interval_usecs
    bool operator==(const VifRate& o) const {
        return bytes_per_interval == o.bytes_per_interval && interval_usecs == o.interval_usecs;
    }
};

struct VifRateParse {
    std::optional<VifRate> rate;
    std::string error;  // xl's message when rate is empty ("invalid rate", "rate overflow", ...)
};

VifRateParse parse_xl_vif_rate(const std::string& text);

// The backend's `rate` node value: "bytes,usec".
std::string vif_rate_node(const VifRate& rate);

}  // namespace xensim
