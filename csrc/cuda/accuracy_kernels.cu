// Fused accuracy counts on the GPU: for every row (n, m) of y viewed as (N, C, M),
// classify the label and rank the target with the shared rule
// (csrc/semantics/accuracy_rule.h); count correct and total rows; one atomicAdd per
// counter per block into the caller's uint64 pair. No allocation, no sync.
//
// Two kernels, chosen by the row layout:
//  * rows kernel: one thread per row, any strides. Used for short rows (a group of
//    lanes would idle) and for strided class axes (class stride M with M > 1: the
//    threads of a warp read consecutive m, so each class's loads coalesce).
//  * group kernel: G lanes per row for rows whose classes are contiguous (ys_c == 1)
//    and longer than 128 bytes; 16-byte loads over the aligned middle of each row,
//    so a warp reads whole sectors instead of one element per thread.
// A few huge rows go to the split-row path instead (accuracy_split.cu).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/accuracy_split.h"
#include "cuda/fm_cuda.h"
#include "cuda/launch_util.cuh"
#include "semantics/accuracy_call.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace fm {
namespace cuda {
namespace {

constexpr int kBlock = 256;
constexpr int kWarps = kBlock / 32;

// The call plus what the launcher derives from it: one kernel parameter.
struct AccuracyParams {
  AccuracyCall call;
  std::int64_t rows;  // N * M
  unsigned long long* out;
};

template <int Code>
using Logit = LogitTraits<Code>;

template <int Code>
__device__ __forceinline__ typename Logit<Code>::Compute load_logit(const typename Logit<Code>::Storage* p) {
  return widen_logit<Code>(__ldg(p));
}

// The label of row i, as int64 (the switch on the code is uniform across the grid).
__device__ __forceinline__ std::int64_t label_at(const AccuracyCall& c, RowIndex i) {
  return read_label(c.t, c.t_code, t_row_offset(c, i), [](const auto* p) { return __ldg(p); });
}

// Sums (correct, total) over the block and adds them to out with one atomic per
// counter. Every thread of the block must call it (all kernels here run their loops
// to the end; none returns early). Shuffles, not __reduce_add_sync, so that the
// sm_75 PTX works too.
__device__ __forceinline__ void flush_counts(unsigned long long correct, unsigned long long total,
                                             unsigned long long* out) {
  __shared__ unsigned long long partial[2][kWarps];
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    correct += __shfl_xor_sync(0xffffffffu, correct, off);
    total += __shfl_xor_sync(0xffffffffu, total, off);
  }
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  if (lane == 0) {
    partial[0][warp] = correct;
    partial[1][warp] = total;
  }
  __syncthreads();
  if (warp == 0) {
    correct = lane < kWarps ? partial[0][lane] : 0ull;
    total = lane < kWarps ? partial[1][lane] : 0ull;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      correct += __shfl_xor_sync(0xffffffffu, correct, off);
      total += __shfl_xor_sync(0xffffffffu, total, off);
    }
    if (lane == 0) {
      if (correct) atomicAdd(out, correct);
      if (total) atomicAdd(out + 1, total);
    }
  }
}

// One thread per row, grid-stride. Any strides.
template <int Code>
__global__ void __launch_bounds__(kBlock) accuracy_rows_kernel(const __grid_constant__ AccuracyParams p) {
  using S = typename Logit<Code>::Storage;
  using F = typename Logit<Code>::Compute;
  const AccuracyCall& c = p.call;
  const S* y = static_cast<const S*>(c.y);
  unsigned long long correct = 0, total = 0;
  const std::int64_t stride = std::int64_t(gridDim.x) * kBlock;
  for (std::int64_t r = std::int64_t(blockIdx.x) * kBlock + threadIdx.x; r < p.rows; r += stride) {
    const RowIndex i = split_row(r, c.M);
    const std::int64_t t = label_at(c, i);
    const int kind = classify_label(t, c.C, c.has_ignore, c.ignore);
    if (kind == kLabelIgnored) continue;
    ++total;
    if (kind == kLabelOutOfRange) continue;  // bounds checked: y[t] is read only below
    const S* row = y + y_row_offset(c, i);
    const std::int64_t ys_c = c.ys_c;
    const auto load = [row, ys_c](std::int64_t j) -> F { return load_logit<Code>(row + j * ys_c); };
    correct += target_rank<F>(load, c.C, t, c.k) < c.k ? 1u : 0u;
  }
  flush_counts(correct, total, p.out);
}

// Number of classes of one row ranked above the target, this lane's share: lane
// `sub` of a group of G takes every G-th 16-byte vector of the row's aligned middle,
// plus at most one element of the unaligned head and one of the tail. Requires the
// row to be aligned to its element size (the binding checks the base pointer;
// strides are whole elements) and C < 2^31 (checked by the binding), so indices
// inside a row and the per-lane count fit in 32 bits.
template <int Code, int G>
__device__ __forceinline__ unsigned int count_above(const typename Logit<Code>::Storage* row, int C,
                                                    typename Logit<Code>::Compute v, int t, int sub) {
  using S = typename Logit<Code>::Storage;
  using F = typename Logit<Code>::Compute;
  constexpr int kVec = 16 / int(sizeof(S));
  static_assert(kVec <= G, "head and tail must fit in one element per lane");
  unsigned int above = 0;

  const unsigned int misalign = unsigned(reinterpret_cast<std::uintptr_t>(row)) & 15u;
  int head = int(((16u - misalign) & 15u) / sizeof(S));  // elements before the first 16-byte boundary
  if (head > C) head = C;
  if (sub < head) above += ranks_above<F>(load_logit<Code>(row + sub), v, sub, t);

  const int nvec = (C - head) / kVec;
  const uint4* body = reinterpret_cast<const uint4*>(row + head);  // 16-byte aligned
#pragma unroll 4
  for (int i = sub; i < nvec; i += G) {
    union {
      uint4 u;
      S s[kVec];
    } pack;
    pack.u = __ldg(body + i);
    const int j0 = head + i * kVec;
#pragma unroll
    for (int e = 0; e < kVec; ++e) above += ranks_above<F>(widen_logit<Code>(pack.s[e]), v, j0 + e, t);
  }

  const int tail = head + nvec * kVec;  // C - tail < kVec <= G
  if (sub < C - tail) above += ranks_above<F>(load_logit<Code>(row + tail + sub), v, tail + sub, t);
  return above;
}

