"""``occseg train``: learn a CompositionalNet from box annotations only."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import click

from occseg.cli.evaluate import echo_warnings
from occseg.cli.options import (
    OutputPath,
    class_map_option,
    device_option,
    download_option,
    finite,
    parse_class_map,
    progress_option,
    seed_option,
)


@click.command("train")
@click.option(
    "--data",
    "data",
    required=True,
    multiple=True,
    type=click.Path(exists=True),
    help="Annotations (any supported format); repeat for several sources.",
)
@click.option(
    "--images",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Image folder; one per --data in the same order, or none (found from the annotations).",
)
@click.option("--format", "fmt", default=None, help="Annotation format (detected when omitted).")
@click.option("--classes", required=True, help="Comma-separated model classes, e.g. person,vehicle.")
@class_map_option("Map dataset classes to model classes (JSON object or 'truck vehicle' lines).")
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option(
    "--backbone-weights", default=None, help="Local weight file for the backbone (vgg16 / resnext50), or 'random'."
)
@download_option()
@click.option("--out", required=True, type=OutputPath(file_okay=False), help="Model folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace the model already in --out (the folder is replaced whole).")
@seed_option()
@click.option(
    "--concepts", "num_concepts", default=512, show_default=True, type=click.IntRange(min=1), help="Visual concepts."
)
@click.option(
    "--mixtures",
    "num_mixtures",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Mixtures per class.",
)
@click.option("--context", type=click.Choice(["per_image", "global"]), default="per_image", show_default=True)
@click.option(
    "--min-height",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    callback=finite,
    help="Skip boxes lower than this (px).",
)
@click.option(
    "--backgrounds",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of object-free photos for the outlier model.",
)
@click.option(
    "--max-class-boxes",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Learn from a seeded sample of at most this many boxes per class (the CompositionalNet and the mask head): "
    "memory and time stop growing with the data beyond it.",
)
@click.option(
    "--mask-head/--no-mask-head",
    default=True,
    show_default=True,
    help="Also learn the box-supervised mask head (occseg.head) that decides the visible masks.",
)
@device_option()
@click.option(
    "--resume",
    is_flag=True,
    help="Save each finished stage (features, outlier features, concepts, each class) beside --out, and reuse those "
    "a run with the same settings saved before it was interrupted (give it to the first run too).",
)
@progress_option()
def train(
    data,
    images,
    fmt,
    classes,
    class_map,
    backbone,
    backbone_weights,
    download_weights,
    out,
    overwrite,
    seed,
    num_concepts,
    num_mixtures,
    context,
    min_height,
    backgrounds,
    max_class_boxes,
    mask_head,
    device,
    resume,
    progress,
) -> None:
    """Learn a CompositionalNet from boxes and classes (no mask of the training data is read)."""
    from occseg.backbones import get_backbone
    from occseg.compnet.learn import TrainConfig, train_compnet
    from occseg.distributed.checkpoints import Checkpoints, finish
    from occseg.distributed.context import rank_device, session

    names = list(dict.fromkeys(c.strip() for c in classes.split(",") if c.strip()))
    if not names:
        raise click.BadParameter("give at least one class", param_hint="--classes")
    if images and len(images) != len(data):
        raise click.BadParameter(
            f"give one --images per --data ({len(data)}), or none; got {len(images)}", param_hint="--images"
        )
    cmap = _model_class_map(class_map, names)
    _check_out(out, (*data, *images, class_map, backbone_weights, backgrounds), overwrite)
    bg = _background_photos(backgrounds)
    with session(device) as ctx:  # under torchrun: the ranks share the work, rank 0 saves the model
        sources, samples = _training_samples(data, images, fmt, names, cmap, class_map, min_height, progress, ctx)
        cfg = TrainConfig(
            backbone=backbone,
            backbone_weights=backbone_weights,
            allow_download=download_weights,
            num_concepts=num_concepts,
            num_mixtures=num_mixtures,
            context=context,
            max_class_boxes=max_class_boxes,
            seed=seed,
            device=rank_device(device, ctx),
        )
        ckpt = Checkpoints.beside(out, _run_key(click.get_current_context().params), reuse=True) if resume else None
        t0 = time.perf_counter()
        net = get_backbone(backbone, weights=backbone_weights, device=cfg.device, allow_download=download_weights)
        model = train_compnet(
            samples,
            names,
            cfg,
            background_images=bg,
            progress=progress and ctx.is_main,
            backbone=net,
            dist=ctx,
            checkpoints=ckpt,
        )
        model.settings.training["seconds"] = round(time.perf_counter() - t0, 1)
        if mask_head:  # from the model's own refined masks; the ranks share the crops, each learns the same head
            _learn_head(model, sources, names, cmap, min_height, net, cfg, progress, ctx)
        if ctx.is_main:
            _save(model, cmap, data, out, overwrite)
        finish(ctx, ckpt)


def _learn_head(model, sources, names, cmap, min_height, net, cfg, progress: bool, ctx) -> None:
    """The box-supervised mask head (:mod:`occseg.head`), learned from the boxes of the classes (a seeded sample of
    at most ``cfg.max_class_boxes`` per class, as the CompositionalNet) and kept in ``model.mask_head`` (under
    torchrun each rank renders its share of the crops; rank 0 reports)."""
    from occseg.head.learn import image_boxes, learn_mask_head

    t0 = time.perf_counter()
    boxes = [ib for ds in sources for ib in image_boxes(ds, names, class_map=cmap, min_height=min_height)]
    boxes = sample_head_boxes(boxes, cfg.max_class_boxes, cfg.seed)
    model.mask_head = learn_mask_head(
        model, boxes, backbone=net, device=cfg.device, progress=progress and ctx.is_main, dist=ctx
    )
    if ctx.is_main:
        n, crops = sum(len(ib.targets) for ib in boxes), model.mask_head.settings.training["crops"]
        took = time.perf_counter() - t0
        click.echo(f"mask head: {n} boxes ({crops} crops with the copy-paste composites), {took:.1f} s")


def sample_head_boxes(images: list, k: int, seed: int) -> list:
    """The mask head's images (:class:`occseg.head.learn.ImageBoxes`) with at most ``k`` target boxes per class (the
    rule of :mod:`occseg.compnet.reservoir`); the list itself when no class has more."""
    from occseg.compnet.reservoir import box_key, sample_per_group

    targets = [(j, t) for j, ib in enumerate(images) for t in ib.targets]
    keys = [box_key(seed, str(images[j].path), images[j].categories[t], images[j].boxes[t]) for j, t in targets]
    kept = sample_per_group(keys, [images[j].categories[t] for j, t in targets], k)
    if len(kept) == len(targets):
        return images
    by_image: dict[int, list[int]] = {}
    for i in kept:
        by_image.setdefault(targets[i][0], []).append(targets[i][1])
    return [replace(images[j], targets=tuple(ts)) for j, ts in sorted(by_image.items())]


def _check_out(out: Path, inputs: tuple, overwrite: bool) -> None:
    """``--out``: writable, none of the inputs, and no model in it unless ``--overwrite`` (checked before any work)."""
    from occseg.compnet.model import MODEL_FILES, check_model_folder
    from occseg.io import check_not_input, check_output_dir

    check_output_dir(out, what="--out", files=MODEL_FILES, inputs=inputs)
    check_not_input(out, inputs, what="--out", folder=True)  # the folder is replaced whole
    check_model_folder(out, overwrite=overwrite, what="--out", flag="--overwrite")


def _training_samples(
    data, images, fmt, names: list[str], cmap: dict, class_map, min_height: float, progress: bool, ctx
):
    """The data sources and the box samples of the classes asked for in all of them, with the image files
    training reads checked now, not midway (under torchrun each rank reads its share of the headers, as predict)."""
    from functools import partial

    from occseg.compnet.samples import box_samples
    from occseg.data.readers import read_dataset
    from occseg.data.stats import usable_images
    from occseg.distributed.collectives import map_json

    sources = [read_dataset(d, images=im, fmt=fmt) for d, im in zip(data, images or [None] * len(data))]
    for ds in sources if ctx.is_main else ():  # each rank reads the same data: rank 0 alone warns
        echo_warnings(ds.warnings, source=ds.source)
    categories = list(dict.fromkeys(c for ds in sources for c in ds.categories))
    absent = sorted(k for k in cmap if k not in categories)
    if absent:
        click.echo(
            f"occseg: warning: {class_map}: the data has no class {', '.join(map(repr, absent))}; "
            "those lines map nothing",
            err=True,
        )
    per_source = [box_samples(ds, names, class_map=cmap, min_height=min_height) for ds in sources]
    if not any(per_source):
        raise ValueError(
            f"no training objects of class(es) {names} (boxes >= {min_height:g} px) in {', '.join(map(str, data))}; "
            f"dataset classes: {', '.join(categories[:20])}"
        )
    for ds, group in zip(sources, per_source):
        used = {s.image_id for s in group}
        usable_images(
            replace(ds, images=[im for im in ds.images if im.image_id in used]),
            progress=progress and ctx.is_main,
            map_items=partial(map_json, ctx),
        )
    return sources, distinct_image_ids(per_source)


def _save(model, cmap: dict, data, out, overwrite: bool) -> None:
    from occseg.compnet.model import save_model

    model.settings.training["class_map"] = cmap
    model.settings.training["data"] = ", ".join(map(str, data))
    save_model(model, out, overwrite=overwrite)
    counts = model.settings.training["crops_per_class"]
    click.echo(
        f"trained on {sum(counts.values())} boxes ({', '.join(f'{k}: {v}' for k, v in counts.items())}), "
        f"{model.settings.num_concepts} concepts, mixtures {model.settings.mixtures}, "
        f"{model.settings.training['seconds']} s -> {out}"
    )


def _model_class_map(class_map: str | None, names: list[str]) -> dict[str, str]:
    """The ``--class-map`` lines that map to the classes trained here (a note names the others: one map file may
    serve several models, and the model keeps only the lines it uses)."""
    cmap = parse_class_map(class_map)
    foreign = {k: v for k, v in cmap.items() if v not in names}
    if foreign:
        click.echo(
            f"occseg: note: {class_map}: lines that map to classes not trained here are left out of the model: "
            + ", ".join(f"{k} -> {v}" for k, v in foreign.items()),
            err=True,
        )
        cmap = {k: v for k, v in cmap.items() if v in names}
    return cmap


def _background_photos(backgrounds: str | None) -> list[Path]:
    """The .jpg / .png photos of the ``--backgrounds`` folder (none without one; an error when it holds none)."""
    if not backgrounds:
        return []
    bg = sorted(p for p in Path(backgrounds).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not bg:
        raise ValueError(f"--backgrounds {backgrounds}: no .jpg or .png photo in it")
    return bg


def _run_key(params: dict) -> str:
    """The checkpoints' key: every setting of the run and the input files' versions."""
    from occseg.distributed.checkpoints import file_stamp, run_key

    settings = {k: v for k, v in params.items() if k not in ("resume", "progress", "out", "overwrite")}
    bg = params.get("backgrounds")
    photos = sorted(Path(bg).iterdir()) if bg else []
    stamps = [file_stamp(d) for d in params.get("data") or ()]
    stamps += [file_stamp(params.get(k)) for k in ("class_map", "backbone_weights")]
    return run_key({"settings": settings, "inputs": stamps + [file_stamp(p) for p in photos]})


def distinct_image_ids(groups: list[list]) -> list:
    """The samples of several data sources in one list, the image ids of each source after the first shifted past
    those before it where they would collide (training groups boxes by image id)."""
    out: list = []
    for group in groups:
        taken = {s.image_id for s in out}
        shift = max(taken) + 1 if taken & {s.image_id for s in group} else 0
        out += [replace(s, image_id=s.image_id + shift) for s in group] if shift else group
    return out
