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
namespace {

bool is_legacy(std::uintptr_t stream) { return stream == 0 || stream == 1; }  // 0 and cudaStreamLegacy

}  // namespace

int stream_wait(std::uintptr_t waited, std::uintptr_t waiting, int device) {
  if (waited == waiting) return int(cudaSuccess);
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) return int(guard.status());
  const cudaStream_t producer = reinterpret_cast<cudaStream_t>(waited);
  const cudaStream_t launch = reinterpret_cast<cudaStream_t>(waiting);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaError_t err = cudaStreamIsCapturing(launch, &status);
  if (err != cudaSuccess) return int(err);
  if (status == cudaStreamCaptureStatusActive) {
    // A graph cannot wait on work outside it (cudaErrorStreamCaptureIsolation would
    // invalidate the capture): when the producer's stream is not capturing, its work
    // was queued before the capture and whoever replays the graph orders it. The
    // legacy stream is never part of a capture (and asking about it could fail).
    if (is_legacy(waited)) return int(cudaSuccess);
    cudaStreamCaptureStatus producer_status = cudaStreamCaptureStatusNone;
    err = cudaStreamIsCapturing(producer, &producer_status);
    if (err != cudaSuccess) return int(err);
    if (producer_status != cudaStreamCaptureStatusActive) return int(cudaSuccess);
  }
  cudaEvent_t event = nullptr;
  err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
  if (err != cudaSuccess) return int(err);
  err = cudaEventRecord(event, producer);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(launch, event, 0);
  const cudaError_t destroyed = cudaEventDestroy(event);
  return int(err != cudaSuccess ? err : destroyed);
}

}  // namespace cuda
}  // namespace fm
