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
#include <type_traits>
#include <vector>

#include "cpu/confusion_tally.h"
#include "cpu/row_shares.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

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

// The bin of a skipped sample (ignored or invalid): all ones, beyond every cell
// (C * C <= 65535^2 < 2^32 - 1 for uint32 bins).
template <class Bin>
constexpr Bin kSkipped = ~Bin(0);

// Bins of `width` samples (t[i * ts], p[i * ps]): t * C + p, or kSkipped.
// Returns true when a non-ignored sample is outside [0, C). The range check runs
// in 32 bits when both labels fit (so the loop packs more lanes), else in 64; the
// bin itself fits Bin once both labels are known to be < C.
template <bool HasIgnore, class Bin, class T, class P>
inline bool bins_of_block(const T* t, int64_t ts, const P* p, int64_t ps, int width, int64_t C,
                          IgnoreAs<T> ignore, Bin* bins) {
  using Check = std::conditional_t<(sizeof(T) <= 4 && sizeof(P) <= 4 && sizeof(Bin) == 4), uint32_t, uint64_t>;
  const Check c = Check(C);
  Check bad = 0;
  for (int i = 0; i < width; ++i) {
    const T ti = t[i * ts];
    const Check tw = Check(int64_t(ti)), pw = Check(int64_t(p[i * ps]));
    const Check in = Check(tw < c) & Check(pw < c);
    const Check skip = HasIgnore ? Check(ti == ignore.value) : Check(0);
    bad |= ~in & ~skip & 1;
    bins[i] = (in & ~skip & 1) ? Bin(tw) * Bin(c) + Bin(pw) : kSkipped<Bin>;
  }
  return bad != 0;
}

// Bins rows [r0, r1) into bins[0, r1 - r0), or, with bins == nullptr, only checks
// their labels (scores are then not read: their predictions are always valid).
// Returns the first invalid sample.
template <bool HasIgnore, class Bin, class T, class P>
InvalidSample bin_rows(const ConfusionCall& call, PredictFn predict, int64_t r0, int64_t r1, Bin* bins) {
  const AccuracyCall& a = call.a;
  const IgnoreAs<T> ignore = ignore_as<T>(a.has_ignore, a.ignore);
  const bool scores = predict != nullptr;
  // Flat rows (M == 1) form one run across n; so do (N, M) labels stored as one
  // run. Blocks of predicted samples stay inside one n (see PredictFn).
  const bool one_run = a.M == 1 || (!scores && a.ts_n == a.M * a.ts_m && a.ys_n == a.M * a.ys_m);
  const int64_t t_step = a.M == 1 ? a.ts_n : a.ts_m, y_step = a.M == 1 ? a.ys_n : a.ys_m;
  int64_t predicted[kConfusionBlock] = {};  // all 0 (valid) when only checking
  Bin scratch[kConfusionBlock];
  for (int64_t r = r0; r < r1;) {
    const RowIndex first = split_row(r, a.M);
    const int64_t run = one_run ? r1 - r : a.M - first.m;
    const int width = int(std::min<int64_t>({kConfusionBlock, r1 - r, run}));
    const T* t = static_cast<const T*>(a.t) + t_row_offset(a, first);
    const P* p;
    int64_t p_step;
    if constexpr (std::is_same_v<P, int64_t>) {
      if (scores && bins) predict(call, first, width, predicted);
      p = scores ? predicted : static_cast<const P*>(a.y) + y_row_offset(a, first);
      p_step = scores ? 1 : y_step;
    } else {
      p = static_cast<const P*>(a.y) + y_row_offset(a, first);
      p_step = y_step;
    }
    Bin* out = bins ? bins + (r - r0) : scratch;
    // Unit strides get their own (vectorised) copy of the loop.
    const bool bad = t_step == 1 && p_step == 1
                         ? bins_of_block<HasIgnore>(t, 1, p, 1, width, a.C, ignore, out)
                         : bins_of_block<HasIgnore>(t, t_step, p, p_step, width, a.C, ignore, out);
    if (bad) {
      for (int i = 0; i < width; ++i) {
        const int64_t ti = int64_t(t[i * t_step]), pi = int64_t(p[i * p_step]);
        if (confusion_bin(ti, pi, a.C, a.has_ignore, a.ignore) == kBinInvalid) return {r + i, ti, pi};
      }
    }
    r += width;
  }
  return {};
}

template <class Bin>
using BinRowsFn = InvalidSample (*)(const ConfusionCall&, PredictFn, int64_t, int64_t, Bin*);

template <class Bin, class T>
BinRowsFn<Bin> bin_rows_for_true_type(const ConfusionCall& call) {
  const bool ignore = ignore_as<T>(call.a.has_ignore, call.a.ignore).active;
  if (predicts_from_scores(call))
    return ignore ? bin_rows<true, Bin, T, int64_t> : bin_rows<false, Bin, T, int64_t>;
  return with_label_type(call.pred_code, [&](auto zero) -> BinRowsFn<Bin> {
    using P = decltype(zero);
    return ignore ? bin_rows<true, Bin, T, P> : bin_rows<false, Bin, T, P>;
  });
}

// Adds the bins in [lo, hi) into the matrix. Other bins (another thread's cells,
// kSkipped) add 0 to cell lo instead: which bins are whose is random, so a branch
// would mispredict. The cells of bins kPrefetchBins ahead are prefetched (the
// bins are known in advance, unlike in a plain increment loop), so more of the
// cache misses overlap.
// Adds the bins into the matrix, kSkipped ones as 0 into cell 0: whether a sample
// was skipped (ignored) is random, so a branch would mispredict. The cells of bins
// kPrefetchBins ahead are prefetched: the bins are known in advance (unlike in a
// plain increment loop), so more of the cache misses overlap.
template <class Bin>
void add_bins(const Bin* bins, int64_t n, Bin cells, int64_t* matrix) {
  auto add = [&](Bin bin) {
    int64_t one = bin < cells;
    Bin at = bin & (Bin(0) - Bin(one));
    // Hides that `one` may be 0: the compiler would skip the add with a branch.
    asm("" : "+r"(one), "+r"(at));
    matrix[at] += one;
  };
  int64_t i = 0;
  for (; i < n - kPrefetchBins; ++i) {
    // An address only: a kSkipped bin's is far outside the matrix, which a prefetch tolerates.
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(matrix) +
                                                     uintptr_t(bins[i + kPrefetchBins]) * sizeof(int64_t)), 1);
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

template <class Bin>
InvalidSample count_direct_with(const ConfusionCall& call, PredictFn predict, int64_t bin_threads,
                                int64_t* matrix) {
  const AccuracyCall& a = call.a;
  const int64_t rows = a.N * a.M, cells = a.C * a.C;
  const BinRowsFn<Bin> bin =
      with_label_type(a.t_code, [&](auto zero) { return bin_rows_for_true_type<Bin, decltype(zero)>(call); });
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
