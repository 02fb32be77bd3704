"""Placing objects: exact occlusion search, clusters, depth order, visible masks."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.challenge.composer import (
    LEVELS,
    LevelBalancer,
    ObjectPool,
    PlacementConfig,
    Slot,
    clusters_and_orders,
    compose,
    covered_counts,
    find_offset,
    scale_cutout,
    scenario_slots,
    visible_masks,
)
from occseg.challenge.objects import CutOut
from occseg.data.annotation import OCCLUSION_LEVELS, occlusion_level
from tests.challenge.conftest import blob


def _cut(key: str, h: int = 60, w: int = 30, colour: int = 200, unknown: bool = False) -> CutOut:
    mask = blob(h, w, (0, 0, w, h))
    rgb = np.full((h, w, 3), colour, np.uint8)
    return CutOut(key=key, category="thing" if unknown else "person", rgb=rgb, mask=mask, source={"k": key},
                  unknown=unknown)  # fmt: skip


def test_covered_counts_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    front = rng.random((23, 31)) < 0.3
    mask = rng.random((7, 5)) < 0.6
    counts = covered_counts(front, mask)
    assert counts.shape == (23 - 7 + 1, 31 - 5 + 1)
    brute = np.array([[np.count_nonzero(front[y : y + 7, x : x + 5] & mask) for x in range(27)] for y in range(17)])
    assert np.array_equal(counts, brute)
    assert covered_counts(np.zeros((10, 10), bool), mask).max() == 0
    assert covered_counts(front, np.ones((40, 5), bool)).size == 0  # does not fit


@pytest.mark.parametrize("level", LEVELS)
def test_find_offset_hits_the_level_exactly(level: str) -> None:
    rng = np.random.default_rng(1)
    front = np.zeros((120, 160), bool)
    front[30:90, 50:100] = True
    mask = blob(50, 30, (0, 0, 30, 50))
    lo, hi = OCCLUSION_LEVELS[level]
    for _ in range(5):
        x, y, cov = find_offset(front, mask, (lo, hi), rng)
        assert np.count_nonzero(front[y : y + 50, x : x + 30] & mask) == cov
        assert lo <= cov / mask.sum() < hi
        assert 0 <= x <= 160 - 30 and 0 <= y <= 120 - 50  # whole object inside the image


def test_find_offset_none_when_unreachable() -> None:
    front = np.zeros((50, 50), bool)
    front[0:5, 0:5] = True  # a tiny occluder cannot hide 60 % of a big object
    assert find_offset(front, np.ones((30, 30), bool), OCCLUSION_LEVELS["L3"], np.random.default_rng(0)) is None


def test_clusters_and_orders() -> None:
    def box(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
        m = np.zeros((40, 60), bool)
        m[y1:y2, x1:x2] = True
        return m

    # depth order (front first): A overlaps C, B alone, C overlaps D; E alone
    a, b, c, d, e = box(0, 0, 10, 10), box(30, 0, 40, 10), box(5, 5, 15, 15), box(12, 12, 20, 20), box(50, 30, 60, 40)
    clusters, orders = clusters_and_orders([a, b, c, d, e])
    assert clusters == [1, 2, 1, 1, 3]
    assert orders == [0, 0, 1, 2, 0]
    vis = visible_masks([a, b, c, d, e])
    assert np.array_equal(vis[0], a)
    assert np.array_equal(vis[2], c & ~a)
    assert np.array_equal(vis[3], d & ~c)


def test_scale_cutout_flip() -> None:
    cut = _cut("a", 40, 20)
    cut.rgb[:, :10] = 10  # left half dark
    rgb, mask = scale_cutout(cut, 80, 40, flip=True)
    assert rgb.shape == (80, 40, 3) and mask.shape == (80, 40)
    assert rgb[40, 35, 0] == 10 and rgb[40, 5, 0] == 200  # mirrored
    assert abs(int(mask.sum()) - 4 * int(cut.mask.sum())) < 0.1 * 4 * cut.mask.sum()


def test_level_balancer_prefers_least_populated() -> None:
    bal = LevelBalancer(("4obj",))
    for lv, n in (("L0", 3), ("L1", 0), ("L2", 1), ("L3", 2)):
        for _ in range(n):
            bal.add("4obj", lv)
    slots = [Slot("target", None)] + [Slot("target", LEVELS)] * 3
    prefs = bal.preferences("4obj", slots, np.random.default_rng(0))
    assert prefs[0] is None
    assert prefs[1][0] == "L1"  # 0
    assert prefs[2][0] in ("L1", "L2")  # L1 now 1 (pending), L2 1
    assert {prefs[2][0], prefs[3][0]} == {"L1", "L2"}  # then the other one (L3 has 2)


def test_scenario_slots() -> None:
    rng = np.random.default_rng(0)
    cfg = PlacementConfig()
    assert [s.levels for s in scenario_slots("2obj", rng, cfg)] == [None, ("L1", "L2", "L3")]
    assert len(scenario_slots("4obj", rng, cfg)) == 4
    unk = scenario_slots("2obj_unknown", rng, cfg)
    assert [s.role for s in unk][-2:] == ["target", "target"] and 1 <= sum(s.role == "unknown" for s in unk) <= 2
    with pytest.raises(ValueError, match="unknown scenario 'x'"):
        scenario_slots("x", rng, cfg)


@pytest.mark.parametrize("level", ["L1", "L2", "L3"])
def test_compose_two_objects(level: str) -> None:
    rng = np.random.default_rng(5)
    bg = np.zeros((150, 200, 3), np.uint8)
    pool = ObjectPool([_cut("a", colour=100), _cut("b", colour=250)])
    slots = [Slot("target", None), Slot("target", (level,))]
    out = compose(bg, "2obj", slots, [None, (level,)], pool, None, rng)
    assert out is not None
    front, back = out.objects
    assert front.depth == 0 and back.depth == 1
    assert front.occ_fraction == 0.0 and occlusion_level(back.occ_fraction) == level
    assert back.cluster == front.cluster == 1 and (front.order, back.order) == (0, 1)
    assert np.array_equal(back.visible, back.amodal & ~front.amodal)
    # the pasted pixels are exactly the visible masks
    colour = out.image[..., 0]
    assert np.array_equal(colour == front.cutout.rgb[0, 0, 0], front.visible)
    assert np.array_equal(colour == back.cutout.rgb[0, 0, 0], back.visible)
    assert sorted(pool.uses.tolist()) == [1, 1]


def test_compose_fails_cleanly_when_impossible() -> None:
    rng = np.random.default_rng(0)
    bg = np.zeros((60, 60, 3), np.uint8)
    pool = ObjectPool([_cut("a", 58, 58)])
    cfg = PlacementConfig(object_height=(0.97, 0.97), max_tries=2, shrink=1.0, min_object_height=55)
    # two objects of nearly the image size cannot overlap by only 1-30 %
    assert compose(bg, "2obj", [Slot("target", None), Slot("target", ("L1",))], [None, ("L1",)], pool, None, rng,
                   cfg) is None  # fmt: skip
    assert pool.uses.tolist() == [0]
