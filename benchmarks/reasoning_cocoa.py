"""The Occlusion Reasoning Module on real occlusions: the COCOA (COCO-amodal) sample in ``../shared/data``.

The Occlusion Challenge pastes cut-outs; this checks the reasoning on photographs where objects really hide
each other, with human amodal masks and depth order. Protocol:

1. train one class-agnostic CompositionalNet (class ``object``) from the boxes of every coco128-seg object
   (box supervision only; no COCOA image is among them);
2. on the COCOA images, every region that is not stuff is a target: its amodal box and the class ``object``
   are given; all targets of an image are explained together (one backbone pass per object);
3. variants: no reasoning, NOD (2 rounds, the default), OD (2 rounds), both with the order decided by pixel
   counts (the paper) instead of the model's part-position vote, OD with the GT order given (diagnostic),
   and box-fill; scored with :mod:`occseg.evaluation` (visible / amodal mIoU per occlusion level, order
   accuracy over GT-occluded pairs).

The sample is small (5 images, 47 things, one at L3): differences of a few points are within its noise.

    python benchmarks/reasoning_cocoa.py [--data ../shared/data] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from occseg.backbones import get_backbone
from occseg.benchmarking import add_data_argument, missing, subset
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.samples import box_samples
from occseg.data.annotation import AnnotatedImage, Dataset, pairwise_order_matrix
from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from occseg.evaluation import EvalConfig, aggregate, evaluate
from occseg.geometry.boxes import validate_box
from occseg.inference.baselines import box_fill
from occseg.inference.predict import object_instance
from occseg.inference.scene import SceneConfig, explain_scene, prepare_scene
from occseg.io import write_json
from occseg.reasoning.orm import reason

CLASS = "object"
LEVELS = ("L0", "L1", "L2", "L3")
#: (row name, reasoning mode, GT order given, order cue: SceneConfig.order, hidden part: SceneConfig.hidden)
VARIANTS = (
    ("no reasoning", "off", False, "auto", "auto"),
    ("ORM NOD (2 rounds, default)", "nod", False, "auto", "auto"),
    ("ORM OD (2 rounds)", "od", False, "auto", "auto"),
    ("ORM NOD (2), order by pixel counts", "nod", False, "counts", "auto"),
    ("ORM OD (2), order by pixel counts", "od", False, "counts", "auto"),
    ("ORM OD (2), GT order given (diagnostic)", "od", True, "auto", "auto"),
)
#: with the mask head (whose default hidden part is "agree": the occluder cells and the shape under the objects in
#: front, less the pixels seen in the objects behind), the hidden parts "front" (without that cut), "occluder" (the
#: occluder cells alone) and "shape" (the shape less the head's mask) too
HEAD_VARIANTS = (
    ("ORM NOD (2 rounds), hidden part: front", "nod", False, "auto", "front"),
    ("no reasoning, hidden part: shape", "off", False, "auto", "shape"),
    ("ORM NOD (2 rounds), hidden part: occluder", "nod", False, "auto", "occluder"),
    ("ORM NOD (2), order by pixel counts, hidden part: occluder", "nod", False, "counts", "occluder"),
    ("ORM NOD (2 rounds), hidden part: shape", "nod", False, "auto", "shape"),
    ("ORM NOD (2), order by pixel counts, hidden part: shape", "nod", False, "counts", "shape"),
)


def targets_only(ds: Dataset) -> Dataset:
    """The COCOA regions that are things (not stuff), all of class ``object``."""
    images = []
    for im in ds.images:
        keep = [replace(i, category=CLASS) for i in im.instances if not i.extra.get("isStuff")]
        images.append(replace(im, instances=keep))
    return Dataset(images=images, categories=[CLASS], source=ds.source, format=ds.format, category_ids={CLASS: 1})


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument(
        "--adapt-order",
        action="store_true",
        help="refit the part-position classifier to the sample's boxes first (occseg predict --adapt-order)",
    )
    ap.add_argument("--concepts", type=int, default=512, help="the model's visual concepts")
    ap.add_argument("--mask-head", action="store_true", help="also learn the mask head (occseg train's default)")
    ap.add_argument("--max-images", type=int, default=None, help="train on at most this many coco128-seg images")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data = Path(args.data)
    source, cocoa = data / "coco128-seg" / "annotations" / "instances_train2017.json", data / "cocoa-demo"
    if missing(source, cocoa):
        return 2
    coco = read_dataset(source)
    coco = subset(coco, sorted(im.image_id for im in coco.images)[: args.max_images])
    samples = box_samples(coco, [CLASS], class_map={c: CLASS for c in coco.categories})
    cfg = TrainConfig(seed=args.seed, device=args.device, num_concepts=args.concepts)
    backbone = get_backbone(cfg.backbone, device=args.device)
    model = train_compnet(samples, [CLASS], cfg, progress=False, backbone=backbone)
    if args.mask_head:
        from occseg.head.learn import image_boxes, learn_mask_head

        boxes = image_boxes(coco, [CLASS], class_map={c: CLASS for c in coco.categories})
        model.mask_head = learn_mask_head(model, boxes, backbone=backbone, device=args.device)
    gt = targets_only(read_dataset(cocoa))
    if args.adapt_order:
        from occseg.inference.adapt import adapt_order_classifier

        items = [(im, [validate_box(i.amodal_box or i.box, im.width, im.height)[0] for i in im.instances])
                 for im in gt.images if im.instances]  # fmt: skip
        model = replace(model, position=adapt_order_classifier(model, backbone, items, progress=False))

    rows = VARIANTS + (HEAD_VARIANTS if args.mask_head else ())
    preds: dict[str, list[AnnotatedImage]] = {v[0]: [] for v in rows}
    for im in gt.images:
        if not im.instances:
            continue
        boxes = [validate_box(i.amodal_box or i.box, im.width, im.height, what=f"{im.path.name} #{i.id}")[0]
                 for i in im.instances]  # fmt: skip
        image = load_rgb(im.path)
        states = prepare_scene(model, backbone, image, boxes, SceneConfig(), device=args.device)
        labels = [CLASS] * len(states)
        for name, mode, gt_order, cue, hidden in rows:
            scfg = SceneConfig(reasoning=mode, order=cue, hidden=hidden)
            if gt_order:
                known = pairwise_order_matrix([i.mask for i in im.instances], [i.amodal_mask for i in im.instances])
                scene = reason(model, states, scfg, labels, known_order=known, image=image)
            else:
                scene = explain_scene(model, states, scfg, labels=labels, image=image)
            preds[name].append(replace(im, instances=[
                object_instance(i.id, o, b) for i, b, o in zip(im.instances, boxes, scene.objects)
            ]))  # fmt: skip
    results = {}
    for name, ims in preds.items():
        results[name] = _score(gt, Dataset(images=ims, categories=[CLASS], source=gt.source, format="kins",
                                           category_ids={CLASS: 1}))  # fmt: skip
    results["box-fill"] = _score(gt, box_fill(gt, boxes="amodal"))

    n = results[VARIANTS[0][0]]["visible"]["n"]
    order = results[VARIANTS[0][0]]["order_accuracy"]
    print(
        f"## COCOA sample ({len(gt.images)} images, {n['total']} things; per level "
        f"{', '.join(f'{lv} {n[lv]}' for lv in LEVELS)}; {order['pairs_occluded']} GT-occluded ordered pairs)\n"
        f"\nclass-agnostic CompNet from {len(samples)} coco128-seg boxes "
        f"({model.settings.mixtures[CLASS]} mixtures)"
        f"{'; part-position classifier refitted to the sample' if args.adapt_order else ''}"
        f"{'; with the mask head' if args.mask_head else ''}"
        "; amodal boxes given; mIoU and order accuracy in %\n"
    )
    head = [f"vis {lv}" for lv in (*LEVELS, "mean")] + [f"amo {lv}" for lv in (*LEVELS, "mean")] + ["order occl"]
    print("| method | " + " | ".join(head) + " |\n|---|" + "---:|" * len(head))
    for name, r in results.items():
        vals = [r[m][c] for m in ("visible", "amodal") for c in (*LEVELS, "mean")] + [r["order_accuracy"]["occluded"]]
        print(f"| {name} | " + " | ".join("-" if v is None else f"{100 * v:.1f}" for v in vals) + " |")
    if args.json:
        write_json(Path(args.json), {"seed": args.seed, "samples": len(samples), "results": results}, indent=1)
    return 0


def _score(gt: Dataset, pred: Dataset) -> dict:
    return aggregate(evaluate(gt, pred, EvalConfig(classes=(CLASS,), progress=False)))["all"]


if __name__ == "__main__":
    sys.exit(main())
