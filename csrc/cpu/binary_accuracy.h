// The CPU binary-accuracy count (chainer.functions.binary_accuracy's rule,
// semantics/binary_rule.h): one pass over n scores and n labels stored
// contiguously, counting correct and total samples.
#pragma once
#include <cstdint>

namespace fm::cpu {

// Counts samples [begin, end) of contiguous scores y (logit code) against labels t
// (label code): correct and ignored.
struct BinaryCounts {
  int64_t correct = 0, ignored = 0;
};
using BinaryCountFn = BinaryCounts (*)(const void* y, const void* t, int64_t begin, int64_t end);

// Each ISA build's kernel for a (logit code, label code) pair.
BinaryCountFn select_binary_counts_baseline(int y_code, int t_code);
#if defined(FM_HAVE_X86_KERNELS)
BinaryCountFn select_binary_counts_avx2(int y_code, int t_code);
BinaryCountFn select_binary_counts_avx512(int y_code, int t_code);
#endif

// Adds [correct, total] of the n samples into out, with the active ISA's kernel
// and up to get_num_threads() threads (each one reading at least 512 KiB).
void count_binary_accuracy(const void* y, int y_code, const void* t, int t_code, int64_t n, int64_t out[2]);

}  // namespace fm::cpu
