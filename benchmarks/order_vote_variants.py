"""Variants of the part-position vote that decides who is in front, measured alone (no mask, no colour).

Same setup as ``benchmarks/reasoning_challenge.py`` (challenge, model trained from boxes of coco128-seg images
that hold none of the test objects, GT amodal boxes given). For every GT-occluded pair of target objects of a
split, the pair's order is the sign of its vote, and the table gives the share of pairs ordered right, in %,
on the train split (the validation set) and the test split. Rows:

* the default vote (:func:`occseg.reasoning.position_order.pair_position_vote`: every cell of the two crops
  whose centre lies in both boxes votes ``log p(its bin in box i) - log p(its bin in box j)``, summed);
* other ways to add the same cells' votes: each crop's mean vote (so the crop that sees the overlap at a finer
  scale does not outweigh the other), votes clipped to +-1 nat, their signs only, each cell weighted by how
  unlike "outside the box" it looks (``1 - p(outside)``);
* test-time flip: the classifier's log-probabilities of the mirrored image (bins mirrored back) vote as well;
* the default vote's pairs by their confidence, in four parts of equal size (is a sure relation more often
  right?);
* the classifier refitted (as training does, :func:`occseg.compnet.position.fit_position_model` on the model's
  concept distributions) on a subset of the training boxes: all of them (must repeat the default), only boxes
  clear of every other annotated box of their image (whose cells cannot show another annotated object), or only
  boxes away from the image border (likely whole objects, as the challenge's amodal boxes are).

    python benchmarks/order_vote_variants.py [--seed 0] [--images 120] [--model DIR]

About 50 s on 2 CPU cores, training included (75 s with ``--seed 1 --images 300``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from occseg.benchmarking.challenge import add_setup_arguments, build_setup, seed_text, target_boxes, training_seed
from occseg.compnet.learn import TrainConfig, extract_training_crops
from occseg.compnet.position import PositionModel, fit_position_model, position_inputs
from occseg.data.annotation import pairwise_order_matrix
from occseg.data.images import load_rgb
from occseg.features.crops import CropConfig, extract_box_features
from occseg.geometry.boxes import Box, cell_centres_image
from occseg.reasoning.position_order import cell_votes, pair_position_vote, position_order


@dataclass
class Crop:
    """One object's crop: the classifier's inputs per cell and the cell centres in image pixels."""

    inputs: torch.Tensor  # (K, h, w) concept distributions
    centres: np.ndarray  # (h, w, 2)


@dataclass
class Scene:
    boxes: list[Box]
    gt: np.ndarray  # GT order matrix
    crops: list[Crop]
    flipped: list[Crop]  # crops of the mirrored image, centres mapped back to the original image


def _crops(model, backbone, image: np.ndarray, boxes: list[Box], device: str) -> list[Crop]:
    s = model.settings
    feats = extract_box_features(
        backbone, image, boxes, CropConfig(target_height=s.target_height, pad=s.pad, batch_size=1), device=device
    )
    out = []
    for bf in feats:
        x = position_inputs(bf.features, model.concepts.to(bf.features.device), s.kappa).cpu()
        out.append(Crop(x, cell_centres_image(bf.window, s.stride, tuple(x.shape[1:]))))
    return out


def collect(setup, split: str, device: str, progress: bool) -> list[Scene]:
    scenes = []
    for im in tqdm(setup.challenge.datasets[split].images, desc=split, disable=not progress):
        objs, boxes = target_boxes(im)
        if len(objs) < 2:
            continue
        gt = pairwise_order_matrix([o.mask for o in objs], [o.amodal_mask for o in objs])  # type: ignore[misc]
        if not (gt != 0).any():
            continue
        image = load_rgb(im.path)
        w = image.shape[1]
        crops = _crops(setup.model, setup.backbone, image, boxes, device)
        mirrored = [(w - b[2], b[1], w - b[0], b[3]) for b in boxes]
        flipped = _crops(setup.model, setup.backbone, np.ascontiguousarray(image[:, ::-1]), mirrored, device)
        for c in flipped:
            c.centres = c.centres.copy()
            c.centres[..., 0] = w - c.centres[..., 0]
        scenes.append(Scene(boxes, gt, crops, flipped))
    return scenes


def _mirror_bins(bins: tuple[int, int]) -> torch.Tensor:
    """Index ``perm`` with ``logp_mirrored[perm]`` = the log-probabilities of the original image's bins."""
    rows, cols = bins
    return torch.tensor([r * cols + (cols - 1 - c) for r in range(rows) for c in range(cols)] + [rows * cols])


