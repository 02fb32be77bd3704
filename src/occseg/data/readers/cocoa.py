"""COCOA (COCO-amodal) annotations: per-image JSON files, a folder of them, or one COCOA JSON.

Each region has ``segmentation`` (the amodal polygon), ``visible_mask`` / ``invisible_mask`` (RLE, present
where the region is occluded; without ``visible_mask`` the visible mask is the amodal one), ``order``
(1-based depth order, 1 = front), ``name`` (free text, used as the class), ``isStuff`` and
``occlude_rate``. :attr:`Instance.order` is ``order - 1`` (0 = front); the region's original fields
(``order``, ``name``, ``isStuff``, ``occlude_rate``, ``area``, ...) are kept in :attr:`Instance.extra`.

A region whose polygon has a non-finite vertex or one more than an image width / height outside the image,
or covers no pixel (entirely outside the image, zero area), is skipped with a warning, like one whose box is
outside the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import RleBatch
from occseg.data.readers.common import (
    IMAGE_EXTENSIONS,
    MAX_IMAGE_SIDE,
    DatasetFormatError,
    abs_path,
    as_int,
    check_queued_rles,
    checked_box,
    extra_fields,
    find_image_dir,
    header_size,
    json_kind,
    load_json_object,
    make_mask,
    plain_json,
    polygon_extent,
    polygon_list,
    require_image_dir,
    require_list,
    segm_box,
    usable_polygons,
)

#: Region keys turned into Instance fields; the rest (order, name, isStuff, occlude_rate, ...) go to extra.
REGION_MASK_KEYS = frozenset({"segmentation", "visible_mask", "invisible_mask"})


def class_name(name: Any, what: str = "region") -> str:
    """A COCOA free-text name as a class name: surrounding and repeated whitespace removed.

    A missing (``None``) or blank name is ``"unnamed"``; a name that is not text (a number, a list, ...) is a
    :class:`DatasetFormatError` naming ``what``.
    """
    if name is None:
        return "unnamed"
    if not isinstance(name, str):
        raise DatasetFormatError(f"{what}: 'name' must be text, got {json_kind(name)}: {name!r:.60}")
    text = " ".join(name.split())
    return text or "unnamed"


def is_cocoa_image_file(obj: Any) -> bool:
    """A per-image COCOA file: a top-level ``regions`` list (or, without ``annotations``, any ``regions``
    entry, so that a broken one is reported as such rather than as a file of another format)."""
    if not isinstance(obj, dict) or "regions" not in obj:
        return False
    return isinstance(obj["regions"], list) or "annotations" not in obj


def is_cocoa_collection(obj: Any) -> bool:
    anns = obj.get("annotations") if isinstance(obj, dict) else None
    return isinstance(anns, list) and bool(anns) and isinstance(anns[0], dict) and "regions" in anns[0]


def _image_file(json_path: Path, images: Path | None) -> Path:
    folder = images if images is not None else json_path.parent
    for ext in IMAGE_EXTENSIONS:
        cand = folder / (json_path.stem + ext)
        if cand.is_file():
            return cand
    return folder / (json_path.stem + ".jpg")


def _declared_size(obj: dict[str, Any]) -> tuple[int, int] | None:
    """``(width, height)`` from a ``size`` [h, w] entry or ``width``/``height`` keys (sides from 1 to
    :data:`MAX_IMAGE_SIDE`; else ``None``, and the size is read from the image)."""

    def side(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_IMAGE_SIDE

    size = obj.get("size")
    if isinstance(size, list) and len(size) == 2 and all(side(v) for v in size):
        return int(size[1]), int(size[0])
    w, h = obj.get("width"), obj.get("height")
    if side(w) and side(h):
        return w, h
    return None


def _rle_size(regions: Any) -> tuple[int, int] | None:
    """``(width, height)`` from the first region RLE (the last resort when the image cannot be read)."""
    for r in regions if isinstance(regions, list) else []:
        for key in ("visible_mask", "invisible_mask"):
            rle = r.get(key) if isinstance(r, dict) else None
            size = rle.get("size") if isinstance(rle, dict) else None
            if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
                return int(size[1]), int(size[0])
    return None


def _image_size(obj: dict[str, Any], img_path: Path, regions: Any) -> tuple[int, int] | None:
    """The image size: declared in the JSON, else the image header, else a region RLE's size."""
    return _declared_size(obj) or header_size(img_path) or _rle_size(regions)


