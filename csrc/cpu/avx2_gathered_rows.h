// AVX2 kernel for flat rows of few classes (C = 3 .. 16 or so): eight rows per step,
// one row per lane. Each lane's target score and then each class column are gathered
// (one vpgather per class for eight rows), turned into integer order keys
// (semantics/accuracy_rule.h) and compared: class c ranks above the target t iff
// key(c) > key(t) - (c < t). No per-row mask, popcount or branch: the per-row work
// of the one-row-at-a-time kernels is what limits them at small C.
// Gathers are fast on AMD Zen 3 and slow on Intel CPUs since the 2023 GDS microcode fix,
// which is why this is one candidate among several, timed by the caller's planner.
//
// Included by accuracy_avx2.cpp inside its anonymous namespace, after
// float32_order_keys, lanes_of and count_flat_rows_by_eights.

// Keys of 16-bit floats (float16, bfloat16) held in the low half of 32-bit lanes
// (the high half is garbage from the 4-byte gather): nan_above is the magnitude of
// +infinity, above which a magnitude is a NaN.
template <int NanAbove>
__m256i half_order_keys(__m256i raw) {
  const __m256i bits = _mm256_and_si256(raw, _mm256_set1_epi32(0xffff));
  const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff));
  const __m256i sign = _mm256_cmpgt_epi32(bits, _mm256_set1_epi32(0x7fff));  // all ones for negative scores
  const __m256i key = _mm256_sub_epi32(_mm256_xor_si256(magnitude, sign), sign);
  const __m256i nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(NanAbove));
  return _mm256_blendv_epi8(key, _mm256_set1_epi32(0x7fffffff), nan);
}

template <int Code>
struct GatheredKeys;
template <>
struct GatheredKeys<fm::kF32> {
  static __m256i at(const float* base, __m256i offsets) { return float32_order_keys(_mm256_i32gather_ps(base, offsets, 4)); }
};
template <>
struct GatheredKeys<fm::kF16> {  // 4-byte gathers at 2-byte steps: reads one element past each score
  static __m256i at(const uint16_t* base, __m256i offsets) {
    return half_order_keys<0x7c00>(_mm256_i32gather_epi32(reinterpret_cast<const int*>(base), offsets, 2));
  }
};
template <>
struct GatheredKeys<fm::kBF16> {
  static __m256i at(const uint16_t* base, __m256i offsets) {
    return half_order_keys<0x7f80>(_mm256_i32gather_epi32(reinterpret_cast<const int*>(base), offsets, 2));
  }
};

// Requires M == 1, ys_c == 1, 1 <= C <= 64 (the last rows go to the flat kernel), and 8 * |ys_n| + C < 2^31 (32-bit gather offsets).
// 16-bit scores are read 4 bytes at a time, so those steps also need the row after the
// step's last one to exist (ys_n > 0, checked by the candidate list): the last rows of
// the view go to the one-row-at-a-time kernel.
template <int Code, class Label>
fm::cpu::Counts count_gathered_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  constexpr bool kReadsPastScore = sizeof(Storage) < 4;
  const int64_t C = call.C, ys_n = call.ys_n, ts_n = call.ts_n, ignore = call.ignore;
  const bool has_ignore = call.has_ignore;
  const auto* y = static_cast<const Storage*>(call.y);
  const auto* labels = static_cast<const Label*>(call.t);
  const __m256i row_offsets = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int32_t(ys_n)));
  // Ranks never exceed C: a larger k is C + 1, which fits a 32-bit lane.
  const __m256i k = _mm256_set1_epi32(int32_t(call.k < C + 1 ? call.k : C + 1));
  const int64_t step_end = kReadsPastScore ? min_i64(r1, call.N - 1) : r1;  // 16-bit: row r + 8 must exist
  int64_t correct = 0, total = 0, r = r0;
  for (; r + 8 <= step_end; r += 8) {
    alignas(32) int32_t target[8];
    alignas(32) int32_t valid[8];
    for (int i = 0; i < 8; ++i) {  // branch-free: labels are random from row to row
      const auto t = static_cast<int64_t>(labels[(r + i) * ts_n]);
      const int kind = fm::classify_label(t, C, has_ignore, ignore);
      total += kind != fm::kLabelIgnored;
      valid[i] = -int32_t(kind == fm::kLabelValid);
      target[i] = kind == fm::kLabelValid ? int32_t(t) : 0;
    }
    const Storage* base = y + r * ys_n;
    const __m256i t = _mm256_load_si256(reinterpret_cast<const __m256i*>(target));
    const __m256i target_key = GatheredKeys<Code>::at(base, _mm256_add_epi32(row_offsets, t));
    __m256i minus_rank = _mm256_setzero_si256();
    __m256i column = row_offsets, c = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi32(1);
    for (int64_t j = 0; j < C; ++j) {
      const __m256i key = GatheredKeys<Code>::at(base, column);
      const __m256i threshold = _mm256_add_epi32(target_key, _mm256_cmpgt_epi32(t, c));  // key(t) - (c < t)
      minus_rank = _mm256_add_epi32(minus_rank, _mm256_cmpgt_epi32(key, threshold));
      column = _mm256_add_epi32(column, one);
      c = _mm256_add_epi32(c, one);
    }
    const __m256i rank = _mm256_sub_epi32(_mm256_setzero_si256(), minus_rank);
    const __m256i counted = _mm256_and_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(valid)),
                                             _mm256_cmpgt_epi32(k, rank));
    correct += _mm_popcnt_u32(lanes_of(counted));
  }
  const fm::cpu::Counts rest = flat_kernel_by_eights<Code>(C)(call, r, r1);
  return {correct + rest.correct, total + rest.total};
}

template <int Code>
fm::cpu::Counts count_gathered_rows_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code,
                             [&](auto label) { return count_gathered_rows<Code, decltype(label)>(call, r0, r1); });
}
