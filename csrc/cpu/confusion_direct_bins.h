// The binning of the direct confusion count (included, inside an anonymous
// namespace, by confusion_direct.cpp and the ISA builds' confusion_direct_*.cpp, so
// each compiles the loops with its own flags; it needs cpu/confusion_bin_blocks.h
// and semantics/dtypes.h): samples become matrix bins, stored for the adding.

// The bin of a skipped sample (ignored or invalid): all ones, beyond every cell
// (C * C <= 65535^2 < 2^32 - 1 for uint32 bins).
template <class Bin>
constexpr Bin kSkipped = ~Bin(0);

// The direct count's sink of bin_blocks: bins stored in place in the caller's
// buffer, or, without one, only checked (scores are then not predicted: their
// predictions are always valid).
template <class Bin>
struct StoreBins {
  Bin* out;
  bool predicts() const { return out != nullptr; }
  Bin* bins_at(int64_t offset) { return out ? out + offset : nullptr; }
  void take(const Bin*, int) {}
};

// Bins rows [r0, r1) into bins[0, r1 - r0), or, with bins == nullptr, only checks
// their labels. Returns the first invalid sample.
template <bool HasIgnore, class Bin, class T, class P>
fm::cpu::InvalidSample bin_rows(const fm::ConfusionCall& call, fm::cpu::PredictFn predict, int64_t r0, int64_t r1,
                                Bin* bins) {
  StoreBins<Bin> sink{bins};
  return fm::cpu::bin_blocks<HasIgnore, Bin, T, P>(call, predict, r0, r1, kSkipped<Bin>, sink);
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
