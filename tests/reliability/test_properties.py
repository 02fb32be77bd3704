"""Property tests (hypothesis) of the readers and the box geometry: any JSON value in any field of an annotation file
or a boxes file gives either a valid dataset or an error naming the file, never another exception; every box that
comes out lies inside its image and holds a pixel."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from occseg.data.readers import read_dataset
from occseg.geometry.boxes import BoxError, box_iou, validate_box, xywh_to_xyxy, xyxy_to_xywh
from tests.reliability.corpus import square

#: any JSON value: what a hand-edited or generated file may hold in any field (integers beyond any float too)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)

#: the errors a bad file may raise: the ones the command line reports as one line naming the file
NAMED_ERRORS = (ValueError, OSError)

PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _base_coco() -> dict:
    return {
        "images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48},
                   {"id": 2, "file_name": "2.png", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "segmentation": [square(4, 4, 20)],
             "iscrowd": 0, "area": 400},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [10, 8, 30, 20], "iscrowd": 0},
        ],
    }  # fmt: skip


def _base_kins() -> dict:
    obj = _base_coco()
    obj["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 1, "i_bbox": [4, 4, 20, 20], "a_bbox": [4, 4, 24, 20],
         "i_segm": [square(4, 4, 20)], "a_segm": [square(4, 4, 22)], "oco_id": 1, "ico_id": 1, "iscrowd": 0},
    ]  # fmt: skip
    return obj


#: (section, index, key) of every field the property tests replace; key None: the whole entry
COCO_FIELDS = (
    [("images", 0, k) for k in ("id", "file_name", "width", "height", None)]
    + [
        ("annotations", 0, k)
        for k in ("id", "image_id", "category_id", "bbox", "segmentation", "iscrowd", "area", None)
    ]
    + [("categories", 0, k) for k in ("id", "name", None)]
    + [(k, None, None) for k in ("images", "annotations", "categories")]
)
KINS_FIELDS = [("annotations", 0, k) for k in ("i_bbox", "a_bbox", "i_segm", "a_segm", "oco_id", "ico_id", None)]


def _replaced(base: dict, field: tuple, value: object) -> dict:
    obj = copy.deepcopy(base)
    section, index, key = field
    if index is None:
        obj[section] = value
    elif key is None:
        obj[section][index] = value
    else:
        obj[section][index][key] = value
    return obj


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    from tests.reliability.corpus import write_png

    root = tmp_path_factory.mktemp("images")
    for i in (1, 2):
        write_png(root / f"{i}.png", 64, 48, value=i)
    return root


def _check_read(path: Path, images: Path, fmt: str) -> None:
    """Reading ``path`` gives a valid dataset or an error naming it; boxes lie inside their images."""
    try:
        ds = read_dataset(path, images=images, fmt=fmt)
    except NAMED_ERRORS as exc:
        msg = str(exc)
        assert "\n" not in msg and path.name in msg, msg
        return
    for im in ds.images:
        for inst in im.instances:
            for box in (inst.box, inst.amodal_box):
                if box is None:
                    continue
                x1, y1, x2, y2 = box
                assert all(math.isfinite(v) for v in box)
                assert 0 <= x1 < x2 <= im.width and 0 <= y1 < y2 <= im.height, (box, im.width, im.height)


@PROFILE
@given(field=st.sampled_from(COCO_FIELDS), value=JSON_VALUES)
def test_any_json_value_in_any_coco_field(tmp_path: Path, image_folder: Path, field: tuple, value: object):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(_replaced(_base_coco(), field, value)))
    _check_read(path, image_folder, "coco")


@PROFILE
@given(field=st.sampled_from(KINS_FIELDS + COCO_FIELDS[:5]), value=JSON_VALUES)
def test_any_json_value_in_any_kins_field(tmp_path: Path, image_folder: Path, field: tuple, value: object):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(_replaced(_base_kins(), field, value)))
    _check_read(path, image_folder, "kins")


@PROFILE
@given(entries=st.lists(st.dictionaries(st.sampled_from(["box", "class"]), JSON_VALUES, max_size=2), max_size=3))
def test_any_boxes_file_is_read_or_named(tmp_path: Path, entries: list):
    from occseg.cli.segment import read_boxes_file

    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(entries))
    try:
        boxes, classes, _ = read_boxes_file(path, 64, 48)
    except NAMED_ERRORS as exc:
        assert "\n" not in str(exc) and "boxes.json" in str(exc)
        return
    assert len(boxes) == len(classes) == len(entries)
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 48


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**400), max_value=10**400)
)


@settings(max_examples=300, deadline=None)
@given(box=st.lists(NUMBERS, min_size=0, max_size=6), width=st.integers(1, 5000), height=st.integers(1, 5000))
def test_validate_box_gives_a_box_inside_the_image_or_a_box_error(box: list, width: int, height: int):
    try:
        (x1, y1, x2, y2), warning = validate_box(box, width, height, what="b")
    except BoxError as exc:
        assert str(exc).startswith("b: ")
        return
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert (warning is None) == ([float(v) for v in box] == [x1, y1, x2, y2])


FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(a=st.tuples(FINITE, FINITE, FINITE, FINITE), b=st.tuples(FINITE, FINITE, FINITE, FINITE))
def test_box_iou_is_symmetric_and_within_zero_and_one(a: tuple, b: tuple):
    iou = box_iou(a, b)
    assert 0.0 <= iou <= 1.0 and iou == box_iou(b, a)


@settings(max_examples=300, deadline=None)
@given(box=st.tuples(FINITE, FINITE, st.floats(0, 1e6), st.floats(0, 1e6)))
def test_xywh_round_trip(box: tuple):
    back = xyxy_to_xywh(xywh_to_xyxy(box))
    assert all(math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-6) for u, v in zip(back, box))
