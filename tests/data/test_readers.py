"""Dataset readers: the real folders in the shared data, small constructed files, and bad input."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from occseg.data.annotation import Dataset, image_order_matrix
from occseg.data.masks import LazyMask, rle_to_json
from occseg.data.readers import FORMATS, DatasetFormatError, detect_format, read_dataset
from occseg.data.readers.names import COCO80_NAMES
from occseg.data.readers.yolo import parse_yaml_names, read_yolo
from tests.conftest import need_data

# ---------------------------------------------------------------------------------------------- helpers


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_png(path: Path, width: int, height: int) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (90, 120, 30)).save(path)
    return path


def coco_obj(annotations: list[dict], *, width: int = 40, height: int = 30) -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": width, "height": height, "license": 3},
                   {"id": 2, "file_name": "b.png", "width": width, "height": height}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": annotations,
    }  # fmt: skip


def ann(ann_id: int, bbox, *, image_id: int = 1, category_id: int = 3, **kw) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": 0, **kw}


def mask_iou(a: LazyMask, b: LazyMask) -> float:
    return float(mask_utils.iou([a.rle], [b.rle], [0])[0, 0])


def by_image(ds: Dataset) -> dict:
    return {im.image_id: im for im in ds.images}


# ------------------------------------------------------------------------------------------ coco128-seg


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


def test_coco128_yolo_and_coco_agree_per_image(shared_data):
    yolo = read_dataset(shared_data / "coco128-seg", fmt="yolo")
    coco = read_dataset(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json", fmt="coco")
    coco_images = by_image(coco)
    assert set(by_image(yolo)) == set(coco_images)
    ious = []
    for im in yolo.images:
        other = coco_images[im.image_id]
        assert im.path == other.path and (im.width, im.height) == (other.width, other.height)
        assert Counter(i.category for i in im.instances) == Counter(i.category for i in other.instances)
        unmatched = list(other.instances)
        for inst in im.instances:  # nearest box of the same class
            same = [o for o in unmatched if o.category == inst.category]
            best = min(same, key=lambda o: np.abs(np.subtract(o.box, inst.box)).max())
            unmatched.remove(best)
            assert np.abs(np.subtract(best.box, inst.box)).max() <= 1.0
            ious.append(mask_iou(inst.mask, best.mask))
    assert len(ious) == 929
    assert min(ious) >= 0.9  # the smallest objects lose most to the 6-decimal YOLO coordinates
    assert float(np.mean(ious)) >= 0.99


def test_detect_format_of_the_shared_folders(shared_data):
    need_data(shared_data, "coco128-seg", "coco-tiny", "cocoa-demo", "kitti-sample")
    assert detect_format(shared_data / "coco128-seg") == "yolo"
    assert detect_format(shared_data / "coco-tiny") == "coco"
    assert detect_format(shared_data / "cocoa-demo") == "cocoa"
    assert detect_format(shared_data / "cocoa-demo" / "2.json") == "cocoa"
    assert detect_format(shared_data / "kitti-sample") == "kitti"


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


# ------------------------------------------------------------------------------------------- cocoa-demo


def test_cocoa_demo_folder(shared_data):
    ds = read_dataset(shared_data / "cocoa-demo")
    assert ds.format == "cocoa" and len(ds) == 5
    assert ds.num_instances() == 48
    assert sorted(len(im.instances) for im in ds.images) == [2, 6, 10, 11, 19]
    assert ds.warnings == []
    assert "phone" in ds.categories and "phone " not in ds.categories  # free text, trimmed
    ids = [i.id for im in ds.images for i in im.instances]
    assert len(set(ids)) == 48
    for im in ds.images:
        assert im.path.is_file() and im.path.stem == Path(im.path).stem
        orders = [i.order for i in im.instances]
        assert min(orders) == 0  # 0 = front
        for inst in im.instances:
            assert inst.extra["order"] == inst.order + 1  # the original 1-based value is kept
            assert {"isStuff", "occlude_rate", "name"} <= inst.extra.keys()
            assert inst.amodal_mask is not None and inst.mask is not None
    sizes = {im.image_id: (im.width, im.height) for im in ds.images}
    assert sizes[188819] == (640, 480)
    assert sorted(sizes.values()).count((480, 640)) == 1  # the portrait image, from its header


def test_cocoa_visible_plus_invisible_is_amodal(shared_data):
    ds = read_dataset(shared_data / "cocoa-demo")
    occluded = 0
    for im in ds.images:
        raw = json.loads(im.path.with_suffix(".json").read_text())["regions"]
        for inst in im.instances:
            region = raw[inst.extra["region_index"]]
            amodal = inst.amodal_mask.decode()
            if "invisible_mask" not in region:
                assert inst.mask is inst.amodal_mask
                continue
            occluded += 1
            visible = inst.mask.decode()
            invisible = LazyMask.from_rle(region["invisible_mask"]).decode()
            # measured: the COCOA RLEs partition the rasterised amodal polygon exactly (0 pixels differ)
            assert int(np.logical_xor(visible | invisible, amodal).sum()) == 0
            assert not (visible & invisible).any()
            assert inst.occlusion_fraction() == pytest.approx(region["occlude_rate"], abs=1e-3)
    assert occluded == 24


def test_cocoa_order_agrees_with_mask_order(shared_data):
    ds = read_dataset(shared_data / "cocoa-demo")
    pairs = 0
    for im in ds.images:
        matrix = image_order_matrix(im)
        orders = [i.order for i in im.instances]
        for i in range(len(orders)):
            for j in range(len(orders)):
                if matrix[i, j] == 1:  # i in front of j
                    pairs += 1
                    assert orders[i] < orders[j], (im.image_id, i, j)
    assert pairs == 50  # overlapping pairs with a nonzero relation, each counted once


def test_cocoa_single_file_and_images_elsewhere(shared_data, tmp_path):
    ds = read_dataset(shared_data / "cocoa-demo" / "3.json")
    assert len(ds) == 1 and ds.num_instances() == 19 and ds.images[0].image_id == 6608
    # per-image JSONs in another folder, images given explicitly
    for k in (1, 2):
        (tmp_path / f"{k}.json").write_bytes((shared_data / "cocoa-demo" / f"{k}.json").read_bytes())
    ds = read_dataset(tmp_path, images=shared_data / "cocoa-demo")
    assert ds.format == "cocoa" and ds.num_instances() == 13 and ds.warnings == []
    assert all(im.path.parent == (shared_data / "cocoa-demo").resolve() for im in ds.images)
    # without the images: the size comes from the RLEs and the missing files are a warning
    ds = read_dataset(tmp_path / "1.json")
    assert (ds.images[0].width, ds.images[0].height) == (640, 480)
    assert any("not found" in w for w in ds.warnings)


def test_cocoa_collection_file(shared_data, tmp_path):
    """The original COCOA layout: one JSON with images and annotations holding each image's regions."""
    images, annotations = [], []
    for k in (1, 5):
        obj = json.loads((shared_data / "cocoa-demo" / f"{k}.json").read_text())
        images.append({"id": obj["image_id"], "file_name": f"{k}.jpg", "width": 640, "height": 480})
        annotations.append({"id": obj["id"], "image_id": obj["image_id"], "regions": obj["regions"]})
    path = write_json(tmp_path / "COCO_amodal_val2014.json", {"images": images, "annotations": annotations})
    assert detect_format(path) == "cocoa"
    ds = read_dataset(path, images=shared_data / "cocoa-demo")
    assert ds.format == "cocoa" and ds.warnings == []
    assert [len(im.instances) for im in ds.images] == [2, 6]
    assert ds.images[0].extra["cocoa_id"] == annotations[0]["id"]
    ref = read_dataset(shared_data / "cocoa-demo" / "5.json").images[0]
    for inst, r in zip(ds.images[1].instances, ref.instances):
        assert (inst.category, inst.box, inst.order) == (r.category, r.box, r.order)
        np.testing.assert_array_equal(inst.mask.decode(), r.mask.decode())


