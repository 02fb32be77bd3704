"""Training under torchrun: 2 gloo processes learn the model 1 process learns (bitwise)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.compnet.conftest import COCO128_IMAGES, TINY_IMAGE_IDS, write_coco_subset
from tests.distributed.conftest import run_occseg


def test_two_gloo_processes_train_the_single_process_model(shared_data: Path, tmp_path: Path) -> None:
    data = write_coco_subset(shared_data, tmp_path / "sub.json", TINY_IMAGE_IDS)  # 4 images, 2 per rank
    args = ["train", "--data", data, "--images", shared_data / COCO128_IMAGES, "--classes", "person,giraffe"]
    args += ["--concepts", "16", "--mixtures", "2", "--no-progress"]
    one = run_occseg(*args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = run_occseg(*args, "--out", tmp_path / "two", ranks=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("trained on") == 1  # rank 0 alone saves and reports
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert sorted(a) == sorted(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name  # every tensor bitwise equal (the target was 1e-5 relative)
    ja, jb = (json.loads((tmp_path / m / "model.json").read_text()) for m in ("one", "two"))
    for j in (ja, jb):
        j.pop("sha256", None)
        j["training"].pop("seconds")
    assert ja == jb
