"""Pure metric functions on boolean masks, boxes and occlusion-order matrices (docs/method.md §E).

Nothing here knows about datasets or files: every function takes arrays and returns numbers, so each
one is checked against hand-computed values in ``tests/evaluation/test_metrics.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from occseg.checks import is_integer, is_number
from occseg.geometry.boxes import Box, box_iou


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: mask shapes differ, {a.shape} (prediction) vs {b.shape} (ground truth)")


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float | None:
    """``|P ∩ G| / |P ∪ G|`` of two boolean masks over the whole image.

    Returns ``None`` when both masks are empty: the IoU is undefined there (the paper's code divides 0 by
    0 and gets NaN). Callers leave such objects out of the mean of that mask type.
    """
    p = np.asarray(pred, dtype=bool)
    g = np.asarray(gt, dtype=bool)
    _check_same_shape(p, g, "mask_iou")
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return None
    return float(np.count_nonzero(p & g)) / float(union)


def occluded_part(amodal: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The occluded mask ``amodal \\ visible`` (pixels of the amodal mask that are not visible)."""
    a = np.asarray(amodal, dtype=bool)
    v = np.asarray(visible, dtype=bool)
    _check_same_shape(a, v, "occluded_part")
    return a & ~v


def occlusion_fraction(amodal: np.ndarray, visible: np.ndarray) -> float | None:
    """``|A \\ V| / |A|``; ``None`` when the amodal mask is empty."""
    a = np.asarray(amodal, dtype=bool)
    area = int(np.count_nonzero(a))
    if area == 0:
        return None
    return float(np.count_nonzero(occluded_part(a, visible))) / float(area)


def amodal_box_iou(pred_box: Box | None, gt_box: Box, correct: bool = True) -> float:
    """The protocol's amodal-box score: box IoU times ``1[class correct]``; 0 without a predicted box.

    Boxes are ``(x1, y1, x2, y2)`` with exclusive far edges (occseg's convention), so the continuous area
    used here equals the released code's ``+1``-pixel area on inclusive integer corners.
    """
    if pred_box is None or not correct:
        return 0.0
    return float(box_iou(pred_box, gt_box))


def mean_or_none(values: Iterable[float]) -> float | None:
    """Arithmetic mean, ``None`` for no values."""
    vals = [float(v) for v in values]
    if not vals:
        return None
    return float(np.mean(vals))


@dataclass
class OrderCounts:
    """Pairwise occlusion-order agreement, summed over images (docs/method.md §E, "Order").

    ``pairs_all`` counts ordered pairs ``i != j`` (``N(N-1)`` per image) and ``correct_all`` those where the
    predicted order equals the GT order (including agreeing zeros). ``pairs_occluded`` counts pairs with a GT
    order (``gt != 0``) and ``correct_occluded`` those predicted right. ``misses``: ``gt != 0, pred == 0``;
    ``reversals``: ``pred == -gt != 0``; ``false_detections``: ``gt == 0, pred != 0``.
    """

    pairs_all: int = 0
    correct_all: int = 0
    pairs_occluded: int = 0
    correct_occluded: int = 0
    misses: int = 0
    reversals: int = 0
    false_detections: int = 0
    # (correct_occluded, pairs_occluded) of every image summed in, for intervals over images
    per_image: list[tuple[int, int]] = field(default_factory=list, compare=False, repr=False)

    def __iadd__(self, other: OrderCounts) -> OrderCounts:
        self.pairs_all += other.pairs_all
        self.correct_all += other.correct_all
        self.pairs_occluded += other.pairs_occluded
        self.correct_occluded += other.correct_occluded
        self.misses += other.misses
        self.reversals += other.reversals
        self.false_detections += other.false_detections
        self.per_image.extend(other.per_image)
        return self

    @property
    def accuracy_all(self) -> float | None:
        return self.correct_all / self.pairs_all if self.pairs_all else None

    @property
    def accuracy_occluded(self) -> float | None:
        return self.correct_occluded / self.pairs_occluded if self.pairs_occluded else None

    def occluded_interval(self, config: BootstrapConfig) -> tuple[float, float] | None:
        """Bootstrap interval of :attr:`accuracy_occluded` over the images summed in (:func:`bootstrap_interval`)."""
        if not self.per_image:
            return None
        per_image = np.asarray(self.per_image, dtype=np.float64)
        return bootstrap_interval(per_image[:, 0], per_image[:, 1], config)

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "all": self.accuracy_all,
            "occluded": self.accuracy_occluded,
            "pairs_all": self.pairs_all,
            "pairs_occluded": self.pairs_occluded,
            "correct_all": self.correct_all,
            "correct_occluded": self.correct_occluded,
            "misses": self.misses,
            "reversals": self.reversals,
            "false_detections": self.false_detections,
        }


def order_counts(gt: np.ndarray, pred: np.ndarray) -> OrderCounts:
    """Compare a GT and a predicted ``N x N`` order matrix (entries -1, 0, +1) over ordered pairs ``i != j``."""
    g = np.asarray(gt, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"order_counts: the GT order matrix must be square, got shape {g.shape}")
    _check_same_shape(p, g, "order_counts")
    n = g.shape[0]
    off = ~np.eye(n, dtype=bool)
    same = (g == p) & off
    occluded = (g != 0) & off
    pairs_occluded = int(np.count_nonzero(occluded))
    correct_occluded = int(np.count_nonzero(same & occluded))
    return OrderCounts(
        pairs_all=n * (n - 1),
        correct_all=int(np.count_nonzero(same)),
        pairs_occluded=pairs_occluded,
        correct_occluded=correct_occluded,
        misses=int(np.count_nonzero(occluded & (p == 0))),
        reversals=int(np.count_nonzero(occluded & (p == -g))),
        false_detections=int(np.count_nonzero((g == 0) & (p != 0) & off)),
        per_image=[(correct_occluded, pairs_occluded)],
    )


