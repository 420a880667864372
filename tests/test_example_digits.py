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
