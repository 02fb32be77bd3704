"""Copy-paste occlusion for the head's training (src/occseg/head/paste.py and learn.paste_crops_of_image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occseg.data.readers import read_dataset
from occseg.head.config import HeadTrainConfig
from occseg.head.inputs import mask_to_cells
from occseg.head.learn import ImageBoxes, crops_of_image, image_boxes, learn_mask_head, paste_crops_of_image
from occseg.head.paste import PasteDraw, composite, cutout_of, draw_paste, paste_box
from tests.compnet.conftest import COCO128_IMAGES, TINY_IMAGE_IDS, write_coco_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_pasted_box_covers_the_drawn_share_from_the_drawn_side() -> None:
    box = (100.0, 50.0, 140.0, 130.0)  # 40 wide, 80 high
    left = paste_box(box, (20, 10), PasteDraw(donor=0, height=1.0, cover=0.25, side=0, drop=0.1))
    assert left == pytest.approx((70.0, 58.0, 110.0, 138.0))  # 80 high at the donor's 1:2 aspect, 10 px of 40
    right = paste_box(box, (20, 10), PasteDraw(donor=0, height=0.5, cover=0.5, side=1, drop=0.0))
    assert right == pytest.approx((120.0, 90.0, 140.0, 130.0))


def test_the_donor_and_the_draws_depend_on_the_indices_alone() -> None:
    draws = [draw_paste(0, i, r, 5, (0.8, 1.2), (0.2, 0.6)) for i in range(5) for r in range(3)]
    again = [draw_paste(0, i, r, 5, (0.8, 1.2), (0.2, 0.6)) for i in reversed(range(5)) for r in range(3)]
    assert draws == [d for i in range(5) for d in again[(4 - i) * 3 : (5 - i) * 3]]
    assert all(d.donor != i for i, d in zip(np.repeat(np.arange(5), 3), draws))
    assert all(0.8 <= d.height <= 1.2 and 0.2 <= d.cover <= 0.6 and d.side in (0, 1) for d in draws)
    assert draw_paste(0, 0, 0, 1, (1, 1), (0.5, 0.5)) is None  # no other box


def test_a_square_cutout_is_pasted_opaque_and_cut_to_the_image() -> None:
    donor = np.zeros((40, 40, 3), np.uint8)
    donor[10:30, 10:30] = 200
    cut = cutout_of(donor, (10.0, 10.0, 30.0, 30.0), np.pad(np.ones((20, 20), bool), 10))
    assert tuple(cut.shape) == (4, 20, 20) and int(cut[3].min()) == 255
    rgb = np.full((60, 50, 3), 7, np.uint8)
    out, alpha, pasted = composite(rgb, cut, (40.0, 20.0, 60.0, 40.0))  # half of it leaves the image
    assert pasted == (40.0, 20.0, 50.0, 40.0)
    assert (alpha[20:40, 40:50] == 1).all() and alpha.sum() == 200
    assert (out[20:40, 40:50] == 200).all() and (out[:20] == 7).all() and (out[:, :40] == 7).all()


def test_a_pasted_square_takes_its_cells_from_the_covered_box_and_flags_each_other(lite0_backbone) -> None:
    rgb = np.full((160, 160, 3), 90, np.uint8)
    box = (40.0, 16.0, 104.0, 144.0)
    ib = ImageBoxes(path=None, boxes=(box,), categories=("person",), targets=(0,))
    (own,) = crops_of_image(lite0_backbone, rgb, ib.boxes, [0], ib.categories, target_height=64, pad=8)
    own.target = own.geo[2:3].clone()  # the covered box's target before the paste: its whole box
    square = torch.full((4, 32, 32), 255, dtype=torch.uint8)  # an opaque white square, two donors of it
    cfg = HeadTrainConfig(paste=1)
    covered, front = paste_crops_of_image(
        lite0_backbone, rgb, ib, [own], [square, square], ["person"] * 2, 0, cfg, target_height=64, pad=8
    )
    draw = draw_paste(cfg.seed, 0, 0, 2, cfg.paste_height, cfg.paste_cover)
    pasted = paste_box(box, (32, 32), draw)
    x0, y0 = max(0, round(pasted[0])), max(0, round(pasted[1]))
    x1, y1 = min(160, round(pasted[2])), min(160, round(pasted[3]))
    square_px = np.zeros((160, 160), bool)
    square_px[y0:y1, x0:x1] = True
    assert front.box == (float(x0), float(y0), float(x1), float(y1))
    size = tuple(covered.fine.shape[-2:])
    share = mask_to_cells(square_px, covered.window, covered.stride, size)
    assert torch.allclose(covered.target, own.target * (1 - share))
    assert covered.target.sum() < own.target.sum()  # the square took cells of the box
    assert torch.equal(covered.geo[2], own.geo[2])  # the same box, the same crop
    assert covered.geo[3].sum() > 0 and own.geo[3].sum() == 0  # the pasted box is now another given box
    assert torch.allclose(front.target, mask_to_cells(square_px, front.window, front.stride, front.target.shape[-2:]))
    assert front.geo[3].sum() > 0 and front.target.sum() > 0  # the covered box is the front one's other box


def test_a_head_learns_with_the_composites_and_twice_gives_the_same_bytes(tiny_compnet, lite0_backbone, shared_data,
                                                                          tmp_path):  # fmt: skip
    model = tiny_compnet.model
    data = write_coco_subset(shared_data, tmp_path / "gt.json", TINY_IMAGE_IDS)
    images = image_boxes(read_dataset(data, images=shared_data / COCO128_IMAGES), ["person"])
    cfg = HeadTrainConfig(epochs=2, batch_size=4, rounds=2, paste=1, scales=(model.settings.target_height,))
    heads = [learn_mask_head(model, images, cfg, backbone=lite0_backbone) for _ in range(2)]
    assert heads[0].settings.training["crops"] == 8 * 3  # 8 boxes, two crops of each composite
    assert heads[0].settings.training["paste"] == 1
    a, b = (h.state_dict() for h in heads)
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain_cfg = HeadTrainConfig(epochs=2, batch_size=4, rounds=1, paste=0)
    plain = learn_mask_head(model, images, plain_cfg, backbone=lite0_backbone)
    assert plain.settings.training["crops"] == 8  # without composites: the record is that of a head before them
    assert not {"paste", "paste_height", "paste_cover"} & set(plain.settings.training)


def test_the_paste_options_are_checked() -> None:
    with pytest.raises(ValueError, match="needs self_train"):
        HeadTrainConfig(paste=1, self_train=0.0)
    with pytest.raises(ValueError, match="paste_cover"):
        HeadTrainConfig(paste=1, paste_cover=(0.5, 1.5))
