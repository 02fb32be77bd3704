"""occseg.benchmarking: the data folder, the COCO person split, the temporary folder and the IoU of the scripts."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from occseg.benchmarking import (
    add_data_argument,
    coco_split,
    data_dir,
    mean_iou,
    missing,
    object_iou,
    refine_setting,
    settings_json,
    subset,
    work_folder,
)
from occseg.data.annotation import AnnotatedImage, Dataset
from occseg.head.config import HeadTrainConfig
from occseg.refine import RefineConfig


def test_the_data_folder_is_occseg_data_else_next_to_the_repository(monkeypatch):
    monkeypatch.setenv("OCCSEG_DATA", "/some/where")
    assert data_dir() == Path("/some/where")
    ap = argparse.ArgumentParser()
    add_data_argument(ap)
    assert ap.parse_args([]).data == Path("/some/where")
    monkeypatch.delenv("OCCSEG_DATA")
    assert data_dir() == Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _dataset(ids) -> Dataset:
    images = [AnnotatedImage(i, Path(f"{i}.jpg"), 4, 4, []) for i in ids]
    return Dataset(images=images, categories=["person"], source=Path("x.json"), format="coco")


def test_the_coco_split_holds_out_every_fourth_image_and_a_validation_split_of_the_rest():
    ds = _dataset([9, 1, 3, 7, 5, 11, 13, 15, 17, 19, 21, 23])  # sorted: 1 3 5 7 9 11 ...
    train, test = coco_split(ds)
    assert test == [7, 15, 23] and train == [1, 3, 5, 9, 11, 13, 17, 19, 21]
    vtrain, vtest = coco_split(ds, validation=True)
    assert vtest == [3, 17] and vtrain == [1, 5, 9, 11, 13, 19, 21]
    assert [im.image_id for im in subset(ds, test).images] == [7, 15, 23]


def test_work_folder_keeps_a_given_folder_and_makes_a_temporary_one(tmp_path: Path):
    assert work_folder(tmp_path / "kept", "x_") == tmp_path / "kept" and (tmp_path / "kept").is_dir()
    made = work_folder(None, "occseg_test_")
    assert made.is_dir() and made.name.startswith("occseg_test_")


def test_object_iou_is_the_protocols_and_a_missing_prediction_scores_zero():
    gt = np.zeros((4, 4), bool)
    gt[:2] = True
    pred = np.zeros((4, 4), bool)
    pred[:1] = True
    assert object_iou(pred, gt) == 0.5 and object_iou(None, gt) == 0.0
    assert object_iou(None, np.zeros((4, 4), bool)) is None and object_iou(pred & False, pred & False) is None
    assert mean_iou([0.5, None, 1.0]) == 0.75 and mean_iou([None]) is None


def test_missing_names_the_first_absent_path(tmp_path: Path, capsys):
    assert not missing(tmp_path)
    assert missing(tmp_path, tmp_path / "nope")
    assert f"not found: {tmp_path / 'nope'}" in capsys.readouterr().err


def test_refine_setting_and_settings_json():
    assert refine_setting(None) == RefineConfig()
    assert refine_setting("box-grabcut").colour == "grabcut"
    assert refine_setting('{"guided": false}').guided is False
    with pytest.raises(ValueError, match="neither box-grabcut nor a JSON object"):
        refine_setting("grabcut please")
    assert settings_json(argparse.Namespace(data=Path("/d"), n=3)) == {"data": "/d", "n": 3}


def test_the_challenge_benchmarks_head_config_is_a_head_train_config_or_one_line(capsys) -> None:
    from occseg.benchmarking.challenge import head_train_config

    cfg = head_train_config('{"paste": 1, "epochs": 20, "paste_cover": [0.4, 0.8]}')
    assert (cfg.paste, cfg.epochs, cfg.paste_cover) == (1, 20, (0.4, 0.8))
    assert head_train_config(None) == HeadTrainConfig()  # the defaults: one composite a box
    assert head_train_config('{"paste": -1}') is None and head_train_config('{"pastes": 1}') is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("--head-config: ") for line in err)
