"""Images as 8-bit RGB whatever their channels and depth (src/occseg/data/images.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from occseg.data.images import ImageError, as_rgb_array, image_size, load_rgb, save_rgb, to_rgb_uint8


def test_to_rgb_uint8_exact_values():
    gray = np.array([[0, 128, 255]], np.uint8)
    assert to_rgb_uint8(gray).tolist() == [[[0, 0, 0], [128, 128, 128], [255, 255, 255]]]
    deep = np.array([[0, 257, 65535, 32896]], np.uint16)  # 16-bit: v / 257, rounded
    assert to_rgb_uint8(deep)[0, :, 0].tolist() == [0, 1, 255, 128]
    unit = np.array([[0.0, 0.5, 1.0]], np.float32)  # floats in [0, 1] are scaled by 255
    assert to_rgb_uint8(unit)[0, :, 0].tolist() == [0, 128, 255]
    big = np.array([[-3.0, 100.4, 300.0]], np.float64)  # larger floats are clipped to [0, 255]
    assert to_rgb_uint8(big)[0, :, 0].tolist() == [0, 100, 255]
    rgba = np.array([[[10, 20, 30, 0]]], np.uint8)
    assert to_rgb_uint8(rgba).tolist() == [[[10, 20, 30]]]  # alpha dropped
    gray_alpha = np.array([[[40, 200]]], np.uint8)
    assert to_rgb_uint8(gray_alpha).tolist() == [[[40, 40, 40]]]
    with pytest.raises(ImageError, match=r"photo: unsupported image shape \(2, 2, 5\)"):
        to_rgb_uint8(np.zeros((2, 2, 5), np.uint8), name="photo")


def test_png_round_trip_and_conversions_on_read(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    save_rgb(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(load_rgb(tmp_path / "a.png"), rgb)  # lossless, channels in RGB order
    assert image_size(tmp_path / "a.png") == (5, 4)
    red_rgba = np.zeros((2, 2, 4), np.uint8)
    red_rgba[..., 2] = 255  # OpenCV writes BGRA: this is red
    red_rgba[..., 3] = 128
    cv2.imwrite(str(tmp_path / "rgba.png"), red_rgba)
    assert load_rgb(tmp_path / "rgba.png").tolist() == [[[255, 0, 0]] * 2] * 2
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((3, 3), 514, np.uint16))  # 16-bit gray
    assert load_rgb(tmp_path / "deep.png").tolist() == [[[2, 2, 2]] * 3] * 3
    wide = np.zeros((2, 3, 3), np.int32)  # a 32-bit integer TIFF (OpenCV's colour conversion takes no such pixels)
    wide[..., 0], wide[..., 2] = 10, 900  # BGR as OpenCV writes it: red 900 is clipped to 255
    cv2.imwrite(str(tmp_path / "wide.tiff"), wide)
    assert load_rgb(tmp_path / "wide.tiff").tolist() == [[[255, 0, 10]] * 3] * 2
    nan = np.array([[np.nan, np.inf, 0.5]], np.float32)  # non-finite floats become black / white
    assert to_rgb_uint8(nan)[0, :, 0].tolist() == [0, 255, 0]  # inf counts as 255, so 0.5 is on the 0..255 scale


def test_unreadable_images_are_named(tmp_path):
    with pytest.raises(ImageError, match=r"image not found: .*nope.png"):
        load_rgb(tmp_path / "nope.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"cannot decode image file .*bad.jpg \(not an image, or corrupt\)"):
        load_rgb(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"cannot decode image file .*empty.png"):
        load_rgb(empty)
    with pytest.raises(ImageError, match=r"cannot read image header of .*bad.jpg"):
        image_size(bad)


def test_floats_a_rounding_step_above_one_are_still_zero_to_one():
    img = np.array([[[0.0, 0.5, 1.0]]])
    assert to_rgb_uint8(img).tolist() == [[[0, 128, 255]]]
    assert to_rgb_uint8(img * 1.0001).tolist() == [[[0, 128, 255]]]  # rounding: not a 0..255 image
    assert to_rgb_uint8(img * 2.0).tolist() == [[[0, 1, 2]]]  # beyond half a step: 0..255


def test_as_rgb_array_reads_pil_images_and_tensors_and_names_what_it_cannot():
    import torch
    from PIL import Image

    rgb = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    from_pil = as_rgb_array(Image.fromarray(rgb))
    assert np.array_equal(from_pil, rgb) and from_pil.flags.writeable
    assert np.array_equal(as_rgb_array(torch.from_numpy(rgb)), rgb)
    with pytest.raises(ImageError, match=r"image: not an image array \(dict\)"):
        as_rgb_array({"a": 1})
