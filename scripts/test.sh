#!/usr/bin/env bash
# The README's test command. Two legs, each set up from a fresh machine:
#  1. the main environment (numpy<2, Chainer 7.8.1, MPI; CUDA kernels compiled where
#     nvcc is present): the whole suite, GPU tests skip without a GPU;
#  2. the core package alone under numpy 2 with ml_dtypes (bfloat16), no Chainer:
#     proves the core does not need Chainer or numpy 1.
# Timing (ci-check, 2026-12-01, shared 2-core VM at load ~11): the numpy-1 suite
# (1979 passed, 223 gpu skipped) took 14:42 wall but 172 s CPU; its slowest tests
# wait or spawn (test_bench_modes 77 s, test_ppe_distributed 100 s, examples 10-20 s).
# A Release build of _core costs 157 s CPU. The venv set-ups (pip) and the numpy-2
# leg were not timed here. Estimate on a quiet 2-core machine: ~15 min for both legs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
VENV=${VENV:-.venv}
# Run from the checkout: tests import the installed package (src/ is not on sys.path).
"$VENV/bin/python" -m pytest tests -q -p no:cacheprovider "$@"

VENV2=${VENV_NUMPY2:-.venv-np2}
[ -x "$VENV2/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV2"
PIP2=("$VENV2/bin/python" -m pip --disable-pip-version-check -q)
"${PIP2[@]}" install "numpy>=2" ml_dtypes "mpi4py>=3.1" mpich "pybind11>=2.12" "scikit-build-core>=0.10" "cmake>=3.24" ninja "pytest>=7" "hypothesis>=6"
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} "${PIP2[@]}" install --no-build-isolation \
  --force-reinstall --no-deps -Cbuild-dir=build/numpy2 -Ccmake.define.FUSEDMETRICS_CUDA=OFF .
"$VENV2/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
