// The binary-accuracy kernel, written for the compiler to vectorise. Each ISA
// translation unit includes it inside its own anonymous namespace and compiles it
// with its own flags (as kernels_portable.h).
//
// Expects cpu/binary_accuracy.h and semantics/binary_rule.h to be visible.

// Samples per block: the per-block counters are uint32 (narrow lanes vectorise
// better) and a block holds far fewer than 2^32 samples.
constexpr int64_t kBinaryBlock = 1 << 16;

template <int Code, class T>
fm::cpu::BinaryCounts binary_counts_typed(const void* y, const void* t, int64_t begin, int64_t end) {
  using Bits = typename fm::BinaryScoreBits<Code>::Bits;
  const auto* scores = static_cast<const unsigned char*>(y);
  const T* labels = static_cast<const T*>(t);
  fm::cpu::BinaryCounts counts;
  for (int64_t block = begin; block < end; block += kBinaryBlock) {
    const int64_t stop = block + kBinaryBlock < end ? block + kBinaryBlock : end;
    uint32_t correct = 0, ignored = 0;
    for (int64_t i = block; i < stop; ++i) {
      Bits bits;  // the score's bits (memcpy: no aliasing of float storage)
      std::memcpy(&bits, scores + i * int64_t(sizeof(Bits)), sizeof(Bits));
      const T label = labels[i];
      correct += fm::binary_label_correct(label, fm::binary_prediction<Code>(bits));
      ignored += fm::binary_label_ignored(label);
    }
    counts.correct += correct;
    counts.ignored += ignored;
  }
  return counts;
}

inline fm::cpu::BinaryCountFn select_binary_counts_portable(int y_code, int t_code) {
  return fm::with_logit_code(y_code, [&](auto code) {
    return fm::with_label_type(t_code, [&](auto zero) -> fm::cpu::BinaryCountFn {
      return binary_counts_typed<decltype(code)::value, decltype(zero)>;
    });
  });
}
