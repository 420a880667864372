// Accuracy kernels for AVX2 CPUs: the portable code, vectorised by the compiler
// with AVX2/FMA/F16C (this file is compiled with those flags only).
#include <immintrin.h>

#include "cpu/accuracy_task.h"
#include "semantics/accuracy_rule.h"
#include "semantics/dtypes.h"

namespace {
#include "cpu/kernels_portable.h"
}  // namespace

fm::cpu::Counts fm::cpu::count_rows_avx2(const AccuracyTask& task, int64_t r0, int64_t r1) {
  return count_rows_portable(task, r0, r1);
}
