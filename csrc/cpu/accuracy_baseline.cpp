// Accuracy kernels for any CPU: the portable code with the default flags.
#include "cpu/accuracy.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/kernels_portable.h"
}  // namespace

fm::cpu::Candidates fm::cpu::kernel_candidates_baseline(const AccuracyCall& call) {
  return {{"baseline/portable", select_portable(call)}};
}
