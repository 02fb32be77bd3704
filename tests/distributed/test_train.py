"""Training under torchrun: 2 gloo processes learn the model 1 process learns (bitwise), the mask head's batches
split between them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.compnet.conftest import COCO128_IMAGES, TINY_IMAGE_IDS, write_coco_subset
from tests.distributed.conftest import run_occseg
from tests.head.conftest import synthetic_crops, synthetic_settings


def _train_small_head(dist=None):
    """A head on 10 constructed crops, batches of 7 (micro-batches of 4 and 3) and 3 (one micro-batch: under 2
    ranks one has none); how many micro-batches this rank computed."""
    import occseg.head.learn as learn
    from occseg.head.config import HeadTrainConfig

    calls = []
    micro_batch_loss = learn.micro_batch_loss

    def counted(*args, **kwargs):
        calls.append(1)
        return micro_batch_loss(*args, **kwargs)

    learn.micro_batch_loss = counted
    try:
        cfg = HeadTrainConfig(epochs=3, batch_size=7, self_train=1.0)
        head = learn.train_head(synthetic_crops(10), synthetic_settings(), cfg, dist=dist)
    finally:
        learn.micro_batch_loss = micro_batch_loss
    return head, len(calls)


def _head_rank_main(rank: int, world: int, port: int, out: str) -> None:
    import os

    from safetensors.torch import save_file

    from occseg.distributed.context import session

    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    with session("cpu", env={"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)}) as ctx:
        head, calls = _train_small_head(ctx)
    save_file(head.state_dict(), f"{out}.{rank}.safetensors")
    Path(f"{out}.{rank}.json").write_text(json.dumps({"calls": calls, "training": head.settings.training}))


@pytest.mark.usefixtures("one_torch_thread")
def test_two_gloo_ranks_split_the_heads_batches_and_learn_the_one_process_head(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from tests.distributed.test_collectives import _free_port

    one, calls = _train_small_head()
    assert calls == 3 * 3  # 3 epochs of 3 micro-batches
    mp.spawn(_head_rank_main, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    for rank, share in ((0, 3 * 2), (1, 3 * 1)):  # rank 0: micro-batches 0 and 2; rank 1: micro-batch 1
        record = json.loads((tmp_path / f"two.{rank}.json").read_text())
        assert record["calls"] == share
        assert record["training"] == json.loads(json.dumps(one.settings.training))  # the same logged losses
        two = load_file(tmp_path / f"two.{rank}.safetensors")
        for name, value in one.state_dict().items():
            assert torch.equal(two[name], value), name  # bitwise (the target was 1e-5 relative)


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
    assert any(k.startswith("mask_head.") for k in a)  # the head too: its crops are shared by the ranks
    for name in a:
        assert torch.equal(a[name], b[name]), name  # every tensor bitwise equal (the target was 1e-5 relative)
    ja, jb = (json.loads((tmp_path / m / "model.json").read_text()) for m in ("one", "two"))
    for j in (ja, jb):
        j.pop("sha256", None)
        j["training"].pop("seconds")
    assert ja == jb


def test_a_resumed_training_reuses_the_saved_stages(shared_data: Path, tmp_path: Path, lite0_backbone, monkeypatch):
    # in process: a first run saves every stage; a run that reuses them never runs the backbone again, and a stage
    # left unsaved (a class) is learned again; the model is the uninterrupted one
    import occseg.compnet.learn as learn
    from occseg.compnet.samples import box_samples
    from occseg.data.readers import read_dataset
    from occseg.distributed.checkpoints import Checkpoints
    from tests.compnet.conftest import TINY_CLASSES, tiny_train_config, torch_threads

    data = write_coco_subset(shared_data, tmp_path / "sub.json", TINY_IMAGE_IDS)
    samples = box_samples(read_dataset(data, images=shared_data / COCO128_IMAGES), TINY_CLASSES, min_height=30)
    ckpt = Checkpoints(tmp_path / "ckpt", "k1", reuse=True)
    with torch_threads(1):
        first = learn.train_compnet(
            samples, TINY_CLASSES, tiny_train_config(), backbone=lite0_backbone, progress=False, checkpoints=ckpt
        )
        names = sorted(p.name for p in ckpt.folder.iterdir())
        assert names == [
            "class-000.rank0-of-1.safetensors", "class-001.rank0-of-1.safetensors", "concepts.rank0.safetensors",
            "features.rank0-of-1.safetensors", "outlier-features.rank0-of-1.safetensors",
        ]  # fmt: skip
        ckpt.remove("class-001.rank0-of-1")  # as if killed while learning giraffes (class 1)

        def no_backbone(*args, **kwargs):
            raise AssertionError("the backbone ran again")

        monkeypatch.setattr(learn, "_image_crops", no_backbone)
        monkeypatch.setattr(learn, "_outside_features", no_backbone)
        again = learn.train_compnet(
            samples, TINY_CLASSES, tiny_train_config(), backbone=lite0_backbone, progress=False, checkpoints=ckpt
        )
    assert torch.equal(first.concepts, again.concepts) and torch.equal(first.clutter, again.clutter)
    for c in TINY_CLASSES:
        assert torch.equal(first.classes[c].alpha, again.classes[c].alpha)
        assert torch.equal(first.classes[c].prior_fg, again.classes[c].prior_fg)
    assert first.settings.training == again.settings.training


def test_a_killed_training_leaves_no_model_and_resumes_to_the_same_model(shared_data: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO_ROOT

    data = write_coco_subset(shared_data, tmp_path / "sub.json", TINY_IMAGE_IDS)
    args = ["train", "--data", data, "--images", shared_data / COCO128_IMAGES, "--classes", "person"]
    args += ["--concepts", "16", "--mixtures", "2", "--no-progress", "--resume"]
    whole = run_occseg(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut" / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "occseg", *map(str, args), "--out", str(out)],
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    saved = out.parent / ".model.checkpoints" / "features.rank0-of-1.safetensors"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not saved.exists():
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run ended before it could be interrupted (a very fast machine)")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not (out / "model.json").exists() and not (out / "model.safetensors").exists()
    resumed = run_occseg(*args, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]  # the checkpoints are gone


def test_under_torchrun_the_ranks_share_the_image_header_check(shared_data: Path, tmp_path: Path) -> None:
    data = write_coco_subset(shared_data, tmp_path / "sub.json", TINY_IMAGE_IDS)
    coco = json.loads(data.read_text())
    coco["images"][-1]["width"] //= 2  # its header is read by rank 1 (the fourth image)
    data.write_text(json.dumps(coco))
    args = ["train", "--data", data, "--images", shared_data / COCO128_IMAGES, "--classes", "person,giraffe"]
    res = run_occseg(*args, "--concepts", "16", "--no-progress", "--out", tmp_path / "two", ranks=2)
    assert res.returncode != 0
    assert f"{coco['images'][-1]['file_name']}: image is" in res.stderr and "but the annotation says" in res.stderr
    assert res.stderr.count("occseg: error:") == 2  # one line a rank (then torchrun's report of the failed ranks)
    assert "/occseg/" not in res.stderr and not (tmp_path / "two").exists()  # no traceback of occseg's
    assert res.stderr.count("extends outside the 320x481 image") == 1  # the data's warnings: rank 0 alone


def _paste_rank_main(rank: int, world: int, port: int, folder: str, data: str, images: str, out: str) -> None:
    import os

    from safetensors.torch import save_file

    from occseg.distributed.context import session

    torch.set_num_threads(1)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    with session("cpu", env={"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)}) as ctx:
        head = _paste_head(folder, data, images, ctx)
    save_file(head.state_dict(), f"{out}.{rank}.safetensors")


def _paste_head(folder: str, data: str, images: str, dist=None):
    """A head learned with one copy-paste composite per box on the tiny CompNet's images (4 images)."""
    from occseg.data.readers import read_dataset
    from occseg.head.config import HeadTrainConfig
    from occseg.head.learn import image_boxes, learn_mask_head
    from occseg.inference.predict import load_model_and_backbone

    model, backbone = load_model_and_backbone(folder)
    boxes = image_boxes(read_dataset(data, images=images), ["person"])
    cfg = HeadTrainConfig(epochs=2, batch_size=4, rounds=2, paste=1, scales=(model.settings.target_height,))
    return learn_mask_head(model, boxes, cfg, backbone=backbone, dist=dist)


@pytest.mark.usefixtures("one_torch_thread")
def test_two_gloo_ranks_learn_the_one_process_head_with_copy_paste(tiny_compnet, shared_data: Path, tmp_path: Path):
    import torch.multiprocessing as mp

    from tests.distributed.test_collectives import _free_port

    data = write_coco_subset(shared_data, tmp_path / "sub.json", TINY_IMAGE_IDS)
    args = (str(tiny_compnet.folder), str(data), str(shared_data / COCO128_IMAGES))
    one = _paste_head(*args)
    assert one.settings.training["paste"] == 1
    mp.spawn(_paste_rank_main, args=(2, _free_port(), *args, str(tmp_path / "two")), nprocs=2, join=True)
    for rank in (0, 1):
        two = load_file(tmp_path / f"two.{rank}.safetensors")
        for name, value in one.state_dict().items():
            assert torch.equal(two[name], value), name
