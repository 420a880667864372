// Confusion-matrix prediction kernels, compiled for the avx2 build: the portable
// code, vectorised by the compiler with this file's flags, and the hand-written
// AVX2 argmax for float32 rows with contiguous classes.
#include <immintrin.h>

#include "cpu/confusion.h"
#include "semantics/argmax_rule.h"
#include "semantics/dtypes.h"
#include "semantics/logits.h"

namespace {
#include "cpu/confusion_kernels_portable.h"
#include "cpu/confusion_argmax_avx2.h"
}  // namespace

fm::cpu::PredictFn fm::cpu::select_predict_avx2(const ConfusionCall& call) {
  return select_predict_with_avx2_rows(call);
}
