"""The whole run on a synthetic source: invariants, levels, determinism, split, errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from occseg.challenge.generator import ChallengeConfig, generate_challenge
from occseg.challenge.objects import SelectionConfig
from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from tests.challenge.conftest import check_invariants, make_source


def _config(out: Path, backgrounds: Path | None, **kw) -> ChallengeConfig:
    base = dict(
        out=out,
        classes=("person",),
        backgrounds=backgrounds,
        images=12,
        seed=0,
        size=(200, 150),
        progress=False,
        contact_sheet_images=4,
    )
    base.update(kw)
    return ChallengeConfig(**base)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_invariants_levels_and_outputs(tmp_path: Path, source, backgrounds) -> None:
    out = tmp_path / "ch"
    res = generate_challenge(_config(out, backgrounds, images=36), source)
    levels = {"L0": 0, "L1": 0, "L2": 0, "L3": 0}
    for split in ("train", "test"):
        ds = read_dataset(out / "annotations" / f"{split}.json")  # no --images: image_root in the file
        assert ds.format == "kins" and not ds.warnings
        assert all(im.path.is_file() for im in ds.images)
        split_levels = check_invariants(ds)
        for lv, n in split_levels.items():
            levels[lv] += n
            # the printed / summary counts agree with the masks in the file
            assert n == sum(row[lv] for row in res.summary["counts"][split].values())
    assert all(n > 0 for n in levels.values()), levels
    assert res.summary["images"] == {"train": 18, "test": 18}
    scen = [im.extra["scenario"] for im in res.datasets["test"].images]
    assert scen.count("2obj") == scen.count("4obj") == scen.count("2obj_unknown") == 6
    per_image = {"2obj": 2, "4obj": 4}
    for im in res.datasets["train"].images:
        targets = [i for i in im.instances if not i.extra.get("unknown")]
        unknown = [i for i in im.instances if i.extra.get("unknown")]
        if im.extra["scenario"] == "2obj_unknown":
            assert len(targets) == 2 and 1 <= len(unknown) <= 2 and all(u.category == "ball" for u in unknown)
            for u in unknown:  # occluders are in front of the targets they touch
                assert all(u.order < t.order for t in targets if t.cluster_id == u.cluster_id)
        else:
            assert len(targets) == per_image[im.extra["scenario"]] and not unknown
    placed = [i for im in res.datasets["train"].images for i in im.instances if i.extra.get("placement")]
    assert placed
    for inst in placed:  # where each cut-out was pasted, as an x1, y1, x2, y2 box around its amodal box
        x1, y1, x2, y2 = inst.extra["placement"]["paste_box"]
        ax1, ay1, ax2, ay2 = inst.amodal_box
        assert x1 <= ax1 and y1 <= ay1 and ax2 <= x2 and ay2 <= y2 and x2 - x1 > 0 and y2 - y1 > 0
        assert set(inst.extra["placement"]) == {"paste_box", "scale", "flip"}
    # 2obj: the object behind is at L1-L3 (one occludes the other)
    for im in res.datasets["test"].images:
        if im.extra["scenario"] == "2obj":
            fr = sorted(i.extra["occ_fraction"] for i in im.instances)
            assert fr[0] == 0.0 and fr[1] >= 0.01
    sel = json.loads((out / "selection.json").read_text())
    assert sel["targets"]["kept"] == 12 and sel["targets"]["rejected_by_reason"] == {
        "too_short": 6, "touches_border": 6, "touches_other": 12}  # fmt: skip
    sheet = load_rgb(out / "contact_sheet.png")
    assert sheet.shape[0] > 100 and sheet.shape[1] > 400
    assert "L0" in res.table and "2obj_unknown" in res.table


def test_listing_order_does_not_give_the_depth_away(tmp_path: Path, source, backgrounds) -> None:
    res = generate_challenge(_config(tmp_path / "ch", backgrounds, images=36), source)
    first_in_front = []
    for ds in res.datasets.values():
        for im in ds.images:
            insts = im.instances
            for a in range(len(insts)):
                for b in range(a + 1, len(insts)):
                    if insts[a].cluster_id == insts[b].cluster_id:  # a pair of one group: one is in front
                        first_in_front.append(insts[a].order < insts[b].order)
    # composed front to back, but listed in a drawn order: the first listed is in front about half the time
    assert len(first_in_front) >= 30
    assert 0.25 <= sum(first_in_front) / len(first_in_front) <= 0.75, sum(first_in_front) / len(first_in_front)


def test_same_seed_same_bytes(tmp_path: Path, source, backgrounds) -> None:
    generate_challenge(_config(tmp_path / "a", backgrounds, images=6), source)
    generate_challenge(_config(tmp_path / "b", backgrounds, images=6), source)
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(ha) == 6 + 2 + 4  # images, two annotation files, selection/split/summary/contact sheet
    assert ha == hb
    generate_challenge(_config(tmp_path / "c", backgrounds, images=6, seed=1), source)
    hc = _hashes(tmp_path / "c")
    assert hc["images/train_000000.png"] != ha["images/train_000000.png"]
    # a smaller rerun into the same folder leaves no stale images behind
    generate_challenge(_config(tmp_path / "a", backgrounds, images=4), source)
    assert sorted(p.name for p in (tmp_path / "a" / "images").iterdir()) == [
        "test_000000.png", "test_000001.png", "train_000000.png", "train_000001.png"]  # fmt: skip


def test_split_by_source_object(tmp_path: Path, source, backgrounds) -> None:
    out = tmp_path / "ch"
    res = generate_challenge(_config(out, backgrounds, images=12, test_fraction=0.25), source)
    split = json.loads((out / "split.json").read_text())
    assert len(split["test_objects"]) == 3 and len(split["train_objects"]) == 9  # round(12 * 0.25)

    def used(ds) -> set[tuple[int, int]]:
        return {(i.extra["source"]["image_id"], i.extra["source"]["annotation_id"]) for im in ds.images
                for i in im.instances}  # fmt: skip

    train, test = used(res.datasets["train"]), used(res.datasets["test"])
    assert train and test and not train & test
    test_objs = {(o["image_id"], o["annotation_id"]) for o in split["test_objects"] + split["test_unknown_objects"]}
    assert test <= test_objs
    assert split["test_source_image_ids"] == sorted({o[0] for o in test_objs})
    assert res.summary["images"] == {"train": 9, "test": 3}


def test_source_regions_and_synthetic_occluders(tmp_path: Path, source) -> None:
    out = tmp_path / "ch"
    # no backgrounds folder: object-free regions of the source images; no unknown classes: synthetic occluders
    empty = make_source(tmp_path / "empty", n_images=1, seed=9).images[0]
    empty.instances, empty.image_id = [], 999  # an image without objects: the whole of it is free
    source.images.append(empty)
    cfg = _config(out, None, images=6, unknown_classes="none", min_region_height=40)
    res = generate_challenge(cfg, source)
    assert res.summary["backgrounds"] == {"files": [], "source_regions": 1}
    bgs = [im.extra["background"] for ds in res.datasets.values() for im in ds.images]
    assert all("source_image" in b for b in bgs)
    unknown = [i for im in res.datasets["test"].images for i in im.instances if i.extra.get("unknown")]
    assert unknown and all(u.category == "unknown_occluder" and u.extra["source"]["synthetic"] for u in unknown)
    ds = read_dataset(out / "annotations" / "test.json")
    check_invariants(ds)
    assert "unknown_occluder" in ds.categories


def test_error_no_whole_object_names_class_and_reasons(tmp_path: Path, source, backgrounds) -> None:
    cfg = _config(tmp_path / "ch", backgrounds, selection=SelectionConfig(min_height=100))
    msg = r"class 'person': 36 candidates, all rejected \(too_short: 36, touches_other: 12, touches_border: 6;"
    with pytest.raises(ValueError, match=msg):
        generate_challenge(cfg, source)
    assert json.loads((tmp_path / "ch" / "selection.json").read_text())["targets"]["kept"] == 0


def test_error_empty_backgrounds_folder(tmp_path: Path, source) -> None:
    empty = tmp_path / "empty_bg"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=f"backgrounds folder {empty} holds no images"):
        generate_challenge(_config(tmp_path / "ch", empty), source)
    with pytest.raises(FileNotFoundError, match="backgrounds folder not found"):
        generate_challenge(_config(tmp_path / "ch", tmp_path / "nope"), source)
    with pytest.raises(FileNotFoundError, match=f"backgrounds folder {empty / 'notes.txt'} is a file, not a folder"):
        generate_challenge(_config(tmp_path / "ch", empty / "notes.txt"), source)


def test_error_bad_classes_and_config(tmp_path: Path, source, backgrounds) -> None:
    with pytest.raises(ValueError, match=r"class\(es\) \['cat'\] not in"):
        generate_challenge(_config(tmp_path / "ch", backgrounds, classes=("cat",)), source)
    with pytest.raises(ValueError, match=r"unknown class\(es\) \['tree'\]"):
        generate_challenge(_config(tmp_path / "ch", backgrounds, unknown_classes="ball,tree"), source)
    with pytest.raises(ValueError, match="test-fraction"):
        generate_challenge(_config(tmp_path / "ch", backgrounds, test_fraction=1.5), source)
    with pytest.raises(ValueError, match=r"seed \(--seed\) must be an integer >= 0, got None"):
        generate_challenge(_config(tmp_path / "ch", backgrounds, seed=None), source)
    with pytest.raises(ValueError, match=r"images \(--images\) must be an integer >= 0, got 2.5"):
        generate_challenge(_config(tmp_path / "ch", backgrounds, images=2.5), source)
    small = make_source(tmp_path / "one", n_images=1)  # 2 whole persons: 1 train, 1 test
    cfg = replace(_config(tmp_path / "ch", backgrounds), test_fraction=0.0, images=2)
    res = generate_challenge(cfg, small)  # everything in train, test split empty
    assert res.summary["images"] == {"train": 2, "test": 0}


def test_one_class_may_be_given_as_a_string(tmp_path: Path) -> None:
    assert ChallengeConfig(out=tmp_path, classes="person").classes == ("person",)  # not its letters


def test_no_scenario_is_refused_clearly(tmp_path: Path, backgrounds) -> None:
    with pytest.raises(ValueError, match="give at least one scenario"):
        _config(tmp_path, backgrounds, scenarios=()).validate()
