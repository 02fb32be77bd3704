"""Overlays in the spirit of the paper's Figure 1: visible part, occluded (invisible) part and context of
each object in three colours, object outlines, and the depth order."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from occseg.geometry.boxes import Box, box_to_pixel_mask

VISIBLE = (40, 120, 255)  # blue
OCCLUDED = (255, 60, 60)  # red
CONTEXT = (60, 200, 90)  # green


def _blend(img: np.ndarray, mask: np.ndarray, color: Sequence[int], alpha: float) -> None:
    if mask.any():
        img[mask] = (img[mask] * (1 - alpha) + np.asarray(color, np.float32) * alpha).astype(np.uint8)


def draw_objects(
    image: np.ndarray,
    visible: Sequence[np.ndarray],
    amodal: Sequence[np.ndarray],
    boxes: Sequence[Box],
    *,
    labels: Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
    title: str | None = None,
    numbered: bool = False,
    notes: Sequence[str] = (),
) -> np.ndarray:
    """RGB overlay: context (box minus amodal mask) green, visible part blue, occluded part red, outlines,
    and ``#layer class`` tags (layer 0 = front); ``numbered`` starts each tag with the object's index (``k:``),
    and ``notes`` are lines of text written in the bottom-left corner (e.g. the pairwise relations)."""
    out = image.copy()
    h, w = out.shape[:2]
    for a, b in zip(amodal, boxes):
        _blend(out, box_to_pixel_mask(b, h, w) & ~a, CONTEXT, 0.25)
    for v, a in zip(visible, amodal):
        _blend(out, v, VISIBLE, 0.5)
        _blend(out, a & ~v, OCCLUDED, 0.5)
    thick = max(1, round(max(h, w) / 400))
    scale = max(0.4, min(h, w) / 900)
    taken: list[Rect] = []
    if title:
        (tw, th), base = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.7, 2)
        taken.append((6, 22 - th, 6 + tw, 22 + base))
    tags: list[tuple[str, tuple[int, int]]] = []
    for k, (v, a, b) in enumerate(zip(visible, amodal, boxes)):
        for m, col in ((a, (255, 255, 255)), (v, (20, 20, 20))):
            cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, cnts, -1, col, thick)
        tag = [f"{k}:"] if numbered else []
        if layers is not None:
            tag.append(f"#{layers[k]}")
        if labels is not None:
            tag.append(str(labels[k]))
        if tag:
            tags.append((" ".join(tag), (int(max(0, b[0])) + 2, int(max(12, b[1] + 14)))))
    sizes = []
    for text, _ in tags:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick + 2)  # with the black rim
        sizes.append((tw, th, base))
    for (text, _), org in zip(tags, place_tags([org for _, org in tags], sizes, h, taken=taken)):
        _text(out, text, org, scale, thick)
    if title:
        _text(out, title, (6, 22), 0.7, 2)
    scale = max(0.5, min(h, w) / 800)
    step = int(round(26 * scale / 0.7))
    for k, line in enumerate(notes):
        _text(out, line, (6, h - 8 - (len(notes) - 1 - k) * step), scale, thick)
    return out


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2 / y2 exclusive


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_tags(
    origins: Sequence[tuple[int, int]],
    sizes: Sequence[tuple[int, int, int]],
    height: int,
    *,
    taken: Sequence[Rect] = (),
    gap: int = 2,
) -> list[tuple[int, int]]:
    """Where to write text tags so that none covers another: each tag keeps its column and moves, in steps of
    its own height, to the first free row below its wished-for ``origin``, else above it, and stays where it
    was wished when no row of the image is free.

    ``origins``: each tag's wished ``(x, y)`` text origin (``y`` the baseline, as :func:`cv2.putText` takes
    it); ``sizes``: its ``(width, height, baseline)`` from :func:`cv2.getTextSize`; ``taken``: rectangles
    already written (a title), which tags avoid too. Tags are placed in the given order, earlier ones first.
    """
    placed = list(taken)
    out: list[tuple[int, int]] = []
    for (x, y), (tw, th, base) in zip(origins, sizes):
        step = th + base + gap
        lowest = max(y, height - base)  # the lowest baseline that keeps the tag inside the image
        tries = [y + n * step for n in range(0, (lowest - y) // step + 1)]
        tries += [y - n * step for n in range(1, (y - th) // step + 1)]
        at = y
        for yy in tries:
            if not any(_overlaps((x, yy - th - gap, x + tw, yy + base), r) for r in placed):
                at = yy
                break
        placed.append((x, at - th - gap, x + tw, at + base))
        out.append((x, at))
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int) -> None:
    """White text with a black rim, readable on any image."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def side_by_side(panels: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels of the same height next to each other with a white gap."""
    h = max(p.shape[0] for p in panels)
    parts = []
    for k, p in enumerate(panels):
        if p.shape[0] != h:
            p = np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
        parts.append(p)
        if k < len(panels) - 1:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)
