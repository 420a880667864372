// The binary-accuracy kernel compiled for the baseline build (the portable code,
// vectorised by the compiler with this file's flags).
#include <cstring>

#include "cpu/binary_accuracy.h"
#include "semantics/binary_rule.h"
#include "semantics/dtypes.h"

namespace {
#include "cpu/binary_accuracy_portable.h"
}  // namespace

fm::cpu::BinaryCountFn fm::cpu::select_binary_counts_baseline(int y_code, int t_code) {
  return select_binary_counts_portable(y_code, t_code);
}
