"""COCO instances JSON (polygons and RLE, ``iscrowd``), and the JSON skeleton shared with the KINS reader.

Boxes become xyxy pixels; masks stay :class:`~occseg.data.masks.LazyMask` objects holding the source
polygons/RLE (nothing is rasterised while reading, bar polygons of under one pixel of area). Problems with
single annotations (zero-area, inverted or outside boxes; polygons with a non-finite vertex or one more than
an image width / height outside the image) skip them with a warning in :attr:`Dataset.warnings`; a polygon
that covers no pixel (entirely outside the image, or of zero area) is a warning too, and skips the annotation
where its box would come from that polygon. A file that is not the format, annotations that refer to unknown
image or category ids, and two annotations of one image with the same id (predictions and ground truth are
matched by ``(image_id, id)``) raise :class:`DatasetFormatError` naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import RleBatch
from occseg.data.readers.common import (
    MAX_IMAGE_SIDE,
    DatasetFormatError,
    abs_path,
    as_flag,
    as_int,
    check_queued_rles,
    checked_box,
    checked_polygons,
    empty_polygons,
    extra_fields,
    find_image_dir,
    header_size,
    json_kind,
    load_json_object,
    make_mask,
    missing_images_warning,
    require_image_dir,
    require_list,
    segm_box,
    xywh_box,
)
from occseg.geometry.boxes import Box, BoxError

#: Image keys that become :class:`AnnotatedImage` fields; every other key goes to ``extra``.
IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})
#: Annotation keys the COCO reader consumes (``area`` is derived from the mask, so it is dropped).
COCO_ANNOTATION_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "segmentation", "iscrowd", "area"})


@dataclass
class JsonContext:
    """What an annotation converter needs: the file, the images by id, category names, the warnings, and the
    RLE strings to check once all annotations are read (pass ``rles`` to :func:`make_mask`)."""

    path: Path
    images: dict[int, AnnotatedImage]
    category_names: dict[int, str]
    warnings: list[str] = field(default_factory=list)
    rles: RleBatch = field(default_factory=RleBatch)


#: ``convert(annotation, image, ctx, what) -> Instance | None`` (``None``: skipped, warning recorded).
Converter = Callable[[dict[str, Any], AnnotatedImage, JsonContext, str], "Instance | None"]


def read_coco(path: str | Path, *, images: str | Path | None = None) -> Dataset:
    """Read a COCO instances JSON; ``images`` is the image folder when it is not in a standard layout."""
    p = abs_path(path)
    return read_coco_object(load_json_object(p, what="COCO instances JSON"), p, images=images)


def read_coco_object(obj: dict[str, Any], path: Path, *, images: str | Path | None = None) -> Dataset:
    """:func:`read_coco` of an already loaded JSON object (``path`` names it in messages)."""
    anns = require_list(obj, "annotations", path, "COCO instances")
    if anns and not any(isinstance(a, dict) and ("bbox" in a or "segmentation" in a) for a in anns):
        hint = (
            " (it looks like a KINS file: use fmt='kins')"
            if isinstance(anns[0], dict) and ({"i_bbox", "a_bbox", "inmodal_bbox"} & anns[0].keys())
            else ""
        )
        raise DatasetFormatError(f"{path}: not a COCO instances file: no annotation has 'bbox' or 'segmentation'{hint}")
    return build_json_dataset(obj, path, images=images, fmt="coco", convert=convert_coco_annotation)


def read_categories(obj: dict[str, Any], path: Path, fmt: str) -> dict[int, str]:
    """``categories`` as ``{id: name}``; errors name the file and the entry."""
    cats: dict[int, str] = {}
    for k, c in enumerate(require_list(obj, "categories", path, fmt)):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise DatasetFormatError(f"{path}: categories[{k}] needs 'id' and 'name', got {c!r}")
        cid = as_int(c["id"], f"{path}: categories[{k}] id")
        if cid in cats:
            raise DatasetFormatError(f"{path}: category id {cid} appears twice in 'categories'")
        cats[cid] = str(c["name"])
    return cats


def _image_root(obj: dict[str, Any], path: Path, images: str | Path | None, file_names: list[str]) -> Path | None:
    if images is not None:
        root = abs_path(images)
        return require_image_dir(root, f"given for {path}")
    info = obj.get("info")
    if isinstance(info, dict) and isinstance(info.get("image_root"), str):
        return abs_path(path.parent / info["image_root"])
    return find_image_dir(path, file_names)


def _positive_size(value: Any) -> bool:
    """A declared image width or height: a finite number from 1 to :data:`MAX_IMAGE_SIDE` (not a boolean)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 1 <= value <= MAX_IMAGE_SIDE
    )


