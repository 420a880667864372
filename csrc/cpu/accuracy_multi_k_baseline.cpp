// Several-k accuracy kernels, compiled for any CPU (the portable code,
// vectorised by the compiler with this file's flags).
#include "cpu/accuracy.h"
#include "cpu/accuracy_multi_k.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/kernels_portable.h"
#include "cpu/rank_histogram_portable.h"
}  // namespace

fm::cpu::RankHistogramFn fm::cpu::select_rank_histogram_baseline(const AccuracyCall& call) {
  return select_rank_histogram_portable(call);
}
