// Confusion-matrix prediction kernels, compiled for the avx512 build: the portable
// code, vectorised by the compiler with this file's flags, the hand-written
// AVX2 argmax for float32 rows with contiguous classes, and the AVX2 tally of
// contiguous integer labels.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "cpu/confusion.h"
#include "cpu/confusion_tally.h"
#include "semantics/argmax_rule.h"
#include "semantics/dtypes.h"
#include "semantics/logits.h"

namespace {
#include "cpu/confusion_kernels_portable.h"
#include "cpu/confusion_argmax_avx2.h"
#include "cpu/confusion_tally_avx2.h"
}  // namespace

fm::cpu::PredictFn fm::cpu::select_predict_avx512(const ConfusionCall& call) {
  return select_predict_with_avx2_rows(call);
}

fm::cpu::LabelTallyFn fm::cpu::select_label_tally_avx512(int t_code, int p_code, int64_t C, bool has_ignore,
                                                       int64_t ignore) {
  return select_label_tally_with_avx2(t_code, p_code, C, has_ignore, ignore);
}
