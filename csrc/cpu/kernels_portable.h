// Portable accuracy kernels, written so compilers vectorise them. Each ISA
// translation unit includes this header inside its own anonymous namespace and
// compiles it with its own flags (baseline, AVX2, AVX-512); nothing here has
// external linkage, so the linker never mixes copies built for different ISAs.
//
// Expects fm::cpu::Counts and the semantics headers (accuracy_call.h, accuracy_rule.h,
// logits.h) to be visible.

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

template <int Code>
using Logit = fm::LogitTraits<Code>;

// Score i of a row, widened to the type the rule compares in.
template <int Code>
typename Logit<Code>::Compute load_logit(const typename Logit<Code>::Storage* p, int64_t i) {
  return fm::widen_logit<Code>(p[i]);
}

// Scores [0, n) of a run, widened into dst. float16 goes 8 at a time through F16C in
// the builds that have it (the scalar conversion does not vectorise); bfloat16 is a
// shift the compiler vectorises.
template <int Code>
void widen_run(const typename Logit<Code>::Storage* src, typename Logit<Code>::Compute* dst, int n) {
  int i = 0;
#if defined(__F16C__)
  if constexpr (Code == fm::kF16) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
#endif
  for (; i < n; ++i) dst[i] = fm::widen_logit<Code>(src[i]);
}

inline int64_t label_at(const fm::AccuracyCall& call, fm::RowIndex i) {
  return fm::read_label(call.t, call.t_code, fm::t_row_offset(call, i), [](const auto* p) { return *p; });
}

// The loop every flat-row kernel (M == 1) shares: walk the rows and their labels,
// classify each label, and count the row as correct when rank_of(row, target) < k.
// Branch-free per row: target is a safe class index (0) for rows that do not count,
// whose rank is computed and discarded. Requires C >= 1. Task fields are copied to
// locals so the compiler keeps them in registers instead of reloading them per row.
template <class Storage, class Label, class RankOf>
fm::cpu::Counts count_flat_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1, RankOf rank_of) {
  const int64_t C = call.C, ys_n = call.ys_n, ts_n = call.ts_n, k = call.k, ignore = call.ignore;
  const bool has_ignore = call.has_ignore;
  const Storage* row = reinterpret_cast<const Storage*>(call.y) + r0 * ys_n;
  const Label* label = reinterpret_cast<const Label*>(call.t) + r0 * ts_n;
  int64_t correct = 0, total = 0;
  for (int64_t n = r0; n < r1; ++n, row += ys_n, label += ts_n) {
    const auto t = static_cast<int64_t>(*label);
    const int kind = fm::classify_label(t, C, has_ignore, ignore);
    const int64_t target = kind == fm::kLabelValid ? t : 0;
    const int64_t rank = rank_of(row, target);
    total += kind != fm::kLabelIgnored;
    correct += (kind == fm::kLabelValid) & (rank < k);
  }
  return {correct, total};
}

// The loop of the one-row-at-a-time kernels: classify each row's label, count
// the non-ignored rows, and add is_correct(row, t) for rows with a valid label
// (bounds checked before any score is read).
template <class IsCorrect>
fm::cpu::Counts count_labelled_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1, IsCorrect is_correct) {
  fm::cpu::Counts counts;
  for (int64_t r = r0; r < r1; ++r) {
    const fm::RowIndex i = fm::split_row(r, call.M);
    const int64_t t = label_at(call, i);
    const int kind = fm::classify_label(t, call.C, call.has_ignore, call.ignore);
    if (kind == fm::kLabelIgnored) continue;
    ++counts.total;
    if (kind != fm::kLabelValid) continue;
    counts.correct += is_correct(i, t);
  }
  return counts;
}

// Any layout, one row at a time, stopping once k classes rank above the target.
template <int Code>
fm::cpu::Counts count_rows_strided(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using F = typename Logit<Code>::Compute;
  const auto* y = reinterpret_cast<const typename Logit<Code>::Storage*>(call.y);
  const int64_t C = call.C, ys_c = call.ys_c, k = call.k;
  return count_labelled_rows(call, r0, r1, [=, &call](fm::RowIndex i, int64_t t) {
    const auto* row = y + fm::y_row_offset(call, i);
    auto load = [row, ys_c](int64_t j) { return load_logit<Code>(row, j * ys_c); };
    return fm::target_rank<F>(load, C, t, k) < k;
  });
}

