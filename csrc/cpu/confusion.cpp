// The CPU confusion-matrix call: walk the samples in blocks, predict (argmax of the
// scores, or read integer predictions), and tally (t, p) pairs.
//
// Two ways to keep "nothing is added on error" cheap:
//  * small matrices (C * C <= 65536 and no more cells than samples): every thread
//    tallies into its own zeroed table (no atomics, no false sharing; 4 rotating
//    copies when C <= 32, see kCopies), checking the
//    labels as it goes; the tables are added into the matrix only when no sample
//    was invalid;
//  * large matrices (zeroing per-thread tables would cost more than the samples):
//    a first pass checks the labels alone (a small read next to the scores), then
//    the threads tally straight into the matrix, with relaxed atomic adds when
//    there is more than one.
// Integer counts are order-independent, so both give the same exact result.
#include "cpu/confusion.h"

#include <algorithm>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {
namespace {

constexpr int64_t kMinBytesPerThread = int64_t(1) << 19;  // as for accuracy
constexpr int64_t kMaxPrivateCells = int64_t(1) << 16;

// width labels of code `code`, `stride` elements apart, as int64.
void load_labels(const void* base, int code, int64_t offset, int64_t stride, int width, int64_t* out) {
  with_label_type(code, [&](auto zero) {
    using T = decltype(zero);
    const T* p = static_cast<const T*>(base) + offset;
    for (int i = 0; i < width; ++i) out[i] = static_cast<int64_t>(p[i * stride]);
    return 0;
  });
}

struct Range {
  int64_t begin, end;
};

Range share_of(int64_t rows, int64_t n_threads, int64_t i) {
  const int64_t share = rows / n_threads, extra = rows % n_threads;  // rows * i could overflow
  const int64_t begin = i * share + (i < extra ? i : extra);
  return {begin, begin + share + (i < extra)};
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

// Copies of a small table that consecutive samples rotate over: neighbouring
// pixels mostly share a (t, p) bin, and back-to-back increments of one counter
// wait for each other's store; with kCopies counters in flight they overlap.
constexpr int kCopies = 4;
constexpr int64_t kMaxCopiedCells = 4096;

int copies_for(int64_t cells) { return cells * kCopies <= kMaxCopiedCells ? kCopies : 1; }

// Tallies rows [r0, r1) into table (copies_for(C * C) tables of C * C); returns
// the first invalid sample (tallying stops there: the caller discards the table).
InvalidSample tally_private(const ConfusionCall& call, PredictFn predict, int64_t r0, int64_t r1, int64_t* table) {
  InvalidSample bad;
  const AccuracyCall& a = call.a;
  const int64_t cells = a.C * a.C;
  const int copy_mask = copies_for(cells) - 1;  // 0 or kCopies - 1
  walk_blocks(call, predict, true, r0, r1, [&](int64_t r, int width, const int64_t* t, const int64_t* p) {
    if (bad.row >= 0) return;
    for (int i = 0; i < width; ++i) {
      const int64_t bin = confusion_bin(t[i], p[i], a.C, a.has_ignore, a.ignore);
      if (bin >= 0) {
        ++table[(i & copy_mask) * cells + bin];
      } else if (bin == kBinInvalid) {
        bad = {r + i, t[i], p[i]};
        return;
      }
    }
  });
  return bad;
}

// Tallies rows [r0, r1) of a checked call straight into the matrix.
void tally_direct(const ConfusionCall& call, PredictFn predict, int64_t r0, int64_t r1, int64_t* matrix,
                  bool atomic) {
  const AccuracyCall& a = call.a;
  walk_blocks(call, predict, true, r0, r1, [&](int64_t, int width, const int64_t* t, const int64_t* p) {
    for (int i = 0; i < width; ++i) {
      const int64_t bin = confusion_bin(t[i], p[i], a.C, a.has_ignore, a.ignore);
      if (bin < 0) continue;
      if (atomic) __atomic_fetch_add(matrix + bin, int64_t(1), __ATOMIC_RELAXED);
      else ++matrix[bin];
    }
  });
}

// The earliest of the threads' first invalid samples (rows are split in order).
InvalidSample earliest(const std::vector<InvalidSample>& found) {
  for (const auto& b : found)
    if (b.row >= 0) return b;
  return {};
}

}  // namespace

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
  const bool scores = predicts_from_scores(call);
  const double sample_bytes = scores ? double(a.C) * logit_itemsize(a.y_code) : double(label_itemsize(call.pred_code));
  const double bytes = double(rows) * (sample_bytes + label_itemsize(a.t_code));
  int64_t n_threads = get_num_threads();
  if (bytes < double(n_threads) * kMinBytesPerThread) n_threads = int64_t(bytes / kMinBytesPerThread);
  n_threads = std::max<int64_t>(1, std::min(n_threads, rows));
  std::vector<InvalidSample> found(n_threads);

  if (cells <= kMaxPrivateCells && cells <= rows) {
    const int64_t per_thread = copies_for(cells) * cells;
    std::vector<int64_t> tables(size_t(n_threads * per_thread), 0);
    auto run = [&](int i) {
      const Range range = share_of(rows, n_threads, i);
      found[i] = tally_private(call, predict, range.begin, range.end, tables.data() + i * per_thread);
    };
    if (n_threads == 1) run(0);
    else parallel_for(int(n_threads), run);
    const InvalidSample bad = earliest(found);
    if (bad.row >= 0) return bad;
    for (int64_t i = 0; i < n_threads * per_thread; i += cells) {
      const int64_t* table = tables.data() + i;
      for (int64_t j = 0; j < cells; ++j) matrix[j] += table[j];
    }
    return {};
  }

  // Check first (labels only), then tally into the matrix.
  auto check = [&](int i) {
    const Range range = share_of(rows, n_threads, i);
    found[i] = first_invalid(call, range.begin, range.end);
  };
  if (n_threads == 1) check(0);
  else parallel_for(int(n_threads), check);
  const InvalidSample bad = earliest(found);
  if (bad.row >= 0) return bad;
  auto tally = [&](int i) {
    const Range range = share_of(rows, n_threads, i);
    tally_direct(call, predict, range.begin, range.end, matrix, n_threads > 1);
  };
  if (n_threads == 1) tally(0);
  else parallel_for(int(n_threads), tally);
  return {};
}

}  // namespace fm::cpu
