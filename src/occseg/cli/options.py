"""Command-line options shared by several commands: the scene options of ``predict`` / ``segment`` and the
``--device`` of every command that runs the backbone."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from occseg.choices import OrderCue, Reasoning, choices

F = TypeVar("F", bound=Callable)


def scene_options(prefix: str = "") -> Callable[[F], F]:
    """``--reasoning``, ``--reasoning-iters``, ``--order-cue``, ``--complete-boxes`` and ``--refine/--no-refine``;
    ``prefix`` starts their help (e.g. ``"compnet: "`` where the command also runs baselines that ignore them)."""

    def decorate(f: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--reasoning",
                    type=click.Choice(choices(Reasoning)),
                    default="nod",
                    show_default=True,
                    help=f"{prefix}occlusion reasoning off, per-pixel competition only (nod) or with the "
                    "all-or-nothing step (od).",
                ),
                click.option(
                    "--reasoning-iters",
                    type=click.IntRange(min=0),
                    default=2,
                    show_default=True,
                    help=f"{prefix}rounds of reasoning and top-down re-classification.",
                ),
                click.option(
                    "--order-cue",
                    type=click.Choice(choices(OrderCue)),
                    default="auto",
                    show_default=True,
                    help=f"{prefix}who is in front of two overlapping objects: the one that wins more of the "
                    "pixels both claim (counts, the paper), or where the parts seen in the boxes' overlap belong "
                    "in each box (position: the model's part-position classifier), the classifier where it is "
                    "sure and the counts elsewhere (gated); auto: position when the model has one.",
                ),
                click.option(
                    "--complete-boxes",
                    is_flag=True,
                    help=f"{prefix}with visible boxes: complete each to an amodal box by sliding its features over "
                    "the model's mixtures (the paper's way; measured far less accurate than the visible box itself on "
                    "the Occlusion Challenge, so off by default).",
                ),
                click.option(
                    "--refine/--no-refine",
                    default=True,
                    show_default=True,
                    help=f"{prefix}refine the masks at image resolution (colour models + guided filter); the "
                    "reasoning then compares colours pixel by pixel (without: the model's 16-px cells).",
                ),
            )
        ):
            f = option(f)
        return f

    return decorate


class OutputPath(click.Path):
    """A :class:`click.Path` for what a command writes, refusing an empty value: ``--out "$DIR"`` with ``DIR``
    unset would otherwise write into the current folder."""

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 (click's signature)
        if isinstance(value, str) and not value.strip():
            self.fail(f"is empty: name a {'file' if not self.dir_okay else 'folder'}", param, ctx)
        return super().convert(value, param, ctx)


#: Seeds numpy's and torch's generators both accept.
SEED = click.IntRange(min=0, max=2**32 - 1)


def seed_option(help: str = "Seed of every random choice: the same seed gives the same result.") -> Callable[[F], F]:
    """``--seed`` (default 0), a non-negative integer below 2**32, checked before any work starts."""
    return click.option("--seed", type=SEED, default=0, show_default=True, help=help)


def progress_option() -> Callable[[F], F]:
    """``--progress/--no-progress``: progress bars on stderr (on by default)."""
    return click.option(
        "--progress/--no-progress", default=True, show_default=True, help="Show progress bars (on stderr)."
    )


def finite(ctx: click.Context | None, param: click.Parameter | None, value: float | None) -> float | None:
    """A click callback refusing ``nan`` and ``inf`` (which ``click.FloatRange`` lets through)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def check_device(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """A ``--device`` value torch can use here: a device name torch parses, and for CUDA a visible GPU with that
    index; otherwise a usage error saying what is wrong (before any work starts)."""
    from occseg.backbones.registry import device_problem

    problem = device_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


def device_option(help: str = "torch device: cpu, cuda or cuda:N.") -> Callable[[F], F]:
    """``--device`` (default ``cpu``), checked by :func:`check_device`."""
    return click.option("--device", default="cpu", show_default=True, callback=check_device, help=help)


def download_option() -> Callable[[F], F]:
    """``--download-weights``: let torchvision download a backbone's ImageNet weights (off by default)."""
    return click.option(
        "--download-weights",
        is_flag=True,
        help="vgg16 / resnext50: download the ImageNet weights into torch's hub cache when they are not there "
        "(needs internet; without it a missing file is an error saying where it was looked for).",
    )


def class_map_option(help: str) -> Callable[[F], F]:
    """``--class-map FILE``: dataset class -> model class names (read with :func:`parse_class_map`)."""
    return click.option("--class-map", type=click.Path(exists=True, dir_okay=False), default=None, help=help)


def parse_class_map(path: str | None) -> dict[str, str]:
    """A class map file: JSON ``{"truck": "vehicle", ...}`` or lines ``truck vehicle`` / ``truck: vehicle`` /
    ``truck -> vehicle`` (with ``:`` or ``->``, names may hold spaces: ``traffic light: sign``)."""
    if not path:
        return {}
    from occseg.io import parse_json

    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not a UTF-8 text file (at byte {exc.start}), so not a class map") from None
    if p.suffix == ".json" or text.lstrip().startswith("{"):

        def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
            seen: dict[str, object] = {}
            for k, v in pairs:
                if k in seen and seen[k] != v:
                    raise ValueError(f"{p}: the class map gives {k!r} two model classes, {seen[k]!r} and {v!r}")
                seen[k] = v
            return seen

        obj = parse_json(text, p, object_pairs_hook=unique)
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
            raise ValueError(f"{p}: a class map must be a JSON object of dataset class -> model class names")
        return obj
    out: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        sep = "->" if "->" in line else ":" if ":" in line else None
        # with a separator, names may hold spaces (COCO's "traffic light"); without one, two words
        parts = [s.strip() for s in line.split(sep, 1)] if sep else line.split()
        if len(parts) != 2 or not all(parts):
            raise ValueError(
                f"{p}, line {n}: expected 'dataset_class model_class' (or 'dataset class: model class'), got {line!r}"
            )
        if parts[0] in out and out[parts[0]] != parts[1]:
            raise ValueError(
                f"{p}, lines {line_of[parts[0]]} and {n}: {parts[0]!r} is mapped to two model classes, "
                f"{out[parts[0]]!r} and {parts[1]!r}"
            )
        line_of.setdefault(parts[0], n)
        out[parts[0]] = parts[1]
    return out


def shipped_model_unless(model_dir: str | Path | None) -> str | Path:
    """``model_dir`` when given, else the shipped person model's folder (a note on stderr says so)."""
    if model_dir is not None:
        return model_dir
    from occseg.api import model_folder

    folder = model_folder()
    click.echo(f"occseg: note: no --model given: using the shipped person model {folder}", err=True)
    return folder
