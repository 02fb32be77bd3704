"""``occseg stats PATH``: what a dataset holds (images, instances per class, warnings, occlusion levels)."""

from __future__ import annotations

from pathlib import Path

import click

from occseg.cli.options import progress_option
from occseg.data.readers import FORMATS, read_dataset
from occseg.data.stats import dataset_stats, format_stats


@click.command("stats")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Image folder, where it cannot be found from the annotation file.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Dataset format (default: detect).")
@click.option(
    "--max-warnings",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many reader warnings to print.",
)
@click.option(
    "--check-images/--no-check-images",
    default=True,
    show_default=True,
    help="Read each image file's header and list the files that cannot be read or whose size is not the "
    "annotated one (which training and prediction refuse).",
)
@progress_option()
def cmd(
    path: Path, images: Path | None, fmt: str | None, max_warnings: int, check_images: bool, progress: bool
) -> None:
    """Summarise the dataset at PATH (a COCO/KINS/COCOA JSON, or a YOLO/KITTI/COCOA/COCO folder)."""
    dataset = read_dataset(path, images=images, fmt=fmt)
    stats = dataset_stats(dataset, progress=progress, check_images=check_images)
    click.echo(format_stats(stats, max_warnings=max_warnings))
