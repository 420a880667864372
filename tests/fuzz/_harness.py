"""The driver shared by the fuzz targets in this folder (atheris, coverage-guided).

Each target is a script: ``python tests/fuzz/fuzz_X.py --seconds 60``. It imports
fusedmetrics under atheris' bytecode instrumentation, so libFuzzer is guided by the
coverage of our Python layer (argument checks, layouts, snapshot parsing); the C++
is reached through it but not instrumented. A property failure is a Python
exception: libFuzzer writes the input to ``--artifacts`` (crash-<sha1>), the case is
printed, and the run exits non-zero. Replay one with ``python fuzz_X.py FILE``.

Some failures are known defects that other branches fix; each target names them
(``KNOWN``). ``--skip-known`` counts those and keeps fuzzing, to look past them;
CI runs without it, so the leg fails until the fixes are merged.
"""
import argparse
import os
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for reference.py


class Finding(AssertionError):
    """A property failure. `known` names the known defect it is, if any."""

    def __init__(self, message, known=None):
        super().__init__(message + (f"\n[known defect: {known}]" if known else ""))
        self.known = known


def describe(make_case, data):
    """The case the bytes decode to, readable (numpy prints arrays in full)."""
    import numpy as np

    with np.printoptions(threshold=200, floatmode="unique"):
        try:
            return repr(make_case(atheris.FuzzedDataProvider(data)))
        except Exception as exc:  # noqa: BLE001 - the report must still come out
            return f"<could not decode: {exc!r}>"


def main(name, make_case, check):
    """Fuzzes `check(make_case(FuzzedDataProvider))` under libFuzzer."""
    parser = argparse.ArgumentParser(description=f"fuzz {name}", allow_abbrev=False)
    parser.add_argument("--seconds", type=int, default=60, help="libFuzzer -max_total_time")
    parser.add_argument("--artifacts", default=str(HERE.parents[1] / "build" / "fuzz" / name),
                        help="folder for crashing inputs")
    parser.add_argument("--skip-known", action="store_true",
                        help="count known defects (see KNOWN) instead of stopping at them")
    args, rest = parser.parse_known_args()
    os.makedirs(args.artifacts, exist_ok=True)
    known_seen = set()

    def test_one_input(data):
        try:
            check(make_case(atheris.FuzzedDataProvider(data)))
        except Finding as finding:
            if args.skip_known and finding.known:
                if finding.known not in known_seen:  # libFuzzer exits without returning: report now
                    print(f"\n[{name}] known defect hit (skipped from now on): {finding}\n"
                          f"  case: {describe(make_case, data)}", flush=True)
                known_seen.add(finding.known)
                return
            print(f"\n[{name}] FINDING on case: {describe(make_case, data)}", flush=True)
            raise
        except Exception:
            print(f"\n[{name}] UNEXPECTED EXCEPTION on case: {describe(make_case, data)}", flush=True)
            raise

    argv = [sys.argv[0], f"-max_total_time={args.seconds}", f"-artifact_prefix={args.artifacts}/",
            "-timeout=30", "-print_final_stats=1", *rest]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
