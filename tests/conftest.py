"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    """The real-data folder: ``$OCCSEG_DATA``, else ``../shared/data`` relative to the repository root."""
    env = os.environ.get("OCCSEG_DATA")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data (coco128-seg, coco-tiny, cocoa-demo, kitti-sample, ...); skips the test when absent."""
    path = shared_data_path()
    if not path.is_dir():
        pytest.skip(f"real data folder not found: {path} (set OCCSEG_DATA to the folder holding coco128-seg etc.)")
    return path
