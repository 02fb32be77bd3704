"""Model folders: safetensors + JSON round trip, no pickle, and loading errors that say what differs."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from occseg.compnet.model import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    SETTINGS_METADATA,
    TENSORS_DIGEST,
    UNRECORDED_SETTINGS,
    CompNetSettings,
    ModelError,
    canonical_safetensors,
    load_model,
    save_model,
)
from tests.compnet.conftest import model_tensors, random_model


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    save_model(random_model(), folder)
    return folder


def _edit_json(folder: Path, **changes) -> None:
    p = folder / "model.json"
    raw = json.loads(p.read_text())
    for k, v in changes.items():
        if v is None:
            raw.pop(k)
        else:
            raw[k] = v
    p.write_text(json.dumps(raw, indent=2))


def test_round_trip_keeps_every_tensor_and_setting(tmp_path: Path):
    model = random_model(seed=3)
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert asdict(back.settings) == asdict(model.settings)
    assert back.settings.training["class_map"] == {"truck": "vehicle"}
    assert list(back.classes) == ["person", "vehicle"]
    a, b = model_tensors(model), model_tensors(back)
    assert a.keys() == b.keys()
    for name in a:
        assert b[name].dtype == a[name].dtype and torch.equal(b[name], a[name]), name
    assert back.classes["person"].num_mixtures == 2 and back.classes["person"].grid == (7, 4)
    assert back.device == torch.device("cpu")
    # saving the loaded model again gives the same bytes
    save_model(back, tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (
        tmp_path / "m" / "model.safetensors"
    ).read_bytes()
    assert (tmp_path / "again" / "model.json").read_text() == (tmp_path / "m" / "model.json").read_text()


def test_folder_holds_safetensors_and_json_only_no_pickle(saved: Path):
    assert sorted(p.name for p in saved.iterdir()) == ["model.json", "model.safetensors"]  # no temp files left
    data = (saved / "model.safetensors").read_bytes()
    assert not data.startswith(b"\x80")  # not a pickle stream (torch.save writes a zip of pickles: b"PK")
    assert not data.startswith(b"PK")
    (n,) = struct.unpack("<Q", data[:8])  # safetensors: 8-byte header length, then a JSON header
    header = json.loads(data[8 : 8 + n])
    meta = header["__metadata__"]
    assert meta.keys() == {"format", "classes", SETTINGS_METADATA}
    assert meta["format"] == MODEL_FORMAT and meta["classes"] == '["person", "vehicle"]'
    recorded = json.loads(meta[SETTINGS_METADATA])  # what model.json must still say when the model is loaded
    assert recorded == {k: v for k, v in json.loads((saved / "model.json").read_text()).items() if k in recorded}
    assert set(recorded) == set(CompNetSettings.__dataclass_fields__) - set(UNRECORDED_SETTINGS)
    assert sorted(k for k in header if k != "__metadata__") == sorted(
        ["concepts", "clutter"] + [f"class{i}.{k}" for i in (0, 1) for k in ("alpha", "chi", "prior_fg", "counts")]
    )
    with safe_open(str(saved / "model.safetensors"), framework="pt") as f:
        assert tuple(f.get_tensor("class0.alpha").shape) == (2, 7, 4, 6)
    raw = json.loads((saved / "model.json").read_text())
    assert raw["format"] == MODEL_FORMAT and raw["format_version"] == MODEL_FORMAT_VERSION
    assert raw["classes"] == ["person", "vehicle"] and raw["num_concepts"] == 6 and raw["channels"] == 5


def test_saving_is_byte_deterministic(tmp_path: Path):
    """safetensors writes its metadata from a hash map (key order changes from call to call); the saved file is
    made canonical, so the same model always gives the same bytes."""
    model = random_model(seed=1)
    blobs = set()
    for i in range(8):
        save_model(model, tmp_path / str(i))
        blobs.add((tmp_path / str(i) / "model.safetensors").read_bytes())
    assert len(blobs) == 1
    data = blobs.pop()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0 and list(json.loads(data[8 : 8 + n])["__metadata__"]) == ["classes", "format", "settings"]
    assert torch.equal(load_model(tmp_path / "0").concepts, model.concepts)


def test_canonical_safetensors_keeps_the_tensors():
    from safetensors.torch import load, save

    tensors = {"b": torch.arange(3.0), "a": torch.ones(2, 2, dtype=torch.int64), "é": torch.zeros(1)}
    raw = save(tensors, metadata={"z": "1", "y": "ü"})
    canon = canonical_safetensors(raw)
    back = load(canon)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    assert canonical_safetensors(canon) == canon


def test_save_overwrites_an_existing_model(saved: Path):
    other = random_model(seed=9)
    save_model(other, saved)
    back = load_model(saved)
    assert torch.equal(back.concepts, other.concepts)
    assert sorted(p.name for p in saved.iterdir()) == ["model.json", "model.safetensors"]


@pytest.mark.parametrize("missing", ["model.json", "model.safetensors"])
def test_missing_file_is_named(saved: Path, missing: str):
    (saved / missing).unlink()
    with pytest.raises(ModelError, match=rf"not an occseg model folder: .*{missing} is missing"):
        load_model(saved)


def test_missing_folder(tmp_path: Path):
    with pytest.raises(ModelError, match="model.json is missing"):
        load_model(tmp_path / "nowhere")


def test_corrupt_json_names_file_and_line(saved: Path):
    (saved / "model.json").write_text('{\n  "backbone": "efficientnet_lite0",\n  "channels": ,\n}\n')
    with pytest.raises(ModelError) as err:
        load_model(saved)
    msg = str(err.value)
    assert msg.startswith(str(saved / "model.json")) and "not valid JSON" in msg and "at line 3" in msg
    (saved / "model.json").write_text('{\n  "backbone": "efficientnet_l')  # cut short
    with pytest.raises(ModelError, match=r"model.json: not valid JSON \(Unterminated string starting at line 2, col"):
        load_model(saved)


def test_wrong_format_string(saved: Path):
    _edit_json(saved, format="something-else")
    with pytest.raises(ModelError, match=r"model.json: not an occseg CompNet model \(format 'something-else'\)"):
        load_model(saved)
    _edit_json(saved, format=None)
    with pytest.raises(ModelError, match=r"\(format None\)"):
        load_model(saved)


def test_newer_format_version(saved: Path):
    _edit_json(saved, format_version=MODEL_FORMAT_VERSION + 1)
    with pytest.raises(ModelError, match=rf"model format version {MODEL_FORMAT_VERSION + 1} is newer than this occseg"):
        load_model(saved)


def test_missing_setting(saved: Path):
    _edit_json(saved, kappa=None)
    with pytest.raises(ModelError, match=r"model.json: missing settings .*kappa"):
        load_model(saved)


def test_unknown_json_keys_are_ignored(saved: Path):
    _edit_json(saved, comment="written by a later occseg")
    assert load_model(saved).settings.kappa == 20.0


def test_concept_shape_mismatch_says_both_shapes(saved: Path):
    _edit_json(saved, num_concepts=7)
    with pytest.raises(ModelError) as err:
        load_model(saved)
    msg = str(err.value)
    assert "model.safetensors: concepts have shape (6, 5), expected (7, 5) from" in msg and "model.json" in msg
    _edit_json(saved, num_concepts=6, channels=112)
    with pytest.raises(ModelError, match=r"concepts have shape \(6, 5\), expected \(6, 112\)"):
        load_model(saved)


def test_settings_and_tensors_of_different_models(saved: Path):
    _edit_json(saved, classes=["person", "vehicle", "dog"])
    with pytest.raises(ModelError, match=r"model.json lists the classes \['person', 'vehicle', 'dog'\], but .*"
                       r"model.safetensors holds the tensors of \['person', 'vehicle'\]: the two files do not "
                       r"belong together"):  # fmt: skip
        load_model(saved)
    _edit_json(saved, classes=["vehicle", "person"])  # same classes, swapped: outputs would be relabelled
    with pytest.raises(ModelError, match=r"lists the classes \['vehicle', 'person'\], but"):
        load_model(saved)


def test_class_tensors_missing(saved: Path):
    from safetensors.torch import load_file, save_file

    t = saved / "model.safetensors"
    tensors = load_file(str(t))
    del tensors["class1.alpha"]
    save_file(tensors, str(t))  # no metadata: the classes cannot be compared, the tensors still are
    with pytest.raises(ModelError, match=r"tensors of class 'vehicle' are missing \(class1.alpha\)"):
        load_model(saved)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[]", r"model.json: not an occseg CompNet model \(a JSON list, not an object\)"),
        (b"\xff\xfe{}", r"model.json: not a UTF-8 text file, so not a model's settings"),
    ],
)
def test_settings_file_of_the_wrong_kind(saved: Path, content: bytes, message: str):
    (saved / "model.json").write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_model(saved)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": None}, r"format_version must be an integer, not None"),
        ({"format_version": "abc"}, r"format_version must be an integer, not 'abc'"),
        ({"stride": "16"}, r"setting 'stride' must be an int, not '16'"),
        ({"kappa": True}, r"setting 'kappa' must be a float, not True"),
        ({"backbone": 3}, r"setting 'backbone' must be a str, not 3"),
        ({"classes": "person"}, r"'classes' must be a list of class names, not 'person'"),
        ({"classes": ["person", "person"]}, r"'classes' lists a class twice"),
        ({"mixtures": {"dog": 2}}, r"'mixtures' must map the model's classes to counts"),
        ({"mixtures": {"person": 5, "vehicle": 2}}, r"class 'person' has 5 mixtures, but .*model.safetensors holds 2"),
        ({"context": "weird"}, r"'context' must be per_image or global, not 'weird'"),
        ({"class_score": "max"}, r"'class_score' must be box_mean or sum, not 'max'"),
    ],
)
def test_wrong_settings_name_the_file_and_the_setting(saved: Path, changes: dict, message: str):
    raw = json.loads((saved / "model.json").read_text())
    raw.update(changes)
    (saved / "model.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=r"model.json.*" + message):
        load_model(saved)


def test_corrupt_tensor_file(saved: Path):
    (saved / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelError, match=r"model.safetensors: cannot read the tensors"):
        load_model(saved)


def test_check_backbone_names_what_differs():
    model = random_model()  # efficientnet_lite0, 5 channels, stride 16
    model.check_backbone("efficientnet_lite0", 5, 16)  # matches: no error
    with pytest.raises(ModelError) as err:
        model.check_backbone("vgg16", 512, 8)
    msg = str(err.value)
    assert msg == (
        "model does not match the backbone: backbone 'efficientnet_lite0' (model) vs 'vgg16' (given); "
        "feature channels 5 vs 512; stride 16 vs 8"
    )
    with pytest.raises(ModelError, match=r"backbone: feature channels 5 vs 112$"):
        model.check_backbone("efficientnet_lite0", 112, 16)
    assert isinstance(err.value, ValueError)  # the CLI reports ValueErrors as one line


def _one_person_gt(tmp_path: Path) -> Path:
    """A COCO file of one 64x48 image with one person box, and the image (compnet's predict reads every image's
    header before the run)."""
    from PIL import Image

    Image.new("RGB", (64, 48), (90, 120, 30)).save(tmp_path / "a.png")
    gt = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 30], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}],
    }
    data = tmp_path / "gt.json"
    data.write_text(json.dumps(gt))
    return data


def test_predict_with_a_model_for_another_backbone_is_a_one_line_error(saved: Path, tmp_path: Path):
    """The saved model says efficientnet_lite0 but 5 feature channels (the real one has 112)."""
    from occseg.cli.main import cli

    data = _one_person_gt(tmp_path)
    res = CliRunner().invoke(
        cli, ["predict", "--model", str(saved), "--data", str(data), "--out", str(tmp_path / "p.json")]
    )
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("occseg: error:")]
    assert errors == ["occseg: error: model does not match the backbone: feature channels 5 vs 112"], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "p.json").exists()


def test_missing_clutter_tensor_is_a_model_error(saved: Path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(saved / "model.safetensors"))
    del tensors["clutter"]
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(ModelError, match="clutter"):
        load_model(saved)


def test_check_backbone_compares_the_weights_fingerprint_when_both_are_known():
    from dataclasses import replace

    model = random_model()
    model.check_backbone("efficientnet_lite0", 5, 16, fingerprint="ab" * 32)  # nothing recorded: not checked
    model.settings = replace(model.settings, backbone_weights="/w/lite0.pth", backbone_fingerprint="ab" * 32)
    model.check_backbone("efficientnet_lite0", 5, 16, fingerprint="ab" * 32)
    model.check_backbone("efficientnet_lite0", 5, 16)  # no fingerprint given: not checked
    with pytest.raises(ModelError) as err:
        model.check_backbone("efficientnet_lite0", 5, 16, fingerprint="cd" * 32, weights="random")
    assert str(err.value) == (
        "model does not match the backbone: backbone weights: learned on /w/lite0.pth (fingerprint abababababab), "
        "given random (fingerprint cdcdcdcdcdcd); give the weights the model was learned with "
        "(--backbone-weights FILE)"
    )


def _with_position(model, bins=(2, 3), seed=0):
    from dataclasses import replace

    from occseg.compnet.position import PositionModel

    g = torch.Generator().manual_seed(seed)
    nb = bins[0] * bins[1] + 1
    pm = PositionModel(torch.randn(nb, model.settings.num_concepts, generator=g), torch.randn(nb, generator=g), bins)
    return replace(model, settings=replace(model.settings, position_bins=list(bins)), position=pm)


def test_position_classifier_round_trip(tmp_path: Path):
    model = _with_position(random_model(seed=3))
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.settings.position_bins == [2, 3] and back.position.bins == (2, 3)
    assert torch.equal(back.position.weight, model.position.weight)
    assert torch.equal(back.position.bias, model.position.bias)
    assert back.to("cpu").position.bins == (2, 3)


def test_models_without_a_position_classifier_still_load(saved: Path):
    _edit_json(saved, position_bins=None)  # a model saved before the classifier existed
    back = load_model(saved)
    assert back.position is None and back.settings.position_bins == []


def test_position_classifier_that_does_not_match_its_settings(tmp_path: Path):
    model = _with_position(random_model())
    save_model(model, tmp_path / "m")
    _edit_json(tmp_path / "m", position_bins=[3, 3])
    with pytest.raises(ModelError, match=r"position model .* has shapes \[\(7, 6\), \(7,\)\], expected \(10, 6\)"):
        load_model(tmp_path / "m")
    _edit_json(tmp_path / "m", position_bins=[2, "3"])
    with pytest.raises(ModelError, match=r"model.json: 'position_bins' must be \[rows, cols\]"):
        load_model(tmp_path / "m")
    save_model(random_model(), tmp_path / "plain")
    _edit_json(tmp_path / "plain", position_bins=[2, 3])  # settings name a classifier the tensors lack
    with pytest.raises(ModelError, match=r"has shapes \[None, None\]"):
        load_model(tmp_path / "plain")
    from dataclasses import replace

    with pytest.raises(ValueError, match="settings give position bins"):
        save_model(replace(model, position=None), tmp_path / "bad")


def test_settings_name_the_tensor_file_they_were_saved_with(saved: Path):
    import hashlib

    raw = json.loads((saved / "model.json").read_text())
    assert raw[TENSORS_DIGEST] == hashlib.sha256((saved / "model.safetensors").read_bytes()).hexdigest()
    assert TENSORS_DIGEST not in asdict(load_model(saved).settings)  # a record of the file, not a setting


def test_tensors_of_another_model_with_the_same_shapes_are_caught(saved: Path, tmp_path: Path):
    """Same classes, same shapes, other values: every structural check passes, so only the digest can tell. This
    is what a save interrupted between its two files leaves (new tensors, old settings)."""
    save_model(random_model(seed=5), tmp_path / "other")
    (saved / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(ModelError) as err:
        load_model(saved)
    msg = str(err.value)
    assert "model.safetensors is not the tensor file" in msg and "model.json was saved with" in msg
    assert "the two files do not belong together" in msg and "save or train the model again" in msg


def test_models_saved_before_the_digest_load_unchecked(saved: Path, tmp_path: Path):
    save_model(random_model(seed=5), tmp_path / "other")
    (saved / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    _edit_json(saved, **{TENSORS_DIGEST: None})  # an older model.json: nothing to compare with
    back = load_model(saved)
    assert torch.equal(back.concepts, random_model(seed=5).concepts)


@pytest.mark.parametrize("value", [12, ["ab"], True])
def test_a_digest_that_is_not_a_string_names_the_file(saved: Path, value):
    _edit_json(saved, **{TENSORS_DIGEST: value})
    with pytest.raises(ModelError, match=r"model.json: 'tensors_sha256' must be a SHA-256 hex string"):
        load_model(saved)


def test_a_tensor_file_changed_in_one_bit_is_caught(saved: Path):
    """A corrupt byte inside a tensor's data still parses as safetensors with the right shapes: only the digest
    tells."""
    p = saved / "model.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 1  # the last byte belongs to the last tensor's values
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"one was replaced or changed, or a save was interrupted"):
        load_model(saved)


def test_the_digest_is_checked_on_the_bytes_the_tensors_come_from(saved: Path, monkeypatch):
    """The tensor file is read once: a check on one read and tensors from another could disagree."""
    reads = []
    original = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self.name)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    load_model(saved)
    assert reads.count("model.safetensors") == 1


def test_a_truncated_tensor_file_says_so(saved: Path):
    p = saved / "model.safetensors"
    p.write_bytes(p.read_bytes()[:5])
    with pytest.raises(ModelError, match=r"model.safetensors: cannot read the tensors \(5 bytes are too few"):
        load_model(saved)


# ---------------------------------------------------------------------------------------------------------------
# model.json is checked field by field: every error names the file, the setting and its value


def _load_error(folder: Path) -> str:
    with pytest.raises(ModelError) as err:
        load_model(folder)
    return str(err.value)


def _assert_names(msg: str, folder: Path, field: str, value) -> None:
    assert msg.startswith(str(folder / "model.json")), msg
    assert f"'{field}'" in msg and repr(value) in msg, msg


def _without_settings_record(folder: Path) -> None:
    """Rewrite the tensor file the way occseg saved it before it recorded the settings (and name it in
    model.json): a model saved by an earlier version."""
    import hashlib

    from safetensors.torch import load, save

    blob = (folder / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    meta = json.loads(blob[8 : 8 + n])["__metadata__"]
    del meta[SETTINGS_METADATA]
    old = canonical_safetensors(save(load(blob), metadata=meta))
    (folder / "model.safetensors").write_bytes(old)
    _edit_json(folder, **{TENSORS_DIGEST: hashlib.sha256(old).hexdigest()})


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("kappa", 0, "must be a finite number > 0"),
        ("kappa", -5, "must be a finite number > 0"),
        ("kappa", float("nan"), "must be a finite number > 0"),
        ("omega", -1, "must be a number from 0 to 1"),
        ("omega", 1.5, "must be a number from 0 to 1"),
        ("fg_bias", float("inf"), "must be a finite number"),
        ("fg_bias", float("-inf"), "must be a finite number"),
        ("outlier_weight", -1.0, "must be a finite number > 0"),
        ("outlier_weight", 0, "must be a finite number > 0"),
        ("amodal_prior_threshold", 5.0, "must be a number from 0 to 1"),
        ("smooth_cells", -3.0, "must be a finite number >= 0"),
        ("pad", -48, "must be an integer >= 0"),
        ("target_height", 0, "must be an integer >= 1"),
        ("target_height", -10, "must be an integer >= 1"),
        ("box_rows", 0, "must be an integer >= 1"),
        ("ring", -1, "must be an integer >= 0"),
        ("channels", 0, "must be an integer >= 1"),
        ("num_concepts", 0, "must be an integer >= 1"),
        ("stride", 0, "must be an integer >= 1"),
        ("target_height", 80.0, "must be an int"),
        ("kappa", "20", "must be a float"),
    ],
)
def test_numeric_settings_out_of_range_name_file_field_and_value(saved: Path, field: str, value, rule: str):
    _edit_json(saved, **{field: value})  # JSON: NaN / Infinity are what Python writes for them
    msg = _load_error(saved)
    _assert_names(msg, saved, field, value)
    assert rule in msg


def test_format_version_below_one(saved: Path):
    _edit_json(saved, format_version=0)
    msg = _load_error(saved)
    assert msg.startswith(str(saved / "model.json")) and "format_version must be an integer >= 1, not 0" in msg


@pytest.mark.parametrize("mixtures", [{"person": "2", "vehicle": 1}, {"person": 0, "vehicle": 1}, {"person": True}])
def test_mixture_counts_must_be_positive_integers(saved: Path, mixtures: dict):
    _edit_json(saved, mixtures=mixtures)
    msg = _load_error(saved)
    bad = mixtures["person"]
    _assert_names(msg, saved, "mixtures", bad)
    assert f"(class 'person': {bad!r})" in msg and "integers >= 1" in msg
    assert "mixtures, but" not in msg  # not the old self-contradictory "has 2 mixtures, but ... holds 2"


@pytest.mark.parametrize("training", ["x", ["seed", 0], 3, None])
def test_training_record_must_be_an_object(saved: Path, training):
    raw = json.loads((saved / "model.json").read_text())
    raw["training"] = training
    (saved / "model.json").write_text(json.dumps(raw))
    msg = _load_error(saved)  # at load time, not as an AttributeError in a later predict
    _assert_names(msg, saved, "training", training)
    assert "must be a JSON object" in msg


def test_training_class_map_must_map_names_to_names(saved: Path):
    raw = json.loads((saved / "model.json").read_text())
    raw["training"]["class_map"] = "truck=vehicle"
    (saved / "model.json").write_text(json.dumps(raw))
    msg = _load_error(saved)
    _assert_names(msg, saved, "training", "truck=vehicle")
    assert "'class_map'" in msg


@pytest.mark.parametrize("layer", ["blocks.5", "nonsense", ""])
def test_layer_must_be_the_backbones(saved: Path, layer: str):
    _edit_json(saved, layer=layer)
    msg = _load_error(saved)
    _assert_names(msg, saved, "layer", layer)
    assert "backbone 'efficientnet_lite0' gives its features from layer 'blocks.10'" in msg


def test_legacy_layer_only_from_models_saved_before_layers_were_recorded(tmp_path: Path):
    from dataclasses import replace

    model = random_model()
    assert model.settings.layer == "stride16" and model.settings.backbone_fingerprint == ""  # an older model
    save_model(model, tmp_path / "old")
    assert load_model(tmp_path / "old").settings.layer == "stride16"
    new = replace(model, settings=replace(model.settings, layer="blocks.10", backbone_fingerprint="ab" * 32))
    save_model(new, tmp_path / "new")
    assert load_model(tmp_path / "new").settings.layer == "blocks.10"
    _edit_json(tmp_path / "new", layer="stride16")  # a model that records its fingerprint records its layer too
    _assert_names(_load_error(tmp_path / "new"), tmp_path / "new", "layer", "stride16")
    # nor may the fingerprint be changed (to pass the weights check) or removed (to make the old layer pass)
    for fingerprint in ("cd" * 32, ""):
        _edit_json(tmp_path / "new", layer="blocks.10", backbone_fingerprint=fingerprint)
        msg = _load_error(tmp_path / "new")
        _assert_names(msg, tmp_path / "new", "backbone_fingerprint", fingerprint)
        assert f"was saved with {'ab' * 32!r}" in msg


@pytest.mark.parametrize(("field", "value"), [("backbone", "nonsense"), ("stride", 8)])
def test_backbone_and_stride_must_be_a_known_backbones(saved: Path, field: str, value):
    _edit_json(saved, **{field: value})
    msg = _load_error(saved)
    _assert_names(msg, saved, field, value)
    assert "efficientnet_lite0" in msg  # what it knows / what the backbone gives


def test_fingerprint_must_be_a_sha256(saved: Path):
    _edit_json(saved, backbone_fingerprint="abc")
    msg = _load_error(saved)
    _assert_names(msg, saved, "backbone_fingerprint", "abc")
    assert "64 lowercase hex digits" in msg


@pytest.mark.parametrize(
    ("changes", "field", "value"), [({"target_height": 160}, "box_rows", 5), ({"pad": 48}, "ring", 1)]
)
def test_crop_settings_must_agree_with_the_grid_rows(saved: Path, changes: dict, field: str, value: int):
    """random_model: box_rows 5 = 80 // 16, ring 1 = 16 // 16."""
    _edit_json(saved, **changes)
    msg = _load_error(saved)
    _assert_names(msg, saved, field, value)
    (px,) = changes
    assert f"'{px}' {changes[px]}" in msg


