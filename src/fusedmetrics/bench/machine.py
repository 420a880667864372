"""Description of the machine and software a run was made on (goes into the JSON and RESULTS.md)."""
import glob
import os
import platform
import re
import subprocess
import sys

from .optional import try_import, version_of

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def _parse_size(text):
    m = re.match(r"^\s*(\d+)\s*([KMG]?)(?:i?B)?\s*$", text.strip(), re.IGNORECASE)
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).upper()] if m else None


def last_level_cache_bytes():
    """Size of the largest cache level of CPU 0 (sysfs, then lscpu); None when unknown.

    Per-instance size: an L3 shared by all cores counts once; it is the amount a rotation of input
    buffers has to exceed so that timings do not measure the cache.
    """
    best_level, best_size = -1, None
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(index, "level")) as f:
                level = int(f.read())
            with open(os.path.join(index, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(index, "size")) as f:
                size = _parse_size(f.read())
        except (OSError, ValueError):
            continue
        if kind != "Instruction" and size and level > best_level:
            best_level, best_size = level, size
    if best_size:
        return best_size
    try:
        out = subprocess.run(["lscpu", "-B"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for name in ("L3 cache", "L2 cache"):
        m = re.search(rf"^{name}:\s*(\d+)", out, re.MULTILINE)
        if m:
            return int(m.group(1))
    return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def memory_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def gpu_description(cupy):
    """Name, memory, compute capability and driver/runtime versions of the current device."""
    if cupy is None:
        return None
    try:
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"]
        return {
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "device_id": dev.id,
            "memory_bytes": int(props["totalGlobalMem"]),
            "compute_capability": f"{props['major']}.{props['minor']}",
            "multiprocessors": int(props["multiProcessorCount"]),
            "l2_cache_bytes": int(props.get("l2CacheSize", 0)),
            "driver_version": cupy.cuda.runtime.driverGetVersion(),
            "runtime_version": cupy.cuda.runtime.runtimeGetVersion(),
        }
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def load_average():
    """1/5/15-minute load: a busy machine explains noisy figures."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def describe(cupy=None):
    fm, _ = try_import("fusedmetrics")
    build = None
    threads = None
    if fm is not None:
        try:
            build = fm.build_info()
        except Exception as exc:
            build = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            threads = fm.get_num_threads()
        except Exception:
            threads = None
    return {
        "cpu_model": cpu_model(),
        "cpu_cores_usable": usable_cores(),
        "cpu_count": os.cpu_count(),
        "last_level_cache_bytes": last_level_cache_bytes(),
        "memory_bytes": memory_bytes(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "gpu": gpu_description(cupy),
        "fusedmetrics_threads": threads,
        "versions": {
            "python": sys.version.split()[0],
            "numpy": version_of("numpy"),
            "cupy": version_of("cupy") if cupy is not None else None,
            "chainer": version_of("chainer"),
            "fusedmetrics": getattr(fm, "__version__", None) if fm is not None else None,
            "matplotlib": version_of("matplotlib"),
        },
        "fusedmetrics_build_info": build,
    }
