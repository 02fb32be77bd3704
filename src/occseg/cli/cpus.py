"""How many CPUs the ``occseg`` process may use, so that torch starts no more threads than that.

In a container limited by a CPU quota (``docker run --cpus N``) the machine's cores are all visible, and torch
(through OpenMP) starts one thread per core; with more threads than CPUs to run them, the threads wait on each
other (measured on 2 cores: 16 threads made ``benchmarks/reasoning_challenge.py`` take 68 s instead of 48 s). The
command line therefore sets ``OMP_NUM_THREADS`` to the usable CPUs before torch is imported, unless it is set.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

#: Where Linux shows the process's control groups (v2: ``cpu.max``; v1: ``cpu/cpu.cfs_quota_us``).
CGROUP_ROOT = Path("/sys/fs/cgroup")

#: Variables that already say how many threads to start; when one is set, occseg leaves the threads alone.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of the process's control group in CPUs (``1.5``: one and a half CPUs' time), or ``None``
    when there is none or it cannot be read (v2 ``cpu.max`` "max 100000"; v1 quota ``-1``)."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else _ratio(float(quota), float(period))
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.is_file():
            quota = float(v1.read_text().strip())
            period = float((root / "cpu" / "cpu.cfs_period_us").read_text().strip())
            return None if quota < 0 else _ratio(quota, period)
    except (OSError, ValueError):
        return None
    return None


def _ratio(quota: float, period: float) -> float | None:
    return quota / period if quota > 0 and period > 0 else None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on (its affinity mask), fewer when its control group's quota is lower."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def limit_threads(environ: MutableMapping[str, str] | None = None, root: Path = CGROUP_ROOT) -> int | None:
    """Set ``OMP_NUM_THREADS`` to :func:`usable_cpus` when that is fewer than the machine's cores and no thread
    variable is set; returns the number set, or ``None`` when nothing was changed. Acts only on threads started
    after it (torch reads the variable when it is imported)."""
    env = os.environ if environ is None else environ
    if any(env.get(v) for v in THREAD_VARIABLES):
        return None
    n = usable_cpus(root)
    if n >= (os.cpu_count() or 1):
        return None
    env["OMP_NUM_THREADS"] = str(n)
    return n
