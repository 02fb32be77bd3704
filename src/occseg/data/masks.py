"""Instance masks kept as COCO RLE and decoded only when asked for (pycocotools)."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


class MaskError(ValueError):
    """A segmentation that cannot be decoded (bad polygon or RLE)."""


def _normalise_rle(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects(rle, *rle["size"])
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


#: Largest number of characters of one run length in a compressed RLE (35 bits, far beyond any image size).
_MAX_RUN_CHARS = 7
_VALID_CHARS = bytes(range(48, 112))  # the characters of compressed RLE counts: '0' .. 'o'


def _compressed_counts(counts: bytes) -> np.ndarray:
    """The run lengths of one compressed RLE string (pycocotools' ``rleFrString``), or :class:`MaskError`.

    Each run length is a signed base-32 number written in characters ``'0'`` .. ``'o'`` (5 bits each, bit 6 =
    "more characters follow", bit 5 of the last one = negative); from the fourth on, a value is stored as the
    difference to the run length two places before. Used for the message about one bad mask; many masks are
    checked at once by :func:`invalid_compressed`.
    """
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero((c < 0) | (c > 63))
    if bad.size:
        char = chr(int(c[bad[0]]) + 48)
        raise MaskError(f"compressed counts hold {char!r} at position {int(bad[0])}, outside '0'..'o'")
    more = (c & 0x20) != 0
    if more[-1]:
        raise MaskError("compressed counts end in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_RUN_CHARS:
        raise MaskError("compressed counts hold a number too large for a run length")
    shift = 5 * (np.arange(c.size) - np.repeat(starts, lengths))
    x = np.add.reduceat((c & 0x1F) << shift, starts)
    negative = (c[ends] & 0x10) != 0
    x[negative] -= np.left_shift(1, 5 * lengths[negative])
    if x.size > 3:
        x[3::2] = np.cumsum(x[1::2])[1:]
        x[4::2] = np.cumsum(x[2::2])[1:]
    return x


def _compressed_problem(counts: bytes, height: int, width: int) -> str | None:
    """What is wrong with one compressed RLE string of a ``height`` x ``width`` image, ``None`` if nothing."""
    try:
        runs = _compressed_counts(counts)
    except MaskError as exc:
        return f"invalid RLE mask ({exc})"
    if runs.size and runs.min() < 0:
        k = int(np.argmax(runs < 0))
        return f"invalid RLE mask (negative run length {int(runs[k])} at position {k})"
    return _total_problem(int(runs.sum()), height, width)


def _total_problem(total: int, height: int, width: int) -> str | None:
    if total != height * width:
        return f"invalid RLE mask (counts sum to {total} pixels, the {width}x{height} image has {height * width})"
    return None


def invalid_compressed(counts: Sequence[bytes], pixels: Sequence[int]) -> np.ndarray:
    """For many compressed RLE strings at once: ``True`` where one is not a valid RLE of ``pixels[i]`` pixels.

    The decoding of :func:`_compressed_counts`, vectorised over the concatenation of all strings (a few dozen
    numpy operations in all instead of per mask): characters outside ``'0'``..``'o'``, a string ending inside
    a number, over-long numbers, negative run lengths and run lengths that do not add up to the image size
    all make a string invalid.
    """
    n = len(counts)
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad
    lens = np.fromiter(map(len, counts), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    expected = np.asarray(pixels, dtype=np.int64)
    if offsets[-1] == 0:
        return expected != 0
    buf = b"".join(counts)
    c = np.frombuffer(buf, dtype=np.uint8) - np.uint8(48)  # wraps below '0': caught as > 63
    if buf.translate(None, _VALID_CHARS):  # some character outside '0'..'o'
        wrong = np.flatnonzero(c > 63)
        bad[np.searchsorted(offsets, wrong, side="right") - 1] = True
        c[wrong] = 0
    more = (c & 0x20) != 0
    nonempty = np.flatnonzero(lens > 0)
    last = offsets[nonempty + 1] - 1
    bad[nonempty[more[last]]] = True  # ends in the middle of a number
    more[last] = False  # so that no number runs on into the next string
    ends = np.flatnonzero(~more)  # the last character of each number
    bounds = np.searchsorted(ends, offsets)
    per_string = np.diff(bounds)  # numbers per string
    first_value = bounds[:-1]  # index of each string's first number
    string_of = np.repeat(np.arange(n), per_string)
    i = np.arange(ends.size) - np.repeat(first_value, per_string)  # index of each number in its string
    # a number: base-32 digits, least significant first; bit 5 of the last digit makes it negative
    top = c[ends]
    x = (top & 0x1F).astype(np.int64) - ((top & 0x10).astype(np.int64) << 1)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    multi = np.flatnonzero(ends != starts)  # numbers of more than one character
    if multi.size:
        lo, hi = starts[multi], ends[multi]
        lengths = hi - lo + 1
        if lengths.max() > _MAX_RUN_CHARS:
            bad[string_of[multi[lengths > _MAX_RUN_CHARS]]] = True
            lengths = np.minimum(lengths, _MAX_RUN_CHARS)
        value = x[multi] << (5 * (lengths - 1))
        for k in range(int(lengths.max()) - 1):
            digit = (c[np.minimum(lo + k, hi)] & 0x1F).astype(np.int64) << (5 * k)
            value += np.where(lengths - 1 > k, digit, 0)
        x[multi] = value
    # undo the delta coding (number i >= 3 is stored as the difference to number i - 2 of the same string):
    # the run lengths are running sums over the odd numbers and, from i = 2, the even numbers of a string
    odd = (i & 1).astype(bool)
    z = np.where(i == 0, 0, x)
    cum_odd = np.cumsum(np.where(odd, z, 0))
    cum_even = np.cumsum(np.where(odd, 0, z))
    before = np.clip(first_value - 1, 0, ends.size - 1)
    base_odd = np.where(first_value > 0, cum_odd[before], 0)
    base_even = np.where(first_value > 0, cum_even[before], 0)
    runs = np.where(odd, cum_odd - np.repeat(base_odd, per_string), cum_even - np.repeat(base_even, per_string))
    runs = np.where(i == 0, x, runs)
    negative = runs < 0
    if negative.any():
        bad[string_of[negative]] = True
    totals = np.zeros(n, dtype=np.int64)
    with_values = np.flatnonzero(per_string > 0)
    totals[with_values] = np.add.reduceat(runs, first_value[with_values])
    return bad | (totals != expected)


def _structure_problem(rle: Any, height: int, width: int) -> str | None:
    """The checks of :func:`check_rle` other than decoding a compressed string."""
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        got = f"keys {sorted(rle)}" if isinstance(rle, dict) else type(rle).__name__
        return f"an RLE needs 'size' and 'counts', got {got}"
    size = rle["size"]
    if type(size) is list and len(size) == 2 and type(size[0]) is int and type(size[1]) is int:  # the usual case
        if size[0] != height or size[1] != width:
            return f"RLE size {size} does not match the image size [{height}, {width}]"
    elif (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() for v in size)
    ):
        return f"RLE size must be [height, width], got {size!r}"
    elif [int(size[0]), int(size[1])] != [height, width]:
        return f"RLE size {list(size)} does not match the image size [{height}, {width}]"
    counts = rle["counts"]
    if isinstance(counts, list):
        for v in counts:
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                return f"invalid RLE mask (uncompressed counts must be non-negative integers, got {v!r})"
        return _total_problem(sum(counts), height, width)
    if isinstance(counts, str):
        if not counts.isascii():
            char = next(ch for ch in counts if not ch.isascii())
            return f"invalid RLE mask (compressed counts hold {char!r}, outside '0'..'o')"
        return None
    if isinstance(counts, bytes):
        return None
    return f"invalid RLE mask ('counts' must be a string or a list of integers, got {counts!r:.40})"


def check_rle(rle: Any, height: int, width: int, *, batch: RleBatch | None = None, label: str = "") -> None:
    """Raise :class:`MaskError` unless ``rle`` is a well-formed COCO RLE of a ``height`` x ``width`` image.

    ``size`` must be ``[height, width]``; the run lengths (a compressed string, or a list for uncompressed
    RLE) must be non-negative and add up to ``height * width``. Nothing is rasterised. With ``batch``, a
    compressed string is only queued there (under ``label``) and decoded by :meth:`RleBatch.check` together
    with the others, which is several times faster for files of many masks.
    """
    problem = _structure_problem(rle, height, width)
    if problem is None and isinstance(rle["counts"], (str, bytes)):
        counts = rle["counts"]
        counts = counts.encode("ascii") if isinstance(counts, str) else counts
        if batch is not None:
            batch.add(counts, height, width, label)
            return
        problem = _compressed_problem(counts, height, width)
    if problem is not None:
        raise MaskError(problem)


class RleBatch:
    """Compressed RLE strings queued by :func:`check_rle` while a file is read, checked in one pass."""

    def __init__(self) -> None:
        self._counts: list[bytes] = []
        self._shapes: list[tuple[int, int]] = []
        self._labels: list[str] = []

    def clear(self) -> None:
        self._counts, self._shapes, self._labels = [], [], []

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, counts: bytes, height: int, width: int, label: str) -> None:
        self._counts.append(counts)
        self._shapes.append((height, width))
        self._labels.append(label)

    def check(self, chunk_chars: int = 1 << 22) -> None:
        """Raise :class:`MaskError` ``"{label}: {problem}"`` for the first invalid string queued; empty the batch.
        The strings are checked in order, in runs of about ``chunk_chars`` characters (the vectorised decoding
        holds a few 8-byte numbers per character: a file's worth at once took about 1 GB for 27 M characters)."""
        counts, shapes, labels = self._counts, self._shapes, self._labels
        self.clear()
        ends = np.cumsum([len(c) for c in counts], dtype=np.int64)
        start = 0
        while start < len(counts):
            base = int(ends[start - 1]) if start else 0
            end = max(start + 1, int(np.searchsorted(ends, base + chunk_chars, side="right")))
            bad = np.flatnonzero(invalid_compressed(counts[start:end], [h * w for h, w in shapes[start:end]]))
            if bad.size:
                k = start + int(bad[0])
                problem = _compressed_problem(counts[k], *shapes[k]) or "invalid RLE mask"
                raise MaskError(f"{labels[k]}: {problem}" if labels[k] else problem)
            start = end


# ------------------------------------------------------------------------------------------------ polygons

#: Polygons whose rings add up to less area than this (pixels) are rasterised to tell whether they cover a pixel.
SMALL_POLYGON_AREA = 1.0


def polygon_bounds(height: int, width: int) -> tuple[float, float, float, float]:
    """``(x_min, y_min, x_max, y_max)`` that polygon vertices must lie in: the ``height`` x ``width`` image grown
    by one image width (x) and height (y) on every side, ``[-width, 2 * width] x [-height, 2 * height]``."""
    return (-float(width), -float(height), 2.0 * width, 2.0 * height)


def polygon_problem(polys: Sequence[Sequence[float]], height: int, width: int) -> str | None:
    """What makes COCO polygons (flat ``[x1, y1, x2, y2, ...]`` lists) unsafe to rasterise, ``None`` if nothing.

    Refused: a polygon with an odd number of coordinates, a coordinate that is not a finite number, and a
    vertex more than one image width (x) or height (y) beyond the border, i.e. outside :func:`polygon_bounds`
    ``[-width, 2 * width] x [-height, 2 * height]``. Such vertices are not clipped: moving one changes the
    edges to it inside the image, so the mask would be made up. Vertices a little outside the image are common
    and pass. pycocotools allocates memory in proportion to the polygon's extent, so a vertex at 1e9 asked for
    gigabytes or crashed the process, and a NaN crashed it; :func:`segmentation_to_rle` therefore refuses
    polygons this finds a problem with, and the readers skip their annotations with a warning.
    """
    x_lo, y_lo, x_hi, y_hi = polygon_bounds(height, width)
    for k, p in enumerate(polys):
        if len(p) % 2:
            return f"polygon {k} has an odd number of coordinates ({len(p)})"
        try:  # the usual case, at C speed: a NaN or an infinity makes the sum non-finite
            xs, ys = p[0::2], p[1::2]
            if math.isfinite(sum(p)) and x_lo <= min(xs, default=0) and max(xs, default=0) <= x_hi:
                if y_lo <= min(ys, default=0) and max(ys, default=0) <= y_hi:
                    continue
        except TypeError:
            pass
        problem = _vertex_problem(k, p, height, width)
        if problem is not None:
            return problem
    return None


def _vertex_problem(k: int, poly: Sequence[float], height: int, width: int) -> str | None:
    """The first vertex of polygon ``k`` that :func:`polygon_problem` refuses, ``None`` if none is."""
    if not all(isinstance(c, (int, float, np.integer, np.floating)) for c in poly):
        return f"polygon {k} holds coordinates that are not numbers: {list(poly)!r:.80}"
    v = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    x_lo, y_lo, x_hi, y_hi = polygon_bounds(height, width)
    finite = np.isfinite(v).all(axis=1)
    inside = (v[:, 0] >= x_lo) & (v[:, 0] <= x_hi) & (v[:, 1] >= y_lo) & (v[:, 1] <= y_hi)
    bad = np.flatnonzero(~(finite & inside))
    if bad.size == 0:
        return None
    j = int(bad[0])
    vertex = f"polygon {k} vertex {j} ({v[j, 0]:g}, {v[j, 1]:g})"
    if not finite[j]:
        return f"{vertex} is not finite"
    return (
        f"{vertex} lies too far outside the {width}x{height} image (vertices must lie within one image width / "
        f"height of its border: x in [{x_lo:g}, {x_hi:g}], y in [{y_lo:g}, {y_hi:g}])"
    )


def _ring_area(poly: Sequence[float]) -> float:
    """The area enclosed by one polygon ring (shoelace formula; a self-crossing ring's lobes may cancel).

    Summed with ``map`` rather than numpy: several times faster for the few dozen vertices of a typical ring.
    """
    xs, ys = list(poly[0::2]), list(poly[1::2])
    twice = sum(map(operator.mul, xs, ys[1:] + ys[:1])) - sum(map(operator.mul, xs[1:] + xs[:1], ys))
    return abs(float(twice)) / 2.0


def _ring_outside(poly: Sequence[float], height: int, width: int) -> bool:
    """Whether the extent of one ring's vertices misses the image (touching its border from outside included)."""
    xs, ys = poly[0::2], poly[1::2]
    return max(xs) <= 0 or min(xs) >= width or max(ys) <= 0 or min(ys) >= height


def empty_polygon_reason(polys: Sequence[Sequence[float]], height: int, width: int) -> str | None:
    """Why polygons (that passed :func:`polygon_problem`) cover no pixel of the image, ``None`` when they cover
    some or cannot cheaply be told to cover none.

    ``"lies entirely outside the WxH image"`` when the vertex extent of every ring misses the image;
    ``"covers no pixel (area A)"`` when the rings add up to less than :data:`SMALL_POLYGON_AREA` (collinear
    vertices: area 0) and rasterising them gives no pixel. Larger polygons are not rasterised, so that reading
    stays cheap: a long sliver between two rows of pixel centres is not noticed here. Rings of fewer than
    three vertices are ignored, as :func:`segmentation_to_rle` ignores them.
    """
    rings = [p for p in polys if len(p) >= 6]
    if not rings:
        return None
    if all(_ring_outside(p, height, width) for p in rings):
        return f"lies entirely outside the {width}x{height} image"
    area = sum(_ring_area(p) for p in rings)
    if area < SMALL_POLYGON_AREA and int(mask_utils.area(segmentation_to_rle(rings, height, width))) == 0:
        return f"covers no pixel (area {area:g})"
    return None


def segmentation_to_rle(segm: Any, height: int, width: int) -> dict[str, Any]:
    """COCO polygons (list of flat lists), uncompressed or compressed RLE to one compressed RLE.

    Polygons go to pycocotools only after :func:`polygon_problem` found nothing wrong with them; otherwise,
    and for a segmentation pycocotools cannot decode, this raises :class:`MaskError`.
    """
    try:
        if isinstance(segm, dict):
            rle = _normalise_rle(segm)
            if list(rle["size"]) != [height, width]:
                raise MaskError(f"RLE size {rle['size']} does not match the image size {[height, width]}")
            return rle
        if isinstance(segm, Sequence) and not isinstance(segm, (str, bytes)):
            problem = polygon_problem(segm, height, width)
            if problem is not None:
                raise MaskError(f"cannot decode segmentation: {problem}")
            polys = [list(map(float, p)) for p in segm if len(p) >= 6]
            if not polys:
                return encode(np.zeros((height, width), dtype=bool))
            rles = mask_utils.frPyObjects(polys, height, width)
            return mask_utils.merge(rles)
    except MaskError:
        raise
    except Exception as exc:  # pycocotools raises plain Exceptions / TypeErrors
        raise MaskError(f"cannot decode segmentation: {exc}") from exc
    raise MaskError(f"unknown segmentation type {type(segm).__name__}")


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Boolean ``(H, W)`` array to compressed RLE."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Compressed RLE to a boolean ``(H, W)`` array."""
    return mask_utils.decode(rle).astype(bool)


def rle_to_json(rle: dict[str, Any]) -> dict[str, Any]:
    """An RLE with ``counts`` as ``str``, ready for ``json.dump``."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


class LazyMask:
    """A mask held as its source segmentation and turned into RLE / a dense array on demand.

    The dense array is never cached, so a large dataset stays small in memory.
    """

    __slots__ = ("_segm", "_rle", "height", "width")

    def __init__(self, segm: Any, height: int, width: int) -> None:
        self._segm = segm
        self._rle: dict[str, Any] | None = None
        self.height = int(height)
        self.width = int(width)

    @classmethod
    def from_array(cls, mask: np.ndarray) -> LazyMask:
        m = cls(None, mask.shape[0], mask.shape[1])
        m._rle = encode(mask)
        return m

    @classmethod
    def from_rle(cls, rle: dict[str, Any]) -> LazyMask:
        m = cls(None, rle["size"][0], rle["size"][1])
        m._rle = _normalise_rle(rle)
        return m

    @property
    def rle(self) -> dict[str, Any]:
        if self._rle is None:
            self._rle = segmentation_to_rle(self._segm, self.height, self.width)
            self._segm = None
        return self._rle

    def decode(self) -> np.ndarray:
        return decode(self.rle)

    def area(self) -> int:
        return int(mask_utils.area(self.rle))

    def to_json(self) -> dict[str, Any]:
        return rle_to_json(self.rle)

    def __repr__(self) -> str:
        return f"LazyMask({self.height}x{self.width})"


def rle_intersection_area(a: dict[str, Any], b: dict[str, Any]) -> int:
    """|a ∩ b| in pixels, computed on the RLEs."""
    return int(mask_utils.area(mask_utils.merge([a, b], intersect=True)))
