"""The Occlusion Challenge setup the reasoning benchmarks share (``benchmarks/reasoning_challenge.py`` and the
scripts that reuse its challenge and model): the challenge built from coco128-seg persons over ``backgrounds/``,
the model trained from the boxes of the coco128-seg images that hold none of its test objects, the target objects
and their boxes, and the scoring of scene configs."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from occseg.backbones import get_backbone
from occseg.benchmarking import add_data_argument, missing, work_folder
from occseg.challenge import ChallengeConfig, ChallengeResult, generate_challenge
from occseg.compnet.learn import TrainConfig, train_compnet
from occseg.compnet.model import CompNetModel, save_model
from occseg.compnet.samples import box_samples
from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from occseg.evaluation import EvalConfig, Evaluation, aggregate, evaluate
from occseg.geometry.boxes import validate_box
from occseg.inference.predict import explain_image, load_model_and_backbone, object_instance
from occseg.inference.types import SceneConfig

LEVELS = ("L0", "L1", "L2", "L3")
CLASS = "person"


def targets(im: AnnotatedImage) -> list[Instance]:
    """The objects a model is asked about: persons that are not unknown occluders or crowd regions."""
    return [i for i in im.instances if i.category == CLASS and not i.extra.get("unknown") and not i.iscrowd]


def target_boxes(im: AnnotatedImage) -> tuple[list[Instance], list[tuple[float, float, float, float]]]:
    """The image's targets (:func:`_targets`) and the boxes they are given by: their amodal boxes (visible
    ones where there are none), validated against the image."""
    objs = targets(im)
    what = f"{im.path.name} #"
    return objs, [validate_box(o.amodal_box or o.box, im.width, im.height, what=f"{what}{o.id}")[0] for o in objs]


def evaluation_of(test: Dataset, pred: Dataset) -> Evaluation:
    return evaluate(test, pred, EvalConfig(classes=(CLASS,), progress=False))


def score(test: Dataset, pred: Dataset) -> dict:
    return aggregate(evaluation_of(test, pred))


def score_configs(
    model: CompNetModel, backbone, data: Dataset, cfgs: dict[str, SceneConfig], *, device: str, progress: bool
) -> dict[str, dict]:
    """Each scene config's predictions of ``data``'s targets (one backbone pass per object, shared by the
    configs), scored: ``{name: the "all" scores of score()}``."""
    preds: dict[str, list[AnnotatedImage]] = {name: [] for name in cfgs}
    for im in tqdm(data.images, desc="predict", disable=not progress, leave=False, dynamic_ncols=True):
        objs, boxes = target_boxes(im)
        if not objs:
            continue
        image = load_rgb(im.path)
        scenes = explain_image(
            model, backbone, image, boxes, cfgs, labels=[CLASS] * len(objs), device=device, batch_size=1
        )
        for name, scene in scenes.items():
            instances = [object_instance(o.id, r, b) for o, b, r in zip(objs, boxes, scene.objects)]
            preds[name].append(AnnotatedImage(im.image_id, im.path, im.width, im.height, instances))
    out = {}
    for name, ims in preds.items():
        pred = Dataset(images=ims, categories=list(data.categories), source=data.source, format="kins",
                       category_ids=dict(data.category_ids))  # fmt: skip
        out[name] = score(data, pred)["all"]
    return out


@dataclass
class Setup:
    """The challenge, the boxes the model was trained from, the model and its backbone (shared with
    ``benchmarks/order_limits.py``)."""

    challenge: ChallengeResult
    samples: list
    model: CompNetModel
    backbone: object
    work: Path
    backgrounds: Path
    times: dict[str, float]


def add_setup_arguments(ap: argparse.ArgumentParser) -> None:
    """The command-line options of :func:`build_setup`."""
    add_data_argument(ap)
    ap.add_argument("--images", type=int, default=120, help="composed challenge images, train and test together")
    ap.add_argument("--seed", type=int, default=0, help="challenge and training seed")
    ap.add_argument(
        "--train-seed", type=int, default=None, help="training seed when it differs from the challenge's (--seed)"
    )
    ap.add_argument("--plus-coco-tiny", action="store_true", help="also train on the coco-tiny persons")
    ap.add_argument(
        "--position-border-px",
        type=float,
        default=None,
        help="fit the part-position classifier only on boxes this far from the image border (TrainConfig)",
    )
    ap.add_argument("--out", default=None, help="working folder (default: a new temporary folder)")
    ap.add_argument(
        "--model",
        default=None,
        help="use this trained model folder instead of training one (it must not "
        "have seen the challenge's test source images)",
    )
    ap.add_argument("--save-model", default=None, help="also save the trained model to this folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--progress", action="store_true", help="show progress bars")


def training_seed(args: argparse.Namespace) -> int:
    """``--train-seed``, else ``--seed``."""
    return args.seed if args.train_seed is None else args.train_seed


def seed_text(args: argparse.Namespace) -> str:
    """``seed S`` for the tables' titles, with the training seed where it differs, or the model reused."""
    if args.model is not None:
        return f"seed {args.seed}, model {args.model}"
    t = training_seed(args)
    return f"seed {args.seed}" + ("" if t == args.seed else f", training seed {t}")


