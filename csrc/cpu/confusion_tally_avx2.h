// The AVX2 tally of contiguous integer labels (included, inside an anonymous
// namespace, by the avx2 and avx512 builds; it needs <immintrin.h>, <cstring>,
// <type_traits>, cpu/confusion.h, cpu/confusion_tally.h and semantics/dtypes.h). Sixteen samples per step: both labels range-checked
// with one unsigned min/compare each (8-byte labels: on their low halves, with
// the high halves required 0), the bins t * C + p (or the dump cell) computed in
// vector lanes and stored 16 bits wide when C <= 255, so the scalar increment
// loop reads four bins per 64-bit load. That loop is what is left: about one
// load and one store per sample.

// Sixteen labels of type X widened to 16-bit lanes (sign-extended when signed,
// so a negative label reads as >= 2^15 unsigned: out of range).
template <class X>
inline __m256i load_16_lanes(const X* x) {
  static_assert(sizeof(X) <= 2, "narrow labels only");
  if constexpr (sizeof(X) == 2) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
  if constexpr (std::is_signed_v<X>) return _mm256_cvtepi8_epi16(bytes);
  return _mm256_cvtepu8_epi16(bytes);
}

// Lanes that hold a label in [0, C): one unsigned min, one compare (cm1 = C - 1).
inline __m256i in_range_16(__m256i v, __m256i cm1) { return _mm256_cmpeq_epi16(_mm256_min_epu16(v, cm1), v); }
inline __m256i in_range_32(__m256i v, __m256i cm1) { return _mm256_cmpeq_epi32(_mm256_min_epu32(v, cm1), v); }

// The constants of one call, broadcast once.
struct TallyConstants {
  __m256i cm1, c, dump, ignore;  // per lane width (16 or 32 bits)
  __m256i ignore_high;           // 8-byte labels: the ignore label's high half
};

// Eight labels of type X in 32-bit lanes, in order: the value's low half, and
// (8-byte X) its high half. Narrow signed labels are sign-extended, so a negative
// one reads as >= 2^31 unsigned: out of range. 8-byte labels are split by two
// shuffles (lanes x0 x1 x4 x5 x2 x3 x6 x7), put in order by one permute only
// when the other label is narrower (`InOrder`): two 8-byte labels split alike
// still pair lane by lane, and the order of bins does not matter.
struct Lanes32 {
  __m256i low, high;
};
template <class X, bool InOrder>
inline Lanes32 load_8x32(const X* x) {
  if constexpr (sizeof(X) == 8) {
    const __m256 a = _mm256_loadu_ps(reinterpret_cast<const float*>(x));
    const __m256 b = _mm256_loadu_ps(reinterpret_cast<const float*>(x + 4));
    __m256i low = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    __m256i high = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
    if constexpr (InOrder) {
      low = _mm256_permute4x64_epi64(low, _MM_SHUFFLE(3, 1, 2, 0));
      high = _mm256_permute4x64_epi64(high, _MM_SHUFFLE(3, 1, 2, 0));
    }
    return {low, high};
  } else if constexpr (sizeof(X) == 4) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), _mm256_setzero_si256()};
  } else if constexpr (sizeof(X) == 2) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    return {std::is_signed_v<X> ? _mm256_cvtepi16_epi32(v) : _mm256_cvtepu16_epi32(v), _mm256_setzero_si256()};
  } else {
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x));
    return {std::is_signed_v<X> ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v), _mm256_setzero_si256()};
  }
}

// Bins of eight label pairs in 32-bit lanes (C <= 32768 < 2^31): a label is in
// [0, C) when its low half is and its high half (8-byte labels) is 0, and
// ignored when both halves match the ignore label's; `ok` (all ones) keeps the
// lanes valid or ignored.
template <bool HasIgnore, class T, class P>
inline __m256i bins_8x32(const T* t_at, const P* p_at, const TallyConstants& k, __m256i& ok) {
  constexpr bool in_order = sizeof(T) != sizeof(P);
  const Lanes32 t = load_8x32<T, in_order>(t_at), p = load_8x32<P, in_order>(p_at);
  __m256i valid = _mm256_and_si256(in_range_32(t.low, k.cm1), in_range_32(p.low, k.cm1));
  const __m256i zero = _mm256_setzero_si256();
  if constexpr (sizeof(T) == 8) valid = _mm256_and_si256(valid, _mm256_cmpeq_epi32(t.high, zero));
  if constexpr (sizeof(P) == 8) valid = _mm256_and_si256(valid, _mm256_cmpeq_epi32(p.high, zero));
  if constexpr (HasIgnore) {
    __m256i skip = _mm256_cmpeq_epi32(t.low, k.ignore);
    if constexpr (sizeof(T) == 8) skip = _mm256_and_si256(skip, _mm256_cmpeq_epi32(t.high, k.ignore_high));
    ok = _mm256_and_si256(ok, _mm256_or_si256(valid, skip));
    valid = _mm256_andnot_si256(skip, valid);
  } else {
    ok = _mm256_and_si256(ok, valid);
  }
  return _mm256_blendv_epi8(k.dump, _mm256_add_epi32(_mm256_mullo_epi32(t.low, k.c), p.low), valid);
}

