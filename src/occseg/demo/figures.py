"""The demo's pictures: without vs with reasoning, as overlays (the paper's Fig. 1) and as mIoU curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occseg.data.annotation import AnnotatedImage, Instance
from occseg.data.images import load_rgb
from occseg.data.masks import rle_intersection_area
from occseg.evaluation.plots import MASK_COLOURS, new_figure
from occseg.evaluation.protocol import LEVELS
from occseg.io import atomic_path
from occseg.viz.overlay import draw_objects, side_by_side

_STYLES = ("--", "-", ":", "-.")


def _masks(inst: Instance, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    vis = inst.mask.decode() if inst.mask is not None else np.zeros((height, width), bool)
    amo = inst.amodal_mask.decode() if inst.amodal_mask is not None else vis
    return vis, amo | vis


def _panel(image: np.ndarray, insts: Sequence[Instance], boxes: Sequence, title: str, h: int, w: int) -> np.ndarray:
    masks = [_masks(i, h, w) for i in insts]
    layers = [int(i.order) if i.order is not None else 0 for i in insts]
    return draw_objects(
        image,
        [m[0] for m in masks],
        [m[1] for m in masks],
        boxes,
        labels=[i.category for i in insts],
        layers=layers,
        title=title,
    )


def overlay_panels(
    gt: AnnotatedImage,
    predictions: Mapping[str, AnnotatedImage],
    *,
    classes: Sequence[str],
    max_height: int | None = None,
) -> np.ndarray:
    """Ground truth, then each prediction (titled by its key), side by side.

    Every panel shows the target-class objects: visible part blue, occluded part red, the rest of the box
    (context) green, outlines and ``#layer class`` tags (layer 0 = front). Predictions are drawn in their
    given boxes (``extra["given_box"]``; else their amodal box). ``max_height`` shrinks the result.
    """
    image = load_rgb(gt.path)
    h, w = image.shape[:2]
    targets = _targets(gt, classes)
    panels = [_panel(image, targets, [i.amodal_box or i.box for i in targets], "ground truth", h, w)]
    for title, pred in predictions.items():
        insts = list(pred.instances)
        boxes = [tuple(i.extra.get("given_box") or i.amodal_box or i.box) for i in insts]
        panels.append(_panel(image, insts, boxes, title, h, w))
    out = side_by_side(panels)
    if max_height is not None and out.shape[0] > max_height:
        s = max_height / out.shape[0]
        out = cv2.resize(out, (round(out.shape[1] * s), max_height), interpolation=cv2.INTER_AREA)
    return out


def _targets(im: AnnotatedImage, classes: Sequence[str]) -> list[Instance]:
    return [i for i in im.instances if i.category in classes and not i.extra.get("unknown")]


def most_occluded(
    images: Sequence[AnnotatedImage], classes: Sequence[str], n: int, *, targets: int | None = None
) -> list[AnnotatedImage]:
    """The ``n`` images whose target objects have the most hidden pixels in total (GT ``|amodal \\ visible|``;
    ties by id), among those with exactly ``targets`` target objects when given (all images when none has that
    many).

    Chosen from the ground truth only, so the pick does not depend on how well any method does.
    """

    def total(im: AnnotatedImage) -> float:
        hidden = 0
        for i in _targets(im, classes):
            if i.amodal_mask is not None and i.mask is not None:
                hidden += i.amodal_mask.area() - rle_intersection_area(i.amodal_mask.rle, i.mask.rle)
        return float(hidden)

    if targets is not None:
        images = [im for im in images if len(_targets(im, classes)) == targets] or list(images)
    ranked = sorted(images, key=lambda im: (-total(im), im.image_id))
    return [im for im in ranked[:n] if total(im) > 0] or list(ranked[:n])


def plot_reasoning_comparison(
    reports: Mapping[str, dict[str, Any]], path: str | Path, *, mask_types: Sequence[str] = ("visible", "amodal")
) -> Path:
    """One panel per mask type: mIoU per GT occlusion level, one line per report (e.g. without / with reasoning).

    Empty levels are gaps; the x labels give the number of objects per level.
    """
    fig, axes = new_figure(1, len(mask_types), figsize=(4.6 * len(mask_types), 3.6))
    x = np.arange(len(LEVELS))
    first = next(iter(reports.values()))["all"]
    for ax, m in zip(axes.flat, mask_types):
        for k, (label, rep) in enumerate(reports.items()):
            cell = rep["all"][m]
            y = np.array([np.nan if cell[lv] is None else cell[lv] for lv in LEVELS], dtype=float)
            mean = "–" if cell["mean"] is None else f"{cell['mean']:.3f}"
            ax.plot(
                x,
                y,
                _STYLES[k % len(_STYLES)],
                marker="o",
                color=MASK_COLOURS.get(m, "k"),
                alpha=0.55 if k == 0 and len(reports) > 1 else 1.0,
                label=f"{label} (mean {mean})",
            )
        ax.set_xticks(x, [f"{lv}\nn={first[m]['n'][lv]}" for lv in LEVELS])
        ax.set_ylim(0, 1)
        ax.set_ylabel("mIoU")
        ax.set_title(f"{m} mask")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("mIoU against GT occlusion level (L0 none … L3 60–90 % hidden)", fontsize=10)
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    return p


def save_small_png(path: str | Path, rgb: np.ndarray, colors: int = 256) -> Path:
    """Write an RGB image as a palette PNG (median-cut ``colors`` colours, no dithering), atomically: overlays
    of photos shrink about 3x, small enough to commit (e.g. docs/images)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    pal = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    p = Path(path)
    with atomic_path(p) as tmp:
        pal.save(tmp, format="PNG", optimize=True)
    return p
