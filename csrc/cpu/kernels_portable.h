// Portable accuracy kernels, written so compilers vectorise them. Each ISA
// translation unit includes this header inside its own anonymous namespace and
// compiles it with its own flags (baseline, AVX2, AVX-512); nothing here has
// external linkage, so the linker never mixes copies built for different ISAs.
//
// Expects fm::cpu::AccuracyTask / Counts and the semantics headers to be visible.

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// Scores of one dtype, widened to the type the comparisons run in. float16 and
// bfloat16 widen to float exactly (NaN stays NaN), so the rule is unchanged.
template <int Code> struct Logit;
template <> struct Logit<fm::kF32> {
  using Storage = float;
  using Compute = float;
  static float get(const float* p, int64_t i) { return p[i]; }
};
template <> struct Logit<fm::kF64> {
  using Storage = double;
  using Compute = double;
  static double get(const double* p, int64_t i) { return p[i]; }
};
template <> struct Logit<fm::kF16> {
  using Storage = uint16_t;
  using Compute = float;
#if defined(__F16C__)  // the AVX2/AVX-512 builds: one instruction, and it vectorises
  static float get(const uint16_t* p, int64_t i) { return _cvtsh_ss(p[i]); }
#else
  static float get(const uint16_t* p, int64_t i) { return fm::half_to_float(p[i]); }
#endif
};
template <> struct Logit<fm::kBF16> {
  using Storage = uint16_t;
  using Compute = float;
  static float get(const uint16_t* p, int64_t i) { return fm::bfloat16_to_float(p[i]); }
};

// Labels of any integer dtype as int64; uint64 is reinterpreted (see classify_label).
inline int64_t read_label(const char* base, int code, int64_t index) {
  switch (code) {
    case fm::kI8: return reinterpret_cast<const int8_t*>(base)[index];
    case fm::kI16: return reinterpret_cast<const int16_t*>(base)[index];
    case fm::kI32: return reinterpret_cast<const int32_t*>(base)[index];
    case fm::kI64: return reinterpret_cast<const int64_t*>(base)[index];
    case fm::kU8: return reinterpret_cast<const uint8_t*>(base)[index];
    case fm::kU16: return reinterpret_cast<const uint16_t*>(base)[index];
    case fm::kU32: return reinterpret_cast<const uint32_t*>(base)[index];
    default: return static_cast<int64_t>(reinterpret_cast<const uint64_t*>(base)[index]);
  }
}

// Calls fn(Label{}) with a zero of the labels' C++ type, so kernels can be
// instantiated per label type without a switch at every call site.
template <class Fn>
auto with_label_type(int code, Fn&& fn) {
  switch (code) {
    case fm::kI8: return fn(int8_t{});
    case fm::kI16: return fn(int16_t{});
    case fm::kI32: return fn(int32_t{});
    case fm::kI64: return fn(int64_t{});
    case fm::kU8: return fn(uint8_t{});
    case fm::kU16: return fn(uint16_t{});
    case fm::kU32: return fn(uint32_t{});
    default: return fn(uint64_t{});
  }
}

// The loop every flat-row kernel (M == 1) shares: walk the rows and their labels,
// classify each label, and count the row as correct when rank_of(row, target) < k.
// Branch-free per row: target is a safe class index (0) for rows that do not count,
// whose rank is computed and discarded. Requires C >= 1. Task fields are copied to
// locals so the compiler keeps them in registers instead of reloading them per row.
template <class Storage, class Label, class RankOf>
fm::cpu::Counts count_flat_rows(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1, RankOf rank_of) {
  const int64_t C = task.C, ys_n = task.ys_n, ts_n = task.ts_n, k = task.k, ignore = task.ignore;
  const bool has_ignore = task.has_ignore;
  const Storage* row = reinterpret_cast<const Storage*>(task.y) + r0 * ys_n;
  const Label* label = reinterpret_cast<const Label*>(task.t) + r0 * ts_n;
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

inline int64_t label_at(const fm::cpu::AccuracyTask& task, int64_t n, int64_t m) {
  return read_label(task.t, task.t_code, n * task.ts_n + m * task.ts_m);
}

// Any layout, one row at a time, stopping once k classes rank above the target.
template <int Code>
fm::cpu::Counts count_rows_strided(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  using L = Logit<Code>;
  using F = typename L::Compute;
  const auto* y = reinterpret_cast<const typename L::Storage*>(task.y);
  fm::cpu::Counts counts;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = task.M == 1 ? r : r / task.M, m = task.M == 1 ? 0 : r % task.M;
    const int64_t t = label_at(task, n, m);
    const int kind = fm::classify_label(t, task.C, task.has_ignore, task.ignore);
    if (kind == fm::kLabelIgnored) continue;
    ++counts.total;
    if (kind != fm::kLabelValid) continue;
    const auto* row = y + n * task.ys_n + m * task.ys_m;
    const int64_t ys_c = task.ys_c;
    auto load = [row, ys_c](int64_t j) { return L::get(row, j * ys_c); };
    counts.correct += fm::target_rank<F>(load, task.C, t, task.k) < task.k;
  }
  return counts;
}

