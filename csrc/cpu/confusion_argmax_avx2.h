// AVX2 argmax of float32, float16 and bfloat16 rows with contiguous classes
// (ys_c == 1), for the confusion matrix. Included by confusion_avx2.cpp and
// confusion_avx512.cpp (both can run it) inside their anonymous namespaces, after
// confusion_kernels_portable.h and <immintrin.h>.
//
// Scores are widened to float32 lanes (exact for the 16-bit types), so every
// compare below is the float32 one. argmax_rule.h's rule: the first maximum wins
// ties, and -0.0 == +0.0 (equal under the compares, so the earlier zero wins).
// Rows holding a NaN (the first NaN wins) are rare and take the shared scalar rule.
//  * C <= 64: the whole row in registers; the maximum in every lane, then the
//    first class equal to it from the compare bits (predict_short_rows_avx2).
//  * C > 64: one pass keeping, per lane, its maximum and the first class where it
//    reached it (argmax_row_one_pass_avx2).

// 8 consecutive scores of storage code Code as float32 lanes.
template <int Code>
__m256 load_scores8(const typename fm::LogitTraits<Code>::Storage* p) {
  if constexpr (Code == fm::kF32) {
    return _mm256_loadu_ps(p);
  } else if constexpr (Code == fm::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    static_assert(Code == fm::kBF16, "float32, float16 or bfloat16 scores");
    // bfloat16 is the top half of a float32.
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
}

// The row's argmax by the shared scalar rule (rows holding a NaN).
template <int Code>
int64_t row_argmax_scalar(const typename fm::LogitTraits<Code>::Storage* row, int64_t C) {
  return fm::row_argmax<float>([row](int64_t k) { return float(fm::widen_logit<Code>(row[k])); }, C);
}

// Lanes [0, n) set, for masked loads of a row of n <= 8 float32 classes.
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// A float32 row of n <= 8 classes, lanes past n filled with -inf (never a
// maximum ahead of a real class: ties go to the earlier lane, and they are last).
inline __m256 load_tail(const float* at, __m256i lanes) {
  return _mm256_blendv_ps(_mm256_set1_ps(-__builtin_huge_valf()), _mm256_maskload_ps(at, lanes),
                          _mm256_castsi256_ps(lanes));
}

// Every lane set to the maximum of v's lanes (no extract and broadcast).
inline __m256 all_lanes_max(__m256 v) {
  v = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 1));
  v = _mm256_max_ps(v, _mm256_shuffle_ps(v, v, 0x4E));
  return _mm256_max_ps(v, _mm256_shuffle_ps(v, v, 0xB1));
}

// The smallest of v's lanes.
inline int32_t horizontal_min_epi32(__m256i v) {
  __m128i m = _mm_min_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_min_epi32(m, _mm_shuffle_epi32(m, 0x4E));
  m = _mm_min_epi32(m, _mm_shuffle_epi32(m, 0xB1));
  return _mm_cvtsi128_si32(m);
}

// One lane's running maximum and the class where the lane first reached it.
struct LaneBest {
  __m256 max;
  __m256i at;
};

// Lanes of x (classes `classes`) strictly above the lane maxima take their place:
// a tie keeps the earlier class (-0.0 == +0.0), a NaN never takes (see `unordered`).
inline void take_greater(LaneBest& b, __m256 x, __m256i classes) {
  const __m256 greater = _mm256_cmp_ps(x, b.max, _CMP_GT_OQ);
  b.max = _mm256_max_ps(x, b.max);
  b.at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b.at), _mm256_castsi256_ps(classes), greater));
}

