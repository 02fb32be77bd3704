"""Helpers shared by the dataset readers: format errors, box checks, image-folder search, JSON loading."""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from occseg.data.images import ImageError, image_size
from occseg.data.masks import LazyMask, MaskError, RleBatch, check_rle, empty_polygon_reason, polygon_problem
from occseg.geometry.boxes import Box, BoxError, validate_box, xywh_to_xyxy
from occseg.io import read_json

#: File extensions tried when an image is looked up by its stem.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DatasetFormatError(ValueError):
    """A file that is not the format it was declared (or detected) to be, or is inconsistent."""


def a_or_an(noun: str) -> str:
    """``noun`` with its indefinite article: ``"a COCO instances JSON"``, ``"an annotation JSON"``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' and noun[:1] else 'a'} {noun}"


def json_kind(value: Any) -> str:
    """What a JSON value is, with its article, in JSON's words: ``"null"``, ``"a string"``, ``"an object"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return a_or_an(type(value).__name__)


#: the keys whose polygons :func:`compact_polygons` keeps compact while a JSON file is parsed
POLYGON_KEYS = frozenset({"segmentation", "i_segm", "a_segm", "inmodal_seg"})
#: array type codes of compact polygons: all floats (``d``) or all integers (``q``), so each value reads back as
#: the JSON number it was
_COMPACT_CODES = {float: "d", int: "q"}


def compact_polygon(p: list) -> list | array:
    """A polygon (flat list of coordinates) as an :class:`array.array` of 8 bytes per number when its numbers are
    all floats or all integers (a Python float in a list takes 32 bytes), else the list itself (booleans, strings
    or mixed numbers: the readers' checks name them)."""
    kinds = {type(v) for v in p}
    if len(kinds) != 1:
        return p
    code = _COMPACT_CODES.get(kinds.pop())
    if code is None:
        return p
    try:
        return array(code, p)
    except OverflowError:  # an integer beyond 64 bits
        return p


def compact_polygons(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``object_hook`` of the readers' JSON parsing: the polygons of a segmentation (a list of flat lists of
    numbers under one of :data:`POLYGON_KEYS`) become compact arrays as soon as their object is parsed, so the
    parse never holds a large file's coordinates as Python floats (about 4 times the memory)."""
    for key in POLYGON_KEYS.intersection(obj):
        segm = obj[key]
        if isinstance(segm, list) and segm and all(type(p) is list for p in segm):
            obj[key] = [compact_polygon(p) for p in segm]
    return obj


def plain_json(value: Any) -> Any:
    """``value`` with compact polygons (:func:`compact_polygons`) back as lists, for the fields kept as they are
    (``extra``): they are written back as JSON."""
    if isinstance(value, array):
        return value.tolist()
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    return value


def extra_fields(record: dict[str, Any], consumed: Iterable[str]) -> dict[str, Any]:
    """The fields of a JSON record that a reader keeps as they are (every key not in ``consumed``)."""
    used = set(consumed)
    return {k: plain_json(v) for k, v in record.items() if k not in used}


def load_json_object(path: Path, *, what: str) -> dict[str, Any]:
    """A JSON file whose top level must be an object; errors name the file (and line for syntax errors). The
    polygons of segmentations are kept compact (:func:`compact_polygons`)."""
    obj = read_json(path, what=what, object_hook=compact_polygons)
    if not isinstance(obj, dict):
        kind = json_kind(obj)
        raise DatasetFormatError(f"{path}: not {a_or_an(what)}: the top level is {kind}, not an object")
    return obj


