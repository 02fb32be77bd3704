"""Backgrounds: folder listing, object-free source regions, repeatable crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from occseg.challenge.backgrounds import BackgroundPool, free_regions, list_background_files
from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.images import save_rgb


def test_list_background_files(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_background_files(tmp_path)] == ["a.JPG", "b.png"]


def test_free_regions_avoid_every_box(tmp_path: Path) -> None:
    save_rgb(tmp_path / "im.png", np.zeros((100, 100, 3), np.uint8))
    inst = Instance(id=1, category="thing", box=(0.0, 0.0, 50.0, 50.0))
    img = AnnotatedImage(image_id=1, path=tmp_path / "im.png", width=100, height=100, instances=[inst])
    ds = Dataset(images=[img], categories=["thing"], source=tmp_path / "x.json", format="coco")
    (reg,) = free_regions(ds, (10, 10), min_height=20, margin=4)
    # occupied: [0, 54) x [0, 54); the largest square of the tried sizes (100, 90, 81, ..., 51, 45) that fits is 45
    assert reg.window == (45, 45)
    for x, y in zip(reg.xs, reg.ys):
        assert x >= 54 or y >= 54
        assert x + 45 <= 100 and y + 45 <= 100
    assert free_regions(ds, (10, 10), min_height=50, margin=4) == []
    assert free_regions(ds, (10, 10), min_height=20, exclude_image_ids=[1]) == []


def test_pool_is_repeatable_and_sized(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    save_rgb(tmp_path / "a.png", rng.integers(0, 255, (300, 500, 3), dtype=np.uint8))
    pool = BackgroundPool((64, 48), list_background_files(tmp_path))
    a, info_a = pool.sample(np.random.Generator(np.random.PCG64(3)))
    b, info_b = pool.sample(np.random.Generator(np.random.PCG64(3)))
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and info_a == info_b
    x1, y1, x2, y2 = info_a["window"]
    assert abs((x2 - x1) / (y2 - y1) - 64 / 48) < 0.02 and x2 <= 500 and y2 <= 300
    with pytest.raises(ValueError, match="no backgrounds"):
        BackgroundPool((64, 48))
