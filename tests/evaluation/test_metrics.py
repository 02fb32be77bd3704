"""Metric functions against hand-computed values on tiny masks."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.evaluation.metrics import (
    BootstrapConfig,
    OrderCounts,
    amodal_box_iou,
    bootstrap_interval,
    cluster_bootstrap_interval,
    mask_iou,
    mean_of_ratios,
    mean_or_none,
    occluded_part,
    occlusion_fraction,
    order_counts,
)


def m(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in r] for r in rows], dtype=bool)


def test_mask_iou_hand_computed() -> None:
    pred = m(["##..", "##..", "....", "...."])  # 4 px
    gt = m(["###.", "###.", "....", "...."])  # 6 px, contains pred
    assert mask_iou(pred, gt) == pytest.approx(4 / 6)
    shifted = m(["....", ".##.", ".##.", "...."])  # 4 px, 1 px shared with pred
    assert mask_iou(pred, shifted) == pytest.approx(1 / 7)
    assert mask_iou(pred, ~pred) == 0.0
    assert mask_iou(gt, gt) == 1.0


def test_mask_iou_empty_cases() -> None:
    empty = np.zeros((4, 4), bool)
    some = m(["#...", "....", "....", "...."])
    assert mask_iou(empty, empty) is None  # undefined, left out of means
    assert mask_iou(empty, some) == 0.0
    assert mask_iou(some, empty) == 0.0


def test_mask_iou_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_occluded_part_and_fraction() -> None:
    amodal = np.ones((4, 4), bool)
    visible = m(["##..", "##..", "##..", "##.."])
    occ = occluded_part(amodal, visible)
    assert occ.sum() == 8 and not (occ & visible).any()
    assert occlusion_fraction(amodal, visible) == 0.5
    assert occlusion_fraction(amodal, amodal) == 0.0
    assert occlusion_fraction(np.zeros((4, 4), bool), visible) is None
    # the occluded IoU of the protocol: pred amodal \ pred visible vs GT amodal \ GT visible
    pred_occ = occluded_part(amodal, m(["###.", "###.", "###.", "###."]))  # last column: 4 px
    assert mask_iou(pred_occ, occ) == pytest.approx(4 / 8)


def test_amodal_box_iou() -> None:
    assert amodal_box_iou((1, 0, 3, 2), (0, 0, 2, 2)) == pytest.approx(2 / 6)
    assert amodal_box_iou((1, 0, 3, 2), (0, 0, 2, 2), correct=False) == 0.0
    assert amodal_box_iou(None, (0, 0, 2, 2)) == 0.0
    assert amodal_box_iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0


def test_mean_or_none() -> None:
    assert mean_or_none([]) is None
    assert mean_or_none([0.0, 1.0, 0.5]) == pytest.approx(0.5)


def test_order_counts_every_kind() -> None:
    gt = np.array([[0, 1, 0], [-1, 0, 1], [0, -1, 0]])
    pred = np.array([[0, -1, 1], [1, 0, 0], [-1, 0, 0]])
    c = order_counts(gt, pred)
    # (0,1),(1,0) reversed; (1,2),(2,1) missed; (0,2),(2,0) false detections
    assert (c.pairs_all, c.correct_all, c.pairs_occluded, c.correct_occluded) == (6, 0, 4, 0)
    assert (c.misses, c.reversals, c.false_detections) == (2, 2, 2)
    assert c.accuracy_all == 0.0 and c.accuracy_occluded == 0.0


def test_order_counts_partly_right_and_summed() -> None:
    gt = np.array([[0, 1, 0], [-1, 0, 1], [0, -1, 0]])
    pred = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 0]])  # (0,1) right both ways, (1,2) missed, zeros agree
    c = order_counts(gt, pred)
    assert (c.pairs_all, c.correct_all, c.pairs_occluded, c.correct_occluded) == (6, 4, 4, 2)
    assert (c.misses, c.reversals, c.false_detections) == (2, 0, 0)
    total = OrderCounts()
    total += c
    total += order_counts(np.zeros((2, 2), int), np.zeros((2, 2), int))  # 2 more pairs, both right
    assert total.pairs_all == 8 and total.correct_all == 6
    assert total.accuracy_all == pytest.approx(6 / 8) and total.accuracy_occluded == pytest.approx(2 / 4)
    js = total.to_json()
    assert js["pairs_occluded"] == 4 and js["misses"] == 2


def test_order_counts_single_object_and_empty() -> None:
    c = order_counts(np.zeros((1, 1), int), np.zeros((1, 1), int))
    assert c.pairs_all == 0 and c.accuracy_all is None and c.accuracy_occluded is None
    with pytest.raises(ValueError):
        order_counts(np.zeros((2, 2), int), np.zeros((3, 3), int))


def test_mean_of_ratios_hand_computed() -> None:
    sums = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    counts = np.array([[1, 0, 0], [1, 2, 0]])  # column 3 has no count: left out
    assert mean_of_ratios(sums, counts) == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert mean_of_ratios(np.array([3.0, 1.0]), np.array([4, 4])) == pytest.approx(0.5)  # one column
    assert mean_of_ratios(np.zeros((2, 2)), np.zeros((2, 2))) is None
    with pytest.raises(ValueError, match="same shape|one shape"):
        mean_of_ratios(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=">= 0"):
        mean_of_ratios(np.zeros(2), np.array([1, -1]))


def test_bootstrap_interval_of_two_units_spans_both() -> None:
    # resampled ratios: 0 (p = 1/4), 0.5 (1/2), 1 (1/4): the central 95 % reaches both ends
    assert bootstrap_interval(np.array([1.0, 0.0]), np.array([1, 1])) == (0.0, 1.0)


def test_bootstrap_interval_of_equal_ratios_is_a_point() -> None:
    lo, hi = bootstrap_interval(np.array([1.0, 2.0, 3.0]), np.array([2, 4, 6]))
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)


def test_bootstrap_interval_matches_the_binomial_quantiles() -> None:
    # 20 units of one pair each, half right: a resampled accuracy is Binomial(20, 1/2) / 20, whose 2.5 % and
    # 97.5 % quantiles are 6/20 and 14/20
    correct = np.array([1.0, 0.0] * 10)
    lo, hi = bootstrap_interval(correct, np.ones(20), BootstrapConfig(resamples=20000))
    assert lo == pytest.approx(0.30, abs=0.026) and hi == pytest.approx(0.70, abs=0.026)
    assert lo < 0.5 < hi


def test_bootstrap_interval_seeded_and_narrowing_with_more_units() -> None:
    rng = np.random.default_rng(3)
    correct = rng.integers(0, 2, size=30).astype(float)
    a = bootstrap_interval(correct, np.ones(30), BootstrapConfig(seed=7))
    assert a == bootstrap_interval(correct, np.ones(30), BootstrapConfig(seed=7))
    wide = bootstrap_interval(correct[:10], np.ones(10))
    narrow = bootstrap_interval(np.tile(correct[:10], 10), np.ones(100))
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_bootstrap_interval_needs_two_units_with_counts() -> None:
    assert bootstrap_interval(np.array([1.0]), np.array([2])) is None
    assert bootstrap_interval(np.array([1.0, 0.0, 0.0]), np.array([2, 0, 0])) is None  # empty units left out
    assert bootstrap_interval(np.array([1.0, 0.0]), np.array([1, 1]), BootstrapConfig(resamples=0)) is None
    with pytest.raises(ValueError, match="level"):
        BootstrapConfig(level=1.0)
    with pytest.raises(ValueError, match="resamples"):
        BootstrapConfig(resamples=-1)


def test_order_counts_keep_each_image_for_the_interval() -> None:
    gt = np.array([[0, 1], [-1, 0]])
    total = OrderCounts()
    total += order_counts(gt, gt)  # 2 of 2 occluded pairs right
    total += order_counts(gt, -gt)  # 0 of 2
    total += order_counts(np.zeros((2, 2), int), np.zeros((2, 2), int))  # no occluded pair
    assert total.per_image == [(2, 2), (0, 2), (0, 0)]
    assert total.occluded_interval(BootstrapConfig()) == (0.0, 1.0)
    assert OrderCounts().occluded_interval(BootstrapConfig()) is None
    # the per-image list does not take part in comparisons
    assert order_counts(gt, gt) == OrderCounts(pairs_all=2, correct_all=2, pairs_occluded=2, correct_occluded=2)


def test_cluster_bootstrap_of_single_clusters_is_the_plain_bootstrap() -> None:
    values = np.array([1.0, 0.0] * 10)
    lo, hi = cluster_bootstrap_interval(values, np.arange(20), BootstrapConfig(resamples=20000))
    assert lo == pytest.approx(0.30, abs=0.026) and hi == pytest.approx(0.70, abs=0.026)  # Binomial(20, 1/2) / 20


def test_cluster_bootstrap_widens_when_values_follow_their_clusters() -> None:
    values = np.array([1.0, 0.0] * 10)
    # two clusters, each holding only ones or only zeros: a draw is all ones, all zeros or half and half
    assert cluster_bootstrap_interval(values, np.arange(20) % 2) == (0.0, 1.0)
    assert cluster_bootstrap_interval(np.ones(4), np.array([0, 1, 2, 3])) == (1.0, 1.0)
    # pairs: an item weighs by both its clusters' draws; the values follow cluster 0 (in front: right)
    pairs = np.array([[0, 1], [0, 2], [1, 2], [2, 1]])
    lo, hi = cluster_bootstrap_interval(np.array([1.0, 1.0, 0.0, 0.0]), pairs)
    assert lo == 0.0 and hi == 1.0
    assert cluster_bootstrap_interval(np.ones(3), np.zeros(3, int)) is None  # one cluster
    assert cluster_bootstrap_interval(np.ones(2), np.arange(2), BootstrapConfig(resamples=0)) is None
    with pytest.raises(ValueError, match="must agree"):
        cluster_bootstrap_interval(np.ones(3), np.arange(2))
