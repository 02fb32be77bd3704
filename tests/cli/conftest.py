"""Fixtures of the command tests: small annotation files and a saved random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.compnet.conftest import write_coco_subset


@pytest.fixture(scope="session")
def train_json(shared_data: Path, tmp_path_factory) -> Path:
    """Boxes only (no segmentation) of 2 images with one person each: 000000000036 and 000000000322."""
    return write_coco_subset(shared_data, tmp_path_factory.mktemp("train") / "sub.json", [36, 322])


@pytest.fixture(scope="session")
def one_image_json(shared_data: Path, tmp_path_factory) -> Path:
    return write_coco_subset(shared_data, tmp_path_factory.mktemp("p") / "g.json", [192])


@pytest.fixture(scope="session")
def segment_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A saved (random) model folder and a 640x480 image: the boxes file is checked before the model is used,
    so these error tests need no real data."""
    from occseg.compnet.model import save_model
    from occseg.data.images import save_rgb
    from tests.compnet.conftest import random_model

    root = tmp_path_factory.mktemp("segment_inputs")
    save_model(random_model(), root / "model")
    save_rgb(root / "img.png", np.full((480, 640, 3), 90, np.uint8))
    return root / "model", root / "img.png"
