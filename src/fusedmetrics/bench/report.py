"""Output: the tables on stdout and the JSON document."""
import json
import math


def format_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def render(doc, suite_modules):
    """All suites' tables as text, with the skip/error lines and the notes."""
    parts = []
    m = doc["machine"]
    gpu = m.get("gpu") or {}
    parts.append(f"fusedmetrics-bench  {doc['date']}  device={doc['options']['device']}  "
                 f"cpu={m['cpu_model']} ({m['cpu_cores_usable']} cores, LLC {_mib(m['last_level_cache_bytes'])})"
                 + (f"  gpu={gpu.get('name')}" if gpu.get("name") else "")
                 + f"  fusedmetrics threads={m.get('fusedmetrics_threads')}"
                 + (f"  load {_load(doc.get('load_average_at_start'))} -> {_load(m.get('load_average'))}"
                    if m.get("load_average") else ""))
    for name, suite in doc["suites"].items():
        parts.append("")
        status = suite["status"]
        if status == "skipped":
            parts.append(f"== {name}: skipped ({suite['reason']})")
            continue
        parts.append(f"== {name}" + (f": ERROR {suite['error']}" if status == "error" else ""))
        if suite["results"]:
            parts.append(format_table(*suite_modules[name].table(suite["results"])))
        if name == "accuracy" and suite["results"]:
            parts.append("labels: " + suite["results"][0]["labels"] + "; ceiling: " + suite["results"][0]["ceiling"]
                         + "; % ceiling = ours GB/s / ceiling GB/s; all-core = best sample of numpy.sum split over the "
                         "kernel's threads; x base / x chainer = their median time / ours, same run; "
                         "(best) = ours' fastest sample")
    if doc["notes"]:
        parts.append("")
        parts += ["note: " + n for n in doc["notes"]]
    return "\n".join(parts)


def _load(avg):
    return f"{avg[0]:.2f}" if avg else "?"


def _mib(n):
    return f"{n / 2**20:.0f} MiB" if n else "unknown"


def _clean(obj):
    """JSON cannot hold NaN/inf: they become strings (the tests reject them anyway)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return _clean(obj.item())
        except (TypeError, ValueError):
            return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def write_json(doc, path):
    with open(path, "w") as f:
        json.dump(_clean(doc), f, indent=1)
        f.write("\n")


def markdown(doc, suite_modules):
    """A RESULTS.md section: command, date, machine, versions, then the tables."""
    m, v = doc["machine"], doc["machine"]["versions"]
    gpu = m.get("gpu") or {}
    build = m.get("fusedmetrics_build_info")
    lines = [
        f"## {doc['options']['device'].upper()}: {gpu.get('name') or m['cpu_model']} ({doc['date']})",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"- Machine: {m['cpu_model']}, {m['cpu_cores_usable']} usable cores, last-level cache "
        f"{_mib(m['last_level_cache_bytes'])}, {m['memory_bytes'] / 2**30:.0f} GiB memory, {m['platform']}"
        if m.get("memory_bytes") else f"- Machine: {m['cpu_model']}, {m['cpu_cores_usable']} usable cores",
    ]
    if gpu.get("name"):
        lines.append(f"- GPU: {gpu['name']}, {gpu.get('memory_bytes', 0) / 2**30:.0f} GiB, "
                     f"compute capability {gpu.get('compute_capability')}, driver {gpu.get('driver_version')}, "
                     f"runtime {gpu.get('runtime_version')}")
    lines.append("- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val))
    lines.append(f"- fusedmetrics threads: {m.get('fusedmetrics_threads')}; build_info: `{build}`")
    lines.append(f"- Medians of {doc['options']['repeat']} rounds after {doc['options']['warmup']} warm-up "
                 "round(s); implementations interleaved; ratios = their median time / ours, same run.")
    lines += ["", "```", render(doc, suite_modules), "```", ""]
    return "\n".join(lines)
