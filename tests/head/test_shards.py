"""The mask head's crops travel between ranks unchanged."""

from __future__ import annotations

import torch

from occseg.geometry.boxes import CropWindow
from occseg.head.inputs import HeadCrop
from occseg.head.shards import crop_payload, crops_from_payload, sharded_crops


def _crop(seed: int, *, with_optional: bool) -> HeadCrop:
    g = torch.Generator().manual_seed(seed)
    return HeadCrop(
        box=(1.5, 2.0, 30.25, 40.0),
        window=CropWindow(window=(0, 1, 40, 50), scale=1.0 / 3.0, size=(120, 147)),
        image_size=(60, 80),
        stride=8,
        coarse=torch.rand(5, 4, 3, generator=g),
        fine=torch.rand(2, 8, 6, generator=g),
        lab=torch.rand(3, 8, 6, generator=g) * 100,
        geo=torch.rand(4, 8, 6, generator=g),
        compnet=torch.rand(6, 4, 3, generator=g) if with_optional else None,
        target=torch.rand(1, 8, 6, generator=g) if with_optional else None,
    )


def _same(a: HeadCrop, b: HeadCrop) -> bool:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and torch.equal(x, y)):
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True


def test_crops_round_trip_through_their_payload() -> None:
    crops = [_crop(0, with_optional=True), _crop(1, with_optional=False)]
    tensors, meta = crop_payload(crops)
    assert len(tensors) == 4 + 2 + 4
    back = crops_from_payload(tensors, meta)
    assert len(back) == 2 and all(_same(a, b) for a, b in zip(crops, back))


def test_one_process_renders_every_image_in_order() -> None:
    seen: list[int] = []

    def image_crops(k: int) -> list[HeadCrop]:
        seen.append(k)
        return [_crop(k, with_optional=False)] * (k % 2 + 1)

    out = sharded_crops(None, 3, image_crops)
    assert seen == [0, 1, 2] and len(out) == 4
