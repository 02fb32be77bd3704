"""The finer block read in the same backbone pass (src/occseg/backbones/taps.py, features.crops fine_layer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occseg.backbones import get_backbone
from occseg.backbones.taps import FINE_LAYERS, fine_layer, tap
from occseg.features.crops import CropConfig, extract_box_features


@pytest.fixture(scope="module")
def backbone():
    return get_backbone("efficientnet_lite0", weights="random", seed=3)


def test_fine_features_come_from_the_same_pass_and_do_not_change_the_others(backbone):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 260, 3), dtype=np.uint8)
    boxes = [(10, 20, 90, 180), (100, 5, 250, 190), (40, 60, 120, 120)]
    layer = fine_layer("efficientnet_lite0")
    plain = extract_box_features(backbone, image, boxes, CropConfig(target_height=64, pad=16, batch_size=1))
    one = extract_box_features(
        backbone, image, boxes, CropConfig(target_height=64, pad=16, batch_size=1), fine_layer=layer
    )
    batched = extract_box_features(
        backbone, image, boxes, CropConfig(target_height=64, pad=16, batch_size=3), fine_layer=layer
    )
    for p, a, b in zip(plain, one, batched):
        assert p.fine is None and torch.equal(p.features, a.features)
        h, w = a.grid_size
        assert a.fine.shape == (layer.channels, 2 * h, 2 * w)
        torch.testing.assert_close(a.fine, b.fine, atol=1e-4, rtol=1e-4)
    # no hook is left behind
    assert not backbone.body.get_submodule(layer.module)._forward_hooks


def test_tap_records_each_pass_and_names_a_missing_block(backbone):
    with tap(backbone, "_blocks.4") as out:
        backbone(torch.zeros(1, 3, 64, 32))
        backbone(torch.zeros(2, 3, 32, 32))
    assert [tuple(t.shape) for t in out] == [(1, 40, 8, 4), (2, 40, 4, 4)]
    with pytest.raises(ValueError, match="no block '_blocks.99'"):
        with tap(backbone, "_blocks.99"):
            pass
    with pytest.raises(ValueError, match="no finer block known for backbone 'alexnet'"):
        fine_layer("alexnet")
    assert set(FINE_LAYERS) == {"efficientnet_lite0", "vgg16", "resnext50"}


def test_the_stride4_block_has_twice_the_cells_of_the_stride8_block(backbone):
    image = np.random.default_rng(1).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    boxes = [(10, 10, 80, 110)]
    cfg = CropConfig(target_height=64, pad=16, batch_size=1)
    layer4 = fine_layer("efficientnet_lite0", 4)
    assert (layer4.module, layer4.channels, layer4.stride) == ("_blocks.2", 24, 4)
    (f8,) = extract_box_features(backbone, image, boxes, cfg, fine_layer=fine_layer("efficientnet_lite0"))
    (f4,) = extract_box_features(backbone, image, boxes, cfg, fine_layer=layer4)
    h, w = f8.grid_size
    assert f4.fine.shape == (24, 4 * h, 4 * w) and torch.equal(f4.features, f8.features)
    with pytest.raises(ValueError, match="no finer block at stride 2"):
        fine_layer("efficientnet_lite0", 2)
