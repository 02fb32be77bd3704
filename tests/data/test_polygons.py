"""Polygon coordinates the readers refuse or warn about: non-finite vertices, vertices far outside the image
(pycocotools crashed or asked for gigabytes on them), and polygons that cover no pixel. One check
(:func:`occseg.data.masks.polygon_problem`) guards every reader and every later decode."""

from __future__ import annotations

import math

import pytest
from pycocotools import mask as mask_utils

from occseg.data.masks import LazyMask, MaskError, empty_polygon_reason, polygon_problem, segmentation_to_rle
from occseg.data.readers import read_dataset
from occseg.data.stats import dataset_stats, format_stats
from tests.data.readers.builders import ann, coco_obj, make_yolo, write_json
from tests.data.test_bad_input import cocoa_file, cocoa_region

SQUARE = [10, 5, 20, 5, 20, 15, 10, 15]  # 100 px inside a 40x30 image
FAR = "lies too far outside the 40x30 image (vertices must lie within one image width / height of its border"


@pytest.fixture
def no_pycocotools_polygons(monkeypatch):
    """Fail the test instead of crashing the process if a bad polygon reaches pycocotools."""
    original = mask_utils.frPyObjects

    def checked(polys, height, width):
        if isinstance(polys, list):
            for p in polys:
                assert all(math.isfinite(v) and abs(v) <= 3 * max(height, width) for v in p), "a bad polygon"
        return original(polys, height, width)

    monkeypatch.setattr(mask_utils, "frPyObjects", checked)


# ------------------------------------------------------------------------------------------- the one check


@pytest.mark.parametrize(
    "polys",
    [
        [SQUARE],
        [[-5, -3, 45, -3, 45, 33, -5, 33]],  # a little outside on every side: fine
        [[-40, -30, 80, -30, 80, 60]],  # exactly one image width / height outside: still fine
        [[1, 2, 3, 4, 5, 6], []],
        [(1.5, 2, 3, 4, 5, 6)],
    ],
)
def test_usable_polygons_pass(polys):
    assert polygon_problem(polys, 30, 40) is None


@pytest.mark.parametrize(
    ("polys", "message"),
    [
        ([[1, 2, math.nan, 2, 5, 6]], "polygon 0 vertex 1 (nan, 2) is not finite"),
        ([SQUARE, [1, 2, 3, 4, 5, -math.inf]], "polygon 1 vertex 2 (5, -inf) is not finite"),
        ([[1, 2, math.inf, -math.inf, 5, 6]], "polygon 0 vertex 1 (inf, -inf) is not finite"),
        ([[1, 2, 3, 4, 5]], "polygon 0 has an odd number of coordinates (5)"),
        ([[1, 2, 1e9, 2, 5, 6]], f"polygon 0 vertex 1 (1e+09, 2) {FAR}: x in [-40, 80], y in [-30, 60])"),
        ([[1, 2, 3, 4, 80.5, 6]], f"polygon 0 vertex 2 (80.5, 6) {FAR}: x in [-40, 80], y in [-30, 60])"),
        ([[1, -31, 3, 4, 5, 6]], f"polygon 0 vertex 0 (1, -31) {FAR}: x in [-40, 80], y in [-30, 60])"),
        ([[1, 2, 3, "4", 5, None]], "polygon 0 holds coordinates that are not numbers: [1, 2, 3, '4', 5, None]"),
    ],
)
def test_refused_polygons_and_the_message(polys, message):
    assert polygon_problem(polys, 30, 40) == message


def test_a_vertex_beyond_float_range_sums_to_inf_but_is_called_far_not_infinite():
    assert polygon_problem([[1e308, 1e308, 1e308, 2, 5, 6]], 30, 40) == (
        f"polygon 0 vertex 0 (1e+308, 1e+308) {FAR}: x in [-40, 80], y in [-30, 60])"
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, 1e9, -1e7])
def test_decoding_refuses_the_polygon_before_pycocotools(no_pycocotools_polygons, bad):
    mask = LazyMask([[1, 2, bad, 2, 5, 6]], 30, 40)  # as a caller other than the readers could build it
    with pytest.raises(MaskError, match=r"^cannot decode segmentation: polygon 0 vertex 1 \("):
        mask.decode()
    with pytest.raises(MaskError, match=r"^cannot decode segmentation: polygon 0 vertex 1 \("):
        segmentation_to_rle([[1, 2, bad, 2, 5, 6]], 30, 40)


def test_polygons_a_little_outside_still_decode():
    mask = LazyMask([[-5, -5, 10, -5, 10, 10, -5, 10]], 30, 40)
    assert mask.area() == 100  # the 10x10 pixels of the image it covers
    assert LazyMask([SQUARE], 30, 40).area() == 100


