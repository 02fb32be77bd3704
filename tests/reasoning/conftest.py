"""A hand-built CompositionalNet and constructed scenes for the Occlusion Reasoning Module's tests.

Everything is small enough to compute by hand:

* 4 visual concepts, one per feature channel (one-hot features): ``A`` (texture of class ``a``), ``B``
  (texture of class ``b``), ``BG`` (background), ``X`` (clutter); ``kappa = 10``, so a cell's log activation
  is 10 for its own concept and 0 for the others.
* Stride 16, target height 64 and pad 16: a 64-px high box is cut at scale 1, its crop is the box plus one
  16-px cell on every side, and the model grid (4 box rows + a ring of 1 cell = 6 x 6) coincides with the
  crop's cells. Image cells are 16-px squares aligned with every crop.
* Scores as in docs/method.md §A.5: the classification score sums over the crop's cells, masks are the cells' signed
  margins resampled bilinearly (no extra smoothing); ``fg_bias`` is pinned to 3.
* Classes (one mixture each): ``a`` expects texture A in its box, ``b`` texture B, ``c`` is a "mixed" class
  expecting A or B (half and half) everywhere. All expect background as context; the shape prior is 0.9 in
  the box and 0.05 on the ring. The outlier model mostly explains X.

Scenes are drawn as maps of one concept per 16-px image cell, and each object's crop features are read off
that map with :func:`prepare_object`: no backbone runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from occseg.backbones.registry import Backbone, BackboneSpec
from occseg.compnet.model import ClassModel, CompNetModel, CompNetSettings
from occseg.geometry.boxes import Box, crop_window
from occseg.inference.single import ObjectState, prepare_object

A, B, BG, X = 0, 1, 2, 3
CELL = 16
KAPPA = 10.0
GRID = 6  # 4 box cells + a ring of 1 on each side
PRIOR_BOX, PRIOR_RING = 0.9, 0.05
LOW = 0.01  # concept weight of the concepts a model does not expect

# pure colours for the backbone test: a stand-in backbone maps each 16-px cell to its mean colour
COLOURS = {A: (255, 0, 0), B: (0, 255, 0), BG: (0, 0, 255), X: (0, 0, 0)}


def _dist(weights: dict[int, float]) -> list[float]:
    out = [LOW] * 4
    for k, v in weights.items():
        out[k] = v
    total = sum(out)
    return [v / total for v in out]


CLASS_DISTS = {
    "a": _dist({A: 0.97}),
    "b": _dist({B: 0.97}),
    "c": _dist({A: 0.49, B: 0.49}),
}
CONTEXT_DIST = _dist({BG: 0.97})
CLUTTER_DIST = [0.1, 0.1, 0.1, 0.7]


def prior_map() -> np.ndarray:
    p = np.full((GRID, GRID), PRIOR_RING)
    p[1:-1, 1:-1] = PRIOR_BOX
    return p


def make_model(classes: tuple[str, ...] = ("a", "b", "c"), **settings) -> CompNetModel:
    """The hand-built model (see the module docstring); ``settings`` override CompNetSettings fields."""
    cms = {}
    for name in classes:
        alpha = torch.tensor(CLASS_DISTS[name]).expand(1, GRID, GRID, 4).clone()
        chi = torch.tensor(CONTEXT_DIST).expand(1, GRID, GRID, 4).clone()
        prior = torch.from_numpy(prior_map()).float()[None]
        cms[name] = ClassModel(alpha=alpha.float(), chi=chi.float(), prior_fg=prior, counts=torch.tensor([10.0]))
    kw = dict(
        backbone="colour-cells",
        layer="cells",
        channels=4,
        stride=CELL,
        kappa=KAPPA,
        classes=list(classes),
        num_concepts=4,
        mixtures={c: 1 for c in classes},
        target_height=64,
        pad=16,
        box_rows=4,
        ring=1,
        context="global",
        test_ring_context=False,
        fg_bias=3.0,
    )
    fields = CompNetSettings.__dataclass_fields__
    if "smooth_cells" in fields:
        kw["smooth_cells"] = 0.0  # masks = the cells' signed margins resampled bilinearly, nothing more
    if "class_score" in fields:
        kw["class_score"] = "sum"  # the paper's classification score: a sum over the crop's cells
    kw.update(settings)
    return CompNetModel(
        settings=CompNetSettings(**kw),
        concepts=torch.eye(4),
        clutter=torch.tensor([CLUTTER_DIST]),
        classes=cms,
    )


@dataclass
class Scene:
    """A constructed image: one concept per 16-px cell, and the objects' boxes."""

    cells: np.ndarray  # (rows, cols) concept index per image cell
    boxes: list[Box]

    @property
    def size(self) -> tuple[int, int]:
        return self.cells.shape[0] * CELL, self.cells.shape[1] * CELL

    def features(self, box: Box, model: CompNetModel):
        """The crop window of ``box`` and its one-hot crop features read off the cell map."""
        h, w = self.size
        s = model.settings
        win = crop_window(box, w, h, target_height=s.target_height, pad=s.pad, stride=s.stride)
        ch, cw = win.size[0] // s.stride, win.size[1] // s.stride
        feats = torch.zeros(4, ch, cw)
        for r in range(ch):
            for c in range(cw):
                x, y = win.crop_to_image((c + 0.5) * s.stride, (r + 0.5) * s.stride)
                ri = min(max(int(y // CELL), 0), self.cells.shape[0] - 1)
                ci = min(max(int(x // CELL), 0), self.cells.shape[1] - 1)
                feats[self.cells[ri, ci], r, c] = 1.0
        return win, feats

    def states(self, model: CompNetModel, order: list[int] | None = None) -> list[ObjectState]:
        out = []
        for k in order if order is not None else range(len(self.boxes)):
            win, feats = self.features(self.boxes[k], model)
            out.append(prepare_object(model, feats, self.boxes[k], win, self.size))
        return out

    def image(self) -> np.ndarray:
        """The scene painted in pure colours (for the stand-in backbone)."""
        lut = np.array([COLOURS[k] for k in range(4)], dtype=np.uint8)
        return np.kron(lut[self.cells], np.ones((CELL, CELL, 1), dtype=np.uint8))


def paint(rows: int, cols: int, rects: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """A background cell map with rectangles ``(concept, col1, row1, col2, row2)`` painted back to front."""
    cells = np.full((rows, cols), BG, dtype=np.int64)
    for k, c1, r1, c2, r2 in rects:
        cells[r1:r2, c1:c2] = k
    return cells


def cell_box(c1: int, r1: int, c2: int, r2: int) -> Box:
    return (float(c1 * CELL), float(r1 * CELL), float(c2 * CELL), float(r2 * CELL))


@pytest.fixture
def model() -> CompNetModel:
    return make_model()


@pytest.fixture
def two_objects() -> Scene:
    """Object 0 (texture A, box cells x 1..5, y 2..6) in front of object 1 (texture B, box x 3..7): the
    overlap (cells x 3..5, y 2..6; image x 48..80, y 32..96) shows A. Object 1 shows B in x 80..112."""
    cells = paint(8, 9, [(B, 3, 2, 7, 6), (A, 1, 2, 5, 6)])
    return Scene(cells=cells, boxes=[cell_box(1, 2, 5, 6), cell_box(3, 2, 7, 6)])


@pytest.fixture
def with_loner(two_objects: Scene) -> Scene:
    """The two objects plus a third, of texture B, far from both (box cells x 9..13, y 2..6)."""
    cells = np.full((8, 15), BG, dtype=np.int64)
    cells[:, :9] = two_objects.cells
    cells[2:6, 9:13] = B
    return Scene(cells=cells, boxes=[*two_objects.boxes, cell_box(9, 2, 13, 6)])


class _CellColours(nn.Module):
    """Mean colour of every 16-px cell as a 4-channel feature (R, G, B, 0): red, green and blue cells give the
    one-hot features of concepts A, B and BG."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 4, 1, bias=False)
        self.pool = nn.AvgPool2d(CELL, ceil_mode=True)
        self.calls = 0
        self.crops = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.crops += int(x.shape[0])
        return self.proj(self.pool(x))


def colour_backbone() -> Backbone:
    """A stand-in backbone for the constructed scenes: features = the concepts' colours (counts its calls)."""
    spec = BackboneSpec("colour-cells", 4, CELL, KAPPA, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    body = _CellColours()
    with torch.no_grad():
        body.proj.weight.copy_(torch.eye(4, 3)[:, :, None, None])
    return Backbone(spec, body, "constructed")
