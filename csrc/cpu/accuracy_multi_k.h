// Top-k accuracy for several k in one pass: each row's rank (the classes ranked
// above its target, counted up to kmax = call.k) goes into a histogram; correct(k)
// is then the number of rows of rank < k, for every requested k at once.
#pragma once
#include <cstdint>

#include "semantics/accuracy_call.h"

namespace fm::cpu {

// Adds rows [r0, r1) into hist (kmax + 1 int64: hist[r] rows of rank r, rank
// capped at kmax; rows with an out-of-range label land in hist[kmax]) and the
// non-ignored rows into *total.
using RankHistogramFn = void (*)(const AccuracyCall&, int64_t r0, int64_t r1, int64_t* hist, int64_t* total);

RankHistogramFn select_rank_histogram_baseline(const AccuracyCall&);
#if defined(FM_HAVE_X86_KERNELS)
RankHistogramFn select_rank_histogram_avx2(const AccuracyCall&);
RankHistogramFn select_rank_histogram_avx512(const AccuracyCall&);
#endif
RankHistogramFn select_rank_histogram(const AccuracyCall&);

// The whole call over the threads: hist (kmax + 1) and *total are ADDED to.
void rank_histogram(const AccuracyCall& call, RankHistogramFn kernel, int64_t* hist, int64_t* total);

}  // namespace fm::cpu
