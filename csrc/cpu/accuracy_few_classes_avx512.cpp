// AVX-512 kernels for rows of 2, 4 or 8 classes stored back to back (binary
// classifiers and other small heads): 16 rows per step, de-interleaved in registers
// so that each class is one register and the work per row is a fraction of a vector
// step. This file alone is compiled with the AVX-512 flags.
#include <immintrin.h>

#include "cpu/accuracy.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/kernels_portable.h"
#include "cpu/avx512_order_keys.h"

// Two classes (binary classifiers with two logits), rows and labels contiguous: 16 rows
// per step, de-interleaved in registers, so the work per row is a sixteenth of a vector
// step instead of a whole one. Each row's rank is 0 or 1: class 0 ranks above a target
// of 1 if key0 >= key1, class 1 above a target of 0 if key1 > key0.
struct Labels32 {  // 16 int32 labels in one register
  using Type = int32_t;
  static __mmask16 equal(const int32_t* p, int64_t v) {
    if (v != int32_t(v)) return 0;
    return _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(p), _mm512_set1_epi32(int32_t(v)));
  }
  static __mmask16 in_range(const int32_t* p, int64_t C) {  // unsigned compare: negatives are out
    return _mm512_cmplt_epu32_mask(_mm512_loadu_si512(p), _mm512_set1_epi32(int32_t(C)));
  }
  static __m512i as_int32(const int32_t* p) { return _mm512_loadu_si512(p); }
};
struct Labels64 {  // 16 int64 labels in two registers
  using Type = int64_t;
  static __mmask16 both(__mmask8 lo, __mmask8 hi) { return __mmask16(lo | (unsigned(hi) << 8)); }
  static __mmask16 equal(const int64_t* p, int64_t v) {
    const __m512i value = _mm512_set1_epi64(v);
    return both(_mm512_cmpeq_epi64_mask(_mm512_loadu_si512(p), value),
                _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(p + 8), value));
  }
  static __mmask16 in_range(const int64_t* p, int64_t C) {
    const __m512i classes = _mm512_set1_epi64(C);
    return both(_mm512_cmplt_epu64_mask(_mm512_loadu_si512(p), classes),
                _mm512_cmplt_epu64_mask(_mm512_loadu_si512(p + 8), classes));
  }
  // Saturating narrowing: exact for in-range labels, the only ones whose value is used.
  static __m512i as_int32(const int64_t* p) {
    const __m256i low = _mm512_cvtsepi64_epi32(_mm512_loadu_si512(p));
    const __m256i high = _mm512_cvtsepi64_epi32(_mm512_loadu_si512(p + 8));
    return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
  }
};

// 16 rows of two scores: which rows' target is beaten by the other class.
struct TwoFloat32 {
  using Storage = float;
  static __mmask16 beaten(const float* p, __mmask16 target_one) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i first = _mm512_loadu_si512(p), second = _mm512_loadu_si512(p + 16);
    const __m512i key0 = Float32Keys::keys(_mm512_permutex2var_epi32(first, even, second));
    const __m512i key1 = Float32Keys::keys(_mm512_permutex2var_epi32(first, odd, second));
    return _mm512_mask_cmpge_epi32_mask(target_one, key0, key1) |
           _mm512_mask_cmpgt_epi32_mask(__mmask16(~target_one), key1, key0);
  }
};
template <class Keys>  // float16 / bfloat16: 16 rows are one 512-bit load
struct TwoHalf {
  using Storage = uint16_t;
  static __mmask16 beaten(const uint16_t* p, __mmask16 target_one) {
    alignas(64) static const int16_t kDeinterleave[32] = {0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20,
                                                          22, 24, 26, 28, 30, 1,  3,  5,  7,  9,  11,
                                                          13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    const __m512i keys = _mm512_permutexvar_epi16(_mm512_load_si512(kDeinterleave),
                                                  Keys::keys(_mm512_loadu_si512(p)));
    const __m256i key0 = _mm512_castsi512_si256(keys), key1 = _mm512_extracti64x4_epi64(keys, 1);
    return _mm256_mask_cmpge_epi16_mask(target_one, key0, key1) |
           _mm256_mask_cmpgt_epi16_mask(__mmask16(~target_one), key1, key0);
  }
};

template <class Scores, class Keys, class L>
fm::cpu::Counts count_two_class_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  const auto* y = reinterpret_cast<const typename Scores::Storage*>(call.y) + 2 * r0;
  const auto* labels = reinterpret_cast<const typename L::Type*>(call.t) + r0;
  const int64_t steps = (r1 - r0) / 16;
  int64_t correct = 0, total = 0;
  for (int64_t s = 0; s < steps; ++s, y += 32, labels += 16) {
    const __mmask16 ignored = call.has_ignore ? L::equal(labels, call.ignore) : __mmask16(0);
    const __mmask16 valid = L::in_range(labels, 2) & ~ignored;
    const __mmask16 beaten = Scores::beaten(y, L::equal(labels, 1));  // rank 1: the other class is above
    total += 16 - _mm_popcnt_u32(ignored);
    correct += _mm_popcnt_u32(call.k > 1 ? valid : __mmask16(valid & ~beaten));
  }
  const fm::cpu::Counts tail = count_flat_rows_by_keys<Keys, typename L::Type>(call, r0 + 16 * steps, r1);
  return {correct + tail.correct, total + tail.total};
}

