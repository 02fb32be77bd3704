"""Running occseg under torchrun in tests: two local processes, gloo, one thread each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def run_occseg(*args: object, ranks: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m occseg ARGS`` (``ranks`` None), or ``torchrun --standalone --nproc-per-node RANKS -m occseg
    ARGS``, with this checkout's ``src`` first on the path and one torch thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    launch = [sys.executable]
    if ranks is not None:
        launch += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    cmd = [*launch, "-m", "occseg", *(str(a) for a in args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def read_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()
