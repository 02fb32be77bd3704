"""The occlusion order of an image's objects from their masks: one rule (docs/method.md §E), for RLE masks (the
evaluation's ground truth and predictions) and for dense boolean arrays (a scene's masks).

With ``o_ij = |V_i ∩ A_j|`` (the part of j's amodal mask that i's visible mask covers), i is in front of j when
``o_ij > o_ji``. ``order[i, j] = +1`` when i is in front of j, ``-1`` when behind, ``0`` when their amodal
masks do not overlap or on an exact tie ``o_ij == o_ji`` (neither covers the other's amodal mask, or both
equally). The matrix is antisymmetric.

The paper's evaluation code calls i behind j on a tie, which makes the result depend on the order the objects
are listed in: predictions whose masks overlap without any reasoning (all ties) would score on a listing that
happens to put objects behind first, and score 0 on one that puts them in front first. Exact ground-truth masks
never tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from occseg.data.masks import LazyMask, rle_intersection_area
from occseg.geometry.boxes import mask_to_box


def occlusion_order(n: int, meet: Callable[[int, int], bool], covers: Callable[[int, int], int]) -> np.ndarray:
    """The rule over ``n`` objects: ``meet(i, j)`` whether their amodal masks overlap, ``covers(i, j)`` is
    ``o_ij = |V_i ∩ A_j|``; an ``(n, n)`` int8 matrix."""
    order = np.zeros((n, n), dtype=np.int8)
    for i in range(n):
        for j in range(i + 1, n):
            if not meet(i, j):
                continue
            o_ij, o_ji = covers(i, j), covers(j, i)
            if o_ij == o_ji:  # neither covers the other's amodal mask, or both equally: no order
                continue
            order[i, j] = 1 if o_ij > o_ji else -1
            order[j, i] = -order[i, j]
    return order


def pairwise_order_matrix(visible: Sequence[LazyMask], amodal: Sequence[LazyMask]) -> np.ndarray:
    """:func:`occlusion_order` of RLE masks (their intersections counted on the RLE, never decoded)."""
    n = len(visible)
    if len(amodal) != n:
        raise ValueError(f"{n} visible masks but {len(amodal)} amodal masks")
    return occlusion_order(
        n,
        lambda i, j: rle_intersection_area(amodal[i].rle, amodal[j].rle) > 0,
        lambda i, j: rle_intersection_area(visible[i].rle, amodal[j].rle),
    )


def dense_order_matrix(visible: Sequence[np.ndarray], amodal: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`occlusion_order` of boolean image arrays (all of one shape), counted inside the window where two
    objects' boxes meet (the only place their masks can)."""
    vis = [np.asarray(v, bool) for v in visible]
    amo = [np.asarray(a, bool) for a in amodal]
    if len(amo) != len(vis):
        raise ValueError(f"{len(vis)} visible masks but {len(amo)} amodal masks")
    shapes = {m.shape for m in vis + amo}
    if len(shapes) > 1:
        raise ValueError(f"the masks must all have one image's shape, got {sorted(shapes)}")
    boxes = [mask_to_box(a | v) for a, v in zip(amo, vis)]

    def window(i: int, j: int) -> tuple[slice, slice] | None:
        if boxes[i] is None or boxes[j] is None:
            return None
        x1, y1 = int(max(boxes[i][0], boxes[j][0])), int(max(boxes[i][1], boxes[j][1]))
        x2, y2 = int(min(boxes[i][2], boxes[j][2])), int(min(boxes[i][3], boxes[j][3]))
        return None if y2 <= y1 or x2 <= x1 else (slice(y1, y2), slice(x1, x2))

    def meet(i: int, j: int) -> bool:
        win = window(i, j)
        return win is not None and bool((amo[i][win] & amo[j][win]).any())

    def covers(i: int, j: int) -> int:
        win = window(i, j)
        return 0 if win is None else int(np.count_nonzero(vis[i][win] & amo[j][win]))

    return occlusion_order(len(vis), meet, covers)
