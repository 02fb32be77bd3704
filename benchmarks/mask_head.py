"""The box-supervised mask head (occseg.head) on real COCO persons: visible mIoU with GT boxes, and the ablation.

Protocol (as benchmarks/compnet_coco.py and refine_coco.py): coco128-seg images sorted by id; test = every 4th
from the 4th (``ids[3::4]``), train = the rest; test objects: persons with box height >= 30 px, GT box and label
given, reasoning off, the other test persons of the image are the other given boxes; IoU over the whole image per
object, averaged. The CompositionalNet and the head are trained on the boxes (never the masks) of the coco128-seg
training persons plus every coco-mini person; the same model is scored on every coco-tiny person (a second test
set, not trained on). With ``--validation``: the training images' validation split (``train_ids[1::5]``) and
coco-mini's persons are scored, the model trained on the rest of coco128-seg's training images only; settings were
chosen that way, never on the test persons.

Rows: box-fill, ellipse, the CompNet's cells, today's default (the CompNet's cells refined with colour models,
``RefineConfig()``), then per head variant the head alone and the head as the refinement's prior (the ellipse and
the CompNet's margins replaced by the head's logits). ``--variants`` takes a JSON object of named changes to
HeadTrainConfig (default: the head without and with the CompNet inputs).

    python benchmarks/mask_head.py [--data DIR] [--validation] [--variants JSON] [--epochs N]
                                   [--thresholds -1,0,1] [--torch-threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from occseg.backbones import get_backbone
from occseg.backbones.taps import fine_layer
from occseg.benchmarking import add_data_argument, coco_split, subset
from occseg.benchmarking import object_iou as iou
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.samples import box_samples
from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from occseg.evaluation.metrics import BootstrapConfig, bootstrap_interval
from occseg.features.crops import CropConfig, extract_box_features
from occseg.geometry.boxes import box_height, box_to_pixel_mask, ellipse_mask, validate_box
from occseg.head.config import HEAD_REFINE, HeadTrainConfig
from occseg.head.inputs import compnet_channels, head_crop, image_tensor
from occseg.head.learn import head_settings, image_boxes, train_head, training_crops
from occseg.head.predict import head_logits, image_logits
from occseg.inference.predict import explain_image
from occseg.inference.scene import SceneConfig, explain_scene
from occseg.inference.single import prepare_object
from occseg.refine import RefineConfig, refine_object
from occseg.refine.object import refine_mask

CLASS = "person"
DEFAULT_ROW = "default without the head (CompNet cells + colour refinement)"


@dataclass
class EvalObject:
    image_id: int
    gt: np.ndarray
    rgb: np.ndarray
    crop: object  # HeadCrop at stride 8
    fixed: dict  # method -> IoU for the rows that need no head
    finer: object = None  # HeadCrop at stride 4 (when a variant reads the stride-4 block)


def targets(im) -> list:
    return [i for i in im.instances if i.category == CLASS and not i.iscrowd and box_height(i.box) >= 30]


def eval_objects(model, backbone, dataset, *, progress: bool, stride4: bool = False) -> list[EvalObject]:
    """Every test person with its head inputs and the IoUs of the rows without a head; ``stride4``: also the
    inputs of a head on the stride-4 block (``EvalObject.finer``)."""
    layer = fine_layer(backbone.spec.name)
    s = model.settings
    ccfg = CropConfig(target_height=s.target_height, pad=s.pad, batch_size=1)
    out = []
    for im, picked, rgb, boxes in test_images(dataset, "test objects", progress):
        h, w = rgb.shape[:2]
        feats = extract_box_features(backbone, rgb, boxes, ccfg, fine_layer=layer)
        states = [prepare_object(model, f.features, f.box, f.window, (h, w)) for f in feats]
        scene = explain_scene(model, states, SceneConfig(reasoning="off", boxes="visible"), labels=[CLASS] * len(boxes))
        image = image_tensor(rgb)
        for k, (inst, f, st, obj) in enumerate(zip(picked, feats, states, scene.objects)):
            gt = inst.mask.decode()
            others = [b for j, b in enumerate(boxes) if j != k]
            cells = compnet_channels(model, st, CLASS, obj.mixture)
            crop = head_crop(image, f.box, others, f.window, f.features, f.fine, layer.stride, cells)
            default, _ = refine_object(rgb, obj, st, RefineConfig())
            fixed = {
                "box-fill": iou(box_to_pixel_mask(inst.box, h, w), gt),
                "ellipse": iou(ellipse_mask(inst.box, h, w), gt),
                "CompNet cells": iou(obj.visible, gt),
                DEFAULT_ROW: iou(default, gt),
            }
            out.append(EvalObject(im.image_id, gt, rgb, crop, fixed))
        if stride4:
            add_finer(out[-len(picked) :], backbone, rgb, boxes, ccfg, image)
    return out


def add_finer(objs: list[EvalObject], backbone, rgb, boxes, ccfg, image) -> None:
    """The stride-4 head inputs of one image's test persons (a second backbone pass)."""
    layer = fine_layer(backbone.spec.name, 4)
    feats = extract_box_features(backbone, rgb, boxes, ccfg, fine_layer=layer)
    for k, (o, f) in enumerate(zip(objs, feats)):
        others = [b for j, b in enumerate(boxes) if j != k]
        o.finer = head_crop(image, f.box, others, f.window, f.features, f.fine, layer.stride, o.crop.compnet)


