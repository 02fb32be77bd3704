"""The ``occseg`` command line: one click group, one module per command."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


class MessageFormatter(logging.Formatter):
    """Log records as the command's own lines: the message, and warnings (and worse) prefixed like every other
    warning, ``occseg: warning: ...`` (``occseg: error: ...``), unless they are already."""

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)  # the message (and a traceback logged with it, under --debug)
        if record.levelno < logging.WARNING or msg.startswith("occseg: "):
            return msg
        return f"occseg: {'warning' if record.levelno == logging.WARNING else 'error'}: {msg}"


@click.group(cls=_ErrorsAsMessages)
@click.version_option(__version__, prog_name="occseg")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """occseg: box-supervised instance segmentation with occlusion reasoning."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    limit_threads()  # before any command imports torch: no more threads than the CPUs this process may use
    handler = logging.StreamHandler()
    handler.setFormatter(MessageFormatter())
    logging.basicConfig(level=logging.INFO if not debug else logging.DEBUG, handlers=[handler])


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


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised where the program is when it arrives, so that every ``finally`` and context
    manager on the way out runs (temporary files and folders removed) before the process ends with
    ``128 + signal number``. Not a :class:`KeyboardInterrupt`, which click would turn into exit status 1."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def signals_as_exceptions(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Within the block, each of ``signums`` raises :class:`Interrupted`; a second signal during the cleanup
    that follows is ignored, so the cleanup completes. The previous handlers are restored on leaving."""

    def handle(signum: int, frame: object) -> None:
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handle) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def main() -> None:
    """The ``occseg`` program: one signal handler for every command (SIGTERM is handled as SIGINT: whatever the
    command was writing is removed, ``occseg: interrupted (SIGTERM): the output being written was removed`` on
    stderr, exit status ``128 + signal number``, i.e. 130 or 143)."""
    try:
        with signals_as_exceptions():
            cli()
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        print(f"occseg: interrupted ({name}): the output being written was removed", file=sys.stderr)
        sys.exit(128 + exc.signum)


if __name__ == "__main__":
    main()
