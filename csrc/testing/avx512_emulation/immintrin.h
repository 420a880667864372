// Test builds only (CMake option FUSEDMETRICS_EMULATE_AVX512): lets the *_avx512.cpp units compile and
// run on a CPU without AVX-512, so their logic is tested where no AVX-512 machine is at hand.
//
// This directory comes first on those units' include path. The compiler's own <immintrin.h> still
// provides every native intrinsic the units are built for (AVX2, FMA, F16C, BMI, POPCNT); SIMDe
// (https://github.com/simd-everywhere/simde, Debian's libsimde-dev) then maps the AVX-512 names onto
// portable lane-by-lane code. The few AVX-512 intrinsics SIMDe 0.7 lacks, or whose alias it declares
// with the wrong arity, are written below as plain lane loops.
//
// Lane semantics follow Intel's definitions; masked loads read only the lanes their mask selects, as
// the hardware does (the kernels rely on that to read the tail of a row without going past it).
// Never ship a build with this: it is orders of magnitude slower than real AVX-512.
#pragma once
#include_next <immintrin.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cstdint>
#include <cstring>

namespace fm_avx512_emulation {

template <typename Lane, int N, typename Vec>
inline void to_lanes(Vec v, Lane (&lanes)[N]) {
  static_assert(sizeof(Vec) == sizeof(lanes), "vector and lane array differ in size");
  std::memcpy(lanes, &v, sizeof(v));
}

template <typename Vec, typename Lane, int N>
inline Vec from_lanes(const Lane (&lanes)[N]) {
  static_assert(sizeof(Vec) == sizeof(lanes), "vector and lane array differ in size");
  Vec v;
  std::memcpy(&v, lanes, sizeof(v));
  return v;
}

// Masked load: lanes whose mask bit is clear are zero and their memory is not read.
template <typename Vec, typename Lane, int N>
inline Vec maskz_loadu(uint64_t mask, const void* p) {
  Lane lanes[N];
  const unsigned char* bytes = static_cast<const unsigned char*>(p);
  for (int i = 0; i < N; ++i) {
    lanes[i] = Lane(0);
    if ((mask >> i) & 1) std::memcpy(&lanes[i], bytes + i * sizeof(Lane), sizeof(Lane));
  }
  return from_lanes<Vec>(lanes);
}

// Compare lane by lane under a mask: bit i is set when mask bit i is set and before(a[i], b[i]).
// Returns the intrinsic's own mask type, so `auto` in a kernel keeps the hardware's width.
template <typename Mask, typename Lane, int N, typename Vec, typename Before>
inline Mask compare(uint64_t mask, Vec a, Vec b, Before before) {
  Lane la[N], lb[N];
  to_lanes(a, la);
  to_lanes(b, lb);
  uint64_t bits = 0;
  for (int i = 0; i < N; ++i)
    if (((mask >> i) & 1) && before(la[i], lb[i])) bits |= uint64_t(1) << i;
  return Mask(bits);
}

struct Less {
  template <typename T>
  bool operator()(T x, T y) const { return x < y; }
};
struct Greater {
  template <typename T>
  bool operator()(T x, T y) const { return x > y; }
};

inline simde__m512i mask_sub_epi16(simde__m512i src, simde__mmask32 k, simde__m512i a, simde__m512i b) {
  int16_t ls[32], la[32], lb[32];
  to_lanes(src, ls);
  to_lanes(a, la);
  to_lanes(b, lb);
  for (int i = 0; i < 32; ++i)
    if ((k >> i) & 1) ls[i] = int16_t(uint16_t(la[i]) - uint16_t(lb[i]));  // wraps, as the instruction does
  return from_lanes<simde__m512i>(ls);
}

inline simde__m512i cvtepu16_epi32(simde__m256i a) {
  uint16_t narrow[16];
  int32_t wide[16];
  to_lanes(a, narrow);
  for (int i = 0; i < 16; ++i) wide[i] = int32_t(narrow[i]);
  return from_lanes<simde__m512i>(wide);
}

// float16 -> float32 with the native F16C conversion, eight lanes at a time.
inline simde__m512 cvtph_ps(simde__m256i a) {
  __m128i halves[2];
  std::memcpy(halves, &a, sizeof(halves));
  float lanes[16];
  _mm256_storeu_ps(lanes, _mm256_cvtph_ps(halves[0]));
  _mm256_storeu_ps(lanes + 8, _mm256_cvtph_ps(halves[1]));
  return from_lanes<simde__m512>(lanes);
}

}  // namespace fm_avx512_emulation

