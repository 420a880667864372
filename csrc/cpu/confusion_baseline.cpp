// Confusion-matrix prediction kernels, compiled for any CPU (the portable
// code, vectorised by the compiler with this file's flags).
#include "cpu/confusion.h"
#include "semantics/argmax_rule.h"
#include "semantics/logits.h"

namespace {
#include "cpu/confusion_kernels_portable.h"
}  // namespace

fm::cpu::PredictFn fm::cpu::select_predict_baseline(const ConfusionCall& call) { return select_predict_portable(call); }
