"""The hidden part of an object behind others: its amodal shape under the visible masks of the objects in front.

The CompositionalNet's amodal shape of an object (its object cells and its occluder cells inside the class's
shape prior, :func:`occseg.inference.single.finish_object`'s ``extra["shape"]`` with ``hidden="front"``) is
coarse: 16-px cells. Taken whole, its rim beyond a finer visible mask (the mask head's) would count as hidden
where nothing hides the object. Under an object the scene puts in front, though, the shape is where the object
goes on unseen: that part joins its amodal mask (``SceneConfig(hidden="front")``), and the masks then show the
order the reasoning decided even where the two visible masks do not touch. With ``hidden="agree"`` (the default with
a head), where an object behind is seen the one in front is not: those pixels leave the amodal mask of the object in
front (its cells' occluder part may reach there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from occseg.geometry.boxes import mask_to_box
from occseg.inference.types import ObjectResult


def decided_order(order: np.ndarray, vote: np.ndarray | None) -> np.ndarray:
    """The competition's ``order`` (``+1``: i in front of j), with ``vote``'s relation (the part-position vote, or an
    order given) where the competition decided none, e.g. where the two visible masks do not overlap."""
    if vote is None:
        return order
    return np.where(order != 0, order, np.asarray(vote, dtype=order.dtype))


def hide_behind(objects: Sequence[ObjectResult], order: np.ndarray, *, agree: bool = False) -> list[ObjectResult]:
    """Each object with an amodal shape (``extra["shape"]``) with that shape under the visible masks of the objects in
    front of it (``order[i, j] = +1``: i in front of j) added to its amodal mask; with ``agree``, also the pixels seen
    in an object behind it (and not in its own visible mask) taken out of it: where the object behind is seen, the
    one in front is not (``SceneConfig(hidden="agree")``). Objects without a shape are returned as they are."""
    out = []
    for j, obj in enumerate(objects):
        shape = obj.extra.get("shape")
        front = [i for i in np.flatnonzero(order[:, j] > 0) if i != j]
        behind = [k for k in np.flatnonzero(order[j, :] > 0) if k != j] if agree else []
        if shape is None or not (front or behind):
            out.append(obj)
            continue
        amodal = obj.amodal
        if front:
            amodal = amodal | (shape & np.logical_or.reduce([objects[i].visible for i in front]) & ~obj.visible)
        if behind:
            amodal = amodal & ~(np.logical_or.reduce([objects[k].visible for k in behind]) & ~obj.visible)
        if np.array_equal(amodal, obj.amodal):
            out.append(obj)
            continue
        out.append(replace(obj, amodal=amodal, amodal_box=mask_to_box(amodal) or obj.amodal_box))
    return out
