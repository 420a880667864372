// AVX2 top-1 kernel for packed flat rows (ys_n == C) of float16 or bfloat16 scores,
// compared as 16-bit integer order keys, 16 classes per register: twice the lanes of
// the float32-widening blocked kernel (avx2_blocked_rows.h), whose per-block compare
// work bounded it at C = 10.
//
// A block of V registers holds R whole rows: 8 rows for even C up to 16 (C = 10: 5
// registers), 4 rows for C = 20, 24, 28, 32. Each score becomes its order key
// (semantics/accuracy_rule.h): magnitude, negated under a set sign bit, every NaN one key above infinity, so -0.0 and
// +0.0 tie and all NaNs tie. Class c ranks above its row's target t iff
// key(c) > key(t) - (c < t), NaN target or not. The R target scores are read one by one
// (AVX2 has no 16-bit cross-lane permute; the block is in L1 by then), their keys are
// broadcast to both 128-bit halves, and a byte shuffle per register hands each lane its
// row's target key and class. Top-1 only (k > 1 would need each row's count of
// classes above; the other kernels do that).
//
// Included by accuracy_avx2.cpp inside its anonymous namespace, after
// read_block_labels and count_flat_rows_by_eights.

// Order keys of eight or sixteen 16-bit scores: Inf is the infinity's bit pattern
// (0x7c00 for float16, 0x7f80 for bfloat16).
template <int Inf>
struct HalfKeys {
  // Negative numbers (not NaN) are the bit patterns 0x8000..(0x8000 | Inf), as int16
  // everything <= int16(0x8000 | Inf).
  static constexpr int16_t kLastNegativeNumber = int16_t(0x8000 | Inf);
  static __m256i of(__m256i bits) {
    const __m256i magnitude = _mm256_min_epu16(_mm256_and_si256(bits, _mm256_set1_epi16(0x7fff)),
                                               _mm256_set1_epi16(int16_t(Inf + 1)));  // every NaN -> Inf + 1
    const __m256i negative = _mm256_cmpgt_epi16(_mm256_set1_epi16(int16_t(kLastNegativeNumber + 1)), bits);
    return _mm256_sub_epi16(_mm256_xor_si256(magnitude, negative), negative);  // -magnitude where negative
  }
  static __m128i of(__m128i bits) {
    const __m128i magnitude =
        _mm_min_epu16(_mm_and_si128(bits, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(int16_t(Inf + 1)));
    const __m128i negative = _mm_cmpgt_epi16(_mm_set1_epi16(int16_t(kLastNegativeNumber + 1)), bits);
    return _mm_sub_epi16(_mm_xor_si128(magnitude, negative), negative);
  }
};

template <int Code>
using HalfKeysOf = HalfKeys<Code == fm::kF16 ? 0x7c00 : 0x7f80>;

template <int C>
struct HalfRowBlock {
  static constexpr int kGcd = C % 16 == 0 ? 16 : C % 8 == 0 ? 8 : C % 4 == 0 ? 4 : C % 2 == 0 ? 2 : 1;
  // Whole rows per block: 8 for even C up to 16 (the labels and targets of 8 rows fill
  // one vector each), 4 for multiples of 4 up to 32; else the fewest rows that fill
  // whole registers.
  static constexpr int R = C % 2 == 0 && C <= 16 ? 8 : C % 4 == 0 && C <= 32 ? 4 : 16 / kGcd;
  static constexpr int V = R * C / 16;  // registers of 16 scores per block
  static constexpr int kHalfBits = R / 2 * C;  // the block mask is split between rows R/2 - 1 and R/2
  static_assert(R >= 2 && R <= 8 && V <= 8 && kHalfBits <= 64, "blocks of 2 to 8 rows in at most 8 registers");
  // Bit r * C + C - 1 for each of R / 2 rows: the top bit of each row's field.
  static constexpr uint64_t half_top_bits() {
    uint64_t bits = 0;
    for (int r = 0; r < R / 2; ++r) bits |= uint64_t(1) << (r * C + C - 1);
    return bits;
  }
  static constexpr uint64_t kHalfAll = kHalfBits == 64 ? ~uint64_t(0) : (uint64_t(1) << kHalfBits) - 1;
  // The block's lane bits as two words (lanes 0-63, 64-127) -> the upper half's rows' bits.
  static uint64_t upper_half(uint64_t first, uint64_t second) {
    if constexpr (kHalfBits == 64) return second;
    else if constexpr (2 * kHalfBits <= 64) return (first >> kHalfBits) & kHalfAll;
    else return ((first >> kHalfBits) | (second << (64 - kHalfBits))) & kHalfAll;
  }
};

// R / 2 rows' bits (field r = bits r * C .. r * C + C - 1) -> bit r set iff the field
// has any bit set (the carry trick of rows_with_any in avx2_blocked_rows.h).
template <int C>
inline uint32_t half_rows_with_any(uint64_t above) {
  constexpr uint64_t top = HalfRowBlock<C>::half_top_bits();
  constexpr uint64_t low = HalfRowBlock<C>::kHalfAll & ~top;
  return uint32_t(_pext_u64((((above & low) + low) | above) & top, top));
}

// One bit per 16-bit lane (movemask gives two).
inline uint32_t lanes16_of(__m256i mask) { return _pext_u32(uint32_t(_mm256_movemask_epi8(mask)), 0x55555555u); }

template <int Code, int C, class Label>
fm::cpu::Counts count_half_blocked_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using Block = HalfRowBlock<C>;
  using Keys = HalfKeysOf<Code>;
  constexpr int V = Block::V, R = Block::R;
  const int64_t ts_n = call.ts_n, ignore = call.ignore;
  const bool has_ignore = call.has_ignore;
  const auto* y = static_cast<const uint16_t*>(call.y);
  const auto* labels = static_cast<const Label*>(call.t);
  // Per register i: the byte shuffle that gives 16-bit lane j its row's word of an
  // 8-word vector (both 128-bit halves hold the same 8 words), and the lane's class.
  __m256i to_row[V], lane_class[V];
  for (int i = 0; i < V; ++i) {
    alignas(32) int8_t shuffle[32];
    alignas(32) int16_t cls[16];
    for (int j = 0; j < 16; ++j) {
      const int row = (16 * i + j) / C;
      shuffle[2 * j] = int8_t(2 * row);
      shuffle[2 * j + 1] = int8_t(2 * row + 1);
      cls[j] = int16_t((16 * i + j) % C);
    }
    to_row[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(shuffle));
    lane_class[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(cls));
  }
  // A block's labels and target keys, prepared one block ahead: the chain from the label
  // load to the row's target key is long, and overlapping it with the previous block's
  // compares measured faster on Zen 3 than doing the two in order (C = 10: 2.7-2.9 ->
  // 1.8-3.0 ns/row in L2; the VM's speed states blur the exact gain).
  struct Targets {
    __m256i row_key, row_target;  // 8 words each, in both 128-bit halves
    uint32_t valid, ignored;
  };
  const auto targets_of = [&](int64_t r) {
    const uint16_t* block = y + r * C;
    const auto lab = read_block_labels<R, Label>(labels + r * ts_n, ts_n, C, has_ignore, ignore);
    alignas(32) int32_t target[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(target), lab.target);  // 0 for rows not counted
    alignas(16) uint16_t target_bits[8] = {};
    for (int q = 0; q < R; ++q) target_bits[q] = block[q * C + target[q]];
    const __m128i target_key = Keys::of(_mm_load_si128(reinterpret_cast<const __m128i*>(target_bits)));
    const __m256i packed = _mm256_packs_epi32(lab.target, _mm256_permute2x128_si256(lab.target, lab.target, 0x01));
    return Targets{_mm256_broadcastsi128_si256(target_key), _mm256_permute4x64_epi64(packed, 0x44), lab.valid,
                   lab.ignored};
  };
  // The rows of the block at r that have a class ranked above their target, as R bits.
  const auto rows_beaten = [&](int64_t r, const Targets& targets) {
    const uint16_t* block = y + r * C;
    uint32_t lane_bits[V];
    for (int i = 0; i < V; ++i) {
      const __m256i key = Keys::of(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 * i)));
      const __m256i before = _mm256_cmpgt_epi16(_mm256_shuffle_epi8(targets.row_target, to_row[i]), lane_class[i]);
      const __m256i threshold = _mm256_add_epi16(_mm256_shuffle_epi8(targets.row_key, to_row[i]), before);
      lane_bits[i] = lanes16_of(_mm256_cmpgt_epi16(key, threshold));
    }
    // The 16 * V lane bits as two 64-bit words, then split at the middle row.
    uint64_t first = 0, second = 0;
    for (int i = 0; i < V && i < 4; ++i) first |= uint64_t(lane_bits[i]) << (16 * i);
    for (int i = 4; i < V; ++i) second |= uint64_t(lane_bits[i]) << (16 * (i - 4));
    return half_rows_with_any<C>(first & Block::kHalfAll) |
           half_rows_with_any<C>(Block::upper_half(first, second)) << (R / 2);
  };
  int64_t correct = 0, total = 0, r = r0;
  const int64_t blocks = (std::min(r1, call.N) - r0) / R;  // whole blocks inside [r0, r1) and the view
  if (blocks > 0) {
    Targets current = targets_of(r);
    for (int64_t b = 0; b < blocks; ++b, r += R) {
      const Targets next = b + 1 < blocks ? targets_of(r + R) : current;
      total += R - _mm_popcnt_u32(current.ignored);
      correct += _mm_popcnt_u32(current.valid & ~rows_beaten(r, current));
      current = next;
    }
  }
  const fm::cpu::Counts rest = count_flat_rows_by_eights<Code, (C + 7) / 8, Label>(call, r, r1);
  return {correct + rest.correct, total + rest.total};
}

