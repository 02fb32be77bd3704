"""``occseg train`` / ``predict`` / ``segment`` end to end on a few coco128-seg images, and their errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from occseg.cli.main import cli
from occseg.cli.options import parse_class_map
from occseg.compnet.model import load_model
from occseg.data.masks import decode
from occseg.data.readers import read_dataset
from tests.compnet.conftest import COCO128_IMAGES, write_coco_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE_192 = "000000000192.jpg"  # 640x480, four persons (three overlapping) and a baseball bat
BOXES_192 = [[349, 253, 481, 473], [437, 218, 515, 466], [268, 179, 379, 415]]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if line.startswith("occseg: error:")]


# ------------------------------------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def train_json(shared_data: Path, tmp_path_factory) -> Path:
    """Boxes only (no segmentation) of 2 images with one person each: 000000000036 and 000000000322."""
    return write_coco_subset(shared_data, tmp_path_factory.mktemp("train") / "sub.json", [36, 322])


def _train(train_json: Path, shared_data: Path, out: Path, *extra: str):
    return run(
        "train", "--data", train_json, "--images", shared_data / COCO128_IMAGES, "--out", out,
        "--seed", "0", "--concepts", "16", "--mixtures", "2", *extra,
    )  # fmt: skip


def test_train_writes_a_model_and_repeats_byte_for_byte(train_json: Path, shared_data: Path, tmp_path: Path):
    res = _train(train_json, shared_data, tmp_path / "m1", "--classes", "person")
    assert res.exit_code == 0, res.output
    assert "trained on 2 boxes (person: 2), 16 concepts, mixtures {'person': 1}" in res.output
    assert sorted(p.name for p in (tmp_path / "m1").iterdir()) == ["model.json", "model.safetensors"]
    model = load_model(tmp_path / "m1")
    s = model.settings
    assert s.classes == ["person"] and s.num_concepts == 16 and s.mixtures == {"person": 1}
    assert (s.backbone, s.channels, s.stride, s.target_height) == ("efficientnet_lite0", 112, 16, 224)
    assert s.training["crops_per_class"] == {"person": 2} and s.training["class_map"] == {}
    assert s.training["data"] == str(train_json) and s.training["seed"] == 0
    assert "note" in s.training["classes"]["person"]  # 2 samples: 1 mixture instead of 2
    # the same command again: the same bytes
    res2 = _train(train_json, shared_data, tmp_path / "m2", "--classes", "person")
    assert res2.exit_code == 0, res2.output
    a, b = (tmp_path / "m1" / "model.safetensors").read_bytes(), (tmp_path / "m2" / "model.safetensors").read_bytes()
    assert a == b
    ja, jb = (json.loads((tmp_path / m / "model.json").read_text()) for m in ("m1", "m2"))
    ja["training"].pop("seconds"), jb["training"].pop("seconds")  # wall time is recorded, the rest is equal
    assert ja == jb
    # and another seed gives other concepts
    res3 = run(
        "train", "--data", train_json, "--images", shared_data / COCO128_IMAGES, "--out", tmp_path / "m3",
        "--seed", "1", "--concepts", "16", "--classes", "person",
    )  # fmt: skip
    assert res3.exit_code == 0, res3.output
    assert not np.array_equal(load_model(tmp_path / "m3").concepts.numpy(), model.concepts.numpy())


@pytest.mark.parametrize(
    "name, text",
    [
        ("map.txt", "# dataset class -> model class\nperson human\numbrella: thing\n"),
        ("map.json", '{"person": "human", "umbrella": "thing"}'),
    ],
)
def test_train_with_a_class_map_file(train_json: Path, shared_data: Path, tmp_path: Path, name: str, text: str):
    cmap = tmp_path / name
    cmap.write_text(text)
    res = _train(train_json, shared_data, tmp_path / "m", "--classes", "human", "--class-map", cmap)
    assert res.exit_code == 0, res.output
    s = load_model(tmp_path / "m").settings
    assert s.classes == ["human"] and s.training["crops_per_class"] == {"human": 2}
    # the line to a class not trained is left out of the model, with a note
    assert s.training["class_map"] == {"person": "human"}
    assert "lines that map to classes not trained here are left out of the model: umbrella -> thing" in res.output


def test_parse_class_map_formats(tmp_path: Path):
    j = tmp_path / "map.json"
    j.write_text(json.dumps({"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}))
    assert parse_class_map(str(j)) == {"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}
    t = tmp_path / "map.txt"
    t.write_text("car vehicle\n\ntruck: vehicle   # a comment\nbus -> vehicle\n")
    assert parse_class_map(str(t)) == {"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}
    t.write_text("traffic light: road sign\nfire hydrant -> street thing\n")  # names with spaces
    assert parse_class_map(str(t)) == {"traffic light": "road sign", "fire hydrant": "street thing"}
    b = tmp_path / "braces.txt"
    b.write_text('  {"car": "vehicle"}')  # JSON is recognised by its content too
    assert parse_class_map(str(b)) == {"car": "vehicle"}
    t.write_text("\ufeffcar vehicle\ncar vehicle\n")  # a byte-order mark, and the same line twice
    assert parse_class_map(str(t)) == {"car": "vehicle"}
    assert parse_class_map(None) == {}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("map.json", '{"car": "vehicle",\n "truck": }', r"map.json: not valid JSON \(.* at line 2, column 11\)"),
        ("map.json", '["car", "vehicle"]', r"map.json: a class map must be a JSON object"),
        ("map.json", '{"car": 3}', r"map.json: a class map must be a JSON object"),
        ("map.txt", "car vehicle\ntruck big vehicle\n", r"map.txt, line 2: expected 'dataset_class model_class'"),
        ("map.txt", "car\n", r"map.txt, line 1: expected 'dataset_class model_class' .*, got 'car'"),
        ("map.txt", "car:\n", r"map.txt, line 1: expected 'dataset_class model_class' .*, got 'car:'"),
        ("map.txt", "truck person\ncar car\ntruck car\n", r"map.txt, lines 1 and 3: 'truck' is mapped to two model "
         r"classes, 'person' and 'car'"),
        ("map.json", '{"car": "person", "car": "dog"}', r"map.json: the class map gives 'car' two model classes, "
         r"'person' and 'dog'"),
        ("map.txt", b"\xe9t\xe9 person\n", r"map.txt: not a UTF-8 text file \(at byte 0\), so not a class map"),
        ("map.json", "[" * 100000 + "]" * 100000, r"map.json: not valid JSON for occseg \(.* nested too deeply\)"),
    ],
)  # fmt: skip
def test_a_bad_class_map_names_the_file_and_line(tmp_path: Path, name: str, text: str, message: str):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=message):
        parse_class_map(str(p))
    data = tmp_path / "data.json"
    data.write_text("{}")  # the map is read first
    res = run("train", "--data", data, "--classes", "person", "--class-map", p, "--out", tmp_path / "m")
    assert res.exit_code == 2 and len(error_lines(res)) == 1, res.output
    assert str(p) in error_lines(res)[0]
    assert not (tmp_path / "m").exists()


def test_train_unknown_class_lists_the_dataset_classes(train_json: Path, shared_data: Path, tmp_path: Path):
    res = _train(train_json, shared_data, tmp_path / "m", "--classes", "cat")
    assert res.exit_code == 2  # a one-line error, like every other bad input
    assert "occseg: error: no training objects of class(es) ['cat']" in res.output
    assert "dataset classes: person, bicycle, car" in res.output
    assert not (tmp_path / "m").exists()


def test_train_min_height_filters_every_box(train_json: Path, shared_data: Path, tmp_path: Path):
    res = _train(train_json, shared_data, tmp_path / "m", "--classes", "person", "--min-height", "1000")
    assert res.exit_code != 0 and "(boxes >= 1000 px)" in res.output


def test_train_shows_the_readers_warnings_and_what_it_left_out(
    train_json: Path, shared_data: Path, tmp_path: Path, caplog
):
    coco = json.loads(train_json.read_text())
    first, second = (a for a in coco["annotations"] if a["category_id"] == 1)  # the two persons, 465 / 276 px tall
    first["bbox"] = [10, 10, 0, 50]  # zero width: the reader skips it and says so
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    caplog.set_level("INFO", logger="occseg.compnet.samples")
    res = _train(bad, shared_data, tmp_path / "m", "--classes", "person", "--min-height", "300")
    assert res.exit_code != 0  # the other person is lower than 300 px: nothing is left to train on
    warning = next(line for line in res.output.splitlines() if line.startswith("occseg: warning:"))
    assert re.match(r"occseg: warning: bad\.json: image \d+ \(.*\), annotation \d+: zero-area box", warning)
    assert "left out: 1 lower than 300 px" in caplog.text


# ----------------------------------------------------------------------------------------------------- predict


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


def _kitti_like(one_image_json: Path, tmp_path: Path, **names: str) -> Path:
    coco = json.loads(one_image_json.read_text())
    for cat in coco["categories"]:
        cat["name"] = names.get(cat["name"], cat["name"])
    renamed = tmp_path / "kitti_like.json"
    renamed.write_text(json.dumps(coco))
    return renamed


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


@pytest.fixture(scope="module")
def one_image_json(shared_data: Path, tmp_path_factory) -> Path:
    return write_coco_subset(shared_data, tmp_path_factory.mktemp("p") / "g.json", [192])


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
        "existed), so the order cannot come from it: retrain the model, or decide the order by pixel counts"
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


# ----------------------------------------------------------------------------------------------------- segment


def _segment(tiny_compnet, boxes_file: Path, out: Path, *extra: str):
    return run(
        "segment", "--model", tiny_compnet.folder, "--image", tiny_compnet.images / IMAGE_192,
        "--boxes", boxes_file, "--out", out, *extra,
    )  # fmt: skip


RESULT_KEYS = {"image", "reasoning", "order_cue", "objects", "order", "order_confidence", "broken_cycles", "warnings"}
OBJECT_KEYS = {
    "box", "class", "confidence", "mixture", "class_scores", "amodal_box",
    "visible_mask", "amodal_mask", "occluded_mask", "layer", "group",
}  # fmt: skip


def test_segment_writes_overlay_and_result(tiny_compnet, tmp_path: Path, monkeypatch):
    import occseg.inference.scene as scene_module

    passes = []
    real = scene_module.prepare_scene
    monkeypatch.setattr(scene_module, "prepare_scene", lambda *a, **k: passes.append(len(a[3])) or real(*a, **k))
    boxes = tmp_path / "boxes.json"
    entries = [{"box": BOXES_192[0], "class": "person"}, {"box": BOXES_192[1]}, {"box": [268, 179, 379, 700]}]
    boxes.write_text(json.dumps(entries))  # the last box sticks out of the image: clipped with a warning
    out = tmp_path / "seg"
    res = _segment(tiny_compnet, boxes, out)
    assert res.exit_code == 0, res.output
    assert passes == [3]  # one backbone pass per box, for both panels
    assert "extends outside the 640x480 image; clipped to [268.0, 179.0, 379.0, 480.0]" in res.output
    with Image.open(out / "overlay.png") as im:
        assert im.mode == "RGB" and im.height >= 480 and im.width >= 2 * 640  # no reasoning | reasoning panels
    result = json.loads((out / "result.json").read_text())
    assert set(result) == RESULT_KEYS
    assert result["reasoning"] == "nod" and result["image"].endswith(IMAGE_192)
    assert result["order_cue"] == "position"  # the model has the part-position classifier
    assert len(result["warnings"]) == 1 and "entry 2" in result["warnings"][0]
    objs = result["objects"]
    assert len(objs) == 3 and all(set(o) == OBJECT_KEYS for o in objs)
    assert objs[0]["class"] == "person" and list(objs[0]["class_scores"]) == ["person"]  # class given
    assert set(objs[1]["class_scores"]) == {"person", "giraffe"}  # class not given: classified
    assert objs[2]["box"] == [268.0, 179.0, 379.0, 480.0]
    assert len(result["order"]) == 3 and all(len(r) == 3 for r in result["order"])
    conf = np.array(result["order_confidence"])
    assert conf.shape == (3, 3) and np.array_equal(conf, conf.T) and ((conf >= 0) & (conf < 1)).all()
    assert np.array(result["order"]).any() and np.array_equal(conf > 0, np.array(result["order"]) != 0)
    layers = [o["layer"] for o in objs]
    classes = [o["class"] for o in objs]
    listed = ", ".join(f"{k}: {c} (layer {lay})" for k, (c, lay) in enumerate(zip(classes, layers)))
    assert f"3 objects: {listed}\n" in res.output  # numbered as in the overlay's tags and the relations
    printed = re.findall(r"object (\d) is in front of object (\d) \(confidence ([0-9.]+)\)", res.output)
    assert {(int(i), int(j)) for i, j, _ in printed} == set(zip(*np.nonzero(np.array(result["order"]) > 0)))
    assert all(abs(float(c) - conf[int(i), int(j)]) <= 0.006 for i, j, c in printed)  # every relation, printed
    masks = []
    for o in objs:
        vis, amo, occ = (decode(o[k]) for k in ("visible_mask", "amodal_mask", "occluded_mask"))
        assert vis.shape == (480, 640)
        assert np.array_equal(occ, amo & ~vis) and not (vis & ~amo).any()
        masks.append(vis)
    assert not any((masks[a] & masks[b]).any() for a in range(3) for b in range(a + 1, 3))  # od: disjoint


def test_segment_without_reasoning_has_one_panel(tiny_compnet, tmp_path: Path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"box": b, "class": "person"} for b in BOXES_192[:2]]))
    res = _segment(tiny_compnet, boxes, tmp_path / "seg", "--reasoning", "off")
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "seg" / "overlay.png") as im:
        single_width = im.width
    assert single_width < 2 * 640
    result = json.loads((tmp_path / "seg" / "result.json").read_text())
    assert result["reasoning"] == "off" and result["order_cue"] is None


@pytest.fixture(scope="module")
def segment_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A saved (random) model folder and a 640x480 image: the boxes file is checked before the model is used,
    so these error tests need no real data."""
    from occseg.compnet.model import save_model
    from occseg.data.images import save_rgb
    from tests.compnet.conftest import random_model

    root = tmp_path_factory.mktemp("segment_inputs")
    save_model(random_model(), root / "model")
    save_rgb(root / "img.png", np.full((480, 640, 3), 90, np.uint8))
    return root / "model", root / "img.png"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"box": [1, 2, 3, 4]}', r"boxes.json: expected a JSON list"),
        ('[{"box": [10, 10, 50, 50]}, {"class": "person"}]', r'boxes.json: entry 1 has no "box"'),
        (
            '[{"box": [100, 100, 50, 150]}]',
            r"occseg: error: \S*boxes.json entry 0: inverted box \[100.0, 100.0, 50.0, 150.0\] \(x2 < x1 or y2 < y1\)$",
        ),
        ('[{"box": [10, 10, 10, 50]}]', r"boxes.json entry 0: zero-area box"),
        (
            '[{"box": [700, 10, 800, 100]}]',
            r"boxes.json entry 0: box \[700.0, 10.0, 800.0, 100.0\] lies outside the 640x480",
        ),
        ('[{"box": [10, 10, 50, 50], "class": 3}]', r"boxes.json: entry 0 has a non-string class 3"),
        ('[{"box": [10, 10, 50]}]', r"boxes.json entry 0: a box needs 4 numbers"),
        ('[{"box": [true, 100, 200, 300]}]', r"boxes.json entry 0: box values must be numbers, got \[True, 100"),
        ('[{"box": ["100", 10, 200, 300]}]', r"boxes.json entry 0: box values must be numbers, got \['100', 10"),
        ('[\n  {"box": [10, 10, 50, 50]},\n  oops\n]', r"boxes.json: not valid JSON \(.* at line 3, column 3\)"),
        ('[{"box": [100, 50, 300, 50.5]}]', r"boxes.json entry 0: box .* holds no pixel centre \(k \+ 0.5\) in y"),
        ('[{"box": [10, 10, 50, 50], "class": " "}]', r"boxes.json: entry 0 has an empty class name; leave"),
    ],
)
def test_segment_boxes_file_errors(segment_inputs, tmp_path: Path, content: str, message: str):
    import re

    model_dir, image = segment_inputs
    boxes = tmp_path / "boxes.json"
    boxes.write_text(content)
    out = tmp_path / "seg"
    res = run("segment", "--model", model_dir, "--image", image, "--boxes", boxes, "--out", out)
    assert res.exit_code == 2, res.output
    errs = error_lines(res)
    assert len(errs) == 1 and re.search(message, errs[0]), res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_segment_unknown_class_names_file_entry_and_model_classes(tiny_compnet, tmp_path: Path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"box": BOXES_192[0], "class": "person"}, {"box": BOXES_192[1], "class": "cat"}]))
    res = _segment(tiny_compnet, boxes, tmp_path / "seg")
    assert res.exit_code == 2
    assert error_lines(res) == [
        f"occseg: error: {boxes}: entry 1 has class 'cat', which the model does not know "
        "(model classes: person, giraffe)"
    ]


