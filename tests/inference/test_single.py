"""Per-object inference on constructed models whose likelihoods have closed forms.

Concepts are the axes of R^K and every crop cell holds a one-hot feature, so a cell showing concept ``j`` has
log activations ``kappa * e_j`` (kappa = 10): a model cell whose distribution is one-hot on ``j`` explains it
with log-likelihood exactly 10, any other one-hot cell with exactly 0. Crop cell (r, c) is image pixel block
[16r, 16r+16) x [16c, 16c+16).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occseg.inference.single import (
    CONTEXT,
    OBJECT,
    OCCLUDER,
    classify,
    complete_amodal_box,
    finish_object,
    label_cells,
    occlusion_cells,
)
from tests.compnet.conftest import box_region, class_model, crop_state, one_hot_cells, synthetic_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/compnet/conftest.py: torch_threads

OBJ, CTX, CLUT, BOTTOM = 0, 1, 2, 3  # concept indices
GRID = (10, 8)  # ring 2 + 6 box rows + ring 2; box columns 2..6
BOX_ROWS, BOX_COLS = (2, 8), (2, 6)
BOX_CELLS = (2, 2, 6, 8)  # x1, y1, x2, y2 in crop cells: centred on the grid, so the offset is (0, 0)
LOG_W = math.log(0.1)  # outlier weight


def _prior(m: int = 1, inside: float = 0.9, outside: float = 0.05) -> torch.Tensor:
    return box_region(GRID, BOX_ROWS, BOX_COLS, inside, outside).expand(m, *GRID).clone()


def _crop(box_value: int = OBJ) -> torch.Tensor:
    """Context everywhere, ``box_value`` in the box."""
    idx = torch.full(GRID, CTX)
    idx[BOX_ROWS[0] : BOX_ROWS[1], BOX_COLS[0] : BOX_COLS[1]] = box_value
    return idx


# ------------------------------------------------------------------------------------------------ label_cells


@pytest.fixture
def labelled():
    """One class: object concept in the box, context concept around it; outlier model = the clutter concept."""
    k = 5
    cm = class_model(torch.full((1, *GRID), OBJ), torch.full((1, *GRID), CTX), _prior(), k)
    model = synthetic_model({"thing": cm}, num_concepts=k, ring=2, box_rows=6)
    idx = _crop(OBJ)
    idx[6:8, 2:4] = CLUT  # an occluder over the lower-left of the box
    idx[4, 3] = CTX  # a context-like cell enclosed by object cells: filled by the rigid hole filling
    idx[3, 5] = CTX  # a context-like cell at the box edge: stays context
    return model, crop_state(model, idx, BOX_CELLS)


def _expected_labels() -> torch.Tensor:
    want = torch.full(GRID, CONTEXT)
    want[BOX_ROWS[0] : BOX_ROWS[1], BOX_COLS[0] : BOX_COLS[1]] = OBJECT
    want[6:8, 2:4] = OCCLUDER
    want[3, 5] = CONTEXT
    return want


def test_prepare_object_terms_have_closed_forms(labelled):
    model, st = labelled
    t = st.terms["thing"]
    assert t.offset == (0, 0) and st.crop_cells == GRID and st.stride == 16
    assert t.valid.all()
    assert torch.equal(t.in_box, box_region(GRID, BOX_ROWS, BOX_COLS, 1, 0).bool())
    # object cells: alpha (one-hot OBJ) explains them with log-lik 10, chi and the outlier model with 0
    assert float(t.log_fg[0, 2, 2]) == pytest.approx(10.0, abs=1e-5)
    assert float(t.log_ctx[0, 2, 2]) == pytest.approx(0.0, abs=1e-5)
    assert float(t.log_out[6, 2]) == pytest.approx(10.0, abs=1e-5)  # the clutter cell
    assert float(t.log_out[0, 0]) == pytest.approx(0.0, abs=1e-5)
    torch.testing.assert_close(t.log_ctx, t.log_ctx_model)  # "global" context: no crop ring term


def test_label_cells_object_context_occluder(labelled):
    model, st = labelled
    labels, margin, fg_score, amodal = label_cells(model, st, "thing", 0)
    assert labels.shape == GRID
    assert torch.equal(labels, _expected_labels())
    # amodal = object cells + occluded cells where the shape prior says object (0.9 > 0.5)
    want_amodal = box_region(GRID, BOX_ROWS, BOX_COLS, 1, 0).bool()
    want_amodal[3, 5] = False
    assert torch.equal(amodal, want_amodal)
    # margins: winner minus runner-up of (object + fg_bias 3, context, occluder) log-scores
    obj = 10 + math.log(0.9) + 3
    assert float(margin[2, 2]) == pytest.approx(obj - (0 + math.log(0.1)), abs=1e-4)  # 13 + ln 9
    assert float(margin[6, 2]) == pytest.approx((10 + LOG_W) - (math.log(0.9) + 3), abs=1e-4)
    assert float(margin[0, 0]) == pytest.approx((10 + math.log(0.95)) - (math.log(0.05) + 3), abs=1e-4)
    assert float(fg_score[2, 2]) == pytest.approx(obj, abs=1e-4)
    assert float(fg_score[0, 0]) == pytest.approx(math.log(0.05) + 3, abs=1e-4)


def test_label_cells_with_an_occlusion_prior(labelled):
    model, st = labelled
    occ = torch.zeros(GRID, dtype=torch.bool)
    occ[2:4, :] = True  # the top two box rows (and the ring beside them) are known to be occluded
    labels, _, _, amodal = label_cells(model, st, "thing", 0, occluded=occ)
    want = _expected_labels()
    want[2:4, 2:6] = OCCLUDER
    want[3, 5] = CONTEXT  # was context: stays context
    want[4, 3] = CONTEXT  # its neighbour above is no longer object: the hole is not filled
    assert torch.equal(labels, want)
    assert amodal[2:4, 2:5].all() and not amodal[3, 5] and not amodal[4, 3]  # occluded object part stays amodal


def test_finish_object_masks_follow_the_cells(labelled):
    model, st = labelled  # masks not smoothed over cells (smooth_cells = 0)
    res = finish_object(model, st, "thing", 0, 1.0, {"thing": 1.0})
    h, w = GRID[0] * 16, GRID[1] * 16
    assert res.visible.shape == (h, w) and res.visible.dtype == bool
    # at every cell centre the mask is exactly the cell's decision (bilinear resampling hits the centre value)
    centres = res.visible[8::16, 8::16]
    assert np.array_equal(centres, (res.labels == OBJECT))
    assert np.array_equal(res.amodal[8::16, 8::16], _expected_amodal_cells())
    assert not (res.visible & ~res.amodal).any()  # visible inside amodal
    box = np.zeros((h, w), bool)
    box[32:128, 32:96] = True
    assert not (res.amodal & ~box).any()  # everything inside the given box
    assert res.amodal_box == (32.0, 32.0, 96.0, 128.0)
    assert res.occluded[6 * 16 + 8, 2 * 16 + 8] and not res.occluded[2 * 16 + 8, 2 * 16 + 8]


def test_finish_object_smoothed_masks_keep_their_invariants(labelled):
    from dataclasses import replace

    from occseg.compnet.model import CompNetSettings

    if "smooth_cells" not in CompNetSettings.__dataclass_fields__:
        pytest.skip("this version does not smooth masks over cells")
    model, st = labelled
    model.settings = replace(model.settings, smooth_cells=1.0)
    res = finish_object(model, st, "thing", 0, 1.0, {"thing": 1.0})
    box = np.zeros(res.visible.shape, bool)
    box[32:128, 32:96] = True
    assert not (res.visible & ~res.amodal).any() and not (res.amodal & ~box).any()
    assert res.visible[3 * 16 + 8, 3 * 16 + 8]  # deep inside the object cells
    assert not res.visible[7 * 16 + 8, 2 * 16 + 8]  # the occluder's corner cell
    assert not res.visible[8:32].any()  # the context ring above the box


def test_with_a_mask_head_the_hidden_part_is_the_cells_occluded_part(labelled, monkeypatch):
    """The head's visible mask replaces the cells' visible mask, but the hidden part stays the cells labelled
    occluder (not the cells' object area the head's tighter outline leaves out: that is not hidden)."""
    import occseg.inference.single as single

    model, st = labelled
    plain = finish_object(model, st, "thing", 0, 1.0, {"thing": 1.0})
    head = np.zeros_like(plain.visible)
    head[56:90, 56:88] = True  # a tighter outline than the cells' object area (rows 32..96 above the occluder)
    monkeypatch.setattr(single, "object_head_logits", lambda *a: torch.zeros(1))
    monkeypatch.setattr(single, "head_visible", lambda *a: head.copy())
    monkeypatch.setattr(st, "head", object(), raising=False)
    monkeypatch.setattr(model, "mask_head", type("Head", (), {"settings": type("S", (), {"use": "refine"})})())
    res = finish_object(model, st, "thing", 0, 1.0, {"thing": 1.0}, hidden="occluder")
    assert np.array_equal(res.visible, head)
    hidden = plain.amodal & ~plain.visible  # the occluder cells (rows 6..7, columns 2..3) inside the shape prior
    assert hidden[7 * 16 + 8, 2 * 16 + 8] and hidden.sum() > 0
    assert np.array_equal(res.amodal, head | hidden)
    assert plain.visible[44, 44] and not res.amodal[44, 44]  # the cells' object, not the head's: not hidden either
    # hidden="shape": the cells' whole amodal shape less the head's mask is hidden (the head's "no object" there)
    shape = finish_object(model, st, "thing", 0, 1.0, {"thing": 1.0}, hidden="shape")
    assert np.array_equal(shape.amodal, plain.amodal | head) and shape.amodal[44, 44]
    # hidden="front" (the default with a head): the masks of "occluder", and the cells' amodal shape kept for the
    # objects in front; without a head the default ("auto") is "occluder" and keeps no shape
    front = finish_object(model, st, "thing", 0, 1.0, {"thing": 1.0})
    assert np.array_equal(front.amodal, res.amodal) and np.array_equal(front.extra["shape"], plain.amodal)
    assert "shape" not in plain.extra


def _expected_amodal_cells() -> np.ndarray:
    a = box_region(GRID, BOX_ROWS, BOX_COLS, 1, 0).bool().numpy()
    a[3, 5] = False
    return a


def test_per_image_context_takes_the_better_of_model_and_ring():
    """With per-image context the crop's own ring (mean concept distribution of the cells around the box) also
    explains cells: log_ctx = max(log chi.L, log ring.L)."""
    k = 5
    cm = class_model(torch.full((1, *GRID), OBJ), torch.full((1, *GRID), BOTTOM), _prior(), k)  # chi: wrong concept
    model = synthetic_model({"thing": cm}, num_concepts=k, context="per_image")
    st = crop_state(model, _crop(OBJ), BOX_CELLS)
    t = st.terms["thing"]
    e = math.exp(10.0)
    ring = torch.tensor([1.0, e, 1.0, 1.0, 1.0]) / (e + 4)  # softmax(10 e_CTX): every ring cell shows CTX
    want_ctx_cell = math.log(float(ring @ torch.tensor([1.0, e, 1.0, 1.0, 1.0])))  # a CTX cell under the ring
    assert float(t.log_ctx[0, 0, 0]) == pytest.approx(want_ctx_cell, abs=1e-4)
    assert float(t.log_ctx_model[0, 0, 0]) == pytest.approx(0.0, abs=1e-5)  # chi (BOTTOM) does not explain CTX
    assert torch.equal(t.log_ctx, torch.maximum(t.log_ctx_model, t.log_ctx))
    off = crop_state(model, _crop(OBJ), BOX_CELLS, per_image_context=False).terms["thing"]
    torch.testing.assert_close(off.log_ctx, off.log_ctx_model)


# --------------------------------------------------------------------------------------------------- classify


def _two_class_model():
    """'a': the object concept in the whole box. 'b': half object / half BOTTOM in the top half of the box and
    BOTTOM in the bottom half. 'c': two mixtures, one like 'a' and one like 'b'."""
    k = 5
    a_alpha = one_hot_cells(torch.full((1, *GRID), OBJ), k)
    b_alpha = one_hot_cells(torch.full((1, *GRID), BOTTOM), k)
    b_alpha[0, 2:5] = 0.0
    b_alpha[0, 2:5, :, OBJ] = 0.5
    b_alpha[0, 2:5, :, BOTTOM] = 0.5
    chi = one_hot_cells(torch.full((1, *GRID), CTX), k)
    prior = _prior()
    from occseg.compnet.model import ClassModel

    classes = {
        "a": ClassModel(a_alpha, chi, prior, torch.ones(1)),
        "b": ClassModel(b_alpha, chi, prior, torch.ones(1)),
        "c": ClassModel(torch.cat([a_alpha, b_alpha]), torch.cat([chi, chi]), _prior(2), torch.ones(2)),
    }
    return synthetic_model(classes, num_concepts=k)


def _scene_crop() -> torch.Tensor:
    idx = _crop(OBJ)
    idx[5:8, 2:6] = BOTTOM  # the object's bottom half shows the BOTTOM concept
    return idx


def _direct_score(
    model, name: str, mixture: int, idx: torch.Tensor, occluded: torch.Tensor | None, cells: torch.Tensor | None = None
) -> float:
    """s = sum_i valid_i (1 - o_i) max(0, l_i - (log w + c_i)), l = log((1-w) pi alpha.L + w (1-pi) chi.L).

    With ``cells`` (the box's cells) the sum runs over those cells only and is divided by their number."""
    s = model.settings
    cm = model.classes[name]
    total = 0.0
    count = 0
    for r in range(GRID[0]):
        for c in range(GRID[1]):
            if occluded is not None and occluded[r, c]:
                continue
            if cells is not None and not cells[r, c]:
                continue
            count += 1
            lik = torch.exp(s.kappa * torch.eye(s.num_concepts)[int(idx[r, c])])  # L_k of this cell
            pi = float(cm.prior_fg[mixture, r, c])
            ell = math.log(
                (1 - s.omega) * pi * float(cm.alpha[mixture, r, c] @ lik)
                + s.omega * (1 - pi) * float(cm.chi[mixture, r, c] @ lik)
            )
            out = math.log(float(model.clutter[0] @ lik))
            total += max(0.0, ell - (math.log(s.outlier_weight) + out))
    return total / max(1, count) if cells is not None else total


def test_classify_box_mean_score_is_the_mean_over_the_box_cells():
    model = _two_class_model()
    assert model.settings.class_score == "box_mean"  # the default
    idx = _scene_crop()
    st = crop_state(model, idx, BOX_CELLS)
    _, _, _, scores = classify(model, st)
    for name in ("a", "b"):
        box = st.terms[name].in_box
        assert scores[name] == pytest.approx(_direct_score(model, name, 0, idx, None, cells=box), rel=1e-5)
    occ = torch.zeros(GRID, dtype=torch.bool)
    occ[5:8, 2:6] = True
    _, _, _, scores2 = classify(model, st, occluded={"a": occ, "b": occ, "c": occ})
    for name in ("a", "b"):
        box = st.terms[name].in_box
        assert scores2[name] == pytest.approx(_direct_score(model, name, 0, idx, occ, cells=box), rel=1e-5)


def test_classify_picks_the_largest_score_and_masking_flips_it():
    model = _two_class_model()
    model.settings.class_score = "sum"  # the paper's score: the sum over every covered cell
    idx = _scene_crop()
    st = crop_state(model, idx, BOX_CELLS)
    cls, mix, conf, scores = classify(model, st)
    assert set(scores) == {"a", "b", "c"}
    for name, m in (("a", 0), ("b", 0)):
        assert scores[name] == pytest.approx(_direct_score(model, name, m, idx, None), rel=1e-5)
    assert scores["b"] > scores["a"]  # b explains the bottom half too
    assert cls in ("b", "c") and scores["c"] == pytest.approx(scores["b"], rel=1e-6)  # c's mixture 1 is b
    vals = torch.tensor([scores[n] for n in scores])
    assert conf == pytest.approx(float(torch.softmax(vals / 80 * 4.0, 0)[list(scores).index(cls)]), rel=1e-5)
    # occlude the bottom half: only the top half counts, where 'a' (pure object concept) is better
    occ = torch.zeros(GRID, dtype=torch.bool)
    occ[5:8, 2:6] = True
    cls2, mix2, _, scores2 = classify(model, st, occluded={"a": occ, "b": occ, "c": occ})
    for name, m in (("a", 0), ("b", 0)):
        assert scores2[name] == pytest.approx(_direct_score(model, name, m, idx, occ), rel=1e-5)
    assert scores2["a"] > scores2["b"]
    assert cls2 in ("a", "c") and scores2["c"] == pytest.approx(scores2["a"], rel=1e-6)


def test_classify_picks_the_best_mixture():
    model = _two_class_model()
    st = crop_state(model, _scene_crop(), BOX_CELLS)
    cls, mix, conf, scores = classify(model, st, given_label="c")
    assert (cls, mix, conf) == ("c", 1, 1.0) and list(scores) == ["c"]
    occ = torch.zeros(GRID, dtype=torch.bool)
    occ[5:8, 2:6] = True
    assert classify(model, st, given_label="c", occluded={"c": occ})[1] == 0


def test_classify_given_label_and_unknown_label():
    model = _two_class_model()
    st = crop_state(model, _scene_crop(), BOX_CELLS)
    cls, mix, conf, scores = classify(model, st, given_label="a")  # not the best class, but given
    assert (cls, mix, conf) == ("a", 0, 1.0) and list(scores) == ["a"]
    with pytest.raises(ValueError, match=r"class 'dog' is not in the model \(classes: a, b, c\)"):
        classify(model, st, given_label="dog")


def test_occlusion_cells_from_image_pixels():
    model = _two_class_model()
    st = crop_state(model, _scene_crop(), BOX_CELLS)
    h, w = GRID[0] * 16, GRID[1] * 16
    px = np.zeros((h, w), bool)
    px[5 * 16 : 8 * 16, 2 * 16 : 6 * 16] = True  # exactly the bottom-half cells
    px[0:6, 0:16] = True  # 6 of 16 rows of cell (0, 0): less than half -> not occluded
    px[16:26, 0:16] = True  # 10 of 16 rows of cell (1, 0): more than half -> occluded
    got = occlusion_cells(st, px, "a")
    want = torch.zeros(GRID, dtype=torch.bool)
    want[5:8, 2:6] = True
    want[1, 0] = True
    assert torch.equal(got, want)
    assert occlusion_cells(st, np.zeros((h, w), bool), "a") is None
    assert occlusion_cells(st, None, "a") is None


# ------------------------------------------------------------------------------------------ amodal completion

HEAD, TORSO, LEGS = 0, 3, 4


def test_complete_amodal_box_extends_a_top_half_box_downward():
    """Model: a 6-concept person on a 12x8 grid (ring 2, box rows 2..10, box columns 2..6): head on box row 0,
    torso on rows 1-3, legs on rows 4-7. The visible box shows head + torso (the top half); the legs are
    hidden by clutter. The completed box keeps the top and sides and ends 8 cells (128 px) below the top."""
    k, grid = 6, (12, 8)
    rows = torch.full(grid, CTX)
    rows[2] = HEAD
    rows[3:6] = TORSO
    rows[6:10] = LEGS
    prior = box_region(grid, (2, 10), (2, 6), 0.9, 0.01)[None]
    cm = class_model(rows[None], torch.full((1, *grid), CTX), prior, k)
    model = synthetic_model({"person": cm}, num_concepts=k, ring=2, box_rows=8)
    idx = torch.full((20, 20), CTX)  # a 320x320 image
    idx[4, 4:8] = HEAD
    idx[5:8, 4:8] = TORSO
    idx[8:12, 4:8] = CLUT  # the occluder over the legs
    visible = (4, 4, 8, 8)  # cells: box (64, 64, 128, 128) px
    st = crop_state(model, idx, visible)
    assert st.terms["person"].offset == (0, -2)
    box = complete_amodal_box(model, st, "person")
    assert box == (64.0, 64.0, 128.0, 192.0)
    x1, y1, x2, y2 = box
    assert x1 <= 64 and y1 <= 64 and x2 >= 128 and y2 >= 128  # contains the visible box
    assert y2 - 128 > 0 and (y1, x1, x2) == (64.0, 64.0, 128.0)  # grew downward only


def test_complete_amodal_box_is_clipped_to_the_image():
    k, grid = 6, (12, 8)
    rows = torch.full(grid, CTX)
    rows[2] = HEAD
    rows[3:6] = TORSO
    rows[6:10] = LEGS
    cm = class_model(rows[None], torch.full((1, *grid), CTX), box_region(grid, (2, 10), (2, 6), 0.9, 0.01)[None], k)
    model = synthetic_model({"person": cm}, num_concepts=k, ring=2, box_rows=8)
    idx = torch.full((10, 12), CTX)  # a 192x160 image: the completed bottom (192) is past its edge (160)
    idx[4, 4:8] = HEAD
    idx[5:8, 4:8] = TORSO
    st = crop_state(model, idx, (4, 4, 8, 8))
    assert complete_amodal_box(model, st, "person") == (64.0, 64.0, 128.0, 160.0)
