"""The amodal shape under the objects in front (src/occseg/reasoning/hidden.py), on constructed masks."""

from __future__ import annotations

import numpy as np

from occseg.inference.types import ObjectResult
from occseg.reasoning.hidden import decided_order, hide_behind


def _obj(visible: np.ndarray, shape: np.ndarray | None) -> ObjectResult:
    cells = np.zeros((2, 2))
    extra = {} if shape is None else {"shape": shape}
    return ObjectResult("person", 1.0, {}, 0, visible, visible.copy(), cells, cells, cells, (0, 0, 1, 1), (0, 0, 1, 1),
                        extra)  # fmt: skip


def _rect(y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
    m = np.zeros((20, 20), bool)
    m[y1:y2, x1:x2] = True
    return m


def test_the_shape_under_the_object_in_front_is_hidden_and_nothing_else():
    front = _obj(_rect(0, 20, 10, 14), None)  # a pole in front
    behind = _obj(_rect(5, 15, 2, 9), _rect(4, 16, 1, 13))  # seen left of it; its shape reaches under it
    order = np.array([[0, 1], [-1, 0]], np.int8)
    out = hide_behind([front, behind], order)
    assert out[0] is front
    want = behind.visible | _rect(4, 16, 10, 13)  # only the shape's part under the pole, not its rim elsewhere
    assert np.array_equal(out[1].amodal, want) and np.array_equal(out[1].visible, behind.visible)
    assert out[1].amodal_box == (2.0, 4.0, 13.0, 16.0)
    # reversed order: the pole is behind and has no shape; the person in front keeps its masks
    flipped = hide_behind([front, behind], -order)
    assert flipped[0] is front and flipped[1] is behind


def test_where_the_object_behind_is_seen_the_one_in_front_is_not():
    person = _obj(_rect(0, 10, 0, 10), _rect(0, 14, 0, 10))  # in front; its shape reaches rows 10..13
    person = ObjectResult(**{**person.__dict__, "amodal": _rect(0, 14, 0, 10)})  # its cells' hidden part: those rows
    other = _obj(_rect(8, 20, 2, 8), _rect(8, 20, 2, 8))  # behind it, seen below it (rows 10..19) and in rows 8, 9
    order = np.array([[0, 1], [-1, 0]], np.int8)
    assert hide_behind([person, other], order)[0] is person  # the hidden part "front" keeps it
    out = hide_behind([person, other], order, agree=True)
    # the person in front loses rows 10..13 of columns 2..7, where the other is seen; its own visible mask stays
    want = _rect(0, 14, 0, 10) & ~_rect(10, 14, 2, 8)
    assert np.array_equal(out[0].amodal, want) and np.array_equal(out[0].visible, person.visible)
    assert out[1] is other  # its shape under the person is its own visible mask already


def test_the_vote_fills_the_pairs_the_competition_left_without_order():
    order = np.array([[0, 0, 1], [0, 0, 0], [-1, 0, 0]], np.int8)
    vote = np.array([[0, -1, -1], [1, 0, 0], [1, 0, 0]], np.int8)
    assert decided_order(order, vote).tolist() == [[0, -1, 1], [1, 0, 0], [-1, 0, 0]]
    assert decided_order(order, None) is order
