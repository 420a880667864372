// Plain C++ interface of the CUDA kernels. The pybind11 binding
// (csrc/bindings/cuda/module.cpp) is compiled by the host compiler and includes only
// this header and the plain semantics headers, so nvcc never sees pybind11 and the
// binding never sees CUDA headers. Every function returns a CUDA error code as int
// (0 = success); error_string turns it into text.
#pragma once
#include <cstdint>

#include "semantics/accuracy_call.h"
#include "semantics/confusion_call.h"

namespace fm {
namespace cuda {

// One accuracy-count launch of a validated call (its pointers are device pointers).
// The two uint64 at `out` (correct, total) are incremented atomically.
int launch_accuracy_counts(const AccuracyCall& call, std::uintptr_t out, int device, std::uintptr_t stream);

// One confusion-matrix launch of a validated call (device pointers): adds the
// counts into the C * C uint64 at `matrix` and the number of non-ignored samples
// with a label outside [0, C) into the uint64 at `invalid` (when it is not 0).
int launch_confusion_counts(const ConfusionCall& call, std::uintptr_t matrix, std::uintptr_t invalid, int device,
                            std::uintptr_t stream);

// Makes stream `waiting` wait (on the device, no host sync) for the work queued on
// stream `waited` so far; nothing when they are the same handle. Capture-safe: while
// `waiting` captures a graph, it joins `waited` only when that stream captures too
// (work queued outside the graph cannot be a dependency inside it).
int stream_wait(std::uintptr_t waited, std::uintptr_t waiting, int device);

// One value folded into the moment table of the summary kernel.
struct SummaryEntry {
  std::int64_t slot;
  std::uintptr_t x;      // device pointer to a scalar of scalar code x_code (fm::ScalarType)
  int x_code;
  std::uintptr_t w;      // device pointer to the weight, or 0: use w_const
  int w_code;
  double w_const;
};

// The most entries one launch carries (its parameter struct stays <= 4 KB).
int summary_entries_per_launch();

// Folds entries[0..n) into state (row-major [slot][W, mean, M2] float64 table)
// with fm::moments_add: ceil(n / summary_entries_per_launch()) launches on stream.
int launch_summary_update(const SummaryEntry* entries, std::int64_t n, std::uintptr_t state,
                          int device, std::uintptr_t stream);

// means[i], stds[i] = statistics of Chan-merge(host[i], state[slots[i]]) for i < n.
// All pointers are device pointers: state (capacity, 3), slots int64 (n,), host
// float64 (n, 3), mean and stddev float64 (n,). One launch on stream.
int launch_summary_statistics(std::uintptr_t state, std::int64_t capacity, std::uintptr_t slots,
                              std::uintptr_t host, std::int64_t n, std::uintptr_t mean,
                              std::uintptr_t stddev, int device, std::uintptr_t stream);

// The device that owns a device pointer (cudaPointerGetAttributes), or -1 when it
// cannot tell (host memory, no driver, invalid pointer).
int pointer_device(std::uintptr_t ptr);

int device_count();            // 0 when there is no driver or device; never fails
int runtime_version();         // CUDART_VERSION we were compiled against, e.g. 13000
int driver_version();          // 0 when there is no driver
const char* error_string(int code);

}  // namespace cuda
}  // namespace fm
