"""Learning a CompNet from boxes: the training record, automatic mixture counts, repeatability, and the
small known-answer pieces (grid geometry, maximum-likelihood updates)."""

from __future__ import annotations

import pytest
import torch

from occseg.compnet.learn import (
    TrainConfig,
    _ClassData,
    box_mask_on_grid,
    estimate_class_model,
    grid_width,
    train_compnet,
)
from occseg.compnet.model import load_model
from occseg.compnet.reservoir import sample_box_samples
from occseg.compnet.samples import BoxSample, box_samples
from occseg.data.readers import read_dataset
from tests.compnet.conftest import TINY_CLASSES, model_tensors, tiny_train_config, train_tiny_compnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/compnet/conftest.py: torch_threads

# --------------------------------------------------------------------------------------- end to end (real data)


def test_training_data_has_boxes_only(tiny_compnet):
    ds = read_dataset(tiny_compnet.data, images=tiny_compnet.images)
    insts = [i for im in ds.images for i in im.instances]
    assert insts and all(i.mask is None and i.amodal_mask is None for i in insts)  # no segmentation in the file


def test_training_record_and_model_shapes(tiny_compnet):
    m = tiny_compnet.model
    s = m.settings
    assert (s.backbone, s.channels, s.stride, s.kappa) == ("efficientnet_lite0", 112, 16, 20.0)
    assert s.classes == TINY_CLASSES and s.num_concepts == 16
    assert (s.target_height, s.pad, s.box_rows, s.ring) == (96, 32, 6, 2)
    tr = s.training
    assert tr["seed"] == 0
    assert tr["crops_per_class"] == {"person": 8, "giraffe": 2}  # boxes >= 30 px of 4 images
    ll = tr["concept_em_loglik"]
    assert len(ll) >= 2 and all(b >= a - 1e-4 for a, b in zip(ll, ll[1:])), ll  # EM never goes down
    assert 0 < tr["concept_samples"] <= 100_000 and tr["outlier_cells"] > 0
    assert tr["outlier_clusters"] == m.clutter.shape[0] <= 3
    # per class: samples, mixtures, EM log-likelihoods; fewer mixtures with a note when samples are few
    person, giraffe = tr["classes"]["person"], tr["classes"]["giraffe"]
    assert (person["samples"], person["mixtures"]) == (8, 2) and "note" not in person  # 8 // 3 per mixture
    assert (giraffe["samples"], giraffe["mixtures"]) == (2, 1)
    assert giraffe["note"] == "class 'giraffe': 2 training objects, using 1 mixture(s) instead of 2"
    for rec in (person, giraffe):
        assert rec["em_loglik"] and len(rec["relabel_changed"]) == 1  # one re-labelling round
        assert 0.0 < rec["foreground_fraction_in_box"] <= 1.0
    assert s.mixtures == {"person": 2, "giraffe": 1}
    # tensors: unit concepts, distributions over concepts, priors in [0, 1], counts add up to the samples
    torch.testing.assert_close(m.concepts.norm(dim=1), torch.ones(16))
    torch.testing.assert_close(m.clutter.sum(1), torch.ones(m.clutter.shape[0]))
    for name, n, mix in (("person", 8, 2), ("giraffe", 2, 1)):
        cm = m.classes[name]
        assert cm.alpha.shape[0] == mix and cm.alpha.shape[1] == 6 + 2 * 2 and cm.alpha.shape[-1] == 16
        assert cm.chi.shape == cm.alpha.shape and cm.prior_fg.shape == cm.alpha.shape[:3]
        torch.testing.assert_close(cm.alpha.sum(-1), torch.ones(cm.alpha.shape[:3]))
        torch.testing.assert_close(cm.chi.sum(-1), torch.ones(cm.chi.shape[:3]))
        assert float(cm.prior_fg.min()) >= 0 and float(cm.prior_fg.max()) <= 1
        assert float(cm.counts.sum()) == n and (cm.counts > 0).all()
    # the part-position classifier: 6 x 3 bins + outside over the 16 concepts, one for all classes
    assert s.position_bins == [6, 3] and m.position.bins == (6, 3)
    assert tr["position_boxes"] == 10 and tr["position_border_px"] is None  # fitted on every box
    assert m.position.weight.shape == (19, 16) and m.position.bias.shape == (19,)
    assert torch.isfinite(m.position.weight).all() and float(m.position.weight.abs().sum()) > 0


