"""COCO instances JSON (occseg.data.readers.coco): the shared COCO samples, constructed files and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from occseg.data.masks import rle_to_json
from occseg.data.readers import DatasetFormatError, detect_format, read_dataset
from tests.conftest import need_data
from tests.data.readers.builders import ann, coco_obj, write_json, write_png


def test_coco128_as_coco_json(shared_data):
    path = shared_data / "coco128-seg" / "annotations" / "instances_train2017.json"
    t0 = time.perf_counter()
    ds = read_dataset(path)
    elapsed = time.perf_counter() - t0
    assert ds.format == "coco" and detect_format(path) == "coco"
    assert len(ds) == 126 and ds.num_instances() == 929
    assert ds.instances_per_class()["person"] == 254
    assert ds.warnings == []
    # file_name is bare: the images are found in images/train2017 (standard layout)
    assert all(im.path.parent == shared_data.resolve() / "coco128-seg" / "images" / "train2017" for im in ds.images)
    assert ds.category_id("person") == 1 and ds.category_id("toothbrush") == 80
    assert all(i.mask is not None and i.mask._rle is None for im in ds.images for i in im.instances)
    assert elapsed < 2.0


def test_coco_tiny_standard_layout_with_crowd_rle(shared_data):
    need_data(shared_data, "coco-tiny")
    ds = read_dataset(shared_data / "coco-tiny")
    assert ds.format == "coco" and len(ds) == 80 and ds.num_instances() == 705
    assert ds.instances_per_class()["person"] == 143
    assert ds.warnings == []
    assert all(im.path.parent.name == "train2017" and im.path.is_file() for im in ds.images)
    crowd = [(im, i) for im in ds.images for i in im.instances if i.iscrowd]
    assert len(crowd) == 6
    im, inst = crowd[0]
    m = inst.mask.decode()
    assert m.shape == (im.height, im.width) and m.any()
    # COCO extra image keys are kept
    assert "coco_url" in ds.images[0].extra


def test_coco_declared_on_a_kins_file(tmp_path):
    obj = coco_obj([{"id": 1, "image_id": 1, "category_id": 3, "i_bbox": [1, 1, 4, 4], "a_bbox": [1, 1, 5, 5]}])
    path = write_json(tmp_path / "k.json", obj)
    assert read_dataset(path).format == "kins"
    with pytest.raises(DatasetFormatError, match="not a COCO instances file.*KINS"):
        read_dataset(path, fmt="coco")


def test_coco_layouts(tmp_path):
    obj = coco_obj([ann(1, [1, 2, 10, 5])])
    # annotations/instances_val.json beside val/
    write_png(tmp_path / "a" / "val" / "a.png", 40, 30)
    write_png(tmp_path / "a" / "val" / "b.png", 40, 30)
    ds = read_dataset(write_json(tmp_path / "a" / "annotations" / "instances_val.json", obj))
    assert ds.images[0].path == (tmp_path / "a" / "val" / "a.png").resolve() and ds.warnings == []
    # ... beside images/val/
    write_png(tmp_path / "b" / "images" / "val" / "a.png", 40, 30)
    write_png(tmp_path / "b" / "images" / "val" / "b.png", 40, 30)
    ds = read_dataset(write_json(tmp_path / "b" / "annotations" / "instances_val.json", obj))
    assert ds.images[1].path == (tmp_path / "b" / "images" / "val" / "b.png").resolve() and ds.warnings == []
    # the folder is given
    ds = read_dataset(tmp_path / "b")
    assert ds.format == "coco" and ds.num_instances() == 1
    # elsewhere: images=DIR
    ds = read_dataset(write_json(tmp_path / "c" / "gt.json", obj), images=tmp_path / "a" / "val")
    assert ds.images[0].path == (tmp_path / "a" / "val" / "a.png").resolve() and ds.warnings == []
    # not found: still read (sizes are in the JSON), with warnings
    ds = read_dataset(tmp_path / "c" / "gt.json")
    assert ds.num_instances() == 1
    assert any("(give the folder: --images DIR, images=DIR)" in w for w in ds.warnings)
    assert any("2 of 2 image files not found" in w for w in ds.warnings)
    a_file = tmp_path / "a" / "val" / "a.png"
    with pytest.raises(FileNotFoundError, match=f"image folder {a_file} is a file, not a folder \\(given for "):
        read_dataset(tmp_path / "c" / "gt.json", images=a_file)
    with pytest.raises(FileNotFoundError, match=f"image folder not found: {tmp_path / 'nope'} \\(given for "):
        read_dataset(tmp_path / "c" / "gt.json", images=tmp_path / "nope")


def test_coco_fields(tmp_path):
    rle = rle_to_json(mask_utils.encode(np.asfortranarray(np.eye(30, 40, dtype=np.uint8))))
    obj = coco_obj([
        ann(5, [1, 2, 10, 5], segmentation=[[1, 2, 11, 2, 11, 7, 1, 7]], area=50.0, score=0.5),
        ann(6, None, category_id=1, image_id=2, segmentation=rle, iscrowd=1),
        ann(7, [3, 3, 4, 4], segmentation=[]),
    ])  # fmt: skip
    ds = read_dataset(write_json(tmp_path / "x.json", obj), images=tmp_path)
    assert ds.categories == ["person", "car"] and ds.category_ids == {"person": 1, "car": 3}
    a, c = ds.images[0].instances
    assert (a.id, a.category, a.box, a.iscrowd) == (5, "car", (1.0, 2.0, 11.0, 7.0), False)
    assert a.extra == {"score": 0.5}  # 'area' is derived from the mask and dropped
    assert a.mask.area() == 50
    assert c.mask is None and c.box == (3.0, 3.0, 7.0, 7.0)
    (b,) = ds.images[1].instances
    assert b.iscrowd and b.category == "person"
    assert b.box == (0.0, 0.0, 30.0, 30.0)  # no bbox: from the RLE
    assert b.mask.area() == 30
    assert ds.images[0].extra == {"license": 3}


def test_coco_without_images(tmp_path):
    path = write_json(tmp_path / "noimages.json", {"annotations": [], "categories": []})
    with pytest.raises(DatasetFormatError, match=r"noimages\.json: not a COCO instances file: no top-level 'images'"):
        read_dataset(path, fmt="coco")


def test_unknown_image_id(tmp_path):
    path = write_json(tmp_path / "g.json", coco_obj([ann(1, [1, 1, 5, 5]), ann(77, [1, 1, 5, 5], image_id=99)]))
    with pytest.raises(DatasetFormatError, match=r"g\.json: annotation 77 refers to unknown image id 99"):
        read_dataset(path)


def test_unknown_category_id(tmp_path):
    path = write_json(tmp_path / "g.json", coco_obj([ann(12, [1, 1, 5, 5], category_id=2)]))
    with pytest.raises(DatasetFormatError, match=r"g\.json: annotation 12 refers to unknown category id 2"):
        read_dataset(path)


def test_rle_of_the_wrong_size(tmp_path):
    rle = rle_to_json(mask_utils.encode(np.asfortranarray(np.ones((5, 5), np.uint8))))
    path = write_json(tmp_path / "g.json", coco_obj([ann(4, [1, 1, 3, 3], segmentation=rle)]))
    with pytest.raises(DatasetFormatError, match=r"annotation 4.*RLE size \[5, 5\] does not match.*\[30, 40\]"):
        read_dataset(path)


def test_bad_boxes_are_skipped_or_clipped_with_warnings(tmp_path):
    obj = coco_obj([
        ann(1, [1, 1, 5, 5]),  # fine
        ann(2, [3, 3, 0, 4]),  # zero width
        ann(3, [10, 10, -4, 5]),  # inverted (negative width)
        ann(4, [30, 20, 20, 20], image_id=2),  # partly outside the 40x30 image: clipped
        ann(5, [100, 100, 5, 5], image_id=2),  # entirely outside
        ann(6, [1, 2, 3], image_id=2),  # not four numbers
    ])  # fmt: skip
    ds = read_dataset(write_json(tmp_path / "boxes.json", obj), images=tmp_path)
    kept = {i.id: i for im in ds.images for i in im.instances}
    assert sorted(kept) == [1, 4]
    assert kept[4].box == (30.0, 20.0, 40.0, 30.0)
    text = "\n".join(ds.warnings)

    def warning(ann_id: int) -> str:
        (w,) = [w for w in ds.warnings if f"annotation {ann_id}" in w]
        return w

    assert "boxes.json: image 1 (a.png), annotation 2" in warning(2) and "zero-area" in warning(2)
    assert "image 1 (a.png), annotation 3" in warning(3) and "inverted" in warning(3)
    assert "image 2 (b.png), annotation 4" in warning(4) and "clipped" in warning(4)
    assert "image 2 (b.png), annotation 5" in warning(5) and "outside" in warning(5) and "skipped" in warning(5)
    assert "annotation 6" in text and "4 numbers" in warning(6)


def test_polygons_are_kept_compact_and_read_as_before(tmp_path) -> None:
    # a large file's coordinates are not held as Python floats: the reader keeps them in 8-byte arrays while it
    # parses (all floats or all integers; anything else stays a list for the checks to name), the masks are the
    # same, and fields kept as they are come back as plain JSON lists
    import json
    from array import array

    from occseg.data.readers import read_dataset
    from occseg.data.readers.common import compact_polygon, compact_polygons, plain_json

    assert compact_polygon([1.5, 2.0, 3.25]).typecode == "d"
    assert compact_polygon([1, 2, 3]).typecode == "q" and list(compact_polygon([1, 2, 3])) == [1, 2, 3]
    for kept in ([1, 2.5, 3], [True, 2, 3], [1, "a", 3], [2**70, 1, 1]):
        assert compact_polygon(kept) is kept
    hooked = compact_polygons({"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 1.0]], "bbox": [1.0, 2.0, 3.0, 4.0]})
    assert isinstance(hooked["segmentation"][0], array) and isinstance(hooked["bbox"], list)
    assert plain_json(hooked["segmentation"]) == [[1.0, 2.0, 3.0, 4.0, 5.0, 1.0]]
    poly = [10.5, 10.0, 60.0, 12.0, 55.25, 70.0, 12.0, 65.0]
    obj = {
        "images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 90}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 60], "segmentation": [poly]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 60],
             "segmentation": [[int(v) for v in poly]], "segm_copy": {"segmentation": [poly]}},
        ],
    }  # fmt: skip
    (tmp_path / "gt.json").write_text(json.dumps(obj))
    ds = read_dataset(tmp_path / "gt.json", images=tmp_path, fmt="coco")
    a, b = ds.images[0].instances
    assert isinstance(a.mask._segm[0], array) and isinstance(b.mask._segm[0], array)
    from pycocotools import mask as mask_utils

    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], 90, 80))).astype(bool)
    assert (a.mask.decode() == expected).all()
    assert b.extra["segm_copy"] == {"segmentation": [poly]}  # another record's polygons, written back as JSON
    json.dumps(b.extra)
