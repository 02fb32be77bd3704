"""Train the person model that ships inside the package (``occseg.load()``, ``occseg segment`` without
``--model``) and print its tensor file's SHA-256 and size.

Training data: the person boxes of coco128-seg's training split (images sorted by id, ``ids[3::4]`` held out: the
split ``benchmarks/compnet_coco.py`` tests on stays unseen) and every coco-mini person; coco-tiny is left out
(a held-out test set). Boxes only, no mask is read. ``--validation`` also holds out the validation split of the
training images (``train_ids[1::5]``), for choosing the settings (``compnet_coco.py --validation --model DIR``
scores it). The shipped model was made with the defaults:

    python benchmarks/ship_model.py --out src/occseg/models/person
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from occseg.backbones import get_backbone
from occseg.benchmarking import PERSON, add_data_argument, coco_split, missing, subset
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.model import save_model
from occseg.compnet.samples import box_samples
from occseg.data.readers import read_dataset
from occseg.head.learn import image_boxes, learn_mask_head

#: the shipped model's settings: fewer concepts and mixtures than training's defaults (512, 8) keep the tensor
#: file small; chosen on the validation split (see the README's figures)
CONCEPTS = 128
MIXTURES = 4


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--concepts", type=int, default=CONCEPTS)
    ap.add_argument("--mixtures", type=int, default=MIXTURES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--validation", action="store_true", help="also hold out the validation split")
    ap.add_argument("--no-coco-mini", action="store_true", help="coco128-seg's training split only")
    ap.add_argument("--max-images", type=int, default=None, help="at most this many images per set (smoke tests)")
    ap.add_argument("--no-mask-head", action="store_true", help="leave the mask head out (occseg.head)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (sums in another order change the last bits: the recorded SHA-256 was made with 1)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    coco128 = args.data / "coco128-seg" / "annotations" / "instances_train2017.json"
    mini = args.data / "coco-mini" / "annotations" / "instances_train2017.json"
    if missing(coco128, *(() if args.no_coco_mini else (mini,))):
        return 2
    ds = read_dataset(coco128)
    train_ids, _ = coco_split(ds, validation=args.validation)
    sets = [subset(ds, train_ids[: args.max_images])]
    if not args.no_coco_mini:
        extra = read_dataset(mini)
        sets.append(subset(extra, sorted(im.image_id for im in extra.images)[: args.max_images]))
    samples = [s for part in sets for s in box_samples(part, [PERSON])]
    cfg = TrainConfig(num_concepts=args.concepts, num_mixtures=args.mixtures, seed=args.seed)
    t0 = time.perf_counter()
    backbone = get_backbone(cfg.backbone, weights=cfg.backbone_weights)
    model = train_compnet(samples, [PERSON], cfg, progress=args.progress, backbone=backbone)
    if not args.no_mask_head:  # from the same boxes
        boxes = [ib for part in sets for ib in image_boxes(part, [PERSON])]
        model.mask_head = learn_mask_head(model, boxes, backbone=backbone, progress=args.progress)
    model.settings.training["data"] = (
        "coco128-seg person boxes of the training split (ids[3::4] held out"
        + (", and the validation split train_ids[1::5]" if args.validation else "")
        + ")"
        + ("" if args.no_coco_mini else " + coco-mini person boxes")
    )
    model.settings.training["made_by"] = "benchmarks/ship_model.py"
    # the weights' file name, not where this machine keeps it (the fingerprint identifies the weights)
    model.settings.backbone_weights = Path(model.settings.backbone_weights or "").name or None
    model.settings.training["seconds"] = round(time.perf_counter() - t0, 1)
    save_model(model, args.out)
    blob = (args.out / "model.safetensors").read_bytes()
    print(
        f"trained on {len(samples)} person boxes ({model.settings.training['seconds']} s): "
        f"{args.concepts} concepts, mixtures {model.settings.mixtures}"
        + ("" if model.mask_head is None else ", with the mask head")
        + f" -> {args.out}"
    )
    digest = hashlib.sha256(blob).hexdigest()
    print(f"model.safetensors: {len(blob)} bytes ({len(blob) / 2**20:.2f} MiB), sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
