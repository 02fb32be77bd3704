"""``occseg train`` end to end on a few coco128-seg boxes (src/occseg/cli/train.py), and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from occseg.cli.train import sample_head_boxes
from occseg.compnet.model import load_model
from occseg.head.learn import ImageBoxes
from tests.cli.invoke import run, train_cli
from tests.compnet.conftest import COCO128_IMAGES, write_coco_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_train_writes_a_model_and_repeats_byte_for_byte(train_json: Path, shared_data: Path, tmp_path: Path):
    res = train_cli(train_json, shared_data, tmp_path / "m1", "--classes", "person")
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
    res2 = train_cli(train_json, shared_data, tmp_path / "m2", "--classes", "person")
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
    res = train_cli(train_json, shared_data, tmp_path / "m", "--classes", "human", "--class-map", cmap)
    assert res.exit_code == 0, res.output
    s = load_model(tmp_path / "m").settings
    assert s.classes == ["human"] and s.training["crops_per_class"] == {"human": 2}
    # the line to a class not trained is left out of the model, with a note
    assert s.training["class_map"] == {"person": "human"}
    assert "lines that map to classes not trained here are left out of the model: umbrella -> thing" in res.output


def test_train_unknown_class_lists_the_dataset_classes(train_json: Path, shared_data: Path, tmp_path: Path):
    res = train_cli(train_json, shared_data, tmp_path / "m", "--classes", "cat")
    assert res.exit_code == 2  # a one-line error, like every other bad input
    assert "occseg: error: no training objects of class(es) ['cat']" in res.output
    assert "dataset classes: person, bicycle, car" in res.output
    assert not (tmp_path / "m").exists()


def test_train_min_height_filters_every_box(train_json: Path, shared_data: Path, tmp_path: Path):
    res = train_cli(train_json, shared_data, tmp_path / "m", "--classes", "person", "--min-height", "1000")
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
    res = train_cli(bad, shared_data, tmp_path / "m", "--classes", "person", "--min-height", "300")
    assert res.exit_code != 0  # the other person is lower than 300 px: nothing is left to train on
    warning = next(line for line in res.output.splitlines() if line.startswith("occseg: warning:"))
    assert re.match(r"occseg: warning: bad\.json: image \d+ \(.*\), annotation \d+: zero-area box", warning)
    assert "left out: 1 lower than 300 px" in caplog.text


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--seed", "-1"), "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295"),
        (("--concepts", "0"), "Invalid value for '--concepts': 0 is not in the range x>=1"),
        (("--mixtures", "0"), "Invalid value for '--mixtures': 0 is not in the range x>=1"),
        (("--min-height", "nan"), "Invalid value for '--min-height': nan is not a finite number"),
        (("--max-class-boxes", "0"), "Invalid value for '--max-class-boxes': 0 is not in the range x>=1"),
    ],
)
def test_train_refuses_bad_numbers_before_reading_data(tmp_path: Path, extra, message):
    res = run("train", "--data", tmp_path, "--classes", "person", "--out", tmp_path / "m", *extra)
    assert res.exit_code == 2 and message in res.output, res.output


def test_the_mask_heads_boxes_are_the_same_per_class_sample():
    def image(j: int, cats: tuple[str, ...]) -> ImageBoxes:
        boxes = tuple((10.0 * j + t, 0.0, 10.0 * j + t + 5, 50.0) for t in range(len(cats)))
        return ImageBoxes(Path(f"im{j}.jpg"), boxes, cats, tuple(range(len(cats))))

    images = [image(j, ("person", "person", "car")) for j in range(6)]
    assert sample_head_boxes(images, 12, seed=0) is images  # no class above the cap (12 persons): unchanged
    kept = sample_head_boxes(images, 4, seed=0)
    targets = [(Path(ib.path).stem, ib.categories[t]) for ib in kept for t in ib.targets]
    assert sum(c == "person" for _, c in targets) == 4 and sum(c == "car" for _, c in targets) == 4
    assert all(ib.targets and ib.boxes == images[int(ib.path.stem[2:])].boxes for ib in kept)  # scenes kept whole
    assert [ib.path for ib in kept] == sorted(ib.path for ib in kept)  # the data's order
    assert sample_head_boxes(kept, 4, seed=0) is kept and sample_head_boxes(images, 4, seed=0) == kept


def test_train_checks_the_image_size_against_the_annotation(train_json: Path, shared_data: Path, tmp_path: Path):
    data = json.loads(train_json.read_text())
    data["images"][0]["width"] //= 2  # the annotation no longer describes the picture
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    res = train_cli(bad, shared_data, tmp_path / "m", "--classes", "person")
    assert res.exit_code == 2, res.output
    assert "but the annotation says" in res.output and data["images"][0]["file_name"] in res.output
    assert not (tmp_path / "m" / "model.json").exists()


def test_train_takes_a_class_named_twice_once(train_json: Path, shared_data: Path, tmp_path: Path):
    res = train_cli(train_json, shared_data, tmp_path / "m", "--classes", "person,person")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "m").settings.classes == ["person"]


def test_train_replaces_a_model_only_with_overwrite(train_json: Path, shared_data: Path, tmp_path: Path):
    out = tmp_path / "m"
    assert train_cli(train_json, shared_data, out, "--classes", "person").exit_code == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    res = train_cli(train_json, shared_data, out, "--classes", "person", "--seed", "1")
    assert res.exit_code == 2 and f"occseg: error: --out {out} holds a model already: give --overwrite" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    res = train_cli(train_json, shared_data, out, "--classes", "person", "--seed", "1", "--overwrite")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # replaced whole, no temporary folder left
    assert (out / "model.safetensors").read_bytes() != first["model.safetensors"]
    assert load_model(out).settings.training["seed"] == 1


def test_train_takes_several_data_sources_and_learns_the_mask_head(train_json: Path, shared_data: Path, tmp_path: Path):
    second = write_coco_subset(shared_data, tmp_path / "second.json", [192])  # 4 persons
    images = shared_data / COCO128_IMAGES
    res = run(
        "train", "--data", train_json, "--images", images, "--data", second, "--images", images, "--out",
        tmp_path / "m", "--concepts", "16", "--mixtures", "2", "--classes", "person",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "trained on 6 boxes (person: 6)" in res.output and "mask head: 6 boxes (18 crops" in res.output
    model = load_model(tmp_path / "m")
    assert model.mask_head is not None and model.settings.training["data"] == f"{train_json}, {second}"
    raw = json.loads((tmp_path / "m" / "model.json").read_text())
    assert raw["mask_head"]["fine_layer"] == "_blocks.4" and raw["mask_head"]["use"] == "refine"
    # without the head; and --images must match --data one to one
    res = train_cli(train_json, shared_data, tmp_path / "n", "--classes", "person", "--no-mask-head")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "n").mask_head is None and "mask head" not in res.output
    res = run("train", "--data", train_json, "--data", second, "--images", images, "--out", tmp_path / "o",
              "--classes", "person")  # fmt: skip
    assert res.exit_code == 2 and "give one --images per --data (2), or none; got 1" in res.output
