"""Copy-paste occlusion for the mask head's training (boxes only): a donor box's pixels, cut out with its own
self-training target as the alpha, are pasted over part of another training box, so the head sees pixels inside
its box that look like a person but belong to another person in front (Ghiasi et al., CVPR 2021, "Simple
Copy-Paste"; the Occlusion Challenge's images are made the same way).

Pure functions: which donor and where (:func:`draw_paste`, seeded by the indices alone), the pasted box
(:func:`paste_box`), the cut-out (:func:`cutout_of`) and the composite (:func:`composite`). The crops are
rendered by :func:`occseg.head.learn.paste_crops_of_image`."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from occseg.geometry.boxes import Box

#: the largest height (px) a donor's cut-out is kept at (it is scaled again when pasted)
CUTOUT_HEIGHT = 256


@dataclass(frozen=True)
class PasteDraw:
    """One composite's random choices: the donor (index among every training box), the pasted height relative to
    the target box's, the share of the target box's width it covers, from the left (``side`` 0) or the right
    (1), and how far its bottom lies below the target box's bottom (relative to the target box's height)."""

    donor: int
    height: float
    cover: float
    side: int
    drop: float


def draw_paste(
    seed: int,
    index: int,
    composite_index: int,
    n_boxes: int,
    heights: tuple[float, float],
    covers: tuple[float, float],
    drops: tuple[float, float] = (0.0, 0.15),
) -> PasteDraw | None:
    """The choices of composite ``composite_index`` of training box ``index`` (of ``n_boxes``), from a generator
    seeded by ``seed`` and the two indices alone (so they do not depend on the ranks or the order of work);
    ``None`` when there is no other box to take as the donor."""
    if n_boxes < 2:
        return None
    rng = np.random.default_rng([seed, index, composite_index])
    donor = int(rng.integers(n_boxes - 1))
    donor += donor >= index
    return PasteDraw(
        donor=donor,
        height=float(rng.uniform(*heights)),
        cover=float(rng.uniform(*covers)),
        side=int(rng.integers(2)),
        drop=float(rng.uniform(*drops)),
    )


def paste_box(box: Box, donor_size: tuple[int, int], draw: PasteDraw) -> Box:
    """Where the cut-out of ``donor_size`` ``(height, width)`` goes over ``box``: ``draw.height`` times the box's
    height at the donor's aspect, its bottom ``draw.drop`` box heights below the box's bottom, overlapping
    ``draw.cover`` of the box's width from its left (``side`` 0) or right (1) edge. It may leave the image."""
    x1, y1, x2, y2 = box
    bh, bw = y2 - y1, x2 - x1
    ph = draw.height * bh
    pw = ph * donor_size[1] / max(donor_size[0], 1)
    bottom = y2 + draw.drop * bh
    overlap = draw.cover * bw
    left = x1 + overlap - pw if draw.side == 0 else x2 - overlap
    return (left, bottom - ph, left + pw, bottom)


def cutout_of(rgb: np.ndarray, box: Box, mask: np.ndarray, max_height: int = CUTOUT_HEIGHT) -> torch.Tensor:
    """``(4, h, w)`` uint8: the pixels of ``box`` in ``rgb`` and, as the alpha (0 or 255), the image-size
    boolean ``mask`` there; at most ``max_height`` rows (area-resampled)."""
    H, W = mask.shape
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(W, max(x1 + 1, int(np.ceil(box[2])))), min(H, max(y1 + 1, int(np.ceil(box[3]))))
    rgba = np.dstack([rgb[y1:y2, x1:x2], mask[y1:y2, x1:x2].astype(np.uint8) * 255])
    if rgba.shape[0] > max_height:
        size = (max(1, round(rgba.shape[1] * max_height / rgba.shape[0])), max_height)
        rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).contiguous()


def composite(rgb: np.ndarray, cutout: torch.Tensor, box: Box) -> tuple[np.ndarray, np.ndarray, Box]:
    """``rgb`` with ``cutout`` (:func:`cutout_of`) pasted into ``box`` (rounded to pixels, scaled to it, alpha
    blended); returns the composite, the image-size float32 alpha of the pasted pixels and the pasted box cut to
    the image (``x1, y1, x2, y2``)."""
    H, W = rgb.shape[:2]
    x0, y0 = int(round(box[0])), int(round(box[1]))
    w, h = max(1, int(round(box[2])) - x0), max(1, int(round(box[3])) - y0)
    rgba = cv2.resize(cutout.permute(1, 2, 0).numpy(), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = np.zeros((H, W), np.float32)
    cx1, cy1, cx2, cy2 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx2 <= cx1 or cy2 <= cy1:
        return rgb.copy(), alpha, (float(cx1), float(cy1), float(cx1), float(cy1))
    part = rgba[cy1 - y0 : cy2 - y0, cx1 - x0 : cx2 - x0]
    alpha[cy1:cy2, cx1:cx2] = part[..., 3] / 255.0
    a = alpha[cy1:cy2, cx1:cx2, None]  # blended inside the pasted box only: elsewhere the alpha is 0
    out = rgb.copy()
    blend = rgb[cy1:cy2, cx1:cx2].astype(np.float32) * (1.0 - a) + part[..., :3] * a
    out[cy1:cy2, cx1:cx2] = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return out, alpha, (float(cx1), float(cy1), float(cx2), float(cy2))