// One pass over a row of C >= 8 classes (C < 2^31): 4 sets of lanes, each keeping
// its maximum and the first class where it reached it, in increasing class order.
// The row's last classes come as one vector loaded at C - 8 (inside the row;
// classes seen twice do no harm). The first maximum of the row is the smallest
// class among the lanes whose maximum is the row's: the lane that visits it
// reached the row maximum there first. No second pass, so no branch on where the
// maximum lies (unpredictable for rows of random scores: a second pass that
// stopped at the first hit measured 1.3-1.6x slower at C = 65-1000).
template <int Code>
int64_t argmax_row_one_pass_avx2(const typename fm::LogitTraits<Code>::Storage* row, int64_t C) {
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_huge_valf());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  LaneBest b0{neg_inf, lane}, b1{neg_inf, lane}, b2{neg_inf, lane}, b3{neg_inf, lane};
  __m256 unordered = _mm256_setzero_ps();
  __m256i classes = lane;  // classes j .. j + 7
  const __m256i eight = _mm256_set1_epi32(8), sixteen = _mm256_set1_epi32(16), twenty_four = _mm256_set1_epi32(24);
  int64_t j = 0;
  for (; j + 32 <= C; j += 32) {
    const __m256 x0 = load_scores8<Code>(row + j), x1 = load_scores8<Code>(row + j + 8);
    const __m256 x2 = load_scores8<Code>(row + j + 16), x3 = load_scores8<Code>(row + j + 24);
    take_greater(b0, x0, classes);
    take_greater(b1, x1, _mm256_add_epi32(classes, eight));
    take_greater(b2, x2, _mm256_add_epi32(classes, sixteen));
    take_greater(b3, x3, _mm256_add_epi32(classes, twenty_four));
    unordered = _mm256_or_ps(unordered, _mm256_or_ps(_mm256_cmp_ps(x0, x1, _CMP_UNORD_Q),
                                                     _mm256_cmp_ps(x2, x3, _CMP_UNORD_Q)));
    classes = _mm256_add_epi32(classes, _mm256_set1_epi32(32));
  }
  for (; j + 8 <= C; j += 8) {
    const __m256 x = load_scores8<Code>(row + j);
    take_greater(b0, x, classes);
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    classes = _mm256_add_epi32(classes, eight);
  }
  if (j < C) {
    const __m256 x = load_scores8<Code>(row + C - 8);
    take_greater(b1, x, _mm256_add_epi32(lane, _mm256_set1_epi32(int32_t(C - 8))));
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(unordered)) return row_argmax_scalar<Code>(row, C);
  const __m256 best = all_lanes_max(_mm256_max_ps(_mm256_max_ps(b0.max, b1.max), _mm256_max_ps(b2.max, b3.max)));
  const __m256i none = _mm256_set1_epi32(INT32_MAX);
  const auto candidate = [&](const LaneBest& b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(none), _mm256_castsi256_ps(b.at),
                                                _mm256_cmp_ps(b.max, best, _CMP_EQ_OQ)));
  };
  return horizontal_min_epi32(_mm256_min_epi32(_mm256_min_epi32(candidate(b0), candidate(b1)),
                                               _mm256_min_epi32(candidate(b2), candidate(b3))));
}

inline int64_t first_bit(uint32_t v) { return __builtin_ctz(v); }
inline int64_t first_bit(uint64_t v) { return __builtin_ctzll(v); }

