"""Placing cut-outs on a background so that each object reaches a chosen occlusion level, exactly.

Objects are placed **front to back**: the first object placed is the front-most, and every later object goes
behind all earlier ones. An object's occlusion therefore depends only on the objects placed before it, and is
known exactly when it is placed: for a cut-out mask ``M`` (area ``a``) and the union ``U`` of the amodal masks
in front, the pixels hidden at offset ``(x, y)`` are ``sum(M * U[y:y+h, x:x+w])``. That count is computed for
every offset at once (an FFT cross-correlation, rounded to integers), the offsets whose fraction falls in the
target level are kept, and the drawn offset is checked again pixel-exactly before use. Offsets keep the whole
object inside the image, so amodal masks are never clipped.

The image is then pasted back to front with hard masks, so the visible mask of an object is exactly its amodal
mask minus the union of the amodal masks in front of it, and exactly the pixels that show it.

Clusters (KINS ``oco_id``) are the connected groups of objects whose amodal masks overlap; ``ico_id`` is the
depth rank inside the cluster, 0 = front-most (objects of different clusters never overlap, so the ranks
inside each cluster determine every visible mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from occseg.challenge.objects import CutOut
from occseg.data.annotation import OCCLUSION_LEVELS
from occseg.reasoning.order import connected_groups

SCENARIOS: tuple[str, ...] = ("2obj", "4obj", "2obj_unknown")
LEVELS: tuple[str, ...] = tuple(OCCLUSION_LEVELS)


@dataclass(frozen=True)
class PlacementConfig:
    """How objects are sized and placed."""

    object_height: tuple[float, float] = (0.3, 0.7)  # drawn object height, as a fraction of the output height
    max_upscale: float = 3.0  # never enlarge a cut-out more than this
    min_object_height: int = 24  # pixels in the output
    shrink: float = 0.85  # each failed attempt multiplies the drawn height by this
    max_tries: int = 24  # attempts per object and level
    free_max_fraction: float = 0.5  # occlusion allowed for objects without a target level (extra occluders)
    contact_probability: float = 0.5  # for L0 behind others: prefer a slight overlap (0 < fraction < 0.01)
    unknown_count: tuple[int, int] = (1, 2)  # unknown occluders per 2obj_unknown image (inclusive range)


@dataclass(frozen=True)
class Slot:
    """One object to place: its role and the occlusion levels it may take (``None``: none chosen)."""

    role: str  # "target" or "unknown"
    levels: tuple[str, ...] | None


@dataclass
class ComposedObject:
    """One object of a composed image with its exact masks (full-image bool arrays)."""

    cutout: CutOut
    depth: int  # 0 = front-most in the image
    amodal: np.ndarray
    visible: np.ndarray
    occ_fraction: float
    cluster: int = 0  # 1-based, per image (KINS oco_id)
    order: int = 0  # depth rank inside the cluster, 0 = front (KINS ico_id)
    target_level: str | None = None
    placement: dict[str, Any] = field(default_factory=dict)


@dataclass
class ComposedImage:
    image: np.ndarray  # (H, W, 3) uint8
    scenario: str
    objects: list[ComposedObject]  # front-most first


class ObjectPool:
    """Cut-outs drawn so that all get used about equally often (least used first, ties at random)."""

    def __init__(self, cutouts: Sequence[CutOut]) -> None:
        if not cutouts:
            raise ValueError("an object pool needs at least one cut-out")
        self.items = list(cutouts)
        self.uses = np.zeros(len(self.items), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def pick(
        self, rng: np.random.Generator, *, avoid: frozenset[str] | set[str] = frozenset(), spread: bool = False
    ) -> CutOut:
        """A cut-out not in ``avoid`` (by key) where possible; the least used unless ``spread`` (any)."""
        idx = np.array([i for i, c in enumerate(self.items) if c.key not in avoid], dtype=np.int64)
        if idx.size == 0:
            idx = np.arange(len(self.items))
        if not spread:
            u = self.uses[idx]
            idx = idx[u == u.min()]
        return self.items[int(idx[int(rng.integers(idx.size))])]

    def commit(self, used: Sequence[CutOut]) -> None:
        pos = {c.key: i for i, c in enumerate(self.items)}
        for c in used:
            if c.key in pos:
                self.uses[pos[c.key]] += 1


class LevelBalancer:
    """Counts of target objects per scenario and level; proposes the least-populated levels first."""

    def __init__(self, scenarios: Sequence[str] = SCENARIOS) -> None:
        self.counts: dict[str, dict[str, int]] = {s: {lv: 0 for lv in LEVELS} for s in scenarios}

    def preferences(
        self, scenario: str, slots: Sequence[Slot], rng: np.random.Generator
    ) -> list[tuple[str, ...] | None]:
        """For each slot, its allowed levels ordered least-populated first (counting earlier slots' first choice)."""
        pending = dict(self.counts[scenario])
        out: list[tuple[str, ...] | None] = []
        for slot in slots:
            if slot.levels is None:
                out.append(None)
                continue
            keys = rng.random(len(slot.levels))
            order = sorted(range(len(slot.levels)), key=lambda i: (pending[slot.levels[i]], keys[i]))
            prefs = tuple(slot.levels[i] for i in order)
            if slot.role == "target":
                pending[prefs[0]] += 1
            out.append(prefs)
        return out

    def add(self, scenario: str, level: str | None) -> None:
        if level is not None:
            self.counts[scenario][level] += 1


def scenario_slots(scenario: str, rng: np.random.Generator, config: PlacementConfig) -> list[Slot]:
    """The objects of a scenario, front-most first.

    - ``2obj``: a target in front and a target behind it at L1-L3 (so one occludes the other);
    - ``4obj``: a target in front and three targets behind, each at any level L0-L3;
    - ``2obj_unknown``: 1-2 unknown occluders in front, then two targets at any level L0-L3.
    """
    if scenario == "2obj":
        return [Slot("target", None), Slot("target", LEVELS[1:])]
    if scenario == "4obj":
        return [Slot("target", None)] + [Slot("target", LEVELS)] * 3
    if scenario == "2obj_unknown":
        lo, hi = config.unknown_count
        n = int(rng.integers(lo, hi + 1))
        return [Slot("unknown", None)] * n + [Slot("target", LEVELS)] * 2
    raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")


def scale_cutout(cutout: CutOut, height: int, width: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out resized to ``height x width`` (and mirrored): RGB and a hard mask (alpha >= 0.5)."""
    interp = cv2.INTER_AREA if height < cutout.height else cv2.INTER_LINEAR
    rgb = cv2.resize(cutout.rgb, (width, height), interpolation=interp)
    alpha = cv2.resize(cutout.mask.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR)
    mask = alpha >= 128
    if flip:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(rgb), np.ascontiguousarray(mask)


def covered_counts(front: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``counts[y, x] = |mask ∩ front[y:y+h, x:x+w]|`` for every offset keeping the mask inside the image.

    Shape ``(H - h + 1, W - w + 1)``; vectorised (FFT cross-correlation in float64, rounded to integers).
    """
    H, W = front.shape
    h, w = mask.shape
    if h > H or w > W:
        return np.zeros((0, 0), dtype=np.int64)
    if not front.any():
        return np.zeros((H - h + 1, W - w + 1), dtype=np.int64)
    from scipy.signal import correlate  # here: importing scipy.signal takes ~0.7 s, which every command would pay

    c = correlate(front.astype(np.float64), mask.astype(np.float64), mode="valid", method="fft")
    return np.rint(c).astype(np.int64)


def exact_covered(front: np.ndarray, mask: np.ndarray, x: int, y: int) -> int:
    h, w = mask.shape
    return int(np.count_nonzero(front[y : y + h, x : x + w] & mask))


def find_offset(
    front: np.ndarray,
    mask: np.ndarray,
    frac_range: tuple[float, float],
    rng: np.random.Generator,
    *,
    prefer_contact: bool = False,
) -> tuple[int, int, int] | None:
    """A random offset ``(x, y, covered)`` where ``covered / |mask|`` lies in ``[lo, hi)``, or ``None``.

    The fraction is the one :meth:`Instance.occlusion_fraction` will compute (same float division). With
    ``prefer_contact`` offsets with some (but in-range) overlap are preferred when there are any.
    """
    area = int(np.count_nonzero(mask))
    if area == 0:
        return None
    counts = covered_counts(front, mask)
    if counts.size == 0:
        return None
    lo, hi = frac_range
    frac = counts / float(area)
    ok = (frac >= lo) & (frac < hi)
    if prefer_contact:
        touching = ok & (counts > 0)
        if touching.any():
            ok = touching
    idx = np.flatnonzero(ok)
    for _ in range(4):  # the rounded FFT counts are exact in practice; check the drawn offset anyway
        if idx.size == 0:
            return None
        j = int(idx[int(rng.integers(idx.size))])
        y, x = divmod(j, counts.shape[1])
        cov = exact_covered(front, mask, x, y)
        if lo <= cov / float(area) < hi:
            return x, y, cov
        idx = idx[idx != j]
    return None


def _draw_size(
    cutout: CutOut, out_size: tuple[int, int], attempt: int, rng: np.random.Generator, config: PlacementConfig
) -> tuple[int, int]:
    out_w, out_h = out_size
    lo, hi = config.object_height
    h = float(rng.uniform(lo, hi)) * out_h
    h = min(h, cutout.height * config.max_upscale) * (config.shrink**attempt)
    h = max(h, float(config.min_object_height))
    s = h / cutout.height
    s = min(s, 0.95 * out_w / cutout.width, 0.95 * out_h / cutout.height)
    return max(1, int(round(cutout.height * s))), max(1, int(round(cutout.width * s)))


def clusters_and_orders(amodal: Sequence[np.ndarray]) -> tuple[list[int], list[int]]:
    """Cluster id (1-based, numbered by front-most member) and rank inside the cluster for masks in depth order."""
    n = len(amodal)
    overlap = np.array([[i != j and bool(np.any(amodal[i] & amodal[j])) for j in range(n)] for i in range(n)])
    groups = connected_groups(overlap.reshape(n, n))  # numbered by each group's first (front-most) member
    clusters = [g + 1 for g in groups]
    members: dict[int, int] = {}
    orders: list[int] = []
    for g in groups:  # depth order: the first member seen is the front-most
        orders.append(members.get(g, 0))
        members[g] = orders[-1] + 1
    return clusters, orders


def visible_masks(amodal: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Visible mask of each object (masks in depth order, front first): amodal minus everything in front."""
    covered = np.zeros_like(amodal[0], dtype=bool) if amodal else None
    out = []
    for a in amodal:
        out.append(a & ~covered)
        covered = covered | a
    return out


def compose(
    background: np.ndarray,
    scenario: str,
    slots: Sequence[Slot],
    preferences: Sequence[tuple[str, ...] | None],
    targets: ObjectPool,
    unknowns: ObjectPool | None,
    rng: np.random.Generator,
    config: PlacementConfig = PlacementConfig(),
) -> ComposedImage | None:
    """Place the slots front to back on ``background``; ``None`` when some slot cannot be placed.

    ``preferences[k]`` lists the levels slot ``k`` may take in the order to try them (``None``: no level,
    the front-most object goes anywhere and later free objects up to ``free_max_fraction``).
    """
    H, W = background.shape[:2]
    front = np.zeros((H, W), dtype=bool)
    layers: list[_Layer] = []
    used: set[str] = set()
    for slot, prefs in zip(slots, preferences):
        pool = targets if slot.role == "target" else unknowns
        if pool is None:
            raise ValueError(f"scenario {scenario!r} needs unknown occluders, but there are none")
        ranges: list[tuple[str | None, tuple[float, float]]]
        if prefs is None:
            ranges = [(None, (0.0, config.free_max_fraction if front.any() else 1.0))]
        else:
            ranges = [(lv, OCCLUSION_LEVELS[lv]) for lv in prefs]
        layer = _place(front, pool, ranges, used, rng, config)
        if layer is None:
            return None
        front[layer.y : layer.y + layer.mask.shape[0], layer.x : layer.x + layer.mask.shape[1]] |= layer.mask
        used.add(layer.cutout.key)
        layers.append(layer)

    amodal = []
    for layer in layers:
        a = np.zeros((H, W), dtype=bool)
        a[layer.y : layer.y + layer.mask.shape[0], layer.x : layer.x + layer.mask.shape[1]] = layer.mask
        amodal.append(a)
    visible = visible_masks(amodal)
    clusters, orders = clusters_and_orders(amodal)
    canvas = background.copy()
    for layer in reversed(layers):  # back to front
        region = canvas[layer.y : layer.y + layer.mask.shape[0], layer.x : layer.x + layer.mask.shape[1]]
        region[layer.mask] = layer.rgb[layer.mask]
    objects = []
    for k, (layer, a, v) in enumerate(zip(layers, amodal, visible)):
        area = int(np.count_nonzero(a))
        occ = float(area - int(np.count_nonzero(v))) / float(area)
        if not layer.cutout.unknown and occ >= 0.9:
            return None
        objects.append(
            ComposedObject(
                cutout=layer.cutout,
                depth=k,
                amodal=a,
                visible=v,
                occ_fraction=occ,
                cluster=clusters[k],
                order=orders[k],
                target_level=layer.level,
                placement=layer.info,
            )
        )
    targets.commit([o.cutout for o in objects if not o.cutout.unknown])
    if unknowns is not None:
        unknowns.commit([o.cutout for o in objects if o.cutout.unknown])
    return ComposedImage(image=canvas, scenario=scenario, objects=objects)


@dataclass
class _Layer:
    cutout: CutOut
    rgb: np.ndarray  # scaled (and mirrored) pixels
    mask: np.ndarray  # scaled hard mask
    x: int
    y: int
    level: str | None
    info: dict[str, Any]


def _place(
    front: np.ndarray,
    pool: ObjectPool,
    ranges: Sequence[tuple[str | None, tuple[float, float]]],
    used: set[str],
    rng: np.random.Generator,
    config: PlacementConfig,
) -> _Layer | None:
    """One object behind ``front``: levels in order, ``max_tries`` draws (object, size, flip, offset) each."""
    H, W = front.shape
    for level, frac_range in ranges:
        for attempt in range(config.max_tries):
            cut = pool.pick(rng, avoid=used, spread=attempt >= 3)
            h, w = _draw_size(cut, (W, H), attempt, rng, config)
            flip = bool(rng.random() < 0.5)
            rgb, mask = scale_cutout(cut, h, w, flip)
            contact = level == "L0" and front.any() and bool(rng.random() < config.contact_probability)
            found = find_offset(front, mask, frac_range, rng, prefer_contact=contact)
            if found is None:
                continue
            x, y, _ = found
            # where the scaled cut-out was pasted: x1, y1, x2, y2 image pixels, as every box occseg writes
            info = {"paste_box": [x, y, x + w, y + h], "scale": round(h / cut.height, 6), "flip": flip}
            return _Layer(cut, rgb, mask, x, y, level, info)
    return None