def read_text_file(path: Path, *, what: str) -> str:
    """A UTF-8 text file (a byte-order mark is dropped); a file in another encoding is a
    :class:`DatasetFormatError` naming it, like :func:`occseg.io.read_json` does for JSON files."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise DatasetFormatError(
            f"{path}: not a UTF-8 text file (byte 0x{byte:02x} at position {exc.start}), so not {a_or_an(what)}"
        ) from None


def require_list(obj: dict[str, Any], key: str, path: Path, fmt: str) -> list[Any]:
    """``obj[key]`` as a list, or a :class:`DatasetFormatError` naming the file and the missing key."""
    if key not in obj:
        keys = ", ".join(sorted(obj)[:8]) or "none"
        raise DatasetFormatError(f"{path}: not {a_or_an(fmt)} file: no top-level '{key}' list (keys: {keys})")
    value = obj[key]
    if not isinstance(value, list):
        raise DatasetFormatError(f"{path}: not {a_or_an(fmt)} file: '{key}' is {json_kind(value)}, not a list")
    return value


#: The largest image side occseg reads (JPEG's limit); a larger declared size is taken as a broken annotation.
MAX_IMAGE_SIDE = 65535


def as_int(value: Any, what: str) -> int:
    """An integer id (ints, integral floats and digit strings), or :class:`DatasetFormatError` naming ``what``."""
    if isinstance(value, bool):
        raise DatasetFormatError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise DatasetFormatError(f"{what}: expected an integer, got {value!r}")


def as_flag(value: Any, what: str) -> bool:
    """A 0/1 flag such as ``iscrowd`` (0, 1, false, true; null is 0), or :class:`DatasetFormatError`."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)) and value in (0, 1):
        return bool(value)
    raise DatasetFormatError(f"{what}: expected 0 or 1, got {value!r}")


def checked_box(box: Sequence[float], width: int, height: int, what: str, warnings: list[str]) -> Box | None:
    """:func:`validate_box` that records problems in ``warnings`` instead of raising.

    Returns the (possibly clipped) box, or ``None`` when the box is unusable (zero area, inverted,
    entirely outside the image, not four finite numbers); the caller then skips the annotation.
    """
    try:
        clipped, warning = validate_box(box, width, height, what=what)
    except BoxError as exc:
        warnings.append(f"{exc}; annotation skipped")
        return None
    if warning is not None:
        warnings.append(warning)
    return clipped


def xywh_box(value: Any, what: str) -> Box:
    """A COCO ``[x, y, w, h]`` as an xyxy box; raises :class:`BoxError` naming ``what``."""
    if not isinstance(value, (list, tuple)):
        raise BoxError(f"{what}: a box must be a list [x, y, w, h], got {value!r}")
    if len(value) != 4:
        raise BoxError(f"{what}: a COCO bbox needs 4 numbers (x, y, width, height), got {len(value)}: {value!r:.200}")
    try:
        return xywh_to_xyxy(value)
    except BoxError as exc:
        raise BoxError(f"{what}: {exc}") from exc


def polygon_list(segm: Any) -> list[list[float]] | None:
    """COCO polygons as a list of flat coordinate lists; a single flat list is wrapped. ``None`` if not polygons."""
    if not isinstance(segm, list) or not segm:
        return None
    if all(isinstance(v, (int, float)) for v in segm):
        return [list(segm)]
    if all(isinstance(p, (list, array)) for p in segm):
        return segm
    return None


def polygon_extent(polys: Iterable[Sequence[float]]) -> Box | None:
    """The xyxy extent of the vertices of some polygons (no rasterisation), ``None`` without vertices."""
    xs: list[float] = []
    ys: list[float] = []
    for p in polys:
        if len(p) < 6:
            continue
        xs.extend(p[0::2])
        ys.extend(p[1::2])
    if not xs or not ys:
        return None
    return (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))


def segm_box(segm: Any, height: int, width: int) -> Box | None:
    """The box of a segmentation without decoding it: polygon vertex extent, or ``toBbox`` of an RLE."""
    polys = polygon_list(segm)
    if polys is not None:
        return polygon_extent(polys)
    if isinstance(segm, dict):
        rle = LazyMask(segm, height, width).rle
        if int(mask_utils.area(rle)) == 0:
            return None
        return xywh_to_xyxy([float(v) for v in mask_utils.toBbox(rle)])
    return None


