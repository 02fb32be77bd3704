"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    """The real-data folder: ``$OCCSEG_DATA``, else ``../shared/data`` relative to the repository root (the one
    helper the benchmarks use too, :func:`occseg.benchmarking.data_dir`)."""
    from occseg.benchmarking import data_dir

    return data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data (coco128-seg, coco-tiny, cocoa-demo, kitti-sample, ...); skips the test when absent."""
    path = shared_data_path()
    if not path.is_dir():
        pytest.skip(f"real data folder not found: {path} (set OCCSEG_DATA to the folder holding coco128-seg etc.)")
    return path


def need_data(shared_data: Path, *names: str) -> None:
    """Skip the test, naming what is missing, when a sub-folder it reads is not in the real-data folder (a partial
    copy, such as one made for another machine)."""
    missing = [n for n in names if not (shared_data / n).exists()]
    if missing:
        pytest.skip(f"not in the real data folder {shared_data}: {', '.join(missing)}")


@pytest.fixture(scope="session")
def lite0_backbone():
    """The default backbone (EfficientNet-Lite0, offline ImageNet weights), loaded once per session."""
    from occseg.backbones import get_backbone

    return get_backbone()


@pytest.fixture(scope="session")
def tiny_compnet(shared_data: Path, tmp_path_factory, lite0_backbone):
    """A CompNet learned once per session from the boxes of 4 coco128-seg images (persons + giraffes, 16
    concepts, 96-px crops); see tests/compnet/conftest.py. Has ``model``, ``folder`` (saved), ``data``, ``images``."""
    from tests.compnet.conftest import torch_threads, train_tiny_compnet

    with torch_threads(1):
        return train_tiny_compnet(shared_data, tmp_path_factory.mktemp("tiny_compnet"), backbone=lite0_backbone)


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (see tests/compnet/conftest.py: torch_threads), restoring it after."""
    from tests.compnet.conftest import torch_threads

    with torch_threads(1):
        yield
