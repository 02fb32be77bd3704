"""Scene order: pairwise relations -> depth layers per group of overlapping objects.

``order[i, j] = +1`` means object i is in front of object j, ``-1`` behind, ``0`` unrelated.
Layers come from a topological sort of the "in front of" graph inside each connected group. Cycles are broken
by dropping, one at a time, the least confident relation that lies on any cycle (so the result does not depend
on how the objects are numbered), and the dropped relations are reported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from occseg.data.occlusion_order import dense_order_matrix


def order_from_masks(objects: Sequence) -> np.ndarray:
    """The order matrix of objects with boolean ``visible`` / ``amodal`` image arrays, by the evaluation's rule
    (:func:`occseg.data.occlusion_order.dense_order_matrix`): with ``o_ij = |V_i ∩ A_j|``, i is in front of j
    when ``o_ij > o_ji``; 0 when the amodal masks do not overlap or on an exact tie (``o_ij == o_ji``, e.g. two
    objects that both claim their whole overlap): no order, whatever the objects' order in the list."""
    try:
        return dense_order_matrix([o.visible for o in objects], [o.amodal for o in objects])
    except ValueError as exc:
        raise ValueError(f"order_from_masks: {exc}") from exc


def connected_groups(linked: np.ndarray) -> list[int]:
    """Group id of every node of an ``(N, N)`` graph (non-zero = linked, either direction), numbered 0, 1, ...
    in the order of each group's first node."""
    n = linked.shape[0]
    if n == 0:
        return []
    _, labels = connected_components(csr_matrix(np.asarray(linked) != 0), directed=False)
    relabel = {int(r): k for k, r in enumerate(dict.fromkeys(labels.tolist()))}
    return [relabel[int(r)] for r in labels]


def scene_layers(order: np.ndarray, confidence: np.ndarray) -> tuple[list[int], list[int], dict]:
    """Depth layer (0 = front) of every object within its connected group, the group ids, and a report
    with the relations dropped to break cycles (``broken``: list of ``[front, behind, confidence]``)."""
    n = order.shape[0]
    edges = {(int(i), int(j)): float(confidence[i, j]) for i, j in zip(*np.nonzero(order > 0))}
    edges, broken = _break_cycles(n, edges)
    layers = [0] * n
    # longest path from a source: an object is one layer behind the deepest object in front of it
    indeg = [0] * n
    behind: list[list[int]] = [[] for _ in range(n)]  # each object's own relations: no pass over all of them
    for a, j in edges:
        indeg[j] += 1
        behind[a].append(j)
    ready = [i for i in range(n) if indeg[i] == 0]
    while ready:
        i = ready.pop()
        for b in behind[i]:
            layers[b] = max(layers[b], layers[i] + 1)
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    return layers, connected_groups(order), {"broken_cycles": broken}


def _break_cycles(
    n: int, edges: dict[tuple[int, int], float]
) -> tuple[dict[tuple[int, int], float], list[list[float]]]:
    """Drop relations until no cycle is left: each time the least confident relation on any cycle (which one that
    is does not depend on how the objects are numbered; only exact ties fall back to the indices). Returns the
    relations kept (in their order) and the dropped ones ``[front, behind, confidence]`` in the order dropped.
    The relations are arrays: one pass of strongly connected components and a vectorised pick per drop, so
    thousands of drops among thousands of relations take seconds, not minutes."""
    keys = list(edges)
    if not keys:
        return edges, []
    rows = np.array([a for a, _ in keys])
    cols = np.array([b for _, b in keys])
    conf = np.array([edges[k] for k in keys], dtype=np.float64)
    alive = np.ones(len(keys), dtype=bool)
    broken: list[list[float]] = []
    while True:
        idx = np.flatnonzero(alive)
        graph = csr_matrix((np.ones(idx.size), (rows[idx], cols[idx])), shape=(n, n))
        _, comp = connected_components(graph, directed=True, connection="strong")
        cyclic = idx[comp[rows[idx]] == comp[cols[idx]]]
        if cyclic.size == 0:
            break
        weakest = cyclic[np.lexsort((cols[cyclic], rows[cyclic], conf[cyclic]))[0]]
        broken.append([int(rows[weakest]), int(cols[weakest]), float(conf[weakest])])
        alive[weakest] = False
    return {keys[k]: edges[keys[k]] for k in np.flatnonzero(alive)}, broken
