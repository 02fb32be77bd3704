"""Builders of tiny GT / prediction datasets for the evaluation tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import LazyMask
from occseg.geometry.boxes import mask_to_box


def rect(h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Boolean ``(h, w)`` mask with rows ``r0:r1`` and columns ``c0:c1`` set."""
    m = np.zeros((h, w), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def inst(
    id: int,
    visible: np.ndarray,
    amodal: np.ndarray | None = None,
    *,
    category: str = "car",
    scenario: str | None = None,
    box: tuple[float, float, float, float] | None = None,
) -> Instance:
    extra = {} if scenario is None else {"scenario": scenario}
    vbox = box or mask_to_box(visible) or (0.0, 0.0, 1.0, 1.0)
    return Instance(
        id=id,
        category=category,
        box=vbox,
        mask=LazyMask.from_array(visible),
        amodal_box=mask_to_box(amodal) if amodal is not None else None,
        amodal_mask=LazyMask.from_array(amodal) if amodal is not None else None,
        extra=extra,
    )


def image(image_id: int, instances: list[Instance], h: int, w: int, path: Path | None = None) -> AnnotatedImage:
    return AnnotatedImage(
        image_id=image_id, path=path or Path(f"/nonexistent/{image_id}.png"), width=w, height=h, instances=instances
    )


def dataset(
    images: list[AnnotatedImage], categories: tuple[str, ...] = ("car", "person"), source: str = "gt"
) -> Dataset:
    return Dataset(images=images, categories=list(categories), source=Path(source), format="test")


@pytest.fixture
def build() -> SimpleNamespace:
    return SimpleNamespace(rect=rect, inst=inst, image=image, dataset=dataset)
