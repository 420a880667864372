"""Argument parsing and the run: plan every suite, run its cases, print tables, write JSON/PNG."""
import argparse
import datetime
import sys
import traceback

import numpy as np

from . import machine, report, suite_accuracy, suite_bandwidth, suite_confusion, suite_evaluator, suite_summary
from .context import Context
from .data import SWEEP, parse_classes, parse_shapes, sweep_shapes
from .errors import GuardError, SkipSuite
from .optional import cupy_with_device, try_import
from .progress import Progress

MODES = ("back-to-back", "loop")
SUITES = {m.NAME: m for m in (suite_accuracy, suite_summary, suite_evaluator, suite_bandwidth, suite_confusion)}


def build_parser():
    p = argparse.ArgumentParser(
        prog="fusedmetrics-bench",
        description="Benchmark fusedmetrics against numpy, Chainer and CuPy on this machine. "
                    "Medians over repeats after warm-up; baselines and ours interleaved; ratios from the same run.")
    p.add_argument("--suite", default=",".join(SUITES),
                   help=f"comma-separated suites to run (default: all of {','.join(SUITES)})")
    p.add_argument("--shapes", default=None,
                   help="accuracy shapes NxC, comma-separated, e.g. 1048576x10,16384x1000 "
                        "(default: C in {10, 100, 1000, 32000}, N grown until the inputs exceed the last-level cache; "
                        "1 GB or more on a GPU)")
    p.add_argument("--classes", default=None,
                   help="accuracy class counts, comma-separated, each with N grown until one input is at "
                        "least --min-mb and beyond the last-level cache; 'sweep' = " + ",".join(map(str, SWEEP)))
    p.add_argument("--min-mb", type=float, default=640.0,
                   help="smallest accuracy input for --classes, in MB (default 640)")
    p.add_argument("--mode", default="back-to-back,loop",
                   help="call patterns for the accuracy suite, comma-separated: back-to-back (calls follow each "
                        "other), loop (each timed call after --gap-ms of other memory traffic, as after a model "
                        "step); default both")
    p.add_argument("--gap-ms", type=float, default=10.0, help="length of the loop mode's other work (default 10 ms)")
    p.add_argument("--dtype", default="float32", help="logit dtypes, comma-separated: float16,bfloat16,float32,float64 "
                   "(bfloat16 needs ml_dtypes)")
    p.add_argument("--label-dtype", default="int32", help="label dtype (default int32)")
    p.add_argument("--labels", choices=("argmax", "half", "random"), default="argmax",
                   help="accuracy labels: argmax (every row correct, every score must be read: default), "
                        "half (about half correct), random (uniform)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--torch", nargs="?", const="on", choices=("auto", "on", "off"), default="auto",
                   help="accuracy suite: also time ours on torch CPU tensors (the same buffers) and TorchMetrics' "
                        "MulticlassAccuracy(average='micro').update; 'auto' (default) does so when torch is "
                        "importable, except with --quick (its inputs are large: pass --torch to include them)")
    p.add_argument("--quick", action="store_true",
                   help="the embedded default: fewer shapes and repeats (under 2 minutes on 2 CPU cores)")
    p.add_argument("--repeat", type=int, default=None, help="timed rounds per figure (default 5 quick, 15 full)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 1 quick, 2 full)")
    p.add_argument("--threads", type=int, default=None, help="fusedmetrics.set_num_threads(N) before timing")
    p.add_argument("--json", metavar="PATH", default=None, help="write every figure and the machine description")
    p.add_argument("--plot", metavar="PATH", default=None, help="write a PNG (needs matplotlib)")
    p.add_argument("--markdown", metavar="PATH", default=None,
                   help="write a RESULTS.md section (command, date, machine, versions, tables)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--from-json", metavar="PATH", default=None,
                   help="run nothing: print the tables of a saved JSON (and --plot/--markdown it)")
    return p


def _bfloat16_name():
    """numpy has no bfloat16; ml_dtypes registers one (and its name, which np.dtype then takes)."""
    try:
        import ml_dtypes
    except ImportError:
        raise ValueError("--dtype bfloat16 needs the ml_dtypes package (pip install ml_dtypes)") from None
    return np.dtype(ml_dtypes.bfloat16).name


def _dtypes(text):
    out = []
    for name in text.split(","):
        name = name.strip()
        if not name:
            continue
        if name == "bfloat16":
            out.append(_bfloat16_name())
            continue
        dt = np.dtype(name)
        if dt.kind != "f":
            raise ValueError(f"--dtype: {name} is not a floating dtype")
        out.append(dt.name)
    return out


