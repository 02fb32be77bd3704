"""``occseg segment``: one image and a list of boxes -> masks, order and an overlay."""

from __future__ import annotations

from pathlib import Path

import click

from occseg.choices import VOTE_ORDER_CUES, BoxKind, choices
from occseg.cli.options import (
    OutputPath,
    device_option,
    download_option,
    progress_option,
    scene_options,
    shipped_model_unless,
)


def read_boxes_file(path: str | Path, width: int, height: int) -> tuple[list, list, list[str]]:
    """A JSON list of ``{"box": [x1, y1, x2, y2], "class": name}`` (class optional); returns boxes, classes
    and warnings. Errors name the file and the entry at fault."""
    from occseg.geometry.boxes import BoxError, validate_box
    from occseg.io import read_json

    p = Path(path)
    raw = read_json(p, what="boxes file")
    if not isinstance(raw, list):
        raise ValueError(f'{p}: expected a JSON list of {{"box": [x1, y1, x2, y2], "class": name}} entries')
    boxes, classes, warnings = [], [], []
    for k, entry in enumerate(raw):
        if not isinstance(entry, dict) or "box" not in entry:
            raise ValueError(f'{p}: entry {k} has no "box": {entry!r}')
        try:
            b, warn = validate_box(entry["box"], width, height, what=f"{p} entry {k}")
        except BoxError as exc:
            raise ValueError(str(exc)) from exc
        if warn:
            warnings.append(warn)
        boxes.append(b)
        cls = entry.get("class")
        if cls is not None and not isinstance(cls, str):
            raise ValueError(f"{p}: entry {k} has a non-string class {cls!r}")
        if cls is not None and not cls.strip():
            raise ValueError(f'{p}: entry {k} has an empty class name; leave "class" out to have the object classified')
        classes.append(cls)
    return boxes, classes, warnings


#: The default --max-boxes: segment keeps several image-size masks per box, so its memory grows with the boxes
#: times the image's pixels (measured 2026-12-07: about 11 bytes per pixel per box, 3.3 MB a box on a 640x480
#: photo, above some 1.2 GB for the model and the backbone; benchmarks/segment_many_boxes.py)
MAX_BOXES = 1000
BYTES_PER_BOX_PIXEL = 11


def check_box_count(boxes_file: str | Path, n: int, limit: int, width: int, height: int) -> None:
    """Refuse (``ValueError``) more than ``limit`` boxes, before any work, saying how much memory they need."""
    if n <= limit:
        return
    mb = n * width * height * BYTES_PER_BOX_PIXEL / 1e6
    need = f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"
    raise ValueError(
        f"{boxes_file} lists {n} boxes, more than --max-boxes {limit}: segment keeps several image-size masks per "
        f"box (about {BYTES_PER_BOX_PIXEL} bytes per pixel per box: {need} for these on this {width}x{height} "
        f"image); give --max-boxes {n} if the memory is there, or split the boxes into several files"
    )


@click.command("segment")
@click.option(
    "--model",
    "model_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Model folder (default: the shipped person model; `occseg models` lists it).",
)
@click.option("--image", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--boxes",
    "boxes_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help='JSON list of {"box": [x1, y1, x2, y2], "class": name}.',
)
@click.option("--out", required=True, type=OutputPath(file_okay=False))
@click.option("--box-type", type=click.Choice(choices(BoxKind)), default="amodal", show_default=True)
@scene_options()
@device_option()
@click.option(
    "--backbone-weights", default=None, help="The weight file the model was learned with, when it was learned on one."
)
@download_option()
@click.option(
    "--max-boxes",
    type=click.IntRange(min=1),
    default=MAX_BOXES,
    show_default=True,
    help="Refuse more boxes than this before any work: the memory grows with the boxes times the image's pixels "
    f"(about {BYTES_PER_BOX_PIXEL} bytes per pixel per box).",
)
@progress_option()
def segment(
    model_dir,
    image,
    boxes_file,
    out,
    box_type,
    reasoning,
    reasoning_iters,
    order_cue,
    complete_boxes,
    refine,
    device,
    backbone_weights,
    download_weights,
    max_boxes,
    progress,
) -> None:
    """Segment the boxed objects of one image; writes result.json and overlay.png into OUT."""
    from occseg.data.images import load_rgb, save_rgb
    from occseg.inference.predict import explain_image, load_model_and_backbone
    from occseg.inference.types import SceneConfig
    from occseg.io import check_output_dir, write_json
    from occseg.refine import RefineConfig

    model_dir = shipped_model_unless(model_dir)
    model_files = (Path(model_dir) / "model.json", Path(model_dir) / "model.safetensors", backbone_weights)
    check_output_dir(out, what="--out", files=("result.json", "overlay.png"), inputs=(image, boxes_file, *model_files))
    img = load_rgb(image)
    boxes, classes, warnings = read_boxes_file(boxes_file, img.shape[1], img.shape[0])
    check_box_count(boxes_file, len(boxes), max_boxes, img.shape[1], img.shape[0])
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    model, backbone = load_model_and_backbone(
        model_dir, device=device, weights=backbone_weights, allow_download=download_weights
    )
    labels = model_labels(classes, model, boxes_file)
    rcfg = RefineConfig() if refine else None
    if order_cue in VOTE_ORDER_CUES:
        model.require_position(model_dir)
    cfg = SceneConfig(
        reasoning=reasoning,
        reasoning_iters=reasoning_iters,
        order=order_cue,
        boxes=box_type,
        refine=rcfg,
        complete_boxes=complete_boxes,
    )
    reasoning = cfg.reasoning_run  # no round of reasoning is none: drawn and recorded so
    if not boxes:
        click.echo(f"warning: {boxes_file} lists no boxes: nothing to segment", err=True)
    # one backbone pass per box, shared by the scene with reasoning and the one without (the overlay's left panel)
    configs = {"scene": cfg}
    if reasoning != "off" and len(boxes) > 1:
        configs["plain"] = SceneConfig(reasoning="off", boxes=box_type, refine=rcfg)
    scenes = explain_image(model, backbone, img, boxes, configs, labels=labels, device=device, progress=progress)
    scene = scenes["scene"]
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    relations = decided_relations(scene)
    save_rgb(outdir / "overlay.png", overlay(img, boxes, scene, scenes.get("plain"), reasoning, relations))
    write_json(outdir / "result.json", result_json(image, reasoning, boxes, scene, warnings))
    objs = scene.objects
    listed = ", ".join(f"{k}: {o.category} (layer {scene.layers[k]})" for k, o in enumerate(objs))
    click.echo(f"{len(objs)} object{'' if len(objs) == 1 else 's'}" + (f": {listed}" if objs else ""))
    for front, back, sure in relations:
        click.echo(f"  object {front} is in front of object {back} (confidence {sure:.2f})")
    click.echo(f"wrote {outdir / 'overlay.png'} and {outdir / 'result.json'}")


