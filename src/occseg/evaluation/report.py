"""``report.json``, ``report.md`` and ``objects.csv`` of an evaluation (all written atomically)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from occseg.data.annotation import Dataset
from occseg.evaluation.protocol import (
    ALL,
    LEVELS,
    MASK_TYPES,
    EvalConfig,
    Evaluation,
    ImageMapper,
    aggregate,
    evaluate,
)
from occseg.io import write_json, write_text

COLUMNS: tuple[str, ...] = (*LEVELS, "mean", "weighted_mean", "all_objects")

CONVENTIONS = """\
Conventions (docs/method.md §E):
- IoU over the whole image; occluded = amodal \\ visible (GT and prediction alike); a prediction without an
  amodal mask uses its visible mask as amodal. A pair of empty masks has no IoU and is left out of that mean.
- Every cell is mean(IoU x 1[predicted class == GT class]); a GT object without a prediction counts as IoU 0.
- Levels by GT occlusion |A \\ V| / |A|: L0 [0, .01), L1 [.01, .3), L2 [.3, .6), L3 [.6, .9); >= .9 and objects
  without a GT amodal mask are in no level.
- mean = plain mean of the non-empty level means; weighted_mean = mean over the objects in L0..L3;
  all_objects = mean over every evaluated object (the only visible number when the GT has no amodal masks).
- Order accuracy over ordered pairs i != j of the evaluated objects with GT amodal masks, per image; occluded
  = pairs with a GT order; misses: GT order but none predicted; reversals: opposite order; false detections:
  order predicted where the GT has none.
- Intervals [low, high]: percentile bootstrap over images (whole images resampled with replacement, seeded;
  settings.bootstrap); they show how much the figures depend on which images were drawn, not other errors.
  Objects that recur across images (the same source object pasted many times) make them too narrow.