// Rows whose classes are contiguous (ys_c == 1): the before/after split of the
// rule gives two compare-and-count loops with no per-element branch.
template <int Code>
fm::cpu::Counts count_rows_contiguous(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  using L = Logit<Code>;
  using F = typename L::Compute;
  const auto* y = reinterpret_cast<const typename L::Storage*>(task.y);
  fm::cpu::Counts counts;
  const int64_t C = task.C;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = task.M == 1 ? r : r / task.M, m = task.M == 1 ? 0 : r % task.M;
    const int64_t t = label_at(task, n, m);
    const int kind = fm::classify_label(t, C, task.has_ignore, task.ignore);
    if (kind == fm::kLabelIgnored) continue;
    ++counts.total;
    if (kind != fm::kLabelValid) continue;
    const auto* row = y + n * task.ys_n + m * task.ys_m;
    const F v = L::get(row, t);
    int64_t rank = 0;
    if (v != v) {
      for (int64_t j = 0; j < t; ++j) rank += fm::rank_step<F>(L::get(row, j), v, true);
    } else {
      for (int64_t j = 0; j < t; ++j) rank += fm::ranks_above_before_target<F>(L::get(row, j), v);
      for (int64_t j = t + 1; j < C; ++j) rank += fm::ranks_above_after_target<F>(L::get(row, j), v);
    }
    counts.correct += rank < task.k;
  }
  return counts;
}

// Class axis strided and samples contiguous along m (ys_m == 1: images, sequences
// in (N, C, d1, ...) layout). Works on a block of pixels at once and walks the
// classes, so every load is a contiguous run along m and the inner loop vectorises.
template <int Code, class Label>
fm::cpu::Counts count_rows_vertical(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  using L = Logit<Code>;
  using F = typename L::Compute;
  constexpr int64_t kBlock = 256;
  const auto* y = reinterpret_cast<const typename L::Storage*>(task.y);
  fm::cpu::Counts counts;
  int32_t label[kBlock];  // C < 2^31 here: 32-bit lanes match float scores
  F target[kBlock];
  int32_t rank[kBlock];
  int32_t valid[kBlock];
  const int32_t C = int32_t(task.C);
  for (int64_t r = r0; r < r1;) {
    const int64_t n = r / task.M, m0 = r % task.M;
    const int64_t m1 = min_i64(task.M, m0 + min_i64(kBlock, r1 - r));
    const int width = int(m1 - m0);
    const auto* base = y + n * task.ys_n + m0;  // ys_m == 1
    const Label* labels = reinterpret_cast<const Label*>(task.t) + n * task.ts_n + m0 * task.ts_m;
    for (int i = 0; i < width; ++i) {  // branch-free: labels are random from pixel to pixel
      const auto t = static_cast<int64_t>(labels[i * task.ts_m]);
      const int kind = fm::classify_label(t, task.C, task.has_ignore, task.ignore);
      counts.total += kind != fm::kLabelIgnored;
      valid[i] = kind == fm::kLabelValid;
      label[i] = valid[i] ? int32_t(t) : 0;
      target[i] = L::get(base, label[i] * task.ys_c + i);
      rank[i] = 0;
    }
    for (int32_t c = 0; c < C; ++c) {
      const auto* run = base + c * task.ys_c;
      for (int i = 0; i < width; ++i) rank[i] += fm::rank_step<F>(L::get(run, i), target[i], c < label[i]);
    }
    for (int64_t i = 0; i < width; ++i) counts.correct += valid[i] & (rank[i] < task.k);
    r += width;
  }
  return counts;
}

template <int Code>
fm::cpu::Counts count_rows_portable_typed(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  if (task.ys_c == 1) return count_rows_contiguous<Code>(task, r0, r1);
  // The vertical kernel reads class 0 for rows it then masks out: only safe when C >= 1.
  if (task.M > 1 && task.ys_m == 1 && task.C >= 1 && task.C < (int64_t(1) << 31)) {
    return with_label_type(task.t_code, [&](auto label) {
      return count_rows_vertical<Code, decltype(label)>(task, r0, r1);
    });
  }
  return count_rows_strided<Code>(task, r0, r1);
}

inline fm::cpu::Counts count_rows_portable(const fm::cpu::AccuracyTask& task, int64_t r0, int64_t r1) {
  switch (task.y_code) {
    case fm::kF16: return count_rows_portable_typed<fm::kF16>(task, r0, r1);
    case fm::kBF16: return count_rows_portable_typed<fm::kBF16>(task, r0, r1);
    case fm::kF32: return count_rows_portable_typed<fm::kF32>(task, r0, r1);
    default: return count_rows_portable_typed<fm::kF64>(task, r0, r1);
  }
}
