"""``occseg evaluate``: score a predictions file against ground truth (docs/method.md §E) and write the report."""

from __future__ import annotations

from pathlib import Path

import click

from occseg.cli.options import OutputPath, finite, seed_option

#: How many warnings are echoed to the terminal (all of them go into report.json / report.md).
_ECHO_WARNINGS = 10
#: The most worst / best objects examples.png shows (a column each: 50 make a sheet about 13,000 px wide).
MAX_EXAMPLES = 50


def parse_classes(text: str | None, categories: list[str], *, what: str) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")``; every name must be a category of the dataset (``what`` names it)."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not names:
        raise click.BadParameter("give at least one class name, e.g. --classes person,car", param_hint="--classes")
    unknown = [c for c in names if c not in categories]
    if unknown:
        shown = ", ".join(categories[:30]) + (", ..." if len(categories) > 30 else "")
        raise ValueError(f"--classes: {', '.join(unknown)} not a category of {what} (it has: {shown})")
    return names


def echo_warnings(warnings: list[str], *, source: str | Path | None = None) -> None:
    """Each warning on stderr (the first few), prefixed by ``source`` unless it already names that file."""
    source = None if source is None else Path(source)
    for w in warnings[:_ECHO_WARNINGS]:
        named = source is None or w.startswith((f"{source}", f"{source.name}:"))
        click.echo(f"occseg: warning: {'' if named else f'{source}: '}{w}", err=True)
    if len(warnings) > _ECHO_WARNINGS:
        click.echo(
            f"occseg: warning: {'' if source is None else f'{source}: '}... {len(warnings) - _ECHO_WARNINGS} more",
            err=True,
        )


def _fmt(v: float | None) -> str:
    return "null" if v is None else f"{v:.3f}"


def _interval_text(interval: list[float] | None) -> str:
    return "" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]"


def _resamples(ctx: click.Context | None, param: click.Parameter | None, value: int) -> int:
    """``--bootstrap``: 0 or at least :data:`~occseg.evaluation.metrics.MIN_RESAMPLES`, checked before any work."""
    from occseg.evaluation.metrics import MIN_RESAMPLES

    if 0 < value < MIN_RESAMPLES:
        raise click.BadParameter(
            f"give 0 (no intervals) or at least {MIN_RESAMPLES} resamples, not {value}: fewer give a 95 % interval "
            "that is mostly noise, and may not even hold the estimate"
        )
    return value


def not_scored_warning(skipped: dict[str, int], n_gt: int) -> str | None:
    """The warning on the GT objects that could not be scored for a fault of the data (no visible mask, an empty
    one); those left out by the protocol (crowd, unknown occluders) or by the options (filtered) are not counted."""
    faults = {k: n for k, n in sorted(skipped.items()) if k in ("no visible mask", "empty visible mask")}
    if not faults:
        return None
    shown = ", ".join(f"{k}: {n}" for k, n in faults.items())
    return (
        f"{sum(faults.values())} of {n_gt} GT object(s) could not be scored ({shown}) and are left out of every score"
    )


def same_as_gt(gt_path: Path, pred_path: Path) -> bool:
    """Whether the predictions file is the ground truth's file, or a copy of it byte for byte."""
    try:
        return gt_path.samefile(pred_path) or (
            gt_path.stat().st_size == pred_path.stat().st_size and gt_path.read_bytes() == pred_path.read_bytes()
        )
    except OSError:
        return False


