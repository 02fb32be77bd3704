"""report.json / report.md / objects.csv, the mIoU plot and the examples sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from occseg.data.images import save_rgb
from occseg.evaluation.plots import examples_sheet, pick_examples, plot_miou_vs_occlusion
from occseg.evaluation.protocol import EvalConfig, evaluate
from occseg.evaluation.report import build_report, report_markdown, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CELL_KEYS = ("L0", "L1", "L2", "L3", "mean", "weighted_mean", "n")


def _scene(build, tmp_path: Path | None = None):
    """Two images, four objects in two scenarios, one of them occluded; predictions of varying quality."""
    h, w = 20, 30
    r = build.rect
    gt_objs = [
        build.inst(1, r(h, w, 2, 12, 2, 8), r(h, w, 2, 12, 2, 12), scenario="s1"),  # occluded by 2
        build.inst(2, r(h, w, 2, 12, 8, 16), r(h, w, 2, 12, 8, 16), scenario="s1"),
        build.inst(3, r(h, w, 14, 20, 20, 30), r(h, w, 14, 20, 20, 30), scenario="s2"),
    ]
    pred_objs = [
        build.inst(1, r(h, w, 2, 12, 2, 7), r(h, w, 2, 12, 2, 12)),
        build.inst(2, r(h, w, 2, 12, 8, 16), r(h, w, 2, 12, 8, 16)),
        build.inst(3, r(h, w, 14, 20, 25, 30), r(h, w, 14, 20, 25, 30), category="person"),
    ]
    paths = [None, None]
    if tmp_path is not None:
        for i in (1, 2):
            paths[i - 1] = tmp_path / f"{i}.png"
            save_rgb(paths[i - 1], np.full((h, w, 3), 100 * i, np.uint8))
    gt = build.dataset(
        [
            build.image(1, gt_objs[:2], h, w, paths[0]),
            build.image(2, [gt_objs[2], build.inst(4, r(h, w, 0, 5, 0, 5), r(h, w, 0, 5, 0, 5), scenario="s2")], h, w,
                        paths[1]),
        ]
    )  # fmt: skip
    pred = build.dataset([build.image(1, pred_objs[:2], h, w), build.image(2, pred_objs[2:], h, w)], source="pred")
    return gt, pred


def test_report_json_keys_and_files(tmp_path: Path, build) -> None:
    gt, pred = _scene(build)
    ev = evaluate(gt, pred, EvalConfig(progress=False))
    report = build_report(ev, {"gt": "gt.json", "pred": "pred.json", "classes": None, "min_height": None})
    paths = write_report(tmp_path / "out", report, ev)
    assert [p.name for p in paths] == ["report.json", "report.md", "objects.csv"]
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(r) == {"settings", "all", "s1", "s2"}
    assert r["settings"]["gt"] == "gt.json" and r["settings"]["n_evaluated"] == 4
    assert any("no prediction" in w for w in r["settings"]["warnings"])  # object 4
    for key in ("all", "s1", "s2"):
        for k in ("visible", "amodal", "occluded"):
            for lv in CELL_KEYS:
                assert lv in r[key][k], (key, k, lv)
            assert set(r[key][k]["n"]) == {"L0", "L1", "L2", "L3", "total", "all_objects"}
        for k in ("classification_accuracy", "amodal_box_iou", "n_objects"):
            assert k in r[key]
        assert set(r[key]["order_accuracy"]) >= {
            "all", "occluded", "pairs_all", "pairs_occluded", "misses", "reversals", "false_detections"
        }  # fmt: skip
    assert r["all"]["n_objects"] == 4 and r["s1"]["n_objects"] == 2 and r["s2"]["n_objects"] == 2
    # object 1 is 40% occluded (L2), objects 2 and 4 unoccluded (L0), object 3 (wrong class) L0
    assert r["all"]["visible"]["n"]["L2"] == 1 and r["all"]["visible"]["n"]["L0"] == 3
    assert r["all"]["visible"]["L2"] == 50 / 60
    assert r["all"]["visible"]["L0"] == 1 / 3  # object 2 right, 3 wrong class, 4 missing
    assert r["all"]["classification_accuracy"] == 0.5
    assert r["all"]["visible"]["L1"] is None  # empty level: null
    assert r["s1"]["order_accuracy"]["pairs_all"] == 2 and r["s1"]["order_accuracy"]["all"] == 1.0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| visible | 0.333 (n=3) | – (n=0) | 0.833 (n=1) | – (n=0) | 0.583 (levels=2) | 0.458 (n=4) |" in md
    assert "## scenario s1" in md and "## conventions" in md and "mean(IoU x 1[class correct])" in md
    assert "95% intervals (bootstrap over images, 2000 resamples):" in md  # settings without "bootstrap": defaults
    assert r["all"]["visible"]["interval"]["L0"] == [0.0, 1.0]  # L0 objects of image 1 right, of image 2 wrong
    assert r["all"]["visible"]["interval"]["L2"] is None  # one image
    assert "| visible | 0.000–1.000 | – | – | – |" in md
    rows = (tmp_path / "out" / "objects.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("image_id,object_id,category")


def test_markdown_without_amodal_gt(build) -> None:
    h, w = 4, 4
    gt = build.dataset([build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 2))], h, w)])
    ev = evaluate(gt, gt, EvalConfig(progress=False))
    md = report_markdown(build_report(ev, {"gt": "g", "pred": "p"}))
    assert "the GT has no amodal masks" in md
    assert "| visible | – (n=0) | – (n=0) | – (n=0) | – (n=0) | – (levels=0) | – (n=0) | 1.000 (n=1) |" in md


def test_plot_written(tmp_path: Path, build) -> None:
    gt, pred = _scene(build)
    ev = evaluate(gt, pred, EvalConfig(progress=False))
    report = build_report(ev, {})
    p = plot_miou_vs_occlusion(report, tmp_path / "miou_vs_occlusion.png")
    assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000
    # no level at all (GT without amodal masks) still gives a figure
    h, w = 4, 4
    gt2 = build.dataset([build.image(1, [build.inst(1, build.rect(h, w, 0, 4, 0, 2))], h, w)])
    q = plot_miou_vs_occlusion(build_report(evaluate(gt2, gt2, EvalConfig(progress=False)), {}), tmp_path / "b.png")
    assert q.read_bytes()[:8] == PNG_MAGIC


def test_examples_sheet(tmp_path: Path, build) -> None:
    gt, pred = _scene(build, tmp_path)
    ev = evaluate(gt, pred, EvalConfig(progress=False))
    worst, best = pick_examples(ev.records, 2)
    assert [r.object_id for r in worst] == [3, 4]  # wrong class and missing: score 0
    assert [r.object_id for r in best] == [2, 1]
    warnings = examples_sheet(ev, gt, 2, tmp_path / "examples.png")
    assert warnings == []
    assert (tmp_path / "examples.png").read_bytes()[:8] == PNG_MAGIC
    from PIL import Image

    assert examples_sheet(ev, gt, 4, tmp_path / "four.png") == []  # all 4 objects in the "worst" row
    assert examples_sheet(ev, gt, 1000, tmp_path / "many.png") == []  # the same 4 columns, not 1000
    assert Image.open(tmp_path / "many.png").size == Image.open(tmp_path / "four.png").size


def test_examples_sheet_missing_images_warn(tmp_path: Path, build) -> None:
    gt, pred = _scene(build)  # image paths do not exist
    ev = evaluate(gt, pred, EvalConfig(progress=False))
    warnings = examples_sheet(ev, gt, 2, tmp_path / "examples.png")
    assert any("2 image(s) missing or unreadable" in w for w in warnings)
    assert any("examples.png not written" in w for w in warnings)
    assert not (tmp_path / "examples.png").exists()
