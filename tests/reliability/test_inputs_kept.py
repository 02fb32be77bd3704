"""Issue 24, items 1-3: no command writes over a file it reads (the JSON given on the command line, and the images,
backgrounds and model files it reads too), and ``train`` replaces a model only when told to."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.reliability.corpus import Workspace, assert_refused, snapshot


def _challenge_args(ws: Workspace, source: Path, images: Path, out: Path) -> list[object]:
    return ["make-challenge", "--source", source, "--source-images", images, "--classes", "person",
            "--backgrounds", ws.backgrounds, "--images", "4", "--size", "96x64", "--contact-sheet", "0",
            "--no-progress", "--out", out]  # fmt: skip


def test_make_challenge_refuses_a_source_at_its_output_paths(ws: Workspace):
    out = ws.root / "ch"
    shutil.copytree(ws.source_images, out / "images")
    (out / "annotations").mkdir()
    shutil.copy(ws.source, out / "annotations" / "test.json")
    assert_refused(
        ws.root,
        _challenge_args(ws, out / "annotations" / "test.json", out / "images", out),
        r"ch/images holds the input",
    )


def test_make_challenge_refuses_source_images_inside_its_image_folder(ws: Workspace):
    out = ws.root / "ch"
    shutil.copytree(ws.source_images, out / "images")
    assert_refused(ws.root, _challenge_args(ws, ws.source, out / "images", out), r"--out .*images.* input")


def test_make_challenge_refuses_a_source_json_inside_its_annotation_folder(ws: Workspace):
    out = ws.root / "ch"
    (out / "annotations").mkdir(parents=True)
    shutil.copy(ws.source, out / "annotations" / "train.json")
    args = _challenge_args(ws, out / "annotations" / "train.json", ws.source_images, out)
    assert_refused(ws.root, args, r"annotations holds the input .*train.json")


def test_make_challenge_refuses_backgrounds_inside_its_output(ws: Workspace):
    out = ws.root / "ch"
    shutil.copytree(ws.backgrounds, out / "images")
    args = _challenge_args(ws, ws.source, ws.source_images, out)
    args[args.index("--backgrounds") + 1] = out / "images"
    assert_refused(ws.root, args, r"input")


def test_predict_refuses_to_write_over_one_of_the_images_it_reads(ws: Workspace):
    target = ws.images / "1.png"
    args = ["predict", "--method", "box-fill", "--data", ws.data, "--out", target, "--no-progress"]
    assert_refused(ws.root, args, rf"--out {target} is the input file .*1.png")


def test_predict_refuses_an_image_reached_through_a_link(ws: Workspace):
    link = ws.root / "pred.json"
    link.symlink_to(ws.images / "2.png")
    args = ["predict", "--method", "box-fill", "--data", ws.data, "--out", link, "--no-progress"]
    assert_refused(ws.root, args, r"is the input file .*2.png")


def test_predict_refuses_to_write_over_the_model(ws: Workspace):
    target = ws.model / "model.json"
    args = ["predict", "--data", ws.data, "--model", ws.model, "--out", target, "--no-progress"]
    assert_refused(ws.root, args, r"is the input file .*model.json")


def test_segment_refuses_an_output_folder_holding_the_model_files(ws: Workspace):
    (ws.model / "result.json").symlink_to(ws.model / "model.json")
    args = ["segment", "--model", ws.model, "--image", ws.image, "--boxes", ws.boxes, "--out", ws.model]
    assert_refused(ws.root, args, r"is the input file .*model.json")


def test_train_refuses_to_replace_a_model_without_overwrite(ws: Workspace):
    args = ["train", "--data", ws.data, "--classes", "person", "--out", ws.model, "--no-progress"]
    assert_refused(ws.root, args, rf"--out {ws.model} holds a model already: give --overwrite to replace it")


def test_train_overwrite_refuses_a_folder_that_holds_other_files(ws: Workspace):
    (ws.model / "notes.txt").write_text("mine")
    args = ["train", "--data", ws.data, "--classes", "person", "--out", ws.model, "--overwrite", "--no-progress"]
    assert_refused(ws.root, args, r"holds files that are not a model's \(notes.txt\)")


def test_train_refuses_a_folder_of_other_files(ws: Workspace):
    args = ["train", "--data", ws.data, "--classes", "person", "--out", ws.images, "--no-progress"]
    assert_refused(ws.root, args, r"holds files that are not a model's \(1.png, 2.png, 3.png\)")


def test_train_refuses_backgrounds_at_its_output(ws: Workspace):
    args = ["train", "--data", ws.data, "--classes", "person", "--out", ws.root / "new", "--no-progress",
            "--backgrounds", ws.root / "new"]  # fmt: skip
    (ws.root / "new").mkdir()
    (ws.root / "new" / "model.json").write_bytes((ws.backgrounds / "bg_0.png").read_bytes())
    before = snapshot(ws.root)
    assert_refused(ws.root, args, r"--out")
    assert snapshot(ws.root) == before
