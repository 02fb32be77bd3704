"""Learning a CompositionalNet from boxes (docs/method.md §A.2–A.4), in torch.

Stages: box-crop features -> visual concepts (vMF EM) -> outlier model (regions outside every box)
-> initial foreground / context split from context -> per-class mixtures (clustering + hard EM)
-> re-labelling rounds with the learned model. Every stage is batched over samples and cells.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from occseg.checks import is_integer, is_number
from occseg.compnet.model import FLOAT_RANGES, ClassModel, CompNetModel, CompNetSettings, float_rule
from occseg.compnet.position import fit_position_model, position_inputs
from occseg.compnet.reservoir import sample_box_samples
from occseg.compnet.samples import BoxSample
from occseg.compnet.scoring import align_offset, box_mask_on_grid, log_mix, rigid_hole_fill, to_grid
from occseg.compnet.vmf import VMFFit, concept_distribution, fit_vmf_mixture, log_activations
from occseg.distributed.checkpoints import Checkpoints, agreed_stage, rank_items
from occseg.distributed.collectives import gather_items
from occseg.distributed.context import DistContext
from occseg.features.crops import default_batch_size

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Settings of :func:`train_compnet`. ``None`` means the backbone's default."""

    backbone: str = "efficientnet_lite0"
    backbone_weights: str | None = None
    allow_download: bool = False  # vgg16 / resnext50: let torchvision download the ImageNet weights
    num_concepts: int = 512
    kappa: float | None = None
    num_mixtures: int = 8
    min_per_mixture: int = 60  # fewer mixtures when a class has few samples (validated on coco-mini persons)
    fg_bias: float = 3.5  # log-odds favouring the object term at test time (validated on coco-mini persons)
    target_height: int = 224
    pad: int = 48  # crop pad at the 224 scale: 3 cells of surrounding context ring
    max_grid_width: int = 40
    concept_samples_per_crop: int = 60
    max_concept_samples: int = 100_000
    clutter_clusters: int = 5
    max_clutter_images: int = 60
    clutter_image_max_side: int = 640
    context: str = "per_image"  # or "global" (the paper's context kernels)
    global_context_clusters: int = 5
    global_context_threshold: float = 0.54
    relabel_rounds: int = 2
    em_iters: int = 10
    omega: float = 0.2
    outlier_weight: float = 0.1
    amodal_prior_threshold: float = 0.5
    batch_size: int | None = None  # crops per backbone batch; None: 1 on CPU (fastest there), 8 on CUDA
    smooth_cells: float = 0.0  # Gaussian sigma over cells before upsampling (neutral on validation: off)
    # the part-position classifier for the reasoning's order (occseg.compnet.position): bins over the box
    # (rows, cols), None: not learned; its L2 weight. Chosen on the train splits (validation) of the Occlusion
    # Challenge (seed 0, 120 images) and of a second one (seed 1, 300 images): 6 x 3 over 8 x 4 and 4 x 3; the
    # weight among 8e-5 / 2.5e-5 / 1e-5 / 2.5e-6 (for about 40,000 training cells). At most position_max_cells
    # cells (a seeded random subset) are used.
    position_bins: tuple[int, int] | None = (6, 3)
    position_l2: float = 1e-5
    position_max_cells: int = 200_000
    # fit the classifier only on boxes at least this many pixels from every image border (None: every box). A box
    # cut by the border is a partial object, whose parts sit elsewhere in its box than in a whole object's, and
    # the reasoning reads the classifier in boxes of whole objects (amodal boxes)
    position_border_px: float | None = None
    # at most this many training boxes per class (a seeded sample, the same in any number of processes:
    # occseg.compnet.reservoir); every stage learns from the sample, so memory and time stop growing with the data
    # beyond it. A class with fewer boxes keeps them all (the model is then the one learned without a cap)
    max_class_boxes: int = 1000
    # each class's concept distributions are made and summed this many samples at a time (not stacked for every
    # sample): a class's memory grows by one (K, H, W) map per sample, not three. With at most this many samples
    # the sums are the single sums over every sample (the model is bitwise the one learned before the chunks)
    class_chunk: int = 256
    seed: int = 0
    device: str | None = None  # None: the given backbone's device, or the CPU when training builds the backbone

    def __post_init__(self) -> None:
        """Every setting checked when the config is made, not after a training run (the saved model would be
        refused then): a ``ValueError`` naming the setting and its value."""
        for name, least in _TRAIN_INT_MINIMUM.items():
            value = getattr(self, name)
            if value is None and name in ("batch_size",):
                continue
            if not is_integer(value) or value < least:
                raise ValueError(f"TrainConfig: {name} must be an integer >= {least}, not {value!r}")
        ranges = {**FLOAT_RANGES, **_TRAIN_FLOAT_RANGES}
        for name, (low, low_ok, high) in ranges.items():
            if not hasattr(self, name):
                continue
            value = getattr(self, name)
            if value is None and name in ("kappa", "position_border_px"):
                continue
            bad = not is_number(value) or not math.isfinite(value)
            bad = bad or (low is not None and (value < low or (value == low and not low_ok)))
            bad = bad or (high is not None and value > high)
            if bad:
                raise ValueError(f"TrainConfig: {name} must be {float_rule(low, low_ok, high)}, not {value!r}")
        if self.context not in ("per_image", "global"):
            raise ValueError(f"TrainConfig: context must be per_image or global, not {self.context!r}")
        pb = self.position_bins
        if pb is not None and (len(pb) != 2 or not all(is_integer(b) and b > 0 for b in pb)):
            raise ValueError(
                f"TrainConfig: position_bins must be (rows, cols) of positive integers or None, not {pb!r}"
            )


