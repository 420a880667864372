// Confusion-matrix counts on the GPU: one thread per sample (grid-stride), the
// prediction from the shared argmax rule (csrc/semantics/argmax_rule.h) or read
// from integer predictions, and one increment per sample.
//
// Segmentation has few classes and many pixels, so increments collide on few
// bins. When the C * C table fits in shared memory, each block counts into 32-bit
// shared counters and adds them to the uint64 matrix at the end, and also every
// kFlushSteps grid-stride steps (fewer than 2^32 increments per counter, so they
// never overflow). Otherwise each sample is one global 64-bit atomic. Out-of-range
// samples are counted in `invalid` (a block sum, one atomic per block). One
// launch, no allocation, no synchronisation.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/fm_cuda.h"
#include "cuda/launch_util.cuh"
#include "semantics/argmax_rule.h"
#include "semantics/confusion_call.h"
#include "semantics/logits.h"

namespace fm {
namespace cuda {
namespace {

constexpr int kBlock = 256;
// Shared counters per block: 48 KB of 32-bit counters (C <= 110) keeps the
// default shared-memory limit, so no opt-in attribute is needed.
constexpr std::int64_t kMaxSharedCells = (48 * 1024) / 4;
// Each step adds at most kBlock to one counter: 2^22 steps * 256 = 2^30 < 2^32.
constexpr std::int64_t kFlushSteps = std::int64_t(1) << 22;

struct ConfusionParams {
  ConfusionCall call;
  std::int64_t rows;  // N * M
  unsigned long long* matrix;
  unsigned long long* invalid;  // null: out-of-range samples are only left out
};

__device__ __forceinline__ std::int64_t label_at(const void* base, int code, std::int64_t offset) {
  return read_label(base, code, offset, [](const auto* p) { return __ldg(p); });
}

// The prediction of row i: the argmax of its scores, or its integer prediction.
template <int Code>
__device__ __forceinline__ std::int64_t predict(const ConfusionCall& c, RowIndex i) {
  const AccuracyCall& a = c.a;
  if (c.pred_code >= 0) return label_at(a.y, c.pred_code, y_row_offset(a, i));
  using L = LogitTraits<Code>;
  const auto* row = static_cast<const typename L::Storage*>(a.y) + y_row_offset(a, i);
  const std::int64_t ys_c = a.ys_c;
  return row_argmax<typename L::Compute>(
      [row, ys_c](std::int64_t j) { return widen_logit<Code>(__ldg(row + j * ys_c)); }, a.C);
}

// Adds the block's shared counters to the matrix and zeroes them. All threads call it.
__device__ __forceinline__ void flush_shared(unsigned int* counts, std::int64_t cells, unsigned long long* matrix) {
  __syncthreads();
  for (std::int64_t j = threadIdx.x; j < cells; j += kBlock) {
    const unsigned int v = counts[j];
    if (v) {
      atomicAdd(matrix + j, (unsigned long long)v);
      counts[j] = 0;
    }
  }
  __syncthreads();
}

// Counts one sample: into the shared counters, the matrix, or `invalid`.
template <bool Shared>
__device__ __forceinline__ void tally(const ConfusionParams& p, unsigned int* counts, std::int64_t t,
                                      std::int64_t pred, unsigned long long& invalid) {
  const AccuracyCall& a = p.call.a;
  const std::int64_t bin = confusion_bin(t, pred, a.C, a.has_ignore, a.ignore);
  if (bin == kBinInvalid) {
    ++invalid;
  } else if (bin >= 0) {
    if (Shared) atomicAdd(counts + bin, 1u);
    else atomicAdd(p.matrix + bin, 1ull);
  }
}

// Zeroes the shared counters and the block's invalid sum. All threads call it.
__device__ __forceinline__ void start_block(unsigned int* counts, std::int64_t cells, bool shared,
                                            unsigned long long& block_invalid) {
  if (threadIdx.x == 0) block_invalid = 0;
  if (shared)
    for (std::int64_t j = threadIdx.x; j < cells; j += kBlock) counts[j] = 0;
  __syncthreads();
}

// Flushes the shared counters and adds the block's invalid count. All threads call it.
__device__ __forceinline__ void finish_block(const ConfusionParams& p, unsigned int* counts, std::int64_t cells,
                                             bool shared, unsigned long long invalid,
                                             unsigned long long& block_invalid) {
  if (invalid) atomicAdd(&block_invalid, invalid);
  if (shared) flush_shared(counts, cells, p.matrix);
  else __syncthreads();
  if (threadIdx.x == 0 && block_invalid && p.invalid) atomicAdd(p.invalid, block_invalid);
}

// One thread per sample, any strides (coalesced for the class-strided layout:
// a warp reads consecutive m of one class at a time).
template <int Code, bool Shared>
__global__ void __launch_bounds__(kBlock) confusion_kernel(const __grid_constant__ ConfusionParams p) {
  extern __shared__ unsigned int counts[];
  __shared__ unsigned long long block_invalid;
  const ConfusionCall& c = p.call;
  const AccuracyCall& a = c.a;
  const std::int64_t cells = a.C * a.C;
  start_block(counts, cells, Shared, block_invalid);

  unsigned long long invalid = 0;
  const std::int64_t stride = std::int64_t(gridDim.x) * kBlock;
  std::int64_t step = 0;
  // The loop bound is uniform across the block, so the flushes' barriers are too.
  for (std::int64_t base = std::int64_t(blockIdx.x) * kBlock; base < p.rows; base += stride) {
    const std::int64_t r = base + threadIdx.x;
    if (r < p.rows) {
      const RowIndex i = split_row(r, a.M);
      const std::int64_t t = label_at(a.t, a.t_code, t_row_offset(a, i));
      // The bounds of t are checked in confusion_bin; scores are read either way
      // (every index read is < C), so no branch on t before the argmax.
      if (!(a.has_ignore && t == a.ignore)) tally<Shared>(p, counts, t, predict<Code>(c, i), invalid);
    }
    if (Shared && ++step == kFlushSteps) {
      flush_shared(counts, cells, p.matrix);
      step = 0;
    }
  }
  finish_block(p, counts, cells, Shared, invalid, block_invalid);
}

// G lanes per sample for rows with contiguous classes (ys_c == 1) longer than 128
// bytes: lane `sub` takes classes sub, sub + G, ... (so a group reads G
// consecutive scores at a time), keeps its own first argmax, and the group
// combines the lanes' results with argmax_prefers. The loop is uniform across the
// block (flush barriers), and every lane reaches the full-mask shuffles.
template <int Code, bool Shared, int G>
__global__ void __launch_bounds__(kBlock) confusion_group_kernel(const __grid_constant__ ConfusionParams p) {
  using L = LogitTraits<Code>;
  using F = typename L::Compute;
  static_assert(G == 8 || G == 16 || G == 32, "group size");
  constexpr int kRowsPerBlock = kBlock / G;
  extern __shared__ unsigned int counts[];
  __shared__ unsigned long long block_invalid;
  const AccuracyCall& a = p.call.a;
  const std::int64_t cells = a.C * a.C;
  start_block(counts, cells, Shared, block_invalid);

  const int sub = threadIdx.x & (G - 1);
  const auto* y = static_cast<const typename L::Storage*>(a.y);
  unsigned long long invalid = 0;
  std::int64_t step = 0;
  const std::int64_t stride = std::int64_t(gridDim.x) * kRowsPerBlock;
  for (std::int64_t base = std::int64_t(blockIdx.x) * kRowsPerBlock; base < p.rows; base += stride) {
    const std::int64_t r = base + threadIdx.x / G;
    const bool active = r < p.rows;
    RowIndex i{0, 0};
    F best = F(0);
    std::int64_t index = -1;  // -1: this lane saw no class
    if (active) {
      i = split_row(r, a.M);
      const auto* row = y + y_row_offset(a, i);
      for (std::int64_t j = sub; j < a.C; j += G) {
        const F x = widen_logit<Code>(__ldg(row + j));
        if (index < 0 || argmax_takes<F>(x, best)) {
          best = x;
          index = j;
        }
      }
    }
#pragma unroll
    for (int off = G / 2; off > 0; off >>= 1) {
      const F other = __shfl_xor_sync(0xffffffffu, best, off);
      const long long other_index = __shfl_xor_sync(0xffffffffu, (long long)index, off);
      if (other_index >= 0 && (index < 0 || argmax_prefers<F>(other, other_index, best, index))) {
        best = other;
        index = other_index;
      }
    }
    if (active && sub == 0) {
      const std::int64_t t = label_at(a.t, a.t_code, t_row_offset(a, i));
      // index < 0 only when C == 0, where every label is out of range anyway.
      if (!(a.has_ignore && t == a.ignore)) tally<Shared>(p, counts, t, index < 0 ? 0 : index, invalid);
    }
    if (Shared && ++step == kFlushSteps) {
      flush_shared(counts, cells, p.matrix);
      step = 0;
    }
  }
  finish_block(p, counts, cells, Shared, invalid, block_invalid);
}

// One launch of `kernel`: enough blocks to fill the device (occupancy with this
// call's shared memory), never more than there are samples for.
template <bool Shared>
cudaError_t launch_with(void (*kernel)(ConfusionParams), std::int64_t rows_per_block, GridCache& cache,
                        const ConfusionParams& p, int device, cudaStream_t stream) {
  const std::size_t shared_bytes = Shared ? std::size_t(p.call.a.C * p.call.a.C) * 4 : 0;
  int blocks = 0;
  if (Shared) {  // occupancy depends on the dynamic shared memory: not cached
    int sms = 0, per_sm = 0;
    cudaError_t err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (err != cudaSuccess) return err;
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kBlock, shared_bytes);
    if (err != cudaSuccess) return err;
    blocks = (sms > 0 ? sms : 1) * (per_sm > 0 ? per_sm : 1);
  } else {
    cudaError_t err = full_wave_blocks(kernel, kBlock, device, cache, blocks);
    if (err != cudaSuccess) return err;
  }
  const std::int64_t work = (p.rows + rows_per_block - 1) / rows_per_block;
  const int grid = int(work < blocks ? work : blocks);
  void* args[] = {const_cast<ConfusionParams*>(&p)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(grid > 0 ? grid : 1), dim3(kBlock), args,
                          shared_bytes, stream);
}

template <int Code, bool Shared>
cudaError_t launch_typed(const ConfusionParams& p, int device, cudaStream_t stream) {
  const AccuracyCall& a = p.call.a;
  const std::int64_t row_bytes = a.C * std::int64_t(sizeof(typename LogitTraits<Code>::Storage));
  if (p.call.pred_code >= 0 || a.ys_c != 1 || row_bytes <= 128) {
    static GridCache cache;
    return launch_with<Shared>(&confusion_kernel<Code, Shared>, kBlock, cache, p, device, stream);
  }
  if (row_bytes <= 1024) {
    static GridCache cache;
    return launch_with<Shared>(&confusion_group_kernel<Code, Shared, 8>, kBlock / 8, cache, p, device, stream);
  }
  if (row_bytes <= 4096) {
    static GridCache cache;
    return launch_with<Shared>(&confusion_group_kernel<Code, Shared, 16>, kBlock / 16, cache, p, device, stream);
  }
  static GridCache cache;
  return launch_with<Shared>(&confusion_group_kernel<Code, Shared, 32>, kBlock / 32, cache, p, device, stream);
}

}  // namespace

int launch_confusion_counts(const ConfusionCall& call, std::uintptr_t matrix, std::uintptr_t invalid, int device,
                            std::uintptr_t stream) {
  const AccuracyCall& a = call.a;
  if ((call.pred_code < 0 && !valid_logit_code(a.y_code)) || !valid_label_code(a.t_code) ||
      (call.pred_code >= 0 && !valid_label_code(call.pred_code)))
    return int(cudaErrorInvalidValue);
  if (a.N <= 0 || a.M <= 0) return int(cudaSuccess);
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return int(guard.status());
  const ConfusionParams p{call, a.N * a.M, reinterpret_cast<unsigned long long*>(matrix),
                          reinterpret_cast<unsigned long long*>(invalid)};
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const bool shared = a.C * a.C <= kMaxSharedCells;
  // Integer predictions do not depend on the logit code: one instantiation serves them.
  const int code = call.pred_code >= 0 ? int(kF32) : a.y_code;
  return int(with_logit_code(code, [&](auto tag) {
    constexpr int Code = decltype(tag)::value;
    return shared ? launch_typed<Code, true>(p, device, s) : launch_typed<Code, false>(p, device, s);
  }));
}

}  // namespace cuda
}  // namespace fm