"""


def scored_report(
    gt: Dataset,
    pred: Dataset,
    config: EvalConfig,
    *,
    gt_images: str | Path | None = None,
    map_images: ImageMapper | None = None,
) -> tuple[dict[str, Any], Evaluation]:
    """Evaluate ``pred`` against ``gt`` (:func:`~occseg.evaluation.protocol.evaluate`) and build the report dict
    (``report.json``'s content) with the settings recorded; the predictions reader's warnings are added to the
    evaluation's (those that dropped an object, and those that change no score). ``gt_images``: the image folder
    ``gt`` was read with, recorded in the settings; ``map_images``: how the images are scored (sharded under
    torchrun), as :func:`~occseg.evaluation.protocol.evaluate` takes it."""
    evaluation = evaluate(gt, pred, config, map_images=map_images)
    # the readers end every warning that drops an annotation or image with "skipped"; the others (e.g. image files
    # not where a moved predictions file says) lose nothing, since predictions hold their masks
    dropped = [w for w in pred.warnings if w.rstrip(".").endswith("skipped")]
    noted = [w for w in pred.warnings if w not in dropped]
    if dropped:
        evaluation.warnings.append(
            f"the predictions reader skipped what it could not read in {len(dropped)} case(s) (those objects count "
            "as missing): " + "; ".join(dropped[:3])
        )
    if noted:
        evaluation.warnings.append(
            f"the predictions reader noted {len(noted)} problem(s) that change no score: " + "; ".join(noted[:3])
        )
    settings = {
        "gt": str(gt.source),
        "gt_format": gt.format,
        "gt_images": str(gt_images) if gt_images is not None else None,
        "pred": str(pred.source),
        "classes": list(config.classes) if config.classes is not None else None,
        "min_height": config.min_height,
        "class_agnostic": config.class_agnostic,
        "gt_reader_warnings": gt.warnings[:20],
        "n_gt_reader_warnings": len(gt.warnings),
    }
    return build_report(evaluation, settings), evaluation


def build_report(evaluation: Evaluation, settings: dict[str, Any]) -> dict[str, Any]:
    """The report dict: ``settings`` then one cell per scenario key (``all`` always present)."""
    s = dict(settings)
    s["n_gt_objects"] = evaluation.n_gt_objects
    s["n_evaluated"] = len(evaluation.records)
    s["skipped"] = dict(sorted(evaluation.skipped.items()))
    s["gt_has_amodal"] = evaluation.has_amodal
    b = evaluation.bootstrap
    s["bootstrap"] = {"unit": "image", "resamples": b.resamples, "level": b.level, "seed": b.seed}
    s["warnings"] = list(evaluation.warnings)
    report: dict[str, Any] = {"settings": s}
    report.update(aggregate(evaluation))
    return report


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _interval(v: list[float] | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v[0]:.{digits}f}–{v[1]:.{digits}f}"


def _interval_table(cell: dict[str, Any]) -> list[str]:
    """The cell's bootstrap intervals, shaped like its mIoU table (nothing when intervals are off)."""
    if not all("interval" in cell[m] for m in MASK_TYPES):
        return []
    lines = ["| mask | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for m in MASK_TYPES:
        lines.append(f"| {m} | " + " | ".join(_interval(cell[m]["interval"].get(c)) for c in COLUMNS) + " |")
    return lines


def _cell_table(cell: dict[str, Any]) -> list[str]:
    lines = [
        "| mask | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for m in MASK_TYPES:
        row = cell[m]
        n = row["n"]
        counts = {**{lv: n[lv] for lv in LEVELS}, "mean": row.get("mean_levels", 0), "weighted_mean": n["total"]}
        counts["all_objects"] = n["all_objects"]
        parts = []
        for c in COLUMNS:
            label = "levels" if c == "mean" else "n"
            parts.append(f"{_fmt(row[c])} ({label}={counts[c]})")
        lines.append(f"| {m} | " + " | ".join(parts) + " |")
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """Tables shaped like the paper's Tables 1-2 (rows visible/amodal/occluded, columns levels and means)."""
    s = report["settings"]
    out = ["# occseg evaluation", ""]
    out.append(f"- ground truth: `{s.get('gt')}`")
    out.append(f"- predictions: `{s.get('pred')}`")
    out.append(f"- classes: {', '.join(s['classes']) if s.get('classes') else 'all'}")
    if s.get("class_agnostic"):
        out.append("- class-agnostic: every IoU counts whatever the predicted class (not x 1[class correct])")
    out.append(f"- min visible-box height: {s.get('min_height') if s.get('min_height') is not None else 'none'}")
    out.append(f"- GT objects: {s.get('n_gt_objects')}, evaluated: {s.get('n_evaluated')}, skipped: {s.get('skipped')}")
    if not s.get("gt_has_amodal"):
        out.append("- the GT has no amodal masks: amodal/occluded metrics and occlusion levels are empty (null)")
    out.append("")
    keys = [ALL] + [k for k in report if k not in (ALL, "settings")]
    for key in keys:
        cell = report[key]
        out.append(f"## {key}" if key == ALL else f"## scenario {key}")
        out.append("")
        scored = "mean(IoU), class ignored" if s.get("class_agnostic") else "mean(IoU x 1[class correct])"
        out.append(f"mIoU, {scored}; n = objects per cell:")
        out.append("")
        out.extend(_cell_table(cell))
        out.append("")
        intervals = _interval_table(cell)
        if intervals and s["bootstrap"]["resamples"] > 0:
            b = s["bootstrap"]
            out.append(f"{b['level']:.0%} intervals (bootstrap over images, {b['resamples']} resamples):")
            out.append("")
            out.extend(intervals)
            out.append("")
        oa = cell["order_accuracy"]
        out.append(f"- objects: {cell['n_objects']} (without prediction: {cell.get('n_missing_predictions', 0)})")
        out.append(f"- classification accuracy: {_fmt(cell['classification_accuracy'])}")
        box_label = "amodal-box IoU" if s.get("class_agnostic") else "amodal-box IoU (x class correct)"
        out.append(f"- {box_label}: {_fmt(cell['amodal_box_iou'])} (n={cell.get('n_amodal_boxes', 0)})")
        out.append(
            f"- order accuracy: all {_fmt(oa['all'])} ({oa['pairs_all']} pairs), occluded {_fmt(oa['occluded'])}"
            + ("" if oa.get("occluded_interval") is None else f" [{_interval(oa['occluded_interval'])}]")
            + f" ({oa['pairs_occluded']} pairs); misses {oa['misses']}, reversals {oa['reversals']}, "
            f"false detections {oa['false_detections']}"
        )
        out.append("")
    if s.get("warnings"):
        out.append("## warnings")
        out.append("")
        out.extend(f"- {w}" for w in s["warnings"])
        out.append("")
    out.append("## conventions")
    out.append("")
    out.append(CONVENTIONS)
    return "\n".join(out)


def objects_csv(evaluation: Evaluation) -> str:
    """One row per evaluated object (IoUs, class, level, scenario)."""
    buf = io.StringIO()
    rows = [r.to_row() for r in evaluation.records]
    fields = list(rows[0]) if rows else ["image_id", "object_id"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write_report(out_dir: str | Path, report: dict[str, Any], evaluation: Evaluation) -> list[Path]:
    """Write ``report.json``, ``report.md`` and ``objects.csv`` into ``out_dir``; return their paths."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / "report.json", d / "report.md", d / "objects.csv"]
    write_json(paths[0], report, indent=2)
    write_text(paths[1], report_markdown(report))
    write_text(paths[2], objects_csv(evaluation))
    return paths
