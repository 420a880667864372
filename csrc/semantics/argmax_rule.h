// numpy's argmax rule, shared by every CPU and CUDA kernel that predicts a class
// from scores (the confusion matrix): the first maximum wins ties, NaN counts as
// the maximum and the first NaN wins.
//
// Walking the classes in order, class j replaces the best so far exactly when
// argmax_takes(x_j, best) holds: x > best (never true once best is NaN), or x is
// NaN while best is not. Equal scores never replace (first maximum wins; -0.0 ==
// +0.0, so the earlier of the two zeros wins). Branch-free so that compilers turn
// loops over it into vector selects.
#pragma once
#include <cstdint>

#include "hd.h"

namespace fm {

template <class F>
FM_HD bool argmax_takes(F x, F best) {
  return (x > best) | ((x != x) & (best == best));
}

// Does score x at index i come before score y at index j in numpy's argmax order
// (NaN first, the first NaN among NaNs, then greater scores, then lower indices)?
// For combining partial argmaxes whose indices are not visited in order (GPU lanes
// that each took every G-th class). For j < i it is argmax_takes(x, y).
template <class F>
FM_HD bool argmax_prefers(F x, int64_t i, F y, int64_t j) {
  const bool x_nan = x != x, y_nan = y != y;
  const bool numbers = !x_nan & !y_nan;
  return (x_nan & !y_nan) | (x_nan & y_nan & (i < j)) | (numbers & ((x > y) | ((x == y) & (i < j))));
}

// The argmax of a row of num_classes >= 1 scores; load(j) returns score j as F.
// For num_classes == 0 it returns 0 (callers never count such rows: every label
// is then out of range).
template <class F, class Load>
FM_HD int64_t row_argmax(const Load& load, int64_t num_classes) {
  if (num_classes <= 0) return 0;
  F best = load(0);
  int64_t index = 0;
  for (int64_t j = 1; j < num_classes; ++j) {
    const F x = load(j);
    const bool takes = argmax_takes<F>(x, best);
    best = takes ? x : best;
    index = takes ? j : index;
  }
  return index;
}

}  // namespace fm