template <int Code, int C>
fm::cpu::Counts count_half_blocked_rows_any_label(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  return fm::with_label_type(
      call.t_code, [&](auto label) { return count_half_blocked_rows<Code, C, decltype(label)>(call, r0, r1); });
}

// The 16-bit-key kernel for top-1 over C classes of float16/bfloat16, or nullptr.
template <int Code>
fm::cpu::CountRowsFn half_blocked_rows_kernel(int64_t C) {
  if constexpr (Code != fm::kF16 && Code != fm::kBF16) {
    return nullptr;
  } else {
    switch (C) {
      case 4: return count_half_blocked_rows_any_label<Code, 4>;
      case 6: return count_half_blocked_rows_any_label<Code, 6>;
      case 8: return count_half_blocked_rows_any_label<Code, 8>;
      case 10: return count_half_blocked_rows_any_label<Code, 10>;
      case 12: return count_half_blocked_rows_any_label<Code, 12>;
      case 14: return count_half_blocked_rows_any_label<Code, 14>;
      case 16: return count_half_blocked_rows_any_label<Code, 16>;
      case 20: return count_half_blocked_rows_any_label<Code, 20>;
      case 24: return count_half_blocked_rows_any_label<Code, 24>;
      case 28: return count_half_blocked_rows_any_label<Code, 28>;
      case 32: return count_half_blocked_rows_any_label<Code, 32>;
      default: return nullptr;
    }
  }
}
