"""KITTI object-benchmark ``label_2`` files (``image_2/*.png`` + ``label_2/*.txt``): 2-D boxes only.

A line is ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]``. ``DontCare`` lines are
skipped; class names are kept as in the file (``Car``, ``Pedestrian``, ...). Truncation, the occlusion flag
(0 fully visible, 1 partly, 2 largely occluded, 3 unknown) and the 3-D fields go to :attr:`Instance.extra`;
a truncation outside [0, 1] or another flag is an error naming the file and line (-1, the devkit's value for
"not given" in result files, is accepted for both).
"""

from __future__ import annotations

from pathlib import Path

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.readers.common import (
    IMAGE_EXTENSIONS,
    DatasetFormatError,
    abs_path,
    checked_box,
    header_size,
    image_ids_from_stems,
    read_text_file,
    require_image_dir,
    sorted_files,
)
from occseg.data.readers.names import KITTI_NAMES

IGNORED_TYPES = frozenset({"DontCare"})
#: The KITTI occlusion flags: 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown; -1 (like a
#: truncation of -1) where the field is not given, as in detection results.
OCCLUSION_FLAGS = frozenset({-1.0, 0.0, 1.0, 2.0, 3.0})


def _folders(root: Path, images: str | Path | None) -> tuple[Path, Path]:
    if (root / "label_2").is_dir():
        labels, default_images = root / "label_2", root / "image_2"
    elif root.name == "label_2":
        labels, default_images = root, root.parent / "image_2"
    else:
        raise DatasetFormatError(f"{root}: not a KITTI folder: no 'label_2/' folder")
    img_dir = abs_path(images) if images is not None else default_images
    require_image_dir(img_dir, f"for the KITTI labels in {labels}")
    return labels, img_dir


def read_kitti(path: str | Path, *, images: str | Path | None = None) -> Dataset:
    """Read a KITTI ``label_2`` folder (or its parent) with the images in ``image_2`` (or ``images``)."""
    root = abs_path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"KITTI folder not found: {root}")
    labels_dir, img_dir = _folders(root, images)
    warnings: list[str] = []
    image_files = {p.stem: p for p in sorted_files(img_dir, IMAGE_EXTENSIONS)}
    label_files = sorted(labels_dir.glob("*.txt"))
    if not label_files:
        raise DatasetFormatError(f"{labels_dir}: no KITTI label files (*.txt)")
    ids = image_ids_from_stems([f.stem for f in label_files])
    out: list[AnnotatedImage] = []
    names = list(KITTI_NAMES)
    next_id = 1
    for lf, image_id in zip(label_files, ids):
        ip = image_files.get(lf.stem)
        size = None if ip is None else header_size(ip)
        if ip is None or size is None:
            warnings.append(f"{lf.name}: no readable image {lf.stem}.* in {img_dir}; label file skipped")
            continue
        image = AnnotatedImage(image_id, abs_path(ip), size[0], size[1])
        for lineno, line in enumerate(read_text_file(lf, what="KITTI label file").splitlines(), start=1):
            parts = line.split()
            if not parts or parts[0] in IGNORED_TYPES:
                continue
            if len(parts) not in (15, 16):
                raise DatasetFormatError(
                    f"{lf} line {lineno}: a KITTI label line has 15 (or 16 with a score) fields, got {len(parts)}"
                )
            try:
                v = [float(x) for x in parts[1:]]
            except ValueError as exc:
                raise DatasetFormatError(f"{lf} line {lineno}: not a KITTI label line ({exc})") from exc
            if not (0.0 <= v[0] <= 1.0 or v[0] == -1.0):
                raise DatasetFormatError(
                    f"{lf} line {lineno}: truncation {parts[1]} is not in [0, 1] (or -1 where not given, as in results)"
                )
            if v[1] not in OCCLUSION_FLAGS:
                raise DatasetFormatError(
                    f"{lf} line {lineno}: occlusion flag {parts[2]} is not 0 (fully visible), 1 (partly occluded), "
                    "2 (largely occluded), 3 (unknown) or -1 (not given, as in results)"
                )
            what = f"{lf.name} line {lineno} (image {ip.name})"
            box = checked_box(v[3:7], image.width, image.height, what, warnings)
            if box is None:
                continue
            cls = parts[0]
            if cls not in names:
                names.append(cls)
            extra: dict[str, object] = {
                "truncated": v[0],
                "occluded": int(v[1]),
                "alpha": v[2],
                "dimensions": v[7:10],
                "location": v[10:13],
                "rotation_y": v[13],
            }
            if len(v) == 15:
                extra["score"] = v[14]
            image.instances.append(Instance(id=next_id, category=cls, box=box, extra=extra))
            next_id += 1
        out.append(image)
    return Dataset(out, names, root, "kitti", warnings, {n: k for k, n in enumerate(names, start=1)})
