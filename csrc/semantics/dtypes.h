// Dtype codes shared by Python (fusedmetrics/_dtypes.py), the C++ kernels and the
// CUDA launchers. Keep the three in sync.
#pragma once
#include <cstdint>

namespace fm {

enum LogitType : int { kF16 = 0, kBF16 = 1, kF32 = 2, kF64 = 3 };
enum LabelType : int { kI8 = 0, kI16 = 1, kI32 = 2, kI64 = 3, kU8 = 4, kU16 = 5, kU32 = 6, kU64 = 7 };

constexpr int logit_itemsize(int code) { return code == kF64 ? 8 : code == kF32 ? 4 : 2; }
constexpr int label_itemsize(int code) { return 1 << (code & 3); }

}  // namespace fm
