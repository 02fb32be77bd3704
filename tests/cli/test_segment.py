"""``occseg segment`` end to end on one coco128-seg photo (src/occseg/cli/segment.py), and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occseg.data.masks import decode
from tests.cli.invoke import BOXES_192, IMAGE_192, error_lines, run, train_cli
from tests.compnet.conftest import COCO128_IMAGES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_segment_writes_overlay_and_result(tiny_compnet, tmp_path: Path, monkeypatch):
    import occseg.inference.predict as predict_module

    passes = []
    real = predict_module.prepare_scene
    monkeypatch.setattr(predict_module, "prepare_scene", lambda *a, **k: passes.append(len(a[3])) or real(*a, **k))
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
    assert train_cli(train_json, shared_data, tmp_path / "m", "--classes", "person").exit_code == 0
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
