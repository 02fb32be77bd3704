"""Every script in ``benchmarks/`` runs end to end on a tiny setup (few images, a tiny or small model), so none
can rot unnoticed; the figures they print are not checked here (they are what the scripts are for)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from occseg.benchmarking import data_dir
from tests.conftest import REPO_ROOT, need_data

BENCHMARKS = REPO_ROOT / "benchmarks"
#: the challenge scripts' tiny setup: 6 composed images and the tests' tiny model (no training)
CHALLENGE = ["--images", "6", "--seed", "0"]
NO_TINY = ["--no-tiny", "--relabel-rounds", "0"]
#: reasoning_validation.py also merges two sources (the larger challenge's --sources) and lowers --min-height
VALIDATION = ["--margins", "1", "--min-height", "24", "--sources", "coco128-seg,coco-mini"]


def run_main(name: str, args: list[str]) -> int:
    """``benchmarks/<name>.py``'s ``main(args)``, the script imported from its file."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        return module.main(args)
    finally:
        del sys.modules[spec.name]


def _tiny_args(name: str, model: Path, tmp: Path) -> list[str]:
    if name == "distributed_scaling":
        coco = data_dir() / "coco128-seg" / "annotations" / "instances_train2017.json"
        return ["train", "--data", str(coco), "--boxes", "5", "--ranks", "1", "--concepts", "8", "--mixtures", "1"]
    if name in ("reasoning_challenge", "order_limits", "order_vote_variants", "reasoning_adapted"):
        return [*CHALLENGE, "--model", str(model)]
    return {
        "reasoning_validation": [*CHALLENGE, "--model", str(model), *VALIDATION, "--json", str(tmp / "val.json")],
        "compnet_coco": ["--model", str(model), "--max-images", "3"],
        "classify_coco": ["--load-model", str(model), "--max-images", "2"],
        "refine_coco": ["--concepts", "8", "--max-images", "12", "--variants", "default", *NO_TINY],
        "ship_model": ["--out", str(tmp / "model"), "--concepts", "8", "--max-images", "2"],
        "reasoning_cocoa": ["--concepts", "8", "--max-images", "2"],
        "position_fit": ["--max-images", "6", "--repeats", "1", "--concepts", "8"],
        "cuda_first_calls": ["--trainings", "0"],
        "challenge_boxfill": ["--images", "6"],
        "segment_many_boxes": ["--boxes", "3"],
        "coco_read_memory": ["--images", "20", "--objects", "2", "--vertices", "8", "--out", str(tmp)],
        "mask_head": ["--max-images", "3", "--concepts", "8", "--epochs", "1", "--variants", '{"head": {}}'],
    }[name]


SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem != "speed")


def test_every_script_is_run_here():
    assert SCRIPTS == sorted(
        ["challenge_boxfill", "classify_coco", "coco_read_memory", "compnet_coco", "cuda_first_calls",
         "distributed_scaling", "mask_head", "order_limits", "order_vote_variants", "position_fit",
         "reasoning_adapted", "reasoning_challenge", "reasoning_cocoa", "reasoning_validation", "refine_coco",
         "segment_many_boxes", "ship_model"]
    )  # fmt: skip


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_main_runs_on_a_tiny_setup(name, shared_data, tiny_compnet, tmp_path, one_torch_thread, capsys):
    need_data(shared_data, "coco128-seg", "coco-mini", "coco-tiny", "backgrounds", "cocoa-demo")
    assert run_main(name, _tiny_args(name, tiny_compnet.folder, tmp_path)) == 0
    assert capsys.readouterr().out.strip()  # it printed its figures


def test_speed_runs_as_a_script_on_a_tiny_setup(tmp_path: Path):
    """speed.py times each backbone in a fresh process (spawned: it needs the script as a file)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    args = ["--backbones", "efficientnet_lite0", "--threads", "1", "--repeats", "1", "--rounds", "0",
            "--concepts", "8", "--mixtures", "1", "--train-images", "2", "--train-objects", "6", "--counts", "4",
            "--batch-size", "1", "--json", str(tmp_path / "speed.json")]  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "speed.py"), *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "speed.json").is_file()
