// AVX2 kernel for packed flat rows of 2 to 4 classes (ys_n == C): one 8-score load
// holds R = 8 / C whole rows, so the per-row work of the one-row-at-a-time kernel (a
// broadcast, two compares, two mask moves) is shared by R rows. Scores become integer
// order keys (semantics/accuracy_rule.h), so a NaN target needs no branch: a lane's
// class c ranks above its row's target t iff key(c) > key(t) - (c < t), the target's
// key being moved into every lane of its row by one cross-lane permute.
//
// Included by accuracy_avx2.cpp inside its anonymous namespace, after Widen8,
// float32_order_keys, lanes_of and count_flat_rows_by_eights.

template <int Code, int C, class Label>
fm::cpu::Counts count_packed_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  static_assert(C >= 2 && C <= 4, "rows must pack at least two to a register");
  using Storage = typename fm::LogitTraits<Code>::Storage;
  constexpr int R = 8 / C;
  constexpr uint32_t kUsedLanes = (1u << (R * C)) - 1;
  constexpr uint32_t kRowLanes = (1u << C) - 1;
  const int64_t ts_n = call.ts_n, ignore = call.ignore, k = call.k;
  const bool has_ignore = call.has_ignore;
  const auto* y = static_cast<const Storage*>(call.y);
  const auto* labels = static_cast<const Label*>(call.t);
  const Storage* end = y + call.N * C;  // rows are packed: ys_n == C
  // Per lane: its row in the register, that row's first lane, its class. Lanes past
  // the R rows (C == 3: lanes 6 and 7) are given to row 0 and dropped by kUsedLanes.
  alignas(32) int32_t row_of[8], row_start[8], class_of[8];
  for (int j = 0; j < 8; ++j) {
    row_of[j] = j < R * C ? j / C : 0;
    row_start[j] = row_of[j] * C;
    class_of[j] = j < R * C ? j % C : 0;
  }
  const __m256i lane_row = _mm256_load_si256(reinterpret_cast<const __m256i*>(row_of));
  const __m256i lane_row_start = _mm256_load_si256(reinterpret_cast<const __m256i*>(row_start));
  const __m256i lane_class = _mm256_load_si256(reinterpret_cast<const __m256i*>(class_of));
  __m256i lanes_of_row[R];
  for (int i = 0; i < R; ++i) lanes_of_row[i] = _mm256_cmpeq_epi32(lane_row, _mm256_set1_epi32(i));
  int64_t correct = 0, total = 0, r = r0;
  for (; r + R <= r1 && y + r * C + 8 <= end; r += R) {
    // Each lane's row target, built in registers: a vector load of targets just
    // stored one by one would stall on store forwarding (measured 2x slower).
    __m256i row_target = _mm256_setzero_si256();
    int valid[R];
    for (int i = 0; i < R; ++i) {  // branch-free: labels are random from row to row
      const auto t = static_cast<int64_t>(labels[(r + i) * ts_n]);
      const int kind = fm::classify_label(t, C, has_ignore, ignore);
      total += kind != fm::kLabelIgnored;
      valid[i] = kind == fm::kLabelValid;
      row_target = _mm256_blendv_epi8(row_target, _mm256_set1_epi32(valid[i] ? int32_t(t) : 0), lanes_of_row[i]);
    }
    const __m256i key = float32_order_keys(Widen8<Code>::load(y + r * C));
    const __m256i target_key = _mm256_permutevar8x32_epi32(key, _mm256_add_epi32(lane_row_start, row_target));
    const __m256i threshold = _mm256_add_epi32(target_key, _mm256_cmpgt_epi32(row_target, lane_class));
    const uint32_t above = lanes_of(_mm256_cmpgt_epi32(key, threshold)) & kUsedLanes;
    for (int i = 0; i < R; ++i) correct += valid[i] & (int64_t(_mm_popcnt_u32((above >> (i * C)) & kRowLanes)) < k);
  }
  const fm::cpu::Counts rest = count_flat_rows_by_eights<Code, 1, Label>(call, r, r1);
  return {correct + rest.correct, total + rest.total};
}

template <int Code, int C>
fm::cpu::Counts count_packed_rows_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code,
                             [&](auto label) { return count_packed_rows<Code, C, decltype(label)>(call, r0, r1); });
}

// The packed-rows kernel for C classes, or nullptr outside 2..4.
template <int Code>
fm::cpu::CountRowsFn packed_rows_kernel(int64_t C) {
  switch (C) {
    case 2: return count_packed_rows_any_label<Code, 2>;
    case 3: return count_packed_rows_any_label<Code, 3>;
    case 4: return count_packed_rows_any_label<Code, 4>;
    default: return nullptr;
  }
}
