"""The evaluation protocol of docs/method.md §E: per-object records, then means per scenario and occlusion level.

Decisions (also written into every ``report.md``):

* **Objects evaluated**: GT objects that pass the filters (``classes``; visible-box height ``>= min_height``),
  are not crowd regions, are not marked ``"unknown": true`` (the Occlusion Challenge's unknown occluders: they
  shape the other objects' masks but no method is asked about them) and have a non-empty GT visible mask (the
  released code skips empty ones).
* **IoU** is computed over the whole image. Visible: GT visible vs predicted visible. Amodal: GT amodal vs
  predicted amodal. Occluded: ``GT amodal \\ GT visible`` vs ``pred amodal \\ pred visible``. A prediction
  without an amodal mask uses its visible mask as the amodal one (a modal-only method predicts no occluded
  part). When both masks of a pair are empty (typically the occluded part of an unoccluded object predicted
  unoccluded) the IoU is undefined and the object is left out of that mask type's means (``n`` shows it).
* **Class**: every IoU enters the means as ``IoU x 1[predicted class == GT class]`` (the protocol's
  ``mean(IoU x 1[class correct])``). A GT object without a prediction counts as IoU 0 with a wrong class.
  ``EvalConfig(class_agnostic=True)`` scores every prediction's IoU whatever its class (for ground truth
  whose class names the model does not share, such as COCOA's free-text names); the classification
  accuracy still compares the names.
* **Levels**: the GT occlusion fraction ``|A \\ V| / |A|`` bins objects into L0 ``[0, .01)``, L1 ``[.01, .3)``,
  L2 ``[.3, .6)``, L3 ``[.6, .9)``; ``>= .9`` is in no level. Objects without a GT amodal mask are in no
  level: their amodal/occluded IoUs are ``null`` (``n = 0``) and only the level-free ``all_objects`` column
  (every evaluated object) is filled, for the visible mask.
* **Means**: per level the mean over its objects; ``mean`` = plain mean of the level means that have
  objects (``mean_levels`` says how many); ``weighted_mean`` = mean over all objects in L0..L3 (each object
  once); ``all_objects`` = mean over every evaluated object, levels or not. Empty cells are ``null``.
* **Classification accuracy**: share of evaluated objects whose predicted class equals the GT class.
  **Amodal-box IoU**: mean of ``box IoU x 1[class correct]`` between the GT amodal box (or the box of the GT
  amodal mask) and the predicted amodal box (or the box of the predicted amodal mask), over objects with a
  GT amodal box; ``null`` without any.
* **Order**: per image, over its evaluated objects that have GT amodal masks, the order matrices of
  :func:`occseg.data.annotation.pairwise_order_matrix` from the GT masks and from the predicted visible and
  amodal masks are compared over all ordered pairs ``i != j`` (see :class:`~occseg.evaluation.metrics.OrderCounts`).
  Per scenario only the pairs whose two objects belong to that scenario count. Deviation from the paper's
  code: an exact tie (``o_ij == o_ji > 0``, e.g. masks that overlap without reasoning) is "no order", not
  "i behind j", so the score does not depend on the order the objects are listed in.
* **Scenarios**: GT objects with ``extra["scenario"]`` are also summarised under that name; ``all`` has
  every evaluated object.
* **Intervals** (not in the paper): with ``EvalConfig.bootstrap`` (default 2000 resamples, level 0.95, seed 0)
  every mean and the order accuracy on occluded pairs get a percentile bootstrap interval over images: whole
  images are resampled, so objects of one image stay together. They say how much a figure depends on which
  images were drawn; objects that recur across images (the Occlusion Challenge pastes each source object many
  times) make them too narrow. :func:`paired_difference_interval` compares two methods on the same images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from occseg.checks import is_number
from occseg.data.annotation import (
    OCCLUSION_LEVELS,
    AnnotatedImage,
    Dataset,
    Instance,
    occlusion_level,
    pairwise_order_matrix,
    require_dataset,
)
from occseg.data.masks import LazyMask
from occseg.evaluation.matching import Key, Matching, match_predictions
from occseg.evaluation.metrics import (
    BootstrapConfig,
    OrderCounts,
    amodal_box_iou,
    bootstrap_interval,
    mask_iou,
    mean_or_none,
    order_counts,
)
from occseg.geometry.boxes import Box, box_height, mask_to_box

MASK_TYPES: tuple[str, ...] = ("visible", "amodal", "occluded")
LEVELS: tuple[str, ...] = tuple(OCCLUSION_LEVELS)
ALL = "all"


@dataclass(frozen=True)
class EvalConfig:
    """Which GT objects are evaluated."""

    classes: tuple[str, ...] | None = None  # None: every class
    min_height: float | None = None  # visible-box height in pixels
    class_agnostic: bool = False  # True: IoUs count whatever the predicted class (no x 1[class correct])
    progress: bool = True
    bootstrap: BootstrapConfig = BootstrapConfig()  # intervals of the means and the order accuracy over images

    def __post_init__(self) -> None:
        if isinstance(self.classes, str):  # one class, not its letters
            object.__setattr__(self, "classes", (self.classes,))
        mh = self.min_height
        if mh is not None and (not is_number(mh) or not math.isfinite(mh) or mh < 0):
            raise ValueError(f"min_height must be None or a finite number of pixels >= 0, not {mh!r}")
        if not isinstance(self.bootstrap, BootstrapConfig):
            raise TypeError(f"bootstrap must be a BootstrapConfig, not {type(self.bootstrap).__name__}")


def passes_filter(inst: Instance, *, classes: Iterable[str] | None = None, min_height: float | None = None) -> bool:
    """The class and height filters of the protocol (class in ``classes``; visible box height >= ``min_height``)."""
    if isinstance(classes, str):  # one class, not its letters
        classes = (classes,)
    if classes is not None and inst.category not in set(classes):
        return False
    return not (min_height is not None and box_height(inst.box) < min_height)


def filter_dataset(
    dataset: Dataset, *, classes: Iterable[str] | None = None, min_height: float | None = None
) -> Dataset:
    """A shallow copy of ``dataset`` keeping only the instances that pass :func:`passes_filter` (all images kept);
    one class may be given as a string."""
    cls = (classes,) if isinstance(classes, str) else tuple(classes) if classes is not None else None
    images = [
        AnnotatedImage(
            image_id=im.image_id,
            path=im.path,
            width=im.width,
            height=im.height,
            instances=[i for i in im.instances if passes_filter(i, classes=cls, min_height=min_height)],
            extra=dict(im.extra),
        )
        for im in dataset.images
    ]
    return Dataset(
        images=images,
        categories=list(dataset.categories),
        source=dataset.source,
        format=dataset.format,
        warnings=list(dataset.warnings),
        category_ids=dict(dataset.category_ids),
    )


def skip_reason(inst: Instance, config: EvalConfig) -> str | None:
    """Why a GT object is not evaluated (``None``: it is)."""
    if not passes_filter(inst, classes=config.classes, min_height=config.min_height):
        return "filtered"
    if inst.iscrowd:
        return "crowd"
    if inst.extra.get("unknown"):
        return "unknown occluder"
    if inst.mask is None:
        return "no visible mask"
    if inst.mask.area() == 0:
        return "empty visible mask"
    return None


@dataclass
class ObjectRecord:
    """Everything the report needs about one evaluated GT object."""

    image_id: int
    object_id: int
    category: str
    predicted_category: str | None
    correct: bool
    has_prediction: bool
    scenario: str | None
    occlusion: float | None  # GT |A \ V| / |A|, None without a GT amodal mask
    level: str | None
    iou_visible: float | None
    iou_amodal: float | None
    iou_occluded: float | None
    amodal_box_iou: float | None  # box IoU x correct; None without a GT amodal box
    box: Box  # GT visible box, for the examples sheet
    class_agnostic: bool = False  # the IoUs count whatever the predicted class

    @property
    def counts(self) -> bool:
        """Whether the IoUs enter the means as they are (class correct, or the class ignored)."""
        return _counts(self.correct, self.has_prediction, self.class_agnostic)

    def iou(self, mask_type: str) -> float | None:
        return {"visible": self.iou_visible, "amodal": self.iou_amodal, "occluded": self.iou_occluded}[mask_type]

    def score(self, mask_type: str) -> float | None:
        """``IoU x 1[class correct]`` (the IoU itself when class-agnostic), the value averaged by the protocol;
        ``None`` when undefined."""
        v = self.iou(mask_type)
        return None if v is None else (v if self.counts else 0.0)

    def to_row(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "object_id": self.object_id,
            "category": self.category,
            "predicted_category": self.predicted_category,
            "correct": int(self.correct),
            "has_prediction": int(self.has_prediction),
            "scenario": self.scenario,
            "occlusion": self.occlusion,
            "level": self.level,
            "iou_visible": self.iou_visible,
            "iou_amodal": self.iou_amodal,
            "iou_occluded": self.iou_occluded,
            "amodal_box_iou": self.amodal_box_iou,
        }


@dataclass(frozen=True)
class PairRecord:
    """One GT-occluded ordered pair of an image's evaluated objects: ``gt`` and ``pred`` are the order of
    ``first`` relative to ``second`` (+1 in front, -1 behind, 0 none), as :func:`order_counts` compares them."""

    image_id: int
    first: int  # object (annotation) id
    second: int
    gt: int
    pred: int

    @property
    def correct(self) -> bool:
        return self.gt == self.pred


@dataclass
class Evaluation:
    """Per-object records, order counts per scenario key, the occluded pairs and the run's warnings."""

    records: list[ObjectRecord]
    order: dict[str, OrderCounts]
    has_amodal: bool
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    n_gt_objects: int = 0
    matching: Matching | None = None
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    pairs: list[PairRecord] = field(default_factory=list)  # every GT-occluded ordered pair (scenario "all")