// Each #undef drops the alias a later SIMDe may have for the name.
#undef _mm512_maskz_loadu_epi16
#undef _mm256_maskz_loadu_epi16
#undef _mm512_maskz_loadu_epi32
#undef _mm512_maskz_loadu_epi64
#undef _mm512_maskz_loadu_ps
#undef _mm512_maskz_loadu_pd
#define _mm512_maskz_loadu_epi16(k, p) fm_avx512_emulation::maskz_loadu<simde__m512i, int16_t, 32>((k), (p))
#define _mm256_maskz_loadu_epi16(k, p) fm_avx512_emulation::maskz_loadu<simde__m256i, int16_t, 16>((k), (p))
#define _mm512_maskz_loadu_epi32(k, p) fm_avx512_emulation::maskz_loadu<simde__m512i, int32_t, 16>((k), (p))
#define _mm512_maskz_loadu_epi64(k, p) fm_avx512_emulation::maskz_loadu<simde__m512i, int64_t, 8>((k), (p))
#define _mm512_maskz_loadu_ps(k, p) fm_avx512_emulation::maskz_loadu<simde__m512, float, 16>((k), (p))
#define _mm512_maskz_loadu_pd(k, p) fm_avx512_emulation::maskz_loadu<simde__m512d, double, 8>((k), (p))

// The compares: (mask type, lane type, lanes), under a mask or over all lanes.
#define FM_EMULATED_COMPARE(M, L, N, k, a, b, before) \
  fm_avx512_emulation::compare<M, L, N>((k), (a), (b), fm_avx512_emulation::before())
#undef _mm512_cmpgt_epi16_mask
#undef _mm512_mask_cmpgt_epi16_mask
#undef _mm256_mask_cmpgt_epi16_mask
#undef _mm512_mask_cmplt_epi16_mask
#undef _mm512_cmplt_epi32_mask
#undef _mm512_mask_cmplt_epi32_mask
#undef _mm512_cmplt_epu32_mask
#undef _mm512_mask_cmplt_epi64_mask
#undef _mm512_cmplt_epu64_mask
#define _mm512_cmpgt_epi16_mask(a, b) FM_EMULATED_COMPARE(simde__mmask32, int16_t, 32, ~0ull, a, b, Greater)
#define _mm512_mask_cmpgt_epi16_mask(k, a, b) FM_EMULATED_COMPARE(simde__mmask32, int16_t, 32, k, a, b, Greater)
#define _mm256_mask_cmpgt_epi16_mask(k, a, b) FM_EMULATED_COMPARE(simde__mmask16, int16_t, 16, k, a, b, Greater)
#define _mm512_mask_cmplt_epi16_mask(k, a, b) FM_EMULATED_COMPARE(simde__mmask32, int16_t, 32, k, a, b, Less)
#define _mm512_cmplt_epi32_mask(a, b) FM_EMULATED_COMPARE(simde__mmask16, int32_t, 16, ~0ull, a, b, Less)
#define _mm512_mask_cmplt_epi32_mask(k, a, b) FM_EMULATED_COMPARE(simde__mmask16, int32_t, 16, k, a, b, Less)
#define _mm512_cmplt_epu32_mask(a, b) FM_EMULATED_COMPARE(simde__mmask16, uint32_t, 16, ~0ull, a, b, Less)
#define _mm512_mask_cmplt_epi64_mask(k, a, b) FM_EMULATED_COMPARE(simde__mmask8, int64_t, 8, k, a, b, Less)
#define _mm512_cmplt_epu64_mask(a, b) FM_EMULATED_COMPARE(simde__mmask8, uint64_t, 8, ~0ull, a, b, Less)

#undef _mm512_mask_sub_epi16
#undef _mm512_cvtepu16_epi32
#undef _mm512_cvtph_ps
#define _mm512_mask_sub_epi16 fm_avx512_emulation::mask_sub_epi16
#define _mm512_cvtepu16_epi32 fm_avx512_emulation::cvtepu16_epi32
#define _mm512_cvtph_ps fm_avx512_emulation::cvtph_ps

// SIMDe 0.7 declares these aliases with four parameters; the intrinsics take three (k, a, b).
#undef _mm512_mask_cmpge_epi16_mask
#undef _mm256_mask_cmpge_epi16_mask
#undef _mm512_mask_cmpge_epi32_mask
#undef _mm512_mask_cmpge_epi64_mask
#define _mm512_mask_cmpge_epi16_mask simde_mm512_mask_cmpge_epi16_mask
#define _mm256_mask_cmpge_epi16_mask simde_mm256_mask_cmpge_epi16_mask
#define _mm512_mask_cmpge_epi32_mask simde_mm512_mask_cmpge_epi32_mask
#define _mm512_mask_cmpge_epi64_mask simde_mm512_mask_cmpge_epi64_mask
