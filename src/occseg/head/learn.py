"""Training the mask head from boxes only: the training crops (one backbone pass per box and scale), batches with
flips, and the loop (BoxInst's projection + colour-affinity pairwise losses, Adam, seeded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from occseg.backbones.registry import Backbone
from occseg.backbones.taps import fine_layer
from occseg.data.annotation import Dataset
from occseg.distributed.collectives import all_reduce_sum, rank_parts, summed_gradients
from occseg.distributed.context import DistContext
from occseg.geometry.boxes import Box, box_height, box_width
from occseg.head.config import HEAD_REFINE, OPTIONS_OFF, HeadSettings, HeadTrainConfig
from occseg.head.inputs import HeadCrop, compnet_channels, head_crop, image_tensor, mask_to_cells
from occseg.head.losses import bce_total, colour_similarity, pairwise_total, pairwise_weights, projection_rows
from occseg.head.network import MaskHead
from occseg.head.paste import composite, cutout_of, draw_paste, paste_box
from occseg.head.predict import head_logits
from occseg.head.shards import micro_batches, sharded_crops


@dataclass(frozen=True)
class ImageBoxes:
    """One training image: its file, the boxes of the classes asked for (all are given boxes of the scene) and
    which of them are trained on (``targets``: indices, those at least ``min_height`` px high)."""

    path: Path
    boxes: tuple[Box, ...]
    categories: tuple[str, ...]
    targets: tuple[int, ...]


def image_boxes(
    dataset: Dataset, classes: Sequence[str], *, class_map: Mapping[str, str] | None = None, min_height: float = 30.0
) -> list[ImageBoxes]:
    """Every image of ``dataset`` with at least one box of ``classes`` to train on (crowd boxes skipped). Only
    boxes and class names are read, never masks."""
    wanted = set(classes)
    cmap = dict(class_map or {})
    out = []
    for im in dataset.images:
        picked = [(i.box, cmap.get(i.category, i.category)) for i in im.instances if not i.iscrowd]
        picked = [(b, c) for b, c in picked if c in wanted]
        targets = tuple(k for k, (b, _) in enumerate(picked) if box_height(b) >= min_height)
        if targets:
            boxes = tuple(tuple(float(v) for v in b) for b, _ in picked)
            out.append(ImageBoxes(Path(im.path), boxes, tuple(c for _, c in picked), targets))
    return out


def crops_of_image(
    backbone: Backbone,
    rgb: np.ndarray,
    boxes: Sequence[Box],
    targets: Sequence[int],
    categories: Sequence[str],
    *,
    target_height: int,
    pad: int,
    model=None,
    compnet_inputs: bool = True,
    self_train: bool = False,
    teacher: MaskHead | None = None,
    fine_stride: int = 8,
    scene_targets: bool = False,
    cutouts: bool = False,
) -> list[HeadCrop]:
    """The head crops of the ``targets`` boxes of one image at one crop height (one backbone pass per box).
    With a CompNet ``model`` and ``compnet_inputs``, each crop carries the model's cells for its class (the
    mixture that explains the crop best); with ``self_train`` also the model's refined visible mask as a target, or,
    with a ``teacher`` head, the teacher's mask refined with its logits as the prior (a further self-training round).
    ``fine_stride``: the finer block read (8 or 4); ``scene_targets``: the targets are the visible masks of the
    image's scene instead (:func:`scene_masks`); ``cutouts``: each crop with a target also carries its box's
    cut-out, the target as its alpha (:func:`occseg.head.paste.cutout_of`, the donors of the composites)."""
    from occseg.features.crops import CropConfig, extract_box_features
    from occseg.inference.single import classify, finish_object, prepare_object
    from occseg.refine import RefineConfig, refine_object
    from occseg.refine.object import refine_mask

    layer = fine_layer(backbone.spec.name, fine_stride)
    cfg = CropConfig(target_height=target_height, pad=pad, batch_size=1 if backbone.device.type == "cpu" else 8)
    feats = extract_box_features(backbone, rgb, [boxes[k] for k in targets], cfg, fine_layer=layer)
    image = image_tensor(rgb)
    scene = scene_masks(model, backbone, rgb, boxes, categories, teacher) if self_train and scene_targets else None
    out = []
    for k, f in zip(targets, feats):
        others = [b for j, b in enumerate(boxes) if j != k]
        cells = target = None
        if model is not None and (compnet_inputs or self_train):
            state = prepare_object(model, f.features, f.box, f.window, rgb.shape[:2], classes=[categories[k]])
            cls, mix, conf, scores = classify(model, state, given_label=categories[k])
            cells = compnet_channels(model, state, categories[k], mix)
            if self_train and teacher is None and scene is None:
                obj = finish_object(model, state, cls, mix, conf, scores)
                target = refine_object(rgb, obj, state, RefineConfig())[0]
        crop = head_crop(image, f.box, others, f.window, f.features.cpu(), f.fine.cpu(), layer.stride, cells)
        if scene is not None:
            target = scene[k]
        elif self_train and teacher is not None:
            logits = head_logits(teacher, crop).numpy()
            target = refine_mask(rgb, f.box, logits, f.window, layer.stride, replace(RefineConfig(), **HEAD_REFINE))
        if target is not None:
            crop.target = mask_to_cells(target, f.window, layer.stride, tuple(crop.fine.shape[-2:]))
            if cutouts:
                crop.cutout = cutout_of(rgb, boxes[k], target)
        out.append(crop)
    return out


def scene_masks(
    model, backbone: Backbone, rgb: np.ndarray, boxes: Sequence[Box], categories: Sequence[str], teacher
) -> list[np.ndarray]:
    """The visible masks of every given box of one image through the scene path (one more backbone pass): the
    default reasoning and refinement with all boxes together, so a pixel two boxes hold is resolved between them
    (the crowded case); with a ``teacher`` head, the model with that head (its refined masks, its competition)."""
    from occseg.inference.predict import explain_image
    from occseg.inference.scene import SceneConfig

    scene_model = model if teacher is None else replace(model, mask_head=teacher)
    res = explain_image(scene_model, backbone, rgb, list(boxes), {"t": SceneConfig(boxes="visible")}, labels=categories)
    return [o.visible for o in res["t"].objects]


def training_crops(
    backbone: Backbone,
    images: Sequence[ImageBoxes],
    cfg: HeadTrainConfig,
    *,
    pad: int,
    model=None,
    teacher: MaskHead | None = None,
    progress: bool = False,
    dist: DistContext | None = None,
) -> list[HeadCrop]:
    """Every target box of every image at every crop height of ``cfg.scales`` (the pad scales with the height);
    ``teacher``: the head of the previous self-training round (see :func:`crops_of_image`); ``dist``: under
    torchrun each rank renders its share of the images and every rank gets all the crops, in image order."""
    from occseg.data.images import load_rgb

    mine = len(images) if dist is None else len(dist.shard(len(images)))
    bar = tqdm(total=mine, desc="mask head crops", disable=not progress, leave=False, dynamic_ncols=True)

    def image_crops(k: int) -> list[HeadCrop]:
        ib, crops = images[k], []
        rgb = load_rgb(ib.path)
        for si, th in enumerate(cfg.scales):
            crops += crops_of_image(
                backbone,
                rgb,
                ib.boxes,
                ib.targets,
                ib.categories,
                target_height=th,
                pad=round(pad * th / 224),
                model=model,
                compnet_inputs=cfg.compnet_inputs,
                self_train=cfg.self_train > 0,
                teacher=teacher,
                fine_stride=cfg.fine_stride,
                scene_targets=cfg.targets == "scene",
                cutouts=cfg.paste > 0 and si == 0,
            )
        bar.update()
        return crops

    crops = sharded_crops(dist, len(images), image_crops)
    bar.close()
    if cfg.paste > 0:
        crops += pasted_crops(backbone, images, crops, cfg, pad=pad, model=model, progress=progress, dist=dist)
    return crops


def pasted_crops(
    backbone: Backbone,
    images: Sequence[ImageBoxes],
    plain: Sequence[HeadCrop],
    cfg: HeadTrainConfig,
    *,
    pad: int,
    model=None,
    progress: bool = False,
    dist: DistContext | None = None,
) -> list[HeadCrop]:
    """The copy-paste composites' crops (``cfg.paste`` per training box, :func:`paste_crops_of_image`) of every
    image, in image order; ``plain``: :func:`training_crops`' crops of the same images, whose cut-outs are the
    donors (taken off them here) and whose targets are the covered boxes' targets before the paste."""
    from occseg.data.images import load_rgb

    donors = [c.cutout for c in plain if c.cutout is not None]
    for c in plain:
        c.cutout = None
    categories = [ib.categories[k] for ib in images for k in ib.targets]
    if len(donors) != len(categories):
        raise ValueError(f"copy-paste needs every training box's target: {len(donors)} of {len(categories)} have one")
    firsts = np.cumsum([0] + [len(ib.targets) for ib in images]).tolist()
    mine = len(images) if dist is None else len(dist.shard(len(images)))
    bar = tqdm(total=mine, desc="mask head composites", disable=not progress, leave=False, dynamic_ncols=True)

    def image_crops(i: int) -> list[HeadCrop]:
        ib, out = images[i], []
        rgb = load_rgb(ib.path)
        n = len(ib.targets)
        for si, th in enumerate(cfg.scales):
            start = firsts[i] * len(cfg.scales) + si * n
            own = plain[start : start + n]
            out += paste_crops_of_image(
                backbone, rgb, ib, own, donors, categories, firsts[i], cfg,
                target_height=th, pad=round(pad * th / 224), model=model,
            )  # fmt: skip
        bar.update()
        return out

    crops = sharded_crops(dist, len(images), image_crops)
    bar.close()
    return crops


