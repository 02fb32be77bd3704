"""The mask head in a model folder: its tensors in ``model.safetensors`` (names prefixed ``mask_head.``), its
settings in ``model.json`` (the ``mask_head`` entry) and in the tensor file's metadata, checked on load (types,
ranges, tensor shapes, the two records against each other). Models saved without a head load without one."""

from __future__ import annotations

import json
import logging
from dataclasses import MISSING, asdict, fields
from typing import Any

import torch

from occseg.head.config import HEAD_USES, HeadSettings
from occseg.head.network import MaskHead

log = logging.getLogger(__name__)

#: the prefix of the head's tensor names in ``model.safetensors``
PREFIX = "mask_head."
#: the key of ``model.json`` (and of the tensor file's metadata) that holds the head's settings
KEY = "mask_head"
#: the note logged when a model without a head is loaded
NO_HEAD_NOTE = (
    "%s has no mask head (saved before occseg learned one, or trained with --no-mask-head): its masks come from "
    "the CompositionalNet's cells and the colour refinement"
)
_POSITIVE_INTS = ("fine_channels", "fine_stride", "coarse_channels", "width")


def head_tensors(head: MaskHead | None) -> dict[str, torch.Tensor]:
    """The head's tensors under their saved names (none without a head)."""
    if head is None:
        return {}
    return {PREFIX + k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}


def head_record(head: MaskHead | None) -> dict[str, Any]:
    """``{"mask_head": settings}`` for ``model.json`` (empty without a head)."""
    return {} if head is None else {KEY: asdict(head.settings)}


def head_metadata(head: MaskHead | None) -> dict[str, str]:
    """The settings the tensor file records (all but the training record), as JSON, for its metadata."""
    if head is None:
        return {}
    rec = {k: v for k, v in asdict(head.settings).items() if k != "training"}
    return {KEY: json.dumps(rec, sort_keys=True, separators=(",", ":"))}


def check_head_settings(entry: Any, where: str) -> HeadSettings:
    """:class:`HeadSettings` from a ``model.json`` entry; a ValueError names the setting, its value and ``where``."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: {KEY!r} must be a JSON object, not {type(entry).__name__}")
    known = {f.name for f in fields(HeadSettings)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f"{where}: {KEY!r} has unknown settings {unknown}")
    defaults = {f.name: (None if f.default is MISSING else f.default) for f in fields(HeadSettings)}
    for name in _POSITIVE_INTS:
        v = entry.get(name, defaults[name])
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{where}: {KEY}.{name} must be an integer >= 1, not {v!r}")
    if not isinstance(entry.get("fine_layer"), str) or not entry["fine_layer"]:
        raise ValueError(f"{where}: {KEY}.fine_layer must be a module name, not {entry.get('fine_layer')!r}")
    if not isinstance(entry.get("compnet_inputs", True), bool):
        raise ValueError(f"{where}: {KEY}.compnet_inputs must be true or false, not {entry['compnet_inputs']!r}")
    t = entry.get("threshold", 0.0)
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not abs(t) < 1e6:
        raise ValueError(f"{where}: {KEY}.threshold must be a finite number, not {t!r}")
    if entry.get("use", "head") not in HEAD_USES:
        raise ValueError(f"{where}: {KEY}.use must be {' or '.join(HEAD_USES)}, not {entry.get('use')!r}")
    if not isinstance(entry.get("training", {}), dict):
        raise ValueError(f"{where}: {KEY}.training must be a JSON object")
    return HeadSettings(**entry)


def load_head(
    raw: dict[str, Any], tensors: dict[str, torch.Tensor], meta: dict[str, str], jpath, tpath, *, folder=None
) -> MaskHead | None:
    """The head of a model folder, or None (with the note :data:`NO_HEAD_NOTE`) when it has none. ``raw``: the
    parsed ``model.json``; ``tensors`` / ``meta``: the tensor file's tensors and metadata. ValueErrors say which
    file and what is wrong."""
    saved = {k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)}
    if KEY not in raw:
        if saved:
            raise ValueError(f"{jpath} has no {KEY!r} entry, but {tpath} holds a mask head: the files do not match")
        log.info(NO_HEAD_NOTE, folder or jpath)
        return None
    settings = check_head_settings(raw[KEY], str(jpath))
    recorded = meta.get(KEY)
    if recorded is not None:
        now = {k: v for k, v in asdict(settings).items() if k != "training"}
        if json.loads(recorded) != json.loads(json.dumps(now)):
            raise ValueError(f"{jpath}: {KEY!r} differs from the settings {tpath} was saved with ({recorded})")
    head = MaskHead(settings)
    want = head.state_dict()
    for name, t in want.items():
        got = saved.get(name)
        if got is None or tuple(got.shape) != tuple(t.shape) or not got.is_floating_point():
            shape = None if got is None else tuple(got.shape)
            raise ValueError(f"{tpath}: mask head tensor {PREFIX + name} has shape {shape}, expected {tuple(t.shape)}")
    extra = sorted(set(saved) - set(want))
    if extra:
        raise ValueError(f"{tpath}: unknown mask head tensors {[PREFIX + e for e in extra]}")
    head.load_state_dict({k: v.float() for k, v in saved.items()})
    return head.to(next(iter(saved.values())).device).eval()
