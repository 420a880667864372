// chainer.functions.binary_accuracy's rule, the one definition every backend uses:
// a score y >= 0 predicts 1, anything else (a negative score, NaN) predicts 0; a
// sample is correct when its label equals the prediction; label -1 is ignored
// (only signed label types hold it); any other label (2, -2, ...) is counted and
// never correct.
#pragma once
#include <cstdint>
#include <type_traits>

#include "dtypes.h"
#include "hd.h"

namespace fm {

// "score >= 0" read from the stored bits, with no conversion: the non-negative
// numbers (+0 to +inf) are exactly the bit patterns with the sign clear and at
// most +inf's bits (NaNs are above it), and the one other score >= 0 is -0.0.
// Bits: the unsigned integer of the storage width; kPosInf / kNegZero per dtype.
template <int Code>
struct BinaryScoreBits;
template <>
struct BinaryScoreBits<kF16> {
  using Bits = uint16_t;
  static constexpr Bits kPosInf = 0x7c00u, kNegZero = 0x8000u;
};
template <>
struct BinaryScoreBits<kBF16> {
  using Bits = uint16_t;
  static constexpr Bits kPosInf = 0x7f80u, kNegZero = 0x8000u;
};
template <>
struct BinaryScoreBits<kF32> {
  using Bits = uint32_t;
  static constexpr Bits kPosInf = 0x7f800000u, kNegZero = 0x80000000u;
};
template <>
struct BinaryScoreBits<kF64> {
  using Bits = uint64_t;
  static constexpr Bits kPosInf = 0x7ff0000000000000ull, kNegZero = 0x8000000000000000ull;
};

// 1 when the score with these bits predicts class 1, else 0.
template <int Code>
FM_HD uint32_t binary_prediction(typename BinaryScoreBits<Code>::Bits bits) {
  using S = BinaryScoreBits<Code>;
  return uint32_t(bits <= S::kPosInf) | uint32_t(bits == S::kNegZero);
}

// 1 when the label is the ignored -1 (never for unsigned label types).
template <class T>
FM_HD uint32_t binary_label_ignored(T label) {
  if constexpr (std::is_signed_v<T>) return uint32_t(label == T(-1));
  return 0;
}

// 1 when the label equals the prediction (0 or 1); an ignored -1 never does.
template <class T>
FM_HD uint32_t binary_label_correct(T label, uint32_t prediction) {
  return uint32_t(label == T(prediction));
}

}  // namespace fm
