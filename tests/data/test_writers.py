"""write_kins_json: the written structure and lossless round trips through the KINS reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import LazyMask
from occseg.data.readers import read_dataset
from occseg.data.writers import jsonable, kins_json_object, write_kins_json
from tests.conftest import need_data


def rect(h: int, w: int, y1: int, x1: int, y2: int, x2: int) -> LazyMask:
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return LazyMask.from_array(m)


def synthetic(tmp_path: Path) -> Dataset:
    img_dir = tmp_path / "images" / "val"
    a = Instance(
        id=101, category="car", box=(2.0, 3.0, 8.0, 9.0), mask=rect(20, 30, 3, 2, 9, 8),
        amodal_box=(2.0, 3.0, 12.0, 9.0), amodal_mask=rect(20, 30, 3, 2, 9, 12), cluster_id=1, order=1,
        extra={"occ_fraction": 0.4, "scenario": "composite", "score": np.float32(0.5), "mixture": np.int64(3),
               "class_scores": np.array([0.1, 0.9]), "source": ("a", "b")},
    )  # fmt: skip
    b = Instance(
        id=102,
        category="pedestrian",
        box=(8.0, 3.0, 14.0, 12.0),
        mask=rect(20, 30, 3, 8, 12, 14),
        amodal_box=(8.0, 3.0, 14.0, 12.0),
        amodal_mask=rect(20, 30, 3, 8, 12, 14),
        cluster_id=1,
        order=0,
    )
    c = Instance(id=103, category="tram", box=(0.5, 0.5, 4.25, 6.75), iscrowd=True)  # box only, unlisted class
    d = Instance(id=201, category="car", box=(1.0, 1.0, 5.0, 5.0), mask=LazyMask([[1, 1, 5, 1, 5, 5, 1, 5]], 10, 10))
    images = [
        AnnotatedImage(7, img_dir / "0007.png", 30, 20, [a, b, c], extra={"weather": "rain", "seq": [1, 2]}),
        AnnotatedImage(9, img_dir / "sub" / "0009.png", 10, 10, [d]),
    ]
    return Dataset(images, ["pedestrian", "car"], tmp_path, "kins", [], {"pedestrian": 2, "car": 4})


def assert_same(a: Dataset, b: Dataset) -> None:
    assert len(a) == len(b)
    for x, y in zip(a.images, b.images):
        assert (x.image_id, x.path, x.width, x.height) == (y.image_id, y.path, y.width, y.height)
        assert jsonable(x.extra) == y.extra
        assert len(x.instances) == len(y.instances)
        for i, j in zip(x.instances, y.instances):
            assert (i.id, i.category, i.iscrowd, i.cluster_id, i.order) == (
                j.id,
                j.category,
                j.iscrowd,
                j.cluster_id,
                j.order,
            )
            assert j.box == pytest.approx(i.box, abs=1e-9)
            assert (i.amodal_box is None) == (j.amodal_box is None)
            if i.amodal_box is not None:
                assert j.amodal_box == pytest.approx(i.amodal_box, abs=1e-9)
            for m, n in ((i.mask, j.mask), (i.amodal_mask, j.amodal_mask)):
                assert (m is None) == (n is None)
                if m is not None:
                    np.testing.assert_array_equal(m.decode(), n.decode())
            assert jsonable(i.extra) == j.extra


def test_round_trip_synthetic(tmp_path):
    ds = synthetic(tmp_path)
    out = tmp_path / "out" / "gt.json"
    write_kins_json(ds, out)
    back = read_dataset(out)
    assert back.format == "kins"
    assert_same(ds, back)
    assert back.categories == ["pedestrian", "car", "tram"]
    assert back.category_ids == {"pedestrian": 2, "car": 4, "tram": 5}
    assert any("2 of 2 image files not found" in w for w in back.warnings)  # images need not exist


def test_written_structure(tmp_path):
    ds = synthetic(tmp_path)
    out = tmp_path / "out" / "gt.json"
    write_kins_json(ds, out)
    obj = json.loads(out.read_text())
    assert obj["info"] == {"format": "occseg-kins", "version": 1, "image_root": "../images/val"}
    assert [im["file_name"] for im in obj["images"]] == ["0007.png", "sub/0009.png"]
    assert obj["images"][0] == {"id": 7, "file_name": "0007.png", "width": 30, "height": 20, "weather": "rain",
                                "seq": [1, 2]}  # fmt: skip
    assert obj["categories"] == [{"id": 2, "name": "pedestrian"}, {"id": 4, "name": "car"}, {"id": 5, "name": "tram"}]
    a, b, c, d = obj["annotations"]
    assert (a["id"], a["image_id"], a["category_id"], a["iscrowd"]) == (101, 7, 4, 0)
    assert a["i_bbox"] == [2.0, 3.0, 6.0, 6.0] and a["a_bbox"] == [2.0, 3.0, 10.0, 6.0]
    assert a["i_area"] == 36 and a["a_area"] == 60
    assert a["i_segm"]["size"] == [20, 30] and isinstance(a["i_segm"]["counts"], str)
    assert (a["oco_id"], a["ico_id"]) == (1, 1)
    assert a["score"] == 0.5 and a["mixture"] == 3 and a["class_scores"] == [0.1, 0.9] and a["source"] == ["a", "b"]
    assert b["ico_id"] == 0
    # a box-only instance: no masks, no amodal fields, no order
    assert set(c) == {"id", "image_id", "category_id", "iscrowd", "i_bbox"}
    assert c["iscrowd"] == 1 and c["category_id"] == 5 and c["i_bbox"] == [0.5, 0.5, 3.75, 6.25]
    assert "a_segm" not in d and "oco_id" not in d and d["i_area"] == 16


def test_explicit_image_root(tmp_path):
    ds = synthetic(tmp_path)
    obj = kins_json_object(ds, tmp_path / "ann" / "x.json", image_root=tmp_path / "images")
    assert obj["info"]["image_root"] == "../images"
    assert [im["file_name"] for im in obj["images"]] == ["val/0007.png", "val/sub/0009.png"]
    write_kins_json(ds, tmp_path / "ann" / "x.json", image_root=tmp_path / "images")
    assert_same(ds, read_dataset(tmp_path / "ann" / "x.json"))


def test_atomic_and_unserialisable_extra(tmp_path):
    ds = synthetic(tmp_path)
    out = tmp_path / "gt.json"
    write_kins_json(ds, out)
    before = out.read_bytes()
    ds.images[0].instances[0].extra["bad"] = object()
    with pytest.raises(ValueError, match=r"image 7, instance 101, extra 'bad'"):
        write_kins_json(ds, out)
    assert out.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["gt.json"]  # no temporary left behind


def test_predictions_keep_gt_ids_and_scores(tmp_path):
    ds = synthetic(tmp_path)
    for im in ds.images:
        for k, inst in enumerate(im.instances):
            inst.extra = {"score": 0.9 - 0.1 * k}
    write_kins_json(ds, tmp_path / "pred.json")
    back = read_dataset(tmp_path / "pred.json", fmt="kins")
    assert [(i.id, i.extra["score"]) for i in back.images[0].instances] == [(101, 0.9), (102, 0.8), (103, 0.7)]


def test_round_trip_cocoa(shared_data, tmp_path):
    ds = read_dataset(shared_data / "cocoa-demo")
    write_kins_json(ds, tmp_path / "cocoa_kins.json")
    back = read_dataset(tmp_path / "cocoa_kins.json")
    assert back.warnings == []  # the images are found through info.image_root
    assert back.num_instances() == 48
    assert_same(ds, back)
    assert back.categories == ds.categories
    fractions = [i.occlusion_fraction() for im in back.images for i in im.instances]
    assert fractions == [i.occlusion_fraction() for im in ds.images for i in im.instances]


@pytest.mark.parametrize("folder", ["coco-tiny", "kitti-sample"])
def test_round_trip_real(shared_data, tmp_path, folder):
    need_data(shared_data, folder)
    ds = read_dataset(shared_data / folder)
    write_kins_json(ds, tmp_path / "out.json")
    back = read_dataset(tmp_path / "out.json")
    assert back.warnings == []
    assert_same(ds, back)
