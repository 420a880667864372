// The CPU accuracy kernels: per-ISA kernel selection and the threaded call.
#pragma once
#include <cstdint>

#include "semantics/accuracy_call.h"

namespace fm::cpu {

struct Counts {
  int64_t correct = 0;
  int64_t total = 0;
};

// Counts rows [row_begin, row_end) of a call.
using CountRowsFn = Counts (*)(const AccuracyCall&, int64_t row_begin, int64_t row_end);

// Each ISA build's kernel for a call. The choice depends on the call's codes,
// sizes and strides only, never on its pointers, so a plan makes it once.
CountRowsFn select_kernel_baseline(const AccuracyCall&);
#if defined(FM_HAVE_X86_KERNELS)
CountRowsFn select_kernel_avx2(const AccuracyCall&);
CountRowsFn select_kernel_avx512(const AccuracyCall&);
// The AVX-512 kernel for rows of 2, 4 or 8 classes stored back to back, or nullptr.
CountRowsFn few_class_kernel_avx512(const AccuracyCall&);
#endif

// The kernel of the active ISA build (cpu_features.h) for this call.
CountRowsFn select_kernel(const AccuracyCall&);

// The whole call with a selected kernel: splits the rows over the threads.
Counts count_accuracy(const AccuracyCall& call, CountRowsFn kernel);

}  // namespace fm::cpu
