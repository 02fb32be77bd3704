"""The Occlusion Challenge setup the reasoning benchmarks share (``benchmarks/reasoning_challenge.py`` and the
scripts that reuse its challenge and model): the challenge built from coco128-seg persons over ``backgrounds/``
(``--sources``: also coco-tiny's and coco-mini's, for a test split on more source persons), the model trained from
the boxes of the source images that hold none of its test objects (``--mask-head``: with the mask head), the target
objects and their boxes, and the scoring of scene configs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from occseg.backbones import get_backbone
from occseg.benchmarking import add_data_argument, missing, work_folder
from occseg.challenge import ChallengeConfig, ChallengeResult, SelectionConfig, generate_challenge
from occseg.challenge.sources import merge_sources
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
    model: CompNetModel,
    backbone,
    data: Dataset,
    cfgs: dict[str, SceneConfig],
    *,
    device: str,
    progress: bool,
    scenarios: Sequence[str] = (),
) -> dict[str, dict]:
    """Each scene config's predictions of ``data``'s targets (one backbone pass per object, shared by the
    configs), scored: ``{name: the "all" scores of score()}``, and ``{name: {scenario: scores}}`` under the key
    ``"scenarios"`` for each of ``scenarios`` (the challenge's, e.g. ``2obj_unknown``)."""
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
        scores = score(data, pred)
        out[name] = {**scores["all"], "scenarios": {s: scores.get(s) for s in scenarios}}
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
        "--sources",
        type=parse_sources,
        default=("coco128-seg",),
        help=f"the shared folders whose persons are pasted and trained on: comma-separated, of "
        f"{', '.join(SOURCE_FILES)}, or all (the larger challenge: all, with --min-height 24)",
    )
    ap.add_argument(
        "--min-height", type=int, default=None, help="least mask height (px) of a whole source person (default 40)"
    )
    ap.add_argument("--mask-head", action="store_true", help="also learn the mask head (occseg train's default)")
    ap.add_argument(
        "--head-config", default=None, help='with --mask-head: JSON of HeadTrainConfig changes, e.g. {"paste": 1}'
    )
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


#: the shared data folders whose persons have instance masks (``--sources``), each in the COCO layout
SOURCE_FILES = {
    "coco128-seg": "coco128-seg/annotations/instances_train2017.json",
    "coco-tiny": "coco-tiny/annotations/instances_train2017.json",
    "coco-mini": "coco-mini/annotations/instances_train2017.json",
}
#: ``--sources all``: every folder of :data:`SOURCE_FILES`
ALL_SOURCES = tuple(SOURCE_FILES)


def source_paths(data: Path, sources: Sequence[str]) -> list[Path]:
    """The annotation files of the named source folders under ``data`` (a ``ValueError`` names an unknown one)."""
    unknown = [s for s in sources if s not in SOURCE_FILES]
    if unknown:
        raise ValueError(f"--sources: unknown source {unknown[0]!r} (choose from {', '.join(SOURCE_FILES)} or all)")
    return [data / SOURCE_FILES[s] for s in sources]