def _regions_to_instances(
    regions: list[Any], image: AnnotatedImage, first_id: int, where: str, warnings: list[str]
) -> list[Instance]:
    out: list[Instance] = []
    rles = RleBatch()  # the RLE strings of the image, checked together at the end
    for k, r in enumerate(regions):
        what = f"{where}, region {k}"
        if not isinstance(r, dict) or "segmentation" not in r:
            raise DatasetFormatError(f"{what}: a COCOA region needs a 'segmentation' (amodal polygon)")
        segm = r["segmentation"]
        polys = polygon_list(segm)
        amodal_mask = make_mask(segm, image.height, image.width, f"{what} (segmentation)", rles)
        if amodal_mask is None:
            warnings.append(f"{what}: empty amodal segmentation; region skipped")
            continue
        if not usable_polygons(
            segm, image.height, image.width, what, warnings, name="amodal segmentation", key="segmentation",
            skipped="region",
        ):  # fmt: skip
            continue
        raw_amodal = polygon_extent(polys) if polys is not None else segm_box(segm, image.height, image.width)
        amodal_box = (
            None
            if raw_amodal is None
            else checked_box(raw_amodal, image.width, image.height, f"{what} (amodal box)", warnings)
        )
        if amodal_box is None:
            if raw_amodal is None:
                warnings.append(f"{what}: amodal segmentation has no area; region skipped")
            continue
        vis_segm = r.get("visible_mask")
        if vis_segm is not None:
            mask = make_mask(vis_segm, image.height, image.width, f"{what} (visible_mask)", rles)
            if not usable_polygons(
                vis_segm, image.height, image.width, what, warnings, name="visible_mask", key="visible_mask",
                skipped="region",
            ):  # fmt: skip
                continue
            raw_box = segm_box(vis_segm, image.height, image.width)
            if mask is None or raw_box is None:
                warnings.append(f"{what}: empty visible mask (fully occluded); region skipped")
                continue
            box = checked_box(raw_box, image.width, image.height, f"{what} (visible box)", warnings)
            if box is None:
                continue
        else:
            mask, box = amodal_mask, amodal_box
        order = r.get("order")
        if order is not None:
            order = as_int(order, f"{what} order")
            if order < 1:
                raise DatasetFormatError(f"{what}: 'order' must be 1 or more (1 = front), got {order}")
        out.append(
            Instance(
                id=first_id + len(out),
                category=class_name(r.get("name"), what),
                box=box,
                mask=mask,
                amodal_box=amodal_box,
                amodal_mask=amodal_mask,
                order=None if order is None else order - 1,
                extra={"region_index": k, **extra_fields(r, REGION_MASK_KEYS)},
            )
        )
    check_queued_rles(rles)
    return out