// Rows of 8 * (Vectors - 1) < C <= 8 * Vectors classes: the whole row in registers,
// no loop inside a row, so out-of-order execution overlaps consecutive rows.
// With Vectors >= 2 (C > 8) the last vector is the row's last 8 classes, loaded at
// row + C - 8: it overlaps the vector before it but never leaves the row, so no
// masked load and no -inf fill. Its hit bits, shifted by C - 8, land on the same
// class indices as the overlapped lanes' bits, so the lowest set bit is still the
// first maximum. A float32 row of C <= 8 takes a masked load with -inf past the row
// (16-bit rows of C <= 8 stay on the portable kernel: no 16-bit masked load).
// Above 8 vectors (C > 64) the one-pass kernel measured faster.
template <int Code, int Vectors>
void predict_short_rows_avx2(const fm::ConfusionCall& call, fm::RowIndex first, int width, int64_t* pred) {
  static_assert(Vectors >= 2 || Code == fm::kF32, "one-vector rows need the float32 masked load");
  using Storage = typename fm::LogitTraits<Code>::Storage;
  const Storage* base = static_cast<const Storage*>(call.a.y) + fm::y_row_offset(call.a, first);
  const int64_t step = sample_stride(call.a), C = call.a.C;
  const __m256i tail_lanes = first_lanes(C);  // used for Vectors == 1 only (C <= 8 lanes)
  const int last_at = int(C) - 8;             // the last vector's first class (Vectors >= 2)
  // One bit per class: 32 bits while the row fits, else 64.
  using Hits = std::conditional_t<(Vectors <= 4), uint32_t, uint64_t>;
  for (int i = 0; i < width; ++i) {
    const Storage* row = base + i * step;
    __m256 x[Vectors];
    for (int k = 0; k + 1 < Vectors; ++k) x[k] = load_scores8<Code>(row + 8 * k);
    if constexpr (Vectors == 1) x[0] = load_tail(row, tail_lanes);
    else x[Vectors - 1] = load_scores8<Code>(row + last_at);
    __m256 m = x[0], unordered = _mm256_cmp_ps(x[0], x[Vectors - 1], _CMP_UNORD_Q);
    for (int k = 1; k < Vectors; ++k) {
      m = _mm256_max_ps(x[k], m);
      if (k + 1 < Vectors) unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(x[k], x[k], _CMP_UNORD_Q));
    }
    const __m256 best = all_lanes_max(m);
    Hits hits = 0;
    for (int k = 0; k + 1 < Vectors; ++k)
      hits |= Hits(uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(x[k], best, _CMP_EQ_OQ)))) << (8 * k);
    hits |= Hits(uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(x[Vectors - 1], best, _CMP_EQ_OQ))))
            << (Vectors == 1 ? 0 : last_at);
    // `unordered` covers every vector (x[0] and the last in its first compare).
    // Without a NaN, the maximum is some lane's value, so hits != 0.
    pred[i] = _mm256_movemask_ps(unordered) ? row_argmax_scalar<Code>(row, C) : first_bit(hits);
  }
}

// PredictFn for rows of 64 < C < 2^31 classes.
template <int Code>
void predict_long_rows_avx2(const fm::ConfusionCall& call, fm::RowIndex first, int width, int64_t* pred) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  const Storage* base = static_cast<const Storage*>(call.a.y) + fm::y_row_offset(call.a, first);
  const int64_t step = sample_stride(call.a), C = call.a.C;
  for (int i = 0; i < width; ++i) pred[i] = argmax_row_one_pass_avx2<Code>(base + i * step, C);
}

template <int Code>
fm::cpu::PredictFn select_predict_avx2_rows_typed(const fm::ConfusionCall& call) {
  switch ((call.a.C + 7) / 8) {
    case 1:
      if constexpr (Code == fm::kF32) return predict_short_rows_avx2<Code, 1>;
      else return select_predict_portable(call);
    case 2: return predict_short_rows_avx2<Code, 2>;
    case 3: return predict_short_rows_avx2<Code, 3>;
    case 4: return predict_short_rows_avx2<Code, 4>;
    case 5: return predict_short_rows_avx2<Code, 5>;
    case 6: return predict_short_rows_avx2<Code, 6>;
    case 7: return predict_short_rows_avx2<Code, 7>;
    case 8: return predict_short_rows_avx2<Code, 8>;
    default: return predict_long_rows_avx2<Code>;
  }
}

// These kernels where they apply (float32, float16 and bfloat16 rows with
// contiguous classes, 1 <= C < 2^31), else the portable ones.
inline fm::cpu::PredictFn select_predict_with_avx2_rows(const fm::ConfusionCall& call) {
  const fm::AccuracyCall& a = call.a;
  if (a.ys_c != 1 || a.C < 1 || a.C >= (int64_t(1) << 31)) return select_predict_portable(call);
  switch (a.y_code) {
    case fm::kF32: return select_predict_avx2_rows_typed<fm::kF32>(call);
    case fm::kF16: return select_predict_avx2_rows_typed<fm::kF16>(call);
    case fm::kBF16: return select_predict_avx2_rows_typed<fm::kBF16>(call);
    default: return select_predict_portable(call);
  }
}
