"""Backbone features of box crops, batched, and of whole images.

Crop geometry (:func:`occseg.geometry.boxes.crop_window`): the box is scaled so its height becomes
``target_height``; the crop is the box plus ``pad`` pixels (at that scale) on every side, stopping at the
image border; its size is rounded up to whole stride cells. Crop pixel ``(u, v)`` and image point
``(x, y)`` are related by ``u = (x - window_x1) * scale`` (continuous coordinates, pixel edges at
integers). The crop is rendered with exactly that affine map (bilinear, antialiased when shrinking).
The rounding up to whole cells extends the crop on its right/bottom side: with image content where the
image goes on, with the mean colour (0 after normalisation) past the image border.

Batching: the crops of one image are sorted by size and cut into batches of ``batch_size``; each batch is
zero-padded (in normalised space, i.e. with the mean colour) at the bottom/right to its largest crop and
run through the backbone once with :meth:`~occseg.backbones.registry.Backbone.forward_padded`, which zeroes
the activations outside each crop before every spatial convolution. Every box is in exactly one batch and
gets the same features as when run alone (to float rounding; tested), and each crop's own cells are sliced
back out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from occseg.backbones.registry import Backbone
from occseg.backbones.taps import FineLayer, tap
from occseg.data.images import as_rgb_array
from occseg.geometry.boxes import Box, CropWindow, cell_centres_image, crop_window, validate_box


def default_batch_size(batch_size: int | None, device) -> int:
    """Crops per backbone batch: as given, else 1 on CPU (measured fastest on 2 cores) and 8 on CUDA."""
    if batch_size:
        return batch_size
    return 8 if str(device).startswith("cuda") else 1


@dataclass
class CropConfig:
    """How box crops are made and batched."""

    target_height: int = 224
    pad: int = 16
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.target_height < 1 or self.pad < 0 or self.batch_size < 1:
            raise ValueError(
                f"CropConfig needs target_height >= 1, pad >= 0, batch_size >= 1; got {self.target_height}, "
                f"{self.pad}, {self.batch_size}"
            )


@dataclass
class BoxFeatures:
    """The backbone features of one box crop.

    ``features`` is ``(C, h, w)`` float32 with ``h = window.size[0] // stride`` and
    ``w = window.size[1] // stride``; cell ``(r, c)`` covers crop pixels ``[r*stride, (r+1)*stride) x
    [c*stride, (c+1)*stride)``. ``box`` is the box that was used (clipped to the image when it stuck out;
    ``warning`` then says so).
    """

    box: Box
    window: CropWindow
    features: torch.Tensor
    stride: int
    warning: str | None = None
    # the finer block's features ``(C', h * stride / fine_stride, ...)`` when asked for (``fine_layer``), else None
    fine: torch.Tensor | None = None

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(h, w)``: feature cells."""
        return (self.window.size[0] // self.stride, self.window.size[1] // self.stride)

    @property
    def cell_size_image(self) -> float:
        """Side of one feature cell in image pixels."""
        return self.stride / self.window.scale

    def cell_centers_image(self) -> np.ndarray:
        """``(h, w, 2)`` image coordinates ``(x, y)`` of every feature cell's centre (continuous, pixel edges at
        integers)."""
        return cell_centres_image(self.window, self.stride, self.grid_size)

    def box_cells(self) -> tuple[int, int, int, int]:
        """``(c1, r1, c2, r2)`` - the box convention ``(x1, y1, x2, y2)`` in cell indices: the half-open range of
        the cells whose centres lie inside the box.

        Same rule as for pixels (:func:`~occseg.geometry.boxes.box_to_pixel_mask`); a box thinner than a
        cell still gets the one cell that holds its centre.
        """
        h, w = self.grid_size
        x1, y1 = self.window.image_to_crop(self.box[0], self.box[1])
        x2, y2 = self.window.image_to_crop(self.box[2], self.box[3])

        def span(a: float, b: float, n: int) -> tuple[int, int]:
            lo = min(max(math.ceil(a / self.stride - 0.5), 0), n)
            hi = min(max(math.ceil(b / self.stride - 0.5), 0), n)
            if hi <= lo:  # thinner than a cell: the cell holding the box centre
                lo = min(max(int((a + b) / 2 // self.stride), 0), n - 1)
                hi = lo + 1
            return lo, hi

        r1, r2 = span(y1, y2, h)
        c1, c2 = span(x1, x2, w)
        return (c1, r1, c2, r2)


def _device(backbone: Backbone, device: str | torch.device | None) -> torch.device:
    if device is None:
        return backbone.device
    dev = torch.device(device)
    backbone.to(dev)  # no-op when already there
    return backbone.device


def render_crop(image: torch.Tensor, win: CropWindow) -> torch.Tensor:
    """The resized crop ``(C, *win.size)`` of a float ``(C, H, W)`` image (usually normalised).

    Crop pixel ``(u, v)`` samples image point ``(u / scale + x1, v / scale + y1)`` (bilinear, antialiased when
    shrinking, i.e. ``F.interpolate`` with the exact ``scale`` rather than a rounded size ratio). Parts of
    the crop beyond the image are 0.
    """
    _, H, W = image.shape
    ch, cw = win.size
    s = win.scale
    x0, y0 = win.window[:2]
    margin = math.ceil(1.0 / s) + 1  # real pixels past the far edge for the interpolation support
    x_end = min(W, math.ceil(x0 + cw / s) + margin)
    y_end = min(H, math.ceil(y0 + ch / s) + margin)
    region = image[:, y0:y_end, x0:x_end]
    rh, rw = region.shape[1:]
    oh, ow = math.floor(rh * s), math.floor(rw * s)
    if oh >= 1 and ow >= 1:
        out = F.interpolate(
            region[None],
            scale_factor=(s, s),
            mode="bilinear",
            align_corners=False,
            antialias=s < 1.0,
            recompute_scale_factor=False,
        )[0]
    else:  # a sliver thinner than one crop pixel
        out = F.interpolate(region[None], size=(max(1, oh), max(1, ow)), mode="bilinear", align_corners=False)[0]
    out = out[:, :ch, :cw]
    if out.shape[1:] != (ch, cw):
        out = F.pad(out, (0, cw - out.shape[2], 0, ch - out.shape[1]))
    return out


def box_windows(
    boxes: Sequence[Sequence[float]], width: int, height: int, cfg: CropConfig, stride: int
) -> list[tuple[Box, CropWindow, str | None]]:
    """Validate every box against the image and compute its crop window.

    Raises :class:`~occseg.geometry.boxes.BoxError` naming the box (index and values) for zero-area,
    inverted or fully outside boxes; boxes partly outside are clipped (with a warning string).
    """
    out = []
    for i, b in enumerate(boxes):
        box, warning = validate_box(b, width, height, what=f"box {i}")
        win = crop_window(box, width, height, target_height=cfg.target_height, pad=cfg.pad, stride=stride)
        out.append((box, win, warning))
    return out


def extract_box_features(
    backbone: Backbone,
    image: np.ndarray,
    boxes: Sequence[Sequence[float]],
    cfg: CropConfig | None = None,
    *,
    device: str | torch.device | None = None,
    progress: bool = False,
    fine_layer: FineLayer | None = None,
) -> list[BoxFeatures]:
    """Backbone features of each box's padded, rescaled crop, in the order of ``boxes`` (``progress``: a bar of
    the boxes done, on stderr).

    ``fine_layer``: also keep that finer block's output (same pass) in ``BoxFeatures.fine``.

    ``image``: ``(H, W, 3)`` uint8 RGB (grayscale, RGBA, 16-bit and float images are converted).
    ``device``: where to compute and return the features (default: the backbone's device; the backbone is
    moved there if needed). One backbone pass per box, in batches of ``cfg.batch_size`` (see module doc).
    """
    cfg = cfg or CropConfig()
    rgb = as_rgb_array(image)
    H, W = rgb.shape[:2]
    spec = backbone.spec
    stride = spec.stride
    geo = box_windows(boxes, W, H, cfg, stride)
    if not geo:
        return []
    _device(backbone, device)
    order = sorted(range(len(geo)), key=lambda i: (geo[i][1].size, i))  # similar sizes share a batch
    feats: list[torch.Tensor | None] = [None] * len(geo)
    fine: list[torch.Tensor | None] = [None] * len(geo)
    with torch.inference_mode(), tap(backbone, fine_layer.module if fine_layer else None) as tapped:
        img = backbone.normalize(rgb)[0]  # (3, H, W) on the device, normalised once
        bar = tqdm(total=len(order), desc="box features", unit="box", disable=not progress, leave=False)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            bar.update(len(idx))
            crops = [render_crop(img, geo[i][1]) for i in idx]
            bh = max(c.shape[1] for c in crops)
            bw = max(c.shape[2] for c in crops)
            batch = img.new_zeros((len(crops), 3, bh, bw))
            for k, c in enumerate(crops):
                batch[k, :, : c.shape[1], : c.shape[2]] = c
            out = backbone.forward_padded(batch, [c.shape[1:] for c in crops])
            fine_out = tapped.pop() if fine_layer is not None else None
            for k, i in enumerate(idx):
                ch, cw = geo[i][1].size
                feats[i] = out[k, :, : ch // stride, : cw // stride]
                if fine_out is not None:
                    fine[i] = fine_out[k, :, : ch // fine_layer.stride, : cw // fine_layer.stride]
        bar.close()
    # clone outside inference mode: ordinary tensors, each owning only its own cells
    return [
        BoxFeatures(
            box=box,
            window=win,
            features=f.clone().float(),
            stride=stride,
            warning=warning,
            fine=None if g is None else g.clone().float(),
        )
        for (box, win, warning), f, g in zip(geo, feats, fine)
    ]


def extract_image_features(
    backbone: Backbone, image: np.ndarray, *, device: str | torch.device | None = None
) -> torch.Tensor:
    """Features of the whole image at its own scale: ``(C, ceil(H / stride), ceil(W / stride))`` float32.

    Cell ``(r, c)`` is centred on image point ``((c + 0.5) * stride, (r + 0.5) * stride)``.
    """
    rgb = as_rgb_array(image)
    _device(backbone, device)
    with torch.inference_mode():
        out = backbone(backbone.normalize(rgb))[0]
    return out.clone().float()
