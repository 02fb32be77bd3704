"""``occseg make-challenge``: build an Occlusion Challenge from whole segmented objects pasted on backgrounds."""

from __future__ import annotations

from pathlib import Path

import click

from occseg.challenge.composer import SCENARIOS
from occseg.challenge.generator import ChallengeConfig, generate_challenge
from occseg.challenge.objects import SelectionConfig
from occseg.cli.options import OutputPath, progress_option, seed_option


def _parse_size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError as exc:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 640x480, got {value!r}") from exc
    return w, h


def _parse_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@click.command("make-challenge")
@click.option("--source", required=True, type=click.Path(path_type=Path), help="Dataset with instance masks.")
@click.option("--source-images", type=click.Path(path_type=Path), default=None, help="Image folder of --source.")
@click.option("--classes", required=True, help="Comma-separated target classes, e.g. person.")
@click.option(
    "--unknown-classes",
    default="all-other",
    show_default=True,
    help="Occluder classes for the 2obj_unknown scenario: comma-separated names, all-other, or none "
    "(synthetic cut-outs are used when no whole object of these classes exists).",
)
@click.option("--backgrounds", type=click.Path(path_type=Path), default=None, help="Folder of background photos.")
@click.option(
    "--source-backgrounds/--no-source-backgrounds",
    default=None,
    help="Also use object-free regions of the source images (default: only when --backgrounds is not given).",
)
@click.option(
    "--out", "out_dir", required=True, type=OutputPath(file_okay=False, path_type=Path), help="Output folder."
)
@click.option("--images", "n_images", type=click.IntRange(min=1), default=200, show_default=True)
@seed_option()
@click.option("--min-height", type=click.IntRange(min=1), default=40, show_default=True, help="Object mask height.")
@click.option("--test-fraction", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True)
@click.option("--size", default="640x480", show_default=True, help="Output image size WIDTHxHEIGHT.")
@click.option("--scenarios", default=",".join(SCENARIOS), show_default=True, help="Comma-separated scenarios.")
@click.option("--contact-sheet", "sheet", type=click.IntRange(min=0), default=12, show_default=True,
              help="Images on the contact sheet (0: none).")  # fmt: skip
@progress_option()
def cmd(
    source: Path,
    source_images: Path | None,
    classes: str,
    unknown_classes: str,
    backgrounds: Path | None,
    source_backgrounds: bool | None,
    out_dir: Path,
    n_images: int,
    seed: int,
    min_height: int,
    test_fraction: float,
    size: str,
    scenarios: str,
    sheet: int,
    progress: bool,
) -> None:
    """Compose images of whole objects occluding each other, with exact amodal masks and depth order.

    Writes OUT/images/, OUT/annotations/{train,test}.json (KINS-style), selection.json, split.json,
    summary.json and contact_sheet.png, and prints the object selection and the counts per scenario and
    occlusion level. Same seed and inputs give identical files.
    """
    from occseg.io import check_output_dir

    check_output_dir(
        out_dir,
        what="--out",
        files=("selection.json", "split.json", "summary.json", "contact_sheet.png"),
        folders=("images", "annotations"),
        inputs=(source, source_images, backgrounds),
    )
    config = ChallengeConfig(
        out=out_dir,
        source=source,
        source_images=source_images,
        classes=_parse_list(classes),
        unknown_classes=unknown_classes,
        backgrounds=backgrounds,
        source_backgrounds=source_backgrounds,
        images=n_images,
        seed=seed,
        test_fraction=test_fraction,
        size=_parse_size(size),
        scenarios=_parse_list(scenarios),
        selection=SelectionConfig(min_height=min_height),
        contact_sheet_images=sheet,
        progress=progress,
    )
    result = generate_challenge(config)
    sel = result.selection
    click.echo(f"targets ({', '.join(config.classes)}): {sel.describe('target')}")
    if sel.counts("unknown")["candidates"]:
        click.echo(f"unknown occluders: {sel.describe('unknown')}")
    objs = result.summary["objects"]
    click.echo(
        f"split by source object: train {objs['targets']['train']} targets / {objs['unknown']['train']} unknown, "
        f"test {objs['targets']['test']} targets / {objs['unknown']['test']} unknown"
    )
    for split, st in result.summary["stats"].items():
        if st.get("synthetic_occluders"):
            click.echo(f"{split}: no whole unknown-class object, {st['synthetic_occluders']} synthetic occluders used")
    imgs = result.summary["images"]
    click.echo(f"images: train {imgs['train']}, test {imgs['test']}")
    click.echo("target objects per occlusion level:")
    click.echo(result.table)
    click.echo(f"wrote {result.out}/annotations/train.json, test.json, images/, selection.json, split.json, "
               "summary.json" + (", contact_sheet.png" if sheet else ""))  # fmt: skip
