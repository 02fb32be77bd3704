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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

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

    @classmethod
    def beside(cls, output: str | Path, key: str) -> Checkpoints:
        """The folder ``.NAME.checkpoints`` in the folder of the output ``NAME``."""
        out = Path(output)
        return cls(out.parent / f".{out.name}.checkpoints", key)

    def load_text(self, name: str) -> str | None:
        """The text saved as ``name`` by a run with this key, else ``None``."""
        path = self.folder / f"{name}.json"
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