#: Integer settings of :class:`TrainConfig` and their least value (``batch_size`` may also be ``None``).
_TRAIN_INT_MINIMUM: dict[str, int] = {
    "num_concepts": 1, "num_mixtures": 1, "min_per_mixture": 1, "target_height": 1, "pad": 0, "max_grid_width": 1,
    "concept_samples_per_crop": 1, "max_concept_samples": 1, "clutter_clusters": 1, "max_clutter_images": 0,
    "clutter_image_max_side": 16, "global_context_clusters": 1, "relabel_rounds": 0, "em_iters": 1,
    "batch_size": 1, "position_max_cells": 1, "max_class_boxes": 1, "class_chunk": 1, "seed": 0,
}  # fmt: skip
#: Number settings of :class:`TrainConfig` beyond the model's own (:data:`FLOAT_RANGES`): ``(low, low allowed,
#: high)``; ``kappa`` and ``position_border_px`` may also be ``None``.
_TRAIN_FLOAT_RANGES: dict[str, tuple[float | None, bool, float | None]] = {
    "global_context_threshold": (-1.0, True, 1.0),  # a cosine
    "position_l2": (0.0, True, None),
    "position_border_px": (0.0, True, None),
}


@dataclass
class CropSample:
    """Features of one training crop, aligned later to its class grid."""

    category: str
    features: torch.Tensor  # (C, h, w)
    box_cells: tuple[float, float, float, float]  # box in crop-cell coordinates (x1, y1, x2, y2)
    image_id: int
    border_px: float = math.inf  # the box's distance to the nearest image border, in image pixels


@dataclass
class TrainingRecord:
    crops_per_class: dict[str, int] = field(default_factory=dict)
    concept_samples: int = 0
    concept_loglik: list[float] = field(default_factory=list)
    clutter_cells: int = 0
    mixtures: dict[str, dict] = field(default_factory=dict)
    position_boxes: int = 0  # boxes the part-position classifier was fitted on
    boxes_per_class: dict[str, int] = field(default_factory=dict)  # before the sample of max_class_boxes


def _progress(iterable, desc: str, total: int | None = None, enabled: bool = True):
    return tqdm(iterable, desc=desc, total=total, disable=not enabled, leave=False, dynamic_ncols=True)


def extract_training_crops(
    samples: Sequence[BoxSample],
    backbone,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    dist: DistContext | None = None,
    checkpoints: Checkpoints | None = None,
) -> tuple[list[CropSample], dict[int, tuple]]:
    """Run the backbone once per training box (batched per image); returns crops and per-image info.
    ``dist``: under torchrun each rank runs its share of the images; every rank gets all crops, in order.
    ``checkpoints``: this rank's crops are saved when done (and reused by a resumed run)."""
    from occseg.features.crops import CropConfig

    bs = default_batch_size(cfg.batch_size, cfg.device)
    ccfg = CropConfig(target_height=cfg.target_height, pad=cfg.pad, batch_size=bs)
    by_image: dict[int, list[BoxSample]] = defaultdict(list)
    for s in samples:
        by_image[s.image_id].append(s)
    groups = list(by_image.values())
    mine = dist.shard(len(groups)) if dist is not None else range(len(groups))
    records = rank_items(
        checkpoints,
        dist,
        "features",
        lambda: [
            _crop_record(g, *_image_crops(groups[g], backbone, cfg, ccfg))
            for g in _progress(mine, "features", total=len(mine), enabled=progress)
        ],
    )
    local = [(g, *_crops_from_record(t, meta)) for g, (t, meta) in enumerate(gather_items(dist, len(groups), records))]
    crops: list[CropSample] = []
    images: dict[int, tuple] = {}
    for _, image_crops, info in local:
        crops.extend(image_crops)
        images[image_crops[0].image_id] = info
    return crops, images


def _image_crops(group: Sequence[BoxSample], backbone, cfg: TrainConfig, ccfg) -> tuple[list[CropSample], tuple]:
    """The crops of one image's training boxes, and the image's ``(path, every annotated box)``."""
    from occseg.data.images import load_rgb
    from occseg.features.crops import extract_box_features

    stride = backbone.spec.stride
    img = load_rgb(group[0].image, size=group[0].image_size)
    feats = extract_box_features(backbone, img, [s.box for s in group], ccfg, device=cfg.device)
    height, width = img.shape[:2]
    crops: list[CropSample] = []
    for s, bf in zip(group, feats):
        win = bf.window
        bx1, by1, bx2, by2 = s.box
        x1, y1 = win.image_to_crop(bx1, by1)
        x2, y2 = win.image_to_crop(bx2, by2)
        crops.append(
            CropSample(
                category=s.category,
                # kept on the CPU, where the per-class statistics (mixtures, context, outlier model) are
                # learned; the backbone, the concepts' EM and the part-position fit run on cfg.device
                features=bf.features.float().cpu(),
                box_cells=(x1 / stride, y1 / stride, x2 / stride, y2 / stride),
                image_id=s.image_id,
                border_px=float(min(bx1, by1, width - bx2, height - by2)),
            )
        )
    return crops, (group[0].image, [group[0].box, *group[0].others])  # every annotated box


