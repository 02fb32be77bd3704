"""Checkpoints and --resume: an interrupted prediction continues where it stopped and gives the same file; a
killed run (SIGTERM, SIGINT) leaves no predictions file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from occseg.data.readers import read_dataset
from occseg.data.writers import kins_json_object
from occseg.distributed.checkpoints import Checkpoints, run_key
from occseg.distributed.context import DistContext
from occseg.distributed.predictions import predict_sharded
from tests.compnet.conftest import COCO128_IMAGES, write_coco_subset
from tests.conftest import REPO_ROOT
from tests.distributed.conftest import run_occseg


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Interrupted(Exception):
    pass


def test_resume_predicts_only_the_missing_shards(shared_data: Path, tmp_path: Path) -> None:
    path = write_coco_subset(shared_data, tmp_path / "gt.json", (36, 42, 49, 136, 192, 322), keep_masks=True)
    dataset = read_dataset(path, images=shared_data / COCO128_IMAGES)
    out = tmp_path / "pred.json"
    ckpt = Checkpoints.beside(out, run_key({"run": 1}))
    again = Checkpoints.beside(out, run_key({"run": 1}), reuse=True)
    seen: list[list[int]] = []

    def predict(ds, stop_at: int | None = None):  # the 'prediction' of a shard is the shard itself
        seen.append([im.image_id for im in ds.images])
        if stop_at is not None and len(seen) == stop_at:
            raise Interrupted
        return ds

    with pytest.raises(Interrupted):  # the run stops in its third shard of four
        predict_sharded(DistContext(), dataset, lambda d: predict(d, 3), out, shards=4, checkpoints=ckpt)
    assert len(list(ckpt.folder.iterdir())) == 2
    seen.clear()
    written = predict_sharded(DistContext(), dataset, predict, out, shards=4, checkpoints=again)
    assert len(seen) == 2  # shards 2 and 3 only
    assert written == (6, dataset.num_instances())
    assert out.read_text() == json.dumps(kins_json_object(dataset, out)) + "\n"  # the file one process writes
    # another key (a changed setting or input) does not reuse them; without --resume nothing is reused either
    seen.clear()
    predict_sharded(
        DistContext(), dataset, predict, out, shards=4, checkpoints=Checkpoints(ckpt.folder, "x", reuse=True)
    )
    predict_sharded(DistContext(), dataset, predict, out, shards=4, checkpoints=ckpt)
    assert len(seen) == 8


@pytest.fixture(scope="module")
def whole_run(tiny_compnet, tmp_path_factory) -> tuple[list, Path]:
    """The arguments of a 4-shard prediction and the file an uninterrupted run writes."""
    args = ["predict", "--data", tiny_compnet.data, "--images", tiny_compnet.images, "--model", tiny_compnet.folder]
    args += ["--no-progress", "--shards", "4"]
    out = tmp_path_factory.mktemp("whole") / "whole" / "pred.json"
    whole = run_occseg(*args, "--out", out)
    assert whole.returncode == 0, whole.stderr
    return args, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_prediction_leaves_no_file_and_resumes_to_the_same_file(whole_run, tmp_path: Path, sig) -> None:
    args, whole = whole_run
    out = tmp_path / "cut" / "pred.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}
    cmd = [sys.executable, "-m", "occseg", *map(str, args), "--out", str(out), "--resume"]
    # SIGINT as in a terminal, also when the tests run in a background job (which starts with SIGINT ignored)
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint
    )
    folder = out.parent / ".pred.json.checkpoints"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not list(folder.glob("shard-*.json")):
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run ended before it could be interrupted (a very fast machine)")
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists()  # no predictions file, whole or half-written
    assert list(folder.glob("shard-*.json"))  # the finished shards are kept
    resumed = run_occseg(*args, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.json"]  # checkpoints and temporaries gone