def test_box_rows_and_ring_must_fit_the_stored_grid(saved: Path):
    _edit_json(saved, box_rows=6, target_height=96)  # consistent with each other, not with the 7-row tensors
    msg = _load_error(saved)
    assert msg.startswith(str(saved / "model.safetensors")) and str(saved / "model.json") in msg
    assert "class 'person' has a grid 7 cells high, but 'box_rows' 6 and 'ring' 1" in msg and "make 8" in msg


def test_explicit_empty_position_bins_with_a_stored_classifier(tmp_path: Path):
    save_model(_with_position(random_model()), tmp_path / "m")
    _edit_json(tmp_path / "m", position_bins=[])
    msg = _load_error(tmp_path / "m")
    _assert_names(msg, tmp_path / "m", "position_bins", [])
    assert "holds one ('position.weight')" in msg
    _edit_json(tmp_path / "m", position_bins=None)  # no key at all: a model.json from before the classifier
    assert load_model(tmp_path / "m").position is None


def test_saving_refuses_settings_that_would_not_load(tmp_path: Path):
    from dataclasses import replace

    model = random_model()
    bad = replace(model, settings=replace(model.settings, kappa=-1.0))
    with pytest.raises(ModelError, match=r"cannot save .*model.json: setting 'kappa' must be a finite number > 0"):
        save_model(bad, tmp_path / "m")
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------------------------------------------
# the tensor file records the settings it was saved with: a valid but changed model.json is caught too