template <bool HasIgnore>
inline __m256i bins_16x16(__m256i t, __m256i p, const TallyConstants& k, __m256i& ok) {
  __m256i valid = _mm256_and_si256(in_range_16(t, k.cm1), in_range_16(p, k.cm1));
  if constexpr (HasIgnore) {
    const __m256i skip = _mm256_cmpeq_epi16(t, k.ignore);
    ok = _mm256_and_si256(ok, _mm256_or_si256(valid, skip));
    valid = _mm256_andnot_si256(skip, valid);
  } else {
    ok = _mm256_and_si256(ok, valid);
  }
  return _mm256_blendv_epi8(k.dump, _mm256_add_epi16(_mm256_mullo_epi16(t, k.c), p), valid);
}

// Bin words: uint16_t when every bin (the dump cell C * C included) fits. Lane:
// the width labels are checked and binned in (16 bits: both labels 1-2 bytes
// wide and C <= 255).
template <class T, class P, class Bin, class Lane, bool HasIgnore>
inline void vector_bins(const T* t, const P* p, int width, const TallyConstants& k, Bin* bins, __m256i& ok) {
  for (int i = 0; i < width; i += 16) {
    if constexpr (sizeof(Lane) == 4) {
      const __m256i lo = bins_8x32<HasIgnore>(t + i, p + i, k, ok);
      const __m256i hi = bins_8x32<HasIgnore>(t + i + 8, p + i + 8, k, ok);
      if constexpr (sizeof(Bin) == 2) {
        // Packing interleaves the halves: the order of bins does not matter.
        _mm256_store_si256(reinterpret_cast<__m256i*>(bins + i), _mm256_packus_epi32(lo, hi));
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(bins + i), lo);
        _mm256_store_si256(reinterpret_cast<__m256i*>(bins + i + 8), hi);
      }
    } else {
      const __m256i b = bins_16x16<HasIgnore>(load_16_lanes(t + i), load_16_lanes(p + i), k, ok);
      _mm256_store_si256(reinterpret_cast<__m256i*>(bins + i), b);
    }
  }
}

// Increments the rotating copies for `width` (a multiple of 16) bins, read four
// 16-bit or two 32-bit bins per 64-bit load.
template <class Bin>
inline void count_bin_words(const Bin* bins, int width, fm::cpu::PrivateTables tables) {
  static_assert(fm::cpu::kMaxCopies == 8, "one pass of the loop below visits every copy once");
  const fm::cpu::CopyStarts copy(tables);
  for (int i = 0; i < width; i += 8) {
    uint64_t w[4];
    std::memcpy(w, bins + i, 8 * sizeof(Bin));
    if constexpr (sizeof(Bin) == 2) {
      for (int h = 0; h < 2; ++h) {
        ++copy.at[4 * h][w[h] & 0xffff];
        ++copy.at[4 * h + 1][(w[h] >> 16) & 0xffff];
        ++copy.at[4 * h + 2][(w[h] >> 32) & 0xffff];
        ++copy.at[4 * h + 3][w[h] >> 48];
      }
    } else {
      for (int q = 0; q < 4; ++q) {
        ++copy.at[2 * q][uint32_t(w[q])];
        ++copy.at[2 * q + 1][w[q] >> 32];
      }
    }
  }
}

// Labels are prefetched this far ahead of the block being binned: measured on Zen 3
// (int32 labels beyond the cache, one thread), 1-4 KiB ahead took 15-16 ms where
// the hardware prefetcher alone took 18-22 ms for 2^24 samples (plain read: 11-16).
constexpr int kPrefetchBytes = 4096;

