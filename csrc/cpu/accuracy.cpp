// The CPU accuracy call: pick the ISA build's kernel, split the rows over threads.
#include "cpu/accuracy.h"

#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {
namespace {

// Below this many bytes per thread, waking a worker costs more than it saves.
constexpr int64_t kMinBytesPerThread = int64_t(1) << 19;

}  // namespace

void add_candidate(Candidates& found, const char* name, CountRowsFn fn) { found.push_back({name, fn}); }

Candidates kernel_candidates(const std::string& isa, const AccuracyCall& call) {
#if defined(FM_HAVE_X86_KERNELS)
  if (isa == "avx512") return kernel_candidates_avx512(call);
  if (isa == "avx2") return kernel_candidates_avx2(call);
#endif
  if (isa == "baseline") return kernel_candidates_baseline(call);
  return {};
}

Candidates usable_candidates(const AccuracyCall& call) {
  Candidates all;
  for (const std::string& isa : usable_isas()) {
    const Candidates some = kernel_candidates(isa, call);
    all.insert(all.end(), some.begin(), some.end());
  }
  return all;
}


double call_bytes(const AccuracyCall& call) {
  return double(call.N) * double(call.M) * (double(call.C) * logit_itemsize(call.y_code) + label_itemsize(call.t_code));
}

int64_t threads_for(const AccuracyCall& call, int max_threads) {
  const int64_t rows = call.N * call.M;
  const double bytes = call_bytes(call);
  int64_t n_threads = get_num_threads();
  if (max_threads > 0 && max_threads < n_threads) n_threads = max_threads;
  if (bytes < double(n_threads) * kMinBytesPerThread) n_threads = int64_t(bytes / kMinBytesPerThread);
  if (n_threads > rows) n_threads = rows;
  return n_threads < 1 ? 1 : n_threads;
}

Counts count_accuracy(const AccuracyCall& call, CountRowsFn kernel, int max_threads) {
  const int64_t rows = call.N * call.M;
  const int64_t n_threads = threads_for(call, max_threads);
  if (n_threads <= 1) return kernel(call, 0, rows);

  std::vector<Counts> partial(n_threads);
  parallel_for(int(n_threads), [&](int i) {
    const int64_t share = rows / n_threads, extra = rows % n_threads;  // rows * i could overflow
    const int64_t begin = i * share + (i < extra ? i : extra), end = begin + share + (i < extra);
    partial[i] = kernel(call, begin, end);
  });
  Counts total;
  for (const auto& p : partial) {
    total.correct += p.correct;
    total.total += p.total;
  }
  return total;
}

}  // namespace fm::cpu
