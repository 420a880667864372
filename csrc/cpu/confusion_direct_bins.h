// The binning of the direct confusion count (included, inside an anonymous
// namespace, by confusion_direct.cpp and the ISA builds' confusion_direct_*.cpp, so
// each compiles the loops with its own flags; it needs <algorithm>, <type_traits>,
// cpu/confusion.h, cpu/confusion_tally.h and semantics/dtypes.h): samples become
// matrix bins, labels read in place by a loop typed per label dtype pair.

// The bin of a skipped sample (ignored or invalid): all ones, beyond every cell
// (C * C <= 65535^2 < 2^32 - 1 for uint32 bins).
template <class Bin>
constexpr Bin kSkipped = ~Bin(0);

// Bins rows [r0, r1) into bins[0, r1 - r0), or, with bins == nullptr, only checks
// their labels (scores are then not read: their predictions are always valid).
// Returns the first invalid sample.
template <bool HasIgnore, class Bin, class T, class P>
fm::cpu::InvalidSample bin_rows(const fm::ConfusionCall& call, fm::cpu::PredictFn predict, int64_t r0, int64_t r1,
                                Bin* bins) {
  const fm::AccuracyCall& a = call.a;
  const fm::cpu::IgnoreAs<T> ignore = fm::cpu::ignore_as<T>(a.has_ignore, a.ignore);
  const bool scores = predict != nullptr;
  // Flat rows (M == 1) form one run across n; so do (N, M) labels stored as one
  // run. Blocks of predicted samples stay inside one n (see PredictFn).
  const bool one_run = a.M == 1 || (!scores && a.ts_n == a.M * a.ts_m && a.ys_n == a.M * a.ys_m);
  const int64_t t_step = a.M == 1 ? a.ts_n : a.ts_m, y_step = a.M == 1 ? a.ys_n : a.ys_m;
  int64_t predicted[fm::cpu::kConfusionBlock] = {};  // all 0 (valid) when only checking
  Bin scratch[fm::cpu::kConfusionBlock];
  for (int64_t r = r0; r < r1;) {
    const fm::RowIndex first = fm::split_row(r, a.M);
    const int64_t run = one_run ? r1 - r : a.M - first.m;
    const int width = int(std::min<int64_t>({fm::cpu::kConfusionBlock, r1 - r, run}));
    const T* t = static_cast<const T*>(a.t) + fm::t_row_offset(a, first);
    const P* p;
    int64_t p_step;
    if constexpr (std::is_same_v<P, int64_t>) {
      if (scores && bins) predict(call, first, width, predicted);
      p = scores ? predicted : static_cast<const P*>(a.y) + fm::y_row_offset(a, first);
      p_step = scores ? 1 : y_step;
    } else {
      p = static_cast<const P*>(a.y) + fm::y_row_offset(a, first);
      p_step = y_step;
    }
    Bin* out = bins ? bins + (r - r0) : scratch;
    // Unit strides get their own (vectorised) copy of the loop.
    const bool bad = t_step == 1 && p_step == 1
                         ? fm::cpu::bin_block<HasIgnore>(t, 1, p, 1, width, a.C, ignore, kSkipped<Bin>, out)
                         : fm::cpu::bin_block<HasIgnore>(t, t_step, p, p_step, width, a.C, ignore, kSkipped<Bin>, out);
    if (bad) {
      for (int i = 0; i < width; ++i) {
        const int64_t ti = int64_t(t[i * t_step]), pi = int64_t(p[i * p_step]);
        if (fm::confusion_bin(ti, pi, a.C, a.has_ignore, a.ignore) == fm::kBinInvalid) return {r + i, ti, pi};
      }
    }
    r += width;
  }
  return {};
}

template <class Bin>
using BinRowsFn = fm::cpu::InvalidSample (*)(const fm::ConfusionCall&, fm::cpu::PredictFn, int64_t, int64_t, Bin*);

template <class Bin, class T>
BinRowsFn<Bin> bin_rows_for_true_type(const fm::ConfusionCall& call) {
  const bool ignore = fm::cpu::ignore_as<T>(call.a.has_ignore, call.a.ignore).active;
  if (fm::predicts_from_scores(call))
    return ignore ? bin_rows<true, Bin, T, int64_t> : bin_rows<false, Bin, T, int64_t>;
  return fm::with_label_type(call.pred_code, [&](auto zero) -> BinRowsFn<Bin> {
    using P = decltype(zero);
    return ignore ? bin_rows<true, Bin, T, P> : bin_rows<false, Bin, T, P>;
  });
}

// The binning of this call's label dtypes (and ignore label).
template <class Bin>
BinRowsFn<Bin> select_bin_rows(const fm::ConfusionCall& call) {
  return fm::with_label_type(call.a.t_code, [&](auto zero) { return bin_rows_for_true_type<Bin, decltype(zero)>(call); });
}
