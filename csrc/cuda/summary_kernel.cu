// The fused DictSummary update: every device value of one add() folded into the
// float64 moment table in ONE launch, whatever the number of keys (a launch per key
// would cost more than the update itself). Pointers,
// codes and host weights travel by value in a __grid_constant__ parameter struct,
// so nothing is copied to the device first. One thread per slot; entries that share
// a slot are folded by one thread in their order, so the result is deterministic.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/fm_cuda.h"
#include "cuda/launch_util.cuh"
#include "semantics/hd.h"
#include "semantics/moments.h"
#include "semantics/scalars.h"

namespace fm {
namespace cuda {
namespace {

// 128 entries of 30 bytes keep the struct under the classic 4 KB parameter limit,
// which every driver accepts (larger needs CUDA >= 12.1 and a recent driver).
constexpr int kEntriesPerLaunch = 128;

struct SummaryBatch {
  const void* x[kEntriesPerLaunch];
  const void* w[kEntriesPerLaunch];
  double w_const[kEntriesPerLaunch];
  int slot[kEntriesPerLaunch];
  unsigned char x_code[kEntriesPerLaunch];
  unsigned char w_code[kEntriesPerLaunch];
  double* state;
  int n;
};
static_assert(sizeof(SummaryBatch) <= 4096, "kernel parameters must stay within 4 KB");

__device__ __forceinline__ double load_scalar(const void* p, int code) {
  return read_scalar(p, code, [](const auto* q) { return *q; });  // codes were checked by the binding
}

__global__ void summary_update_kernel(const __grid_constant__ SummaryBatch b) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= b.n) return;
  const int slot = b.slot[i];
  for (int j = 0; j < i; ++j)
    if (b.slot[j] == slot) return;  // an earlier entry's thread owns this slot

  double* s = b.state + 3 * std::int64_t(slot);
  Moments m{s[0], s[1], s[2]};
  for (int j = i; j < b.n; ++j) {
    if (b.slot[j] != slot) continue;
    const double w = b.w[j] != nullptr ? load_scalar(b.w[j], b.w_code[j]) : b.w_const[j];
    if (w == 0) continue;  // zero weight: skipped, as on the host
    if (!(w > 0)) {
      // A negative or NaN device weight cannot raise without a host sync: poison the slot.
      const double nan = __longlong_as_double(0x7ff8000000000000ll);
      m = Moments{nan, nan, nan};
      continue;
    }
    moments_add(m, load_scalar(b.x[j], b.x_code[j]), w);
  }
  s[0] = m.weight;
  s[1] = m.mean;
  s[2] = m.m2;
}

// mean and population std of merge(host[i], state[slot[i]]) (Chan), variance
// clamped at 0 by fm::moments_variance. A slot outside [0, capacity) reads nothing
// and gives NaN.
__global__ void summary_statistics_kernel(const double* state, std::int64_t capacity,
                                          const std::int64_t* slots, const double* host,
                                          std::int64_t n, double* mean, double* stddev) {
  const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const std::int64_t slot = slots[i];
  if (slot < 0 || slot >= capacity) {
    mean[i] = stddev[i] = __longlong_as_double(0x7ff8000000000000ll);
    return;
  }
  const Moments a{host[3 * i], host[3 * i + 1], host[3 * i + 2]};
  const Moments b{state[3 * slot], state[3 * slot + 1], state[3 * slot + 2]};
  const Moments m = moments_merge(a, b);
  // No weight at all (a key whose device weights were all 0): NaN, as the host
  // path reports a weightless key, not the 0.0 that the zero state holds.
  mean[i] = m.weight > 0 ? m.mean : __longlong_as_double(0x7ff8000000000000ll);
  stddev[i] = sqrt(moments_variance(m));
}

}  // namespace

int launch_summary_statistics(std::uintptr_t state, std::int64_t capacity, std::uintptr_t slots,
                              std::uintptr_t host, std::int64_t n, std::uintptr_t mean,
                              std::uintptr_t stddev, int device, std::uintptr_t stream) {
  if (n <= 0) return int(cudaSuccess);
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return int(guard.status());
  constexpr int kThreads = 128;
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) return int(cudaErrorInvalidValue);
  // The <<<>>> launch reports through cudaGetLastError, which also returns any
  // earlier error left unread in this thread (e.g. a failed cudaLaunchKernel of
  // another call that was already reported): clear it first so it is not
  // reported again here. A sticky error still comes back from the launch itself.
  (void)cudaGetLastError();
  summary_statistics_kernel<<<unsigned(blocks), kThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const double*>(state), capacity, reinterpret_cast<const std::int64_t*>(slots),
      reinterpret_cast<const double*>(host), n, reinterpret_cast<double*>(mean),
      reinterpret_cast<double*>(stddev));
  return int(cudaGetLastError());
}

int summary_entries_per_launch() { return kEntriesPerLaunch; }

int launch_summary_update(const SummaryEntry* entries, std::int64_t n, std::uintptr_t state,
                          int device, std::uintptr_t stream) {
  if (n <= 0) return int(cudaSuccess);
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return int(guard.status());
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  for (std::int64_t first = 0; first < n; first += kEntriesPerLaunch) {
    SummaryBatch b;
    const std::int64_t count = n - first < kEntriesPerLaunch ? n - first : kEntriesPerLaunch;
    for (std::int64_t i = 0; i < count; ++i) {
      const SummaryEntry& e = entries[first + i];
      b.x[i] = reinterpret_cast<const void*>(e.x);
      b.w[i] = reinterpret_cast<const void*>(e.w);
      b.w_const[i] = e.w_const;
      b.slot[i] = int(e.slot);
      b.x_code[i] = static_cast<unsigned char>(e.x_code);
      b.w_code[i] = static_cast<unsigned char>(e.w_code);
    }
    for (std::int64_t i = count; i < kEntriesPerLaunch; ++i) {  // defined bytes, never read
      b.x[i] = nullptr;
      b.w[i] = nullptr;
      b.w_const[i] = 0;
      b.slot[i] = -1;
      b.x_code[i] = 0;
      b.w_code[i] = 0;
    }
    b.state = reinterpret_cast<double*>(state);
    b.n = int(count);
    const cudaError_t err = launch_kernel(&summary_update_kernel, 1, kEntriesPerLaunch, b, s);
    if (err != cudaSuccess) return int(err);
  }
  return int(cudaSuccess);
}

}  // namespace cuda
}  // namespace fm