def test_images(dataset, desc: str, progress: bool):
    """``(image, its test persons, the RGB image, their boxes)`` of every image that holds test persons."""
    for im in tqdm(dataset.images, desc=desc, disable=not progress, leave=False):
        picked = targets(im)
        if not picked or not Path(im.path).exists():
            continue
        rgb = load_rgb(im.path)
        h, w = rgb.shape[:2]
        yield im, picked, rgb, [validate_box(i.box, w, h)[0] for i in picked]


SCENE_OFF = "scene, reasoning off"


def scene_rows(
    model, backbone, dataset, *, progress: bool, extra: dict | None = None
) -> tuple[dict[str, list[float]], list[int]]:
    """Per-object visible IoUs through the library's scene path (prepare_scene + explain_scene with the image,
    the default refinement): reasoning off, the default reasoning (NOD, 2 rounds, the default competition,
    part-position order) over all test persons of an image together, and the colour and head competitions;
    ``extra``: further named SceneConfig changes (with a head only). Also the image id of every object."""
    configs = {
        SCENE_OFF: SceneConfig(reasoning="off", boxes="visible"),
        "scene, default reasoning (NOD)": SceneConfig(boxes="visible"),
    }
    if model.mask_head is not None:
        configs["scene, NOD with the colour competition"] = SceneConfig(boxes="visible", competition="colour")
        for name, change in (extra or {}).items():
            configs[f"scene, NOD ({name})"] = SceneConfig(**{"boxes": "visible", **change})
    ious: dict[str, list[float]] = defaultdict(list)
    ids: list[int] = []
    for im, picked, rgb, boxes in test_images(dataset, "scenes", progress):
        scenes = explain_image(model, backbone, rgb, boxes, configs, labels=[CLASS] * len(boxes))  # one pass
        ids += [im.image_id] * len(picked)
        for name, scene in scenes.items():
            ious[name] += [iou(o.visible, i.mask.decode()) for i, o in zip(picked, scene.objects)]
    return dict(ious), ids


def add_scene_rows(results: dict, prefix: str, setname: str, per: dict[str, list[float]], ids: list[int]) -> None:
    """The scene rows' means, their bootstrap intervals and the paired intervals of each minus reasoning off."""
    objs = [EvalObject(i, None, None, None, {}) for i in ids]
    off = per[SCENE_OFF]
    for k, v in per.items():
        results["rows"].setdefault(f"{prefix}{k}", {})[setname] = float(np.mean(v))
        diff = [a - b for a, b in zip(v, off)]
        results["scene intervals"][f"{prefix}{k} / {setname}"] = {
            "mean": float(np.mean(v)), "interval": interval(objs, v),
            "minus off": float(np.mean(diff)), "minus off interval": interval(objs, diff),
        }  # fmt: skip


