"""How many CPUs the command line lets torch use (src/occseg/cli/cpus.py)."""

from __future__ import annotations

import os
from pathlib import Path

from occseg.cli.cpus import cgroup_cpu_quota, limit_threads, usable_cpus


def _v2(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def _v1(root: Path, quota: str, period: str = "100000") -> Path:
    (root / "cpu").mkdir(parents=True, exist_ok=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return root


def test_quota_read_from_either_cgroup_version(tmp_path: Path):
    assert cgroup_cpu_quota(_v2(tmp_path / "a", "150000 100000\n")) == 1.5
    assert cgroup_cpu_quota(_v2(tmp_path / "b", "max 100000\n")) is None
    assert cgroup_cpu_quota(_v2(tmp_path / "c", "garbage\n")) is None
    assert cgroup_cpu_quota(_v1(tmp_path / "d", "200000")) == 2.0
    assert cgroup_cpu_quota(_v1(tmp_path / "e", "-1")) is None
    assert cgroup_cpu_quota(tmp_path / "none") is None


def test_usable_cpus_is_the_affinity_cut_by_the_quota(tmp_path: Path):
    mine = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "none") == mine
    assert usable_cpus(_v2(tmp_path / "half", "50000 100000")) == 1  # never 0
    assert usable_cpus(_v2(tmp_path / "big", f"{(mine + 8) * 100000} 100000")) == mine


def test_threads_are_limited_only_where_the_quota_is_below_the_cores(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    env: dict[str, str] = {}
    assert limit_threads(env, _v2(tmp_path / "q", "1600000 100000")) == 16 and env == {"OMP_NUM_THREADS": "16"}
    env = {"OMP_NUM_THREADS": "4"}  # the user's choice stands
    assert limit_threads(env, _v2(tmp_path / "q", "1600000 100000")) is None and env == {"OMP_NUM_THREADS": "4"}
    env = {}
    assert limit_threads(env, tmp_path / "none") is None and env == {}  # all 64 cores usable: torch's default