@pytest.mark.parametrize(
    ("polys", "reason"),
    [
        ([[10, 5, 20, 10, 30, 15]], "covers no pixel (area 0)"),  # collinear
        ([[10, 5, 30, 5, 20, 5], [1, 1, 2, 2]], "covers no pixel (area 0)"),  # the short ring is ignored
        ([[10.1, 10.1, 10.5, 10.1, 10.1, 10.5]], "covers no pixel (area 0.08)"),  # between pixel centres
        ([[41, 1, 50, 1, 50, 9]], "lies entirely outside the 40x30 image"),
        ([[-9, -9, 0, -9, 0, 0]], "lies entirely outside the 40x30 image"),  # touching the corner from outside
        ([[41, 1, 50, 1, 50, 9], [-9, 1, -1, 1, -1, 9]], "lies entirely outside the 40x30 image"),
        ([SQUARE], None),
        ([[10.2, 10.2, 11, 10.2, 11, 11, 10.2, 11]], None),  # 0.64 px of area, over the centre (10.5, 10.5)
        ([[10, 10, 30, 30, 30, 10, 10, 30]], None),  # a bow tie: its lobes cancel in the area, 200 px
        ([[41, 1, 50, 1, 50, 9], SQUARE], None),
        ([[1, 2, 3, 4]], None),  # no ring of three vertices: no mask at all, not an empty one
    ],
)
def test_empty_polygon_reason(polys, reason):
    assert empty_polygon_reason(polys, 30, 40) == reason
    if reason is not None:
        assert LazyMask(polys, 30, 40).area() == 0


# ------------------------------------------------------------------------------------------------- readers


def yolo_lines(tmp_path, *lines: str):
    """A YOLO dataset of one 100x50 image a.png with these label lines (after one good box line)."""
    return make_yolo(tmp_path, {"a": "\n".join(["0 0.5 0.5 0.2 0.2", *lines]) + "\n"})


def test_yolo_skips_bad_polygon_lines_with_a_warning_each(tmp_path, no_pycocotools_polygons):
    root = yolo_lines(
        tmp_path,
        "0 0.1 0.1 nan 0.2 0.5 0.5 0.5 0.1",
        "0 0.1 0.1 1e7 0.2 0.5 0.5 0.5 0.1",
        "0 0.1 0.1 inf 0.2 0.5 0.5 0.5 0.1",
        "0 0.1 0.1 0.2 0.2 0.3 0.3",  # collinear
        "0 1.2 0.1 1.5 0.1 1.5 0.9",  # entirely outside (within one width)
        "0 0.5 nan 0.2 0.2",  # a box, not finite
        "1 -0.1 0.2 0.5 0.2 0.5 0.8 -0.1 0.8",  # a little outside: kept, box clipped
    )
    ds = read_dataset(root)
    assert [(i.category, i.box) for i in ds.images[0].instances] == [
        ("person", (40.0, 20.0, 60.0, 30.0)),
        ("bicycle", (0.0, 10.0, 50.0, 40.0)),
    ]
    where = "a.txt line {} (image a.png)"
    assert ds.warnings == [
        f"{where.format(2)}: polygon 0 vertex 1 (nan, 10) is not finite; annotation skipped",
        f"{where.format(3)}: polygon 0 vertex 1 (1e+09, 10) lies too far outside the 100x50 image (vertices must "
        "lie within one image width / height of its border: x in [-100, 200], y in [-50, 100]); annotation skipped",
        f"{where.format(4)}: polygon 0 vertex 1 (inf, 10) is not finite; annotation skipped",
        f"{where.format(5)}: the polygon covers no pixel (area 0); annotation skipped",
        f"{where.format(6)}: the polygon lies entirely outside the 100x50 image; annotation skipped",
        f"{where.format(7)}: box values must be finite, got [0.5, nan, 0.2, 0.2]; annotation skipped",
        f"{where.format(8)}: box [-10.0, 10.0, 50.0, 40.0] extends outside the 100x50 image; clipped to "
        "[0.0, 10.0, 50.0, 40.0]",
    ]


def test_yolo_polygon_masks_stay_lazy(tmp_path):
    ds = read_dataset(yolo_lines(tmp_path, "1 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6"))
    assert ds.images[0].instances[1].mask._rle is None  # only polygons under one pixel of area are rasterised


def test_coco_polygon_problems_skip_or_warn(tmp_path, no_pycocotools_polygons):
    obj = coco_obj([
        ann(1, [10, 5, 10, 10], segmentation=[SQUARE]),
        ann(2, [10, 5, 10, 10], segmentation=[[10, 5, math.nan, 5, 20, 15]]),
        ann(3, [10, 5, 10, 10], segmentation=[[10, 5, 1e9, 5, 20, 15, 10, 15]]),
        ann(4, [10, 5, 10, 10], segmentation=[[41, 1, 50, 1, 50, 9]]),  # outside, the bbox inside: box kept
        ann(5, None, segmentation=[[10, 5, 20, 10, 30, 15]]),  # zero area and no bbox: skipped
        ann(6, [10, 5, 10, 10], segmentation=[[10, 5, 20, 10, 30, 15]]),  # zero area, bbox: box kept
        ann(7, [0, 0, 5, 5], segmentation=[[-2, -2, 5, -2, 5, 5, -2, 5]]),  # a little outside: fine
    ])  # fmt: skip
    ds = read_dataset(write_json(tmp_path / "p.json", obj), images=tmp_path)
    kept = {i.id: i for im in ds.images for i in im.instances}
    assert sorted(kept) == [1, 4, 6, 7]
    where = "p.json: image 1 (a.png), annotation {}"
    polygon_warnings = [w for w in ds.warnings if "annotation" in w]
    assert polygon_warnings == [
        f"{where.format(2)}: polygon 0 vertex 1 (nan, 5) is not finite; annotation skipped",
        f"{where.format(3)}: polygon 0 vertex 1 (1e+09, 5) {FAR}: x in [-40, 80], y in [-30, 60]); annotation skipped",
        f"{where.format(4)}: the segmentation lies entirely outside the 40x30 image, so the mask is empty; "
        "the box is kept",
        f"{where.format(5)}: no box, and the segmentation covers no pixel (area 0); annotation skipped",
        f"{where.format(6)}: the segmentation covers no pixel (area 0), so the mask is empty; the box is kept",
    ]
    assert kept[4].mask._rle is None  # not rasterised: the extent alone tells it is outside


