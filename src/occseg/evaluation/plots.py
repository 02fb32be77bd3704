"""PNG figures of an evaluation: mIoU against occlusion level, and a contact sheet of the worst/best objects."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

# Figures are drawn with the object-oriented API on their own Agg canvas: no pyplot, so importing occseg never
# changes matplotlib's global backend or keeps figures alive in pyplot's registry.
from matplotlib.figure import Figure
from scipy import ndimage

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.images import ImageError, load_rgb
from occseg.evaluation.protocol import ALL, LEVELS, MASK_TYPES, Evaluation, ObjectRecord
from occseg.geometry.boxes import mask_to_box
from occseg.io import atomic_path


def new_figure(rows: int, cols: int, *, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """A figure with a ``(rows, cols)`` array of axes, not registered with pyplot (nothing to close)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


#: plot colour of each mask type
MASK_COLOURS = {"visible": "tab:blue", "amodal": "tab:orange", "occluded": "tab:green"}


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def plot_miou_vs_occlusion(report: dict[str, Any], path: str | Path) -> Path:
    """One panel per scenario key (``all`` first): mIoU per level, one line per mask type; empty levels are gaps."""
    keys = [ALL] + [k for k in report if k not in (ALL, "settings")]
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = new_figure(rows, cols, figsize=(4.5 * cols, 3.6 * rows))
    x = np.arange(len(LEVELS))
    for ax, key in zip(axes.flat, keys):
        cell = report[key]
        drawn = False
        for m in MASK_TYPES:
            y = np.array([np.nan if cell[m][lv] is None else cell[m][lv] for lv in LEVELS], dtype=float)
            if np.all(np.isnan(y)):
                continue
            ax.plot(x, y, marker="o", color=MASK_COLOURS[m], label=f"{m} (mean {cell[m]['mean']:.3f})")
            drawn = True
        ax.set_xticks(x, [f"{lv}\nn={cell['visible']['n'][lv]}" for lv in LEVELS])
        ax.set_ylim(0, 1)
        ax.set_ylabel("mIoU")
        ax.set_title(key if key == ALL else f"scenario {key}")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="lower left")
        else:
            v = cell["visible"]["all_objects"]
            text = "no object in an occlusion level\n(GT without amodal masks)"
            if v is not None:
                text += f"\nvisible mIoU, all objects: {v:.3f} (n={cell['visible']['n']['all_objects']})"
            ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle("mIoU against GT occlusion level")
    p = Path(path)
    _save(fig, p)
    return p


def pick_examples(records: list[ObjectRecord], n: int) -> tuple[list[ObjectRecord], list[ObjectRecord]]:
    """The ``n`` worst and ``n`` best objects by visible IoU x class (best never repeats a worst one)."""
    scored = [r for r in records if r.score("visible") is not None]
    scored.sort(key=lambda r: (r.score("visible"), r.image_id, r.object_id))
    worst = scored[:n]
    rest = scored[len(worst) :]
    best = rest[::-1][:n]
    return worst, best


def _outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=0)


def _crop_window(box: tuple[float, float, float, float], h: int, w: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    pad = max(8.0, 0.25 * max(x2 - x1, y2 - y1))
    return (
        max(0, int(math.floor(x1 - pad))),
        max(0, int(math.floor(y1 - pad))),
        min(w, int(math.ceil(x2 + pad))),
        min(h, int(math.ceil(y2 + pad))),
    )


def render_example(image: np.ndarray, gt_mask: np.ndarray, pred_mask: np.ndarray, box: Any) -> np.ndarray:
    """Crop around ``box`` (GT and predicted boxes): predicted visible mask tinted red, GT visible outline green."""
    h, w = gt_mask.shape
    x1, y1, x2, y2 = _crop_window(box, h, w)
    crop = image[y1:y2, x1:x2].astype(np.float32)
    pm = pred_mask[y1:y2, x1:x2]
    crop[pm] = 0.55 * crop[pm] + 0.45 * np.array([255.0, 40.0, 40.0])
    width = max(1, round(max(crop.shape[:2]) / 120))
    crop[_outline(gt_mask[y1:y2, x1:x2], width)] = (0.0, 255.0, 0.0)
    return crop.round().astype(np.uint8)


def examples_sheet(evaluation: Evaluation, gt: Dataset, n: int, path: str | Path) -> list[str]:
    """Write the contact sheet of the ``n`` worst and ``n`` best objects; return warnings (missing images)."""
    warnings: list[str] = []
    worst, best = pick_examples(evaluation.records, n)
    if not worst:
        return ["examples: no evaluated object, no sheet written"]
    gt_images: dict[int, AnnotatedImage] = {im.image_id: im for im in gt.images}
    gt_objs: dict[tuple[int, int], Instance] = {(im.image_id, o.id): o for im in gt.images for o in im.instances}
    pred_objs = evaluation.matching.pairs if evaluation.matching is not None else {}
    cache: dict[int, np.ndarray | None] = {}
    missing: list[str] = []

    def tile(r: ObjectRecord) -> np.ndarray | None:
        im = gt_images[r.image_id]
        if r.image_id not in cache:
            try:
                img = load_rgb(im.path)
                cache[r.image_id] = img if img.shape[:2] == (im.height, im.width) else None
                if cache[r.image_id] is None:
                    missing.append(f"{im.path} (size {img.shape[1]}x{img.shape[0]}, GT says {im.width}x{im.height})")
            except ImageError:
                cache[r.image_id] = None
                missing.append(str(im.path))
        img = cache[r.image_id]
        if img is None:
            return None
        g = gt_objs[(r.image_id, r.object_id)]
        p = pred_objs.get((r.image_id, r.object_id))
        gm = g.mask.decode() if g.mask is not None else np.zeros((im.height, im.width), bool)
        pm = p.mask.decode() if p is not None and p.mask is not None else np.zeros_like(gm)
        pbox = mask_to_box(pm)
        box = r.box if pbox is None else (*np.minimum(r.box[:2], pbox[:2]), *np.maximum(r.box[2:], pbox[2:]))
        return render_example(img, gm, pm, box)

    rows = [("worst", worst), ("best", best)] if best else [("worst", worst)]
    n = len(worst)  # as many columns as objects to show, however many were asked for
    fig, axes = new_figure(len(rows), n, figsize=(2.6 * n, 2.9 * len(rows)))
    shown = 0
    for row, (label, recs) in enumerate(rows):
        for col in range(n):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(recs):
                continue
            r = recs[col]
            t = tile(r)
            iou = r.score("visible")
            title = f"{label} {col + 1}: IoU {iou:.2f}\n{r.category} id {r.object_id} img {r.image_id}"
            if not r.has_prediction:
                title += "\n(no prediction)"
            elif not r.correct:
                title += f"\n(pred class {r.predicted_category})"
            if t is None:
                ax.text(0.5, 0.5, "image missing", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.imshow(t)
                shown += 1
            ax.set_title(title, fontsize=7)
    if missing:
        warnings.append(
            f"examples: {len(missing)} image(s) missing or unreadable, left blank: {', '.join(missing[:5])}"
        )
    if shown == 0:
        warnings.append("examples: no image of the chosen objects could be read; examples.png not written")
        return warnings
    fig.suptitle("visible masks: prediction red, GT outline green", fontsize=9)
    _save(fig, Path(path))
    return warnings
