// Confusion-matrix prediction kernels, compiled for the avx2 build: the portable
// code, vectorised by the compiler with this file's flags, and a hand-written
// argmax for float32 rows with contiguous classes.
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
  if (call.a.y_code == fm::kF32 && call.a.ys_c == 1 && call.a.C >= 1) {
    switch ((call.a.C + 7) / 8) {
      case 1: return predict_short_rows_f32_avx2<1>;
      case 2: return predict_short_rows_f32_avx2<2>;
      case 3: return predict_short_rows_f32_avx2<3>;
      case 4: return predict_short_rows_f32_avx2<4>;
      default: return predict_rows_f32_avx2;
    }
  }
  return select_predict_portable(call);
}