def interval(objs: list[EvalObject], values: list[float]) -> tuple[float, float] | None:
    """95 % bootstrap interval of the mean of per-object ``values``, whole images resampled (2000 draws, seed 0)."""
    ids = sorted({o.image_id for o in objs})
    row = {i: k for k, i in enumerate(ids)}
    sums, counts = np.zeros((len(ids), 1)), np.zeros((len(ids), 1))
    for o, v in zip(objs, values):
        sums[row[o.image_id], 0] += v
        counts[row[o.image_id], 0] += 1
    return bootstrap_interval(sums, counts, BootstrapConfig())


def score_head(
    head, objs: list[EvalObject], thresholds: list[float], refine_cfgs: dict, flips: tuple[bool, ...] = (False,)
) -> tuple[dict, dict, dict[str, list[float]]]:
    """Mean IoUs of the head alone (per threshold) and of the head-prior refinements, ms per object, and the
    per-object IoUs; with ``True`` in ``flips`` also with the head's logits flip-averaged (``flip test``)."""
    ious: dict[str, list[float]] = defaultdict(list)
    times: dict[str, float] = defaultdict(float)
    for o in objs:
        crop = o.finer if head.settings.fine_stride == 4 else o.crop
        for flip in flips:
            tag = ", flip test" if flip else ""
            t0 = time.perf_counter()
            logits = head_logits(head, crop, flip=flip)
            img = image_logits(logits, crop)
            times["head" + tag] += time.perf_counter() - t0
            for t in thresholds:
                ious[f"threshold {t:g}{tag}"].append(iou(img > t, o.gt))
            for name, rc in refine_cfgs.items():
                t0 = time.perf_counter()
                c = crop
                m = refine_mask(o.rgb, c.box, logits.numpy(), c.window, c.stride, rc)
                times[name + tag] += time.perf_counter() - t0
                ious[name + tag].append(iou(m, o.gt))
    n = max(1, len(objs))
    return {k: float(np.mean(v)) for k, v in ious.items()}, {k: 1000 * v / n for k, v in times.items()}, ious


