"""The mask head in a model folder (src/occseg/head/io.py and its hooks in occseg.compnet.model): round trip,
models without a head, and what is checked on load."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from occseg.compnet.model import ModelError, load_model, save_model
from occseg.head.config import HeadSettings
from occseg.head.network import MaskHead
from tests.compnet.conftest import random_model


def _head(seed: int = 0) -> MaskHead:
    settings = HeadSettings(fine_layer="_blocks.4", fine_channels=4, fine_stride=8, coarse_channels=5, width=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MaskHead(settings).eval()


def _saved(tmp_path: Path) -> tuple[Path, MaskHead]:
    model = random_model()
    model.mask_head = _head()
    save_model(model, tmp_path / "m")
    return tmp_path / "m", model.mask_head


def test_head_round_trip(tmp_path: Path):
    folder, head = _saved(tmp_path)
    raw = json.loads((folder / "model.json").read_text())
    assert raw["mask_head"]["width"] == 8 and raw["mask_head"]["use"] == "head"
    loaded = load_model(folder).mask_head
    assert loaded is not None and loaded.settings == head.settings
    for (k, a), (k2, b) in zip(head.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    # the same head works the same way after loading
    x = (torch.randn(1, 5, 3, 2), torch.randn(1, 4, 6, 4), torch.randn(1, 7, 6, 4), torch.randn(1, 6, 3, 2))
    assert torch.equal(head(*x), loaded(*x))


def test_a_model_without_a_head_loads_with_a_note(tmp_path: Path, caplog):
    save_model(random_model(), tmp_path / "old")
    raw = json.loads((tmp_path / "old" / "model.json").read_text())
    assert "mask_head" not in raw
    with caplog.at_level(logging.INFO, logger="occseg.head.io"):
        model = load_model(tmp_path / "old")
    assert model.mask_head is None
    notes = [r.getMessage() for r in caplog.records if r.name == "occseg.head.io"]
    assert len(notes) == 1 and "has no mask head" in notes[0] and "old" in notes[0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"width": 0}, "mask_head.width must be an integer >= 1, not 0"),
        ({"width": 16}, "differs from the settings"),
        ({"use": "maybe"}, "mask_head.use must be head or refine, not 'maybe'"),
        ({"threshold": "high"}, "mask_head.threshold must be a finite number"),
        ({"colour": 1}, "unknown settings ['colour']"),
    ],
)
def test_a_changed_head_entry_is_refused(tmp_path: Path, change: dict, message: str):
    folder, _ = _saved(tmp_path)
    jpath = folder / "model.json"
    raw = json.loads(jpath.read_text())
    raw["mask_head"].update(change)
    jpath.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=None) as err:
        load_model(folder)
    assert message in str(err.value) and str(jpath) in str(err.value)


def test_a_head_entry_without_tensors_is_refused(tmp_path: Path):
    save_model(random_model(), tmp_path / "m")
    jpath = tmp_path / "m" / "model.json"
    raw = json.loads(jpath.read_text())
    raw["mask_head"] = {"fine_layer": "_blocks.4", "fine_channels": 4, "fine_stride": 8, "coarse_channels": 5}
    jpath.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=r"mask head tensor mask_head\.coarse\.weight has shape None"):
        load_model(tmp_path / "m")
