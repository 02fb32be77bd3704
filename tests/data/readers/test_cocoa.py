"""COCOA amodal JSON (occseg.data.readers.cocoa): the shared demo photos, single and collection files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from occseg.data.annotation import image_order_matrix
from occseg.data.masks import LazyMask
from occseg.data.readers import DatasetFormatError, detect_format, read_dataset
from tests.data.readers.builders import ann, coco_obj, write_json


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


def test_cocoa_declared_on_a_coco_file(tmp_path):
    path = write_json(tmp_path / "c.json", coco_obj([ann(1, [1, 1, 5, 5])]))
    with pytest.raises(DatasetFormatError, match=r"c\.json: not a COCOA file"):
        read_dataset(path, fmt="cocoa")