def run(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.from_json:
        return _from_json(args)
    try:
        suites = [s.strip() for s in args.suite.split(",") if s.strip()]
        unknown = [s for s in suites if s not in SUITES]
        if unknown:
            raise ValueError(f"--suite: unknown {unknown}; choose from {list(SUITES)}")
        dtypes = _dtypes(args.dtype)
        label_dtype = np.dtype(args.label_dtype)
        if label_dtype.kind not in "iu":
            raise ValueError(f"--label-dtype: {args.label_dtype} is not an integer dtype")
        shapes = parse_shapes(args.shapes) if args.shapes else None
        if args.classes:
            if shapes:
                raise ValueError("--classes and --shapes exclusive: give one")
            shapes = sweep_shapes(parse_classes(args.classes), dtypes[0], label_dtype,
                                  max(int(args.min_mb * 1e6), (machine.last_level_cache_bytes() or 0) + 1))
        modes = tuple(m.strip() for m in args.mode.split(",") if m.strip())
        if not modes or any(m not in MODES for m in modes):
            raise ValueError(f"--mode: expected a comma-separated subset of {MODES}, got {args.mode!r}")
        if not args.gap_ms > 0:
            raise ValueError("--gap-ms must be > 0")
        if args.repeat is not None and args.repeat < 1:
            raise ValueError("--repeat must be >= 1")
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))

    cupy = None
    if args.device == "cuda":
        cupy, why = cupy_with_device()
        if cupy is None:
            print(f"fusedmetrics-bench: --device cuda needs CuPy and a GPU: {why}", file=sys.stderr)
            return 2

    fm, why = try_import("fusedmetrics")
    if args.threads is not None:
        if fm is None or not hasattr(fm, "set_num_threads"):
            print(f"fusedmetrics-bench: --threads ignored: fusedmetrics.set_num_threads unavailable ({why})",
                  file=sys.stderr)
        else:
            fm.set_num_threads(args.threads)

    llc = machine.last_level_cache_bytes()
    ctx_notes = []
    use_torch = _torch_variant(args, ctx_notes)
    ctx = Context(device=args.device,
                  repeat=args.repeat or (5 if args.quick else 15),
                  warmup=args.warmup if args.warmup is not None else (1 if args.quick else 2),
                  quick=args.quick, dtypes=dtypes, label_dtype=label_dtype.name, label_mode=args.labels,
                  shapes=shapes,
                  llc_bytes=llc, min_sample_s=0.005 if args.quick else 0.02, cupy=cupy,
                  modes=modes, gap_s=args.gap_ms / 1e3,
                  torch=use_torch)
    ctx.notes.extend(ctx_notes)
    if llc is None:
        ctx.notes.append("last-level cache size unknown: assumed 32 MiB")

    doc = {
        "schema": "fusedmetrics-bench/1",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["fusedmetrics-bench"] + list(argv)),
        "options": {"suites": suites, "shapes": [list(s) for s in shapes] if shapes else None,
                    "dtypes": dtypes, "label_dtype": label_dtype.name, "labels": args.labels,
                    "device": args.device, "modes": list(modes), "gap_ms": args.gap_ms,
                    "quick": args.quick, "repeat": ctx.repeat, "warmup": ctx.warmup, "threads": args.threads,
                    "torch": ctx.torch},
        "suites": {},
        "notes": ctx.notes,
        "load_average_at_start": machine.load_average(),
    }

    # Plan first, so the progress bar knows the total.
    plans = {}
    for name in suites:
        try:
            plans[name] = SUITES[name].plan(ctx)
            doc["suites"][name] = {"status": "ok", "results": []}
        except SkipSuite as exc:
            doc["suites"][name] = {"status": "skipped", "reason": str(exc), "results": []}
            print(f"fusedmetrics-bench: suite {name} skipped: {exc}", file=sys.stderr)
        except Exception as exc:
            doc["suites"][name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}", "results": []}
            print(f"fusedmetrics-bench: suite {name} failed to plan: {exc}", file=sys.stderr)
    total = sum(SUITES[n].steps(ctx, c) for n, cases in plans.items() for c in cases)
    ctx.progress = Progress(total, enabled=not args.no_progress)

    for name, cases in plans.items():
        mod, entry = SUITES[name], doc["suites"][name]
        for i, case in enumerate(cases):
            ctx.progress.set_label(mod.label(case))
            try:
                result = mod.run_case(ctx, case)  # one result, or one per call pattern
                entry["results"].extend(result if isinstance(result, list) else [result])
            except GuardError as exc:
                entry["status"], entry["error"] = "error", f"correctness guard: {exc}"
            except Exception as exc:
                entry["status"], entry["error"] = "error", f"{type(exc).__name__}: {exc}"
                entry["traceback"] = traceback.format_exc()
            if entry["status"] == "error":
                ctx.progress.note(f"fusedmetrics-bench: suite {name} aborted: {entry['error']}")
                ctx.progress.step(sum(mod.steps(ctx, c) for c in cases[i:]))
                break
    ctx.progress.close()

    doc["machine"] = machine.describe(cupy)
    # Files first: a reader of stdout that goes away (`| head`) must not cost the results.
    written = []
    if args.json:
        report.write_json(doc, args.json)
        written.append(f"JSON written to {args.json}")
    written += _write_extras(doc, args)
    try:
        print(report.render(doc, SUITES))
        for line in written:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()   # nothing more can be shown; the exit code still tells
    return 1 if any(s["status"] == "error" for s in doc["suites"].values()) else 0


def _torch_variant(args, notes):
    """Whether the accuracy suite adds its torch-input candidates; why not goes into ``notes``."""
    if args.torch == "off":
        return False
    if args.device != "cpu":
        if args.torch == "on":
            notes.append("--torch: the torch variant is CPU only; skipped on --device cuda")
        return False
    if args.torch == "auto" and args.quick:
        return False
    torch, why = try_import("torch")
    if torch is None:
        notes.append(f"accuracy: torch baselines skipped: {why}")
        return False
    return True


def _write_extras(doc, args):
    """Write --markdown and --plot; return the lines that say what was written."""
    written = []
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report.markdown(doc, SUITES))
        written.append(f"markdown written to {args.markdown}")
    if args.plot:
        from .plot import write_plot
        why = write_plot(doc, args.plot)
        if why:
            print(why, file=sys.stderr)
        else:
            written.append(f"plot written to {args.plot}")
    return written


def _from_json(args):
    import json
    with open(args.from_json) as f:
        doc = json.load(f)
    print(report.render(doc, SUITES))
    for line in _write_extras(doc, args):
        print(line)
    return 0
