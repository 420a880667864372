// Few huge rows (e.g. 1 x 2^28 classes): the row kernels would give each row one
// thread or one warp. This path splits every row over many blocks, in one launch.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "semantics/accuracy_call.h"

namespace fm {
namespace cuda {

// Whether `rows` rows of this call are better served by split_rows_counts than by
// the one-thread / one-group-per-row kernels.
bool wants_split_rows(const AccuracyCall& call, std::int64_t rows);

// Adds [correct, total] of the call's rows into out (two uint64) with the rows split
// over blocks: a stream-ordered scratch (cudaMallocAsync, cudaMemsetAsync, one kernel,
// cudaFreeAsync, all on `stream`) holds each row's partial rank and a finished-blocks
// counter; the last block of a row finishes it. Sets `done` to false (and launches
// nothing) when the device has no stream-ordered allocator, when the scratch does not
// fit in memory, or while `stream` captures a graph (allocation nodes would limit what
// the graph can be used for), so the caller falls back to the row kernels. The device
// is current.
cudaError_t split_rows_counts(const AccuracyCall& call, std::int64_t rows, unsigned long long* out, int device,
                              cudaStream_t stream, bool& done);

}  // namespace cuda
}  // namespace fm