def datasets(data: Path, validation: bool, max_images: int | None = None) -> tuple[list, dict]:
    """(training datasets, named test sets); ``max_images``: at most that many images of each (smoke tests)."""
    ds = read_dataset(data / "coco128-seg/annotations/instances_train2017.json")
    train_ids, test_ids = coco_split(ds, validation=validation)
    mini = read_dataset(data / "coco-mini/annotations/instances_train2017.json")
    mini = subset(mini, sorted(im.image_id for im in mini.images)[:max_images])
    train_ids, test_ids = train_ids[:max_images], test_ids[:max_images]
    if validation:
        return [subset(ds, train_ids)], {
            "coco128-seg validation train_ids[1::5]": subset(ds, test_ids),
            "coco-mini persons": mini,
        }
    tiny = read_dataset(data / "coco-tiny/annotations/instances_train2017.json")
    tiny = subset(tiny, sorted(im.image_id for im in tiny.images)[:max_images])
    return [subset(ds, train_ids), mini], {"coco128-seg test ids[3::4]": subset(ds, test_ids), "coco-tiny": tiny}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--concepts", type=int, default=None, help="TrainConfig.num_concepts (default: training's)")
    ap.add_argument("--max-images", type=int, default=None, help="at most this many images per set (smoke tests)")
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--variants", default=None, help='JSON {"name": {HeadTrainConfig changes}}')
    ap.add_argument("--epochs", type=int, default=None, help="HeadTrainConfig.epochs for every variant")
    ap.add_argument("--thresholds", default="0", help="comma-separated logit thresholds of the head alone")
    ap.add_argument("--refine-weights", default="1", help="comma-separated score weights of head + refinement")
    ap.add_argument("--head-refine", default=None, help='JSON {"name": {RefineConfig changes}} of head + refinement')
    ap.add_argument("--scene", action="store_true", help="also score the scene path with and without reasoning")
    ap.add_argument("--scene-configs", default=None, help='JSON {"name": {SceneConfig changes}} of more scene rows')
    ap.add_argument("--flip-test", action="store_true", help="also score the head's logits flip-averaged")
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not (data / "coco128-seg").is_dir():
        print(f"no coco128-seg under {data}: set --data or OCCSEG_DATA", file=sys.stderr)
        return 2
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    variants = json.loads(args.variants) if args.variants else {
        "head without the CompNet inputs": {"compnet_inputs": False},
        "head with the CompNet inputs": {"compnet_inputs": True},
    }  # fmt: skip
    thresholds = [float(t) for t in args.thresholds.split(",")]
    refine_cfgs = {
        f"+ refinement (score weight {float(w):g})": RefineConfig(**{**HEAD_REFINE, "score_weight": float(w)})
        for w in args.refine_weights.split(",")
    }
    for name, change in json.loads(args.head_refine or "{}").items():
        refine_cfgs[f"+ refinement ({name})"] = RefineConfig(**{**HEAD_REFINE, **change})
    train_sets, test_sets = datasets(data, args.validation, args.max_images)
    backbone = get_backbone(TrainConfig().backbone)
    samples = [s for d in train_sets for s in box_samples(d, [CLASS])]
    t0 = time.perf_counter()
    tcfg = TrainConfig() if args.concepts is None else TrainConfig(num_concepts=args.concepts)
    model = train_compnet(samples, [CLASS], tcfg, progress=args.progress, backbone=backbone)
    t_compnet = time.perf_counter() - t0
    images = [ib for d in train_sets for ib in image_boxes(d, [CLASS])]
    scales = sorted({s for v in variants.values() for s in v.get("scales", [224])})
    t0 = time.perf_counter()
    self_train = max(float(v.get("self_train", HeadTrainConfig().self_train)) for v in variants.values())
    crops_all = training_crops(
        backbone, images, HeadTrainConfig(scales=tuple(scales), self_train=self_train, compnet_inputs=True),
        pad=model.settings.pad,
        model=model, progress=args.progress,
    )  # fmt: skip
    t_crops = time.perf_counter() - t0
    stride4 = any(v.get("fine_stride", 8) == 4 for v in variants.values())
    objs = {
        name: eval_objects(model, backbone, d, progress=args.progress, stride4=stride4) for name, d in test_sets.items()
    }
    print(
        f"trained on {len(samples)} person boxes: CompNet {t_compnet:.0f} s; head crops {len(crops_all)} in "
        f"{t_crops:.0f} s; test objects: " + ", ".join(f"{k} {len(v)}" for k, v in objs.items())
    )
    results: dict = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "n": {k: len(v) for k, v in objs.items()},
        "rows": {},
        "ms": {},
    }
    results["intervals"], results["scene intervals"] = {}, {}
    scene_extra = json.loads(args.scene_configs or "{}")
    flips = (False, True) if args.flip_test else (False,)
    for setname, ol in objs.items():
        iv = interval(ol, [o.fixed[DEFAULT_ROW] for o in ol])
        results["intervals"][f"{DEFAULT_ROW} / {setname}"] = {"mean": results_mean(ol), "interval": iv}
    for method in next(iter(objs.values()))[0].fixed:
        results["rows"][method] = {k: float(np.mean([o.fixed[method] for o in v])) for k, v in objs.items()}
    if args.scene:  # today's scene path (no head)
        for setname, d in test_sets.items():
            per, ids = scene_rows(model, backbone, d, progress=args.progress)
            add_scene_rows(results, "(no head) ", setname, per, ids)
    for vname, change in variants.items():
        cfg = HeadTrainConfig(**{**({"epochs": args.epochs} if args.epochs else {}), **change})
        t0 = time.perf_counter()
        crops = [c for c in crops_all if crop_height(c) in set(cfg.scales)]
        if cfg.fine_stride != 8 or cfg.targets != "object" or cfg.paste:  # crops of their own
            crops = training_crops(backbone, images, cfg, pad=model.settings.pad, model=model, progress=args.progress)
        head = train_head(crops, head_settings(backbone, cfg), cfg, progress=args.progress)
        for _ in range(cfg.rounds - 1):  # self-training on the previous head's refined masks
            crops = training_crops(backbone, images, cfg, pad=model.settings.pad, model=model, teacher=head)
            head = train_head(crops, head_settings(backbone, cfg), cfg, progress=args.progress)
        t_head = time.perf_counter() - t0
        nparams = sum(p.numel() for p in head.parameters())
        print(f"- {vname}: {len(crops)} crops, {nparams} parameters, {t_head:.0f} s; {head.settings.training}")
        for setname, ol in objs.items():
            miou, ms, per = score_head(head, ol, thresholds, refine_cfgs, flips)
            for k, v in miou.items():
                results["rows"].setdefault(f"{vname}, {k}", {})[setname] = v
            base = [o.fixed[DEFAULT_ROW] for o in ol]
            for k, v in per.items():
                diff = [a - b for a, b in zip(v, base)]
                results["intervals"][f"{vname}, {k} / {setname}"] = {
                    "mean": float(np.mean(v)), "interval": interval(ol, v),
                    "minus default": float(np.mean(diff)), "minus default interval": interval(ol, diff),
                }  # fmt: skip
            results["ms"][f"{vname} / {setname}"] = ms
            print(f"  {setname}: " + "; ".join(f"{k} {v:.3f}" for k, v in miou.items()), flush=True)
            if args.scene:
                with_head = replace(model, mask_head=head)
                per_s, ids = scene_rows(
                    with_head, backbone, test_sets[setname], progress=args.progress, extra=scene_extra
                )
                add_scene_rows(results, f"{vname}, ", setname, per_s, ids)
    print_results(objs, results)
    if args.json:
        from occseg.io import write_json

        write_json(args.json, results)
    return 0


