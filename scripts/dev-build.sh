#!/usr/bin/env bash
# Incremental developer build: compiles the extensions under build/dev and copies
# them next to the Python sources, so `PYTHONPATH=src python ...` imports them.
# PYTHON selects the interpreter (default .venv/bin/python); FUSEDMETRICS_CUDA
# (AUTO/ON/OFF) whether the CUDA kernels are built.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
export PATH="$(dirname "$PY"):$PATH"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build/dev "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$PY" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
  -DFUSEDMETRICS_CUDA="${FUSEDMETRICS_CUDA:-AUTO}" >/dev/null
cmake --build build/dev -j "${JOBS:-2}"
rm -f src/fusedmetrics/_core*.so src/fusedmetrics/_cuda*.so
cp build/dev/_core*.so src/fusedmetrics/
cp build/dev/_cuda*.so src/fusedmetrics/ 2>/dev/null || true
