// AVX2 kernel for packed flat rows (ys_n == C) of a few classes that do not divide
// 8: a block of V = C / gcd(C, 8) score registers holds exactly R = 8 / gcd(C, 8)
// whole rows (C = 3: 3 registers, 8 rows; C = 10: 5 registers, 4 rows). The per-row
// work of the one-row-at-a-time kernel (a target load and broadcast, compares, mask
// moves, a popcount) is done once per block: the R target scores are picked out of the
// block's registers by permutes (a gather measured 1.5x slower on AMD Zen 3), each
// lane takes its row's target score and class by a fixed cross-lane permute, and the
// R rows' verdicts come out of one bit mask.
//
// Blocks whose targets are all numbers compare floats: class c ranks above its row's
// target t iff !(x < v) for c < t, !(x <= v) for c > t (a NaN x ranks above). A block
// with a NaN target uses integer order keys (semantics/accuracy_rule.h): c ranks above
// t iff key(c) > key(t) - (c < t).
//
// Included by accuracy_avx2.cpp inside its anonymous namespace, after Widen8,
// float32_order_keys, lanes_of and count_flat_rows_by_eights.

template <int C>
struct RowBlock {
  static constexpr int kGcd = C % 8 == 0 ? 8 : C % 4 == 0 ? 4 : C % 2 == 0 ? 2 : 1;
  static constexpr int V = C / kGcd;  // score registers per block
  static constexpr int R = 8 / kGcd;  // whole rows per block
  static_assert(R >= 2 && V <= 8, "a block must hold several rows in at most 64 lanes");
  static constexpr int kLanes = 8 * V;
  // Bit r * C + C - 1 for every row r: the top bit of each row's field in the block mask.
  static constexpr uint64_t top_bits() {
    uint64_t bits = 0;
    for (int r = 0; r < R; ++r) bits |= uint64_t(1) << (r * C + C - 1);
    return bits;
  }
  static constexpr uint64_t kAllBits = kLanes == 64 ? ~uint64_t(0) : (uint64_t(1) << kLanes) - 1;
};

// The R rows of a block that have at least one class above the target, as R bits,
// from the block's mask (bit r * C + c = class c of row r ranks above the target).
// Adding each field's low C - 1 bits to all ones there carries into the field's top
// bit iff one of them is set; the sum never leaves the field.
template <int C>
inline uint32_t rows_with_any(uint64_t above) {
  constexpr uint64_t top = RowBlock<C>::top_bits();
  constexpr uint64_t low = RowBlock<C>::kAllBits & ~top;
  const uint64_t any = (((above & low) + low) | above) & top;
  return uint32_t(_pext_u64(any, top));
}

// The R labels of a block as targets (a valid label, else 0, in lanes 0..R-1) plus
// bit masks of the valid and the ignored rows. Contiguous int32 and int64 labels are
// classified in registers; other label dtypes and strides one by one.
template <int R, class Label>
struct BlockLabels {
  __m256i target;
  uint32_t valid, ignored;
};

