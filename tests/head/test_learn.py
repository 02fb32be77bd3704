"""Training the mask head on a few real boxes (src/occseg/head/learn.py) and using it through the scene path."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from occseg.geometry.boxes import box_height, box_to_pixel_mask
from occseg.head.config import HeadTrainConfig
from occseg.head.learn import image_boxes, learn_mask_head
from occseg.inference.scene import SceneConfig, explain_scene, prepare_scene
from tests.compnet.conftest import COCO128_IMAGES, TINY_IMAGE_IDS, write_coco_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_a_head_from_a_few_boxes_beats_box_fill(tiny_compnet, lite0_backbone, shared_data, tmp_path):
    model = tiny_compnet.model
    data = write_coco_subset(shared_data, tmp_path / "gt.json", TINY_IMAGE_IDS, keep_masks=True)
    ds = read_dataset(data, images=shared_data / COCO128_IMAGES)
    cfg = HeadTrainConfig(epochs=25, batch_size=4, scales=(model.settings.target_height,))
    head = learn_mask_head(model, image_boxes(ds, ["person"]), cfg, backbone=lite0_backbone)
    # the 8 boxes' crops, and two crops of each box's copy-paste composite (one per box by default)
    assert cfg.paste == 1 and head.settings.training["crops"] == 8 * 3 and head.settings.use == "refine"
    with_head = type(model)(**{**model.__dict__, "mask_head": head})
    scfg = SceneConfig(reasoning="off", boxes="visible", refine=None)
    ious: dict[str, list[float]] = {"head": [], "box": [], "refined": []}
    for im in ds.images:
        persons = [i for i in im.instances if i.category == "person" and box_height(i.box) >= 30]
        if not persons:
            continue
        rgb = load_rgb(im.path)
        boxes = [i.box for i in persons]
        states = prepare_scene(with_head, lite0_backbone, rgb, boxes, scfg)
        assert all(st.head is not None for st in states)
        scene = explain_scene(with_head, states, scfg, labels=["person"] * len(boxes), image=rgb)
        # the default scene path: the head's logits are the refinement's prior
        refined = explain_scene(with_head, states, SceneConfig(boxes="visible", reasoning="off"), image=rgb)
        for inst, obj, ref in zip(persons, scene.objects, refined.objects):
            gt = inst.mask.decode()
            assert "head_logits" in obj.extra and not (obj.visible & ~obj.amodal).any()
            ious["head"].append(_iou(obj.visible, gt))
            ious["refined"].append(_iou(ref.visible, gt))
            ious["box"].append(_iou(box_to_pixel_mask(inst.box, *gt.shape), gt))
        if len(persons) > 1:  # the reasoning's competition decided by the head's logits (the default with a head)
            cfg = SceneConfig(boxes="visible", competition="head", head_tie=0.0)
            res = explain_scene(with_head, states, cfg, labels=["person"] * len(boxes), image=rgb)
            assert res.report["competition"] == "head"
            total = sum(o.visible.astype(int) for o in res.objects)
            assert total.max() == 1 and all(not (o.visible & ~o.amodal).any() for o in res.objects)
            # by default only clear calls (logits apart by more than head_tie) leave an object: it keeps more
            default = explain_scene(with_head, states, SceneConfig(boxes="visible"), labels=["person"] * len(boxes),
                                    image=rgb)  # fmt: skip
            assert default.report["competition"] == "head"
            assert all(not (a.visible & ~b.visible).any() for a, b in zip(res.objects, default.objects))
    assert len(ious["head"]) == 8
    assert np.mean(ious["head"]) > np.mean(ious["box"]) + 0.03, ious
    assert np.mean(ious["refined"]) > np.mean(ious["box"]) + 0.03, ious


def test_the_head_competition_needs_a_head(tiny_compnet, lite0_backbone, shared_data):
    rgb = load_rgb(shared_data / COCO128_IMAGES / "000000000192.jpg")
    boxes = [(100.0, 100.0, 300.0, 400.0), (200.0, 120.0, 400.0, 420.0)]
    cfg = SceneConfig(boxes="visible", competition="head")
    states = prepare_scene(tiny_compnet.model, lite0_backbone, rgb, boxes, cfg)
    with pytest.raises(ValueError, match="the head competition needs a model with a mask head"):
        explain_scene(tiny_compnet.model, states, cfg, labels=["person", "person"], image=rgb)


def _whole_batch_loss(head, crops, flips, cfg, pair_weight):
    """The loss of one batch as one piece (the definition :func:`batch_step` cuts into micro-batches)."""
    import torch.nn.functional as F

    from occseg.head.learn import collate
    from occseg.head.losses import colour_similarity, outside_loss, pairwise_loss, projection_loss

    b = collate(crops, flips, "cpu")
    logits = head(b["coarse"], b["fine"], b["extra"], b["cn"])
    sim = colour_similarity(b["lab"], cfg.pairwise_dilation)
    kw = {"dilation": cfg.pairwise_dilation, "tau": cfg.pairwise_tau}
    terms = {
        "projection": projection_loss(logits, b["box"], b["valid"]),
        "pairwise": pairwise_loss(logits, sim, b["box"] * b["valid"], b["valid"], **kw),
        "outside": outside_loss(logits, b["box"], b["valid"]),
        "self_train": (F.binary_cross_entropy_with_logits(logits, b["target"], reduction="none") * b["valid"]).sum()
        / b["valid"].sum(),
    }
    loss = (
        terms["projection"] + pair_weight * terms["pairwise"] + terms["outside"] + cfg.self_train * terms["self_train"]
    )
    return loss, {k: float(v.detach()) for k, v in terms.items()}


def test_the_micro_batches_gradients_add_up_to_the_whole_batchs():
    import torch

    from occseg.head.learn import batch_step
    from occseg.head.network import MaskHead
    from tests.head.conftest import synthetic_crops, synthetic_settings

    crops = synthetic_crops(10)  # micro-batches of 4, 4 and 2 crops of different sizes, padded as the whole batch
    flips = [k % 3 == 0 for k in range(10)]
    cfg = HeadTrainConfig(self_train=0.5, outside_weight=1.0)
    torch.manual_seed(0)
    head = MaskHead(synthetic_settings())
    loss, want = _whole_batch_loss(head, crops, flips, cfg, 0.7)
    expected = torch.autograd.grad(loss, list(head.parameters()))
    got = batch_step(head, crops, flips, cfg, 0.7, device="cpu")
    assert got == pytest.approx(want, rel=1e-5)
    for p, g in zip(head.parameters(), expected):
        assert p.grad.dtype == torch.float32
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6 * float(g.abs().max()))


def test_a_stride4_head_learns_from_the_scenes_masks(tiny_compnet, lite0_backbone, shared_data, tmp_path):
    model = tiny_compnet.model
    data = write_coco_subset(shared_data, tmp_path / "gt.json", TINY_IMAGE_IDS, keep_masks=True)
    ds = read_dataset(data, images=shared_data / COCO128_IMAGES)
    cfg = HeadTrainConfig(
        epochs=2, batch_size=4, rounds=2, fine_stride=4, targets="scene", scales=(model.settings.target_height,)
    )
    head = learn_mask_head(model, image_boxes(ds, ["person"]), cfg, backbone=lite0_backbone)
    s = head.settings
    assert (s.fine_layer, s.fine_channels, s.fine_stride) == ("_blocks.2", 24, 4)
    assert s.training["fine_stride"] == 4 and s.training["targets"] == "scene"
    with_head = type(model)(**{**model.__dict__, "mask_head": head})
    im = next(im for im in ds.images if sum(i.category == "person" for i in im.instances) > 1)
    rgb = load_rgb(im.path)
    boxes = [i.box for i in im.instances if i.category == "person"]
    states = prepare_scene(with_head, lite0_backbone, rgb, boxes, SceneConfig(boxes="visible"))
    assert all(st.head.stride == 4 for st in states)
    res = explain_scene(with_head, states, SceneConfig(boxes="visible"), labels=["person"] * len(boxes), image=rgb)
    assert all(o.visible.shape == rgb.shape[:2] for o in res.objects)


def test_confident_targets_leave_the_uncertain_cells_out_of_the_self_training_loss():
    import math

    import torch

    from occseg.head.learn import loss_counts, loss_weights, micro_batch_loss

    logits = torch.zeros(1, 1, 4, 4)
    logits[..., :2, :] = 5.0
    target = torch.ones(1, 1, 4, 4)
    target[..., :2, :] = 0.5  # the uncertain rim: its loss would be large, at the head's logit 5
    ones = torch.ones(1, 1, 4, 4)
    batch = {"coarse": None, "fine": None, "extra": None, "cn": None, "box": ones, "valid": ones, "target": target}
    batch["lab"] = torch.zeros(1, 3, 4, 4)

    def head(*_inputs):
        return logits

    def self_train_loss(cfg: HeadTrainConfig) -> float:
        weights = loss_weights(batch, cfg, self_train=True)
        counts = loss_counts(batch, weights)
        _, sums = micro_batch_loss(head, batch, weights, counts, cfg, 0.0)
        return float(sums[3] / counts[3])

    assert self_train_loss(HeadTrainConfig(target_band=0.2)) == pytest.approx(math.log(2.0), rel=1e-5)
    assert self_train_loss(HeadTrainConfig()) > 1.0
