#!/usr/bin/env bash
# Sets up a fresh machine for fusedmetrics: a virtualenv in .venv (or $VENV), the
# build tools, Chainer 7.8.1 (which needs numpy<2 and, to build, setuptools<70 with
# pkg_resources), the test and MPI tools, then builds and installs this package.
# The CUDA kernels are compiled when nvcc is found (FUSEDMETRICS_CUDA=AUTO|ON|OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "numpy<2" "setuptools<70" wheel "pybind11>=2.12" "scikit-build-core>=0.10" "cmake>=3.24" ninja \
  "pytest>=7" "hypothesis>=6" "mpi4py>=3.1" mpich
# Independent references and the PyTorch side: scikit-learn (confusion-matrix scores),
# torch (the CPU build: torch==2.13.0 is a local file on these machines), pytorch-pfn-extras
# and TorchMetrics (the ppe drop-ins are tested against them).
# torch asks for setuptools>=77, but Chainer imports pkg_resources and numpy.distutils at
# run time, which need an old one: put setuptools<70 back (torch only needs a new one to
# build C++ extensions, which nothing here does). ml_dtypes<0.6 gives numpy 1.x bfloat16.
"${PIP[@]}" install scikit-learn "torch==2.13.0" "pytorch-pfn-extras==0.9.0" "torchmetrics>=1.4" "ml_dtypes<0.6" "numpy<2"
"${PIP[@]}" install "setuptools<70" 2>&1 | grep -v "requires setuptools" || true
# Chainer's sdist imports pkg_resources while it builds: build it against the
# setuptools<70 installed above instead of an isolated (newer) one.
"$VENV/bin/python" -c "import chainer" 2>/dev/null || "${PIP[@]}" install --no-build-isolation "chainer==7.8.1"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
"${PIP[@]}" install --no-build-isolation --force-reinstall --no-deps .
"$VENV/bin/python" -c "import fusedmetrics as fm; print('fusedmetrics', fm.__version__, fm.build_info())"
