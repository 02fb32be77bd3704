"""The ``occseg`` command line: one click group, one module per command."""

from __future__ import annotations

import logging
import sys

import click

from occseg import __version__
from occseg.cli.cpus import limit_threads


class _ErrorsAsMessages(click.Group):
    """Report expected failures (bad files, bad boxes, bad JSON) as one clear line, not a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (FileNotFoundError, ValueError, OSError, KeyError) as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            if isinstance(exc, KeyError):  # nothing raises KeyError on purpose: say it is unexpected
                key = exc.args[0] if exc.args else ""
                msg = f"unexpected missing key {key!r} (run with --debug for the traceback)"
            else:
                msg = str(exc)
            click.echo(f"occseg: error: {msg}", err=True)
            sys.exit(2)


@click.group(cls=_ErrorsAsMessages)
@click.version_option(__version__, prog_name="occseg")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """occseg: box-supervised instance segmentation with occlusion reasoning."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    limit_threads()  # before any command imports torch: no more threads than the CPUs this process may use
    logging.basicConfig(level=logging.INFO if not debug else logging.DEBUG, format="%(message)s")


def _register() -> None:
    # Each command lives in its own module of occseg.cli; add one import + add_command per command.
    from occseg.cli import stats

    cli.add_command(stats.cmd)
    from occseg.cli import evaluate, predict

    cli.add_command(evaluate.cmd)
    cli.add_command(predict.cmd)
    from occseg.cli import make_challenge

    cli.add_command(make_challenge.cmd)
    from occseg.cli import segment, train

    cli.add_command(train.train)
    cli.add_command(segment.segment)
    from occseg.cli import demo

    cli.add_command(demo.cmd)
    from occseg.cli import models

    cli.add_command(models.cmd)


_register()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
