// VMX basic exit reasons the models produce, with their Intel SDM names and numbers
// (Intel SDM Vol. 3C, Appendix C "VMX Basic Exit Reasons"). Reports use the names verbatim.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "sim/core/hex.h"

namespace xensim {

enum class ExitReason : std::uint8_t {
    EXTERNAL_INTERRUPT,  // 1
    CPUID,               // 10
    HLT,                 // 12
    VMCALL,              // 18
    IO_INSTRUCTION,      // 30
    MSR_READ,            // 31
    MSR_WRITE,           // 32
    APIC_ACCESS,         // 44
    EPT_VIOLATION,       // 48
    EPT_MISCONFIG,       // 49
    APIC_WRITE,          // 56
    count
};

inline constexpr std::size_t kExitReasonCount = static_cast<std::size_t>(ExitReason::count);

struct ExitReasonInfo {
    ExitReason reason;
    std::string_view name;
    unsigned sdm_number;
};

inline constexpr std::array<ExitReasonInfo, kExitReasonCount> kExitReasons = {{
    {ExitReason::EXTERNAL_INTERRUPT, "EXTERNAL_INTERRUPT", 1},
    {ExitReason::CPUID, "CPUID", 10},
    {ExitReason::HLT, "HLT", 12},
    {ExitReason::VMCALL, "VMCALL", 18},
    {ExitReason::IO_INSTRUCTION, "IO_INSTRUCTION", 30},
    {ExitReason::MSR_READ, "MSR_READ", 31},
    {ExitReason::MSR_WRITE, "MSR_WRITE", 32},
    {ExitReason::APIC_ACCESS, "APIC_ACCESS", 44},
    {ExitReason::EPT_VIOLATION, "EPT_VIOLATION", 48},
    {ExitReason::EPT_MISCONFIG, "EPT_MISCONFIG", 49},
    {ExitReason::APIC_WRITE, "APIC_WRITE", 56},
}};

inline constexpr std::string_view exit_reason_name(ExitReason r) {
    return kExitReasons[static_cast<std::size_t>(r)].name;
}

// The cause of an exit as the exits_by_cause label writes it: a fixed name ("hlt", "eoi",
// "hypercall:event_channel_op/EVTCHNOP_send") or a kind and the number it names ("port" and 0x1f7
// for "port:0x1f7"). Kept in two parts so that an exit whose cause was counted before formats no
// string: the vCPU recognises it by (kind, number) and builds the label only on first use and
// when tracing. `kind` must stay valid for the call it is passed to (the vCPU keeps a copy).
struct ExitCause {
    constexpr ExitCause(const char* name) : kind(name) {}
    constexpr ExitCause(std::string_view name) : kind(name) {}
    ExitCause(const std::string& name) : kind(name) {}
    constexpr ExitCause(std::string_view k, std::uint64_t v) : kind(k), value(v), numbered(true) {}
    std::string label() const {
        return numbered ? std::string(kind) + ":" + hex_string(value) : std::string(kind);
    }

    std::string_view kind;
    std::uint64_t value = 0;
    bool numbered = false;
};

}  // namespace xensim
