// Host-side helpers shared by the CUDA launchers: device selection and grid sizing.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace fm {
namespace cuda {

// Makes `device` current for the launch and restores the caller's device after it.
// Our runtime is linked statically, so it shares the driver's per-thread current
// context with CuPy's runtime: leaving another device current would silently move
// CuPy's current device too.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    int current = -1;
    status_ = cudaGetDevice(&current);
    if (status_ != cudaSuccess) return;
    if (current != device) {
      status_ = cudaSetDevice(device);
      if (status_ == cudaSuccess) previous_ = current;
    }
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  cudaError_t status() const { return status_; }

 private:
  cudaError_t status_ = cudaSuccess;
  int previous_ = -1;
};

constexpr int kMaxCachedDevices = 64;

// Per-kernel cache of "how many blocks fill the device", filled on the first launch
// on each device. The queries are host-side only, but keeping them out of the hot
// path keeps a launch to cudaGetDevice + cudaLaunchKernel (and out of graph captures).
struct GridCache {
  std::atomic<int> blocks[kMaxCachedDevices] = {};
};

// Blocks for a grid-stride kernel: enough to fill every SM at full occupancy (one
// wave), never more than there is work for. A grid larger than one wave would leave
// a partial second wave, which is slower for the same total work.
template <class Params>
cudaError_t full_wave_blocks(void (*kernel)(Params), int block, int device, GridCache& cache,
                             int& blocks_out) {
  int blocks = device >= 0 && device < kMaxCachedDevices
                   ? cache.blocks[device].load(std::memory_order_relaxed)
                   : 0;
  if (blocks <= 0) {
    int sms = 0, per_sm = 0;
    cudaError_t err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (err != cudaSuccess) return err;
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, block, 0);
    if (err != cudaSuccess) return err;
    blocks = (sms > 0 ? sms : 1) * (per_sm > 0 ? per_sm : 1);
    if (device >= 0 && device < kMaxCachedDevices)
      cache.blocks[device].store(blocks, std::memory_order_relaxed);
  }
  blocks_out = blocks;
  return cudaSuccess;
}

template <class Params>
cudaError_t launch_kernel(void (*kernel)(Params), int grid, int block, const Params& params,
                          cudaStream_t stream) {
  void* args[] = {const_cast<Params*>(&params)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(grid), dim3(block), args, 0,
                          stream);
}

}  // namespace cuda
}  // namespace fm
