"""The run builds its outputs beside ``--out`` and moves them in only when everything succeeded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occseg.challenge import generator
from occseg.challenge.generator import generate_challenge
from occseg.challenge.objects import SelectionConfig
from occseg.data.images import load_rgb
from occseg.data.readers import read_dataset
from tests.challenge.test_generator import _config, _hashes


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_failed_rerun_leaves_the_earlier_challenge_untouched(tmp_path: Path, source, backgrounds, monkeypatch) -> None:
    out = tmp_path / "ch"
    generate_challenge(_config(out, backgrounds, images=6), source)
    before = _hashes(out)
    real_save = generator.save_rgb
    saved: list[Path] = []

    def save_then_fail(path, image):  # a failure part-way, after some images were written
        if len(saved) == 3:
            raise OSError("disk full")
        saved.append(Path(path))
        real_save(path, image)

    monkeypatch.setattr(generator, "save_rgb", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        generate_challenge(_config(out, backgrounds, images=8, seed=3), source)
    assert len(saved) == 3 and all(p.parent.name == "images" and p.parent.parent != out for p in saved)
    assert _hashes(out) == before
    assert _leftovers(tmp_path) == []
    # a failed first run creates no --out folder at all
    with pytest.raises(OSError, match="disk full"):
        saved.clear()
        generate_challenge(_config(tmp_path / "new", backgrounds, images=8), source)
    assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []


def test_corrupt_background_leaves_the_earlier_challenge_untouched(tmp_path: Path, source, backgrounds) -> None:
    out = tmp_path / "ch"
    generate_challenge(_config(out, backgrounds, images=6), source)
    before = _hashes(out)
    bad = tmp_path / "bad_bg"
    bad.mkdir()
    (bad / "zz_corrupt.jpg").write_text("junk")
    with pytest.raises(OSError, match="cannot decode image file"):
        generate_challenge(_config(out, bad, images=6, seed=5), source)
    assert _hashes(out) == before and _leftovers(tmp_path) == []


def test_selection_error_keeps_an_earlier_challenge(tmp_path: Path, source, backgrounds) -> None:
    out = tmp_path / "ch"
    generate_challenge(_config(out, backgrounds, images=6), source)
    before = _hashes(out)
    with pytest.raises(ValueError, match="no whole objects survive the selection"):
        generate_challenge(_config(out, backgrounds, selection=SelectionConfig(min_height=100)), source)
    assert _hashes(out) == before and _leftovers(tmp_path) == []


def test_rerun_keeps_files_it_does_not_own(tmp_path: Path, source, backgrounds) -> None:
    out = tmp_path / "ch"
    generate_challenge(_config(out, backgrounds, images=8), source)
    mine = {"notes.txt": "my notes", "images/README.txt": "mine too", "annotations/extra.json": "{}"}
    for name, text in mine.items():
        (out / name).write_text(text)
    old = _hashes(out)
    generate_challenge(_config(out, backgrounds, images=4, seed=1, contact_sheet_images=0), source)
    for name, text in mine.items():
        assert (out / name).read_text() == text
    new = _hashes(out)
    assert sorted(p.name for p in (out / "images").glob("*.png")) == [
        "test_000000.png", "test_000001.png", "train_000000.png", "train_000001.png"]  # fmt: skip
    assert new["annotations/train.json"] != old["annotations/train.json"]
    assert new["images/train_000000.png"] != old["images/train_000000.png"]
    assert "contact_sheet.png" not in new  # this run makes none: the stale one is gone
    assert json.loads((out / "summary.json").read_text())["seed"] == 1
    assert _leftovers(tmp_path) == []


def test_result_points_at_the_output_folder(tmp_path: Path, source, backgrounds) -> None:
    out = tmp_path / "ch"
    res = generate_challenge(_config(out, backgrounds, images=6), source)
    assert res.out == out and _leftovers(tmp_path) == []
    for split, ds in res.datasets.items():
        assert ds.source == (out / "annotations" / f"{split}.json").resolve()
        back = read_dataset(ds.source)
        assert [im.path for im in ds.images] == [im.path for im in back.images]
        for im in ds.images:
            assert im.path.is_file() and im.path.parent == (out / "images").resolve()
            assert load_rgb(im.path).shape[:2] == (im.height, im.width)
