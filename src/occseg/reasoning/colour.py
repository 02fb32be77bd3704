"""Colour evidence for the reasoning's per-pixel competition, at image resolution.

Where two objects both claim a pixel, the pixel shows whichever of them is in front there, so it looks like
the rest of that object. Each object's colour model is a smoothed Lab histogram of the pixels that only it
claims (its visible mask minus every other object's visible mask); a pixel's strength for an object is the
log-density of the pixel's colour under that object's model. These strengths are on one scale for all
objects (log-densities over the same colour cells), as :func:`occseg.reasoning.orm.resolve_conflicts` needs.

The refined masks this works on already separate each object from its background (:mod:`occseg.refine`), so
no outlier model takes part here (measured on the Occlusion Challenge's train split, the validation set:
letting a background colour model take conflicted pixels cost unoccluded objects 1.7 points of visible mIoU
and the mean over levels 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from occseg.refine.colour import colour_index, histogram_log_density

#: Lab levels per channel of the colour histograms (16^3 cells)
DEFAULT_BINS = 16


@dataclass(frozen=True)
class ColourClaim:
    """``log p(colour(x) | object)`` of every pixel, looked up when asked for: indexing with a region (slices or
    a mask) gives that region's values, ``np.asarray`` the whole map. Storing one log-density per colour cell
    instead of one float per pixel keeps many objects on a large photo cheap."""

    index: np.ndarray  # (H, W) colour cell of every pixel (colour_index), shared by the objects of an image
    log_density: np.ndarray  # (bins^3,) float32

    @property
    def shape(self) -> tuple[int, ...]:
        return self.index.shape

    def __getitem__(self, region) -> np.ndarray:
        return self.log_density[self.index[region]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.log_density[self.index]
        return out if dtype is None else out.astype(dtype)


def exclusive_pixels(visible: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per object, the pixels of its visible mask that no other object's visible mask holds."""
    if not visible:
        return []
    count = np.zeros(visible[0].shape, dtype=np.int32)
    for v in visible:
        count += v
    return [v & (count == 1) for v in visible]


def colour_claims(
    image: np.ndarray,
    visible: Sequence[np.ndarray],
    *,
    bins: int = DEFAULT_BINS,
    min_pixels: int = 20,
    index: np.ndarray | None = None,
) -> list[ColourClaim]:
    """How well each object's colours explain every pixel: ``log p(colour(x) | object n)`` as a
    :class:`ColourClaim` per object (float32 values, indexable like an image-size map).

    ``image``: ``(H, W, 3)`` uint8 RGB; ``visible``: the objects' boolean visible masks (same size). An object's
    colour model comes from its exclusive pixels (:func:`exclusive_pixels`); when it has fewer than
    ``min_pixels`` of them, from its whole visible mask; an object with an empty mask explains no pixel (every
    colour gets the lowest density, that of the histogram's small uniform prior alone). ``index``: the image's
    :func:`~occseg.refine.colour.colour_index` at ``bins`` when the caller has it (a scene's rounds share one).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"colour_claims: need an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    for v in visible:
        if v.shape != image.shape[:2]:
            raise ValueError(f"colour_claims: a mask is {v.shape[1]}x{v.shape[0]}, the image {image.shape[1]}x"
                             f"{image.shape[0]}")  # fmt: skip
    if index is None:
        index = colour_index(image, bins)
    elif index.shape != image.shape[:2]:
        raise ValueError(f"colour_claims: index is {index.shape}, the image {image.shape[:2]}")
    out = []
    for own, v in zip(exclusive_pixels(visible), visible):
        source = own if int(np.count_nonzero(own)) >= min_pixels else v
        out.append(ColourClaim(index, histogram_log_density(index, source, bins).astype(np.float32)))
    return out
