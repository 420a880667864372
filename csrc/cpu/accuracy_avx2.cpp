// Accuracy kernels for AVX2 CPUs (this file alone is compiled with AVX2, FMA, F16C,
// BMI2). Flat rows of at most 64 float32/float16/bfloat16 classes (16 float64) get
// hand-written kernels that compare a whole row into class bit masks; two classes
// go 8 rows per step, 2-4 packed classes 8/C rows per load (avx2_packed_rows.h), 3, 5,
// 6, 7 and 10 packed classes 4 or 8 rows per block of registers (avx2_blocked_rows.h),
// float16/bfloat16 top-1 as 16-bit keys 16 per register (avx2_half_blocked_rows.h); rows
// of any length are read 8 scores at a time (avx2_long_rows.h); a gather kernel
// (avx2_gathered_rows.h) is a candidate for CPUs with fast gathers; top-1 over long
// rows can read each row's maximum before its target score; everything else is
// the portable code, vectorised by the compiler for AVX2. kernel_candidates_avx2
// lists them fastest first as measured on AMD Zen 3.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "cpu/accuracy.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/kernels_portable.h"

// Half a row of up to 16 classes: 8 floats or 4 doubles per register, compared into
// a bit mask (bit j = class j of this half).
struct F32Half {
  using Storage = float;
  using Vec = __m256;
  static constexpr int kLanes = 8;
  static __m256i lanes_below(int64_t n) {  // lane j active iff j < n (masked lanes read nothing)
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load(const float* p, __m256i active) { return _mm256_maskload_ps(p, active); }
  static Vec splat(float v) { return _mm256_set1_ps(v); }
  template <int Predicate>
  static uint32_t compare(Vec x, Vec v) { return uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(x, v, Predicate))); }
};

