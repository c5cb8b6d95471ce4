// VMX basic exit reasons the models produce, with their Intel SDM names and numbers
// (Intel SDM Vol. 3C, Appendix C "VMX Basic Exit Reasons"). Reports use the names verbatim.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

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

}  // namespace xensim
