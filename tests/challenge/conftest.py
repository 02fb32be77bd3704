"""A small synthetic source dataset (images + masks on disk) for the challenge generator's tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.images import save_rgb
from occseg.data.masks import LazyMask
from occseg.geometry.boxes import mask_to_box


def blob(height: int, width: int, box: tuple[int, int, int, int], *, head: bool = True) -> np.ndarray:
    """A person-like mask inside ``box`` (x1, y1, x2, y2): an ellipse body and, optionally, a round head."""
    x1, y1, x2, y2 = box
    m = np.zeros((height, width), dtype=np.uint8)
    cx = (x1 + x2) // 2
    top = y1 + (y2 - y1) // 4 if head else y1
    cv2.ellipse(m, (cx, (top + y2) // 2), (max(1, (x2 - x1) // 2 - 1), max(1, (y2 - top) // 2 - 1)), 0, 0, 360, 1, -1)
    if head:
        r = max(2, (y2 - y1) // 8)
        cv2.circle(m, (cx, y1 + r), r, 1, -1)
    return m.astype(bool)


def instance(ann_id: int, category: str, mask: np.ndarray, **kw) -> Instance:
    return Instance(id=ann_id, category=category, box=mask_to_box(mask), mask=LazyMask.from_array(mask), **kw)


def noise_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR)


def make_source(folder: Path, *, n_images: int = 6, seed: int = 1) -> Dataset:
    """``n_images`` 200x150 images, each with two whole persons, one whole ball, and rejects of every kind.

    Per image: persons at x 20-60 and 120-160 (whole), a ball (whole, other class), a person touching the
    left border, two persons touching each other, a short person. Object colours are flat so cut-outs are
    easy to recognise.
    """
    rng = np.random.default_rng(seed)
    h, w = 150, 200
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    ann = 1
    for i in range(n_images):
        img = noise_image(rng, h, w)
        specs = [
            ("person", (20 + i, 20, 56 + i, 100)),  # whole
            ("person", (120, 30 + i, 150, 110 + i)),  # whole
            ("ball", (78, 10, 112, 54)),  # whole, other class
            ("person", (0, 105, 20, 148)),  # touches the left (and bottom) border
            ("person", (70, 70, 90, 130)),  # touches the next one
            ("person", (90, 70, 110, 130)),
            ("person", (165, 10, 180, 30)),  # too short (20 px)
        ]
        insts = []
        for cat, box in specs:
            m = blob(h, w, box, head=cat == "person")
            colour = rng.integers(30, 226, size=3)
            img[m] = colour
            insts.append(instance(ann, cat, m))
            ann += 1
        path = folder / f"src_{i:03d}.png"
        save_rgb(path, img)
        images.append(AnnotatedImage(image_id=100 + i, path=path.resolve(), width=w, height=h, instances=insts))
    return Dataset(images=images, categories=["person", "ball"], source=folder / "source.json", format="coco")


def make_backgrounds(folder: Path, n: int = 3, seed: int = 2) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_rgb(folder / f"bg_{i}.png", noise_image(rng, 180 + 20 * i, 240 + 10 * i))
    return folder


@pytest.fixture()
def source(tmp_path: Path) -> Dataset:
    return make_source(tmp_path / "source")


@pytest.fixture()
def backgrounds(tmp_path: Path) -> Path:
    return make_backgrounds(tmp_path / "backgrounds")


def check_invariants(dataset: Dataset) -> dict[str, int]:
    """Assert the generator's invariants on a (read-back) split; returns target objects per level."""
    from occseg.data.annotation import image_order_matrix, occlusion_level

    levels = {"L0": 0, "L1": 0, "L2": 0, "L3": 0}
    for im in dataset.images:
        insts = im.instances
        assert insts, f"image {im.image_id} has no objects"
        amodal = [i.amodal_mask.decode() for i in insts]
        visible = [i.mask.decode() for i in insts]
        for inst, a, v in zip(insts, amodal, visible):
            assert a.shape == (im.height, im.width)
            assert not np.any(v & ~a), f"visible not inside amodal: image {im.image_id} object {inst.id}"
            assert v.any()
            assert inst.box == mask_to_box(v) and inst.amodal_box == mask_to_box(a)
            frac = inst.occlusion_fraction()
            assert inst.extra["occ_fraction"] == frac  # exact, from the masks
            assert frac == float(a.sum() - v.sum()) / float(a.sum())
            assert inst.extra["scenario"] == im.extra["scenario"]
            if inst.extra.get("unknown"):
                assert inst.extra["unknown"] is True
            else:
                assert frac < 0.9
                assert set(inst.extra["source"]) >= {"image", "image_id", "annotation_id"}
                levels[occlusion_level(frac)] += 1
        # the cluster and the order inside it explain every visible mask
        for k, inst in enumerate(insts):
            in_front = np.zeros_like(amodal[k])
            for j, other in enumerate(insts):
                if other.cluster_id == inst.cluster_id and other.order < inst.order:
                    in_front |= amodal[j]
                if other.cluster_id != inst.cluster_id:
                    assert not np.any(amodal[k] & amodal[j]), "objects of different clusters overlap"
            assert np.array_equal(visible[k], amodal[k] & ~in_front)
        for cid in {i.cluster_id for i in insts}:
            orders = sorted(i.order for i in insts if i.cluster_id == cid)
            assert orders == list(range(len(orders)))
        # the evaluation's pairwise order agrees with the depth order for overlapping pairs
        order = image_order_matrix(im)
        for i in range(len(insts)):
            for j in range(len(insts)):
                if i == j or not np.any(amodal[i] & amodal[j]):
                    assert i == j or order[i, j] == 0
                    continue
                front, back = (i, j) if insts[i].order < insts[j].order else (j, i)
                if np.any(visible[front] & amodal[back]):
                    assert order[front, back] == 1 and order[back, front] == -1
                else:  # the overlap is hidden by a third object in front of both
                    assert order[i, j] == 0
    return levels
