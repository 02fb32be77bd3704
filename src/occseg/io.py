"""Atomic file writing: write to a temporary file (or folder) beside the target, then rename; the checks every
command makes of its outputs before any work (writable, not one of its inputs), and the removal of the
temporary files a killed earlier run left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
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


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path`` (``.NAME.tmp-XXXXXXXX``); on success it is renamed onto
    ``path``, so the folder appears whole or not at all. A ``path`` that does not exist or is an empty folder is
    simply replaced; a folder with files in it only with ``replace`` (it is renamed aside, the new one renamed
    in, then the old one removed), else ``FileExistsError``. On failure the temporary folder is removed."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary_dir(target)
    try:
        yield tmp
        _swap_in(tmp, target, replace=replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _new_temporary_dir(target: Path) -> Path:
    """A new empty folder beside ``target`` with the permissions a plain ``mkdir`` gives (``mkdtemp``'s are
    ``0o700``)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    mask = os.umask(0)
    os.umask(mask)
    tmp.chmod(0o777 & ~mask)
    return tmp


def _swap_in(tmp: Path, target: Path, *, replace: bool) -> None:
    if not (target.is_dir() and any(target.iterdir())):
        os.replace(tmp, target)  # onto nothing or an empty folder: one rename
        return
    if not replace:
        raise FileExistsError(f"{target} exists and is not empty")
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.replace(target, old)  # a folder renamed onto an empty folder replaces it
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _debris_pattern(name: str) -> re.Pattern[str]:
    """The names of the temporary files (:func:`atomic_path`) and folders (:func:`atomic_dir`, the challenge's
    staging folder) occseg makes beside a target called ``name``."""
    return re.compile(rf"\.{re.escape(name)}(\.[0-9a-f]{{12}}\.tmp|\.tmp-[a-z0-9_]{{8}})")


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporary files and folders that an earlier run writing ``target`` left beside it when it was
    killed (``SIGKILL``, a power cut: no cleanup could run). Only names of occseg's own temporary pattern for
    this target are touched. Returns what was removed."""
    t = Path(target).absolute()
    if not t.name or not t.parent.is_dir():
        return []
    pattern = _debris_pattern(t.name)
    removed = []
    try:
        entries = sorted(t.parent.iterdir())
    except OSError:  # a folder that cannot be listed: its writability is checked and reported elsewhere
        return []
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


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


#: JSON integers of more digits than this are read as infinite floats (no float holds them; Python reads at
#: most 4300 digits): every check of a number then names them "not finite" instead of failing with OverflowError
MAX_INT_DIGITS = 300


def json_int(text: str) -> int | float:
    """A JSON integer literal: an ``int``, or ``±inf`` when it has more than :data:`MAX_INT_DIGITS` digits."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


def parse_json(text: str, path: str | Path, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)`` of the text of ``path`` (a leading byte-order mark dropped; integers too long
    for a float read by :func:`json_int`), with :func:`json_error`'s errors."""
    kwargs.setdefault("parse_int", json_int)
    try:
        return json.loads(text.removeprefix("\ufeff"), **kwargs)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise json_error(path, exc) from None


def read_json(
    path: str | Path, *, what: str = "JSON file", object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> Any:
    """Load JSON (UTF-8, with or without a byte-order mark; integers by :func:`json_int`) with an error that names
    the file and the position of a syntax error; ``object_hook`` as :func:`json.load` takes it."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder, not a JSON file")
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {p}")
    try:
        with open(p, encoding="utf-8-sig") as fh:  # a byte-order mark is dropped
            return json.load(fh, parse_int=json_int, object_hook=object_hook)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise json_error(p, exc) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not a UTF-8 text file, so not JSON") from exc


def _file_id(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of the regular file at ``path`` (links followed), ``None`` when there is none."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def check_not_input(
    target: str | Path, inputs: Iterable[str | Path | None], *, what: str = "output file", folder: bool = False
) -> None:
    """Raise ``ValueError`` when what a command is about to write is one of the files it reads (writing it would
    destroy that input): every file it reads counts (the annotation JSON, its images, backgrounds, model files),
    and the same file under another name or through a link too. With ``folder``, ``target`` is a folder the
    command writes into, replaces or removes files from: an input (file or folder) inside it counts too."""
    t = Path(target)
    paths = [Path(p) for p in inputs if p is not None and str(p)]
    if folder:
        root = t.resolve()
        for inp in paths:
            r = inp.resolve()
            if r == root or r.is_relative_to(root):
                raise ValueError(
                    f"{what} {t} holds the input {inp}: writing into that folder could overwrite or remove it; "
                    "choose another folder"
                )
        return
    tid = _file_id(t)
    if tid is None:
        return
    for inp in paths:
        if _file_id(inp) == tid:
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
    clean: bool = True,
    named: str | Path | None = None,
) -> None:
    """Raise ``ValueError`` before any work is done when ``path`` cannot become a writable folder (it is a file,
    a probe file cannot be created in the nearest folder that exists above it), when one of the ``files`` the
    command will write into it is a folder or one of the ``inputs`` it reads, or one of the ``folders`` it will
    write into is a file or holds one of the ``inputs``; so a long run never ends in an error about where to put
    its result, and never overwrites what it read. With ``clean``, the temporary files and folders a killed earlier
    run left for ``path`` and its ``files`` are removed (:func:`remove_stale_temporaries`). ``named``: the path
    the messages name instead of ``path`` (the output file whose folder this is)."""
    p = Path(path)
    if not str(path).strip():
        raise ValueError(f"{what} is empty: name a folder")
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {p} exists and is not a folder")
    existing = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), None)
    if existing is None or not existing.is_dir():
        raise ValueError(f"{what} {p}: {existing} is not a folder")
    _probe(existing, f"{what} {named or p}")
    inputs = list(inputs)
    for name in ("", *files) if clean else ():
        remove_stale_temporaries(p / name if name else p)
    for name in files:
        if (p / name).is_dir():
            raise ValueError(f"{what} {p}: {p / name} is a folder, so {name} cannot be written there")
        check_not_input(p / name, inputs, what=what)
    for name in folders:
        if (p / name).exists() and not (p / name).is_dir():
            raise ValueError(f"{what} {p}: {p / name} is a file, so the folder {name}/ cannot be made there")
        check_not_input(p / name, inputs, what=what, folder=True)


def _probe(folder: Path, what: str) -> None:
    """Create and remove a file in ``folder``: the one sure test that a command will be able to write there (a
    permission check passes for root on a read-only or virtual file system such as ``/proc``)."""
    try:
        remove = _new_temporary(folder / ".occseg-probe")
    except OSError as exc:
        raise ValueError(f"{what}: cannot write into {folder} ({exc.strerror or exc})") from None
    remove.unlink(missing_ok=True)


def check_output_file(path: str | Path, *, what: str = "output file", inputs: Iterable[str | Path | None] = ()) -> None:
    """:func:`check_output_dir` for the folder of one output file, which must not itself be a folder, nor one
    of the ``inputs`` the command reads; the temporary files a killed earlier run left for it are removed."""
    p = Path(path)
    if not str(path).strip():
        raise ValueError(f"{what} is empty: name a file")
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder, not a file")
    check_output_dir(p.parent, what=what, clean=False, named=p)
    check_not_input(p, inputs, what=what)
    remove_stale_temporaries(p)
