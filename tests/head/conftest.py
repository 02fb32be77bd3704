"""Constructed mask-head training crops (random features, a box, Lab colours with flat patches, noisy targets)."""

from __future__ import annotations

import torch

from occseg.geometry.boxes import CropWindow
from occseg.head.config import HeadSettings
from occseg.head.inputs import HeadCrop

#: the channels of the constructed crops' two blocks
COARSE, FINE = 12, 6


def synthetic_settings(width: int = 8) -> HeadSettings:
    """A small head for :func:`synthetic_crops`."""
    return HeadSettings(
        fine_layer="fine", fine_channels=FINE, fine_stride=8, coarse_channels=COARSE, width=width, compnet_inputs=False
    )


def synthetic_crop(seed: int, h: int, w: int) -> HeadCrop:
    """A crop of ``h x w`` fine cells (``h``, ``w`` even) with its box in the middle and a noisy target."""
    g = torch.Generator().manual_seed(seed)
    geo = torch.zeros(4, h, w)
    geo[0] = torch.linspace(-1.5, 1.5, w)[None, :]
    geo[1] = torch.linspace(-1.5, 1.5, h)[:, None]
    geo[2, h // 4 : h - h // 4, w // 4 : w - w // 4] = 1.0
    lab = torch.rand(3, h // 2, w // 2, generator=g).repeat_interleave(2, 1).repeat_interleave(2, 2) * 60
    return HeadCrop(
        box=(8.0 * (w // 4), 8.0 * (h // 4), 8.0 * (w - w // 4), 8.0 * (h - h // 4)),
        window=CropWindow(window=(0, 0, 8 * w, 8 * h), scale=1.0, size=(8 * h, 8 * w)),
        image_size=(8 * h, 8 * w),
        stride=8,
        coarse=torch.randn(COARSE, h // 2, w // 2, generator=g),
        fine=torch.randn(FINE, h, w, generator=g),
        lab=lab,
        geo=geo,
        target=(geo[2:3] * torch.rand(1, h, w, generator=g)).round(),
    )


def synthetic_crops(n: int, seed: int = 0) -> list[HeadCrop]:
    """``n`` crops of a few sizes (so batches are padded)."""
    sizes = [(8, 6), (10, 8), (6, 10), (12, 8)]
    return [synthetic_crop(seed * 1000 + k, *sizes[k % len(sizes)]) for k in range(n)]