// Prefetches the lines of `width` labels kPrefetchBytes past `block`. Computed as
// integers: past the array's end the address is only a hint (prefetches never fault).
template <class X>
inline void prefetch_ahead(const X* block, int width) {
  const uintptr_t from = reinterpret_cast<uintptr_t>(block) + kPrefetchBytes;
  for (uintptr_t b = 0; b < uintptr_t(width) * sizeof(X); b += 64)
    _mm_prefetch(reinterpret_cast<const char*>(from + b), _MM_HINT_T0);
}

// The LabelTallyFn for label types T (true) and P (predicted), checked and binned
// in Lane-wide vector lanes.
template <class T, class P, class Bin, class Lane, bool HasIgnore>
bool tally_labels_avx2(const void* t_base, const void* p_base, int64_t n, int64_t C, int64_t ignore_label,
                       fm::cpu::PrivateTables tables) {
  const T* t = static_cast<const T*>(t_base);
  const P* p = static_cast<const P*>(p_base);
  const fm::cpu::IgnoreAs<T> ignore = fm::cpu::ignore_as<T>(HasIgnore, ignore_label);
  TallyConstants k;
  if constexpr (sizeof(Lane) == 4) {
    const uint64_t ignore_bits = uint64_t(int64_t(ignore.value));
    k = {_mm256_set1_epi32(int(C - 1)), _mm256_set1_epi32(int(C)), _mm256_set1_epi32(int(C * C)),
         _mm256_set1_epi32(int(uint32_t(ignore_bits))), _mm256_set1_epi32(int(uint32_t(ignore_bits >> 32)))};
  } else {
    k = {_mm256_set1_epi16(short(C - 1)), _mm256_set1_epi16(short(C)), _mm256_set1_epi16(short(C * C)),
         _mm256_set1_epi16(short(ignore.value)), _mm256_setzero_si256()};
  }
  constexpr int kBlock = fm::cpu::kConfusionBlock;
  alignas(32) Bin bins[kBlock];
  __m256i ok = _mm256_set1_epi32(-1);
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    prefetch_ahead(t + i, kBlock);
    prefetch_ahead(p + i, kBlock);
    vector_bins<T, P, Bin, Lane, HasIgnore>(t + i, p + i, kBlock, k, bins, ok);
    count_bin_words(bins, kBlock, tables);
  }
  const int rest = int(n - i), vector_part = rest & ~15;
  if (vector_part > 0) {
    vector_bins<T, P, Bin, Lane, HasIgnore>(t + i, p + i, vector_part, k, bins, ok);
    count_bin_words(bins, vector_part, tables);
  }
  bool bad = !_mm256_testc_si256(ok, _mm256_set1_epi32(-1));
  if (rest > vector_part) {
    uint32_t tail[16];
    const int64_t j = i + vector_part;
    bad |= fm::cpu::bin_block<HasIgnore>(t + j, 1, p + j, 1, rest - vector_part, C, ignore, uint32_t(C * C), tail);
    fm::cpu::count_bins(tail, rest - vector_part, tables);
  }
  return bad;
}

template <class T, class P, class Bin, class Lane>
fm::cpu::LabelTallyFn tally_with_ignore(bool ignore) {
  return ignore ? tally_labels_avx2<T, P, Bin, Lane, true> : tally_labels_avx2<T, P, Bin, Lane, false>;
}

// The AVX2 tally for this label pair and C (any two label dtypes), or nullptr
// for C > 32768: 16-bit lanes when both labels are 1-2 bytes wide and C <= 255,
// else 32-bit lanes (bins fit while C * C + 1 <= 2^31); 16-bit bins while
// C <= 255.
fm::cpu::LabelTallyFn select_label_tally_with_avx2(int t_code, int p_code, int64_t C, bool has_ignore, int64_t ignore) {
  if (C < 1 || C > 32768) return nullptr;
  return fm::with_label_type(t_code, [&](auto t_zero) -> fm::cpu::LabelTallyFn {
    using T = decltype(t_zero);
    const bool skip = fm::cpu::ignore_as<T>(has_ignore, ignore).active;
    return fm::with_label_type(p_code, [&](auto p_zero) -> fm::cpu::LabelTallyFn {
      using P = decltype(p_zero);
      if constexpr (sizeof(T) <= 2 && sizeof(P) <= 2) {
        if (C <= 255) return tally_with_ignore<T, P, uint16_t, uint16_t>(skip);
      }
      return C <= 255 ? tally_with_ignore<T, P, uint16_t, uint32_t>(skip)
                      : tally_with_ignore<T, P, uint32_t, uint32_t>(skip);
    });
  });
}