def _empty(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width), dtype=bool)


def _pred_masks(pred: Instance | None, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (visible, amodal) arrays; amodal falls back to visible, missing masks are empty."""
    if pred is None:
        return _empty(height, width), _empty(height, width)
    vis = pred.mask.decode() if pred.mask is not None else _empty(height, width)
    amo = pred.amodal_mask.decode() if pred.amodal_mask is not None else vis
    return vis, amo


def _pred_amodal_box(pred: Instance | None, amodal: np.ndarray) -> Box | None:
    if pred is None:
        return None
    if pred.amodal_box is not None:
        return pred.amodal_box
    if pred.amodal_mask is not None:
        return mask_to_box(amodal)
    return pred.box


def _scenario(inst: Instance) -> str | None:
    s = inst.extra.get("scenario")
    return None if s is None else str(s)


def _counts(correct: bool, has_prediction: bool, class_agnostic: bool) -> bool:
    """Whether an object's IoUs count as they are: its class is right, or classes are ignored and it has a
    prediction (a missing prediction always counts 0)."""
    return correct or (class_agnostic and has_prediction)


def object_record(
    image: AnnotatedImage, gt: Instance, pred: Instance | None, *, class_agnostic: bool = False
) -> ObjectRecord:
    """Score one GT object against its prediction (``None``: no prediction); ``class_agnostic``: the IoUs count
    whatever the predicted class."""
    h, w = image.height, image.width
    assert gt.mask is not None
    g_vis = gt.mask.decode()
    p_vis, p_amo = _pred_masks(pred, h, w)
    correct = pred is not None and pred.category == gt.category
    iou_amodal = iou_occluded = occ = box_score = None
    g_amo: np.ndarray | None = None
    if gt.amodal_mask is not None:
        g_amo = gt.amodal_mask.decode()
        g_occ = g_amo & ~g_vis
        area = int(np.count_nonzero(g_amo))
        occ = float(np.count_nonzero(g_occ)) / area if area else None
        iou_amodal = mask_iou(p_amo, g_amo)
        iou_occluded = mask_iou(p_amo & ~p_vis, g_occ)
    gt_abox = gt.amodal_box
    if gt_abox is None and g_amo is not None:
        gt_abox = mask_to_box(g_amo)
    if gt_abox is not None:
        box_score = amodal_box_iou(
            _pred_amodal_box(pred, p_amo), gt_abox, _counts(correct, pred is not None, class_agnostic)
        )
    return ObjectRecord(
        image_id=image.image_id,
        object_id=gt.id,
        category=gt.category,
        predicted_category=pred.category if pred is not None else None,
        correct=correct,
        has_prediction=pred is not None,
        scenario=_scenario(gt),
        occlusion=occ,
        level=occlusion_level(occ),
        iou_visible=mask_iou(p_vis, g_vis),
        iou_amodal=iou_amodal,
        iou_occluded=iou_occluded,
        amodal_box_iou=box_score,
        box=gt.box,
        class_agnostic=class_agnostic,
    )


def _image_order(
    image: AnnotatedImage, objects: list[Instance], matching: Matching
) -> tuple[np.ndarray, np.ndarray, list[str | None], list[int]] | None:
    """GT and predicted order matrices of an image's evaluated objects that have GT amodal masks, their
    scenarios and ids."""
    objs = [o for o in objects if o.amodal_mask is not None and o.mask is not None]
    if len(objs) < 2:
        return None
    gt_order = pairwise_order_matrix([o.mask for o in objs], [o.amodal_mask for o in objs])  # type: ignore[misc]
    empty = LazyMask.from_array(_empty(image.height, image.width))
    vis: list[LazyMask] = []
    amo: list[LazyMask] = []
    for o in objs:
        p = matching.pairs.get((image.image_id, o.id))
        v = p.mask if p is not None and p.mask is not None else empty
        a = p.amodal_mask if p is not None and p.amodal_mask is not None else v
        vis.append(v)
        amo.append(a)
    return gt_order, pairwise_order_matrix(vis, amo), [_scenario(o) for o in objs], [o.id for o in objs]


@dataclass
class ImageScores:
    """One image's share of an evaluation: its evaluated objects' records, its order counts per scenario key
    (``all`` and each scenario; empty when the image has no order to compare) and its GT-occluded pairs."""

    records: list[ObjectRecord]
    order: dict[str, OrderCounts]
    pairs: list[PairRecord]


#: runs the per-image scoring: ``(n, score)`` -> ``[score(0), ..., score(n - 1)]``, in that order
ImageMapper = Callable[[int, Callable[[int], ImageScores]], list[ImageScores]]


def score_image(
    image: AnnotatedImage, objects: list[Instance], matching: Matching, *, class_agnostic: bool = False
) -> ImageScores:
    """The records, order counts and occluded pairs of one image's evaluated GT objects."""
    records = [
        object_record(image, o, matching.pairs.get((image.image_id, o.id)), class_agnostic=class_agnostic)
        for o in objects
    ]
    res = _image_order(image, objects, matching)
    if res is None:
        return ImageScores(records, {}, [])
    g, p, scen, ids = res
    order = {ALL: order_counts(g, p)}
    pairs = [PairRecord(image.image_id, ids[i], ids[j], int(g[i, j]), int(p[i, j])) for i, j in zip(*np.nonzero(g))]
    for s in sorted({s for s in scen if s is not None}):
        idx = [i for i, x in enumerate(scen) if x == s]
        sub = np.ix_(idx, idx)
        order[s] = order_counts(g[sub], p[sub])
    return ImageScores(records, order, pairs)


def combine_images(
    scores: Iterable[ImageScores],
) -> tuple[list[ObjectRecord], dict[str, OrderCounts], list[PairRecord]]:
    """The images' records and pairs concatenated and their order counts added, in the order given."""
    records: list[ObjectRecord] = []
    pairs: list[PairRecord] = []
    order: dict[str, OrderCounts] = {ALL: OrderCounts()}
    for sc in scores:
        records.extend(sc.records)
        pairs.extend(sc.pairs)
        for key, counts in sc.order.items():
            order.setdefault(key, OrderCounts())
            order[key] += counts
    return records, order, pairs


def _progress_map(progress: bool) -> ImageMapper:
    def run(n: int, score: Callable[[int], ImageScores]) -> list[ImageScores]:
        return [score(k) for k in tqdm(range(n), desc="evaluate", unit="image", disable=not progress, leave=False)]

    return run


#: The warning when no evaluated GT object has a prediction: the order accuracy is then null (report.json) /
#: "null" (the command's summary), not the share of pairs where "no order" happens to be right
NO_PREDICTION_ORDER = (
    "no GT object has a prediction: the order accuracy is not defined and is reported as null (with no prediction "
    "the order is unknown)"
)


def _select(gt: Dataset, config: EvalConfig) -> tuple[list[tuple[AnnotatedImage, list[Instance]]], dict[str, int], int]:
    """The images with evaluated objects (and those objects), the skipped objects counted by reason, and the
    number of GT objects."""
    skipped: dict[str, int] = {}
    selected: list[tuple[AnnotatedImage, list[Instance]]] = []
    n_gt = 0
    for im in gt.images:
        keep = []
        for inst in im.instances:
            n_gt += 1
            reason = skip_reason(inst, config)
            if reason is None:
                keep.append(inst)
            else:
                skipped[reason] = skipped.get(reason, 0) + 1
        if keep:
            selected.append((im, keep))
    return selected, skipped, n_gt


def evaluate(
    gt: Dataset, pred: Dataset, config: EvalConfig | None = None, *, map_images: ImageMapper | None = None
) -> Evaluation:
    """Score ``pred`` against ``gt`` under the protocol (see the module docstring). ``map_images`` runs the
    per-image scoring (default: one loop with a progress bar; under torchrun each rank scores its share of the
    images, :func:`occseg.distributed.evaluation.sharded_image_map`); the images' scores are combined in image
    order, so the result does not depend on how they were computed.

    Raises :class:`~occseg.evaluation.matching.PredictionError` for predictions that cannot be paired.
    """
    require_dataset(gt, "gt")
    require_dataset(pred, "pred")
    config = config or EvalConfig()
    if not isinstance(config, EvalConfig):
        raise TypeError(f"config must be an EvalConfig, not {type(config).__name__}")
    selected, skipped, n_gt = _select(gt, config)
    keys: list[Key] = [(im.image_id, o.id) for im, objs in selected for o in objs]
    matching = match_predictions(gt, pred, keys=keys, class_agnostic=config.class_agnostic)
    warnings = list(matching.warnings)
    has_amodal = any(o.amodal_mask is not None for _, objs in selected for o in objs)
    no_amodal_pred = sum(1 for k in keys if k in matching.pairs and matching.pairs[k].amodal_mask is None)
    if no_amodal_pred and has_amodal:
        warnings.append(
            f"{no_amodal_pred} prediction(s) have no amodal mask (a_segm); their visible mask is used as the amodal "
            "mask (no occluded part predicted)"
        )

    def score(k: int) -> ImageScores:
        return score_image(*selected[k], matching, class_agnostic=config.class_agnostic)

    mapper = map_images or _progress_map(config.progress)
    records, order, pairs = combine_images(mapper(len(selected), score))
    if not records:
        warnings.append(f"no GT object is evaluated ({n_gt} in the GT; skipped: {skipped or 'none'})")
    elif not any(r.has_prediction for r in records):
        order, pairs = {ALL: OrderCounts()}, []  # every pair "agreed" on no order: not a measure of anything
        warnings.append(NO_PREDICTION_ORDER)
    return Evaluation(
        records=records,
        order=order,
        has_amodal=has_amodal,
        warnings=warnings,
        skipped=skipped,
        n_gt_objects=n_gt,
        matching=matching,
        bootstrap=config.bootstrap,
        pairs=pairs,
    )


def score_columns(
    records: Iterable[ObjectRecord], mask_type: str
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per image (ids in the order met): the sums and counts of one mask type's scores per level, ``(U, 4)``
    each, and over every scored object, levels or not, ``(U,)`` each; the units of the bootstrap intervals."""
    ids: dict[int, int] = {}
    rows: list[tuple[int, str | None, float]] = []
    for r in records:
        v = r.score(mask_type)
        if v is not None:
            rows.append((ids.setdefault(r.image_id, len(ids)), r.level, v))
    col = {lv: k for k, lv in enumerate(LEVELS)}
    sums, counts = np.zeros((len(ids), len(LEVELS))), np.zeros((len(ids), len(LEVELS)))
    all_sums, all_counts = np.zeros(len(ids)), np.zeros(len(ids))
    for u, level, v in rows:
        all_sums[u] += v
        all_counts[u] += 1
        if level is not None:
            sums[u, col[level]] += v
            counts[u, col[level]] += 1
    return list(ids), sums, counts, all_sums, all_counts


def paired_difference_interval(
    before: Evaluation, after: Evaluation, mask_type: str, cell: str, bootstrap: BootstrapConfig
) -> tuple[float, float] | None:
    """Bootstrap interval of ``after``'s minus ``before``'s mean of one cell (a level, ``mean`` or
    ``weighted_mean``) of one mask type, when the same images are resampled for both: the paired comparison of
    two methods on one ground truth, narrower than either interval alone. Both must score the same objects
    (a ``ValueError`` otherwise)."""
    ids_b, sums_b, counts_b, _, _ = score_columns(before.records, mask_type)
    ids_a, sums_a, counts_a, _, _ = score_columns(after.records, mask_type)
    if ids_a != ids_b or not np.array_equal(counts_a, counts_b):
        raise ValueError(f"paired comparison: the two evaluations do not score the same {mask_type} objects")
    diff = sums_a - sums_b
    if cell in LEVELS:
        k = LEVELS.index(cell)
        return bootstrap_interval(diff[:, k], counts_a[:, k], bootstrap)
    if cell == "mean":
        return bootstrap_interval(diff, counts_a, bootstrap)
    if cell == "weighted_mean":
        return bootstrap_interval(diff.sum(axis=1), counts_a.sum(axis=1), bootstrap)
    raise ValueError(f"paired comparison: unknown cell {cell!r} (one of {', '.join(LEVELS)}, mean, weighted_mean)")


def _interval_json(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def mask_type_intervals(
    records: list[ObjectRecord], mask_type: str, bootstrap: BootstrapConfig
) -> dict[str, list[float] | None]:
    """Bootstrap intervals over images (:func:`~occseg.evaluation.metrics.bootstrap_interval`) of each level
    mean, ``mean``, ``weighted_mean`` and ``all_objects``: ``[low, high]``, ``None`` where fewer than two
    images hold objects of that cell or intervals are off."""
    _, sums, counts, all_sums, all_counts = score_columns(records, mask_type)
    out: dict[str, list[float] | None] = {}
    for k, lv in enumerate(LEVELS):
        out[lv] = _interval_json(bootstrap_interval(sums[:, k], counts[:, k], bootstrap))
    out["mean"] = _interval_json(bootstrap_interval(sums, counts, bootstrap))
    out["weighted_mean"] = _interval_json(bootstrap_interval(sums.sum(axis=1), counts.sum(axis=1), bootstrap))
    out["all_objects"] = _interval_json(bootstrap_interval(all_sums, all_counts, bootstrap))
    return out


def mask_type_summary(
    records: list[ObjectRecord], mask_type: str, bootstrap: BootstrapConfig | None = None
) -> dict[str, Any]:
    """Level means, ``mean``, ``weighted_mean``, ``all_objects`` and ``n`` of one mask type (see module docstring),
    and with ``bootstrap`` their ``interval`` s (:func:`mask_type_intervals`)."""
    scored = [(r.level, r.score(mask_type)) for r in records]
    scored = [(lv, s) for lv, s in scored if s is not None]
    out: dict[str, Any] = {}
    n: dict[str, int] = {}
    for lv in LEVELS:
        vals = [s for level, s in scored if level == lv]
        out[lv] = mean_or_none(vals)
        n[lv] = len(vals)
    level_means = [out[lv] for lv in LEVELS if out[lv] is not None]
    in_levels = [s for level, s in scored if level is not None]
    out["mean"] = mean_or_none(level_means)
    out["mean_levels"] = len(level_means)
    out["weighted_mean"] = mean_or_none(in_levels)
    out["all_objects"] = mean_or_none(s for _, s in scored)
    n["total"] = len(in_levels)
    n["all_objects"] = len(scored)
    out["n"] = n
    if bootstrap is not None:
        out["interval"] = mask_type_intervals(records, mask_type, bootstrap)
    return out


def summarize(
    records: list[ObjectRecord], order: OrderCounts | None, bootstrap: BootstrapConfig | None = None
) -> dict[str, Any]:
    """The report cell of one scenario key; with ``bootstrap``, intervals over images of its means and of the
    order accuracy on the occluded pairs (``order_accuracy["occluded_interval"]``)."""
    out: dict[str, Any] = {m: mask_type_summary(records, m, bootstrap) for m in MASK_TYPES}
    out["classification_accuracy"] = mean_or_none(float(r.correct) for r in records)
    box_scores = [r.amodal_box_iou for r in records if r.amodal_box_iou is not None]
    out["amodal_box_iou"] = mean_or_none(box_scores)
    out["n_amodal_boxes"] = len(box_scores)
    order = order or OrderCounts()
    out["order_accuracy"] = order.to_json()
    if bootstrap is not None:
        out["order_accuracy"]["occluded_interval"] = _interval_json(order.occluded_interval(bootstrap))
    out["n_objects"] = len(records)
    out["n_missing_predictions"] = sum(1 for r in records if not r.has_prediction)
    return out


def scenario_keys(records: list[ObjectRecord]) -> dict[str, str]:
    """Scenario name -> report key (``all`` first; a scenario called ``all`` or ``settings`` is prefixed)."""
    keys: dict[str, str] = {}
    for s in sorted({r.scenario for r in records if r.scenario is not None}):
        keys[s] = f"scenario_{s}" if s in (ALL, "settings") else s
    return keys


def aggregate(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """Report cells: ``all`` plus one per scenario name."""
    boot = evaluation.bootstrap
    out = {ALL: summarize(evaluation.records, evaluation.order.get(ALL), boot)}
    for name, key in scenario_keys(evaluation.records).items():
        recs = [r for r in evaluation.records if r.scenario == name]
        out[key] = summarize(recs, evaluation.order.get(name), boot)
    return out