def build_json_dataset(
    obj: dict[str, Any], path: Path, *, images: str | Path | None, fmt: str, convert: Converter
) -> Dataset:
    """The COCO skeleton (``images``, ``categories``, ``annotations``) with a per-annotation converter."""
    label = {"coco": "COCO instances", "kins": "KINS"}.get(fmt, fmt)
    image_list = require_list(obj, "images", path, label)
    ann_list = require_list(obj, "annotations", path, label)
    cats = read_categories(obj, path, label)
    warnings: list[str] = []

    for k, im in enumerate(image_list):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise DatasetFormatError(f"{path}: images[{k}] needs 'id' and 'file_name', got {str(im)[:120]}")
    file_names = [im["file_name"] for im in image_list]
    root = _image_root(obj, path, images, file_names)
    if root is None:
        root = path.parent
        warnings.append(
            f"{path.name}: no image folder holding {file_names[0] if file_names else 'the images'} found in the "
            f"standard layouts next to the JSON; image paths are taken relative to {root} (give the folder: "
            "--images DIR, images=DIR)"
        )

    by_id, skipped = _read_images(image_list, root, path, warnings)
    missing = missing_images_warning([im.path for im in by_id.values()], f"under {root}")
    if missing:
        warnings.append(f"{path.name}: {missing}")

    ctx = JsonContext(path, by_id, cats, warnings)
    _read_annotations(ann_list, ctx, skipped, convert)
    names, name_ids = _category_names(cats, path, warnings)
    return Dataset(list(by_id.values()), names, path, fmt, warnings, name_ids)


def _read_images(
    image_list: list, root: Path, path: Path, warnings: list[str]
) -> tuple[dict[int, AnnotatedImage], set[int]]:
    """The ``images`` entries by id (sizes declared, else read from the files), and the ids of those skipped
    because neither gives a size (each a warning)."""
    by_id: dict[int, AnnotatedImage] = {}
    skipped: set[int] = set()
    for k, im in enumerate(image_list):
        image_id = as_int(im["id"], f"{path}: images[{k}] id")
        if image_id in by_id or image_id in skipped:
            raise DatasetFormatError(f"{path}: image id {image_id} appears twice in 'images'")
        img_path = abs_path(root / im["file_name"])
        w, h = im.get("width"), im.get("height")
        declared = (
            "no width/height"
            if w is None and h is None
            else f"width {w!r} and height {h!r} (not both numbers from 1 to {MAX_IMAGE_SIDE})"
        )
        size: tuple[int, int] | None = None
        if _positive_size(w) and _positive_size(h):
            size = (int(w), int(h))
        else:
            size = header_size(img_path)
            if size is not None and (w is not None or h is not None):
                warnings.append(
                    f"{path.name}: image {image_id} ({im['file_name']}) has {declared}, so its size "
                    f"{size[0]}x{size[1]} is read from the image file"
                )
        if size is None:
            warnings.append(
                f"{path.name}: image {image_id} ({im['file_name']}) has {declared} and its file {img_path} "
                "cannot be read; image and its annotations skipped"
            )
            skipped.add(image_id)
            continue
        extra = extra_fields(im, IMAGE_KEYS)
        by_id[image_id] = AnnotatedImage(image_id, img_path, size[0], size[1], extra=extra)
    return by_id, skipped


