"""A grid of annotated images: visible masks tinted, occluded parts hatched, depth order numbers drawn.

Works on any :class:`~occseg.data.annotation.AnnotatedImage` whose instances have visible and amodal masks
(for instance a generated Occlusion Challenge split). Each object gets a colour; its visible part is tinted,
its occluded part (amodal minus visible) is tinted lighter with diagonal hatching and outlined, and its
``ico_id`` (0 = front inside its cluster, ``u`` suffix for unknown occluders) is written on its visible part.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from occseg.data.annotation import AnnotatedImage
from occseg.data.images import load_rgb, save_rgb

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
)


def _hatch(height: int, width: int, period: int = 8) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return ((xs + ys) % period) < 2


def render_overlay(rgb: np.ndarray, image: AnnotatedImage) -> tuple[np.ndarray, list[tuple[str, int, int, int]]]:
    """The image with masks drawn, and the labels to write: ``(text, x, y, palette index)`` in image pixels."""
    out = rgb.astype(np.float32)
    h, w = rgb.shape[:2]
    hatch = _hatch(h, w)
    labels: list[tuple[str, int, int, int]] = []
    contours_to_draw = []
    for k, inst in enumerate(image.instances):
        if inst.mask is None:
            continue
        colour = np.array(PALETTE[k % len(PALETTE)], dtype=np.float32)
        if inst.extra.get("unknown"):
            colour = np.array((128, 128, 128), dtype=np.float32)
        vis = inst.mask.decode()
        amo = inst.amodal_mask.decode() if inst.amodal_mask is not None else vis
        occ = amo & ~vis
        out[vis] = 0.55 * out[vis] + 0.45 * colour
        light = 0.5 * colour + 127.5
        out[occ] = 0.6 * out[occ] + 0.4 * light
        out[occ & hatch] = colour
        contours_to_draw.append((amo, vis, tuple(int(c) for c in colour)))
        if vis.any():
            dist = cv2.distanceTransform(np.pad(vis, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
            y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
            text = "?" if inst.order is None else str(inst.order)
            if inst.extra.get("unknown"):
                text += "u"
            labels.append((text, int(x), int(y), k))
    canvas = np.clip(out, 0, 255).astype(np.uint8)
    for amo, vis, colour in contours_to_draw:
        for m, thick in ((amo, 1), (vis, 2)):
            cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, cs, -1, colour, thick)
    return canvas, labels


def _put_text(img: np.ndarray, text: str, x: int, y: int, scale: float, colour: tuple[int, int, int]) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    org = (int(x - tw / 2), int(y + th / 2))
    cv2.putText(img, text, org, font, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, font, scale, colour, 1, cv2.LINE_AA)


def contact_sheet(
    images: Sequence[AnnotatedImage], *, columns: int = 4, thumb_width: int = 320, gap: int = 4
) -> np.ndarray:
    """A grid of the overlays of ``images`` (read from their paths), each resized to ``thumb_width``."""
    if not images:
        raise ValueError("contact sheet: no images")
    thumbs = []
    for image in images:
        rgb = load_rgb(image.path)
        overlay, labels = render_overlay(rgb, image)
        s = thumb_width / overlay.shape[1]
        th = max(1, int(round(overlay.shape[0] * s)))
        thumb = cv2.resize(overlay, (thumb_width, th), interpolation=cv2.INTER_AREA)
        for text, x, y, _ in labels:
            _put_text(thumb, text, int(x * s), int(y * s), 0.6, (255, 255, 255))
        title = str(image.extra.get("scenario", "")) + f"  #{image.image_id}"
        cv2.putText(thumb, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(thumb, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        thumbs.append(thumb)
    cell_h = max(t.shape[0] for t in thumbs)
    cols = min(columns, len(thumbs))
    rows = (len(thumbs) + cols - 1) // cols
    sheet = np.full((rows * cell_h + (rows + 1) * gap, cols * thumb_width + (cols + 1) * gap, 3), 255, np.uint8)
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        y0 = gap + r * (cell_h + gap)
        x0 = gap + c * (thumb_width + gap)
        sheet[y0 : y0 + t.shape[0], x0 : x0 + t.shape[1]] = t
    return sheet


def write_contact_sheet(path: str | Path, images: Sequence[AnnotatedImage], **kwargs: int) -> Path:
    """:func:`contact_sheet` written as PNG (atomically)."""
    p = Path(path)
    save_rgb(p, contact_sheet(images, **kwargs))
    return p
