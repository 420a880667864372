// Several-k accuracy on the CPU: pick the ISA build's kernel, split the rows over
// threads, each with its own histogram, and sum them.
#include "cpu/accuracy_multi_k.h"

#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {

RankHistogramFn select_rank_histogram(const AccuracyCall& call) {
#if defined(FM_HAVE_X86_KERNELS)
  const std::string isa = active_isa();
  if (isa == "avx512") return select_rank_histogram_avx512(call);
  if (isa == "avx2") return select_rank_histogram_avx2(call);
#endif
  return select_rank_histogram_baseline(call);
}

void rank_histogram(const AccuracyCall& call, RankHistogramFn kernel, int64_t* hist, int64_t* total) {
  constexpr int64_t kMinBytesPerThread = int64_t(1) << 19;  // as for accuracy
  const int64_t rows = call.N * call.M, bins = call.k + 1;
  const double bytes = double(rows) * (double(call.C) * logit_itemsize(call.y_code) + label_itemsize(call.t_code));
  int64_t n_threads = get_num_threads();
  if (bytes < double(n_threads) * kMinBytesPerThread) n_threads = int64_t(bytes / kMinBytesPerThread);
  if (n_threads > rows) n_threads = rows;
  if (n_threads <= 1) {
    kernel(call, 0, rows, hist, total);
    return;
  }
  std::vector<int64_t> partial(size_t(n_threads * (bins + 1)), 0);  // per thread: hist, then total
  parallel_for(int(n_threads), [&](int i) {
    const int64_t share = rows / n_threads, extra = rows % n_threads;
    const int64_t begin = i * share + (i < extra ? i : extra), end = begin + share + (i < extra);
    int64_t* mine = partial.data() + i * (bins + 1);
    kernel(call, begin, end, mine, mine + bins);
  });
  for (int64_t i = 0; i < n_threads; ++i) {
    const int64_t* mine = partial.data() + i * (bins + 1);
    for (int64_t b = 0; b < bins; ++b) hist[b] += mine[b];
    *total += mine[bins];
  }
}

}  // namespace fm::cpu