template <class Scores, class Keys>
fm::cpu::CountRowsFn two_class_kernel_for_labels(int t_code) {
  if (t_code == fm::kI32) return count_two_class_rows<Scores, Keys, Labels32>;
  if (t_code == fm::kI64) return count_two_class_rows<Scores, Keys, Labels64>;
  return nullptr;
}

// 4 or 8 float32 classes, rows and labels contiguous: 16 rows per step. The 16 * C
// scores are de-interleaved in log2(C) rounds of even/odd permutes into one register
// per class; then each class is one key compare per 16 rows, and ranks accumulate
// lane-wise (any k).
template <int kClasses, class L>
fm::cpu::Counts count_few_class_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  static_assert(kClasses == 4 || kClasses == 8, "power-of-two class counts only");
  const auto* y = reinterpret_cast<const float*>(call.y) + kClasses * r0;
  const auto* labels = reinterpret_cast<const typename L::Type*>(call.t) + r0;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i k = _mm512_set1_epi32(call.k < kClasses ? int32_t(call.k) : kClasses);  // rank < C always
  const int64_t steps = (r1 - r0) / 16;
  int64_t correct = 0, total = 0;
  for (int64_t s = 0; s < steps; ++s, y += 16 * kClasses, labels += 16) {
    __m512i reg[kClasses], next[kClasses];
    for (int i = 0; i < kClasses; ++i) reg[i] = _mm512_loadu_si512(y + 16 * i);
    for (int round = 1; round < kClasses; round *= 2) {  // each round halves the classes per register
      for (int i = 0; i < kClasses / 2; ++i) {
        next[i] = _mm512_permutex2var_epi32(reg[2 * i], even, reg[2 * i + 1]);
        next[i + kClasses / 2] = _mm512_permutex2var_epi32(reg[2 * i], odd, reg[2 * i + 1]);
      }
      for (int i = 0; i < kClasses; ++i) reg[i] = next[i];
    }
    for (int c = 0; c < kClasses; ++c) reg[c] = Float32Keys::keys(reg[c]);  // reg[c]: class c of the 16 rows

    const __mmask16 ignored = call.has_ignore ? L::equal(labels, call.ignore) : __mmask16(0);
    const __mmask16 valid = L::in_range(labels, kClasses) & ~ignored;
    const __m512i target = _mm512_maskz_mov_epi32(valid, L::as_int32(labels));
    __m512i target_key = reg[0];
    for (int c = 1; c < kClasses; ++c)
      target_key = _mm512_mask_mov_epi32(target_key, _mm512_cmpeq_epi32_mask(target, _mm512_set1_epi32(c)), reg[c]);
    __m512i rank = _mm512_setzero_si512();
    for (int c = 0; c < kClasses; ++c) {
      const __m512i cls = _mm512_set1_epi32(c);
      const __mmask16 above = _mm512_mask_cmpge_epi32_mask(_mm512_cmplt_epi32_mask(cls, target), reg[c], target_key) |
                              _mm512_mask_cmpgt_epi32_mask(_mm512_cmpgt_epi32_mask(cls, target), reg[c], target_key);
      rank = _mm512_mask_add_epi32(rank, above, rank, one);
    }
    total += 16 - _mm_popcnt_u32(ignored);
    correct += _mm_popcnt_u32(_mm512_mask_cmplt_epi32_mask(valid, rank, k));
  }
  const fm::cpu::Counts tail = count_flat_rows_by_keys<Float32Keys, typename L::Type>(call, r0 + 16 * steps, r1);
  return {correct + tail.correct, total + tail.total};
}

fm::cpu::CountRowsFn four_or_eight_class_kernel(const fm::AccuracyCall& call) {
  if (call.y_code != fm::kF32 || call.M != 1 || call.ys_c != 1 || call.ys_n != call.C || call.ts_n != 1)
    return nullptr;
  const bool i32 = call.t_code == fm::kI32, i64 = call.t_code == fm::kI64;
  if (!(i32 || i64)) return nullptr;
  if (call.C == 4) return i32 ? count_few_class_rows<4, Labels32> : count_few_class_rows<4, Labels64>;
  if (call.C == 8) return i32 ? count_few_class_rows<8, Labels32> : count_few_class_rows<8, Labels64>;
  return nullptr;
}

fm::cpu::CountRowsFn two_class_kernel(const fm::AccuracyCall& call) {
  if (call.C != 2 || call.M != 1 || call.ys_c != 1 || call.ys_n != 2 || call.ts_n != 1) return nullptr;
  switch (call.y_code) {
    case fm::kF32: return two_class_kernel_for_labels<TwoFloat32, Float32Keys>(call.t_code);
    case fm::kF16: return two_class_kernel_for_labels<TwoHalf<Float16Keys>, Float16Keys>(call.t_code);
    case fm::kBF16: return two_class_kernel_for_labels<TwoHalf<BFloat16Keys>, BFloat16Keys>(call.t_code);
    default: return nullptr;
  }
}

}  // namespace

fm::cpu::CountRowsFn fm::cpu::few_class_kernel_avx512(const AccuracyCall& call) {
  if (const CountRowsFn two = two_class_kernel(call)) return two;
  return four_or_eight_class_kernel(call);
}
