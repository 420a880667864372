// Orders one stream after another without a host sync: an event recorded on the
// producer's stream and waited on by the launch stream. Both calls are stream
// operations, so they are legal (and recorded as graph edges) during a capture;
// destroying the event right after the wait is allowed (the runtime keeps it alive
// until the wait is done).
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/fm_cuda.h"
#include "cuda/launch_util.cuh"

namespace fm {
namespace cuda {

int stream_wait(std::uintptr_t waited, std::uintptr_t waiting, int device) {
  if (waited == waiting) return int(cudaSuccess);
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return int(guard.status());
  cudaEvent_t event = nullptr;
  cudaError_t err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
  if (err != cudaSuccess) return int(err);
  err = cudaEventRecord(event, reinterpret_cast<cudaStream_t>(waited));
  if (err == cudaSuccess) err = cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(waiting), event, 0);
  const cudaError_t destroyed = cudaEventDestroy(event);
  return int(err != cudaSuccess ? err : destroyed);
}

}  // namespace cuda
}  // namespace fm
