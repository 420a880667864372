#!/usr/bin/env bash
# Fails when an ISA translation unit (*_avx2.cpp, *_avx512.cpp) defines a weak
# (inline, linker-merged) function. Such a function is compiled with that unit's
# flags, and the linker keeps ONE copy for every caller: the baseline code could
# end up running an AVX-512 copy on a CPU without AVX-512. Helpers shared by the
# ISA units must have internal linkage (static, unnamed namespace, or an include
# inside the unit's unnamed namespace); see csrc/cpu/confusion_tally.h.
# Best run on an unoptimised or -O1 build (scripts/sanitize.sh does), where inline
# functions are emitted out of line instead of disappearing into their callers.
# Usage: scripts/check_isa_linkage.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check_isa_linkage.sh BUILD_DIR}
found=0
while IFS= read -r obj; do
  # W: a weak function or object; DW.ref.* are the unwinder's data references.
  weak=$(nm -C --defined-only "$obj" | awk '$2 == "W"' | grep -v ' DW\.ref\.' || true)
  if [ -n "$weak" ]; then
    found=1
    echo "check_isa_linkage: $obj defines weak symbols compiled for its ISA:" >&2
    echo "$weak" | sed 's/^/  /' >&2
  fi
done < <(find "$build" -name '*_avx2.cpp.o' -o -name '*_avx512.cpp.o')
[ "$found" = 0 ] && echo "check_isa_linkage: no weak symbols in the ISA units of $build"
exit "$found"
