"""The bad-input corpus (issue 24): every fault below is written by the test into a copy of a small valid workspace,
then given to every command that reads that kind of input. For each, three promises are checked
(:func:`~tests.reliability.corpus.assert_refused`): the exit status is 1 or 2; one line names the problem and no
traceback is shown; no file has changed and no temporary file is left.

Faults a reader only warns about (a box outside the image, a NaN coordinate) are checked apart: the command goes
on, names the annotation, and changes nothing it read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.corpus import Workspace, assert_refused, debris, png_header_only, run, snapshot, square

# ------------------------------------------------------------------------------------------------ the faults


def _coco(ws: Workspace) -> dict:
    return json.loads(ws.data.read_text())


def _edited(ws: Workspace, edit: Callable[[dict], None]) -> bytes:
    obj = _coco(ws)
    edit(obj)
    return json.dumps(obj).encode()


def _rle(ws: Workspace, size: list, counts: object) -> bytes:
    def edit(obj: dict) -> None:
        obj["annotations"][0]["segmentation"] = {"size": size, "counts": counts}

    return _edited(ws, edit)


#: name -> (bytes of the bad annotation file, regular expression of the error line)
DATA_FAULTS: dict[str, tuple[Callable[[Workspace], bytes], str]] = {
    "empty file": (lambda ws: b"", r"not valid JSON"),
    "truncated JSON": (lambda ws: ws.data.read_bytes()[:200], r"not valid JSON \(.* line 1, column"),
    "not UTF-8": (lambda ws: b"\xff\xfe" + ws.data.read_bytes(), r"not (a )?UTF-8"),
    "nested too deeply": (lambda ws: b"[" * 200_000 + b"]" * 200_000, r"nested too deeply"),
    "a JSON list": (lambda ws: b"[1, 2, 3]", r"the top level is a list, not an object"),
    "duplicate annotation ids": (
        lambda ws: _edited(ws, lambda o: o["annotations"][1].update(id=o["annotations"][0]["id"])),
        r"two annotations with id 10",
    ),
    "duplicate image ids": (
        lambda ws: _edited(ws, lambda o: o["images"][1].update(id=1)),
        r"image id 1 appears twice",
    ),
    "unknown category": (
        lambda ws: _edited(ws, lambda o: o["annotations"][0].update(category_id=99)),
        r"unknown category id 99",
    ),
    "unknown image": (
        lambda ws: _edited(ws, lambda o: o["annotations"][0].update(image_id=99)),
        r"unknown image id 99",
    ),
    "RLE of another size": (lambda ws: _rle(ws, [10, 10], [50, 50]), r"RLE"),
    "RLE counts that do not sum": (lambda ws: _rle(ws, [48, 64], [5, 7]), r"invalid RLE mask"),
    "RLE size not two integers": (lambda ws: _rle(ws, [48], [3072]), r"size"),
    "id that is not an integer": (
        lambda ws: _edited(ws, lambda o: o["annotations"][0].update(id="ten")),
        r"expected an integer, got 'ten'",
    ),
}


def _data_commands(ws: Workspace, bad: Path) -> dict[str, list[object]]:
    out = ws.root / "out"
    return {
        "stats": ["stats", bad, "--no-progress"],
        "predict": ["predict", "--method", "box-fill", "--data", bad, "--out", out / "p.json", "--no-progress"],
        "train": ["train", "--data", bad, "--classes", "person", "--out", out / "m", "--no-progress"],
        "evaluate": ["evaluate", "--gt", bad, "--pred", bad, "--out", out / "ev", "--no-progress"],
        "make-challenge": [
            "make-challenge",
            "--source",
            bad,
            "--source-images",
            ws.images,
            "--classes",
            "person",
            "--backgrounds",
            ws.backgrounds,
            "--out",
            out / "ch",
            "--no-progress",
        ],  # fmt: skip
    }


@pytest.mark.parametrize("command", ["stats", "predict", "train", "evaluate", "make-challenge"])
@pytest.mark.parametrize("fault", sorted(DATA_FAULTS))
def test_bad_annotation_files_are_refused(ws: Workspace, fault: str, command: str):
    make, message = DATA_FAULTS[fault]
    bad = ws.data.parent / "bad.json"
    bad.write_bytes(make(ws))
    assert_refused(ws.root, _data_commands(ws, bad)[command], message)


#: a boxes file's bad entries -> the error
BOX_FAULTS: dict[str, tuple[str, str]] = {
    "inverted": ('[{"box": [30, 30, 10, 10]}]', r"entry 0: .*inverted"),
    "NaN": ('[{"box": [NaN, 0, 10, 10]}]', r"entry 0: box values must be finite"),
    "Infinity": ('[{"box": [0, 0, Infinity, 10]}]', r"entry 0: box values must be finite"),
    "outside the image": ('[{"box": [100, 100, 120, 120]}]', r"entry 0: .*outside"),
    "three numbers": ('[{"box": [1, 2, 3]}]', r"entry 0: a box needs 4 numbers"),
    "strings": ('[{"box": ["1", "2", "3", "4"]}]', r"entry 0: box values must be numbers"),
    "no box": ('[{"class": "person"}]', r'entry 0 has no "box"'),
    "not a list": ('{"box": [1, 2, 3, 4]}', r"expected a JSON list"),
    "empty class": ('[{"box": [1, 2, 30, 30], "class": " "}]', r"entry 0 has an empty class name"),
    "class not text": ('[{"box": [1, 2, 30, 30], "class": 3}]', r"entry 0 has a non-string class 3"),
    "truncated": ('[{"box": [1, 2, ', r"not valid JSON"),
}


@pytest.mark.parametrize("fault", sorted(BOX_FAULTS))
def test_bad_boxes_files_are_refused(ws: Workspace, fault: str):
    text, message = BOX_FAULTS[fault]
    ws.boxes.write_text(text)
    args = ["segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes, "--out", ws.root / "seg"]
    assert_refused(ws.root, args, message)


#: a bad image file -> the error
IMAGE_FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "zero bytes": (lambda p: p.write_bytes(b""), r"cannot decode image file"),
    "not an image": (lambda p: p.write_text("hello"), r"cannot decode image file"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:60]), r"cannot decode image file"),
    "header of 60000 x 60000 px": (lambda p: png_header_only(p, 60000, 60000), r"too large to decode"),
}


@pytest.mark.parametrize("fault", sorted(IMAGE_FAULTS))
def test_bad_image_files_are_refused(ws: Workspace, fault: str):
    damage, message = IMAGE_FAULTS[fault]
    damage(ws.image)
    args = ["segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes, "--out", ws.root / "seg"]
    assert_refused(ws.root, args, message)


@pytest.mark.parametrize("fault", sorted(set(IMAGE_FAULTS) - {"truncated"}))  # a header check finds no truncation
def test_bad_dataset_images_are_refused_before_predict_and_train(ws: Workspace, fault: str):
    damage, _ = IMAGE_FAULTS[fault]
    damage(ws.images / "3.png")
    message = r"3.png.*1 image file of .*ann.json cannot be used"
    assert_refused(ws.root, ["predict", "--model", ws.model, "--data", ws.data, "--out", ws.root / "p.json"], message)
    train = ["train", "--data", ws.data, "--classes", "person", "--out", ws.root / "m", "--min-height", "0"]
    assert_refused(ws.root, train, message)


def _edit_model_json(ws: Workspace, **changes: object) -> None:
    p = ws.model / "model.json"
    raw = json.loads(p.read_text())
    raw.update(changes)
    p.write_text(json.dumps(raw))


def _other_tensors(ws: Workspace) -> None:
    from occseg.compnet.model import save_model
    from tests.compnet.conftest import random_model

    other = ws.root.parent / "other_model"
    save_model(random_model(seed=7, k=9), other)
    (ws.model / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())


#: a damaged or edited model folder -> the error
MODEL_FAULTS: dict[str, tuple[Callable[[Workspace], None], str]] = {
    "settings edited": (lambda ws: _edit_model_json(ws, kappa="high"), r"setting 'kappa' must be"),
    "settings changed after saving": (lambda ws: _edit_model_json(ws, fg_bias=3.0), r"changed after the model was"),
    "settings truncated": (
        lambda ws: (ws.model / "model.json").write_text((ws.model / "model.json").read_text()[:50]),
        r"not valid JSON",
    ),
    "tensors truncated": (
        lambda ws: (ws.model / "model.safetensors").write_bytes((ws.model / "model.safetensors").read_bytes()[:5]),
        r"cannot read the tensors",
    ),
    "tensors of another model": (_other_tensors, r"do not belong together.*a save was probably interrupted"),
    "tensors missing": (lambda ws: (ws.model / "model.safetensors").unlink(), r"model.safetensors is missing"),
}


@pytest.mark.parametrize("fault", sorted(MODEL_FAULTS))
def test_damaged_models_are_refused(ws: Workspace, fault: str):
    damage, message = MODEL_FAULTS[fault]
    damage(ws)
    seg = ["segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes, "--out", ws.root / "seg"]
    assert_refused(ws.root, seg, message)
    pred = ["predict", "--model", ws.model, "--data", ws.data, "--out", ws.root / "p.json", "--no-progress"]
    assert_refused(ws.root, pred, message)


# ------------------------------------------------------------------------------------------------ outputs = inputs


def _link(at: Path, to: Path) -> Path:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(to)
    return at


LINKED_OUTPUTS: dict[str, Callable[[Workspace], list[object]]] = {
    "predict --out is the data": lambda ws: [
        "predict", "--method", "box-fill", "--data", ws.data, "--out", _link(ws.root / "p.json", ws.data)],
    "evaluate report.json is the GT": lambda ws: [
        "evaluate", "--gt", ws.data, "--pred", ws.data, "--bootstrap", "0",
        "--out", _link(ws.root / "ev" / "report.json", ws.data).parent],
    "evaluate examples.png is a GT image": lambda ws: [
        "evaluate", "--gt", ws.data, "--pred", ws.data, "--bootstrap", "0", "--examples", "1",
        "--out", _link(ws.root / "ev" / "examples.png", ws.images / "1.png").parent],
    "segment result.json is the boxes": lambda ws: [
        "segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes,
        "--out", _link(ws.root / "seg" / "result.json", ws.boxes).parent],
    "segment overlay.png is the image": lambda ws: [
        "segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes,
        "--out", _link(ws.root / "seg" / "overlay.png", ws.image).parent],
    "train --out is a link to the model's data": lambda ws: [
        "train", "--data", ws.data, "--classes", "person", "--out", _link(ws.root / "m", ws.data.parent)],
    "make-challenge images/ is the source images": lambda ws: [
        "make-challenge", "--source", ws.source, "--source-images", ws.source_images, "--classes", "person",
        "--backgrounds", ws.backgrounds, "--out", _link(ws.root / "ch" / "images", ws.source_images).parent],
    "make-challenge annotations/test.json is the source": lambda ws: [
        "make-challenge", "--source", ws.source, "--source-images", ws.source_images, "--classes", "person",
        "--backgrounds", ws.backgrounds,
        "--out", _link(ws.root / "ch" / "annotations" / "test.json", ws.source).parent.parent],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LINKED_OUTPUTS))
def test_outputs_that_are_inputs_through_links_are_refused(ws: Workspace, case: str):
    args = LINKED_OUTPUTS[case](ws)
    assert_refused(ws.root, args, r"(is the input file|holds the input|holds files that are not a model's)")


# ------------------------------------------------------------------------------------------------ warned, not refused

#: an annotation the readers skip with a warning naming it
WARNED: dict[str, Callable[[dict], None]] = {
    "inverted box": lambda o: o["annotations"][0].update(bbox=[30, 30, -10, -10], segmentation=[]),
    "NaN box": lambda o: o["annotations"][0].update(bbox=[float("nan"), 4, 20, 20], segmentation=[]),
    "box outside the image": lambda o: o["annotations"][0].update(bbox=[500, 500, 20, 20], segmentation=[]),
    "polygon far outside": lambda o: o["annotations"][0].update(segmentation=[square(9000, 9000, 20)]),
    "polygon of two points": lambda o: o["annotations"][0].update(segmentation=[[4, 4, 20, 20]]),
    "empty polygon": lambda o: o["annotations"][0].update(segmentation=[[]]),
}


@pytest.mark.parametrize("fault", sorted(WARNED))
def test_skipped_annotations_are_named_and_nothing_is_changed(ws: Workspace, fault: str):
    obj = _coco(ws)
    WARNED[fault](obj)
    bad = ws.data.parent / "warned.json"
    bad.write_text(json.dumps(obj))
    before = snapshot(ws.root)
    res = run("stats", bad, "--no-progress")
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert "warnings (0)" not in res.output and "annotation 10" in res.output, res.output
    assert snapshot(ws.root) == before
    res = run("predict", "--method", "box-fill", "--data", bad, "--out", ws.root / "p.json", "--no-progress")
    assert res.exit_code == 0 and "annotation 10" in res.output, res.output
    assert debris(ws.root) == []