# --------------------------------------------------------------------------------------------------- KITTI


def test_kitti_sample(shared_data):
    need_data(shared_data, "kitti-sample")
    ds = read_dataset(shared_data / "kitti-sample")
    assert ds.format == "kitti" and len(ds) == 3
    assert ds.num_instances() == 6  # the 4 DontCare lines are skipped
    assert ds.instances_per_class() == {"Car": 2, "Cyclist": 1, "Misc": 1, "Pedestrian": 1, "Truck": 1}
    im0 = by_image(ds)[0]
    assert (im0.width, im0.height) == (1224, 370)  # KITTI frames differ slightly in size
    ped = im0.instances[0]
    assert ped.category == "Pedestrian" and ped.box == (712.40, 143.00, 810.73, 307.92)
    assert ped.mask is None and ped.amodal_mask is None
    assert ped.extra["truncated"] == 0.0 and ped.extra["occluded"] == 0
    assert ped.extra["dimensions"] == [1.89, 0.48, 1.2]
    cyclist = next(i for i in by_image(ds)[1].instances if i.category == "Cyclist")
    assert cyclist.extra["occluded"] == 3


def test_kitti_bad_line(tmp_path):
    write_png(tmp_path / "image_2" / "000007.png", 50, 20)
    (tmp_path / "label_2").mkdir()
    (tmp_path / "label_2" / "000007.txt").write_text("Car 0.0 0 0.1 1 2 3\n")
    with pytest.raises(DatasetFormatError, match=r"000007.txt line 1: .*15"):
        read_dataset(tmp_path)


# ---------------------------------------------------------------------------------------------------- KINS


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


def test_coco_declared_on_a_kins_file(tmp_path):
    obj = coco_obj([{"id": 1, "image_id": 1, "category_id": 3, "i_bbox": [1, 1, 4, 4], "a_bbox": [1, 1, 5, 5]}])
    path = write_json(tmp_path / "k.json", obj)
    assert read_dataset(path).format == "kins"
    with pytest.raises(DatasetFormatError, match="not a COCO instances file.*KINS"):
        read_dataset(path, fmt="coco")


# ---------------------------------------------------------------------------------------- COCO (constructed)


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


# -------------------------------------------------------------------------------------------- bad input


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [],\n "annotations": [,]\n}')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON .*line 2"):
        read_dataset(path)


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


def test_unknown_format_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'voc'"):
        read_dataset(tmp_path, fmt="voc")
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        read_dataset(tmp_path / "nothing_here")
    with pytest.raises(DatasetFormatError, match="cannot tell the dataset format"):
        read_dataset(tmp_path)
    assert set(FORMATS) == {"coco", "yolo", "kins", "cocoa", "kitti"}


def test_cocoa_declared_on_a_coco_file(tmp_path):
    path = write_json(tmp_path / "c.json", coco_obj([ann(1, [1, 1, 5, 5])]))
    with pytest.raises(DatasetFormatError, match=r"c\.json: not a COCOA file"):
        read_dataset(path, fmt="cocoa")


# ---------------------------------------------------------------------------------------------------- YOLO


def make_yolo(root: Path, lines: dict[str, str], *, size=(100, 50)) -> Path:
    for stem, text in lines.items():
        write_png(root / "images" / "train" / f"{stem}.png", *size)
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    return root


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