@pytest.mark.parametrize(
    ("field", "value", "saved_value"),
    [
        ("fg_bias", 2.0, 3.5),
        ("kappa", 30.0, 20.0),
        ("omega", 0.5, 0.2),
        ("context", "global", "per_image"),
        ("class_score", "sum", "box_mean"),
        ("test_ring_context", False, True),
    ],
)
def test_a_setting_changed_after_saving_is_caught(saved: Path, field: str, value, saved_value):
    _edit_json(saved, **{field: value})
    msg = _load_error(saved)
    _assert_names(msg, saved, field, value)
    assert f"{saved / 'model.safetensors'} was saved with {saved_value!r}" in msg
    assert "model.json was changed after the model was saved" in msg


def test_the_settings_record_holds_without_the_tensor_digest(saved: Path):
    _edit_json(saved, fg_bias=1.0, **{TENSORS_DIGEST: None})
    _assert_names(_load_error(saved), saved, "fg_bias", 1.0)


@pytest.mark.parametrize("field", ["training", "version", "backbone_weights"])
def test_the_record_of_how_the_model_came_about_may_change(saved: Path, field: str):
    value = {"note": "edited"} if field == "training" else "edited"
    _edit_json(saved, **{field: value})
    assert getattr(load_model(saved).settings, field) == value


