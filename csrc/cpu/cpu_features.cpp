#include "cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace fm::cpu {
namespace {

bool cpu_has_avx2() {
#if defined(FM_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  // Every extension the AVX2 and AVX-512 builds are compiled with (CMakeLists.txt): a VM may hide
  // one while showing AVX2. "abm" is the CPUID bit of LZCNT.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("abm") &&
         __builtin_cpu_supports("popcnt");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(FM_AVX512_EMULATED)
  return cpu_has_avx2();  // test build: the AVX-512 units are SIMDe emulation compiled for AVX2
#elif defined(FM_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports also checks that the OS saves the AVX-512 state.
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

std::mutex g_mutex;
std::string g_active;
std::atomic<uint64_t> g_generation{0};

}  // namespace

std::vector<std::string> usable_isas() {
  std::vector<std::string> isas{"baseline"};
  if (cpu_has_avx2()) isas.push_back("avx2");
  if (cpu_has_avx512()) isas.push_back("avx512");
  return isas;
}

bool set_active_isa(const std::string& isa) {
  for (const auto& usable : usable_isas()) {
    if (usable == isa) {
      std::lock_guard<std::mutex> lock(g_mutex);
      g_active = isa;
      g_generation.fetch_add(1, std::memory_order_release);
      return true;
    }
  }
  return false;
}

uint64_t isa_generation() { return g_generation.load(std::memory_order_acquire); }

std::string active_isa() {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_active.empty()) return g_active;
  }
  const char* env = std::getenv("FUSEDMETRICS_CPU_ISA");
  if (!(env && set_active_isa(env))) set_active_isa(usable_isas().back());
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_active;
}

}  // namespace fm::cpu
