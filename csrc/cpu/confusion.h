// The CPU confusion-matrix call: per-ISA prediction kernels, and the threaded
// count that tallies (true, predicted) pairs into an int64 (C, C) matrix.
#pragma once
#include <cstdint>

#include "semantics/confusion_call.h"

namespace fm::cpu {

// Writes the argmax of `width` consecutive samples starting at `first` into pred.
// The samples never cross a batch index n (when M > 1), so consecutive samples are
// one row stride apart: ys_n for flat rows (M == 1), ys_m otherwise.
using PredictFn = void (*)(const ConfusionCall&, RowIndex first, int width, int64_t* pred);

// The most samples one PredictFn call handles.
constexpr int kConfusionBlock = 256;

// Each ISA build's prediction kernel for a call with scores (chosen once per plan).
PredictFn select_predict_baseline(const ConfusionCall&);
#if defined(FM_HAVE_X86_KERNELS)
PredictFn select_predict_avx2(const ConfusionCall&);
PredictFn select_predict_avx512(const ConfusionCall&);
#endif
// The active ISA's kernel; nullptr for a call with integer predictions.
PredictFn select_predict(const ConfusionCall&);

// The first sample with a non-ignored label outside [0, C): its flat index r, the
// true and predicted labels (int64 readings), or row < 0 when there is none.
struct InvalidSample {
  int64_t row = -1;
  int64_t t = 0, p = 0;
};

// Adds the call's counts into matrix (C * C int64, row-major, true label major) and
// returns the first invalid sample. When there is one, matrix is left unchanged.
InvalidSample count_confusion(const ConfusionCall& call, PredictFn predict, int64_t* matrix);

// Rows a thread tallies into its uint32 counters before moving them into int64
// ones (default and maximum 2^32 - 1, so that none overflows; rows <= 0 restores
// it). Tests set it small to reach the move.
void set_confusion_spill_rows(int64_t rows);

}  // namespace fm::cpu
