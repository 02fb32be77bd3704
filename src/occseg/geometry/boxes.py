"""Pure box geometry. One convention everywhere: ``(x1, y1, x2, y2)`` in image pixels.

A box covers the pixels whose centres ``(x + 0.5, y + 0.5)`` lie inside it, so a box
``(0, 0, 2, 2)`` covers the 2x2 pixels at the top left. Readers convert other conventions
(COCO ``xywh``, YOLO normalised centres) once with the helpers here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from occseg.checks import is_integer, is_number

Box = tuple[float, float, float, float]


class BoxError(ValueError):
    """A box that cannot be used (zero area, inverted, outside the image, not four numbers)."""


def as_box(values: Sequence[float]) -> Box:
    """Four numbers as a float box tuple, or :class:`BoxError`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise BoxError(f"a box must be a list of 4 numbers (x1, y1, x2, y2), got {values!r}")
    if len(values) != 4:
        raise BoxError(f"a box needs 4 numbers (x1, y1, x2, y2), got {len(values)}: {list(values)!r}")
    if any(isinstance(v, (str, bytes, bool, np.bool_)) for v in values):  # float() would accept "100" and True
        raise BoxError(f"box values must be numbers, got {list(values)!r}")
    try:
        box = tuple(float(v) for v in values)
    except OverflowError:  # an integer beyond any float
        raise BoxError("box values must be finite, got an integer beyond any float") from None
    except (TypeError, ValueError) as exc:
        raise BoxError(f"box values must be numbers, got {list(values)!r}") from exc
    if not all(math.isfinite(v) for v in box):
        raise BoxError(f"box values must be finite, got {list(values)!r}")
    return box  # type: ignore[return-value]


def xywh_to_xyxy(box: Sequence[float]) -> Box:
    """COCO ``[x, y, w, h]`` to ``(x1, y1, x2, y2)``."""
    if isinstance(box, Sequence | np.ndarray) and not isinstance(box, (str, bytes)) and len(box) != 4:
        raise BoxError(f"a box [x, y, w, h] needs 4 numbers, got {len(box)}: {list(box)!r:.200}")
    x, y, w, h = as_box(box)
    return (x, y, x + w, y + h)


