// The CPU binary-accuracy call: pick the active ISA build's kernel, split the
// samples over threads, add the counts.
#include "cpu/binary_accuracy.h"

#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {
namespace {

// As for accuracy: below this many bytes per thread a worker costs more than it saves.
constexpr int64_t kMinBytesPerThread = int64_t(1) << 19;

BinaryCountFn select_binary_counts(int y_code, int t_code) {
#if defined(FM_HAVE_X86_KERNELS)
  const std::string isa = active_isa();
  if (isa == "avx512") return select_binary_counts_avx512(y_code, t_code);
  if (isa == "avx2") return select_binary_counts_avx2(y_code, t_code);
#endif
  return select_binary_counts_baseline(y_code, t_code);
}

}  // namespace

void count_binary_accuracy(const void* y, int y_code, const void* t, int t_code, int64_t n, int64_t out[2]) {
  if (n <= 0) return;
  const BinaryCountFn kernel = select_binary_counts(y_code, t_code);
  const double bytes = double(n) * double(logit_itemsize(y_code) + label_itemsize(t_code));
  int64_t n_threads = get_num_threads();
  if (bytes < double(n_threads) * kMinBytesPerThread) n_threads = int64_t(bytes / kMinBytesPerThread);
  if (n_threads < 1) n_threads = 1;
  std::vector<BinaryCounts> partial(n_threads);
  auto run = [&](int i) {
    const int64_t share = n / n_threads, extra = n % n_threads;  // n * i could overflow
    const int64_t begin = i * share + (i < extra ? i : extra), end = begin + share + (i < extra);
    partial[i] = kernel(y, t, begin, end);
  };
  if (n_threads == 1) run(0);
  else parallel_for(int(n_threads), run);
  int64_t correct = 0, ignored = 0;
  for (const BinaryCounts& p : partial) {
    correct += p.correct;
    ignored += p.ignored;
  }
  out[0] += correct;
  out[1] += n - ignored;
}

}  // namespace fm::cpu
