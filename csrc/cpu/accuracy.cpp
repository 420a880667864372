// The CPU accuracy call: pick the ISA build, split the rows over threads.
#include <vector>

#include "cpu/accuracy_task.h"
#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {
namespace {

// Below this many bytes per thread, waking a worker costs more than it saves.
constexpr int64_t kMinBytesPerThread = int64_t(1) << 19;

CountRowsFn kernel_for(const std::string& isa) {
#if defined(FM_HAVE_X86_KERNELS)
  if (isa == "avx512") return count_rows_avx512;
  if (isa == "avx2") return count_rows_avx2;
#endif
  return count_rows_baseline;
}

}  // namespace

Counts count_accuracy(const AccuracyTask& task) {
  const CountRowsFn kernel = kernel_for(active_isa());
  const int64_t rows = task.N * task.M;
  // In double: broadcast (zero-stride) inputs can have more "bytes" than int64 holds.
  const double bytes = double(rows) * (double(task.C) * logit_itemsize(task.y_code) + label_itemsize(task.t_code));
  int64_t n_threads = get_num_threads();
  if (bytes < double(n_threads) * kMinBytesPerThread) n_threads = int64_t(bytes / kMinBytesPerThread);
  if (n_threads > rows) n_threads = rows;
  if (n_threads <= 1) return kernel(task, 0, rows);

  std::vector<Counts> partial(n_threads);
  parallel_for(int(n_threads), [&](int i) {
    const int64_t share = rows / n_threads, extra = rows % n_threads;  // rows * i could overflow
    const int64_t begin = i * share + (i < extra ? i : extra), end = begin + share + (i < extra);
    partial[i] = kernel(task, begin, end);
  });
  Counts total;
  for (const auto& p : partial) {
    total.correct += p.correct;
    total.total += p.total;
  }
  return total;
}

}  // namespace fm::cpu