def _read_annotations(ann_list: list, ctx: JsonContext, skipped: set[int], convert: Converter) -> None:
    """Every annotation converted and added to its image (those of skipped images left out); ids checked."""
    path, by_id, cats = ctx.path, ctx.images, ctx.category_names
    seen: dict[tuple[int, int], int] = {}  # (image_id, annotation id) -> index in 'annotations'
    for k, ann in enumerate(ann_list):
        if not isinstance(ann, dict):
            raise DatasetFormatError(f"{path}: annotations[{k}] is {json_kind(ann)}, not an object")
        for key in ("id", "image_id", "category_id"):
            if key not in ann:
                raise DatasetFormatError(f"{path}: annotations[{k}] (id {ann.get('id')}) has no '{key}'")
        ann_id = as_int(ann["id"], f"{path}: annotations[{k}] id")
        image_id = as_int(ann["image_id"], f"{path}: annotation {ann_id} image_id")
        cat_id = as_int(ann["category_id"], f"{path}: annotation {ann_id} category_id")
        if image_id in skipped:
            continue
        image = by_id.get(image_id)
        if image is None:
            raise DatasetFormatError(f"{path}: annotation {ann_id} refers to unknown image id {image_id}")
        if cat_id not in cats:
            raise DatasetFormatError(f"{path}: annotation {ann_id} refers to unknown category id {cat_id}")
        first = seen.setdefault((image_id, ann_id), k)
        if first != k:
            raise DatasetFormatError(
                f"{path}: image {image_id} ({Path(image.path).name}) has two annotations with id {ann_id} "
                f"(annotations[{first}] and annotations[{k}]); annotation ids must be unique"
            )
        what = f"{path.name}: image {image_id} ({Path(image.path).name}), annotation {ann_id}"
        inst = convert(ann, image, ctx, what)
        if inst is not None:
            image.instances.append(inst)
    check_queued_rles(ctx.rles)


def _category_names(cats: dict[int, str], path: Path, warnings: list[str]) -> tuple[list[str], dict[str, int]]:
    """The category names in id order and each name's (first) id; a name used by two ids is a warning."""
    ordered = sorted(cats)
    names = [cats[c] for c in ordered]
    name_ids: dict[str, int] = {}
    for c in ordered:
        if cats[c] in name_ids:
            warnings.append(f"{path.name}: category name {cats[c]!r} is used by ids {name_ids[cats[c]]} and {c}")
        else:
            name_ids[cats[c]] = c
    return names, name_ids


def instance_box(
    box_value: Any, segm: Any, image: AnnotatedImage, what: str, warnings: list[str], segm_name: str = "segmentation"
) -> Box | None:
    """The checked xyxy box of an annotation: its xywh box, else the extent of its segmentation.

    ``None`` (with a warning) when there is neither, or the box is zero-area, inverted or outside the image.
    Polygons (that passed :func:`checked_polygons`) that cover no pixel (:func:`empty_polygons`) are a warning
    naming ``segm_name``: the annotation is skipped without a box value (its box would come from them), and
    kept with its box and an empty mask otherwise, as an empty RLE mask is.
    """
    empty = empty_polygons(segm, image.height, image.width)
    try:
        if box_value is not None:
            raw = xywh_box(box_value, what)
        elif empty is not None:
            warnings.append(f"{what}: no box, and the {segm_name} {empty}; annotation skipped")
            return None
        else:
            raw = segm_box(segm, image.height, image.width)
            if raw is None:
                warnings.append(f"{what}: no box and no non-empty segmentation; annotation skipped")
                return None
    except BoxError as exc:
        warnings.append(f"{exc}; annotation skipped")
        return None
    box = checked_box(raw, image.width, image.height, what, warnings)
    if box is not None and empty is not None:
        warnings.append(f"{what}: the {segm_name} {empty}, so the mask is empty; the box is kept")
    return box


def convert_coco_annotation(ann: dict[str, Any], image: AnnotatedImage, ctx: JsonContext, what: str) -> Instance | None:
    """One COCO annotation as an :class:`Instance` (visible box and mask), ``None`` when skipped."""
    segm = ann.get("segmentation")
    mask = make_mask(segm, image.height, image.width, what, ctx.rles)  # first: a broken mask is an error, not a skip
    if not checked_polygons(segm, image.height, image.width, what, ctx.warnings):
        return None
    box = instance_box(ann.get("bbox"), segm, image, what, ctx.warnings)
    if box is None:
        return None
    extra = extra_fields(ann, COCO_ANNOTATION_KEYS)
    return Instance(
        id=as_int(ann["id"], what),
        category=ctx.category_names[as_int(ann["category_id"], what)],
        box=box,
        mask=mask,
        iscrowd=as_flag(ann.get("iscrowd", 0), f"{what} iscrowd"),
        extra=extra,
    )
