"""examples/train_classifier.py runs end to end (one short epoch on the CPU)."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip('chainer')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'examples', 'train_classifier.py')


def run_example(*args, cwd):
    # The example must import the same fusedmetrics as this test process (the
    # installed package in CI, src/ in a developer build).
    import fusedmetrics
    package_parent = os.path.dirname(os.path.dirname(fusedmetrics.__file__))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (package_parent, env.get('PYTHONPATH')) if p)
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=str(cwd),
                          env=env, capture_output=True, text=True, timeout=120)


def test_one_epoch_writes_log(tmp_path):
    proc = run_example('--epoch', '1', '--n-train', '256', '--n-test', '77',
                       '--batchsize', '32', '--out', str(tmp_path / 'out'),
                       '--device', '@numpy', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / 'out' / 'log') as f:
        log = json.load(f)
    assert len(log) == 1
    entry = log[0]
    for key in ('main/loss', 'main/accuracy', 'main/accuracy_micro',
                'validation/main/loss', 'validation/main/accuracy',
                'validation/main/correct', 'validation/main/total',
                'validation/main/accuracy_micro'):
        assert key in entry, key
    # 77 test examples: the micro accuracy is a ratio of integers over 77.
    micro = entry['validation/main/accuracy_micro']
    assert 0.0 <= micro <= 1.0
    assert abs(micro * 77 - round(micro * 77)) < 1e-9
    assert entry['epoch'] == 1 and entry['iteration'] == 8
    assert 'validation/main/accuracy_micro' in proc.stdout   # PrintReport header


def test_multi_node_flag_is_accepted(tmp_path):
    proc = run_example('--multi-node', '--epoch', '1', '--n-train', '64',
                       '--n-test', '16', '--out', str(tmp_path / 'out'),
                       cwd=tmp_path)
    try:
        import fusedmetrics.multi_node  # noqa: F401
        has_multi_node = True
    except ImportError:
        has_multi_node = False
    if has_multi_node:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0
        assert '--multi-node needs fusedmetrics.multi_node' in proc.stderr
