"""Instance masks kept as COCO RLE and decoded only when asked for (pycocotools)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


class MaskError(ValueError):
    """A segmentation that cannot be decoded (bad polygon or RLE)."""


def _normalise_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects(rle, *rle["size"])
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def segmentation_to_rle(segm: Any, height: int, width: int) -> dict[str, Any]:
    """COCO polygons (list of flat lists), uncompressed or compressed RLE to one compressed RLE."""
    try:
        if isinstance(segm, dict):
            rle = _normalise_rle(segm)
            if list(rle["size"]) != [height, width]:
                raise MaskError(f"RLE size {rle['size']} does not match the image size {[height, width]}")
            return rle
        if isinstance(segm, Sequence):
            polys = [list(map(float, p)) for p in segm if len(p) >= 6]
            if not polys:
                return encode(np.zeros((height, width), dtype=bool))
            rles = mask_utils.frPyObjects(polys, height, width)
            return mask_utils.merge(rles)
    except MaskError:
        raise
    except Exception as exc:  # pycocotools raises plain Exceptions / TypeErrors
        raise MaskError(f"cannot decode segmentation: {exc}") from exc
    raise MaskError(f"unknown segmentation type {type(segm).__name__}")


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Boolean ``(H, W)`` array to compressed RLE."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Compressed RLE to a boolean ``(H, W)`` array."""
    return mask_utils.decode(rle).astype(bool)


def rle_to_json(rle: dict[str, Any]) -> dict[str, Any]:
    """An RLE with ``counts`` as ``str``, ready for ``json.dump``."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


class LazyMask:
    """A mask held as its source segmentation and turned into RLE / a dense array on demand.

    The dense array is never cached, so a large dataset stays small in memory.
    """

    __slots__ = ("_segm", "_rle", "height", "width")

    def __init__(self, segm: Any, height: int, width: int) -> None:
        self._segm = segm
        self._rle: dict[str, Any] | None = None
        self.height = int(height)
        self.width = int(width)

    @classmethod
    def from_array(cls, mask: np.ndarray) -> LazyMask:
        m = cls(None, mask.shape[0], mask.shape[1])
        m._rle = encode(mask)
        return m

    @classmethod
    def from_rle(cls, rle: dict[str, Any]) -> LazyMask:
        m = cls(None, rle["size"][0], rle["size"][1])
        m._rle = _normalise_rle(rle)
        return m

    @property
    def rle(self) -> dict[str, Any]:
        if self._rle is None:
            self._rle = segmentation_to_rle(self._segm, self.height, self.width)
            self._segm = None
        return self._rle

    def decode(self) -> np.ndarray:
        return decode(self.rle)

    def area(self) -> int:
        return int(mask_utils.area(self.rle))

    def to_json(self) -> dict[str, Any]:
        return rle_to_json(self.rle)

    def __repr__(self) -> str:
        return f"LazyMask({self.height}x{self.width})"


def rle_intersection_area(a: dict[str, Any], b: dict[str, Any]) -> int:
    """|a ∩ b| in pixels, computed on the RLEs."""
    return int(mask_utils.area(mask_utils.merge([a, b], intersect=True)))
