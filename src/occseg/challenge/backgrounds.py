"""Backgrounds for composed images: random crops of photos in a folder and/or object-free regions of the source.

Every background is a crop with the output's aspect ratio, flipped at random and resized to the output size.
Object-free regions are windows of a source image that meet no annotated box (dilated by a margin), found for
all positions at once with an integral image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occseg.data.annotation import Dataset
from occseg.data.images import load_rgb

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def list_background_files(folder: str | Path) -> list[Path]:
    """The image files of a folder (not recursive), sorted by name; errors name the folder."""
    p = Path(folder)
    if p.is_file():
        raise FileNotFoundError(f"backgrounds folder {p} is a file, not a folder of photos")
    if not p.is_dir():
        raise FileNotFoundError(f"backgrounds folder not found: {p}")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ValueError(f"backgrounds folder {p} holds no images ({exts})")
    return files


@dataclass(frozen=True)
class SourceRegion:
    """The largest object-free windows of one source image: all their top-left corners."""

    path: Path
    image_id: int
    file_name: str
    window: tuple[int, int]  # (width, height) of the windows
    xs: np.ndarray  # int32 top-left x of each free window
    ys: np.ndarray  # int32 top-left y


def _box_sums(integral: np.ndarray, wh: int, ww: int) -> np.ndarray:
    """Sum of the occupancy over every ``wh x ww`` window (rows: top y, cols: left x)."""
    s = integral
    return s[wh:, ww:] - s[:-wh, ww:] - s[wh:, :-ww] + s[:-wh, :-ww]


def free_regions(
    dataset: Dataset,
    size: tuple[int, int],
    *,
    min_height: int = 120,
    margin: int = 4,
    max_positions: int = 2000,
    exclude_image_ids: Sequence[int] = (),
) -> list[SourceRegion]:
    """For each source image with a file, the largest windows of the output's aspect ratio holding no object.

    ``size`` is the output ``(width, height)``. Annotated boxes of every class (crowds included), grown by
    ``margin`` pixels, are occupied. Windows shorter than ``min_height`` pixels are not used. At most
    ``max_positions`` corners are kept per image (an evenly spaced subset).
    """
    out_w, out_h = size
    aspect = out_w / out_h
    excluded = set(exclude_image_ids)
    regions: list[SourceRegion] = []
    for image in dataset.images:
        if image.image_id in excluded or not Path(image.path).is_file():
            continue
        h, w = image.height, image.width
        occ = np.zeros((h, w), dtype=np.int32)
        for inst in image.instances:
            x1, y1, x2, y2 = inst.box
            xa, ya = max(0, math.floor(x1) - margin), max(0, math.floor(y1) - margin)
            xb, yb = min(w, math.ceil(x2) + margin), min(h, math.ceil(y2) + margin)
            if xb > xa and yb > ya:
                occ[ya:yb, xa:xb] = 1
        integral = np.zeros((h + 1, w + 1), dtype=np.int64)
        integral[1:, 1:] = occ.cumsum(0).cumsum(1)
        wh = int(min(h, math.floor(w / aspect)))
        while wh >= min_height:
            ww = min(w, int(round(wh * aspect)))
            free = _box_sums(integral, wh, ww) == 0
            if free.any():
                ys, xs = np.nonzero(free)
                if ys.size > max_positions:
                    keep = np.linspace(0, ys.size - 1, max_positions).round().astype(np.int64)
                    ys, xs = ys[keep], xs[keep]
                regions.append(
                    SourceRegion(
                        path=Path(image.path),
                        image_id=image.image_id,
                        file_name=image.file_name,
                        window=(ww, wh),
                        xs=xs.astype(np.int32),
                        ys=ys.astype(np.int32),
                    )
                )
                break
            wh = int(wh * 0.9)
    return regions


def _resize_to(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out_w, out_h = size
    interp = cv2.INTER_AREA if crop.shape[1] > out_w else cv2.INTER_LINEAR
    return cv2.resize(crop, (out_w, out_h), interpolation=interp)


class BackgroundPool:
    """Draws backgrounds of one output size from folder photos and/or object-free source regions.

    Each draw first picks the kind (folder or region, in proportion to how many of each there are), then one
    item uniformly, then a crop; all randomness comes from the generator passed in.
    """

    def __init__(
        self,
        size: tuple[int, int],
        files: Sequence[Path] = (),
        regions: Sequence[SourceRegion] = (),
        *,
        min_crop: float = 0.6,
    ) -> None:
        if not files and not regions:
            raise ValueError("no backgrounds: give a backgrounds folder or use object-free regions of the source")
        self.size = (int(size[0]), int(size[1]))
        self.files = list(files)
        self.regions = list(regions)
        self.min_crop = float(min_crop)
        self._cache: dict[Path, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.files) + len(self.regions)

    def _load(self, path: Path) -> np.ndarray:
        img = self._cache.get(path)
        if img is None:
            img = load_rgb(path)
            if len(self._cache) >= 32:
                self._cache.pop(next(iter(self._cache)))
            self._cache[path] = img
        return img

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """A ``(height, width, 3)`` uint8 background and where it came from."""
        k = int(rng.integers(len(self)))
        flip = bool(rng.random() < 0.5)
        out_w, out_h = self.size
        if k < len(self.files):
            path = self.files[k]
            img = self._load(path)
            sh, sw = img.shape[:2]
            aspect = out_w / out_h
            cw_max = min(float(sw), sh * aspect)
            u = float(rng.uniform(self.min_crop, 1.0))
            cw = max(1, min(sw, int(round(cw_max * u))))
            ch = max(1, min(sh, int(round(cw / aspect))))
            x0 = int(rng.integers(0, sw - cw + 1))
            y0 = int(rng.integers(0, sh - ch + 1))
            info: dict[str, Any] = {"file": path.name, "window": [x0, y0, x0 + cw, y0 + ch], "flip": flip}
        else:
            reg = self.regions[k - len(self.files)]
            img = self._load(reg.path)
            j = int(rng.integers(reg.xs.size))
            x0, y0 = int(reg.xs[j]), int(reg.ys[j])
            cw, ch = reg.window
            info = {
                "source_image": reg.file_name,
                "source_image_id": reg.image_id,
                "window": [x0, y0, x0 + cw, y0 + ch],
                "flip": flip,
            }
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        if flip:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(_resize_to(np.ascontiguousarray(crop), self.size)), info
