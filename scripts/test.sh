#!/usr/bin/env bash
# The README's test command: set up from a fresh machine, then run the whole suite
# against the installed package (GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
VENV=${VENV:-.venv}
# Import the installed package, not src/ (the extensions live only in the install).
"$VENV/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
