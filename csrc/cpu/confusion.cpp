// The CPU confusion-matrix call: walk the samples in blocks, predict (argmax of the
// scores, or read integer predictions), and tally (t, p) pairs.
//
// Two ways to keep "nothing is added on error" cheap:
//  * matrices up to 2^22 cells with no more cells than samples: every thread
//    tallies into its own zeroed uint32 tables (no atomics, no false sharing;
//    8 or 4 rotating copies for small matrices, see PrivateTables), checking the
//    labels as it goes; the tables are added into the matrix only when no sample
//    was invalid. Labels are read in place by a loop typed per label dtype pair;
//  * larger matrices (zeroing per-thread tables would cost more than the samples):
//    the samples are binned into a buffer first and the bins added into the
//    matrix once all were valid (confusion_direct.cpp).
// Integer counts are order-independent, so both give the same exact result.
#include "cpu/confusion.h"
#include "cpu/confusion_bin_blocks.h"
#include "cpu/confusion_direct.h"
#include "cpu/confusion_tally.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <type_traits>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/row_shares.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {
namespace {

constexpr int64_t kMinBytesPerThread = int64_t(1) << 19;  // as for accuracy

// width labels of code `code`, `stride` elements apart, as int64.
void load_labels(const void* base, int code, int64_t offset, int64_t stride, int width, int64_t* out) {
  with_label_type(code, [&](auto zero) {
    using T = decltype(zero);
    const T* p = static_cast<const T*>(base) + offset;
    for (int i = 0; i < width; ++i) out[i] = static_cast<int64_t>(p[i * stride]);
    return 0;
  });
}

// Walks rows [r0, r1) in blocks (inside one batch index n when M > 1); for each block
// calls on_block(r, width, t, p). With predict == nullptr and scores, p is not
// filled (the check pass needs the true labels only).
template <class OnBlock>
void walk_blocks(const ConfusionCall& call, PredictFn predict, bool need_p, int64_t r0, int64_t r1,
                 OnBlock on_block) {
  const AccuracyCall& a = call.a;
  int64_t t[kConfusionBlock], p[kConfusionBlock];
  const int64_t t_step = a.M == 1 ? a.ts_n : a.ts_m, y_step = a.M == 1 ? a.ys_n : a.ys_m;
  for (int64_t r = r0; r < r1;) {
    const RowIndex first = split_row(r, a.M);
    // Flat rows (M == 1) form one run across n; otherwise a block stays inside one n.
    const int64_t run = a.M == 1 ? r1 - r : a.M - first.m;
    const int width = int(std::min<int64_t>({kConfusionBlock, r1 - r, run}));
    load_labels(a.t, a.t_code, t_row_offset(a, first), t_step, width, t);
    if (predicts_from_scores(call)) {
      if (need_p) predict(call, first, width, p);
    } else {
      load_labels(a.y, call.pred_code, y_row_offset(a, first), y_step, width, p);
    }
    on_block(r, width, t, p);
    r += width;
  }
}

// The first invalid sample of rows [r0, r1), or row -1. With scores, p is 0 (< C).
InvalidSample first_invalid(const ConfusionCall& call, int64_t r0, int64_t r1) {
  InvalidSample bad;
  const AccuracyCall& a = call.a;
  const bool scores = predicts_from_scores(call);
  walk_blocks(call, nullptr, false, r0, r1, [&](int64_t r, int width, const int64_t* t, const int64_t* p) {
    if (bad.row >= 0) return;
    for (int i = 0; i < width; ++i) {
      const int64_t pi = scores ? 0 : p[i];
      if (confusion_bin(t[i], pi, a.C, a.has_ignore, a.ignore) == kBinInvalid) {
        bad = {r + i, t[i], pi};
        return;
      }
    }
  });
  return bad;
}

// The earliest of the threads' first invalid samples (rows are split in order).
InvalidSample earliest(const std::vector<InvalidSample>& found) {
  for (const auto& b : found)
    if (b.row >= 0) return b;
  return {};
}

// The private tables' sink of bin_blocks: each block's bins are counted at once.
struct CountIntoTables {
  PrivateTables tables;
  bool predicts() const { return true; }
  uint32_t* bins_at(int64_t) { return nullptr; }  // the walk's own block
  void take(const uint32_t* bins, int width) { count_bins(bins, width, tables); }
};

// Tallies rows [r0, r1) into a thread's private tables, reading labels of type T
// (true) and P (predicted; int64 predictions of `predict` when there are scores)
// in place; skipped samples land in the dump cell C * C. Returns the first invalid
// sample (tallying stops there: the caller discards the tables).
template <bool HasIgnore, class T, class P>
InvalidSample tally_private(const ConfusionCall& call, PredictFn predict, int64_t r0, int64_t r1,
                            PrivateTables tables) {
  CountIntoTables sink{tables};
  return bin_blocks<HasIgnore, uint32_t, T, P>(call, predict, r0, r1, uint32_t(call.a.C * call.a.C), sink);
}

using TallyFn = InvalidSample (*)(const ConfusionCall&, PredictFn, int64_t, int64_t, PrivateTables);

template <class T>
TallyFn tally_for_true_type(const ConfusionCall& call) {
  const bool ignore = ignore_as<T>(call.a.has_ignore, call.a.ignore).active;
  if (predicts_from_scores(call))
    return ignore ? tally_private<true, T, int64_t> : tally_private<false, T, int64_t>;
  return with_label_type(call.pred_code, [&](auto zero) -> TallyFn {
    using P = decltype(zero);
    return ignore ? tally_private<true, T, P> : tally_private<false, T, P>;
  });
}

TallyFn select_tally(const ConfusionCall& call) {
  return with_label_type(call.a.t_code, [&](auto zero) { return tally_for_true_type<decltype(zero)>(call); });
}

// The active ISA's tally of contiguous integer labels (see LabelTallyFn), or
// nullptr: with scores, strided labels, or a label pair and C no build handles.
LabelTallyFn select_label_tally(const ConfusionCall& call) {
#if defined(FM_HAVE_X86_KERNELS)
  const AccuracyCall& a = call.a;
  if (predicts_from_scores(call)) return nullptr;
  const bool unit_steps = a.M == 1 ? a.ts_n == 1 && a.ys_n == 1 : a.ts_m == 1 && a.ys_m == 1;
  if (!unit_steps) return nullptr;
  const std::string isa = active_isa();
  if (isa == "avx512") return select_label_tally_avx512(a.t_code, call.pred_code, a.C, a.has_ignore, a.ignore);
  if (isa == "avx2") return select_label_tally_avx2(a.t_code, call.pred_code, a.C, a.has_ignore, a.ignore);
#endif
  return nullptr;
}

// Tallies rows [r0, r1) with a LabelTallyFn, one contiguous run at a time (the
// whole range when the (N, M) labels are stored as one run). Returns the first
// invalid sample, found by the checking walk once a run reports one.
InvalidSample tally_label_runs(const ConfusionCall& call, LabelTallyFn tally, int64_t r0, int64_t r1,
                               PrivateTables tables) {
  const AccuracyCall& a = call.a;
  const bool one_run = a.M == 1 || (a.ts_n == a.M && a.ys_n == a.M);
  const auto* t_bytes = static_cast<const char*>(a.t);
  const auto* p_bytes = static_cast<const char*>(a.y);
  const int64_t t_size = label_itemsize(a.t_code), p_size = label_itemsize(call.pred_code);
  for (int64_t r = r0; r < r1;) {
    const RowIndex first = split_row(r, a.M);
    const int64_t width = one_run ? r1 - r : std::min(r1 - r, a.M - first.m);
    if (tally(t_bytes + t_row_offset(a, first) * t_size, p_bytes + y_row_offset(a, first) * p_size, width, a.C,
              a.ignore, tables))
      return first_invalid(call, r, r + width);
    r += width;
  }
  return {};
}

// How often a thread moves its uint32 counters into int64 ones: no counter can
// then pass 2^32 - 1. Settable (smaller) so tests reach the spill path.
std::atomic<int64_t> g_spill_rows{int64_t(UINT32_MAX)};

// Rotating copies pay off while they stay in L1/L2 and their zeroing is small
// next to the samples: 8 copies while they fit a 32 KiB L1 (measured: they help
// runs of one bin, and cost uniform labels once past L1), else 4 up to 64 KiB.
constexpr int64_t kMaxCopiedCounters = 16384;
constexpr int64_t kMaxCountersInL1 = 8192;
// Private tables up to this many counters per copy (16 MiB of uint32).
constexpr int64_t kMaxPrivateCounters = int64_t(1) << 22;

// Rotating copies of a table of `size` counters, for `share` samples per thread.
int copies_for(int64_t size, int64_t share) {
  if (kMaxCopies * size <= std::min(kMaxCountersInL1, share)) return kMaxCopies;
  if (4 * size <= std::min(kMaxCopiedCounters, share)) return 4;
  return 1;
}

// Counts with private tables: each thread tallies its share into its own zeroed
// uint32 tables (spilling into int64 ones every g_spill_rows rows); only when no
// sample was invalid are the tables added into the matrix.
InvalidSample count_private(const ConfusionCall& call, PredictFn predict, int64_t rows, int64_t n_threads,
                            int64_t* matrix) {
  const int64_t cells = call.a.C * call.a.C, size = cells + 1;
  const int copies = copies_for(size, rows / n_threads);
  const int64_t per_thread = copies * size;
  const TallyFn tally = select_tally(call);
  const LabelTallyFn label_tally = predict ? nullptr : select_label_tally(call);
  const int64_t spill_rows = std::max<int64_t>(1, g_spill_rows.load(std::memory_order_relaxed));
  std::unique_ptr<uint32_t[]> counts(new uint32_t[size_t(n_threads * per_thread)]);
  // Allocated here: a worker thread must not throw.
  std::vector<std::vector<int64_t>> spilled(n_threads);
  for (int64_t i = 0; i < n_threads; ++i) {
    const Range range = share_of(rows, n_threads, i);
    if (range.end - range.begin > spill_rows) spilled[i].assign(size_t(cells), 0);
  }
  std::vector<InvalidSample> found(n_threads);
  auto run = [&](int i) {
    uint32_t* mine = counts.get() + i * per_thread;
    std::fill(mine, mine + per_thread, 0u);  // on the thread that uses them
    const PrivateTables tables{mine, size, copies - 1};
    const Range range = share_of(rows, n_threads, i);
    for (int64_t begin = range.begin; begin < range.end;) {
      const int64_t end = std::min(range.end, begin + spill_rows);
      found[i] = label_tally ? tally_label_runs(call, label_tally, begin, end, tables)
                             : tally(call, predict, begin, end, tables);
      if (found[i].row >= 0) return;
      begin = end;
      if (begin == range.end) break;
      std::vector<int64_t>& spill = spilled[i];
      for (int c = 0; c < copies; ++c)
        for (int64_t j = 0; j < cells; ++j) spill[j] += mine[c * size + j];
      std::fill(mine, mine + per_thread, 0u);
    }
  };
  if (n_threads == 1) run(0);
  else parallel_for(int(n_threads), run);
  const InvalidSample bad = earliest(found);
  if (bad.row >= 0) return bad;
  // Each thread adds every table's counts for its slice of the cells.
  auto merge = [&](int i) {
    const Range slice = share_of(cells, n_threads, i);
    for (int64_t k = 0; k < n_threads * copies; ++k) {
      const uint32_t* table = counts.get() + k * size;
      for (int64_t j = slice.begin; j < slice.end; ++j) matrix[j] += table[j];
    }
    for (const auto& spill : spilled)
      if (!spill.empty())
        for (int64_t j = slice.begin; j < slice.end; ++j) matrix[j] += spill[j];
  };
  if (n_threads == 1 || cells < (int64_t(1) << 16)) {
    for (int i = 0; i < n_threads; ++i) merge(i);
  } else {
    parallel_for(int(n_threads), merge);
  }
  return {};
}

}  // namespace

