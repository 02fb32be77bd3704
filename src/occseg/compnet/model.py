"""The learned CompositionalNet: visual concepts, per-class mixtures of spatial models, outlier model.

Saved as a folder: ``model.safetensors`` (tensors) + ``model.json`` (settings and training record, and the
SHA-256 of the tensor file it was saved with). Never pickled. The tensor file's metadata records the settings the
tensors were saved with (all but the training record, the occseg version and where the backbone's weights were
read from), so a ``model.json`` edited after saving is caught too. :func:`load_model` checks every setting's type
and range, the files against each other and the settings against the backbone's registry entry (its layer).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save

from occseg import __version__
from occseg.compnet.position import PositionModel
from occseg.head.io import head_metadata, head_record, head_tensors, load_head
from occseg.head.network import MaskHead
from occseg.io import atomic_dir, atomic_path, parse_json, write_json

MODEL_FORMAT = "occseg-compnet"
MODEL_FORMAT_VERSION = 1
#: the key of ``model.json`` that holds the SHA-256 (hex) of the ``model.safetensors`` saved with it
TENSORS_DIGEST = "tensors_sha256"
#: the key of the ``model.safetensors`` metadata that holds the settings (JSON) the tensors were saved with; models
#: saved before it existed have none and are checked against nothing
SETTINGS_METADATA = "settings"
#: settings that are a record of how the model came about, not of how it is read: not recorded in the tensor file
UNRECORDED_SETTINGS = ("training", "version", "backbone_weights")
#: the layer every model saved before models recorded their backbone's layer (and its weights' fingerprint) names;
#: accepted only from such models (an empty ``backbone_fingerprint``)
LEGACY_LAYER = "stride16"


class ModelError(ValueError):
    """A model folder that is missing, corrupt, or does not match the backbone / code."""


@dataclass
class ClassModel:
    """Mixture of spatial models of one class on a fixed grid centred on the box.

    ``alpha``/``chi``: ``(M, H, W, K)`` concept distributions of foreground / context per cell;
    ``prior_fg``: ``(M, H, W)`` probability that the cell is foreground; ``counts``: samples per mixture.
    The grid is ``box_rows + 2 * ring`` cells high; the box occupies rows ``ring .. ring + box_rows``.
    """

    alpha: torch.Tensor
    chi: torch.Tensor
    prior_fg: torch.Tensor
    counts: torch.Tensor

    @property
    def num_mixtures(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.alpha.shape[1]), int(self.alpha.shape[2])

    def to(self, device: torch.device | str) -> ClassModel:
        return ClassModel(*(t.to(device) for t in (self.alpha, self.chi, self.prior_fg, self.counts)))


@dataclass
class CompNetSettings:
    """What a model was learned with; stored in ``model.json`` and checked at load time."""

    backbone: str
    layer: str
    channels: int
    stride: int
    kappa: float
    classes: list[str]
    num_concepts: int
    mixtures: dict[str, int]
    target_height: int = 224
    pad: int = 48
    box_rows: int = 14
    ring: int = 3
    omega: float = 0.2
    outlier_weight: float = 0.1
    amodal_prior_threshold: float = 0.5
    fg_bias: float = 3.5  # log-odds added to the object term when labelling cells (chosen on validation data)
    smooth_cells: float = 0.0  # Gaussian sigma (in feature cells) applied to the signed cell scores before upsampling
    class_score: str = "box_mean"  # "box_mean": mean over the box's cells; "sum": the paper's sum over the crop
    test_ring_context: bool = True  # also explain cells by the crop's own ring at test time
    context: str = "per_image"
    # where the backbone's weights came from when the model was learned (a file path, the packaged / hub
    # ImageNet file, or "random") and their fingerprint (Backbone.fingerprint; "" in models saved before it was
    # recorded: not checked)
    backbone_weights: str = ""
    backbone_fingerprint: str = ""
    # the part-position classifier's bins over the box, [rows, cols] ([]: the model has none; models saved
    # before it existed), see occseg.compnet.position
    position_bins: list[int] = field(default_factory=list)
    version: str = __version__
    format: str = MODEL_FORMAT
    format_version: int = MODEL_FORMAT_VERSION
    training: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompNetModel:
    settings: CompNetSettings
    concepts: torch.Tensor  # (K, C) unit vectors
    clutter: torch.Tensor  # (N, K) outlier concept distributions
    classes: dict[str, ClassModel]
    position: PositionModel | None = None  # where in its box a cell lies (the reasoning's order); None: none learned
    mask_head: MaskHead | None = None  # the box-supervised mask head (occseg.head); None: none learned

    @property
    def device(self) -> torch.device:
        return self.concepts.device

    def to(self, device: torch.device | str) -> CompNetModel:
        return CompNetModel(
            settings=self.settings,
            concepts=self.concepts.to(device),
            clutter=self.clutter.to(device),
            classes={k: v.to(device) for k, v in self.classes.items()},
            position=None if self.position is None else self.position.to(device),
            mask_head=None if self.mask_head is None else self.mask_head.to(device),
        )

    def check_backbone(
        self, name: str, channels: int, stride: int, *, fingerprint: str | None = None, weights: str | None = None
    ) -> None:
        """Raise :class:`ModelError` saying what differs when the model was not learned on this backbone.

        ``fingerprint`` (:meth:`~occseg.backbones.registry.Backbone.fingerprint`) is compared with the one the
        model recorded, when both are known; ``weights`` (where the given backbone's weights came from) only
        makes the message say which weights were given."""
        diffs = []
        if self.settings.backbone != name:
            diffs.append(f"backbone {self.settings.backbone!r} (model) vs {name!r} (given)")
        if self.settings.channels != channels:
            diffs.append(f"feature channels {self.settings.channels} vs {channels}")
        if self.settings.stride != stride:
            diffs.append(f"stride {self.settings.stride} vs {stride}")
        learned = self.settings.backbone_fingerprint
        if not diffs and fingerprint and learned and fingerprint != learned:
            diffs.append(
                f"backbone weights: learned on {self.settings.backbone_weights or 'unrecorded weights'} (fingerprint "
                f"{learned[:12]}), given {weights or 'other weights'} (fingerprint {fingerprint[:12]}); "
                "give the weights the model was learned with (--backbone-weights FILE)"
            )
        if diffs:
            raise ModelError("model does not match the backbone: " + "; ".join(diffs))

    def require_position(self, source: object = "the model", *, adapt: bool = False) -> None:
        """The one check that the model has its part-position classifier, needed to decide the order by part
        positions (``adapt``: to refit it to a dataset's boxes); a ``ValueError`` starting with ``source`` (the
        model's folder, or what asked for it) says why there is none and what to do instead."""
        if self.position is not None:
            return
        why = f"{source}: this model has no part-position classifier (trained without one, or before it existed)"
        if adapt:
            raise ValueError(f"{why} to adapt: retrain the model, or predict without adapt_order (--adapt-order)")
        raise ValueError(
            f"{why}, so the order cannot come from it: retrain the model, or decide the order by pixel counts "
            "(order='counts', --order-cue counts)"
        )


def _safetensors_header(data: bytes) -> tuple[int, Any]:
    """``(length, parsed JSON)`` of a safetensors file's header: an 8-byte little-endian length, then JSON."""
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes are too few for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"the header claims {n} bytes, the file holds {len(data) - 8} after the length")
    return n, json.loads(data[8 : 8 + n])


def canonical_safetensors(data: bytes) -> bytes:
    """The same safetensors file with its JSON header keys sorted, so equal tensors give equal bytes
    (safetensors writes the metadata from a hash map: its key order changes from call to call)."""
    n, header = _safetensors_header(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the header is padded with spaces to a multiple of 8 bytes
    return struct.pack("<Q", len(text)) + text + data[8 + n :]


#: the files of a model folder
MODEL_FILES: tuple[str, ...] = ("model.json", "model.safetensors")


def check_model_folder(
    folder: str | Path, *, overwrite: bool, what: str = "model folder", flag: str = "overwrite=True"
) -> None:
    """Refuse (``ValueError``) to save a model into ``folder`` when it holds anything but a model's files (saving
    replaces the folder whole), or a model already and not ``overwrite`` (``flag`` names the switch)."""
    p = Path(folder)
    if not p.is_dir():
        return
    names = sorted(e.name for e in p.iterdir())
    other = [n for n in names if n not in MODEL_FILES]
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise ValueError(
            f"{what} {p} holds files that are not a model's ({shown}): saving replaces the folder whole; "
            "name a new or empty folder"
        )
    if names and not overwrite:
        raise ValueError(f"{what} {p} holds a model already: give {flag} to replace it")


def save_model(model: CompNetModel, folder: str | Path, *, overwrite: bool = True) -> None:
    """Write ``model.safetensors`` and ``model.json`` into ``folder`` as a unit: both go into a temporary folder
    beside it, which is renamed into place (an earlier model there is replaced whole, only with ``overwrite``; a
    folder holding other files is refused: :func:`check_model_folder`). Settings that :func:`load_model` would
    refuse are refused here, before anything is written."""
    out = Path(folder)
    _check_settings(model.settings, f"cannot save {out / 'model.json'}")
    check_model_folder(out, overwrite=overwrite)
    with atomic_dir(out, replace=overwrite) as tmp:
        _write_model_files(model, tmp)


def _write_model_files(model: CompNetModel, out: Path) -> None:
    tensors: dict[str, torch.Tensor] = {
        "concepts": model.concepts.detach().cpu().contiguous(),
        "clutter": model.clutter.detach().cpu().contiguous(),
    }
    for i, name in enumerate(model.settings.classes):
        cm = model.classes[name]
        for key in ("alpha", "chi", "prior_fg", "counts"):
            tensors[f"class{i}.{key}"] = getattr(cm, key).detach().cpu().contiguous()
    if model.position is not None:
        if list(model.position.bins) != list(model.settings.position_bins):
            raise ValueError(
                f"the position model has {model.position.bins} bins, the settings say {model.settings.position_bins}"
            )
        tensors["position.weight"] = model.position.weight.detach().cpu().contiguous()
        tensors["position.bias"] = model.position.bias.detach().cpu().contiguous()
    elif model.settings.position_bins:
        raise ValueError(f"the settings give position bins {model.settings.position_bins} but the model has none")
    tensors.update(head_tensors(model.mask_head))
    meta = {
        "format": MODEL_FORMAT,
        "classes": json.dumps(model.settings.classes),
        SETTINGS_METADATA: _recorded_settings(model.settings),
        **head_metadata(model.mask_head),
    }
    blob = canonical_safetensors(save(tensors, metadata=meta))
    with atomic_path(out / "model.safetensors") as tmp:
        tmp.write_bytes(blob)
    # the settings name the tensor file they belong to, so two files that were not saved together are caught
    write_json(
        out / "model.json",
        {**asdict(model.settings), **head_record(model.mask_head), TENSORS_DIGEST: hashlib.sha256(blob).hexdigest()},
        indent=2,
    )


_FIELD_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}

#: the least value of each integer setting
_INT_MINIMUM: dict[str, int] = {
    "channels": 1,
    "stride": 1,
    "num_concepts": 1,
    "target_height": 1,
    "pad": 0,
    "box_rows": 1,
    "ring": 0,
    "format_version": 1,
}
#: the range of each number setting, ``(low, low allowed, high)`` (``None``: unbounded); every number must be finite
FLOAT_RANGES: dict[str, tuple[float | None, bool, float | None]] = {
    "kappa": (0.0, False, None),  # the vMF concentration: log activations are kappa * cosine
    "omega": (0.0, True, 1.0),  # the weight of the context model in a fused cell distribution
    "outlier_weight": (0.0, False, None),  # a prior weight whose log is taken
    "amodal_prior_threshold": (0.0, True, 1.0),  # compared with a probability
    "fg_bias": (None, True, None),  # log-odds
    "smooth_cells": (0.0, True, None),  # a Gaussian sigma
}
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def float_rule(low: float | None, low_ok: bool, high: float | None) -> str:
    if low is None:
        return "a finite number"
    if high is not None:
        return f"a number from {low:g} to {high:g}"
    return f"a finite number {'>=' if low_ok else '>'} {low:g}"


def _check_settings(settings: CompNetSettings, jpath: Path | str) -> None:
    """Every setting of a plain type has that type (``true`` is no number, ``"16"`` no integer) and a value in
    its range (numbers finite; counts and sizes positive); the lists and choices hold what the code expects; the
    crop settings agree with the grid; the backbone is one occseg knows and the layer the one it gives features
    from. Raises :class:`ModelError` naming the file (``jpath``), the setting and its value."""
    for name, f in CompNetSettings.__dataclass_fields__.items():
        value = getattr(settings, name)
        want = _FIELD_TYPES.get(str(f.type))
        if want is None:
            continue
        if not isinstance(value, want) or (bool not in want and isinstance(value, bool)):
            article = "an" if str(f.type) == "int" else "a"
            raise ModelError(f"{jpath}: setting {name!r} must be {article} {f.type}, not {value!r}")
    for name, least in _INT_MINIMUM.items():
        value = getattr(settings, name)
        if value < least:
            raise ModelError(f"{jpath}: setting {name!r} must be an integer >= {least}, not {value!r}")
    for name, (low, low_ok, high) in FLOAT_RANGES.items():
        value = getattr(settings, name)
        bad = not math.isfinite(value)
        bad = bad or (low is not None and (value < low or (value == low and not low_ok)))
        bad = bad or (high is not None and value > high)
        if bad:
            raise ModelError(f"{jpath}: setting {name!r} must be {float_rule(low, low_ok, high)}, not {value!r}")
    if (
        not isinstance(settings.classes, list)
        or not settings.classes
        or not all(isinstance(c, str) and c for c in settings.classes)
    ):
        raise ModelError(f"{jpath}: 'classes' must be a list of class names, not {settings.classes!r}")
    if len(set(settings.classes)) != len(settings.classes):
        raise ModelError(f"{jpath}: 'classes' lists a class twice: {settings.classes}")
    if not isinstance(settings.mixtures, dict) or set(settings.mixtures) - set(settings.classes):
        raise ModelError(f"{jpath}: 'mixtures' must map the model's classes to counts, not {settings.mixtures!r}")
    for name, count in settings.mixtures.items():
        if not _is_int(count) or count < 1:
            raise ModelError(
                f"{jpath}: 'mixtures' must map the model's classes to counts (integers >= 1), not "
                f"{settings.mixtures!r} (class {name!r}: {count!r})"
            )
    if settings.context not in ("per_image", "global"):
        raise ModelError(f"{jpath}: 'context' must be per_image or global, not {settings.context!r}")
    if settings.class_score not in ("box_mean", "sum"):
        raise ModelError(f"{jpath}: 'class_score' must be box_mean or sum, not {settings.class_score!r}")
    pb = settings.position_bins
    if not isinstance(pb, list) or (pb and (len(pb) != 2 or not all(_is_int(b) and b > 0 for b in pb))):
        raise ModelError(f"{jpath}: 'position_bins' must be [rows, cols] of positive integers or [], not {pb!r}")
    s = settings
    if s.backbone_fingerprint and not _FINGERPRINT.fullmatch(s.backbone_fingerprint):
        raise ModelError(
            f"{jpath}: setting 'backbone_fingerprint' must be a SHA-256 (64 lowercase hex digits) or \"\", not "
            f"{s.backbone_fingerprint!r}"
        )
    _check_backbone_entry(s, jpath)
    # training cuts crops whose box is target_height px high and pads them by pad px: box_rows and ring cells
    for cells, px, pname in (("box_rows", "target_height", "box height"), ("ring", "pad", "pad")):
        if getattr(s, cells) != getattr(s, px) // s.stride:
            raise ModelError(
                f"{jpath}: setting {cells!r} is {getattr(s, cells)!r}, but {px!r} {getattr(s, px)!r} with 'stride' "
                f"{s.stride!r} makes {getattr(s, px) // s.stride} cells (a {pname} of {getattr(s, px)} px at stride "
                f"{s.stride}); the settings do not belong together"
            )
    if not isinstance(s.training, dict):
        raise ModelError(f"{jpath}: setting 'training' must be a JSON object (the training record), not {s.training!r}")
    cmap = s.training.get("class_map", {})
    if not isinstance(cmap, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cmap.items()):
        raise ModelError(
            f"{jpath}: setting 'training' holds a 'class_map' that is not a JSON object of class names, {cmap!r}"
        )


def _check_backbone_entry(settings: CompNetSettings, jpath: Path | str) -> None:
    """The backbone is registered, the layer is the one it gives its features from (models saved before the
    layer was recorded name :data:`LEGACY_LAYER`) and the stride its features have. The feature channels are
    compared with the backbone actually used, by :meth:`CompNetModel.check_backbone`."""
    from occseg.backbones.registry import backbone_spec, list_backbones

    try:
        spec = backbone_spec(settings.backbone)
    except ValueError as exc:
        known = ", ".join(b.name for b in list_backbones())
        raise ModelError(
            f"{jpath}: setting 'backbone' is {settings.backbone!r}, a backbone occseg does not know (it knows {known})"
        ) from exc
    if settings.layer != spec.layer and not (settings.layer == LEGACY_LAYER and not settings.backbone_fingerprint):
        raise ModelError(
            f"{jpath}: setting 'layer' is {settings.layer!r}, but backbone {spec.name!r} gives its features from "
            f"layer {spec.layer!r}, the only layer a model learned on it can hold"
        )
    if settings.stride != spec.stride:
        raise ModelError(
            f"{jpath}: setting 'stride' is {settings.stride!r}, but backbone {spec.name!r} gives its features at "
            f"stride {spec.stride}"
        )


def _recorded_settings(settings: CompNetSettings) -> str:
    """The settings the tensor file records (JSON, keys sorted): all but :data:`UNRECORDED_SETTINGS`."""
    rec = {k: v for k, v in asdict(settings).items() if k not in UNRECORDED_SETTINGS}
    return json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def load_model(folder: str | Path, *, device: torch.device | str = "cpu") -> CompNetModel:
    """Read a model folder written by :func:`save_model`; errors say which file and what is wrong, and that the
    two files do not belong together when the tensor file is not the one the settings were saved with."""
    try:
        return _read_model(folder, device=device)
    except ModelError as exc:
        raise _unpaired(Path(folder), exc) from None


def _unpaired(root: Path, exc: ModelError) -> ModelError:
    """``exc``, or when ``model.json`` names (by SHA-256) another tensor file than the one beside it, the error
    that says so, with ``exc`` as the detail: a shape error alone would hide that the files were mixed up."""
    jpath, tpath = root / "model.json", root / "model.safetensors"
    try:
        expected = json.loads(jpath.read_text(encoding="utf-8")).get(TENSORS_DIGEST)
        got = hashlib.sha256(tpath.read_bytes()).hexdigest()
    except (OSError, ValueError, AttributeError):
        return exc
    if not isinstance(expected, str) or got == expected.lower() or "do not belong together" in str(exc):
        return exc
    return ModelError(
        f"{jpath} and {tpath} do not belong together: the tensor file is not the one the settings were saved with "
        f"(a save was probably interrupted, or one file was replaced); save or train the model again ({exc})"
    )


def _read_model(folder: str | Path, *, device: torch.device | str = "cpu") -> CompNetModel:
    root = Path(folder)
    jpath, tpath = root / "model.json", root / "model.safetensors"
    for p in (jpath, tpath):
        if not p.is_file():
            raise ModelError(f"not an occseg model folder: {p} is missing")
    raw, settings = _read_settings(jpath)
    # one read of the tensor file: the digest is checked on the very bytes the tensors come from
    try:
        blob = tpath.read_bytes()
        meta = _safetensors_metadata(blob)
        tensors = {k: v.to(device) for k, v in load_safetensors(blob).items()}
    except Exception as exc:
        raise ModelError(f"{tpath}: cannot read the tensors ({exc})") from exc
    if "classes" in meta:
        try:
            stored = json.loads(meta["classes"])
        except json.JSONDecodeError:
            stored = meta["classes"]
        if stored != settings.classes:
            raise ModelError(
                f"{jpath} lists the classes {settings.classes}, but {tpath} holds the tensors of {stored}: "
                "the two files do not belong together"
            )
    concepts = tensors.get("concepts")
    if concepts is None or tuple(concepts.shape) != (settings.num_concepts, settings.channels):
        got = None if concepts is None else tuple(concepts.shape)
        raise ModelError(
            f"{tpath}: concepts have shape {got}, expected {(settings.num_concepts, settings.channels)} from {jpath}"
        )
    classes = {name: _class_model(i, name, tensors, settings, jpath, tpath) for i, name in enumerate(settings.classes)}
    clutter = tensors.get("clutter")
    if clutter is None or clutter.ndim != 2 or clutter.shape[1] != settings.num_concepts:
        got = None if clutter is None else tuple(clutter.shape)
        raise ModelError(f"{tpath}: outlier model 'clutter' has shape {got}, expected (N, {settings.num_concepts})")
    position = _position_model(raw, tensors, settings, jpath, tpath)
    _check_digest(raw.get(TENSORS_DIGEST), jpath, tpath, blob)
    _check_recorded_settings(meta.get(SETTINGS_METADATA), raw, jpath, tpath)
    try:
        head = load_head(raw, tensors, meta, jpath, tpath, folder=root)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    return CompNetModel(settings, concepts, clutter, classes, position=position, mask_head=head)


def _read_settings(jpath: Path) -> tuple[dict[str, Any], CompNetSettings]:
    """``model.json`` as read, and the settings it holds (format, version and every setting checked)."""
    try:
        text = jpath.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{jpath}: not a UTF-8 text file, so not a model's settings") from exc
    try:
        raw = parse_json(text, jpath)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ModelError(f"{jpath}: not an occseg CompNet model (a JSON {type(raw).__name__}, not an object)")
    if raw.get("format") != MODEL_FORMAT:
        raise ModelError(f"{jpath}: not an occseg CompNet model (format {raw.get('format')!r})")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{jpath}: format_version must be an integer, not {version!r}")
    if version < 1:
        raise ModelError(f"{jpath}: format_version must be an integer >= 1, not {version!r}")
    if version > MODEL_FORMAT_VERSION:
        raise ModelError(
            f"{jpath}: model format version {version} is newer than this occseg ({MODEL_FORMAT_VERSION}); "
            "upgrade occseg"
        )
    known = set(CompNetSettings.__dataclass_fields__)
    try:
        settings = CompNetSettings(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:
        raise ModelError(f"{jpath}: missing settings ({exc})") from exc
    _check_settings(settings, jpath)
    return raw, settings


def _class_model(
    i: int, name: str, tensors: dict[str, torch.Tensor], settings: CompNetSettings, jpath: Path, tpath: Path
) -> ClassModel:
    """Class ``i``'s tensors, checked against each other and the settings."""
    try:
        cm = ClassModel(*(tensors[f"class{i}.{k}"] for k in ("alpha", "chi", "prior_fg", "counts")))
    except KeyError as exc:
        raise ModelError(f"{tpath}: tensors of class {name!r} are missing ({exc.args[0]})") from exc
    if cm.chi.shape != cm.alpha.shape or cm.prior_fg.shape != cm.alpha.shape[:3]:
        raise ModelError(
            f"{tpath}: class {name!r} tensors disagree: alpha {tuple(cm.alpha.shape)}, chi {tuple(cm.chi.shape)}, "
            f"prior_fg {tuple(cm.prior_fg.shape)}"
        )
    if settings.mixtures.get(name, cm.num_mixtures) != cm.num_mixtures:
        raise ModelError(
            f"{jpath}: class {name!r} has {settings.mixtures[name]} mixtures, but {tpath} holds {cm.num_mixtures}"
        )
    if cm.alpha.shape[-1] != settings.num_concepts:
        raise ModelError(f"{tpath}: class {name!r} has {cm.alpha.shape[-1]} concepts, expected {settings.num_concepts}")
    rows = settings.box_rows + 2 * settings.ring
    if cm.grid[0] != rows:
        raise ModelError(
            f"{tpath}: class {name!r} has a grid {cm.grid[0]} cells high, but 'box_rows' {settings.box_rows} "
            f"and 'ring' {settings.ring} in {jpath} make {rows} (box_rows + 2 * ring)"
        )
    return cm


def _position_model(
    raw: dict[str, Any], tensors: dict[str, torch.Tensor], settings: CompNetSettings, jpath: Path, tpath: Path
) -> PositionModel | None:
    """The part-position classifier the settings announce (None when they announce none), checked."""
    if "position_bins" in raw and not settings.position_bins and "position.weight" in tensors:
        raise ModelError(
            f"{jpath}: setting 'position_bins' is [] (no part-position classifier), but {tpath} holds one "
            "('position.weight'): the two files do not belong together"
        )
    if not settings.position_bins:
        return None
    rows, cols = settings.position_bins
    w, b = tensors.get("position.weight"), tensors.get("position.bias")
    want = (rows * cols + 1, settings.num_concepts)
    if w is None or b is None or tuple(w.shape) != want or tuple(b.shape) != want[:1]:
        got = [None if t is None else tuple(t.shape) for t in (w, b)]
        raise ModelError(
            f"{tpath}: the position model ('position.weight', 'position.bias') has shapes {got}, expected "
            f"{want} and {want[:1]} from the position_bins {settings.position_bins} and num_concepts in {jpath}"
        )
    return PositionModel(w, b, (rows, cols))


def _safetensors_metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header (``{}`` when it has none)."""
    header = _safetensors_header(blob)[1]
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def _check_digest(expected: Any, jpath: Path, tpath: Path, blob: bytes) -> None:
    """The tensor file is the one the settings were saved with (models saved before the digest existed have
    none and are not checked). Checked after the tensors' shapes, whose errors say more about what differs."""
    if expected is None:
        return
    if not isinstance(expected, str):
        raise ModelError(f"{jpath}: {TENSORS_DIGEST!r} must be a SHA-256 hex string, not {expected!r}")
    got = hashlib.sha256(blob).hexdigest()
    if got != expected.lower():
        raise ModelError(
            f"{tpath} is not the tensor file {jpath} was saved with (SHA-256 {got[:12]}..., the settings name "
            f"{expected[:12]}...): the two files do not belong together (one was replaced or changed, or a save was "
            "interrupted); save or train the model again"
        )


def _check_recorded_settings(recorded: str | None, raw: dict[str, Any], jpath: Path, tpath: Path) -> None:
    """Each setting of ``model.json`` (``raw``) has the value the tensor file recorded when the two were saved
    together. Models saved before the record existed have none and are not checked; a setting missing from
    ``model.json`` takes its default, as in a ``model.json`` written before the setting existed. Checked after the
    tensors' digest: a tensor file of another model is reported as that."""
    if recorded is None:
        return
    try:
        saved = json.loads(recorded)
    except json.JSONDecodeError:
        saved = None
    if not isinstance(saved, dict):
        raise ModelError(f"{tpath}: the settings recorded in its metadata are not a JSON object: the file is corrupt")
    known = CompNetSettings.__dataclass_fields__
    for name in sorted(saved):
        if name in UNRECORDED_SETTINGS or name not in known or name not in raw:
            continue
        if raw[name] != saved[name]:
            raise ModelError(
                f"{jpath}: setting {name!r} is {raw[name]!r}, but {tpath} was saved with {saved[name]!r}: "
                f"{jpath.name} was changed after the model was saved. A learned model's settings are fixed when it "
                f"is saved: restore {saved[name]!r}, or change the setting on the loaded model and save it again"
            )
