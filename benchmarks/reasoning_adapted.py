"""The reasoning with its part-position classifier refitted to the boxes of the images it predicts
(:mod:`occseg.inference.adapt`, ``occseg predict --adapt-order``), on the Occlusion Challenge.

Same setup as ``benchmarks/reasoning_challenge.py`` (challenge, model trained from boxes of coco128-seg images
that hold none of the test objects, GT amodal boxes and the class given). For each split (train: validation;
test: reporting) the classifier is used as trained, refitted to that split's own boxes (what ``--adapt-order``
does), and refitted to the other split's boxes (does the gain carry over to other objects?). Rows: no reasoning,
NOD (2 rounds, the default), OD (1 and 2 rounds); visible mIoU per level and its plain mean, amodal mean, order
accuracy on the GT-occluded pairs (from the final masks, as ``occseg evaluate`` scores it), in %.

    python benchmarks/reasoning_adapted.py [--seed 0] [--images 120]

107 s on 2 CPU cores for the first challenge (training included).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from occseg.benchmarking.challenge import (
    LEVELS,
    add_setup_arguments,
    build_setup,
    score_configs,
    seed_text,
    target_boxes,
)
from occseg.inference.adapt import adapt_order_classifier
from occseg.inference.scene import SceneConfig

MODES = {
    "no reasoning": SceneConfig(reasoning="off"),
    "NOD, 2 rounds (default)": SceneConfig(),
    "OD, 1 round": SceneConfig(reasoning="od", reasoning_iters=1),
    "OD, 2 rounds": SceneConfig(reasoning="od"),
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setup_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    setup = build_setup(args)
    if setup is None:
        return 2
    splits = ("train", "test")
    t0 = time.perf_counter()
    adapted = {}
    for split in splits:
        items = []
        for im in setup.challenge.datasets[split].images:
            objs, boxes = target_boxes(im)
            if objs:
                items.append((im, boxes))
        adapted[split] = adapt_order_classifier(setup.model, setup.backbone, items, device=args.device,
                                                progress=args.progress)  # fmt: skip
    seconds_adapt = time.perf_counter() - t0
    print(
        f"## The part-position classifier refitted to the boxes it reads: Occlusion Challenge ({args.images} "
        f"images, {seed_text(args)})\n\nrefitting to both splits took {seconds_adapt:.0f} s\n"
    )
    for split in splits:
        other = splits[1 - splits.index(split)]
        data = setup.challenge.datasets[split]
        print(
            f"### {split} split\n\n| classifier | method | vis L0 | vis L1 | vis L2 | vis L3 | vis mean | amo mean "
            "| order (occluded; 95 % interval over images) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
        )
        for what, pm in (
            ("as trained", setup.model.position),
            (f"refitted to the {split} split (--adapt-order)", adapted[split]),
            (f"refitted to the {other} split", adapted[other]),
        ):
            res = score_configs(replace(setup.model, position=pm), setup.backbone, data, MODES, device=args.device,
                                progress=args.progress)  # fmt: skip
            for name, a in res.items():
                if name == "no reasoning" and pm is not setup.model.position:
                    continue  # the classifier changes nothing without reasoning
                v = a["visible"]
                cells = [f"{100 * v[lv]:.1f}" for lv in LEVELS]
                cells += [f"{100 * v['mean']:.1f}", f"{100 * a['amodal']['mean']:.1f}"]
                order, iv = a["order_accuracy"]["occluded"], a["order_accuracy"].get("occluded_interval")
                shown = "-" if name == "no reasoning" else f"{100 * order:.1f}"
                if iv is not None and name != "no reasoning":
                    shown += f" ({100 * iv[0]:.1f}–{100 * iv[1]:.1f})"
                print(f"| {what} | {name} | " + " | ".join(cells) + f" | {shown} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
