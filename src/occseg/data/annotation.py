"""One in-memory representation of annotated images, shared by every reader, writer and command.

Boxes are ``(x1, y1, x2, y2)`` image pixels (see :mod:`occseg.geometry.boxes`). Masks are
:class:`~occseg.data.masks.LazyMask` objects (RLE, decoded on demand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occseg.data.masks import LazyMask, rle_intersection_area
from occseg.data.occlusion_order import pairwise_order_matrix
from occseg.geometry.boxes import Box

#: Occlusion levels of the paper's protocol: ``left <= fraction < right``; fractions >= 0.9 are in none.
OCCLUSION_LEVELS: dict[str, tuple[float, float]] = {
    "L0": (0.0, 0.01),
    "L1": (0.01, 0.30),
    "L2": (0.30, 0.60),
    "L3": (0.60, 0.90),
}


def occlusion_level(fraction: float | None) -> str | None:
    """The level name (``"L0"`` .. ``"L3"``) of an occlusion fraction, ``None`` outside every level."""
    if fraction is None:
        return None
    for name, (lo, hi) in OCCLUSION_LEVELS.items():
        if lo <= fraction < hi:
            return name
    return None


@dataclass
class Instance:
    """One annotated (or predicted) object of an image."""

    id: int
    category: str
    box: Box  # visible (modal) box
    mask: LazyMask | None = None  # visible (modal) mask
    amodal_box: Box | None = None
    amodal_mask: LazyMask | None = None
    cluster_id: int | None = None  # KINS oco_id
    order: int | None = None  # KINS ico_id: 0 = front, larger = further behind
    iscrowd: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific fields kept for round trips

    @property
    def has_amodal(self) -> bool:
        return self.amodal_mask is not None

    def occlusion_fraction(self) -> float | None:
        """|amodal \\ visible| / |amodal|, or ``None`` without both masks."""
        if self.amodal_mask is None or self.mask is None:
            return None
        amodal_area = self.amodal_mask.area()
        if amodal_area == 0:
            return None
        inside = rle_intersection_area(self.amodal_mask.rle, self.mask.rle)
        return float(amodal_area - inside) / float(amodal_area)


@dataclass
class AnnotatedImage:
    """An image file with its size and instances."""

    image_id: int
    path: Path
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return self.path.name

    def load_rgb(self) -> np.ndarray:
        """The image's pixels (:func:`~occseg.data.images.load_rgb`); a ``ValueError`` when the file's size is not
        the one annotated, whose boxes would then not fit it."""
        from occseg.data.images import load_rgb

        return load_rgb(self.path, size=(self.width, self.height))


@dataclass
class Dataset:
    """Images, the category names in id order, and what the reader noticed on the way."""

    images: list[AnnotatedImage]
    categories: list[str]
    source: Path
    format: str
    warnings: list[str] = field(default_factory=list)
    category_ids: dict[str, int] = field(default_factory=dict)  # name -> id as in the source file

    def __len__(self) -> int:
        return len(self.images)

    def num_instances(self) -> int:
        return sum(len(im.instances) for im in self.images)

    def instances_per_class(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for im in self.images:
            for inst in im.instances:
                counts[inst.category] = counts.get(inst.category, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def category_id(self, name: str) -> int:
        if name in self.category_ids:
            return self.category_ids[name]
        return self.categories.index(name) + 1


def require_dataset(value: object, name: str) -> Dataset:
    """``value`` when it is a :class:`Dataset`, else a ``TypeError`` naming the argument (a path is read with
    :func:`occseg.data.readers.read_dataset`)."""
    if not isinstance(value, Dataset):
        hint = ": read_dataset(path) reads one" if isinstance(value, (str, Path)) else ""
        raise TypeError(f"{name} must be a Dataset, not {type(value).__name__}{hint}")
    return value


def image_order_matrix(image: AnnotatedImage) -> np.ndarray | None:
    """:func:`~occseg.data.occlusion_order.pairwise_order_matrix` of an image whose instances all have visible
    and amodal masks."""
    if not image.instances or any(i.mask is None or i.amodal_mask is None for i in image.instances):
        return None
    return pairwise_order_matrix(
        [i.mask for i in image.instances],  # type: ignore[misc]
        [i.amodal_mask for i in image.instances],  # type: ignore[misc]
    )
