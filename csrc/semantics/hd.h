// FM_HD marks the functions that both the host compiler and nvcc compile, so one
// definition of each semantic rule serves the CPU and the CUDA kernels.
// On the host they have internal linkage (static): the per-ISA translation units
// (AVX2, AVX-512) include these headers too, and an inline function with external
// linkage could be merged by the linker into one copy built for the wrong ISA.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#elif defined(__F16C__)
#include <immintrin.h>
#endif

#if defined(__CUDACC__)
#define FM_HD static __host__ __device__ __forceinline__
#else
#define FM_HD static inline
#endif

namespace fm {

FM_HD float float_from_bits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// IEEE binary16 -> binary32, exact, NaN payloads kept (so NaN stays NaN). One
// instruction on the GPU and in the F16C (AVX2/AVX-512) builds; the same bits
// everywhere.
FM_HD float half_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#elif defined(__F16C__)
  return _cvtsh_ss(h);
#else
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24 is exact in float
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
  return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
#endif
}

// bfloat16 is the top half of a binary32.
FM_HD float bfloat16_to_float(uint16_t b) { return float_from_bits(uint32_t(b) << 16); }

}  // namespace fm