@click.command("evaluate")
@click.option(
    "--gt", "gt_path", required=True, type=click.Path(path_type=Path), help="Ground-truth dataset (any format)."
)
@click.option("--gt-images", type=click.Path(path_type=Path), default=None, help="Image folder of the ground truth.")
@click.option(
    "--gt-format",
    type=click.Choice(["coco", "yolo", "kins", "cocoa", "kitti"]),
    default=None,
    help="Format of --gt (default: detected).",
)
@click.option(
    "--pred", "pred_path", required=True, type=click.Path(path_type=Path), help="predictions.json (occseg predict)."
)
@click.option(
    "--out", "out_dir", required=True, type=OutputPath(file_okay=False, path_type=Path), help="Folder for the report."
)
@click.option("--classes", default=None, help="Comma-separated GT classes to evaluate (default: all).")
@click.option(
    "--min-height",
    type=click.FloatRange(min=0),
    callback=finite,
    default=None,
    help="Minimum GT visible-box height in pixels.",
)
@click.option(
    "--class-agnostic",
    is_flag=True,
    help="Count every prediction's IoU whatever its class (the protocol multiplies it by 1[class correct]); "
    "for ground truth whose class names the model does not share, e.g. COCOA's.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0, max=MAX_EXAMPLES),
    default=0,
    show_default=True,
    help=f"Write examples.png with the N worst and N best objects by visible IoU (at most {MAX_EXAMPLES} each).",
)
@click.option(
    "--bootstrap",
    "resamples",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    callback=_resamples,
    help="Resamples of the images for the 95 % intervals of every mean and of the order accuracy "
    "(percentile bootstrap over images); 0: no intervals; else at least 200.",
)
@seed_option(help="Seed of the bootstrap's resampling.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def cmd(
    gt_path: Path,
    gt_images: Path | None,
    gt_format: str | None,
    pred_path: Path,
    out_dir: Path,
    classes: str | None,
    min_height: float | None,
    class_agnostic: bool,
    examples: int,
    resamples: int,
    seed: int,
    progress: bool,
) -> None:
    """Score predictions: mIoU of visible/amodal/occluded masks per occlusion level, order accuracy, report."""
    from occseg.data.readers import read_dataset
    from occseg.distributed.context import session
    from occseg.distributed.evaluation import sharded_image_map
    from occseg.evaluation.matching import read_predictions
    from occseg.evaluation.metrics import BootstrapConfig
    from occseg.evaluation.plots import examples_sheet, plot_miou_vs_occlusion
    from occseg.evaluation.protocol import EvalConfig
    from occseg.evaluation.report import scored_report, write_report
    from occseg.io import check_not_input, check_output_dir

    outputs = ("report.json", "report.md", "objects.csv", "miou_vs_occlusion.png", "examples.png")
    check_output_dir(out_dir, what="--out", files=outputs, inputs=(gt_path, pred_path))
    gt = read_dataset(gt_path, images=gt_images, fmt=gt_format)
    for name in outputs:  # the GT's images are read too (examples.png)
        check_not_input(out_dir / name, [im.path for im in gt.images], what="--out")
    pred = read_predictions(pred_path)
    if gt_path.is_file() and same_as_gt(gt_path, pred_path):
        click.echo(
            f"occseg: warning: --pred {pred_path} is the ground truth {gt_path} itself: every score is 1.000 by "
            "construction",
            err=True,
        )
    cls = parse_classes(classes, gt.categories, what=f"the ground truth {gt.source}")
    boot = BootstrapConfig(resamples=resamples, seed=seed)
    config = EvalConfig(
        classes=cls, min_height=min_height, class_agnostic=class_agnostic, progress=progress, bootstrap=boot
    )
    with session(None) as ctx:  # under torchrun each rank scores its share of the images; rank 0 writes
        mapper = sharded_image_map(ctx, progress=progress) if ctx.active else None
        report, evaluation = scored_report(gt, pred, config, gt_images=gt_images, map_images=mapper)
    if not ctx.is_main:
        return
    paths = write_report(out_dir, report, evaluation)
    paths.append(plot_miou_vs_occlusion(report, out_dir / "miou_vs_occlusion.png"))
    if examples > 0:
        ex_warn = examples_sheet(evaluation, gt, examples, out_dir / "examples.png")
        evaluation.warnings.extend(ex_warn)
        if (out_dir / "examples.png").is_file() and not any("not written" in w for w in ex_warn):
            paths.append(out_dir / "examples.png")
        if ex_warn:  # keep report.json in step with what happened
            report["settings"]["warnings"] = list(evaluation.warnings)
            write_report(out_dir, report, evaluation)
    not_scored = not_scored_warning(evaluation.skipped, evaluation.n_gt_objects)
    echo_warnings(([not_scored] if not_scored else []) + evaluation.warnings)
    if gt.warnings:
        click.echo(f"occseg: warning: the GT reader reported {len(gt.warnings)} problem(s); see report.json", err=True)
    a = report["all"]
    v = a["visible"]
    click.echo(
        f"{a['n_objects']} objects; visible mIoU: all objects {_fmt(v['all_objects'])}, "
        f"mean over levels {_fmt(v['mean'])}{_interval_text(v.get('interval', {}).get('mean'))}; "
        f"amodal mean {_fmt(a['amodal']['mean'])}; occluded mean {_fmt(a['occluded']['mean'])}; "
        f"class accuracy {_fmt(a['classification_accuracy'])}; order accuracy: all pairs "
        f"{_fmt(a['order_accuracy']['all'])}, occluded pairs {_fmt(a['order_accuracy']['occluded'])}"
        + _interval_text(a["order_accuracy"].get("occluded_interval"))
    )
    for p in paths:
        click.echo(f"wrote {p}")