struct F64Half {
  using Storage = double;
  using Vec = __m256d;
  static constexpr int kLanes = 4;
  static __m256i lanes_below(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Vec load(const double* p, __m256i active) { return _mm256_maskload_pd(p, active); }
  static Vec splat(double v) { return _mm256_set1_pd(v); }
  template <int Predicate>
  static uint32_t compare(Vec x, Vec v) { return uint32_t(_mm256_movemask_pd(_mm256_cmp_pd(x, v, Predicate))); }
};

// Flat rows (M == 1) of at most 2 * kLanes classes; see the AVX-512 kernel of the
// same name for the logic: no data-dependent branch, a NaN target selected.
template <class H, class Label>
fm::cpu::Counts count_flat_rows_two_halves(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  constexpr int W = H::kLanes;
  const int64_t C = call.C;
  const __m256i low_active = H::lanes_below(C), high_active = H::lanes_below(C - W);
  const uint32_t valid = _bzhi_u32(~0u, unsigned(C));
  return count_flat_rows<typename H::Storage, Label>(call, r0, r1, [=](const auto* row, int64_t target) {
    const auto low = H::load(row, low_active), high = H::load(row + W, high_active);
    const auto v = H::splat(row[target]);
    const uint32_t before = _bzhi_u32(valid, unsigned(target));
    const uint32_t after = valid & ~_bzhi_u32(valid, unsigned(target + 1));
    const uint32_t not_less = H::template compare<_CMP_NLT_UQ>(low, v) | H::template compare<_CMP_NLT_UQ>(high, v) << W;
    const uint32_t not_less_equal =
        H::template compare<_CMP_NLE_UQ>(low, v) | H::template compare<_CMP_NLE_UQ>(high, v) << W;
    const uint32_t nan = H::template compare<_CMP_UNORD_Q>(low, low) | H::template compare<_CMP_UNORD_Q>(high, high) << W;
    const uint32_t above_number = (not_less & before) | (not_less_equal & after);
    const uint32_t above = (nan >> target) & 1 ? nan & before : above_number;
    return int64_t(_mm_popcnt_u32(above));
  });
}

// Eight scores widened to float32: float32 as is, float16 by F16C, bfloat16 by a shift.
template <int Code>
struct Widen8;
template <>
struct Widen8<fm::kF32> {
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
};
template <>
struct Widen8<fm::kF16> {
  static __m256 load(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
};
template <>
struct Widen8<fm::kBF16> {
  static __m256 load(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
};

// Flat rows (M == 1, contiguous classes) of at most 8 * NV classes, NV <= 8, of a
// 2- or 4-byte float dtype: NV 8-lane compares per row into 64-bit class masks.
// Rows whose window of 8 * NV elements stays inside the view are loaded in place (the
// lanes past the row hold the next rows' scores and are masked out of the count); the
// last rows are first copied into a zero-padded local buffer, so nothing is read
// outside the view and no masked load is needed (those cost several times more on
// some CPUs).
template <int Code, int NV, class Label>
fm::cpu::Counts count_flat_rows_by_eights(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  constexpr int64_t kWindow = 8 * NV;
  const int64_t C = call.C;
  const auto* y = static_cast<const Storage*>(call.y);
  // One past the view's highest element (rows may run backwards: ys_n < 0).
  const Storage* end = y + (call.N > 0 && call.ys_n > 0 ? (call.N - 1) * call.ys_n : 0) + C;
  const uint64_t valid = _bzhi_u64(~uint64_t(0), unsigned(C));
  return count_flat_rows<Storage, Label>(call, r0, r1, [=](const Storage* row, int64_t target) {
    Storage padded[kWindow];
    const Storage* window = row;
    if (__builtin_expect(row + kWindow > end, 0)) {
      std::memset(padded, 0, sizeof padded);
      std::memcpy(padded, row, size_t(C) * sizeof(Storage));
      window = padded;
    }
    __m256 x[NV];
    for (int i = 0; i < NV; ++i) x[i] = Widen8<Code>::load(window + 8 * i);
    const float target_score = fm::widen_logit<Code>(row[target]);
    const uint64_t before = _bzhi_u64(valid, unsigned(target));
    uint64_t not_less_equal = 0, equal = 0;
    if (__builtin_expect(target_score != target_score, 0)) {  // a NaN target loses only to an earlier NaN
      for (int i = 0; i < NV; ++i)
        equal |= uint64_t(_mm256_movemask_ps(_mm256_cmp_ps(x[i], x[i], _CMP_UNORD_Q))) << (8 * i);
      return int64_t(_mm_popcnt_u64(equal & before));
    }
    // Above the target: !(x <= v) anywhere (false at the target itself), or x == v before it.
    const __m256 v = _mm256_set1_ps(target_score);
    for (int i = 0; i < NV; ++i) {
      not_less_equal |= uint64_t(_mm256_movemask_ps(_mm256_cmp_ps(x[i], v, _CMP_NLE_UQ))) << (8 * i);
      equal |= uint64_t(_mm256_movemask_ps(_mm256_cmp_ps(x[i], v, _CMP_EQ_OQ))) << (8 * i);
    }
    return int64_t(_mm_popcnt_u64((not_less_equal & valid) | (equal & before)));
  });
}

template <int Code, int NV>
fm::cpu::Counts count_flat_rows_by_eights_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code, [&](auto label) {
    return count_flat_rows_by_eights<Code, NV, decltype(label)>(call, r0, r1);
  });
}

// The flat kernel for rows of C <= 64 classes of this 2- or 4-byte float dtype.
template <int Code>
fm::cpu::CountRowsFn flat_kernel_by_eights(int64_t C) {
  switch ((C + 7) / 8) {
    case 1: return count_flat_rows_by_eights_any_label<Code, 1>;
    case 2: return count_flat_rows_by_eights_any_label<Code, 2>;
    case 3: return count_flat_rows_by_eights_any_label<Code, 3>;
    case 4: return count_flat_rows_by_eights_any_label<Code, 4>;
    case 5: return count_flat_rows_by_eights_any_label<Code, 5>;
    case 6: return count_flat_rows_by_eights_any_label<Code, 6>;
    case 7: return count_flat_rows_by_eights_any_label<Code, 7>;
    default: return count_flat_rows_by_eights_any_label<Code, 8>;
  }
}

template <class H>
fm::cpu::Counts count_flat_rows_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code, [&](auto label) {
    return count_flat_rows_two_halves<H, decltype(label)>(call, r0, r1);
  });
}