#: The fewest bootstrap resamples that give an interval (with fewer, its 2.5 % and 97.5 % percentiles are a few
#: draws each and may not even hold the estimate)
MIN_RESAMPLES = 200


@dataclass(frozen=True)
class BootstrapConfig:
    """A percentile bootstrap over whole units (images): ``resamples`` draws of the units with replacement,
    seeded, and the central ``level`` share of the statistic's draws. ``resamples = 0`` turns intervals off."""

    resamples: int = 2000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("resamples", "seed"):
            value = getattr(self, name)
            if not is_integer(value) or value < 0:
                raise ValueError(f"bootstrap {name} must be an integer >= 0, got {value!r}")
        if not is_number(self.level):
            raise ValueError(f"bootstrap level must be a number between 0 and 1, got {self.level!r}")
        if 0 < self.resamples < MIN_RESAMPLES:
            raise ValueError(
                f"bootstrap resamples must be 0 (no intervals) or at least {MIN_RESAMPLES} (fewer give a 95 % interval "
                f"that is mostly noise, and may not even hold the estimate), got {self.resamples}"
            )
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"bootstrap level must lie strictly between 0 and 1, got {self.level}")


def _mean_of_ratios(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
    """``arrays`` = the columns' sums then their counts (each ``(..., U)``): the plain mean, over the columns
    that hold any count, of ``sum(sums) / sum(counts)``."""
    k = len(arrays) // 2
    sums = np.stack([a.sum(axis=axis) for a in arrays[:k]])
    counts = np.stack([a.sum(axis=axis) for a in arrays[k:]])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
        return np.nanmean(ratios, axis=0)


def mean_of_ratios(sums: np.ndarray, counts: np.ndarray) -> float | None:
    """The plain mean over columns of ``sum(sums[:, c]) / sum(counts[:, c])``, over the columns with any count
    (rows = units such as images, columns = e.g. occlusion levels); ``None`` when no column has a count."""
    s, c = _unit_columns(sums, counts)
    if not (c.sum(axis=0) > 0).any():
        return None
    return float(_mean_of_ratios(*s.T, *c.T))


def _unit_columns(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sums, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if s.ndim == 1 and c.ndim == 1:  # one column
        s, c = s[:, None], c[:, None]
    if s.ndim != 2 or s.shape != c.shape:
        raise ValueError(f"sums and counts must be arrays of one shape (units, columns), got {s.shape} and {c.shape}")
    if (c < 0).any():
        raise ValueError("counts must be >= 0")
    return s, c


def bootstrap_interval(
    sums: np.ndarray, counts: np.ndarray, config: BootstrapConfig = BootstrapConfig()
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of :func:`mean_of_ratios` when whole units (rows) are resampled.

    Resampling units, not the objects or pairs inside them, keeps what one image's objects share (the same
    scene, the same occluders) inside each draw. Units without any count are left out: they add nothing to
    any ratio. ``None`` with fewer than two such units or ``config.resamples == 0``. A one-column input is
    the interval of a ratio of sums, e.g. order accuracy = correct pairs / pairs per image.
    """
    s, c = _unit_columns(sums, counts)
    keep = c.sum(axis=1) > 0
    if config.resamples == 0 or int(keep.sum()) < 2:
        return None
    s, c = s[keep], c[keep]
    from scipy import stats  # imported here: it takes seconds, and prediction runs never bootstrap

    res = stats.bootstrap(
        (*s.T, *c.T),
        _mean_of_ratios,
        paired=True,
        vectorized=True,
        n_resamples=config.resamples,
        batch=max(1, min(config.resamples, 2_000_000 // max(1, s.shape[0] * s.shape[1]))),  # bounded memory
        confidence_level=config.level,
        method="percentile",
        rng=np.random.default_rng(config.seed),
    )
    lo, hi = res.confidence_interval
    return float(lo), float(hi)


def cluster_bootstrap_interval(
    values: np.ndarray, clusters: np.ndarray, config: BootstrapConfig = BootstrapConfig()
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` when the clusters the items belong to, not the
    items, are resampled: ``clusters`` is ``(items, k)`` integer cluster ids, each item in ``k`` clusters (k = 1:
    an object's source object; k = 2: the two objects of a pair). Each draw resamples the clusters with
    replacement and weighs an item by the product of its clusters' draw counts (the "pigeonhole" bootstrap for
    items shared by two clusters; Owen 2007). ``None`` with fewer than two clusters or ``config.resamples == 0``.
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(clusters)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2 or c.shape[0] != v.shape[0] or v.ndim != 1:
        raise ValueError(f"values (items,) and clusters (items, k) must agree, got {v.shape} and {c.shape}")
    _, idx = np.unique(c, return_inverse=True)
    idx = idx.reshape(c.shape)
    n_clusters = int(idx.max()) + 1 if idx.size else 0
    if config.resamples == 0 or n_clusters < 2:
        return None
    rng = np.random.default_rng(config.seed)
    counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=config.resamples)
    chunk = max(1, 2_000_000 // max(1, idx.size))  # resamples weighed at a time: bounded memory
    parts = []
    for start in range(0, config.resamples, chunk):
        weights = np.prod(counts[start : start + chunk][:, idx], axis=2).astype(np.float64)  # (chunk, items)
        total = weights.sum(axis=1)
        keep = total > 0
        parts.append((weights[keep] @ v) / total[keep])
    stats_ = np.concatenate(parts)
    tail = (1.0 - config.level) / 2
    lo, hi = np.quantile(stats_, [tail, 1.0 - tail])
    return float(lo), float(hi)
