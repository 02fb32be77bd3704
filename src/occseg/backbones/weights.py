"""Reading weight files safely, and finding torchvision's ImageNet weights without the network.

Weight files are read with ``torch.load(weights_only=True)`` (or safetensors), never by unpickling
arbitrary objects. torchvision's files are looked up in torch's hub cache
(``$TORCH_HOME/hub/checkpoints``, see :func:`torch.hub.get_dir`); they are downloaded only when the
caller allows it explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn


class WeightsError(FileNotFoundError):
    """Backbone weights that cannot be found, downloaded or loaded. The message says what to do."""


RANDOM = "random"


def load_state_dict_file(path: str | Path, *, what: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict (tensor name -> tensor) from a ``.pth``/``.pt`` or ``.safetensors`` file.

    ``.pth`` files are read with ``torch.load(weights_only=True)``: only tensors and plain containers
    are accepted. A dict wrapping the weights under ``"state_dict"`` or ``"model"`` is unwrapped.
    Raises :class:`WeightsError` naming the file.
    """
    p = Path(path)
    if p.is_dir():
        raise WeightsError(f"{what}: {p} is a folder; give the weights file itself")
    if not p.is_file():
        raise WeightsError(f"{what}: weights file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(p), device="cpu")
        else:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # whatever the reader trips on, the file is not usable weights
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError) or len(reason) < 8:  # torch.load of a file that is no pickle: KeyError(101)
            reason = "it is neither a torch.save file nor a .safetensors file"
        elif "weights only load failed" in reason.lower():  # torch's advice to unpickle is not one occseg takes
            reason = (
                "it holds Python objects besides tensors, which occseg never unpickles; save the state dict alone "
                "(torch.save(model.state_dict(), path)) or as .safetensors"
            )
        raise WeightsError(
            f"{what}: cannot read weights file {p} as a plain state dict (only tensors are loaded): {reason}"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{what}: weights file {p} does not hold a state dict (name -> tensor)")
    return dict(obj)


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, what: str) -> None:
    """Load ``state`` into ``module``: every parameter/buffer of the module must be present with its shape.

    Extra keys in ``state`` are ignored (e.g. a classifier head when only the trunk is built).
    Raises :class:`WeightsError` naming ``source`` on missing keys or shape mismatches.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise WeightsError(
            f"{what}: weights from {source} lack {len(missing)} of the {len(own)} tensors the model needs, "
            f"e.g. {missing[:3]} (is it a file for a different architecture?)"
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        k, got, want = wrong[0]
        raise WeightsError(f"{what}: weights from {source}: tensor {k} has shape {got}, the model needs {want}")
    module.load_state_dict({k: state[k] for k in own}, strict=True)


def hub_checkpoint_dir() -> Path:
    """torch's hub cache folder for weight files (``$TORCH_HOME/hub/checkpoints`` by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_or_download(name: str, urls: Sequence[str], *, allow_download: bool = False, progress: bool = True) -> Path:
    """The local path of one of torchvision's weight files for ``name``.

    ``urls`` are the accepted files (the first one is the one downloaded). Each is looked for by its
    file name in :func:`hub_checkpoint_dir`. When none is there it is downloaded into that folder only if
    ``allow_download``; otherwise (or when the download fails) :class:`WeightsError` says which file was
    looked for where and how to pass a local file instead.
    """
    folder = hub_checkpoint_dir()
    files = [u.rsplit("/", 1)[-1] for u in urls]
    for f in files:
        if (folder / f).is_file():
            return folder / f
    looked = " or ".join(files)
    how = (
        f"Download it elsewhere (from {urls[0]}) and pass it with weights='path/to/{files[0]}' "
        f"(CLI: --backbone-weights path/to/{files[0]}), or copy it into {folder}; "
        f"weights='random' gives random initialisation (for speed tests only)."
    )
    if not allow_download:
        raise WeightsError(
            f"{name}: ImageNet weights file {looked} not found in the torch hub cache {folder} "
            f"(set TORCH_HOME to use another cache). It cannot be downloaded because downloads are off "
            f"(pass allow_download=True, CLI --download-weights, to let torchvision fetch it). {how}"
        )
    dst = folder / files[0]
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stem = files[0].rsplit(".", 1)[0]
        hash_prefix = stem.rsplit("-", 1)[-1] if "-" in stem else None
        torch.hub.download_url_to_file(urls[0], str(tmp), hash_prefix=hash_prefix, progress=progress)
        os.replace(tmp, dst)
    except Exception as exc:  # network, disk and hash errors all end the same way
        tmp.unlink(missing_ok=True)
        raise WeightsError(
            f"{name}: ImageNet weights file {looked} not found in the torch hub cache {folder}, and it cannot be "
            f"downloaded from {urls[0]}: {type(exc).__name__}: {exc}. {how}"
        ) from exc
    return dst