def test_same_seed_gives_the_same_model(tiny_compnet, tmp_path, shared_data, lite0_backbone):
    again = train_tiny_compnet(shared_data, tmp_path, backbone=lite0_backbone)
    a, b = model_tensors(tiny_compnet.model), model_tensors(again.model)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert again.model.settings == tiny_compnet.model.settings
    # so the saved files are the same bytes, and they load back to the same tensors
    fa, fb = tiny_compnet.folder / "model.safetensors", again.folder / "model.safetensors"
    assert fa.read_bytes() == fb.read_bytes()
    assert (tiny_compnet.folder / "model.json").read_text() == (again.folder / "model.json").read_text()
    back = model_tensors(load_model(again.folder))
    assert all(torch.equal(back[k], a[k]) for k in a)


def test_the_position_classifier_can_leave_out_boxes_at_the_image_border(tiny_compnet, tmp_path, shared_data,
                                                                            lite0_backbone):  # fmt: skip
    ds = read_dataset(tiny_compnet.data, images=tiny_compnet.images)
    size = {im.image_id: (im.width, im.height) for im in ds.images}
    away = [
        s for s in box_samples(ds, TINY_CLASSES, min_height=30)
        if min(s.box[0], s.box[1], size[s.image_id][0] - s.box[2], size[s.image_id][1] - s.box[3]) >= 2
    ]  # fmt: skip
    assert 0 < len(away) < 10  # the tiny set has boxes at the border and boxes away from it
    m = train_tiny_compnet(shared_data, tmp_path, backbone=lite0_backbone, position_border_px=2.0).model
    tr = m.settings.training
    assert tr["position_boxes"] == len(away) and tr["position_border_px"] == 2.0
    assert not torch.equal(m.position.weight, tiny_compnet.model.position.weight)
    # everything else is learned as before
    assert torch.equal(m.concepts, tiny_compnet.model.concepts)
    assert all(torch.equal(m.classes[c].alpha, tiny_compnet.model.classes[c].alpha) for c in TINY_CLASSES)


def test_a_class_with_more_boxes_than_the_cap_is_learned_from_its_seeded_sample(tiny_compnet, lite0_backbone):
    samples = box_samples(read_dataset(tiny_compnet.data, images=tiny_compnet.images), TINY_CLASSES, min_height=30)
    assert "boxes_per_class" not in tiny_compnet.model.settings.training  # below the cap: no note
    capped = train_compnet(
        samples, TINY_CLASSES, tiny_train_config(max_class_boxes=3), backbone=lite0_backbone, progress=False
    )
    tr = capped.settings.training
    assert tr["crops_per_class"] == {"person": 3, "giraffe": 2}  # 8 persons -> 3; 2 giraffes kept
    assert tr["boxes_per_class"] == {"person": 8, "giraffe": 2} and tr["max_class_boxes"] == 3
    # every stage learned from the sample: the model is the one learned, without a cap, from the sampled boxes
    picked = sample_box_samples(samples, 3, seed=0)
    plain = train_compnet(picked, TINY_CLASSES, tiny_train_config(), backbone=lite0_backbone, progress=False)
    a, b = model_tensors(capped), model_tensors(plain)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_no_box_away_from_the_border_is_an_error(tiny_compnet):
    samples = box_samples(read_dataset(tiny_compnet.data, images=tiny_compnet.images), TINY_CLASSES, min_height=30)
    with pytest.raises(ValueError, match=r"every training box lies within 100000.0 px of its image's border"):
        train_compnet(samples, TINY_CLASSES, tiny_train_config(position_border_px=1e5), progress=False)


def test_a_class_without_samples_is_an_error(tiny_compnet):
    ds = read_dataset(tiny_compnet.data, images=tiny_compnet.images)
    samples = box_samples(ds, ["person"])
    with pytest.raises(ValueError, match=r"no training objects for class\(es\) \['cat'\]: check --classes"):
        train_compnet(samples, ["person", "cat"], tiny_train_config(), progress=False)  # before any work


