"""Box-supervised refinement at image resolution (occseg.refine) on real COCO persons: visible mIoU.

Protocol (as benchmarks/compnet_coco.py, whose helpers are reused): coco128-seg images sorted by id; test =
every 4th from the 4th (``ids[3::4]``), train = the rest; test objects: persons with box height >= 30 px, GT
box and label given, reasoning off; IoU over the whole image per object, averaged. The same model (trained on
coco128-seg only) is also scored on every coco-tiny person (a second test set). With ``--validation`` the
test set is the validation split of the training images (``train_ids[1::5]``, the model trained on the rest)
and coco-tiny is skipped: the refinement's settings were chosen that way, never on the test persons.

Rows: box-fill, ellipse, the unrefined CompositionalNet, each refinement stage alone and combined (the
default :class:`~occseg.refine.RefineConfig` is the chosen combination). ``ms/object`` is the refinement's
own time; the backbone's and the CompNet head's times per object are printed above the table, from the same
run (the machine may be shared: compare ratios). ``--relabel-rounds 0,2,5`` trains one model per value.

    python benchmarks/refine_coco.py [--data ../shared/data] [--relabel-rounds 2] [--variants all|default]
                                     [--validation] [--no-tiny] [--torch-threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occseg.benchmarking import (
    BOX_GRABCUT,
    add_data_argument,
    ceiling_mask,
    coco_split,
    mean_iou,
    missing,
    settings_json,
    subset,
)
from occseg.benchmarking import object_iou as iou
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.samples import box_samples
from occseg.data.annotation import Dataset
from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from occseg.geometry.boxes import box_height, box_to_pixel_mask, ellipse_mask, validate_box
from occseg.inference.scene import SceneConfig, explain_scene, prepare_scene
from occseg.refine import RefineConfig, refine_object

# each refinement stage alone and combined, as changes to the default RefineConfig
_GRABCUT = {"colour": "grabcut", "work_height": 96, "guided_radius": 0.5}  # GrabCut's settings chosen on validation
VARIANTS: dict[str, dict] = {
    "guided filter only (no colour model)": {"colour": "none"},
    "colour GMMs only (no guided filter)": {"guided": False},
    "colour GMMs + mean-field + guided filter": {"mean_field_iters": 2},
    "colour histograms + guided filter": {"colour": "histogram"},
    "GrabCut seeded by the CompNet, no guided filter": {**_GRABCUT, "guided": False},
    "GrabCut seeded by the CompNet + guided filter": _GRABCUT,
    "GrabCut from ellipse prior + core only (no CompNet)": {**_GRABCUT, "score_weight": 0.0},
    "colour GMMs + guided filter, ellipse prior only (no CompNet)": {"score_weight": 0.0},
    "GrabCut from the box alone (no CompNet, no ellipse, box 256 px)": BOX_GRABCUT,
}
CLASS = "person"


def targets(im) -> list:
    return [i for i in im.instances if i.category == CLASS and not i.iscrowd and box_height(i.box) >= 30]


def evaluate(model, backbone, dataset: Dataset, refiners: dict[str, RefineConfig], *, progress: bool) -> dict:
    """Per-object IoUs of every method and per-object times of every stage."""
    scfg = SceneConfig(reasoning="off", boxes="visible")  # what predict_dataset does for COCO boxes
    ious: dict[str, list[float | None]] = defaultdict(list)
    times: dict[str, float] = defaultdict(float)
    skipped = 0
    for im in tqdm(dataset.images, desc="objects", disable=not progress, leave=False, dynamic_ncols=True):
        picked = targets(im)
        if not picked:
            continue
        if not Path(im.path).exists():
            skipped += len(picked)
            continue
        image = load_rgb(im.path)
        h, w = image.shape[:2]
        boxes = [validate_box(i.box, w, h)[0] for i in picked]
        t0 = time.perf_counter()
        states = prepare_scene(model, backbone, image, boxes, scfg)
        t1 = time.perf_counter()
        scene = explain_scene(model, states, scfg, labels=[CLASS] * len(boxes))
        times["backbone + terms"] += t1 - t0
        times["CompNet head"] += time.perf_counter() - t1
        for inst, st, obj in zip(picked, states, scene.objects):
            gt = inst.mask.decode()
            ious["box-fill"].append(iou(box_to_pixel_mask(inst.box, h, w), gt))
            ious["ellipse"].append(iou(ellipse_mask(inst.box, h, w), gt))
            ious["CompNet, unrefined"].append(iou(obj.visible, gt))
            for name, cfg in refiners.items():
                t0 = time.perf_counter()
                vis, _ = refine_object(image, obj, st, cfg)
                times[name] += time.perf_counter() - t0
                ious[name].append(iou(vis, gt))
            ious["ceiling (GT on 16-px cells)"].append(iou(ceiling_mask(gt, inst.box), gt))
    n = len(ious["ellipse"])
    return {
        "n": n,
        "skipped": skipped,
        "miou": {k: mean_iou(v) for k, v in ious.items()},
        "ms_per_object": {k: 1000 * v / max(1, n) for k, v in times.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--relabel-rounds", default="2", help="comma-separated: one model per value, e.g. 0,2,5")
    ap.add_argument("--variants", choices=("all", "default"), default="all")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--no-tiny", action="store_true", help="skip the coco-tiny test set")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (1 on a busy machine)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--concepts", type=int, default=512, help="the models' visual concepts")
    ap.add_argument("--max-images", type=int, default=None, help="at most this many training and test images")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if missing(data / "coco128-seg/annotations/instances_train2017.json"):
        return 2
    import torch

    from occseg.backbones import get_backbone

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    ds = read_dataset(data / "coco128-seg/annotations/instances_train2017.json")
    train_ids, test_ids = coco_split(ds, validation=args.validation)
    train_ids, test_ids = train_ids[: args.max_images], test_ids[: args.max_images]
    split = "validation split train_ids[1::5]" if args.validation else "test split ids[3::4]"
    sets = {f"coco128-seg {split}": subset(ds, test_ids)}
    if not args.validation and not args.no_tiny and (data / "coco-tiny").is_dir() and args.max_images is None:
        sets["coco-tiny (all persons)"] = read_dataset(data / "coco-tiny/annotations/instances_train2017.json")
    samples = box_samples(subset(ds, set(train_ids)), [CLASS])
    default = RefineConfig()
    refiners = {"refined: colour GMMs + guided filter (default RefineConfig)": default}
    if args.variants == "all":
        base = {k: getattr(default, k) for k in default.__dataclass_fields__}
        refiners.update({name: RefineConfig(**{**base, **change}) for name, change in VARIANTS.items()})
    backbone = get_backbone(TrainConfig().backbone)
    results: dict = {"settings": settings_json(args), "refine_default": default.__dict__, "runs": {}}
    for rr in [int(v) for v in args.relabel_rounds.split(",")]:
        t0 = time.perf_counter()
        tcfg = TrainConfig(relabel_rounds=rr, num_concepts=args.concepts)
        model = train_compnet(samples, [CLASS], tcfg, progress=args.progress, backbone=backbone)
        t_train = time.perf_counter() - t0
        run = {name: evaluate(model, backbone, d, refiners, progress=args.progress) for name, d in sets.items()}
        results["runs"][rr] = {"train_s": t_train, "sets": run}
        print(f"\n### relabel_rounds={rr}: trained on {len(samples)} coco128-seg person boxes in {t_train:.0f} s")
        for name, r in run.items():
            ms = r["ms_per_object"]
            absent = f", {r['skipped']} without an image file" if r["skipped"] else ""
            print(
                f"- {name}: {r['n']} persons (box height >= 30){absent}; per object: backbone + terms "
                f"{ms['backbone + terms']:.0f} ms, CompNet head {ms['CompNet head']:.0f} ms"
            )
        names = list(sets)
        print("\n| method | " + " | ".join(f"{n} mIoU" for n in names) + " | refinement ms/object |")
        print("|---|" + "---|" * (len(names) + 1))
        for method in run[names[0]]["miou"]:
            cells = [f"{run[n]['miou'][method]:.3f}" if run[n]["miou"][method] is not None else "-" for n in names]
            ms = [run[n]["ms_per_object"].get(method) for n in names]
            cost = f"{np.mean(ms):.0f}" if ms[0] is not None else "—"
            print(f"| {method} | " + " | ".join(cells) + f" | {cost} |")
    if args.json:
        from occseg.io import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
