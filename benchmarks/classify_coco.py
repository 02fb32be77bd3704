"""Classification of boxed objects (person / vehicle / animal) by the box-supervised CompositionalNet.

Data: coco128-seg + coco-tiny pooled; each dataset's images sorted by id, every 4th from the 4th is test,
the rest train. Classes: person; vehicle = car, truck, bus; animal = the ten COCO animals. Objects with box
height >= 30 px; GT box given, class predicted (no labels given).

    python benchmarks/classify_coco.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from occseg.benchmarking import add_data_argument, coco_split, missing, subset, work_folder
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.model import load_model, save_model
from occseg.compnet.samples import box_samples
from occseg.data.annotation import Dataset
from occseg.data.readers import read_dataset
from occseg.inference.predict import predict_dataset

CLASS_MAP = {"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}
CLASS_MAP.update(
    {a: "animal" for a in ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")}
)
CLASSES = ["person", "vehicle", "animal"]


def split(ds: Dataset) -> tuple[Dataset, Dataset]:
    train, test = coco_split(ds)
    return subset(ds, train), subset(ds, test)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reasoning", default="off")
    ap.add_argument("--class-score", default=None, help="box_mean (default) or sum (the paper's)")
    ap.add_argument("--save-model", default=None, help="keep the trained model in this folder")
    ap.add_argument("--load-model", default=None, help="skip training: use this model folder")
    ap.add_argument("--concepts", type=int, default=512, help="the model's visual concepts")
    ap.add_argument("--max-images", type=int, default=None, help="at most this many training and test images per set")
    args = ap.parse_args(argv)
    data = Path(args.data)
    paths = [
        data / "coco128-seg/annotations/instances_train2017.json",
        data / "coco-tiny/annotations/instances_train2017.json",
    ]
    if missing(*paths):
        return 2
    sets = [read_dataset(p) for p in paths]
    samples, tests = [], []
    for ds in sets:
        tr, te = split(ds)
        tr, te = (
            subset(tr, [im.image_id for im in tr.images][: args.max_images]),
            subset(te, [im.image_id for im in te.images][: args.max_images]),
        )
        samples += box_samples(tr, CLASSES, class_map=CLASS_MAP)
        tests.append(te)
    t0 = time.perf_counter()
    if args.load_model:
        model = load_model(args.load_model)
    else:
        model = train_compnet(samples, CLASSES, TrainConfig(seed=args.seed, num_concepts=args.concepts), progress=False)
        model.settings.training["class_map"] = CLASS_MAP
        if args.save_model:
            save_model(model, args.save_model)
    if args.class_score:
        model.settings.class_score = args.class_score
    t_train = time.perf_counter() - t0
    confusion: Counter = Counter()
    tmp = work_folder(None, "occseg_classify_")
    save_model(model, tmp)
    for te in tests:
        pred = predict_dataset(tmp, te, given_labels=False, reasoning=args.reasoning, min_height=30, progress=False)
        gt = {(im.image_id, i.id): CLASS_MAP.get(i.category, i.category) for im in te.images for i in im.instances}
        for im in pred.images:
            for p in im.instances:
                confusion[(gt[(im.image_id, p.id)], p.category)] += 1
    train_counts = Counter(s.category for s in samples)
    print(
        f"trained on {len(samples)} boxes {dict(train_counts)} in {t_train:.0f} s; reasoning {args.reasoning}; "
        f"class score {model.settings.class_score}"
    )
    print("| true \\ predicted | " + " | ".join(CLASSES) + " | n | accuracy |")
    print("|---" * (len(CLASSES) + 3) + "|")
    total = correct = 0
    for c in CLASSES:
        row = [confusion[(c, p)] for p in CLASSES]
        n = sum(row)
        total += n
        correct += confusion[(c, c)]
        acc = confusion[(c, c)] / n if n else float("nan")
        print(f"| {c} | " + " | ".join(map(str, row)) + f" | {n} | {acc:.3f} |")
    bal = sum(confusion[(c, c)] / max(1, sum(confusion[(c, p)] for p in CLASSES)) for c in CLASSES) / len(CLASSES)
    print(f"overall accuracy {correct / max(1, total):.3f} on {total} test objects; balanced accuracy {bal:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