def test_segment_empty_list_warns_and_writes_an_empty_result(tiny_compnet, tmp_path: Path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text("[]")
    res = _segment(tiny_compnet, boxes, tmp_path / "seg")
    assert res.exit_code == 0, res.output
    assert "lists no boxes" in res.output
    assert "0 objects\n" in res.output and "0 objects:" not in res.output
    result = json.loads((tmp_path / "seg" / "result.json").read_text())
    assert result["objects"] == [] and result["order"] == []
    assert (tmp_path / "seg" / "overlay.png").is_file()


def test_segment_box_that_is_not_a_list(segment_inputs, tmp_path: Path):
    model_dir, image = segment_inputs
    boxes = tmp_path / "boxes.json"
    boxes.write_text('[{"box": 5}]')
    res = run("segment", "--model", model_dir, "--image", image, "--boxes", boxes, "--out", tmp_path / "seg")
    assert res.exit_code == 2 and len(error_lines(res)) == 1 and "entry 0" in error_lines(res)[0]


def test_segment_with_unreadable_or_other_backbone_weights(train_json: Path, shared_data: Path, tmp_path: Path):
    assert _train(train_json, shared_data, tmp_path / "m", "--classes", "person").exit_code == 0
    image = shared_data / COCO128_IMAGES / "000000000036.jpg"
    boxes = tmp_path / "boxes.json"
    boxes.write_text('[{"box": [10, 10, 200, 300]}]')
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk\n")
    args = ("segment", "--model", tmp_path / "m", "--image", image, "--boxes", boxes, "--out", tmp_path / "seg")
    res = run(*args, "--backbone-weights", junk)
    assert res.exit_code == 2 and "Traceback" not in res.output
    (err,) = error_lines(res)
    assert err.endswith(
        f"cannot read weights file {junk} as a plain state dict (only tensors are loaded): it is neither a torch.save "
        "file nor a .safetensors file"
    )
    res = run(*args, "--backbone-weights", "random")
    assert res.exit_code == 2
    (err,) = error_lines(res)
    assert "model does not match the backbone: backbone weights: learned on" in err and "given random" in err
    assert not (tmp_path / "seg").exists()
    assert run(*args).exit_code == 0  # the weights it was learned with


def test_predict_and_evaluate_check_their_output_paths_first(tmp_path: Path, train_json: Path):
    folder = tmp_path / "adir"
    folder.mkdir()
    res = run("predict", "--data", train_json, "--method", "box-fill", "--out", folder)
    assert res.exit_code == 2 and "'--out': File" in res.output and "is a directory" in res.output
    a_file = tmp_path / "afile"
    a_file.write_text("keep")
    res = run("evaluate", "--gt", train_json, "--pred", train_json, "--out", a_file)
    assert res.exit_code == 2 and "is a file" in res.output and a_file.read_text() == "keep"


def test_commands_refuse_to_overwrite_their_input_or_write_to_an_empty_path(
    tmp_path: Path, train_json: Path, segment_inputs
):
    data = tmp_path / "gt.json"
    data.write_bytes(train_json.read_bytes())
    res = run("predict", "--data", data, "--method", "box-fill", "--out", data)
    assert res.exit_code == 2 and error_lines(res) == [
        f"occseg: error: --out {data} is the input file {data}: writing there would overwrite it; choose another path"
    ]
    assert data.read_bytes() == train_json.read_bytes()  # the annotations are still there
    model_dir, image = segment_inputs
    boxes = tmp_path / "result.json"
    boxes.write_text('[{"box": [10, 10, 50, 50]}]')
    res = run("segment", "--model", model_dir, "--image", image, "--boxes", boxes, "--out", tmp_path)
    assert res.exit_code == 2 and "result.json is the input file" in error_lines(res)[0]
    assert boxes.read_text() == '[{"box": [10, 10, 50, 50]}]'
    for args in (
        ("train", "--data", data, "--classes", "person"),
        ("evaluate", "--gt", data, "--pred", data),
        ("segment", "--model", model_dir, "--image", image, "--boxes", boxes),
    ):
        res = run(*args, "--out", "")
        assert res.exit_code == 2 and "Invalid value for '--out': is empty: name a folder" in res.output, args
    res = run("predict", "--data", data, "--method", "box-fill", "--out", " ")
    assert res.exit_code == 2 and "Invalid value for '--out': is empty: name a file" in res.output


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


def test_segment_checks_where_it_writes_before_any_work(segment_inputs, tmp_path: Path):
    model_dir, image = segment_inputs
    boxes = tmp_path / "boxes.json"
    boxes.write_text('[{"box": [10, 10, 50, 50]}]')
    out = tmp_path / "seg"
    (out / "result.json").mkdir(parents=True)  # result.json cannot be written: nothing may be written at all
    res = run("segment", "--model", model_dir, "--image", image, "--boxes", boxes, "--out", out)
    assert res.exit_code == 2, res.output
    assert error_lines(res) == [
        f"occseg: error: --out {out}: {out / 'result.json'} is a folder, so result.json cannot be written there"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("segment", "--model", model_dir, "--image", image, "--boxes", boxes, "--out", blocker / "seg")
    assert res.exit_code == 2 and "is not a folder" in error_lines(res)[0], res.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--seed", "-1"), "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295"),
        (("--concepts", "0"), "Invalid value for '--concepts': 0 is not in the range x>=1"),
        (("--mixtures", "0"), "Invalid value for '--mixtures': 0 is not in the range x>=1"),
        (("--min-height", "nan"), "Invalid value for '--min-height': nan is not a finite number"),
    ],
)
def test_train_refuses_bad_numbers_before_reading_data(tmp_path: Path, extra, message):
    res = run("train", "--data", tmp_path, "--classes", "person", "--out", tmp_path / "m", *extra)
    assert res.exit_code == 2 and message in res.output, res.output


def test_train_checks_the_image_size_against_the_annotation(train_json: Path, shared_data: Path, tmp_path: Path):
    data = json.loads(train_json.read_text())
    data["images"][0]["width"] //= 2  # the annotation no longer describes the picture
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    res = _train(bad, shared_data, tmp_path / "m", "--classes", "person")
    assert res.exit_code == 2, res.output
    assert "but the annotation says" in res.output and data["images"][0]["file_name"] in res.output
    assert not (tmp_path / "m" / "model.json").exists()


def test_train_takes_a_class_named_twice_once(train_json: Path, shared_data: Path, tmp_path: Path):
    res = _train(train_json, shared_data, tmp_path / "m", "--classes", "person,person")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "m").settings.classes == ["person"]