def _crop_record(g: int, image_crops: list[CropSample], info: tuple) -> tuple[int, list[torch.Tensor], dict]:
    """One image's crops as an item ``(index, features, JSON metadata)`` to gather or save (no pickle)."""
    meta = {
        "crops": [[c.category, list(c.box_cells), c.image_id, c.border_px] for c in image_crops],
        "image": [str(info[0]), [list(map(float, b)) for b in info[1]]],
    }
    return g, [c.features for c in image_crops], meta


def _crops_from_record(features: list[torch.Tensor], meta: dict) -> tuple[list[CropSample], tuple]:
    crops = [
        CropSample(category=cat, features=f, box_cells=tuple(box), image_id=iid, border_px=border)
        for f, (cat, box, iid, border) in zip(features, meta["crops"])
    ]
    path, boxes = meta["image"]
    return crops, (Path(path), [tuple(b) for b in boxes])


def _outside_boxes_cells(shape: tuple[int, int], boxes, scale: float, stride: int, margin_px: float) -> np.ndarray:
    """Cells of a whole-image feature map whose area lies at least ``margin_px`` outside every box."""
    h, w = shape
    ys = (np.arange(h)[:, None] * stride + np.array([0, stride])) / scale  # (h, 2) cell extents in image px
    xs = (np.arange(w)[:, None] * stride + np.array([0, stride])) / scale
    free = np.ones((h, w), dtype=bool)
    for b in boxes:
        hit_y = (ys[:, 1] > b[1] - margin_px) & (ys[:, 0] < b[3] + margin_px)
        hit_x = (xs[:, 1] > b[0] - margin_px) & (xs[:, 0] < b[2] + margin_px)
        free &= ~(hit_y[:, None] & hit_x[None, :])
    return free


def collect_clutter_features(
    images: dict[int, tuple],
    backbone,
    cfg: TrainConfig,
    background_images: Sequence = (),
    *,
    progress: bool = True,
    dist: DistContext | None = None,
    checkpoints: Checkpoints | None = None,
) -> torch.Tensor:
    """Feature vectors of image regions outside every annotated box (and of optional background photos).
    ``dist``: under torchrun each rank reads its share of the images; every rank gets all vectors, in order.
    ``checkpoints``: this rank's vectors are saved when done (and reused by a resumed run)."""
    rng = np.random.default_rng(cfg.seed)
    ids = sorted(images)
    if len(ids) > cfg.max_clutter_images:
        ids = sorted(rng.choice(ids, cfg.max_clutter_images, replace=False).tolist())
    items = [(images[i][0], images[i][1]) for i in ids] + [(p, []) for p in background_images]
    mine = dist.shard(len(items)) if dist is not None else range(len(items))
    local = rank_items(
        checkpoints,
        dist,
        "outlier-features",
        lambda: [
            (j, [_outside_features(*items[j], backbone, cfg)], None)
            for j in _progress(mine, "outlier regions", total=len(mine), enabled=progress)
        ],
    )
    chunks = [t[0] for t, _ in gather_items(dist, len(items), local)]
    chunks = [c for c in chunks if c.shape[0]]
    if not chunks:
        return torch.zeros((0, backbone.spec.channels))
    return torch.cat(chunks)


def _outside_features(path, boxes, backbone, cfg: TrainConfig) -> torch.Tensor:
    """``(N, C)`` features of one image's cells outside its boxes (``N`` may be 0)."""
    import cv2

    from occseg.data.images import load_rgb
    from occseg.features.crops import extract_image_features

    img = load_rgb(path)
    scale = min(1.0, cfg.clutter_image_max_side / max(img.shape[:2]))
    if scale < 1.0:
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    fmap = extract_image_features(backbone, img, device=cfg.device).float().cpu()
    free = _outside_boxes_cells(tuple(fmap.shape[1:]), boxes, scale, backbone.spec.stride, margin_px=8.0)
    return fmap[:, torch.from_numpy(free)].T


