"""YOLO label folders: ``images/`` + ``labels/`` with one ``.txt`` per image.

A line is either a normalised polygon ``class x1 y1 x2 y2 ...`` (YOLO-seg: box = the polygon's extent, mask =
the polygon) or a normalised box ``class cx cy w h`` (box only, no mask). Class names are the COCO-80 names
unless a names file sits in the dataset folder: ``names.txt`` / ``classes.txt`` (one name per line) or a
``*.yaml`` with a ``names:`` list or mapping (parsed without a YAML library).

Label files whose image is missing are skipped with a warning; images without a label file are not part of
the dataset (also a warning); an empty label file is an image without objects. A line whose box is unusable,
or whose polygon has a non-finite vertex, a vertex more than one image width / height outside the image or
covers no pixel (entirely outside, zero area), is skipped with a warning.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import LazyMask
from occseg.data.readers.common import (
    IMAGE_EXTENSIONS,
    DatasetFormatError,
    abs_path,
    checked_box,
    header_size,
    image_ids_from_stems,
    polygon_extent,
    read_text_file,
    require_image_dir,
    sorted_files,
    usable_polygons,
)
from occseg.data.readers.names import COCO80_NAMES
from occseg.geometry.boxes import BoxError, cxcywh_norm_to_xyxy

NAMES_FILES: tuple[str, ...] = ("names.txt", "classes.txt", "obj.names", "data.yaml", "dataset.yaml")


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_INLINE_FORMS = "a list [a, b, ...] or a mapping {0: a, 1: b, ...}"


def _index_item(item: str, source: str) -> tuple[int, str]:
    """One ``index: name`` item of a ``names`` mapping, or :class:`DatasetFormatError` naming ``source``."""
    key, sep, val = item.partition(":")
    if not sep or not key.strip().isdigit():
        raise DatasetFormatError(f"{source}: 'names' entry {item.strip()!r} is not 'index: name'")
    return int(key), _unquote(val)


def _names_in_index_order(names: dict[Any, Any], source: str) -> list[str]:
    """The names of an ``index -> name`` mapping whose indices must be the class indices 0 .. N-1."""
    keys = list(names)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in keys) or sorted(keys) != list(range(len(keys))):
        raise DatasetFormatError(
            f"{source}: the 'names' indices must be the class indices 0..{len(keys) - 1}, got {keys!r:.80}"
        )
    return [str(names[i]) for i in range(len(keys))]


def _inline_names(rest: str, source: str) -> list[str]:
    """The names of an inline ``names:`` value (a YAML flow list or mapping, items quoted or not)."""
    try:
        value = ast.literal_eval(rest)
    except (ValueError, SyntaxError):
        closing = {"[": "]", "{": "}"}.get(rest[0])
        if closing is None or not rest.endswith(closing):
            what = f"it has no closing {closing!r}; expected" if closing else "it is not"
            msg = f"{source}: cannot read the 'names' entry {rest!r}: {what} {_INLINE_FORMS}"
            raise DatasetFormatError(msg) from None
        items = [v for v in rest[1:-1].split(",") if v.strip()]
        if closing == "]":
            return [_unquote(v) for v in items]
        value = dict(_index_item(v, source) for v in items)
    if isinstance(value, dict):
        return _names_in_index_order(value, source)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise DatasetFormatError(f"{source}: cannot read the 'names' entry {rest!r}: it is not {_INLINE_FORMS}")


def parse_yaml_names(text: str, *, source: str = "yaml") -> list[str] | None:
    """The ``names:`` entry of a YOLO data YAML (inline list/dict, block list, or ``index: name`` lines).

    ``None`` without a ``names:`` entry. An entry that cannot be read (unbalanced brackets, an item that is
    not ``index: name``, indices other than 0 .. N-1) is a :class:`DatasetFormatError` naming ``source``.
    """
    lines = text.splitlines()
    for k, line in enumerate(lines):
        m = re.match(r"^(\s*)names\s*:\s*(.*?)\s*$", line)
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2)
        if rest and not rest.startswith("#"):
            return _inline_names(rest, source)
        names: dict[int, str] = {}
        for sub in lines[k + 1 :]:
            if not sub.strip() or sub.strip().startswith("#"):
                continue
            sub_indent = len(sub) - len(sub.lstrip())
            item = sub.strip()
            if item.startswith("- ") and sub_indent >= indent:
                names[len(names)] = _unquote(item[2:].split(" #")[0])
            elif sub_indent > indent and ":" in item:
                index, name = _index_item(item.split(" #")[0], source)
                names[index] = name
            else:
                break
        return _names_in_index_order(names, source)
    return None


def read_names_file(path: str | Path) -> list[str]:
    """Class names from a ``.txt`` (one per line) or a YAML file with ``names:``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"names file not found: {p}")
    text = read_text_file(p, what="class names file")
    if p.suffix.lower() in (".yaml", ".yml"):
        names = parse_yaml_names(text, source=str(p))
        if names is None:
            raise DatasetFormatError(f"{p}: no 'names:' entry in this YAML file")
        return names
    return [line.strip() for line in text.splitlines() if line.strip()]