// Always inlined: a call per block made GCC spill the score registers and clear the
// upper halves (vzeroupper) in every iteration, a third of the kernel's time.
template <int R, class Label>
__attribute__((always_inline)) inline BlockLabels<R, Label> read_block_labels(const Label* labels, int64_t ts_n, int64_t C, bool has_ignore, int64_t ignore) {
  constexpr uint32_t kRows = (1u << R) - 1;
  if constexpr (std::is_same_v<Label, int32_t>) {
    if (ts_n == 1) {
      const __m256i t = R == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels))
                               : _mm256_castsi128_si256(R == 4 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(labels))
                                                               : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(labels)));
      // 0 <= t < C as one signed compare each way; an ignore label outside int32 never matches.
      const __m256i in_range = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), t),
                                                   _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(C)), t));
      const bool ignorable = has_ignore && ignore == int32_t(ignore);
      const uint32_t ignored = ignorable ? lanes_of(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(int32_t(ignore)))) & kRows : 0;
      const uint32_t valid = lanes_of(in_range) & kRows & ~ignored;
      return {_mm256_and_si256(t, in_range), valid, ignored};
    }
  }
  if constexpr (std::is_same_v<Label, int64_t>) {
    if (ts_n == 1 && R >= 4) {
      const auto classify = [&](const int64_t* p, uint32_t& valid, uint32_t& ignored) {
        const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i in_range = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), t),
                                                     _mm256_cmpgt_epi64(_mm256_set1_epi64x(C), t));
        const uint32_t ign = has_ignore ? uint32_t(_mm256_movemask_pd(_mm256_castsi256_pd(
                                              _mm256_cmpeq_epi64(t, _mm256_set1_epi64x(ignore)))))
                                        : 0;
        ignored = ign;
        valid = uint32_t(_mm256_movemask_pd(_mm256_castsi256_pd(in_range))) & ~ign;
        // The low 32 bits of each in-range label, packed into lanes 0-3.
        const __m256i low = _mm256_permutevar8x32_epi32(_mm256_and_si256(t, in_range), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
        return _mm256_castsi256_si128(low);
      };
      uint32_t valid0, ignored0;
      const __m128i first = classify(labels, valid0, ignored0);
      if constexpr (R == 4) return {_mm256_castsi128_si256(first), valid0, ignored0};
      uint32_t valid1, ignored1;
      const __m128i second = classify(labels + 4, valid1, ignored1);
      return {_mm256_set_m128i(second, first), valid0 | valid1 << 4, ignored0 | ignored1 << 4};
    }
  }
  alignas(32) int32_t targets[8] = {};
  uint32_t valid = 0, ignored = 0;
  for (int i = 0; i < R; ++i) {
    const auto t = static_cast<int64_t>(labels[i * ts_n]);
    const int kind = fm::classify_label(t, C, has_ignore, ignore);
    ignored |= uint32_t(kind == fm::kLabelIgnored) << i;
    valid |= uint32_t(kind == fm::kLabelValid) << i;
    targets[i] = kind == fm::kLabelValid ? int32_t(t) : 0;
  }
  return {_mm256_load_si256(reinterpret_cast<const __m256i*>(targets)), valid, ignored};
}

// The block's mask by order keys, for blocks with a NaN target (see the file comment).
// It loads the block again rather than taking the caller's registers, which would have
// to be stored for it on every block.
template <int Code, int V>
uint64_t blocked_rows_above_by_keys(const typename fm::LogitTraits<Code>::Storage* block, __m256i at_lane,
                                    __m256i at_register, __m256i row_targets, const __m256i* lane_row,
                                    const __m256i* lane_class) {
  __m256i key[V];
  for (int i = 0; i < V; ++i) key[i] = float32_order_keys(Widen8<Code>::load(block + 8 * i));
  __m256i target_key = _mm256_permutevar8x32_epi32(key[0], at_lane);
  for (int i = 1; i < V; ++i)
    target_key = _mm256_blendv_epi8(target_key, _mm256_permutevar8x32_epi32(key[i], at_lane),
                                    _mm256_cmpeq_epi32(at_register, _mm256_set1_epi32(i)));
  uint64_t above = 0;
  for (int i = 0; i < V; ++i) {
    const __m256i row_key = _mm256_permutevar8x32_epi32(target_key, lane_row[i]);
    const __m256i row_target = _mm256_permutevar8x32_epi32(row_targets, lane_row[i]);
    const __m256i threshold = _mm256_add_epi32(row_key, _mm256_cmpgt_epi32(row_target, lane_class[i]));
    above |= uint64_t(lanes_of(_mm256_cmpgt_epi32(key[i], threshold))) << (8 * i);
  }
  return above;
}

