// Accuracy kernels for AVX-512 CPUs (F, BW, VL, DQ; this file alone is compiled
// with those flags). Contiguous rows of up to 16 float32 (32 float16/bfloat16, 8
// float64) classes: one register per row of integer order keys. Longer contiguous
// rows: masked loads widened to float32/float64, unordered compares against the
// target's score, four loads in flight. Rows of 2, 4 or 8 classes go to
// accuracy_few_classes_avx512.cpp first; every other layout uses the portable
// kernels, vectorised for AVX-512.
#include <immintrin.h>

#include "cpu/accuracy.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/kernels_portable.h"
#include "cpu/avx512_order_keys.h"

// One vector of scores: how to load it (masked lanes read nothing, so row ends
// never fault), and the two compares of the rule.
struct F32x16 {
  using Storage = float;
  using Compute = float;
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr int kCode = fm::kF32;
  static Vec load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static Vec splat(float v) { return _mm512_set1_ps(v); }
  static Mask not_less(Vec x, Vec v) { return _mm512_cmp_ps_mask(x, v, _CMP_NLT_UQ); }
  static Mask not_less_equal(Vec x, Vec v) { return _mm512_cmp_ps_mask(x, v, _CMP_NLE_UQ); }
};

struct F16x16 : F32x16 {
  using Storage = uint16_t;
  static constexpr int kCode = fm::kF16;
  static Vec load(const uint16_t* p, Mask m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};

struct BF16x16 : F32x16 {
  using Storage = uint16_t;
  static constexpr int kCode = fm::kBF16;
  static Vec load(const uint16_t* p, Mask m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};

struct F64x8 {
  using Storage = double;
  using Compute = double;
  using Vec = __m512d;
  using Mask = __mmask8;
  static constexpr int kLanes = 8;
  static constexpr int kCode = fm::kF64;
  static Vec load(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static Vec splat(double v) { return _mm512_set1_pd(v); }
  static Mask not_less(Vec x, Vec v) { return _mm512_cmp_pd_mask(x, v, _CMP_NLT_UQ); }
  static Mask not_less_equal(Vec x, Vec v) { return _mm512_cmp_pd_mask(x, v, _CMP_NLE_UQ); }
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

template <class V, class Label>
fm::cpu::Counts count_rows_simd(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using F = typename V::Compute;
  const auto* y = reinterpret_cast<const typename V::Storage*>(call.y);
  const auto* labels = reinterpret_cast<const Label*>(call.t);
  const int64_t C = call.C;
  const bool one_vector = C <= V::kLanes;
  const bool prefetch = call.M == 1 && C * int64_t(sizeof(typename V::Storage)) >= 1024;
  fm::cpu::Counts counts;
  for (int64_t r = r0; r < r1; ++r) {
    const fm::RowIndex i = fm::split_row(r, call.M);
    const auto* row = y + fm::y_row_offset(call, i);
    if (prefetch) {  // the hardware prefetcher restarts at page boundaries; rows are about a page
      const char* next = reinterpret_cast<const char*>(row + call.ys_n);
      for (int line = 0; line < 8; ++line) _mm_prefetch(next + 64 * line, _MM_HINT_T0);
    }
    const auto t = static_cast<int64_t>(labels[fm::t_row_offset(call, i)]);
    const int kind = fm::classify_label(t, C, call.has_ignore, call.ignore);
    if (kind == fm::kLabelIgnored) continue;
    ++counts.total;
    if (kind != fm::kLabelValid) continue;
    const F v = load_logit<V::kCode>(row, t);
    int64_t rank;
    if (v != v) {  // rare: a NaN target is beaten only by an earlier NaN
      rank = 0;
      for (int64_t j = 0; j < t; ++j) rank += fm::rank_step<F>(load_logit<V::kCode>(row, j), v, true);
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
    counts.correct += rank < call.k;
  }
  return counts;
}

template <class V>
fm::cpu::Counts count_rows_simd_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code, [&](auto label) {
    return count_rows_simd<V, decltype(label)>(call, r0, r1);
  });
}

template <class K>
fm::cpu::Counts count_flat_rows_by_keys_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code, [&](auto label) {
    return count_flat_rows_by_keys<K, decltype(label)>(call, r0, r1);
  });
}

// The flat one-register kernel for this dtype, or nullptr if the rows do not fit.
fm::cpu::CountRowsFn flat_kernel_by_keys(const fm::AccuracyCall& call) {
  if (call.M != 1 || call.ys_c != 1 || call.C < 1) return nullptr;  // count_flat_rows needs C >= 1
  switch (call.y_code) {
    case fm::kF16: return call.C <= Float16Keys::kLanes ? count_flat_rows_by_keys_any_label<Float16Keys> : nullptr;
    case fm::kBF16: return call.C <= BFloat16Keys::kLanes ? count_flat_rows_by_keys_any_label<BFloat16Keys> : nullptr;
    case fm::kF32: return call.C <= Float32Keys::kLanes ? count_flat_rows_by_keys_any_label<Float32Keys> : nullptr;
    default: return call.C <= Float64Keys::kLanes ? count_flat_rows_by_keys_any_label<Float64Keys> : nullptr;
  }
}

}  // namespace

fm::cpu::Candidates fm::cpu::kernel_candidates_avx512(const AccuracyCall& call) {
  Candidates found;
  if (const CountRowsFn few_classes = few_class_kernel_avx512(call)) add_candidate(found, "avx512/few_classes", few_classes);
  if (const CountRowsFn flat = flat_kernel_by_keys(call)) add_candidate(found, "avx512/flat_by_keys", flat);
  if (call.ys_c == 1) {
    switch (call.y_code) {
      case fm::kF32: add_candidate(found, "avx512/rows_simd", count_rows_simd_any_label<F32x16>); break;
      case fm::kF16: add_candidate(found, "avx512/rows_simd", count_rows_simd_any_label<F16x16>); break;
      case fm::kBF16: add_candidate(found, "avx512/rows_simd", count_rows_simd_any_label<BF16x16>); break;
      default: add_candidate(found, "avx512/rows_simd", count_rows_simd_any_label<F64x8>); break;
    }
  }
  add_candidate(found, "avx512/portable", select_portable(call));
  return found;
}
