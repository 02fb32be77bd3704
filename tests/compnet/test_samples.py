"""Training samples carry boxes and classes only: class merging, height filter, crowd, amodal boxes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from occseg.compnet.samples import BoxSample, box_samples
from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import LazyMask


def _mask(h: int, w: int, box) -> LazyMask:
    m = np.zeros((h, w), dtype=bool)
    x1, y1, x2, y2 = (int(v) for v in box)
    m[y1:y2, x1:x2] = True
    return LazyMask.from_array(m)


def _inst(id_: int, cat: str, box, *, amodal=None, crowd: bool = False) -> Instance:
    return Instance(
        id=id_,
        category=cat,
        box=box,
        mask=_mask(120, 160, box),
        amodal_box=amodal,
        amodal_mask=_mask(120, 160, amodal) if amodal else None,
        iscrowd=crowd,
    )


@pytest.fixture
def dataset() -> Dataset:
    a = AnnotatedImage(
        image_id=10,
        path=Path("/data/a.jpg"),
        width=160,
        height=120,
        instances=[
            _inst(1, "person", (10, 10, 40, 70)),  # 60 px high
            _inst(2, "truck", (50, 20, 150, 60)),  # 40 px
            _inst(3, "car", (0, 90, 30, 110)),  # 20 px: below min_height
            _inst(4, "bus", (60, 60, 150, 118), crowd=True),  # crowd: skipped
            _inst(5, "person", (100, 40, 120, 75), amodal=(100, 40, 125, 100)),  # amodal box 60 px
            _inst(6, "dog", (5, 5, 20, 50)),  # not a model class
        ],
    )
    b = AnnotatedImage(
        image_id=11,
        path=Path("/data/b.jpg"),
        width=160,
        height=120,
        instances=[_inst(7, "bus", (0, 0, 100, 100)), _inst(8, "car", (100, 0, 160, 30))],  # car 30 px: kept
    )
    return Dataset(
        images=[a, b], categories=["person", "car", "truck", "bus", "dog"], source=Path("/data/x.json"), format="coco"
    )


CLASS_MAP = {"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}


def test_box_sample_has_boxes_and_classes_only():
    names = [f.name for f in dataclasses.fields(BoxSample)]
    assert names == ["image", "image_id", "box", "category", "others", "image_size"]
    s = BoxSample(image=Path("/x.jpg"), image_id=1, box=(0, 0, 1, 1), category="person")
    assert not hasattr(s, "mask") and not hasattr(s, "amodal_mask")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.box = (0, 0, 2, 2)  # type: ignore[misc]


def test_samples_merge_classes_filter_heights_and_skip_crowds(dataset: Dataset):
    out = box_samples(dataset, ["person", "vehicle"], class_map=CLASS_MAP, min_height=30)
    got = [(s.image_id, s.category, s.box) for s in out]
    assert got == [
        (10, "person", (10, 10, 40, 70)),
        (10, "vehicle", (50, 20, 150, 60)),  # truck -> vehicle
        (10, "person", (100, 40, 125, 100)),  # the amodal box, where the data has one
        (11, "vehicle", (0, 0, 100, 100)),  # bus -> vehicle
        (11, "vehicle", (100, 0, 160, 30)),  # car -> vehicle, exactly min_height
    ]
    assert [s.image for s in out] == [Path("/data/a.jpg")] * 3 + [Path("/data/b.jpg")] * 2


def test_samples_hold_no_mask_anywhere(dataset: Dataset):
    out = box_samples(dataset, ["person", "vehicle"], class_map=CLASS_MAP)
    assert out
    for s in out:
        for f in dataclasses.fields(s):
            v = getattr(s, f.name)
            assert not isinstance(v, (LazyMask, np.ndarray, dict)), f.name
            if f.name == "others":
                assert all(isinstance(b, tuple) and len(b) == 4 for b in v)


def test_others_are_the_remaining_boxes_of_the_image(dataset: Dataset):
    out = box_samples(dataset, ["person"], min_height=30)
    first = out[0]
    # every other annotation of the image (crowd and small ones too), amodal where known, in file order
    assert first.others == (
        (50, 20, 150, 60),
        (0, 90, 30, 110),
        (60, 60, 150, 118),
        (100, 40, 125, 100),
        (5, 5, 20, 50),
    )
    assert len(out[1].others) == 5 and (10, 10, 40, 70) in out[1].others


def test_without_the_map_classes_keep_their_names(dataset: Dataset):
    assert [s.category for s in box_samples(dataset, ["car", "truck"], min_height=0)] == ["truck", "car", "car"]
    assert box_samples(dataset, ["vehicle"]) == []  # no map: nothing is called vehicle
    # the map may also rename a single class
    out = box_samples(dataset, ["human"], class_map={"person": "human"})
    assert [s.category for s in out] == ["human", "human"]


def test_min_height_and_visible_boxes_and_excluded_images(dataset: Dataset):
    assert len(box_samples(dataset, ["person", "vehicle"], class_map=CLASS_MAP, min_height=61)) == 1  # the bus
    vis = box_samples(dataset, ["person"], use_amodal_boxes=False, min_height=30)
    assert [s.box for s in vis] == [(10, 10, 40, 70), (100, 40, 120, 75)]  # visible box: 35 px
    only_b = box_samples(dataset, ["person", "vehicle"], class_map=CLASS_MAP, exclude_images={10})
    assert {s.image_id for s in only_b} == {11}