# ------------------------------------------------------------------------------------------- known answers


def test_box_mask_on_grid_takes_cells_whose_centre_is_inside():
    # box x 1.2..3.0, y 0.4..2.6 in crop cells; offset (1, 0): grid row r is crop row r - 1
    m = box_mask_on_grid((5, 4), (1, 0), (1.2, 0.4, 3.0, 2.6))
    # crop rows with centre (0.5, 1.5, 2.5) in [0.4, 2.6) -> grid rows 1..3; columns with centre (1.5, 2.5)
    # in [1.2, 3.0) -> grid columns 1..2
    want = torch.zeros(5, 4, dtype=torch.bool)
    want[1:4, 1:3] = True
    assert torch.equal(m, want)
    # a negative offset moves the mask up/left; cells off the grid are simply absent
    m = box_mask_on_grid((3, 3), (-2, -1), (1.2, 0.4, 3.0, 2.6))
    assert m.tolist() == [[True, True, False], [False] * 3, [False] * 3]


def test_grid_width_is_the_90th_percentile_plus_the_ring_capped():
    assert grid_width([4.0] * 10, 3, 40) == 4 + 6
    assert grid_width([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 1, 40) == 10 + 2  # p90 = 10
    assert grid_width([4.2], 2, 40) == 5 + 4  # rounded up
    assert grid_width([100.0], 3, 40) == 40
    assert grid_width([], 2, 40) == 8 + 4  # no widths: 8 cells


def test_estimate_class_model_is_the_mean_over_labelled_cells():
    """Two samples on a 1x3 grid, two concepts; sample 0 in mixture 0, sample 1 in mixture 1."""
    dist = torch.tensor(
        [
            [[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]],  # sample 0, one row of 3 cells
            [[[0.8, 0.2], [0.2, 0.8], [0.6, 0.4]]],  # sample 1
        ]
    )  # (S=2, H=1, W=3, K=2)
    valid = torch.tensor([[[True, True, True]], [[True, True, False]]])
    fg = torch.tensor([[[True, True, False]], [[False, True, False]]])
    data = _ClassData(
        log_act=list(dist.log().permute(0, 3, 1, 2)),  # the distributions are the softmax of the log activations
        valid=valid,
        in_box=valid,
        ring_dist=torch.full((2, 2), 0.5),
        has_ring=torch.tensor([False, False]),
    )
    cm = estimate_class_model(data, fg, torch.tensor([0, 0]), 1)  # both in one mixture
    # alpha: cell 0 fg only in sample 0 -> [1, 0]; cell 1 fg in both -> mean([.5,.5],[.2,.8]); cell 2: never fg
    # -> the mean foreground distribution over all fg cells: ([1,0] + [.5,.5] + [.2,.8]) / 3
    mean_fg = torch.tensor([1.7, 1.3]) / 3
    torch.testing.assert_close(
        cm.alpha[0, 0], torch.stack([torch.tensor([1.0, 0.0]), torch.tensor([0.35, 0.65]), mean_fg])
    )
    # chi: context = valid & ~fg: sample 0 cell 2 [0, 1]; sample 1 cell 0 [.8, .2]; cell 1: none -> mean context
    mean_ctx = torch.tensor([0.8, 1.2]) / 2
    torch.testing.assert_close(
        cm.chi[0, 0], torch.stack([torch.tensor([0.8, 0.2]), mean_ctx, torch.tensor([0.0, 1.0])])
    )
    # prior: foreground count / covering samples
    torch.testing.assert_close(cm.prior_fg[0, 0], torch.tensor([1 / 2, 2 / 2, 0 / 1]))
    assert cm.counts.tolist() == [2.0]
    two = estimate_class_model(data, fg, torch.tensor([0, 1]), 2)
    torch.testing.assert_close(two.alpha[1, 0, 1], torch.tensor([0.2, 0.8]))
    torch.testing.assert_close(two.prior_fg[:, 0], torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    assert two.counts.tolist() == [1.0, 1.0]


def test_the_class_statistics_summed_chunk_by_chunk_are_the_sums_over_every_sample():
    """The concept distributions are summed a chunk of samples at a time: one sample a chunk gives the statistics
    of one chunk of all (within float rounding), and every chunk's start and end in order."""
    g = torch.Generator().manual_seed(0)
    n, k, h, w = 7, 5, 3, 4
    valid = torch.rand(n, h, w, generator=g) > 0.2
    fg = valid & (torch.rand(n, h, w, generator=g) > 0.5)
    assign = torch.tensor([0, 1, 2, 0, 1, 2, 0])

    def data(chunk: int) -> _ClassData:
        log_act = list(torch.randn(n, k, h, w, generator=torch.Generator().manual_seed(1)))
        return _ClassData(log_act, valid, valid, torch.full((n, k), 1 / k), torch.zeros(n, dtype=bool), chunk=chunk)

    whole, one_by_one = estimate_class_model(data(256), fg, assign, 3), estimate_class_model(data(1), fg, assign, 3)
    for name in ("alpha", "chi", "prior_fg", "counts"):
        torch.testing.assert_close(getattr(one_by_one, name), getattr(whole, name))
    assert [(a, b, d.shape[0]) for a, b, d in data(3).dist_chunks()] == [(0, 3, 3), (3, 6, 3), (6, 7, 1)]


def test_box_samples_to_train_compnet_signature_takes_box_samples_only():
    """What reaches training is a BoxSample: a path, an id, a box, a class name and other boxes."""
    s = BoxSample(image=__file__, image_id=1, box=(0.0, 0.0, 10.0, 40.0), category="person")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no training objects"):
        train_compnet([s], ["vehicle"], tiny_train_config(), progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kappa": -1.0}, r"kappa must be a finite number > 0, not -1.0"),
        ({"omega": 2.0}, r"omega must be a number from 0 to 1, not 2.0"),
        ({"outlier_weight": 0.0}, r"outlier_weight must be a finite number > 0, not 0.0"),
        ({"fg_bias": float("nan")}, r"fg_bias must be a finite number, not nan"),
        ({"num_mixtures": 0}, r"num_mixtures must be an integer >= 1, not 0"),
        ({"em_iters": -1}, r"em_iters must be an integer >= 1, not -1"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, not 0"),
        ({"max_grid_width": 0}, r"max_grid_width must be an integer >= 1, not 0"),
        ({"seed": None}, r"seed must be an integer >= 0, not None"),
        ({"seed": 1.5}, r"seed must be an integer >= 0, not 1.5"),
        ({"context": "xyz"}, r"context must be per_image or global, not 'xyz'"),
        ({"position_bins": (6, 0)}, r"position_bins must be \(rows, cols\) of positive integers or None"),
    ],
)
def test_train_config_is_checked_when_made_not_after_training(kwargs, message):
    with pytest.raises(ValueError, match=f"TrainConfig: {message}"):
        TrainConfig(**kwargs)


def test_train_config_takes_its_none_settings_and_numpy_integers():
    import numpy as np

    cfg = TrainConfig(kappa=None, batch_size=None, position_bins=None, position_border_px=None, seed=np.int64(3))
    assert cfg.seed == 3


def test_no_class_or_no_config_is_refused_before_any_work(tiny_compnet):
    samples = box_samples(read_dataset(tiny_compnet.data, images=tiny_compnet.images), ["person"])
    with pytest.raises(ValueError, match=r"classes: give at least one class to learn"):
        train_compnet(samples, [], tiny_train_config(), progress=False)
    with pytest.raises(TypeError, match=r"cfg must be a TrainConfig, not NoneType"):
        train_compnet(samples, ["person"], None, progress=False)
    with pytest.raises(TypeError, match=r"dataset must be a Dataset, not str: read_dataset\(path\) reads one"):
        box_samples("gt.json", ["person"])
    with pytest.raises(ValueError, match=r"min_height must be a number of pixels >= 0, not None"):
        box_samples(read_dataset(tiny_compnet.data, images=tiny_compnet.images), ["person"], min_height=None)
