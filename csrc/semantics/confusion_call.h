// One confusion-matrix call, as every backend sees it: an accuracy call (scores y
// viewed as (N, C, M), labels t as (N, M), codes, ignore label) plus where the
// predictions come from. With integer predictions, y holds labels of t's shape,
// read with the strides ys_n and ys_m and the label code pred_code; ys_c and
// y_code are then unused. C is the number of classes of the (C, C) matrix.
#pragma once
#include <cstdint>

#include "accuracy_call.h"
#include "hd.h"

namespace fm {

struct ConfusionCall {
  AccuracyCall a;    // k is unused
  int pred_code;     // -1: y holds scores; else the fm::LabelType of integer predictions
};

FM_HD bool predicts_from_scores(const ConfusionCall& c) { return c.pred_code < 0; }

// Where a sample goes: the flat index t * C + p of the matrix, or one of the two
// negative codes below. t and p are int64 readings (uint64 reinterpreted, as for
// accuracy), so values >= 2^63 are out of range too.
enum : int64_t { kBinIgnored = -1, kBinInvalid = -2 };

FM_HD int64_t confusion_bin(int64_t t, int64_t p, int64_t C, bool has_ignore, int64_t ignore) {
  if (has_ignore && t == ignore) return kBinIgnored;
  const bool valid = (t >= 0) & (t < C) & (p >= 0) & (p < C);
  return valid ? t * C + p : kBinInvalid;
}

}  // namespace fm
