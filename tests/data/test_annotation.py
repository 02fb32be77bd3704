"""The annotation helpers: occlusion fraction and levels, the pairwise order matrix (docs/method.md §E), Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from occseg.data.annotation import (
    OCCLUSION_LEVELS,
    AnnotatedImage,
    Dataset,
    Instance,
    image_order_matrix,
    occlusion_level,
    pairwise_order_matrix,
)
from occseg.data.masks import LazyMask


def cols(lo: int, hi: int, width: int = 12, height: int = 3) -> LazyMask:
    """A mask covering columns [lo, hi) of every row."""
    m = np.zeros((height, width), bool)
    m[:, lo:hi] = True
    return LazyMask.from_array(m)


def square(height: int, width: int, y1: int, x1: int, y2: int, x2: int) -> LazyMask:
    m = np.zeros((height, width), bool)
    m[y1:y2, x1:x2] = True
    return LazyMask.from_array(m)


class TestOcclusionLevel:
    @pytest.mark.parametrize(
        ("fraction", "level"),
        [(0.0, "L0"), (0.0099, "L0"), (0.01, "L1"), (0.2999, "L1"), (0.3, "L2"), (0.5999, "L2"), (0.6, "L3"),
         (0.8999, "L3"), (0.9, None), (1.0, None), (-0.1, None), (None, None)],
    )  # fmt: skip
    def test_boundaries(self, fraction, level):
        assert occlusion_level(fraction) == level

    def test_levels_are_the_protocol_bins(self):
        assert OCCLUSION_LEVELS == {"L0": (0.0, 0.01), "L1": (0.01, 0.3), "L2": (0.3, 0.6), "L3": (0.6, 0.9)}


class TestOcclusionFraction:
    def make(self, visible: LazyMask | None, amodal: LazyMask | None) -> Instance:
        return Instance(id=1, category="car", box=(0.0, 0.0, 4.0, 4.0), mask=visible, amodal_mask=amodal)

    def test_half_hidden(self):
        amodal = square(8, 8, 0, 0, 4, 4)  # 16 px
        visible = square(8, 8, 0, 0, 4, 2)  # left half, 8 px
        assert self.make(visible, amodal).occlusion_fraction() == 0.5

    def test_quarter_hidden(self):
        assert self.make(square(8, 8, 0, 0, 4, 3), square(8, 8, 0, 0, 4, 4)).occlusion_fraction() == 0.25

    def test_fully_visible_and_fully_hidden(self):
        amodal = square(8, 8, 2, 2, 6, 6)
        assert self.make(amodal, amodal).occlusion_fraction() == 0.0
        assert self.make(LazyMask.from_array(np.zeros((8, 8), bool)), amodal).occlusion_fraction() == 1.0

    def test_visible_pixels_outside_the_amodal_mask_do_not_count(self):
        amodal = square(8, 8, 0, 0, 2, 2)  # 4 px
        visible = square(8, 8, 1, 1, 5, 5)  # covers 1 amodal pixel and 15 others
        assert self.make(visible, amodal).occlusion_fraction() == 0.75

    def test_undefined_without_masks_or_with_empty_amodal(self):
        amodal = square(8, 8, 0, 0, 4, 4)
        assert self.make(None, amodal).occlusion_fraction() is None
        assert self.make(amodal, None).occlusion_fraction() is None
        empty = LazyMask.from_array(np.zeros((8, 8), bool))
        assert self.make(empty, empty).occlusion_fraction() is None

    def test_polygon_masks(self):
        amodal = LazyMask([[0, 0, 10, 0, 10, 10, 0, 10]], 20, 20)
        visible = LazyMask([[0, 0, 5, 0, 5, 10, 0, 10]], 20, 20)
        inst = self.make(visible, amodal)
        assert inst.has_amodal
        assert inst.occlusion_fraction() == pytest.approx(0.5, abs=0.06)


class TestPairwiseOrder:
    def test_front_and_back_by_hand(self):
        # A: amodal = visible = cols 0..5.  B: amodal cols 3..8, visible only 6..8 (hidden behind A at 3..5).
        # C: cols 10..11, touches nobody.
        visible = [cols(0, 6), cols(6, 9), cols(10, 12)]
        amodal = [cols(0, 6), cols(3, 9), cols(10, 12)]
        order = pairwise_order_matrix(visible, amodal)
        expected = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 0]], dtype=np.int8)
        np.testing.assert_array_equal(order, expected)
        assert order.dtype == np.int8

    def test_overlapping_amodal_but_no_visible_overlap_is_zero(self):
        # both are hidden in the shared part (a third, unknown occluder covers cols 3..5)
        visible = [cols(0, 3), cols(6, 9)]
        amodal = [cols(0, 6), cols(3, 9)]
        np.testing.assert_array_equal(pairwise_order_matrix(visible, amodal), np.zeros((2, 2), np.int8))

    def test_an_exact_tie_gives_no_order_whatever_the_listing(self):
        # both visible masks cover 2 columns of the other's amodal mask (masks that overlap unreasoned)
        visible = [cols(0, 5), cols(3, 8)]
        amodal = [cols(0, 5), cols(3, 8)]
        zero = np.zeros((2, 2), np.int8)
        np.testing.assert_array_equal(pairwise_order_matrix(visible, amodal), zero)
        np.testing.assert_array_equal(pairwise_order_matrix(visible[::-1], amodal[::-1]), zero)

    def test_larger_overlap_wins(self):
        # A covers 3 columns of B's amodal mask; B covers 1 column of A's: A is in front
        visible = [cols(0, 6), cols(5, 9)]
        amodal = [cols(0, 7), cols(3, 9)]
        order = pairwise_order_matrix(visible, amodal)
        assert order[0, 1] == 1 and order[1, 0] == -1

    def test_chain_of_three(self):
        # A in front of B in front of C, each overlapping the next by two columns
        visible = [cols(0, 4), cols(4, 7), cols(7, 12)]
        amodal = [cols(0, 4), cols(2, 7), cols(5, 12)]
        order = pairwise_order_matrix(visible, amodal)
        expected = np.array([[0, 1, 0], [-1, 0, 1], [0, -1, 0]], dtype=np.int8)
        np.testing.assert_array_equal(order, expected)

    def test_antisymmetric_on_random_masks(self):
        rng = np.random.default_rng(3)
        vis, amo = [], []
        for _ in range(5):
            a = rng.random((10, 10)) < 0.4
            v = a & (rng.random((10, 10)) < 0.7)
            amo.append(LazyMask.from_array(a))
            vis.append(LazyMask.from_array(v))
        order = pairwise_order_matrix(vis, amo)
        np.testing.assert_array_equal(order, -order.T)
        assert (np.diag(order) == 0).all()

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="2 visible masks but 1 amodal"):
            pairwise_order_matrix([cols(0, 1), cols(1, 2)], [cols(0, 1)])

    def test_image_order_matrix(self):
        insts = [
            Instance(1, "a", (0.0, 0.0, 6.0, 3.0), mask=cols(0, 6), amodal_mask=cols(0, 6)),
            Instance(2, "b", (6.0, 0.0, 9.0, 3.0), mask=cols(6, 9), amodal_mask=cols(3, 9)),
        ]
        image = AnnotatedImage(1, Path("/x.png"), 12, 3, insts)
        np.testing.assert_array_equal(image_order_matrix(image), [[0, 1], [-1, 0]])
        insts[1].amodal_mask = None
        assert image_order_matrix(image) is None
        assert image_order_matrix(AnnotatedImage(2, Path("/y.png"), 12, 3)) is None


class TestDataset:
    def make(self) -> Dataset:
        box = (0.0, 0.0, 1.0, 1.0)
        ims = [
            AnnotatedImage(1, Path("/a.jpg"), 4, 4, [Instance(1, "dog", box), Instance(2, "cat", box)]),
            AnnotatedImage(2, Path("/b.jpg"), 4, 4, [Instance(3, "dog", box), Instance(4, "ant", box)]),
        ]
        return Dataset(ims, ["cat", "dog", "ant"], Path("/ds"), "coco", category_ids={"dog": 18})

    def test_counts(self):
        ds = self.make()
        assert len(ds) == 2 and ds.num_instances() == 4
        assert list(ds.instances_per_class().items()) == [("dog", 2), ("ant", 1), ("cat", 1)]
        assert ds.images[0].file_name == "a.jpg"

    def test_category_ids(self):
        ds = self.make()
        assert ds.category_id("dog") == 18  # from the source file
        assert ds.category_id("ant") == 3  # position in categories, 1-based


def test_annotated_image_loads_its_pixels_and_checks_their_size(tmp_path):
    import numpy as np

    from occseg.data.annotation import AnnotatedImage
    from occseg.data.images import save_rgb

    save_rgb(tmp_path / "a.png", np.full((20, 30, 3), 7, np.uint8))
    assert AnnotatedImage(1, tmp_path / "a.png", 30, 20).load_rgb().shape == (20, 30, 3)
    with pytest.raises(ValueError, match=r"a.png: image is 30x20 but the annotation says 40x20"):
        AnnotatedImage(1, tmp_path / "a.png", 40, 20).load_rgb()
