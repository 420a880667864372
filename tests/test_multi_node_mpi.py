"""Multi-node tests under real ``mpiexec`` (2 and 3 ranks, oversubscribed on 2 cores).

Each launch runs every scenario of tests/mpi/mn_worker.py (batched: mpiexec start-up costs ~1 s)
and reports one verdict per scenario; each scenario is then its own pytest test.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpi

WORKER = Path(__file__).parent / "mpi" / "mn_worker.py"
TIMEOUT_S = 120


def find_mpiexec():
    """mpiexec next to the running interpreter (the venv's mpich wheel) first, then PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    return shutil.which("mpiexec")


def _skip_reason():
    for module in ("mpi4py", "chainer", "chainermn"):
        try:
            __import__(module)
        except Exception as exc:  # noqa: BLE001 - any import failure means "cannot run"
            return f"{module} is not importable ({exc.__class__.__name__}: {exc}); install fusedmetrics[mpi,chainer]"
    try:
        from fusedmetrics.summary import DictSummary
    except ImportError as exc:
        return f"fusedmetrics.summary is not importable ({exc})"
    if not hasattr(DictSummary, "from_state_dict"):
        return "fusedmetrics.summary.DictSummary has no state_dict()/from_state_dict() yet"
    if find_mpiexec() is None:
        return "no mpiexec next to sys.executable or on PATH (pip install mpich)"
    return None


SKIP = _skip_reason()
requires_mpi = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _env():
    import fusedmetrics
    src = str(Path(fusedmetrics.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def launch(n, *args, timeout=TIMEOUT_S):
    cmd = [find_mpiexec(), "-n", str(n), sys.executable, str(WORKER), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


_RESULTS = {}


def scenario_verdicts(n):
    if n not in _RESULTS:
        proc = launch(n, "scenarios")
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        assert lines, (f"mpiexec -n {n} printed no RESULT line (rc={proc.returncode})\n"
                       f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
        _RESULTS[n] = (proc.returncode, json.loads(lines[-1][len("RESULT "):]))
    return _RESULTS[n]


def _fm_extensions_available():
    try:
        from fusedmetrics.extensions import Evaluator, MicroAverage  # noqa: F401
    except ImportError:
        return False
    return True


SHARDINGS = ["even", "shards_50_3", "rank_without_data", "all_ranks_empty", "key_on_one_rank"]
EVALUATION = [f"{s}/{c}/{e}" for s in SHARDINGS for c in ("mpi4py", "chainermn")
              for e in ("chainer", "fusedmetrics")]
OTHERS = ["keys_change", "error_on_last_rank/mpi4py", "error_on_last_rank/chainermn",
          "evaluator_without_dictsummary", "argument_errors", "allreduce_pair", "scatter_dataset",
          "micro_average/mpi4py", "micro_average/chainermn", "classification/mpi4py", "classification/chainermn"]


@requires_mpi
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("scenario", EVALUATION + OTHERS)
def test_scenario(n, scenario):
    rc, verdicts = scenario_verdicts(n)
    assert scenario in verdicts, f"scenario {scenario} did not run; ran {sorted(verdicts)}"
    verdict = verdicts[scenario]
    if verdict.startswith("skip"):
        # Only the fusedmetrics.extensions scenarios may skip, and only while those are missing.
        assert (scenario.endswith("/fusedmetrics") or scenario.startswith(("micro_average/", "classification/"))) \
            and not _fm_extensions_available(), verdict
        pytest.skip(verdict)
    assert verdict == "pass", verdict


@requires_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_worker_exit_status(n):
    rc, verdicts = scenario_verdicts(n)
    failed = {k: v for k, v in verdicts.items() if v != "pass" and not v.startswith("skip")}
    assert rc == (1 if failed else 0), (rc, sorted(failed))


@requires_mpi
def test_rank_error_fails_job_fast():
    """Rank 1's evaluation raises, uncaught: the job ends nonzero (no hang), stderr names rank 1."""
    proc = launch(2, "failfast", timeout=60)
    assert proc.returncode != 0
    assert "UNREACHABLE" not in proc.stdout
    assert "rank 1 of 2: local evaluation failed" in proc.stderr, proc.stderr[-3000:]
    assert "deliberate failure in the model on rank 1" in proc.stderr
    assert "RemoteEvaluationError" in proc.stderr and "rank(s) [1]" in proc.stderr  # rank 0's error


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_classifier.py"


@requires_mpi
@pytest.mark.skipif(not EXAMPLE.exists() or "--multi-node" not in EXAMPLE.read_text(),
                    reason="examples/train_classifier.py with --multi-node is not present")
def test_example_trains_under_mpiexec(tmp_path):
    """The README's `mpiexec -n 2 python examples/train_classifier.py --multi-node` (shortened).
    129 training examples: uneven shards (64/65) once made rank 0's epoch end an iteration early,
    its evaluator's collective meeting rank 1's optimizer allreduce (a deadlock)."""
    cmd = [find_mpiexec(), "-n", "2", sys.executable, str(EXAMPLE), "--multi-node", "--epoch", "1",
           "--n-train", "129", "--n-test", "101", "--out", str(tmp_path / "result")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validation/main/accuracy_micro" in proc.stdout  # rank 0's PrintReport header
    log = json.loads((tmp_path / "result" / "log").read_text())
    micro = log[0]["validation/main/accuracy_micro"]
    assert len(log) == 1 and 0.0 <= micro <= 1.0
    # 101 test examples over both ranks: the global micro accuracy is a multiple of 1/101.
    assert abs(micro * 101 - round(micro * 101)) < 1e-9, micro
