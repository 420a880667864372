// Scores as integer order keys for the AVX-512 kernels (included inside each AVX-512
// translation unit's anonymous namespace, after cpu/kernels_portable.h).
// Scores as integer order keys (defined in semantics/accuracy_rule.h), a whole row of up
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
fm::cpu::Counts count_flat_rows_by_keys(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  const auto valid = typename K::Mask(_bzhi_u32(~0u, unsigned(call.C)));  // C <= kLanes <= 32
  const __m512i lanes = K::lane_indices();
  return count_flat_rows<typename K::Storage, Label>(call, r0, r1, [valid, lanes](const auto* row, int64_t target) {
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