def model_labels(classes: list[str | None], model, boxes_file) -> list[str | None]:
    """The boxes' classes as the model names them (its training's class map applied); a class the model does
    not know is an error naming the entry."""
    labels = []
    for k, c in enumerate(classes):
        if c is not None and c not in model.settings.classes:
            cmap = model.settings.training.get("class_map", {})
            if c in cmap:
                c = cmap[c]
            else:
                raise ValueError(
                    f"{boxes_file}: entry {k} has class {c!r}, which the model does not know "
                    f"(model classes: {', '.join(model.settings.classes)})"
                )
        labels.append(c)
    return labels


def decided_relations(scene) -> list[tuple[int, int, float]]:
    """(front, back, confidence) of every relation the reasoning decided."""
    objs = scene.objects
    relations = []
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            if scene.order[i, j] != 0 and scene.order_confidence[i, j] > 0:
                front, back = (i, j) if scene.order[i, j] > 0 else (j, i)
                relations.append((front, back, float(scene.order_confidence[i, j])))
    return relations


def overlay(img, boxes, scene, plain, reasoning: str, relations) -> object:
    """The overlay image: the scene's objects, numbered, with their layers and relations; beside it, left, the
    objects without reasoning (``plain``, when there is such a scene)."""
    from occseg.viz.overlay import draw_objects, side_by_side

    objs = scene.objects
    panels = [
        draw_objects(
            img,
            [o.visible for o in objs],
            [o.amodal for o in objs],
            boxes,
            labels=[o.category for o in objs],
            layers=scene.layers,
            title=f"reasoning {reasoning}" if reasoning != "off" else "no reasoning",
            numbered=True,
            notes=[f"{f} in front of {b} ({c:.2f})" for f, b, c in relations],
        )
    ]
    if plain is not None:
        panels.insert(
            0,
            draw_objects(
                img,
                [o.visible for o in plain.objects],
                [o.amodal for o in plain.objects],
                boxes,
                labels=[o.category for o in plain.objects],
                title="no reasoning",
                numbered=True,
            ),
        )
    return side_by_side(panels)


def result_json(image, reasoning: str, boxes, scene, warnings: list[str]) -> dict:
    """``result.json``: per object its box, class, scores, amodal box, masks (RLE), layer and group; the order,
    its confidences and the warnings."""
    from occseg.data.masks import encode, rle_to_json

    return {
        "image": str(image),
        "reasoning": reasoning,
        # what decided who is in front: "position" (the part-position vote), "counts"; null without reasoning
        "order_cue": scene.report.get("order_cue"),
        "objects": [
            {
                "box": list(b),
                "class": o.category,
                "confidence": round(o.confidence, 6),
                "mixture": o.mixture,
                "class_scores": o.class_scores,
                "amodal_box": list(o.amodal_box),
                "visible_mask": rle_to_json(encode(o.visible)),
                "amodal_mask": rle_to_json(encode(o.amodal)),
                "occluded_mask": rle_to_json(encode(o.occluded)),
                "layer": scene.layers[k],
                "group": scene.groups[k],
            }
            for k, (b, o) in enumerate(zip(boxes, scene.objects))
        ],
        "order": scene.order.tolist(),
        # how sure each relation is, 0..1 (0: none decided); see SceneResult.order_confidence
        "order_confidence": [[round(float(c), 4) for c in row] for row in scene.order_confidence],
        "broken_cycles": scene.report.get("broken_cycles", []),
        "warnings": warnings,
    }
