"""The mask head's training crops under torchrun: each rank renders the crops of its share of the images (the
second backbone pass, round robin), and every rank gets every image's crops back in image order, so the head
learned from them is the one a single process learns.

A crop travels as its tensors (safetensors) and its other fields as JSON (:mod:`occseg.distributed.collectives`,
never pickles); the fields are read from the :class:`~occseg.head.inputs.HeadCrop` dataclass itself, so a field
added there travels too (a tensor, ``None``, a :class:`~occseg.geometry.boxes.CropWindow` or JSON values).

The head's training steps are split too: every batch is cut into micro-batches of :data:`MICRO_BATCH` crops (the
cut does not depend on the number of ranks), each rank computes the gradients of its micro-batches (round robin),
and the float64 sums of the gradients are added over the ranks, so every rank takes the same step a single process
takes (:func:`occseg.distributed.collectives.summed_gradients`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from typing import Any

import torch

from occseg.distributed.collectives import first_error, gather_items
from occseg.distributed.context import DistContext
from occseg.geometry.boxes import CropWindow
from occseg.head.inputs import HeadCrop

#: crops per micro-batch of the head's training batches (the last one of a batch may hold fewer)
MICRO_BATCH = 4


def crop_payload(crops: Sequence[HeadCrop]) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """The tensors of ``crops`` (in order) and, per crop, each field: ``["t", k]`` (the ``k``-th tensor),
    ``["w", window]`` (a crop window) or ``["v", value]`` (JSON)."""
    tensors: list[torch.Tensor] = []
    meta: list[dict[str, Any]] = []
    for crop in crops:
        rec: dict[str, Any] = {}
        for f in fields(crop):
            v = getattr(crop, f.name)
            if isinstance(v, torch.Tensor):
                rec[f.name] = ["t", len(tensors)]
                tensors.append(v)
            elif isinstance(v, CropWindow):
                rec[f.name] = ["w", asdict(v)]
            else:
                rec[f.name] = ["v", v]
        meta.append(rec)
    return tensors, meta


def crops_from_payload(tensors: Sequence[torch.Tensor], meta: Sequence[dict[str, Any]]) -> list[HeadCrop]:
    """The inverse of :func:`crop_payload` (tuples come back as tuples)."""

    def value(kind: str, v: Any) -> Any:
        if kind == "t":
            return tensors[v]
        if kind == "w":
            return CropWindow(window=tuple(v["window"]), scale=v["scale"], size=tuple(v["size"]))
        return tuple(v) if isinstance(v, list) else v

    return [HeadCrop(**{name: value(*kv) for name, kv in rec.items()}) for rec in meta]


def sharded_crops(
    dist: DistContext | None, n_images: int, image_crops: Callable[[int], list[HeadCrop]]
) -> list[HeadCrop]:
    """Every image's crops in image order (``image_crops(k)`` for ``k < n_images``), each image rendered by one
    rank (``k % world_size``); in one process a plain loop. An error on a rank stops every rank with its message."""
    if dist is None or not dist.active:
        return [c for k in range(n_images) for c in image_crops(k)]
    local, error = [], None
    try:
        for k in dist.shard(n_images):
            tensors, meta = crop_payload(image_crops(k))
            local.append((k, tensors, meta))
    except (ValueError, RuntimeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    error = first_error(dist, error)
    if error is not None:
        raise RuntimeError(f"mask head crops: {error}")
    return [c for tensors, meta in gather_items(dist, n_images, local) for c in crops_from_payload(tensors, meta)]


def micro_batches(n: int, size: int = MICRO_BATCH) -> list[range]:
    """The positions ``0 .. n - 1`` of a batch cut into consecutive micro-batches of ``size`` (the last shorter)."""
    return [range(s, min(s + size, n)) for s in range(0, n, size)]
