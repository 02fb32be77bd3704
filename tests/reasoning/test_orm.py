"""The Occlusion Reasoning Module on constructed scenes with answers computed by hand (see conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from occseg.inference.predict import segment_boxes
from occseg.inference.scene import SceneConfig, SceneResult, explain_scene, prepare_scene
from occseg.inference.single import OBJECT, OCCLUDER
from occseg.reasoning.orm import reason

from .conftest import (
    CELL,
    CLASS_DISTS,
    CLUTTER_DIST,
    CONTEXT_DIST,
    KAPPA,
    Scene,
    cell_box,
    colour_backbone,
    paint,
    prior_map,
)
from .conftest import A as TEX_A
from .conftest import B as TEX_B


def run(model, scene: Scene, mode: str, iters: int = 2, labels=None, order=None) -> SceneResult:
    return explain_scene(model, scene.states(model, order), SceneConfig(reasoning=mode, reasoning_iters=iters),
                         labels=labels)  # fmt: skip


def rect(shape, x1, y1, x2, y2) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def hand_scores(concepts: np.ndarray, occluded: np.ndarray | None = None, omega=0.2, w=0.1) -> dict[str, float]:
    """The classification score of every class for a crop whose 6x6 cells show ``concepts`` (docs/method.md §A.5):
    ``sum over unoccluded cells of max(0, log((1-omega) pi A.L + omega (1-pi) chi.L) - log(w beta.L))``."""
    act = np.exp(KAPPA * np.eye(4)[concepts])  # (6, 6, 4): e^kappa for the cell's concept, 1 for the others
    pi = prior_map()
    ctx = act @ np.array(CONTEXT_DIST)
    base = np.log(w * (act @ np.array(CLUTTER_DIST)))
    keep = np.ones(concepts.shape, bool) if occluded is None else ~occluded
    out = {}
    for name, dist in CLASS_DISTS.items():
        ell = np.log((1 - omega) * pi * (act @ np.array(dist)) + omega * (1 - pi) * ctx)
        out[name] = float((np.maximum(0.0, ell - base) * keep).sum())
    return out


# ---------------------------------------------------------------------------------------------------------
# the two-object scene: object 0 (texture A) hides the left half of object 1 (texture B)


def test_feed_forward_misclassifies_the_occluded_object(model, two_objects):
    res = run(model, two_objects, "off")
    assert [o.category for o in res.objects] == ["a", "c"]
    crop1 = two_objects.cells[1:7, 2:8]  # object 1's crop: image cells x 2..8, y 1..7
    want = hand_scores(crop1)
    assert want["c"] > want["b"]  # the visible A texture of the occluder votes for the mixed class c
    assert res.objects[1].class_scores == pytest.approx(want, abs=1e-3)
    assert res.objects[0].class_scores == pytest.approx(hand_scores(two_objects.cells[1:7, 0:6]), abs=1e-3)
    # without reasoning both objects claim the overlap (image x 48..80, y 32..96)
    both = res.objects[0].visible & res.objects[1].visible
    overlap = rect(both.shape, 48, 32, 80, 96)
    assert not (both & ~overlap).any() and both.sum() >= 0.98 * overlap.sum()


def test_od_orders_reassigns_and_reclassifies(model, two_objects):
    off = run(model, two_objects, "off")
    res = run(model, two_objects, "od")
    front, back = res.objects
    # order: object 0 holds most of the conflict, so it is in front
    assert res.order.tolist() == [[0, 1], [-1, 0]]
    assert res.layers == [0, 1] and res.groups == [0, 0]
    # conflict: exactly the pixels both claimed without reasoning; object 0 wins most of them
    first = res.report["iterations"][0]["pairs"]["0-1"]
    assert first["conflict"] == int((off.objects[0].visible & off.objects[1].visible).sum())
    assert first["won_by_first"] + first["won_by_second"] == first["conflict"]
    assert first["won_by_first"] > 3 * first["won_by_second"]
    # top-down: with the lost cells (crop columns 1, 2 of the box rows) masked out, class b wins
    occluded = np.zeros((6, 6), bool)
    occluded[1:5, 1:3] = True
    want = hand_scores(two_objects.cells[1:7, 2:8], occluded)
    assert want["b"] > want["c"] > want["a"]
    assert back.category == "b" and back.class_scores == pytest.approx(want, abs=1e-3)
    assert front.category == "a" and front.class_scores == off.objects[0].class_scores
    # masks: the front object is untouched; the back one lost the overlap, which stays in its amodal mask
    assert np.array_equal(front.visible, off.objects[0].visible)
    assert np.array_equal(front.amodal, off.objects[0].amodal)
    assert back.labels[1:5, 1:3].tolist() == [[OCCLUDER] * 2] * 4
    assert back.labels[1:5, 3:5].tolist() == [[OBJECT] * 2] * 4
    shape = back.visible.shape
    shown = rect(shape, 80, 32, 112, 96)  # image x 80..112: the part of object 1 that shows B
    assert back.visible.sum() >= 0.98 * shown.sum()
    # outside it only the few corner pixels the front object's rounded mask leaves unclaimed
    assert (back.visible & ~shown).sum() <= 16 and not (back.visible & front.visible).any()
    hidden = rect(shape, 50, 36, 78, 92)
    assert (back.occluded & hidden).sum() == hidden.sum()
    assert not (back.amodal & ~rect(shape, 48, 32, 112, 96)).any()
    assert back.extra["reasoning"]["occluded_pixels"] > 0.9 * 32 * 64
    assert res.report["iterations"][0]["reclassified"] == 1
    assert res.report["broken_cycles"] == []


@pytest.mark.parametrize("boxes", ["amodal", "visible"])
@pytest.mark.parametrize("mode", ["nod", "od"])
def test_mask_invariants_after_reasoning(model, two_objects, mode, boxes):
    # the ORM works on the objects' states and masks alone: the same with amodal or visible (completed) boxes
    cfg = SceneConfig(reasoning=mode, boxes=boxes)
    res = explain_scene(model, two_objects.states(model), cfg)
    assert res.order.tolist() == [[0, 1], [-1, 0]]
    assert [o.category for o in res.objects] == ["a", "b"]
    for o in res.objects:
        assert not (o.visible & ~o.amodal).any()  # visible inside amodal
        assert np.array_equal(o.amodal, o.visible | o.occluded)  # amodal = visible + occluded parts
    assert not (res.objects[0].visible & res.objects[1].visible).any()  # no pixel visible in two objects
    assert res.objects[1].occluded.sum() > 0.9 * 32 * 64


def test_nod_keeps_the_pixels_the_back_object_explains_better(model, two_objects):
    # object 1 given as the mixed class c, which explains texture A too: log(0.49 e^10) = 9.287 everywhere in
    # its box. Object 0's foreground log-likelihood falls from log(0.97 e^10) = 9.969 at its last box cell's
    # centre (x = 72) to log(0.01 e^10 + 0.99) = 5.399 at the next cell's centre (x = 88, texture B), so it
    # drops below object 1's at x = 72 + 16 * 0.682 / 4.570 = 74.39: pixels x = 74..79 go to object 1.
    labels = ["a", "c"]
    off = run(model, two_objects, "off", labels=labels)
    nod = run(model, two_objects, "nod", labels=labels)
    od = run(model, two_objects, "od", labels=labels)
    assert nod.order.tolist() == od.order.tolist() == [[0, 1], [-1, 0]]
    lost_front = off.objects[0].visible & ~nod.objects[0].visible
    cols = np.zeros_like(lost_front)
    cols[:, 74:80] = True
    assert np.array_equal(lost_front, off.objects[0].visible & cols)
    assert (nod.objects[1].visible & lost_front).sum() == lost_front.sum()  # NOD: they stay with object 1
    assert np.array_equal(od.objects[0].visible, off.objects[0].visible)  # OD: the front object keeps all
    assert not (od.objects[1].visible & od.objects[0].visible).any()
    assert (od.objects[1].visible & cols).sum() <= 16  # only corner pixels object 0's rounded mask leaves
    pair = nod.report["iterations"][0]["pairs"]["0-1"]
    assert pair["won_by_second"] == int(lost_front.sum()) and pair["won_by_outlier"] == 0


def test_the_released_margin_competition_is_available(model, two_objects):
    states = two_objects.states(model)
    res = reason(model, states, SceneConfig(reasoning="od"), [None, None], competition="margin")
    assert res.order.tolist() == [[0, 1], [-1, 0]] and [o.category for o in res.objects] == ["a", "b"]
    with pytest.raises(ValueError, match="competition"):
        reason(model, states, SceneConfig(reasoning="od"), [None, None], competition="loudest")


def test_a_known_order_puts_the_other_object_in_front(model, two_objects):
    off = run(model, two_objects, "off", labels=["a", "b"])
    res = reason(model, two_objects.states(model), SceneConfig(reasoning="od"), ["a", "b"],
                 known_order=np.array([[0, -1], [1, 0]]))  # fmt: skip
    assert res.order.tolist() == [[0, -1], [1, 0]] and res.layers == [1, 0]
    assert np.array_equal(res.objects[1].visible, off.objects[1].visible)
    lost = off.objects[0].visible & off.objects[1].visible
    assert not (res.objects[0].visible & lost).any() and (res.objects[0].occluded & lost).sum() == lost.sum()


def test_given_classes_give_the_same_scene(model, two_objects):
    pred = run(model, two_objects, "od")
    given = run(model, two_objects, "od", labels=["a", "b"])
    assert given.order.tolist() == pred.order.tolist()
    for p, g in zip(pred.objects, given.objects):
        assert p.category == g.category and p.mixture == g.mixture
        assert np.array_equal(p.visible, g.visible) and np.array_equal(p.amodal, g.amodal)
    # a given class is never re-classified away
    forced = run(model, two_objects, "od", labels=[None, "c"])
    assert forced.objects[1].category == "c"
    assert forced.report["iterations"][0]["reclassified"] == 0


def test_rounds_stop_early_when_nothing_changes(model, two_objects):
    one = run(model, two_objects, "od", iters=1)
    many = run(model, two_objects, "od", iters=6)
    assert len(one.report["iterations"]) == 1
    # round 1 re-classifies object 1 (c -> b), round 2 changes nothing: no round 3
    assert [it["reclassified"] for it in many.report["iterations"]] == [1, 0]
    assert one.objects[1].category == many.objects[1].category == "b"
    # with given classes nothing can change, so one round is all there is
    given = run(model, two_objects, "od", iters=6, labels=["a", "b"])
    assert len(given.report["iterations"]) == 1


# ---------------------------------------------------------------------------------------------------------
# objects that do not overlap, permutations


def _same_object(a, b) -> None:
    assert a.category == b.category and a.mixture == b.mixture
    assert a.class_scores == pytest.approx(b.class_scores)
    assert np.array_equal(a.visible, b.visible) and np.array_equal(a.amodal, b.amodal)
    assert np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("mode", ["nod", "od"])
def test_objects_that_do_not_overlap_are_returned_as_without_reasoning(model, with_loner, mode):
    off = run(model, with_loner, "off")
    res = run(model, with_loner, mode)
    _same_object(res.objects[2], off.objects[2])
    assert res.order[2].tolist() == [0, 0, 0] and res.groups[2] != res.groups[0]
    assert res.layers[2] == 0
    # a scene of non-overlapping objects only: reasoning changes nothing at all
    alone = Scene(cells=with_loner.cells, boxes=[with_loner.boxes[0], with_loner.boxes[2]])
    off2, res2 = run(model, alone, "off"), run(model, alone, mode)
    for a, b in zip(off2.objects, res2.objects):
        _same_object(a, b)
    assert not res2.order.any()


@pytest.mark.parametrize("mode", ["off", "nod", "od"])
@pytest.mark.parametrize("perm", [[1, 0, 2], [2, 0, 1], [2, 1, 0]])
def test_permuting_the_objects_permutes_the_output(model, with_loner, mode, perm):
    base = run(model, with_loner, mode)
    res = run(model, with_loner, mode, order=perm)
    for k, p in enumerate(perm):
        _same_object(res.objects[k], base.objects[p])
        assert res.layers[k] == base.layers[p]
    assert np.array_equal(res.order, base.order[np.ix_(perm, perm)])
    assert np.array_equal(res.order_confidence, base.order_confidence[np.ix_(perm, perm)])
    if mode == "off":  # no relation is decided: the order is only read from the masks
        assert not res.order_confidence.any()
    same_group = [[base.groups[i] == base.groups[j] for j in perm] for i in perm]
    assert [[res.groups[i] == res.groups[j] for j in range(3)] for i in range(3)] == same_group


# ---------------------------------------------------------------------------------------------------------
# a stand-in backbone: one pass per object, whatever the number of rounds


def test_one_backbone_pass_per_object_whatever_the_rounds(model, with_loner):
    backbone = colour_backbone()
    image = with_loner.image()
    states = prepare_scene(model, backbone, image, with_loner.boxes, SceneConfig(batch_size=1))
    assert backbone.body.calls == backbone.body.crops == 3
    # the backbone's features are the constructed ones, so the answer is the hand-computed one
    ref = run(model, with_loner, "od")
    res = explain_scene(model, states, SceneConfig(reasoning="od"))
    for a, b in zip(ref.objects, res.objects):
        _same_object(a, b)
    for iters in (0, 1, 2, 5):
        for mode in ("off", "nod", "od"):
            backbone.body.calls = backbone.body.crops = 0
            segment_boxes(model, backbone, image, with_loner.boxes, SceneConfig(reasoning=mode, reasoning_iters=iters))
            assert backbone.body.crops == 3, (mode, iters)
    backbone.body.calls = backbone.body.crops = 0
    segment_boxes(model, backbone, image, with_loner.boxes, SceneConfig(batch_size=8))
    assert backbone.body.crops == 3 and backbone.body.calls == 1


# ---------------------------------------------------------------------------------------------------------
# four objects in a row, each hiding the next: a chain of layers


def test_a_chain_of_four_objects_gets_four_layers(model):
    # object k covers image cells x 3k+1 .. 3k+5 (4 wide), drawn back to front so object k hides object k+1
    rects = [(TEX_A if k % 2 == 0 else TEX_B, 3 * k + 1, 2, 3 * k + 5, 6) for k in range(4)]
    cells = paint(8, 15, rects[::-1])
    scene = Scene(cells=cells, boxes=[cell_box(3 * k + 1, 2, 3 * k + 5, 6) for k in range(4)])
    labels = ["a", "b", "a", "b"]
    res = run(model, scene, "od", labels=labels)
    assert res.layers == [0, 1, 2, 3] and res.groups == [0, 0, 0, 0]
    for k in range(3):
        assert res.order[k, k + 1] == 1
    for i in range(4):
        for j in range(i + 1, 4):
            assert not (res.objects[i].visible & res.objects[j].visible).any()
    # each hidden part (one cell column, 16 px) stays in the amodal mask of the object behind
    for k in range(1, 4):
        x = CELL * (3 * k + 1)
        hidden = rect(res.objects[k].visible.shape, x + 2, 36, x + CELL - 2, 92)
        assert (res.objects[k].occluded & hidden).sum() == hidden.sum()
    assert math.isclose(res.objects[3].visible.sum(), 3 * CELL * 4 * CELL, rel_tol=0.02)
