"""What limits the occlusion order of the Occlusion Reasoning Module on the Occlusion Challenge: the rule or
the masks it is given.

The ORM's first competition (:mod:`occseg.reasoning.colour`, :func:`occseg.reasoning.orm.resolve_conflicts`)
takes two inputs from each object's refined mask: the colour model (a histogram of the pixels only that
object claims) and the region where it competes (the pixels both masks claim). For every GT-occluded pair
of target persons, on the challenge's train split (validation) and test split, the competition is run again
with these inputs replaced by the truth, one at a time:

- ``pixel counts``: colour models and region from the refined masks (the first round of the paper's counting
  rule, without the NOD margin);
- ``true colour models``: colour models from the true visible masks, region from the refined masks;
- ``... without background`` / ``... without other persons``: colour models from the refined masks less the
  pixels that truly show the background (or an unknown occluder) / another target person;
- ``true region``: colour models from the refined masks, region = the true amodal overlap (all of it shows
  the object in front);
- ``true models and region``: both from the truth;
- ``true pixel labels``: every pixel of the refined masks' conflict goes to the object it truly shows (a
  perfect per-pixel competition on occseg's region);
- ``true masks, box intersection``: no colour; the object with more true visible pixels in the boxes'
  intersection is in front (how far the counting rule itself goes);
- ``part-position vote``: no mask and no colour; the model's part-position classifier on the cells where the
  two boxes meet (:mod:`occseg.reasoning.position_order`, what the default pipeline decides the order by);
- ``occseg NOD (2 rounds)``: the final order of the default pipeline, as ``occseg evaluate`` scores it.

The pair is right when the rule puts the true front object in front; a tie (no order) counts as wrong.
``pixels right`` is the share of the competition region's pixels that show one of the two objects and that
colour gives to the object they show. Setup (challenge, model trained from boxes of coco128-seg images that
hold none of the test objects, GT amodal boxes given) as ``benchmarks/reasoning_challenge.py``.

    python benchmarks/order_limits.py [--data ../shared/data] [--images 120] [--seed 0] [--json out.json]
                                      [--refine box-grabcut | --refine '{"work_height": 128}']

``--refine`` replaces the refinement's settings for every row (as in ``benchmarks/reasoning_challenge.py``):
``box-grabcut`` (OpenCV GrabCut from the box alone) gives the challenge's persons far better visible masks,
and shows what the rules do with them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occseg.benchmarking import refine_setting, settings_json
from occseg.benchmarking.challenge import CLASS, add_setup_arguments, build_setup, seed_text, target_boxes
from occseg.data.annotation import pairwise_order_matrix
from occseg.data.images import load_rgb
from occseg.geometry.boxes import box_to_pixel_mask
from occseg.inference.scene import SceneConfig, explain_scene, prepare_scene
from occseg.io import write_json
from occseg.reasoning.colour import DEFAULT_BINS, colour_claims
from occseg.reasoning.order import order_from_masks
from occseg.reasoning.orm import state_position_order
from occseg.refine import RefineConfig
from occseg.refine.colour import colour_index


@dataclass
class Scene:
    """One image's inputs to the rules: refined (predicted) and true masks, boxes, colour lookups."""

    image: np.ndarray
    boxes: list[tuple[float, float, float, float]]
    gt_order: np.ndarray
    visible: list[np.ndarray]  # refined, no reasoning
    true_visible: list[np.ndarray]
    true_amodal: list[np.ndarray]
    final_order: np.ndarray  # occseg's default pipeline (NOD, 2 rounds)
    position_order: np.ndarray  # the part-position vote (occseg.reasoning.position_order)
    index: np.ndarray  # the image's colour cells (colour_index), shared by every colour rule