void set_confusion_spill_rows(int64_t rows) {
  g_spill_rows.store(rows > 0 ? std::min<int64_t>(rows, UINT32_MAX) : int64_t(UINT32_MAX), std::memory_order_relaxed);
}

PredictFn select_predict(const ConfusionCall& call) {
  if (!predicts_from_scores(call)) return nullptr;
#if defined(FM_HAVE_X86_KERNELS)
  const std::string isa = active_isa();
  if (isa == "avx512") return select_predict_avx512(call);
  if (isa == "avx2") return select_predict_avx2(call);
#endif
  return select_predict_baseline(call);
}

InvalidSample count_confusion(const ConfusionCall& call, PredictFn predict, int64_t* matrix) {
  const AccuracyCall& a = call.a;
  const int64_t rows = a.N * a.M, cells = a.C * a.C;
  if (rows == 0) return {};
  if (cells == 0) return first_invalid(call, 0, rows);  // C = 0: every sample not ignored is out of range
  const bool scores = predicts_from_scores(call);
  const double sample_bytes = scores ? double(a.C) * logit_itemsize(a.y_code) : double(label_itemsize(call.pred_code));
  const double bytes = double(rows) * (sample_bytes + label_itemsize(a.t_code));
  int64_t n_threads = get_num_threads();
  if (bytes < double(n_threads) * kMinBytesPerThread) n_threads = int64_t(bytes / kMinBytesPerThread);
  n_threads = std::max<int64_t>(1, std::min(n_threads, rows));

  // Private tables while zeroing them costs no more than a counter per sample.
  if (cells + 1 <= kMaxPrivateCounters && cells <= rows)
    return count_private(call, predict, rows, std::max<int64_t>(1, std::min(n_threads, rows / cells)), matrix);

  return count_direct(call, predict, n_threads, matrix);
}

}  // namespace fm::cpu
