"""RefineConfig validation."""

from __future__ import annotations

import pytest

from occseg.refine import RefineConfig


def test_defaults_are_valid_and_round_trip_through_a_dict():
    cfg = RefineConfig()
    assert RefineConfig.from_dict(dict(cfg.__dict__)) == cfg


@pytest.mark.parametrize(
    "change,message",
    [
        ({"colour": "crf"}, "colour must be one of none, histogram, gmm, grabcut"),
        ({"work_height": 4}, "work_height must be >= 8"),
        ({"guide_height": 0}, "guide_height must be >= 8"),
        ({"region_pad": -0.1}, r"region_pad must be in \[0, 2\]"),
        ({"score_clip": 0}, "score_clip must be > 0"),
        ({"shape_weight": -1}, "shape_weight must be >= 0"),
        ({"colour_bins": 1}, r"colour_bins must be in \[2, 64\]"),
        ({"grabcut_iters": -1}, "grabcut_iters must be >= 0"),
        ({"guided_eps": 0.0}, "guided_eps must be > 0"),
        ({"seed_fg": 1.0}, r"seed_fg must be in \[0, 1\)"),
        ({"core": 1.5}, r"core must be in \[0, 1\)"),
        ({"min_component": 2.0}, r"min_component must be in \[0, 1\]"),
    ],
)
def test_invalid_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        RefineConfig(**change)


def test_all_errors_reported_together_and_unknown_keys():
    with pytest.raises(ValueError, match="work_height.*guided_eps"):
        RefineConfig(work_height=1, guided_eps=-1)
    with pytest.raises(ValueError, match="unknown setting.*radius"):
        RefineConfig.from_dict({"radius": 3})
