// AVX2 kernel for flat rows of any number of contiguous float32/float16/bfloat16
// classes (made for long rows, C > 64): each row is read 8 scores at a time, widened to
// float32 in registers (F16C for float16, a shift for bfloat16) and compared with the
// target's score, the counts of classes above it summed lane-wise. The portable loop
// widens float16 one element at a time, which is what this kernel replaces.
//
// Included by accuracy_avx2.cpp inside its anonymous namespace, after Widen8 and
// count_flat_rows (kernels_portable.h).

// Lanes of an 8-score chunk that rank above a non-NaN target v: !(x <= v) anywhere
// (false at the target itself), or x == v at a class index below the target's.
inline __m256i lanes_above_target(__m256 x, __m256 v, __m256i class_index, __m256i target) {
  const __m256 greater_or_nan = _mm256_cmp_ps(x, v, _CMP_NLE_UQ);
  const __m256 equal_before = _mm256_and_ps(_mm256_cmp_ps(x, v, _CMP_EQ_OQ),
                                            _mm256_castsi256_ps(_mm256_cmpgt_epi32(target, class_index)));
  return _mm256_castps_si256(_mm256_or_ps(greater_or_nan, equal_before));
}

inline int64_t sum_lanes(__m256i v) {
  const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i two = _mm_add_epi32(four, _mm_shuffle_epi32(four, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(two, _mm_shuffle_epi32(two, _MM_SHUFFLE(2, 3, 0, 1))));
}

// Requires 1 <= C < 2^31 (class indices are 32-bit lanes).
template <int Code, class Label>
fm::cpu::Counts count_long_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  const int64_t C = call.C;
  const int64_t whole = C / 8 * 8;
  const auto* y = static_cast<const Storage*>(call.y);
  // One past the view's highest element (rows may run backwards: ys_n < 0).
  const Storage* end = y + (call.N > 0 && call.ys_n > 0 ? (call.N - 1) * call.ys_n : 0) + C;
  const __m256i first_lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i eight = _mm256_set1_epi32(8);
  const __m256i in_row_limit = _mm256_set1_epi32(int32_t(C));
  return count_flat_rows<Storage, Label>(call, r0, r1, [=](const Storage* row, int64_t target) -> int64_t {
    const float target_score = fm::widen_logit<Code>(row[target]);
    if (__builtin_expect(target_score != target_score, 0)) {  // a NaN target loses only to an earlier NaN
      int64_t rank = 0;
      for (int64_t j = 0; j < target; ++j) {
        const float x = fm::widen_logit<Code>(row[j]);
        rank += x != x;
      }
      return rank;
    }
    const __m256 v = _mm256_set1_ps(target_score);
    const __m256i t = _mm256_set1_epi32(int32_t(target));
    __m256i class_index = first_lanes;
    // Two accumulators (lanes hold -count): independent chains for the two halves of each step.
    __m256i above_a = _mm256_setzero_si256(), above_b = _mm256_setzero_si256();
    int64_t j = 0;
    for (; j + 16 <= whole; j += 16) {
      const __m256i second_index = _mm256_add_epi32(class_index, eight);
      above_a = _mm256_add_epi32(above_a, lanes_above_target(Widen8<Code>::load(row + j), v, class_index, t));
      above_b = _mm256_add_epi32(above_b, lanes_above_target(Widen8<Code>::load(row + j + 8), v, second_index, t));
      class_index = _mm256_add_epi32(second_index, eight);
    }
    if (j < whole) {
      above_a = _mm256_add_epi32(above_a, lanes_above_target(Widen8<Code>::load(row + j), v, class_index, t));
      class_index = _mm256_add_epi32(class_index, eight);
      j += 8;
    }
    if (j < C) {  // the last C % 8 classes: in place when 8 elements stay inside the view
      Storage padded[8];
      const Storage* chunk = row + j;
      if (__builtin_expect(chunk + 8 > end, 0)) {
        std::memset(padded, 0, sizeof padded);
        std::memcpy(padded, chunk, size_t(C - j) * sizeof(Storage));
        chunk = padded;
      }
      const __m256i in_row = _mm256_cmpgt_epi32(in_row_limit, class_index);
      above_b = _mm256_add_epi32(
          above_b, _mm256_and_si256(in_row, lanes_above_target(Widen8<Code>::load(chunk), v, class_index, t)));
    }
    return -sum_lanes(_mm256_add_epi32(above_a, above_b));
  });
}

// Top-1 over long rows, reading each row once in order: the row's maximum first (and
// whether it holds a NaN), then the target's score, now in L1. Reading the target's
// score first sends a load into the middle of the row ahead of the sequential scan.
// A target equal to the maximum is correct unless an earlier class ties it (rescanned
// from L1); a row with a NaN takes the rank rule.
template <int Code, class Label>
fm::cpu::Counts count_long_rows_max_first(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  const int64_t C = call.C;
  const int64_t whole = C / 8 * 8;
  return count_flat_rows<Storage, Label>(call, r0, r1, [=](const Storage* row, int64_t target) -> int64_t {
    __m256 max_a = _mm256_set1_ps(-INFINITY), max_b = max_a;
    __m256 nan = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= whole; j += 16) {
      const __m256 x = Widen8<Code>::load(row + j), z = Widen8<Code>::load(row + j + 8);
      max_a = _mm256_max_ps(max_a, x);
      max_b = _mm256_max_ps(max_b, z);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, z, _CMP_UNORD_Q));
    }
    for (; j < whole; j += 8) {
      const __m256 x = Widen8<Code>::load(row + j);
      max_a = _mm256_max_ps(max_a, x);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    }
    const __m256 m8 = _mm256_max_ps(max_a, max_b);
    const __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    const __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    float best = _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1)));
    bool has_nan = _mm256_movemask_ps(nan) != 0;
    for (; j < C; ++j) {
      const float x = fm::widen_logit<Code>(row[j]);
      has_nan |= x != x;
      best = x > best ? x : best;
    }
    if (__builtin_expect(has_nan, 0))
      return fm::target_rank<float>([&](int64_t i) { return fm::widen_logit<Code>(row[i]); }, C, target, 1);
    const float v = fm::widen_logit<Code>(row[target]);
    if (v != best) return 1;
    // Correct unless an earlier class ties the maximum.
    const __m256 m = _mm256_set1_ps(best);
    int64_t i = 0;
    for (; i + 8 <= target; i += 8)
      if (_mm256_movemask_ps(_mm256_cmp_ps(Widen8<Code>::load(row + i), m, _CMP_EQ_OQ))) return 1;
    for (; i < target; ++i)
      if (fm::widen_logit<Code>(row[i]) == best) return 1;
    return 0;
  });
}

template <int Code>
fm::cpu::Counts count_long_rows_max_first_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code,
                             [&](auto label) { return count_long_rows_max_first<Code, decltype(label)>(call, r0, r1); });
}

template <int Code>
fm::cpu::Counts count_long_rows_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code, [&](auto label) { return count_long_rows<Code, decltype(label)>(call, r0, r1); });
}
