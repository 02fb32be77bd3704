"""Box-crop geometry, batched feature extraction and whole-image features."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occseg.backbones import Backbone, get_backbone
from occseg.features import (
    CropConfig,
    box_windows,
    extract_box_features,
    extract_image_features,
    render_crop,
)
from occseg.geometry.boxes import BoxError, CropWindow


@pytest.fixture(scope="module")
def lite0() -> Backbone:
    return get_backbone()  # real offline ImageNet weights, 112 channels


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()[::2, ::2].copy()  # (256, 256, 3) uint8 RGB


def _ramp_image(height: int, width: int) -> torch.Tensor:
    """Channel 0 holds each pixel's column index, channel 1 its row index."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return torch.stack([xs, ys, torch.zeros_like(xs)])


def test_crop_window_of_a_known_box():
    # 300x200 image, box 50 px wide and 100 px high: scale 224/100 = 2.24, pad 16 px -> 16/2.24 = 7.14 image px;
    # window x: floor(100-7.14)=92 .. ceil(150+7.14)=158, y: floor(42.86)=42 .. ceil(157.14)=158;
    # crop: round(116*2.24)=260 -> 272 rows, round(66*2.24)=148 -> 160 columns (whole 16-px cells).
    ((box, win, warning),) = box_windows([(100, 50, 150, 150)], 300, 200, CropConfig(), 16)
    assert box == (100.0, 50.0, 150.0, 150.0) and warning is None
    assert win.window == (92, 42, 158, 158)
    assert win.scale == pytest.approx(2.24)
    assert win.size == (272, 160)


def test_render_crop_samples_the_exact_affine_map():
    img = _ramp_image(200, 300)
    for box in [(100, 50, 150, 150), (40, 30, 52, 40)]:  # shrink (scale 2.24 is >1 here too) and enlarge a lot
        ((_, win, _),) = box_windows([box], 300, 200, CropConfig(target_height=64, pad=8), 16)
        crop = render_crop(img, win)
        assert crop.shape == (3, *win.size)
        v, u = 5, 7  # crop pixel (row 5, column 7): centre (7.5, 5.5) in crop coordinates
        x, y = win.crop_to_image(u + 0.5, v + 0.5)
        # pixel i of the ramp holds value i at its centre i + 0.5
        assert float(crop[0, v, u]) == pytest.approx(x - 0.5, abs=0.1)
        assert float(crop[1, v, u]) == pytest.approx(y - 0.5, abs=0.1)
    # a shrinking crop (box taller than target_height)
    ((_, win, _),) = box_windows([(20, 10, 220, 190)], 300, 200, CropConfig(target_height=48, pad=4), 16)
    assert win.scale < 1
    crop = render_crop(img, win)
    us = torch.arange(2, win.size[1] - 8)
    expected = (us + 0.5) / win.scale + win.window[0] - 0.5
    assert float((crop[0, 10, 2 : win.size[1] - 8] - expected).abs().max()) < 0.1


def test_box_features_shape_cells_and_round_trip(lite0, photo):
    (f,) = extract_box_features(lite0, photo, [(100, 50, 150, 150)], CropConfig())
    assert f.window.window == (92, 42, 158, 158) and f.window.size == (272, 160)
    assert f.grid_size == (17, 10)
    assert f.features.shape == (112, 17, 10) and f.features.dtype == torch.float32
    assert f.features.device == lite0.device
    assert not f.features.is_inference()  # usable outside inference mode
    centres = f.cell_centers_image()
    assert centres.shape == (17, 10, 2)
    assert centres[0, 0] == pytest.approx((92 + 8 / 2.24, 42 + 8 / 2.24))
    assert f.cell_size_image == pytest.approx(16 / 2.24)
    # every centre maps back into its own cell, half a cell from the cell's edges
    uv = np.stack(np.vectorize(f.window.image_to_crop)(centres[..., 0], centres[..., 1]), axis=-1) / 16
    rows, cols = np.meshgrid(np.arange(17), np.arange(10), indexing="ij")
    np.testing.assert_allclose(uv[..., 0], cols + 0.5, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], rows + 0.5, atol=1e-9)
    # box in crop pixels: x 17.92..129.92, y 17.92..241.92 -> cells with centres inside: rows 1..14, cols 1..7
    assert f.box_cells() == (1, 1, 8, 15)  # (x1, y1, x2, y2) in cells
    c1, r1, c2, r2 = f.box_cells()
    inside = (centres[..., 0] >= 100) & (centres[..., 0] < 150) & (centres[..., 1] >= 50) & (centres[..., 1] < 150)
    expected = np.zeros((17, 10), bool)
    expected[r1:r2, c1:c2] = True
    np.testing.assert_array_equal(inside, expected)


