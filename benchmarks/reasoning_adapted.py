"""The reasoning with its part-position classifier refitted to the boxes of the images it predicts
(:mod:`occseg.inference.adapt`, ``occseg predict --adapt-order``), on the Occlusion Challenge.

Same setup as ``benchmarks/reasoning_challenge.py`` (challenge, model trained from boxes of coco128-seg images
that hold none of the test objects, GT amodal boxes and the class given). For each split (train: validation;
test: reporting) the classifier is used as trained, refitted to that split's own boxes (what ``--adapt-order``
does), and refitted to the other split's boxes (does the gain carry over to other objects?). Rows: no reasoning,
NOD (2 rounds, the default), OD (1 and 2 rounds); visible mIoU per level and its plain mean, amodal mean, order
accuracy on the GT-occluded pairs (from the final masks, as ``occseg evaluate`` scores it), in %.

    python benchmarks/reasoning_adapted.py [--seed 0] [--images 120]

About 3 min on 2 CPU cores (5 min with ``--seed 1 --images 300``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from occseg.data.annotation import AnnotatedImage, Dataset
from occseg.data.images import load_rgb
from occseg.inference.adapt import adapt_order_classifier
from occseg.inference.predict import object_instance
from occseg.inference.scene import SceneConfig, explain_scene, prepare_scene

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reasoning_challenge import CLASS, LEVELS, add_setup_arguments, build_setup, score, seed_text, target_boxes  # noqa: E402

MODES = {
    "no reasoning": SceneConfig(reasoning="off"),
    "NOD, 2 rounds (default)": SceneConfig(),
    "OD, 1 round": SceneConfig(reasoning="od", reasoning_iters=1),
    "OD, 2 rounds": SceneConfig(reasoning="od"),
}


def rows(setup, data: Dataset, model, device: str, progress: bool) -> dict[str, dict]:
    preds: dict[str, list[AnnotatedImage]] = {name: [] for name in MODES}
    for im in tqdm(data.images, desc="predict", disable=not progress, leave=False, dynamic_ncols=True):
        objs, boxes = target_boxes(im)
        if not objs:
            continue
        image = load_rgb(im.path)
        states = prepare_scene(model, setup.backbone, image, boxes, SceneConfig(batch_size=1), device=device)
        for name, cfg in MODES.items():
            scene = explain_scene(model, states, cfg, labels=[CLASS] * len(states), image=image)
            instances = [object_instance(o.id, r, b) for o, b, r in zip(objs, boxes, scene.objects)]
            preds[name].append(AnnotatedImage(im.image_id, im.path, im.width, im.height, instances))
    out = {}
    for name, ims in preds.items():
        pred = Dataset(images=ims, categories=list(data.categories), source=data.source, format="kins",
                       category_ids=dict(data.category_ids))  # fmt: skip
        out[name] = score(data, pred)["all"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setup_arguments(ap)
    args = ap.parse_args()
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
            "| order (occluded) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
        )
        for what, pm in (
            ("as trained", setup.model.position),
            (f"refitted to the {split} split (--adapt-order)", adapted[split]),
            (f"refitted to the {other} split", adapted[other]),
        ):
            res = rows(setup, data, replace(setup.model, position=pm), args.device, args.progress)
            for name, a in res.items():
                if name == "no reasoning" and pm is not setup.model.position:
                    continue  # the classifier changes nothing without reasoning
                v = a["visible"]
                cells = [f"{100 * v[lv]:.1f}" for lv in LEVELS]
                cells += [f"{100 * v['mean']:.1f}", f"{100 * a['amodal']['mean']:.1f}"]
                order = a["order_accuracy"]["occluded"]
                shown = "-" if name == "no reasoning" else f"{100 * order:.1f}"
                print(f"| {what} | {name} | " + " | ".join(cells) + f" | {shown} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
