"""The box-supervised losses (src/occseg/head/losses.py) on constructed inputs with known values."""

from __future__ import annotations

import math

import pytest
import torch

from occseg.head.losses import (
    colour_similarity,
    dice_loss,
    neighbour_offsets,
    outside_loss,
    pairwise_loss,
    projection_loss,
)


def _box(h: int = 10, w: int = 8, rows=(2, 8), cols=(3, 6)) -> torch.Tensor:
    b = torch.zeros(1, 1, h, w)
    b[..., rows[0] : rows[1], cols[0] : cols[1]] = 1
    return b


def test_dice_loss_known_values():
    assert float(dice_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]), eps=0.0)) == pytest.approx(1 / 3)
    assert float(dice_loss(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]]), eps=0.0)) == 0.0


def test_projection_loss_is_zero_for_a_mask_that_fills_its_boxs_rows_and_columns():
    box = _box()
    valid = torch.ones_like(box)
    # the box itself, and a cross through it that touches every row and column of the box: both project the same
    assert float(projection_loss(torch.where(box > 0, 30.0, -30.0), box, valid)) == pytest.approx(0.0, abs=1e-5)
    cross = torch.zeros_like(box)
    cross[..., 2:8, 4] = 1
    cross[..., 5, 3:6] = 1
    assert float(projection_loss(torch.where(cross > 0, 30.0, -30.0), box, valid)) == pytest.approx(0.0, abs=1e-5)
    # a mask missing the box's last column: x-projection dice 1 - 2*2/(2+3), y-projection 0
    part = box.clone()
    part[..., 5] = 0
    assert float(projection_loss(torch.where(part > 0, 30.0, -30.0), box, valid)) == pytest.approx(0.2, abs=1e-5)


def test_projection_loss_ignores_padding():
    box = _box()
    valid = torch.ones_like(box)
    valid[..., 9, :] = 0  # a padded row where the mask says object
    logits = torch.where(box > 0, 30.0, -30.0)
    logits[..., 9, 4] = 30.0
    assert float(projection_loss(logits, box, valid)) == pytest.approx(0.0, abs=1e-5)


def test_colour_similarity_is_exp_of_minus_half_the_lab_distance():
    lab = torch.zeros(1, 3, 4, 4)
    lab[:, 0, :, 2:] = 2.0  # L differs by 2 between the left and right halves
    sim = colour_similarity(lab, dilation=1)
    k = neighbour_offsets(1).index((0, 1))  # right neighbour
    assert float(sim[0, k, 0, 0]) == pytest.approx(1.0)
    assert float(sim[0, k, 0, 1]) == pytest.approx(math.exp(-1.0))
    assert float(sim[0, k, 0, 3]) == 0.0  # beyond the map


def test_pairwise_loss_on_a_constant_colour_image():
    lab = torch.full((1, 3, 6, 6), 50.0)
    sim = colour_similarity(lab, dilation=2)
    box = _box(6, 6, (1, 5), (1, 5))
    valid = torch.ones_like(box)
    kw = dict(dilation=2, tau=0.3)
    # p = 1/2 everywhere: P(same) = 1/2 for every pair
    assert float(pairwise_loss(torch.zeros_like(box), sim, box, valid, **kw)) == pytest.approx(math.log(2.0))
    # one label everywhere: nothing to pay
    assert float(pairwise_loss(torch.full_like(box, 20.0), sim, box, valid, **kw)) == pytest.approx(0.0, abs=1e-6)
    # different colours (below tau) are free to differ
    lab2 = lab.clone()
    lab2[:, 0, :, 3:] = 0.0
    sim2 = colour_similarity(lab2, dilation=2)
    split = torch.where(torch.arange(6) < 3, 20.0, -20.0).expand(1, 1, 6, 6).clone()
    assert float(pairwise_loss(split, sim2, box, valid, **kw)) == pytest.approx(0.0, abs=1e-6)
    assert float(pairwise_loss(split, sim, box, valid, **kw)) > 5.0  # the same split on one colour costs


def test_outside_loss_counts_only_valid_cells_outside_the_box():
    box = _box()
    valid = torch.ones_like(box)
    assert float(outside_loss(torch.zeros_like(box), box, valid)) == pytest.approx(math.log(2.0))
    logits = torch.where(box > 0, 30.0, -30.0)
    assert float(outside_loss(logits, box, valid)) == pytest.approx(0.0, abs=1e-6)