// G lanes per row, rows with contiguous classes (ys_c == 1). The outer loop is
// uniform across each warp (32 / G rows per warp per step, rows past the end are
// inactive lanes), so the full-mask shuffles below are always reached by all 32 lanes.
template <int Code, int G>
__global__ void __launch_bounds__(kBlock) accuracy_group_kernel(const __grid_constant__ AccuracyParams p) {
  using S = typename Logit<Code>::Storage;
  using F = typename Logit<Code>::Compute;
  static_assert(G == 8 || G == 16 || G == 32, "group size");
  constexpr int kGroupsPerWarp = 32 / G;
  const AccuracyCall& c = p.call;
  const S* y = static_cast<const S*>(c.y);
  const int lane = threadIdx.x & 31;
  const int sub = lane & (G - 1);
  const std::int64_t warp_id = (std::int64_t(blockIdx.x) * kBlock + threadIdx.x) >> 5;
  const std::int64_t warp_step = std::int64_t(gridDim.x) * kWarps * kGroupsPerWarp;

  unsigned long long correct = 0, total = 0;
  for (std::int64_t first = warp_id * kGroupsPerWarp; first < p.rows; first += warp_step) {
    const std::int64_t r = first + lane / G;
    int kind = kLabelIgnored;
    std::int64_t t = 0, yoff = 0;
    if (r < p.rows) {
      const RowIndex i = split_row(r, c.M);
      yoff = y_row_offset(c, i);
      t = label_at(c, i);  // same address for the whole group: one load
      kind = classify_label(t, c.C, c.has_ignore, c.ignore);
    }
    unsigned int above = 0;  // < C < 2^31
    if (kind == kLabelValid) {  // bounds checked before y[t] is read
      const S* row = y + yoff;
      const F v = load_logit<Code>(row + t);
      above = count_above<Code, G>(row, int(c.C), v, int(t), sub);
    }
    // Sum over the G lanes of each group (xor offsets < G never leave the group).
#pragma unroll
    for (int off = G / 2; off > 0; off >>= 1) above += __shfl_xor_sync(0xffffffffu, above, off);
    if (sub == 0 && kind != kLabelIgnored) {
      ++total;
      if (kind == kLabelValid && std::int64_t(above) < c.k) ++correct;
    }
  }
  flush_counts(correct, total, p.out);
}

template <class Kernel>
cudaError_t launch_grid_stride(Kernel* kernel, GridCache& cache, std::int64_t work_blocks,
                               const AccuracyParams& params, int device, cudaStream_t stream) {
  int wave = 0;
  cudaError_t err = full_wave_blocks(kernel, kBlock, device, cache, wave);
  if (err != cudaSuccess) return err;
  const std::int64_t grid = work_blocks < wave ? work_blocks : wave;
  return launch_kernel(kernel, int(grid > 0 ? grid : 1), kBlock, params, stream);
}

template <int Code>
cudaError_t launch_rows(const AccuracyParams& p, int device, cudaStream_t stream) {
  static GridCache cache;
  return launch_grid_stride(&accuracy_rows_kernel<Code>, cache, (p.rows + kBlock - 1) / kBlock, p,
                            device, stream);
}

template <int Code, int G>
cudaError_t launch_group(const AccuracyParams& p, int device, cudaStream_t stream) {
  static GridCache cache;
  constexpr std::int64_t rows_per_block = kBlock / G;
  return launch_grid_stride(&accuracy_group_kernel<Code, G>, cache,
                            (p.rows + rows_per_block - 1) / rows_per_block, p, device, stream);
}

template <int Code>
cudaError_t launch_for_code(const AccuracyParams& p, int device, cudaStream_t stream) {
  using S = typename Logit<Code>::Storage;
  const std::int64_t row_bytes = p.call.C * std::int64_t(sizeof(S));
  if (p.call.ys_c != 1 || row_bytes <= 128) return launch_rows<Code>(p, device, stream);
  if (row_bytes <= 1024) return launch_group<Code, 8>(p, device, stream);
  if (row_bytes <= 4096) return launch_group<Code, 16>(p, device, stream);
  return launch_group<Code, 32>(p, device, stream);
}

}  // namespace

int launch_accuracy_counts(const AccuracyCall& call, std::uintptr_t out, int device, std::uintptr_t stream) {
  if (!valid_logit_code(call.y_code) || !valid_label_code(call.t_code)) return int(cudaErrorInvalidValue);
  if (call.N <= 0 || call.M <= 0) return int(cudaSuccess);  // no rows: nothing to count
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return int(guard.status());

  // rows: the binding checked that N * M does not overflow.
  const AccuracyParams p{call, call.N * call.M, reinterpret_cast<unsigned long long*>(out)};
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  if (call.C > 0 && wants_split_rows(call, p.rows)) {
    bool done = false;
    const cudaError_t err = split_rows_counts(call, p.rows, p.out, device, s, done);
    if (err != cudaSuccess || done) return int(err);
  }
  return int(with_logit_code(call.y_code, [&](auto code) { return launch_for_code<decltype(code)::value>(p, device, s); }));
}

}  // namespace cuda
}  // namespace fm