def _image_extra(obj: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for key, v in obj.items():
        if key in skip:
            continue
        extra["cocoa_id" if key == "id" else key] = plain_json(v)
    return extra


def _read_image_file(
    json_path: Path, images: Path | None, first_id: int, index: int, warnings: list[str]
) -> AnnotatedImage | None:
    obj = load_json_object(json_path, what="COCOA per-image JSON")
    return _image_from_object(obj, json_path, images, first_id, index, warnings)


def _image_from_object(
    obj: dict[str, Any], json_path: Path, images: Path | None, first_id: int, index: int, warnings: list[str]
) -> AnnotatedImage | None:
    if not is_cocoa_image_file(obj):
        raise DatasetFormatError(f"{json_path}: not a COCOA per-image file: no top-level 'regions' list")
    if not isinstance(obj["regions"], list):
        kind = json_kind(obj["regions"])
        raise DatasetFormatError(f"{json_path}: not a COCOA per-image file: 'regions' is {kind}, not a list")
    img_path = abs_path(_image_file(json_path, images))
    size = _image_size(obj, img_path, obj.get("regions"))
    if size is None:
        warnings.append(f"{json_path.name}: no image size in the JSON and no readable image {img_path}; skipped")
        return None
    image_id = as_int(obj["image_id"], f"{json_path} image_id") if "image_id" in obj else index
    image = AnnotatedImage(image_id, img_path, size[0], size[1], extra=_image_extra(obj, {"regions", "image_id"}))
    image.instances = _regions_to_instances(obj["regions"], image, first_id, json_path.name, warnings)
    return image


def _finish(images: list[AnnotatedImage], source: Path, warnings: list[str]) -> Dataset:
    names = list(dict.fromkeys(inst.category for im in images for inst in im.instances))  # first appearance
    missing = [im.path.name for im in images if not im.path.is_file()]
    if missing:
        warnings.append(f"{len(missing)} of {len(images)} image files not found: {', '.join(missing[:5])}")
    ids = [im.image_id for im in images]
    if len(set(ids)) != len(ids):
        warnings.append(f"{source.name}: image ids repeat across the COCOA files; images renumbered 1..{len(ids)}")
        for k, im in enumerate(images, start=1):
            im.image_id = k
    return Dataset(images, names, source, "cocoa", warnings, {n: k for k, n in enumerate(names, start=1)})


def read_cocoa(path: str | Path, *, images: str | Path | None = None) -> Dataset:
    """Read a COCOA per-image JSON, a folder of them (``N.json`` beside ``N.jpg``) or one COCOA JSON."""
    p = abs_path(path)
    img_dir = None if images is None else abs_path(images)
    if img_dir is not None:
        require_image_dir(img_dir, f"given for {p}")
    warnings: list[str] = []
    if p.is_dir():
        files = sorted(p.glob("*.json"), key=lambda f: (len(f.stem), f.stem))
        if not files:
            raise DatasetFormatError(f"{p}: no COCOA per-image *.json files in this folder")
        out: list[AnnotatedImage] = []
        next_id = 1
        for k, f in enumerate(files, start=1):
            im = _read_image_file(f, img_dir, next_id, k, warnings)
            if im is not None:
                out.append(im)
                next_id += len(im.instances)
        return _finish(out, p, warnings)
    if not p.is_file():
        raise FileNotFoundError(f"COCOA annotation file or folder not found: {p}")
    return read_cocoa_object(load_json_object(p, what="COCOA JSON"), p, images=img_dir)


def read_cocoa_object(obj: dict[str, Any], p: Path, *, images: str | Path | None = None) -> Dataset:
    """:func:`read_cocoa` of an already loaded JSON file (a per-image file or a COCOA collection)."""
    img_dir = None if images is None else abs_path(images)
    warnings: list[str] = []
    if is_cocoa_image_file(obj):
        im = _image_from_object(obj, p, img_dir, 1, 1, warnings)
        return _finish([] if im is None else [im], p, warnings)
    if is_cocoa_collection(obj):
        return _read_collection(obj, p, img_dir, warnings)
    raise DatasetFormatError(
        f"{p}: not a COCOA file: neither a per-image file with 'regions' nor annotations with 'regions'"
    )


def _read_collection(obj: dict[str, Any], path: Path, img_dir: Path | None, warnings: list[str]) -> Dataset:
    """The original COCOA layout: ``images`` + ``annotations`` whose entries hold the ``regions`` of one image."""
    image_list = require_list(obj, "images", path, "COCOA")
    names = [str(im.get("file_name", "")) for im in image_list if isinstance(im, dict)]
    root = img_dir or find_image_dir(path, names) or path.parent
    by_id: dict[int, dict[str, Any]] = {}
    for k, im in enumerate(image_list):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise DatasetFormatError(f"{path}: images[{k}] needs 'id' and 'file_name', got {str(im)[:120]}")
        by_id[as_int(im["id"], f"{path}: images[{k}] id")] = im
    out: list[AnnotatedImage] = []
    next_id = 1
    for k, ann in enumerate(require_list(obj, "annotations", path, "COCOA")):
        if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("regions"), list):
            raise DatasetFormatError(f"{path}: annotations[{k}] needs 'image_id' and a 'regions' list")
        image_id = as_int(ann["image_id"], f"{path}: annotations[{k}] image_id")
        im = by_id.get(image_id)
        if im is None:
            raise DatasetFormatError(f"{path}: annotations[{k}] refers to unknown image id {image_id}")
        img_path = abs_path(root / im["file_name"])
        size = _image_size(im, img_path, ann["regions"])
        if size is None:
            warnings.append(f"{path.name}: image {image_id} has no size and no readable file {img_path}; skipped")
            continue
        extra = _image_extra(im, {"id", "file_name", "width", "height"})
        extra.update(_image_extra(ann, {"regions", "image_id"}))
        image = AnnotatedImage(image_id, img_path, size[0], size[1], extra=extra)
        where = f"{path.name}: image {image_id} ({im['file_name']}), annotation {ann.get('id')}"
        image.instances = _regions_to_instances(ann["regions"], image, next_id, where, warnings)
        next_id += len(image.instances)
        out.append(image)
    return _finish(out, path, warnings)
