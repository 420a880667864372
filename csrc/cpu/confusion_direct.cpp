// The direct confusion count: no private tables (zeroing C * C counters per
// thread would cost more than the samples), so the counts go straight into the
// caller's matrix. Each thread turns its share of samples into bins, reading the
// labels in place with a loop typed per label dtype pair (and predicting from the
// scores); only when no sample was invalid are the bins added into the matrix.
// The adding is the costly part: one scattered read-modify-write per sample into
// a matrix far beyond L2. One thread adds every bin, without atomics (locked
// adds cannot overlap their cache misses) and prefetching the cells ahead.
//
// The bins of a call longer than kDirectRows go through the buffer in chunks;
// the labels are then checked first, on their own (for scores: the true labels).
#include "cpu/confusion_direct.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/confusion_bin_blocks.h"
#include "cpu/cpu_features.h"
#include "cpu/row_shares.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace {
#include "cpu/confusion_direct_bins.h"
}  // namespace

namespace fm::cpu {
namespace {

// Rows binned before their bins are added: 16 MiB of uint32 bins.
constexpr int64_t kDirectRows = int64_t(1) << 22;
std::atomic<int64_t> g_direct_rows{kDirectRows};

// Cells prefetched this many bins ahead of the add. Measured on Zen 3 (int64
// labels, C = 1000, one thread, N = 2^16..2^19): 16-64 ahead took 0.4-0.7x the
// time of no prefetch from N = 2^17 on (the matrix then mostly missed the cache);
// 64 was best or as good.
constexpr int64_t kPrefetchBins = 64;

// Adds the bins into the matrix, kSkipped ones as 0 into cell 0: whether a sample
// was skipped (ignored) is random, so a branch would mispredict. The cells of bins
// kPrefetchBins ahead are prefetched: the bins are known in advance (unlike in a
// plain increment loop), so more of the cache misses overlap.
template <class Bin>
void add_bins(const Bin* bins, int64_t n, Bin cells, int64_t* matrix) {
  auto add = [&](Bin bin) {
    int64_t one = bin < cells;
    Bin at = bin & (Bin(0) - Bin(one));
#if defined(__GNUC__)
    // Hides that `one` may be 0: the compiler would skip the add with a branch.
    asm("" : "+r"(one), "+r"(at));
#endif
    matrix[at] += one;
  };
  int64_t i = 0;
  for (; i < n - kPrefetchBins; ++i) {
#if defined(__GNUC__)
    // An address only: a kSkipped bin's is far outside the matrix, which a prefetch tolerates.
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(matrix) +
                                                     uintptr_t(bins[i + kPrefetchBins]) * sizeof(int64_t)), 1);
#endif
    add(bins[i]);
  }
  for (; i < n; ++i) add(bins[i]);
}

// The earliest of the threads' first invalid samples (rows are split in order).
InvalidSample earliest(const std::vector<InvalidSample>& found) {
  for (const auto& b : found)
    if (b.row >= 0) return b;
  return {};
}

void run_tasks(int64_t n, const std::function<void(int)>& task) {
  if (n == 1) task(0);
  else parallel_for(int(n), task);
}

// The binning for this call: the AVX2 build's when the CPU runs it (uint32 bins;
// uint64 bins, for C > 65535, only in the portable build).
template <class Bin>
BinRowsFn<Bin> select_binning(const ConfusionCall& call) {
#if defined(FM_HAVE_X86_KERNELS)
  if constexpr (std::is_same_v<Bin, uint32_t>) {
    const std::string isa = active_isa();
    if (isa == "avx2" || isa == "avx512") return select_direct_bins_avx2(call);
  }
#endif
  return select_bin_rows<Bin>(call);
}

template <class Bin>
InvalidSample count_direct_with(const ConfusionCall& call, PredictFn predict, int64_t bin_threads,
                                int64_t* matrix) {
  const AccuracyCall& a = call.a;
  const int64_t rows = a.N * a.M, cells = a.C * a.C;
  const BinRowsFn<Bin> bin = select_binning<Bin>(call);
  const int64_t chunk = std::min(rows, std::max<int64_t>(1, g_direct_rows.load(std::memory_order_relaxed)));
  std::vector<InvalidSample> found(bin_threads);
  if (chunk < rows) {  // the bins will be added chunk by chunk: check everything first
    run_tasks(bin_threads, [&](int i) {
      const Range range = share_of(rows, bin_threads, i);
      found[i] = bin(call, predict, range.begin, range.end, nullptr);
    });
    const InvalidSample bad = earliest(found);
    if (bad.row >= 0) return bad;
  }
  std::unique_ptr<Bin[]> bins(new Bin[size_t(chunk)]);  // every entry is written before it is read
  for (int64_t c0 = 0; c0 < rows; c0 += chunk) {
    const int64_t n = std::min(chunk, rows - c0);
    run_tasks(std::min(bin_threads, n), [&](int i) {
      const Range range = share_of(n, std::min(bin_threads, n), i);
      found[i] = bin(call, predict, c0 + range.begin, c0 + range.end, bins.get() + range.begin);
    });
    const InvalidSample bad = earliest(found);
    if (bad.row >= 0) return bad;  // only the first chunk can find one: nothing was added yet
    // One thread adds: measured on Zen 3 (2 vCPUs, int64 labels, C = 1000, N = 2^12..2^19),
    // two threads each adding the bins of half the cells took 1-2.5x as long.
    add_bins<Bin>(bins.get(), n, Bin(cells), matrix);
  }
  return {};
}

}  // namespace

void set_confusion_direct_rows(int64_t rows) {
  g_direct_rows.store(rows > 0 ? rows : kDirectRows, std::memory_order_relaxed);
}

InvalidSample count_direct(const ConfusionCall& call, PredictFn predict, int64_t bin_threads, int64_t* matrix) {
  // uint32 bins while every cell index and kSkipped fit (C <= 65535).
  if (call.a.C <= 65535) return count_direct_with<uint32_t>(call, predict, bin_threads, matrix);
  return count_direct_with<uint64_t>(call, predict, bin_threads, matrix);
}

}  // namespace fm::cpu
