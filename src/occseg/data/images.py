"""Reading images as 8-bit RGB, whatever their channels and depth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageError(OSError):
    """An image file that is missing or cannot be decoded."""


def to_rgb_uint8(array: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Grayscale, RGB, RGBA (alpha dropped) or 16-bit / float arrays to ``(H, W, 3)`` uint8 RGB. Floats are taken
    as ``[0, 1]`` when none exceeds 1 by more than half an 8-bit step (rounding), else as ``0..255``."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{name}: unsupported image shape {a.shape}")
    if a.dtype.kind not in "uifb":
        raise ImageError(f"{name}: unsupported pixel type {a.dtype} (need integers, floats or booleans)")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif a.dtype.kind == "f":
        a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
        # [0, 1] images, allowing rounding half an 8-bit step above 1; else already 0..255
        scale = 255.0 if a.max(initial=0.0) <= 1.0 + 0.5 / 255.0 else 1.0
        a = np.clip(a * scale, 0, 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    c = a.shape[2]
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    elif c == 2:  # gray + alpha
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif c == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def as_rgb_array(image: object, *, name: str = "image") -> np.ndarray:
    """An image given in memory as ``(H, W, 3)`` uint8 RGB: a numpy array, a torch tensor ``(H, W[, C])`` or
    anything ``numpy.asarray`` reads (a PIL image), converted by :func:`to_rgb_uint8`."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image if image.flags.writeable else image.copy()  # already what the pipeline reads
    if hasattr(image, "detach") and hasattr(image, "cpu"):  # a torch tensor, without importing torch
        image = image.detach().cpu().numpy()
    try:
        a = np.asarray(image)
    except Exception as exc:  # whatever numpy cannot read is no image
        raise ImageError(f"{name}: not an image array ({type(image).__name__})") from exc
    if a.dtype == object:
        raise ImageError(f"{name}: not an image array ({type(image).__name__})")
    rgb = to_rgb_uint8(a, name=name)
    return rgb if rgb.flags.writeable else rgb.copy()  # a PIL image's array is read-only, which torch warns about


def load_rgb(path: str | Path, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB; grayscale, RGBA and 16-bit files are converted.

    ``size``: the ``(width, height)`` the file's annotation gives it; a file of another size is a ``ValueError``
    naming it and both sizes (the annotation's boxes would not fit the picture)."""
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"image not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:  # OpenCV checks the size its header declares against its limit before decoding
        raise ImageError(
            f"{p}: the image is too large to decode (OpenCV reads at most 2**30 pixels, CV_IO_MAX_IMAGE_PIXELS)"
        ) from None
    if img is None:
        raise ImageError(f"cannot decode image file {p} (not an image, or corrupt)")
    if img.ndim == 3 and img.shape[2] in (3, 4):  # OpenCV's BGR(A) order, for any pixel type (cvtColor takes few)
        img = img[:, :, [2, 1, 0, 3][: img.shape[2]]]
    if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
        raise ValueError(f"{p}: image is {img.shape[1]}x{img.shape[0]} but the annotation says {size[0]}x{size[1]}")
    return to_rgb_uint8(img, name=str(p))


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, reading only its header where possible."""
    from PIL import Image

    p = Path(path)
    try:
        with Image.open(p) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError as exc:
        raise ImageError(f"image not found: {p}") from exc
    except Exception as exc:
        raise ImageError(f"cannot read image header of {p}: {exc}") from exc


def save_rgb(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 image (PNG/JPEG by extension) atomically."""
    from occseg.io import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        ok, buf = cv2.imencode(p.suffix or ".png", cv2.cvtColor(to_rgb_uint8(image), cv2.COLOR_RGB2BGR))
        if not ok:
            raise ImageError(f"cannot encode image for {p}")
        tmp.write_bytes(buf.tobytes())
