// Accuracy counts for few huge rows: block b works on chunk (b % chunks) of row
// (b / chunks); it counts the classes of its chunk ranked above the target (the
// shared rule, csrc/semantics/accuracy_rule.h), adds that to the row's partial sum,
// and the block that finishes a row last compares the sum with k. Threads of a
// block read consecutive classes, so contiguous rows coalesce.
#include "cuda/accuracy_split.h"

#include <atomic>

#include "semantics/accuracy_rule.h"
#include "semantics/dtypes.h"
#include "semantics/logits.h"

namespace fm {
namespace cuda {
namespace {

constexpr int kSplitBlock = 256;
constexpr std::int64_t kChunk = 8192;              // classes per block (32 per thread)
constexpr std::int64_t kMaxBlocks = std::int64_t(1) << 26;

struct RowState {  // zeroed before the launch
  unsigned long long above;
  unsigned long long finished;
};

struct SplitParams {
  AccuracyCall call;
  std::int64_t rows;
  std::int64_t chunks;  // blocks per row
  std::int64_t chunk;   // classes per block
  RowState* state;
  unsigned long long* out;
};

template <int Code>
__global__ void __launch_bounds__(kSplitBlock) accuracy_split_kernel(const __grid_constant__ SplitParams p) {
  using S = typename LogitTraits<Code>::Storage;
  using F = typename LogitTraits<Code>::Compute;
  const AccuracyCall& c = p.call;
  const std::int64_t r = std::int64_t(blockIdx.x) / p.chunks;
  const std::int64_t chunk = std::int64_t(blockIdx.x) - r * p.chunks;
  const RowIndex i = split_row(r, c.M);
  const std::int64_t t = read_label(c.t, c.t_code, t_row_offset(c, i), [](const auto* q) { return __ldg(q); });
  const int kind = classify_label(t, c.C, c.has_ignore, c.ignore);  // uniform over the block
  if (kind == kLabelIgnored) return;
  if (kind == kLabelOutOfRange) {  // wrong, counted once (by chunk 0); y is never read
    if (chunk == 0 && threadIdx.x == 0) atomicAdd(p.out + 1, 1ull);
    return;
  }
  const S* row = static_cast<const S*>(c.y) + y_row_offset(c, i);
  const F v = widen_logit<Code>(__ldg(row + t * c.ys_c));
  const std::int64_t begin = chunk * p.chunk;
  const std::int64_t end = begin + p.chunk < c.C ? begin + p.chunk : c.C;
  unsigned long long above = 0;
  for (std::int64_t j = begin + threadIdx.x; j < end; j += kSplitBlock)
    above += ranks_above<F>(widen_logit<Code>(__ldg(row + j * c.ys_c)), v, j, t);

  __shared__ unsigned long long partial[kSplitBlock / 32];
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) above += __shfl_xor_sync(0xffffffffu, above, off);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = above;
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int w = 1; w < kSplitBlock / 32; ++w) above += partial[w];
  RowState& s = p.state[r];
  if (above) atomicAdd(&s.above, above);
  __threadfence();  // our partial is visible before we count ourselves finished
  if (atomicAdd(&s.finished, 1ull) != static_cast<unsigned long long>(p.chunks - 1)) return;
  __threadfence();
  const unsigned long long sum = atomicAdd(&s.above, 0ull);  // every block's partial is in
  atomicAdd(p.out + 1, 1ull);
  if (static_cast<std::int64_t>(sum) < c.k) atomicAdd(p.out, 1ull);
}

// Whether the device has the stream-ordered allocator: 0 not asked yet, 1 yes, 2 no.
std::atomic<int> pools_supported[64];

bool has_memory_pools(int device) {
  if (device < 0 || device >= 64) return false;
  const int known = pools_supported[device].load(std::memory_order_relaxed);
  if (known != 0) return known == 1;
  int value = 0;
  if (cudaDeviceGetAttribute(&value, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) {
    (void)cudaGetLastError();
    value = 0;
  }
  pools_supported[device].store(value ? 1 : 2, std::memory_order_relaxed);
  return value != 0;
}

// Whether the stream is capturing a graph (a failed query counts as capturing, as
// it fails while another stream captures in global mode). The split path is then
// left to the row kernels: its scratch would become allocation nodes in the graph,
// which cannot then be cloned or used as a child graph.
bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) {
    (void)cudaGetLastError();
    return true;
  }
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace

bool wants_split_rows(const AccuracyCall& call, std::int64_t rows) {
  // Contiguous rows: a warp per row; 1024 warps are an eighth of a large GPU, and
  // 16384+ classes keep each warp busy long enough to show it. A strided class axis
  // has one thread per row, so split sooner.
  if (call.ys_c == 1) return rows <= 1024 && call.C >= 16384;
  return rows <= 8192 && call.C >= 1024;
}

cudaError_t split_rows_counts(const AccuracyCall& call, std::int64_t rows, unsigned long long* out, int device,
                              cudaStream_t stream, bool& done) {
  done = false;
  if (!has_memory_pools(device) || capturing(stream)) return cudaSuccess;
  std::int64_t chunk = kChunk;
  std::int64_t chunks = (call.C + chunk - 1) / chunk;
  if (rows * chunks > kMaxBlocks) {  // keep the grid in range: longer chunks
    chunks = kMaxBlocks / rows > 0 ? kMaxBlocks / rows : 1;
    chunk = (call.C + chunks - 1) / chunks;
    chunks = (call.C + chunk - 1) / chunk;
  }
  const std::size_t bytes = std::size_t(rows) * sizeof(RowState);
  void* scratch = nullptr;
  cudaError_t err = cudaMallocAsync(&scratch, bytes, stream);
  if (err == cudaErrorMemoryAllocation) {  // the row kernels need no scratch: count with them
    (void)cudaGetLastError();
    return cudaSuccess;
  }
  if (err != cudaSuccess) return err;
  err = cudaMemsetAsync(scratch, 0, bytes, stream);
  if (err == cudaSuccess) {
    SplitParams params{call, rows, chunks, chunk, static_cast<RowState*>(scratch), out};
    void* args[] = {&params};
    err = with_logit_code(call.y_code, [&](auto code) {
      return cudaLaunchKernel(reinterpret_cast<const void*>(&accuracy_split_kernel<decltype(code)::value>),
                              dim3(unsigned(rows * chunks)), dim3(kSplitBlock), args, 0, stream);
    });
  }
  const cudaError_t freed = cudaFreeAsync(scratch, stream);
  if (err == cudaSuccess) err = freed;
  done = err == cudaSuccess;
  return err;
}

}  // namespace cuda
}  // namespace fm
