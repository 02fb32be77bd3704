"""Pairing predictions with GT objects, and the errors for predictions that cannot be scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occseg.data.writers import write_kins_json
from occseg.evaluation.matching import PredictionError, check_predictions_file, match_predictions, read_predictions
from occseg.evaluation.protocol import EvalConfig, evaluate


def _gt(build, n_images: int = 2, n_objects: int = 2):
    h, w = 4, 6
    ims = []
    for i in range(1, n_images + 1):
        objs = [build.inst(10 * i + k, build.rect(h, w, 0, 4, k, k + 1)) for k in range(n_objects)]
        ims.append(build.image(i, objs, h, w))
    return build.dataset(ims)


def test_pairs_by_image_and_object_id(build) -> None:
    gt = _gt(build)
    pred = _gt(build)
    pred.images.reverse()  # order does not matter
    m = match_predictions(gt, pred)
    assert set(m.pairs) == {(1, 10), (1, 11), (2, 20), (2, 21)} and m.missing == [] and m.warnings == []


def test_unknown_image_ids_are_an_error(build) -> None:
    gt = _gt(build)
    pred = _gt(build, n_images=9)
    with pytest.raises(PredictionError, match=r"7 image id\(s\) not in the ground truth .*: 3, 4, 5, 6, 7, \.\.\."):
        match_predictions(gt, pred)


def test_unknown_object_ids_are_an_error(build) -> None:
    gt = _gt(build)
    pred = _gt(build, n_objects=3)
    with pytest.raises(
        PredictionError, match=r"2 prediction\(s\) for object ids not in the ground truth.*image 1 id 12"
    ):
        match_predictions(gt, pred)


def test_duplicate_predictions_are_an_error(build) -> None:
    gt = _gt(build)
    pred = _gt(build)
    pred.images[0].instances.append(pred.images[0].instances[0])
    with pytest.raises(PredictionError, match=r"predicted more than once.*\(1, 10\)"):
        match_predictions(gt, pred)


def test_image_size_mismatch_names_the_image(build) -> None:
    gt = _gt(build)
    pred = _gt(build)
    pred.images[1].width = 7
    with pytest.raises(PredictionError, match=r"image 2 \(2.png\) is 7x4 in the predictions but 6x4"):
        match_predictions(gt, pred)


def test_mask_size_mismatch_names_image_and_object(build) -> None:
    gt = _gt(build)
    pred = _gt(build)
    pred.images[0].instances[1] = build.inst(11, build.rect(5, 6, 0, 4, 0, 1))
    with pytest.raises(PredictionError, match=r"visible mask of object 11 in image 1 \(1.png\) is 6x5"):
        match_predictions(gt, pred)


def test_missing_predictions_warn_with_ids(build) -> None:
    gt = _gt(build, n_images=3, n_objects=3)
    pred = _gt(build, n_images=1, n_objects=3)
    m = match_predictions(gt, pred)
    assert len(m.missing) == 6
    (w,) = m.warnings
    assert "6 of 9 evaluated GT object(s) have no prediction" in w and "(2, 20)" in w and "6 in all" in w


def test_predictions_for_filtered_objects_are_ignored(build) -> None:
    gt = _gt(build)
    gt.images[0].instances[0].category = "person"
    ev = evaluate(gt, _gt(build), EvalConfig(classes=("car",), progress=False))
    assert len(ev.records) == 3 and ev.warnings == []


def test_duplicate_gt_ids_are_an_error(build) -> None:
    gt = _gt(build)
    gt.images[0].instances[1].id = 10
    with pytest.raises(PredictionError, match="two GT annotations with id 10"):
        match_predictions(gt, _gt(build))


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_predictions_file_checks(tmp_path: Path, build) -> None:
    coco = {
        "images": [{"id": 1, "file_name": "1.png", "width": 6, "height": 4}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 4], "segmentation": []}],
        "categories": [{"id": 1, "name": "car"}],
    }
    p = _write(tmp_path / "coco.json", coco)
    with pytest.raises(PredictionError, match=r"coco.json: not a predictions file.*'segmentation'"):
        check_predictions_file(p)
    with pytest.raises(PredictionError, match=r"list.json: not a predictions file: the top level is a list"):
        check_predictions_file(_write(tmp_path / "list.json", [1, 2]))
    with pytest.raises(PredictionError, match=r"noanns.json: not a predictions file: no 'annotations' list"):
        check_predictions_file(_write(tmp_path / "noanns.json", {"images": []}))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON"):
        read_predictions(bad)
    with pytest.raises(FileNotFoundError, match="predictions file not found"):
        read_predictions(tmp_path / "absent.json")


def test_predictions_round_trip_through_the_writer(tmp_path: Path, build) -> None:
    gt = _gt(build)
    path = tmp_path / "pred.json"
    write_kins_json(gt, path)
    pred = read_predictions(path)
    m = match_predictions(gt, pred)
    assert len(m.pairs) == 4 and m.missing == []
    assert all(r.iou_visible == 1.0 for r in evaluate(gt, pred, EvalConfig(progress=False)).records)


def test_predictions_without_visible_mask_or_with_foreign_classes_warn(build) -> None:
    gt = _gt(build)
    pred = _gt(build)
    pred.images[0].instances[0].mask = None  # only an amodal mask: visible IoU 0
    pred.images[1].instances[1].category = "vehicle"  # a class the ground truth does not have
    m = match_predictions(gt, pred)
    assert len(m.warnings) == 2
    assert "1 prediction(s) have no visible mask ('i_segm') and score visible IoU 0" in m.warnings[0]
    assert "(1, 10)" in m.warnings[0]
    assert "1 prediction(s) have classes the ground truth" in m.warnings[1] and "('vehicle')" in m.warnings[1]


def test_predictions_made_from_other_boxes_are_an_error(build) -> None:
    gt = _gt(build)
    pred = _gt(build)
    for im in pred.images:
        for inst in im.instances:
            inst.extra["given_box"] = list(inst.box)  # as predict records it
    assert set(match_predictions(gt, pred).pairs) == {(1, 10), (1, 11), (2, 20), (2, 21)}
    pred.images[1].instances[0].extra["given_box"] = [0.0, 0.0, 1.02, 4.0]  # within 0.05 px of (0, 0, 1, 4)
    pred.images[1].instances[1].extra["given_box"] = [3.0, 0.0, 4.0, 4.0]  # another object's box
    with pytest.raises(
        PredictionError, match=r"1 prediction\(s\) were made from a box that is not their GT object's.*image 2 id 21"
    ):
        match_predictions(gt, pred)
    # the amodal box counts too, clipped to the image
    gt.images[1].instances[1].amodal_box = (1.0, -2.0, 9.0, 4.0)
    pred.images[1].instances[1].extra["given_box"] = [1.0, 0.0, 6.0, 4.0]
    assert (2, 21) in match_predictions(gt, pred).pairs
    pred.images[1].instances[1].extra["given_box"] = "corrupt"
    with pytest.raises(PredictionError, match="unreadable given_box 'corrupt'"):
        match_predictions(gt, pred)


def test_a_predictions_file_scored_against_itself_is_accepted(build) -> None:
    pred = _gt(build)
    for im in pred.images:
        for inst in im.instances:
            inst.extra["given_box"] = [0.0, 0.0, 6.0, 4.0]  # not the mask's box, but the same file on both sides
    assert len(match_predictions(pred, pred).pairs) == 4
