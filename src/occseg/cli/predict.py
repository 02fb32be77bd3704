"""``occseg predict``: masks for every GT box of a dataset, written as a KINS-style predictions JSON."""

from __future__ import annotations

import os
from pathlib import Path

import click

from occseg.choices import BoxChoice, choices
from occseg.cli.evaluate import echo_warnings, parse_classes
from occseg.cli.options import (
    OutputPath,
    class_map_option,
    device_option,
    download_option,
    finite,
    parse_class_map,
    progress_option,
    scene_options,
    shipped_model_unless,
)

METHODS: tuple[str, ...] = ("box-fill", "ellipse", "compnet")
#: the variable that bounds oneDNN's cache of convolution primitives (torch's CPU convolutions): one entry per input
#: shape, and box crops come in many widths; its default of 1024 entries made a 1000-image run grow by about
#: 0.15 MB per image (docs/distributed.md)
ONEDNN_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
#: the entries kept unless the variable is set (0 saved 7 MB more on 60 images but took 29 % more CPU time)
ONEDNN_CACHE_ENTRIES = 64


@click.command("predict")
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path), help="Dataset with the GT boxes.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), default=None, help="Image folder of --data.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["coco", "yolo", "kins", "cocoa", "kitti"]),
    default=None,
    help="Format of --data (default: detected).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=OutputPath(dir_okay=False, path_type=Path),
    help="predictions.json to write.",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default=None,
    help="box-fill / ellipse (no model) or compnet (the default).",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Trained model folder (compnet; default: the shipped person model, `occseg models`).",
)
@click.option(
    "--boxes",
    type=click.Choice(choices(BoxChoice)),
    default="auto",
    show_default=True,
    help="Input boxes: amodal where the data has them (auto), or force one kind.",
)
@click.option(
    "--given-labels", is_flag=True, help="compnet: give the GT class instead of classifying (baselines always do)."
)
@scene_options(prefix="compnet: ")
@device_option("compnet: torch device: cpu, cuda or cuda:N.")
@click.option(
    "--backbone-weights",
    default=None,
    help="compnet: the weight file the model was learned with, when it was learned on a local file.",
)
@download_option()
@click.option(
    "--classes",
    default=None,
    help="Comma-separated classes of --data to predict (default: those the model knows; objects of other classes "
    "act as unknown occluders). compnet classifies each with the model unless --given-labels.",
)
@click.option(
    "--all-objects",
    is_flag=True,
    help="compnet: predict every annotated object whatever its class, each classified by the model (e.g. COCOA, "
    "whose class names are free text); score with `occseg evaluate --class-agnostic`.",
)
@class_map_option(
    "compnet: map the data's classes to the model's (JSON object or 'Pedestrian person' lines); predictions keep "
    "the data's names."
)
@click.option(
    "--adapt-order",
    is_flag=True,
    help="compnet: before predicting, refit the classifier that decides who is in front to the cells of the data's "
    "boxes (test-time training; a second backbone pass per object). Helps where the same objects come back in "
    "many images; harms on a few photos of distinct objects (docs/results.md).",
)
@click.option(
    "--min-height",
    type=click.FloatRange(min=0),
    callback=finite,
    default=None,
    help="Only objects whose visible box is this tall.",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    default=None,
    help="Predict the images in this many shards (default: one per process under torchrun, else none); with "
    "--resume each is saved when done. The predictions file is the same for any number.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Save each finished shard beside --out, and reuse those a run with the same settings saved before it was "
    "interrupted (give it to the first run too).",
)
@click.option(
    "--skip-bad-images",
    is_flag=True,
    help="compnet: go on without the image files that are missing, cannot be read or are not their annotated size "
    "(a warning names each); by default the run is refused before it starts.",
)
@progress_option()
def cmd(
    data_path: Path,
    images_dir: Path | None,
    fmt: str | None,
    out_path: Path,
    method: str | None,
    model_dir: Path | None,
    boxes: str,
    given_labels: bool,
    reasoning: str,
    reasoning_iters: int,
    order_cue: str,
    complete_boxes: bool,
    refine: bool,
    device: str,
    backbone_weights: str | None,
    download_weights: bool,
    classes: str | None,
    all_objects: bool,
    class_map: str | None,
    adapt_order: bool,
    min_height: float | None,
    shards: int | None,
    resume: bool,
    skip_bad_images: bool,
    progress: bool,
) -> None:
    """Predict visible and amodal masks for the objects of a dataset (given their boxes)."""
    from occseg.data.writers import write_kins_json
    from occseg.distributed.context import rank_device, session
    from occseg.io import check_output_file

    os.environ.setdefault(ONEDNN_CACHE_VARIABLE, str(ONEDNN_CACHE_ENTRIES))  # read at the first convolution
    method = method or "compnet"
    _check_method_options(method, model_dir, classes, all_objects, adapt_order)
    if method == "compnet":
        model_dir = shipped_model_unless(model_dir)
    check_output_file(out_path, what="--out", inputs=(data_path, class_map))
    if class_map is not None and method != "compnet":
        raise click.UsageError(f"--class-map is for compnet; --method {method} keeps every object's class")
    cmap = parse_class_map(class_map)

    def predict(ds):
        if method != "compnet":
            return _baseline_predictions(method, ds, cls, min_height, boxes)
        from occseg.inference.predict import predict_dataset

        return predict_dataset(
            model_dir,
            ds,
            boxes=boxes,
            given_labels=given_labels,
            reasoning=reasoning,
            reasoning_iters=reasoning_iters,
            order=order_cue,
            refine=refine,
            complete_boxes=complete_boxes,
            device=rank_device(device, ctx),
            weights=backbone_weights,
            allow_download=download_weights,
            classes=cls,
            all_objects=all_objects,
            class_map=cmap,
            adapt_order=adapt_order,
            progress=progress and ctx.is_main,
            min_height=min_height if min_height is not None else 0.0,
        )

    with session(device if method == "compnet" else None) as ctx:
        dataset, cls = _read_data(
            data_path, images_dir, fmt, classes, out_path, method, model_dir, backbone_weights, skip_bad_images, ctx
        )
        if ctx.active or shards or resume:  # this rank predicts its shards of the images, rank 0 writes the file
            _predict_shards(ctx, dataset, predict, out_path, shards=shards, resume=resume, method=method)
            return
        pred = predict(dataset)
    write_kins_json(pred, out_path)
    if pred.num_instances() == 0:
        click.echo(
            f"occseg: warning: no object was predicted: {dataset.source} holds none of the classes asked for, or its "
            "objects' boxes were refused (see the warnings above)",
            err=True,
        )
    click.echo(f"{method}: {pred.num_instances()} object(s) in {len(pred)} image(s); wrote {out_path}")


