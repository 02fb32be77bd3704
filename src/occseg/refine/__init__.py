"""Box-supervised mask refinement at image resolution, guided by the image (colour models seeded by the
CompositionalNet's confident cells, edge-aware guided filtering), respecting the occlusion reasoning."""

from occseg.refine.config import RefineConfig
from occseg.refine.guided import box_mean, guided_filter
from occseg.refine.object import refine_mask, refine_object

__all__ = ["RefineConfig", "box_mean", "guided_filter", "refine_mask", "refine_object"]
