"""``occseg train``: learn a CompositionalNet from box annotations only."""

from __future__ import annotations

import time
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
    "--mask-head/--no-mask-head",
    default=True,
    show_default=True,
    help="Also learn the box-supervised mask head (occseg.head) that decides the visible masks.",
)
@device_option()
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
    seed,
    num_concepts,
    num_mixtures,
    context,
    min_height,
    backgrounds,
    mask_head,
    device,
    progress,
) -> None:
    """Learn a CompositionalNet from boxes and classes (no mask of the training data is read)."""
    from occseg.backbones import get_backbone
    from occseg.compnet.learn import TrainConfig, train_compnet
    from occseg.compnet.model import save_model
    from occseg.compnet.samples import box_samples
    from occseg.data.readers import read_dataset
    from occseg.head.learn import image_boxes, learn_mask_head
    from occseg.io import check_output_dir

    names = list(dict.fromkeys(c.strip() for c in classes.split(",") if c.strip()))
    if not names:
        raise click.BadParameter("give at least one class", param_hint="--classes")
    cmap = parse_class_map(class_map)
    foreign = {k: v for k, v in cmap.items() if v not in names}
    if foreign:  # one map file may serve several models; the model keeps only the lines it uses
        click.echo(
            f"occseg: note: {class_map}: lines that map to classes not trained here are left out of the model: "
            + ", ".join(f"{k} -> {v}" for k, v in foreign.items()),
            err=True,
        )
        cmap = {k: v for k, v in cmap.items() if v in names}
    check_output_dir(
        out, what="--out", files=("model.json", "model.safetensors"), inputs=(*data, class_map, backbone_weights)
    )
    if images and len(images) != len(data):
        raise click.BadParameter(
            f"give one --images per --data ({len(data)}), or none; got {len(images)}", param_hint="--images"
        )
    sources = [read_dataset(d, images=im, fmt=fmt) for d, im in zip(data, images or [None] * len(data))]
    for ds in sources:
        echo_warnings(ds.warnings, source=ds.source)
    categories = list(dict.fromkeys(c for ds in sources for c in ds.categories))
    absent = sorted(k for k in cmap if k not in categories)
    if absent:
        click.echo(
            f"occseg: warning: {class_map}: the data has no class {', '.join(map(repr, absent))}; "
            "those lines map nothing",
            err=True,
        )
    samples = distinct_image_ids([box_samples(ds, names, class_map=cmap, min_height=min_height) for ds in sources])
    if not samples:
        raise ValueError(
            f"no training objects of class(es) {names} (boxes >= {min_height:g} px) in {', '.join(data)}; "
            f"dataset classes: {', '.join(categories[:20])}"
        )
    bg = (
        sorted(p for p in Path(backgrounds).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        if backgrounds
        else []
    )
    if backgrounds and not bg:
        raise ValueError(f"--backgrounds {backgrounds}: no .jpg or .png photo in it")
    cfg = TrainConfig(
        backbone=backbone,
        backbone_weights=backbone_weights,
        allow_download=download_weights,
        num_concepts=num_concepts,
        num_mixtures=num_mixtures,
        context=context,
        seed=seed,
        device=device,
    )
    t0 = time.perf_counter()
    net = get_backbone(backbone, weights=backbone_weights, device=device or "cpu", allow_download=download_weights)
    model = train_compnet(samples, names, cfg, background_images=bg, progress=progress, backbone=net)
    model.settings.training["class_map"] = cmap
    model.settings.training["data"] = ", ".join(map(str, data))
    model.settings.training["seconds"] = round(time.perf_counter() - t0, 1)
    if mask_head:
        t0 = time.perf_counter()
        boxes = [ib for ds in sources for ib in image_boxes(ds, names, class_map=cmap, min_height=min_height)]
        model.mask_head = learn_mask_head(model, boxes, backbone=net, device=device, progress=progress)
        click.echo(f"mask head: {model.mask_head.settings.training['crops']} boxes, {time.perf_counter() - t0:.1f} s")
    save_model(model, out)
    counts = model.settings.training["crops_per_class"]
    click.echo(
        f"trained on {sum(counts.values())} boxes ({', '.join(f'{k}: {v}' for k, v in counts.items())}), "
        f"{model.settings.num_concepts} concepts, mixtures {model.settings.mixtures}, "
        f"{model.settings.training['seconds']} s -> {out}"
    )


def distinct_image_ids(groups: list[list]) -> list:
    """The samples of several data sources in one list, the image ids of each source after the first shifted past
    those before it where they would collide (training groups boxes by image id)."""
    from dataclasses import replace

    out: list = []
    for group in groups:
        taken = {s.image_id for s in out}
        shift = max(taken) + 1 if taken & {s.image_id for s in group} else 0
        out += [replace(s, image_id=s.image_id + shift) for s in group] if shift else group
    return out