// Rows whose classes are contiguous (ys_c == 1): the before/after split of the
// rule gives two compare-and-count loops with no per-element branch.
template <int Code>
fm::cpu::Counts count_rows_contiguous(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using F = typename Logit<Code>::Compute;
  const auto* y = reinterpret_cast<const typename Logit<Code>::Storage*>(call.y);
  const int64_t C = call.C, k = call.k;
  return count_labelled_rows(call, r0, r1, [=, &call](fm::RowIndex i, int64_t t) {
    const auto* row = y + fm::y_row_offset(call, i);
    const F v = load_logit<Code>(row, t);
    int64_t rank = 0;
    if (v != v) {
      for (int64_t j = 0; j < t; ++j) rank += fm::rank_step<F>(load_logit<Code>(row, j), v, true);
    } else {
      for (int64_t j = 0; j < t; ++j) rank += fm::ranks_above_before_target<F>(load_logit<Code>(row, j), v);
      for (int64_t j = t + 1; j < C; ++j) rank += fm::ranks_above_after_target<F>(load_logit<Code>(row, j), v);
    }
    return rank < k;
  });
}

// Class axis strided and samples contiguous along m (ys_m == 1: images, sequences
// in (N, C, d1, ...) layout). Works on a block of pixels at once and walks the
// classes, so every load is a contiguous run along m and the inner loops vectorise.
// float16/bfloat16 runs are widened into a float buffer first (8 at a time with F16C):
// converting inside the compare loop keeps the compiler from vectorising it.
template <int Code, class Label>
fm::cpu::Counts count_rows_vertical(const fm::AccuracyCall& call, int64_t r0, int64_t r1) {
  using L = Logit<Code>;
  using S = typename L::Storage;
  using F = typename L::Compute;
  constexpr int kBlock = 256;
  constexpr bool kWiden = !std::is_same<S, F>::value;
  const auto* y = static_cast<const S*>(call.y);
  fm::cpu::Counts counts;
  int32_t label[kBlock];  // C < 2^31 here: 32-bit lanes match float scores
  F target[kBlock];
  F widened[kWiden ? kBlock : 1];
  int32_t rank[kBlock];
  int32_t valid[kBlock];
  const int32_t C = int32_t(call.C);
  // The scores of class c over the block's pixels, as F.
  const auto scores_of = [&](const S* run, int width) -> const F* {
    if constexpr (kWiden) {
      widen_run<Code>(run, widened, width);
      return widened;
    } else {
      return run;
    }
  };
  for (int64_t r = r0; r < r1;) {
    const fm::RowIndex first = fm::split_row(r, call.M);
    const int width = int(min_i64(call.M - first.m, min_i64(kBlock, r1 - r)));
    const S* base = y + fm::y_row_offset(call, first);  // ys_m == 1: the block's rows are a run
    const Label* labels = reinterpret_cast<const Label*>(call.t) + fm::t_row_offset(call, first);
    for (int i = 0; i < width; ++i) {  // branch-free: labels are random from pixel to pixel
      const auto t = static_cast<int64_t>(labels[i * call.ts_m]);
      const int kind = fm::classify_label(t, call.C, call.has_ignore, call.ignore);
      counts.total += kind != fm::kLabelIgnored;
      valid[i] = kind == fm::kLabelValid;
      label[i] = valid[i] ? int32_t(t) : 0;
      rank[i] = 0;
    }
    for (int i = 0; i < width; ++i) target[i] = load_logit<Code>(base, label[i] * call.ys_c + i);
    for (int32_t c = 0; c < C; ++c) {
      const F* x = scores_of(base + c * call.ys_c, width);
      for (int i = 0; i < width; ++i) rank[i] += fm::rank_step<F>(x[i], target[i], c < label[i]);
    }
    for (int i = 0; i < width; ++i) counts.correct += valid[i] & (rank[i] < call.k);
    r += width;
  }
  return counts;
}

// The portable kernel for a call's layout (chosen once per plan).
template <int Code>
fm::cpu::CountRowsFn select_portable_typed(const fm::AccuracyCall& call) {
  if (call.ys_c == 1) return count_rows_contiguous<Code>;
  // The vertical kernel reads class 0 for rows it then masks out: only safe when C >= 1.
  if (call.M > 1 && call.ys_m == 1 && call.C >= 1 && call.C < (int64_t(1) << 31)) {
    return fm::with_label_type(call.t_code, [](auto label) -> fm::cpu::CountRowsFn {
      return count_rows_vertical<Code, decltype(label)>;
    });
  }
  return count_rows_strided<Code>;
}

inline fm::cpu::CountRowsFn select_portable(const fm::AccuracyCall& call) {
  return fm::with_logit_code(call.y_code, [&](auto code) { return select_portable_typed<decltype(code)::value>(call); });
}
