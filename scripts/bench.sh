#!/usr/bin/env bash
# The README's main job: set up from a fresh machine, then run the benchmark
# harness on its embedded default workload and print the comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
VENV=${VENV:-.venv}
"$VENV/bin/fusedmetrics-bench" --quick "$@"
