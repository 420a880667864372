// Runtime queries for fusedmetrics._cuda. Safe without a driver: the static CUDA
// runtime returns an error code (35, insufficient driver) instead of failing.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/fm_cuda.h"

namespace fm {
namespace cuda {

int device_count() {
  int n = 0;  // cudaGetDeviceCount leaves it untouched on error
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear, so the error does not surface after a later launch
    return 0;
  }
  return n > 0 ? n : 0;
}

int runtime_version() { return CUDART_VERSION; }

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

int pointer_device(std::uintptr_t ptr) {
  if (ptr == 0) return -1;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr)) != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) return -1;
  return attr.device;
}

const char* error_string(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

}  // namespace cuda
}  // namespace fm