def crop_votes(boxes: tuple[Box, Box], logp: torch.Tensor, centres: np.ndarray, bins) -> tuple[np.ndarray, np.ndarray]:
    """``(votes, p_outside)`` of the crop's cells whose centre lies in both boxes (the package's
    :func:`~occseg.reasoning.position_order.cell_votes`, with each cell's probability of "outside the box")."""
    votes, inside = cell_votes(boxes, logp, centres, bins)
    p_out = logp.reshape(logp.shape[0], -1)[-1, inside].exp()
    return votes.numpy(), p_out.numpy()


Rule = Callable[[list[tuple[np.ndarray, np.ndarray]]], float]
RULES: dict[str, Rule] = {
    "summed (as the default)": lambda cs: sum(float(v.sum()) for v, _ in cs),
    "each crop's mean vote, summed": lambda cs: sum(float(v.mean()) for v, _ in cs if len(v)),
    "votes clipped to +-1 nat": lambda cs: sum(float(np.clip(v, -1, 1).sum()) for v, _ in cs),
    "signs of the votes": lambda cs: sum(float(np.sign(v).sum()) for v, _ in cs),
    "weighted by 1 - p(outside)": lambda cs: sum(float((v * (1 - po)).sum()) for v, po in cs),
}


def accuracy(scenes: list[Scene], pm: PositionModel, rule: Rule, *, flip: bool = False) -> float:
    perm = _mirror_bins(pm.bins)
    right = total = 0
    for sc in scenes:
        logps = [pm.log_probs(c.inputs) for c in sc.crops]
        flogps = [pm.log_probs(c.inputs)[perm] for c in sc.flipped] if flip else []
        n = len(sc.boxes)
        for i in range(n):
            for j in range(i + 1, n):
                if sc.gt[i, j] == 0:
                    continue
                pair = (sc.boxes[i], sc.boxes[j])
                cs = [crop_votes(pair, logps[k], sc.crops[k].centres, pm.bins) for k in (i, j)]
                if flip:
                    cs += [crop_votes(pair, flogps[k], sc.flipped[k].centres, pm.bins) for k in (i, j)]
                total += 1
                right += int(np.sign(rule(cs)) == sc.gt[i, j])
    return 100.0 * right / max(total, 1)


def packaged_accuracy(scenes: list[Scene], pm: PositionModel) -> float:
    """The default row through the package's own function (a check that this script measures what ships)."""
    right = total = 0
    for sc in scenes:
        cells = [(pm.log_probs(c.inputs), c.centres) for c in sc.crops]
        n = len(sc.boxes)
        for i in range(n):
            for j in range(i + 1, n):
                if sc.gt[i, j] == 0:
                    continue
                vote, _ = pair_position_vote((sc.boxes[i], sc.boxes[j]), (cells[i], cells[j]), pm.bins)
                total += 1
                right += int(np.sign(vote) == sc.gt[i, j])
    return 100.0 * right / max(total, 1)


def by_confidence(scenes: list[Scene], pm: PositionModel, parts: int = 4) -> list[tuple[float, float, float, int]]:
    """The default vote's pairs split at the quantiles of their confidence (``m / (1 + m)`` of the mean vote per
    cell, :func:`~occseg.reasoning.position_order.position_order`, what ``SceneResult.order_confidence`` holds):
    ``(low, high, % right, pairs)`` per part."""
    conf, right = [], []
    for sc in scenes:
        order, c = position_order(sc.boxes, [(pm.log_probs(x.inputs), x.centres) for x in sc.crops], pm.bins)
        for i, j in zip(*np.nonzero(np.triu(sc.gt != 0, 1))):
            conf.append(c[i, j])
            right.append(order[i, j] == sc.gt[i, j])
    conf_a, right_a = np.array(conf), np.array(right)
    edges = np.quantile(conf_a, np.linspace(0, 1, parts + 1))
    part = np.clip(np.searchsorted(edges, conf_a, side="right") - 1, 0, parts - 1)
    return [
        (float(edges[k]), float(edges[k + 1]), 100.0 * float(right_a[part == k].mean()), int((part == k).sum()))
        for k in range(parts)
    ]


