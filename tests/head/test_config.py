"""The head's training settings (src/occseg/head/config.py): the choices are checked."""

from __future__ import annotations

import pytest

from occseg.head.config import HeadTrainConfig


@pytest.mark.parametrize("change", [{"fine_stride": 16}, {"targets": "image"}])
def test_an_unknown_stride_or_target_source_is_refused(change: dict):
    with pytest.raises(ValueError, match="fine_stride must be one of \\(8, 4\\) and targets one of"):
        HeadTrainConfig(**change)


def test_the_defaults_read_the_stride8_block_and_learn_from_each_objects_mask():
    cfg = HeadTrainConfig()
    assert (cfg.fine_stride, cfg.targets) == (8, "object")


def test_a_target_band_of_half_or_more_is_refused():
    with pytest.raises(ValueError, match="target_band must lie in \\[0, 0.5\\), not 0.5"):
        HeadTrainConfig(target_band=0.5)
