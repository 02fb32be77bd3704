"""Builders shared by the CompositionalNet, inference and CLI tests.

* Synthetic models: concepts are the unit axes of ``R^K`` (concept ``k`` = feature direction ``e_k``), so a
  crop whose cell holds the one-hot feature ``e_k`` has log activations ``kappa * e_k`` exactly, and every
  likelihood term has a closed form the tests can write down.
* A tiny *trained* model: :func:`train_tiny_compnet` learns a CompNet from the boxes of four coco128-seg images
  at a small crop size (a few seconds on 2 CPU cores). tests/conftest.py wraps it in the session-scoped fixture
  ``tiny_compnet`` so it is learned once per test session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from occseg.compnet.model import ClassModel, CompNetModel, CompNetSettings

STRIDE = 16


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the previous count.

    The backbone tests use one thread: on a busy 2-core machine two OpenMP threads spin against other
    processes, and a 4-box ``prepare_scene`` was measured at 6 s with 2 threads versus 0.1 s with 1."""
    import torch as _torch

    before = _torch.get_num_threads()
    _torch.set_num_threads(n)
    try:
        yield
    finally:
        _torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------------------
# synthetic models with closed-form likelihoods


def one_hot_cells(index: torch.Tensor, k: int) -> torch.Tensor:
    """``(..., H, W)`` concept indices -> ``(..., H, W, K)`` one-hot concept distributions."""
    return F.one_hot(index.long(), k).float()


def features_from_index(index: torch.Tensor, k: int) -> torch.Tensor:
    """``(h, w)`` concept indices -> ``(K, h, w)`` one-hot features (unit vectors along the concept axes)."""
    return one_hot_cells(index, k).permute(2, 0, 1).contiguous()


def box_region(grid: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int], inside: float, outside: float):
    """``(H, W)`` map: ``inside`` on ``rows x cols`` (half-open), ``outside`` elsewhere."""
    m = torch.full(grid, outside)
    m[rows[0] : rows[1], cols[0] : cols[1]] = inside
    return m


def synthetic_model(
    classes: dict[str, ClassModel],
    *,
    num_concepts: int,
    clutter_index: int = 2,
    ring: int = 2,
    box_rows: int = 6,
    kappa: float = 10.0,
    context: str = "global",
    fg_bias: float = 3.0,
    omega: float = 0.2,
    outlier_weight: float = 0.1,
    smooth_cells: float = 0.0,
) -> CompNetModel:
    """A model whose concepts are the axes of ``R^K`` and whose outlier model is the one-hot ``clutter_index``.
    Masks are not smoothed over cells unless ``smooth_cells`` says so (where the settings have that field)."""
    k = num_concepts
    extra = {"smooth_cells": smooth_cells} if "smooth_cells" in CompNetSettings.__dataclass_fields__ else {}
    settings = CompNetSettings(
        backbone="synthetic",
        layer="none",
        channels=k,
        stride=STRIDE,
        kappa=kappa,
        classes=list(classes),
        num_concepts=k,
        mixtures={n: cm.num_mixtures for n, cm in classes.items()},
        target_height=box_rows * STRIDE,
        pad=ring * STRIDE,
        box_rows=box_rows,
        ring=ring,
        omega=omega,
        outlier_weight=outlier_weight,
        fg_bias=fg_bias,
        context=context,
        **extra,
    )
    clutter = F.one_hot(torch.tensor([clutter_index]), k).float()
    return CompNetModel(settings=settings, concepts=torch.eye(k), clutter=clutter, classes=classes)


def class_model(alpha_index: torch.Tensor, chi_index: torch.Tensor, prior_fg: torch.Tensor, k: int) -> ClassModel:
    """A class model from ``(M, H, W)`` concept-index maps of the object and context models and ``(M, H, W)``
    priors (each cell's distribution is one-hot)."""
    return ClassModel(
        alpha=one_hot_cells(alpha_index, k),
        chi=one_hot_cells(chi_index, k),
        prior_fg=prior_fg.float(),
        counts=torch.ones(alpha_index.shape[0]),
    )


def crop_state(model: CompNetModel, index: torch.Tensor, box_cells: tuple[int, int, int, int], **kwargs):
    """:func:`occseg.inference.single.prepare_object` on a synthetic crop.

    ``index``: ``(h, w)`` concept index per crop cell; the crop window is the whole ``(h*16, w*16)`` image at
    scale 1, so crop cell ``(r, c)`` covers image pixels ``[16r, 16r+16) x [16c, 16c+16)``; ``box_cells`` is
    ``(x1, y1, x2, y2)`` in cells.
    """
    from occseg.geometry.boxes import CropWindow
    from occseg.inference.single import prepare_object

    h, w = index.shape
    window = CropWindow(window=(0, 0, w * STRIDE, h * STRIDE), scale=1.0, size=(h * STRIDE, w * STRIDE))
    box = tuple(float(v * STRIDE) for v in box_cells)
    feats = features_from_index(index, model.settings.num_concepts)
    return prepare_object(model, feats, box, window, (h * STRIDE, w * STRIDE), **kwargs)