def _read_data(
    data_path, images_dir, fmt, classes, out_path, method: str, model_dir, backbone_weights, skip_bad_images, ctx
):
    """The dataset (its image files checked for compnet, ``--skip-bad-images`` leaving the bad ones out; under
    torchrun each rank checks its share of the files) and the classes asked for; ``--out`` checked against every
    file the run reads."""
    from functools import partial

    from occseg.data.readers import read_dataset
    from occseg.data.stats import usable_images
    from occseg.distributed.collectives import map_json
    from occseg.io import check_not_input

    dataset = read_dataset(data_path, images=images_dir, fmt=fmt)
    echo_warnings(dataset.warnings, source=dataset.source)
    model_files = () if model_dir is None else (model_dir / "model.json", model_dir / "model.safetensors")
    check_not_input(out_path, [*(im.path for im in dataset.images), *model_files, backbone_weights], what="--out")
    cls = parse_classes(classes, dataset.categories, what=f"the dataset {dataset.source}")
    if method == "compnet":
        progress = click.get_current_context().params.get("progress") and ctx.is_main
        dataset, skipped = usable_images(
            dataset,
            skip=skip_bad_images,
            option="--skip-bad-images",
            progress=progress,
            map_items=partial(map_json, ctx),
        )
        echo_warnings(skipped)
    return dataset, cls


def _check_method_options(
    method: str, model_dir: Path | None, classes: str | None, all_objects: bool, adapt_order: bool
) -> None:
    """The options that only compnet takes, refused (or, --model, warned about) with another method."""
    if method != "compnet" and model_dir is not None:
        click.echo(f"occseg: warning: --model is ignored by --method {method}", err=True)
    if all_objects and classes is not None:
        raise click.UsageError("give --classes or --all-objects, not both")
    if all_objects and method != "compnet":
        raise click.UsageError(f"--all-objects is for compnet; --method {method} predicts every object already")
    if adapt_order and method != "compnet":
        raise click.UsageError(f"--adapt-order is for compnet; --method {method} decides no order")


def _baseline_predictions(method: str, dataset, cls, min_height: float | None, boxes: str):
    """A model-free baseline's predictions of the objects of the classes asked for that are tall enough."""
    from occseg.evaluation.protocol import filter_dataset
    from occseg.inference.baselines import BASELINES

    picked = filter_dataset(dataset, classes=cls, min_height=min_height)
    n_all = filter_dataset(dataset, classes=cls).num_instances() if picked.num_instances() == 0 else 0
    if n_all:
        raise ValueError(
            f"{dataset.source}: all {n_all} object(s) to predict are less than {min_height:g} px tall "
            "(--min-height): nothing is left to predict"
        )
    return BASELINES[method](picked, boxes=boxes)


def _predict_shards(ctx, dataset, predict, out_path: Path, *, shards, resume: bool, method: str) -> None:
    """Sharded prediction (torchrun ranks, ``--shards``, ``--resume``): rank 0 writes the merged file."""
    from occseg.distributed.checkpoints import Checkpoints, finish
    from occseg.distributed.predictions import predict_sharded

    params = click.get_current_context().params
    if params.get("adapt_order"):
        raise click.UsageError("--adapt-order refits the classifier on all the data: give no --shards, one process")
    ckpt = Checkpoints.beside(out_path, _run_key(params, ctx), reuse=True) if resume else None
    written = predict_sharded(ctx, dataset, predict, out_path, shards=shards, checkpoints=ckpt)
    if written is not None:
        click.echo(f"{method}: {written[1]} object(s) in {written[0]} image(s); wrote {out_path}")
    finish(ctx, ckpt)


def _run_key(params: dict, ctx) -> str:
    """The checkpoints' key: every setting that changes a shard's predictions, and the input files' versions."""
    from occseg.distributed.checkpoints import file_stamp, run_key

    settings = {k: v for k, v in params.items() if k not in ("resume", "progress", "out_path")}
    model = params.get("model_dir")
    stamps = [file_stamp(params.get("data_path")), file_stamp(params.get("class_map"))]
    if model is not None:
        stamps += [file_stamp(Path(model) / "model.json"), file_stamp(Path(model) / "model.safetensors")]
    return run_key({"settings": settings, "inputs": stamps, "shards": params.get("shards") or ctx.world_size})
