"""Checkpoints of a long run: each finished piece of work (a prediction shard, a training stage) is kept in a
hidden folder beside the output, so that ``--resume`` continues an interrupted run where it stopped.

Every checkpoint carries the key of the run that wrote it (a hash of the command's inputs and settings); one with
another key is ignored, so a changed setting or input file is never mixed with old work. Files are written
atomically (a killed run leaves whole checkpoints or none), and the folder is removed once the output is
written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from occseg.distributed.collectives import all_gather_bytes, barrier
from occseg.distributed.context import DistContext
from occseg.io import atomic_path, write_json

_KEY = "occseg_checkpoint_key"


def file_stamp(path: str | Path | None) -> list[Any] | None:
    """What identifies an input file's version: its absolute path, size and modification time (``None``: no
    file)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return [str(p.absolute()), None]
    st = p.stat()
    return [str(p.absolute()), st.st_size, st.st_mtime_ns]


def run_key(settings: Mapping[str, Any]) -> str:
    """A short hash of a run's settings and input stamps (JSON with sorted keys; other values as text)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class Checkpoints:
    """The checkpoint folder of one output and the key of the run."""

    folder: Path
    key: str
    reuse: bool = False  # --resume: load what an interrupted run saved (otherwise only save)

    @classmethod
    def beside(cls, output: str | Path, key: str, *, reuse: bool = False) -> Checkpoints:
        """The folder ``.NAME.checkpoints`` in the folder of the output ``NAME``."""
        out = Path(output)
        return cls(out.parent / f".{out.name}.checkpoints", key, reuse)

    def load_text(self, name: str) -> str | None:
        """The text saved as ``name`` by a run with this key, else ``None``."""
        path = self.folder / f"{name}.json"
        if not self.reuse:
            return None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return saved.get("text") if isinstance(saved, dict) and saved.get("key") == self.key else None

    def save_text(self, name: str, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / f"{name}.json", {"key": self.key, "text": text})

    def load_tensors(self, name: str) -> tuple[dict[str, torch.Tensor], Any] | None:
        """The tensors and JSON metadata saved as ``name`` by a run with this key, else ``None``."""
        path = self.folder / f"{name}.safetensors"
        if not self.reuse:
            return None
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                if meta.get(_KEY) != self.key:
                    return None
                return {k: fh.get_tensor(k) for k in fh.keys()}, json.loads(meta.get("meta", "null"))
        except Exception:  # missing, cut short or not a safetensors file: redo that work
            return None

    def save_tensors(self, name: str, tensors: Mapping[str, torch.Tensor], meta: Any = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        blob = save_safetensors(
            {k: v.contiguous().cpu() for k, v in tensors.items()}, metadata={_KEY: self.key, "meta": json.dumps(meta)}
        )
        with atomic_path(self.folder / f"{name}.safetensors") as tmp:
            tmp.write_bytes(blob)

    def remove(self, name: str) -> None:
        for suffix in (".json", ".safetensors"):
            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the folder (the output is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def load_items(self, name: str) -> list[tuple[int, list[torch.Tensor], Any]] | None:
        """Items saved by :meth:`save_items`, else ``None``."""
        saved = self.load_tensors(name)
        return None if saved is None else items_from_tensors(*saved)

    def save_items(self, name: str, items: Sequence[tuple[int, Sequence[torch.Tensor], Any]]) -> None:
        """``(index, tensors, JSON metadata)`` items (e.g. one rank's share of the training crops)."""
        self.save_tensors(name, *items_to_tensors(items))


def items_to_tensors(items: Sequence[tuple[int, Sequence[torch.Tensor], Any]]) -> tuple[dict[str, torch.Tensor], Any]:
    """Named tensors and JSON metadata holding ``(index, tensors, metadata)`` items."""
    tensors = {str(j): t for j, t in enumerate(t for _, ts, _ in items for t in ts)}
    return tensors, [[i, len(ts), m] for i, ts, m in items]


def items_from_tensors(tensors: Mapping[str, torch.Tensor], meta: Any) -> list[tuple[int, list[torch.Tensor], Any]]:
    """The inverse of :func:`items_to_tensors`."""
    out, pos = [], 0
    for i, k, m in meta:
        out.append((i, [tensors[str(j)] for j in range(pos, pos + k)], m))
        pos += k
    return out


def rank_items(
    checkpoints: Checkpoints | None,
    ctx: DistContext | None,
    name: str,
    compute: Callable[[], list[tuple[int, list[torch.Tensor], Any]]],
) -> list[tuple[int, list[torch.Tensor], Any]]:
    """This rank's share of a stage's items (e.g. the features of its images): saved ones when they may be reused,
    else ``compute()``, saved when done. Per rank: each rank keeps its own share (no shared file system needed)."""
    if checkpoints is None:
        return compute()
    ctx = ctx or DistContext()
    full = f"{name}.rank{ctx.rank}-of-{ctx.world_size}"
    items = checkpoints.load_items(full)
    if items is None:
        items = compute()
        checkpoints.save_items(full, items)
    return items


def agreed_stage(
    checkpoints: Checkpoints | None,
    ctx: DistContext | None,
    name: str,
    compute: Callable[[], tuple[dict[str, torch.Tensor], Any]],
) -> tuple[dict[str, torch.Tensor], Any]:
    """A stage every rank computes together (its collectives need every rank): saved tensors and JSON metadata when
    every rank has them and they may be reused, else ``compute()`` on every rank, saved by each when done."""
    if checkpoints is None:
        return compute()
    ctx = ctx or DistContext()
    full = f"{name}.rank{ctx.rank}"
    saved = checkpoints.load_tensors(full)
    if not all(flag == b"1" for flag in all_gather_bytes(ctx, b"1" if saved is not None else b"0")):
        saved = None
    if saved is None:
        saved = compute()
        checkpoints.save_tensors(full, *saved)
    return saved


def finish(ctx: DistContext, checkpoints: Checkpoints | None) -> None:
    """After rank 0 wrote the output: wait for it, then drop the checkpoints."""
    barrier(ctx)
    if checkpoints is not None and ctx.is_main:
        checkpoints.clear()