def print_results(objs: dict, results: dict) -> None:
    """The table of visible mIoU per method and set, the intervals and the timings."""
    names = list(objs)
    print("\n| method | " + " | ".join(f"{n} ({len(objs[n])}) mIoU" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for method, vals in results["rows"].items():
        print(f"| {method} | " + " | ".join(f"{vals[n]:.3f}" for n in names) + " |")
    print("\n95 % bootstrap intervals over images (mean, interval; minus the default without the head, interval):")
    for k, v in results["intervals"].items():
        extra = ""
        if "minus default" in v:
            extra = f"; minus default {v['minus default']:+.3f} {_fmt(v['minus default interval'])}"
        print(f"- {k}: {v['mean']:.3f} {_fmt(v['interval'])}{extra}")
    if results.get("scene intervals"):
        print("\nScene rows, 95 % bootstrap intervals over images (mean; minus reasoning off, paired):")
    for k, v in results.get("scene intervals", {}).items():
        print(f"- {k}: {v['mean']:.3f} {_fmt(v['interval'])}; minus off {v['minus off']:+.3f} "
              f"{_fmt(v['minus off interval'])}")  # fmt: skip
    print("\nms per object:", json.dumps({k: {a: round(b, 1) for a, b in v.items()} for k, v in results["ms"].items()}))


def results_mean(objs: list[EvalObject]) -> float:
    return float(np.mean([o.fixed[DEFAULT_ROW] for o in objs]))


def _fmt(iv) -> str:
    return "(-)" if iv is None else f"({iv[0]:.3f} .. {iv[1]:.3f})"


def crop_height(crop) -> int:
    """The crop height a training crop was rendered at (its box's height in crop pixels)."""
    return round((crop.box[3] - crop.box[1]) * crop.window.scale)


if __name__ == "__main__":
    sys.exit(main())
