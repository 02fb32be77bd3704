"""Dataset prediction: several reasoning modes from one backbone pass per object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from occseg.data.readers import read_dataset
from occseg.inference.predict import predict_dataset, predict_dataset_modes
from tests.compnet.conftest import write_coco_subset


def test_modes_share_one_backbone_pass_and_equal_single_mode_predictions(
    shared_data: Path, tiny_compnet, tmp_path: Path, monkeypatch
):
    data = read_dataset(write_coco_subset(shared_data, tmp_path / "g.json", [192]), images=tiny_compnet.images)
    import occseg.inference.predict as predict_module

    calls = []
    real = predict_module.prepare_scene

    def counting(*args, **kwargs):
        calls.append(len(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "prepare_scene", counting)
    both = predict_dataset_modes(tiny_compnet.folder, data, modes=["off", "nod", "off"], given_labels=True,
                                 classes=["person"], progress=False)  # fmt: skip
    assert list(both) == ["off", "nod"] and calls == [4]  # one image, 4 persons: one pass for both modes
    for mode in ("off", "nod"):
        single = predict_dataset(tiny_compnet.folder, data, reasoning=mode, given_labels=True, classes=["person"],
                                 progress=False)  # fmt: skip
        (a,), (b,) = both[mode].images, single.images
        assert a.extra["reasoning"] == b.extra["reasoning"] == mode and a.extra["order"] == b.extra["order"]
        assert a.extra["order_confidence"] == b.extra["order_confidence"]
        conf, order = np.array(a.extra["order_confidence"]), np.array(a.extra["order"])
        assert conf.shape == order.shape == (4, 4) and np.array_equal(conf, conf.T)
        # a confidence exactly where the reasoning decided a relation; none without reasoning
        if mode == "nod":
            assert order.any() and np.array_equal(conf > 0, order != 0)
        else:
            assert not conf.any()
        for x, y in zip(a.instances, b.instances):
            assert x.id == y.id and np.array_equal(x.mask.decode(), y.mask.decode())
            assert np.array_equal(x.amodal_mask.decode(), y.amodal_mask.decode())
    with pytest.raises(ValueError, match="reasoning must be"):
        predict_dataset_modes(tiny_compnet.folder, data, modes=["sideways"], progress=False)


def test_a_model_records_its_backbone_weights_and_refuses_other_weights(tiny_compnet, lite0_backbone):
    from occseg.compnet.model import ModelError
    from occseg.inference.predict import load_model_and_backbone

    s = tiny_compnet.model.settings
    assert s.layer == lite0_backbone.spec.layer == "blocks.10"
    assert s.backbone_fingerprint == lite0_backbone.fingerprint()
    assert s.backbone_weights == lite0_backbone.weights_source
    model, backbone = load_model_and_backbone(tiny_compnet.folder)  # the packaged ImageNet weights: accepted
    assert backbone.fingerprint() == s.backbone_fingerprint
    with pytest.raises(ModelError, match=r"backbone weights: learned on .*given random .*--backbone-weights FILE"):
        load_model_and_backbone(tiny_compnet.folder, weights="random")


def test_classes_and_all_objects_together_are_refused_before_any_work(tmp_path: Path):
    from occseg.data.annotation import Dataset

    empty = Dataset(images=[], categories=["person"], source=tmp_path / "d.json", format="coco")
    with pytest.raises(ValueError, match="either classes or all_objects"):  # the model folder is never read
        predict_dataset(tmp_path / "no-model", empty, classes=["person"], all_objects=True, progress=False)


def test_adapt_order_refits_the_classifier_on_the_datas_boxes_then_predicts(
    shared_data: Path, tiny_compnet, lite0_backbone, tmp_path: Path, monkeypatch, caplog
):

    import occseg.inference.adapt as adapt_module
    import occseg.inference.predict as predict_module
    from occseg.inference.adapt import adapt_order_classifier

    data = read_dataset(write_coco_subset(shared_data, tmp_path / "g.json", [192]), images=tiny_compnet.images)
    model = tiny_compnet.model
    (im,) = data.images
    boxes = [i.box for i in im.instances if i.category == "person"]
    adapted = adapt_order_classifier(model, lite0_backbone, [(im, boxes)], progress=False, min_cells=1)
    assert adapted.bins == model.position.bins and adapted.weight.shape == model.position.weight.shape
    assert not torch.equal(adapted.weight, model.position.weight)
    # more cells than the cap: a seeded subset of max_cells of them (held in bounded memory), the same each time
    fitted = []
    real_fit = adapt_module.adapt_position_model

    def recording_fit(pm, x, y):
        fitted.append(len(y))
        return real_fit(pm, x, y)

    monkeypatch.setattr(adapt_module, "adapt_position_model", recording_fit)
    capped = [adapt_order_classifier(model, lite0_backbone, [(im, boxes)] * 3, progress=False, max_cells=40,
                                     min_cells=1) for _ in range(2)]  # fmt: skip
    assert fitted == [40, 40] and torch.equal(capped[0].weight, capped[1].weight)
    monkeypatch.undo()
    with caplog.at_level("WARNING"):  # too few cells: the classifier as trained
        assert adapt_order_classifier(model, lite0_backbone, [(im, boxes)], progress=False) is model.position
    assert "left as trained" in caplog.text

    used = []
    real = predict_module.prepare_scene
    monkeypatch.setattr(predict_module, "prepare_scene", lambda m, *a, **k: used.append(m.position) or real(m, *a, **k))
    monkeypatch.setattr(
        adapt_order_classifier, "__kwdefaults__", {**adapt_order_classifier.__kwdefaults__, "min_cells": 1}
    )
    pred = predict_dataset(tiny_compnet.folder, data, given_labels=True, classes=["person"], adapt_order=True,
                           progress=False)  # fmt: skip
    assert len(pred.images[0].instances) == 4
    assert len(used) == 1 and torch.allclose(used[0].weight, adapted.weight)  # the scenes read the refitted one
    with pytest.raises(ValueError, match="adapt_order refits the part-position classifier"):  # before the model is read
        predict_dataset(tmp_path / "no-model", data, order="counts", adapt_order=True, progress=False)


def test_the_cells_with_the_smallest_keys_are_kept_in_their_order():

    from occseg.inference.adapt import _smallest_keys

    xs = [torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [4.0], [5.0]])]
    ys = [torch.tensor([10, 20]), torch.tensor([30, 40, 50])]
    keys = [torch.tensor([0.5, 0.1]), torch.tensor([0.9, 0.2, 0.3])]
    (x,), (y,), (k,) = _smallest_keys(xs, ys, keys, 3)
    assert y.tolist() == [20, 40, 50] and x[:, 0].tolist() == [2.0, 4.0, 5.0]
    assert k.tolist() == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)")
def test_adapt_order_on_cpu_and_cuda_agrees(shared_data: Path, tiny_compnet, tmp_path: Path, monkeypatch):
    from occseg.evaluation import mask_iou
    from occseg.inference.adapt import adapt_order_classifier

    data = read_dataset(write_coco_subset(shared_data, tmp_path / "g.json", [192]), images=tiny_compnet.images)
    monkeypatch.setattr(
        adapt_order_classifier, "__kwdefaults__", {**adapt_order_classifier.__kwdefaults__, "min_cells": 1}
    )
    preds = {
        device: predict_dataset(
            tiny_compnet.folder,
            data,
            given_labels=True,
            classes=["person"],
            adapt_order=True,
            device=device,
            progress=False,
        )  # fmt: skip
        for device in ("cpu", "cuda")
    }
    (a,), (b,) = preds["cpu"].images, preds["cuda"].images
    assert a.extra["order"] == b.extra["order"]
    for x, y in zip(a.instances, b.instances):
        assert x.id == y.id
        for which in ("mask", "amodal_mask"):
            mx, my = getattr(x, which).decode(), getattr(y, which).decode()
            assert np.array_equal(mx, my) or (mask_iou(mx, my) or 0.0) > 0.99, which


def test_names_back():
    from occseg.inference.predict import names_back

    renamed = {"Pedestrian": "person", "Person_sitting": "person", "Car": "car", "Cow": "animal"}
    assert names_back(renamed, ["Pedestrian", "Person_sitting", "Car", "Cow"]) == {"car": "Car", "animal": "Cow"}
    # the data also has a class named as the model's: its own objects would be renamed too, so no name goes back
    assert names_back(renamed, ["Pedestrian", "Person_sitting", "Car", "car", "Cow"]) == {"animal": "Cow"}
    assert names_back({}, ["car"]) == {}


def test_case_insensitive_classes():
    from occseg.inference.predict import case_insensitive_classes

    got = case_insensitive_classes(
        ["Car", "car", "Van", "PERSON", "Tram"], ["car", "person", "van", "VAN"], {"Tram": "car"}
    )
    assert got == {"Car": "car", "PERSON": "person"}  # "car" is the model's; "Van" is ambiguous; "Tram" is mapped


def test_predict_dataset_checks_its_arguments_before_any_work(tmp_path: Path):
    from occseg.data.annotation import Dataset

    empty = Dataset(images=[], categories=["person"], source=tmp_path, format="coco")
    missing = tmp_path / "no_model"  # never read: every argument is checked first
    with pytest.raises(ValueError, match=r"boxes must be one of auto, amodal, visible, not 'amodel'"):
        predict_dataset(missing, empty, boxes="amodel")
    with pytest.raises(ValueError, match=r"min_height must be a number of pixels >= 0, not nan"):
        predict_dataset(missing, empty, min_height=float("nan"))
    with pytest.raises(TypeError, match=r"dataset must be a Dataset, not str: read_dataset\(path\) reads one"):
        predict_dataset(missing, "gt.json")
    with pytest.raises(ValueError, match=r"device: 'xyz' is not a torch device"):
        predict_dataset(missing, empty, device="xyz")