def test_models_saved_before_the_settings_record_still_load(saved: Path):
    _without_settings_record(saved)
    assert load_model(saved).settings.fg_bias == 3.5
    _edit_json(saved, fg_bias=2.0)  # nothing to compare a valid value with
    assert load_model(saved).settings.fg_bias == 2.0
    _edit_json(saved, fg_bias=float("inf"))  # but every setting is still checked
    _assert_names(_load_error(saved), saved, "fg_bias", float("inf"))


def test_a_bad_model_json_is_a_one_line_cli_error(saved: Path, tmp_path: Path):
    from occseg.cli.main import cli

    _edit_json(saved, training="x")
    data = _one_person_gt(tmp_path)
    res = CliRunner().invoke(
        cli, ["predict", "--model", str(saved), "--data", str(data), "--out", str(tmp_path / "p.json")]
    )
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("occseg: error:")]
    assert errors == [
        f"occseg: error: {saved / 'model.json'}: setting 'training' must be a JSON object (the training record), "
        "not 'x'"
    ], res.output
    assert "Traceback" not in res.output


def test_tensors_of_another_shape_beside_the_settings_say_the_files_do_not_belong_together(saved: Path, tmp_path):
    """A save killed between its two files used to leave new tensors beside old settings; the error then spoke of
    shapes only. It says that the two files were not saved together, and why that happens."""
    save_model(random_model(seed=3, k=8), tmp_path / "bigger")
    (saved / "model.safetensors").write_bytes((tmp_path / "bigger" / "model.safetensors").read_bytes())
    with pytest.raises(ModelError) as err:
        load_model(saved)
    msg = str(err.value)
    assert "model.json and" in msg and "model.safetensors do not belong together" in msg
    assert "a save was probably interrupted" in msg
    assert "concepts have shape (8, 5), expected (6, 5)" in msg


def test_save_writes_the_folder_as_a_unit(tmp_path: Path):
    folder = tmp_path / "m"
    save_model(random_model(), folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ValueError, match=r"model folder .*m holds a model already: give overwrite=True to replace it"):
        save_model(random_model(seed=4), folder, overwrite=False)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    bad = random_model(seed=4)
    bad.classes["person"] = None  # fails while the tensors are gathered: nothing is installed
    with pytest.raises(AttributeError):
        save_model(bad, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files that are not a model's \(notes.txt\)"):
        save_model(random_model(seed=4), folder)
    assert (folder / "notes.txt").read_text() == "mine"