def make_mask(segm: Any, height: int, width: int, what: str, rles: RleBatch | None = None) -> LazyMask | None:
    """A :class:`LazyMask` of a COCO segmentation (polygons or RLE), ``None`` when there is none.

    Only cheap checks are done here (no rasterisation): the segmentation type, polygon lengths, and the
    RLE size and run lengths (:func:`~occseg.data.masks.check_rle`). Problems raise
    :class:`DatasetFormatError` naming ``what``. With ``rles``, compressed RLE strings are queued there
    and checked by :func:`check_queued_rles` once the file is read (one vectorised pass for all masks).
    Polygon coordinates that are not finite or lie far outside the image are not an error here but a reason
    to skip the annotation: see :func:`checked_polygons`.
    """
    if segm is None or (isinstance(segm, list) and not segm):
        return None
    polys = polygon_list(segm)
    if polys is not None:
        for k, p in enumerate(polys):
            if not isinstance(p, array) and not all(isinstance(v, (int, float)) for v in p):
                bad = next(v for v in p if not isinstance(v, (int, float)))
                raise DatasetFormatError(f"{what}: polygon {k} holds {json_kind(bad)} ({bad!r:.40}), not a number")
            if len(p) % 2:
                raise DatasetFormatError(f"{what}: polygon {k} has an odd number of coordinates ({len(p)})")
        if not any(len(p) >= 6 for p in polys):
            return None
        return LazyMask([p if isinstance(p, array) else compact_polygon(p) for p in polys], height, width)
    if isinstance(segm, dict):
        try:
            check_rle(segm, height, width, batch=rles, label=what)
        except MaskError as exc:
            raise DatasetFormatError(f"{what}: {exc}") from None
        return LazyMask(segm, height, width)
    raise DatasetFormatError(f"{what}: unknown segmentation type {type(segm).__name__}")


