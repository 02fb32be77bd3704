"""The hidden part of an object behind others: its amodal shape under the visible masks of the objects in front.

The CompositionalNet's amodal shape of an object (its object cells and its occluder cells inside the class's
shape prior, :func:`occseg.inference.single.finish_object`'s ``extra["shape"]`` with ``hidden="front"``) is
coarse: 16-px cells. Taken whole, its rim beyond a finer visible mask (the mask head's) would count as hidden
where nothing hides the object. Under an object the scene puts in front, though, the shape is where the object
goes on unseen: that part joins its amodal mask (``SceneConfig(hidden="front")``), and the masks then show the
order the reasoning decided even where the two visible masks do not touch.
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


def hide_behind(objects: Sequence[ObjectResult], order: np.ndarray) -> list[ObjectResult]:
    """Each object with its amodal shape (``extra["shape"]``) under the visible masks of the objects in front of it
    (``order[i, j] = +1``: i in front of j) added to its amodal mask; objects without a shape are returned as
    they are."""
    out = []
    for j, obj in enumerate(objects):
        shape = obj.extra.get("shape")
        front = [i for i in np.flatnonzero(order[:, j] > 0) if i != j]
        if shape is None or not front:
            out.append(obj)
            continue
        covered = np.logical_or.reduce([objects[i].visible for i in front])
        amodal = obj.amodal | (shape & covered & ~obj.visible)
        out.append(replace(obj, amodal=amodal, amodal_box=mask_to_box(amodal) or obj.amodal_box))
    return out