def _sample_concept_features(crops: Sequence[CropSample], cfg: TrainConfig, clutter: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(cfg.seed)
    parts = []
    for c in crops:
        flat = c.features.flatten(1).T
        n = min(cfg.concept_samples_per_crop, flat.shape[0])
        parts.append(flat[torch.randperm(flat.shape[0], generator=g)[:n]])
    if clutter.shape[0]:
        n = min(clutter.shape[0], max(1, sum(p.shape[0] for p in parts) // 4))
        parts.append(clutter[torch.randperm(clutter.shape[0], generator=g)[:n]])
    x = torch.cat(parts)
    if x.shape[0] > cfg.max_concept_samples:
        x = x[torch.randperm(x.shape[0], generator=g)[: cfg.max_concept_samples]]
    return x


@dataclass
class _ClassData:
    """One class's samples on its grid: each sample's log activations (not stacked), coverage and box masks.
    The concept distributions and unit features are made from them a chunk of ``chunk`` samples at a time
    (:meth:`dist_chunks`, :meth:`unit_features`), so a class holds one ``(K, H, W)`` map per sample instead of
    three stacked copies; the statistics over samples are summed chunk by chunk."""

    log_act: list[torch.Tensor]  # S x (K, H, W)
    valid: torch.Tensor  # (S, H, W) covered by the crop
    in_box: torch.Tensor  # (S, H, W) inside the box
    ring_dist: torch.Tensor  # (S, K) mean concept distribution of each crop's own ring (its context)
    has_ring: torch.Tensor  # (S,)
    features: list[torch.Tensor] = field(default_factory=list)  # S x (C, h, w): the crops' own features
    offsets: list[tuple[int, int]] = field(default_factory=list)  # each crop's place on the grid
    chunk: int = 256  # samples whose distributions are stacked at once (one chunk: as if stacked whole)

    @property
    def n(self) -> int:
        return len(self.log_act)

    def dist_chunks(self):
        """``(start, end, (end - start, H, W, K) L1-normalised activations)`` of the samples, chunk by chunk."""
        for a in range(0, self.n, self.chunk):
            b = min(self.n, a + self.chunk)
            yield a, b, torch.stack([concept_distribution(la).permute(1, 2, 0) for la in self.log_act[a:b]])

    def unit_features(self, i: int) -> torch.Tensor:
        """Sample ``i``'s unit features on the grid, ``(C, H, W)`` (zeros off the crop)."""
        return to_grid(F.normalize(self.features[i], dim=0), self.offsets[i], tuple(self.valid.shape[1:]))[0]


def grid_width(box_widths_cells: Sequence[float], ring: int, max_width: int) -> int:
    w = float(np.percentile(np.asarray(box_widths_cells), 90)) if len(box_widths_cells) else 8.0
    return int(min(max_width, math.ceil(w) + 2 * ring))


def _class_data(
    crops: Sequence[CropSample], concepts: torch.Tensor, kappa: float, grid: tuple[int, int], chunk: int = 256
) -> _ClassData:
    acts, valids, boxes, rings, has, offsets = [], [], [], [], [], []
    for c in crops:
        la = log_activations(c.features, concepts, kappa)  # (K, h, w)
        x1, y1, x2, y2 = c.box_cells
        off = align_offset(((y1 + y2) / 2, (x1 + x2) / 2), grid)
        la_g, valid = to_grid(la, off, grid)
        in_box = box_mask_on_grid(grid, off, c.box_cells) & valid
        ring = valid & ~in_box
        if ring.any():
            rd = concept_distribution(la_g).permute(1, 2, 0)[ring].mean(0)
        else:
            rd = torch.full((la.shape[0],), 1.0 / la.shape[0])
        acts.append(la_g)
        valids.append(valid)
        boxes.append(in_box)
        rings.append(rd)
        has.append(bool(ring.any()))
        offsets.append(off)
    return _ClassData(
        log_act=acts,
        valid=torch.stack(valids),
        in_box=torch.stack(boxes),
        ring_dist=torch.stack(rings),
        has_ring=torch.tensor(has),
        features=[c.features for c in crops],
        offsets=offsets,
        chunk=chunk,
    )


def initial_foreground_per_image(data: _ClassData, topk: int = 3) -> torch.Tensor:
    """Weak labels from each crop's own context: a box cell is foreground when its feature is closer to the
    box's central core (the inner half of the inscribed ellipse) than to the ring around the box."""
    s, gh, gw = data.valid.shape
    fg = torch.zeros((s, gh, gw), dtype=torch.bool)
    for i in range(s):  # per sample (not per pixel): a few hundred cells each
        box = data.in_box[i]
        if not box.any():
            continue
        rows, cols = torch.nonzero(box, as_tuple=True)
        cy, cx = rows.float().mean() + 0.5, cols.float().mean() + 0.5
        ry = (rows.max() - rows.min() + 1).float() / 2
        rx = (cols.max() - cols.min() + 1).float() / 2
        yy = torch.arange(gh).float()[:, None] + 0.5
        xx = torch.arange(gw).float()[None, :] + 0.5
        ell = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        core = box & (ell <= 0.25)
        ring = data.valid[i] & ~box
        if not ring.any() or core.sum() < 2:
            fg[i] = box & (ell <= 1.0)
            continue
        f = data.unit_features(i).flatten(1).T  # (H*W, C)
        sim_core = f @ f[core.flatten()].T
        sim_core[core.flatten().nonzero().squeeze(1), torch.arange(int(core.sum()))] = -1.0  # not itself
        sim_ring = f @ f[ring.flatten()].T
        k1 = min(topk, sim_core.shape[1])
        k2 = min(topk, sim_ring.shape[1])
        a = sim_core.topk(k1, dim=1).values.mean(1)
        b = sim_ring.topk(k2, dim=1).values.mean(1)
        fg[i] = ((a > b).view(gh, gw) & box) | core
    return torch.stack([rigid_hole_fill(f) for f in fg])


def initial_foreground_global(data: _ClassData, kernels: torch.Tensor, threshold: float) -> torch.Tensor:
    """The paper's recipe: a box cell is context when its feature is close (cosine > threshold) to one of the
    class's global context kernels, foreground otherwise."""
    sims = []
    for a in range(0, data.n, data.chunk):
        cos = torch.stack([data.unit_features(i) for i in range(a, min(data.n, a + data.chunk))])
        sims.append(torch.einsum("kc,schw->skhw", kernels, cos).max(dim=1).values)
    fg = data.in_box & (torch.cat(sims) <= threshold)
    return torch.stack([rigid_hole_fill(f) for f in fg])


def _kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 30) -> torch.Tensor:
    """Plain k-means (squared Euclidean) with k-means++ seeding; returns assignments."""
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    centers = [x[int(torch.randint(n, (1,), generator=g))]]
    d = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d / d.sum() if float(d.sum()) > 0 else torch.full_like(d, 1.0 / n)
        idx = int(torch.multinomial(p.double(), 1, generator=g))
        centers.append(x[idx])
        d = torch.minimum(d, ((x - x[idx]) ** 2).sum(1))
    c = torch.stack(centers)
    assign = torch.zeros(n, dtype=torch.long)
    for it in range(iters):
        new = torch.cdist(x, c).argmin(1)
        if it > 0 and torch.equal(new, assign):
            break
        assign = new
        for j in range(k):
            if bool((assign == j).any()):
                c[j] = x[assign == j].mean(0)
    return assign


def estimate_class_model(data: _ClassData, fg: torch.Tensor, assign: torch.Tensor, m: int) -> ClassModel:
    """Maximum-likelihood updates given labels and mixture assignments, batched over samples (einsum; the
    concept distributions' sums accumulated chunk by chunk)."""
    onehot = F.one_hot(assign, m).float()  # (S, M)
    fgf = fg.float()
    ctx = (data.valid & ~fg).float()
    fg_w = torch.einsum("sm,shw->mhw", onehot, fgf)
    ctx_w = torch.einsum("sm,shw->mhw", onehot, ctx)
    cover = torch.einsum("sm,shw->mhw", onehot, data.valid.float())
    alpha, chi = _weighted_dist_sums(data, onehot, fgf, ctx)
    k = alpha.shape[-1]
    mean_alpha = alpha.sum((0, 1, 2)) / fg_w.sum().clamp_min(1e-6)
    mean_chi = chi.sum((0, 1, 2)) / ctx_w.sum().clamp_min(1e-6)
    alpha = torch.where(fg_w[..., None] > 0, alpha / fg_w[..., None].clamp_min(1e-6), mean_alpha.expand(k))
    chi = torch.where(ctx_w[..., None] > 0, chi / ctx_w[..., None].clamp_min(1e-6), mean_chi.expand(k))
    prior = fg_w / cover.clamp_min(1.0)
    return ClassModel(alpha=alpha, chi=chi, prior_fg=prior, counts=onehot.sum(0))


def _weighted_dist_sums(
    data: _ClassData, onehot: torch.Tensor, fgf: torch.Tensor, ctx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per mixture and cell, the concept distributions summed over the foreground (``alpha``) and the context
    (``chi``) samples, ``(M, H, W, K)`` each: accumulated over the chunks in order (one chunk: one einsum over
    every sample, as when they were stacked whole)."""
    alpha = chi = None
    for a, b, dist in data.dist_chunks():
        a_part = torch.einsum("sm,shw,shwk->mhwk", onehot[a:b], fgf[a:b], dist)
        c_part = torch.einsum("sm,shw,shwk->mhwk", onehot[a:b], ctx[a:b], dist)
        alpha = a_part if alpha is None else alpha + a_part
        chi = c_part if chi is None else chi + c_part
    return alpha, chi


def _sample_loglik(data: _ClassData, cm: ClassModel, fg: torch.Tensor) -> torch.Tensor:
    """Complete-data log-likelihood of every sample under every mixture: ``(S, M)``."""
    pf = cm.prior_fg.clamp(1e-4, 1 - 1e-4)
    out = []
    for s in range(data.n):
        lf = log_mix(cm.alpha, data.log_act[s]) + torch.log(pf)
        lc = log_mix(cm.chi, data.log_act[s]) + torch.log(1 - pf)
        ll = torch.where(fg[s], lf, lc) * data.valid[s]
        out.append(ll.flatten(1).sum(1))
    return torch.stack(out)


def relabel(data: _ClassData, cm: ClassModel, assign: torch.Tensor, per_image_context: bool) -> torch.Tensor:
    """Foreground where the object term beats the context term (with the crop's own ring as context too)."""
    pf = cm.prior_fg.clamp(1e-4, 1 - 1e-4)
    fg = torch.zeros_like(data.valid)
    for s in range(data.n):
        m = int(assign[s])
        lf = log_mix(cm.alpha[m], data.log_act[s]) + torch.log(pf[m])
        lc = log_mix(cm.chi[m], data.log_act[s])
        if per_image_context and bool(data.has_ring[s]):
            lr = log_mix(data.ring_dist[s].expand(*lc.shape, -1), data.log_act[s])
            lc = torch.maximum(lc, lr)
        lc = lc + torch.log(1 - pf[m])
        fg[s] = rigid_hole_fill((lf > lc) & data.in_box[s])
    return fg


def fit_class(name: str, data: _ClassData, fg0: torch.Tensor, cfg: TrainConfig) -> tuple[ClassModel, dict]:
    """Mixtures of one class: initial clustering of the weak masks, hard EM, then re-labelling rounds."""
    n = data.n
    m = max(1, min(cfg.num_mixtures, n // max(1, cfg.min_per_mixture)))
    record: dict = {"samples": n, "mixtures": m, "em_loglik": [], "relabel_changed": []}
    if m < cfg.num_mixtures:
        msg = f"class {name!r}: {n} training objects, using {m} mixture(s) instead of {cfg.num_mixtures}"
        log.warning(msg)
        record["note"] = msg
    fg = fg0
    pooled = F.avg_pool2d(fg.float()[:, None], 2, ceil_mode=True).flatten(1)
    assign = _kmeans(pooled, m, cfg.seed) if m > 1 else torch.zeros(n, dtype=torch.long)
    cm = estimate_class_model(data, fg, assign, m)
    for round_ in range(cfg.relabel_rounds + 1):
        for _ in range(cfg.em_iters):
            ll = _sample_loglik(data, cm, fg)
            new = ll.argmax(1)
            record["em_loglik"].append(float(ll.gather(1, new[:, None]).mean()))
            changed = float((new != assign).float().mean())
            assign = new
            cm = estimate_class_model(data, fg, assign, m)
            if changed < 0.01:
                break
        if round_ == cfg.relabel_rounds:
            break
        new_fg = relabel(data, cm, assign, cfg.context == "per_image")
        frac = float((new_fg != fg)[data.in_box].float().mean()) if bool(data.in_box.any()) else 0.0
        record["relabel_changed"].append(frac)
        log.info("class %s: re-labelling round %d changed %.1f%% of box cells", name, round_ + 1, 100 * frac)
        fg = new_fg
        cm = estimate_class_model(data, fg, assign, m)
    record["foreground_fraction_in_box"] = float(fg[data.in_box].float().mean()) if bool(data.in_box.any()) else 0.0
    return cm, record


def learn_clutter(clutter_feats: torch.Tensor, concepts: torch.Tensor, kappa: float, cfg: TrainConfig) -> torch.Tensor:
    """Outlier model: vMF clusters of outlier features; each cluster's mean concept distribution (``(N, K)``)."""
    k = concepts.shape[0]
    if clutter_feats.shape[0] < cfg.clutter_clusters:
        log.warning("no regions outside the boxes to learn the outlier model from: using a flat one")
        return torch.full((1, k), 1.0 / k)
    fit = fit_vmf_mixture(clutter_feats, cfg.clutter_clusters, kappa, max_iter=50, seed=cfg.seed)
    unit = F.normalize(clutter_feats, dim=1)
    assign = (unit @ fit.means.T).argmax(1)
    dist = torch.softmax(kappa * unit @ concepts.T, dim=1)  # (N, K)
    betas = [dist[assign == j].mean(0) for j in range(cfg.clutter_clusters) if bool((assign == j).any())]
    return torch.stack(betas)


def _fit_concepts(
    x: torch.Tensor, k: int, kappa: float, cfg: TrainConfig, dist: DistContext | None, checkpoints: Checkpoints | None
) -> VMFFit:
    """The visual concepts' vMF EM (a checkpointed stage)."""

    def compute() -> tuple[dict[str, torch.Tensor], list[float]]:
        fit = fit_vmf_mixture(x, k, kappa, seed=cfg.seed, dist=dist)
        return {"means": fit.means, "weights": fit.weights}, fit.loglik

    tensors, loglik = agreed_stage(checkpoints, dist, "concepts", compute)
    return VMFFit(means=tensors["means"], weights=tensors["weights"], kappa=kappa, loglik=loglik)


def _learn_classes(
    classes: Sequence[str],
    crops: Sequence[CropSample],
    rows_ring: tuple[int, int],
    concepts: torch.Tensor,
    kappa: float,
    kernels: dict[str, torch.Tensor],
    cfg: TrainConfig,
    *,
    dist: DistContext | None = None,
    checkpoints: Checkpoints | None = None,
    progress: bool = True,
) -> list[tuple[ClassModel, dict]]:
    """Each class's mixtures and record, in class order. ``dist``: the classes are dealt to the ranks and gathered
    on every rank. ``checkpoints``: each class is saved when done (and reused by a resumed run)."""
    mine = dist.shard(len(classes)) if dist is not None else range(len(classes))
    local = []
    for i in _progress(mine, "mixtures", total=len(mine), enabled=progress):
        c = classes[i]
        cc = [s for s in crops if s.category == c]
        learn = partial(_learn_class, i, c, cc, rows_ring, concepts, kappa, kernels.get(c), cfg)
        local += rank_items(checkpoints, dist, f"class-{i:03d}", learn)
    return [(ClassModel(*tensors), crec) for tensors, crec in gather_items(dist, len(classes), local)]


def _learn_class(
    i: int,
    c: str,
    cc: list[CropSample],
    rows_ring: tuple[int, int],
    concepts: torch.Tensor,
    kappa: float,
    kernels: torch.Tensor | None,
    cfg: TrainConfig,
) -> list[tuple[int, list[torch.Tensor], dict]]:
    """Class ``i``'s mixtures from its crops (its grid, data, weak labels and EM) as an item: the model's tensors
    (in :class:`ClassModel`'s field order) and the record."""
    box_rows, ring = rows_ring
    widths = [s.box_cells[2] - s.box_cells[0] for s in cc]
    grid = (box_rows + 2 * ring, grid_width(widths, ring, cfg.max_grid_width))
    data = _class_data(cc, concepts, kappa, grid, cfg.class_chunk)
    if cfg.context == "global":
        fg0 = initial_foreground_global(data, kernels, cfg.global_context_threshold)
    else:
        fg0 = initial_foreground_per_image(data)
    cm, crec = fit_class(c, data, fg0, cfg)
    return [(i, [getattr(cm, f.name) for f in fields(cm)], crec)]


def train_compnet(
    samples: Sequence[BoxSample],
    classes: Sequence[str],
    cfg: TrainConfig,
    *,
    background_images: Sequence = (),
    progress: bool = True,
    backbone=None,
    dist: DistContext | None = None,
    checkpoints: Checkpoints | None = None,
) -> CompNetModel:
    """Learn a CompositionalNet from box samples (see :func:`occseg.compnet.samples.box_samples`): crops'
    features, visual concepts, the outlier model, the part-position classifier, then each class's mixtures.
    ``dist``: under torchrun, the ranks share the backbone work, the concepts' EM and the classes; the model is
    the one-process model. ``checkpoints``: each stage (features, outlier features, concepts, each class) is
    saved when done, and a run resumed with the same settings reuses them."""
    from occseg.backbones import get_backbone

    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, not {type(cfg).__name__}")
    classes = [classes] if isinstance(classes, str) else list(classes)  # one class, not its letters
    _check_classes(classes, samples)
    rec = TrainingRecord(boxes_per_class={c: sum(s.category == c for s in samples) for c in classes})
    samples = sample_box_samples(samples, cfg.max_class_boxes, cfg.seed)
    if len(samples) < sum(rec.boxes_per_class.values()):
        log.info("training on a seeded sample of at most %d boxes per class", cfg.max_class_boxes)
    if backbone is None:
        backbone = get_backbone(
            cfg.backbone, weights=cfg.backbone_weights, device=cfg.device or "cpu", allow_download=cfg.allow_download
        )
    # one concrete device from here on: the one asked for, else the backbone's (a caller's backbone is not moved)
    cfg = replace(cfg, device=str(torch.device(cfg.device)) if cfg.device else str(backbone.device))
    spec = backbone.spec
    kappa = float(cfg.kappa if cfg.kappa is not None else spec.kappa)

    crops, images = extract_training_crops(
        samples, backbone, cfg, progress=progress, dist=dist, checkpoints=checkpoints
    )
    clutter_feats = collect_clutter_features(
        images, backbone, cfg, background_images, progress=progress, dist=dist, checkpoints=checkpoints
    )
    rec.clutter_cells = int(clutter_feats.shape[0])
    concepts = _learn_concepts(crops, cfg, clutter_feats, kappa, rec, dist, checkpoints)
    clutter = learn_clutter(clutter_feats, concepts, kappa, cfg)
    position = _learn_position(crops, concepts, kappa, cfg, rec, dist) if cfg.position_bins else None
    kernels = _global_context_kernels(crops, classes, cfg)
    rows_ring = (cfg.target_height // spec.stride, cfg.pad // spec.stride)
    fitted = _learn_classes(
        classes, crops, rows_ring, concepts, kappa, kernels, cfg, dist=dist, checkpoints=checkpoints, progress=progress
    )
    class_models: dict[str, ClassModel] = {}
    for c, (cm, crec) in zip(classes, fitted):
        class_models[c] = cm
        rec.crops_per_class[c] = sum(s.category == c for s in crops)
        rec.mixtures[c] = crec
    settings = _settings(backbone, cfg, kappa, classes, concepts, class_models, clutter, position, rec)
    return CompNetModel(settings=settings, concepts=concepts, clutter=clutter, classes=class_models, position=position)


def _check_classes(classes: list[str], samples: Sequence[BoxSample]) -> None:
    if not classes:
        raise ValueError("classes: give at least one class to learn")
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ValueError(f"each class may be named once; repeated: {', '.join(repeated)}")
    missing = [c for c in classes if not any(s.category == c for s in samples)]
    if missing:
        raise ValueError(f"no training objects for class(es) {missing}: check --classes / --class-map")


def _learn_concepts(
    crops: Sequence[CropSample],
    cfg: TrainConfig,
    clutter_feats: torch.Tensor,
    kappa: float,
    rec: TrainingRecord,
    dist: DistContext | None = None,
    checkpoints: Checkpoints | None = None,
) -> torch.Tensor:
    """The visual concepts: a vMF mixture fitted to features sampled from the crops and the outlier regions."""
    x = _sample_concept_features(crops, cfg, clutter_feats)
    k = min(cfg.num_concepts, x.shape[0])
    if k < cfg.num_concepts:
        log.warning("only %d feature samples: learning %d concepts instead of %d", x.shape[0], k, cfg.num_concepts)
    log.info("learning %d visual concepts from %d feature vectors (kappa %.0f)", k, x.shape[0], kappa)
    fit = _fit_concepts(x.to(cfg.device), k, kappa, cfg, dist, checkpoints)
    rec.concept_samples = int(x.shape[0])
    rec.concept_loglik = [round(v, 5) for v in fit.loglik]
    return fit.means.cpu()


def _learn_position(
    crops: Sequence[CropSample],
    concepts: torch.Tensor,
    kappa: float,
    cfg: TrainConfig,
    rec: TrainingRecord,
    dist: DistContext | None = None,
):
    """The part-position classifier (on the CPU, stored with the concepts), fitted on the crops' cells (those
    away from the image border with ``cfg.position_border_px``); ``dist``: the ranks share its loss's chunks."""
    fit_crops = list(crops)
    if cfg.position_border_px is not None:
        fit_crops = [cs for cs in crops if cs.border_px >= cfg.position_border_px]
        log.info("part positions from the %d of %d boxes away from the image border", len(fit_crops), len(crops))
        if not fit_crops:
            raise ValueError(
                f"every training box lies within {cfg.position_border_px} px of its image's border: no box to fit "
                "the part-position classifier on (lower position_border_px, or set it to None)"
            )
    rec.position_boxes = len(fit_crops)
    position = fit_position_model(
        [(cs.features, cs.box_cells) for cs in fit_crops],
        tuple(cfg.position_bins),
        l2=cfg.position_l2,
        max_cells=cfg.position_max_cells,
        seed=cfg.seed,
        inputs=lambda f: position_inputs(f, concepts, kappa),
        device=cfg.device,
        dist=dist,
    )
    return position.to("cpu")


def _global_context_kernels(
    crops: Sequence[CropSample], classes: Sequence[str], cfg: TrainConfig
) -> dict[str, torch.Tensor]:
    """Per class, the paper's context kernels (``cfg.context == "global"``; none for ``per_image``)."""
    kernels_by_class: dict[str, torch.Tensor] = {}
    if cfg.context == "global":
        for c in classes:
            ring_feats = []
            for cs in crops:
                if cs.category != c:
                    continue
                f = F.normalize(cs.features, dim=0)
                inside = box_mask_on_grid((f.shape[1], f.shape[2]), (0, 0), cs.box_cells)
                ring_feats.append(f[:, ~inside].T)
            rf = torch.cat(ring_feats)
            kk = min(cfg.global_context_clusters, rf.shape[0])
            kernels_by_class[c] = fit_vmf_mixture(rf, kk, 30.0, max_iter=50, seed=cfg.seed).means
    elif cfg.context != "per_image":
        raise ValueError(f"unknown context mode {cfg.context!r}: use 'per_image' or 'global'")
    return kernels_by_class


def _settings(
    backbone,
    cfg: TrainConfig,
    kappa: float,
    classes: list[str],
    concepts: torch.Tensor,
    class_models: dict[str, ClassModel],
    clutter: torch.Tensor,
    position,
    rec: TrainingRecord,
) -> CompNetSettings:
    """The learned model's settings and training record."""
    spec = backbone.spec
    return CompNetSettings(
        backbone=spec.name,
        layer=spec.layer,
        channels=spec.channels,
        stride=spec.stride,
        kappa=kappa,
        classes=list(classes),
        num_concepts=int(concepts.shape[0]),
        mixtures={c: cm.num_mixtures for c, cm in class_models.items()},
        target_height=cfg.target_height,
        pad=cfg.pad,
        box_rows=cfg.target_height // spec.stride,
        ring=cfg.pad // spec.stride,
        omega=cfg.omega,
        outlier_weight=cfg.outlier_weight,
        amodal_prior_threshold=cfg.amodal_prior_threshold,
        fg_bias=cfg.fg_bias,
        smooth_cells=cfg.smooth_cells,
        context=cfg.context,
        backbone_weights=backbone.weights_source,
        backbone_fingerprint=backbone.fingerprint(),
        position_bins=list(position.bins) if position is not None else [],
        training={
            "seed": cfg.seed,
            "crops_per_class": rec.crops_per_class,
            "concept_samples": rec.concept_samples,
            "concept_em_loglik": rec.concept_loglik,
            "outlier_cells": rec.clutter_cells,
            "outlier_clusters": int(clutter.shape[0]),
            "classes": rec.mixtures,
            "position_boxes": rec.position_boxes,
            "position_border_px": cfg.position_border_px,
            **_sample_record(rec, cfg),
        },
    )


def _sample_record(rec: TrainingRecord, cfg: TrainConfig) -> dict:
    """The record's note of the per-class sample: only when a class had more boxes than ``max_class_boxes`` (a
    model trained below the cap keeps the record it had before the cap existed)."""
    if all(rec.boxes_per_class.get(c, 0) == n for c, n in rec.crops_per_class.items()):
        return {}
    return {"max_class_boxes": cfg.max_class_boxes, "boxes_per_class": rec.boxes_per_class}