// Two float32 classes, rows and labels contiguous: 8 rows per step, de-interleaved
// in registers (see the AVX-512 two-class kernel). Scores become integer order keys
// (semantics/accuracy_rule.h); a row's target is beaten iff (target == 1) XOR (key1 > key0):
// class 0 beats a target of 1 when key0 >= key1, class 1 beats a target of 0 when
// key1 > key0.
__m256i float32_order_keys(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i sign = _mm256_srai_epi32(bits, 31);  // all ones for negative scores
  const __m256i key = _mm256_sub_epi32(_mm256_xor_si256(magnitude, sign), sign);  // -magnitude if negative
  const __m256i nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(key, _mm256_set1_epi32(0x7fffffff), nan);
}

uint32_t lanes_of(__m256i mask) { return uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(mask))); }

struct Labels32x8 {
  using Type = int32_t;
  static uint32_t equal(const int32_t* p, int64_t v) {
    if (v != int32_t(v)) return 0;
    return lanes_of(_mm256_cmpeq_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                                       _mm256_set1_epi32(int32_t(v))));
  }
};
struct Labels64x8 {
  using Type = int64_t;
  static uint32_t equal(const int64_t* p, int64_t v) {
    const __m256i value = _mm256_set1_epi64x(v);
    const auto half = [&](const int64_t* q) {
      return uint32_t(_mm256_movemask_pd(_mm256_castsi256_pd(
          _mm256_cmpeq_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), value))));
    };
    return half(p) | half(p + 4) << 4;
  }
};

// float16 and bfloat16 rows take the same path, widened to float32 8 scores at a time.
template <int Code, class L>
fm::cpu::Counts count_two_class_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  const Storage* y = static_cast<const Storage*>(call.y) + 2 * r0;
  const auto* labels = reinterpret_cast<const typename L::Type*>(call.t) + r0;
  const int64_t steps = (r1 - r0) / 8;
  int64_t correct = 0, total = 0;
  for (int64_t s = 0; s < steps; ++s, y += 16, labels += 8) {
    const __m256 low = Widen8<Code>::load(y), high = Widen8<Code>::load(y + 8);  // rows 0-3, rows 4-7
    // shuffle_ps gives rows (0 1 4 5 | 2 3 6 7); permute4x64 restores the row order.
    const auto in_row_order = [](__m256 v) { return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8)); };
    const __m256i key0 = float32_order_keys(in_row_order(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0))));
    const __m256i key1 = float32_order_keys(in_row_order(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1))));
    const uint32_t ignored = call.has_ignore ? L::equal(labels, call.ignore) : 0;
    const uint32_t zero = L::equal(labels, 0), one = L::equal(labels, 1);
    const uint32_t valid = (zero | one) & ~ignored;
    const uint32_t beaten = one ^ lanes_of(_mm256_cmpgt_epi32(key1, key0));
    total += 8 - _mm_popcnt_u32(ignored);
    correct += _mm_popcnt_u32(call.k > 1 ? valid : valid & ~beaten);
  }
  const fm::cpu::Counts tail = count_flat_rows_by_eights<Code, 1, typename L::Type>(call, r0 + 8 * steps, r1);
  return {correct + tail.correct, total + tail.total};
}

#include "cpu/avx2_blocked_rows.h"
#include "cpu/avx2_gathered_rows.h"
#include "cpu/avx2_half_blocked_rows.h"
#include "cpu/avx2_long_rows.h"
#include "cpu/avx2_packed_rows.h"

}  // namespace