def short_polygons_warning(polys: Sequence[Sequence[float]], what: str) -> str | None:
    """The warning for polygons of fewer than 3 points (``[[]]``, ``[[x1, y1, x2, y2]]``), which cover no area and
    are left out of the mask: ``"{what}: polygon K has N point(s), fewer than 3: left out"``, or ``...: no mask``
    when no polygon is left. ``None`` when every polygon has 3 points or more."""
    short = [(k, len(p) // 2) for k, p in enumerate(polys) if len(p) < 6]
    if not short:
        return None
    k, n = short[0]
    more = f" (and {len(short) - 1} more such polygon(s))" if len(short) > 1 else ""
    fate = "no mask" if len(short) == len(polys) else "left out"
    return f"{what}: polygon {k} has {n} point(s), fewer than 3{more}: {fate}"


def checked_polygons(segm: Any, height: int, width: int, what: str, warnings: list[str]) -> bool:
    """:func:`~occseg.data.masks.polygon_problem` of a segmentation's polygons, recorded in ``warnings``.

    ``False`` (with the warning ``"{what}: polygon K vertex J (x, y) is not finite; annotation skipped"`` or
    ``"... lies too far outside the WxH image ...; annotation skipped"``) when a coordinate is not a finite
    number or a vertex lies more than one image width / height beyond the border: the caller skips the
    annotation, as it does one with a non-finite or outside box (:func:`checked_box`). Such polygons are
    refused rather than clipped, since clipping a vertex changes the shape inside the image. ``True`` for
    usable polygons, RLE and no segmentation. Call it after :func:`make_mask` (which checks the structure).
    Polygons of fewer than 3 points are a warning too (:func:`short_polygons_warning`), not a skip.
    """
    polys = polygon_list(segm)
    if polys is None:
        return True
    short = short_polygons_warning(polys, what)
    if short:
        warnings.append(short)
    problem = polygon_problem(polys, height, width)
    if problem is None:
        return True
    warnings.append(f"{what}: {problem}; annotation skipped")
    return False


def empty_polygons(segm: Any, height: int, width: int) -> str | None:
    """Why a polygon segmentation (that passed :func:`checked_polygons`) covers no pixel of the image:
    ``"lies entirely outside the WxH image"`` or ``"covers no pixel (area A)"``
    (:func:`~occseg.data.masks.empty_polygon_reason`); ``None`` otherwise, and for RLE or no segmentation."""
    polys = polygon_list(segm)
    return None if polys is None else empty_polygon_reason(polys, height, width)


def usable_polygons(
    segm: Any,
    height: int,
    width: int,
    what: str,
    warnings: list[str],
    *,
    name: str = "polygon",
    key: str | None = None,
    skipped: str = "annotation",
) -> bool:
    """:func:`checked_polygons` (naming ``what (key)``, or ``what`` without a key), then :func:`empty_polygons`
    as a skip warning (``"{what}: the {name} covers no pixel (area 0); {skipped} skipped"``): ``False`` when the
    annotation is to be skipped for its polygons."""
    if not checked_polygons(segm, height, width, what if key is None else f"{what} ({key})", warnings):
        return False
    empty = empty_polygons(segm, height, width)
    if empty is not None:
        warnings.append(f"{what}: the {name} {empty}; {skipped} skipped")
        return False
    return True


def check_queued_rles(rles: RleBatch) -> None:
    """Check the RLE strings :func:`make_mask` queued; the first invalid one is a :class:`DatasetFormatError`."""
    try:
        rles.check()
    except MaskError as exc:
        raise DatasetFormatError(str(exc)) from None


def find_image_dir(json_path: Path, file_names: Sequence[str], extra: Sequence[Path] = ()) -> Path | None:
    """The folder that holds a JSON's images, searched in the standard layouts.

    ``annotations/instances_X.json`` (or ``update_X_2020.json`` etc.) beside ``X/``, ``images/X/``, ``images/``
    or KITTI-style ``training/image_2``; also the JSON's own folder. A folder is chosen when it holds the
    first few named files. ``None`` when no candidate does.
    """
    json_dir = json_path.parent
    root = json_dir.parent if json_dir.name == "annotations" else json_dir
    stem = json_path.stem
    splits: list[str] = []
    for prefix in ("instances_", "update_", "person_keypoints_", "captions_"):
        if stem.startswith(prefix):
            splits.append(stem[len(prefix) :])
    splits.append(stem)
    splits += [s.split("_")[0] for s in list(splits)]
    candidates: list[Path] = list(extra)
    for split in dict.fromkeys(splits):
        candidates += [root / split, root / "images" / split]
    candidates += [root / "images", root / "image_2", json_dir]
    for sub in ("training", "testing"):
        candidates += [root / sub / "image_2", root / "data_object_image_2" / sub / "image_2"]
    probe = [f for f in file_names[:5] if f]
    if not probe:
        return None
    for cand in dict.fromkeys(candidates):
        if cand.is_dir() and all((cand / f).is_file() for f in probe):
            return abs_path(cand)
    return None


def abs_path(path: str | Path) -> Path:
    """An absolute, normalised path (``..`` removed) without resolving symbolic links."""
    return Path(os.path.normpath(os.path.abspath(path)))


def require_image_dir(folder: Path, context: str) -> Path:
    """``folder`` when it is a folder; else a ``FileNotFoundError`` saying it is missing or is a file (``context``
    says what it was given for)."""
    if folder.is_dir():
        return folder
    if folder.exists():
        raise FileNotFoundError(f"image folder {folder} is a file, not a folder ({context})")
    raise FileNotFoundError(f"image folder not found: {folder} ({context})")


def missing_images_warning(paths: Sequence[Path], where: str) -> str | None:
    """One warning for the image files that do not exist (``None`` when all do)."""
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return None
    shown = ", ".join(p.name for p in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"{len(missing)} of {len(paths)} image files not found {where}: {shown}{more}"


def header_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the image header, ``None`` when the file is missing or unreadable."""
    try:
        return image_size(path)
    except ImageError:
        return None


def image_ids_from_stems(stems: Sequence[str]) -> list[int]:
    """Image ids for files named by stems: the numbers when all stems are distinct integers, else 1..N."""
    if stems and all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(stems) + 1))


def sorted_files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files below ``folder`` (recursively) with one of the suffixes (case-insensitive), sorted by path."""
    sfx = {s.lower() for s in suffixes}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in sfx and p.is_file())
