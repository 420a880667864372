#!/usr/bin/env bash
# Fuzz leg: each atheris target in tests/fuzz/ for a bounded time against the
# package installed in $VENV (.venv, built by scripts/setup-env.sh). Installs
# atheris into $VENV. Crashing inputs go to build/fuzz/<target>/ and are printed.
# Usage: scripts/fuzz.sh [--seconds N] [more options for every target, e.g. --skip-known]
# Timing (ci-check, 2026-12-01, shared 2-core VM at load ~11): --seconds 60 took
# 3:38 wall and 26 s CPU for the three targets. Each target runs for --seconds plus
# ~5-10 s of start-up on one core, so the leg is ~3 x (N + 10) s on a quiet machine:
# ~5 min at CI's 90 s. libFuzzer's run counts scale with the CPU the target gets.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
SECONDS_EACH=${FUZZ_SECONDS:-90}
if [ "${1:-}" = "--seconds" ]; then SECONDS_EACH=$2; shift 2; fi

[ -x "$PY" ] || { echo "fuzz.sh: no $PY; run scripts/setup-env.sh first (or set VENV)" >&2; exit 2; }
"$PY" -c "import atheris" 2>/dev/null || "$PY" -m pip --disable-pip-version-check -q install "atheris>=2.3"

mkdir -p build
status=0
for target in tests/fuzz/fuzz_*.py; do
  name=$(basename "$target" .py)
  echo "=== $name: ${SECONDS_EACH}s"
  # -W ignore: numpy's overflow/complex warnings on purpose-made inputs are noise here.
  if ! "$PY" -W ignore "$target" --seconds "$SECONDS_EACH" "$@" >"build/fuzz-$name.log" 2>&1; then
    status=1
    echo "--- $name FAILED; the finding and its input (libFuzzer 'Test unit written to'):"
    grep -v -e '^#' -e '^INFO:' -e '^WARNING: Failed to find' "build/fuzz-$name.log" | tail -40
  else
    grep -e '^Done' "build/fuzz-$name.log" || true
  fi
done
exit "$status"
