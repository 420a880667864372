"""examples/train_digits.py runs (one process) and learns."""
import pathlib
import runpy

import pytest

pytest.importorskip("torch")
pytest.importorskip("pytorch_pfn_extras")
pytest.importorskip("sklearn")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"


def test_train_digits_one_process(tmp_path, monkeypatch):
    from fusedmetrics import ppe as fmppe

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    module = runpy.run_path(str(EXAMPLE), run_name="train_digits")
    try:
        log = module["main"](["--epochs", "2", "--out", str(tmp_path)])
    finally:
        fmppe.uninstall_ppe_reporter()
    assert len(log) == 2
    assert log[-1]["validation/main/accuracy"] > 0.8
    assert log[-1]["main/loss"] < log[0]["main/loss"]


def test_train_digits_under_torchrun(tmp_path):
    """The README's torchrun command (2 processes, gloo) finishes, names the reports main/... and
    gets the one-process validation accuracy (same batches on both ranks; exact merge). It used to
    hang at exit: the freed DDP reducer waited on the gloo group of a rank that had left."""
    import json
    import os
    import subprocess
    import sys

    import fusedmetrics

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fusedmetrics.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WORLD_SIZE", None)
    # --standalone: a free rendezvous port, so parallel test runs on one machine do not collide.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(EXAMPLE),
           "--epochs", "2", "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["epoch"] == 2
    assert last["validation/main/accuracy"] > 0.8
    assert not any(k.startswith(("mainmodule", "validation/mainmodule")) for k in last)
    assert (tmp_path / "out" / "rank1").is_dir()
