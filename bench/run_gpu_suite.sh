#!/usr/bin/env bash
# The GPU suite, for a machine with an NVIDIA GPU, CUDA 13 (nvcc), CuPy and pytest
# (e.g. the H200 device machine: run from the repository root). Five stages, each
# under its own timeout so that one stuck stage cannot eat a whole device session:
#   1. build: installs fusedmetrics with its CUDA kernels (pip, no build isolation);
#   2. tests: every test marked gpu, plus the CUDA build checks;
#   3. quick harness: fusedmetrics-bench --device cuda --quick (a first figure fast);
#   4. full harness: accuracy against the device copy on >= 1 GB inputs, float32 and
#      float16, and DictSummary.add with CuPy 0-d values;
#   5. confusion harness: confusion_matrix from float32 scores at C = 19 and 1000 (and the
#      class-strided 2x19x512x1024 batch) against the device copy and accuracy_counts, and
#      from labels against cupy.bincount.
# Results go to $OUT (default bench/out): build.log, gpu_tests.log, gpu_tests.xml,
# harness_quick.{json,md}, harness_gpu.{json,md}, harness_confusion.{json,md}.
#
# Environment: PYTHON (default python3), OUT, SKIP_BUILD=1, SKIP_TESTS=1, SKIP_FULL=1,
# SKIP_CONFUSION=1, and the per-stage limits in seconds T_BUILD, T_TESTS, T_QUICK, T_FULL,
# T_CONFUSION.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
status=0

stage() { echo "== $(date +%H:%M:%S) $*"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  stage "1/5 build (log: $OUT/build.log, limit ${T_BUILD:-420}s)"
  if ! CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} timeout "${T_BUILD:-420}" \
      "$PY" -m pip install --no-build-isolation --no-deps -v . \
      -Ccmake.define.FUSEDMETRICS_CUDA=ON >"$OUT/build.log" 2>&1; then
    echo "build FAILED"; tail -40 "$OUT/build.log"; exit 1
  fi
fi
# The package lives under src/, so from the repository root the installed one is imported.
# The CUDA runtime is linked statically: the driver must support the toolkit's major
# version (CUDA 13 needs an R580 driver), or every launch fails with error 35.
"$PY" -c "
import sys, fusedmetrics, fusedmetrics._cuda as c
info = c.build_info()
print('cuda devices', c.device_count(), info)
if info['cuda_driver_version'] // 1000 < info['cuda_runtime_version'] // 1000:
    sys.exit('driver %d is older than the CUDA runtime %d: rebuild with an older toolkit'
             % (info['cuda_driver_version'], info['cuda_runtime_version']))
" || { echo "import or driver check FAILED"; exit 1; }

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  stage "2/5 tests marked gpu (log: $OUT/gpu_tests.log, limit ${T_TESTS:-300}s)"
  # The CUDA build checks run everywhere (not marked gpu); here they meet a real device.
  timeout "${T_TESTS:-300}" "$PY" -m pytest tests -q -rs -p no:cacheprovider -m gpu \
    --junitxml="$OUT/gpu_tests.xml" >"$OUT/gpu_tests.log" 2>&1 || status=1
  timeout 120 "$PY" -m pytest tests/test_cuda_build.py -q -rs -p no:cacheprovider >>"$OUT/gpu_tests.log" 2>&1 \
    || status=1
  tail -25 "$OUT/gpu_tests.log"
fi

harness=("$PY" -m fusedmetrics.bench --device cuda --dtype float32,float16 --suite accuracy,bandwidth,summary
         --no-progress)

stage "3/5 quick harness (limit ${T_QUICK:-180}s)"
timeout "${T_QUICK:-180}" "${harness[@]}" --quick --json "$OUT/harness_quick.json" --markdown "$OUT/harness_quick.md" \
  || status=1

if [ "${SKIP_FULL:-0}" != 1 ]; then
  stage "4/5 full harness (limit ${T_FULL:-480}s)"
  timeout "${T_FULL:-480}" "${harness[@]}" --json "$OUT/harness_gpu.json" --markdown "$OUT/harness_gpu.md" || status=1
fi
if [ "${SKIP_CONFUSION:-0}" != 1 ]; then
  stage "5/5 confusion harness (limit ${T_CONFUSION:-240}s)"
  timeout "${T_CONFUSION:-240}" "$PY" -m fusedmetrics.bench --device cuda --suite confusion --dtype float32 \
    --shapes 16777216x19,262144x1000 --no-progress \
    --json "$OUT/harness_confusion.json" --markdown "$OUT/harness_confusion.md" || status=1
fi
stage "done, status $status"
exit $status
