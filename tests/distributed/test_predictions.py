"""Sharded prediction: the ranks' parts merge into the file one process writes, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occseg.data.readers import read_dataset
from occseg.data.writers import kins_json_object, write_kins_json
from occseg.distributed.predictions import (
    merge_parts,
    prediction_part,
    shard_dataset,
    write_merged,
    write_part_file,
)
from tests.compnet.conftest import COCO128_IMAGES, write_coco_subset
from tests.distributed.conftest import run_occseg

IDS = (36, 42, 49, 136, 192, 322)  # six coco128-seg images, persons and others


@pytest.fixture(scope="module")
def dataset(shared_data: Path, tmp_path_factory):
    path = write_coco_subset(shared_data, tmp_path_factory.mktemp("sharded") / "gt.json", IDS, keep_masks=True)
    return read_dataset(path, images=shared_data / COCO128_IMAGES)


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_parts_merge_to_the_single_process_json(dataset, tmp_path: Path, world: int) -> None:
    # the 'prediction' of each shard is the shard itself (with masks, extra keys, categories): merging the ranks'
    # parts gives the JSON object the writer makes of the whole dataset, whatever the number of ranks (7 > 6
    # images: a rank without images)
    out = tmp_path / "sub" / "pred.json"
    parts = []
    for rank in range(world):
        shard, idx = shard_dataset(dataset, rank, world)
        assert idx == list(range(rank, len(dataset.images), world))
        parts.append(prediction_part(shard, shard, idx) if shard.images else '{"categories": null, "items": []}')
    merged = merge_parts(parts, out)
    assert json.dumps(merged) == json.dumps(kins_json_object(dataset, out))
    # the streaming merge of the parts' files writes that object as the writer writes it, byte for byte
    files = [write_part_file(json.loads(p), tmp_path / f"{k}.jsonl") for k, p in enumerate(parts)]
    assert write_merged(files, out) == (len(dataset.images), dataset.num_instances())
    write_kins_json(dataset, tmp_path / "sub" / "one.json")
    assert out.read_bytes() == (tmp_path / "sub" / "one.json").read_bytes()


def test_parts_skip_images_without_predictions(dataset, tmp_path: Path) -> None:
    # a predictor keeps only the images it predicted something in: the merge keeps the dataset's order
    from dataclasses import replace

    kept = replace(dataset, images=[im for k, im in enumerate(dataset.images) if k % 3 != 1])
    parts = []
    for rank in range(2):
        shard, idx = shard_dataset(dataset, rank, 2)
        pred = replace(shard, images=[im for k, im in zip(idx, shard.images) if k % 3 != 1])
        parts.append(prediction_part(pred, shard, idx))
    out = tmp_path / "pred.json"
    assert json.dumps(merge_parts(parts, out)) == json.dumps(kins_json_object(kept, out))


def test_mismatched_categories_are_refused(dataset, tmp_path: Path) -> None:
    shard, idx = shard_dataset(dataset, 0, 2)
    a = json.loads(prediction_part(shard, shard, idx))
    b = {**a, "categories": a["categories"][:1]}
    with pytest.raises(RuntimeError, match="different categories"):
        merge_parts([json.dumps(a), json.dumps(b)], tmp_path / "p.json")


def test_two_gloo_processes_write_the_single_process_file(tiny_compnet, tmp_path: Path) -> None:
    # end to end: `torchrun --standalone --nproc-per-node 2 -m occseg predict` and `python -m occseg predict`
    args = ["predict", "--data", tiny_compnet.data, "--images", tiny_compnet.images, "--model", tiny_compnet.folder]
    one = run_occseg(*args, "--out", tmp_path / "one.json", "--no-progress")
    assert one.returncode == 0, one.stderr
    two = run_occseg(*args, "--out", tmp_path / "two.json", "--no-progress", ranks=2)
    assert two.returncode == 0, two.stderr
    assert (tmp_path / "two.json").read_bytes() == (tmp_path / "one.json").read_bytes()
    assert two.stdout.count("wrote") == 1  # rank 0 alone writes and reports
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_images_in_several_folders_merge_to_the_single_process_json(dataset, tmp_path: Path) -> None:
    # image_root is the deepest folder above every predicted image: the merge finds the one the writer finds
    from dataclasses import replace

    moved = replace(
        dataset,
        images=[
            replace(im, path=tmp_path / "img" / f"set{k % 3}" / im.path.name) for k, im in enumerate(dataset.images)
        ],
    )
    for keep in (range(6), [1, 4], [2]):  # all, one folder (set1), one image
        kept = replace(moved, images=[moved.images[k] for k in keep])
        parts = []
        for rank in range(2):
            shard, idx = shard_dataset(moved, rank, 2)
            pred = replace(shard, images=[im for k, im in zip(idx, shard.images) if k in keep])
            parts.append(prediction_part(pred, shard, idx))
        out = tmp_path / "out" / "pred.json"
        assert json.dumps(merge_parts(parts, out)) == json.dumps(kins_json_object(kept, out))