def refits(setup, seed: int, device: str, progress: bool) -> dict[str, PositionModel]:
    """The classifier refitted, as training fits it, on subsets of the training boxes (the model's concepts)."""
    model = setup.model
    cfg = TrainConfig(seed=seed, device=device)
    crops, _ = extract_training_crops(setup.samples, setup.backbone, cfg, progress=progress)
    by_image: dict[int, list] = {}
    for smp in setup.samples:
        by_image.setdefault(smp.image_id, []).append(smp)
    # extract_training_crops returns each image's samples in order, the images in first-seen order
    samples = [smp for group in by_image.values() for smp in group]
    if [c.image_id for c in crops] != [smp.image_id for smp in samples]:
        raise RuntimeError("the training crops are not in the order of their samples: this script needs updating")

    def clear(smp) -> bool:
        b = smp.box
        return not any(min(b[2], o[2]) > max(b[0], o[0]) and min(b[3], o[3]) > max(b[1], o[1]) for o in smp.others)

    concepts = model.concepts.to(device)

    def fit(keep: Callable) -> tuple[int, PositionModel]:
        chosen = [(c.features, c.box_cells) for c, smp in zip(crops, samples) if keep(c, smp)]
        pm = fit_position_model(
            chosen,
            tuple(model.position.bins),
            l2=cfg.position_l2,
            max_cells=cfg.position_max_cells,
            seed=cfg.seed,
            inputs=lambda f: position_inputs(f, concepts, model.settings.kappa),
            device=device,
        )
        return len(chosen), pm.to("cpu")

    out = {}
    subsets = (
        ("training boxes", lambda c, smp: True),
        ("boxes clear of other boxes", lambda c, smp: clear(smp)),
        ("boxes away from the image border", lambda c, smp: c.border_px >= 2.0),  # TrainConfig.position_border_px
    )
    for what, keep in subsets:
        n, pm = fit(keep)
        out[f"refit on the {n} {what}"] = pm
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setup_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    setup = build_setup(args)
    if setup is None:
        return 2
    if setup.model.position is None:
        print("the model has no part-position classifier (trained before it existed): retrain it", file=sys.stderr)
        return 2
    splits = {s: collect(setup, s, args.device, args.progress) for s in ("train", "test")}
    pm = setup.model.position
    rows: list[tuple[str, dict[str, float]]] = []
    rows.append(("default vote, through occseg.reasoning", {s: packaged_accuracy(sc, pm) for s, sc in splits.items()}))
    for name, rule in RULES.items():
        rows.append((name, {s: accuracy(sc, pm, rule) for s, sc in splits.items()}))
    first = next(iter(RULES.values()))
    rows.append(
        (
            "test-time flip: mirrored image's votes added",
            {s: accuracy(sc, pm, first, flip=True) for s, sc in splits.items()},
        )
    )
    for name, refit in refits(setup, training_seed(args), args.device, args.progress).items():
        rows.append((name, {s: accuracy(sc, refit, first) for s, sc in splits.items()}))
    pairs = {s: sum(int((x.gt != 0).sum()) // 2 for x in sc) for s, sc in splits.items()}
    print(f"## The part-position vote alone, {seed_text(args)} ({args.images} images)\n")
    tr, te = pairs["train"], pairs["test"]
    print(f"| vote | train: order right ({tr} occluded pairs) | test: order right ({te} occluded pairs) |")
    print("|---|---:|---:|")
    for name, acc in rows:
        print(f"| {name} | {acc['train']:.1f} | {acc['test']:.1f} |")
    print("\n## The default vote's pairs by confidence (quarters of each split's pairs)\n")
    print("| split | confidence | order right | pairs |\n|---|---|---:|---:|")
    for split, sc in splits.items():
        for lo, hi, acc, n in by_confidence(sc, pm):
            print(f"| {split} | {lo:.3f}-{hi:.3f} | {acc:.1f} | {n} |")
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
