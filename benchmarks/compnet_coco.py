"""Box-supervised CompositionalNet on real COCO persons: visible mIoU against the baselines.

Protocol (the CompositionalNet issue): coco128-seg images sorted by id; test = every 4th from the 4th
(``ids[3::4]``), train = the rest (``--plus-coco-tiny`` adds coco-tiny persons to training). Test objects:
persons with box height >= 30 px, GT box and label given; IoU over the whole image per object, averaged.
With ``--validation`` the test set is replaced by a validation split of the *training* images
(``train_ids[1::5]``), for choosing settings without looking at the test persons.

``--model DIR`` scores a saved person model instead of training one (e.g. the shipped model,
``src/occseg/models/person``, made by ``benchmarks/ship_model.py``); ``--max-images N`` keeps the first N
training and test images (smoke tests).

    python benchmarks/compnet_coco.py [--data ../shared/data] [--plus-coco-tiny] [--validation] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from occseg.benchmarking import (
    MIN_HEIGHT,
    PERSON,
    add_data_argument,
    ceiling_mask,
    coco_split,
    mean_iou,
    missing,
    object_iou,
    settings_json,
    subset,
    work_folder,
)
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.model import save_model
from occseg.compnet.samples import box_samples
from occseg.data.readers import read_dataset
from occseg.geometry.boxes import box_height, box_to_pixel_mask, ellipse_mask
from occseg.inference.predict import predict_dataset


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--plus-coco-tiny", action="store_true")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--model", type=Path, default=None, help="score this person model instead of training one")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--kappa", type=float, default=None)
    ap.add_argument("--mixtures", type=int, default=8)
    ap.add_argument("--concepts", type=int, default=512)
    ap.add_argument("--context", default="per_image")
    ap.add_argument("--outlier-weight", type=float, default=0.1)
    ap.add_argument("--relabel-rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-images", type=int, default=None, help="at most this many training and test images")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    source = args.data / "coco128-seg/annotations/instances_train2017.json"
    if missing(source):
        return 2
    ds = read_dataset(source)
    train_ids, test_ids = coco_split(ds, validation=args.validation)
    train = subset(ds, train_ids[: args.max_images])
    test = subset(ds, test_ids[: args.max_images])
    tmp = work_folder(None, "occseg_compnet_coco_")
    model_dir, n_samples, t_train = _model(args, train, tmp)
    t0 = time.perf_counter()
    kw = dict(given_labels=True, reasoning="off", classes=[PERSON], min_height=MIN_HEIGHT, progress=False)
    pred = predict_dataset(model_dir, test, refine=False, **kw)
    t_pred = time.perf_counter() - t0
    refined = predict_dataset(model_dir, test, refine=True, **kw)
    rows = _scores(test, pred, refined)
    n = len(rows["compnet"])
    split = "validation split of the training images" if args.validation else "test split ids[3::4]"
    trained = f"model {args.model}" if args.model else f"trained on {n_samples} boxes ({t_train:.0f} s)"
    print(
        f"coco128-seg persons, {split}: {n} objects; {trained}, "
        f"predicted in {t_pred:.1f} s ({1000 * t_pred / max(1, n):.0f} ms/object)"
    )
    print("| method | visible mIoU |\n|---|---|")
    result = {}
    for k, v in rows.items():
        result[k] = mean_iou(v)
        print(f"| {k} | {result[k]:.3f} |" if result[k] is not None else f"| {k} | - |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "miou": result, "settings": settings_json(args)}, indent=2))
    return 0


def _model(args: argparse.Namespace, train, tmp: Path) -> tuple[Path, int, float]:
    """The model folder to score (``--model``, or a model trained on the training split's persons and saved in
    ``tmp``), the number of training boxes and the training time."""
    if args.model is not None:
        return args.model, 0, 0.0
    samples = box_samples(train, [PERSON])
    if args.plus_coco_tiny:
        samples += box_samples(read_dataset(args.data / "coco-tiny/annotations/instances_train2017.json"), [PERSON])
    cfg = TrainConfig(
        backbone=args.backbone,
        kappa=args.kappa,
        num_mixtures=args.mixtures,
        num_concepts=args.concepts,
        context=args.context,
        outlier_weight=args.outlier_weight,
        relabel_rounds=args.relabel_rounds,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    model = train_compnet(samples, [PERSON], cfg, progress=False)
    t_train = time.perf_counter() - t0
    save_model(model, tmp)
    return tmp, len(samples), t_train


def _scores(test, pred, refined) -> dict[str, list[float | None]]:
    """Per method, the IoU of every test person (:func:`occseg.benchmarking.object_iou`)."""
    by_id = {(im.image_id, p.id): p for im in pred.images for p in im.instances}
    by_id_ref = {(im.image_id, p.id): p for im in refined.images for p in im.instances}
    rows: dict[str, list[float | None]] = {
        "box-fill": [],
        "ellipse": [],
        "compnet": [],
        "compnet + refinement": [],
        "ceiling (16-px cells)": [],
    }
    for im in test.images:
        for inst in im.instances:
            if inst.category != PERSON or inst.iscrowd or box_height(inst.box) < MIN_HEIGHT:
                continue
            gt = inst.mask.decode()
            h, w = gt.shape
            rows["box-fill"].append(object_iou(box_to_pixel_mask(inst.box, h, w), gt))
            rows["ellipse"].append(object_iou(ellipse_mask(inst.box, h, w), gt))
            p = by_id.get((im.image_id, inst.id))
            rows["compnet"].append(object_iou(p.mask.decode() if p else None, gt))
            q = by_id_ref.get((im.image_id, inst.id))
            rows["compnet + refinement"].append(object_iou(q.mask.decode() if q else None, gt))
            rows["ceiling (16-px cells)"].append(object_iou(ceiling_mask(gt, inst.box), gt))
    return rows


if __name__ == "__main__":
    sys.exit(main())
