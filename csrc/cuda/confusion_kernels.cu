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

template <int Code, bool Shared>
__global__ void __launch_bounds__(kBlock) confusion_kernel(const __grid_constant__ ConfusionParams p) {
  extern __shared__ unsigned int counts[];
  __shared__ unsigned long long block_invalid;
  const ConfusionCall& c = p.call;
  const AccuracyCall& a = c.a;
  const std::int64_t cells = a.C * a.C;
  if (threadIdx.x == 0) block_invalid = 0;
  if (Shared) {
    for (std::int64_t j = threadIdx.x; j < cells; j += kBlock) counts[j] = 0;
  }
  __syncthreads();

  unsigned long long invalid = 0;
  const std::int64_t stride = std::int64_t(gridDim.x) * kBlock;
  std::int64_t step = 0;
  // The loop bound is uniform across the block, so the flushes' barriers are too.
  for (std::int64_t base = std::int64_t(blockIdx.x) * kBlock; base < p.rows; base += stride) {
    const std::int64_t r = base + threadIdx.x;
    if (r < p.rows) {
      const RowIndex i = split_row(r, a.M);
      const std::int64_t t = label_at(a.t, a.t_code, t_row_offset(a, i));
      if (!(a.has_ignore && t == a.ignore)) {
        // The bounds of t are checked in confusion_bin; scores are read either way
        // (every index read is < C), so no branch on t before the argmax.
        const std::int64_t bin = confusion_bin(t, predict<Code>(c, i), a.C, a.has_ignore, a.ignore);
        if (bin < 0) {
          ++invalid;
        } else if (Shared) {
          atomicAdd(counts + bin, 1u);
        } else {
          atomicAdd(p.matrix + bin, 1ull);
        }
      }
    }
    if (Shared && ++step == kFlushSteps) {
      flush_shared(counts, cells, p.matrix);
      step = 0;
    }
  }
  if (invalid) atomicAdd(&block_invalid, invalid);
  if (Shared) {
    flush_shared(counts, cells, p.matrix);
  } else {
    __syncthreads();
  }
  if (threadIdx.x == 0 && block_invalid && p.invalid) atomicAdd(p.invalid, block_invalid);
}

template <int Code, bool Shared>
cudaError_t launch_typed(const ConfusionParams& p, int device, cudaStream_t stream) {
  static GridCache cache;
  auto* kernel = &confusion_kernel<Code, Shared>;
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
  const std::int64_t work = (p.rows + kBlock - 1) / kBlock;
  const int grid = int(work < blocks ? work : blocks);
  void* args[] = {const_cast<ConfusionParams*>(&p)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(grid > 0 ? grid : 1), dim3(kBlock), args,
                          shared_bytes, stream);
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
