"""The memory ceiling over a byte count, timed in the same run (and loop) as the kernels it judges.

- CPU: ``numpy.sum`` of float32 buffers, the read bandwidth: on one thread ("ceiling") and split
  over the kernel's threads ("ceiling_mt"). ``pct_of_read_ceiling`` divides ours by the better.
- GPU: a device-to-device copy ("ceiling"); its GB/s count the bytes read plus the bytes written,
  as copy bandwidth is usually quoted.
The buffers rotate like the inputs they stand beside (``pool_n`` of them), so both read memory.
"""
import numpy as np

from .timing import Candidate, ParallelSum, reader_threads


def gpu_l2(ctx):
    """The current GPU's L2 cache in bytes (64 MiB when CuPy cannot say)."""
    try:
        return int(ctx.cupy.cuda.runtime.getDeviceProperties(ctx.cupy.cuda.Device().id)["l2CacheSize"])
    except Exception:
        return 64 << 20


class Ceiling:
    """Ceiling candidates over ``nbytes``; ``close()`` when timed, ``fill(result, timings)`` after."""

    def __init__(self, ctx, maker, nbytes, pool_n):
        elems = max(1, nbytes // 4)
        self.parallel = None
        if ctx.device == "cuda":
            cp = ctx.cupy
            srcs = [maker.uniform((elems,), np.float32) for _ in range(pool_n)]
            dst = cp.empty_like(srcs[0])
            stream = cp.cuda.get_current_stream()
            size = elems * 4

            def copy(i):
                dst.data.copy_from_device_async(srcs[i % pool_n].data, size, stream)
            self.name, self.bytes = "device-to-device copy (read+write bytes)", 2 * size
            self.candidates = [Candidate("ceiling", copy, ctx.sync_fn)]
            self._keep = (srcs, dst)
            return
        bufs = [maker.uniform((elems,), np.float32) for _ in range(pool_n)]
        self.name, self.bytes = "numpy.sum read (float32)", elems * 4
        self.parallel = ParallelSum(bufs, reader_threads())
        self.candidates = [Candidate("ceiling", lambda i: bufs[i % pool_n].sum()),
                           Candidate("ceiling_mt", self.parallel)]
        self._keep = bufs

    def close(self):
        """Stops the reader threads and lets the buffers go (the results keep only numbers)."""
        if self.parallel is not None:
            self.parallel.close()
        self.parallel = self._keep = None

    def fill(self, result, timings):
        """Adds the ceiling's GB/s and ours' share of it; ``result["gbps"]["ours"]`` must be set."""
        gbps = result["gbps"]
        for k, v in timings.items():
            if k.startswith("ceiling"):
                gbps[k] = self.bytes / v.median_s / 1e9
        result["ceiling"] = self.name
        result["pct_of_ceiling"] = 100.0 * gbps["ours"] / gbps["ceiling"]
        if "ceiling_mt" in timings:
            # A ceiling is the best the machine gave: threads sharing one CPU for a while (seen on
            # this VM) make the median of a threaded reader understate it.
            result["ceiling_mt"] = f"best of numpy.sum on {reader_threads()} threads, one slice each (float32)"
            result["ceiling_mt_best_gbps"] = self.bytes / min(timings["ceiling_mt"].samples_s) / 1e9
            result["pct_of_ceiling_mt"] = 100.0 * gbps["ours"] / result["ceiling_mt_best_gbps"]
            result["pct_of_read_ceiling"] = 100.0 * gbps["ours"] / max(gbps["ceiling"], gbps["ceiling_mt"])
