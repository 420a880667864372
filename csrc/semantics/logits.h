// Scores of each logit code: how they are stored and the type the rule compares
// them in. float16 and bfloat16 widen to float exactly (NaN stays NaN), so the rule
// is the same for every dtype. Loading is the caller's (plain on the CPU, __ldg on
// the GPU); the widening is written only here.
#pragma once
#include "dtypes.h"
#include <type_traits>

#include "hd.h"

namespace fm {

template <int Code>
struct LogitTraits {
  using Storage = typename LogitStorage<Code>::type;
  using Compute = typename std::conditional<Code == kF64, double, float>::type;
};

// A free static function, not a member: it must keep internal linkage, since the
// per-ISA translation units each compile their own half_to_float.
template <int Code>
FM_HD typename LogitTraits<Code>::Compute widen_logit(typename LogitTraits<Code>::Storage s) {
  if constexpr (Code == kF16) return half_to_float(s);
  else if constexpr (Code == kBF16) return bfloat16_to_float(s);
  else return s;
}

}  // namespace fm
