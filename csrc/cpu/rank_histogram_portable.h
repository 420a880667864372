// Portable rank-histogram kernels (several k in one pass), included by each ISA
// translation unit inside its anonymous namespace, after kernels_portable.h (whose
// load_logit, label_at and min_i64 they reuse). Every rank comes from the shared
// rule (fm::target_rank / fm::rank_step), as for the single-k kernels.

// Any layout, one row at a time; the rank stops growing at kmax.
template <int Code>
void rank_histogram_rows(const fm::AccuracyCall& call, int64_t r0, int64_t r1, int64_t* hist, int64_t* total) {
  using F = typename Logit<Code>::Compute;
  const auto* y = reinterpret_cast<const typename Logit<Code>::Storage*>(call.y);
  const int64_t C = call.C, ys_c = call.ys_c, kmax = call.k;
  int64_t counted = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const fm::RowIndex i = fm::split_row(r, call.M);
    const int64_t t = label_at(call, i);
    const int kind = fm::classify_label(t, C, call.has_ignore, call.ignore);
    if (kind == fm::kLabelIgnored) continue;
    ++counted;
    if (kind != fm::kLabelValid) {
      ++hist[kmax];
      continue;
    }
    const auto* row = y + fm::y_row_offset(call, i);
    auto load = [row, ys_c](int64_t j) { return load_logit<Code>(row, j * ys_c); };
    ++hist[fm::target_rank<F>(load, C, t, kmax)];
  }
  *total += counted;
}

// Class axis strided, samples contiguous (ys_m == 1): a block of pixels at once,
// walking the classes, as count_rows_vertical does.
template <int Code, class Label>
void rank_histogram_vertical(const fm::AccuracyCall& call, int64_t r0, int64_t r1, int64_t* hist, int64_t* total) {
  using F = typename Logit<Code>::Compute;
  constexpr int64_t kBlock = 256;
  const auto* y = reinterpret_cast<const typename Logit<Code>::Storage*>(call.y);
  int32_t label[kBlock], rank[kBlock], kind[kBlock];
  F target[kBlock];
  const int32_t C = int32_t(call.C);
  const int64_t kmax = call.k;
  int64_t counted = 0;
  for (int64_t r = r0; r < r1;) {
    const fm::RowIndex first = fm::split_row(r, call.M);
    const int width = int(min_i64(call.M - first.m, min_i64(kBlock, r1 - r)));
    const auto* base = y + fm::y_row_offset(call, first);
    const Label* labels = reinterpret_cast<const Label*>(call.t) + fm::t_row_offset(call, first);
    for (int i = 0; i < width; ++i) {
      const auto t = static_cast<int64_t>(labels[i * call.ts_m]);
      kind[i] = fm::classify_label(t, call.C, call.has_ignore, call.ignore);
      label[i] = kind[i] == fm::kLabelValid ? int32_t(t) : 0;
      target[i] = load_logit<Code>(base, label[i] * call.ys_c + i);
      rank[i] = 0;
    }
    for (int32_t c = 0; c < C; ++c) {
      const auto* run = base + c * call.ys_c;
      for (int i = 0; i < width; ++i) rank[i] += fm::rank_step<F>(load_logit<Code>(run, i), target[i], c < label[i]);
    }
    for (int i = 0; i < width; ++i) {
      if (kind[i] == fm::kLabelIgnored) continue;
      ++counted;
      ++hist[kind[i] == fm::kLabelValid ? min_i64(rank[i], kmax) : kmax];
    }
    r += width;
  }
  *total += counted;
}

template <int Code>
fm::cpu::RankHistogramFn select_rank_histogram_typed(const fm::AccuracyCall& call) {
  if (call.M > 1 && call.ys_m == 1 && call.ys_c != 1 && call.C >= 1 && call.C < (int64_t(1) << 31)) {
    return fm::with_label_type(call.t_code, [](auto label) -> fm::cpu::RankHistogramFn {
      return rank_histogram_vertical<Code, decltype(label)>;
    });
  }
  return rank_histogram_rows<Code>;
}

inline fm::cpu::RankHistogramFn select_rank_histogram_portable(const fm::AccuracyCall& call) {
  return fm::with_logit_code(call.y_code,
                             [&](auto code) { return select_rank_histogram_typed<decltype(code)::value>(call); });
}