def test_coco_mask_of_a_polygon_a_little_outside(tmp_path):
    obj = coco_obj([ann(7, [0, 0, 5, 5], segmentation=[[-2, -2, 5, -2, 5, 5, -2, 5]])])
    ds = read_dataset(write_json(tmp_path / "p.json", obj), images=tmp_path)
    assert ds.images[0].instances[0].mask.area() == 25


def test_kins_polygon_problems_name_the_key(tmp_path):
    recs = [
        {"id": 1, "image_id": 1, "category_id": 3, "i_bbox": [10, 5, 10, 10], "i_segm": [SQUARE],
         "a_bbox": [10, 5, 10, 10], "a_segm": [[10, 5, 20, 5, 1e9, 15]]},
        {"id": 2, "image_id": 1, "category_id": 3, "i_bbox": [10, 5, 10, 10], "i_segm": [[41, 1, 50, 1, 50, 9]],
         "a_bbox": [10, 5, 10, 10], "a_segm": [SQUARE]},
    ]  # fmt: skip
    ds = read_dataset(write_json(tmp_path / "k.json", coco_obj(recs)), images=tmp_path, fmt="kins")
    assert [i.id for i in ds.images[0].instances] == [2]
    assert [w for w in ds.warnings if "annotation" in w] == [
        f"k.json: image 1 (a.png), annotation 1 (a_segm): polygon 0 vertex 2 (1e+09, 15) {FAR}: x in [-40, 80], "
        "y in [-30, 60]); annotation skipped",
        "k.json: image 1 (a.png), annotation 2 (visible box): the i_segm lies entirely outside the 40x30 image, "
        "so the mask is empty; the box is kept",
    ]


def test_cocoa_polygon_problems_skip_the_region(tmp_path, no_pycocotools_polygons):
    cocoa_file(
        tmp_path,
        [
            cocoa_region(segmentation=[1, 2, 1e9, 4, 5, 6, 7, 8]),
            cocoa_region(),
            cocoa_region(segmentation=[3, math.nan, 5, 6, 7, 8]),
            cocoa_region(segmentation=[41, 1, 50, 1, 50, 9]),
            cocoa_region(segmentation=[10, 5, 20, 10, 30, 15]),
        ],
    )
    ds = read_dataset(tmp_path)
    assert [i.extra["region_index"] for i in ds.images[0].instances] == [1]
    assert ds.warnings == [
        f"1.json, region 0 (segmentation): polygon 0 vertex 1 (1e+09, 4) {FAR}: x in [-40, 80], y in [-30, 60]); "
        "annotation skipped",
        "1.json, region 2 (segmentation): polygon 0 vertex 0 (3, nan) is not finite; annotation skipped",
        "1.json, region 3: the amodal segmentation lies entirely outside the 40x30 image; region skipped",
        "1.json, region 4: the amodal segmentation covers no pixel (area 0); region skipped",
    ]


def test_stats_report_the_skipped_polygon(tmp_path):
    ds = read_dataset(yolo_lines(tmp_path, "0 0.1 0.1 nan 0.2 0.5 0.5 0.5 0.1"))
    stats = dataset_stats(ds)
    assert stats.num_instances == 1
    text = format_stats(stats)
    line = "a.txt line 2 (image a.png): polygon 0 vertex 1 (nan, 10) is not finite; annotation skipped"
    assert f"warnings (1):\n  {line}\n" in text


def test_non_number_coordinates_are_still_an_error(tmp_path):
    obj = coco_obj([ann(1, [1, 1, 5, 5], segmentation=[[1, 2, 3, "x", 5, 6]]), ann(2, [1, 1, 5, 5])])
    with pytest.raises(
        ValueError, match=r"^g\.json: image 1 \(a\.png\), annotation 1: polygon 0 holds a string \('x'\), not a number$"
    ):
        read_dataset(write_json(tmp_path / "g.json", obj))
    obj = coco_obj([ann(1, [1, 1, 5, 5], segmentation=[SQUARE, [1, 2, 3, 4, 5]])])
    with pytest.raises(ValueError, match=r"annotation 1: polygon 1 has an odd number of coordinates \(5\)$"):
        read_dataset(write_json(tmp_path / "g.json", obj))
