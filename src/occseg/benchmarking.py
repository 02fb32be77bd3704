"""What the scripts in ``benchmarks/`` share: where the data is, the COCO person split, one temporary-folder
idiom, and the per-object mask IoU of the evaluation protocol.

The data folder is named once: ``$OCCSEG_DATA``, else ``../shared/data`` next to the repository
(:func:`data_dir`). Every benchmark's ``main(argv)`` takes its arguments as a list, so a test can run it on a
tiny setup.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from occseg.data.annotation import Dataset
from occseg.evaluation.metrics import mask_iou

#: the environment variable that names the shared data folder
DATA_VARIABLE = "OCCSEG_DATA"
#: the COCO class the real-photo benchmarks segment
PERSON = "person"
#: the least box height (px) of a person scored on real photos
MIN_HEIGHT = 30.0


def repository_root() -> Path:
    """The folder holding ``src/occseg`` (the repository, when occseg runs from its checkout)."""
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The shared data folder: ``$OCCSEG_DATA`` when set, else ``../shared/data`` relative to the repository."""
    env = os.environ.get(DATA_VARIABLE)
    if env:
        return Path(env)
    return repository_root().parent / "shared" / "data"


def add_data_argument(ap: argparse.ArgumentParser) -> None:
    """``--data DIR``, defaulting to :func:`data_dir`."""
    ap.add_argument(
        "--data", type=Path, default=data_dir(), help=f"shared data folder (${DATA_VARIABLE}, else ../shared/data)"
    )


def missing(*paths: Path | str) -> bool:
    """Print the first path that does not exist (to stderr, with how to name the data folder); ``True`` then."""
    for p in paths:
        if not Path(p).exists():
            print(f"not found: {p} (give --data or set {DATA_VARIABLE} to the shared data folder)", file=sys.stderr)
            return True
    return False


@contextmanager
def work_folder(out: str | Path | None, prefix: str) -> Iterator[Path]:
    """``out`` (created; kept) when given, else a new temporary folder deleted when the block ends."""
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def subset(ds: Dataset, ids: Iterable[int]) -> Dataset:
    """The images of ``ds`` whose ``image_id`` is in ``ids`` (classes and ids kept)."""
    keep = set(ids)
    return Dataset(
        images=[im for im in ds.images if im.image_id in keep],
        categories=ds.categories,
        source=ds.source,
        format=ds.format,
        category_ids=ds.category_ids,
    )


def coco_split(ds: Dataset, *, validation: bool = False) -> tuple[list[int], list[int]]:
    """``(train ids, test ids)`` of the COCO person protocol: images sorted by id, test = every 4th from the 4th
    (``ids[3::4]``), train = the rest. ``validation``: the test ids are ``train_ids[1::5]`` instead, and the
    training ids the rest of the training images (for choosing settings without the test images)."""
    ids = sorted(im.image_id for im in ds.images)
    test = ids[3::4]
    held = set(test)
    train = [i for i in ids if i not in held]
    if validation:
        test = train[1::5]
        held = set(test)
        train = [i for i in train if i not in held]
    return train, test


def object_iou(pred: np.ndarray | None, gt: np.ndarray) -> float | None:
    """The evaluation protocol's mask IoU (:func:`occseg.evaluation.metrics.mask_iou`) of one object; a missing
    prediction scores 0; ``None`` where both masks are empty (left out of the mean)."""
    if pred is None:
        return 0.0 if np.any(gt) else None
    return mask_iou(pred, gt)


def mean_iou(values: Sequence[float | None]) -> float | None:
    """The mean of the defined IoUs (``None`` when there is none)."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
