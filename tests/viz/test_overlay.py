"""Overlays: colours of the visible / occluded / context parts, and panels side by side (src/occseg/viz)."""

from __future__ import annotations

import numpy as np

from occseg.viz.overlay import CONTEXT, OCCLUDED, VISIBLE, draw_objects, side_by_side


def _blended(base: int, colour: tuple[int, int, int], alpha: float) -> list[int]:
    return [int(np.float32(base) * np.float32(1 - alpha) + np.float32(c) * np.float32(alpha)) for c in colour]


def test_parts_get_their_colours_and_the_rest_is_untouched():
    img = np.full((40, 60, 3), 100, np.uint8)
    amodal = np.zeros((40, 60), bool)
    amodal[5:35, 10:40] = True
    visible = amodal.copy()
    visible[20:35] = False  # the lower half is occluded
    out = draw_objects(img, [visible], [amodal], [(5.0, 2.0, 45.0, 38.0)])
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[12, 25].tolist() == _blended(100, VISIBLE, 0.5)  # inside the visible part
    assert out[28, 25].tolist() == _blended(100, OCCLUDED, 0.5)  # occluded: amodal, not visible
    assert out[20, 7].tolist() == _blended(100, CONTEXT, 0.25)  # in the box, outside the amodal mask
    assert out[20, 50].tolist() == [100, 100, 100]  # outside the box
    assert out[0, 0].tolist() == [100, 100, 100]
    assert (img == 100).all()  # the input is not changed


def test_context_follows_the_pixel_convention_of_boxes():
    img = np.zeros((10, 10, 3), np.uint8)
    none = np.zeros((10, 10), bool)
    out = draw_objects(img, [none], [none], [(2.4, 2.6, 5.5, 5.4)])
    # pixels whose centres lie inside the box: x 2..4 (centres 2.5, 3.5, 4.5 < 5.5), y 3..4 (3.5, 4.5 < 5.4)
    tinted = (out != 0).any(axis=2)
    expected = np.zeros((10, 10), bool)
    expected[3:5, 2:5] = True
    np.testing.assert_array_equal(tinted, expected)


def test_depth_layer_tags_are_drawn():
    img = np.full((60, 80, 3), 100, np.uint8)
    m = np.zeros((60, 80), bool)
    plain = draw_objects(img, [m], [m], [(0.0, 0.0, 80.0, 60.0)])
    tagged = draw_objects(img, [m], [m], [(0.0, 0.0, 80.0, 60.0)], labels=["person"], layers=[0])
    assert (tagged != plain).any()


def test_numbered_tags_and_notes_are_drawn_where_asked():
    img = np.full((120, 160, 3), 100, np.uint8)
    m = np.zeros((120, 160), bool)
    box = [(0.0, 0.0, 80.0, 60.0)]
    tagged = draw_objects(img, [m], [m], box, labels=["person"], layers=[0])
    numbered = draw_objects(img, [m], [m], box, labels=["person"], layers=[0], numbered=True)
    changed = (numbered != tagged).any(axis=2)
    assert changed[:20].any() and not changed[20:].any()  # only the tag at the box's top changes
    noted = draw_objects(img, [m], [m], box, labels=["person"], layers=[0], notes=["1 in front of 0 (0.50)"])
    changed = (noted != tagged).any(axis=2)
    rows, cols = np.nonzero(changed)
    assert rows.min() > 90 and cols.min() < 10  # the note sits in the bottom-left corner


def test_side_by_side_pads_to_the_tallest_panel_with_white_gaps():
    a = np.zeros((4, 3, 3), np.uint8)
    b = np.full((2, 5, 3), 7, np.uint8)
    out = side_by_side([a, b], gap=2)
    assert out.shape == (4, 3 + 2 + 5, 3)
    assert (out[:, 3:5] == 255).all()  # the gap
    assert (out[2:, 5:] == 255).all() and (out[:2, 5:] == 7).all()  # b padded below with white
    assert (out[:, :3] == 0).all()
