"""What the scripts in ``benchmarks/`` share: where the data is, the COCO person split, one temporary-folder
idiom, the per-object mask IoU of the evaluation protocol, the resolution ceiling of 16-px cells, presets and the
device clock; the Occlusion Challenge's setup is in :mod:`occseg.benchmarking.challenge`.

The data folder is named once: ``$OCCSEG_DATA``, else ``../shared/data`` next to the repository
(:func:`data_dir`). Every benchmark's ``main(argv)`` takes its arguments as a list, so a test can run it on a
tiny setup.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from occseg.data.annotation import Dataset
from occseg.evaluation.metrics import mask_iou
from occseg.geometry.boxes import Box, crop_window, resample_cells_to_image
from occseg.refine.config import RefineConfig

#: the environment variable that names the shared data folder
DATA_VARIABLE = "OCCSEG_DATA"
#: the COCO class the real-photo benchmarks segment
PERSON = "person"
#: the least box height (px) of a person scored on real photos
MIN_HEIGHT = 30.0


def repository_root() -> Path:
    """The folder holding ``src/occseg`` (the repository, when occseg runs from its checkout)."""
    return Path(__file__).resolve().parents[3]  # src/occseg/benchmarking/__init__.py


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


def settings_json(args: argparse.Namespace) -> dict:
    """A script's arguments for its JSON output (paths as text)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def missing(*paths: Path | str) -> bool:
    """Print the first path that does not exist (to stderr, with how to name the data folder); ``True`` then."""
    for p in paths:
        if not Path(p).exists():
            print(f"not found: {p} (give --data or set {DATA_VARIABLE} to the shared data folder)", file=sys.stderr)
            return True
    return False


def work_folder(out: str | Path | None, prefix: str) -> Path:
    """``out`` (created; kept) when given, else a new temporary folder, deleted when the script ends."""
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


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


def ceiling_mask(gt: np.ndarray, box: Box, stride: int = 16) -> np.ndarray:
    """GT reduced to the crop's 16-px feature cells (the fraction of each cell that is object) and brought back
    the way occseg brings back its cell scores (bilinear, threshold at one half): the resolution ceiling."""
    h, w = gt.shape
    win = crop_window(box, w, h, target_height=224, pad=16, stride=stride)
    x1, y1, x2, y2 = win.window
    ch, cw = win.size[0] // stride, win.size[1] // stride
    rh, rw = round(ch * stride / win.scale), round(cw * stride / win.scale)
    sub = gt[y1:y2, x1:x2].astype(np.float32)[:rh, :rw]
    region = np.zeros((max(rh, sub.shape[0]), max(rw, sub.shape[1])), np.float32)
    region[: sub.shape[0], : sub.shape[1]] = sub
    frac = cv2.resize(region[:rh, :rw], (cw, ch), interpolation=cv2.INTER_AREA)
    return resample_cells_to_image(frac - 0.5, win, stride, h, w, fill=-1.0) > 0


#: OpenCV GrabCut from the box alone, as a user would run it: every box pixel probable object, 5 rounds at up
#: to 256 px box height, no guided filter and no clean-up (RefineConfig changes; ``benchmarks/refine_coco.py``'s
#: row and ``benchmarks/reasoning_challenge.py --refine box-grabcut``)
BOX_GRABCUT = {
    "colour": "grabcut", "score_weight": 0.0, "shape_weight": 0.01, "seed_fg": 0.0, "core": 0.0,
    "grabcut_iters": 5, "guided": False, "region_pad": 0.15, "min_component": 0.0, "fill_holes": False,
    "work_height": 256,
}  # fmt: skip


def refine_setting(arg: str | None) -> RefineConfig:
    """``--refine``: ``None`` the defaults, ``box-grabcut`` GrabCut from the box alone, else a JSON object of
    :class:`RefineConfig` changes."""
    if arg is None:
        return RefineConfig()
    if arg == "box-grabcut":
        return RefineConfig.from_dict(BOX_GRABCUT)
    try:
        changes = json.loads(arg)
    except json.JSONDecodeError as e:
        raise ValueError(f"neither box-grabcut nor a JSON object: {e}") from None
    if not isinstance(changes, dict):
        raise ValueError(f"need a JSON object of RefineConfig settings, got {type(changes).__name__}")
    return RefineConfig.from_dict(changes)


def sync_device(device: str) -> None:
    """Wait for the device's queued work (CUDA), so a clock read after it measures the work; nothing on the CPU."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))