def parse_sources(text: str) -> tuple[str, ...]:
    """``--sources``: a comma-separated list of :data:`SOURCE_FILES` names, or ``all``."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    names = ALL_SOURCES if names == ("all",) else names
    unknown = [s for s in names if s not in SOURCE_FILES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown source {unknown[0] if unknown else text!r} (choose from {', '.join(SOURCE_FILES)} or all)"
        )
    return names


def build_challenge(
    data: Path,
    out: Path,
    images: int,
    seed: int,
    *,
    progress: bool = False,
    sources: Sequence[str] = ("coco128-seg",),
    min_height: int | None = None,
) -> ChallengeResult:
    """The challenge: ``images`` composed images of the persons of ``sources`` (folders under ``data``; by default
    coco128-seg alone) over ``backgrounds/``; ``min_height``: the least mask height of a whole person
    (:class:`SelectionConfig`'s default when ``None``)."""
    paths = source_paths(data, sources)
    dataset = merge_sources([read_dataset(p) for p in paths]) if len(paths) > 1 else None
    selection = SelectionConfig() if min_height is None else SelectionConfig(min_height=min_height)
    return generate_challenge(
        ChallengeConfig(
            out=out,
            source=paths[0],
            classes=(CLASS,),
            backgrounds=data / "backgrounds",
            images=images,
            seed=seed,
            progress=progress,
            selection=selection,
        ),
        dataset,
    )


def training_boxes(
    data: Path, ch: ChallengeResult, *, plus_coco_tiny: bool = False, sources: Sequence[str] = ("coco128-seg",)
) -> list:
    """The model's training boxes: the persons of the source images (``sources``, by default coco128-seg) that
    hold none of the challenge's test objects (and every coco-tiny person with ``plus_coco_tiny`` when coco-tiny is
    not a source)."""
    exclude = set(ch.split["test_source_image_ids"])
    samples = []
    for path in source_paths(data, sources):
        samples += box_samples(read_dataset(path), [CLASS], exclude_images=exclude)
    if plus_coco_tiny and "coco-tiny" not in sources:
        samples += box_samples(read_dataset(data / SOURCE_FILES["coco-tiny"]), [CLASS])
    return samples


def training_images(data: Path, ch: ChallengeResult, sources: Sequence[str]) -> list[tuple[AnnotatedImage, list]]:
    """The source images that hold none of the challenge's test objects, with their person boxes (the mask
    head's training data: :func:`occseg.head.learn.image_boxes`)."""
    from occseg.head.learn import image_boxes

    exclude = set(ch.split["test_source_image_ids"])
    out = []
    for path in source_paths(data, sources):
        ds = read_dataset(path)
        kept = [im for im in ds.images if im.image_id not in exclude]
        out += image_boxes(replace(ds, images=kept), [CLASS])
    return out


def head_train_config(text: str | None):
    """``--head-config``: the :class:`~occseg.head.config.HeadTrainConfig` with the JSON object's changes;
    ``None`` after printing one line when the text is not such an object."""
    from occseg.head.config import HeadTrainConfig

    try:
        return HeadTrainConfig(**json.loads(text or "{}"))
    except (ValueError, TypeError) as err:
        print(f"--head-config: {text!r}: {err}", file=sys.stderr)
        return None


def build_setup(args: argparse.Namespace) -> Setup | None:
    """Build the challenge in ``args.out`` (or a new temporary folder) and train (or load) the model; ``None``
    after printing which input is missing."""
    data = Path(args.data)
    backgrounds = data / "backgrounds"
    if missing(*source_paths(data, args.sources), backgrounds):
        return None
    work = work_folder(args.out, "occseg_reasoning_")
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    try:
        ch = build_challenge(data, work / "challenge", args.images, args.seed, progress=args.progress,
                             sources=args.sources, min_height=args.min_height)  # fmt: skip
    except ValueError as err:
        print(err, file=sys.stderr)
        return None
    times["challenge"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    samples = training_boxes(data, ch, plus_coco_tiny=args.plus_coco_tiny, sources=args.sources)
    cfg = TrainConfig(seed=training_seed(args), device=args.device, position_border_px=args.position_border_px)
    if args.model:
        ignored = [f for f, v in (("--train-seed", args.train_seed), ("--position-border-px", args.position_border_px),
                                  ("--plus-coco-tiny", args.plus_coco_tiny or None),
                                  ("--mask-head", args.mask_head or None), ("--head-config", args.head_config))
                   if v is not None]  # fmt: skip
        if ignored:
            print(
                f"note: {', '.join(ignored)} ignored: training options, and --model loads {args.model}", file=sys.stderr
            )
        model, backbone = load_model_and_backbone(args.model, device=args.device)
    else:
        head_cfg = head_train_config(args.head_config)
        if head_cfg is None:
            return None
        backbone = get_backbone(cfg.backbone, device=args.device)
        model = train_compnet(samples, [CLASS], cfg, progress=args.progress, backbone=backbone)
        if args.mask_head:
            from occseg.head.learn import learn_mask_head

            images = training_images(data, ch, args.sources)
            model.mask_head = learn_mask_head(model, images, head_cfg, backbone=backbone, device=args.device)
        if args.save_model:
            save_model(model, args.save_model)
    times["train"] = time.perf_counter() - t0
    return Setup(ch, samples, model, backbone, work, backgrounds, times)
