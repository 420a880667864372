"""Which CPU kernel builds the dispatcher offers: what the CPU reports (/proc/cpuinfo, read
independently of the C++ check), except in the AVX-512 emulation test build, which offers
avx512 wherever avx2 runs and says so in build_info()."""
import os

import pytest

import fusedmetrics
from fusedmetrics import _core

AVX512_PARTS = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def cpu_flags():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo")
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    pytest.skip("no flags line in /proc/cpuinfo (not x86)")


def test_avx512_is_offered_only_on_such_a_cpu_or_in_the_emulating_build():
    info = fusedmetrics.build_info()
    if "avx512" not in info["cpu_isas_compiled"].split(","):
        pytest.skip("this build has no AVX-512 kernels")
    usable = _core.usable_isas()
    if info["avx512_emulated"]:
        assert ("avx512" in usable) == ("avx2" in usable), usable
    else:
        assert ("avx512" in usable) == ("avx2" in usable and AVX512_PARTS <= cpu_flags()), usable


def test_avx2_is_offered_only_on_such_a_cpu():
    if "avx2" not in fusedmetrics.build_info()["cpu_isas_compiled"].split(","):
        pytest.skip("this build has no AVX2 kernels")
    needed = {"avx2", "fma", "bmi1", "bmi2", "f16c", "abm", "popcnt"}
    assert ("avx2" in _core.usable_isas()) == (needed <= cpu_flags())
