"""The protocol: object records, level binning, the means, order accuracy and the scenario split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from occseg.evaluation.metrics import BootstrapConfig
from occseg.evaluation.protocol import (
    EvalConfig,
    Evaluation,
    ObjectRecord,
    aggregate,
    evaluate,
    filter_dataset,
    mask_type_summary,
    paired_difference_interval,
    score_columns,
    summarize,
)

CFG = EvalConfig(progress=False)


def _with_hole(n_hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """A 10x10 amodal mask and a visible mask with ``n_hidden`` of its 100 pixels hidden."""
    amodal = np.zeros((12, 12), bool)
    amodal[1:11, 1:11] = True
    visible = amodal.copy()
    idx = np.argwhere(amodal)[:n_hidden]
    visible[idx[:, 0], idx[:, 1]] = False
    return visible, amodal


@pytest.mark.parametrize(
    ("hidden", "level"),
    [(0, "L0"), (1, "L1"), (29, "L1"), (30, "L2"), (59, "L2"), (60, "L3"), (89, "L3"), (90, None), (100, None)],
)
def test_level_binning_at_the_boundaries(build, hidden: int, level: str | None) -> None:
    if hidden == 100:  # fully hidden: empty visible mask, the object is skipped (released code)
        vis, amo = _with_hole(100)
        gt = build.dataset([build.image(1, [build.inst(1, vis, amo, box=(1, 1, 11, 11))], 12, 12)])
        ev = evaluate(gt, gt, CFG)
        assert ev.records == [] and ev.skipped == {"empty visible mask": 1}
        return
    vis, amo = _with_hole(hidden)
    gt = build.dataset([build.image(1, [build.inst(1, vis, amo)], 12, 12)])
    ev = evaluate(gt, gt, CFG)
    (r,) = ev.records
    assert r.occlusion == pytest.approx(hidden / 100)
    assert r.level == level
    assert r.iou_visible == 1.0 and r.iou_amodal == 1.0
    assert r.iou_occluded == (None if hidden == 0 else 1.0)  # both occluded parts empty: undefined


def test_object_ious_hand_computed(build) -> None:
    h, w = 4, 8
    g_vis, g_amo = build.rect(h, w, 0, 4, 0, 2), build.rect(h, w, 0, 4, 0, 4)  # occ = cols 2-3: 8 px, fraction .5
    p_vis, p_amo = build.rect(h, w, 0, 4, 0, 3), build.rect(h, w, 0, 4, 0, 5)  # occ = cols 3-4
    gt = build.dataset([build.image(7, [build.inst(3, g_vis, g_amo)], h, w)])
    pred = build.dataset([build.image(7, [build.inst(3, p_vis, p_amo)], h, w)], source="pred")
    (r,) = evaluate(gt, pred, CFG).records
    assert r.level == "L2" and r.correct
    assert r.iou_visible == pytest.approx(8 / 12)
    assert r.iou_amodal == pytest.approx(16 / 20)
    assert r.iou_occluded == pytest.approx(4 / 12)  # col 3 shared, cols 2,3,4 in the union
    assert r.amodal_box_iou == pytest.approx(16 / 20)  # boxes (0,0,4,4) and (0,0,5,4)


def test_class_incorrect_counts_as_zero(build) -> None:
    h, w = 4, 4
    full = build.rect(h, w, 0, 4, 0, 4)
    gt = build.dataset([build.image(1, [build.inst(1, full, full), build.inst(2, full, full)], h, w)])
    pred = build.dataset(
        [build.image(1, [build.inst(1, full, full), build.inst(2, full, full, category="person")], h, w)]
    )
    ev = evaluate(gt, pred, CFG)
    assert [r.iou_visible for r in ev.records] == [1.0, 1.0]  # the raw IoU is kept per object ...
    cell = aggregate(ev)["all"]
    assert cell["visible"]["L0"] == pytest.approx(0.5)  # ... but the means use IoU x 1[class correct]
    assert cell["amodal"]["L0"] == pytest.approx(0.5)
    assert cell["classification_accuracy"] == pytest.approx(0.5)
    assert cell["amodal_box_iou"] == pytest.approx(0.5)


def test_class_agnostic_counts_every_prediction_whatever_its_class(build) -> None:
    h, w = 4, 4
    full, half = build.rect(h, w, 0, 4, 0, 4), build.rect(h, w, 0, 4, 0, 2)
    gt = build.dataset(
        [build.image(1, [build.inst(1, full, full), build.inst(2, full, full), build.inst(3, full, full)], h, w)]
    )
    pred = build.dataset(  # object 2: right masks, class "lamp" (not in the GT); object 3 has no prediction
        [build.image(1, [build.inst(1, half, half), build.inst(2, full, full, category="lamp")], h, w)],
        source="pred",
    )
    agnostic = evaluate(gt, pred, EvalConfig(class_agnostic=True, progress=False))
    cell = aggregate(agnostic)["all"]
    assert cell["visible"]["L0"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)  # the missing object still counts 0
    assert cell["amodal_box_iou"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert cell["classification_accuracy"] == pytest.approx(1 / 3)  # the names are still compared
    assert any("count all the same (class-agnostic)" in w for w in agnostic.warnings)
    strict = aggregate(evaluate(gt, pred, CFG))["all"]
    assert strict["visible"]["L0"] == pytest.approx(0.5 / 3) and strict["classification_accuracy"] == pytest.approx(
        1 / 3
    )


def _rec(level: str | None, iou: float, correct: bool = True, image_id: int = 1) -> ObjectRecord:
    return ObjectRecord(
        image_id=image_id, object_id=0, category="car", predicted_category="car" if correct else "van", correct=correct,
        has_prediction=True, scenario=None, occlusion=None, level=level, iou_visible=iou, iou_amodal=iou,
        iou_occluded=None, amodal_box_iou=None, box=(0, 0, 1, 1),
    )  # fmt: skip


def test_mean_vs_weighted_mean() -> None:
    recs = [_rec("L0", 1.0), _rec("L0", 0.5), _rec("L0", 0.0), _rec("L1", 1.0), _rec(None, 0.2)]
    s = mask_type_summary(recs, "visible")
    assert s["L0"] == pytest.approx(0.5) and s["L1"] == 1.0 and s["L2"] is None and s["L3"] is None
    assert s["mean"] == pytest.approx(0.75)  # (0.5 + 1.0) / 2 levels
    assert s["mean_levels"] == 2
    assert s["weighted_mean"] == pytest.approx(2.5 / 4)  # every object in L0..L3 once
    assert s["all_objects"] == pytest.approx(2.7 / 5)  # the level-free object also counts here
    assert s["n"] == {"L0": 3, "L1": 1, "L2": 0, "L3": 0, "total": 4, "all_objects": 5}
    occ = mask_type_summary(recs, "occluded")  # all undefined
    assert occ["mean"] is None and occ["weighted_mean"] is None and occ["n"]["all_objects"] == 0
    wrong = mask_type_summary([_rec("L2", 0.8, correct=False), _rec("L2", 0.6)], "visible")
    assert wrong["L2"] == pytest.approx(0.3)


def _three_objects(build):
    """GT: A in front of B (A hides cols 2-3 of B), C in front of B (hides col 7), A and C apart."""
    h, w = 8, 12
    r = build.rect
    gt = [
        build.inst(1, r(h, w, 0, 4, 0, 4), r(h, w, 0, 4, 0, 4)),
        build.inst(2, r(h, w, 0, 4, 4, 7), r(h, w, 0, 4, 2, 8)),
        build.inst(3, r(h, w, 0, 4, 7, 11), r(h, w, 0, 4, 7, 11)),
    ]
    pred = [
        # B's visible part now covers A's amodal mask: A/B reversed
        build.inst(1, r(h, w, 0, 4, 0, 2), r(h, w, 0, 4, 0, 5) | r(h, w, 4, 8, 8, 11)),
        # B's amodal mask no longer reaches C's: B/C missed
        build.inst(2, r(h, w, 0, 4, 2, 6), r(h, w, 0, 4, 2, 7)),
        # C's visible part covers A's (new) amodal part below it: A/C falsely ordered
        build.inst(3, r(h, w, 0, 4, 7, 11) | r(h, w, 4, 6, 8, 11), r(h, w, 0, 4, 7, 11) | r(h, w, 4, 8, 8, 11)),
    ]
    return build.dataset([build.image(1, gt, h, w)]), build.dataset([build.image(1, pred, h, w)], source="pred")


def test_order_accuracy_three_objects(build) -> None:
    gt, pred = _three_objects(build)
    ev = evaluate(gt, pred, CFG)
    # the occluded ordered pairs, each with its GT and predicted order (A = 1 in front of B = 2, C = 3 of B)
    assert sorted((p.first, p.second, p.gt, p.pred, p.correct) for p in ev.pairs) == [
        (1, 2, 1, -1, False), (2, 1, -1, 1, False), (2, 3, -1, 0, False), (3, 2, 1, 0, False)
    ]  # fmt: skip
    oa = aggregate(ev)["all"]["order_accuracy"]
    assert oa["pairs_all"] == 6 and oa["pairs_occluded"] == 4
    assert (oa["misses"], oa["reversals"], oa["false_detections"]) == (2, 2, 2)
    assert oa["all"] == 0.0 and oa["occluded"] == 0.0
    perfect = aggregate(evaluate(gt, gt, CFG))["all"]["order_accuracy"]
    assert perfect["all"] == 1.0 and perfect["occluded"] == 1.0
    assert (perfect["misses"], perfect["reversals"], perfect["false_detections"]) == (0, 0, 0)


def test_order_restricted_to_evaluated_objects(build) -> None:
    gt, pred = _three_objects(build)
    # leave object 3 (C) out by class: only the reversed A/B pair remains
    gt.images[0].instances[2].category = "person"
    pred.images[0].instances[2].category = "person"
    oa = aggregate(evaluate(gt, pred, EvalConfig(classes=("car",), progress=False)))["all"]["order_accuracy"]
    assert (oa["pairs_all"], oa["pairs_occluded"], oa["reversals"], oa["misses"]) == (2, 2, 2, 0)


def test_scenario_split(build) -> None:
    h, w = 4, 8
    r = build.rect
    full_a = r(h, w, 0, 4, 0, 4)
    full_b = r(h, w, 0, 4, 4, 8)
    easy, hard = build.inst(1, full_a, full_a, scenario="easy"), build.inst(2, full_b, full_b, scenario="hard")
    gt = build.dataset(
        [build.image(1, [easy, hard], h, w), build.image(2, [build.inst(1, full_a, full_a, scenario="hard")], h, w)]
    )
    pred = build.dataset(
        [
            build.image(1, [build.inst(1, full_a, full_a), build.inst(2, full_a, full_a)], h, w),  # obj 2: IoU 0
            build.image(2, [build.inst(1, r(h, w, 0, 4, 0, 2), full_a)], h, w),  # visible IoU 0.5
        ]
    )
    rep = aggregate(evaluate(gt, pred, CFG))
    assert set(rep) == {"all", "easy", "hard"}
    assert rep["all"]["n_objects"] == 3 and rep["easy"]["n_objects"] == 1 and rep["hard"]["n_objects"] == 2
    assert rep["easy"]["visible"]["L0"] == 1.0
    assert rep["hard"]["visible"]["L0"] == pytest.approx(0.25)
    assert rep["all"]["visible"]["L0"] == pytest.approx(1.5 / 3)
    # image 1 has one pair across scenarios: it counts for "all" only
    assert rep["all"]["order_accuracy"]["pairs_all"] == 2
    assert rep["easy"]["order_accuracy"]["pairs_all"] == 0 and rep["hard"]["order_accuracy"]["pairs_all"] == 0


def test_no_amodal_gt_visible_only(build) -> None:
    h, w = 4, 4
    gt = build.dataset([build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 2))], h, w)])
    pred = build.dataset([build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 4))], h, w)])
    ev = evaluate(gt, pred, CFG)
    assert not ev.has_amodal
    cell = summarize(ev.records, ev.order["all"])
    assert cell["visible"]["all_objects"] == 0.5 and cell["visible"]["n"]["all_objects"] == 1
    assert all(cell["visible"][lv] is None for lv in ("L0", "L1", "L2", "L3", "mean", "weighted_mean"))
    for m in ("amodal", "occluded"):
        assert cell[m]["all_objects"] is None and cell[m]["n"]["all_objects"] == 0
    assert cell["amodal_box_iou"] is None
    assert cell["order_accuracy"]["all"] is None and cell["order_accuracy"]["pairs_all"] == 0


def test_missing_prediction_counts_as_zero_with_warning(build) -> None:
    h, w = 4, 4
    full = build.rect(h, w, 0, 4, 0, 4)
    gt = build.dataset([build.image(1, [build.inst(1, full, full), build.inst(2, full, full)], h, w)])
    pred = build.dataset([build.image(1, [build.inst(1, full, full)], h, w)])
    ev = evaluate(gt, pred, CFG)
    assert any("1 of 2 evaluated GT object(s) have no prediction" in w and "(1, 2)" in w for w in ev.warnings)
    miss = [r for r in ev.records if not r.has_prediction][0]
    assert miss.iou_visible == 0.0 and not miss.correct and miss.predicted_category is None
    assert aggregate(ev)["all"]["visible"]["L0"] == pytest.approx(0.5)


def test_prediction_without_amodal_mask_uses_visible(build) -> None:
    h, w = 4, 4
    gt = build.dataset(
        [build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 2), build.rect(h, w, 0, 4, 0, 4))], h, w)]
    )
    pred = build.dataset([build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 4))], h, w)])
    ev = evaluate(gt, pred, CFG)
    (r,) = ev.records
    assert r.iou_amodal == 1.0 and r.iou_occluded == 0.0
    assert any("no amodal mask" in w for w in ev.warnings)


def test_filters_and_filter_dataset(build) -> None:
    h, w = 40, 10
    tall = build.rect(h, w, 0, 30, 0, 5)
    short = build.rect(h, w, 0, 29, 5, 10)
    gt = build.dataset(
        [build.image(1, [build.inst(1, tall), build.inst(2, short), build.inst(3, tall, category="person")], h, w)]
    )
    ev = evaluate(gt, gt, EvalConfig(classes=("car",), min_height=30, progress=False))
    assert [r.object_id for r in ev.records] == [1]
    assert ev.skipped == {"filtered": 2} and ev.n_gt_objects == 3
    sub = filter_dataset(gt, classes=["car"], min_height=30)
    assert [i.id for i in sub.images[0].instances] == [1] and len(gt.images[0].instances) == 3
    crowd = dataclasses.replace(gt.images[0].instances[0], iscrowd=True, id=9)
    gt.images[0].instances.append(crowd)
    assert evaluate(gt, gt, CFG).skipped == {"crowd": 1}


def test_score_columns_per_image_and_level() -> None:
    recs = [_rec("L0", 1.0, image_id=5), _rec("L2", 0.5, image_id=3), _rec("L0", 0.25, image_id=5), _rec(None, 0.2)]
    ids, sums, counts, all_sums, all_counts = score_columns(recs, "visible")
    assert ids == [5, 3, 1]  # in the order met
    assert sums.tolist() == [[1.25, 0, 0, 0], [0, 0, 0.5, 0], [0, 0, 0, 0]]
    assert counts.tolist() == [[2, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert all_sums.tolist() == [1.25, 0.5, 0.2] and all_counts.tolist() == [2, 1, 1]


def test_intervals_in_the_summaries() -> None:
    recs = [_rec("L0", 1.0, image_id=1), _rec("L0", 0.0, image_id=2), _rec("L1", 0.5, image_id=2)]
    s = mask_type_summary(recs, "visible", BootstrapConfig())
    iv = s["interval"]
    assert iv["L0"] == [0.0, 1.0]  # two images, one object each, IoU 1 and 0
    assert iv["L1"] is None  # one image only
    lo, hi = iv["mean"]
    assert lo <= s["mean"] <= hi
    assert set(iv) == {"L0", "L1", "L2", "L3", "mean", "weighted_mean", "all_objects"}
    assert "interval" not in mask_type_summary(recs, "visible")  # no bootstrap asked for
    off = mask_type_summary(recs, "visible", BootstrapConfig(resamples=0))["interval"]
    assert all(v is None for v in off.values())


def test_order_interval_in_the_report_cells(build) -> None:
    gt, pred = _three_objects(build)
    two = build.dataset([gt.images[0], dataclasses.replace(gt.images[0], image_id=2)])
    pred2 = build.dataset([gt.images[0], dataclasses.replace(pred.images[0], image_id=2)], source="pred")
    cell = aggregate(evaluate(two, pred2, CFG))["all"]
    oa = cell["order_accuracy"]
    assert oa["occluded"] == 0.5 and oa["occluded_interval"] == [0.0, 1.0]  # one image all right, one all wrong
    assert cell["visible"]["interval"]["L0"] is not None
    quiet = aggregate(evaluate(two, pred2, EvalConfig(progress=False, bootstrap=BootstrapConfig(resamples=0))))
    assert quiet["all"]["order_accuracy"]["occluded_interval"] is None


def _evaluation(records: list[ObjectRecord]) -> Evaluation:
    return Evaluation(records=records, order={}, has_amodal=True)


def test_paired_difference_interval() -> None:
    before = [_rec("L2", 0.2, image_id=i) for i in range(5)] + [_rec("L3", 0.1, image_id=i) for i in range(5)]
    gains = [0.1, 0.2, 0.3, 0.4, 0.5]
    after = [_rec("L2", 0.2 + g, image_id=i) for i, g in enumerate(gains)]
    after += [_rec("L3", 0.1 + 0.05, image_id=i) for i in range(5)]
    boot = BootstrapConfig()
    lo, hi = paired_difference_interval(_evaluation(before), _evaluation(after), "visible", "L2", boot)
    assert 0.1 <= lo < 0.3 < hi <= 0.5
    lo, hi = paired_difference_interval(_evaluation(before), _evaluation(after), "visible", "L3", boot)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)  # the same gain in every image
    lo, hi = paired_difference_interval(_evaluation(before), _evaluation(after), "visible", "mean", boot)
    assert 0.5 * (0.1 + 0.05) <= lo < 0.5 * (0.3 + 0.05) < hi <= 0.5 * (0.5 + 0.05)
    with pytest.raises(ValueError, match="same visible objects"):
        paired_difference_interval(_evaluation(before), _evaluation(after[:4]), "visible", "L2", boot)
    with pytest.raises(ValueError, match="unknown cell"):
        paired_difference_interval(_evaluation(before), _evaluation(after), "visible", "L5", boot)


def test_unknown_occluders_are_not_evaluated(build) -> None:
    h, w = 4, 8
    full = build.rect(h, w, 0, 4, 0, 4)
    other = build.rect(h, w, 0, 4, 4, 8)
    occluder = build.inst(2, other, other, category="person")
    occluder.extra["unknown"] = True  # the challenge's mark: it shapes the scene, nobody is asked about it
    gt = build.dataset([build.image(1, [build.inst(1, full, full), occluder], h, w)])
    pred = build.dataset([build.image(1, [build.inst(1, full, full)], h, w)], source="pred")
    ev = evaluate(gt, pred, CFG)
    assert [r.object_id for r in ev.records] == [1] and ev.skipped == {"unknown occluder": 1}
    assert not any("no prediction" in warning for warning in ev.warnings)


def test_one_class_may_be_given_as_a_string(build) -> None:
    assert EvalConfig(classes="person").classes == ("person",)  # not ("p", "e", "r", ...)
    h, w = 4, 4
    gt = build.dataset([build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 2), category="person")], h, w)])
    assert filter_dataset(gt, classes="person").num_instances() == 1


def test_evaluate_and_its_configs_name_wrong_arguments(tmp_path):
    from occseg.data.annotation import Dataset

    ds = Dataset(images=[], categories=["person"], source=tmp_path, format="coco")
    with pytest.raises(TypeError, match=r"pred must be a Dataset, not str: read_dataset\(path\) reads one"):
        evaluate(ds, "preds.json")
    with pytest.raises(TypeError, match=r"config must be an EvalConfig, not dict"):
        evaluate(ds, ds, {"classes": ["person"]})
    for bad in ("10", float("nan"), -1.0, True):
        with pytest.raises(ValueError, match=r"min_height must be None or a finite number of pixels >= 0"):
            EvalConfig(min_height=bad)
    for kwargs in ({"resamples": 1.5}, {"resamples": "5"}, {"seed": 1.5}, {"seed": None}):
        with pytest.raises(ValueError, match=r"bootstrap (resamples|seed) must be an integer >= 0"):
            BootstrapConfig(**kwargs)
    assert BootstrapConfig(resamples=np.int64(300)).resamples == 300