@dataclass
class Tally:
    right: int = 0
    no_order: int = 0
    pairs: int = 0
    pixels_right: int = 0
    pixels: int = 0

    def add(self, predicted: int, truth: int, pixels: tuple[int, int] | None = None) -> None:
        self.pairs += 1
        self.right += int(predicted == truth)
        self.no_order += int(predicted == 0)
        if pixels is not None:
            self.pixels_right += pixels[0]
            self.pixels += pixels[1]

    def to_json(self) -> dict:
        return {
            "accuracy": self.right / self.pairs if self.pairs else None,
            "no_order": self.no_order / self.pairs if self.pairs else None,
            "pixels_right": self.pixels_right / self.pixels if self.pixels else None,
            "pairs": self.pairs,
        }


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def model_masks(s: Scene, models: str) -> list[np.ndarray]:
    """The masks colour models are taken from: ``pred`` the refined ones, ``true`` the true visible ones,
    ``no-background`` / ``no-others`` the refined ones less the pixels that truly show no target person / another
    target person."""
    if models == "pred":
        return s.visible
    if models == "true":
        return s.true_visible
    persons = np.logical_or.reduce(s.true_visible)
    if models == "no-background":
        return [v & persons for v in s.visible]
    if models == "no-others":
        return [v & ~(persons & ~t) for v, t in zip(s.visible, s.true_visible)]
    raise ValueError(f"unknown colour models {models!r}")


def colour_rule(models: str, region: str) -> Callable[[Scene, list, int, int], tuple[int, tuple[int, int]]]:
    """The first competition on one pair with colour models from :func:`model_masks` and the region from the
    ``pred`` (refined) or ``true`` masks:
    ``(+1 i in front / -1 j / 0 tie, (pixels colour gives to the object they show, pixels showing i or j))``."""

    def rule(s: Scene, claims: dict, i: int, j: int) -> tuple[int, tuple[int, int]]:
        if models not in claims:
            claims[models] = [np.asarray(c) for c in colour_claims(s.image, model_masks(s, models), index=s.index)]
        li, lj = claims[models][i], claims[models][j]
        if region == "pred":
            c = s.visible[i] & s.visible[j]
        else:
            c = s.true_amodal[i] & s.true_amodal[j]
        i_wins, j_wins = c & (li > lj), c & (lj > li)
        shows_i, shows_j = c & s.true_visible[i], c & s.true_visible[j]
        right = int(np.count_nonzero(i_wins & shows_i)) + int(np.count_nonzero(j_wins & shows_j))
        shown = int(np.count_nonzero(shows_i)) + int(np.count_nonzero(shows_j))
        return _sign(int(np.count_nonzero(i_wins)) - int(np.count_nonzero(j_wins))), (right, shown)

    return rule


def true_labels_rule(s: Scene, claims: dict, i: int, j: int) -> tuple[int, None]:
    c = s.visible[i] & s.visible[j]
    return _sign(int(np.count_nonzero(c & s.true_visible[i])) - int(np.count_nonzero(c & s.true_visible[j]))), None


def box_intersection_rule(s: Scene, claims: dict, i: int, j: int) -> tuple[int, None]:
    h, w = s.image.shape[:2]
    both = box_to_pixel_mask(s.boxes[i], h, w) & box_to_pixel_mask(s.boxes[j], h, w)
    in_i, in_j = (int(np.count_nonzero(s.true_visible[k] & both)) for k in (i, j))
    return _sign(in_i - in_j), None


def final_rule(s: Scene, claims: dict, i: int, j: int) -> tuple[int, None]:
    return int(s.final_order[i, j]), None


def position_rule(s: Scene, claims: dict, i: int, j: int) -> tuple[int, None]:
    return int(s.position_order[i, j]), None


RULES: tuple[tuple[str, Callable], ...] = (
    ("pixel counts (refined masks, first round)", colour_rule("pred", "pred")),
    ("true colour models", colour_rule("true", "pred")),
    ("colour models without background", colour_rule("no-background", "pred")),
    ("colour models without other persons", colour_rule("no-others", "pred")),
    ("true region", colour_rule("pred", "true")),
    ("true models and region", colour_rule("true", "true")),
    ("true pixel labels", true_labels_rule),
    ("true masks, box intersection", box_intersection_rule),
    ("part-position vote", position_rule),
    ("occseg NOD (2 rounds), final", final_rule),
)


