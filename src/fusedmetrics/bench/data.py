"""Input shapes, default sizes and rotating pools of input buffers.

A pool holds enough buffers that, cycling through them, each buffer has left the last-level cache
before it is read again, so the timings measure memory. Their total is at least 4x the cache that
the machine reports and at least 512 MiB: a virtual machine may report less cache than its host
really gives it (reading more than the DRAM ceiling allows was seen with 3 x 65 MB buffers).
"""
import math

import numpy as np

# Few, moderate, many and very many classes: the smallest N per class count; doubled as needed to
# exceed the cache (a kernel that reads from cache would be timed, not one that reads memory).
BASE_SHAPES = [(1 << 20, 10), (1 << 17, 100), (1 << 14, 1000), (1024, 32000)]
QUICK_SHAPES = [(1 << 20, 10), (1 << 14, 1000)]
GPU_MIN_BYTES = 1 << 30          # GPU inputs of 1 GB or more: far beyond the L2, so HBM is measured
POOL_CACHE_FACTOR = 4
POOL_MIN_TOTAL = 512 << 20
POOL_MAX = 16
LABEL_MODES = ("argmax", "half", "random")


def parse_shapes(text):
    """'1048576x10,16384x1000' -> [(1048576, 10), (16384, 1000)]."""
    shapes = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        parts = item.split("x")
        try:
            n, c = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"--shapes: expected NxC items like 1048576x10, got {item!r}") from None
        if n < 1 or c < 1:
            raise ValueError(f"--shapes: N and C must be positive, got {item!r}")
        shapes.append((n, c))
    if not shapes:
        raise ValueError("--shapes: no shape given")
    return shapes


# The class sweep: few-class heads, ImageNet-like and vocabulary-like rows.
SWEEP = (2, 3, 5, 8, 10, 16, 20, 32, 64, 100, 1000, 32000)


def parse_classes(text):
    """'sweep' or '2,10,1000' -> a tuple of class counts."""
    if text.strip().lower() == "sweep":
        return SWEEP
    try:
        classes = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise ValueError(f"--classes: expected 'sweep' or integers like 2,10,1000, got {text!r}") from None
    if not classes or min(classes) < 1:
        raise ValueError(f"--classes: class counts must be positive integers, got {text!r}")
    return classes


def sweep_shapes(classes, dtype, label_dtype, min_bytes):
    """One (N, C) per class count, N the smallest multiple of 64 whose input has >= min_bytes."""
    shapes = []
    for c in classes:
        per_row = input_bytes(1, c, dtype, label_dtype)
        n = -(-int(min_bytes) // per_row)
        shapes.append((-(-n // 64) * 64, c))
    return shapes


def input_bytes(n, c, dtype, label_dtype):
    return n * c * np.dtype(dtype).itemsize + n * np.dtype(label_dtype).itemsize


def default_shapes(device, dtype, label_dtype, llc_bytes, quick):
    """BASE_SHAPES (or QUICK_SHAPES), N doubled until the inputs exceed the cache (CPU) or 1 GB (GPU)."""
    floor = GPU_MIN_BYTES if device == "cuda" else (llc_bytes or 32 << 20) + 1
    shapes = []
    for n, c in (QUICK_SHAPES if quick else BASE_SHAPES):
        while input_bytes(n, c, dtype, label_dtype) < floor:
            n *= 2
        shapes.append((n, c))
    return shapes


def pool_size(nbytes, llc_bytes):
    """How many buffers of ``nbytes`` to rotate over."""
    total = max(POOL_CACHE_FACTOR * (llc_bytes or 32 << 20), POOL_MIN_TOTAL)
    return max(2, min(POOL_MAX, math.ceil(total / max(nbytes, 1)) + 1))


class ArrayMaker:
    """Random arrays from one seeded generator on the host (numpy) or the device (cupy)."""

    def __init__(self, xp, seed=0):
        self.xp = xp
        if xp is np:
            self._rng = np.random.default_rng(seed)
        else:
            self._rng = xp.random.RandomState(seed)

    def uniform(self, shape, dtype):
        """Values in [0, 1) of ``dtype`` (float16 is rounded from float32)."""
        if self.xp is np:
            a = self._rng.random(shape, dtype=np.float32)
        else:
            a = self._rng.random_sample(size=shape, dtype=np.float32)
        return a if np.dtype(dtype) == np.float32 else a.astype(dtype)

    def integers(self, high, size, dtype):
        if self.xp is np:
            return self._rng.integers(0, high, size=size, dtype=dtype)
        return self._rng.randint(0, high, size=size, dtype=dtype)

    def labels(self, y, label_dtype, mode):
        """Labels for logits ``y``: ``argmax`` (every row correct: a kernel must read every score, the
        honest bandwidth case), ``half`` (about half the rows correct) or ``random`` (uniform labels;
        a kernel may stop reading a wrong row early)."""
        n, c = y.shape
        if mode == "random":
            return self.integers(c, n, label_dtype)
        best = y.argmax(axis=1).astype(label_dtype)
        if mode == "argmax":
            return best
        if mode != "half":
            raise ValueError(f"label mode must be one of {LABEL_MODES}, got {mode!r}")
        hit = self.uniform((n,), np.float32) < 0.5
        return self.xp.where(hit, best, self.integers(c, n, label_dtype)).astype(label_dtype)

    def logits_and_labels(self, n, c, dtype, label_dtype, mode="argmax"):
        """Logits in [0, 1) of ``dtype`` and labels chosen by ``mode`` (see ``labels``)."""
        y = self.uniform((n, c), dtype)
        return y, self.labels(y, label_dtype, mode)
