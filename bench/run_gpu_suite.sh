#!/usr/bin/env bash
# The GPU suite, for a machine with an NVIDIA GPU, CUDA 13 (nvcc), CuPy and pytest
# (e.g. the H200 device machine: run from the repository root).
#   1. builds and installs fusedmetrics with its CUDA kernels (pip, no build isolation),
#   2. runs the GPU tests (and the CUDA build checks),
#   3. times accuracy counts at C in {10, 100, 1000, 32000}, float32 and float16, on
#      >= 1 GB of logits rotated over 3 buffers (so the 60 MB L2 cannot serve them),
#      against a device-to-device copy of the same bytes, with CUDA events (median),
#      and times DeviceMomentStore.add (wall clock per add) for 1, 8 and 64 keys.
# Results go to $OUT (default bench/out): build.log, gpu_tests.log, gpu_tests.xml,
# gpu_bench.json, gpu_bench.md, harness_gpu.json, harness_gpu.md.
#
# Environment: PYTHON (default python3), OUT, GIB (logit bytes per buffer in GiB,
# default 1), REPS (timed calls per case, default 30), SKIP_BUILD=1, SKIP_TESTS=1.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
status=0

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== build (log: $OUT/build.log)"
  if ! CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
      "$PY" -m pip install --no-build-isolation --no-deps -v . \
      -Ccmake.define.FUSEDMETRICS_CUDA=ON >"$OUT/build.log" 2>&1; then
    echo "build FAILED"; tail -40 "$OUT/build.log"; exit 1
  fi
fi
# The package lives under src/, so from the repository root the installed one is imported.
"$PY" -c "import fusedmetrics, fusedmetrics._cuda as c; print('cuda devices', c.device_count(), c.build_info())" \
  || { echo "import FAILED"; exit 1; }

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== GPU tests (log: $OUT/gpu_tests.log)"
  "$PY" -m pytest tests/gpu tests/test_summary_gpu.py tests/test_cuda_build.py -q -rs -p no:cacheprovider \
    --junitxml="$OUT/gpu_tests.xml" >"$OUT/gpu_tests.log" 2>&1 || status=1
  tail -25 "$OUT/gpu_tests.log"
fi

echo "== timings"
OUT="$OUT" GIB="${GIB:-1}" REPS="${REPS:-30}" PYTHONUNBUFFERED=1 "$PY" - <<'PYEOF' || status=1
import json, os, platform, statistics, subprocess, time

import cupy
import numpy as np

import fusedmetrics
from fusedmetrics import _cuda
from fusedmetrics._device import DeviceMomentStore

out_dir = os.environ["OUT"]
target_bytes = int(float(os.environ["GIB"]) * (1 << 30))
reps = int(os.environ["REPS"])
n_buffers = 3
dev = cupy.cuda.Device()
props = cupy.cuda.runtime.getDeviceProperties(dev.id)


def event_median(fn, rotate):
    """Median of per-call CUDA-event times (ms) over reps calls, after 3 warm-ups."""
    for i in range(3):
        fn(i % rotate)
    times = []
    for i in range(reps):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn(i % rotate)
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(times), min(times)


