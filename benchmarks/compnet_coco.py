"""Box-supervised CompositionalNet on real COCO persons: visible mIoU against the baselines.

Protocol (the CompositionalNet issue): coco128-seg images sorted by id; test = every 4th from the 4th
(``ids[3::4]``), train = the rest (``--plus-coco-tiny`` adds coco-tiny persons to training). Test objects:
persons with box height >= 30 px, GT box and label given; IoU over the whole image per object, averaged.
With ``--validation`` the test set is replaced by a validation split of the *training* images
(``train_ids[1::5]``), for choosing settings without looking at the test persons.

    python benchmarks/compnet_coco.py [--data ../shared/data] [--plus-coco-tiny] [--validation]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.model import save_model
from occseg.compnet.samples import box_samples
from occseg.data.annotation import Dataset
from occseg.data.readers import read_dataset
from occseg.geometry.boxes import box_height, box_to_pixel_mask, crop_window, ellipse_mask, resample_cells_to_image
from occseg.inference.predict import predict_dataset


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


def subset(ds: Dataset, ids: set[int]) -> Dataset:
    return Dataset(
        images=[im for im in ds.images if im.image_id in ids],
        categories=ds.categories,
        source=ds.source,
        format=ds.format,
        category_ids=ds.category_ids,
    )


def ceiling_mask(gt: np.ndarray, box, stride: int = 16) -> np.ndarray:
    """GT reduced to the crop's 16-px feature cells (the fraction of each cell that is object) and brought back
    the way occseg brings back its cell scores (bilinear, threshold at one half): the resolution ceiling."""
    h, w = gt.shape
    win = crop_window(box, w, h, target_height=224, pad=16, stride=stride)
    x1, y1, x2, y2 = win.window
    ch, cw = win.size[0] // stride, win.size[1] // stride
    rh, rw = round(ch * stride / win.scale), round(cw * stride / win.scale)
    sub = gt[y1:y2, x1:x2].astype(np.float32)[:rh, :rw]
    region = np.zeros((max(rh, sub.shape[0]), max(rw, sub.shape[1])), np.float32)
    region[: sub.shape[0], : sub.shape[1]] = sub
    frac = cv2.resize(region[:rh, :rw], (cw, ch), interpolation=cv2.INTER_AREA)
    return resample_cells_to_image(frac - 0.5, win, stride, h, w, fill=-1.0) > 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("OCCSEG_DATA", "../shared/data"))
    ap.add_argument("--plus-coco-tiny", action="store_true")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--kappa", type=float, default=None)
    ap.add_argument("--mixtures", type=int, default=8)
    ap.add_argument("--concepts", type=int, default=512)
    ap.add_argument("--context", default="per_image")
    ap.add_argument("--outlier-weight", type=float, default=0.1)
    ap.add_argument("--relabel-rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    data = Path(args.data)
    if not (data / "coco128-seg").is_dir():
        print(f"no coco128-seg under {data}: set --data or OCCSEG_DATA", file=sys.stderr)
        return 2
    ds = read_dataset(data / "coco128-seg/annotations/instances_train2017.json")
    ids = sorted(im.image_id for im in ds.images)
    test_ids, train_ids = set(ids[3::4]), [i for i in ids if i not in set(ids[3::4])]
    if args.validation:
        test_ids = set(train_ids[1::5])
        train_ids = [i for i in train_ids if i not in test_ids]
    train = subset(ds, set(train_ids))
    test = subset(ds, test_ids)
    samples = box_samples(train, ["person"])
    if args.plus_coco_tiny:
        samples += box_samples(read_dataset(data / "coco-tiny/annotations/instances_train2017.json"), ["person"])
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
    model = train_compnet(samples, ["person"], cfg, progress=False)
    t_train = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, tmp)
        t0 = time.perf_counter()
        kw = dict(given_labels=True, reasoning="off", classes=["person"], min_height=30, progress=False)
        pred = predict_dataset(tmp, test, refine=False, **kw)
        t_pred = time.perf_counter() - t0
        refined = predict_dataset(tmp, test, refine=True, **kw)
    by_id = {(im.image_id, p.id): p for im in pred.images for p in im.instances}
    by_id_ref = {(im.image_id, p.id): p for im in refined.images for p in im.instances}
    rows: dict[str, list[float]] = {
        "box-fill": [],
        "ellipse": [],
        "compnet": [],
        "compnet + refinement": [],
        "ceiling (16-px cells)": [],
    }
    for im in test.images:
        for inst in im.instances:
            if inst.category != "person" or inst.iscrowd or box_height(inst.box) < 30:
                continue
            gt = inst.mask.decode()
            h, w = gt.shape
            rows["box-fill"].append(iou(box_to_pixel_mask(inst.box, h, w), gt))
            rows["ellipse"].append(iou(ellipse_mask(inst.box, h, w), gt))
            p = by_id.get((im.image_id, inst.id))
            rows["compnet"].append(iou(p.mask.decode(), gt) if p else 0.0)
            q = by_id_ref.get((im.image_id, inst.id))
            rows["compnet + refinement"].append(iou(q.mask.decode(), gt) if q else 0.0)
            rows["ceiling (16-px cells)"].append(iou(ceiling_mask(gt, inst.box), gt))
    n = len(rows["compnet"])
    split = "validation split of the training images" if args.validation else "test split ids[3::4]"
    print(
        f"coco128-seg persons, {split}: {n} objects; trained on {len(samples)} boxes "
        f"({t_train:.0f} s), predicted in {t_pred:.1f} s ({1000 * t_pred / max(1, n):.0f} ms/object)"
    )
    print("| method | visible mIoU |\n|---|---|")
    result = {}
    for k, v in rows.items():
        result[k] = float(np.mean(v)) if v else None
        print(f"| {k} | {result[k]:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "miou": result, "settings": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
