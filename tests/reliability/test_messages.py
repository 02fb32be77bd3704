"""Issue 24, items 9-11 and 13-18: extreme values are one-line errors or named warnings, never tracebacks; results
that would mislead say so (the predictions are the ground truth, objects that cannot be scored, a bootstrap too
small for an interval, no prediction at all, an empty split); the same input is treated the same everywhere."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from tests.reliability.corpus import Workspace, assert_refused, run, snapshot, square

HUGE = "1" + "0" * 400  # a JSON integer no float holds
LONGER = "9" * 5000  # beyond Python's limit on the digits of an integer read from text


def _coco(ws: Workspace) -> dict:
    return json.loads(ws.data.read_text())


def _write(ws: Workspace, obj: dict, name: str = "edited.json") -> Path:
    p = ws.data.parent / name
    p.write_text(json.dumps(obj))
    return p


def _with_raw(ws: Workspace, text: str, name: str = "raw.json") -> Path:
    p = ws.data.parent / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("number", [HUGE, "-" + HUGE, LONGER])
@pytest.mark.parametrize("field", ["bbox", "width", "polygon"])
def test_a_huge_json_integer_is_a_named_warning(ws: Workspace, field: str, number: str):
    text = json.dumps(_coco(ws))
    marker = {"bbox": '"bbox": [4, 4, 20, 20]', "width": '"width": 64', "polygon": '"segmentation": [[4, 4, '}[field]
    replaced = {
        "bbox": f'"bbox": [4, 4, {number}, 20]',
        "width": f'"width": {number}',
        "polygon": f'"segmentation": [[{number}, 4, ',
    }[field]
    assert marker in text
    path = _with_raw(ws, text.replace(marker, replaced, 1))
    res = run("stats", path, "--no-progress")
    assert res.exit_code == 0 and isinstance(res.exception, SystemExit) or res.exception is None, res.output
    assert "Traceback" not in res.output
    warning = {"bbox": "box values must be finite", "width": "is read from the image file", "polygon": "not finite"}
    assert warning[field] in res.output, res.output


def test_a_huge_integer_in_a_boxes_file_is_one_line(ws: Workspace):
    ws.boxes.write_text(f'[{{"box": [4, 4, {HUGE}, 20]}}]')
    args = ["segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes, "--out", ws.root / "seg"]
    assert_refused(ws.root, args, r"boxes.json entry 0: box values must be finite")


def test_the_geometry_refuses_a_huge_integer_by_name():
    from occseg.geometry.boxes import BoxError, as_box

    with pytest.raises(BoxError, match="box values must be finite"):
        as_box([0, 0, 10**400, 1])


def test_make_challenge_size_beyond_the_limit_is_refused_before_any_work(ws: Workspace):
    args = ["make-challenge", "--source", ws.source, "--source-images", ws.source_images, "--classes", "person",
            "--backgrounds", ws.backgrounds, "--size", "100000x100000", "--out", ws.root / "ch"]  # fmt: skip
    assert_refused(ws.root, args, r"output size 100000x100000 is too large \(at most 4096 px a side\)")


@pytest.mark.parametrize("images, fraction", [("1", "0.5"), ("3", "0.9")])
def test_make_challenge_refuses_an_empty_split(ws: Workspace, images: str, fraction: str):
    args = ["make-challenge", "--source", ws.source, "--source-images", ws.source_images, "--classes", "person",
            "--backgrounds", ws.backgrounds, "--images", images, "--test-fraction", fraction,
            "--out", ws.root / "ch"]  # fmt: skip
    assert_refused(
        ws.root,
        args,
        rf"--images {images} with --test-fraction {fraction} leaves the (train|test) split empty; give at least \d+",
    )


def _predict(ws: Workspace, gt: Path, out: Path) -> None:
    res = run("predict", "--method", "box-fill", "--data", gt, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output


def test_evaluate_warns_when_the_predictions_are_the_ground_truth(ws: Workspace):
    gt = ws.root / "p.json"  # a KINS-style file is both ground truth and predictions
    _predict(ws, ws.data, gt)
    res = run("evaluate", "--gt", gt, "--pred", gt, "--out", ws.root / "ev", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert re.search(r"occseg: warning: --pred .*p.json is the ground truth .*: every score is 1.000", res.output)
    copy = ws.root / "copy.json"  # the same content under another name
    copy.write_bytes(gt.read_bytes())
    res = run("evaluate", "--gt", gt, "--pred", copy, "--out", ws.root / "ev2", "--bootstrap", "0")
    assert "is the ground truth" in res.output


@pytest.mark.parametrize("segmentation", [[[]], [[4, 4, 20, 4]]])
def test_polygons_of_fewer_than_three_points_are_a_warning_and_evaluate_counts_what_it_could_not_score(
    ws: Workspace, segmentation: list
):
    obj = _coco(ws)
    obj["annotations"][0]["segmentation"] = segmentation
    gt = _write(ws, obj)
    res = run("stats", gt, "--no-progress")
    assert "warnings (0)" not in res.output
    assert re.search(r"annotation 10: polygon 0 has (0|2) point\(s\), fewer than 3: no mask", res.output), res.output
    _predict(ws, ws.data, ws.root / "p.json")
    res = run("evaluate", "--gt", gt, "--pred", ws.root / "p.json", "--out", ws.root / "ev", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert "occseg: warning: 1 of 9 GT object(s) could not be scored (no visible mask: 1)" in res.output


def test_a_short_polygon_beside_a_good_one_is_left_out_with_a_warning(ws: Workspace):
    obj = _coco(ws)
    obj["annotations"][0]["segmentation"] = [square(4, 4, 20), [30, 30, 31, 31]]
    res = run("stats", _write(ws, obj), "--no-progress")
    assert "annotation 10: polygon 1 has 2 point(s), fewer than 3: left out" in res.output, res.output


def test_bootstrap_below_the_minimum_is_refused(ws: Workspace):
    _predict(ws, ws.data, ws.root / "p.json")
    args = ["evaluate", "--gt", ws.data, "--pred", ws.root / "p.json", "--out", ws.root / "ev", "--bootstrap", "1"]
    assert_refused(ws.root, args, r"--bootstrap.*0 \(no intervals\) or at least 200")
    from occseg.evaluation.metrics import BootstrapConfig

    with pytest.raises(ValueError, match=r"at least 200"):
        BootstrapConfig(resamples=199)


def test_empty_predictions_report_no_order_accuracy(ws: Workspace):
    empty = _coco(ws)
    empty["annotations"] = []
    pred = _write(ws, empty, "empty.json")
    res = run("evaluate", "--gt", ws.data, "--pred", pred, "--out", ws.root / "ev", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert "order accuracy: all pairs null, occluded pairs null" in res.output
    assert "no GT object has a prediction: the order accuracy is not defined" in res.output
    report = json.loads((ws.root / "ev" / "report.json").read_text())
    assert report["all"]["order_accuracy"]["all"] is None


def test_a_byte_order_mark_is_accepted_in_every_json(ws: Workspace):
    bom = ws.data.parent / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + ws.data.read_bytes())
    res = run("stats", bom, "--no-progress")
    assert res.exit_code == 0, res.output
    ws.boxes.write_bytes(b"\xef\xbb\xbf" + ws.boxes.read_bytes())
    from occseg.cli.segment import read_boxes_file

    assert len(read_boxes_file(ws.boxes, 64, 48)[0]) == 2
    mj = ws.model / "model.json"
    mj.write_bytes(b"\xef\xbb\xbf" + mj.read_bytes())
    from occseg.compnet.model import load_model

    assert load_model(ws.model).settings.num_concepts == 6


def test_a_coco_bbox_of_three_values_is_described_as_coco_describes_it(ws: Workspace):
    obj = _coco(ws)
    obj["annotations"][0]["bbox"] = [4, 4, 20]
    res = run("stats", _write(ws, obj), "--no-progress")
    assert "a COCO bbox needs 4 numbers (x, y, width, height), got 3" in res.output, res.output
    assert "(x1, y1, x2, y2)" not in res.output


def test_logged_warnings_carry_the_prefix():
    from occseg.cli.main import MessageFormatter

    def record(level: int, msg: str) -> logging.LogRecord:
        return logging.LogRecord("occseg", level, __file__, 1, msg, None, None)

    fmt = MessageFormatter()
    assert fmt.format(record(logging.WARNING, "the model m does not know ...")) == (
        "occseg: warning: the model m does not know ..."
    )
    assert fmt.format(record(logging.INFO, "wrote x")) == "wrote x"
    assert fmt.format(record(logging.WARNING, "occseg: warning: once")) == "occseg: warning: once"


def test_a_refused_command_leaves_its_inputs(ws: Workspace):
    before = snapshot(ws.root)
    run("evaluate", "--gt", ws.data, "--pred", ws.root / "missing.json", "--out", ws.root / "ev")
    assert snapshot(ws.root) == before


def test_segment_refuses_more_boxes_than_its_limit_before_any_work(ws: Workspace):
    ws.boxes.write_text(json.dumps([{"box": [1, 1, 20, 20]}] * 1001))
    args = ["segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes, "--out", ws.root / "seg"]
    assert_refused(ws.root, args, r"boxes.json lists 1001 boxes, more than --max-boxes 1000: .* 34 MB for these")
    out = run(*args, "--max-boxes", "1001", "--no-progress").output  # the limit raised: on to the model's check
    assert "more than --max-boxes" not in out and "model does not match the backbone" in out
