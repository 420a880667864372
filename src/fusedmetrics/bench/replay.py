"""Iterators that replay a fixed list of batches, for Evaluators: the evaluator suite's
input, and the tests' (imports Chainer; imported only where Chainer is there)."""
import chainer


class ReplayOnce(chainer.dataset.Iterator):
    """Yields ``batches`` in order, once. No ``reset``: an Evaluator copies it (with
    Chainer's deprecation warning) instead of rewinding it."""

    repeat = False  # it stops: Evaluator's infinite-loop warning does not apply

    def __init__(self, batches):
        self.batches = batches
        self.position = 0

    def __next__(self):
        if self.position >= len(self.batches):
            raise StopIteration
        self.position += 1
        return self.batches[self.position - 1]


class Replay(ReplayOnce):
    """``ReplayOnce`` that an Evaluator rewinds with ``reset()`` before each pass."""

    def reset(self):
        self.position = 0
