"""Command-line options shared by the commands that explain scenes (``predict``, ``segment``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable)


def scene_options(prefix: str = "") -> Callable[[F], F]:
    """``--reasoning``, ``--reasoning-iters`` and ``--refine/--no-refine``; ``prefix`` starts their help (e.g.
    ``"compnet: "`` where the command also runs baselines that ignore them)."""

    def decorate(f: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--reasoning",
                    type=click.Choice(["off", "nod", "od"]),
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
