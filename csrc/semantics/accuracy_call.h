// One accuracy-count call, as every backend sees it: the CPU kernels, the CUDA
// launcher and kernels (by value, as a kernel parameter), and both bindings.
#pragma once
#include <cstdint>

#include "dtypes.h"
#include "hd.h"

namespace fm {

// y is viewed as (N, C, M) and t as (N, M); strides are in elements and may be
// negative or zero. A "row" is one sample (n, m), flattened as r = n * M + m.
struct AccuracyCall {
  const void* y;
  const void* t;
  int64_t N, C, M;
  int64_t ys_n, ys_c, ys_m;  // y strides along n, c, m
  int64_t ts_n, ts_m;        // t strides along n, m
  int y_code;                // fm::LogitType
  int t_code;                // fm::LabelType
  bool has_ignore;
  int64_t ignore;  // already the int64 reading of the label (uint64 reinterpreted by Python)
  int64_t k;
};

struct RowIndex {
  int64_t n, m;
};

// Row r as (n, m); M == 1 (flat rows) skips the division.
FM_HD RowIndex split_row(int64_t r, int64_t M) {
  if (M == 1) return {r, 0};
  const int64_t n = r / M;
  return {n, r - n * M};
}

// Element offsets of row (n, m): of its class 0 in y, of its label in t.
FM_HD int64_t y_row_offset(const AccuracyCall& c, RowIndex i) { return i.n * c.ys_n + i.m * c.ys_m; }
FM_HD int64_t t_row_offset(const AccuracyCall& c, RowIndex i) { return i.n * c.ts_n + i.m * c.ts_m; }

// Label `index` of labels of code `code`, as int64 (uint64 reinterpreted, which
// keeps equality with the ignore label and sends values >= 2^63 out of range).
// load(p) reads *p: plain on the CPU, __ldg on the GPU.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Load>
FM_HD int64_t read_label(const void* labels, int code, int64_t index, const Load& load) {
  return with_label_type(code, [&](auto zero) {
    using T = decltype(zero);
    return static_cast<int64_t>(load(static_cast<const T*>(labels) + index));
  });
}

}  // namespace fm
