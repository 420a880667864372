// The per-row accuracy rule, shared by every CPU and CUDA kernel.
//
// numpy's argmax order: NaN is the greatest value and the first NaN wins; among
// equal values the lowest index wins. The target t (value v = y[t]) is ranked by
// counting the classes that come before it in that order; the row is correct for
// top-k when fewer than k classes rank above it. No argmax is ever computed.
// See research/kernels.md section 1 for the proof sketch and the checks.
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

// The same rule as integer compares. Map each score's bits to a key that orders like
// numpy's argmax order: -0.0 and +0.0 share a key, every NaN gets the largest key.
// Then, for any target (NaN or not), a class before the target ranks above it iff
// key(x) >= key(v), and a class after it iff key(x) > key(v): no NaN special case.
// (For a NaN target, key(v) is the largest key, so only an earlier NaN ties it.)
// Works for binary16 (kSignBit 0x8000, kInfBits 0x7c00), bfloat16 (0x8000, 0x7f80),
// binary32 and binary64; SIMD kernels apply it lane-wise.
template <class Int, class UInt>
FM_HD Int order_key(UInt bits, UInt sign_bit, UInt inf_bits) {
  const UInt magnitude = bits & UInt(sign_bit - 1);
  if (magnitude > inf_bits) return Int(sign_bit - 1);  // NaN: above +inf
  return (bits & sign_bit) ? -Int(magnitude) : Int(magnitude);
}

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