namespace {

// The hand-written candidates for a float32/float16/bfloat16 call, fastest on this
// kind of CPU first (measured on AMD Zen 3; a planner re-orders them by timing).
template <int Code>
void add_float_candidates(const fm::AccuracyCall& call, fm::cpu::Candidates& found) {
  // Flat rows with contiguous classes; the kernels read row[0] for rows they then
  // mask out, which is only safe when C >= 1.
  if (!(call.M == 1 && call.ys_c == 1 && call.C >= 1)) return;
  const int64_t C = call.C;
  const int64_t abs_row_stride = call.ys_n < 0 ? -call.ys_n : call.ys_n;
  const bool two_class_packed = C == 2 && call.ys_n == 2 && call.ts_n == 1;
  // 32-bit gather offsets; 16-bit scores are gathered 4 bytes at a time and need the next row.
  const bool gatherable = C >= 2 && C <= 32 && abs_row_stride < (int64_t(1) << 27) &&
                          (Code == fm::kF32 || call.ys_n > 0);
  if (two_class_packed && call.t_code == fm::kI32) add_candidate(found, "avx2/two_class_rows", count_two_class_rows<Code, Labels32x8>);
  if (two_class_packed && call.t_code == fm::kI64) add_candidate(found, "avx2/two_class_rows", count_two_class_rows<Code, Labels64x8>);
  // 16-bit keys: 1.4-1.8x the next kernel in L2 up to C = 16 (Zen 3), within noise of
  // flat_by_eights from C = 24 on.
  const auto half_blocked = call.ys_n == C && call.k == 1 ? half_blocked_rows_kernel<Code>(C) : nullptr;
  if (half_blocked && C <= 20) add_candidate(found, "avx2/half_blocked_rows", half_blocked);
  if (call.ys_n == C && blocked_rows_kernel<Code>(C)) add_candidate(found, "avx2/blocked_rows", blocked_rows_kernel<Code>(C));
  if (call.ys_n == C && C >= 2 && C <= 4) add_candidate(found, "avx2/packed_rows", packed_rows_kernel<Code>(C));
  if (C <= 64) add_candidate(found, "avx2/flat_by_eights", flat_kernel_by_eights<Code>(C));
  if (half_blocked && C > 20) add_candidate(found, "avx2/half_blocked_rows", half_blocked);
  // Top-1 over long rows: the row's maximum first measured 1.0-1.4x long_rows from
  // C = 200 up (float32, float16); at C = 100 it was slower on one thread.
  const bool max_first = call.k == 1 && C >= 8, max_first_leads = max_first && C >= 128;
  if (max_first_leads) add_candidate(found, "avx2/long_rows_max_first", count_long_rows_max_first_any_label<Code>);
  if (C < (int64_t(1) << 31)) add_candidate(found, "avx2/long_rows", count_long_rows_any_label<Code>);
  if (max_first && !max_first_leads) add_candidate(found, "avx2/long_rows_max_first", count_long_rows_max_first_any_label<Code>);
  // 3-4x slower than flat_by_eights on the Zen 3 VM it was measured on (gathers are
  // slow there): a candidate for CPUs with fast gathers, never the heuristic's pick.
  if (gatherable) add_candidate(found, "avx2/gathered_rows", count_gathered_rows_any_label<Code>);
}

}  // namespace

fm::cpu::Candidates fm::cpu::kernel_candidates_avx2(const AccuracyCall& call) {
  Candidates found;
  switch (call.y_code) {
    case fm::kF32: add_float_candidates<fm::kF32>(call, found); break;
    case fm::kF16: add_float_candidates<fm::kF16>(call, found); break;
    case fm::kBF16: add_float_candidates<fm::kBF16>(call, found); break;
    default: break;
  }
  if (call.y_code == fm::kF64 && call.M == 1 && call.ys_c == 1 && call.C >= 1 && call.C <= 2 * F64Half::kLanes)
    add_candidate(found, "avx2/flat_two_halves", count_flat_rows_any_label<F64Half>);
  add_candidate(found, "avx2/portable", select_portable(call));
  return found;
}
