"""YOLO-seg folders (occseg.data.readers.yolo): coco128-seg, constructed folders, names files and bad lines."""

from __future__ import annotations

import time

import numpy as np
import pytest

from occseg.data.masks import LazyMask
from occseg.data.readers import DatasetFormatError, read_dataset
from occseg.data.readers.names import COCO80_NAMES
from occseg.data.readers.yolo import parse_yaml_names, read_yolo
from tests.data.readers.builders import by_image, make_yolo, write_png


def test_coco128_as_yolo(shared_data):
    t0 = time.perf_counter()
    ds = read_dataset(shared_data / "coco128-seg")
    elapsed = time.perf_counter() - t0
    assert ds.format == "yolo"
    assert len(ds) == 126 and ds.num_instances() == 929
    per_class = ds.instances_per_class()
    assert (per_class["person"], per_class["car"], per_class["truck"], per_class["bus"]) == (254, 46, 12, 7)
    assert len(per_class) == 71
    assert ds.categories == list(COCO80_NAMES)
    # the two label files without an image are reported, not fatal
    assert any("000000000656" in w for w in ds.warnings) and any("000000000659" in w for w in ds.warnings)
    assert all(im.path.is_absolute() and im.path.is_file() for im in ds.images)
    im9 = by_image(ds)[9]
    assert (im9.width, im9.height) == (640, 480)
    assert im9.instances[0].category == "bowl"
    np.testing.assert_allclose(im9.instances[0].box, (1.08, 187.69, 612.67, 473.53), atol=1e-3)
    # masks stay lazy: nothing was rasterised while reading
    inst = im9.instances[0]
    assert isinstance(inst.mask, LazyMask) and inst.mask._rle is None
    assert elapsed < 2.0


def test_yolo_boxes_polygons_and_names_file(tmp_path):
    root = make_yolo(tmp_path, {"12": "0 0.5 0.5 0.5 0.4\n\n1 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6\n", "13": ""})
    (root / "names.txt").write_text("dog\ncat\n")
    ds = read_dataset(root)
    assert ds.format == "yolo" and ds.categories == ["dog", "cat"]
    assert [im.image_id for im in ds.images] == [12, 13]
    box_only, poly = ds.images[0].instances
    assert (box_only.category, box_only.box, box_only.mask) == ("dog", (25.0, 15.0, 75.0, 35.0), None)
    assert poly.category == "cat"
    assert poly.box == pytest.approx((10.0, 10.0, 30.0, 30.0))
    assert poly.mask.area() == pytest.approx(400, abs=45)
    assert ds.images[1].instances == []  # an empty label file: an image without objects
    assert ds.warnings == []


def test_yolo_default_names_and_missing_image(tmp_path):
    root = make_yolo(tmp_path, {"a": "2 0.5 0.5 0.2 0.2\n"})
    (root / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    write_png(root / "images" / "train" / "nolabel.png", 10, 10)
    ds = read_dataset(root)
    assert ds.images[0].instances[0].category == "car" and ds.num_instances() == 1
    assert any("ghost.txt" in w and "no image" in w for w in ds.warnings)
    assert any("nolabel" in w and "no label file" in w for w in ds.warnings)


@pytest.mark.parametrize(
    "yaml_text",
    ["path: .\nnames: ['dog', \"cat\"]\n", "names:\n  - dog\n  - cat\nnc: 2\n", "names:\n- dog\n- cat\n",
     "train: x\nnames:\n  0: dog\n  1: cat\n", "names: {0: dog, 1: cat}\n"],
)  # fmt: skip
def test_yolo_yaml_names(tmp_path, yaml_text):
    assert parse_yaml_names(yaml_text) == ["dog", "cat"]
    root = make_yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n"})
    (root / "data.yaml").write_text(yaml_text)
    assert read_dataset(root).images[0].instances[0].category == "cat"


def test_yolo_names_argument(tmp_path):
    root = make_yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n"})
    assert read_yolo(root, names=["x", "y"]).images[0].instances[0].category == "y"


def test_yolo_bad_lines(tmp_path):
    root = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2\n0 0.1 0.1 0.9 0.1 0.9 0.9 0.1 0.9 0.5\n0 0.5 0.5 0.2 0.2\n"})
    ds = read_dataset(root)
    assert ds.num_instances() == 1
    assert sum("expected 4 numbers" in w for w in ds.warnings) == 2
    assert any("a.txt line 1" in w for w in ds.warnings)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n85 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetFormatError, match=r"a\.txt line 2: unknown class 85"):
        read_dataset(root)
    (root / "labels" / "train" / "a.txt").write_text("person 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetFormatError, match=r"a\.txt line 1: not a YOLO label line"):
        read_dataset(root)


def test_yolo_box_partly_outside_is_clipped(tmp_path):
    root = make_yolo(tmp_path, {"a": "0 0.95 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\n"})
    ds = read_dataset(root)
    (inst,) = ds.images[0].instances
    assert inst.box == pytest.approx((85.0, 20.0, 100.0, 30.0))
    assert any("a.txt line 1" in w and "clipped" in w for w in ds.warnings)
    assert any("a.txt line 2" in w and "outside" in w for w in ds.warnings)
