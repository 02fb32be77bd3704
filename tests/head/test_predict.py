"""The head's logits on a constructed crop: flip averaging is mirror-symmetric and leaves no trace of the flip."""

from __future__ import annotations

import torch

from occseg.geometry.boxes import CropWindow
from occseg.head.config import HeadSettings
from occseg.head.inputs import HeadCrop
from occseg.head.network import MaskHead
from occseg.head.predict import head_logits, mirror_inputs


def _head() -> MaskHead:
    torch.manual_seed(0)
    settings = HeadSettings(
        fine_layer="blocks.4", fine_channels=5, fine_stride=8, coarse_channels=6, compnet_inputs=False
    )
    return MaskHead(settings).eval()


def _crop(gen: torch.Generator) -> HeadCrop:
    h, w = 6, 8
    u = torch.linspace(-1, 1, w).expand(h, w)
    v = torch.linspace(-1, 1, h)[:, None].expand(h, w)
    geo = torch.stack([u, v, torch.ones(h, w), torch.zeros(h, w)])
    return HeadCrop(
        box=(0.0, 0.0, 64.0, 48.0),
        window=CropWindow(window=(0, 0, 64, 48), scale=1.0, size=(48, 64)),
        image_size=(48, 64),
        stride=8,
        coarse=torch.randn(6, h // 2, w // 2, generator=gen),
        fine=torch.randn(5, h, w, generator=gen),
        lab=torch.rand(3, h, w, generator=gen) * 100,
        geo=geo,
    )


def _mirrored(crop: HeadCrop) -> HeadCrop:
    coarse, fine, extra, _ = mirror_inputs(crop.coarse[None], crop.fine[None], crop.extra()[None], None)
    geo = extra[0, 3:]
    return HeadCrop(crop.box, crop.window, crop.image_size, crop.stride, coarse[0], fine[0], crop.lab.flip(-1), geo)


def test_mirroring_negates_u_and_flips_every_map():
    crop = _crop(torch.Generator().manual_seed(1))
    coarse, fine, extra, cn = mirror_inputs(
        crop.coarse[None], crop.fine[None], crop.extra()[None], torch.ones(1, 6, 3, 4)
    )
    assert torch.equal(coarse[0], crop.coarse.flip(-1)) and torch.equal(fine[0], crop.fine.flip(-1))
    assert torch.allclose(extra[0, 3], -crop.extra()[3].flip(-1))  # u: -1 at the left edge again
    assert torch.equal(extra[0, 4:], crop.extra()[4:].flip(-1))
    assert cn[0, 4].eq(-1).all() and cn[0, :4].eq(1).all() and cn[0, 5].eq(1).all()


def test_flip_averaged_logits_of_the_mirrored_crop_are_the_mirrored_logits():
    head, crop = _head(), _crop(torch.Generator().manual_seed(2))
    plain = head_logits(head, crop)
    both = head_logits(head, crop, flip=True)
    assert both.shape == plain.shape == (6, 8)
    assert not torch.allclose(both, plain)  # a random head is not mirror-symmetric: the average changes it
    mirrored = head_logits(head, _mirrored(crop), flip=True)
    assert torch.allclose(mirrored, both.flip(-1), atol=1e-5)
    assert torch.allclose(head_logits(head, _mirrored(crop)).flip(-1), 2 * both - plain, atol=1e-5)
