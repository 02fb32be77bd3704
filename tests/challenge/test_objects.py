"""Selecting whole objects: the rule, the reasons, the cut-outs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from occseg.challenge.objects import SelectionConfig, select_objects, synthetic_occluders
from occseg.data.annotation import AnnotatedImage, Dataset
from occseg.data.images import load_rgb, save_rgb
from tests.challenge.conftest import instance, make_source


def _one_image(tmp_path: Path, masks: list[tuple[str, np.ndarray]], inst_kw: dict | None = None) -> Dataset:
    inst_kw = inst_kw or {}
    h, w = masks[0][1].shape
    rgb = np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3).astype(np.uint8)
    save_rgb(tmp_path / "im.png", rgb)
    insts = [instance(k + 1, cat, m, **inst_kw.get(k, {})) for k, (cat, m) in enumerate(masks)]
    img = AnnotatedImage(image_id=7, path=(tmp_path / "im.png").resolve(), width=w, height=h, instances=insts)
    return Dataset(images=[img], categories=["person", "ball"], source=tmp_path / "x.json", format="coco")


def _rect(h: int, w: int, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def test_border_margin(tmp_path: Path) -> None:
    h, w = 100, 100
    ds = _one_image(
        tmp_path,
        [
            ("person", _rect(h, w, 0, 20, 10, 70)),  # on the border
            ("person", _rect(h, w, 25, 1, 35, 60)),  # 1 px from the top
            ("person", _rect(h, w, 45, 2, 55, 60)),  # 2 px from the top: kept
            ("person", _rect(h, w, 88, 20, 98, 80)),  # ends 2 px from the right: kept
            ("person", _rect(h, w, 65, 40, 75, 99)),  # 1 px from the bottom
        ],
    )
    sel = select_objects(ds, ["person"], config=SelectionConfig(min_height=10, border_margin=2))
    verdict = {r.annotation_id: r.reasons for r in sel.reports}
    assert verdict == {1: ["touches_border"], 2: ["touches_border"], 3: [], 4: [], 5: ["touches_border"]}
    assert [c.key for c in sel.targets] == ["7:3", "7:4"]


def test_touching_and_overlapping_instances(tmp_path: Path) -> None:
    h, w = 100, 120
    ds = _one_image(
        tmp_path,
        [
            ("person", _rect(h, w, 10, 10, 20, 60)),
            ("ball", _rect(h, w, 21, 10, 30, 20)),  # 1 px gap to the first person: contact at touch_px=2
            ("person", _rect(h, w, 50, 10, 60, 60)),
            ("person", _rect(h, w, 55, 40, 70, 90)),  # overlaps the previous one
            ("person", _rect(h, w, 90, 10, 100, 60)),  # 10 px from everything: whole
        ],
    )
    sel = select_objects(ds, ["person"], unknown_classes=["ball"], config=SelectionConfig(min_height=10))
    verdict = {r.annotation_id: r.reasons for r in sel.reports}
    assert verdict[1] == ["touches_other"] and verdict[2] == ["touches_other"]
    assert verdict[3] == ["touches_other"] and verdict[4] == ["touches_other"]
    assert verdict[5] == []
    # a 2 px gap is not contact at touch_px=2 (contact: a gap narrower than touch_px)
    ds2 = _one_image(tmp_path, [("person", _rect(h, w, 10, 10, 20, 60)), ("ball", _rect(h, w, 22, 10, 30, 20))])
    sel2 = select_objects(ds2, ["person"], unknown_classes=["ball"], config=SelectionConfig(min_height=10))
    assert all(r.kept for r in sel2.reports)
    assert [c.key for c in sel2.unknowns] == ["7:2"] and sel2.unknowns[0].unknown


def test_other_reasons_and_counts(tmp_path: Path) -> None:
    h, w = 100, 120
    ds = _one_image(
        tmp_path,
        [
            ("person", _rect(h, w, 10, 10, 20, 30)),  # 20 px tall: too short for 40
            ("person", _rect(h, w, 40, 10, 50, 80)),  # crowd
            ("person", _rect(h, w, 70, 10, 80, 80)),  # whole
        ],
        {1: {"iscrowd": True}},
    )
    ds.images[0].instances.append(
        type(ds.images[0].instances[0])(id=9, category="person", box=(95.0, 10.0, 110.0, 80.0))
    )  # box only
    sel = select_objects(ds, ["person"], config=SelectionConfig(min_height=40))
    verdict = {r.annotation_id: r.reasons for r in sel.reports}
    assert verdict == {1: ["too_short"], 2: ["iscrowd"], 3: [], 9: ["no_mask"]}
    c = sel.counts("target")
    assert c["candidates"] == 4 and c["kept"] == 1 and c["rejected"] == 3
    assert c["rejected_by_reason"] == {"iscrowd": 1, "no_mask": 1, "too_short": 1}
    assert "1 kept of 4 candidates" in sel.describe("target")


def test_cutout_is_the_tight_masked_box(tmp_path: Path) -> None:
    ds = make_source(tmp_path / "src", n_images=2)
    sel = select_objects(ds, ["person"], unknown_classes=["ball"])
    # per image: 2 whole persons, 1 whole ball; the border, touching and short persons are rejected
    assert len(sel.targets) == 4 and len(sel.unknowns) == 2
    assert sel.counts("target")["rejected_by_reason"] == {"too_short": 2, "touches_border": 2, "touches_other": 4}
    cut = sel.targets[0]
    image = ds.images[0]
    inst = image.instances[0]
    full = inst.mask.decode()
    x1, y1, x2, y2 = (int(v) for v in inst.box)
    assert cut.mask.shape == (y2 - y1, x2 - x1)
    assert np.array_equal(cut.mask, full[y1:y2, x1:x2])
    assert np.array_equal(cut.rgb, load_rgb(image.path)[y1:y2, x1:x2])
    assert cut.rgba()[..., 3].max() == 255 and (cut.rgba()[..., 3] > 0).sum() == full.sum()
    assert cut.source == {"image": "src_000.png", "image_id": 100, "annotation_id": inst.id}


def test_missing_image_rejects_its_candidates(tmp_path: Path) -> None:
    ds = make_source(tmp_path / "src", n_images=2)
    ds.images[1].path.unlink()
    sel = select_objects(ds, ["person"])
    assert len(sel.targets) == 2
    assert sel.counts("target")["rejected_by_reason"]["image_unreadable"] == 2


def test_synthetic_occluders_are_repeatable() -> None:
    tex = [np.full((50, 60, 3), 90, np.uint8), np.full((300, 300, 3), 200, np.uint8)]
    a = synthetic_occluders(tex, np.random.default_rng(3), 5, size=64)
    b = synthetic_occluders(tex, np.random.default_rng(3), 5, size=64)
    assert len(a) == 5
    for x, y in zip(a, b):
        assert x.unknown and x.category == "unknown_occluder"
        assert np.array_equal(x.mask, y.mask) and np.array_equal(x.rgb, y.rgb)
        assert x.mask.any(0).all() and x.mask.any(1).all()  # tight box