def test_box_at_the_image_border_gets_its_pad_clipped(lite0, photo):
    left, right = extract_box_features(lite0, photo, [(0, 10, 50, 110), (205, 156, 256, 256)], CropConfig())
    assert left.window.window == (0, 2, 58, 118)  # no pad left of x=0; 7.14 px pad elsewhere
    assert right.window.window == (197, 148, 256, 256)  # pad stops at the right and bottom borders
    for f in (left, right):
        assert f.features.shape == (112, f.window.size[0] // 16, f.window.size[1] // 16)
    # 59 image columns make 132.16 crop columns, rounded up to 144: the 12 columns past the image border
    # are the mean colour (0 after normalisation); the ones before are image content
    assert right.window.size == (256, 144)
    crop = render_crop(lite0.normalize(photo)[0], right.window)
    assert float(crop[:, :, 132:].abs().max()) == 0.0
    assert float(crop[:, :, 131].abs().min(dim=0).values.max()) > 0.0


def test_batching_gives_the_same_features_as_one_box_at_a_time(lite0, photo):
    boxes = [(100, 50, 150, 150), (10, 10, 40, 30), (120, 100, 250, 250), (0, 0, 60, 200), (200, 20, 230, 140)]
    calls: list[tuple[int, ...]] = []
    hook = lite0.body.register_forward_hook(lambda m, args, out: calls.append(tuple(args[0].shape)))
    try:
        single = extract_box_features(lite0, photo, boxes, CropConfig(batch_size=1))
        assert len(calls) == 5
        calls.clear()
        batched = extract_box_features(lite0, photo, boxes, CropConfig(batch_size=2))
    finally:
        hook.remove()
    assert [c[0] for c in calls] == [2, 2, 1]  # one backbone pass per box, every box in exactly one batch
    assert len({s.window.size for s in single}) == 5  # all crops differ in size, so batches are padded
    for s, b, box in zip(single, batched, boxes):
        assert s.box == b.box == tuple(float(v) for v in box)  # input order kept
        assert s.window == b.window
        torch.testing.assert_close(b.features, s.features, atol=1e-4, rtol=1e-4)


def test_grayscale_and_rgba_images_are_converted(lite0, photo):
    gray = photo.mean(axis=2).round().astype(np.uint8)
    box = [(60, 40, 110, 100)]
    (from_gray,) = extract_box_features(lite0, gray, box)
    (from_rgb,) = extract_box_features(lite0, np.repeat(gray[:, :, None], 3, axis=2), box)
    torch.testing.assert_close(from_gray.features, from_rgb.features)
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 7, np.uint8)], axis=2)
    (from_rgba,) = extract_box_features(lite0, rgba, box)
    (from_photo,) = extract_box_features(lite0, photo, box)
    torch.testing.assert_close(from_rgba.features, from_photo.features)


def test_bad_boxes_are_named(lite0, photo):
    with pytest.raises(BoxError, match=r"box 1: zero-area box \[30.0, 40.0, 30.0, 90.0\]"):
        extract_box_features(lite0, photo, [(10, 10, 50, 50), (30, 40, 30, 90)])
    with pytest.raises(BoxError, match=r"box 0: inverted box"):
        extract_box_features(lite0, photo, [(50, 10, 10, 50)])
    with pytest.raises(BoxError, match=r"box 0: box .* lies outside the 256x256 image"):
        extract_box_features(lite0, photo, [(300, 10, 350, 50)])
    (f,) = extract_box_features(lite0, photo, [(-20, 10, 50, 60)])
    assert f.box == (0.0, 10.0, 50.0, 60.0) and "clipped" in f.warning
    assert extract_box_features(lite0, photo, []) == []
    with pytest.raises(ValueError, match="batch_size >= 1"):
        CropConfig(batch_size=0)


def test_thin_box_still_gets_one_cell():
    win = CropWindow(window=(0, 0, 20, 100), scale=2.0, size=(208, 48))
    from occseg.features import BoxFeatures

    f = BoxFeatures(box=(10.0, 4.0, 12.0, 96.0), window=win, features=torch.zeros(1, 13, 3), stride=16)
    c1, r1, c2, r2 = f.box_cells()
    assert (c1, c2) == (1, 2)  # box x in crop pixels 20..24 -> the cell holding its centre (22 // 16 = 1)
    assert (r1, r2) == (0, 12)


def test_whole_image_features(lite0, photo):
    img = photo[:100, :150]
    feats = extract_image_features(lite0, img)
    assert feats.shape == (112, math.ceil(100 / 16), math.ceil(150 / 16))
    with torch.inference_mode():
        torch.testing.assert_close(feats, lite0(lite0.normalize(img))[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("tf32", [False, True])
def test_cuda_matches_cpu(photo, tf32):
    """Same crops, same features on CUDA: to float32 precision with TF32 off; with TF32 allowed (PyTorch's
    default for cuDNN convolutions, which EfficientNet-Lite0 no longer uses on CUDA, measured on an H100 up to
    0.09 off on 0.8 % of the values; matrix products too here) every cell still points the same way
    (cosine >= 0.999), which is all the vMF model looks at."""
    boxes = [(100, 50, 150, 150), (10, 10, 40, 30), (120, 100, 250, 250)]
    cpu = extract_box_features(get_backbone(), photo, boxes, CropConfig(batch_size=2))
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        gpu = extract_box_features(get_backbone(device="cuda"), photo, boxes, CropConfig(batch_size=2), device="cuda")
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    for c, g in zip(cpu, gpu):
        assert g.features.device.type == "cuda"
        if not tf32:
            torch.testing.assert_close(g.features.cpu(), c.features, atol=2e-3, rtol=2e-3)
        cos = torch.nn.functional.cosine_similarity(g.features.cpu(), c.features, dim=0)
        assert float(cos[c.features.norm(dim=0) > 1e-3].min()) >= 0.999
