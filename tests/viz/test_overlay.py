"""Overlays: colours of the visible / occluded / context parts, and panels side by side (src/occseg/viz)."""

from __future__ import annotations

import numpy as np

from occseg.viz.overlay import CONTEXT, OCCLUDED, VISIBLE, draw_objects, place_tags, side_by_side


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


def test_tags_wished_apart_stay_where_wished():
    assert place_tags([(2, 20), (50, 20), (2, 60)], [(30, 10, 4)] * 3, 100) == [(2, 20), (50, 20), (2, 60)]


def test_a_tag_on_another_moves_one_step_of_its_height_down():
    # a tag's rectangle spans y - height - gap .. y + baseline: 20 - 10 - 2 = 8 .. 24; the next free baseline is
    # 20 + (10 + 4 + 2) = 36, whose rectangle 24 .. 40 touches, but does not cover, the first
    assert place_tags([(2, 20), (2, 20), (10, 20)], [(30, 10, 4)] * 3, 100) == [(2, 20), (2, 36), (10, 52)]


def test_a_tag_under_the_title_moves_below_it():
    # baselines 14 and 30 give rectangles 2 .. 18 and 18 .. 34, both meeting the title (rows 5 .. 26); 46 is free
    assert place_tags([(2, 14)], [(30, 10, 4)], 100, taken=[(6, 5, 80, 26)]) == [(2, 46)]
    assert place_tags([(90, 14)], [(30, 10, 4)], 100, taken=[(6, 5, 80, 26)]) == [(90, 14)]  # beside it


def test_a_tag_at_the_bottom_moves_up_and_one_without_room_stays():
    # the image is 40 px high: below the first tag (baseline 30, bottom 34) there is no room, above it there is
    assert place_tags([(0, 30), (0, 30)], [(30, 10, 4)] * 2, 40) == [(0, 30), (0, 14)]
    assert place_tags([(0, 12), (0, 12)], [(30, 10, 4)] * 2, 16) == [(0, 12), (0, 12)]


def test_tags_of_boxes_at_the_same_height_do_not_overlap():
    img = np.full((200, 200, 3), 100, np.uint8)
    m = np.zeros((200, 200), bool)
    boxes = [(10.0, 10.0, 150.0, 190.0), (12.0, 10.0, 190.0, 190.0)]
    one = draw_objects(img, [m], [m], boxes[:1], labels=["person"], layers=[0])
    two = draw_objects(img, [m, m], [m, m], boxes, labels=["person", "person"], layers=[0, 1])
    white_one = np.nonzero((one == 255).all(axis=2).any(axis=1))[0]  # rows with text (white on a black rim)
    white_two = np.nonzero((two == 255).all(axis=2).any(axis=1))[0]
    assert white_one.min() == white_two.min()  # the first tag stays where it was
    assert white_two.max() > white_one.max() + 5  # the second is written below it, not on it


def test_side_by_side_pads_to_the_tallest_panel_with_white_gaps():
    a = np.zeros((4, 3, 3), np.uint8)
    b = np.full((2, 5, 3), 7, np.uint8)
    out = side_by_side([a, b], gap=2)
    assert out.shape == (4, 3 + 2 + 5, 3)
    assert (out[:, 3:5] == 255).all()  # the gap
    assert (out[2:, 5:] == 255).all() and (out[:2, 5:] == 7).all()  # b padded below with white
    assert (out[:, :3] == 0).all()
