#!/usr/bin/env bash
# Sanitizer leg: the C++ core (_core, no CUDA) built with AddressSanitizer and
# UndefinedBehaviorSanitizer in build/asan, then the tests that reach C++ and a
# threaded stress test run against it. Any sanitizer report fails the leg.
# Python deps come from $VENV (.venv, built by scripts/setup-env.sh); the
# sanitized package is put first on PYTHONPATH, ahead of the installed one.
# Extra arguments go to pytest (e.g. -k summary).
# Timing (ci-check, 2026-12-01, shared 2-core VM at load 3-11, so wall times are
# inflated): the sanitized suite in two runs, `-k "hardening or summary"` (229 tests,
# 90 s; with the 20 s stress test 2:10 wall, 119 s CPU) and the rest (1713 tests,
# 182 s; 3:20 wall, 211 s CPU): about 5.5 min wall, 330 s CPU, no sanitizer report.
# The ASan build of _core was not timed in one piece (the Release build costs 157 s
# CPU, ~1.5 min at -j2). Estimate on a quiet 2-core machine: ~8 min for this leg.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
BUILD=${SANITIZE_BUILD_DIR:-build/asan}
PKG="$BUILD/pkg"
REPORTS="$BUILD/reports"
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

[ -x "$PY" ] || { echo "sanitize.sh: no $PY; run scripts/setup-env.sh first (or set VENV)" >&2; exit 2; }
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"  # the venv's cmake and ninja

# -O1 -g: readable stack traces without making the kernels crawl; asserts kept (no NDEBUG).
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$SAN_FLAGS" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DPython_EXECUTABLE="$PY" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
  -DFUSEDMETRICS_CUDA=OFF >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
# -O1 leaves inline functions out of line: the build where an ISA unit's weak copy shows.
bash scripts/check_isa_linkage.sh "$BUILD"

# A fresh copy of the Python package with the sanitized extension in it.
rm -rf "$PKG" "$REPORTS"
mkdir -p "$PKG" "$REPORTS"
cp -r src/fusedmetrics "$PKG/"
find "$PKG" -name '*.so' -delete
cp "$BUILD"/_core*.so "$PKG/fusedmetrics/"

# Python is not sanitized: the runtimes are preloaded. Leak reports would all be
# CPython's own, so leak detection is off. ASan reports also go to files (log_path),
# so one in a subprocess whose failure a test expects still fails the leg. UBSan
# halts the process too, but (preloaded beside ASan) it writes to stderr only.
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$PWD/$REPORTS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$PWD/$REPORTS/ubsan"
export PYTHONMALLOC=malloc  # Python objects in ASan's heap too, not pymalloc's arenas
export PYTHONPATH="$PWD/$PKG:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"

reports() {  # prints every report; fails when there is one
  local found=0
  for f in "$REPORTS"/*; do
    [ -e "$f" ] || continue
    found=1
    echo "=== sanitizer report $f" >&2
    cat "$f" >&2
  done
  return "$found"
}

# The sanitized build is the one imported, and it is sanitized.
"$PY" - "$PWD/$PKG" <<'EOF'
import sys
from fusedmetrics import _core
assert _core.__file__.startswith(sys.argv[1]), _core.__file__
assert b"__asan_report" in open(_core.__file__, "rb").read(), "extension is not ASan-instrumented"
print("sanitized core:", _core.__file__)
EOF

# Not run here: test_bench*.py (timing harnesses), test_example*.py (training runs
# with Chainer or torch) and test_ppe_distributed.py (spawns torch.distributed
# processes): the slowest files of the suite even without ASan (20-80 s each on a
# loaded machine), and every kernel and summary call they make is covered by the
# tests below; test_cuda_build.py and the gpu tests (CUDA is off).
status=0
"$PY" -m pytest tests -q -p no:cacheprovider -m "not gpu" \
  --ignore=tests/test_bench.py --ignore=tests/test_bench_modes.py --ignore=tests/test_example.py \
  --ignore=tests/test_example_digits.py --ignore=tests/test_example_segmentation.py \
  --ignore=tests/test_ppe_distributed.py --ignore=tests/test_cuda_build.py \
  "$@" || status=$?
"$PY" tests/sanitize/stress_threads.py --seconds "${STRESS_SECONDS:-20}" || status=$((status ? status : 1))
reports || status=$((status ? status : 1))
exit "$status"
