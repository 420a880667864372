// Portable argmax kernels for the confusion matrix, written so compilers
// vectorise them. Each ISA translation unit includes this header inside its own
// anonymous namespace (as kernels_portable.h) and compiles it with its own flags.
//
// Expects cpu/confusion.h and the semantics headers (argmax_rule.h, logits.h) to
// be visible.

template <int Code>
using ConfusionLogit = fm::LogitTraits<Code>;

// Element offset between consecutive samples of one block (see PredictFn).
inline int64_t sample_stride(const fm::AccuracyCall& a) { return a.M == 1 ? a.ys_n : a.ys_m; }

// Any strides: one row at a time with the shared rule.
template <int Code>
void predict_strided(const fm::ConfusionCall& call, fm::RowIndex first, int width, int64_t* pred) {
  using L = ConfusionLogit<Code>;
  const auto* base = reinterpret_cast<const typename L::Storage*>(call.a.y) + fm::y_row_offset(call.a, first);
  const int64_t step = sample_stride(call.a), ys_c = call.a.ys_c, C = call.a.C;
  for (int i = 0; i < width; ++i) {
    const auto* row = base + i * step;
    pred[i] = fm::row_argmax<typename L::Compute>(
        [row, ys_c](int64_t j) { return fm::widen_logit<Code>(row[j * ys_c]); }, C);
  }
}

// Rows with contiguous classes (ys_c == 1; float32 rows take the AVX2 kernels
// where the ISA has them). Two passes over each (cached) row:
// the maximum with 8 independent lanes (x > m ? x : m is one vector max
// instruction, exact: NaN never replaces, so NaNs are noted on the side), then
// the first index holding it (x == m also matches a zero of the other sign,
// which is right: numpy treats -0.0 and +0.0 as equal), or the first NaN.
template <int Code>
void predict_contiguous(const fm::ConfusionCall& call, fm::RowIndex first, int width, int64_t* pred) {
  using L = ConfusionLogit<Code>;
  using F = typename L::Compute;
  constexpr int kLanes = 8;
  const auto* base = reinterpret_cast<const typename L::Storage*>(call.a.y) + fm::y_row_offset(call.a, first);
  const int64_t step = sample_stride(call.a), C = call.a.C;
  for (int i = 0; i < width; ++i) {
    const auto* row = base + i * step;
    F lane_max[kLanes];
    bool lane_nan[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      lane_max[l] = -__builtin_huge_val();
      lane_nan[l] = false;
    }
    int64_t j = 0;
    for (; j + kLanes <= C; j += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const F x = fm::widen_logit<Code>(row[j + l]);
        lane_max[l] = x > lane_max[l] ? x : lane_max[l];
        lane_nan[l] |= x != x;
      }
    }
    F m = lane_max[0];
    bool any_nan = lane_nan[0];
    for (int l = 1; l < kLanes; ++l) {
      m = lane_max[l] > m ? lane_max[l] : m;
      any_nan |= lane_nan[l];
    }
    for (; j < C; ++j) {
      const F x = fm::widen_logit<Code>(row[j]);
      m = x > m ? x : m;
      any_nan |= x != x;
    }
    int64_t index = 0;
    if (any_nan) {
      while (index < C - 1 && !(fm::widen_logit<Code>(row[index]) != fm::widen_logit<Code>(row[index]))) ++index;
    } else {
      // kLanes compares folded into a bit mask (vectorised), then its lowest bit:
      // a scalar search costs a compare and a branch per class before the maximum.
      bool found = false;
      for (; index + kLanes <= C && !found; index += kLanes) {
        unsigned hits = 0;
        for (int l = 0; l < kLanes; ++l) hits |= unsigned(fm::widen_logit<Code>(row[index + l]) == m) << l;
        if (hits) {
          index += __builtin_ctz(hits);
          found = true;
          break;
        }
      }
      while (!found && index < C - 1 && !(fm::widen_logit<Code>(row[index]) == m)) ++index;
    }
    pred[i] = index;
  }
}

// Class axis strided and samples contiguous (ys_m == 1, M > 1: the (N, C, H, W)
// layout). Walks the classes for a block of pixels at once, so every load is a
// contiguous run along m and the per-pixel select vectorises.
template <int Code>
void predict_vertical(const fm::ConfusionCall& call, fm::RowIndex first, int width, int64_t* pred) {
  using L = ConfusionLogit<Code>;
  using F = typename L::Compute;
  const auto* base = reinterpret_cast<const typename L::Storage*>(call.a.y) + fm::y_row_offset(call.a, first);
  const int64_t ys_c = call.a.ys_c;
  const int32_t C = int32_t(call.a.C);  // C < 2^31 here: 32-bit indices match float lanes
  F best[fm::cpu::kConfusionBlock];
  int32_t index[fm::cpu::kConfusionBlock];
  for (int i = 0; i < width; ++i) {
    best[i] = fm::widen_logit<Code>(base[i]);
    index[i] = 0;
  }
  for (int32_t c = 1; c < C; ++c) {
    const auto* run = base + c * ys_c;
    for (int i = 0; i < width; ++i) {
      const F x = fm::widen_logit<Code>(run[i]);
      const bool takes = fm::argmax_takes<F>(x, best[i]);
      best[i] = takes ? x : best[i];
      index[i] = takes ? c : index[i];
    }
  }
  for (int i = 0; i < width; ++i) pred[i] = index[i];
}

template <int Code>
fm::cpu::PredictFn select_predict_typed(const fm::ConfusionCall& call) {
  const fm::AccuracyCall& a = call.a;
  if (a.ys_c == 1) return predict_contiguous<Code>;
  // The vertical kernel reads class 0 of every sample: only when C >= 1.
  if (a.M > 1 && a.ys_m == 1 && a.C >= 1 && a.C < (int64_t(1) << 31)) return predict_vertical<Code>;
  return predict_strided<Code>;
}

inline fm::cpu::PredictFn select_predict_portable(const fm::ConfusionCall& call) {
  return fm::with_logit_code(call.a.y_code,
                             [&](auto code) { return select_predict_typed<decltype(code)::value>(call); });
}
