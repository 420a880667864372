// Accuracy kernels for any CPU: the portable code with the default flags.
#include "cpu/accuracy.h"
#include "semantics/accuracy_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/kernels_portable.h"
}  // namespace

fm::cpu::CountRowsFn fm::cpu::select_kernel_baseline(const AccuracyCall& call) { return select_portable(call); }
