"""Atomic file writing: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success its contents are flushed to disk and it is
    renamed onto ``path`` (an existing file is replaced only then); on failure it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _new_temporary(target: Path) -> Path:
    """A new empty file beside ``target``, created with the permissions a plain ``open()`` gives (``0o666``
    less the process umask, which the OS applies; :func:`tempfile.mkstemp` would make it ``0o600``)."""
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file beside {target}")


def write_json(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """``json.dump`` to ``path`` atomically (a crash never leaves a half-written file)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=indent)
            fh.write("\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_error(path: str | Path, exc: json.JSONDecodeError | RecursionError) -> ValueError:
    """The error for a file that is not valid JSON: it names the file and the line and column of the fault
    (or that it nests too deeply for Python's parser)."""
    if isinstance(exc, RecursionError):
        return ValueError(f"{path}: not valid JSON for occseg (arrays or objects nested too deeply)")
    where = f"line {exc.lineno}, column {exc.colno}"
    text = f"{exc.msg} {where}" if exc.msg.endswith(" at") else f"{exc.msg} at {where}"  # "starting at"
    return ValueError(f"{path}: not valid JSON ({text})")


def parse_json(text: str, path: str | Path, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)`` of the text of ``path``, with :func:`json_error`'s errors."""
    try:
        return json.loads(text, **kwargs)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise json_error(path, exc) from None


def read_json(path: str | Path, *, what: str = "JSON file") -> Any:
    """Load JSON with an error that names the file and the position of a syntax error."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder, not a JSON file")
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise json_error(p, exc) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not a UTF-8 text file, so not JSON") from exc


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.is_file() and b.is_file() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(target: str | Path, inputs: Iterable[str | Path | None], *, what: str = "output file") -> None:
    """Raise ``ValueError`` when the file a command is about to write is one of the files it reads (writing it
    would destroy that input); the same file under another name or through a link counts too."""
    t = Path(target)
    for inp in inputs:
        if inp is not None and _same_file(t, Path(inp)):
            raise ValueError(
                f"{what} {t} is the input file {inp}: writing there would overwrite it; choose another path"
            )


def check_output_dir(
    path: str | Path,
    *,
    what: str = "output folder",
    files: tuple[str, ...] = (),
    folders: tuple[str, ...] = (),
    inputs: Iterable[str | Path | None] = (),
) -> None:
    """Raise ``ValueError`` before any work is done when ``path`` cannot become a writable folder (it is a file,
    the nearest folder that exists above it is not writable), when one of the ``files`` the command will write
    into it is a folder or one of the ``inputs`` it reads, or one of the ``folders`` it will write into is a file;
    so a long run never ends in an error about where to put its result, and never overwrites what it read."""
    p = Path(path)
    if not str(path).strip():
        raise ValueError(f"{what} is empty: name a folder")
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {p} exists and is not a folder")
    existing = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), None)
    if existing is None or not existing.is_dir():
        raise ValueError(f"{what} {p}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {p}: cannot write into {existing} (permission denied or a read-only file system)")
    inputs = list(inputs)
    for name in files:
        if (p / name).is_dir():
            raise ValueError(f"{what} {p}: {p / name} is a folder, so {name} cannot be written there")
        check_not_input(p / name, inputs, what=what)
    for name in folders:
        if (p / name).exists() and not (p / name).is_dir():
            raise ValueError(f"{what} {p}: {p / name} is a file, so the folder {name}/ cannot be made there")


def check_output_file(path: str | Path, *, what: str = "output file", inputs: Iterable[str | Path | None] = ()) -> None:
    """:func:`check_output_dir` for the folder of one output file, which must not itself be a folder, nor one
    of the ``inputs`` the command reads."""
    p = Path(path)
    if not str(path).strip():
        raise ValueError(f"{what} is empty: name a file")
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder, not a file")
    check_output_dir(p.parent, what=what)
    check_not_input(p, inputs, what=what)