template <int Code, int C, class Label>
fm::cpu::Counts count_blocked_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Storage = typename fm::LogitTraits<Code>::Storage;
  using Block = RowBlock<C>;
  constexpr int V = Block::V, R = Block::R;
  constexpr int kRows = (1 << R) - 1;
  const int64_t ts_n = call.ts_n, ignore = call.ignore, k = call.k;
  const bool has_ignore = call.has_ignore;
  const auto* y = static_cast<const Storage*>(call.y);
  const auto* labels = static_cast<const Label*>(call.t);
  const Storage* end = y + call.N * C;
  // Per register i and lane j: the lane's row in the block and its class.
  __m256i lane_row[V], lane_class[V];
  for (int i = 0; i < V; ++i) {
    alignas(32) int32_t row[8], cls[8];
    for (int j = 0; j < 8; ++j) {
      row[j] = (8 * i + j) / C;
      cls[j] = (8 * i + j) % C;
    }
    lane_row[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(row));
    lane_class[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(cls));
  }
  const __m256i row_start = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(C));
  int64_t correct = 0, total = 0, r = r0;
  for (; r + R <= r1 && y + (r + R) * C <= end; r += R) {
    const Storage* block = y + r * C;
    const auto lab = read_block_labels<R, Label>(labels + r * ts_n, ts_n, C, has_ignore, ignore);
    __m256 x[V];
    for (int i = 0; i < V; ++i) x[i] = Widen8<Code>::load(block + 8 * i);
    // Row r's target score, in lane r: its element r * C + t sits in register (r * C + t) / 8.
    const __m256i at = _mm256_add_epi32(row_start, lab.target);
    const __m256i at_lane = _mm256_and_si256(at, _mm256_set1_epi32(7)), at_register = _mm256_srli_epi32(at, 3);
    __m256 target = _mm256_permutevar8x32_ps(x[0], at_lane);
    for (int i = 1; i < V; ++i)
      target = _mm256_blendv_ps(target, _mm256_permutevar8x32_ps(x[i], at_lane),
                                _mm256_castsi256_ps(_mm256_cmpeq_epi32(at_register, _mm256_set1_epi32(i))));
    uint64_t above = 0;
    if (__builtin_expect((_mm256_movemask_ps(_mm256_cmp_ps(target, target, _CMP_UNORD_Q)) & kRows) == 0, 1)) {
      // No NaN target: float compares do it (a NaN score ranks above, -0.0 == +0.0).
      for (int i = 0; i < V; ++i) {
        const __m256 v = _mm256_permutevar8x32_ps(target, lane_row[i]);
        const __m256i before = _mm256_cmpgt_epi32(_mm256_permutevar8x32_epi32(lab.target, lane_row[i]), lane_class[i]);
        const __m256 ranks_above = _mm256_blendv_ps(_mm256_cmp_ps(x[i], v, _CMP_NLE_UQ), _mm256_cmp_ps(x[i], v, _CMP_NLT_UQ),
                                                    _mm256_castsi256_ps(before));
        above |= uint64_t(uint32_t(_mm256_movemask_ps(ranks_above))) << (8 * i);
      }
    } else {
      above = blocked_rows_above_by_keys<Code, V>(block, at_lane, at_register, lab.target, lane_row, lane_class);
    }
    total += R - _mm_popcnt_u32(lab.ignored);
    if (k == 1) {
      correct += _mm_popcnt_u32(lab.valid & ~rows_with_any<C>(above));
    } else {
      for (int i = 0; i < R; ++i)
        correct += ((lab.valid >> i) & 1) & (int64_t(_mm_popcnt_u64(_bextr_u64(above, unsigned(i * C), C))) < k);
    }
  }
  const fm::cpu::Counts rest = count_flat_rows_by_eights<Code, (C + 7) / 8, Label>(call, r, r1);
  return {correct + rest.correct, total + rest.total};
}

template <int Code, int C>
fm::cpu::Counts count_blocked_rows_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(call.t_code,
                             [&](auto label) { return count_blocked_rows<Code, C, decltype(label)>(call, r0, r1); });
}

// The blocked-rows kernel for C classes, or nullptr for class counts it does not cover
// (multiples of 8 need no blocks; 12, 14 and other counts with blocks of two rows, or
// of seven and more registers, measured no faster than flat_by_eights).
template <int Code>
fm::cpu::CountRowsFn blocked_rows_kernel(int64_t C) {
  switch (C) {
    case 3: return count_blocked_rows_any_label<Code, 3>;
    case 5: return count_blocked_rows_any_label<Code, 5>;
    case 6: return count_blocked_rows_any_label<Code, 6>;
    case 7: return count_blocked_rows_any_label<Code, 7>;
    case 10: return count_blocked_rows_any_label<Code, 10>;
    default: return nullptr;
  }
}
