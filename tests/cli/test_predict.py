"""``occseg predict`` end to end on coco128-seg images (src/occseg/cli/predict.py), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from occseg.data.readers import read_dataset
from tests.cli.invoke import BOXES_192, IMAGE_192, error_lines, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_predict_writes_a_readable_predictions_file(tiny_compnet, tmp_path: Path, caplog):
    out = tmp_path / "p.json"
    res = run(
        "predict", "--model", tiny_compnet.folder, "--data", tiny_compnet.data, "--images", tiny_compnet.images,
        "--given-labels", "--out", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    gt = read_dataset(tiny_compnet.data, images=tiny_compnet.images)
    want = {
        (i.id, im.image_id, i.category)
        for im in gt.images
        for i in im.instances
        if i.category in ("person", "giraffe") and not i.iscrowd
    }
    assert len(want) == 10
    pred = read_dataset(out)
    assert pred.format == "kins"
    got = {(i.id, im.image_id, i.category) for im in pred.images for i in im.instances}
    assert got == want  # every annotation of a model class, with its id, image and (given) class
    assert "compnet: 10 object(s) in 4 image(s)" in res.output
    others = sum(
        1 for im in gt.images for i in im.instances if i.category not in ("person", "giraffe") and not i.iscrowd
    )
    assert f"{others} annotated object(s) have a class the model" in caplog.text  # said, not silently dropped
    for im in pred.images:
        assert im.path.name == f"{im.image_id:012d}.jpg" and im.path.is_file()
        for i in im.instances:
            vis, amo = i.mask.decode(), i.amodal_mask.decode()
            assert vis.shape == amo.shape == (im.height, im.width)
            # (a visible mask may be empty: person 159 lies inside person 160's box and loses every pixel to it)
            assert amo.any() and not (vis & ~amo).any()
            assert 0.0 <= i.extra["score"] <= 1.0 and set(i.extra["class_scores"]) == {i.category}
            assert i.extra["given_box"] and i.amodal_box is not None


def test_predict_data_without_a_model_class_is_an_error_and_all_objects_predicts_them(
    tiny_compnet, one_image_json: Path, tmp_path: Path
):
    coco = json.loads(one_image_json.read_text())
    for cat in coco["categories"]:
        cat["name"] = f"thing {cat['id']}"  # no class the model knows
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(coco))
    out = tmp_path / "p.json"
    base = ("predict", "--model", tiny_compnet.folder, "--data", renamed, "--images", tiny_compnet.images, "--out", out)
    res = run(*base)
    assert res.exit_code == 2 and not out.exists()
    (line,) = error_lines(res)
    assert "have a class the model" in line and "the model's: person, giraffe" in line and "--all-objects" in line
    res = run(*base, "--all-objects")
    assert res.exit_code == 0, res.output
    want = {a["id"] for a in coco["annotations"] if not a.get("iscrowd")}
    (im,) = read_dataset(out).images
    assert {i.id for i in im.instances} == want and len(want) == 5  # four persons and the bat
    assert {i.category for i in im.instances} <= {"person", "giraffe"}  # each classified by the model
    res = run(*base, "--all-objects", "--classes", "thing 1")
    assert res.exit_code == 2 and "--classes or --all-objects, not both" in res.output


def test_predict_takes_a_class_differing_only_in_case_and_names_it_as_the_data_does(
    tiny_compnet, one_image_json: Path, tmp_path: Path, caplog
):
    coco = json.loads(one_image_json.read_text())
    for cat in coco["categories"]:
        if cat["name"] == "person":
            cat["name"] = "Person"  # as KITTI spells its classes
    renamed = tmp_path / "kitti_like.json"
    renamed.write_text(json.dumps(coco))
    out = tmp_path / "p.json"
    res = run("predict", "--model", tiny_compnet.folder, "--data", renamed, "--images", tiny_compnet.images,
              "--given-labels", "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "ignoring case: Person -> person" in caplog.text
    (im,) = read_dataset(out).images
    assert len(im.instances) == 4 and {i.category for i in im.instances} == {"Person"}
    assert all(set(i.extra["class_scores"]) == {"Person"} for i in im.instances)


def test_predict_class_map_takes_the_datas_classes_as_the_models_and_keeps_their_names(
    tiny_compnet, one_image_json: Path, tmp_path: Path, caplog
):
    data = _kitti_like(one_image_json, tmp_path, person="Pedestrian")
    out = tmp_path / "p.json"
    base = ("predict", "--model", tiny_compnet.folder, "--data", data, "--images", tiny_compnet.images, "--out", out)
    res = run(*base, "--given-labels")
    assert res.exit_code == 2 and "--class-map" in error_lines(res)[0] and not out.exists()  # no class it knows
    cmap = tmp_path / "map.txt"
    cmap.write_text("Pedestrian person\nCyclist person  # not in this data\n")
    res = run(*base, "--given-labels", "--class-map", cmap)
    assert res.exit_code == 0, res.output
    assert "taken as the model's by the class map: Pedestrian -> person" in caplog.text
    assert "the class map names 'Cyclist', which" in caplog.text
    (im,) = read_dataset(out).images
    assert len(im.instances) == 4 and {i.category for i in im.instances} == {"Pedestrian"}
    assert all(set(i.extra["class_scores"]) == {"Pedestrian"} for i in im.instances)
    # classified, not given: the model's other class keeps its own name
    res = run(*base, "--class-map", cmap)
    assert res.exit_code == 0, res.output
    (im,) = read_dataset(out).images
    assert all(set(i.extra["class_scores"]) == {"Pedestrian", "giraffe"} for i in im.instances)
    # two data classes taken as one model class: the predictions cannot be named back, and a warning says so
    cmap.write_text("Pedestrian person\nbaseball bat: person\n")
    caplog.clear()
    res = run(*base, "--given-labels", "--class-map", cmap)
    assert res.exit_code == 0, res.output
    assert "predictions of person keep the model's class name" in caplog.text
    (im,) = read_dataset(out).images
    assert len(im.instances) == 5 and {i.category for i in im.instances} == {"person"}


def test_predict_classes_the_model_does_not_know_are_classified_with_a_warning(
    tiny_compnet, one_image_json: Path, tmp_path: Path, caplog
):
    out = tmp_path / "p.json"
    res = run("predict", "--model", tiny_compnet.folder, "--data", one_image_json, "--images", tiny_compnet.images,
              "--classes", "baseball bat", "--given-labels", "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (
        f"the model {tiny_compnet.folder} does not know the class(es) asked for 'baseball bat' (its classes: person, "
        "giraffe): their objects are classified by the model, not given their class (--given-labels)"
    ) in caplog.text
    (im,) = read_dataset(out).images
    assert len(im.instances) == 1 and im.instances[0].category in {"person", "giraffe"}


def test_predict_class_map_to_a_class_the_model_does_not_know_is_an_error(
    tiny_compnet, one_image_json: Path, tmp_path: Path
):
    cmap = tmp_path / "map.json"
    cmap.write_text('{"person": "pedestrian"}')
    out = tmp_path / "p.json"
    res = run("predict", "--model", tiny_compnet.folder, "--data", one_image_json, "--images", tiny_compnet.images,
              "--class-map", cmap, "--out", out)  # fmt: skip
    assert res.exit_code == 2 and not out.exists()
    assert error_lines(res) == [
        f"occseg: error: the class map maps to 'pedestrian', which the model {tiny_compnet.folder} does not know "
        "(model classes: person, giraffe)"
    ]
    res = run("predict", "--method", "box-fill", "--data", one_image_json, "--images", tiny_compnet.images,
              "--class-map", cmap, "--out", out)  # fmt: skip
    assert res.exit_code == 2 and "--class-map is for compnet" in res.output
    res = run("predict", "--method", "box-fill", "--data", one_image_json, "--images", tiny_compnet.images,
              "--adapt-order", "--out", out)  # fmt: skip
    assert res.exit_code == 2 and "--adapt-order is for compnet" in res.output
    res = run("predict", "--model", tiny_compnet.folder, "--data", one_image_json, "--images", tiny_compnet.images,
              "--adapt-order", "--order-cue", "counts", "--out", out)  # fmt: skip
    assert res.exit_code == 2 and not out.exists()
    assert "adapt_order refits the part-position classifier" in error_lines(res)[0]


def test_predict_adapt_order_runs_and_writes_predictions(tiny_compnet, one_image_json: Path, tmp_path: Path):
    out = tmp_path / "p.json"
    res = run("predict", "--model", tiny_compnet.folder, "--data", one_image_json, "--images", tiny_compnet.images,
              "--given-labels", "--adapt-order", "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    (im,) = read_dataset(out).images
    assert len(im.instances) == 4 and np.array(im.extra["order"]).shape == (4, 4)


@pytest.mark.parametrize("mode", ["off", "nod", "od"])
def test_predict_reasoning_modes(tiny_compnet, one_image_json: Path, tmp_path: Path, mode: str):
    out = tmp_path / "p.json"
    res = run(
        "predict", "--model", tiny_compnet.folder, "--data", one_image_json, "--images", tiny_compnet.images,
        "--given-labels", "--reasoning", mode, "--classes", "person", "--out", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    raw = json.loads(out.read_text())
    (img,) = raw["images"]
    assert img["reasoning"] == mode
    assert sorted(a["id"] for a in raw["annotations"]) == [257, 258, 259, 260]  # not the baseball bat
    pred = read_dataset(out)
    vis = [i.mask.decode() for i in pred.images[0].instances]
    overlap = sum(int((vis[a] & vis[b]).sum()) for a in range(4) for b in range(a + 1, 4))
    if mode == "off":
        assert overlap > 0  # independent objects claim the same pixels
    else:
        assert overlap == 0  # the reasoning gives each pixel to one object


def test_predict_and_segment_order_cue(tiny_compnet, one_image_json: Path, tmp_path: Path):
    import shutil

    for cue in ("counts", "position"):
        out = tmp_path / f"{cue}.json"
        res = run(
            "predict", "--model", tiny_compnet.folder, "--data", one_image_json, "--images", tiny_compnet.images,
            "--given-labels", "--classes", "person", "--order-cue", cue, "--out", out,
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert len(read_dataset(out).images[0].instances) == 4
    # a model saved before the classifier existed: no position vote, counts still work
    old = tmp_path / "old"
    shutil.copytree(tiny_compnet.folder, old)
    raw = json.loads((old / "model.json").read_text())
    del raw["position_bins"]
    (old / "model.json").write_text(json.dumps(raw))
    args = ["--model", old, "--data", one_image_json, "--images", tiny_compnet.images, "--classes", "person"]
    res = run("predict", *args, "--order-cue", "position", "--out", tmp_path / "x.json")
    assert res.exit_code != 0 and not (tmp_path / "x.json").exists()
    assert error_lines(res) == [
        f"occseg: error: {old}: this model has no part-position classifier (trained without one, or before it "
        "existed), so the order cannot come from it: retrain the model, or decide the order by pixel counts "
        "(order='counts', --order-cue counts)"
    ]
    assert run("predict", *args, "--out", tmp_path / "auto.json").exit_code == 0  # auto: counts
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"box": b} for b in BOXES_192]))
    res = run("segment", "--model", old, "--image", tiny_compnet.images / IMAGE_192, "--boxes", boxes,
              "--out", tmp_path / "seg", "--order-cue", "position")  # fmt: skip
    assert res.exit_code == 2 and "has no part-position classifier" in res.output and "--order-cue counts" in res.output


def test_predict_boxes_only_data_warns_nothing_about_masks(tiny_compnet, one_image_json: Path, tmp_path: Path):
    """Predictions need boxes only: the GT file here has no segmentation at all."""
    raw = json.loads(one_image_json.read_text())
    assert all("segmentation" not in a for a in raw["annotations"])
    res = run(
        "predict",
        "--model",
        tiny_compnet.folder,
        "--data",
        one_image_json,
        "--images",
        tiny_compnet.images,
        "--classes",
        "person",
        "--reasoning",
        "off",
        "--out",
        tmp_path / "p.json",
    )
    assert res.exit_code == 0, res.output


def test_predict_amodal_boxes_asked_of_data_without_them_and_min_height_above_every_object(
    tiny_compnet, one_image_json: Path, tmp_path: Path
):
    out = tmp_path / "p.json"
    base = ("predict", "--data", one_image_json, "--images", tiny_compnet.images, "--out", out)
    for method in (("--model", tiny_compnet.folder), ("--method", "box-fill")):
        res = run(*base, *method, "--boxes", "amodal")  # COCO has visible boxes only
        assert res.exit_code == 2 and not out.exists(), res.output
        assert "boxes='amodal' (--boxes amodal) but annotation" in error_lines(res)[0]
        assert "has no amodal box; use boxes='auto' or 'visible' (--boxes auto|visible)" in error_lines(res)[0]
        res = run(*base, *method, "--min-height", "100000")
        assert res.exit_code == 2 and not out.exists(), res.output
        assert "object(s) to predict are less than" in error_lines(res)[0] and "(--min-height)" in error_lines(res)[0]


def test_predict_warns_when_no_object_is_predicted(train_json: Path, tmp_path: Path):
    gt = json.loads(train_json.read_text())
    used = {a["category_id"] for a in gt["annotations"]}
    unused = next(c["name"] for c in gt["categories"] if c["id"] not in used)
    out = tmp_path / "p.json"
    res = run("predict", "--data", train_json, "--method", "box-fill", "--classes", unused, "--out", out)
    assert res.exit_code == 0 and out.is_file(), res.output
    assert "occseg: warning: no object was predicted" in res.output and "0 object(s)" in res.output


def _kitti_like(one_image_json: Path, tmp_path: Path, **names: str) -> Path:
    coco = json.loads(one_image_json.read_text())
    for cat in coco["categories"]:
        cat["name"] = names.get(cat["name"], cat["name"])
    renamed = tmp_path / "kitti_like.json"
    renamed.write_text(json.dumps(coco))
    return renamed
