"""Box-fill and ellipse baselines: masks on constructed boxes, and the known answers on coco128-seg."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.evaluation.protocol import EvalConfig, aggregate, evaluate
from occseg.inference.baselines import box_fill, ellipse


def _dataset() -> Dataset:
    a = Instance(id=5, category="car", box=(0.5, 0.5, 2.5, 3.0))  # visible box only
    b = Instance(id=9, category="person", box=(4, 0, 6, 2), amodal_box=(4.0, 0.0, 8.0, 4.0))
    c = Instance(id=11, category="car", box=(6, 4, 12, 9))  # extends past the 8x6 image
    im = AnnotatedImage(image_id=3, path=Path("/x/3.png"), width=8, height=6, instances=[a, b, c], extra={"s": 1})
    return Dataset(images=[im], categories=["car", "person"], source=Path("gt.json"), format="coco")


def test_box_fill_masks_and_fields() -> None:
    pred = box_fill(_dataset())
    (im,) = pred.images
    assert im.image_id == 3 and (im.width, im.height) == (8, 6) and im.extra == {"s": 1}
    a, b, c = im.instances
    assert [p.id for p in im.instances] == [5, 9, 11] and [p.category for p in im.instances] == ["car", "person", "car"]
    expect_a = np.zeros((6, 8), bool)
    expect_a[0:3, 0:2] = True  # pixel centres 0.5, 1.5 (x) and 0.5, 1.5, 2.5 (y) inside (0.5, 0.5, 2.5, 3.0)
    assert np.array_equal(a.mask.decode(), expect_a)
    expect_b = np.zeros((6, 8), bool)
    expect_b[0:4, 4:8] = True  # auto: b's amodal box
    assert np.array_equal(b.mask.decode(), expect_b) and b.box == (4.0, 0.0, 8.0, 4.0)
    assert c.box == (6.0, 4.0, 8.0, 6.0) and c.mask.area() == 4  # clipped to the image
    for p in im.instances:
        assert np.array_equal(p.mask.decode(), p.amodal_mask.decode()) and p.amodal_box == p.box
        assert p.extra == {"score": 1.0, "method": "box-fill", "given_box": list(p.box)}  # the box it was made from
    assert pred.categories == ["car", "person"]


def test_box_choice() -> None:
    vis = box_fill(_dataset(), boxes="visible").images[0].instances[1]
    assert vis.mask.area() == 4 and vis.box == (4.0, 0.0, 6.0, 2.0)
    with pytest.raises(ValueError, match=r"annotation 5 of image 3 \(3.png\) has no amodal box"):
        box_fill(_dataset(), boxes="amodal")
    with pytest.raises(ValueError, match="boxes must be one of"):
        ellipse(_dataset(), boxes="tight")


def test_ellipse_inscribed() -> None:
    ds = _dataset()
    ds.images[0].instances = [dataclasses.replace(ds.images[0].instances[0], box=(0.0, 0.0, 4.0, 4.0))]
    (p,) = ellipse(ds).images[0].instances
    m = p.mask.decode()
    assert m.sum() == 12  # the 4x4 box minus its 4 corner pixels
    assert not m[0, 0] and not m[3, 3] and m[0, 1] and m[1, 0] and m[1:3, 1:3].all()
    assert p.extra["method"] == "ellipse"


def _coco128_test_persons(shared_data: Path) -> Dataset:
    from occseg.data.readers import read_dataset

    ds = read_dataset(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json")
    test_ids = set(sorted(im.image_id for im in ds.images)[3::4])
    ds.images = [im for im in ds.images if im.image_id in test_ids]
    return ds


@pytest.mark.parametrize(("method", "expected"), [(box_fill, 0.504), (ellipse, 0.550)])
def test_known_answer_coco128_persons(shared_data: Path, method, expected: float) -> None:
    gt = _coco128_test_persons(shared_data)
    ev = evaluate(gt, method(gt), EvalConfig(classes=("person",), min_height=30, progress=False))
    cell = aggregate(ev)["all"]
    assert cell["n_objects"] == 70
    assert cell["visible"]["all_objects"] == pytest.approx(expected, abs=0.005)
    assert cell["classification_accuracy"] == 1.0
    assert cell["amodal"]["n"]["all_objects"] == 0  # COCO has no amodal masks


def test_unknown_occluders_get_no_prediction() -> None:
    data = _dataset()
    data.images[0].instances[1].extra["unknown"] = True
    assert [p.id for p in box_fill(data).images[0].instances] == [5, 11]
