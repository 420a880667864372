"""examples/train_segmentation.py runs end to end (shortened, CPU)."""
import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip('chainer')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'examples', 'train_segmentation.py')


def test_two_short_epochs_write_the_segmentation_keys(tmp_path):
    import fusedmetrics
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (os.path.dirname(os.path.dirname(fusedmetrics.__file__)),
                    env.get('PYTHONPATH')) if p)
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--epoch', '2', '--n-train', '48', '--n-test', '13',
         '--size', '16', '--out', str(tmp_path / 'out'), '--device', '@numpy'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / 'out' / 'log') as f:
        log = json.load(f)
    assert len(log) == 2
    entry = log[-1]
    for key in ('main/loss', 'validation/main/miou', 'validation/main/pixel_accuracy',
                'validation/main/mean_class_accuracy', 'validation/main/iou/background',
                'validation/main/class_accuracy/blue'):
        assert key in entry, key
    for key in ('validation/main/miou', 'validation/main/pixel_accuracy'):
        assert 0.0 <= entry[key] <= 1.0 and not math.isnan(entry[key])
    assert 'validation/main/miou' in proc.stdout  # PrintReport header
