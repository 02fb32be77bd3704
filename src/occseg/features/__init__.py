"""Backbone features of box crops and whole images."""

from occseg.features.crops import (
    BoxFeatures,
    CropConfig,
    box_windows,
    extract_box_features,
    extract_image_features,
    render_crop,
)

__all__ = [
    "BoxFeatures",
    "CropConfig",
    "box_windows",
    "extract_box_features",
    "extract_image_features",
    "render_crop",
]
