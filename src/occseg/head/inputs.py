"""What the mask head sees of one box crop (:class:`HeadCrop`): the two backbone blocks, the crop's Lab colour,
the box-relative position, the given boxes and, optionally, the CompositionalNet's per-cell terms.

Everything lives on the crop's cells (:mod:`occseg.features.crops`): the finer block's cells (the head's output
cells, ``fine_stride`` crop pixels each) and the stride-16 cells for the backbone's last block and the CompNet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from occseg.compnet.scoring import cell_terms, from_grid
from occseg.features.crops import render_crop
from occseg.geometry.boxes import Box, CropWindow, cell_centres_image

if TYPE_CHECKING:
    from occseg.compnet.model import CompNetModel


@dataclass
class HeadCrop:
    """The head's inputs for one box crop. ``fine`` / ``lab`` / ``geo`` are on the head's cells ``(h, w)``,
    ``coarse`` / ``compnet`` on the stride-16 cells ``(h / 2, w / 2)`` (for a stride-8 head)."""

    box: Box
    window: CropWindow
    image_size: tuple[int, int]  # (height, width)
    stride: int  # the head's cells in crop pixels
    coarse: torch.Tensor  # (C, h2, w2)
    fine: torch.Tensor  # (C', h, w)
    lab: torch.Tensor  # (3, h, w) CIE Lab (L 0..100), for the colour-affinity loss
    geo: torch.Tensor  # (4, h, w) box-relative u, v (-1 .. 1 across the box), in the box, in another given box
    compnet: torch.Tensor | None = None  # (6, h2, w2) compnet_channels
    target: torch.Tensor | None = None  # (1, h, w) a noisy mask to learn from (self-training), share of each cell
    cutout: torch.Tensor | None = None  # (4, h', w') uint8 RGBA: the box's pixels, its target as alpha (paste)

    def extra(self) -> torch.Tensor:
        """``(7, h, w)``: the Lab colour scaled to about -1..1, then ``geo``."""
        scale = self.lab.new_tensor([50.0, 50.0, 50.0])[:, None, None]
        shift = self.lab.new_tensor([1.0, 0.0, 0.0])[:, None, None]
        return torch.cat([self.lab / scale - shift, self.geo])


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``(3, H, W)`` float32 in [0, 1] of an ``(H, W, 3)`` uint8 RGB image."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0


def crop_lab(image: torch.Tensor, window: CropWindow, stride: int) -> torch.Tensor:
    """``(3, h, w)`` mean colour of every ``stride``-px cell of the crop, in CIE Lab (OpenCV's float conversion:
    L 0..100, a and b about -128..127). ``image``: :func:`image_tensor`."""
    crop = render_crop(image, window)
    cells = F.avg_pool2d(crop[None], stride)[0]
    rgb = cells.permute(1, 2, 0).clamp(0, 1).contiguous().numpy()
    return torch.from_numpy(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)).permute(2, 0, 1).contiguous()


def geo_channels(
    box: Box, others: Sequence[Box], window: CropWindow, stride: int, size: tuple[int, int]
) -> torch.Tensor:
    """``(4, h, w)`` per cell centre: ``u, v`` (-1 at the box's left / top edge, +1 at its right / bottom edge),
    1 inside the box, 1 inside any of the ``others`` boxes."""
    centres = cell_centres_image(window, stride, size)
    x, y = centres[..., 0], centres[..., 1]
    u = (x - box[0]) / max(box[2] - box[0], 1e-6)
    v = (y - box[1]) / max(box[3] - box[1], 1e-6)
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    other = np.zeros_like(inside)
    for b in others:
        other |= (x >= b[0]) & (x < b[2]) & (y >= b[1]) & (y < b[3])
    maps = np.stack([2 * u - 1, 2 * v - 1, inside, other]).astype(np.float32)
    return torch.from_numpy(maps)


def compnet_channels(model: CompNetModel, state: Any, category: str, mixture: int) -> torch.Tensor:
    """``(6, h, w)`` on the crop's stride-16 cells: the posteriors of object / context / occluder under the
    class's mixture (no fg bias; uniform off the class grid), the part-position classifier's probability that the
    cell lies inside the box and its expected box-relative ``u, v`` (-1..1; zeros without a classifier).
    ``state``: the object's :class:`~occseg.inference.single.ObjectState`."""
    s = model.settings
    t = state.terms[category]
    cm = model.classes[category]
    log_ctx = t.log_ctx[mixture] if s.test_ring_context else t.log_ctx_model[mixture]
    terms = cell_terms(t.log_fg[mixture], log_ctx, cm.prior_fg[mixture], t.log_out, outlier_weight=s.outlier_weight)
    post = torch.softmax(terms, 0)
    post = from_grid(post, t.offset, state.crop_cells, fill=1.0 / 3.0).float().cpu()
    h, w = state.crop_cells
    pos = torch.zeros((3, h, w))
    if state.position is not None and model.position is not None:
        rows, cols = model.position.bins
        p = state.position.float().cpu().exp()
        inside = 1.0 - p[-1]
        grid = p[:-1].reshape(rows, cols, h, w)
        cu = (torch.arange(cols, dtype=torch.float32) + 0.5) / cols
        cv = (torch.arange(rows, dtype=torch.float32) + 0.5) / rows
        eu = (grid.sum(0) * cu[:, None, None]).sum(0) / inside.clamp_min(1e-6)
        ev = (grid.sum(1) * cv[:, None, None]).sum(0) / inside.clamp_min(1e-6)
        pos = torch.stack([inside, 2 * eu - 1, 2 * ev - 1])
    return torch.cat([post, pos])


def head_crop(
    image: torch.Tensor,
    box: Box,
    others: Sequence[Box],
    window: CropWindow,
    coarse: torch.Tensor,
    fine: torch.Tensor,
    fine_stride: int,
    compnet: torch.Tensor | None = None,
) -> HeadCrop:
    """One crop's :class:`HeadCrop` from its features (``BoxFeatures.features`` / ``.fine``) and the image."""
    size = tuple(fine.shape[-2:])
    return HeadCrop(
        box=box,
        window=window,
        image_size=tuple(image.shape[-2:]),
        stride=fine_stride,
        coarse=coarse,
        fine=fine,
        lab=crop_lab(image, window, fine_stride)[:, : size[0], : size[1]],
        geo=geo_channels(box, others, window, fine_stride, size),
        compnet=compnet,
    )


def mask_to_cells(mask: np.ndarray, window: CropWindow, stride: int, size: tuple[int, int]) -> torch.Tensor:
    """``(1, h, w)``: the share of each crop cell (``stride`` crop px) covered by an image-size boolean mask."""
    h, w = size
    wx1, wy1, wx2, wy2 = window.window
    cell_px = stride / window.scale
    full_h, full_w = max(1, round(h * cell_px)), max(1, round(w * cell_px))
    region = mask[wy1:wy2, wx1:wx2].astype(np.float32)[:full_h, :full_w]
    canvas = np.zeros((full_h, full_w), np.float32)
    canvas[: region.shape[0], : region.shape[1]] = region
    return torch.from_numpy(cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA))[None]
