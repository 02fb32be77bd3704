"""KINS JSON, 2019 and 2020 keys (occseg.data.readers.kins)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from occseg.data.masks import LazyMask, rle_to_json
from occseg.data.readers import DatasetFormatError, detect_format, read_dataset
from tests.data.readers.builders import ann, by_image, coco_obj, write_json, write_png


def kins_from_cocoa(cocoa_dir: Path, style: str) -> dict:
    """A KINS-shaped JSON built from the COCOA demo regions (amodal polygon + visible RLE)."""
    images, annotations = [], []
    next_id = 1
    for k in (1, 2, 3):
        obj = json.loads((cocoa_dir / f"{k}.json").read_text())
        h, w = (480, 640) if k != 2 else (427, 640)
        images.append({"id": k, "file_name": f"{k}.jpg", "width": w, "height": h})
        for order, r in enumerate(obj["regions"]):
            poly = [r["segmentation"]]
            amodal = mask_utils.merge(mask_utils.frPyObjects(poly, h, w))
            visible = r.get("visible_mask") or rle_to_json(amodal)
            a_box = [float(v) for v in mask_utils.toBbox(amodal)]
            i_box = [float(v) for v in mask_utils.toBbox(LazyMask.from_rle(visible).rle)]
            rec = {"id": next_id, "image_id": k, "category_id": 4 if r["isStuff"] == 0 else 8, "iscrowd": 0}
            if style == "2020":
                rec.update(a_bbox=a_box, i_bbox=i_box, a_segm=poly, i_segm=visible, oco_id=k, ico_id=order)
            else:
                rec.update(bbox=a_box, segmentation=poly, inmodal_bbox=i_box, inmodal_seg=visible, area=1.0)
            annotations.append(rec)
            next_id += 1
    categories = [{"id": 1, "name": "cyclist"}, {"id": 4, "name": "car"}, {"id": 8, "name": "misc"}]
    return {"images": images, "annotations": annotations, "categories": categories}


@pytest.mark.parametrize("style", ["2020", "2019"])
def test_kins_both_key_styles(shared_data, tmp_path, style):
    cocoa_dir = shared_data / "cocoa-demo"
    obj = kins_from_cocoa(cocoa_dir, style)
    path = write_json(tmp_path / "annotations" / f"kins_{style}.json", obj)
    assert detect_format(path) == "kins"
    ds = read_dataset(path, images=cocoa_dir)
    assert ds.format == "kins" and len(ds) == 3 and ds.num_instances() == 2 + 11 + 19
    assert ds.categories == ["cyclist", "car", "misc"] and ds.category_id("car") == 4
    assert ds.warnings == []
    cocoa = by_image(read_dataset(cocoa_dir))
    for im, cocoa_id in zip(ds.images, (188819, 343254, 6608)):
        ref = cocoa[cocoa_id]
        assert im.path == ref.path
        for inst, r in zip(im.instances, ref.instances):
            assert inst.category == ("misc" if r.extra["isStuff"] else "car")
            np.testing.assert_array_equal(inst.amodal_mask.decode(), r.amodal_mask.decode())
            np.testing.assert_array_equal(inst.mask.decode(), r.mask.decode())
            # KINS boxes here are the rasterised masks' boxes, COCOA's the polygon extents
            assert inst.box == pytest.approx(r.box, abs=1.5)
            assert inst.amodal_box == pytest.approx(r.amodal_box, abs=1.5)
            assert inst.occlusion_fraction() == pytest.approx(r.occlusion_fraction())
            if style == "2020":
                assert (inst.cluster_id, inst.order) == (im.image_id, r.order)
                assert inst.extra == {}
            else:
                assert inst.cluster_id is None and inst.order is None


def test_kins_kitti_layout_and_extra_keys(tmp_path):
    write_png(tmp_path / "training" / "image_2" / "000001.png", 60, 40)
    vis = rle_to_json(mask_utils.encode(np.asfortranarray(np.pad(np.ones((10, 10), np.uint8), ((5, 25), (5, 45))))))
    obj = {
        "images": [{"id": 1, "file_name": "000001.png", "width": 60, "height": 40, "weather": "sunny"}],
        "categories": [{"id": 4, "name": "car"}],
        "annotations": [{"id": 9, "image_id": 1, "category_id": 4, "iscrowd": 0, "i_bbox": [5, 5, 10, 10],
                         "i_segm": vis, "a_bbox": [5, 5, 20, 10], "a_segm": [[5, 5, 25, 5, 25, 15, 5, 15]],
                         "i_area": 100, "a_area": 200, "oco_id": 1, "ico_id": 2, "occ_fraction": 0.5,
                         "score": 0.75}],
    }  # fmt: skip
    path = write_json(tmp_path / "annotations" / "update_train_2020.json", obj)
    ds = read_dataset(path)
    assert ds.warnings == []
    im = ds.images[0]
    assert im.path == (tmp_path / "training" / "image_2" / "000001.png").resolve()
    assert im.extra == {"weather": "sunny"}
    inst = im.instances[0]
    assert (inst.id, inst.category, inst.cluster_id, inst.order) == (9, "car", 1, 2)
    assert inst.box == (5.0, 5.0, 15.0, 15.0) and inst.amodal_box == (5.0, 5.0, 25.0, 15.0)
    assert inst.extra == {"occ_fraction": 0.5, "score": 0.75}  # areas are derived, not kept
    assert inst.mask.area() == 100 and inst.amodal_mask.area() == 200
    assert inst.occlusion_fraction() == 0.5


def test_kins_declared_on_a_coco_file(tmp_path):
    path = write_json(tmp_path / "c.json", coco_obj([ann(1, [1, 1, 5, 5])]))
    with pytest.raises(DatasetFormatError, match=r"c\.json: not a KINS file"):
        read_dataset(path, fmt="kins")
