// Accuracy kernels for AVX-512 CPUs (F, BW, VL, DQ; this file alone is compiled
// with those flags). Rows whose classes are contiguous get hand-written loops:
// one masked load per 16 (8 for float64) scores, one unordered compare against the
// target's score, a popcount. float16/bfloat16 widen to float32 in registers.
// Every other layout uses the portable kernels, vectorised for AVX-512.
#include <immintrin.h>

#include "cpu/accuracy_task.h"
#include "semantics/accuracy_rule.h"
#include "semantics/dtypes.h"

namespace {
#include "cpu/kernels_portable.h"

// One vector of scores: how to load it (masked lanes read nothing, so row ends
// never fault), and the two compares of the rule.
struct F32x16 {
  using Storage = float;
  using Compute = float;
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static Vec load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static Vec splat(float v) { return _mm512_set1_ps(v); }
  static Mask not_less(Vec x, Vec v) { return _mm512_cmp_ps_mask(x, v, _CMP_NLT_UQ); }
  static Mask not_less_equal(Vec x, Vec v) { return _mm512_cmp_ps_mask(x, v, _CMP_NLE_UQ); }
  static float scalar(const float* p, int64_t i) { return p[i]; }
};

struct F16x16 : F32x16 {
  using Storage = uint16_t;
  static Vec load(const uint16_t* p, Mask m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static float scalar(const uint16_t* p, int64_t i) { return fm::half_to_float(p[i]); }
};

struct BF16x16 : F32x16 {
  using Storage = uint16_t;
  static Vec load(const uint16_t* p, Mask m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static float scalar(const uint16_t* p, int64_t i) { return fm::bfloat16_to_float(p[i]); }
};

struct F64x8 {
  using Storage = double;
  using Compute = double;
  using Vec = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static Vec load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static Vec splat(double v) { return _mm512_set1_pd(v); }
  static Mask not_less(Vec x, Vec v) { return _mm512_cmp_pd_mask(x, v, _CMP_NLT_UQ); }
  static Mask not_less_equal(Vec x, Vec v) { return _mm512_cmp_pd_mask(x, v, _CMP_NLE_UQ); }
  static double scalar(const double* p, int64_t i) { return p[i]; }
};

// The first `count` lanes, count clamped to [0, kLanes]. Branch-free (BZHI): the
// target's position is random from row to row, so branches here would mispredict.
template <class V>
typename V::Mask first_lanes(int64_t count) {
  const uint64_t clamped = count < 0 ? 0 : (count > V::kLanes ? V::kLanes : count);
  return typename V::Mask(_bzhi_u32((1u << V::kLanes) - 1, unsigned(clamped)));
}

template <class V, bool kBeforeTarget>
typename V::Mask ranked_above(typename V::Vec x, typename V::Vec v) {
  return kBeforeTarget ? V::not_less(x, v) : V::not_less_equal(x, v);
}

// How many classes in [j0, j1) rank above the non-NaN target score v.
template <class V, bool kBeforeTarget>
int64_t count_ranked_above(const typename V::Storage* row, int64_t j0, int64_t j1, typename V::Vec v) {
  constexpr int W = V::kLanes;
  const typename V::Mask all = first_lanes<V>(W);
  int64_t count = 0;
  int64_t j = j0;
  for (; j + 4 * W <= j1; j += 4 * W) {  // four independent loads in flight per step
    const auto m0 = ranked_above<V, kBeforeTarget>(V::load(row + j, all), v);
    const auto m1 = ranked_above<V, kBeforeTarget>(V::load(row + j + W, all), v);
    const auto m2 = ranked_above<V, kBeforeTarget>(V::load(row + j + 2 * W, all), v);
    const auto m3 = ranked_above<V, kBeforeTarget>(V::load(row + j + 3 * W, all), v);
    count += _mm_popcnt_u32(m0) + _mm_popcnt_u32(m1) + _mm_popcnt_u32(m2) + _mm_popcnt_u32(m3);
  }
  for (; j < j1; j += W) {
    const auto lanes = first_lanes<V>(j1 - j);
    count += _mm_popcnt_u32(ranked_above<V, kBeforeTarget>(V::load(row + j, lanes), v) & lanes);
  }
  return count;
}

// Scores as integer order keys (fm::order_key in accuracy_rule.h), a whole row of up
// to kLanes classes in one register. With keys, the rule is two signed compares and
// needs no NaN case: before the target "key >= target key", after it "key > target key".
struct Keys16 {  // float16 / bfloat16: 32 lanes of int16 keys
  using Storage = uint16_t;
  using Mask = __mmask32;
  static constexpr int kLanes = 32;
  static __m512i load(const uint16_t* p, Mask m) { return _mm512_maskz_loadu_epi16(m, p); }
  static __m512i keys(__m512i bits, int16_t inf_bits) {
    const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi16(0x7fff));
    const __m512i key = _mm512_mask_sub_epi16(magnitude, _mm512_movepi16_mask(bits), _mm512_setzero_si512(), magnitude);
    const Mask nan = _mm512_cmpgt_epi16_mask(magnitude, _mm512_set1_epi16(inf_bits));
    return _mm512_mask_mov_epi16(key, nan, _mm512_set1_epi16(0x7fff));
  }
  static __m512i lane_indices() {
    alignas(64) static const int16_t kIndices[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                                     16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    return _mm512_load_si512(kIndices);
  }
  static __m512i splat(int64_t i) { return _mm512_set1_epi16(short(i)); }
  static __m512i pick(__m512i index, __m512i v) { return _mm512_permutexvar_epi16(index, v); }
  static Mask less(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmplt_epi16_mask(m, a, b); }
  static Mask at_least(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmpge_epi16_mask(m, a, b); }
  static Mask greater(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmpgt_epi16_mask(m, a, b); }
};
struct Float16Keys : Keys16 {
  static __m512i keys(__m512i bits) { return Keys16::keys(bits, 0x7c00); }
};
struct BFloat16Keys : Keys16 {
  static __m512i keys(__m512i bits) { return Keys16::keys(bits, 0x7f80); }
};

struct Float32Keys {  // 16 lanes of int32 keys
  using Storage = float;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static __m512i load(const float* p, Mask m) { return _mm512_maskz_loadu_epi32(m, p); }
  static __m512i keys(__m512i bits) {
    const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
    const __m512i key = _mm512_mask_sub_epi32(magnitude, _mm512_movepi32_mask(bits), _mm512_setzero_si512(), magnitude);
    const Mask nan = _mm512_cmpgt_epi32_mask(magnitude, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(key, nan, _mm512_set1_epi32(0x7fffffff));
  }
  static __m512i lane_indices() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static __m512i splat(int64_t i) { return _mm512_set1_epi32(int(i)); }
  static __m512i pick(__m512i index, __m512i v) { return _mm512_permutexvar_epi32(index, v); }
  static Mask less(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmplt_epi32_mask(m, a, b); }
  static Mask at_least(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmpge_epi32_mask(m, a, b); }
  static Mask greater(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmpgt_epi32_mask(m, a, b); }
};

struct Float64Keys {  // 8 lanes of int64 keys
  using Storage = double;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static __m512i load(const double* p, Mask m) { return _mm512_maskz_loadu_epi64(m, p); }
  static __m512i keys(__m512i bits) {
    const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi64(0x7fffffffffffffffLL));
    const __m512i key = _mm512_mask_sub_epi64(magnitude, _mm512_movepi64_mask(bits), _mm512_setzero_si512(), magnitude);
    const Mask nan = _mm512_cmpgt_epi64_mask(magnitude, _mm512_set1_epi64(0x7ff0000000000000LL));
    return _mm512_mask_mov_epi64(key, nan, _mm512_set1_epi64(0x7fffffffffffffffLL));
  }
  static __m512i lane_indices() { return _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7); }
  static __m512i splat(int64_t i) { return _mm512_set1_epi64(i); }
  static __m512i pick(__m512i index, __m512i v) { return _mm512_permutexvar_epi64(index, v); }
  static Mask less(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmplt_epi64_mask(m, a, b); }
  static Mask at_least(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmpge_epi64_mask(m, a, b); }
  static Mask greater(Mask m, __m512i a, __m512i b) { return _mm512_mask_cmpgt_epi64_mask(m, a, b); }
};

// Flat rows (M == 1) that fit one register: the common "many samples, few classes"
// case, bound by per-row work rather than bytes. One masked load per row and no
// data-dependent branch: out-of-range and ignored labels are masked out of the sums.
template <class K, class Label>
fm::cpu::Counts count_flat_rows_by_keys(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  const auto valid = typename K::Mask(_bzhi_u32(~0u, unsigned(task.C)));  // C <= kLanes <= 32
  const __m512i lanes = K::lane_indices();
  return count_flat_rows<typename K::Storage, Label>(task, r0, r1, [valid, lanes](const auto* row, int64_t target) {
    const __m512i key = K::keys(K::load(row, valid));
    const __m512i target_lane = K::splat(target);
    const __m512i target_key = K::pick(target_lane, key);
    // Lane masks by vector compares: they stay in mask registers.
    const auto before = K::less(valid, lanes, target_lane);
    const auto after = K::greater(valid, lanes, target_lane);
    return int64_t(_mm_popcnt_u32(uint32_t(K::at_least(before, key, target_key)) |
                                  uint32_t(K::greater(after, key, target_key))));
  });
}

template <class V, class Label>
fm::cpu::Counts count_rows_simd(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  using F = typename V::Compute;
  const auto* y = reinterpret_cast<const typename V::Storage*>(task.y);
  const auto* labels = reinterpret_cast<const Label*>(task.t);
  const int64_t C = task.C;
  const bool one_vector = C <= V::kLanes;
  const bool prefetch = task.M == 1 && C * int64_t(sizeof(typename V::Storage)) >= 1024;
  fm::cpu::Counts counts;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = task.M == 1 ? r : r / task.M, m = task.M == 1 ? 0 : r % task.M;
    const auto* row = y + n * task.ys_n + m * task.ys_m;
    if (prefetch) {  // the hardware prefetcher restarts at page boundaries; rows are about a page
      const char* next = reinterpret_cast<const char*>(row + task.ys_n);
      for (int line = 0; line < 8; ++line) _mm_prefetch(next + 64 * line, _MM_HINT_T0);
    }
    const auto t = static_cast<int64_t>(labels[n * task.ts_n + m * task.ts_m]);
    const int kind = fm::classify_label(t, C, task.has_ignore, task.ignore);
    if (kind == fm::kLabelIgnored) continue;
    ++counts.total;
    if (kind != fm::kLabelValid) continue;
    const F v = V::scalar(row, t);
    int64_t rank;
    if (v != v) {  // rare: a NaN target is beaten only by an earlier NaN
      rank = 0;
      for (int64_t j = 0; j < t; ++j) rank += fm::rank_step<F>(V::scalar(row, j), v, true);
    } else if (one_vector) {
      const auto valid = first_lanes<V>(C);
      const auto before = first_lanes<V>(t);
      const auto after = typename V::Mask(valid & ~first_lanes<V>(t + 1));
      const auto x = V::load(row, valid);
      const auto vv = V::splat(v);
      rank = _mm_popcnt_u32(V::not_less(x, vv) & before) + _mm_popcnt_u32(V::not_less_equal(x, vv) & after);
    } else {
      const auto vv = V::splat(v);
      rank = count_ranked_above<V, true>(row, 0, t, vv) + count_ranked_above<V, false>(row, t + 1, C, vv);
    }
    counts.correct += rank < task.k;
  }
  return counts;
}

template <class V>
fm::cpu::Counts count_rows_simd_any_label(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  return with_label_type(task.t_code, [&](auto label) {
    return count_rows_simd<V, decltype(label)>(task, r0, r1);
  });
}

template <class K>
fm::cpu::Counts count_flat_rows_by_keys_any_label(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  return with_label_type(task.t_code, [&](auto label) {
    return count_flat_rows_by_keys<K, decltype(label)>(task, r0, r1);
  });
}

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
fm::cpu::Counts count_two_class_rows(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  const auto* y = reinterpret_cast<const typename Scores::Storage*>(task.y) + 2 * r0;
  const auto* labels = reinterpret_cast<const typename L::Type*>(task.t) + r0;
  const int64_t steps = (r1 - r0) / 16;
  int64_t correct = 0, total = 0;
  for (int64_t s = 0; s < steps; ++s, y += 32, labels += 16) {
    const __mmask16 ignored = task.has_ignore ? L::equal(labels, task.ignore) : __mmask16(0);
    const __mmask16 valid = L::in_range(labels, 2) & ~ignored;
    const __mmask16 beaten = Scores::beaten(y, L::equal(labels, 1));  // rank 1: the other class is above
    total += 16 - _mm_popcnt_u32(ignored);
    correct += _mm_popcnt_u32(task.k > 1 ? valid : __mmask16(valid & ~beaten));
  }
  const fm::cpu::Counts tail = count_flat_rows_by_keys<Keys, typename L::Type>(task, r0 + 16 * steps, r1);
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
fm::cpu::Counts count_few_class_rows(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  static_assert(kClasses == 4 || kClasses == 8, "power-of-two class counts only");
  const auto* y = reinterpret_cast<const float*>(task.y) + kClasses * r0;
  const auto* labels = reinterpret_cast<const typename L::Type*>(task.t) + r0;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i k = _mm512_set1_epi32(task.k < kClasses ? int32_t(task.k) : kClasses);  // rank < C always
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

    const __mmask16 ignored = task.has_ignore ? L::equal(labels, task.ignore) : __mmask16(0);
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
  const fm::cpu::Counts tail = count_flat_rows_by_keys<Float32Keys, typename L::Type>(task, r0 + 16 * steps, r1);
  return {correct + tail.correct, total + tail.total};
}

fm::cpu::CountRowsFn few_class_kernel(const fm::cpu::AccuracyTask& task) {
  if (task.y_code != fm::kF32 || task.M != 1 || task.ys_c != 1 || task.ys_n != task.C || task.ts_n != 1)
    return nullptr;
  const bool i32 = task.t_code == fm::kI32, i64 = task.t_code == fm::kI64;
  if (!(i32 || i64)) return nullptr;
  if (task.C == 4) return i32 ? count_few_class_rows<4, Labels32> : count_few_class_rows<4, Labels64>;
  if (task.C == 8) return i32 ? count_few_class_rows<8, Labels32> : count_few_class_rows<8, Labels64>;
  return nullptr;
}

fm::cpu::CountRowsFn two_class_kernel(const fm::cpu::AccuracyTask& task) {
  if (task.C != 2 || task.M != 1 || task.ys_c != 1 || task.ys_n != 2 || task.ts_n != 1) return nullptr;
  switch (task.y_code) {
    case fm::kF32: return two_class_kernel_for_labels<TwoFloat32, Float32Keys>(task.t_code);
    case fm::kF16: return two_class_kernel_for_labels<TwoHalf<Float16Keys>, Float16Keys>(task.t_code);
    case fm::kBF16: return two_class_kernel_for_labels<TwoHalf<BFloat16Keys>, BFloat16Keys>(task.t_code);
    default: return nullptr;
  }
}

// The flat one-register kernel for this dtype, or nullptr if the rows do not fit.
fm::cpu::CountRowsFn flat_kernel_by_keys(const fm::cpu::AccuracyTask& task) {
  if (task.M != 1 || task.ys_c != 1 || task.C < 1) return nullptr;  // count_flat_rows needs C >= 1
  switch (task.y_code) {
    case fm::kF16: return task.C <= Float16Keys::kLanes ? count_flat_rows_by_keys_any_label<Float16Keys> : nullptr;
    case fm::kBF16: return task.C <= BFloat16Keys::kLanes ? count_flat_rows_by_keys_any_label<BFloat16Keys> : nullptr;
    case fm::kF32: return task.C <= Float32Keys::kLanes ? count_flat_rows_by_keys_any_label<Float32Keys> : nullptr;
    default: return task.C <= Float64Keys::kLanes ? count_flat_rows_by_keys_any_label<Float64Keys> : nullptr;
  }
}

}  // namespace

fm::cpu::Counts fm::cpu::count_rows_avx512(const AccuracyTask& task, int64_t r0, int64_t r1) {
  if (const CountRowsFn two_classes = two_class_kernel(task)) return two_classes(task, r0, r1);
  if (const CountRowsFn few_classes = few_class_kernel(task)) return few_classes(task, r0, r1);
  if (const CountRowsFn flat = flat_kernel_by_keys(task)) return flat(task, r0, r1);
  if (task.ys_c == 1) {
    switch (task.y_code) {
      case fm::kF32: return count_rows_simd_any_label<F32x16>(task, r0, r1);
      case fm::kF16: return count_rows_simd_any_label<F16x16>(task, r0, r1);
      case fm::kBF16: return count_rows_simd_any_label<BF16x16>(task, r0, r1);
      default: return count_rows_simd_any_label<F64x8>(task, r0, r1);
    }
  }
  return count_rows_portable(task, r0, r1);
}
