"""``occseg make-challenge`` on the real coco128-seg persons (src/occseg/cli/make_challenge.py) and its errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from occseg.cli.main import cli
from occseg.data.readers import read_dataset
from tests.challenge.conftest import check_invariants


def test_make_challenge_on_coco128(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "ch"
    args = [
        "make-challenge",
        "--source", str(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json"),
        "--classes", "person",
        "--backgrounds", str(shared_data / "backgrounds"),
        "--images", "12", "--seed", "0", "--out", str(out), "--no-progress",
    ]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "targets (person):" in res.output and "rejected by reason" in res.output
    assert "L0" in res.output and "2obj_unknown" in res.output
    sel = json.loads((out / "selection.json").read_text())
    # the strict rule leaves few whole persons in coco128-seg (about 15 of 254)
    assert 8 <= sel["targets"]["kept"] <= 25 and sel["targets"]["candidates"] == 254
    rejected = sel["targets"]["rejected_by_reason"]
    assert rejected["touches_other"] > 0 and rejected["touches_border"] > 0 and rejected["too_short"] > 0
    assert sel["unknown"]["kept"] > 0  # whole objects of other classes are the unknown occluders
    levels = {"L0": 0, "L1": 0, "L2": 0, "L3": 0}
    for split in ("train", "test"):
        ds = read_dataset(out / "annotations" / f"{split}.json")
        assert len(ds) == 6
        for lv, n in check_invariants(ds).items():
            levels[lv] += n
        for im in ds.images:
            for inst in im.instances:
                src = inst.extra["source"]
                assert src["image"].endswith(".jpg") and src["image_id"] > 0
    assert all(n > 0 for n in levels.values()), levels
    summary = json.loads((out / "summary.json").read_text())
    split = json.loads((out / "split.json").read_text())
    assert summary["images"] == {"train": 6, "test": 6}
    train_keys = {(o["image_id"], o["annotation_id"]) for o in split["train_objects"]}
    test_keys = {(o["image_id"], o["annotation_id"]) for o in split["test_objects"]}
    assert train_keys and test_keys and not train_keys & test_keys
    assert (out / "contact_sheet.png").stat().st_size > 10_000


def test_cli_errors_are_one_line(tmp_path: Path, shared_data: Path) -> None:
    src = str(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json")
    empty = tmp_path / "bg"
    empty.mkdir()
    res = CliRunner().invoke(
        cli, ["make-challenge", "--source", src, "--classes", "person", "--backgrounds", str(empty),
              "--out", str(tmp_path / "o"), "--images", "2"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert f"occseg: error: backgrounds folder {empty} holds no images" in res.output
    res = CliRunner().invoke(
        cli, ["make-challenge", "--source", src, "--classes", "unicorn",
              "--backgrounds", str(shared_data / "backgrounds"), "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert res.exit_code == 2 and "occseg: error: class(es) ['unicorn'] not in" in res.output
    res = CliRunner().invoke(
        cli, ["make-challenge", "--source", src, "--classes", "person",
              "--backgrounds", str(shared_data / "backgrounds"),
              "--out", str(tmp_path / "o"), "--images", "2", "--min-height", "1000"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "occseg: error: no whole objects survive the selection" in res.output
    assert "class 'person': 254 candidates, all rejected (too_short: 254" in res.output
