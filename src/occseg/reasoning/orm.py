"""The Occlusion Reasoning Module (method.md §B): the objects of one image explained together.

1. feed-forward class and mixture of every object (reusing its one backbone pass);
2. conflicts: pixels two objects both claim as visible;
3. competition: each conflicted pixel goes to the object whose object term wins there by the larger margin;
4. order: the object holding more of a pair's conflict is in front; in ``od`` mode the whole conflict goes
   to it, in ``nod`` mode each pixel stays with its winner;
5. the pixels an object lost become its occlusion prior: it is re-classified with them masked out
   (class and mixture may change) and its masks are recomputed (the lost pixels are occluded, and stay
   inside its amodal mask);
6. repeated ``reasoning_iters`` times, stopping early when nothing changes;
7. depth layers per group of overlapping objects from the pairwise relations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occseg.compnet.model import CompNetModel
from occseg.geometry.boxes import resample_cells_to_image
from occseg.inference.single import ObjectResult, ObjectState, classify, finish_object, occlusion_cells
from occseg.reasoning.order import scene_layers


def _window_union(a: ObjectState, b: ObjectState) -> tuple[slice, slice] | None:
    ax1, ay1, ax2, ay2 = a.window.window
    bx1, by1, bx2, by2 = b.window.window
    x1, y1, x2, y2 = max(ax1, bx1), max(ay1, by1), min(ax2, bx2), min(ay2, by2)
    if x2 <= x1 or y2 <= y1:
        return None
    return slice(y1, y2), slice(x1, x2)


def resolve_conflicts(
    visible: Sequence[np.ndarray], strength: Sequence[np.ndarray], mode: str, windows: Sequence[tuple | None]
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict]:
    """Pairwise competition over the pixels two objects both claim.

    ``visible[n]``: boolean masks; ``strength[n]``: how strongly object n claims each pixel (its signed
    object margin). ``windows[i][j]``: the region where i and j can overlap (``None``: they cannot).
    Returns each object's lost pixels, the order matrix, the relation confidences and per-pair counts.
    """
    n = len(visible)
    lost = [np.zeros_like(v) for v in visible]
    order = np.zeros((n, n), dtype=np.int8)
    conf = np.zeros((n, n), dtype=np.float64)
    counts: dict = {}
    for i in range(n):
        for j in range(i + 1, n):
            win = windows[i][j]
            if win is None:
                continue
            vi, vj = visible[i][win], visible[j][win]
            c = vi & vj
            nc = int(c.sum())
            if nc == 0:
                continue
            si, sj = strength[i][win], strength[j][win]
            i_wins = c & (si > sj)
            j_wins = c & (sj > si)
            ni, nj = int(i_wins.sum()), int(j_wins.sum())
            counts[f"{i}-{j}"] = {"conflict": nc, "won_by_first": ni, "won_by_second": nj}
            if ni == nj:
                front = None
            else:
                front = i if ni > nj else j
                order[i, j] = 1 if front == i else -1
                order[j, i] = -order[i, j]
                conf[i, j] = conf[j, i] = abs(ni - nj) / nc
            if mode == "od" and front is not None:
                back = j if front == i else i
                lost[back][win] |= c
            else:
                lost[i][win] |= j_wins
                lost[j][win] |= i_wins
    return lost, order, conf, counts


def reason(
    model: CompNetModel,
    states: list[ObjectState],
    cfg,
    given: Sequence[str | None],
) -> object:
    """Run the ORM over the objects of one image (see the module docstring); returns a SceneResult."""
    from occseg.inference.scene import SceneResult

    n = len(states)
    windows = [[_window_union(states[i], states[j]) if i != j else None for j in range(n)] for i in range(n)]
    labels: list[tuple[str, int, float, dict]] = [
        classify(model, st, given_label=given[k]) for k, st in enumerate(states)
    ]
    history: list[dict] = []
    lost: list[np.ndarray] | None = None
    order = np.zeros((n, n), dtype=np.int8)
    conf = np.zeros((n, n))
    cache: dict[tuple[int, str, int], ObjectResult] = {}
    for it in range(cfg.reasoning_iters):
        raw = []
        for k, st in enumerate(states):
            key = (k, labels[k][0], labels[k][1])
            if key not in cache:
                cache[key] = finish_object(model, st, *labels[k])
            raw.append(cache[key])
        strength = [
            resample_cells_to_image(
                np.where(r.labels == 1, r.margin, -r.margin).astype(np.float32),
                st.window,
                st.stride,
                *st.image_size,
                fill=-1e3,
            )
            for r, st in zip(raw, states)
        ]
        new_lost, order, conf, counts = resolve_conflicts([r.visible for r in raw], strength, cfg.reasoning, windows)
        new_labels = []
        for k, st in enumerate(states):
            occ = {name: occlusion_cells(st, new_lost[k], name) for name in st.terms}
            new_labels.append(classify(model, st, occluded=occ, given_label=given[k]))
        changed_cls = sum(a[:2] != b[:2] for a, b in zip(labels, new_labels))
        same_lost = lost is not None and all(np.array_equal(a, b) for a, b in zip(lost, new_lost))
        history.append({"iteration": it + 1, "pairs": counts, "reclassified": changed_cls})
        lost, labels = new_lost, new_labels
        if same_lost and changed_cls == 0:
            break
    objects = []
    for k, st in enumerate(states):
        raw_k = finish_object(model, st, *labels[k])
        res = finish_object(model, st, *labels[k], occluded_pixels=lost[k] if lost else None)
        if lost is not None:
            # the pixels lost to an object in front are this object's occluded part: still inside its amodal mask
            res.amodal = res.amodal | (lost[k] & raw_k.visible) | res.visible
        res.extra["reasoning"] = {"occluded_pixels": int(lost[k].sum()) if lost else 0}
        objects.append(res)
    layers, groups, rep = scene_layers(order, conf)
    rep["iterations"] = history
    return SceneResult(objects=objects, order=order, layers=layers, groups=groups, report=rep)
