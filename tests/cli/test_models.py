"""``occseg models`` and the shipped person model used by ``segment`` / ``predict`` without ``--model``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occseg.api import models
from tests.cli.invoke import BOXES_192, IMAGE_192, run
from tests.compnet.conftest import COCO128_IMAGES, write_coco_subset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_models_lists_the_shipped_person_model():
    res = run("models")
    assert res.exit_code == 0, res.output
    folder = models()["person"]
    size = (folder / "model.safetensors").stat().st_size / 2**20
    assert res.output.splitlines() == [
        f"person (default): {folder}; classes person; backbone efficientnet_lite0; 128 concepts; {size:.2f} MiB"
    ]


def test_segment_and_predict_without_model_use_the_shipped_person_model(shared_data: Path, tmp_path: Path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"box": b} for b in BOXES_192]))
    image = shared_data / COCO128_IMAGES / IMAGE_192
    res = run("segment", "--image", image, "--boxes", boxes, "--out", tmp_path / "seg")
    assert res.exit_code == 0, res.output
    assert f"using the shipped person model {models()['person']}" in res.output
    result = json.loads((tmp_path / "seg" / "result.json").read_text())
    assert [o["class"] for o in result["objects"]] == ["person"] * 3 and (tmp_path / "seg" / "overlay.png").is_file()
    data = write_coco_subset(shared_data, tmp_path / "one.json", [192])
    out = tmp_path / "pred.json"
    res = run("predict", "--data", data, "--images", shared_data / COCO128_IMAGES, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    pred = json.loads(out.read_text())
    assert len(pred["annotations"]) == 4  # the four persons; the baseball bat is an unknown occluder