def random_model(seed: int = 0, *, k: int = 6, channels: int = 5, grid: tuple[int, int] = (7, 4)) -> CompNetModel:
    """A small model with random (seeded) tensors and two classes, for file round trips."""
    g = torch.Generator().manual_seed(seed)

    def dist(*shape: int) -> torch.Tensor:
        return torch.softmax(torch.randn(*shape, generator=g), dim=-1)

    classes = {
        "person": ClassModel(
            dist(2, *grid, k), dist(2, *grid, k), torch.rand(2, *grid, generator=g), torch.tensor([3.0, 4.0])
        ),
        "vehicle": ClassModel(
            dist(1, *grid, k), dist(1, *grid, k), torch.rand(1, *grid, generator=g), torch.tensor([2.0])
        ),
    }
    settings = CompNetSettings(
        backbone="efficientnet_lite0",
        layer="stride16",
        channels=channels,
        stride=16,
        kappa=20.0,
        classes=["person", "vehicle"],
        num_concepts=k,
        mixtures={"person": 2, "vehicle": 1},
        target_height=(grid[0] - 2) * 16,  # crop settings that fit the grid: box_rows = target_height // stride,
        pad=16,  # ring = pad // stride, box_rows + 2 * ring = the grid's rows
        box_rows=grid[0] - 2,
        ring=1,
        training={"seed": seed, "crops_per_class": {"person": 7, "vehicle": 2}, "class_map": {"truck": "vehicle"}},
    )
    concepts = F.normalize(torch.randn(k, channels, generator=g), dim=1)
    return CompNetModel(settings=settings, concepts=concepts, clutter=dist(3, k), classes=classes)


def model_tensors(model: CompNetModel) -> dict[str, torch.Tensor]:
    """Every tensor of a model by name (the names save_model uses)."""
    out = {"concepts": model.concepts, "clutter": model.clutter}
    for name, cm in model.classes.items():
        for key in ("alpha", "chi", "prior_fg", "counts"):
            out[f"{name}.{key}"] = getattr(cm, key)
    return out


# ---------------------------------------------------------------------------------------------------------------
# a tiny model learned from real boxes

COCO128_JSON = "coco128-seg/annotations/instances_train2017.json"
COCO128_IMAGES = "coco128-seg/images/train2017"
# 000000000036 (1 person, umbrella), 136 (2 persons, 2 giraffes), 192 (4 persons, overlapping), 322 (1 person)
TINY_IMAGE_IDS = (36, 136, 192, 322)


def write_coco_subset(shared_data: Path, out: Path, image_ids, *, keep_masks: bool = False) -> Path:
    """A COCO instances JSON with only ``image_ids`` of coco128-seg; without ``segmentation`` unless
    ``keep_masks`` (training needs boxes only)."""
    src = json.loads((shared_data / COCO128_JSON).read_text())
    ids = set(image_ids)
    anns = [a for a in src["annotations"] if a["image_id"] in ids]
    if not keep_masks:
        anns = [{k: v for k, v in a.items() if k != "segmentation"} for a in anns]
    sub = {"images": [i for i in src["images"] if i["id"] in ids], "annotations": anns, "categories": src["categories"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(sub))
    return out


def tiny_train_config(**overrides):
    """Small, fast settings: 96-px crops (6 box rows + a 2-cell ring), 16 concepts, small outlier images."""
    from occseg.compnet.learn import TrainConfig

    cfg = TrainConfig(
        num_concepts=16,
        num_mixtures=2,
        min_per_mixture=3,
        target_height=96,
        pad=32,
        concept_samples_per_crop=40,
        clutter_clusters=3,
        max_clutter_images=4,
        clutter_image_max_side=256,
        relabel_rounds=1,
        em_iters=4,
        seed=0,
    )
    return replace(cfg, **overrides)


@dataclass
class TinyCompNet:
    model: CompNetModel
    folder: Path  # saved with save_model
    data: Path  # the boxes-only COCO subset it was learned from
    images: Path
    classes: list[str]


TINY_CLASSES = ["person", "giraffe"]


def train_tiny_compnet(shared_data: Path, out: Path, backbone=None, **overrides) -> TinyCompNet:
    """Learn persons (8 boxes -> 2 mixtures) and giraffes (2 boxes -> 1 mixture, with a note) from 4 images."""
    from occseg.compnet.learn import train_compnet
    from occseg.compnet.model import save_model
    from occseg.compnet.samples import box_samples
    from occseg.data.readers import read_dataset

    data = write_coco_subset(shared_data, out / "subset.json", TINY_IMAGE_IDS)
    images = shared_data / COCO128_IMAGES
    ds = read_dataset(data, images=images)
    samples = box_samples(ds, TINY_CLASSES, min_height=30)
    model = train_compnet(samples, TINY_CLASSES, tiny_train_config(**overrides), backbone=backbone, progress=False)
    save_model(model, out / "model")
    return TinyCompNet(model=model, folder=out / "model", data=data, images=images, classes=list(TINY_CLASSES))
