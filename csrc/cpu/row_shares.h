// How a call's rows (or a matrix's cells) are cut into one contiguous, in-order
// share per thread.
#pragma once
#include <cstdint>

namespace fm::cpu {

struct Range {
  int64_t begin, end;
};

// Share i of `count` items over n_threads: sizes differ by at most one, earlier
// shares first, so the first invalid sample of the earliest share is the call's.
// static: ISA translation units include this too (see confusion_tally.h).
static inline Range share_of(int64_t count, int64_t n_threads, int64_t i) {
  const int64_t share = count / n_threads, extra = count % n_threads;  // count * i could overflow
  const int64_t begin = i * share + (i < extra ? i : extra);
  return {begin, begin + share + (i < extra)};
}

}  // namespace fm::cpu
