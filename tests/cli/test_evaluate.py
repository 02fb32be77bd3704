"""End to end through the command line: ``occseg predict`` (baselines) then ``occseg evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from occseg.cli.main import cli
from occseg.data.images import save_rgb
from occseg.data.writers import write_kins_json
from tests.evaluation.conftest import dataset, image, inst, rect

CELL_KEYS = ("L0", "L1", "L2", "L3", "mean", "weighted_mean", "n")
ORDER_KEYS = ("all", "occluded", "pairs_all", "pairs_occluded", "misses", "reversals", "false_detections")


def _check_report(report: dict, keys: set[str]) -> None:
    assert set(report) == keys | {"settings"}
    for key in keys:
        cell = report[key]
        for m in ("visible", "amodal", "occluded"):
            for lv in CELL_KEYS:
                assert lv in cell[m], (key, m, lv)
        assert isinstance(cell["n_objects"], int)
        assert "classification_accuracy" in cell and "amodal_box_iou" in cell
        for k in ORDER_KEYS:
            assert k in cell["order_accuracy"]


@pytest.fixture
def small_gt(tmp_path: Path) -> Path:
    """Two 24x32 images with amodal GT (one occluded pair) and scenarios, written as a KINS-style JSON."""
    h, w = 24, 32
    img_dir = tmp_path / "images"
    ims = []
    for i in (1, 2):
        save_rgb(img_dir / f"{i}.png", np.full((h, w, 3), 60 * i, np.uint8))
    objs1 = [
        inst(1, rect(h, w, 2, 14, 2, 10), rect(h, w, 2, 14, 2, 16), scenario="a"),
        inst(2, rect(h, w, 4, 18, 10, 20), rect(h, w, 4, 18, 10, 20), scenario="a"),
    ]
    objs2 = [inst(7, rect(h, w, 5, 20, 5, 15), rect(h, w, 5, 20, 5, 15), category="person", scenario="b")]
    ims = [image(1, objs1, h, w, img_dir / "1.png"), image(2, objs2, h, w, img_dir / "2.png")]
    path = tmp_path / "gt" / "gt.json"
    write_kins_json(dataset(ims), path)
    return path


def test_predict_then_evaluate(tmp_path: Path, small_gt: Path) -> None:
    runner = CliRunner()
    pred = tmp_path / "pred.json"
    res = runner.invoke(cli, ["predict", "--data", str(small_gt), "--out", str(pred), "--method", "box-fill"])
    assert res.exit_code == 0, res.output
    assert "box-fill: 3 object(s) in 2 image(s)" in res.output
    out = tmp_path / "report"
    res = runner.invoke(
        cli,
        ["evaluate", "--gt", str(small_gt), "--pred", str(pred), "--out", str(out), "--examples", "1", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    for name in ("report.json", "report.md", "objects.csv", "miou_vs_occlusion.png", "examples.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    _check_report(report, {"all", "a", "b"})
    a = report["all"]
    assert a["n_objects"] == 3 and a["classification_accuracy"] == 1.0
    assert a["amodal"]["L0"] == 1.0  # box-fill of the amodal box of a rectangle is exact
    assert a["amodal_box_iou"] == 1.0
    # object 1 (L2, 14/28 occluded): visible IoU 8/14 of the filled amodal box
    assert a["visible"]["L2"] == pytest.approx(8 / 14) and a["visible"]["n"]["L2"] == 1
    assert a["order_accuracy"]["pairs_all"] == 2 and a["order_accuracy"]["pairs_occluded"] == 2
    assert report["settings"]["pred"].endswith("pred.json") and report["settings"]["gt"].endswith("gt.json")
    assert report["settings"]["bootstrap"] == {"unit": "image", "resamples": 2000, "level": 0.95, "seed": 0}
    # the L0 objects lie in two images: the interval of their mean is there, and printed for the level mean
    assert a["visible"]["interval"]["L0"] is not None
    lo, hi = a["visible"]["interval"]["mean"]
    assert f"mean over levels {a['visible']['mean']:.3f} [{lo:.3f}, {hi:.3f}]" in res.output
    assert a["order_accuracy"]["occluded_interval"] is None  # the one occluded pair lies in one image
    res = runner.invoke(cli, ["evaluate", "--gt", str(small_gt), "--pred", str(pred), "--out", str(out),
                              "--bootstrap", "0", "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["bootstrap"]["resamples"] == 0
    assert all(v is None for v in report["all"]["visible"]["interval"].values())
    assert "intervals (bootstrap" not in (out / "report.md").read_text()


def test_evaluate_filters_and_classes(tmp_path: Path, small_gt: Path) -> None:
    runner = CliRunner()
    pred = tmp_path / "pred.json"
    assert runner.invoke(cli, ["predict", "--data", str(small_gt), "--out", str(pred), "--method", "ellipse",
                               "--classes", "car"]).exit_code == 0  # fmt: skip
    out = tmp_path / "r"
    res = runner.invoke(cli, ["evaluate", "--gt", str(small_gt), "--pred", str(pred), "--out", str(out),
                              "--classes", "car", "--min-height", "13", "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["all"]["n_objects"] == 1  # object 1 is 12 px tall, object 7 a person
    assert report["settings"]["classes"] == ["car"] and report["settings"]["min_height"] == 13
    assert report["settings"]["skipped"] == {"filtered": 2}
    # without the class filter the person has no prediction: a warning, counted as 0
    res = runner.invoke(
        cli, ["evaluate", "--gt", str(small_gt), "--pred", str(pred), "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0
    assert "1 of 3 evaluated GT object(s) have no prediction" in res.output
    res = runner.invoke(cli, ["evaluate", "--gt", str(small_gt), "--pred", str(pred), "--out", str(out),
                              "--classes", "cra"])  # fmt: skip
    assert res.exit_code == 2 and "--classes: cra not a category" in res.output


def test_bad_predictions_are_errors(tmp_path: Path, small_gt: Path) -> None:
    runner = CliRunner()
    # a GT/COCO-style file given as predictions
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                                              "bbox": [0, 0, 1, 1], "segmentation": []}]}))  # fmt: skip
    res = runner.invoke(cli, ["evaluate", "--gt", str(small_gt), "--pred", str(coco), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "occseg: error:" in res.output and "coco.json: not a predictions file" in res.output
    # predictions for an image the GT does not have
    obj = json.loads(small_gt.read_text())
    obj["images"].append({"id": 99, "file_name": "99.png", "width": 32, "height": 24})
    ann = dict(obj["annotations"][0], id=5, image_id=99)
    obj["annotations"].append(ann)
    bad = tmp_path / "gt" / "pred_bad.json"
    bad.write_text(json.dumps(obj))
    res = runner.invoke(cli, ["evaluate", "--gt", str(small_gt), "--pred", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "1 image id(s) not in the ground truth" in res.output and ": 99" in res.output
    # predictions of another image size
    obj = json.loads(small_gt.read_text())
    obj["images"][0]["width"] = 40
    for a in obj["annotations"]:
        if a["image_id"] == 1:
            for k in ("i_segm", "a_segm"):
                a[k] = {"size": [24, 40], "counts": [960]}
    wrong = tmp_path / "gt" / "pred_size.json"
    wrong.write_text(json.dumps(obj))
    res = runner.invoke(cli, ["evaluate", "--gt", str(small_gt), "--pred", str(wrong), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "image 1 (1.png) is 40x24 in the predictions but 32x24" in res.output


def test_predict_without_method_or_model_uses_the_shipped_model(tmp_path: Path, small_gt: Path) -> None:
    """No --method and no --model: compnet with the shipped person model (the cars act as unknown occluders)."""
    runner = CliRunner()
    res = runner.invoke(cli, ["predict", "--data", str(small_gt), "--out", str(tmp_path / "p.json"), "--no-progress"])
    assert res.exit_code == 0 and "using the shipped person model" in res.output
    assert "compnet: 1 object(s) in 1 image(s)" in res.output and (tmp_path / "p.json").is_file()


def test_cocoa_demo_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    data = shared_data / "cocoa-demo"
    pred = tmp_path / "pred.json"
    res = runner.invoke(cli, ["predict", "--data", str(data), "--out", str(pred), "--method", "box-fill"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    res = runner.invoke(cli, ["evaluate", "--gt", str(data), "--pred", str(pred), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    _check_report(report, {"all"})
    a = report["all"]
    assert a["n_objects"] == 48 and a["amodal_box_iou"] == pytest.approx(1.0)
    assert a["amodal"]["n"]["all_objects"] == 48 and a["occluded"]["n"]["total"] == 24
    assert a["occluded"]["weighted_mean"] == 0.0  # box-fill predicts no occluded part
    assert a["order_accuracy"]["pairs_occluded"] > 0
    oa = a["order_accuracy"]
    assert f"order accuracy: all pairs {oa['all']:.3f}, occluded pairs {oa['occluded']:.3f}" in res.output
    res = runner.invoke(
        cli,
        ["evaluate", "--gt", str(data), "--pred", str(pred), "--out", str(out), "--no-progress", "--class-agnostic"],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["class_agnostic"] is True and report["all"]["n_objects"] == 48
    assert "mIoU, mean(IoU), class ignored" in (out / "report.md").read_text()


def test_a_moved_predictions_file_is_scored_all_the_same(tmp_path: Path, small_gt: Path) -> None:
    runner = CliRunner()
    pred = tmp_path / "here" / "pred.json"
    assert (
        runner.invoke(cli, ["predict", "--data", str(small_gt), "--out", str(pred), "--method", "box-fill"]).exit_code
        == 0
    )
    args = ["evaluate", "--gt", str(small_gt), "--no-progress", "--out"]
    res = runner.invoke(cli, [*args, str(tmp_path / "r1"), "--pred", str(pred)])
    assert res.exit_code == 0 and "predictions reader" not in res.output
    moved = tmp_path / "else" / "deeper" / "pred.json"  # its relative image_root now points nowhere
    moved.parent.mkdir(parents=True)
    pred.rename(moved)
    res = runner.invoke(cli, [*args, str(tmp_path / "r2"), "--pred", str(moved)])
    assert res.exit_code == 0, res.output
    assert "the predictions reader noted 1 problem(s) that change no score" in res.output
    assert "count as missing" not in res.output
    first, second = (json.loads((tmp_path / r / "report.json").read_text())["all"] for r in ("r1", "r2"))
    assert first["visible"] == second["visible"] and first["order_accuracy"] == second["order_accuracy"]