def find_names_file(folders: Sequence[Path]) -> Path | None:
    """The first names file (``names.txt``, ``classes.txt``, ``data.yaml``, any ``*.yaml`` with names) found."""
    for folder in folders:
        for name in NAMES_FILES:
            if (folder / name).is_file():
                return folder / name
        for y in sorted(folder.glob("*.y*ml")):
            if parse_yaml_names(y.read_text(encoding="utf-8", errors="replace"), source=str(y)) is not None:
                return y
    return None


def _folders(root: Path, images: str | Path | None) -> tuple[Path, Path]:
    if (root / "labels").is_dir():
        labels = root / "labels"
        default_images = root / "images"
    elif "labels" in root.parts:
        labels = root
        parts = list(root.parts)
        idx = len(parts) - 1 - parts[::-1].index("labels")
        default_images = Path(*parts[:idx], "images", *parts[idx + 1 :])
    else:
        raise DatasetFormatError(f"{root}: not a YOLO dataset folder: no 'labels/' folder")
    img_dir = abs_path(images) if images is not None else default_images
    require_image_dir(img_dir, f"for the YOLO labels in {labels}")
    return labels, img_dir


def read_yolo(
    path: str | Path, *, images: str | Path | None = None, names: Sequence[str] | str | Path | None = None
) -> Dataset:
    """Read a YOLO / YOLO-seg label folder. ``names``: class names or a names file (default: found or COCO-80)."""
    root = abs_path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"YOLO dataset folder not found: {root}")
    labels_dir, img_dir = _folders(root, images)
    warnings: list[str] = []
    if names is None:
        names_file = find_names_file([root, labels_dir])
        class_names = list(COCO80_NAMES) if names_file is None else read_names_file(names_file)
    elif isinstance(names, (str, Path)):
        class_names = read_names_file(names)
    else:
        class_names = [str(n) for n in names]

    image_files = {p.relative_to(img_dir).with_suffix(""): p for p in sorted_files(img_dir, IMAGE_EXTENSIONS)}
    label_files = sorted_files(labels_dir, (".txt",))
    label_files = [f for f in label_files if f.name not in NAMES_FILES]
    pairs: list[tuple[Path, Path]] = []
    for lf in label_files:
        key = lf.relative_to(labels_dir).with_suffix("")
        ip = image_files.pop(key, None)
        if ip is None:
            shown = lf.relative_to(root) if lf.is_relative_to(root) else lf
            warnings.append(f"{shown}: label file has no image {key}.* in {img_dir}; skipped")
            continue
        pairs.append((lf, ip))
    if image_files:
        shown = ", ".join(str(k) for k in list(image_files)[:5]) + (" ..." if len(image_files) > 5 else "")
        warnings.append(f"{len(image_files)} images in {img_dir} have no label file and are not included: {shown}")

    ids = image_ids_from_stems([ip.stem for _, ip in pairs])
    out: list[AnnotatedImage] = []
    next_id = 1
    for (lf, ip), image_id in zip(pairs, ids):
        size = header_size(ip)
        if size is None:
            warnings.append(f"{ip}: cannot read the image header; {lf.name} skipped")
            continue
        image = AnnotatedImage(image_id, abs_path(ip), size[0], size[1])
        image.instances = _read_label_file(lf, image, class_names, next_id, warnings)
        next_id += len(image.instances)
        out.append(image)
    return Dataset(out, class_names, root, "yolo", warnings, {n: k for k, n in enumerate(class_names, start=1)})


def _read_label_file(
    path: Path, image: AnnotatedImage, names: Sequence[str], first_id: int, warnings: list[str]
) -> list[Instance]:
    w, h = image.width, image.height
    out: list[Instance] = []
    for lineno, line in enumerate(read_text_file(path, what="YOLO label file").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        what = f"{path.name} line {lineno} (image {image.path.name})"
        try:
            cls_f = float(parts[0])
            values = [float(v) for v in parts[1:]]
        except ValueError as exc:
            raise DatasetFormatError(f"{path} line {lineno}: not a YOLO label line ({exc}): {line[:80]!r}") from exc
        if not cls_f.is_integer() or not 0 <= cls_f < len(names):
            raise DatasetFormatError(
                f"{path} line {lineno}: unknown class {parts[0]} (there are {len(names)} class names)"
            )
        cls = int(cls_f)
        n = len(values)
        mask = None
        if n == 4:
            try:
                raw = cxcywh_norm_to_xyxy(values, w, h)
            except BoxError as exc:
                warnings.append(f"{what}: {exc}; annotation skipped")
                continue
        elif n >= 6 and n % 2 == 0:
            poly = [v * (w if k % 2 == 0 else h) for k, v in enumerate(values)]
            if not usable_polygons([poly], h, w, what, warnings):
                continue
            raw = polygon_extent([poly])
            mask = LazyMask([poly], h, w)
        else:
            warnings.append(
                f"{what}: expected 4 numbers (cx cy w h) or an even number >= 6 (polygon), got {n}; line skipped"
            )
            continue
        box = checked_box(raw, w, h, what, warnings)  # type: ignore[arg-type]
        if box is None:
            continue
        out.append(Instance(id=first_id + len(out), category=names[cls], box=box, mask=mask))
    return out
