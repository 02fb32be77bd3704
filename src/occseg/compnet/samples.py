"""Training samples: boxes and classes only. Masks of the training data are never read.

:func:`box_samples` is the only bridge from an annotated :class:`~occseg.data.annotation.Dataset` to
training: it copies the image path, the box and the (mapped) class name, and nothing else, so the
training code cannot see a mask even by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from occseg.checks import is_number
from occseg.data.annotation import Dataset, require_dataset
from occseg.geometry.boxes import Box, box_height

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoxSample:
    """One training object: where its image is, its box, its class. Nothing more."""

    image: Path
    image_id: int
    box: Box
    category: str
    others: tuple[Box, ...] = ()  # the other annotated boxes of the image (for outlier sampling)
    image_size: tuple[int, int] | None = None  # (width, height) as annotated; the image file must have it


def box_samples(
    dataset: Dataset,
    classes: Sequence[str],
    *,
    class_map: Mapping[str, str] | None = None,
    min_height: float = 30.0,
    use_amodal_boxes: bool = True,
    exclude_images: set[int] | None = None,
) -> list[BoxSample]:
    """Box-only samples of the given (model) classes.

    ``class_map`` maps dataset class names to model class names (e.g. truck -> vehicle); classes not in
    the map keep their name. Crowd annotations and boxes lower than ``min_height`` px are skipped.
    The amodal box is used where the data has one (the paper's protocol), else the visible box.
    """
    require_dataset(dataset, "dataset")
    if not is_number(min_height) or not min_height >= 0:
        raise ValueError(f"min_height must be a number of pixels >= 0, not {min_height!r}")
    classes = [classes] if isinstance(classes, str) else list(classes)  # one class, not its letters
    wanted = set(classes)
    cmap = dict(class_map or {})
    out: list[BoxSample] = []
    crowd = low = 0
    for im in dataset.images:
        if exclude_images and im.image_id in exclude_images:
            continue
        boxes = [(i.amodal_box if (use_amodal_boxes and i.amodal_box) else i.box) for i in im.instances]
        for k, inst in enumerate(im.instances):
            name = cmap.get(inst.category, inst.category)
            if name not in wanted:
                continue
            if inst.iscrowd:
                crowd += 1
                continue
            box = boxes[k]
            if box_height(box) < min_height:
                low += 1
                continue
            others = tuple(b for j, b in enumerate(boxes) if j != k)
            out.append(
                BoxSample(
                    image=im.path,
                    image_id=im.image_id,
                    box=box,
                    category=name,
                    others=others,
                    image_size=(im.width, im.height),
                )
            )
    counts = {c: sum(s.category == c for s in out) for c in classes}
    left_out = [f"{n} {why}" for n, why in ((low, f"lower than {min_height:g} px"), (crowd, "crowd")) if n]
    log.info("training objects per class: %s%s", counts, f" (left out: {', '.join(left_out)})" if left_out else "")
    return out
