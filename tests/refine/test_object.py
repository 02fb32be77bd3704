"""Refinement of one object on constructed images with a known answer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from occseg.geometry.boxes import crop_window, mask_to_box, resample_cells_to_image
from occseg.inference.single import ObjectResult, ObjectState
from occseg.refine import RefineConfig, refine_object

H, W = 200, 260


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def textured_background(seed: int = 0) -> np.ndarray:
    """Random-coloured 12-px tiles plus pixel noise (no tile is the object's colour)."""
    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 256, (H // 12 + 1, W // 12 + 1, 3)).astype(np.float64)
    tiles[..., 0] *= 0.5  # keep the background away from strong red
    img = np.kron(tiles, np.ones((12, 12, 1)))[:H, :W]
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def scene(shape: str = "disc", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image with a red object on a textured background, and the object's mask."""
    yy, xx = np.mgrid[:H, :W] + 0.5
    obj = (xx - 130) ** 2 + (yy - 80) ** 2 <= 45**2
    if shape == "lollipop":  # a disc on a stick: far from the ellipse inscribed in its box
        obj |= (np.abs(xx - 130) <= 8) & (yy >= 80) & (yy <= 185)
    img = textured_background(seed)
    rng = np.random.default_rng(seed + 1)
    red = np.clip(np.array([220, 40, 50]) + rng.normal(0, 10, (H, W, 3)), 0, 255).astype(np.uint8)
    img[obj] = red[obj]
    return img, obj


def object_from_cells(obj: np.ndarray, flip: float = 0.12, seed: int = 0) -> tuple[ObjectResult, ObjectState]:
    """A CompositionalNet-like result: the object reduced to 16-px crop cells, with a share of the cells
    flipped at random, margins in [0.5, 3]; its visible mask the bilinear cell map thresholded at 0."""
    box = mask_to_box(obj)
    win = crop_window(box, W, H, target_height=224, pad=48, stride=16)
    ch, cw = win.size[0] // 16, win.size[1] // 16
    xs = win.window[0] + (np.arange(cw) + 0.5) * 16 / win.scale
    ys = win.window[1] + (np.arange(ch) + 0.5) * 16 / win.scale
    xi = np.clip(xs.astype(int), 0, W - 1)
    yi = np.clip(ys.astype(int), 0, H - 1)
    cells = obj[yi[:, None], xi[None, :]]
    rng = np.random.default_rng(seed)
    cells = cells ^ (rng.random(cells.shape) < flip)
    labels = np.where(cells, 1, 2).astype(np.int64)
    margin = rng.uniform(0.5, 3.0, cells.shape).astype(np.float32)
    signed = np.where(cells, margin, -margin)
    inside = np.zeros((H, W), bool)
    x1, y1, x2, y2 = (int(v) for v in box)
    inside[y1:y2, x1:x2] = True
    visible = (resample_cells_to_image(signed, win, 16, H, W, fill=-1.0) > 0) & inside
    state = ObjectState(box=box, window=win, crop_cells=(ch, cw), stride=16, image_size=(H, W), terms={})
    result = ObjectResult(
        category="thing",
        confidence=1.0,
        class_scores={"thing": 0.0},
        mixture=0,
        visible=visible,
        amodal=visible.copy(),
        labels=labels,
        margin=margin,
        fg_score=margin,
        box=box,
        amodal_box=box,
    )
    return result, state


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_refined_mask_follows_a_disc(seed):
    img, obj = scene("disc", seed)
    result, state = object_from_cells(obj, seed=seed)
    vis, amodal = refine_object(img, result, state, RefineConfig())
    assert iou(vis, obj) > 0.95
    assert iou(vis, obj) > iou(result.visible, obj) + 0.05
    assert (amodal | ~vis).all()


@pytest.mark.parametrize("colour", ["none", "histogram", "gmm", "grabcut"])
def test_every_colour_mode_improves_on_the_seed(colour):
    img, obj = scene("disc", seed=3)
    result, state = object_from_cells(obj, seed=3)
    vis, _ = refine_object(img, result, state, RefineConfig(colour=colour))
    assert iou(vis, obj) > max(0.95, iou(result.visible, obj) + 0.05)


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_colour_recovers_a_shape_far_from_the_ellipse(seed):
    """A disc on a stick: the colour models find the stick that the ellipse prior misses."""
    img, obj = scene("lollipop", seed)
    result, state = object_from_cells(obj, seed=seed)
    seed_iou = iou(result.visible, obj)
    assert iou(refine_object(img, result, state, RefineConfig(colour="histogram"))[0], obj) > max(0.9, seed_iou)
    assert iou(refine_object(img, result, state, RefineConfig(colour="gmm"))[0], obj) > max(0.9, seed_iou)
    assert iou(refine_object(img, result, state, RefineConfig())[0], obj) > max(0.8, seed_iou)


def test_exclude_is_respected_exactly_and_amodal_keeps_the_hidden_part():
    img, obj = scene("disc")
    result, state = object_from_cells(obj)
    exclude = np.zeros((H, W), bool)
    exclude[60:110, 100:150] = True  # something in front of the object's middle
    exclude[5:15, 5:15] = True  # and elsewhere, outside the box
    # the model already knew part of the hidden region: its amodal mask has it
    result.visible &= ~exclude
    result.amodal = result.visible | (obj & exclude)
    vis, amodal = refine_object(img, result, state, RefineConfig(), exclude=exclude)
    assert not (vis & exclude).any()
    assert (amodal | ~vis).all()
    assert ((obj & exclude) <= amodal).all()  # the original hidden part stays amodal
    assert iou(vis, obj & ~exclude) > 0.85
    x1, y1, x2, y2 = (int(v) for v in state.box)
    assert not vis[:y1].any() and not vis[y2:].any() and not vis[:, :x1].any() and not vis[:, x2:].any()


def test_deterministic_and_disabled():
    img, obj = scene("lollipop", seed=5)
    result, state = object_from_cells(obj, seed=5)
    for colour in ("histogram", "grabcut", "gmm"):
        cfg = RefineConfig(colour=colour)
        a = refine_object(img, result, state, cfg)
        b = refine_object(img.copy(), result, state, cfg)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    vis, amodal = refine_object(img, result, state, RefineConfig(enabled=False))
    assert np.array_equal(vis, result.visible) and np.array_equal(amodal, result.amodal)


def test_input_errors():
    img, obj = scene("disc")
    result, state = object_from_cells(obj)
    with pytest.raises(ValueError, match="predicted on a 260x200 image"):
        refine_object(cv2.resize(img, (100, 80)), result, state)
    with pytest.raises(ValueError, match="exclude mask"):
        refine_object(img, result, state, exclude=np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="uint8 RGB"):
        refine_object(img.astype(np.float32), result, state)
