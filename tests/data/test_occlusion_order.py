"""One occlusion-order rule for RLE and dense masks: known answers, and both variants agreeing."""

from __future__ import annotations

import numpy as np

from occseg.data.masks import LazyMask
from occseg.data.occlusion_order import dense_order_matrix, occlusion_order, pairwise_order_matrix


def _rect(h: int, w: int, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def test_the_object_whose_visible_part_covers_the_others_amodal_mask_is_in_front():
    front = _rect(20, 30, 5, 15, 5, 15)
    back_amodal = _rect(20, 30, 5, 15, 10, 25)
    back_visible = back_amodal & ~front
    far = _rect(20, 30, 0, 3, 27, 30)
    vis, amo = [front, back_visible, far], [front, back_amodal, far]
    expected = [[0, 1, 0], [-1, 0, 0], [0, 0, 0]]
    assert dense_order_matrix(vis, amo).tolist() == expected
    lazy = [LazyMask.from_array(m) for m in vis], [LazyMask.from_array(m) for m in amo]
    assert pairwise_order_matrix(*lazy).tolist() == expected


def test_a_tie_gives_no_order_whatever_the_listing():
    a, b = _rect(10, 10, 0, 6, 0, 6), _rect(10, 10, 3, 9, 3, 9)  # both claim their whole overlap
    assert dense_order_matrix([a, b], [a, b]).tolist() == [[0, 0], [0, 0]]
    assert occlusion_order(2, lambda i, j: True, lambda i, j: 4).tolist() == [[0, 0], [0, 0]]


def test_rle_and_dense_variants_agree_on_random_scenes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        amo = [_rect(24, 24, *sorted(rng.integers(0, 25, 2)), *sorted(rng.integers(0, 25, 2))) for _ in range(4)]
        vis = [a & (rng.random(a.shape) < 0.7) for a in amo]
        dense = dense_order_matrix(vis, amo)
        rle = pairwise_order_matrix([LazyMask.from_array(v) for v in vis], [LazyMask.from_array(a) for a in amo])
        assert np.array_equal(dense, rle) and np.array_equal(dense, -dense.T)
