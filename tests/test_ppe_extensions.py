"""fusedmetrics.ppe extensions in ppe's ExtensionsManager: same logs as ppe's own."""
import pytest

torch = pytest.importorskip("torch")
ppe = pytest.importorskip("pytorch_pfn_extras")

from pytorch_pfn_extras.training import extensions as ppe_ext  # noqa: E402

from fusedmetrics import ppe as fmppe  # noqa: E402


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x, t):
        y = self.lin(x)
        loss = torch.nn.functional.cross_entropy(y, t.long())
        correct = (y.argmax(1) == t).sum()
        ppe.reporting.report({"loss": loss.to(torch.float64), "correct": correct, "total": len(t)}, self)
        return loss


def _loader(n, seed):
    g = torch.Generator().manual_seed(seed)
    data = torch.utils.data.TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g))
    return torch.utils.data.DataLoader(data, batch_size=8)


def _run(evaluator_cls, micro_cls, metrics_seen):
    model = Model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = ppe.training.ExtensionsManager(model, opt, 2, iters_per_epoch=len(_loader(40, 1)))
    log = ppe_ext.LogReport(trigger=(1, "epoch"))
    manager.extend(log)
    manager.extend(micro_cls("main/correct", "main/total", "main/accuracy"), trigger=(1, "iteration"))

    def metric(batch, outs, last):
        metrics_seen.append(last)

    manager.extend(evaluator_cls(_loader(21, 2), model, metrics=[metric]), trigger=(1, "epoch"))
    while not manager.stop_trigger:
        for x, t in _loader(40, 1):
            with manager.run_iteration():
                opt.zero_grad()
                model(x, t).backward()
                opt.step()
    return log.log


def test_same_logs_as_ppe():
    seen_ours, seen_theirs = [], []
    ours = _run(fmppe.Evaluator, fmppe.MicroAverage, seen_ours)
    theirs = _run(ppe_ext.Evaluator, ppe_ext.MicroAverage, seen_theirs)
    assert seen_ours == seen_theirs and seen_ours.count(True) == 2
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        assert set(a) == set(b)
        for k in a:
            if k == "elapsed_time":
                continue
            # ppe divides an int64 tensor sum in float32: only 1e-7 there; ours is exact
            rel = 1e-6 if k.endswith("correct") else 1e-12
            assert a[k] == pytest.approx(b[k], rel=rel, abs=1e-15), k


def test_same_logs_with_installed_reporter():
    theirs = _run(ppe_ext.Evaluator, ppe_ext.MicroAverage, [])
    fmppe.install_ppe_reporter()
    try:
        ours = _run(ppe_ext.Evaluator, ppe_ext.MicroAverage, [])
    finally:
        fmppe.uninstall_ppe_reporter()
    for a, b in zip(ours, theirs):
        for k in a:
            if k != "elapsed_time":
                assert a[k] == pytest.approx(b[k], rel=1e-6 if k.endswith("correct") else 1e-12, abs=1e-15), k


class _Manager:
    def __init__(self):
        self.observation = {}
        self.iteration = 0
        self.epoch_detail = 0.0
        self._iters_per_epoch = 4

    @property
    def epoch(self):
        return int(self.epoch_detail)

    @property
    def is_before_training(self):
        return False


def test_micro_average_saves_its_trigger():
    ext = fmppe.MicroAverage("n", "d", "r", trigger=(3, "iteration"))
    m = _Manager()
    reported = []
    with ppe.reporting.Reporter().scope(reported_observation := {}):
        for i in range(2):
            m.iteration = i + 1
            m.observation = {"n": torch.tensor(1), "d": torch.tensor(2)}
            ext(m)
    sd = ext.state_dict()
    assert sd["_numerator"] == 2 and sd["_denominator"] == 4 and "_trigger" in sd
    fresh = fmppe.MicroAverage("n", "d", "r", trigger=(3, "iteration"))
    fresh.load_state_dict(sd)
    with ppe.reporting.Reporter().scope(out := {}):
        m.iteration = 3
        m.observation = {"n": 1, "d": 4}
        fresh(m)
    assert out == {"r": 3 / 8}
    del reported, reported_observation


def test_progress_bar_runs(capsys):
    model = Model()
    ev = fmppe.Evaluator(_loader(16, 3), model, progress_bar=True)
    result = ev()
    assert set(result) == {"main/loss", "main/correct", "main/total"}
    assert "validation" in capsys.readouterr().out


@pytest.mark.parametrize("num, den, expected", [(0, 0, "nan"), (torch.tensor(0), torch.tensor(0), "nan"),
                                                (3, 0, "inf"), (3, 4, 0.75)])
def test_micro_average_zero_denominator_reports_nan_as_ppe_tensor_division(num, den, expected):
    """Every label of a period ignored: ppe divides by a tensor and reports NaN; a crash of
    the training loop (ZeroDivisionError) is what ours did."""
    import math
    ext = fmppe.MicroAverage("n", "d", "r", trigger=(1, "iteration"))
    m = _Manager()
    m.iteration, m.observation = 1, {"n": num, "d": den}
    with ppe.reporting.Reporter().scope(out := {}):
        ext(m)
    got = out["r"]
    assert type(got) is float
    if expected == "nan":
        assert math.isnan(got)
        ppe_ext_ = ppe_ext.MicroAverage("n", "d", "r", trigger=(1, "iteration"))
        if isinstance(den, torch.Tensor):   # ppe's own result on the same observation
            with ppe.reporting.Reporter().scope(theirs := {}):
                ppe_ext_(m)
            assert math.isnan(float(theirs["r"]))
    elif expected == "inf":
        assert got == math.inf
    else:
        assert got == expected
