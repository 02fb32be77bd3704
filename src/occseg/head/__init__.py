"""A dense mask head learned from boxes only (BoxInst-style projection and colour-affinity losses) on the frozen
backbone's stride-16 and finer blocks, optionally with the CompositionalNet's per-cell terms as inputs.

Modules: :mod:`~occseg.head.config` (settings), :mod:`~occseg.head.inputs` (what the head sees of one crop),
:mod:`~occseg.head.network` (the net), :mod:`~occseg.head.losses` (box-supervised losses),
:mod:`~occseg.head.learn` (training), :mod:`~occseg.head.predict` (masks), :mod:`~occseg.head.io` (model folder).
"""

from occseg.head.config import HeadSettings, HeadTrainConfig
from occseg.head.network import MaskHead

__all__ = ["HeadSettings", "HeadTrainConfig", "MaskHead"]
