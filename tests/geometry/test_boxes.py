"""Exact values and round trips of the box geometry (in the style of torchvision's / kornia's box tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from occseg.geometry.boxes import (
    BoxError,
    CropWindow,
    as_box,
    box_area,
    box_height,
    box_iou,
    box_to_pixel_mask,
    box_width,
    clip_box,
    crop_window,
    cxcywh_norm_to_xyxy,
    ellipse_mask,
    mask_to_box,
    pixel_span,
    place_crop_map,
    resample_cells_at,
    resample_cells_to_image,
    validate_box,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


class TestConversions:
    def test_as_box_floats(self):
        assert as_box([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
        assert all(isinstance(v, float) for v in as_box(np.array([1, 2, 3, 4])))

    @pytest.mark.parametrize(
        ("values", "match"),
        [([1, 2, 3], "4 numbers"), ([1, 2, 3, 4, 5], "4 numbers"), ([1, "a", 3, 4], "numbers"),
         (["1", 2, 3, 4], "numbers"), ([True, 2, 3, 4], "numbers"), ([np.bool_(True), 2, 3, 4], "numbers"),
         ([0, 0, math.inf, 1], "finite"), ([0, math.nan, 1, 1], "finite")],
    )  # fmt: skip
    def test_as_box_rejects(self, values, match):
        with pytest.raises(BoxError, match=match):
            as_box(values)

    def test_xywh_to_xyxy_exact(self):
        assert xywh_to_xyxy([10, 20, 30, 40]) == (10.0, 20.0, 40.0, 60.0)
        assert xywh_to_xyxy([0.5, 1.25, 2.0, 0.5]) == (0.5, 1.25, 2.5, 1.75)

    def test_xyxy_to_xywh_exact(self):
        assert xyxy_to_xywh((10, 20, 40, 60)) == (10.0, 20.0, 30.0, 40.0)

    def test_xywh_round_trip(self):
        rng = np.random.default_rng(0)
        for _ in range(50):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(0.5, 200, 2)
            back = xyxy_to_xywh(xywh_to_xyxy([x, y, w, h]))
            np.testing.assert_allclose(back, [x, y, w, h], rtol=0, atol=1e-9)

    def test_cxcywh_norm_to_xyxy_exact(self):
        assert cxcywh_norm_to_xyxy([0.5, 0.5, 0.5, 0.25], 200, 100) == (50.0, 37.5, 150.0, 62.5)
        assert cxcywh_norm_to_xyxy([0.5, 0.5, 1.0, 1.0], 640, 480) == (0.0, 0.0, 640.0, 480.0)


class TestAreaIou:
    def test_width_height_area(self):
        b = (1.0, 2.0, 4.0, 7.0)
        assert (box_width(b), box_height(b), box_area(b)) == (3.0, 5.0, 15.0)

    def test_area_of_inverted_or_empty_is_zero(self):
        assert box_area((5.0, 5.0, 1.0, 9.0)) == 0.0
        assert box_area((1.0, 1.0, 1.0, 9.0)) == 0.0

    def test_iou_known_values(self):
        a = (0.0, 0.0, 2.0, 2.0)
        assert box_iou(a, a) == 1.0
        assert box_iou(a, (1.0, 0.0, 3.0, 2.0)) == pytest.approx(2.0 / 6.0)
        assert box_iou(a, (1.0, 1.0, 3.0, 3.0)) == pytest.approx(1.0 / 7.0)
        assert box_iou(a, (0.0, 0.0, 1.0, 1.0)) == pytest.approx(0.25)  # nested
        assert box_iou(a, (2.0, 0.0, 4.0, 2.0)) == 0.0  # touching edges
        assert box_iou(a, (5.0, 5.0, 6.0, 6.0)) == 0.0

    def test_iou_symmetric_and_bounded(self):
        rng = np.random.default_rng(1)
        for _ in range(100):
            p = rng.uniform(0, 50, 4)
            q = rng.uniform(0, 50, 4)
            a = (min(p[0], p[2]), min(p[1], p[3]), max(p[0], p[2]), max(p[1], p[3]))
            b = (min(q[0], q[2]), min(q[1], q[3]), max(q[0], q[2]), max(q[1], q[3]))
            assert box_iou(a, b) == pytest.approx(box_iou(b, a))
            assert 0.0 <= box_iou(a, b) <= 1.0

    def test_iou_of_empty_boxes_is_zero(self):
        assert box_iou((1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0)) == 0.0


class TestClipValidate:
    def test_clip_exact(self):
        assert clip_box((-5.0, -1.0, 50.0, 20.0), 40, 10) == (0.0, 0.0, 40.0, 10.0)
        assert clip_box((1.0, 2.0, 3.0, 4.0), 40, 10) == (1.0, 2.0, 3.0, 4.0)

    def test_validate_inside(self):
        assert validate_box([1, 2, 3, 4], 10, 10) == ((1.0, 2.0, 3.0, 4.0), None)

    def test_validate_partly_outside_is_clipped_with_warning(self):
        box, warning = validate_box([-2, 3, 12, 8], 10, 10, what="image 7, annotation 3")
        assert box == (0.0, 3.0, 10.0, 8.0)
        assert "image 7, annotation 3" in warning and "clipped" in warning and "10x10" in warning

    @pytest.mark.parametrize(
        ("box", "match"),
        [([5, 5, 1, 9], "inverted"), ([5, 9, 9, 1], "inverted"), ([5, 5, 5, 9], "zero-area"),
         ([1, 4, 8, 4], "zero-area"), ([20, 20, 30, 30], "outside"), ([-9, -9, -1, -1], "outside"),
         ([10, 0, 12, 5], "outside")],
    )  # fmt: skip
    def test_validate_rejects(self, box, match):
        with pytest.raises(BoxError, match=match) as info:
            validate_box(box, 10, 10, what="ann 42")
        assert "ann 42" in str(info.value)

    @pytest.mark.parametrize(
        ("box", "axis"),
        [([3, 2, 3.4, 8], "x"), ([9.9, 0, 10, 5], "x"), ([0, 5, 8, 5.5], "y"), ([2.6, 1, 3.5, 4], "x")],
    )
    def test_validate_rejects_boxes_without_a_pixel_centre(self, box, axis):
        with pytest.raises(BoxError, match=f"ann 7: .* holds no pixel centre .* in {axis}"):
            validate_box(box, 10, 10, what="ann 7")

    def test_validate_names_the_clipped_box_when_clipping_leaves_no_pixel(self):
        with pytest.raises(BoxError, match=r"in x once clipped to the 10x10 image \(\[0.0, 0.0, 0.2, 0.2\]\)"):
            validate_box([-10, -10, 0.2, 0.2], 10, 10)

    def test_pixel_span_counts_pixel_centres(self):
        # centres k + 0.5 in [lo, hi): the rule of box_to_pixel_mask
        assert pixel_span(0, 1) == 1 and pixel_span(0.5, 1.5) == 1 and pixel_span(0.6, 1.5) == 0
        assert pixel_span(10.2, 10.8) == 1 and pixel_span(100, 102) == 2 and pixel_span(3, 2) == 0
        for lo, hi in [(0.4, 2.5), (0.6, 1.6), (3.0, 10.0)]:
            assert pixel_span(lo, hi) == box_to_pixel_mask((lo, 0.0, hi, 1.0), 1, 12).sum()


class TestMasks:
    def test_pixel_mask_integer_box(self):
        m = box_to_pixel_mask((0.0, 0.0, 2.0, 2.0), 4, 4)
        expected = np.zeros((4, 4), bool)
        expected[:2, :2] = True
        np.testing.assert_array_equal(m, expected)

    def test_pixel_mask_uses_pixel_centres(self):
        # centres 0.5, 1.5, 2.5: x in [0.4, 2.5) keeps columns 0, 1; y in [0.6, 1.6) keeps row 1
        m = box_to_pixel_mask((0.4, 0.6, 2.5, 1.6), 3, 4)
        expected = np.zeros((3, 4), bool)
        expected[1, 0:2] = True
        np.testing.assert_array_equal(m, expected)

    def test_pixel_mask_area_equals_integer_box_area(self):
        m = box_to_pixel_mask((3.0, 5.0, 10.0, 9.0), 20, 30)
        assert m.shape == (20, 30) and m.sum() == 7 * 4

    def test_mask_to_box_round_trip(self):
        rng = np.random.default_rng(2)
        for _ in range(30):
            x1, y1 = (int(v) for v in rng.integers(0, 20, 2))
            x2, y2 = x1 + int(rng.integers(1, 10)), y1 + int(rng.integers(1, 10))
            box = (float(x1), float(y1), float(x2), float(y2))
            assert mask_to_box(box_to_pixel_mask(box, 32, 32)) == box

    def test_mask_to_box_of_scattered_pixels_and_empty(self):
        m = np.zeros((6, 8), bool)
        m[1, 2] = m[4, 6] = True
        assert mask_to_box(m) == (2.0, 1.0, 7.0, 5.0)
        assert mask_to_box(np.zeros((3, 3), bool)) is None

    def test_ellipse_inscribed(self):
        m = ellipse_mask((0.0, 0.0, 100.0, 60.0), 60, 100)
        assert m[30, 50] and not m[0, 0] and not m[59, 99] and not m[0, 99]
        np.testing.assert_array_equal(m, m[::-1, :])  # symmetric about the centre
        np.testing.assert_array_equal(m, m[:, ::-1])
        assert m.sum() == pytest.approx(math.pi * 50 * 30, rel=0.01)
        assert mask_to_box(m) == (0.0, 0.0, 100.0, 60.0)


class TestCropWindow:
    def test_exact_window_and_size(self):
        # box height 112 -> scale 2; pad 16 at crop scale = 8 image pixels
        win = crop_window((100.0, 50.0, 150.0, 162.0), 640, 480, target_height=224, pad=16)
        assert win.window == (92, 42, 158, 170)
        assert win.scale == 2.0
        assert win.size == (256, 132)

    def test_pad_stops_at_the_border(self):
        win = crop_window((2.0, 3.0, 50.0, 115.0), 60, 120, target_height=224, pad=16)
        assert win.window == (0, 0, 58, 120)

    def test_stride_rounds_the_size_up(self):
        win = crop_window((100.0, 50.0, 150.0, 162.0), 640, 480, stride=16)
        assert win.size == (256, 144)
        assert win.size[0] % 16 == 0 and win.size[1] % 16 == 0

    def test_zero_area_box_rejected(self):
        with pytest.raises(BoxError, match="no area"):
            crop_window((5.0, 5.0, 5.0, 10.0), 20, 20)

    def test_flat_box_scaled_to_the_widest_crop(self):
        # 640 x 2 px: at the target height the crop would be 71 680 px wide; max_aspect 8 gives 8 * 224 = 1792
        win = crop_window((0.0, 100.0, 640.0, 102.0), 640, 480, target_height=224, pad=0)
        assert win.scale == pytest.approx(1792 / 640)
        assert win.size == (round(2 * 1792 / 640), 1792)
        assert crop_window((0.0, 100.0, 640.0, 102.0), 640, 480, pad=0, max_aspect=2).size[1] == 448
        # an ordinary box is untouched by the cap
        assert crop_window((100.0, 50.0, 150.0, 162.0), 640, 480).scale == 2.0
        with pytest.raises(ValueError, match="max_aspect"):
            crop_window((0.0, 0.0, 4.0, 4.0), 10, 10, max_aspect=0)

    def test_image_crop_round_trip(self):
        win = CropWindow(window=(10, 20, 60, 90), scale=2.5, size=(175, 125))
        assert win.image_to_crop(10, 20) == (0.0, 0.0)
        assert win.image_to_crop(14, 22) == (10.0, 5.0)
        for x, y in [(10.0, 20.0), (33.3, 47.9), (59.0, 89.5)]:
            u, v = win.image_to_crop(x, y)
            assert win.crop_to_image(u, v) == pytest.approx((x, y))

    def test_place_crop_map_identity_at_scale_one(self):
        box = (4.0, 3.0, 9.0, 8.0)  # height 5 -> target 5 gives scale 1
        win = crop_window(box, 12, 10, target_height=5, pad=0)
        assert win.window == (4, 3, 9, 8) and win.scale == 1.0
        values = np.arange(25, dtype=np.float32).reshape(5, 5)
        out = place_crop_map(values, win, 10, 12, fill=-1.0)
        np.testing.assert_array_equal(out[3:8, 4:9], values)
        assert (out[:3] == -1).all() and (out[8:] == -1).all() and (out[:, :4] == -1).all()

    def test_place_crop_map_coarse_cells(self):
        win = CropWindow(window=(2, 2, 6, 6), scale=1.0, size=(4, 4))
        cells = np.array([[1, 2], [3, 4]], dtype=np.int32)  # 2x2 cells cover the 4x4 crop
        out = place_crop_map(cells, win, 8, 8)
        expected = np.zeros((8, 8), np.int32)
        expected[2:4, 2:4], expected[2:4, 4:6], expected[4:6, 2:4], expected[4:6, 4:6] = 1, 2, 3, 4
        np.testing.assert_array_equal(out, expected)

    def test_place_crop_map_bool(self):
        win = CropWindow(window=(1, 1, 3, 3), scale=1.0, size=(2, 2))
        out = place_crop_map(np.ones((2, 2), bool), win, 4, 4)
        assert out.dtype == bool and out.sum() == 4 and out[1:3, 1:3].all()


def test_resample_cells_exact_values():
    """Cells of 16 crop px at scale 0.5 cover 32 image px; the window starts at (10, 20). A cell's value sits at
    its centre, values between centres are linear, and the edge cells are replicated beyond them."""
    win = CropWindow((10, 20, 74, 52), 0.5, (16, 32))
    cells = np.array([[0.0, 2.0], [4.0, 6.0]], dtype=np.float32)
    xs = np.array([26.0, 42.0, 58.0, 0.0, 100.0])  # centre of column 0, halfway, centre of column 1, beyond
    ys = np.array([36.0, 52.0, 68.0])  # centre of row 0, halfway, centre of row 1
    got = resample_cells_at(cells, win, 16, xs, ys)
    want = np.array([[0, 1, 2, 0, 2], [2, 3, 4, 2, 4], [4, 5, 6, 4, 6]], dtype=np.float32)
    np.testing.assert_allclose(got, want, atol=1e-2)  # cv2.remap interpolates with 5-bit weights


def test_resample_cells_to_image_samples_the_window_pixel_centres_and_fills_the_rest():
    win = CropWindow((10, 20, 74, 52), 0.5, (16, 32))
    cells = np.arange(4, dtype=np.float32).reshape(2, 2)
    img = resample_cells_to_image(cells, win, 16, 60, 90, fill=-7.0)
    assert img.shape == (60, 90)
    inside = resample_cells_at(cells, win, 16, np.arange(10, 74) + 0.5, np.arange(20, 52) + 0.5)
    np.testing.assert_array_equal(img[20:52, 10:74], inside)
    outside = np.ones(img.shape, dtype=bool)
    outside[20:52, 10:74] = False
    assert (img[outside] == -7.0).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.float32])
def test_area_and_iou_of_integer_arrays_do_not_wrap_around(dtype):
    a, b = np.array([0, 0, 10, 10], dtype), np.array([20, 20, 30, 30], dtype)
    assert box_iou(a, b) == 0.0  # unsigned subtraction wrapped around to an IoU of 1.0
    assert box_area(np.array([10, 10, 0, 0], dtype)) == 0.0  # inverted: 0, not 100
    assert box_iou(a, np.array([5, 0, 15, 10], dtype)) == pytest.approx(50 / 150)
    with pytest.raises(BoxError, match="a box needs 4 numbers"):
        box_iou((0, 0, 10), (0, 0, 10, 10))


@pytest.mark.parametrize(
    "box, kwargs, error, message",
    [
        ((math.nan, 5, 10, 10), {}, BoxError, "box values must be finite"),
        ((0, 5, math.inf, 10), {}, BoxError, "box values must be finite"),
        ((10, 10, 20, 20), {"target_height": 0}, ValueError, "target_height must be an integer > 0, got 0"),
        ((10, 10, 20, 20), {"target_height": 22.5}, ValueError, "target_height must be an integer > 0"),
        ((10, 10, 20, 20), {"pad": -1000}, ValueError, "pad must be an integer >= 0, got -1000"),
        ((10, 10, 20, 20), {"stride": 0}, ValueError, "stride must be an integer >= 1"),
        ((10, 10, 20, 20), {"max_aspect": math.nan}, ValueError, "max_aspect must be a finite number > 0"),
        ((150, 10, 160, 20), {}, BoxError, r"box \[150, 10, 160, 20\] lies outside the 100x100 image"),
    ],
)
def test_crop_window_refuses_what_has_no_window(box, kwargs, error, message):
    with pytest.raises(error, match=message):
        crop_window(box, 100, 100, **kwargs)
    crop_window((10, 10, 20, 20), 100, 100, target_height=np.int64(224), pad=np.int64(16))  # numpy integers work


@pytest.mark.parametrize("size", [math.nan, "100", None, 0, True])
def test_validate_box_names_a_bad_image_size(size):
    with pytest.raises(ValueError, match=r"box 3: the image width must be a number > 0"):
        validate_box((1, 1, 5, 5), size, 10, what="box 3")


def _brute_pairs(boxes):
    return [
        (i, j)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if min(boxes[i][2], boxes[j][2]) > max(boxes[i][0], boxes[j][0])
        and min(boxes[i][3], boxes[j][3]) > max(boxes[i][1], boxes[j][1])
    ]


def test_overlapping_pairs_are_the_pairs_whose_boxes_share_area():
    from occseg.geometry.boxes import overlapping_pairs

    boxes = [(0, 0, 10, 10), (5, 5, 15, 15), (10, 0, 20, 10), (30, 30, 40, 40), (0, 0, 40, 40), (9, 9, 9, 12)]
    # touching edges (0 and 2) and a zero-width box (5) share no area
    assert overlapping_pairs(boxes) == [(0, 1), (0, 4), (1, 2), (1, 4), (2, 4), (3, 4)]
    assert overlapping_pairs([]) == [] and overlapping_pairs([(0, 0, 1, 1)]) == []
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, size=(300, 2))
    wh = rng.uniform(1, 80, size=(300, 2))
    many = [tuple(map(float, (*p, *(p + s)))) for p, s in zip(xy, wh)]
    assert overlapping_pairs(many) == _brute_pairs(many)