results = []
for dtype in ("float32", "float16"):
    itemsize = np.dtype(dtype).itemsize
    for C in (10, 100, 1000, 32000):
        N = -(-target_bytes // (C * itemsize))
        ys, ts = [], []
        for b in range(n_buffers):
            y = cupy.random.standard_normal((N, C), dtype=cupy.float32)
            ys.append(y.astype(dtype) if dtype != "float32" else y)
            del y
            ts.append(cupy.random.randint(0, C, size=N, dtype=cupy.int32))
        acc = cupy.zeros(2, dtype=cupy.int64)
        # exact check on the first rows (<= 128 MB as float64) against numpy's argmax on the host
        m = min(N, (1 << 24) // C + 1)
        got = fusedmetrics.accuracy_counts(ys[0][:m], ts[0][:m])
        host_y, host_t = cupy.asnumpy(ys[0][:m]).astype(np.float64), cupy.asnumpy(ts[0][:m])
        match = [int(got[0]), int(got[1])] == [int((host_y.argmax(axis=1) == host_t).sum()), m]
        del host_y, host_t
        acc_ms, acc_min = event_median(lambda i: fusedmetrics.accuracy_counts(ys[i], ts[i], out=acc), n_buffers)
        y_bytes, t_bytes = N * C * itemsize, N * 4
        dst = cupy.empty(y_bytes, dtype=cupy.uint8)
        stream_ptr = cupy.cuda.get_current_stream().ptr

        def copy(i):
            cupy.cuda.runtime.memcpyAsync(dst.data.ptr, ys[i].data.ptr, y_bytes,
                                          cupy.cuda.runtime.memcpyDeviceToDevice, stream_ptr)

        copy_ms, copy_min = event_median(copy, n_buffers)
        read_gbs = (y_bytes + t_bytes) / (acc_ms * 1e-3) / 1e9
        copy_gbs = 2 * y_bytes / (copy_ms * 1e-3) / 1e9  # read + write
        row = dict(dtype=dtype, C=C, N=N, logit_bytes=y_bytes, label_bytes=t_bytes,
                   accuracy_ms_median=acc_ms, accuracy_ms_min=acc_min, accuracy_read_GBps=read_gbs,
                   copy_ms_median=copy_ms, copy_ms_min=copy_min, copy_GBps_read_plus_write=copy_gbs,
                   fraction_of_copy=read_gbs / copy_gbs, counts_match_numpy=match)
        results.append(row)
        print(f"{dtype:8s} C={C:6d} N={N:10d}: {acc_ms:8.3f} ms {read_gbs:7.0f} GB/s | copy {copy_ms:8.3f} ms "
              f"{copy_gbs:7.0f} GB/s | {100 * read_gbs / copy_gbs:5.1f}% of copy | counts ok: {match}", flush=True)
        del ys, ts, dst, acc, got
        cupy.get_default_memory_pool().free_all_blocks()

# DeviceMomentStore.add: host wall time per add (one launch each), not synchronised per add.
summary_rows = []
for keys in (1, 8, 64):
    store = DeviceMomentStore(dev.id)
    values = cupy.random.standard_normal((1000, keys))
    slots = list(range(keys))
    rows = [[values[i, j] for j in range(keys)] for i in range(200)]
    weights = [1.0] * keys
    for i in range(10):
        store.add(slots, rows[i], weights)
    cupy.cuda.get_current_stream().synchronize()
    t0 = time.perf_counter()
    for i in range(200):
        store.add(slots, rows[i], weights)
    host_us = (time.perf_counter() - t0) / 200 * 1e6
    cupy.cuda.get_current_stream().synchronize()
    total_us = (time.perf_counter() - t0) / 200 * 1e6
    summary_rows.append(dict(keys=keys, add_host_us=host_us, add_until_done_us=total_us))
    print(f"DeviceMomentStore.add, {keys:3d} keys: {host_us:6.1f} us per add (host), "
          f"{total_us:6.1f} us including the device", flush=True)

try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
except Exception as exc:  # noqa: BLE001
    smi = f"nvidia-smi failed: {exc}"
meta = dict(device=props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
            sms=props["multiProcessorCount"], l2_bytes=props.get("l2CacheSize"), nvidia_smi=smi,
            cupy=cupy.__version__, python=platform.python_version(), build_info=_cuda.build_info(),
            buffers_rotated=n_buffers, reps=reps, logit_bytes_target=target_bytes,
            method="median of per-call CUDA event times after 3 warm-ups; accuracy GB/s = (logits + int32 labels) "
                   "bytes / time; copy GB/s = 2 x bytes / time (cudaMemcpyAsync device to device, same bytes)")
with open(os.path.join(out_dir, "gpu_bench.json"), "w") as f:
    json.dump(dict(meta=meta, accuracy=results, summary_add=summary_rows), f, indent=2, default=str)
lines = [f"# GPU accuracy counts vs device copy ({meta['device']}, {meta['sms']} SMs)", "",
         f"`bash bench/run_gpu_suite.sh`; {meta['method']}; {n_buffers} buffers rotated.", "",
         "| dtype | C | N | logits GB | accuracy ms | accuracy GB/s | copy GB/s (r+w) | % of copy | counts = numpy |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in results:
    lines.append(f"| {r['dtype']} | {r['C']} | {r['N']} | {r['logit_bytes'] / 1e9:.2f} | {r['accuracy_ms_median']:.3f} | "
                 f"{r['accuracy_read_GBps']:.0f} | {r['copy_GBps_read_plus_write']:.0f} | "
                 f"{100 * r['fraction_of_copy']:.1f} | {r['counts_match_numpy']} |")
lines += ["", "| DeviceMomentStore.add keys | host us/add | us/add until done |", "|---|---|---|"]
lines += [f"| {r['keys']} | {r['add_host_us']:.1f} | {r['add_until_done_us']:.1f} |" for r in summary_rows]
with open(os.path.join(out_dir, "gpu_bench.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
# The packaged harness on the GPU as well (Chainer is absent on the H200 image: its
# baselines and the evaluator suite are skipped with a note).
"$PY" -m fusedmetrics.bench --device cuda --dtype float32,float16 --no-progress \
  --json "$OUT/harness_gpu.json" --markdown "$OUT/harness_gpu.md" || status=1
exit $status
