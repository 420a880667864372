// Accuracy kernels for any CPU: the portable code with the default flags.
#include "cpu/accuracy_task.h"
#include "semantics/accuracy_rule.h"
#include "semantics/dtypes.h"

namespace {
#include "cpu/kernels_portable.h"
}  // namespace

fm::cpu::Counts fm::cpu::count_rows_baseline(const AccuracyTask& task, int64_t r0, int64_t r1) {
  return count_rows_portable(task, r0, r1);
}