def scenes(model, backbone, dataset, *, device: str, progress: bool, refine: RefineConfig | None = None) -> list[Scene]:
    """The images with at least two target persons: refined masks without reasoning, the default pipeline's
    final order, and the truth. ``refine``: the refinement's settings (default :class:`RefineConfig`)."""
    refine = refine or RefineConfig()
    out = []
    for im in tqdm(dataset.images, desc="scenes", disable=not progress, leave=False, dynamic_ncols=True):
        objs, boxes = target_boxes(im)
        if len(objs) < 2:
            continue
        image = load_rgb(im.path)
        states = prepare_scene(model, backbone, image, boxes, SceneConfig(batch_size=1), device=device)
        labels = [CLASS] * len(objs)
        off = explain_scene(model, states, SceneConfig(reasoning="off", refine=refine), labels=labels, image=image)
        nod = explain_scene(model, states, SceneConfig(refine=refine), labels=labels, image=image)
        out.append(
            Scene(
                image=image,
                boxes=list(boxes),
                gt_order=pairwise_order_matrix([o.mask for o in objs], [o.amodal_mask for o in objs]),
                visible=[r.visible for r in off.objects],
                true_visible=[o.mask.decode().astype(bool) for o in objs],
                true_amodal=[o.amodal_mask.decode().astype(bool) for o in objs],
                final_order=order_from_masks(nod.objects),
                position_order=state_position_order(model, states)[0],
                index=colour_index(image, DEFAULT_BINS),
            )  # fmt: skip
        )
    return out


def tally(scene_list: list[Scene]) -> dict[str, Tally]:
    out = {name: Tally() for name, _ in RULES}
    for s in scene_list:
        claims: dict = {}
        n = len(s.visible)
        for i in range(n):
            for j in range(i + 1, n):
                truth = int(s.gt_order[i, j])
                if truth == 0:
                    continue
                for name, rule in RULES:
                    predicted, pixels = rule(s, claims, i, j)
                    out[name].add(predicted, truth, pixels)
    return out


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setup_arguments(ap)
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument(
        "--refine",
        default=None,
        help="the refinement's settings, as in reasoning_challenge.py: "
        "box-grabcut, or a JSON object of RefineConfig changes (default: RefineConfig())",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        refine = refine_setting(args.refine)
    except ValueError as e:
        print(f"--refine: {e}", file=sys.stderr)
        return 2
    setup = build_setup(args)
    if setup is None:
        return 2
    results = {}
    for split in ("train", "test"):
        found = scenes(setup.model, setup.backbone, setup.challenge.datasets[split], device=args.device,
                       progress=args.progress, refine=refine)  # fmt: skip
        results[split] = {name: t.to_json() for name, t in tally(found).items()}
    print(
        f"## What limits the order (Occlusion Challenge, {args.images} images, {seed_text(args)}; "
        f"GT-occluded pairs: train {results['train'][RULES[0][0]]['pairs']}, "
        f"test {results['test'][RULES[0][0]]['pairs']}"
        f"{'; masks refined with --refine ' + args.refine if args.refine else ''})\n\n"
        "| rule | train: order right | train: pixels right | train: no order | test: order right | "
        "test: pixels right | test: no order |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for name, _ in RULES:
        tr, te = results["train"][name], results["test"][name]
        print(f"| {name} | {_pct(tr['accuracy'])} | {_pct(tr['pixels_right'])} | {_pct(tr['no_order'])} | "
              f"{_pct(te['accuracy'])} | {_pct(te['pixels_right'])} | {_pct(te['no_order'])} |")  # fmt: skip
    print("\nin %; a pair without an order (no pixel claimed by both, or a tie) counts as wrong; "
          "train = the validation split")  # fmt: skip
    if args.json:
        write_json(Path(args.json), {"settings": settings_json(args), "results": results}, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
