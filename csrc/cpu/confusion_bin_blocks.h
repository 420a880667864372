// The walk both CPU confusion paths share: rows in blocks, each block's labels
// read in place (typed per label dtype pair), predicted from the scores when the
// call has them, and turned into matrix bins. What happens to a block's bins is
// the sink's: the private tables count them (confusion.cpp), the direct count
// stores them for adding later (confusion_direct_bins.h).
//
// Internal linkage (static), as for confusion_tally.h: the ISA translation units
// compile this loop with their own flags.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/confusion.h"
#include "cpu/confusion_tally.h"
#include "semantics/confusion_call.h"

namespace fm::cpu {

// One block's bins. Unit strides get their own (vectorised) copy of the loop.
// Predictions from scores are in [0, C) by construction: only t is checked, and
// with 32-bit bins (C * C fits) the bin is computed in 32 bits.
template <bool HasIgnore, class Bin, class T, class P>
static inline bool bin_any_block(const T* t, int64_t t_step, const P* p, int64_t p_step, bool scores, int width,
                                 int64_t C, IgnoreAs<T> ignore, Bin skipped, Bin* bins) {
  if constexpr (std::is_same_v<Bin, uint32_t> && std::is_same_v<P, int64_t>) {
    if (scores)
      return t_step == 1 ? bin_scores_block<HasIgnore>(t, 1, p, width, C, ignore, skipped, bins)
                         : bin_scores_block<HasIgnore>(t, t_step, p, width, C, ignore, skipped, bins);
  }
  return t_step == 1 && p_step == 1 ? bin_block<HasIgnore>(t, 1, p, 1, width, C, ignore, skipped, bins)
                                    : bin_block<HasIgnore>(t, t_step, p, p_step, width, C, ignore, skipped, bins);
}

// Bins rows [r0, r1) block by block: the block starting `offset` rows after r0
// is written (t * C + p, or `skipped` for an ignored sample) where
// sink.bins_at(offset) says, or into a local block when that is nullptr, and
// sink.take(bins, width) then receives it. Scores are predicted
// only when sink.predicts(); otherwise their predictions read as 0, which is
// valid, so the walk only checks the true labels. Returns the first invalid
// sample; no block after the one holding it is binned or taken.
template <bool HasIgnore, class Bin, class T, class P, class Sink>
static InvalidSample bin_blocks(const ConfusionCall& call, PredictFn predict, int64_t r0, int64_t r1, Bin skipped,
                                Sink& sink) {
  const AccuracyCall& a = call.a;
  const IgnoreAs<T> ignore = ignore_as<T>(a.has_ignore, a.ignore);
  const bool scores = predict != nullptr;
  // Flat rows (M == 1) form one run across n; so do (N, M) labels stored as one
  // run. Blocks of predicted samples stay inside one n (see PredictFn).
  const bool one_run = a.M == 1 || (!scores && a.ts_n == a.M * a.ts_m && a.ys_n == a.M * a.ys_m);
  const int64_t t_step = a.M == 1 ? a.ts_n : a.ts_m, y_step = a.M == 1 ? a.ys_n : a.ys_m;
  int64_t predicted[kConfusionBlock] = {};  // stays 0 (valid) when not predicting
  Bin block[kConfusionBlock];  // the bins, unless the sink has a place for them
  for (int64_t r = r0; r < r1;) {
    const RowIndex first = split_row(r, a.M);
    const int64_t run = one_run ? r1 - r : a.M - first.m;
    const int width = int(std::min<int64_t>({kConfusionBlock, r1 - r, run}));
    const T* t = static_cast<const T*>(a.t) + t_row_offset(a, first);
    const P* p;
    int64_t p_step;
    if constexpr (std::is_same_v<P, int64_t>) {
      if (scores && sink.predicts()) predict(call, first, width, predicted);
      p = scores ? predicted : static_cast<const P*>(a.y) + y_row_offset(a, first);
      p_step = scores ? 1 : y_step;
    } else {
      p = static_cast<const P*>(a.y) + y_row_offset(a, first);
      p_step = y_step;
    }
    Bin* bins = sink.bins_at(r - r0);
    if (bins == nullptr) bins = block;
    const bool bad = bin_any_block<HasIgnore>(t, t_step, p, p_step, scores, width, a.C, ignore, skipped, bins);
    if (bad) {
      for (int i = 0; i < width; ++i) {
        const int64_t ti = int64_t(t[i * t_step]), pi = int64_t(p[i * p_step]);
        if (confusion_bin(ti, pi, a.C, a.has_ignore, a.ignore) == kBinInvalid) return {r + i, ti, pi};
      }
    }
    sink.take(bins, width);
    r += width;
  }
  return {};
}

}  // namespace fm::cpu
