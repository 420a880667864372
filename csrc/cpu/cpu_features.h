// Which instruction-set build of the CPU kernels runs here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fm::cpu {

// The ISA builds compiled into this binary and supported by this CPU, best last
// ("baseline", then "avx2", "avx512").
std::vector<std::string> usable_isas();

// The ISA the kernels use now: the best usable one, unless FUSEDMETRICS_CPU_ISA or
// set_active_isa() chose another (tests use this to exercise every build).
std::string active_isa();

// Returns false (and changes nothing) if `isa` is not usable here.
bool set_active_isa(const std::string& isa);

// Changes whenever the active ISA may have changed (a lock-free read): plans keep
// the kernel they selected and select again only when this moved.
uint64_t isa_generation();

}  // namespace fm::cpu
