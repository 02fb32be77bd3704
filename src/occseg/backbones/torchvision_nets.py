"""torchvision trunks used by the paper: VGG-16 up to pool4 and ResNeXt-50 (32x4d) up to layer3.

Both have stride 16 and give ``ceil(H / 16) x ceil(W / 16)`` cells (VGG's pools use ``ceil_mode=True``
so odd sizes are not truncated; for sizes divisible by 16 this changes nothing).
ImageNet weights come from torch's hub cache, a local file, or (only when allowed) torchvision's download.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from occseg.backbones.weights import RANDOM, find_or_download, load_into, load_state_dict_file

#: Accepted torchvision weight files (the first one is downloaded when downloads are allowed).
VGG16_URLS = ("https://download.pytorch.org/models/vgg16-397923af.pth",)
RESNEXT50_URLS = (
    "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth",  # IMAGENET1K_V1 (the paper's era)
    "https://download.pytorch.org/models/resnext50_32x4d-1a0047aa.pth",  # IMAGENET1K_V2 (torchvision DEFAULT)
)
#: Number of ``vgg16().features`` layers up to and including pool4.
VGG16_POOL4_LAYERS = 24


def _weights_path(name: str, weights: str | Path | None, urls: tuple[str, ...], allow_download: bool) -> Path | None:
    if weights is not None and str(weights) == RANDOM:
        return None
    if weights is not None:
        return Path(weights)
    return find_or_download(name, urls, allow_download=allow_download)


def build_vgg16_pool4(weights: str | Path | None = None, *, allow_download: bool = False) -> tuple[nn.Module, str]:
    """VGG-16 ``features`` up to pool4 (512 channels, stride 16) and its weights' source.

    Weights: None (hub cache), "random" or a file.

    A file may hold the full ``vgg16`` state dict (only ``features.*`` is used) or the trunk's own.
    """
    from torchvision.models.vgg import cfgs, make_layers

    trunk = make_layers(cfgs["D"], batch_norm=False)[:VGG16_POOL4_LAYERS]
    for layer in trunk:
        if isinstance(layer, nn.MaxPool2d):
            layer.ceil_mode = True
    path = _weights_path("vgg16", weights, VGG16_URLS, allow_download)
    if path is not None:
        state = load_state_dict_file(path, what="vgg16")
        if any(k.startswith("features.") for k in state):
            state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        load_into(trunk, state, source=str(path), what="vgg16")
    return trunk.eval(), str(path) if path is not None else RANDOM


def build_resnext50_layer3(weights: str | Path | None = None, *, allow_download: bool = False) -> tuple[nn.Module, str]:
    """ResNeXt-50 (32x4d) conv1 .. layer3 (1024 channels, stride 16) and its weights' source.

    Weights: None (hub cache), "random" or a file.

    A file holds the full ``resnext50_32x4d`` state dict (the fc head is ignored).
    """
    from torchvision.models import resnext50_32x4d

    full = resnext50_32x4d(weights=None)
    trunk = nn.Sequential()
    for key in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
        trunk.add_module(key, getattr(full, key))
    path = _weights_path("resnext50", weights, RESNEXT50_URLS, allow_download)
    if path is not None:
        load_into(trunk, load_state_dict_file(path, what="resnext50"), source=str(path), what="resnext50")
    return trunk.eval(), str(path) if path is not None else RANDOM
