"""Pairwise competition on hand-made masks, and scene order (layers, groups, cycle breaking)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from occseg.reasoning.order import connected_groups, order_from_masks, scene_layers
from occseg.reasoning.orm import resolve_conflicts


def _masks(shape: tuple[int, int], *rects: tuple[int, int, int, int]) -> list[np.ndarray]:
    out = []
    for x1, y1, x2, y2 in rects:
        m = np.zeros(shape, dtype=bool)
        m[y1:y2, x1:x2] = True
        out.append(m)
    return out


@pytest.fixture
def pair():
    """Two 1-row masks sharing pixels 2..5; object 0 is stronger on 2, 3, 4, object 1 on 5."""
    vis = _masks((1, 8), (0, 0, 6, 1), (2, 0, 8, 1))
    s0 = np.array([[5, 5, 5, 5, 5, 1, 0, 0]], dtype=np.float32)
    s1 = np.array([[0, 0, 2, 2, 2, 3, 3, 3]], dtype=np.float32)
    return vis, [s0, s1]


def test_nod_gives_each_conflicted_pixel_to_its_winner(pair):
    vis, strength = pair
    lost, order, conf, counts = resolve_conflicts(vis, strength, "nod")
    assert counts == {"0-1": {"conflict": 4, "won_by_first": 3, "won_by_second": 1, "won_by_outlier": 0}}
    assert np.flatnonzero(lost[0]).tolist() == [5]  # lost to object 1, which explains pixel 5 better
    assert np.flatnonzero(lost[1]).tolist() == [2, 3, 4]
    assert order.tolist() == [[0, 1], [-1, 0]]
    assert conf[0, 1] == conf[1, 0] == pytest.approx((3 - 1) / 4)


def test_od_gives_the_whole_conflict_to_the_front_object(pair):
    vis, strength = pair
    lost, order, conf, counts = resolve_conflicts(vis, strength, "od")
    assert counts["0-1"] == {"conflict": 4, "won_by_first": 3, "won_by_second": 1, "won_by_outlier": 0}
    assert not lost[0].any()  # the front object keeps even the pixel it lost the competition for
    assert np.flatnonzero(lost[1]).tolist() == [2, 3, 4, 5]
    assert order.tolist() == [[0, 1], [-1, 0]]


def test_windows_restrict_the_comparison_to_where_two_crops_meet(pair):
    vis, strength = pair
    windows = [[None, (slice(0, 1), slice(0, 4))], [(slice(0, 1), slice(0, 4)), None]]
    lost, _, _, counts = resolve_conflicts(vis, strength, "od", windows)
    assert counts["0-1"]["conflict"] == 2  # pixels 2 and 3 only
    assert np.flatnonzero(lost[1]).tolist() == [2, 3]
    lost, order, _, counts = resolve_conflicts(vis, strength, "od", [[None, None], [None, None]])
    assert counts == {} and not order.any() and not any(m.any() for m in lost)


def test_a_tie_gives_no_order_and_no_loss_in_od():
    vis = _masks((1, 6), (0, 0, 4, 1), (2, 0, 6, 1))  # conflict: pixels 2, 3
    s0 = np.array([[1, 1, 4, 1, 0, 0]], dtype=np.float32)
    s1 = np.array([[0, 0, 1, 4, 1, 1]], dtype=np.float32)
    lost, order, conf, counts = resolve_conflicts(vis, [s0, s1], "od")
    assert counts["0-1"] == {"conflict": 2, "won_by_first": 1, "won_by_second": 1, "won_by_outlier": 0}
    assert not order.any() and not conf.any()
    assert not lost[0].any() and not lost[1].any()
    # NOD still hands each pixel to its winner
    lost, order, _, _ = resolve_conflicts(vis, [s0, s1], "nod")
    assert np.flatnonzero(lost[0]).tolist() == [3] and np.flatnonzero(lost[1]).tolist() == [2]
    assert not order.any()


def test_equal_strength_pixels_stay_with_both():
    vis = _masks((1, 6), (0, 0, 4, 1), (2, 0, 6, 1))
    same = np.ones((1, 6), np.float32)
    for mode in ("nod", "od"):
        lost, order, _, counts = resolve_conflicts(vis, [same, same], mode)
        assert counts["0-1"] == {"conflict": 2, "won_by_first": 0, "won_by_second": 0, "won_by_outlier": 0}
        assert not order.any() and not lost[0].any() and not lost[1].any()


def test_close_calls_within_the_tie_stay_with_both(pair):
    vis, strength = pair  # differences on the conflict (pixels 2..5): +3, +3, +3, -2
    lost, order, _, counts = resolve_conflicts(vis, strength, "nod", tie=2.5)
    assert counts["0-1"] == {"conflict": 4, "won_by_first": 3, "won_by_second": 0, "won_by_outlier": 0}
    assert not lost[0].any()  # pixel 5 (object 1 ahead by 2 only) stays with both
    assert np.flatnonzero(lost[1]).tolist() == [2, 3, 4]
    assert order.tolist() == [[0, 1], [-1, 0]]
    lost, order, _, counts = resolve_conflicts(vis, strength, "nod", tie=float("inf"))
    assert counts["0-1"]["won_by_first"] == counts["0-1"]["won_by_second"] == 0
    assert not order.any() and not lost[0].any() and not lost[1].any()
    with pytest.raises(ValueError, match="tie must be >= 0, not -1"):
        resolve_conflicts(vis, strength, "nod", tie=-1.0)


def test_pixels_neither_object_explains_better_than_the_outlier_model_go_to_it(pair):
    vis, strength = pair
    # the outlier model scores 4 everywhere: pixel 5 (strengths 1 and 3) is explained by neither object
    outlier = [np.full((1, 8), 4.0, np.float32)] * 2
    for mode in ("nod", "od"):
        lost, order, conf, counts = resolve_conflicts(vis, strength, mode, outlier=outlier)
        assert counts["0-1"] == {"conflict": 4, "won_by_first": 3, "won_by_second": 0, "won_by_outlier": 1}
        assert order.tolist() == [[0, 1], [-1, 0]] and conf[0, 1] == pytest.approx(3 / 4)
        assert np.flatnonzero(lost[0]).tolist() == [5]  # lost to the outlier model, in both modes
        assert np.flatnonzero(lost[1]).tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="outlier"):
        resolve_conflicts(vis, strength, "od", outlier=outlier[:1])


def test_a_known_order_overrides_the_pixel_counts(pair):
    vis, strength = pair
    known = np.array([[0, -1], [1, 0]])  # object 1 in front, whatever the competition says
    lost, order, conf, counts = resolve_conflicts(vis, strength, "od", known_order=known)
    assert order.tolist() == known.tolist() and counts["0-1"]["won_by_first"] == 3
    assert np.flatnonzero(lost[0]).tolist() == [2, 3, 4, 5] and not lost[1].any()
    lost, order, _, _ = resolve_conflicts(vis, strength, "od", known_order=np.zeros((2, 2)))
    assert order.tolist() == [[0, 1], [-1, 0]]  # zeros: the competition decides
    with pytest.raises(ValueError, match="known_order"):
        resolve_conflicts(vis, strength, "od", known_order=np.zeros((3, 3)))


def test_disjoint_masks_have_no_conflict():
    vis = _masks((4, 8), (0, 0, 3, 4), (4, 0, 8, 4))
    lost, order, conf, counts = resolve_conflicts(vis, [np.ones((4, 8))] * 2, "od")
    assert counts == {} and not order.any() and not conf.any() and not any(m.any() for m in lost)


def test_mismatched_inputs_are_refused():
    vis = _masks((2, 2), (0, 0, 1, 1))
    with pytest.raises(ValueError, match="strength"):
        resolve_conflicts(vis, [], "od")
    with pytest.raises(ValueError, match="mode"):
        resolve_conflicts(vis, [np.zeros((2, 2))], "best")


def _three_way_cycle():
    """Three masks overlapping pairwise in separate 3x3 squares; 0 beats 1 (8 of 9 pixels), 1 beats 2
    (6 of 9), 2 beats 0 (7 of 9): a cycle 0 > 1 > 2 > 0 whose weakest relation is 1 > 2."""
    shape = (10, 10)
    vis = [np.zeros(shape, bool) for _ in range(3)]
    regions = {
        (0, 1): (slice(0, 3), slice(0, 3)),
        (1, 2): (slice(4, 7), slice(4, 7)),
        (0, 2): (slice(7, 10), slice(0, 3)),
    }
    wins = {(0, 1): (0, 8), (1, 2): (1, 6), (0, 2): (2, 7)}  # pair -> (winner, pixels it wins)
    strength = [np.zeros(shape, np.float32) for _ in range(3)]
    for (i, j), reg in regions.items():
        vis[i][reg] = vis[j][reg] = True
        winner, n = wins[(i, j)]
        loser = j if winner == i else i
        flat = np.zeros(9, np.float32)
        flat[:n] = 1.0
        strength[winner][reg] = flat.reshape(3, 3) * 2.0
        strength[loser][reg] = 1.0
    return vis, strength


def test_a_cycle_is_broken_at_its_least_confident_relation():
    vis, strength = _three_way_cycle()
    lost, order, conf, counts = resolve_conflicts(vis, strength, "od")
    assert order[0, 1] == 1 and order[1, 2] == 1 and order[2, 0] == 1
    assert np.array_equal(order, -order.T)
    assert conf[1, 2] == pytest.approx((6 - 3) / 9)
    layers, groups, report = scene_layers(order, conf)
    assert report["broken_cycles"] == [[1, 2, pytest.approx(3 / 9)]]
    assert groups == [0, 0, 0]
    kept = [(i, j) for i, j in zip(*np.nonzero(order > 0)) if [i, j] != [1, 2]]
    assert all(layers[i] < layers[j] for i, j in kept)
    assert layers == [1, 2, 0]  # 2 in front of 0 in front of 1


def test_order_is_antisymmetric_for_many_objects():
    rng = np.random.default_rng(3)
    shape = (20, 20)
    vis = [rng.random(shape) < 0.5 for _ in range(5)]
    strength = [rng.normal(size=shape).astype(np.float32) for _ in range(5)]
    for mode in ("nod", "od"):
        lost, order, conf, _ = resolve_conflicts(vis, strength, mode)
        assert np.array_equal(order, -order.T) and np.allclose(conf, conf.T)
        assert all(not (lo & ~v).any() for lo, v in zip(lost, vis))  # only claimed pixels can be lost
        layers, _, report = scene_layers(order, conf)
        broken = {(int(a), int(b)) for a, b, _ in report["broken_cycles"]}
        for i, j in zip(*np.nonzero(order > 0)):
            if (int(i), int(j)) not in broken:
                assert layers[i] < layers[j]


def test_layers_are_longest_paths_per_group():
    order = np.zeros((6, 6), np.int8)
    for a, b in [(0, 1), (0, 2), (1, 3), (2, 3), (1, 2), (5, 4)]:
        order[a, b], order[b, a] = 1, -1
    layers, groups, report = scene_layers(order, np.abs(order).astype(float))
    assert layers == [0, 1, 2, 3, 1, 0]
    assert groups == [0, 0, 0, 0, 1, 1]
    assert report == {"broken_cycles": []}
    layers, groups, _ = scene_layers(np.zeros((3, 3), np.int8), np.zeros((3, 3)))
    assert layers == [0, 0, 0] and groups == [0, 1, 2]


def test_a_cycle_with_equal_confidences_is_broken_once_whatever_the_object_order():
    order = np.zeros((3, 3), np.int8)
    for a, b in [(0, 1), (1, 2), (2, 0)]:
        order[a, b], order[b, a] = 1, -1
    conf = np.abs(order).astype(float) * 0.5
    _, _, report = scene_layers(order, conf)
    assert len(report["broken_cycles"]) == 1
    for perm in itertools.permutations(range(3)):
        p = list(perm)
        layers, _, rep = scene_layers(order[np.ix_(p, p)], conf[np.ix_(p, p)])
        assert len(rep["broken_cycles"]) == 1
        a, b, _ = rep["broken_cycles"][0]
        rest = [(i, j) for i, j in zip(*np.nonzero(order[np.ix_(p, p)] > 0)) if (i, j) != (a, b)]
        assert all(layers[i] < layers[j] for i, j in rest)


def test_order_from_masks_follows_the_evaluation_rule():
    amodal = _masks((4, 10), (0, 0, 6, 4), (4, 0, 10, 4), (8, 0, 10, 4))
    front = amodal[0]
    behind = amodal[1] & ~amodal[0]
    third = amodal[2] & ~amodal[1]  # fully hidden by object 1
    objs = [SimpleNamespace(visible=v, amodal=a) for v, a in zip([front, behind, third], amodal)]
    order = order_from_masks(objs)
    assert order.tolist() == [[0, 1, 0], [-1, 0, 1], [0, -1, 0]]
    objs[2] = SimpleNamespace(visible=third[:2], amodal=amodal[2][:2])  # another image's size
    with pytest.raises(ValueError, match=r"the masks must all have one image's shape, got \[\(2, 10\), \(4, 10\)\]"):
        order_from_masks(objs)


def test_order_from_masks_agrees_with_the_evaluation():
    from occseg.data.annotation import pairwise_order_matrix
    from occseg.data.masks import LazyMask

    rng = np.random.default_rng(0)
    objs = []
    for _ in range(6):
        x, y = rng.integers(0, 30, size=2)
        amodal = _masks((50, 50), (x, y, x + 20, y + 20))[0]
        objs.append(SimpleNamespace(visible=amodal & (rng.random((50, 50)) < 0.6), amodal=amodal))
    ours = order_from_masks(objs)
    ref = pairwise_order_matrix([LazyMask.from_array(o.visible) for o in objs],
                                [LazyMask.from_array(o.amodal) for o in objs])  # fmt: skip
    assert ours.any() and np.array_equal(ours, ref)
    # an exact tie: two identical objects claim each other equally -> no order, in both
    twins = [objs[0], SimpleNamespace(visible=objs[0].visible.copy(), amodal=objs[0].amodal.copy())]
    assert order_from_masks(twins).tolist() == [[0, 0], [0, 0]]
    ref = pairwise_order_matrix([LazyMask.from_array(o.visible) for o in twins],
                                [LazyMask.from_array(o.amodal) for o in twins])  # fmt: skip
    assert ref.tolist() == [[0, 0], [0, 0]]
    assert order_from_masks([]).shape == (0, 0)


def test_a_margin_gives_close_calls_to_the_object_in_front_in_nod():
    vis = [np.ones((1, 5), bool), np.ones((1, 5), bool)]
    s0 = np.array([[0.0, 0.0, 0.0, 0.0, 0.0]])
    s1 = np.array([[0.2, 0.6, -0.6, 2.0, 0.3]])  # object 1 wins 4 of 5 plainly: it is in front
    lost, order, conf, counts = resolve_conflicts(vis, [s0, s1], "nod", margin=0.5)
    assert counts["0-1"] == {"conflict": 5, "won_by_first": 1, "won_by_second": 4, "won_by_outlier": 0}
    assert order.tolist() == [[0, -1], [1, 0]] and conf[0, 1] == pytest.approx(0.6)
    # object 0 (behind) keeps only the pixel where it leads by more than 0.5; object 1 takes the rest
    assert lost[1].tolist() == [[False, False, True, False, False]]
    assert lost[0].tolist() == [[True, True, False, True, True]]
    lost0, order0, _, counts0 = resolve_conflicts(vis, [s0, s1], "nod")
    assert counts0 == counts and order0.tolist() == order.tolist()
    assert lost0[0].tolist() == lost[0].tolist() and lost0[1].tolist() == lost[1].tolist()
    s1b = np.array([[0.2, 0.6, -0.6, 2.0, 0.3]]) - 0.4  # now object 1 leads by -0.2, 0.2, -1, 1.6, -0.1
    lost, order, _, _ = resolve_conflicts(vis, [s0, s1b], "nod", margin=0.5)
    assert order.tolist() == [[0, 1], [-1, 0]]  # object 0 wins 3 of 5 plainly
    assert lost[0].tolist() == [[False, False, False, True, False]]  # object 1 leads by > 0.5 only once
    assert lost[1].tolist() == [[True, True, True, False, True]]
    lost_od, order_od, _, _ = resolve_conflicts(vis, [s0, s1], "od", margin=0.5)  # no effect on od
    assert lost_od[0].all() and not lost_od[1].any() and order_od.tolist() == [[0, -1], [1, 0]]
    with pytest.raises(ValueError, match="margin"):
        resolve_conflicts(vis, [s0, s1], "nod", margin=-1)


def test_connected_groups_are_numbered_by_their_first_node():
    linked = np.zeros((6, 6), dtype=np.int8)
    linked[1, 4] = 1  # one direction is enough
    linked[5, 3] = -1
    linked[3, 0] = 1
    assert connected_groups(linked) == [0, 1, 2, 0, 1, 0]
    assert connected_groups(np.zeros((3, 3))) == [0, 1, 2]
    assert connected_groups(np.zeros((0, 0))) == []


def test_layers_do_not_depend_on_the_numbering_when_cycles_are_broken():
    rng = np.random.default_rng(0)
    tested = 0
    for _ in range(300):
        n = 5
        order = np.zeros((n, n), np.int8)
        conf = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                if rng.random() < 0.8:
                    s = rng.choice([-1, 1])
                    order[i, j], order[j, i] = s, -s
                    conf[i, j] = conf[j, i] = rng.uniform(0.05, 1)  # distinct: no ties to fall back on indices
        layers, _, rep = scene_layers(order, conf)
        tested += bool(rep["broken_cycles"])
        p = rng.permutation(n)
        layers_p, _, rep_p = scene_layers(order[np.ix_(p, p)], conf[np.ix_(p, p)])
        assert [layers[k] for k in p] == layers_p
        assert sorted((int(p[a]), int(p[b])) for a, b, _ in rep_p["broken_cycles"]) == sorted(
            (a, b) for a, b, _ in rep["broken_cycles"]
        )
    assert tested > 50  # many of the random graphs had cycles


def test_scene_layers_of_a_long_chain_in_any_numbering():
    """One object in front of the next, 300 deep: layers 0..299 whatever the numbering (the layering walks each
    object's own relations, not every relation for every object)."""
    from occseg.reasoning.order import scene_layers

    n = 300
    perm = np.random.default_rng(1).permutation(n)
    order = np.zeros((n, n), dtype=np.int8)
    for depth in range(n - 1):
        a, b = perm[depth], perm[depth + 1]
        order[a, b], order[b, a] = 1, -1
    layers, groups, rep = scene_layers(order, np.abs(order).astype(float))
    assert [layers[p] for p in perm] == list(range(n)) and set(groups) == {0} and rep["broken_cycles"] == []


def test_resolve_conflicts_takes_the_windows_of_the_overlapping_pairs_only():
    """``windows`` as ``{(i, j): window}`` for the pairs that can meet (what ``reason`` passes: no N x N table)
    decides exactly as the full table does."""
    rng = np.random.default_rng(3)
    vis = [np.zeros((40, 60), bool) for _ in range(4)]
    for k, (y, x) in enumerate([(2, 2), (10, 12), (25, 40), (5, 20)]):
        vis[k][y : y + 14, x : x + 18] = True
    strength = [rng.normal(size=(40, 60)).astype(np.float32) for _ in range(4)]
    full = (slice(None), slice(None))
    table = [[full if i != j else None for j in range(4)] for i in range(4)]
    sparse = {(0, 1): full, (0, 3): full, (1, 3): full, (1, 2): full}
    for mode in ("nod", "od"):
        a, b = resolve_conflicts(vis, strength, mode, table), resolve_conflicts(vis, strength, mode, sparse)
        assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
        assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and a[3] == b[3]


def _layers_reference(order: np.ndarray, confidence: np.ndarray):
    """The cycle breaking as first written (one strongly-connected-components pass over a dict per break)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = order.shape[0]
    edges = {(int(i), int(j)): float(confidence[i, j]) for i, j in zip(*np.nonzero(order > 0))}
    broken = []
    while edges:
        rows, cols = zip(*edges)
        graph = csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n))
        _, comp = connected_components(graph, directed=True, connection="strong")
        cyclic = [(a, b) for a, b in edges if comp[a] == comp[b]]
        if not cyclic:
            break
        weakest = min(cyclic, key=lambda e: (edges[e], e))
        broken.append([weakest[0], weakest[1], edges.pop(weakest)])
    return edges, broken


@pytest.mark.parametrize("seed", range(6))
def test_scene_layers_break_the_same_cycles_as_the_reference(seed: int):
    from occseg.reasoning.order import scene_layers

    rng = np.random.default_rng(seed)
    n = 40
    upper = np.triu(rng.random((n, n)) < 0.3, 1)
    sign = np.where(rng.random((n, n)) < 0.5, 1, -1)
    order = (upper * sign).astype(np.int8)
    order = order - order.T
    conf = np.round(rng.random((n, n)), 1)  # rounded: ties between relations are broken by their indices
    conf = np.triu(conf, 1) + np.triu(conf, 1).T
    remaining, broken = _layers_reference(order, conf)
    layers, _, rep = scene_layers(order, conf)
    assert rep["broken_cycles"] == broken and broken
    for a, b in remaining:
        assert layers[b] > layers[a]


def test_a_fallback_score_decides_the_pixels_the_first_is_unsure_of():
    # both objects claim all 5 pixels; the first score (say the mask head's logits) is clear on pixels 0 and 1
    vis = [np.ones((1, 5), bool), np.ones((1, 5), bool)]
    h0 = np.array([[9.0, 0.0, 5.0, 5.0, 5.0]])
    h1 = np.array([[0.0, 9.0, 4.0, 6.0, 5.0]])  # differences 0 - 1: +9, -9, +1, -1, 0 (tie 4: unsure from 2 on)
    c0 = np.array([[0.0, 0.0, 3.0, 0.0, 0.5]])
    c1 = np.array([[1.0, 1.0, 0.0, 3.0, 0.0]])  # the fallback (say colour): 0 on 2 and 4, 1 on 3; unused on 0, 1
    lost, order, conf, counts = resolve_conflicts(vis, [h0, h1], "nod", tie=4.0, fallback=[c0, c1])
    assert counts["0-1"] == {"conflict": 5, "won_by_first": 3, "won_by_second": 2, "won_by_outlier": 0}
    assert order.tolist() == [[0, 1], [-1, 0]] and conf[0, 1] == pytest.approx(1 / 5)
    assert np.flatnonzero(lost[0]).tolist() == [1, 3] and np.flatnonzero(lost[1]).tolist() == [0, 2, 4]
    # the fallback's tie: pixel 4 (ahead by 0.5) stays with both; a margin is not used with a fallback
    for margin in (0.0, 2.0):
        lost, _, _, counts = resolve_conflicts(vis, [h0, h1], "nod", tie=4.0, fallback=[c0, c1], fallback_tie=1.0,
                                               margin=margin)  # fmt: skip
        assert counts["0-1"]["won_by_first"] == counts["0-1"]["won_by_second"] == 2
        assert np.flatnonzero(lost[0]).tolist() == [1, 3] and np.flatnonzero(lost[1]).tolist() == [0, 2]
    # a known order decides who is in front, not who takes a pixel
    known = np.array([[0, -1], [1, 0]], np.int8)
    lost, order, _, _ = resolve_conflicts(vis, [h0, h1], "nod", tie=4.0, fallback=[c0, c1], known_order=known)
    assert order.tolist() == known.tolist()
    assert np.flatnonzero(lost[0]).tolist() == [1, 3] and np.flatnonzero(lost[1]).tolist() == [0, 2, 4]
    # od: the object behind loses the whole conflict
    lost, _, _, _ = resolve_conflicts(vis, [h0, h1], "od", tie=4.0, fallback=[c0, c1])
    assert not lost[0].any() and lost[1].all()
    with pytest.raises(ValueError, match="fallback maps"):
        resolve_conflicts(vis, [h0, h1], "nod", fallback=[c0])
    with pytest.raises(ValueError, match="fallback_tie must be >= 0"):
        resolve_conflicts(vis, [h0, h1], "nod", fallback=[c0, c1], fallback_tie=-1.0)


def test_pair_claims_without_a_fallback_are_the_wins_beyond_the_tie_and_the_margin():
    from occseg.reasoning.orm import pair_claims

    si, sj = np.array([3.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.5, 2.0])
    free = np.array([True, True, True, False])
    i_wins, j_wins, i_takes, j_takes = pair_claims((si, sj), None, free, (0.8, 0.0), 2.0)
    assert i_wins.tolist() == [True, True, False, False] and not j_wins.any()  # pixel 3 is not free
    assert i_takes.tolist() == [True, False, False, False] and not j_takes.any()
