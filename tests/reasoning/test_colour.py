"""The colour competition: colour evidence per pixel (exact values) and the ORM on refined masks of a
painted scene (see conftest.py: object 0, red, in front of object 1, green, on blue)."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.inference.scene import SceneConfig, explain_scene
from occseg.reasoning.colour import colour_claims, exclusive_pixels
from occseg.reasoning.orm import reason, resolve_competition
from occseg.refine import RefineConfig
from occseg.refine.colour import colour_index, histogram_log_density

from .conftest import COLOURS, A, B


def _masks():
    v0 = np.zeros((40, 60), bool)
    v0[:, :40] = True
    v1 = np.zeros((40, 60), bool)
    v1[:, 20:] = True
    return v0, v1


def test_exclusive_pixels():
    v0, v1 = _masks()
    v2 = np.zeros_like(v0)
    v2[0:5, 0:5] = True
    e0, e1, e2 = exclusive_pixels([v0, v1, v2])
    assert e0.sum() == 40 * 20 - 25 and not e0[:5, :5].any() and not e0[:, 20:].any()
    assert e1.sum() == 40 * 20 and e1[:, 40:].all()
    assert not e2.any()
    assert exclusive_pixels([]) == []


def test_colour_claims_are_the_log_densities_of_each_objects_own_colours():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = (200, 30, 30)
    image[:, 30:] = (30, 30, 200)
    image[10:30, 20:40] = (200, 30, 30)  # the shared region looks like object 0
    v0, v1 = _masks()
    c0, c1 = colour_claims(image, [v0, v1])
    index = colour_index(image, 16)
    e0, e1 = exclusive_pixels([v0, v1])
    np.testing.assert_allclose(np.asarray(c0), histogram_log_density(index, e0, 16)[index].astype(np.float32))
    np.testing.assert_allclose(np.asarray(c1), histogram_log_density(index, e1, 16)[index].astype(np.float32))
    assert np.asarray(c0).dtype == np.float32 and c0.shape == (40, 60)
    red = (image == (200, 30, 30)).all(-1)
    assert (c0[red] > c1[red]).all() and (c1[~red] > c0[~red]).all()
    for a, b in zip(colour_claims(image, [v0, v1], index=index), (c0, c1)):  # a given index: the same claims
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    win = (slice(5, 20), slice(10, 50))  # a region gives that region's values
    np.testing.assert_array_equal(c0[win], np.asarray(c0)[win])


def test_colour_claims_fall_back_to_the_whole_mask_and_explain_nothing_without_one():
    image = np.zeros((20, 20, 3), np.uint8)
    image[:, 10:] = 255
    v0 = np.zeros((20, 20), bool)
    v0[:, :12] = True
    v1 = v0.copy()  # no exclusive pixel at all: the model comes from the whole mask
    empty = np.zeros_like(v0)
    c0, c1, c2 = colour_claims(image, [v0, v1, empty])
    np.testing.assert_array_equal(np.asarray(c0), np.asarray(c1))
    index = colour_index(image, 16)
    np.testing.assert_allclose(np.asarray(c0), histogram_log_density(index, v0, 16)[index].astype(np.float32))
    assert np.unique(np.asarray(c2)).size == 1 and (np.asarray(c2) < np.asarray(c0)).all()


def test_colour_claims_reject_bad_input():
    v0, _ = _masks()
    with pytest.raises(ValueError, match="uint8 RGB"):
        colour_claims(np.zeros((40, 60), np.uint8), [v0])
    with pytest.raises(ValueError, match="60x40"):
        colour_claims(np.zeros((30, 60, 3), np.uint8), [v0])
    with pytest.raises(ValueError, match="index"):
        colour_claims(np.zeros((40, 60, 3), np.uint8), [v0], index=np.zeros((30, 60), np.int64))


def test_the_default_competition_depends_on_the_image_and_refinement():
    assert resolve_competition(SceneConfig(), np.zeros((4, 4, 3), np.uint8)) == "colour"
    assert resolve_competition(SceneConfig(), None) == "foreground"
    assert resolve_competition(SceneConfig(refine=None), np.zeros((4, 4, 3), np.uint8)) == "foreground"
    assert resolve_competition(SceneConfig(refine=RefineConfig(enabled=False)), np.zeros((4, 4, 3))) == "foreground"
    assert resolve_competition(SceneConfig(competition="margin"), np.zeros((4, 4, 3))) == "margin"
    # objects with the mask head's inputs compete with its logits, when the masks are refined
    assert resolve_competition(SceneConfig(), np.zeros((4, 4, 3), np.uint8), head=True) == "head"
    assert resolve_competition(SceneConfig(refine=None), np.zeros((4, 4, 3), np.uint8), head=True) == "foreground"
    assert resolve_competition(SceneConfig(competition="colour"), np.zeros((4, 4, 3)), head=True) == "colour"
    for bad in (-1.0, "2", None):
        with pytest.raises(ValueError, match="head_tie must be a number >= 0"):
            SceneConfig(head_tie=bad)
    with pytest.raises(ValueError, match="competition"):
        SceneConfig(competition="loudest")


def test_the_colour_competition_needs_the_image(model, two_objects):
    with pytest.raises(ValueError, match="needs the image"):
        reason(model, two_objects.states(model), SceneConfig(), [None, None], competition="colour")


@pytest.mark.parametrize("mode", ["nod", "od"])
def test_the_red_object_keeps_the_red_overlap_and_the_green_one_loses_it(model, two_objects, mode):
    image = two_objects.image()
    states = two_objects.states(model)
    off = explain_scene(model, states, SceneConfig(reasoning="off"), image=image)
    res = explain_scene(model, states, SceneConfig(reasoning=mode), image=image)
    assert res.report["competition"] == "colour"
    red = (image == COLOURS[A]).all(-1)
    green = (image == COLOURS[B]).all(-1)
    # the refined masks without reasoning both claim red pixels of the overlap (the conflict)
    conflict = off.objects[0].visible & off.objects[1].visible
    assert (conflict & red).sum() > 100
    # with reasoning: object 0 (red) is in front and keeps all it had; object 1, re-classified from the mixed
    # class c to b once the red pixels are masked out (top-down), keeps no red pixel; the red pixels it lost are
    # its occluded part, and it keeps its green pixels
    assert [o.category for o in off.objects] == ["a", "c"]
    assert [o.category for o in res.objects] == ["a", "b"]
    assert res.order.tolist() == [[0, 1], [-1, 0]]
    front, back = res.objects
    np.testing.assert_array_equal(front.visible, off.objects[0].visible)
    np.testing.assert_array_equal(front.amodal, off.objects[0].amodal)
    assert not (back.visible & red).any()
    assert not (back.occluded & ~conflict).any() and back.occluded.sum() >= 0.99 * conflict.sum()
    assert (back.visible & green).sum() == (off.objects[1].visible & green).sum()
    assert not (front.visible & back.visible).any()
    assert (back.amodal >= back.visible).all() and (front.amodal >= front.visible).all()
    last = res.report["iterations"][-1]["pairs"]["0-1"]
    assert last["won_by_first"] == last["conflict"] == back.occluded.sum() and last["won_by_outlier"] == 0


def test_colour_reasoning_leaves_a_lone_object_as_without_reasoning_and_is_permutation_invariant(model, with_loner):
    image = with_loner.image()
    off = explain_scene(model, with_loner.states(model), SceneConfig(reasoning="off"), image=image)
    res = explain_scene(model, with_loner.states(model), SceneConfig(reasoning="nod"), image=image)
    for which in ("visible", "amodal"):
        np.testing.assert_array_equal(getattr(res.objects[2], which), getattr(off.objects[2], which))
    assert res.objects[2].amodal_box == off.objects[2].amodal_box
    perm = [2, 0, 1]
    res_p = explain_scene(model, with_loner.states(model, perm), SceneConfig(reasoning="nod"), image=image)
    for new, old in enumerate(perm):
        for which in ("visible", "amodal"):
            np.testing.assert_array_equal(getattr(res_p.objects[new], which), getattr(res.objects[old], which))
        assert res_p.objects[new].category == res.objects[old].category
    np.testing.assert_array_equal(res_p.order, res.order[np.ix_(perm, perm)])


def test_colour_margin_must_not_be_negative():
    with pytest.raises(ValueError, match="colour_margin"):
        SceneConfig(colour_margin=-0.1)
