// What one accuracy-count call asks of the CPU kernels, and the per-ISA entry points.
#pragma once
#include <cstdint>

namespace fm::cpu {

// y is viewed as (N, C, M) and t as (N, M), strides in elements (any sign). The
// "rows" are the N*M pairs (n, m), flattened as r = n*M + m; each is one sample.
struct AccuracyTask {
  const char* y;
  int y_code;  // fm::LogitType
  int64_t N, C, M;
  int64_t ys_n, ys_c, ys_m;
  const char* t;
  int t_code;  // fm::LabelType
  int64_t ts_n, ts_m;
  bool has_ignore;
  int64_t ignore;
  int64_t k;
};

struct Counts {
  int64_t correct = 0;
  int64_t total = 0;
};

// Counts rows [row_begin, row_end).
using CountRowsFn = Counts (*)(const AccuracyTask&, int64_t row_begin, int64_t row_end);

Counts count_rows_baseline(const AccuracyTask&, int64_t row_begin, int64_t row_end);
#if defined(FM_HAVE_X86_KERNELS)
Counts count_rows_avx2(const AccuracyTask&, int64_t row_begin, int64_t row_end);
Counts count_rows_avx512(const AccuracyTask&, int64_t row_begin, int64_t row_end);
// The AVX-512 kernel for rows of 2, 4 or 8 classes stored back to back, or nullptr.
CountRowsFn few_class_kernel_avx512(const AccuracyTask&);
#endif

// The whole call: picks the kernel for this CPU and splits rows over the threads.
Counts count_accuracy(const AccuracyTask& task);

}  // namespace fm::cpu
