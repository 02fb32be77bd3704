"""Scoring predictions against ground truth under the paper's protocol (docs/method.md §E).

* :mod:`~occseg.evaluation.metrics`: pure metric functions (mask IoU, order counts, ...);
* :mod:`~occseg.evaluation.matching`: pairing predictions with GT objects by ``(image_id, id)``;
* :mod:`~occseg.evaluation.protocol`: per-object records and the means per scenario and occlusion level;
* :mod:`~occseg.evaluation.report`: ``report.json`` / ``report.md`` / ``objects.csv``;
* :mod:`~occseg.evaluation.plots`: ``miou_vs_occlusion.png`` and the examples contact sheet.
"""

from occseg.evaluation.matching import PredictionError, match_predictions, read_predictions
from occseg.evaluation.metrics import OrderCounts, mask_iou, order_counts
from occseg.evaluation.protocol import EvalConfig, Evaluation, ObjectRecord, aggregate, evaluate, filter_dataset
from occseg.evaluation.report import build_report, report_markdown, write_report

__all__ = [
    "EvalConfig",
    "Evaluation",
    "ObjectRecord",
    "OrderCounts",
    "PredictionError",
    "aggregate",
    "build_report",
    "evaluate",
    "filter_dataset",
    "mask_iou",
    "match_predictions",
    "order_counts",
    "read_predictions",
    "report_markdown",
    "write_report",
]
