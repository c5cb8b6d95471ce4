#include "sim/platform/xl_vif_rate.h"

#include <cerrno>
#include <cstdlib>

namespace xensim {

namespace {

constexpr std::uint64_t kU32Max = 0xffffffffu;
constexpr std::uint64_t kU64Max = ~std::uint64_t{0};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// ^[0-9]+[GMK]?[Bb]/s$
bool matches_rate(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == 0) return false;
    if (i < s.size() && (s[i] == 'G' || s[i] == 'M' || s[i] == 'K')) ++i;
    if (i >= s.size() || (s[i] != 'B' && s[i] != 'b')) return false;
    return s.compare(i + 1, std::string::npos, "/s") == 0;
}

// ^[0-9]+[mu]?s?$
bool matches_interval(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == 0) return false;
    if (i < s.size() && (s[i] == 'm' || s[i] == 'u')) ++i;
    if (i < s.size() && s[i] == 's') ++i;
    return i == s.size();
}

// strtoull(p, &p, 0) over a string the regex has checked; `end` is where it stopped.
std::uint64_t read_number(const std::string& s, std::size_t& end, bool& range_error) {
    const char* begin = s.c_str();
    char* stop = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(begin, &stop, 0);
    range_error = errno == ERANGE;
    end = static_cast<std::size_t>(stop - begin);
    return v;
}

}  // namespace

VifRateParse parse_xl_vif_rate(const std::string& text) {
    VifRateParse out;
    const std::size_t at = text.find('@');
    const std::string rate = text.substr(0, at);
    if (rate.empty()) {
        out.error = "no rate specified";
        return out;
    }
    // vif_parse_rate_bytes_per_sec
    if (!matches_rate(rate)) {
        out.error = "invalid rate";
        return out;
    }
    std::size_t p = 0;
    bool erange = false;
    std::uint64_t bytes_per_sec = read_number(rate, p, erange);
    if (bytes_per_sec == 0 || bytes_per_sec > kU32Max || erange) {
        out.error = "rate overflow";
        return out;
    }
    const char unit = rate[p];  // the regex guarantees a character here, and one after it
    if (unit == 'G')
        bytes_per_sec *= 1000ull * 1000 * 1000;
    else if (unit == 'M')
        bytes_per_sec *= 1000ull * 1000;
    else if (unit == 'K')
        bytes_per_sec *= 1000ull;
    if (unit == 'b' || rate[p + 1] == 'b') bytes_per_sec /= 8;

    // vif_parse_rate_interval_usecs
    std::uint64_t interval_usecs = 50000;  // "Default to 50ms"
    if (at != std::string::npos) {
        const std::string interval = text.substr(at + 1);
        if (!matches_interval(interval)) {
            out.error = "invalid replenishment interval";
            return out;
        }
        std::uint64_t tmp = read_number(interval, p, erange);
        if (tmp == 0 || tmp > kU32Max || erange) {
            out.error = "replenishment interval overflow";
            return out;
        }
        const char suffix = p < interval.size() ? interval[p] : '\0';
        if (suffix == 's' || suffix == '\0')
            tmp *= 1000ull * 1000;
        else if (suffix == 'm')
            tmp *= 1000ull;
        if (tmp > kU32Max) {
            out.error = "replenishment interval overflow";
            return out;
        }
        interval_usecs = tmp;
    }
    if (bytes_per_sec > kU64Max / interval_usecs) {
        out.error = "rate overflow";
        return out;
    }
    VifRate r;
    r.interval_usecs = static_cast<std::uint32_t>(interval_usecs);
    r.bytes_per_interval = bytes_per_sec * interval_usecs / 1000000ull;
    out.rate = r;
    return out;
}

std::string vif_rate_node(const VifRate& rate) {
    return std::to_string(rate.bytes_per_interval) + "," + std::to_string(rate.interval_usecs);
}

}  // namespace xensim
