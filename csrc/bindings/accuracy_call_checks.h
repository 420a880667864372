// The argument checks that _core.AccuracyPlan and _cuda.AccuracyPlan share: both
// constructors take the same arguments and validate them here, once per plan.
// Errors are std::invalid_argument (ValueError in Python) naming the argument.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "semantics/accuracy_call.h"
#include "semantics/dtypes.h"

namespace fm::bindings {

[[noreturn]] inline void invalid(const std::string& msg) { throw std::invalid_argument("AccuracyPlan: " + msg); }

// |largest element offset| = sum over dims of (extent - 1) * |stride| must fit in
// int64, so no offset a kernel computes can wrap around.
inline void check_stride_extent(const char* name, std::initializer_list<std::array<int64_t, 2>> dims) {
  int64_t total = 0;
  for (const auto& d : dims) {
    const int64_t extent = d[0], stride = d[1];
    if (extent <= 1) continue;
    int64_t term;
    if (stride == INT64_MIN || __builtin_mul_overflow(extent - 1, stride < 0 ? -stride : stride, &term) ||
        __builtin_add_overflow(total, term, &total))
      invalid(std::string("the strides of ") + name + " overflow int64 offsets");
  }
}

// A validated call with null pointers: codes known, sizes >= 0, k >= 1, N * M and
// every element offset within int64, and C < 2^class_bits (the backend's limit).
inline AccuracyCall make_accuracy_call(int y_code, int64_t N, int64_t C, int64_t M, const std::array<int64_t, 3>& ys,
                                       int t_code, const std::array<int64_t, 2>& ts, bool has_ignore, int64_t ignore,
                                       int64_t k, int class_bits) {
  if (!valid_logit_code(y_code))
    invalid("y_code must be 0.." + std::to_string(kNumLogitTypes - 1) + ", got " + std::to_string(y_code));
  if (!valid_label_code(t_code))
    invalid("t_code must be 0.." + std::to_string(kNumLabelTypes - 1) + ", got " + std::to_string(t_code));
  if (N < 0 || C < 0 || M < 0)
    invalid("N, C, M must be >= 0, got (" + std::to_string(N) + ", " + std::to_string(C) + ", " + std::to_string(M) +
            ")");
  if (class_bits < 63 && C >= (int64_t(1) << class_bits))
    invalid("this backend supports C < 2^" + std::to_string(class_bits) + " classes, got C=" + std::to_string(C));
  if (k < 1) invalid("k must be >= 1, got " + std::to_string(k));
  int64_t rows;
  if (__builtin_mul_overflow(N, M, &rows)) invalid("N * M overflows int64");
  check_stride_extent("y", {{N, ys[0]}, {C, ys[1]}, {M, ys[2]}});
  check_stride_extent("t", {{N, ts[0]}, {M, ts[1]}});
  return AccuracyCall{nullptr, nullptr, N, C, M, ys[0], ys[1], ys[2], ts[0], ts[1], y_code, t_code, has_ignore,
                      ignore, k};
}

}  // namespace fm::bindings
