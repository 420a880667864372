"""What every suite gets: the options, the array module, the optional baselines and the progress bar."""
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .optional import try_import


@dataclass
class Context:
    device: str                      # "cpu" or "cuda"
    repeat: int
    warmup: int
    quick: bool
    dtypes: list
    label_dtype: str
    label_mode: str
    shapes: Optional[list]           # None: the suite's defaults
    llc_bytes: Optional[int]
    min_sample_s: float
    cupy: Any = None                 # set when device == "cuda"
    progress: Any = None
    notes: list = field(default_factory=list)
    modes: tuple = ("back-to-back",)  # call patterns: "back-to-back", "loop" (see timing.MemoryGap)
    gap_s: float = 0.010
    torch: bool = False               # accuracy suite: torch CPU tensor input and TorchMetrics candidates
    _gap: Any = None
    _chainer: Any = None
    _chainer_why: Optional[str] = None
    _chainer_tried: bool = False

    @property
    def xp(self):
        return self.cupy if self.device == "cuda" else np

    def sync(self):
        """Wait for queued device work (no-op on the CPU)."""
        if self.device == "cuda":
            self.cupy.cuda.get_current_stream().synchronize()

    @property
    def sync_fn(self):
        return self.sync if self.device == "cuda" else None

    def chainer(self):
        """(chainer, None) or (None, why); imported once, on first need."""
        if not self._chainer_tried:
            self._chainer_tried = True
            self._chainer, self._chainer_why = try_import("chainer")
            if self._chainer is not None:
                try:   # chainer.functions and reporter are separate imports in some versions
                    import chainer.functions  # noqa: F401
                    import chainer.training.extensions  # noqa: F401
                except Exception as exc:
                    self._chainer, self._chainer_why = None, f"chainer incomplete ({type(exc).__name__}: {exc})"
            if self._chainer is not None and self.device == "cuda":
                cuda = getattr(self._chainer.backends, "cuda", None)
                if not getattr(cuda, "available", False):
                    self._chainer_why = "chainer cannot use this CuPy (chainer.backends.cuda.available is False)"
                    self._chainer = None
        return self._chainer, self._chainer_why

    def memory_gap(self):
        """The loop mode's stand-in for a model step, built (and calibrated) once per run."""
        if self._gap is None:
            from .timing import MemoryGap
            self._gap = MemoryGap(self.gap_s, self.llc_bytes)
        return self._gap

    def note(self, text):
        """A one-line note kept for the JSON and shown on stderr once."""
        if text not in self.notes:
            self.notes.append(text)
            if self.progress is not None:
                self.progress.note("note: " + text)