def paste_crops_of_image(
    backbone: Backbone,
    rgb: np.ndarray,
    ib: ImageBoxes,
    own: Sequence[HeadCrop],
    donors: Sequence[torch.Tensor],
    categories: Sequence[str],
    first: int,
    cfg: HeadTrainConfig,
    *,
    target_height: int,
    pad: int,
    model=None,
) -> list[HeadCrop]:
    """For each training box ``k`` of one image (``own``: its plain crops, in ``ib.targets`` order; ``first``:
    the index of its first box among all training boxes), ``cfg.paste`` composites: a donor's cut-out (``donors``,
    of every training box; :func:`occseg.head.paste.draw_paste`) pasted over part of the box. Two crops each, on
    the composite: box ``k``, its target less the pasted pixels and the pasted box among its other boxes; and the
    pasted box, the pasted alpha as its target and ``k`` among its other boxes."""
    out = []
    for t, k in enumerate(ib.targets):
        for r in range(cfg.paste):
            draw = draw_paste(cfg.seed, first + t, r, len(donors), cfg.paste_height, cfg.paste_cover)
            if draw is None:
                continue
            cut = donors[draw.donor]
            image, alpha, pasted = composite(rgb, cut, paste_box(ib.boxes[k], tuple(cut.shape[-2:]), draw))
            if box_height(pasted) < 8 or box_width(pasted) < 4:
                continue
            boxes, cats = (*ib.boxes, pasted), (*ib.categories, categories[draw.donor])
            covered, front = crops_of_image(
                backbone, image, boxes, [k, len(ib.boxes)], cats, target_height=target_height, pad=pad,
                model=model, compnet_inputs=cfg.compnet_inputs, fine_stride=cfg.fine_stride,
            )  # fmt: skip
            size = tuple(covered.fine.shape[-2:])
            covered.target = own[t].target * (1.0 - mask_to_cells(alpha, covered.window, covered.stride, size))
            front.target = mask_to_cells(alpha, front.window, front.stride, tuple(front.fine.shape[-2:]))
            out += [covered, front]
    return out


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))


