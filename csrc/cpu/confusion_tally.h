// The inner loops of the CPU confusion matrix: turn a block of (true, predicted)
// label pairs into matrix bins, then count the bins into a thread's private
// uint32 tables. Typed per label dtype so labels are read in place (no int64
// staging copy) and the bin computation vectorises for contiguous labels.
//
// The ISA translation units (baseline, AVX2, AVX-512) include this header and
// compile its loops with their own flags, so every function here has internal
// linkage (static, or an unnamed namespace for CopyStarts' constructor): an
// inline definition with external linkage could be merged by the linker into one
// copy built for another ISA (an AVX-512 loop run on an AVX2-only CPU). See
// semantics/hd.h for the same rule.
#pragma once
#include <cstdint>
#include <type_traits>

namespace fm::cpu {

// One thread's private counts: `copies` tables of `cells + 1` uint32 counters.
// The extra counter per table is the dump cell where ignored and invalid samples
// land, so the counting loop never branches. Consecutive samples rotate over the
// copies: neighbouring pixels often share a bin, and back-to-back increments of
// one counter would each wait for the previous store.
struct PrivateTables {
  uint32_t* counts;
  int64_t table_size;  // cells + 1
  int copy_mask;       // copies - 1 (copies is 1, 4 or kMaxCopies)
};
constexpr int kMaxCopies = 8;

// The integer type labels are checked and bins computed in: 32 bits when both labels
// and the bin fit (a uint32 bin t * C + p wraps the same in either width), so the
// vector loop packs twice the lanes.
template <class T, class P, class Bin = uint32_t>
using BinWord = std::conditional_t<(sizeof(T) <= 4 && sizeof(P) <= 4 && sizeof(Bin) == 4), uint32_t, uint64_t>;

// The ignore label as a value of T, or "never equal" when no T holds it (the
// comparison then stays in T's own width, which keeps the loop vectorisable).
template <class T>
struct IgnoreAs {
  bool active;
  T value;
};
template <class T>
static IgnoreAs<T> ignore_as(bool has_ignore, int64_t ignore) {
  // Labels are compared as int64 readings (uint64 reinterpreted): T(ignore) read
  // back must give ignore itself.
  const T v = static_cast<T>(ignore);
  return {has_ignore && static_cast<int64_t>(v) == ignore, v};
}

// Bins of `width` samples (t[i * ts], p[i * ps]) into bins: t * C + p, or `skipped`
// for ignored or invalid samples (the private tables' dump cell C * C, the direct
// count's all-ones). Returns true when any non-ignored sample is outside [0, C) (the
// caller then finds which one and discards the bins). "Outside" is one unsigned
// compare per label: negative readings wrap to huge.
template <bool HasIgnore, class Bin, class T, class P>
static inline bool bin_block(const T* t, int64_t ts, const P* p, int64_t ps, int width, int64_t C, IgnoreAs<T> ignore,
                             Bin skipped, Bin* bins) {
  using W = BinWord<T, P, Bin>;
  const W c = W(C);
  W bad = 0;
  for (int i = 0; i < width; ++i) {
    const T ti = t[i * ts];
    const W tw = W(int64_t(ti)), pw = W(int64_t(p[i * ps]));
    const W in = W(tw < c) & W(pw < c);
    const W skip = HasIgnore ? W(ti == ignore.value) : W(0);
    bad |= ~in & ~skip & 1;
    bins[i] = (in & ~skip & 1) ? Bin(tw) * Bin(c) + Bin(pw) : skipped;  // in Bin's width: 32-bit lanes
  }
  return bad != 0;
}

// bin_block for predictions taken from scores: every p is an argmax in [0, C), so
// only the true label is checked, and the bin t * C + p (< C * C, which fits 32
// bits for 32-bit bins) is computed in 32 bits from the low halves. The check
// stays in T's own width (a 64-bit label can pass 2^32).
template <bool HasIgnore, class T>
static inline bool bin_scores_block(const T* t, int64_t ts, const int64_t* p, int width, int64_t C, IgnoreAs<T> ignore,
                                    uint32_t skipped, uint32_t* bins) {
  using W = BinWord<T, uint32_t>;
  const W c = W(C);
  const uint32_t c32 = uint32_t(C);
  W bad = 0;
  for (int i = 0; i < width; ++i) {
    const T ti = t[i * ts];
    const W tw = W(int64_t(ti));
    const W in = W(tw < c);
    const W skip = HasIgnore ? W(ti == ignore.value) : W(0);
    bad |= ~in & ~skip & 1;
    // A mask select, not a ?: (the compiler made that a branch per sample).
    const uint32_t keep = 0u - uint32_t(in & ~skip & 1);
    bins[i] = ((uint32_t(tw) * c32 + uint32_t(p[i])) & keep) | (skipped & ~keep);
  }
  return bad != 0;
}

// The rotating copies' starts for eight consecutive samples (with fewer copies
// the pattern repeats), so the counting loops index with a constant.
namespace {
struct CopyStarts {
  uint32_t* at[kMaxCopies];
  explicit CopyStarts(PrivateTables tables) {
    for (int c = 0; c < kMaxCopies; ++c) at[c] = tables.counts + (c & tables.copy_mask) * tables.table_size;
  }
};
}  // namespace

// Counts bins into the rotating copies.
static inline void count_bins(const uint32_t* bins, int width, PrivateTables tables) {
  if (tables.copy_mask == 0) {
    for (int i = 0; i < width; ++i) ++tables.counts[bins[i]];
    return;
  }
  const CopyStarts copy(tables);
  int i = 0;
  for (; i + kMaxCopies <= width; i += kMaxCopies)
    for (int c = 0; c < kMaxCopies; ++c) ++copy.at[c][bins[i + c]];
  for (; i < width; ++i) ++copy.at[i % kMaxCopies][bins[i]];
}

// A whole tally of n contiguous samples (unit strides, both labels) into the
// tables, as one ISA build writes it. Returns true when any non-ignored sample
// is outside [0, C) (the caller then finds which one and discards the tables).
using LabelTallyFn = bool (*)(const void* t, const void* p, int64_t n, int64_t C, int64_t ignore,
                              PrivateTables tables);

// The ISA builds' tallies for a label pair and C; nullptr where a build has none
// (the typed loop of confusion.cpp then runs).
#if defined(FM_HAVE_X86_KERNELS)
LabelTallyFn select_label_tally_avx2(int t_code, int p_code, int64_t C, bool has_ignore, int64_t ignore);
LabelTallyFn select_label_tally_avx512(int t_code, int p_code, int64_t C, bool has_ignore, int64_t ignore);
#endif

}  // namespace fm::cpu
