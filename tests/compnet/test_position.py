"""The part-position classifier: bins, cell positions and fitting, on small inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from occseg.compnet.position import (
    PositionModel,
    cell_box_positions,
    fit_position_model,
    position_bins,
    position_inputs,
)


def test_position_bins_known_values():
    u = torch.tensor([0.0, 0.49, 0.5, 0.999, 1.0, -0.01, 0.2, 0.7])
    v = torch.tensor([0.0, 0.0, 0.34, 0.999, 0.5, 0.5, 1.2, 0.66])
    # 3 rows x 2 cols: bin = row * 2 + col, outside = 6
    assert position_bins(u, v, (3, 2)).tolist() == [0, 0, 3, 5, 6, 6, 6, 3]


def test_cell_box_positions_of_a_grid():
    u, v = cell_box_positions((3, 4), (1.0, 0.0, 3.0, 2.0))
    assert u[0].tolist() == [-0.25, 0.25, 0.75, 1.25]
    assert v[:, 0].tolist() == [0.25, 0.75, 1.25]
    assert position_bins(u, v, (1, 2)).tolist() == [[2, 0, 1, 2], [2, 0, 1, 2], [2, 2, 2, 2]]
    with pytest.raises(ValueError, match="no area"):
        cell_box_positions((3, 4), (1.0, 0.0, 1.0, 2.0))


def _crop(bins=(2, 2), grid=(6, 6), box=(1.0, 1.0, 5.0, 5.0)) -> tuple[torch.Tensor, tuple]:
    """Features that name their own bin (one channel per bin, plus a constant channel)."""
    u, v = cell_box_positions(grid, box)
    label = position_bins(u, v, bins)
    nb = bins[0] * bins[1] + 1
    feats = torch.zeros(nb + 1, *grid)
    feats.scatter_(0, label[None], 1.0)
    feats[nb] = 0.5
    return feats, box


def test_fit_learns_features_that_name_their_bin_and_is_repeatable():
    crops = [_crop(), _crop(grid=(7, 5), box=(0.5, 1.0, 4.5, 6.0))]
    pm = fit_position_model(crops, (2, 2), l2=1e-4)
    for feats, box in crops:
        u, v = cell_box_positions(tuple(feats.shape[1:]), box)
        lp = pm.log_probs(feats)
        assert lp.shape == (5, *feats.shape[1:])
        torch.testing.assert_close(lp.exp().sum(0), torch.ones(feats.shape[1:]))
        assert torch.equal(lp.argmax(0), position_bins(u, v, (2, 2)))
    again = fit_position_model(crops, (2, 2), l2=1e-4)
    assert torch.equal(pm.weight, again.weight) and torch.equal(pm.bias, again.bias)
    assert pm.outside == 4 and pm.bins == (2, 2)


def test_log_probs_are_the_softmax_of_a_linear_map():
    pm = PositionModel(torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]), torch.tensor([0.0, 0.0, 1.0]), (1, 2))
    inputs = torch.tensor([[[0.6]], [[0.4]]])  # one cell
    logits = torch.tensor([1.2, 0.8, 1.0])
    torch.testing.assert_close(pm.log_probs(inputs)[:, 0, 0], torch.log_softmax(logits, 0))


def test_inputs_are_concept_distributions():
    concepts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    feats = torch.tensor([[[2.0]], [[0.0]]])  # one cell along the first concept: cosines 1 and 0
    p = position_inputs(feats, concepts, kappa=2.0)[:, 0, 0]
    e = math.exp(2.0)
    torch.testing.assert_close(p, torch.tensor([e / (e + 1), 1 / (e + 1)]))


def test_a_random_subset_of_cells_when_there_are_many():
    crops = [_crop(), _crop(grid=(7, 5), box=(0.5, 1.0, 4.5, 6.0))]
    a = fit_position_model(crops, (2, 2), max_cells=40, seed=1)
    b = fit_position_model(crops, (2, 2), max_cells=40, seed=1)
    c = fit_position_model(crops, (2, 2), max_cells=40, seed=2)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_bad_shapes_and_inputs_are_refused():
    with pytest.raises(ValueError, match=r"needs weight \(3, D\)"):
        PositionModel(torch.zeros(4, 2), torch.zeros(4), (1, 2))
    with pytest.raises(ValueError, match="no training crops"):
        fit_position_model([], (2, 2))
    with pytest.raises(ValueError, match="positive"):
        fit_position_model([_crop()], (0, 2))


def test_inputs_are_made_one_crop_at_a_time_and_only_the_kept_cells_are_used():
    crops = [_crop(), _crop(grid=(7, 5), box=(0.5, 1.0, 4.5, 6.0))]
    seen = []

    def double(f: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(f.shape))
        return 2 * f

    a = fit_position_model(crops, (2, 2), inputs=double)
    b = fit_position_model([(2 * f, box) for f, box in crops], (2, 2))
    assert seen == [(6, 6, 6), (6, 7, 5)]
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    # a subset: the same cells whether the inputs are made inside or given
    c = fit_position_model(crops, (2, 2), inputs=double, max_cells=30, seed=3)
    d = fit_position_model([(2 * f, box) for f, box in crops], (2, 2), max_cells=30, seed=3)
    assert torch.equal(c.weight, d.weight)


def test_box_cell_labels_known_answer():
    from occseg.compnet.position import box_cell_labels

    # cell centres along one row; box 0 = [0, 40) x [0, 20), box 1 = [30, 60) x [0, 20); 2 x 2 bins, outside = 4
    centres = torch.tensor([[5.0, 5.0], [25.0, 15.0], [35.0, 5.0], [50.0, 5.0], [70.0, 5.0], [5.0, 30.0]])
    boxes = [(0, 0, 40, 20), (30, 0, 60, 20)]
    # in box 0 only: top-left, bottom-right; in both: no label; in box 1 only: no label for box 0 (another box)
    assert box_cell_labels(centres, boxes, 0, (2, 2)).tolist() == [0, 3, -1, -1, 4, 4]
    # for box 1: (35, 5) lies in both boxes; (50, 5) in box 1 only: top row, right column
    assert box_cell_labels(centres, boxes, 1, (2, 2)).tolist() == [-1, -1, -1, 1, 4, 4]


def test_adapt_position_model_learns_the_new_cells_from_the_trained_weights():
    from occseg.compnet.position import adapt_position_model

    # trained: input 0 -> bin 0, input 1 -> bin 1; the new data says the opposite
    trained = PositionModel(torch.tensor([[4.0, -4.0], [-4.0, 4.0], [0.0, 0.0]]), torch.zeros(3), (1, 2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(50, 1)
    y = torch.tensor([1, 0]).repeat(50)
    unlabelled = torch.full((5,), -1)
    adapted = adapt_position_model(trained, torch.cat([x, x[:5]]), torch.cat([y, unlabelled]))
    lp = adapted.log_probs(torch.eye(2).reshape(2, 2, 1))  # (bins, 2 cells, 1)
    assert lp[:, 0, 0].argmax().item() == 1 and lp[:, 1, 0].argmax().item() == 0
    assert adapted.bins == (1, 2) and torch.equal(trained.weight[0], torch.tensor([4.0, -4.0]))  # not changed in place
    with pytest.raises(ValueError, match="no labelled cell"):
        adapt_position_model(trained, x[:3], torch.full((3,), -1))


def test_the_chunked_loss_and_gradients_are_the_whole_mean_cross_entropys():
    import torch.nn.functional as F

    from occseg.compnet.position import sharded_softmax_loss

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(1000, 6, generator=g), torch.randint(0, 4, (1000,), generator=g)
    w0, b0 = torch.randn(4, 6, generator=g), torch.randn(4, generator=g)
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    want = F.cross_entropy(x @ w.T + b, y) + 0.5 * 1e-2 * (w * w).sum()
    gw, gb = torch.autograd.grad(want, [w, b])
    got = sharded_softmax_loss(x, y, w, b, l2=1e-2, chunk=300)  # chunks of 300, 300, 300 and 100 rows
    assert float(got) == pytest.approx(float(want.detach()), rel=1e-6)
    torch.testing.assert_close(w.grad, gw, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(b.grad, gb, rtol=1e-5, atol=1e-7)