def xyxy_to_xywh(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` to COCO ``[x, y, w, h]``."""
    x1, y1, x2, y2 = as_box(box)
    return (x1, y1, x2 - x1, y2 - y1)


def cxcywh_norm_to_xyxy(box: Sequence[float], width: int, height: int) -> Box:
    """YOLO normalised ``(cx, cy, w, h)`` to pixel ``(x1, y1, x2, y2)``."""
    cx, cy, w, h = as_box(box)
    return ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def box_width(box: Box) -> float:
    return box[2] - box[0]


def box_height(box: Box) -> float:
    return box[3] - box[1]


def _floats(box: Box) -> Box:
    """The four numbers as Python floats: unsigned integers would wrap around when subtracted."""
    if len(box) != 4:
        raise BoxError(f"a box needs 4 numbers (x1, y1, x2, y2), got {len(box)}: {list(box)!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2)


def box_area(box: Box) -> float:
    """Area, 0 for an empty or inverted box."""
    x1, y1, x2, y2 = _floats(box)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (continuous areas, 0 when both are empty)."""
    a, b = _floats(a), _floats(b)
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def overlapping_pairs(boxes: Sequence[Box] | np.ndarray) -> list[tuple[int, int]]:
    """The pairs ``(i, j)``, ``i < j``, of boxes that share some area (touching edges do not), in order: the
    only pairs two objects can compete in. One vectorised test per box against those after it, so the time is
    ``O(N^2)`` in C but the memory ``O(N)`` (no ``N x N`` array), and Python loops over the overlapping pairs
    only."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pairs: list[tuple[int, int]] = []
    for i in range(len(b) - 1):
        rest = b[i + 1 :]
        hit = (np.minimum(rest[:, 2], b[i, 2]) > np.maximum(rest[:, 0], b[i, 0])) & (
            np.minimum(rest[:, 3], b[i, 3]) > np.maximum(rest[:, 1], b[i, 1])
        )
        pairs.extend((i, i + 1 + int(k)) for k in np.flatnonzero(hit))
    return pairs


def clip_box(box: Box, width: int, height: int) -> Box:
    """Clip a box to the image ``[0, width] x [0, height]``."""
    x1, y1, x2, y2 = box
    return (
        min(max(x1, 0.0), float(width)),
        min(max(y1, 0.0), float(height)),
        min(max(x2, 0.0), float(width)),
        min(max(y2, 0.0), float(height)),
    )


def validate_box(box: Sequence[float], width: int, height: int, *, what: str = "box") -> tuple[Box, str | None]:
    """Check a box against an image; return the usable (possibly clipped) box and a warning or ``None``.

    Raises :class:`BoxError` (with ``what`` in the message) for inverted or zero-area boxes, for boxes
    entirely outside the image and for boxes that hold no pixel centre in one direction (thinner than a
    pixel between two centres: no mask pixel could ever lie inside them). A box partly outside is clipped
    and a warning is returned.
    """
    for name, size in (("width", width), ("height", height)):
        if not is_number(size) or not (math.isfinite(size) and size > 0):
            raise ValueError(f"{what}: the image {name} must be a number > 0, not {size!r}")
    try:
        b = as_box(box)
    except BoxError as exc:
        raise BoxError(f"{what}: {exc}") from exc
    if b[2] < b[0] or b[3] < b[1]:
        raise BoxError(f"{what}: inverted box {list(b)} (x2 < x1 or y2 < y1)")
    if b[2] - b[0] <= 0 or b[3] - b[1] <= 0:
        raise BoxError(f"{what}: zero-area box {list(b)}")
    c = clip_box(b, width, height)
    if c[2] - c[0] <= 0 or c[3] - c[1] <= 0:
        raise BoxError(f"{what}: box {list(b)} lies outside the {width}x{height} image")
    if pixel_span(c[0], c[2]) == 0 or pixel_span(c[1], c[3]) == 0:
        raise BoxError(
            f"{what}: box {list(b)} holds no pixel centre (k + 0.5) in {'x' if pixel_span(c[0], c[2]) == 0 else 'y'}"
            f"{'' if c == b else f' once clipped to the {width}x{height} image ({list(c)})'}; a box must hold at "
            "least one pixel in each direction"
        )
    if c != b:
        return c, f"{what}: box {list(b)} extends outside the {width}x{height} image; clipped to {list(c)}"
    return c, None


def pixel_span(lo: float, hi: float) -> int:
    """How many pixel centres ``k + 0.5`` (integer ``k``) lie in ``[lo, hi)``: the pixels a box covers along one
    axis, by the rule of :func:`box_to_pixel_mask`."""
    return max(0, math.ceil(hi - 0.5) - math.ceil(lo - 0.5))


def box_to_pixel_mask(box: Box, height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels whose centres lie inside the box."""
    ys = np.arange(height) + 0.5
    xs = np.arange(width) + 0.5
    inside_y = (ys >= box[1]) & (ys < box[3])
    inside_x = (xs >= box[0]) & (xs < box[2])
    return inside_y[:, None] & inside_x[None, :]


def ellipse_mask(box: Box, height: int, width: int) -> np.ndarray:
    """Boolean mask of the ellipse inscribed in the box (pixel centres inside)."""
    ys = np.arange(height)[:, None] + 0.5
    xs = np.arange(width)[None, :] + 0.5
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = max(box_width(box) / 2, 1e-6), max(box_height(box) / 2, 1e-6)
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def mask_to_box(mask: np.ndarray) -> Box | None:
    """Tight ``(x1, y1, x2, y2)`` box of a boolean mask (pixel edges), ``None`` when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


@dataclass(frozen=True)
class CropWindow:
    """How a box crop maps to the image.

    ``window`` is the padded region ``(x1, y1, x2, y2)`` in integer image pixels that was cut out;
    ``scale`` is the resize factor applied to it (crop pixel = (image pixel - window origin) * scale).
    ``size`` is the resized crop ``(height, width)``.
    """

    window: tuple[int, int, int, int]
    scale: float
    size: tuple[int, int]

    def image_to_crop(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.window[0]) * self.scale, (y - self.window[1]) * self.scale)

    def crop_to_image(self, u: float, v: float) -> tuple[float, float]:
        return (u / self.scale + self.window[0], v / self.scale + self.window[1])


def crop_window(
    box: Box,
    width: int,
    height: int,
    *,
    target_height: int = 224,
    pad: int = 16,
    stride: int = 1,
    max_aspect: float = 8.0,
) -> CropWindow:
    """The padded crop of a box, scaled so that the box height becomes ``target_height``.

    The pad is ``pad`` pixels at the target scale on every side and stops at the image border
    (the paper's protocol). With ``stride > 1`` the window is grown on its far sides (still inside the
    image where possible) so the resized crop is a whole number of stride cells. A box more than
    ``max_aspect`` times wider than high is scaled so that its width becomes ``max_aspect * target_height``
    instead: a flat sliver of a box would otherwise make a crop of hundreds of thousands of pixels' width.
    """
    x1, y1, x2, y2 = as_box(box)
    bh = y2 - y1
    if bh <= 0 or x2 - x1 <= 0:
        raise BoxError(f"crop_window: box {list(box)} has no area")
    if not (max_aspect > 0 and math.isfinite(max_aspect)):
        raise ValueError(f"crop_window: max_aspect must be a finite number > 0, got {max_aspect}")
    if not (is_integer(target_height) and target_height > 0):
        raise ValueError(f"crop_window: target_height must be an integer > 0, got {target_height!r}")
    if not (is_integer(pad) and pad >= 0):
        raise ValueError(f"crop_window: pad must be an integer >= 0, got {pad!r}")
    if not (is_integer(stride) and stride >= 1):
        raise ValueError(f"crop_window: stride must be an integer >= 1, got {stride!r}")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise BoxError(f"crop_window: box {list(box)} lies outside the {width}x{height} image")
    scale = min(target_height / bh, max_aspect * target_height / (x2 - x1))
    pad_img = pad / scale
    wx1 = max(0, math.floor(x1 - pad_img))
    wy1 = max(0, math.floor(y1 - pad_img))
    wx2 = min(width, math.ceil(x2 + pad_img))
    wy2 = min(height, math.ceil(y2 + pad_img))
    ch = max(1, round((wy2 - wy1) * scale))
    cw = max(1, round((wx2 - wx1) * scale))
    if stride > 1:
        ch = stride * math.ceil(ch / stride)
        cw = stride * math.ceil(cw / stride)
    return CropWindow(window=(wx1, wy1, wx2, wy2), scale=scale, size=(ch, cw))


def cell_centres_image(win: CropWindow, stride: int, grid: tuple[int, int]) -> np.ndarray:
    """``(h, w, 2)`` float64 image coordinates ``(x, y)`` of the centres of a crop's ``grid = (h, w)`` feature
    cells (``stride`` crop pixels each; continuous coordinates, pixel edges at integers)."""
    h, w = grid
    s, (wx1, wy1) = win.scale, win.window[:2]
    out = np.empty((h, w, 2), dtype=np.float64)
    out[..., 0] = ((np.arange(w) + 0.5) * stride / s + wx1)[None, :]
    out[..., 1] = ((np.arange(h) + 0.5) * stride / s + wy1)[:, None]
    return out


def place_crop_map(values: np.ndarray, win: CropWindow, height: int, width: int, fill: float = 0.0) -> np.ndarray:
    """Place a map defined on the resized crop (any resolution covering it) back into image pixels.

    ``values`` has shape ``(h, w)`` and covers the resized crop of size ``win.size``; each image pixel
    inside the window takes the value of the crop cell its centre falls in. Pixels outside the window
    get ``fill``. Vectorised; no per-pixel loops.
    """
    out = np.full((height, width), fill, dtype=values.dtype if values.dtype != bool else bool)
    wx1, wy1, wx2, wy2 = win.window
    if wx2 <= wx1 or wy2 <= wy1:
        return out
    ch, cw = win.size
    h, w = values.shape
    ys = (np.arange(wy1, wy2) + 0.5 - wy1) * win.scale  # crop pixel coordinates
    xs = (np.arange(wx1, wx2) + 0.5 - wx1) * win.scale
    ri = np.clip((ys * h / ch).astype(np.int64), 0, h - 1)
    ci = np.clip((xs * w / cw).astype(np.int64), 0, w - 1)
    out[wy1:wy2, wx1:wx2] = values[ri[:, None], ci[None, :]]
    return out


def resample_cells_at(values: np.ndarray, win: CropWindow, stride: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinearly sample a map on a crop's feature cells ``(h, w)`` at the image points ``(xs[c], ys[r])``,
    giving ``(len(ys), len(xs))``; cells at the crop's edge are replicated beyond it.

    Cell ``(r, c)`` covers crop pixels ``[r * stride, (r + 1) * stride)``; its value sits at the cell centre.
    One ``cv2.remap`` call, no Python loops.
    """
    import cv2

    cx = ((np.asarray(xs) - win.window[0]) * win.scale / stride - 0.5).astype(np.float32)
    cy = ((np.asarray(ys) - win.window[1]) * win.scale / stride - 0.5).astype(np.float32)
    map_x = np.ascontiguousarray(np.broadcast_to(cx[None, :], (cy.size, cx.size)))
    map_y = np.ascontiguousarray(np.broadcast_to(cy[:, None], (cy.size, cx.size)))
    return cv2.remap(
        values.astype(np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def resample_cells_to_image(
    values: np.ndarray, win: CropWindow, stride: int, height: int, width: int, fill: float = 0.0
) -> np.ndarray:
    """Bilinearly resample a map on a crop's feature cells ``(h, w)`` to image pixels ``(height, width)``
    (:func:`resample_cells_at` the pixel centres of the crop window). Image pixels outside the crop window get
    ``fill``."""
    out = np.full((height, width), fill, dtype=np.float32)
    wx1, wy1, wx2, wy2 = win.window
    if wx2 <= wx1 or wy2 <= wy1:
        return out
    xs = np.arange(wx1, wx2, dtype=np.float32) + 0.5
    ys = np.arange(wy1, wy2, dtype=np.float32) + 0.5
    out[wy1:wy2, wx1:wx2] = resample_cells_at(values, win, stride, xs, ys)
    return out