def build_challenge(data: Path, out: Path, images: int, seed: int, *, progress: bool = False) -> ChallengeResult:
    """The challenge: ``images`` composed images of coco128-seg persons (under ``data``) over ``backgrounds/``."""
    return generate_challenge(
        ChallengeConfig(
            out=out,
            source=data / "coco128-seg" / "annotations" / "instances_train2017.json",
            classes=(CLASS,),
            backgrounds=data / "backgrounds",
            images=images,
            seed=seed,
            progress=progress,
        )  # fmt: skip
    )


def training_boxes(data: Path, ch: ChallengeResult, *, plus_coco_tiny: bool = False) -> list:
    """The model's training boxes: the persons of the coco128-seg images that hold none of the challenge's test
    objects (and of coco-tiny with ``plus_coco_tiny``)."""
    source = data / "coco128-seg" / "annotations" / "instances_train2017.json"
    samples = box_samples(read_dataset(source), [CLASS], exclude_images=set(ch.split["test_source_image_ids"]))
    if plus_coco_tiny:
        samples += box_samples(read_dataset(data / "coco-tiny" / "annotations" / "instances_train2017.json"), [CLASS])
    return samples


def build_setup(args: argparse.Namespace) -> Setup | None:
    """Build the challenge in ``args.out`` (or a new temporary folder) and train (or load) the model; ``None``
    after printing which input is missing."""
    data = Path(args.data)
    source = data / "coco128-seg" / "annotations" / "instances_train2017.json"
    backgrounds = data / "backgrounds"
    if missing(source, backgrounds):
        return None
    work = work_folder(args.out, "occseg_reasoning_")
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    ch = build_challenge(data, work / "challenge", args.images, args.seed, progress=args.progress)
    times["challenge"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    samples = training_boxes(data, ch, plus_coco_tiny=args.plus_coco_tiny)
    cfg = TrainConfig(seed=training_seed(args), device=args.device, position_border_px=args.position_border_px)
    if args.model:
        ignored = [f for f, v in (("--train-seed", args.train_seed), ("--position-border-px", args.position_border_px),
                                  ("--plus-coco-tiny", args.plus_coco_tiny or None)) if v is not None]  # fmt: skip
        if ignored:
            print(
                f"note: {', '.join(ignored)} ignored: training options, and --model loads {args.model}", file=sys.stderr
            )
        model, backbone = load_model_and_backbone(args.model, device=args.device)
    else:
        backbone = get_backbone(cfg.backbone, device=args.device)
        model = train_compnet(samples, [CLASS], cfg, progress=args.progress, backbone=backbone)
        if args.save_model:
            save_model(model, args.save_model)
    times["train"] = time.perf_counter() - t0
    return Setup(ch, samples, model, backbone, work, backgrounds, times)
