"""Who is in front from the part-position classifier: votes computed by hand, and the ORM following them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from occseg.compnet.position import PositionModel
from occseg.geometry.boxes import CropWindow, cell_centres_image
from occseg.inference.scene import SceneConfig, explain_scene
from occseg.reasoning.orm import state_position_order
from occseg.reasoning.position_order import cell_votes, pair_position_vote, position_order

from .conftest import BG as TEX_BG
from .conftest import A as TEX_A
from .conftest import cell_box, make_model


def cell_centres(origin: tuple[int, int], scale: float, stride: int, grid: tuple[int, int]):
    """Cell centres of a crop whose top-left image pixel is ``origin`` (the window's far corner does not matter)."""
    win = CropWindow((*origin, origin[0] + 1, origin[1] + 1), scale, (grid[0] * stride, grid[1] * stride))
    return cell_centres_image(win, stride, grid)


def test_cell_centres_of_a_crop():
    c = cell_centres((10, 20), 0.5, 16, (2, 3))  # cells of 32 image pixels
    assert c[..., 0].tolist() == [[26.0, 58.0, 90.0]] * 2
    assert c[..., 1].tolist() == [[36.0] * 3, [68.0] * 3]


def _flat_logp(values: list[float], grid=(2, 2)) -> torch.Tensor:
    """Log-probabilities that are the same in every cell: one value per bin."""
    return torch.tensor(values, dtype=torch.float64)[:, None, None].expand(len(values), *grid).clone()


def test_pair_vote_by_hand():
    # bins 1 x 2 (left half, right half) + outside; box i = x 0..4, box j = x 2..6, both y 0..4
    bi, bj = (0.0, 0.0, 4.0, 4.0), (2.0, 0.0, 6.0, 4.0)
    # one crop with cell centres x = 2.5, 3.5 and y = 1.5, 2.5: all in both boxes; right half of i, left of j
    centres = cell_centres((2, 1), 1.0, 1, (2, 2))
    logp = _flat_logp([math.log(0.7), math.log(0.2), math.log(0.1)])  # "left half" is likely
    vote, count = pair_position_vote((bi, bj), [(logp, centres)], (1, 2))
    assert count == 4 and vote == pytest.approx(4 * (math.log(0.2) - math.log(0.7)))  # j in front
    # a second crop whose cells lie outside the intersection does not vote
    far = cell_centres((10, 0), 1.0, 1, (2, 2))
    assert pair_position_vote((bi, bj), [(logp, centres), (logp, far)], (1, 2)) == (vote, 4)
    # boxes that do not meet: no vote
    assert pair_position_vote((bi, (5.0, 0.0, 6.0, 4.0)), [(logp, centres)], (1, 2)) == (0.0, 0)
    # the per-cell votes behind it: one per cell in both boxes
    votes, inside = cell_votes((bi, bj), logp, centres, (1, 2))
    assert inside.tolist() == [True] * 4 and votes.tolist() == pytest.approx([math.log(0.2) - math.log(0.7)] * 4)
    votes, inside = cell_votes((bi, (2.0, 0.0, 6.0, 2.0)), logp, centres, (1, 2))  # only the top row of cells
    assert inside.tolist() == [True, True, False, False] and len(votes) == 2


def test_position_order_is_antisymmetric_with_confidence_and_permutes():
    boxes = [(0.0, 0.0, 4.0, 4.0), (2.0, 0.0, 6.0, 4.0), (20.0, 0.0, 24.0, 4.0)]
    logp = _flat_logp([math.log(0.7), math.log(0.2), math.log(0.1)])
    cells = [(logp, cell_centres((2, 1), 1.0, 1, (2, 2))), (logp, cell_centres((2, 1), 1.0, 1, (2, 2))),
             (logp, cell_centres((20, 1), 1.0, 1, (2, 2)))]  # fmt: skip
    order, conf = position_order(boxes, cells, (1, 2))
    assert order.tolist() == [[0, -1, 0], [1, 0, 0], [0, 0, 0]]
    m = math.log(0.7) - math.log(0.2)
    assert conf[0, 1] == conf[1, 0] == pytest.approx(m / (1 + m)) and conf[0, 2] == 0
    perm = [2, 1, 0]
    o2, c2 = position_order([boxes[k] for k in perm], [cells[k] for k in perm], (1, 2))
    assert np.array_equal(o2, order[np.ix_(perm, perm)]) and np.allclose(c2, conf[np.ix_(perm, perm)])
    with pytest.raises(ValueError, match="3 boxes but 2 crops"):
        position_order(boxes, cells[:2], (1, 2))


def _position_model(model):
    """Bins 1 x 2 + outside over the 4 one-hot concepts: texture A looks like a LEFT half (logit 5), the
    background like the outside (logit 5); everything else 0."""
    w = torch.zeros(3, 4)
    w[0, TEX_A] = 5.0
    w[2, TEX_BG] = 5.0
    pm = PositionModel(w, torch.zeros(3), (1, 2))
    return replace(model, settings=replace(model.settings, position_bins=[1, 2]), position=pm)


@pytest.mark.parametrize("mode", ["nod", "od"])
def test_the_orm_follows_the_position_vote(two_objects, mode):
    # the overlap shows texture A, the object in front by the pixel counts (object 0); its cells lie in the right
    # half of box 0 and the left half of box 1, and A looks like a left half: the vote puts object 1 in front
    plain = make_model()
    model = _position_model(plain)
    states = two_objects.states(model)
    assert all(st.position is not None and st.position.shape[0] == 3 for st in states)
    res = explain_scene(model, states, SceneConfig(reasoning=mode), labels=["a", "b"])
    assert res.order.tolist() == [[0, -1], [1, 0]] and res.layers == [1, 0]
    assert res.report["order_cue"] == "position"
    # the relation's confidence is the vote's (mean vote per cell m, as m / (1 + m))
    _, vote_conf = state_position_order(model, states)
    assert 0 < vote_conf[0, 1] < 1 and res.order_confidence.tolist() == vote_conf.tolist()
    counts = explain_scene(model, states, SceneConfig(reasoning=mode, order="counts"), labels=["a", "b"])
    assert counts.order.tolist() == [[0, 1], [-1, 0]] and counts.report["order_cue"] == "counts"
    # by pixel counts: the share of the conflict the winner won beyond the loser (the last competition's counts)
    last = counts.report["iterations"][-1]["pairs"]["0-1"]
    margin = abs(last["won_by_first"] - last["won_by_second"]) / last["conflict"]
    assert counts.order_confidence == pytest.approx(np.array([[0, margin], [margin, 0]]))
    # a model without the classifier decides by the counts, and cannot be asked for the vote
    old = explain_scene(plain, two_objects.states(plain), SceneConfig(reasoning=mode), labels=["a", "b"])
    assert old.order.tolist() == counts.order.tolist() and old.report["order_cue"] == "counts"
    with pytest.raises(ValueError, match="order='position': this model has no part-position classifier"):
        explain_scene(plain, two_objects.states(plain), SceneConfig(reasoning=mode, order="position"))


@pytest.mark.parametrize("mode", ["nod", "od"])
def test_the_gated_order_takes_the_vote_where_it_is_sure_and_the_counts_elsewhere(two_objects, mode):
    # the vote puts object 1 in front, the pixel counts object 0 (as above)
    model = _position_model(make_model())
    states = two_objects.states(model)
    _, vote_conf = state_position_order(model, states)
    sure = explain_scene(model, states, SceneConfig(reasoning=mode, order="gated", sure_vote=vote_conf[0, 1]),
                         labels=["a", "b"])  # fmt: skip
    assert sure.order.tolist() == [[0, -1], [1, 0]] and sure.report["order_cue"] == "gated"
    assert sure.order_confidence.tolist() == vote_conf.tolist()
    unsure = explain_scene(model, states, SceneConfig(reasoning=mode, order="gated", sure_vote=vote_conf[0, 1] + 1e-6),
                           labels=["a", "b"])  # fmt: skip
    assert unsure.order.tolist() == [[0, 1], [-1, 0]]
    with pytest.raises(ValueError, match="order='gated': this model has no part-position classifier"):
        explain_scene(make_model(), two_objects.states(make_model()), SceneConfig(reasoning=mode, order="gated"))
    with pytest.raises(ValueError, match="sure_vote must be a number in"):
        SceneConfig(sure_vote=1.5)


def test_the_vote_is_read_in_the_given_boxes_not_the_completed_ones(two_objects):
    # visible boxes given: the vote uses them as they are. A completed amodal box x 0..64 for object 1 would put
    # the texture-A overlap in the right half of box 1 and turn the vote round (object 0 in front)
    model = _position_model(make_model())
    states = two_objects.states(model)
    given, _ = state_position_order(model, states)
    assert given.tolist() == [[0, -1], [1, 0]]
    states[1].completed_box = cell_box(0, 2, 4, 6)
    cells = [(st.position, cell_centres_image(st.window, st.stride, tuple(st.position.shape[1:]))) for st in states]
    completed, _ = position_order([states[0].box, states[1].completed_box], cells, (1, 2))
    assert completed.tolist() == [[0, 1], [-1, 0]]
    assert state_position_order(model, states)[0].tolist() == given.tolist()


def test_order_setting_is_checked():
    with pytest.raises(ValueError, match="order must be auto, counts, position or gated, not 'depth'"):
        SceneConfig(order="depth")
