// The confusion-matrix count for matrices with more cells than samples (or too
// many for private tables): samples are binned first, and the bins are added
// into the caller's matrix only once every sample was found valid.
#pragma once
#include <cstdint>

#include "cpu/confusion.h"

namespace fm::cpu {

// Adds the call's counts into matrix, bin threads binning the samples (the
// shares of rows as for the other paths); returns the first invalid sample
// (matrix then unchanged).
InvalidSample count_direct(const ConfusionCall& call, PredictFn predict, int64_t bin_threads, int64_t* matrix);

// Bins rows [r0, r1) of a call into bins[0, r1 - r0) (t * C + p, or all ones for
// a skipped sample), or only checks them when bins is nullptr; returns the first
// invalid sample. One per ISA build, for C <= 65535.
using DirectBinsFn = InvalidSample (*)(const ConfusionCall&, PredictFn, int64_t r0, int64_t r1, uint32_t* bins);
#if defined(FM_HAVE_X86_KERNELS)
DirectBinsFn select_direct_bins_avx2(const ConfusionCall&);
#endif

// Rows binned into one buffer before its bins are added (tests set it small to
// check the labels-first walk of longer calls; rows <= 0 restores the default).
void set_confusion_direct_rows(int64_t rows);

}  // namespace fm::cpu
