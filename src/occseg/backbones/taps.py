"""A second, finer output of a backbone's trunk, read in the same forward pass (a forward hook on one block).

The mask head (:mod:`occseg.head`) reads an earlier block of the trunk next to the stride-16 output; the block is
named by its module path in the trunk (``Backbone.body``) and its stride is recorded with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from occseg.backbones.registry import Backbone


@dataclass(frozen=True)
class FineLayer:
    """A block of a trunk: its module path in ``Backbone.body``, its channels and its stride."""

    module: str
    channels: int
    stride: int


#: the finer block of each backbone the mask head can use (EfficientNet-Lite0: the last stride-8 block)
FINE_LAYERS: dict[str, FineLayer] = {
    "efficientnet_lite0": FineLayer("_blocks.4", 40, 8),
    "vgg16": FineLayer("16", 256, 8),  # pool3
    "resnext50": FineLayer("layer2", 512, 8),
}
#: the last stride-4 block of each backbone (a finer input still, at 4x the cells)
STRIDE4_LAYERS: dict[str, FineLayer] = {
    "efficientnet_lite0": FineLayer("_blocks.2", 24, 4),
    "vgg16": FineLayer("9", 128, 4),  # pool2
    "resnext50": FineLayer("layer1", 256, 4),
}


def fine_layer(backbone_name: str, stride: int = 8) -> FineLayer:
    """The finer block of a registered backbone at ``stride`` (8 or 4); a ValueError names the backbones that
    have one."""
    layers = {8: FINE_LAYERS, 4: STRIDE4_LAYERS}.get(stride)
    if layers is None:
        raise ValueError(f"no finer block at stride {stride} (known strides: 8, 4)")
    if backbone_name not in layers:
        raise ValueError(f"no finer block known for backbone {backbone_name!r} (known: {', '.join(layers)})")
    return layers[backbone_name]


@contextmanager
def tap(backbone: Backbone, module: str | None) -> Iterator[list[torch.Tensor]]:
    """Inside the block, every forward pass of ``backbone`` appends the output of ``module`` (a path in
    ``backbone.body``) to the yielded list; the hook is removed on leaving, also after an error. ``None``: no
    hook (the list stays empty)."""
    outputs: list[torch.Tensor] = []
    if module is None:
        yield outputs
        return
    try:
        target = backbone.body.get_submodule(module)
    except AttributeError as exc:
        raise ValueError(f"{backbone.spec.name}: the trunk has no block {module!r}") from exc
    handle = target.register_forward_hook(lambda _m, _a, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()