def fine_per_coarse(crops: Sequence[HeadCrop]) -> int:
    """The fine cells per stride-16 cell along each side (2 for the stride-8 block, 4 for the stride-4 one)."""
    return max(1, 16 // crops[0].stride)


def batch_shape(crops: Sequence[HeadCrop]) -> tuple[int, int]:
    """The fine cells ``(h, w)`` a batch of ``crops`` is padded to (the coarse maps to them divided by the fine
    cells per stride-16 cell, rounded up)."""
    h = max(c.fine.shape[-2] for c in crops)
    w = max(c.fine.shape[-1] for c in crops)
    h2, w2 = max(c.coarse.shape[-2] for c in crops), max(c.coarse.shape[-1] for c in crops)
    r = fine_per_coarse(crops)
    return max(h, r * h2), max(w, r * w2)


def collate(
    crops: Sequence[HeadCrop], flips: Sequence[bool], device, shape: tuple[int, int] | None = None
) -> dict[str, torch.Tensor | None]:
    """A padded batch (bottom / right) of crops, each flipped left-right where ``flips`` says so (the position
    channel ``u`` then changes sign, as it would for the flipped image); ``shape``: the fine cells to pad to
    (default :func:`batch_shape`; a micro-batch is padded as its whole batch, so each crop's logits are the same)."""
    h, w = shape if shape is not None else batch_shape(crops)
    r = fine_per_coarse(crops)
    h2, w2 = -(-h // r), -(-w // r)
    names = ("coarse", "fine", "extra", "lab", "box", "valid", "cn", "target")
    keys: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    for c, flip in zip(crops, flips):
        extra = c.extra()
        valid = torch.ones_like(c.fine[:1])
        maps = {"coarse": c.coarse, "fine": c.fine, "extra": extra, "lab": c.lab, "box": c.geo[2:3], "valid": valid}
        if c.compnet is not None:
            maps["cn"] = c.compnet
        if c.target is not None:
            maps["target"] = c.target
        if flip:
            maps = {k: v.flip(-1) for k, v in maps.items()}
            maps["extra"] = maps["extra"].clone()
            maps["extra"][3] = -maps["extra"][3]
            if "cn" in maps:
                maps["cn"] = maps["cn"].clone()
                maps["cn"][4] = -maps["cn"][4]
        for k, v in maps.items():
            small = k in ("coarse", "cn")
            keys[k].append(_pad_to(v.float(), h2 if small else h, w2 if small else w))
    batch = {k: torch.stack(v).to(device) if len(v) == len(crops) else None for k, v in keys.items()}
    return batch


def head_settings(backbone: Backbone, cfg: HeadTrainConfig) -> HeadSettings:
    """The settings of a head learned on ``backbone`` with ``cfg``."""
    layer = fine_layer(backbone.spec.name, cfg.fine_stride)
    training = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    for k, off in OPTIONS_OFF.items():  # recorded only when used: a record without them is a head learned without
        if getattr(cfg, k) == off:
            del training[k]
    if cfg.paste == 0:
        del training["paste_height"], training["paste_cover"]
    return HeadSettings(
        fine_layer=layer.module,
        fine_channels=layer.channels,
        fine_stride=layer.stride,
        coarse_channels=backbone.spec.channels,
        width=cfg.width,
        compnet_inputs=cfg.compnet_inputs,
        use=cfg.use,
        training=training,
    )


#: the normalisers of the losses, in this order: crops (projection), pairs (pairwise), cells outside the boxes
#: (outside), cells with a target (self-training)
LOSS_TERMS: tuple[str, ...] = ("projection", "pairwise", "outside", "self_train")


def loss_weights(batch: dict, cfg: HeadTrainConfig, self_train: bool) -> dict[str, torch.Tensor]:
    """What each loss sums over in ``batch`` (none depends on the head): the pairs of the pairwise loss, the valid
    cells outside the boxes, the valid cells (self-training, when ``self_train``)."""
    sim = colour_similarity(batch["lab"], cfg.pairwise_dilation)
    pairs = pairwise_weights(
        sim, batch["box"] * batch["valid"], batch["valid"], dilation=cfg.pairwise_dilation, tau=cfg.pairwise_tau
    )
    out = {"pairwise": pairs, "outside": (1.0 - batch["box"]) * batch["valid"]}
    if self_train:
        out["self_train"] = batch["valid"]
        if cfg.target_band > 0:  # only the cells the target is sure of (the mask's rim left out)
            t = batch["target"]
            out["self_train"] = batch["valid"] * ((t <= cfg.target_band) | (t >= 1.0 - cfg.target_band)).float()
    return out


def loss_counts(batch: dict, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(4,)`` float64: the :data:`LOSS_TERMS` normalisers of one (micro-)batch; summed over a whole batch."""
    counts = [float(batch["valid"].shape[0])] + [
        float(weights[k].sum()) if k in weights else 0.0 for k in LOSS_TERMS[1:]
    ]
    return torch.tensor(counts, dtype=torch.float64)


def micro_batch_loss(
    head: MaskHead, batch: dict, weights: dict[str, torch.Tensor], counts: torch.Tensor, cfg: HeadTrainConfig,
    pair_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One micro-batch's share of its whole batch's loss (the projection loss plus ``pair_weight`` times the
    pairwise loss, the outside and self-training losses, each normalised by the whole batch's ``counts``, so the
    shares add up to the batch's loss) and the :data:`LOSS_TERMS` sums of the share, to be logged."""
    logits = head(batch["coarse"], batch["fine"], batch["extra"], batch["cn"])
    norm = [float(c) for c in counts.clamp_min(1.0)]
    sums = [
        projection_rows(logits, batch["box"], batch["valid"]).sum(),
        pairwise_total(logits, weights["pairwise"], dilation=cfg.pairwise_dilation),
        bce_total(logits, torch.zeros_like(logits), weights["outside"]),
    ]
    if "self_train" in weights:
        sums.append(bce_total(logits, batch["target"], weights["self_train"]))
    factors = [1.0, pair_weight, cfg.outside_weight, cfg.self_train]
    loss = sum(f * t / c for f, t, c in zip(factors, sums, norm))
    return loss, torch.stack([t.detach() for t in sums] + [logits.new_zeros(())] * (4 - len(sums)))


def batch_step(
    head: MaskHead,
    crops: Sequence[HeadCrop],
    flips: Sequence[bool],
    cfg: HeadTrainConfig,
    pair_weight: float,
    *,
    device,
    dist: DistContext | None = None,
) -> dict[str, float]:
    """Set the gradients of ``head``'s loss on one batch of ``crops``; returns the batch's losses. The batch is
    cut into micro-batches (:func:`occseg.head.shards.micro_batches`), ``dist``'s ranks share them, and the
    gradients are summed over them (:func:`occseg.distributed.collectives.summed_gradients`): the same on every
    rank, whatever their number."""
    shape = batch_shape(crops)
    self_train = cfg.self_train > 0 and all(c.target is not None for c in crops)
    mine = []
    for part in rank_parts(dist, micro_batches(len(crops))):
        batch = collate([crops[i] for i in part], [flips[i] for i in part], device, shape)
        mine.append((batch, loss_weights(batch, cfg, self_train)))
    counts = sum((loss_counts(b, w) for b, w in mine), torch.zeros(len(LOSS_TERMS), dtype=torch.float64))
    counts = all_reduce_sum(dist, counts.to(device)).cpu()
    losses = (micro_batch_loss(head, b, w, counts, cfg, pair_weight) for b, w in mine)
    sums = summed_gradients(dist, list(head.parameters()), losses, len(LOSS_TERMS)).cpu()
    means = (sums / counts.clamp_min(1.0)).tolist()
    return {k: m for k, m in zip(LOSS_TERMS, means) if k != "self_train" or self_train}


def train_head(
    crops: Sequence[HeadCrop],
    settings: HeadSettings,
    cfg: HeadTrainConfig,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
    dist: DistContext | None = None,
) -> MaskHead:
    """Learn a :class:`MaskHead` on ``crops`` (seeded: the same crops and config give the same weights); ``dist``:
    under torchrun the ranks share every batch's micro-batches and learn the same head (:func:`batch_step`)."""
    if not crops:
        raise ValueError("no training crops for the mask head")
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        head = MaskHead(settings)
    head.to(device).train()
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(crops) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    step = 0
    log: dict = {}
    for _ in tqdm(range(cfg.epochs), desc="mask head", disable=not progress, leave=False, dynamic_ncols=True):
        order = torch.randperm(len(crops), generator=gen).tolist()
        flips = (torch.rand(len(crops), generator=gen) < 0.5).tolist() if cfg.flip else [False] * len(crops)
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            ramp = min(1.0, step / max(1.0, cfg.warmup * steps)) if cfg.warmup > 0 else 1.0
            batch, flipped = [crops[i] for i in idx], [flips[i] for i in idx]
            log = batch_step(head, batch, flipped, cfg, cfg.pairwise_weight * ramp, device=device, dist=dist)
            opt.step()
            sched.step()
            step += 1
    head.eval()
    settings.training = {**settings.training, "crops": len(crops), "final_losses": log}
    return head


def learn_mask_head(
    model,
    images: Sequence[ImageBoxes],
    cfg: HeadTrainConfig | None = None,
    *,
    backbone: Backbone,
    device: str | torch.device | None = None,
    progress: bool = False,
    dist: DistContext | None = None,
) -> MaskHead:
    """Learn a mask head for a trained CompNet ``model`` from the boxes of ``images`` (:func:`image_boxes`), on
    ``backbone`` (the one the model was learned on), on ``device`` (default: the backbone's); ``dist``: under
    torchrun, the ranks share the crops and every batch's gradients (:mod:`occseg.head.shards`), and each ends with
    the same head."""
    cfg = cfg or HeadTrainConfig()
    if not images:
        raise ValueError("no boxes to learn the mask head from")
    dev = torch.device(device) if device is not None else backbone.device
    head = None
    for _ in range(cfg.rounds if cfg.self_train > 0 else 1):
        teacher = None if head is None else head.cpu()
        crops = training_crops(
            backbone, images, cfg, pad=model.settings.pad, model=model, teacher=teacher, progress=progress, dist=dist
        )
        head = train_head(crops, head_settings(backbone, cfg), cfg, device=dev, progress=progress, dist=dist)
    return head
