#!/usr/bin/env bash
# AVX-512 leg: the AVX-512 kernels run on a CPU without AVX-512. The core is built in
# build/emu512 with FUSEDMETRICS_EMULATE_AVX512=ON (CMakeLists.txt): the *_avx512.cpp units
# are compiled for AVX2 against SIMDe's portable AVX-512 (csrc/testing/avx512_emulation),
# and the dispatcher offers them as the "avx512" ISA, the default. The suite then runs with
# every kernel test covering avx512 too, and its results must be the same as everywhere.
# Without this leg the AVX-512 kernels would only run on the rare session or CI machine
# that has AVX-512 (none since the first wave). Python deps come from $VENV (.venv,
# scripts/setup-env.sh). Extra arguments go to pytest (e.g. -k confusion).
# SIMDe's headers come from Debian's libsimde-dev, installed here when missing and apt-get
# can; without them the leg says so and stops (exit 0): it needs nothing else.
# Timing (2026-12-02, AMD EPYC Zen 3 VM, 2 cores): build 3:41 at -j2 and the suite 5:41
# (6389 passed) in a checkout; in a fresh clone's .ci/run the whole leg took ~8.5 min
# (apt-get, build, the suite's 6347 tests in 4:19).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
BUILD=${EMULATE_BUILD_DIR:-build/emu512}
PKG="$BUILD/pkg"

[ -x "$PY" ] || { echo "emulated_avx512.sh: no $PY; run scripts/setup-env.sh first (or set VENV)" >&2; exit 2; }
case "$(uname -m)" in x86_64|amd64) ;; *) echo "emulated_avx512.sh: not x86-64, nothing to emulate"; exit 0 ;; esac
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"  # the venv's cmake and ninja

mkdir -p "$BUILD"
simde_present() { [ -f /usr/include/simde/x86/avx512.h ] || [ -n "${SIMDE_INCLUDE:-}" ]; }
if ! simde_present && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q libsimde-dev >"$BUILD.apt.log" 2>&1 \
    || { apt-get update -q >>"$BUILD.apt.log" 2>&1 && apt-get install -y -q libsimde-dev >>"$BUILD.apt.log" 2>&1; } \
    || tail -5 "$BUILD.apt.log" >&2
fi
if ! simde_present; then
  echo "emulated_avx512.sh: SKIPPED, no SIMDe headers (apt-get install libsimde-dev, or set SIMDE_INCLUDE)" >&2
  exit 0
fi

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$PY" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
  -DFUSEDMETRICS_CUDA=OFF -DFUSEDMETRICS_EMULATE_AVX512=ON ${SIMDE_INCLUDE:+-DFM_SIMDE_INCLUDE="$SIMDE_INCLUDE"} \
  >"$BUILD.configure.log" 2>&1 || { cat "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

# A fresh copy of the Python package with the emulating extension in it.
rm -rf "$PKG"
mkdir -p "$PKG"
cp -r src/fusedmetrics "$PKG/"
find "$PKG" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +
cp "$BUILD"/_core*.so "$PKG/fusedmetrics/"
export PYTHONPATH="$PWD/$PKG:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"

# The emulating build is the one imported, and its default ISA is avx512: the suite below
# cannot pass without running the AVX-512 kernels.
"$PY" - "$PWD/$PKG" <<'EOF'
import sys
from fusedmetrics import _core
assert _core.__file__.startswith(sys.argv[1]), _core.__file__
assert _core.build_info()["avx512_emulated"], "not an emulating build"
assert _core.active_isa() == "avx512", _core.active_isa()
print("emulated AVX-512 core:", _core.__file__, _core.usable_isas())
EOF

# Left out as in sanitize.sh: timing harnesses, training examples, torch.distributed
# process spawns and the CUDA build check; they call no kernel the rest does not.
"$PY" -m pytest tests -q -p no:cacheprovider -m "not gpu" \
  --ignore=tests/test_bench.py --ignore=tests/test_bench_modes.py --ignore=tests/test_example.py \
  --ignore=tests/test_example_digits.py --ignore=tests/test_example_segmentation.py \
  --ignore=tests/test_ppe_distributed.py --ignore=tests/test_cuda_build.py "$@"
