// The per-row accuracy rule, shared by every CPU and CUDA kernel.
//
// numpy's argmax order: NaN is the greatest value and the first NaN wins; among
// equal values the lowest index wins. The target t (value v = y[t]) is ranked by
// counting the classes that come before it in that order; the row is correct for
// top-k when fewer than k classes rank above it. No argmax is ever computed: the
// argmax is t exactly when no earlier class ranks >= v and no later one ranks > v
// (in that order), and the count of classes failing this is t's rank.
#pragma once
#include "hd.h"

namespace fm {

enum LabelKind : int { kLabelIgnored = 0, kLabelOutOfRange = 1, kLabelValid = 2 };

// Labels arrive as int64. Unsigned 64-bit labels are reinterpreted (as is the
// ignore label, by the caller), which keeps equality and sends values >= 2^63 out
// of range. Bounds are checked here, before any kernel reads y[i, t].
FM_HD int classify_label(int64_t t, int64_t num_classes, bool has_ignore, int64_t ignore) {
  if (has_ignore && t == ignore) return kLabelIgnored;
  if (t < 0 || t >= num_classes) return kLabelOutOfRange;
  return kLabelValid;
}

// Does a class with score x rank above the target (score v)? `before_target` says
// whether the class index is lower than the target's. Written with negated ordered
// compares so that a NaN x always ranks above a non-NaN v: !(x <= v) is true for
// x > v and for NaN. Branch-free so that compilers vectorise loops over it.
template <class F>
FM_HD int rank_step(F x, F v, bool before_target) {
  const bool v_is_nan = v != v;
  const bool x_is_nan = x != x;
  const bool above_number = (!(x <= v)) | (before_target & (x == v));
  const bool above_nan = before_target & x_is_nan;  // a NaN target loses only to an earlier NaN
  return int((v_is_nan & above_nan) | (!v_is_nan & above_number));
}

template <class F>
FM_HD int ranks_above(F x, F v, int64_t j, int64_t t) { return rank_step<F>(x, v, j < t); }

// The same rule specialised for a non-NaN target, as the SIMD kernels use it:
// a class before the target ranks above it unless x < v (NLT_UQ), a class after it
// ranks above it unless x <= v (NLE_UQ).
template <class F>
FM_HD int ranks_above_before_target(F x, F v) { return int(!(x < v)); }
template <class F>
FM_HD int ranks_above_after_target(F x, F v) { return int(!(x <= v)); }

// The same rule as integer compares ("order keys", applied lane-wise by the SIMD
// kernels): map each score's bits to key = magnitude, negated for a set sign bit,
// and the largest key for every NaN (magnitude above the infinity's bits). Keys
// order like numpy's argmax order (-0.0 and +0.0 share a key). Then, for any target
// (NaN or not), a class before the target ranks above it iff key(x) >= key(v), and a
// class after it iff key(x) > key(v): no NaN special case. Works for binary16,
// bfloat16, binary32 and binary64 bits.

// The number of classes ranked above the target, counted until it reaches k.
// load(j) returns the score of class j as F.
template <class F, class Load>
FM_HD int64_t target_rank(const Load& load, int64_t num_classes, int64_t t, int64_t k) {
  const F v = load(t);
  int64_t rank = 0;
  for (int64_t j = 0; j < num_classes && rank < k; ++j) rank += rank_step<F>(load(j), v, j < t);
  return rank;
}

}  // namespace fm
