"""The ``head_colour`` competition on a real photo with a small mask head: the head's logits decide the pixels they
are clear about, the colour models the rest where they are clear."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from occseg.geometry.boxes import box_height
from occseg.head.config import HeadTrainConfig
from occseg.head.learn import image_boxes, learn_mask_head
from occseg.inference.scene import SceneConfig, explain_scene, prepare_scene
from tests.compnet.conftest import COCO128_IMAGES, TINY_IMAGE_IDS, write_coco_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_head_colour_decides_the_pixels_the_head_keeps_with_both(tiny_compnet, lite0_backbone, shared_data,
                                                                     tmp_path):  # fmt: skip
    model = tiny_compnet.model
    data = write_coco_subset(shared_data, tmp_path / "gt.json", TINY_IMAGE_IDS, keep_masks=True)
    ds = read_dataset(data, images=shared_data / COCO128_IMAGES)
    cfg = HeadTrainConfig(epochs=25, batch_size=4, rounds=1, scales=(model.settings.target_height,))
    head = learn_mask_head(model, image_boxes(ds, ["person"]), cfg, backbone=lite0_backbone)
    with_head = type(model)(**{**model.__dict__, "mask_head": head})
    tested = 0
    for im in ds.images:
        persons = [i for i in im.instances if i.category == "person" and box_height(i.box) >= 30]
        if len(persons) < 2:
            continue
        rgb = load_rgb(im.path)
        boxes = [i.box for i in persons]
        labels = ["person"] * len(boxes)
        states = prepare_scene(with_head, lite0_backbone, rgb, boxes, SceneConfig(boxes="visible"))
        # every pixel unsure for the head (tie inf): the head competition keeps every contested pixel with both
        keep = explain_scene(with_head, states, SceneConfig(boxes="visible", competition="head", head_tie=np.inf),
                             labels=labels, image=rgb)  # fmt: skip
        cfg = SceneConfig(boxes="visible", competition="head_colour", head_tie=np.inf, colour_tie=0.0)
        res = explain_scene(with_head, states, cfg, labels=labels, image=rgb)
        assert res.report["competition"] == "head_colour"
        for a, b in zip(res.objects, keep.objects):
            assert not (a.visible & ~b.visible).any() and not (a.visible & ~a.amodal).any()
        # the colour models decide every contested pixel: none stays with both objects
        total = sum(o.visible.astype(int) for o in res.objects)
        tested += int(np.count_nonzero(sum(o.visible.astype(int) for o in keep.objects) > 1))
        assert total.max() == 1
        # the colour models unsure everywhere (colour tie inf): nothing changes hands
        cfg = SceneConfig(boxes="visible", competition="head_colour", head_tie=np.inf, colour_tie=np.inf)
        same = explain_scene(with_head, states, cfg, labels=labels, image=rgb)
        assert all((a.visible == b.visible).all() for a, b in zip(same.objects, keep.objects))
    assert tested > 0
